"""Typed settings, read once from ``EVOTE_*`` environment variables.

Each field ``name`` of ``Settings`` is read from ``EVOTE_<NAME>`` (``port`` from
``EVOTE_PORT``); its default is the dataclass default, written only there.
Secrets (database password, master key) are never logged: ``Settings.__repr__``
masks them.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_type_hints
from urllib.parse import urlsplit, urlunsplit

from server.auth.client_address import parse_trusted_proxies


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
    # Most rows (after the header) a register file may have; more is refused (413 register_too_many_rows).
    register_max_rows: int = 200_000
    db_pool_min: int = 2
    db_pool_max: int = 20
    # WeChat code2Session (configurable so tests use a fake server).
    wechat_base_url: str = "https://api.weixin.qq.com"
    wechat_appid: str = ""
    wechat_secret: str = field(default="", repr=False)
    # Subscribe messages (docs/notifications.md): "kind=template_id,..." for the kinds offered to owners
    # (notice_published, voting_opened, reminder, extension, result_published); empty offers none.
    wechat_templates: str = ""
    # The mini program's ballot page (messages open it; the mini-program code's scene is the ballot code).
    wechat_page: str = "pages/ballot/index"
    # formal | trial | developer: which version of the mini program a message opens.
    wechat_miniprogram_state: str = "formal"
    # What the code sheets' QR code opens: "url" ({public_url}/b/{code}) or "miniprogram" (小程序码).
    sheet_qr: str = "url"
    # How often each worker queues and sends due messages (0 disables), and the reminder's lead time.
    notify_interval_s: float = 30.0
    reminder_days_before_close: int = 2
    # Secret that encrypts private keys and owners' phones at rest and keys the hashes of the digits owners
    # sign in with; empty means key files under data_dir and no full phone kept (docs/privacy.md).
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
    # Group commit of electronic ballots (server/services/group_commit.py): the most ballots one statement
    # stores, and how many such statements of one meeting may be in flight at once in a worker.
    cast_group_max: int = 64
    cast_group_lanes: int = 4
    # Reverse proxies on other machines whose X-Forwarded-For is believed (comma-separated addresses
    # and CIDR networks); a loopback peer is always taken to be a proxy (server.auth.client_address).
    trusted_proxies: str = ""

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

    @property
    def trusted_proxy_networks(self) -> tuple:
        return parse_trusted_proxies(self.trusted_proxies)

    @property
    def wechat_template_ids(self) -> dict[str, str]:
        """{kind: template_id} from ``wechat_templates`` (checked by load_settings)."""
        return parse_templates(self.wechat_templates)

    def replace(self, **changes) -> Settings:
        return dataclasses.replace(self, **changes)


NOTIFICATION_KINDS = ("notice_published", "voting_opened", "reminder", "extension", "result_published")


def parse_templates(raw: str) -> dict[str, str]:
    """``"voting_opened=TID1,reminder=TID2"`` → {kind: template id}; SettingsError naming a bad entry."""
    out: dict[str, str] = {}
    for entry in (e.strip() for e in raw.split(",")):
        if not entry:
            continue
        kind, sep, template_id = (p.strip() for p in entry.partition("="))
        if not sep or kind not in NOTIFICATION_KINDS or not template_id:
            raise SettingsError(f"EVOTE_WECHAT_TEMPLATES: {entry!r} is not kind=template_id with kind one of "
                                f"{', '.join(NOTIFICATION_KINDS)}")
        out[kind] = template_id
    return out


def _env_name(name: str) -> str:
    return "EVOTE_" + name.upper()


def _parse(name: str, kind: Any, raw: str) -> Any:
    """The value of ``EVOTE_<NAME>`` as the field's type says."""
    if kind is bool:
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{_env_name(name)} must be true or false, got {raw!r}")
    if kind is int or kind is float:
        try:
            return kind(raw)
        except ValueError:
            what = "an integer" if kind is int else "a number"
            raise SettingsError(f"{_env_name(name)} must be {what}, got {raw!r}") from None
    if kind is Path or Path in get_args(kind):
        return Path(raw)
    return raw


def load_settings(env: dict | None = None, **overrides: Any) -> Settings:
    """Settings from the environment; keyword overrides (CLI flags) win.

    Every field ``name`` is read from ``EVOTE_<NAME>``; unset or empty means the dataclass default, so
    each default is written once, in ``Settings``.  ``public_url`` defaults to ``http://{host}:{port}``.
    """
    env = dict(os.environ if env is None else env)
    types = get_type_hints(Settings)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(Settings):
        raw = env.get(_env_name(f.name))
        values[f.name] = _parse(f.name, types[f.name], raw) if raw else f.default
    values["log_level"] = values["log_level"].upper()
    values["wechat_base_url"] = values["wechat_base_url"].rstrip("/")
    values["public_url"] = values["public_url"].rstrip("/")
    values.update({k: v for k, v in overrides.items() if v is not None})
    if "public_url" not in overrides and not env.get("EVOTE_PUBLIC_URL"):
        values["public_url"] = f"http://{values['host']}:{values['port']}"
    if values["max_body_bytes"] <= 0 or values["db_pool_max"] < 1 or values["register_max_rows"] < 1:
        raise SettingsError("EVOTE_MAX_BODY_BYTES, EVOTE_DB_POOL_MAX and EVOTE_REGISTER_MAX_ROWS must be positive")
    if values["cast_group_max"] < 1 or values["cast_group_lanes"] < 1:
        raise SettingsError("EVOTE_CAST_GROUP_MAX and EVOTE_CAST_GROUP_LANES must be at least 1")
    try:
        parse_trusted_proxies(values["trusted_proxies"])
    except ValueError as exc:
        raise SettingsError(f"EVOTE_TRUSTED_PROXIES: {exc}") from None
    parse_templates(values["wechat_templates"])
    if values["sheet_qr"] not in ("url", "miniprogram"):
        raise SettingsError(f"EVOTE_SHEET_QR must be url or miniprogram, got {values['sheet_qr']!r}")
    if values["wechat_miniprogram_state"] not in ("formal", "trial", "developer"):
        raise SettingsError("EVOTE_WECHAT_MINIPROGRAM_STATE must be formal, trial or developer")
    if values["reminder_days_before_close"] < 1:
        raise SettingsError("EVOTE_REMINDER_DAYS_BEFORE_CLOSE must be at least 1")
    return Settings(**values)
