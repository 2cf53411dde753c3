"""`chainproof --version` (issue: everyday use)."""

from __future__ import annotations

from importlib.metadata import version

from typer.testing import CliRunner

from cli.main import app


def test_version_is_the_installed_distributions() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"chainproof {version('chainproof')}"
