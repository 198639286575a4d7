"""Shared helpers for the Export API client tests: fast settings, fixtures, a mock API."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.itwin.settings import Secret, Settings

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
CANARY_TOKEN = "canary-token-5b1e0c"
CANARY_SECRET = "canary-secret-9d2f47"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def load_fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def fast_settings(**changes: Any) -> Settings:
    """Settings with tiny backoffs and a generous budget so tests stay fast."""
    values: dict[str, Any] = {
        "base_url": "https://api.test",
        "access_token": Secret(CANARY_TOKEN),
        "token_url": "https://api.test/connect/token",
        "rate_limit_per_minute": 60_000.0,
        "backoff_base_s": 0.01,
        "backoff_cap_s": 0.05,
        "max_retries": 4,
        "connect_timeout_s": 2.0,
        "read_timeout_s": 2.0,
        "request_deadline_s": 10.0,
    }
    values.update(changes)
    return Settings(**values)


def oauth_settings(**changes: Any) -> Settings:
    values: dict[str, Any] = {
        "access_token": None,
        "client_id": "client-1",
        "client_secret": Secret(CANARY_SECRET),
    }
    values.update(changes)
    return fast_settings(**values)


class MockApi:
    """A recording httpx.MockTransport whose answers a test scripts per request."""

    def __init__(self, handler: Callable[[httpx.Request], httpx.Response]) -> None:
        self.requests: list[httpx.Request] = []
        self._handler = handler
        self.transport = httpx.MockTransport(self._record)

    def _record(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self._handler(request)

    def api_requests(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path != "/connect/token"]

    def token_requests(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path == "/connect/token"]


def token_answer(token: str = CANARY_TOKEN, expires_in: float = 3600) -> httpx.Response:
    return httpx.Response(
        200, json={"access_token": token, "token_type": "Bearer", "expires_in": expires_in}
    )
