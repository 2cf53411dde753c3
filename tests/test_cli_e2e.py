"""The CLI against a real server on 127.0.0.1: recording every event type, auditing, and every way to fail."""

from __future__ import annotations

import gzip
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from cli.main import app
from ledger.errors import WrongLogKeyError
from ledger.logkey import load_or_create_log_signer
from tests.servers import Server, free_port, start_server, until_checkpointed

runner = CliRunner()


def cli(*args: str | Path, code: int = 0, env: dict[str, str] | None = None) -> str:
    result = runner.invoke(app, [str(a) for a in args], env=env)
    assert result.exit_code == code, f"exit {result.exit_code}, wanted {code}: {result.output}"
    return result.stdout if code == 0 else result.output


@dataclass
class Party:
    id: str
    token: str
    key: Path


def add_party(tmp: Path, db: str, name: str, role: str) -> Party:
    key = tmp / f"{name}.pem"
    cli("keygen", "--out", key)
    created = json.loads(
        cli(
            "actor", "add", "--name", name, "--role", role, "--public-key", f"{key}.pub", "--db", db,
            "--format", "json",
            env={"CHAINPROOF_DATA_DIR": str(Path(db.removeprefix("sqlite:///")).parent)},  # the server's log key
        )
    )  # fmt: skip
    return Party(created["id"], created["token"], key)


@dataclass
class Ledger:
    server: Server
    db: str
    tmp: Path
    merchant: Party
    inspector: Party
    carrier: Party
    second_carrier: Party
    base: int = 0  # the log's size once the parties are registered: where batch events start

    def at(self, offset: int) -> int:
        return self.base + offset

    def record(self, party: Party, *args: str | Path, code: int = 0) -> str:
        return cli("record", *args, "--server", self.server.url, "--token", party.token, "--key", party.key, code=code)


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    data = tmp_path / "server"
    server = start_server(data)
    db = f"sqlite:///{data / 'chainproof.db'}"
    parties = [
        add_party(tmp_path, db, n, r)
        for n, r in (
            ("merchant", "merchant"),
            ("inspector", "inspector"),
            ("carrier", "carrier"),
            ("carrier2", "carrier"),
        )
    ]
    yield Ledger(server, db, tmp_path, *parties, base=server.store.size())
    server.stop()


def record_journey(ledger: Ledger, lot: str = "L1") -> None:
    m, i, c, c2 = ledger.merchant, ledger.inspector, ledger.carrier, ledger.second_carrier
    doc = ledger.tmp / "certificate-of-origin.pdf"
    doc.write_bytes(b"%PDF-1.7 certificate")
    report = ledger.tmp / "report.pdf"
    report.write_bytes(b"%PDF-1.7 inspection report")
    batch = ("--sku", "COF-1", "--lot", lot)
    out = ledger.record(
        m,
        "origin",
        *batch,
        "--product",
        "Green coffee",
        "--country",
        "ET",
        "--quantity",
        "1200",
        "--unit",
        "kg",
        "--gtin",
        "4006381333931",
        "--document",
        doc,
        "--produced-at",
        "2026-11-01T06:00:00Z",
    )
    assert "product page: http://127.0.0.1" in out
    assert "/01/04006381333931/10/" in out
    ledger.record(i, "inspection", *batch, "--standard", "ISO 22000", "--result", "pass", "--report", report)
    out = ledger.record(
        m, "shipment", *batch, "--shipment", "SO-1", "--destination", "DE-HH", "--promised-by", "2026-12-20T00:00:00Z"
    )
    assert f"/01/04006381333931/10/{lot}?shipment=SO-1" in out  # the shipment's own view, with its SLA status
    ledger.record(
        m, "handoff", *batch, "--to", c.id, "--place", "Addis Ababa", "--shipment", "SO-1", "--temperature", "18.5"
    )
    ledger.record(c, "handoff", *batch, "--to", c2.id, "--place", "Djibouti port", "--shipment", "SO-1")
    ledger.record(c2, "delivery", *batch, "--shipment", "SO-1", "--place", "Hamburg")


def verify(ledger: Ledger, *extra: str | Path, code: int = 0) -> str:
    return cli("verify", "--server", ledger.server.url, *extra, code=code)


def test_keygen(tmp_path: Path) -> None:
    out = json.loads(cli("keygen", "--out", tmp_path / "k.pem", "--format", "json"))
    assert (tmp_path / "k.pem").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "k.pem.pub").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert len(out["key_id"]) == 16
    assert "refusing to overwrite" in cli("keygen", "--out", tmp_path / "k.pem", code=2)


def test_record_every_type_then_verify(ledger: Ledger) -> None:
    record_journey(ledger)
    ledger.record(
        ledger.merchant,
        "origin",
        "--sku",
        "COF-1",
        "--lot",
        "L2",
        "--product",
        "Green coffee",
        "--country",
        "ET",
        "--quantity",
        "10",
        "--unit",
        "kg",
    )
    answer = json.loads(
        ledger.record(
            ledger.merchant, "recall", "--sku", "COF-1", "--lot", "L2", "--reason", "mould found", "--format", "json"
        )
    )
    assert answer["index"] == ledger.at(7)
    out = verify(ledger)
    assert "verified: all holds" in out
    assert f"entries {ledger.at(8)}" in out
    summary = json.loads(verify(ledger, "--format", "json"))
    assert summary["ok"] is True
    assert summary["batches"] == 2
    assert "verified: all holds" in verify(ledger, "--batch", "COF-1/L1")
    event = ledger.server.store.batch_entries("COF-1", "L1")[1].leaf
    assert b"ISO 22000" in event
    assert b"report.pdf" in event  # the report's name and hash are recorded, never its bytes
    assert b"inspection report" not in event


def test_tampered_field_is_named(ledger: Ledger) -> None:
    record_journey(ledger)
    verify(ledger)  # the auditor has seen this log
    store = ledger.server.store
    handoff = ledger.at(3)
    leaf = store.entries(handoff, handoff + 1)[0].leaf.replace(b"Addis Ababa", b"Addis Abeba")
    with store.engine.begin() as conn:
        conn.execute(text("DROP TRIGGER entries_no_update"))
        conn.execute(text("UPDATE entries SET leaf = :leaf WHERE idx = :i"), {"leaf": leaf, "i": handoff})
    out = verify(ledger, code=1)
    assert f"index {handoff}: statement signature does not verify" in out
    assert "FAILED" in out
    out = verify(ledger, "--batch", "COF-1/L1", code=1)
    assert f"index {handoff}" in out


def test_deleted_entry_and_truncation_below_a_seen_checkpoint(ledger: Ledger) -> None:
    record_journey(ledger)
    verify(ledger)
    assert f"ok: log size {ledger.at(6)}" in cli("monitor", "--server", ledger.server.url, "--once")
    store = ledger.server.store
    with store.engine.begin() as conn:
        conn.execute(text("DROP TRIGGER entries_no_delete"))
        conn.execute(text("DROP TRIGGER checkpoints_no_delete"))
        conn.execute(text("DROP TRIGGER merkle_nodes_no_delete"))
        conn.execute(text("DELETE FROM entries WHERE idx >= :i"), {"i": ledger.at(4)})
        conn.execute(text("DELETE FROM merkle_nodes WHERE idx * (1 << level) >= :i"), {"i": ledger.at(4)})
        conn.execute(text("DELETE FROM checkpoints"))
    until_checkpointed(store)  # the server's issuer signs the truncated tree
    out = verify(ledger, code=1)
    assert "rollback" in out or "truncated" in out
    out = cli("monitor", "--server", ledger.server.url, "--once", code=1)
    assert "shrank" in out


def test_forged_checkpoint_and_swapped_key(ledger: Ledger) -> None:
    record_journey(ledger)
    verify(ledger)  # pins the log key
    # the same database served with another log key: refused at start, naming both keys (the auditor's side of
    # a log key that changes is tested in test_log_binding)
    load_or_create_log_signer(ledger.tmp / "impostor.pem", ledger.server.store.origin)
    with pytest.raises(WrongLogKeyError, match="refusing to sign"):
        start_server(ledger.server.settings.data_dir, key_file=ledger.tmp / "impostor.pem")
    store = ledger.server.store
    from ledger.signing import generate_private_key, public_key_bytes

    with store.engine.begin() as conn:
        conn.execute(text("DROP TRIGGER actor_keys_no_update"))
        conn.execute(
            text("UPDATE actor_keys SET public_key = :k WHERE actor_id = :a"),
            {"k": public_key_bytes(generate_private_key()), "a": ledger.inspector.id},
        )
    # who may sign comes from the log's registrations: a key row swapped in the table changes nothing
    assert "verified: all holds" in verify(ledger)


def test_bundle_round_trip_and_tampered_bundle(ledger: Ledger) -> None:
    record_journey(ledger)
    bundle = ledger.tmp / "ledger.cpb"
    assert f"wrote {ledger.at(6)} entries" in cli("export", "--server", ledger.server.url, "--out", bundle)
    ledger.server.stop()  # offline from here on
    assert "verified: all holds" in cli("verify", "--bundle", bundle)
    lines = gzip.decompress(bundle.read_bytes()).decode().splitlines()
    handoff = ledger.at(3)
    entry = json.loads(lines[1 + handoff])  # line 0 is the header: this is the first handoff
    import base64

    original = base64.b64decode(entry["leaf"])
    leaf = original.replace(b"Addis Ababa", b"Addis Abeba")
    assert leaf != original
    lines[1 + handoff] = json.dumps({"index": entry["index"], "leaf": base64.b64encode(leaf).decode()})
    tampered = ledger.tmp / "tampered.cpb"
    tampered.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    out = cli("verify", "--bundle", tampered, code=1)
    assert f"index {handoff}" in out
    assert "chainproof:" in cli("verify", "--bundle", ledger.tmp / "missing.cpb", code=2)
    (ledger.tmp / "junk.cpb").write_bytes(b"not a bundle")
    assert "not a readable bundle" in cli("verify", "--bundle", ledger.tmp / "junk.cpb", code=2)


def test_usage_and_connection_errors_exit_2(ledger: Ledger, tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    out = cli("verify", "--server", dead, code=2)
    assert out.startswith("chainproof: cannot reach")
    assert out.count("\n") == 1
    out = ledger.record(ledger.merchant, "recall", "--sku", "A", "--lot", "1", "--reason", "x", code=2)
    assert "refused (409)" in out
    out = cli(
        "record",
        "recall",
        "--sku",
        "A",
        "--lot",
        "1",
        "--reason",
        "x",
        "--server",
        ledger.server.url,
        "--token",
        "cpt_wrong",
        "--key",
        ledger.merchant.key,
        code=2,
    )
    assert "401" in out
    assert "--token" in out
    out = cli(
        "record",
        "recall",
        "--sku",
        "A",
        "--lot",
        "1",
        "--reason",
        "x",
        "--server",
        ledger.server.url,
        "--token",
        ledger.merchant.token,
        "--key",
        tmp_path / "nope.pem",
        code=2,
    )
    assert "key file" in out
    assert "not found" in out
    out = ledger.record(ledger.merchant, "origin", "--sku", "A", "--lot", "1", code=2)
    assert "--product" in out
    assert "--server" in cli("verify", "--server", ledger.server.url, "--bundle", "x", code=2)


def test_record_from_file_is_resumable(ledger: Ledger) -> None:
    events = ledger.tmp / "events.jsonl"
    lines = []
    for n in range(25):
        lines.append(
            {
                "type": "origin",
                "sku": "BULK",
                "lot": f"L{n}",
                "data": {
                    "product": "Tea",
                    "country": "IN",
                    "produced_at": "2026-11-01T00:00:00Z",
                    "quantity": 5,
                    "unit": "kg",
                },
            }
        )
        lines.append(
            {
                "type": "shipment",
                "sku": "BULK",
                "lot": f"L{n}",
                "data": {
                    "shipment_id": "S1",
                    "destination": "FR",
                    "placed_at": "2026-11-02T00:00:00Z",
                    "promised_by": "2026-11-09T00:00:00Z",
                },
            }
        )
    events.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    args = ("--from-file", events, "--batch-size", "20")
    summary = json.loads(ledger.record(ledger.merchant, *args, "--format", "json"))
    assert summary["recorded"] == 50
    assert ledger.server.store.size() == ledger.at(50)
    # a crash after the last request was sent but before it was noted: the rerun resends the same bytes
    journal = Path(summary["journal"])
    (journal / "chunk-000002.done").unlink()
    summary = json.loads(ledger.record(ledger.merchant, *args, "--format", "json"))
    assert summary == {**summary, "recorded": 10, "already_recorded": 40}
    assert ledger.server.store.size() == ledger.at(50)  # replayed, not appended again
    summary = json.loads(ledger.record(ledger.merchant, *args, "--format", "json"))
    assert summary["already_recorded"] == 50
    assert ledger.server.store.size() == ledger.at(50)
    # the journal moved away (or lost): the events are signed anew, at another time, so the server would see new
    # statements; the client recognises them by content and sends none of them again
    shutil.move(journal, ledger.tmp / "old-journal")
    summary = json.loads(ledger.record(ledger.merchant, *args, "--format", "json"))
    assert (summary["recorded"], summary["already_in_log"]) == (0, 50)
    assert ledger.server.store.size() == ledger.at(50)
    # a file that repeats a line and adds one: the repeat is said once, the new line recorded
    lines += [lines[-1], {**lines[-1], "data": {**lines[-1]["data"], "shipment_id": "S2"}}]
    events.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    shutil.rmtree(ledger.tmp / "events.jsonl.chainproof")
    summary = json.loads(ledger.record(ledger.merchant, *args, "--format", "json"))
    assert (summary["recorded"], summary["already_in_log"]) == (1, 51)
    assert ledger.server.store.size() == ledger.at(51)
    bad = ledger.tmp / "bad.jsonl"
    bad.write_text('{"type": "teleport", "sku": "A", "lot": "1", "data": {}}\n')
    assert "bad.jsonl:1" in ledger.record(ledger.merchant, "--from-file", bad, code=2)


def test_qr_for_print(ledger: Ledger) -> None:
    import shutil
    import subprocess

    record_journey(ledger)
    out = json.loads(
        cli(
            "qr",
            "--sku",
            "COF-1",
            "--lot",
            "L1",
            "--out",
            ledger.tmp / "label.png",
            "--server",
            ledger.server.url,
            "--format",
            "json",
        )
    )
    from ledger.hashing import leaf_hash
    from ledger.label import label_fragment

    store = ledger.server.store
    origin = store.batch_range("COF-1", "L1", first=1)[0]
    fragment = label_fragment(str(store.signer.verifier), leaf_hash(origin.leaf))
    assert out["url"] == f"{ledger.server.url}/01/04006381333931/10/L1{fragment}"
    assert (
        b"<svg" in (ledger.tmp / "label.svg").read_bytes()
        if cli("qr", "--sku", "COF-1", "--lot", "L1", "--out", ledger.tmp / "label.svg", "--server", ledger.server.url)
        else False
    )
    assert "must end in" in cli("qr", "--sku", "COF-1", "--lot", "L1", "--out", ledger.tmp / "x.gif", code=2)
    assert "404" in cli(
        "qr", "--sku", "NO", "--lot", "PE", "--out", ledger.tmp / "y.png", "--server", ledger.server.url, code=2
    )
    # a server whose key is not the pinned one: no label is printed
    from ledger.note import NoteSigner
    from ledger.signing import generate_private_key

    other = str(NoteSigner(store.signer.name, generate_private_key()).verifier)
    refused = cli(
        "qr", "--sku", "COF-1", "--lot", "L1", "--out", ledger.tmp / "z.png", "--server", ledger.server.url,
        "--log-key", other, code=2,
    )  # fmt: skip
    assert "the log publishes key" in refused
    assert not (ledger.tmp / "z.png").exists()
    if shutil.which("zbarimg") is None:
        pytest.skip("zbarimg (Debian zbar-tools) is not installed")
    decoded = subprocess.run(
        ["zbarimg", "--quiet", "--raw", str(ledger.tmp / "label.png")], capture_output=True, text=True, check=True
    )
    assert decoded.stdout.strip() == out["url"]


def test_damaged_leaf_is_reported_not_a_crash(ledger: Ledger) -> None:
    """A leaf that is not even JSON any more: the server still serves it, and the auditor names its index."""
    record_journey(ledger)
    store = ledger.server.store
    with store.engine.begin() as conn:
        conn.execute(text("DROP TRIGGER entries_no_update"))
        conn.execute(
            text("UPDATE entries SET leaf = :leaf WHERE idx = :i"), {"leaf": b"\x00 not json", "i": ledger.at(2)}
        )
    out = verify(ledger, code=1)
    assert f"index {ledger.at(2)}: leaf cannot be read" in out
    out = verify(ledger, "--batch", "COF-1/L1", code=1)
    assert f"index {ledger.at(2)}" in out


def _tea(lot: str, **data: object) -> dict:
    base = {"product": "Tea", "country": "IN", "produced_at": "2026-11-01T00:00:00Z", "quantity": 5, "unit": "kg"}
    return {"type": "origin", "sku": "TEA", "lot": lot, "data": base | data}


def test_an_import_is_checked_whole_names_lines_and_resumes_after_an_edit(ledger: Ledger) -> None:
    """Found from outside: chunks were sent before later lines were checked, errors named "event 99" of a chunk,
    and an edited file was refused by its journal."""
    events = ledger.tmp / "tea.jsonl"
    lines = [_tea(str(n)) for n in range(6)]
    lines[4] = _tea("4", country="XX")  # a mistake on line 5
    events.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    args = ("--from-file", events, "--batch-size", "2")
    out = ledger.record(ledger.merchant, *args, code=2)
    assert "tea.jsonl:5: statement.data.country" in out
    assert "nothing was sent" in out
    assert ledger.server.store.size() == ledger.at(0)  # not even the good chunks before it
    # fixed, and a dry run says what would happen without sending or writing anything
    lines[4] = _tea("4")
    events.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    summary = json.loads(ledger.record(ledger.merchant, *args, "--dry-run", "--format", "json"))
    assert (summary["would_record"], summary["already_in_log"]) == (6, 0)
    assert ledger.server.store.size() == ledger.at(0)
    summary = json.loads(ledger.record(ledger.merchant, *args, "--format", "json"))
    assert summary["recorded"] == 6
    # edited after the run: two lines added; the journal of the old version is set aside, nothing is duplicated
    lines += [_tea("6"), {"type": "shipment", "sku": "TEA", "lot": "NO-ORIGIN", "data": {
        "shipment_id": "S1", "destination": "FR", "placed_at": "2026-11-02T00:00:00Z",
        "promised_by": "2026-11-09T00:00:00Z"}}]  # fmt: skip
    events.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    summary = json.loads(ledger.record(ledger.merchant, *args, "--dry-run", "--format", "json"))
    assert (summary["would_record"], summary["already_in_log"]) == (2, 6)
    out = ledger.record(ledger.merchant, *args, code=2)
    # the server refuses line 8 (a batch without an origin): the error names the file's line
    assert "tea.jsonl:8: server refused (409): batch TEA/NO-ORIGIN has no origin yet" in out
    assert ledger.server.store.size() == ledger.at(6)  # the request holding lines 7 and 8 is refused whole
    assert list(ledger.tmp.glob("tea.jsonl.chainproof.*"))  # the old version's journal, kept aside


def test_tokens_from_a_file_or_the_environment_and_a_warning_for_the_command_line(ledger: Ledger) -> None:
    """A token typed on the command line is visible to every user of the machine (ps): it still works, with a
    warning; --token-file and CHAINPROOF_TOKEN are the quiet ways."""
    m = ledger.merchant
    origin = ("origin", "--sku", "TOK", "--product", "Tea", "--country", "IN", "--quantity", "5", "--unit", "kg")
    token_file = ledger.tmp / "merchant.token"
    token_file.write_text(m.token + "\n")
    base = ("--server", ledger.server.url, "--key", str(m.key))
    quiet = runner.invoke(app, ["record", *origin, "--lot", "1", *base, "--token-file", str(token_file)])
    assert quiet.exit_code == 0, quiet.output
    assert "warning" not in quiet.stderr
    from_env = runner.invoke(app, ["record", *origin, "--lot", "2", *base], env={"CHAINPROOF_TOKEN": m.token})
    assert from_env.exit_code == 0, from_env.output
    assert "warning" not in from_env.stderr
    typed = runner.invoke(app, ["record", *origin, "--lot", "3", *base, "--token", m.token])
    assert typed.exit_code == 0, typed.output
    assert "visible to other users" in typed.stderr
    both = runner.invoke(
        app, ["record", *origin, "--lot", "4", *base, "--token", m.token, "--token-file", str(token_file)]
    )
    assert both.exit_code == 2
    assert "not both" in both.stderr
    (ledger.tmp / "empty.token").write_text("")
    for path, words in ((ledger.tmp / "empty.token", "is empty"), (ledger.tmp / "none.token", "cannot read")):
        result = runner.invoke(app, ["record", *origin, "--lot", "5", *base, "--token-file", str(path)])
        assert result.exit_code == 2
        assert words in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_an_unknown_event_type_is_one_line_naming_the_choices(ledger: Ledger) -> None:
    result = runner.invoke(app, ["record", "orgin", "--sku", "A", "--lot", "1", "--server", ledger.server.url])
    assert result.exit_code == 2
    assert result.output.strip() == (
        "chainproof: unknown event type 'orgin': choose one of origin, inspection, shipment, handoff, delivery, "
        "recall, shipment_cancel"
    )


def test_the_demo_leaves_keys_and_tokens_a_newcomer_can_go_on_with(tmp_path: Path) -> None:
    """The demo prints, and leaves in its data directory, a key and a token per demo actor (mode 0600), and a
    command that goes on with a demo batch: run as printed, it records."""
    import shlex

    import httpx

    data = tmp_path / "server"
    server = start_server(data)
    try:
        env = {
            "CHAINPROOF_DATA_DIR": str(data),
            "CHAINPROOF_PUBLIC_URL": server.url,
            "CHAINPROOF_LOG_NAME": server.store.origin,
        }
        shown = runner.invoke(app, ["demo"], env=env)
        assert shown.exit_code == 0, shown.output
        keys = data / "demo-keys"
        tokens = sorted(keys.glob("*.token"))
        assert len(tokens) == 9
        assert all(p.stat().st_mode & 0o777 == 0o600 for p in [*tokens, *keys.glob("*.pem")])
        command = shlex.split(shown.stdout.strip().splitlines()[-1])
        assert command[:3] == ["chainproof", "record", "recall"]
        done = runner.invoke(app, command[1:])
        assert done.exit_code == 0, done.output
        page = httpx.get(f"{server.url}/01/05012345678900/10/K-0917")
        assert 'data-verdict="recalled"' in page.text
    finally:
        server.stop()


def test_an_admin_onboards_a_partner_remotely(tmp_path: Path) -> None:
    """From the first admin (bootstrapped on the server's machine) to a merchant recording against the remote
    server: actor add --server, token create, key add, key rotate, key revoke, actor list; the revoked key is
    refused. Every registration is signed by the one who asked (the admin, or the merchant for its own keys), not
    by the log key; a key added with --new-key carries its proof of possession."""
    data = tmp_path / "server"
    server = start_server(data)
    try:
        db = f"sqlite:///{data / 'chainproof.db'}"
        admin = add_party(tmp_path, db, "ops", "admin")
        admin_token = tmp_path / "admin.token"
        admin_token.write_text(admin.token)
        remote = ("--server", server.url, "--token-file", str(admin_token), "--key", str(admin.key))
        cli("keygen", "--out", tmp_path / "shop.pem")
        unsigned = cli("actor", "add", "--name", "Acme Tea", "--role", "merchant", "--public-key",
                       tmp_path / "shop.pem.pub", *remote[:4], code=2)  # fmt: skip
        assert "signed by you: give your private key with --key" in unsigned
        created = json.loads(
            cli("actor", "add", "--name", "Acme Tea", "--role", "merchant", "--new-key", tmp_path / "shop.pem",
                *remote, "--format", "json")
        )  # fmt: skip
        assert set(created) >= {"id", "token"}
        issued = json.loads(cli("token", "create", "--actor", created["id"], *remote[:4], "--format", "json"))
        shop_token = tmp_path / "shop.token"
        shop_token.write_text(issued["token"])
        as_shop = ("--server", server.url, "--token-file", str(shop_token), "--key", str(tmp_path / "shop.pem"))
        origin = ("origin", "--sku", "TEA", "--product", "Tea", "--country", "IN", "--quantity", "5", "--unit", "kg")
        cli("record", *origin, "--lot", "1", *as_shop)
        cli("keygen", "--out", tmp_path / "shop2.pem")
        added = json.loads(
            cli("key", "add", "--actor", created["id"], "--public-key", tmp_path / "shop2.pem.pub", *as_shop,
                "--format", "json")
        )  # fmt: skip
        cli("key", "revoke", created["key_id"], "--reason", "rotated", *as_shop)
        refused = cli("record", *origin, "--lot", "2", *as_shop, code=2)
        assert "revoked" in refused
        as_shop = (*as_shop[:4], "--key", str(tmp_path / "shop2.pem"))
        cli("record", *origin, "--lot", "3", *as_shop)
        # rotate: a new key and the old one's revocation in one request, signed by the old key
        cli("keygen", "--out", tmp_path / "shop3.pem")
        rotated = json.loads(
            cli("key", "rotate", "--actor", created["id"], "--new-key", tmp_path / "shop3.pem", "--revoke",
                added["key_id"], *as_shop, "--format", "json")
        )  # fmt: skip
        assert rotated["revoked"]["revoked_at"] is not None
        assert "revoked" in cli("record", *origin, "--lot", "5", *as_shop, code=2)
        as_shop = (*as_shop[:4], "--key", str(tmp_path / "shop3.pem"))
        cli("record", *origin, "--lot", "6", *as_shop)
        # who signed each registration: the admin for the actor and its first key, the merchant for its own keys
        registrations = httpx.get(f"{server.url}/v1/log/registrations").json()["registrations"]
        signers = [(r["statement"]["type"], r["statement"]["actor"]) for r in registrations
                   if r["statement"]["lot"] == created["id"]]  # fmt: skip
        assert signers == [
            ("actor", admin.id), ("key_add", admin.id), ("key_add", created["id"]), ("key_revoke", created["id"]),
            ("key_add", created["id"]), ("key_revoke", created["id"]),
        ]  # fmt: skip
        proofs = [r["statement"]["data"].get("possession") is not None for r in registrations
                  if r["statement"]["type"] == "key_add" and r["statement"]["lot"] == created["id"]]  # fmt: skip
        assert proofs == [True, False, True]  # --new-key, --public-key, --new-key
        listed = cli("actor", "list", "--server", server.url)
        assert f"{created['key_id']} (revoked" in listed
        assert added["key_id"] in listed
        # tokens by id: listed without themselves, revoked by id, and then refused
        spare = json.loads(cli("token", "create", "--actor", created["id"], *as_shop[:4], "--format", "json"))
        import hashlib

        assert spare["id"] == hashlib.sha256(spare["token"].encode()).hexdigest()[:16]
        tokens = json.loads(cli("token", "list", "--actor", created["id"], *as_shop[:4], "--format", "json"))
        assert spare["id"] in [t["id"] for t in tokens]
        assert all(spare["token"] not in json.dumps(t) for t in tokens)
        cli("token", "revoke", spare["id"], *remote[:4])
        spare_file = tmp_path / "spare.token"
        spare_file.write_text(spare["token"])
        refused = cli("record", *origin, "--lot", "4", "--key", tmp_path / "shop3.pem", "--server", server.url,
                      "--token-file", str(spare_file), code=2)  # fmt: skip
        assert "401" in refused
        assert "revoked" in cli("token", "list", "--actor", created["id"], *as_shop[:4])
        assert "404" in cli("token", "revoke", "0" * 16, *remote[:4], code=2)
        # a binary file is not a public key: one line, exit 2
        (tmp_path / "junk.pub").write_bytes(bytes(range(256)))
        junk = cli("actor", "add", "--name", "X", "--role", "merchant", "--public-key", tmp_path / "junk.pub", *remote,
                   code=2)  # fmt: skip
        assert junk.strip().endswith("holds binary data, where a PEM or base64 key is text")
        # a merchant cannot register actors, nor bind a key to another actor
        refused = cli("actor", "add", "--name", "Fake Lab", "--role", "inspector", "--public-key",
                      tmp_path / "shop2.pem.pub", *as_shop, code=2)  # fmt: skip
        assert "403" in refused
        assert "only admins may do this" in refused
        cli("keygen", "--out", tmp_path / "stranger.pem")
        refused = cli("key", "add", "--actor", admin.id, "--public-key", tmp_path / "stranger.pem.pub", *as_shop,
                      code=2)  # fmt: skip
        assert "only an admin (or the log key) may record key_add" in refused
    finally:
        server.stop()


def test_a_label_for_one_order(ledger: Ledger) -> None:
    """`qr --shipment`: the label opens the product page on that order's delivery status; an id the batch does
    not hold is refused before anything is printed."""
    import shutil
    import subprocess

    record_journey(ledger)
    label = ledger.tmp / "order.png"
    out = json.loads(
        cli("qr", "--sku", "COF-1", "--lot", "L1", "--shipment", "SO-1", "--out", label, "--server", ledger.server.url,
            "--format", "json")
    )  # fmt: skip
    store = ledger.server.store
    from ledger.hashing import leaf_hash
    from ledger.label import label_fragment

    origin = store.batch_range("COF-1", "L1", first=1)[0]
    fragment = label_fragment(str(store.signer.verifier), leaf_hash(origin.leaf))
    assert out["url"] == f"{ledger.server.url}/01/04006381333931/10/L1?shipment=SO-1{fragment}"
    missing = ledger.tmp / "missing.png"
    refused = cli(
        "qr", "--sku", "COF-1", "--lot", "L1", "--shipment", "SO-404", "--out", missing, "--server", ledger.server.url,
        code=2,
    )  # fmt: skip
    assert "has no shipment 'SO-404'" in refused
    assert not missing.exists()
    served = httpx.get(f"{ledger.server.url}/v1/batches/COF-1/L1/qr.png", params={"shipment": "SO-1"})
    assert served.headers["content-type"] == "image/png"
    assert (
        httpx.get(f"{ledger.server.url}/v1/batches/COF-1/L1/qr.png", params={"shipment": "SO-404"}).status_code == 404
    )
    page = httpx.get(out["url"].split("#")[0])
    assert 'id="sla"' in page.text  # the page opened on the order's status
    if shutil.which("zbarimg") is None:
        pytest.skip("zbarimg (Debian zbar-tools) is not installed")
    for path in (label, ledger.tmp / "served.png"):
        if path.name == "served.png":
            path.write_bytes(served.content)
        decoded = subprocess.run(["zbarimg", "--quiet", "--raw", str(path)], capture_output=True, text=True, check=True)
        assert decoded.stdout.strip() == out["url"]
