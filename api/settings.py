"""Settings, from flags or the environment (CHAINPROOF_*)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ledger.storage import default_sqlite_url


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default_factory=lambda: Path("./var"))
    db_url: str | None = None
    public_url: str = "http://127.0.0.1:8000"
    log_name: str = "chainproof.local/log"
    log_key_file: Path | None = None
    max_body_bytes: int = 4 * 1024 * 1024
    max_batch_events: int = 1000
    max_entries_page: int = 1000

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
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]

    @property
    def database_url(self) -> str:
        return self.db_url or default_sqlite_url(self.data_dir)

    @property
    def key_file(self) -> Path:
        return self.log_key_file or self.data_dir / "log-key.pem"

    @property
    def base_url(self) -> str:
        return self.public_url.rstrip("/")
