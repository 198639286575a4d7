"""Faults from the API: every Retry-After form, transient faults, permanent failures, tokens.

Each collection under faults is compared with a fault-free collection of the same simulated
data ("Identical": core tables and models, sorted).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest

from pipeline.collection import ConnectionResult
from pipeline.itwin.client import ExportApiClient
from pipeline.itwin.errors import ServiceUnavailableError, WaitTooLongError
from pipeline.itwin.settings import Secret, Settings
from pipeline.simulator.config import Faults, SimulatorConfig
from pipeline.simulator.server import SimulatorServer
from tests.reliability.helpers import (
    Baselines,
    Hit,
    Recorder,
    Reply,
    half_loaded_runs,
    restrict,
)
from tests.support import collect_once, sim_settings, snapshot

SIZES: dict[str, Any] = dict(seed=41, connections=4, imodels=1, runs_per_connection=30)
BACKOFF_CAP_S = 0.3
_RETRY_LOG = re.compile(r"retry \d+ of \d+ in (?P<delay>[0-9.]+)s")


def waits_logged(caplog: pytest.LogCaptureFixture) -> list[float]:
    """The delays the client announced before each retry (its own decision, not a guess)."""
    return [
        float(m["delay"])
        for rec in caplog.records
        if rec.name == "pipeline.itwin" and (m := _RETRY_LOG.search(rec.getMessage()))
    ]


# --- Retry-After: exactly what the service said, or bounded backoff ----------------------

# (header value, seconds the client should wait; None: untrustworthy, so capped backoff)
RETRY_AFTER_FORMS: dict[str, tuple[Any, float | None]] = {
    "seconds": ("1", 1.0),
    "fraction": ("0.5", 0.5),
    "http-date": (lambda: formatdate(time.time() + 2, usegmt=True), 2.0),
    "past-date": (lambda: formatdate(time.time() - 3600, usegmt=True), None),
    "zero": ("0", None),
    "negative": ("-5", None),
    "garbage": ("soon, maybe", None),
    "infinite": ("1e999", None),
    "nan": ("nan", None),
    "empty": ("", None),
}


@pytest.mark.parametrize("form", sorted(RETRY_AFTER_FORMS))
def test_retry_after_form_waits_what_it_should_never_more_than_the_cap(
    form: str, caplog: pytest.LogCaptureFixture
) -> None:
    raw, expected = RETRY_AFTER_FORMS[form]

    def respond(hit: Hit, n: int) -> Reply:
        if n == 1:
            value = raw() if callable(raw) else raw
            return Reply(429, b'{"error": {"code": "RateLimitExceeded"}}', {"Retry-After": value})
        return Reply(200, b'{"connection": {"id": "c1"}}')

    caplog.set_level(logging.WARNING, logger="pipeline.itwin")
    with Recorder(respond) as api:
        settings = Settings(
            base_url=api.base_url,
            access_token=Secret("t"),
            backoff_base_s=0.1,
            backoff_cap_s=BACKOFF_CAP_S,
            rate_limit_per_minute=60_000,
        )

        async def call() -> dict[str, Any]:
            async with ExportApiClient(settings) as client:
                return await client.get_connection("c1")

        assert asyncio.run(call()) == {"id": "c1"}
    assert len(api.hits) == 2
    gap = api.hits[1].at - api.hits[0].at
    [delay] = waits_logged(caplog)
    if expected is None:
        assert delay <= BACKOFF_CAP_S
        assert gap < BACKOFF_CAP_S + 2.0  # generous: scheduling, not a benchmark
    else:
        # HTTP-dates have whole seconds: up to one second less than asked is right.
        low = expected - 1.0 if form == "http-date" else expected
        assert low - 0.01 <= delay <= expected + 0.01
        assert gap >= low - 0.05
        assert gap < expected + 2.0


@pytest.mark.parametrize(
    "raw",
    ["86400", lambda: formatdate(time.time() + 86400, usegmt=True)],
    ids=["huge", "huge-date"],
)
def test_a_retry_after_longer_than_max_wait_stops_at_once_naming_the_wait(raw: Any) -> None:
    """A day's Retry-After is the service's word: not waited (ITWIN_MAX_WAIT_S), not retried."""

    def respond(hit: Hit, n: int) -> Reply:
        value = raw() if callable(raw) else raw
        return Reply(429, b'{"error": {"code": "RateLimitExceeded"}}', {"Retry-After": value})

    with Recorder(respond) as api:
        settings = Settings(base_url=api.base_url, access_token=Secret("t"), max_wait_s=900)

        async def call() -> None:
            async with ExportApiClient(settings) as client:
                with pytest.raises(WaitTooLongError) as caught:
                    await client.get_connection("c1")
                assert caught.value.reason == "HTTP 429"
                assert 86_300 < caught.value.wait_s <= 86_400
                with pytest.raises(WaitTooLongError):
                    await client.get_connection("c2")  # fails fast, unsent

        asyncio.run(call())
    assert len(api.hits) == 1


@pytest.mark.parametrize(
    "form",
    [None, "http-date", "garbage"]
    + [pytest.param(f, marks=pytest.mark.slow) for f in ("past-date", "0", "-5", "missing")],
)
def test_server_rate_limit_in_every_retry_after_form_ends_identical(
    form: str | None, tmp_path: Path, baselines: Baselines, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="pipeline.itwin")
    sizes = {**SIZES, "page_cap": 6}
    faults = Faults(rate_limit_per_minute=900, rate_limit_window_s=1.0, retry_after=form)
    with SimulatorServer(SimulatorConfig(**sizes, faults=faults)) as sim:
        started = time.monotonic()
        result = collect_once(sim_settings(sim, tmp_path, backoff_cap_s=1.0, max_retries=12))
        elapsed = time.monotonic() - started
    assert result.ok, [c.describe_error() for c in result.failed]
    assert result.totals.throttled > 0  # the limit was really hit
    # The window is 1 s: no wait may exceed it (plus HTTP-date rounding), nor the cap.
    assert max(waits_logged(caplog)) <= 2.0
    assert elapsed < 60
    assert snapshot(tmp_path / "warehouse.duckdb") == baselines.of(**sizes)


# --- transient faults: Identical, retries within budget, a deadline per request ----------


def test_every_transient_fault_at_once_ends_identical_within_budget_and_deadline(
    tmp_path: Path, baselines: Baselines
) -> None:
    faults = Faults(
        error_5xx_rate=0.12,
        truncated_rate=0.06,
        non_json_rate=0.06,
        drop_rate=0.06,
        drip_rate=0.06,
        drip_chunk_bytes=256,
        drip_interval_s=0.01,
        slow_rate=0.05,
        slow_seconds=1.5,  # beyond the read timeout below: a timeout, then a retry
        seed=11,
    )
    max_retries, deadline = 8, 20.0
    with SimulatorServer(SimulatorConfig(**SIZES, page_cap=10, faults=faults)) as sim:
        settings = sim_settings(
            sim,
            tmp_path,
            read_timeout_s=0.8,
            connect_timeout_s=0.5,
            request_deadline_s=deadline,
            max_retries=max_retries,
        )
        result = collect_once(settings)
        requests = [r for r in sim.requests if r.path.startswith("/export/")]
    assert result.ok, [c.describe_error() for c in result.failed]
    injected = [r for r in requests if r.fault]
    assert len(injected) >= 3, "the seed must really inject faults"
    # Every fault but a drip (slow, yet complete in time) costs exactly one retry.
    assert result.totals.retries >= len([r for r in injected if r.fault != "drip"])
    by_url: dict[str, list[float]] = {}
    for r in requests:
        by_url.setdefault(f"{r.path}?{r.query}", []).append(r.at)
    # Every logical request: at most 1 + max_retries attempts, all within its deadline.
    assert max(len(times) for times in by_url.values()) <= 1 + max_retries
    assert max(max(t) - min(t) for t in by_url.values()) <= deadline
    assert snapshot(tmp_path / "warehouse.duckdb") == baselines.of(**SIZES, page_cap=10)


def test_a_request_that_stays_slow_gives_up_at_its_deadline(tmp_path: Path) -> None:
    faults = Faults(slow_rate=1.0, slow_seconds=5.0)
    with SimulatorServer(SimulatorConfig(**SIZES, faults=faults)) as sim:
        one = sim.direct_connection_ids[0]
        settings = sim_settings(
            sim,
            tmp_path,
            connection_ids=(one,),
            imodel_ids=(),
            read_timeout_s=0.5,
            connect_timeout_s=0.5,
            request_deadline_s=2.0,
            max_retries=50,
        )
        started = time.monotonic()
        result = collect_once(settings)
        elapsed = time.monotonic() - started
    [failed] = result.failed
    assert isinstance(failed.error, ServiceUnavailableError)
    assert failed.connection_id == one and one in str(failed.error)
    assert elapsed < 2.0 + 10  # the deadline, plus generous set-up and loading time


# --- permanent failure on one connection ---------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "status"),
    [("permanent_429_connections", 429), ("permanent_5xx_connections", 503)],
)
def test_a_permanently_failing_connection_is_named_and_the_others_load_whole(
    fault: str, status: int, tmp_path: Path, baselines: Baselines
) -> None:
    with SimulatorServer(SimulatorConfig(**SIZES)) as sim:
        bad = sim.direct_connection_ids[0]
        getattr(sim.faults, fault).add(bad)
        result = collect_once(sim_settings(sim, tmp_path, max_retries=2))
        good = set(sim.connection_ids) - {bad}
    [failed] = result.failed
    assert failed.connection_id == bad
    assert failed.error is not None and failed.error.status == status
    assert bad in str(failed.error)
    # The cause: the status, and the API's code or (a bare 503 has none) its message.
    assert f"HTTP {status}" in failed.describe_error()
    assert failed.error.code or "Service Unavailable" in failed.error.message
    ok: list[ConnectionResult] = [c for c in result.connections if c.ok]
    assert {c.connection_id for c in ok} == good
    state = snapshot(tmp_path / "warehouse.duckdb")
    clean = baselines.of(**SIZES)
    assert restrict(state, {bad}) == restrict(clean, set())  # nothing of it loaded
    assert restrict(state, good) == restrict(clean, good)
    assert half_loaded_runs(state, clean) == []


# --- tokens --------------------------------------------------------------------------------


def token_posts(sim: SimulatorServer) -> int:
    return sum(1 for r in sim.requests if r.path == "/connect/token")


def test_tokens_expiring_and_revoked_mid_collection_end_identical(
    tmp_path: Path, baselines: Baselines
) -> None:
    """Short-lived tokens renewed ahead of expiry, plus a server-side revocation half-way."""
    sizes = {**SIZES, "page_cap": 5}
    faults = Faults(latency_s=0.04)
    with SimulatorServer(SimulatorConfig(**sizes, token_lifetime_s=1.5, faults=faults)) as sim:
        revoked = []

        class RevokeOnce:
            def connection_started(
                self, connection_id: str, mode: str, display_name: str | None
            ) -> None:
                pass

            def pages_fetched(self, connection_id: str, pages: int, runs: int) -> None:
                if pages == 3 and not revoked:
                    sim.app.tokens._issued.clear()  # the server forgets every issued token
                    revoked.append(connection_id)

            def connection_finished(self, result: ConnectionResult) -> None:
                pass

        settings = sim_settings(sim, tmp_path)
        from pipeline.collection import collect
        from pipeline.warehouse.models import build_models
        from pipeline.warehouse.store import open_warehouse

        tmp_path.mkdir(exist_ok=True)
        started = time.monotonic()
        with open_warehouse(tmp_path / "warehouse.duckdb") as w:
            result = asyncio.run(collect(settings, w, progress=RevokeOnce()))
            build_models(w.con)
        elapsed = time.monotonic() - started
        refused = [r for r in sim.requests if r.status == 401]
        posts = token_posts(sim)
    assert result.ok, [c.describe_error() for c in result.failed]
    assert revoked and refused, "the revocation really hit requests in flight"
    # One renewal per lifetime elapsed (renewed at 4/5 of it) plus one for the revocation;
    # not one per concurrent caller.
    assert 2 <= posts <= 2 + elapsed / (1.5 * 0.8) + 1
    assert snapshot(tmp_path / "warehouse.duckdb") == baselines.of(**sizes)


def test_token_endpoint_503_then_recovery_ends_identical(
    tmp_path: Path, baselines: Baselines
) -> None:
    with SimulatorServer(SimulatorConfig(**SIZES, faults=Faults(token_endpoint_failures=3))) as sim:
        result = collect_once(sim_settings(sim, tmp_path))
        assert token_posts(sim) == 4  # three 503s, then the one token everybody shares
    assert result.ok
    assert snapshot(tmp_path / "warehouse.duckdb") == baselines.of(**SIZES)


def test_ten_connections_starting_together_share_one_token(
    tmp_path: Path, baselines: Baselines
) -> None:
    sizes = dict(seed=43, connections=10, imodels=1, runs_per_connection=8)
    with SimulatorServer(SimulatorConfig(**sizes, faults=Faults(latency_s=0.05))) as sim:
        settings = sim_settings(
            sim, tmp_path, connection_ids=tuple(sim.connection_ids), imodel_ids=()
        )
        result = collect_once(settings)
        assert token_posts(sim) == 1
        api_calls = [r for r in sim.requests if r.path.startswith("/export/")]
        assert len(api_calls) >= 10
    assert result.ok
    assert snapshot(tmp_path / "warehouse.duckdb") == baselines.of(**sizes)
