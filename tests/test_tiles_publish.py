"""The log published as C2SP tiles: `chainproof tiles publish` writes them incrementally, the API serves the same
bytes under /tlog/ with caching headers for a CDN, and `chainproof verify --tiles` audits the whole log from tiles
alone (a directory, the API, or nginx serving the published directory), catching a tile that lies."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from cli.main import app as cli_app
from ledger.storage.db import default_sqlite_url
from ledger.tiles import bundles_of, tiles_of
from tests.factory import World, make_world
from tests.servers import Server, start_server, until_checkpointed

runner = CliRunner()
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


@dataclass
class Site:
    server: Server
    world: World
    db: str
    out: Path
    key: str


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    server = start_server(tmp_path / "server")
    world = make_world(server.store)
    for n in range(50):  # past 256 entries: full and partial tiles, a level-1 tile
        world.store.append(world.journey("TEA", str(n)))
    server.store.issue_checkpoint()
    try:
        yield Site(server, world, default_sqlite_url(tmp_path / "server"), tmp_path / "published",
                   str(server.store.signer.verifier))  # fmt: skip
    finally:
        server.stop()


def _publish(site: Site) -> str:
    said = runner.invoke(cli_app, ["tiles", "publish", "--db", site.db, "--out", str(site.out)])
    assert said.exit_code == 0, said.output
    return said.output


def _verify(site: Site, where: str) -> tuple[int, str]:
    said = runner.invoke(cli_app, ["verify", "--tiles", where, "--log-key", site.key])
    return said.exit_code, said.output


def test_publish_is_incremental_and_the_api_serves_the_same_bytes(site: Site) -> None:
    size = site.server.store.size()
    assert size > 256
    every = [*tiles_of(size), *bundles_of(size)]
    said = _publish(site)
    assert f"published tree size {size} to {site.out}: {len(every)} tiles written, 0 already there" in said
    assert (site.out / "checkpoint").read_text() == site.server.store.issue_checkpoint()
    for tile in every:
        served = httpx.get(f"{site.server.url}/tlog/{tile.path}")
        assert served.status_code == 200, tile.path
        assert served.content == (site.out / tile.path).read_bytes(), tile.path
        assert served.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert served.headers["content-type"] == "application/octet-stream"
    checkpoint = httpx.get(f"{site.server.url}/tlog/checkpoint")
    assert checkpoint.headers["cache-control"] == "public, max-age=5"
    assert checkpoint.headers["content-type"] == "text/plain; charset=utf-8"
    # again: nothing new to write; after more entries and a checkpoint, only the tiles that changed
    assert f"0 tiles written, {len(every)} already there" in _publish(site)
    site.world.store.append(site.world.journey("TEA", "new"))
    site.server.store.issue_checkpoint()
    grown = site.server.store.size()
    new = {t.path for t in [*tiles_of(grown), *bundles_of(grown)]} - {t.path for t in every}
    assert f"published tree size {grown} to {site.out}: {len(new)} tiles written" in _publish(site)
    # the full tiles of the smaller tree are untouched, and its partial ones stay for clients of its checkpoint
    assert all((site.out / t.path).exists() for t in every)


def test_the_api_refuses_what_is_no_tile(site: Site) -> None:
    for path, status in (
        ("tile/0/1234", 400),
        ("tile/0/000.p/0", 400),
        ("tile/5/000", 404),
        ("tile/entries/x001/000", 404),
    ):
        answer = httpx.get(f"{site.server.url}/tlog/{path}")
        assert answer.status_code == status, path
        assert answer.headers["content-type"] == "application/problem+json"


def test_verify_audits_the_log_from_tiles_alone(site: Site) -> None:
    _publish(site)
    code, said = _verify(site, str(site.out))
    assert code == 0, said
    code, said = _verify(site, f"{site.server.url}/tlog")
    assert code == 0, said
    # the key verified before is remembered (--state); an auditor new to the log must give one: tiles publish none
    remembered = runner.invoke(cli_app, ["verify", "--tiles", str(site.out)])
    assert remembered.exit_code == 0, remembered.output
    fresh = site.out.parent / "new-auditor"
    refused = runner.invoke(cli_app, ["verify", "--tiles", str(site.out), "--state", str(fresh)])
    assert refused.exit_code == 2
    assert "carry no log key: give --log-key (the key of" in refused.output


def test_a_tile_that_lies_is_caught(site: Site) -> None:
    _publish(site)
    bundle = site.out / "tile" / "entries" / "000"
    data = bytearray(bundle.read_bytes())
    data[100] ^= 1
    bundle.write_bytes(bytes(data))
    code, said = _verify(site, str(site.out))
    assert code != 0
    assert "does not hash to its level-0 tile hash" in said
    _publish_fresh = site.out.with_name("fresh")
    site.out = _publish_fresh
    _publish(site)
    level1 = next(p for p in (site.out / "tile" / "1").rglob("*") if p.is_file())
    lie = bytearray(level1.read_bytes())
    lie[0] ^= 1
    level1.write_bytes(bytes(lie))
    code, said = _verify(site, str(site.out))
    assert code != 0
    assert "holds another hash at position 0 than the entries make" in said


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.skipif(not Path(NGINX).exists(), reason="nginx is not installed (Debian nginx-light; make test-deps)")
def test_nginx_serves_the_published_tiles_to_verify(site: Site, tmp_path: Path) -> None:
    """No database on the read path: a plain static web server serves the published directory."""
    _publish(site)
    port = _free_port()
    prefix = tmp_path / "nginx"
    (prefix / "logs").mkdir(parents=True)
    conf = prefix / "nginx.conf"
    # as root, nginx would hand the files to an unprivileged worker that cannot enter the test's private directory
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf.write_text(
        user + f"daemon off; worker_processes 1; error_log {prefix}/logs/error.log; pid {prefix}/nginx.pid;\n"
        "events { worker_connections 64; }\n"
        "http { access_log off; client_body_temp_path " + str(prefix) + "/tmp;\n"
        f"  server {{ listen 127.0.0.1:{port}; root {site.out};\n"
        "    location /tile/ { default_type application/octet-stream; "
        'add_header Cache-Control "public, max-age=31536000, immutable"; }\n'
        '    location = /checkpoint { default_type "text/plain; charset=utf-8"; '
        'add_header Cache-Control "max-age=5"; }\n'
        "  }\n}\n"
    )
    process = subprocess.Popen([NGINX, "-p", str(prefix), "-c", str(conf)])
    try:
        for _ in range(100):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/checkpoint").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        code, said = _verify(site, f"http://127.0.0.1:{port}")
        assert code == 0, said
        assert httpx.get(f"http://127.0.0.1:{port}/tile/0/000").headers["cache-control"].endswith("immutable")
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_tile_index_beyond_any_tree_is_a_400_not_a_500(site: Site) -> None:
    for path in ("tile/0/x999/x999/x999/x999/x999/x999/999", "tile/entries/" + "x999/" * 12 + "999"):
        answer = httpx.get(f"{site.server.url}/tlog/{path}")
        assert answer.status_code == 400, path
        assert "beyond any tree" in answer.json()["detail"]


def test_publish_refuses_an_entry_too_long_for_a_bundle_naming_it(site: Site) -> None:
    """Intake keeps entries under 65,536 bytes; one that got into the database some other way (here, edited in)
    is named, and nothing of the bundle is written."""
    from sqlalchemy import text

    store = site.server.store
    index = store.size() - 1
    with store.engine.begin() as conn:
        conn.execute(text("DROP TRIGGER IF EXISTS entries_no_update"))
        conn.execute(text("UPDATE entries SET leaf = :leaf WHERE idx = :i"), {"leaf": b"x" * 70_000, "i": index})
    said = runner.invoke(cli_app, ["tiles", "publish", "--db", site.db, "--out", str(site.out)])
    assert said.exit_code == 2, said.output
    assert f"entry {index} is 70,000 bytes: a tile bundle holds entries of at most 65,535" in said.output
    assert not (site.out / "checkpoint").exists()  # the checkpoint is written last: nothing claims the bundle


def _backup(source: Path, target_dir: Path) -> str:
    """A consistent copy of a live SQLite database (its backup API), as an operator's backup would be."""
    import sqlite3

    target_dir.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(source) as live, sqlite3.connect(target_dir / "chainproof.db") as copy:
        live.backup(copy)
    shutil.copy(source.parent / "log-key.pem", target_dir / "log-key.pem")
    return default_sqlite_url(target_dir)


def test_db_restore_refills_the_lost_tail_so_witnesses_see_no_fork(tmp_path: Path) -> None:
    from ledger.cosignature import Cosigner
    from ledger.note import Checkpoint, parse_note
    from ledger.signing import generate_private_key
    from ledger.storage import LedgerStore, create_db_engine
    from ledger.witness import Witness, WitnessState

    server = start_server(tmp_path / "server")
    try:
        world = make_world(server.store)
        world.store.append(world.journey("OLD", "1"))
        live = tmp_path / "server" / "chainproof.db"
        backup_url = _backup(live, tmp_path / "backup")  # the nightly backup: the tail below is lost with the disk
        fork_url = _backup(live, tmp_path / "fork")
        world.store.append(world.journey("LOST", "1", shipments=3))
        published = world.store.issue_checkpoint()
        size = Checkpoint.parse_body(parse_note(published).text).size
        out = tmp_path / "published"
        said = runner.invoke(cli_app, ["tiles", "publish", "--db", default_sqlite_url(tmp_path / "server"),
                                       "--out", str(out)])  # fmt: skip
        assert said.exit_code == 0, said.output
        # a witness cosigned the published checkpoint
        logs = {world.store.origin: [world.store.signer.verifier]}
        witness = Witness(Cosigner("w.example/1", generate_private_key()), logs, WitnessState(tmp_path / "witness"))
        assert witness.add_checkpoint(f"old 0\n\n{published}".encode()).status == 200
        origin, verifier = world.store.origin, world.store.signer.verifier
    finally:
        server.stop()

    restored = runner.invoke(cli_app, ["db", "restore", "--tiles", str(out), "--db", backup_url],
                             env={"CHAINPROOF_DATA_DIR": str(tmp_path / "backup")})  # fmt: skip
    assert restored.exit_code == 0, restored.output
    assert "restored" in restored.output
    assert f"the log continues the published history at tree size {size}" in restored.output
    audit = runner.invoke(cli_app, ["verify", "--db", backup_url, "--log-key", str(verifier)],
                          env={"CHAINPROOF_DATA_DIR": str(tmp_path / "backup")})  # fmt: skip
    assert audit.exit_code == 0, audit.output
    # the restored log goes on from the history the witness saw: its next checkpoint is cosigned, not a fork
    from ledger.logkey import load_or_create_log_signer

    engine = create_db_engine(backup_url)
    store = LedgerStore(engine, load_or_create_log_signer(tmp_path / "backup" / "log-key.pem", origin))
    assert store.root(size) == Checkpoint.parse_body(parse_note(published).text).root_hash
    assert len(store.batch_entries("LOST", "1")) == 14
    again = runner.invoke(cli_app, ["db", "restore", "--tiles", str(out), "--db", backup_url],
                          env={"CHAINPROOF_DATA_DIR": str(tmp_path / "backup")})  # fmt: skip
    assert "nothing to restore" in again.output
    later_world = make_world(store)
    later_world.store.append(later_world.journey("NEW", "1"))
    later = store.issue_checkpoint()
    grown = Checkpoint.parse_body(parse_note(later).text).size
    proof = "".join(b64 + "\n" for b64 in _b64(store.consistency_proof(size, grown)))
    assert witness.add_checkpoint(f"old {size}\n{proof}\n{later}".encode()).status == 200
    engine.dispose()
    # a database whose history differs from the published one is a fork: refused, nothing written
    fork_store = LedgerStore(create_db_engine(fork_url), load_or_create_log_signer(tmp_path / "fork" / "log-key.pem",
                                                                                   origin))  # fmt: skip
    make_world(fork_store).store.append(make_world(fork_store).journey("OTHER", "1"))
    before = fork_store.size()
    fork_store.engine.dispose()
    refused = runner.invoke(cli_app, ["db", "restore", "--tiles", str(out), "--db", fork_url],
                            env={"CHAINPROOF_DATA_DIR": str(tmp_path / "fork")})  # fmt: skip
    assert refused.exit_code == 2
    assert "a fork, not a lost tail; nothing was written" in refused.output
    check = LedgerStore(
        create_db_engine(fork_url), load_or_create_log_signer(tmp_path / "fork" / "log-key.pem", origin)
    )
    assert check.size() == before
    check.engine.dispose()


def _b64(hashes: list[bytes]) -> list[str]:
    from ledger.hashing import b64encode

    return [b64encode(h) for h in hashes]


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="Chromium is not installed (make test-deps)")
def test_product_pages_can_build_their_proofs_from_tiles(tmp_path: Path, browser) -> None:
    """With proofs from tiles, the page carries no inclusion proof: the browser builds them from the /tlog/ tiles
    every page shares, verifies, and fails when a tile lies."""
    import json as json_module

    server = start_server(tmp_path / "server", page_proofs_from_tiles=True)
    try:
        world = make_world(server.store)
        for n in range(30):  # past 256 entries: proofs from a level-1 tile and partial tiles
            world.store.append(world.journey("TILE", str(n)))
        until_checkpointed(server.store)
        html = httpx.get(f"{server.url}/p/TILE/29").text
        data = json_module.loads(html.split('id="ledger-data">', 1)[1].split("</script>", 1)[0])
        assert data["tiles"] == "/tlog"
        assert not any("proof" in item for item in data["entries"] + data["registrations"])
        assert any(item.get("needs_proof") for item in data["entries"])

        def check(lie: bool) -> tuple[str | None, list[str]]:
            page = browser.new_page()
            fetched: list[str] = []
            page.on("request", lambda r: fetched.append(r.url) if "/tlog/tile/" in r.url else None)
            if lie:

                def corrupt(route) -> None:
                    response = route.fetch()
                    body = bytearray(response.body())
                    body[5] ^= 1
                    route.fulfill(response=response, body=bytes(body))

                page.route("**/tlog/tile/**", corrupt)
            page.goto(f"{server.url}/p/TILE/29")
            page.wait_for_selector("#browser-check:not([data-state=checking])", timeout=15000)
            state = page.get_attribute("#browser-check", "data-state")
            page.close()
            return state, fetched

        state, fetched = check(lie=False)
        assert state == "ok"
        assert fetched
        assert all("/tlog/tile/" in url for url in fetched)
        state, _fetched = check(lie=True)
        assert state == "failed"
    finally:
        server.stop()
