"""Settings, from flags or the environment (CHAINPROOF_*)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import platformdirs

from ledger.intake import DEFAULT_SIGNED_AT_WINDOW, SignedAtWindow

if TYPE_CHECKING:  # imported where used: the CLI reads settings too, and starts faster without the web stack
    from api.ratelimit import RateLimitSettings


@dataclass(frozen=True)
class Settings:
    # Not the current directory: a command run from elsewhere would find (or create) another ledger and key there
    data_dir: Path = field(default_factory=lambda: Path(platformdirs.user_data_dir("chainproof")))
    db_url: str | None = None
    public_url: str = "http://127.0.0.1:8000"
    log_name: str | None = None  # None: the database's own, or one derived from public_url (ledger.storage.opening)
    log_key_file: Path | None = None
    max_body_bytes: int = 4 * 1024 * 1024
    max_batch_events: int = 1000
    max_entries_page: int = 1000
    # Rate limits (api.ratelimit): on by default, with what a public deployment would start from
    rate_limits: bool = True
    rate_limit_writes: str = "1200/minute"
    rate_limit_failed_auth: str = "20/minute"
    rate_limit_pages: str = "300/minute"
    redis_url: str | None = None
    workers: int = 1
    # How far from the moment it arrives a statement's signed_at may lie (ledger.intake, ADR 0005)
    signed_at_max_age: timedelta = DEFAULT_SIGNED_AT_WINDOW.before
    signed_at_max_ahead: timedelta = DEFAULT_SIGNED_AT_WINDOW.after

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        env = os.environ
        values: dict[str, object] = {}
        if "CHAINPROOF_DATA_DIR" in env:
            values["data_dir"] = Path(env["CHAINPROOF_DATA_DIR"])
        if "CHAINPROOF_DB" in env:
            values["db_url"] = env["CHAINPROOF_DB"]
        if "CHAINPROOF_PUBLIC_URL" in env:
            values["public_url"] = env["CHAINPROOF_PUBLIC_URL"]
        if "CHAINPROOF_LOG_NAME" in env:
            values["log_name"] = env["CHAINPROOF_LOG_NAME"]
        if "CHAINPROOF_LOG_KEY_FILE" in env:
            values["log_key_file"] = Path(env["CHAINPROOF_LOG_KEY_FILE"])
        if "CHAINPROOF_RATE_LIMITS" in env:
            values["rate_limits"] = _switch(env["CHAINPROOF_RATE_LIMITS"], "CHAINPROOF_RATE_LIMITS")
        for name in ("writes", "failed_auth", "pages"):
            if f"CHAINPROOF_RATE_LIMIT_{name.upper()}" in env:
                values[f"rate_limit_{name}"] = env[f"CHAINPROOF_RATE_LIMIT_{name.upper()}"]
        if env.get("CHAINPROOF_REDIS_URL"):
            values["redis_url"] = env["CHAINPROOF_REDIS_URL"]
        if "CHAINPROOF_WORKERS" in env:
            values["workers"] = _number(env["CHAINPROOF_WORKERS"], "CHAINPROOF_WORKERS")
        if "CHAINPROOF_SIGNED_AT_MAX_AGE_HOURS" in env:
            values["signed_at_max_age"] = timedelta(
                hours=_number(env["CHAINPROOF_SIGNED_AT_MAX_AGE_HOURS"], "CHAINPROOF_SIGNED_AT_MAX_AGE_HOURS")
            )
        if "CHAINPROOF_SIGNED_AT_MAX_AHEAD_SECONDS" in env:
            values["signed_at_max_ahead"] = timedelta(
                seconds=_number(env["CHAINPROOF_SIGNED_AT_MAX_AHEAD_SECONDS"], "CHAINPROOF_SIGNED_AT_MAX_AHEAD_SECONDS")
            )
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]

    @property
    def database_url(self) -> str:
        from ledger.storage.db import default_sqlite_url

        return self.db_url or default_sqlite_url(self.data_dir)

    @property
    def key_file(self) -> Path:
        return self.log_key_file or self.data_dir / "log-key.pem"

    @property
    def base_url(self) -> str:
        return self.public_url.rstrip("/")

    @property
    def signed_at_window(self) -> SignedAtWindow:
        return SignedAtWindow(self.signed_at_max_age, self.signed_at_max_ahead)

    @property
    def rate_limit_settings(self) -> RateLimitSettings:
        from api.ratelimit import RateLimitSettings

        return RateLimitSettings(
            self.rate_limit_writes,
            self.rate_limit_failed_auth,
            self.rate_limit_pages,
            self.redis_url,
            self.workers,
            namespace="chainproof:" + (self.log_name or self.database_url),
        )


def _switch(value: str, name: str) -> bool:
    if value.lower() in ("1", "on", "true", "yes"):
        return True
    if value.lower() in ("0", "off", "false", "no"):
        return False
    raise ValueError(f"{name} is {value!r}: say on or off")


def _number(value: str, name: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{name} is {value!r}: a whole number of at least 1 is expected")
    return int(value)
