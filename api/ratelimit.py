"""Rate limits, counted with the `limits` library (fixed windows) in Redis or in each worker's memory.

Three policies, each a number of requests per window:
- `writes`: POST requests under /v1 per API token (the token's hash is the key, checked or not: a flood of made-up
  tokens is what `failed-auth` stops);
- `failed-auth`: requests whose credentials were refused (401) per client address; once spent, every request
  from that address that carries credentials is refused with 429 until the window ends, so tokens cannot be
  guessed at speed;
- `pages`: product pages and QR codes per client address (shoppers scan; scrapers are slowed down).

With CHAINPROOF_REDIS_URL set, every worker counts in the same Redis. Without it each worker counts in its own
memory with each limit divided by the number of workers: the kernel spreads connections over the workers, so N
workers together still allow about the configured rate, not N times it. If Redis cannot be reached, requests are
let through (and a warning logged once a minute): an outage of the counters must not become an outage of the
ledger.

Answers: 429 problem+json with Retry-After; every limited response carries the IETF RateLimit-Policy and
RateLimit fields (draft-ietf-httpapi-ratelimit-headers-08 and later), e.g. `RateLimit-Policy: "writes";q=1200;w=60`
and `RateLimit: "writes";r=1187;t=42`. The client address is the TCP peer, or what a trusted reverse proxy says
(uvicorn's --forwarded-allow-ips, `chainproof serve --forwarded-allow-ips`); a client's own X-Forwarded-For is
never believed.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.strategies import FixedWindowRateLimiter
from limits.storage import storage_from_string
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.asgi import HttpMiddleware, bearer_token
from api.problems import ThrottledWarning, problem_response

logger = logging.getLogger("chainproof.ratelimit")
_PAGE_PREFIXES = ("/p/", "/01/")
_QR_SUFFIXES = ("/qr.png", "/qr.svg")


@dataclass(frozen=True)
class RateLimitSettings:
    writes: str = "1200/minute"
    failed_auth: str = "20/minute"
    pages: str = "300/minute"
    redis_url: str | None = None
    workers: int = 1
    namespace: str = "chainproof"  # keeps installs that share a Redis apart


@dataclass(frozen=True)
class Policy:
    name: str
    item: RateLimitItem

    @classmethod
    def of(cls, name: str, text: str, divisor: int) -> Policy:
        try:
            item = parse(text)
        except ValueError as exc:
            raise ValueError(f"rate limit {name} {text!r} is not like '600/minute': {exc}") from exc
        if divisor > 1:  # each worker's share, never below one request
            item = type(item)(max(1, math.ceil(item.amount / divisor)), item.multiples, item.namespace)
        return cls(name, item)

    @property
    def header(self) -> bytes:
        return f'"{self.name}";q={self.item.amount};w={self.item.get_expiry()}'.encode()


class RateLimits(HttpMiddleware):
    def __init__(self, app: ASGIApp, settings: RateLimitSettings) -> None:
        super().__init__(app)
        self.namespace = settings.namespace
        if settings.redis_url:
            storage = storage_from_string("async+" + settings.redis_url, implementation="redispy")
            divisor = 1
        else:
            storage = storage_from_string("async+memory://")
            divisor = max(1, settings.workers)
        self.limiter = FixedWindowRateLimiter(storage)
        self.writes = Policy.of("writes", settings.writes, divisor)
        self.failed_auth = Policy.of("failed-auth", settings.failed_auth, divisor)
        self.pages = Policy.of("pages", settings.pages, divisor)
        self._unreachable = ThrottledWarning(
            logger, "rate limit counters unreachable, requests are not limited meanwhile"
        )

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        path, method = scope.get("path", ""), scope.get("method", "")
        client = scope.get("client")
        address = client[0] if client else "unknown"
        token = _bearer_token(scope)
        if token is not None:
            refused = await self._spent(self.failed_auth, address)
            if refused is not None:
                await self._refuse(self.failed_auth, refused, scope, receive, send, "failed authentications")
                return
        policy, key = None, ""
        if method == "POST" and path.startswith("/v1/") and token is not None:
            policy, key = self.writes, hashlib.sha256(token.encode()).hexdigest()[:32]
        elif method == "GET" and (path.startswith(_PAGE_PREFIXES) or path.endswith(_QR_SUFFIXES)):
            policy, key = self.pages, address
        field: bytes | None = None
        if policy is not None:
            counted = await self._hit(policy, key)
            if counted is not None:
                allowed, remaining, reset = counted
                if not allowed:
                    await self._refuse(policy, reset, scope, receive, send, "requests")
                    return
                field = f'"{policy.name}";r={remaining};t={reset}'.encode()

        async def send_with_fields(message: Message) -> None:
            if message["type"] == "http.response.start":
                if message["status"] == 401 and token is not None:
                    await self._hit(self.failed_auth, address)
                if policy is not None and field is not None:
                    headers = [*message.get("headers", []), (b"ratelimit-policy", policy.header), (b"ratelimit", field)]
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_fields)

    async def _hit(self, policy: Policy, key: str) -> tuple[bool, int, int] | None:
        """Count one request: (allowed, remaining, seconds to reset), or None if the counters are unreachable."""
        try:
            allowed = await self.limiter.hit(policy.item, self.namespace, policy.name, key)
            stats = await self.limiter.get_window_stats(policy.item, self.namespace, policy.name, key)
        except Exception as exc:  # Redis down or refusing: let requests through, say so now and then
            self._unreachable.note(exc)
            return None
        return allowed, stats.remaining, _seconds_until(stats.reset_time)

    async def _spent(self, policy: Policy, key: str) -> int | None:
        """Seconds until the window ends if `policy` is used up for `key`, else None."""
        try:
            if await self.limiter.test(policy.item, self.namespace, policy.name, key):
                return None
            stats = await self.limiter.get_window_stats(policy.item, self.namespace, policy.name, key)
        except Exception as exc:
            self._unreachable.note(exc)
            return None
        return _seconds_until(stats.reset_time)

    async def _refuse(self, policy: Policy, reset: int, scope: Scope, receive: Receive, send: Send, what: str) -> None:
        response = problem_response(
            429,
            f"too many {what}: at most {policy.item.amount} per {policy.item.get_expiry()} s ({policy.name}); "
            f"try again in {reset} s",
            "rate-limited",
        )
        response.headers["Retry-After"] = str(reset)
        response.headers["RateLimit-Policy"] = policy.header.decode()
        response.headers["RateLimit"] = f'"{policy.name}";r=0;t={reset}'
        await response(scope, receive, send)


def _seconds_until(moment: float) -> int:
    return max(1, math.ceil(moment - time.time()))


def _bearer_token(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            return bearer_token(value.decode("latin-1"))
    return None
