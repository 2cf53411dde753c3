"""Signed authenticity certificates (a later issue). Not built yet."""
