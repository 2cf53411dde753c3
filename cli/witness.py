"""`chainproof witness`: run an independent witness of the logs a C2SP tlog-policy file lists (C2SP tlog-witness),
cosigning (C2SP tlog-cosignature v1) only checkpoints consistent with everything it cosigned before."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.errors import CliError
from cli.main import FormatOption, handled

if TYPE_CHECKING:
    from ledger.witness import Witness

witness_app: typer.Typer = typer.Typer(
    rich_markup_mode=None,
    help="An independent witness: cosigns a log's checkpoints only if consistent with what it saw before.",
    no_args_is_help=True,
)


@witness_app.command("keygen")
@handled
def witness_keygen(
    name: Annotated[str, typer.Option(help="the witness's name, a schema-less URL, e.g. witness.example/w1")],
    out: Annotated[Path, typer.Option("--out", help="private key file to write (mode 0600)")],
    output_format: FormatOption = "text",
) -> None:
    """Write a witness key (PEM, mode 0600) and print its verifier key (cosignature type 0x04), for policy files.

    \b
    Example: chainproof witness keygen --name witness.example/w1 --out w1.pem
    """
    import json

    from ledger.cosignature import Cosigner
    from ledger.errors import EncodingError
    from ledger.note import check_key_name
    from ledger.signing import generate_private_key, private_key_pem

    try:
        check_key_name(name)
    except EncodingError as exc:
        raise CliError(str(exc)) from exc
    if out.exists():
        raise CliError(f"{out} exists: a witness key is never overwritten (its state would cosign under a new key)")
    key = generate_private_key()
    try:
        handle = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(handle, "wb") as written:
            written.write(private_key_pem(key))
        (out.parent / (out.name + ".name")).write_text(name + "\n")
    except OSError as exc:
        raise CliError(f"cannot write {out}: {exc.strerror or exc}") from exc
    vkey = str(Cosigner(name, key).verifier)
    typer.echo(json.dumps({"name": name, "vkey": vkey, "key_file": str(out)}) if output_format == "json" else vkey)


def load_witness(key: Path, policy: Path, state: Path) -> Witness:
    from ledger.cosignature import Cosigner, parse_policy
    from ledger.errors import LedgerError
    from ledger.signing import load_private_key_pem
    from ledger.witness import Witness, WitnessState

    try:
        private = load_private_key_pem(key.read_bytes())
        name = (key.parent / (key.name + ".name")).read_text().strip()
        parsed = parse_policy(policy.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CliError(f"{exc.filename} not found") from exc
    except (LedgerError, UnicodeDecodeError) as exc:
        raise CliError(str(exc)) from exc
    if not parsed.logs:
        raise CliError(f"{policy} lists no log: a witness witnesses the logs its policy lists")
    logs: dict[str, list[Any]] = {}
    for log in parsed.logs:
        logs.setdefault(log.key.name, []).append(log.key)
    return Witness(Cosigner(name, private), logs, WitnessState(state))


def witness_asgi(witness: Witness) -> Any:
    """The witness's HTTP interface: POST /add-checkpoint (and GET / naming the witness)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, Response
    from starlette.routing import Route

    async def add_checkpoint(request: Request) -> Response:
        body = await request.body()
        answer = witness.add_checkpoint(body)
        # the type exactly as the spec writes it (a media_type here would gain "; charset=utf-8")
        return Response(answer.body, status_code=answer.status, headers={"Content-Type": answer.content_type})

    async def about(_request: Request) -> Response:
        return PlainTextResponse(f"{witness.cosigner.verifier}\n")

    return Starlette(routes=[Route("/add-checkpoint", add_checkpoint, methods=["POST"]), Route("/", about)])


@witness_app.command("serve")
@handled
def witness_serve(
    key: Annotated[Path, typer.Option("--key", help="the witness key (witness keygen)")],
    policy: Annotated[Path, typer.Option("--policy", help="a C2SP tlog-policy file: the logs to witness")],
    state: Annotated[Path, typer.Option("--state", help="where the latest cosigned checkpoints are kept")] = Path(
        "witness-state"
    ),
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8300,
) -> None:
    """Serve the C2SP tlog-witness protocol (POST /add-checkpoint) for the logs the policy lists, cosigning each
    checkpoint consistent with the last one it cosigned for that log; that one is kept durably in --state.

    \b
    Example: chainproof witness serve --key w1.pem --policy logs.policy --state /var/lib/witness --port 8300
    """
    import uvicorn

    witness = load_witness(key, policy, state)
    typer.echo(f"witness {witness.cosigner.verifier} on http://{host}:{port}/add-checkpoint")
    uvicorn.run(witness_asgi(witness), host=host, port=port, log_level="warning")
