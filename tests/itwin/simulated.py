"""A small simulator per test and client settings for it (shared by the client tests)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pipeline.itwin.client import CallStats, ExportApiClient
from pipeline.itwin.settings import Secret, Settings
from pipeline.simulator.config import Faults, SimulatorConfig
from pipeline.simulator.server import SimulatorServer

RUNS = 120  # three pages of 50


@contextmanager
def simulator(faults: Any = None, **config: Any) -> Iterator[Any]:
    """A running simulator with three connections of three pages each (by default)."""
    values: dict[str, Any] = {"seed": 1, "connections": 3, "runs_per_connection": RUNS}
    values.update(config)
    with SimulatorServer(SimulatorConfig(faults=faults or Faults(), **values)) as sim:
        yield sim


def sim_settings(sim: Any, *, oauth: bool = False, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "base_url": sim.base_url,
        "token_url": sim.token_url,
        "rate_limit_per_minute": 60_000.0,
        "backoff_base_s": 0.02,
        "backoff_cap_s": 0.2,
        "max_retries": 8,
        "connect_timeout_s": 1.0,
        "read_timeout_s": 1.0,
        "request_deadline_s": 20.0,
    }
    if oauth:
        values.update(client_id=sim.client_id, client_secret=Secret(sim.client_secret))
    else:
        values["access_token"] = Secret(sim.static_token)
    values.update(changes)
    return Settings(**values)


async def all_runs(client: ExportApiClient, connection_id: str, stats: CallStats) -> list[str]:
    ids: list[str] = []
    async for page in client.list_runs(connection_id, stats=stats):
        ids.extend(run["id"] for run in page.runs)
    return ids


def token_requests(sim: Any) -> int:
    return sum(1 for r in sim.requests if r.path.endswith("/connect/token"))
