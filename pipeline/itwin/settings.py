"""Settings for talking to the Export API and where output goes.

Read at run time (never at import) from environment variables, optionally overlaid
on a YAML config file; Dagster run config builds the same object.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import yaml

from pipeline.errors import ConfigError
from pipeline.itwin import setting_checks as check
from pipeline.itwin.ids import normalize_ids

DEFAULT_BASE_URL = "https://api.bentley.com"
DEFAULT_TOKEN_URL = "https://ims.bentley.com/connect/token"  # noqa: S105 - a URL, not a secret
DEFAULT_SCOPE = "itwin-platform"
ACCEPT_HEADER = "application/vnd.bentley.itwin-platform.v1+json"


class Secret:
    """A string that never shows itself in repr, str, logs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


@dataclass(frozen=True)
class Settings:
    base_url: str = DEFAULT_BASE_URL
    access_token: Secret | None = None
    client_id: str | None = None
    client_secret: Secret | None = None
    token_url: str = DEFAULT_TOKEN_URL
    scope: str = DEFAULT_SCOPE
    connection_ids: tuple[str, ...] = ()
    imodel_ids: tuple[str, ...] = ()
    rate_limit_per_minute: float = 500.0
    rate_limit_per_hour: float | None = None  # None: no hourly budget
    max_wait_s: float = 900.0  # a longer wait (Retry-After, hourly budget) stops the collection
    alert_webhook_url: Secret | None = None  # where alerts are posted; None: no alerts
    allow_insecure_http: bool = False  # plain http to a non-loopback host carries secrets openly
    data_dir: Path = Path("data")
    # Knobs without an environment variable in the contract; config file / run config only.
    max_concurrency: int = 0  # requests in flight at most; 0: derived from the budget
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 60.0
    request_deadline_s: float = 120.0
    max_retries: int = 6
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 60.0
    max_pages: int = 10_000
    full_pass_every_s: float = 86_400.0
    lock_timeout_s: float = 30.0  # how long a collection waits for another's warehouse lock
    max_answer_mb: float = 64.0  # an answer inflating past this is refused, not read on

    def __post_init__(self) -> None:
        """Validate every field however the object was built (env, file, run config, code)."""
        for name, value in _normalised(self).items():
            object.__setattr__(self, name, value)

    @property
    def max_answer_bytes(self) -> int:
        return int(self.max_answer_mb * 1024 * 1024)

    @property
    def has_credentials(self) -> bool:
        return bool(self.access_token) or bool(self.client_id and self.client_secret)

    @property
    def in_flight_limit(self) -> int:
        """Requests allowed in flight at once: max_concurrency, or (0) enough for the budget.

        Little's law: sustaining the budget's r requests a second when answers take t
        seconds needs r * t in flight. The derived bound covers answers of up to 1 s
        (at 5,000 a minute and 100 ms, 8 in flight capped the pace at ~75 a second),
        kept between 8 and 64 so neither a small budget nor a large one is extreme.
        """
        if self.max_concurrency > 0:
            return self.max_concurrency
        per_s = self.rate_limit_per_minute / 60.0
        return min(64, max(8, math.ceil(per_s * 1.0)))

    def require_credentials(self) -> None:
        if not self.has_credentials:
            raise ConfigError(
                "no credentials: set ITWIN_ACCESS_TOKEN, or ITWIN_CLIENT_ID and "
                "ITWIN_CLIENT_SECRET for a service app"
            )

    def require_targets(self) -> None:
        if not self.connection_ids and not self.imodel_ids:
            raise ConfigError(
                "no connections configured: set ITWIN_CONNECTION_IDS or ITWIN_IMODEL_IDS "
                "(comma-separated), or list them in the config file"
            )


ENV_VARS: dict[str, str] = {
    "ITWIN_API_BASE_URL": "base_url",
    "ITWIN_ACCESS_TOKEN": "access_token",
    "ITWIN_CLIENT_ID": "client_id",
    "ITWIN_CLIENT_SECRET": "client_secret",
    "ITWIN_TOKEN_URL": "token_url",
    "ITWIN_SCOPE": "scope",
    "ITWIN_CONNECTION_IDS": "connection_ids",
    "ITWIN_IMODEL_IDS": "imodel_ids",
    "ITWIN_RATE_LIMIT_PER_MINUTE": "rate_limit_per_minute",
    "ITWIN_RATE_LIMIT_PER_HOUR": "rate_limit_per_hour",
    "ITWIN_MAX_WAIT_S": "max_wait_s",
    check.INSECURE_HTTP_VAR: "allow_insecure_http",
    "ITWIN_RUNS_ALERT_WEBHOOK_URL": "alert_webhook_url",
    "ITWIN_RUNS_DATA_DIR": "data_dir",
}
CONFIG_FILE_VAR = "ITWIN_RUNS_CONFIG"


_ENV_OF = {field_name: var for var, field_name in ENV_VARS.items()}
_SECRETS = ("access_token", "client_secret", "alert_webhook_url")
_URLS = ("base_url", "token_url")


def _split_ids(name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, list | tuple):
        items = [check.text(name, v, _ENV_OF.get(name)) for v in value]
    else:
        raise ConfigError(
            f"setting {check.label(name, _ENV_OF.get(name))}: expected a comma-separated "
            f"string or a list, got {type(value).__name__}"
        )
    return normalize_ids(items)


def _coerce(name: str, value: Any) -> Any:
    """Turn a raw setting (string from env, YAML scalar, run config) into its typed form."""
    env_var = _ENV_OF.get(name)
    if value is None:
        return None
    if name in _SECRETS:
        return value if isinstance(value, Secret) else Secret(check.text(name, value, env_var))
    if name in ("connection_ids", "imodel_ids"):
        return _split_ids(name, value)
    if name == "data_dir":
        return value if isinstance(value, Path) else Path(check.text(name, value, env_var))
    if name == "allow_insecure_http":
        return check.flag(name, value, env_var)
    if name in check.BOUNDS:
        return check.number(name, value, env_var)
    return check.text(name, value, env_var)


def _normalised(settings: Settings) -> dict[str, Any]:
    """Every field checked and in its typed form; raises ConfigError naming the first bad one."""
    out: dict[str, Any] = {}
    for f in fields(Settings):
        value = _coerce(f.name, getattr(settings, f.name))
        if f.name in _SECRETS and value is not None:
            check.clean_credential(f.name, value.reveal(), _ENV_OF.get(f.name))
        if f.name == "client_id" and value is not None:
            check.clean_credential(f.name, value, _ENV_OF.get(f.name))
        out[f.name] = value
    if out["alert_webhook_url"] is not None:
        check.webhook_url(
            "alert_webhook_url", out["alert_webhook_url"].reveal(), _ENV_OF["alert_webhook_url"]
        )
    for name in _URLS:
        out[name] = check.safe_url(
            name, out[name], _ENV_OF.get(name), allow_insecure_http=out["allow_insecure_http"]
        )
    return out


def _from_mapping(base: Settings, values: Mapping[str, Any], source: str) -> Settings:
    known = {f.name for f in fields(Settings)}
    changes: dict[str, Any] = {}
    for key, value in values.items():
        name = key.lower()
        if name not in known:
            raise ConfigError(
                f"{source}: unknown setting {key!r}; known: {', '.join(sorted(known))}"
            )
        if value is None or value == "":
            continue
        changes[name] = _coerce(name, value)
    return replace(base, **changes)


def load_config_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {exc.start})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"config file {path} is not valid YAML{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of settings")
    return data


def load_settings(
    environ: Mapping[str, str] | None = None,
    config_file: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Defaults < config file < environment < explicit overrides (e.g. Dagster run config)."""
    env = os.environ if environ is None else environ
    settings = Settings()
    path = config_file or (Path(env[CONFIG_FILE_VAR]) if env.get(CONFIG_FILE_VAR) else None)
    if path is not None:
        settings = _from_mapping(settings, load_config_file(path), f"config file {path}")
    from_env = {field_name: env[var] for var, field_name in ENV_VARS.items() if env.get(var)}
    settings = _from_mapping(settings, from_env, "environment")
    if overrides:
        settings = _from_mapping(settings, overrides, "run config")
    return settings
