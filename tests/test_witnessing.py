"""The log's side of witnessing (ledger/witnessing.py): checkpoints issued by the issuer alone, sent to the policy's
witnesses with consistency proofs, their cosignatures recorded and served; a witness that is down stops nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ledger.cosignature import Cosigner, parse_policy
from ledger.logkey import load_or_create_log_signer
from ledger.note import Checkpoint, parse_note
from ledger.signing import generate_private_key
from ledger.witness import Witness, WitnessState
from ledger.witnessing import LogWitnessing
from tests.factory import World, make_world


@pytest.fixture
def world(plain_world: World) -> World:
    """Over the store as deployed: nothing but the issuer signs a checkpoint."""
    return plain_world


class Clock:
    def __init__(self) -> None:
        self.now = 1_796_000_000.0

    def __call__(self) -> float:
        return self.now


def _setup(world: World, tmp_path: Path, clock: Clock) -> tuple[LogWitnessing, Cosigner, list[str]]:
    store = world.store
    up = Cosigner("witness.example/up", generate_private_key())
    down = Cosigner("witness.example/down", generate_private_key())
    witness = Witness(up, {store.origin: [store.signer.verifier]}, WitnessState(tmp_path / "up"), clock=clock)
    policy = parse_policy(
        f"log {store.signer.verifier}\n"
        f"witness UP {up.verifier} https://up.example/\n"
        f"witness DOWN {down.verifier} https://down.example/\n"
        "group ANY any UP DOWN\nquorum ANY\n"
    )
    calls: list[str] = []

    def post(url: str, body: bytes) -> tuple[int, bytes]:
        calls.append(url)
        if url.startswith("https://down.example/"):
            raise ConnectionError("connection refused")
        answer = witness.add_checkpoint(body)
        return answer.status, answer.body

    return LogWitnessing(store, policy, freshness_s=600, post=post, clock=clock), up, calls


def test_checkpoints_are_issued_witnessed_and_served_with_their_cosignatures(world: World, tmp_path: Path) -> None:
    clock = Clock()
    witnessing, up, calls = _setup(world, tmp_path, clock)
    store = world.store
    first = witnessing.tick()
    assert first == store.size()
    assert sorted(calls) == ["https://down.example/add-checkpoint", "https://up.example/add-checkpoint"]
    served = store.cosigned(store.checkpoint())
    assert up.verifier.timestamp_of(served) == int(clock.now)
    # reads never sign: appended entries wait for the issuer's next checkpoint
    store.append(world.journey("W", "1"))
    assert Checkpoint.parse_body(parse_note(store.checkpoint()).text).size == first
    clock.now += 5
    second = witnessing.tick()
    assert second == store.size() > first
    served = store.cosigned(store.checkpoint())
    assert Checkpoint.parse_body(parse_note(served).text).size == second
    assert up.verifier.timestamp_of(served) == int(clock.now)  # cosigned from the size it held, with a proof
    # nothing new: nothing issued, until half the freshness bound has passed; then re-witnessed, a newer time
    calls.clear()
    clock.now += 10
    assert witnessing.tick() is None
    assert calls == []
    clock.now += 300
    assert witnessing.tick() == second
    assert up.verifier.timestamp_of(store.cosigned(store.checkpoint())) == int(clock.now)


def test_a_witness_that_forgot_is_told_and_caught_up(world: World, tmp_path: Path) -> None:
    """The log does not know what a witness holds (a restart): the witness's 409 says, and the log sends the
    proof from there."""
    clock = Clock()
    witnessing, up, _calls = _setup(world, tmp_path, clock)
    witnessing.tick()
    world.store.append(world.journey("W", "2"))
    witnessing.sizes.clear()  # the log restarted
    clock.now += 5
    size = witnessing.tick()
    served = world.store.cosigned(world.store.checkpoint())
    assert Checkpoint.parse_body(parse_note(served).text).size == size
    assert up.verifier.timestamp_of(served) == int(clock.now)


def test_a_witnessed_server_end_to_end(tmp_path: Path) -> None:
    """`serve --policy` (here the same settings, in process) with a real `witness serve`: the checkpoint the server
    serves carries the witness's cosignature, `verify --policy` accepts it; a policy whose quorum needs another
    witness fails it."""
    import subprocess
    import sys
    import time

    import httpx
    from typer.testing import CliRunner

    from cli.main import app as cli_app
    from tests.factory import make_world
    from tests.servers import LOG, free_port, start_server, until_listening

    runner = CliRunner()
    log_signer = load_or_create_log_signer(tmp_path / "log.pem", LOG)
    witness_key = tmp_path / "w1.pem"
    made = runner.invoke(cli_app, ["witness", "keygen", "--name", "witness.example/w1", "--out", str(witness_key)])
    assert made.exit_code == 0, made.output
    vkey = made.output.strip()
    witness_port = free_port()
    (tmp_path / "witness.policy").write_text(f"log {log_signer.verifier}\nquorum none\n")
    (tmp_path / "log.policy").write_text(
        f"log {log_signer.verifier}\nwitness W1 {vkey} http://127.0.0.1:{witness_port}\nquorum W1\n"
    )
    chainproof = str(Path(sys.executable).parent / "chainproof")
    witness = subprocess.Popen(
        [chainproof, "witness", "serve", "--key", str(witness_key), "--policy", str(tmp_path / "witness.policy"),
         "--state", str(tmp_path / "witness-state"), "--port", str(witness_port)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    # up before the log's first checkpoint (one asked while it starts is asked again later)
    until_listening(f"http://127.0.0.1:{witness_port}/")
    server = start_server(
        tmp_path / "server", key_file=tmp_path / "log.pem", policy_file=tmp_path / "log.policy",
        checkpoint_interval_s=0.2,
    )  # fmt: skip
    try:
        world = make_world(server.store)
        world.store.append(world.journey("WIT", "1"))
        size = server.store.size()
        note = ""
        for _ in range(200):  # the issuer's cadence: a checkpoint of this size, cosigned
            note = httpx.get(f"{server.url}/v1/log/checkpoint").text
            if f"\n{size}\n" in note and "witness.example/w1" in note:
                break
            time.sleep(0.05)
        assert "witness.example/w1" in note, note
        assert httpx.get(f"{server.url}/tlog/checkpoint").text == note
        good = runner.invoke(cli_app, ["verify", "--server", server.url, "--policy", str(tmp_path / "log.policy"),
                                       "--format", "json"])  # fmt: skip
        assert good.exit_code == 0, good.output
        witnessed = json.loads(good.output)["witnesses"]
        assert witnessed["quorum"] is True
        assert abs(witnessed["cosigned_by"]["W1"] - time.time()) < 60
        other = Cosigner("witness.example/w2", generate_private_key()).verifier
        (tmp_path / "strict.policy").write_text(
            f"log {log_signer.verifier}\nwitness W1 {vkey}\nwitness W2 {other}\ngroup BOTH all W1 W2\nquorum BOTH\n"
        )
        strict = runner.invoke(cli_app, ["verify", "--server", server.url, "--policy", str(tmp_path / "strict.policy"),
                                         "--state", str(tmp_path / "auditor2")])  # fmt: skip
        assert strict.exit_code == 1, strict.output
        assert "cosigned by W1: not the policy's quorum" in strict.output
        # a monitor and a certificate holder apply the same policy
        for policy, code in (("log.policy", 0), ("strict.policy", 1)):
            arguments = ["monitor", "--server", server.url, "--once", "--policy", str(tmp_path / policy)]
            watched = runner.invoke(cli_app, [*arguments, "--state", str(tmp_path / f"m-{policy}")])
            assert watched.exit_code == code, watched.output
        certificate = tmp_path / "certificate.json"
        certificate.write_bytes(httpx.get(f"{server.url}/v1/batches/WIT/1/certificate.json").content)
        assert "witness.example/w1" in json.loads(certificate.read_bytes())["checkpoint"]  # carried with it
        held = runner.invoke(cli_app, ["certificate", "verify", str(certificate), "--policy",
                                       str(tmp_path / "log.policy"), "--format", "json"])  # fmt: skip
        assert held.exit_code == 0, held.output
        assert json.loads(held.output)["witnesses"]["quorum"] is True
        unmet = runner.invoke(cli_app, ["certificate", "verify", str(certificate), "--policy",
                                        str(tmp_path / "strict.policy")])  # fmt: skip
        assert unmet.exit_code == 1, unmet.output
    finally:
        server.stop()
        witness.terminate()
        witness.wait(timeout=10)


def test_the_browser_checks_cosignatures_as_the_log_does(tmp_path: Path) -> None:
    """verify.js's verifyCosignatures against cosignatures made here: a valid one counts, with its time; one whose
    witness is not listed, or whose bytes were changed, does not."""
    import shutil
    import subprocess

    import pytest

    from ledger.hashing import b64encode as b64

    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed: the JS verifier tests skip")
    body = "example.com/log\n7\n" + b64(bytes(range(32))) + "\n"
    good, other, broken = (Cosigner(f"w{n}.example", generate_private_key()) for n in range(3))
    broken_line = broken.cosign(body, 1_700_000_300)
    broken_line = broken_line[:-6] + ("A" if broken_line[-6] != "A" else "B") + broken_line[-5:]
    note = body + "\n" + good.cosign(body, 1_700_000_000) + other.cosign(body, 1_700_000_100) + broken_line
    witnesses = [{"name": "GOOD", "vkey": str(good.verifier)}, {"name": "BROKEN", "vkey": str(broken.verifier)}]
    script = (
        f"import {{verifyCosignatures}} from '{Path(__file__).parent.parent / 'api/static/verify.js'}';"
        f"verifyCosignatures({json.dumps(note)}, {json.dumps(witnesses)}).then(r => console.log(JSON.stringify(r)));"
    )
    done = subprocess.run([node, "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [{"name": "GOOD", "timestamp": 1_700_000_000}]


def test_the_product_page_shows_its_witnesses_and_warns_when_they_are_old(tmp_path: Path, browser) -> None:
    """In Chromium: a witnessed log's product page says how many witnesses vouch for it and how recently; when the
    newest cosignature is older than the bound, it warns that a recent recall could be missing."""
    from tests.servers import start_server

    up = Cosigner("witness.example/up", generate_private_key())
    states = {}
    server = None
    try:
        from ledger.logkey import load_or_create_log_signer
        from tests.servers import LOG

        signer = load_or_create_log_signer(tmp_path / "log.pem", LOG)
        policy = tmp_path / "log.policy"
        policy.write_text(f"log {signer.verifier}\nwitness UP {up.verifier} http://127.0.0.1:9\nquorum UP\n")
        for name, warn in (("fresh", 3600.0), ("stale", 0.0)):
            server = start_server(tmp_path / name, key_file=tmp_path / "log.pem", policy_file=policy,
                                  checkpoint_interval_s=3600.0, witness_warn_s=warn)  # fmt: skip
            world = make_world(server.store)
            world.store.append(world.journey("PAGE", "1"))
            note = server.store.issue_checkpoint()
            size = Checkpoint.parse_body(parse_note(note).text).size
            line = up.cosign(parse_note(note).text, int(__import__("time").time()) - 120)
            server.store.add_cosignatures(size, [(str(up.verifier), 0, line)])
            page = browser.new_page()
            page.goto(f"{server.url}/p/PAGE/1")
            page.wait_for_selector("#witness-check:not([data-state=waiting])", timeout=15000)
            states[name] = (page.get_attribute("#witness-check", "data-state"), page.inner_text("#witness-check"))
            page.close()
            server.stop()
            server = None
    finally:
        if server is not None:
            server.stop()
    assert states["fresh"][0] == "ok", states
    assert "1 of 1 independent witnesses vouch" in states["fresh"][1]
    assert "the latest 2 minutes ago" in states["fresh"][1]
    assert states["stale"][0] == "stale", states
    assert "a recall made since could be missing" in states["stale"][1]


def test_a_witness_that_was_down_is_asked_again_after_a_pause(world: World, tmp_path: Path) -> None:
    clock = Clock()
    witnessing, _up, calls = _setup(world, tmp_path, clock)
    witnessing.tick()
    calls.clear()
    clock.now += 5
    assert witnessing.tick() is None  # nothing grew, and the witness that was down is not asked at every tick
    assert calls == []
    clock.now += 30
    assert witnessing.tick() == world.store.size()  # after the pause it is asked again, the other is not
    assert calls == ["https://down.example/add-checkpoint"]


def test_three_witnesses_refuse_a_forked_log_and_a_quorum_of_two_rejects_it(tmp_path: Path) -> None:
    """Three `witness serve` processes witness a log. Its database is restored from a backup and different entries
    are appended (a fork: the same key, another history). Every witness that saw the original refuses the fork's
    checkpoint (a consistency proof from the size it holds cannot verify), so the fork serves its checkpoint with
    no cosignature, and a verifier whose policy needs 2 of the 3 rejects it, as it accepted the original."""
    import shutil
    import sqlite3
    import subprocess
    import sys
    import time

    import httpx
    from typer.testing import CliRunner

    from cli.main import app as cli_app
    from ledger.hashing import b64encode
    from ledger.logkey import load_or_create_log_signer
    from tests.servers import LOG, free_port, start_server, until_listening

    runner = CliRunner()
    log_signer = load_or_create_log_signer(tmp_path / "log.pem", LOG)
    (tmp_path / "witness.policy").write_text(f"log {log_signer.verifier}\nquorum none\n")
    chainproof = str(Path(sys.executable).parent / "chainproof")
    witnesses, lines, processes = [], [], []
    for n in range(3):
        made = runner.invoke(cli_app, ["witness", "keygen", "--name", f"witness.example/f{n}",
                                       "--out", str(tmp_path / f"w{n}.pem")])  # fmt: skip
        assert made.exit_code == 0, made.output
        port = free_port()
        witnesses.append(f"http://127.0.0.1:{port}")
        lines.append(f"witness F{n} {made.output.strip()} http://127.0.0.1:{port}\n")
        processes.append(subprocess.Popen(
            [chainproof, "witness", "serve", "--key", str(tmp_path / f"w{n}.pem"), "--port", str(port),
             "--policy", str(tmp_path / "witness.policy"), "--state", str(tmp_path / f"state-{n}")],
            stdout=subprocess.DEVNULL,
        ))  # fmt: skip
    policy = f"log {log_signer.verifier}\n" + "".join(lines) + "group TWO 2 F0 F1 F2\nquorum TWO\n"
    (tmp_path / "log.policy").write_text(policy)

    def cosigned_by(url: str, size: int) -> int:
        note = httpx.get(f"{url}/v1/log/checkpoint").text
        return sum(f"— witness.example/f{n} " in note for n in range(3)) if f"\n{size}\n" in note else -1

    def audit(url: str, state: str) -> tuple[int, str]:
        said = runner.invoke(cli_app, ["verify", "--server", url, "--policy", str(tmp_path / "log.policy"),
                                       "--state", str(tmp_path / state)])  # fmt: skip
        return said.exit_code, said.output

    try:
        for url in witnesses:
            until_listening(f"{url}/")
        original = start_server(tmp_path / "original", key_file=tmp_path / "log.pem",
                                policy_file=tmp_path / "log.policy", checkpoint_interval_s=0.05)  # fmt: skip
        try:
            world = make_world(original.store)
            world.store.append(world.journey("ORIG", "1"))
            backup = tmp_path / "fork"
            backup.mkdir()
            with sqlite3.connect(tmp_path / "original" / "chainproof.db") as live, \
                    sqlite3.connect(backup / "chainproof.db") as copy:  # fmt: skip
                live.backup(copy)
            world.store.append(world.journey("ORIG", "2"))
            seen = original.store.size()
            deadline = time.monotonic() + 30
            while cosigned_by(original.url, seen) < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert cosigned_by(original.url, seen) == 3  # every witness saw the original at its size
            assert audit(original.url, "auditor-original")[0] == 0
        finally:
            original.stop()

        shutil.copy(tmp_path / "log.pem", backup / "log-key.pem")
        fork = start_server(backup, key_file=tmp_path / "log.pem", policy_file=tmp_path / "log.policy",
                            checkpoint_interval_s=0.05)  # fmt: skip
        try:
            other = make_world(fork.store)
            for lot in ("1", "2", "3"):  # another history, longer than what the witnesses hold
                other.store.append(other.journey("FORK", lot))
            forked = fork.store.size()
            assert forked > seen
            deadline = time.monotonic() + 10
            while f"\n{forked}\n" not in httpx.get(f"{fork.url}/v1/log/checkpoint").text:
                assert time.monotonic() < deadline, "the fork's issuer issued no checkpoint"
                time.sleep(0.05)
            time.sleep(0.5)  # its issuer has asked every witness by now
            assert cosigned_by(fork.url, forked) == 0
            # each witness, asked directly from the size it holds with the fork's own proof, refuses it
            note = fork.store.checkpoint()
            proof = "".join(b64encode(h) + "\n" for h in fork.store.consistency_proof(seen, forked))
            for url in witnesses:
                answer = httpx.post(f"{url}/add-checkpoint", content=f"old {seen}\n{proof}\n{note}".encode())
                assert answer.status_code == 422, (url, answer.status_code, answer.text)
            code, said = audit(fork.url, "auditor-fresh")  # an auditor who never saw the original
            assert code == 1, said
            assert "not the policy's quorum" in said
        finally:
            fork.stop()
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)
