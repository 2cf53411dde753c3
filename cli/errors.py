"""The CLI's own error: a usage, input or connection problem, printed as one line (exit status 2)."""

from __future__ import annotations


class CliError(Exception):
    """A usage, input or connection problem: printed as one line, exit status 2 (see cli.main.handled)."""
