"""RFC 9457 problem details for every error the API returns."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Message, Receive, Scope, Send

from api.asgi import HttpMiddleware
from ledger.errors import (
    ConflictError,
    DuplicateStatementError,
    EncodingError,
    IdempotencyKeyReusedError,
    LedgerError,
    NoCheckpointYetError,
    NotFoundError,
    ProofError,
    RuleError,
    SignatureError,
    ValidationError,
)
from ledger.events import validation_message

logger = logging.getLogger("chainproof.api")
PROBLEM_TYPE = "https://chainproof.dev/problems/"
_RULE_STATUS = {"forbidden": 403, "conflict": 409, "unauthorized": 401, "invalid": 422}
_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


class ProblemError(Exception):
    """Raise in a route to answer with a problem."""

    def __init__(self, status: int, detail: str, kind: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.kind = kind or _TITLES.get(status, "error").lower().replace(" ", "-")
        self.extra = extra


def problem_response(
    status: int,
    detail: str,
    kind: str,
    request: Request | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE + kind,
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if request is not None:
        body["instance"] = request.url.path
    body.update(extra)
    headers = dict(headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="chainproof"'
    return JSONResponse(body, status_code=status, media_type="application/problem+json", headers=headers)


def ledger_error_status(exc: LedgerError) -> tuple[int, str]:
    if isinstance(exc, RuleError):
        return _RULE_STATUS.get(exc.kind, 422), f"rule-{exc.kind}"
    if isinstance(exc, SignatureError):
        return 422, "bad-signature"
    if isinstance(exc, ValidationError | EncodingError):
        return 422, "invalid"
    if isinstance(exc, NotFoundError):
        return 404, "not-found"
    if isinstance(exc, IdempotencyKeyReusedError):
        return 422, "idempotency-key-reused"
    if isinstance(exc, DuplicateStatementError):
        return 409, "duplicate-statement"
    if isinstance(exc, ConflictError):
        return 409, "conflict"
    if isinstance(exc, ProofError):
        return 400, "bad-proof-request"
    if isinstance(exc, NoCheckpointYetError):
        return 503, "no-checkpoint-yet"
    return 500, "internal"


def install(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(exc.status, exc.detail, exc.kind, request, **exc.extra)

    @app.exception_handler(LedgerError)
    async def _ledger(request: Request, exc: LedgerError) -> JSONResponse:
        status, kind = ledger_error_status(exc)
        extra: dict[str, Any] = {"index": exc.index} if isinstance(exc, DuplicateStatementError) else {}
        headers = {"Retry-After": "1"} if isinstance(exc, NoCheckpointYetError) else None
        return problem_response(status, str(exc), kind, request, headers, **extra)

    outage = ThrottledWarning(logger, "database unreachable, answering 503")

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def _database_down(request: Request, exc: Exception) -> JSONResponse:
        outage.note(exc)
        return database_unavailable(request)

    try:  # psycopg's own errors, from the store's direct driver calls (not wrapped by SQLAlchemy)
        import psycopg

        app.add_exception_handler(psycopg.OperationalError, _database_down)
    except ImportError:  # pragma: no cover (psycopg is a dependency)
        pass

    @app.exception_handler(DataError)
    async def _data(request: Request, exc: DataError) -> JSONResponse:
        # What the schema lets through but the database cannot store or compare (a last line: inputs are checked
        # before they reach a query, so this names no field)
        logger.warning("database refused a value: %s", exc.orig)
        return problem_response(400, "the request holds a value the database cannot take", "unstorable", request)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in error["loc"]), "message": validation_message(error)}
            for error in exc.errors()[:20]
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5]) or "invalid request"
        return problem_response(422, detail, "invalid", request, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem_response(
            exc.status_code, str(exc.detail), _TITLES.get(exc.status_code, "error").lower().replace(" ", "-"), request
        )


RETRY_AFTER_SECONDS = 5


def database_unavailable(request: Request | None = None) -> JSONResponse:
    """503 for a database that cannot be reached: the client retries after a few seconds (the pool reconnects by
    itself when the database is back)."""
    return problem_response(
        503,
        "the ledger's database cannot be reached; nothing was written; try again in a few seconds",
        "unavailable",
        request,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


class ThrottledWarning:
    """A warning logged at most once a minute while its cause lasts (an outage), not once per request."""

    def __init__(self, log: logging.Logger, message: str) -> None:
        self._log = log
        self._message = message
        self._logged_at = -math.inf

    def note(self, exc: Exception) -> None:
        if time.monotonic() - self._logged_at > 60:
            self._logged_at = time.monotonic()
            self._log.warning("%s: %s", self._message, str(exc).splitlines()[0] if str(exc) else repr(exc))


class CatchAll(HttpMiddleware):
    """The outermost layer: an exception no handler took becomes a 500 problem, logged once with its traceback.

    Starlette's own last-resort handler re-raises after answering, so the server closes the connection and the
    client's next request on it fails; here the exception ends with its request."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            logger.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:  # too late to answer with a problem: let the server end the response
                raise
            response = problem_response(500, "the server failed to handle this request", "internal")
            await response(scope, receive, send)
