"""Settings, read from `SOKU_*` environment variables and validated at start-up."""

from __future__ import annotations

import json
import os
import secrets
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

import platformdirs
from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from soku.ratelimit import DEFAULT_ENDPOINT_LIMITS, DEFAULT_PLANS, UNLIMITED, parse_plans

SQLITE_PREFIX = "sqlite+aiosqlite:///"
DATABASE_PREFIXES = ("sqlite+aiosqlite://", "postgresql+asyncpg://", "postgresql+psycopg://")
# Callers without a key (by address) and users whose subscription lapsed get these plans.
REQUIRED_PLANS = ("anonymous", "inactive")
# JSON settings: read as text (NoDecode) and parsed by `Settings._parse_json`, so that JSON that
# does not parse is reported with every other problem instead of raising pydantic-settings'
# SettingsError, which names one field and would escape as a traceback.
Limits = Annotated[dict[str, list[str]], NoDecode]
PlatformOptions = Annotated[dict[str, dict[str, str]], NoDecode]


def _default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("soku", appauthor=False))


class Settings(BaseSettings):
    """Every setting of the service. Two instances with two data folders share nothing."""

    model_config = SettingsConfigDict(env_prefix="SOKU_", extra="ignore")

    data_dir: Path = Field(default_factory=_default_data_dir)
    database_url: str = ""
    redis_url: str | None = None
    secret_key: str | None = None
    public_base_url: str = "http://127.0.0.1:8000"
    min_schedule_lead_seconds: int = Field(default=60, ge=0)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    max_media_urls: int = Field(default=35, ge=1)
    idempotency_ttl_seconds: int = Field(default=86_400, ge=1)
    idempotency_purge_seconds: float = Field(default=3600.0, gt=0)
    default_plan: str = "standard"
    rate_limit_plans: Limits = Field(default_factory=lambda: dict(DEFAULT_PLANS))
    rate_limit_endpoints: Limits = Field(default_factory=lambda: dict(DEFAULT_ENDPOINT_LIMITS))
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    db_pool_size: int = Field(default=10, ge=1)
    sandbox_base_url: str = ""  # the generic fake (default: this service's /sandbox/generic)
    # "platform": sandbox accounts publish through their platform's real connector to its own
    # fake (each platform with a connector); "generic": every sandbox account uses the generic
    # fake (its fault switches are what the delivery engine's tests drive).
    sandbox_fakes: Literal["platform", "generic"] = "platform"
    sandbox_url: str = ""  # where the platforms' own fakes are mounted (default: /sandbox here)
    # Whether this service mounts the fakes at /sandbox. Their control routes take no key: an
    # instance others can reach turns them off (sandbox accounts then need SOKU_SANDBOX_URL).
    sandbox_mounted: bool = True
    # Per platform connector settings: {"x": {"api_url": …, "client_id": …}, "linkedin": …}.
    platform_options: PlatformOptions = Field(default_factory=dict)
    worker_concurrency: int = Field(default=512, ge=1)
    # `soku worker`'s own /metrics, /healthz and /readyz (off unless a port is given; 0: any)
    worker_metrics_port: int | None = Field(default=None, ge=0, le=65535)
    worker_metrics_host: str = "127.0.0.1"
    worker_batch: int = Field(default=128, ge=1)
    lease_seconds: float = Field(default=30.0, ge=1)
    poll_seconds: float = Field(default=2.0, gt=0)
    http_timeout_seconds: float = Field(default=20.0, gt=0)
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)
    retry_max_attempts: int = Field(default=8, ge=1)
    retry_base_seconds: float = Field(default=2.0, ge=0)
    retry_max_seconds: float = Field(default=900.0, ge=0)
    crash_at: str | None = None  # fault injection for the crash tests only
    media_store: str = ""  # file:///path (default: the data folder) or s3://bucket/prefix?…
    media_allow_private: bool = False  # fetch from private addresses: tests and sandbox only
    media_image_max_bytes: int = Field(default=50 * 1024 * 1024, ge=1)
    media_video_max_bytes: int = Field(default=500 * 1024 * 1024, ge=1)
    media_fetch_timeout_seconds: float = Field(default=120.0, gt=0)
    # Templates (docs/templates.md): font files for the rendered text (default: DejaVu Sans
    # from the system, else the font Pillow ships)
    template_font: str | None = None
    template_bold_font: str | None = None
    # Webhooks (docs/webhooks.md): attempts per event and endpoint, the backoff between them,
    # each attempt's timeout, how often an idle sender looks for due ones, and whether a
    # webhook may go to a private address (tests and a self-hosted receiver on the LAN only).
    webhook_max_attempts: int = Field(default=10, ge=1)
    webhook_retry_base_seconds: float = Field(default=30.0, ge=0)
    webhook_retry_max_seconds: float = Field(default=3600.0, ge=0)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    webhook_poll_seconds: float = Field(default=1.0, gt=0)
    webhook_allow_private: bool = False
    webhook_endpoints_per_user: int = Field(default=10, ge=1)
    webhook_retention_days: int = Field(default=30, ge=1)

    @field_validator("public_base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("SOKU_PUBLIC_BASE_URL must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("sandbox_url", "sandbox_base_url")
    @classmethod
    def _check_sandbox_url(cls, value: str, info: ValidationInfo) -> str:
        if value and not value.startswith(("http://", "https://")):
            name = f"SOKU_{str(info.field_name).upper()}"
            raise ValueError(f"{name} must start with http:// or https://")
        return value

    @field_validator("data_dir")
    @classmethod
    def _check_data_dir(cls, value: Path) -> Path:
        if value.expanduser().exists() and not value.expanduser().is_dir():
            raise ValueError("SOKU_DATA_DIR must name a folder; it names a file")
        return value

    @field_validator("media_store")
    @classmethod
    def _check_media_store(cls, value: str) -> str:
        from soku.media.storage import check_store_url

        if value:
            check_store_url(value)
        return value

    @field_validator("template_font", "template_bold_font")
    @classmethod
    def _check_font(cls, value: str | None, info: ValidationInfo) -> str | None:
        if not value:
            return None
        from PIL import ImageFont

        try:
            ImageFont.truetype(value, 12)
        except OSError as exc:
            name = f"SOKU_{str(info.field_name).upper()}"
            raise ValueError(f"{name} is not a font file Pillow can open: {exc}") from None
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith(("redis://", "rediss://")):  # the rest may hold a password
            raise ValueError("SOKU_REDIS_URL must start with redis:// or rediss://")
        from redis.asyncio import ConnectionPool

        try:
            ConnectionPool.from_url(value)  # parses only: connects on first use
        except ValueError as exc:  # a port or a database number that is not one
            raise ValueError(f"SOKU_REDIS_URL is not a Redis URL: {exc}") from None
        return value

    @field_validator("rate_limit_plans", "rate_limit_endpoints", "platform_options", mode="before")
    @classmethod
    def _parse_json(cls, value: object, info: ValidationInfo) -> object:
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:  # its message quotes no part of the value
            name = f"SOKU_{str(info.field_name).upper()}"
            where = f"line {exc.lineno}, column {exc.colno}"
            raise ValueError(f"{name} is not valid JSON: {exc.msg} ({where})") from None

    @field_validator("rate_limit_plans", "rate_limit_endpoints")
    @classmethod
    def _check_limits(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        parse_plans(value)
        return value

    @field_validator("platform_options")
    @classmethod
    def _known_options(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        from soku.platforms import INTEGRATIONS

        for platform, options in value.items():
            integration = INTEGRATIONS.get(platform)
            if integration is None:
                known = ", ".join(sorted(INTEGRATIONS))
                raise ValueError(f"SOKU_PLATFORM_OPTIONS: no connector for {platform!r} ({known})")
            unknown = sorted(set(options) - integration.options)
            if unknown:
                allowed = ", ".join(sorted(integration.options))
                raise ValueError(
                    f"SOKU_PLATFORM_OPTIONS[{platform!r}]: unknown {', '.join(unknown)} "
                    f"(known: {allowed})"
                )
        return value

    @field_validator("rate_limit_plans")
    @classmethod
    def _needs_builtin_plans(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        missing = [name for name in REQUIRED_PLANS if name not in value]
        if missing:
            raise ValueError(f"SOKU_RATE_LIMIT_PLANS must define the plans {', '.join(missing)}")
        return value

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        self.data_dir = self.data_dir.expanduser()
        if not self.sandbox_base_url:
            self.sandbox_base_url = f"{self.public_base_url}/sandbox/generic"
        self.sandbox_base_url = self.sandbox_base_url.rstrip("/")
        self.sandbox_url = (self.sandbox_url or f"{self.public_base_url}/sandbox").rstrip("/")
        if not self.media_store:
            self.media_store = (self.data_dir / "media").resolve().as_uri()
        if not self.database_url:
            self.database_url = f"{SQLITE_PREFIX}{self.data_dir / 'soku.db'}"
        if self.database_url.startswith(("postgres://", "postgresql://")):
            raise ValueError(
                "SOKU_DATABASE_URL must name an async driver: "
                "postgresql+asyncpg://… or postgresql+psycopg://…"
            )
        if not self.database_url.startswith(DATABASE_PREFIXES):
            scheme, found, _rest = self.database_url.partition("://")
            shown = repr(scheme) if found else "no scheme"  # not the rest: it may hold a password
            raise ValueError(
                f"SOKU_DATABASE_URL starts with {shown}; Soku runs on SQLite "
                f"({SQLITE_PREFIX}…) or PostgreSQL (postgresql+asyncpg://… or "
                "postgresql+psycopg://…)"
            )
        if self.default_plan not in self.rate_limit_plans:
            raise ValueError(f"SOKU_DEFAULT_PLAN {self.default_plan!r} is not a known plan")
        if not self.is_sqlite and not self.secret_key:
            raise ValueError("SOKU_SECRET_KEY is required when the database is not SQLite")
        return self

    @property
    def sandbox_root(self) -> str:
        """Where the platforms' own fakes are reached: `<root>/<platform>`."""
        return self.sandbox_url

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def plan_names(self) -> list[str]:
        """Every plan a user may have: `unlimited` exists whether or not the set names it."""
        return sorted({*self.rate_limit_plans, UNLIMITED})

    @cached_property
    def resolved_secret_key(self) -> str:
        """The configured key, or (embedded shape only) one generated once in the data folder."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret_key"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key)
        return key


def config_problems(exc: ValidationError) -> list[str]:
    """What is wrong with the configuration, one line per problem, each naming its setting
    (`SOKU_…`); the values given are left out, since one of them may be a secret."""
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        message = str(error["msg"]).removeprefix("Value error, ")
        where = [str(part) for part in error["loc"]]
        name = f"SOKU_{where[0].upper()}" if where else ""
        if not name or message.startswith(name):  # the message names its setting already
            problems.append(message)
        else:
            keys = "".join(f"[{part!r}]" for part in where[1:])
            problems.append(f"{name}{keys}: {message}")
    return problems
