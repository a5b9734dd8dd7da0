"""Typed settings, read once from ``EVOTE_*`` environment variables.

Secrets (database password, master key) are never logged: ``Settings.__repr__``
masks them.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


class SettingsError(ValueError):
    """An EVOTE_* variable has a value we cannot use."""


def _mask_url(url: str | None) -> str | None:
    if not url:
        return url
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


@dataclass(frozen=True)
class Settings:
    # Where PostgreSQL is; None means the embedded server under data_dir/pg.
    database_url: str | None = None
    # Redis for pub/sub across workers; None means an in-process broker.
    redis_url: str | None = None
    data_dir: Path = Path(".evote")
    host: str = "127.0.0.1"
    port: int = 8080
    # The public base URL printed in QR codes (`{public_url}/b/{code}`).
    public_url: str = "http://127.0.0.1:8080"
    # Issuer and audiences of the EdDSA tokens this server signs.
    token_issuer: str = "evote"
    staff_token_ttl_s: int = 8 * 3600
    # Margin added to a meeting's close time for the ballot token's `exp`.
    ballot_token_margin_s: int = 3600
    # Largest request body accepted (bytes); register uploads have their own.
    max_body_bytes: int = 256 * 1024
    max_upload_bytes: int = 64 * 1024 * 1024
    db_pool_min: int = 2
    db_pool_max: int = 20
    # WeChat code2Session (configurable so tests use a fake server).
    wechat_base_url: str = "https://api.weixin.qq.com"
    wechat_appid: str = ""
    wechat_secret: str = field(default="", repr=False)
    # Secret that encrypts private keys at rest; empty means a key file under data_dir.
    master_key: str = field(default="", repr=False)
    # The Ed25519 key that signs staff and ballot tokens; default {data_dir}/keys/token_key.pem.
    token_key_file: Path | None = None
    log_level: str = "INFO"
    log_json: bool = True
    # 公告 objection period after a result is published (days; a publish request may override).
    objection_days: int = 7
    # How often the scheduler looks for meetings to open or close.
    scheduler_interval_s: float = 5.0
    # Live views (server.live.hub): coalescing delay, safety-net poll, heartbeat, per-stream queue, resume ring.
    live_debounce_s: float = 0.1
    live_poll_s: float = 10.0
    live_heartbeat_s: float = 15.0
    live_queue_size: int = 32
    live_ring_size: int = 64
    # Most owners one proxy (书面委托 / guardian) may hold per meeting.
    proxy_cap: int = 5

    def __repr__(self) -> str:  # never print secrets
        shown = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in ("wechat_secret", "master_key"):
                value = "***" if value else ""
            elif f.name in ("database_url", "redis_url"):
                value = _mask_url(value)
            shown.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(shown)})"

    @property
    def embedded_pg_dir(self) -> Path:
        return self.data_dir / "pg"

    @property
    def token_key_path(self) -> Path:
        return self.token_key_file or self.data_dir / "keys" / "token_key.pem"

    def replace(self, **changes) -> Settings:
        return dataclasses.replace(self, **changes)


def _int(env: dict, name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None


def _float(env: dict, name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None


def _bool(env: dict, name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def load_settings(env: dict | None = None, **overrides) -> Settings:
    """Settings from the environment; keyword overrides (CLI flags) win."""
    env = dict(os.environ if env is None else env)
    port = _int(env, "EVOTE_PORT", 8080)
    host = env.get("EVOTE_HOST") or "127.0.0.1"
    values = dict(
        database_url=env.get("EVOTE_DATABASE_URL") or None,
        redis_url=env.get("EVOTE_REDIS_URL") or None,
        data_dir=Path(env.get("EVOTE_DATA_DIR") or ".evote"),
        host=host,
        port=port,
        public_url=(env.get("EVOTE_PUBLIC_URL") or f"http://{host}:{port}").rstrip("/"),
        token_issuer=env.get("EVOTE_TOKEN_ISSUER") or "evote",
        staff_token_ttl_s=_int(env, "EVOTE_STAFF_TOKEN_TTL_S", 8 * 3600),
        ballot_token_margin_s=_int(env, "EVOTE_BALLOT_TOKEN_MARGIN_S", 3600),
        max_body_bytes=_int(env, "EVOTE_MAX_BODY_BYTES", 256 * 1024),
        max_upload_bytes=_int(env, "EVOTE_MAX_UPLOAD_BYTES", 64 * 1024 * 1024),
        db_pool_min=_int(env, "EVOTE_DB_POOL_MIN", 2),
        db_pool_max=_int(env, "EVOTE_DB_POOL_MAX", 20),
        wechat_base_url=(env.get("EVOTE_WECHAT_BASE_URL") or "https://api.weixin.qq.com").rstrip("/"),
        wechat_appid=env.get("EVOTE_WECHAT_APPID") or "",
        wechat_secret=env.get("EVOTE_WECHAT_SECRET") or "",
        master_key=env.get("EVOTE_MASTER_KEY") or "",
        token_key_file=Path(env["EVOTE_TOKEN_KEY_FILE"]) if env.get("EVOTE_TOKEN_KEY_FILE") else None,
        log_level=(env.get("EVOTE_LOG_LEVEL") or "INFO").upper(),
        log_json=_bool(env, "EVOTE_LOG_JSON", True),
        objection_days=_int(env, "EVOTE_OBJECTION_DAYS", 7),
        scheduler_interval_s=_float(env, "EVOTE_SCHEDULER_INTERVAL_S", 5.0),
        live_debounce_s=_float(env, "EVOTE_LIVE_DEBOUNCE_S", 0.1),
        live_poll_s=_float(env, "EVOTE_LIVE_POLL_S", 10.0),
        live_heartbeat_s=_float(env, "EVOTE_LIVE_HEARTBEAT_S", 15.0),
        live_queue_size=_int(env, "EVOTE_LIVE_QUEUE_SIZE", 32),
        live_ring_size=_int(env, "EVOTE_LIVE_RING_SIZE", 64),
        proxy_cap=_int(env, "EVOTE_PROXY_CAP", 5),
    )
    values.update({k: v for k, v in overrides.items() if v is not None})
    if "public_url" not in overrides and not env.get("EVOTE_PUBLIC_URL"):
        values["public_url"] = f"http://{values['host']}:{values['port']}"
    if values["max_body_bytes"] <= 0 or values["db_pool_max"] < 1:
        raise SettingsError("EVOTE_MAX_BODY_BYTES and EVOTE_DB_POOL_MAX must be positive")
    return Settings(**values)
