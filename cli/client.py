"""HTTP access to a Chainproof server. Every failure becomes a CliError with one readable line."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from typing import Any

from cli.errors import CliError
from ledger.hashing import b64decode

# httpx's own command line (httpx._main) pulls in rich, click and pygments on `import httpx`, a fifth of every
# start of ours; a None entry in sys.modules makes that optional import fail, as it does without httpx[cli].
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
import httpx  # noqa: E402

__all__ = ["CliError", "ServerClient"]


class ServerClient:
    def __init__(self, base_url: str, token: str | None = None, timeout: float = 30.0) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise CliError(f"server URL must start with http:// or https://, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        headers = {"User-Agent": "chainproof-cli"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        # An http:// server is never spoken to over TLS (requests stay on base_url; redirects are not followed), so
        # its client skips loading the CA bundle, 50 ms of every start; https:// verifies as usual.
        secure = self.base_url.startswith("https://")
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout, verify=secure)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ServerClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, *, retries: int = 2, **kwargs: Any) -> httpx.Response:
        """Send a request; connection failures are retried (callers make writes idempotent with a key)."""
        for attempt in range(retries + 1):
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                if attempt == retries:
                    raise CliError(f"cannot reach {self.base_url}: {exc.__class__.__name__}: {exc}") from exc
                time.sleep(0.5 * (attempt + 1))
                continue
            if response.status_code >= 400:
                raise CliError(_problem_text(response))
            return response
        raise AssertionError("unreachable")

    def get_json_if_found(self, path: str, **params: Any) -> Any:
        """Like get_json, but None for a 404 (a batch that does not exist yet)."""
        try:
            response = self._http.request("GET", path, params=params)
        except httpx.TransportError:
            return self.get_json(path, **params)  # retried there, with its message if it fails again
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise CliError(_problem_text(response))
        return self._json(path, response)  # one request, not a second to read what the first answered

    def get_json(self, path: str, **params: Any) -> Any:
        return self._json(path, self.request("GET", path, params=params))

    def _json(self, path: str, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise CliError(f"{self.base_url}{path} did not answer with JSON") from exc

    def get_text(self, path: str) -> str:
        return self.request("GET", path).text

    def entries(self, start: int, end: int) -> Iterator[tuple[int, bytes]]:
        """(index, leaf) for start..end-1, page by page."""
        while start < end:
            page = self.get_json("/v1/log/entries", start=start, end=end)
            items = page.get("entries", [])
            if not items:
                raise CliError(f"server returned no entries from index {start} though {end} were expected")
            for item in items:
                yield int(item["index"]), b64decode(item["leaf"], what="leaf")
            start = int(items[-1]["index"]) + 1

    def registrations(self, end: int, start: int = 0) -> list[tuple[int, bytes]]:
        """(index, leaf) of every registration entry at indices [start, end)."""
        page = self.get_json("/v1/log/registrations", start=start, end=end)
        return [(int(item["index"]), b64decode(item["leaf"], what="leaf")) for item in page.get("registrations", [])]

    def inclusion_proof(self, index: int, tree_size: int) -> list[bytes]:
        data = self.get_json("/v1/log/proof/inclusion", index=index, tree_size=tree_size)
        return [b64decode(h, what="proof hash") for h in data["hashes"]]

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        data = self.get_json("/v1/log/proof/consistency", first=first, second=second)
        return [b64decode(h, what="proof hash") for h in data["hashes"]]


def _problem_text(response: httpx.Response) -> str:
    try:
        body = response.json()
        detail = body.get("detail") or body.get("title")
    except ValueError:
        detail = response.text[:200].strip() or response.reason_phrase
    hint = " (check --token / CHAINPROOF_TOKEN)" if response.status_code == 401 else ""
    return f"server refused ({response.status_code}): {detail}{hint}"
