"""Bearer tokens: the configured static token and client-credentials tokens that expire.

Expiry runs on real (monotonic) time plus any explicit `world.advance()`: renewal is a property
of the client's wall-clock behaviour (tests use lifetimes of a second or two), and advancing the
server's clock past a lifetime must also expire tokens the client still believes valid.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import threading
from collections.abc import Callable
from urllib.parse import parse_qsl

from pipeline.simulator.config import SimulatorConfig


class TokenStore:
    """Issues tokens for the configured client and tells which bearer tokens are valid now."""

    def __init__(self, config: SimulatorConfig, clock: Callable[[], float]) -> None:
        self._config = config
        self._clock = clock
        self._issued: dict[str, float] = {}  # token -> monotonic expiry
        self._lock = threading.Lock()

    def client_of(self, token: str) -> str | None:
        """The OAuth client a valid token belongs to (the rate-limit key), else None."""
        if secrets.compare_digest(token, self._config.static_token):
            return "static"
        with self._lock:
            expiry = self._issued.get(token)
            if expiry is None:
                return None
            if self._clock() >= expiry:
                del self._issued[token]
                return None
        return self._config.client_id

    def issue(self, form_body: bytes, authorization: str | None) -> tuple[int, dict[str, object]]:
        """Answer a token request: (status, OAuth JSON body)."""
        form = dict(parse_qsl(form_body.decode("utf-8", "replace"), keep_blank_values=True))
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        if authorization and authorization.lower().startswith("basic "):
            try:
                pair = base64.b64decode(authorization[6:].strip()).decode()
                client_id, _, client_secret = pair.partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return 400, {"error": "invalid_request", "error_description": "bad Basic header"}
        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type"}
        cfg = self._config
        if client_id != cfg.client_id or not secrets.compare_digest(
            (client_secret or "").encode(), cfg.client_secret.encode()
        ):
            return 400, {"error": "invalid_client"}
        scopes = set(form.get("scope", cfg.scope).split())
        if not scopes <= {cfg.scope, "export:read"}:
            return 400, {"error": "invalid_scope"}
        token = "sim-issued-" + secrets.token_urlsafe(24)
        with self._lock:
            self._issued[token] = self._clock() + cfg.token_lifetime_s
        lifetime = max(1, int(cfg.token_lifetime_s))
        return 200, {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": lifetime,
            "scope": " ".join(sorted(scopes)),
        }
