"""`chainproof sla` against a real server, a database and an exported bundle, over the hand-computed scenario
(tests/sla_scenario.py): the same checkpoint and as_of give the same figures from all three; at-risk exits 1 when
some are; a scorecard fetched from the server verifies against the log, and a forged one fails naming why."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from ledger.canonical import canonical_json
from ledger.note import NoteSigner, sign_note
from ledger.scorecard import SCORECARD_HEADER, Scorecard
from ledger.signing import generate_private_key
from tests import sla_scenario
from tests.factory import World, make_world
from tests.servers import Server, start_server

runner = CliRunner()
AS_OF = sla_scenario.AS_OF


def cli(*args: str | Path, code: int = 0, env: dict[str, str] | None = None) -> str:
    result = runner.invoke(app, [str(a) for a in args], env=env)
    assert result.exit_code == code, f"exit {result.exit_code}, wanted {code}: {result.output}"
    return result.output


@dataclass
class Setup:
    server: Server
    world: World
    bundle: Path
    db: str
    tmp: Path

    def token_file(self, party: object) -> Path:
        path = self.tmp / f"token-{party.id}"  # type: ignore[attr-defined]
        path.write_text(self.world.store.issue_token(party.id) + "\n")  # type: ignore[attr-defined]
        return path


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp("sla-cli")
    server = start_server(tmp / "server")
    world = make_world(server.store)
    sla_scenario.build(world)
    server.store.issue_checkpoint()
    bundle = tmp / "ledger.cpb"
    cli("export", "--server", server.url, "--out", bundle)
    yield Setup(server, world, bundle, f"sqlite:///{tmp / 'server' / 'chainproof.db'}", tmp)
    server.stop()


def test_server_database_and_bundle_give_the_same_figures(setup: Setup) -> None:
    size = setup.server.store.size()
    common = ["--as-of", AS_OF, "--group-by", "merchant,carrier,lane,week", "--format", "json"]
    admin = setup.token_file(setup.world.admin)
    served = json.loads(
        cli("sla", "report", "--server", setup.server.url, "--token-file", admin, "--tree-size", str(size), *common)
    )
    offline = json.loads(cli("sla", "report", "--bundle", setup.bundle, *common))
    stored = json.loads(cli("sla", "report", "--db", setup.db, *common))
    assert served == offline == stored
    assert served["checkpoint"]["size"] == size
    assert served["total"]["on_time_rate"] == 0.6
    assert served["total"]["shipments"] == 9


def test_the_table_and_csv(setup: Setup) -> None:
    table = cli("sla", "report", "--bundle", setup.bundle, "--as-of", AS_OF, "--group-by", "merchant")
    assert f"SLA report as of {AS_OF}" in table
    total = next(line for line in table.splitlines() if line.startswith("total"))
    assert "60.0%" in total  # on time
    assert "25.0%" in total  # OTIF
    csv_text = cli("sla", "report", "--bundle", setup.bundle, "--as-of", AS_OF, "--format", "csv")
    header, total_row = csv_text.splitlines()[:2]
    assert header.startswith("by,key,shipments,delivered,on_time,late,overdue,in_transit,at_risk,cancelled,due,")
    # rates, OTIF unknown, lead times p50/p90/p95 (seconds), recorded late, as worked out by hand
    assert total_row.startswith("total,,9,4,3,1,1,2,2,1,5,0.6,0.25,0.5,0.6666666666666666,1,86400,172800,172800,2,")


def test_at_risk_exits_1_with_the_list_and_0_when_none(setup: Setup) -> None:
    admin = setup.token_file(setup.world.admin)
    out = cli("sla", "at-risk", "--server", setup.server.url, "--token-file", admin, "--as-of", AS_OF, code=1)
    lines = out.strip().splitlines()
    assert [line.split()[:2] for line in lines] == [["overdue", "S4"], ["at_risk", "S7"], ["at_risk", "S8"]]
    assert "no handoff yet" in lines[2]
    offline = cli("sla", "at-risk", "--bundle", setup.bundle, "--as-of", AS_OF, code=1)
    assert offline == out
    other = setup.world.other_merchant.id
    env = {"CHAINPROOF_TOKEN": setup.world.store.issue_token(setup.world.admin.id)}  # the token from the environment
    quiet = cli("sla", "at-risk", "--server", setup.server.url, "--merchant", other, "--as-of", AS_OF, env=env)
    assert quiet.strip() == "no shipment is at risk or overdue"


def test_a_merchant_scorecard_verifies_against_the_log(setup: Setup) -> None:
    merchant = setup.token_file(setup.world.merchant)
    card = setup.tmp / "scorecard.json"
    out = cli(
        "sla", "scorecard", "--server", setup.server.url, "--token-file", merchant, "--as-of", AS_OF, "--out", card
    )
    assert "on time 50.0%" in out  # the merchant's own: S1, S3 on time of S1-S4 due
    key = str(setup.server.store.signer.verifier)
    assert "holds" in cli("sla", "verify", card, "--bundle", setup.bundle, "--log-key", key)
    assert "holds" in cli("sla", "verify", card, "--server", setup.server.url, "--log-key", key)


def test_forged_scorecards_fail(setup: Setup) -> None:
    merchant = setup.token_file(setup.world.merchant)
    card_path = setup.tmp / "genuine.json"
    cli(
        "sla", "scorecard", "--server", setup.server.url, "--token-file", merchant, "--as-of", AS_OF, "--out", card_path
    )
    genuine = Scorecard.from_bytes(card_path.read_bytes())
    claims = genuine.claims
    claims["total"]["on_time_rate"] = 0.95  # one figure made better

    # signed by another key: the log key does not verify it
    impostor = NoteSigner(setup.server.store.origin, generate_private_key())
    forged = setup.tmp / "forged.json"
    text = SCORECARD_HEADER + "\n" + canonical_json(claims).decode() + "\n"
    forged.write_bytes(Scorecard(sign_note(text, impostor), genuine.checkpoint).to_bytes())
    key = str(setup.server.store.signer.verifier)
    out = cli("sla", "verify", forged, "--bundle", setup.bundle, "--log-key", key, code=1)
    assert "signature does not verify" in out

    # signed by the log key itself (a log that signs a false figure): the recomputation names the figure
    signed_false = setup.tmp / "signed-false.json"
    signed_false.write_bytes(Scorecard(sign_note(text, setup.server.store.signer), genuine.checkpoint).to_bytes())
    out = cli("sla", "verify", signed_false, "--bundle", setup.bundle, "--log-key", key, code=1)
    assert "FAIL total: on_time_rate is 0.95 in the scorecard; the log gives 0.5" in out

    # the genuine scorecard, checked with the wrong log key
    wrong = str(impostor.verifier)
    out = cli("sla", "verify", card_path, "--bundle", setup.bundle, "--log-key", wrong, code=1)
    assert "signature does not verify" in out


def test_bad_usage_is_one_line(setup: Setup) -> None:
    out = cli("sla", "report", "--bundle", setup.bundle, "--group-by", "colour", code=2)
    assert out.strip() == "chainproof: cannot group by 'colour': choose from merchant, carrier, lane, week"
    out = cli("sla", "report", "--bundle", setup.bundle, "--db", setup.db, code=2)
    assert "give one of --server, --db and --bundle" in out
    out = cli("sla", "report", "--bundle", setup.tmp / "missing.cpb", code=2)
    assert "not found" in out
    out = cli("sla", "report", "--server", setup.server.url, env={"CHAINPROOF_TOKEN": ""}, code=2)
    assert "no API token" in out


def test_a_bad_bound_is_named_by_its_flag_against_a_server_too(setup: Setup) -> None:
    """The server calls the bounds `from` and `to`; the user typed --since and --until, and is told so."""
    token = setup.token_file(setup.world.admin)
    for command in ("report", "scorecard"):
        extra = (
            ["--merchant", setup.world.merchant.id, "--out", str(setup.tmp / "s.json")]
            if command == "scorecard"
            else []
        )
        out = cli("sla", command, "--server", setup.server.url, "--token-file", token, "--since", "yesterday",
                  *extra, code=2)  # fmt: skip
        assert "--since" in out, out
        assert "from:" not in out
        assert len(out.strip().splitlines()) == 1
