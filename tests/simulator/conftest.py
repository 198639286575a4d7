"""Fixtures: a running simulator and an httpx client that carries its static token."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from pipeline.simulator.config import SimulatorConfig
from pipeline.simulator.server import SimulatorServer


@pytest.fixture
def sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(SimulatorConfig(seed=11, connections=4, imodels=2)) as server:
        yield server


def client_for(server: SimulatorServer, **kwargs: object) -> httpx.Client:
    return httpx.Client(
        base_url=server.base_url,
        headers={"Authorization": f"Bearer {server.static_token}"},
        timeout=10,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
def client(sim: SimulatorServer) -> Iterator[httpx.Client]:
    with client_for(sim) as c:
        yield c
