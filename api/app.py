"""The app factory. Nothing is built at import time: `create_app(settings)` makes the engine, runs migrations,
loads (or creates) the log key and wires the routes."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import problems, security
from api.asgi import HttpMiddleware
from api.deps import TokenCache, current_actor
from api.pages import routes as pages
from api.pages import sla as sla_pages
from api.problems import problem_response
from api.ratelimit import RateLimits
from api.routes import actors, batches, certificates, epcis, events, log, sla, tlog
from api.settings import Settings
from api.visibility import CheckpointWaiter
from ledger.cosignature import Policy, parse_policy
from ledger.errors import LedgerError
from ledger.storage import LedgerStore, create_db_engine, migrate
from ledger.storage.opening import open_log_store
from ledger.witnessing import LogWitnessing, run_issuer


class BodyLimit(HttpMiddleware):
    """Refuse request bodies over `limit` bytes with 413, whether or not Content-Length is sent."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        super().__init__(app)
        self.limit = limit

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        received = 0
        too_large = False

        async def limited_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    too_large = True
                    raise _TooLargeError
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _TooLargeError:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(413, f"request body is larger than {self.limit} bytes", "request-too-large")
        await response(scope, receive, send)


class _TooLargeError(Exception):
    pass


_API_MODULES = (events, batches, certificates, epcis, log, actors, sla, tlog)
API_DESCRIPTION = """A signed, hash-chained supply-chain ledger with an RFC 9162 Merkle log. Every error is an RFC 9457
problem (application/problem+json).

**Limits** (a request beyond one is refused with a 4xx problem naming it):
- request body: 4 MiB; a batch request: 1,000 events;
- JSON: UTF-8, no duplicate keys, arrays and objects nested at most 32 deep, integers within +/- 2^53 - 1 (I-JSON),
  number literals of at most 32 characters, no NaN or Infinity;
- a log entry (the statement with its signature and the server's envelope): at most 65,535 bytes;
- text fields: each its own maximum length (product 500, a measurement's text value 200, a unit 32, an actor id 64...:
  see the schemas of docs/adr/0001); no control characters (C0, DEL, C1; a recall's reason and a condition note may
  hold line feeds) and no bidirectional overrides or isolates (U+202A-U+202E, U+2066-U+2069);
- times: RFC 3339 with an offset, within the years 1970-9999 in UTC; `signed_at` within 14 days before and 5 minutes
  after the moment the server receives the statement (configurable);
- a signed statement is appended once: the same statement again is 409 `duplicate-statement` with the `index` it has;
- rate limits (defaults): 1,200 writes a minute per token, 20 refused authentications a minute per client address,
  300 product pages and QR codes a minute per client address; 429 with Retry-After, RateLimit-Policy and RateLimit.
"""


def _await_current_checkpoint(store: LedgerStore, stop: threading.Event, timeout_s: float = 5.0) -> None:
    """Until a checkpoint covers the log as this process found it (the issuer's first tick, moments away), so that
    the first reads find what was appended while no server ran, rather than a 503 or an older tree."""
    try:
        size = store.size()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not stop.is_set():
            checkpointed = store.checkpointed_size()
            if checkpointed is not None and checkpointed >= size:
                return
            stop.wait(0.01)
    except Exception:  # the database cannot be reached yet: readiness (/readyz) says so, not start-up
        return


def _issuer(store: LedgerStore, settings: Settings) -> LogWitnessing:
    """The checkpoint issuer, with the witnesses of the policy file if there is one (ledger/witnessing.py)."""
    if settings.policy_file is None:
        return LogWitnessing(store, Policy(), freshness_s=settings.witness_freshness_s)
    try:
        policy = parse_policy(settings.policy_file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SystemExit(f"chainproof: cannot read the policy file {settings.policy_file}: {exc.strerror}") from exc
    except LedgerError as exc:
        raise SystemExit(f"chainproof: {settings.policy_file}: {exc}") from exc
    return LogWitnessing(store, policy, freshness_s=settings.witness_freshness_s)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    engine = create_db_engine(settings.database_url)
    migrate(engine)
    store = open_log_store(
        engine, settings.key_file, settings.log_name, settings.public_url, signed_at_window=settings.signed_at_window
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # the SLA figures read every shipment once per process (seconds at 100k shipments): read them now, in the
        # background, so that the first report after a start finds them ready instead of waiting for them
        threading.Thread(target=_warm_up, args=(store,), name="chainproof-sla-warm-up", daemon=True).start()
        stop = threading.Event()
        # one process (among every worker) issues checkpoints and asks the witnesses; reads never sign one
        issuer = threading.Thread(
            target=run_issuer,
            args=(witnessing, settings.checkpoint_interval_s, stop, settings.data_dir / "checkpoint-issuer.lock", wake),
            name="chainproof-checkpoint-issuer",
            daemon=True,
        )
        issuer.start()
        await run_in_threadpool(_await_current_checkpoint, store, stop)
        yield
        stop.set()
        wake.set()
        # let a tick in progress finish (it may be asking a witness) before its connections go
        await run_in_threadpool(issuer.join, 5.0)
        engine.dispose()

    witnessing = _issuer(store, settings)

    app = FastAPI(
        title="Chainproof",
        version="0.1.0",
        description=API_DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served by api.security from packaged assets, under our CSP
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.store = store
    app.state.policy = witnessing.policy if settings.policy_file is not None else None
    wake = threading.Event()  # set by appends: the issuer, if it runs in this process, issues sooner
    app.state.checkpoints = CheckpointWaiter(store, settings.append_wait_s, wake)
    app.state.token_cache = TokenCache()
    problems.install(app)
    for module in _API_MODULES:
        app.include_router(module.router)
    app.include_router(pages.router)
    app.include_router(sla_pages.router)
    security.install_docs(app)
    app.mount("/static", StaticFiles(directory=Path(__file__).resolve().parent / "static"), name="static")

    @app.get("/healthz", tags=["health"], summary="The process is up")
    def healthz() -> dict[str, Any]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], summary="The database is reachable")
    def readyz() -> Any:
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # any failure to reach the database means not ready
            return problem_response(
                503,
                f"database unreachable: {exc.__class__.__name__}",
                "not-ready",
                headers={"Retry-After": str(problems.RETRY_AFTER_SECONDS)},
            )
        return {"status": "ready", "tree_size": store.size()}

    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(security.SecurityHeaders)
    if settings.rate_limits:
        app.add_middleware(RateLimits, settings=settings.rate_limit_settings)
    app.add_middleware(problems.CatchAll)  # added last: the outermost layer
    app.openapi = lambda: _openapi_with_problems(app)  # type: ignore[method-assign]
    return app


def _openapi_with_problems(app: FastAPI) -> dict[str, Any]:
    """FastAPI documents its default validation error; this API answers every error with a problem, so say so."""
    if app.openapi_schema is None:
        from fastapi.openapi.utils import get_openapi

        from api.schemas import Problem

        spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        _document_bearer_tokens(spec)
        _document_links_and_limits(spec)
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        schemas["Problem"] = Problem.model_json_schema()
        problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for operations in spec.get("paths", {}).values():
            for operation in operations.values():
                for code, response in operation.get("responses", {}).items():
                    if code.startswith(("4", "5")):
                        response["content"] = problem
                        response.setdefault("description", "RFC 9457 problem")
        app.openapi_schema = spec
    return app.openapi_schema


def _document_bearer_tokens(spec: dict[str, Any]) -> None:
    """`current_actor` reads the token from the Authorization header itself, so FastAPI does not know it for a
    security scheme: declare the scheme, and mark every operation whose route depends on it, so that readers and
    generated clients know to send it."""
    spec.setdefault("components", {})["securitySchemes"] = {
        "bearerToken": {
            "type": "http",
            "scheme": "bearer",
            "description": "An actor's API token (cpt_...): shown once when issued, stored only as a hash, revocable.",
        }
    }
    for module in _API_MODULES:
        for route in module.router.routes:
            if isinstance(route, APIRoute) and any(d.call is current_actor for d in route.dependant.dependencies):
                for method in route.methods or ():
                    operation = spec["paths"].get(route.path_format, {}).get(method.lower())
                    if operation is not None:  # None: a route kept out of the schema
                        operation["security"] = [{"bearerToken": []}]


_LINKS_FROM_EVENT = {
    "batch": ("get_batch_v1_batches__sku___lot__get", "the batch the event was appended to"),
    "certificate": ("certificate_json_v1_batches__sku___lot__certificate_json_get", "the batch's certificate"),
    "qrCode": ("batch_qr_svg_v1_batches__sku___lot__qr_svg_get", "the QR code of the batch's product page"),
    "productPage": ("product_page_p__sku___lot__get", "the batch's product page (for a batch without a GTIN)"),
}
_LINKS_FROM_ACTOR = {
    "actor": "get_actor_v1_actors__actor_id__get",
    "keys": "get_actor_keys_v1_actors__actor_id__keys_get",
    "addKey": "add_key_v1_actors__actor_id__keys_post",
    "issueToken": "issue_token_v1_actors__actor_id__tokens_post",
}
_RATE_LIMITED = "Too many requests: RFC 9457 problem, with Retry-After and the RateLimit-Policy / RateLimit fields"


def _document_links_and_limits(spec: dict[str, Any]) -> None:
    """OpenAPI links from what a write returns to where it can be read (clients, and stateful test tools, follow
    them), and the 429 every rate-limited operation may answer."""
    paths = spec.get("paths", {})
    batch = {"sku": "$response.body#/sku", "lot": "$response.body#/lot"}
    for path in ("/v1/events",):
        created = paths[path]["post"]["responses"]["201"]
        created["links"] = {
            name: {"operationId": operation, "parameters": batch, "description": description}
            for name, (operation, description) in _LINKS_FROM_EVENT.items()
        }
    actor_created = paths["/v1/actors"]["post"]["responses"]["201"]
    actor_created["links"] = {
        name: {"operationId": operation, "parameters": {"actor_id": "$response.body#/id"}}
        for name, operation in _LINKS_FROM_ACTOR.items()
    }
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, operations in paths.items():
        for method, operation in operations.items():
            limited = (method == "post" and path.startswith("/v1/")) or path.startswith(("/p/", "/01/"))
            limited = limited or path.endswith(("/qr.png", "/qr.svg")) or "security" in operation
            if limited:
                operation["responses"].setdefault("429", {"description": _RATE_LIMITED, "content": problem})


def app_from_env() -> FastAPI:
    """For `uvicorn --factory api.app:app_from_env` (what `chainproof serve` runs, in each worker)."""
    app = create_app(Settings.from_env())
    tune_garbage_collector()
    return app


def _warm_up(store: Any) -> None:
    """Read the SLA projection, then move it out of the collector's sight like start-up's objects (100k shipments
    are about a million objects that live as long as the process: a full collection scanning them took 0.2 s)."""
    store.sla_warm_up()
    gc.freeze()


def tune_garbage_collector() -> None:
    """For a serving process: freeze what start-up built and collect the young generation less often.

    A batch request allocates tens of thousands of short-lived objects (parsed JSON, models, rows), so with
    CPython's default threshold (a collection every 700 net allocations) the collector ran many times per request,
    and its older generations scan everything start-up built (the app, routes, schemas, SQLAlchemy's caches), which
    is never garbage. `gc.freeze` moves those objects out of the collector's sight; a higher threshold keeps
    collections to about one per request (measured: server CPU per batched event about 13% lower; switching the
    collector off gained nothing more). Memory cost: a few MB of young objects at most."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
