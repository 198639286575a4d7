"""Checks of individual settings: numbers in range, URLs safe to send secrets to, secrets sane.

Every message names the setting (and its environment variable) and what is allowed, and
never echoes a secret, so a typo in a config file is one line a user can act on.
"""

from __future__ import annotations

import ipaddress
import math
import unicodedata
from dataclasses import dataclass
from typing import Any

import httpx

from pipeline.errors import ConfigError

# The one opt-in that lets a token or client secret travel in cleartext to another host.
INSECURE_HTTP_VAR = "ITWIN_ALLOW_INSECURE_HTTP"


@dataclass(frozen=True)
class Bounds:
    """The allowed range of a numeric setting; ``low_open``: the low end itself is excluded."""

    low: float
    high: float
    low_open: bool = False
    integer: bool = False

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a number"
        low = f"> {_fmt(self.low)}" if self.low_open else f">= {_fmt(self.low)}"
        return f"{kind} {low} and <= {_fmt(self.high)}"

    def admits(self, value: float) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        return above and value <= self.high


def _fmt(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)


DAY_S = 86_400.0
BOUNDS: dict[str, Bounds] = {
    "rate_limit_per_minute": Bounds(0, 1_000_000, low_open=True),
    "rate_limit_per_hour": Bounds(0, 60_000_000, low_open=True),
    "max_wait_s": Bounds(0, 7 * DAY_S),
    "max_answer_mb": Bounds(0, 4096, low_open=True),
    "max_concurrency": Bounds(0, 1024, integer=True),
    "connect_timeout_s": Bounds(0, DAY_S, low_open=True),
    "read_timeout_s": Bounds(0, DAY_S, low_open=True),
    "request_deadline_s": Bounds(0, 7 * DAY_S, low_open=True),
    "max_retries": Bounds(0, 100, integer=True),
    "backoff_base_s": Bounds(0, DAY_S, low_open=True),
    "backoff_cap_s": Bounds(0, DAY_S, low_open=True),
    "max_pages": Bounds(1, 100_000_000, integer=True),
    "full_pass_every_s": Bounds(0, 365 * DAY_S, low_open=True),
    "lock_timeout_s": Bounds(0, DAY_S),
}


def label(name: str, env_var: str | None) -> str:
    """How a setting is named in messages: the variable users set, and the config key."""
    return f"{env_var} ({name})" if env_var else name


def number(name: str, value: Any, env_var: str | None = None) -> float | int:
    """``value`` as the setting's number type, or ConfigError naming the allowed range."""
    bounds = BOUNDS[name]
    where = f"setting {label(name, env_var)} has an invalid value"
    allowed = f"allowed: {bounds.describe()}"
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ConfigError(f"{where}: expected a number, got {type(value).__name__}; {allowed}")
    try:
        parsed = float(value)
    except (ValueError, OverflowError):
        raise ConfigError(f"{where}: {str(value)[:40]!r} is not a number; {allowed}") from None
    if not math.isfinite(parsed) or not bounds.admits(parsed):
        raise ConfigError(f"{where}: {parsed:g} is out of range; {allowed}")
    if bounds.integer:
        if parsed != int(parsed):
            raise ConfigError(f"{where}: {parsed:g} is not a whole number; {allowed}")
        return int(parsed)
    return parsed


def text(name: str, value: Any, env_var: str | None = None) -> str:
    """A plain string setting; a list or mapping where a URL or path belongs is an error."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise ConfigError(
        f"setting {label(name, env_var)} must be a single string, got {type(value).__name__}"
    )


def flag(name: str, value: Any, env_var: str | None = None) -> bool:
    if isinstance(value, bool):
        return value
    lowered = str(value).strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"setting {label(name, env_var)} must be true or false (1 or 0)")


def clean_credential(name: str, value: str, env_var: str | None = None) -> None:
    """Refuse a token, secret or client id with whitespace or control characters.

    Such a value cannot go into an HTTP header or form intact, and the HTTP stack's own
    error would quote it in logs; the message gives the position, never the value.
    """
    if value == "":
        raise ConfigError(f"setting {label(name, env_var)} is empty")
    for position, ch in enumerate(value, start=1):
        if ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
            raise ConfigError(
                f"setting {label(name, env_var)} contains whitespace or a control character "
                f"at position {position} of {len(value)} (a pasted newline or trailing "
                "space?); set it again without it"
            )


def is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def safe_url(name: str, raw: str, env_var: str | None, *, allow_insecure_http: bool) -> str:
    """An http(s) URL without credentials in it, and https unless loopback or opted in."""
    where = label(name, env_var)
    try:
        url = httpx.URL(raw)
    except (httpx.InvalidURL, TypeError):
        raise ConfigError(f"setting {where} is not a valid URL") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigError(f"setting {where} must be an http(s) URL with a host")
    if url.userinfo:
        raise ConfigError(
            f"setting {where} must not contain a user name or password (user:pass@); "
            "give credentials in ITWIN_ACCESS_TOKEN or ITWIN_CLIENT_ID/ITWIN_CLIENT_SECRET"
        )
    if url.scheme == "http" and not allow_insecure_http and not is_loopback(url.host):
        raise ConfigError(
            f"setting {where} uses plain http to {url.host}, which would send the token and "
            f"client secret unencrypted; use https, or set {INSECURE_HTTP_VAR}=1 to allow it"
        )
    return raw


def webhook_url(name: str, raw: str, env_var: str | None) -> None:
    """An https URL, or http to a loopback host; the message never shows the URL (a secret)."""
    where = label(name, env_var)
    try:
        url = httpx.URL(raw)
    except (httpx.InvalidURL, TypeError):
        raise ConfigError(f"setting {where} is not a valid URL") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigError(f"setting {where} must be an https URL with a host")
    if url.scheme == "http" and not is_loopback(url.host):
        raise ConfigError(
            f"setting {where} uses plain http to a host that is not loopback, which would "
            "send alerts unencrypted; use the webhook's https:// address"
        )
