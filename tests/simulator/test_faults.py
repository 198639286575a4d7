"""Every fault class, observed from the outside with httpx against a running simulator."""

from __future__ import annotations

import time
from collections.abc import Iterator
from email.utils import parsedate_to_datetime

import httpx
import orjson
import pytest

from pipeline.simulator.config import Faults, SimulatorConfig
from pipeline.simulator.server import SimulatorServer
from tests.simulator.conftest import client_for


@pytest.fixture
def small() -> Iterator[SimulatorServer]:
    with SimulatorServer(SimulatorConfig(seed=2, connections=3, runs_per_connection=60)) as sim:
        yield sim


def runs_url(sim: SimulatorServer, index: int = 0) -> str:
    return f"/export/connections/{sim.connection_ids[index]}/runs"


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        (None, "int"),
        ("http-date", "future"),
        ("past-date", "past"),
        ("0", "0"),
        ("-5", "-5"),
        ("garbage", "garbage"),
        ("99999", "99999"),
        ("missing", None),
    ],
)
def test_rate_limit_answers_429_with_retry_after_in_every_form(
    small: SimulatorServer, form: str | None, expected: str | None
) -> None:
    small.faults.rate_limit_per_minute = 3
    small.faults.retry_after = form
    with client_for(small) as client:
        ok = [client.get(runs_url(small)) for _ in range(3)]
        assert [a.status_code for a in ok] == [200] * 3
        assert ok[-1].headers["x-ratelimit-remaining"] == "0"
        throttled = client.get(runs_url(small))
    assert throttled.status_code == 429
    assert throttled.json()["error"]["code"] == "TooManyRequests"
    assert throttled.headers["x-ratelimit-limit"] == "3"
    value = throttled.headers.get("retry-after")
    if expected is None:
        assert value is None
    elif expected == "int":
        assert value is not None and 1 <= int(value) <= 60
    elif expected in ("future", "past"):
        assert value is not None
        delta = parsedate_to_datetime(value).timestamp() - time.time()
        assert delta > 0 if expected == "future" else delta < 0
    else:
        assert value == expected


def test_rate_limit_window_frees_up(small: SimulatorServer) -> None:
    small.faults.rate_limit_per_minute = 60  # over a 0.3 s window: one call at a time
    small.faults.rate_limit_window_s = 0.3
    with client_for(small) as client:
        assert client.get(runs_url(small)).status_code == 200
        assert client.get(runs_url(small)).status_code == 429
        time.sleep(0.35)
        assert client.get(runs_url(small)).status_code == 200


def test_random_5xx(small: SimulatorServer) -> None:
    small.faults.error_5xx_rate = 1.0
    with client_for(small) as client:
        statuses = {client.get(runs_url(small), params={"i": i}).status_code for i in range(12)}
    assert statuses <= {500, 502, 503, 504} and len(statuses) > 1
    small.faults.error_5xx_rate = 0.0


def test_slow_and_latency(small: SimulatorServer) -> None:
    with client_for(small) as client:
        small.faults.slow_rate, small.faults.slow_seconds = 1.0, 0.3
        started = time.monotonic()
        assert client.get(runs_url(small)).status_code == 200
        assert time.monotonic() - started >= 0.3
        small.faults.slow_rate, small.faults.latency_s = 0.0, 0.2
        started = time.monotonic()
        assert client.get(f"/export/connections/{small.connection_ids[0]}").status_code == 200
        assert time.monotonic() - started >= 0.2


def test_drip_sends_a_whole_body_slowly_in_chunks(small: SimulatorServer) -> None:
    small.faults.drip_rate, small.faults.drip_interval_s = 1.0, 0.02
    with client_for(small) as client, client.stream("GET", runs_url(small)) as answer:
        started = time.monotonic()
        chunks = [c for c in answer.iter_raw() if c]
        elapsed = time.monotonic() - started
    assert len(chunks) > 5 and elapsed > 0.1
    assert orjson.loads(b"".join(chunks))["runs"]
    assert small.requests[-1].fault == "drip"


def test_truncated_body_is_a_200_with_cut_json(small: SimulatorServer) -> None:
    small.faults.truncated_rate = 1.0
    with client_for(small) as client:
        answer = client.get(runs_url(small))
    assert answer.status_code == 200
    assert answer.headers["content-length"] == str(len(answer.content))
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(answer.content)


def test_non_json_is_a_200_html_page(small: SimulatorServer) -> None:
    small.faults.non_json_rate = 1.0
    with client_for(small) as client:
        answer = client.get(runs_url(small))
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert answer.text.lstrip().startswith("<!DOCTYPE html>")


def test_dropped_connections_before_and_during_the_response(small: SimulatorServer) -> None:
    small.faults.drop_rate = 1.0
    errors = set()
    for i in range(12):
        with client_for(small) as client:
            with pytest.raises(httpx.TransportError) as caught:
                client.get(runs_url(small), params={"i": i})
            errors.add(type(caught.value).__name__)
    assert {r.fault for r in small.requests} == {"drop_before", "drop_mid"}
    assert {r.status for r in small.requests} == {0}
    assert errors <= {"RemoteProtocolError", "ReadError"} and errors
    small.faults.drop_rate = 0.0
    with client_for(small) as client:
        assert client.get(runs_url(small)).status_code == 200


def test_connection_level_faults_leave_the_others_alone(small: SimulatorServer) -> None:
    a, b, c = small.connection_ids
    small.faults.forbidden_connections.add(a)
    small.faults.permanent_5xx_connections.add(b)
    small.faults.permanent_429_connections.add(c)
    with client_for(small) as client:
        for _ in range(3):
            assert client.get(f"/export/connections/{a}/runs").status_code == 403
            assert client.get(f"/export/connections/{b}/runs").status_code == 503
            throttled = client.get(f"/export/connections/{c}/runs")
            assert throttled.status_code == 429 and "retry-after" in throttled.headers
        forbidden = client.get(f"/export/connections/{a}").json()
        assert forbidden["error"]["code"] == "InsufficientPermissions"
        small.faults.forbidden_connections.clear()
        small.faults.unknown_connections.add(a)
        assert client.get(f"/export/connections/{a}/runs").status_code == 404
        small.faults.unknown_connections.clear()
        assert client.get(f"/export/connections/{a}/runs").status_code == 200


def test_foreign_next_link_points_elsewhere_and_the_token_stays_home() -> None:
    with SimulatorServer() as sim, SimulatorServer() as foreign:
        sim.faults.foreign_next_link = foreign.base_url
        with client_for(sim) as client:
            links = client.get(runs_url(sim)).json()["_links"]
        assert links["next"]["href"].startswith(foreign.base_url + "/export/connections/")
        assert links["self"]["href"].startswith(sim.base_url)
        assert foreign.requests == []


def test_token_endpoint_fails_then_recovers() -> None:
    with SimulatorServer(SimulatorConfig(faults=Faults(token_endpoint_failures=2))) as sim:
        form = {
            "grant_type": "client_credentials",
            "client_id": sim.client_id,
            "client_secret": sim.client_secret,
        }
        statuses = [httpx.post(sim.token_url, data=form).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]


def test_faults_are_reproducible_per_url_and_fresh_per_retry() -> None:
    def outcomes(seed: int) -> list[int]:
        config = SimulatorConfig(
            seed=1, connections=1, faults=Faults(error_5xx_rate=0.5, seed=seed)
        )
        with SimulatorServer(config) as sim, client_for(sim) as client:
            return [
                client.get(runs_url(sim), params={"$skip": i % 4}).status_code for i in range(16)
            ]

    first = outcomes(9)
    assert first == outcomes(9)
    assert first != outcomes(10)
    assert 200 in first and any(s >= 500 for s in first)


@pytest.mark.parametrize("form", [None, "missing"])
def test_the_hourly_cap_answers_429_asking_to_wait_until_the_hour_has_room(
    small: SimulatorServer, form: str | None
) -> None:
    small.faults.rate_limit_per_hour = 2
    small.faults.retry_after = form  # "missing": only the platform's own header
    with client_for(small) as client:
        assert [client.get(runs_url(small)).status_code for _ in range(2)] == [200, 200]
        throttled = client.get(runs_url(small))
    assert throttled.status_code == 429
    platform = int(throttled.headers["itwinplatform-ratelimit-retry-after-seconds"])
    assert 3500 < platform <= 3600
    if form is None:
        assert throttled.headers["retry-after"] == str(platform)
    else:
        assert "retry-after" not in throttled.headers


def test_a_throttled_token_endpoint_says_how_long_to_wait() -> None:
    faults = Faults(token_endpoint_throttled_s=1800)
    with SimulatorServer(SimulatorConfig(faults=faults)) as sim:
        form = {
            "grant_type": "client_credentials",
            "client_id": sim.client_id,
            "client_secret": sim.client_secret,
        }
        answer = httpx.post(sim.token_url, data=form)
    assert answer.status_code == 429
    assert answer.headers["retry-after"] == "1800"
    assert answer.headers["itwinplatform-ratelimit-retry-after-seconds"] == "1800"
