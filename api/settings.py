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
    from ledger.sla import Parameters as SlaParameters


@dataclass(frozen=True)
class Settings:
    # Not the current directory: a command run from elsewhere would find (or create) another ledger and key there
    data_dir: Path = field(default_factory=lambda: Path(platformdirs.user_data_dir("chainproof")))
    db_url: str | None = None
    public_url: str = "http://127.0.0.1:8000"
    log_name: str | None = None  # None: the database's own, or one derived from public_url (ledger.storage.opening)
    log_key_file: Path | None = None
    platform_name: str = "Chainproof"  # who issues certificates, as buyers know the platform
    # Checkpoints (ledger/witnessing.py): only the issuer signs them, every `checkpoint_interval_s` when the log
    # grew, and at least every half `witness_freshness_s` even when it did not; a C2SP tlog-policy file names the
    # witnesses it asks to cosign each one. An append is answered once a checkpoint covers it (so that whoever
    # recorded it reads it back at once), or after `append_wait_s` if none does by then (the issuer is down).
    policy_file: Path | None = None
    checkpoint_interval_s: float = 1.0
    append_wait_s: float = 5.0
    witness_freshness_s: float = 3600.0
    witness_warn_s: float = 3600.0  # a product page warns when its newest cosignature is older than this
    page_proofs_from_tiles: bool = False  # product pages' scripts build their inclusion proofs from /tlog/ tiles
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
    # The SLA tracker's thresholds (ledger.sla.Parameters; each report embeds the ones it used)
    sla_window_share: float = 0.8
    sla_lane_percentile: int = 75
    sla_lane_min_history: int = 5
    sla_within_hours: tuple[int, ...] = (24, 48)
    sla_recorded_late_hours: int = 6

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
        if env.get("CHAINPROOF_POLICY"):
            values["policy_file"] = Path(env["CHAINPROOF_POLICY"])
        if "CHAINPROOF_CHECKPOINT_INTERVAL_SECONDS" in env:
            name = "CHAINPROOF_CHECKPOINT_INTERVAL_SECONDS"
            values["checkpoint_interval_s"] = _seconds(env[name], name)
        if "CHAINPROOF_APPEND_WAIT_SECONDS" in env:
            values["append_wait_s"] = _seconds(env["CHAINPROOF_APPEND_WAIT_SECONDS"], "CHAINPROOF_APPEND_WAIT_SECONDS")
        if "CHAINPROOF_WITNESS_FRESHNESS_MINUTES" in env:
            name = "CHAINPROOF_WITNESS_FRESHNESS_MINUTES"
            values["witness_freshness_s"] = 60.0 * _number(env[name], name)
        if "CHAINPROOF_PAGE_PROOFS_FROM_TILES" in env:
            name = "CHAINPROOF_PAGE_PROOFS_FROM_TILES"
            values["page_proofs_from_tiles"] = _switch(env[name], name)
        if "CHAINPROOF_WITNESS_WARN_MINUTES" in env:
            name = "CHAINPROOF_WITNESS_WARN_MINUTES"
            values["witness_warn_s"] = 60.0 * _number(env[name], name)
        if env.get("CHAINPROOF_PLATFORM_NAME", "").strip():
            values["platform_name"] = env["CHAINPROOF_PLATFORM_NAME"].strip()
        if "CHAINPROOF_RATE_LIMITS" in env:
            values["rate_limits"] = _switch(env["CHAINPROOF_RATE_LIMITS"], "CHAINPROOF_RATE_LIMITS")
        for name in ("writes", "failed_auth", "pages"):
            if f"CHAINPROOF_RATE_LIMIT_{name.upper()}" in env:
                values[f"rate_limit_{name}"] = env[f"CHAINPROOF_RATE_LIMIT_{name.upper()}"]
        if env.get("CHAINPROOF_REDIS_URL"):
            values["redis_url"] = env["CHAINPROOF_REDIS_URL"]
        if "CHAINPROOF_WORKERS" in env:
            values["workers"] = _number(env["CHAINPROOF_WORKERS"], "CHAINPROOF_WORKERS")
        if "CHAINPROOF_SLA_WINDOW_SHARE" in env:
            values["sla_window_share"] = _share(env["CHAINPROOF_SLA_WINDOW_SHARE"], "CHAINPROOF_SLA_WINDOW_SHARE")
        if "CHAINPROOF_SLA_LANE_PERCENTILE" in env:
            name = "CHAINPROOF_SLA_LANE_PERCENTILE"
            values["sla_lane_percentile"] = _number(env[name], name)
        if "CHAINPROOF_SLA_LANE_MIN_HISTORY" in env:
            values["sla_lane_min_history"] = _number(
                env["CHAINPROOF_SLA_LANE_MIN_HISTORY"], "CHAINPROOF_SLA_LANE_MIN_HISTORY"
            )
        if "CHAINPROOF_SLA_WITHIN_HOURS" in env:
            values["sla_within_hours"] = tuple(
                _number(part.strip(), "CHAINPROOF_SLA_WITHIN_HOURS")
                for part in env["CHAINPROOF_SLA_WITHIN_HOURS"].split(",")
            )
        if "CHAINPROOF_SLA_RECORDED_LATE_HOURS" in env:
            values["sla_recorded_late_hours"] = _number(
                env["CHAINPROOF_SLA_RECORDED_LATE_HOURS"], "CHAINPROOF_SLA_RECORDED_LATE_HOURS"
            )
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
    def sla_parameters(self) -> SlaParameters:
        from ledger.sla import Parameters

        return Parameters(
            window_share=self.sla_window_share,
            lane_percentile=self.sla_lane_percentile,
            lane_min_history=self.sla_lane_min_history,
            within_hours=self.sla_within_hours,
            recorded_late_after_s=self.sla_recorded_late_hours * 3600,
        )

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


def _share(value: str, name: str) -> float:
    try:
        share = float(value)
    except ValueError:
        share = -1.0
    if not 0 < share <= 1:
        raise ValueError(f"{name} is {value!r}: a share between 0 (excluded) and 1, like 0.8, is expected")
    return share


def _switch(value: str, name: str) -> bool:
    if value.lower() in ("1", "on", "true", "yes"):
        return True
    if value.lower() in ("0", "off", "false", "no"):
        return False
    raise ValueError(f"{name} is {value!r}: say on or off")


def _seconds(value: str, name: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0.01 <= seconds <= 3600:
        raise ValueError(f"{name} is {value!r}: a number of seconds from 0.01 to 3600, like 1 or 0.5, is expected")
    return seconds


def _number(value: str, name: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{name} is {value!r}: a whole number of at least 1 is expected")
    return int(value)
