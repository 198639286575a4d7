"""Serve the simulated Export API over real loopback HTTP.

INTERFACE STUB (issue 2): the implementation is being written.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any


class SimulatorServer:
    """Start the simulator in a background thread on a free loopback port.

    with SimulatorServer(SimulatorConfig(seed=1)) as sim:
        sim.base_url      # "http://127.0.0.1:PORT"
        sim.token_url     # f"{sim.base_url}/connect/token"
        sim.static_token  # a bearer token the server accepts
        sim.client_id, sim.client_secret
        sim.connection_ids, sim.imodel_ids
        sim.world         # the data model; sim.world.advance(seconds) moves time
        sim.faults        # mutable fault settings
        sim.requests      # log of (method, path, query, headers) received
    """

    def __init__(self, config: Any = None, *, port: int = 0) -> None:
        raise NotImplementedError

    def __enter__(self) -> SimulatorServer:
        raise NotImplementedError

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        raise NotImplementedError
