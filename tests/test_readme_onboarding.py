"""The README's "Join as a merchant, inspector or carrier" section, run as written: every command a newcomer and
the admin type, from a key pair to a recorded batch, its label and a key rotation, against a remote server. The
commands are read from the README itself, so the section cannot drift from what works; only the server URL and
what the admin sends the newcomer (actor id, token, key id) are filled in."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from tests.servers import start_server

README = Path(__file__).resolve().parent.parent / "README.md"
CHAINPROOF = str(Path(sys.executable).parent / "chainproof")
EXAMPLE_SERVER = "https://trace.example"


def _section_commands() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Join as a merchant, inspector or carrier", 1)[1].split("\n## ", 1)[0]
    return [c for c in re.findall(r"`([^`]+)`", section) if c.startswith(("chainproof ", "umask "))]


def _run(command: str, cwd: Path, env: dict[str, str]) -> str:
    """A README command line: `;`-separated shell steps, run as a user would (the CLI from another directory)."""
    outputs = []
    for step in (s.strip() for s in command.split(";")):
        words = shlex.split(step)
        if words[0] == "umask":
            continue  # the file mode is the test's to check, below
        if words[0] == "export":
            name, _, value = words[1].partition("=")
            env[name] = value
            continue
        if words[0] == "echo":  # echo 'TEXT' > FILE
            (cwd / words[3]).write_text(words[1] + "\n")
            (cwd / words[3]).chmod(0o600)
            continue
        assert words[0] == "chainproof", step
        result = subprocess.run([CHAINPROOF, *words[1:]], cwd=cwd, env=env, capture_output=True, text=True)
        assert result.returncode == 0, f"{step}\n{result.stdout}{result.stderr}"
        outputs.append(result.stdout)
    return "".join(outputs)


def test_a_newcomer_follows_the_readme_from_zero_to_a_recorded_batch(tmp_path: Path) -> None:
    server = start_server(tmp_path / "server")
    try:
        home = tmp_path / "newcomer"  # the newcomer's and the admin's machines: not the server's
        home.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHAINPROOF_")}
        env["CHAINPROOF_DATA_DIR"] = str(home / "data")
        env["CHAINPROOF_STATE_DIR"] = str(home / "state")
        # the first admin, bootstrapped on the server's machine (README, "Commands": actor add --db)
        _run("chainproof keygen --out ops.pem", home, env)
        bootstrap = subprocess.run(
            [CHAINPROOF, "actor", "add", "--name", "Operations", "--role", "admin", "--public-key", "ops.pem.pub",
             "--format", "json"],
            cwd=home, env={**env, "CHAINPROOF_DATA_DIR": str(server.settings.data_dir)},
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        (home / "admin.token").write_text(json.loads(bootstrap.stdout)["token"] + "\n")

        commands = [c.replace(EXAMPLE_SERVER, server.url) for c in _section_commands()]
        assert [c.split()[:3] for c in commands] == [
            ["chainproof", "keygen", "--out"],
            ["chainproof", "actor", "add"],
            ["umask", "077;", "echo"],
            ["chainproof", "record", "origin"],
            ["chainproof", "qr", "--sku"],
            ["chainproof", "keygen", "--out"],
            ["chainproof", "key", "rotate"],
        ], commands
        keygen, actor_add, keep_token, record, qr, keygen_new, rotate = commands
        _run(keygen, home, env)
        created = _run(actor_add, home, env)
        actor_id = re.search(r"actor id: (act_\w+)", created)
        key_id = re.search(r"key id:\s+([0-9a-f]{16})", created)
        token = re.search(r"token:\s+(cpt_\S+)", created)
        assert actor_id is not None, created
        assert key_id is not None, created
        assert token is not None, created
        _run(keep_token.replace("cpt_...", token.group(1)), home, env)
        assert (home / "acme.token").stat().st_mode & 0o077 == 0
        recorded = _run(record, home, env)
        assert f"product page: {server.url}" in recorded, recorded
        _run(qr, home, env)
        assert (home / "label.svg").read_text().startswith("<?xml")
        _run(keygen_new, home, env)
        rotated = _run(rotate.replace("ACT_ID", actor_id.group(1)).replace("OLD_KEY_ID", key_id.group(1)), home, env)
        assert f"key {key_id.group(1)} revoked" in rotated
        registry = server.store.registry()
        assert registry.keys[key_id.group(1)].revoked_at is not None
        assert registry.actors[actor_id.group(1)].name == "Acme Coffee"
    finally:
        server.stop()
