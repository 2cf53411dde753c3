"""Every command's --help: it works, it carries at least one example, and examples stay on their own lines as
written (the help is plain click formatting, which rewraps paragraphs unless told not to)."""

from __future__ import annotations

from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from cli.main import app

runner = CliRunner()


def _commands() -> list[list[str]]:
    root = typer.main.get_command(app)
    found: list[list[str]] = []

    def walk(command: Any, path: list[str]) -> None:
        if hasattr(command, "commands"):  # a group (typer carries its own copy of click)
            for name, sub in command.commands.items():
                walk(sub, [*path, name])
        else:
            found.append(path)

    walk(root, [])
    return found


@pytest.mark.parametrize("path", _commands(), ids=" ".join)
def test_help_has_an_example_on_its_own_line(path: list[str]) -> None:
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    examples = [line for line in lines if line.lstrip().startswith(("chainproof ", "Example: chainproof "))]
    assert examples, f"chainproof {' '.join(path)} --help shows no example"
    # an example is never cut in the middle: the line after one does not go on with its options
    for line in examples:
        if line.endswith("\\"):  # continued on purpose, as a shell line would be
            continue
        following = lines[lines.index(line) + 1] if lines.index(line) + 1 < len(lines) else ""
        assert not following.lstrip().startswith("--"), f"an example of {' '.join(path)} was rewrapped: {line!r}"
