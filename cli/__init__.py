"""The `chainproof` command."""
