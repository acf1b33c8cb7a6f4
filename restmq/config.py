"""One Settings object, built once from CLI flags, ``RESTMQ_*`` variables and a TOML file.

Precedence: flag > environment variable > config file > default. This is the only module that
reads the environment.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from restmq.errors import ConfigError

ENV_PREFIX = "RESTMQ_"


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the broker can be told, with SPEC §1's defaults."""

    listen: str = "127.0.0.1"
    port: int = 8888
    redis_url: str | None = None
    redis_host: str | None = None
    redis_port: int = 6379
    redis_db: int = 0
    redis_pool: int = 32
    data_dir: Path = field(default_factory=lambda: Path("restmq-data"))
    prefix: str = "restmq:"
    workers: int = 1
    max_message_size: int = 1024 * 1024
    max_body_size: int = 4 * 1024 * 1024
    acl: Path | None = None
    collectd: bool = False
    syslogd: bool = False
    syslog_port: int = 25000
    syslog_max_line: int = 8192  # bytes; a longer syslog line is cut
    history_size: int = 256
    history_age: float = 3600.0
    heartbeat: float = 15.0
    stream_lease: float = 15.0
    presence_timeout: float = 5.0
    stream_credits: int = 64
    sweep_interval: float = 0.1
    shutdown_timeout: float = 10.0
    request_timeout: float = 5.0  # seconds: every request's storage deadline (SPEC §3.8)
    idempotency_window: float = 300.0  # seconds an Idempotency-Key is remembered
    header_timeout: float = 10.0  # seconds to send a request line and headers
    keepalive_timeout: float = 75.0  # seconds an idle keep-alive connection stays open
    write_timeout: float = 10.0  # seconds a stream write may wait on a slow client
    queue_idle_time: float = 3600.0  # seconds an empty, unconfigured queue stays listed
    log_level: str = "info"
    access_log: bool = False

    @property
    def embedded(self) -> bool:
        """True when the broker must run its own Valkey (no Redis given)."""
        return self.redis_url is None and self.redis_host is None

    def storage_url(self, embedded_url: str | None = None) -> str:
        """The Redis URL to connect to: explicit URL, else host/port/db, else the embedded one."""
        if self.redis_url:
            return self.redis_url
        if self.redis_host:
            return f"redis://{self.redis_host}:{self.redis_port}/{self.redis_db}"
        if embedded_url is None:
            raise ConfigError("no Redis URL and no embedded server")
        return embedded_url


def describe_url(url: str) -> str:
    """A storage URL with any password removed (safe to show to clients)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    user = quote(parts.username or "")
    netloc = f"{user}:***@{host}" if user else f"***@{host}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def load_settings(
    flags: Mapping[str, Any],
    env: Mapping[str, str] | None = None,
    config_file: Path | None = None,
) -> Settings:
    """Build the Settings from flags (None = not given), environment and the TOML file."""
    env = os.environ if env is None else env
    path = config_file or _env_path(env)
    values: dict[str, Any] = {}
    values.update(_from_toml(path) if path else {})
    values.update(_from_env(env))
    values.update({k: v for k, v in flags.items() if v is not None})
    return _build(values)


def _env_path(env: Mapping[str, str]) -> Path | None:
    raw = env.get(ENV_PREFIX + "CONFIG")
    return Path(raw) if raw else None


def _from_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    section = data.get("restmq", data)
    return {key.replace("-", "_"): value for key, value in section.items()}


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    names = {f.name for f in fields(Settings)}
    found = {}
    for name in names:
        raw = env.get(ENV_PREFIX + name.upper())
        if raw is not None and raw != "":
            found[name] = raw
    return found


def _build(values: dict[str, Any]) -> Settings:
    known = {f.name: f for f in fields(Settings)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"unknown settings: {', '.join(unknown)}")
    converted = {name: _convert(known[name], value) for name, value in values.items()}
    settings = Settings(**converted)
    _validate(settings)
    return settings


def _convert(f: dataclasses.Field[Any], value: Any) -> Any:
    kind = str(f.type)
    try:
        if "bool" in kind:
            return _to_bool(value)
        if "int" in kind:
            return int(value)
        if "float" in kind:
            return float(value)
        if "Path" in kind:
            return Path(value)
    except (TypeError, ValueError):
        raise ConfigError(f"invalid value for {f.name}: {value!r}") from None
    return str(value)


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise ValueError(value)


def _validate(settings: Settings) -> None:
    checks = [
        (settings.workers >= 1, "workers must be at least 1"),
        (0 < settings.port < 65536, "port must be between 1 and 65535"),
        (settings.max_message_size > 0, "max_message_size must be positive"),
        (settings.max_body_size >= settings.max_message_size, "max_body_size too small"),
        ("{" not in settings.prefix and "}" not in settings.prefix, "prefix has a brace"),
        (settings.redis_pool >= 1, "redis_pool must be at least 1"),
        (settings.stream_credits >= 1, "stream_credits must be at least 1"),
        (settings.presence_timeout > 0 and settings.stream_lease > 0, "timeouts must be > 0"),
        (0 < settings.syslog_port < 65536, "syslog_port must be between 1 and 65535"),
        (settings.syslog_max_line >= 1, "syslog_max_line must be at least 1"),
        (settings.request_timeout > 0, "request_timeout must be > 0"),
        (settings.idempotency_window > 0, "idempotency_window must be > 0"),
        (settings.header_timeout > 0 and settings.keepalive_timeout > 0, "timeouts must be > 0"),
        (settings.write_timeout > 0, "write_timeout must be > 0"),
        (settings.queue_idle_time > 0, "queue_idle_time must be > 0"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
