"""The collector's settings: defaults < config file (TOML) < ``FEATURECOST_*`` env < flags.

typer resolves flags and environment variables; an option neither gives stays
``None`` and falls back to the config file, then to the defaults here. Keys in the
file are the option names with ``_`` or ``-`` (``otlp_http_port`` / ``otlp-http-port``),
at the top level or under a ``[collector]`` table.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from featurecost.collector.storage.client import dsn_problem


class ConfigError(ValueError):
    pass


class CollectorConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    data_dir: Path = Path("./featurecost-data")
    storage_dsn: str = ""  # empty: chDB under data_dir/clickhouse
    host: str = "127.0.0.1"
    otlp_http_port: int = Field(4318, ge=0, le=65535)
    otlp_grpc_port: int = Field(4317, ge=-1, le=65535)  # -1 disables gRPC
    api_port: int = Field(8787, ge=0, le=65535)
    max_body_bytes: int = Field(16 * 1024 * 1024, gt=0)
    max_inflight_bytes: int = Field(512 * 1024 * 1024, gt=0)  # OTLP/HTTP bodies held at once, all requests
    wal_dir: Path | None = None  # default: data_dir/wal
    wal_max_bytes: int = Field(2 * 1024 * 1024 * 1024, gt=0)
    wal_max_age_seconds: float | None = Field(None, gt=0)
    wal_min_free_disk_bytes: int = Field(256 * 1024 * 1024, ge=0)
    wal_segment_bytes: int = Field(64 * 1024 * 1024, gt=0)
    batch_rows: int = Field(50_000, gt=0)
    flush_interval: float = Field(0.5, gt=0)
    retention_days: int | None = Field(400, gt=0)
    seen_window: int = Field(500_000, gt=0)
    retry_after_seconds: int = Field(5, gt=0)
    max_future_skew_seconds: float = Field(3600.0, ge=0)  # spans further in the future are rejected
    auth_token: str | None = None  # OTLP ingest
    api_token: str | None = None  # API reads (and writes when no admin token is set)
    admin_token: str | None = None  # API writes: usage import, rollup rebuild
    metrics_public: bool = False  # /metrics without a token
    api_max_body_bytes: int = Field(8 * 1024 * 1024, gt=0)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    forward_endpoint: str | None = None
    forward_headers: dict[str, str] = Field(default_factory=dict)
    drain_timeout: float = Field(30.0, gt=0)
    prices_file: Path | None = None  # docs/pricing.md
    budgets_file: Path | None = None  # docs/budgets.md
    budget_interval: float = Field(60.0, gt=0)
    # Collector processes sharing the OTLP ports (collector/workers.py); on embedded chDB worker 0
    # owns the engine and the others store through it
    workers: int = Field(1, ge=1, le=256)

    @field_validator("auth_token", "api_token", "admin_token", mode="before")
    @classmethod
    def _empty_token_is_none(cls, value: object) -> object:
        # FEATURECOST_API_TOKEN= (empty, as compose passes an unset variable) means no token,
        # never "the empty string is the token"
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("storage_dsn")
    @classmethod
    def _dsn(cls, value: str) -> str:
        problem = dsn_problem(value) if value else None
        if problem is not None:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _tls_pair(self) -> CollectorConfig:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        return self

    @property
    def resolved_storage_dsn(self) -> str:
        return self.storage_dsn or f"chdb://{self.data_dir.resolve() / 'clickhouse'}"

    @property
    def resolved_wal_dir(self) -> Path:
        return self.wal_dir or self.data_dir / "wal"

    @property
    def retention(self) -> timedelta | None:
        return None if self.retention_days is None else timedelta(days=self.retention_days)

    def tls_pem(self) -> tuple[bytes, bytes] | None:
        if self.tls_cert is None or self.tls_key is None:
            return None
        return self.tls_cert.read_bytes(), self.tls_key.read_bytes()


def _normalize_keys(data: Mapping[str, Any]) -> dict[str, Any]:
    return {key.replace("-", "_"): value for key, value in data.items()}


def read_config_file(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    section = data.get("collector", data)
    if not isinstance(section, dict):
        raise ConfigError(f"config file {path}: [collector] must be a table")
    values = _normalize_keys(section)
    if "storage" in values:  # the flag's name
        values["storage_dsn"] = values.pop("storage")
    return values


def build_config(config_file: Path | None, overrides: Mapping[str, Any]) -> CollectorConfig:
    """Merge the config file with the options given as flags/env (``None`` = not given)."""
    values = read_config_file(config_file) if config_file is not None else {}
    values.update({key: value for key, value in overrides.items() if value is not None})
    try:
        return CollectorConfig(**values)
    except ValidationError as exc:
        raise ConfigError(str(exc)) from exc
