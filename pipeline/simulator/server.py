"""Serve the simulated Export API over real loopback HTTP, in a background thread.

uvicorn runs the ASGI app on a socket bound before start-up (port 0 picks a free port, with no
race between choosing and binding). A small protocol subclass remembers each connection's
transport so the app can drop or reset connections, which ASGI alone cannot express.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from typing import Any

import uvicorn

from pipeline.simulator.app import SimulatorApp
from pipeline.simulator.asgi import RecordedRequest
from pipeline.simulator.config import Faults, SimulatorConfig
from pipeline.simulator.world import World

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _BaseProtocol
except ImportError:  # pragma: no cover - httptools missing: fall back to the pure-Python parser
    from uvicorn.protocols.http.h11_impl import H11Protocol as _BaseProtocol  # type: ignore[assignment]


def _protocol_class(transports: dict[Any, asyncio.Transport]) -> type[asyncio.Protocol]:
    """A uvicorn HTTP protocol that registers each connection's transport by peer address."""

    class _Protocol(_BaseProtocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            peer = transport.get_extra_info("peername")
            if peer is not None:
                transports[tuple(peer[:2])] = transport

        def connection_lost(self, exc: Exception | None) -> None:
            peer = self.transport.get_extra_info("peername") if self.transport else None
            if peer is not None:
                transports.pop(tuple(peer[:2]), None)
            super().connection_lost(exc)

    return _Protocol


class SimulatorServer:
    """Start the simulator in a background thread on a free loopback port.

    with SimulatorServer(SimulatorConfig(seed=1)) as sim:
        sim.base_url      # "http://127.0.0.1:PORT"
        sim.token_url     # f"{sim.base_url}/connect/token"
        sim.static_token  # a bearer token the server accepts
        sim.client_id, sim.client_secret
        sim.connection_ids         # every connection
        sim.direct_connection_ids  # what a user would list ...
        sim.imodel_ids             # ... plus the iModels whose connections are discovered
        sim.world         # the data model; sim.world.advance(seconds) moves time
        sim.faults        # mutable fault settings, read on every request
        sim.requests      # RecordedRequest log (method, path, query, headers, status)
    """

    def __init__(self, config: SimulatorConfig | None = None, *, port: int = 0) -> None:
        self.config = config or SimulatorConfig()
        self.world = World(self.config)
        self.requests: list[RecordedRequest] = []
        self._transports: dict[Any, asyncio.Transport] = {}
        self.app = SimulatorApp(self.config, self.world, self.requests, self._transports)
        self._requested_port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self.port = 0
        conns = list(self.world.connections.values())
        self.connection_ids = [c.id for c in conns]
        self.direct_connection_ids = [c.id for c in conns if c.direct]
        self.imodel_ids = sorted(
            {c.imodel_id for c in conns if not c.direct and c.imodel_id is not None},
            key=list(self.world.imodels).index,
        )

    @property
    def faults(self) -> Faults:
        return self.config.faults

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/connect/token"

    @property
    def static_token(self) -> str:
        return self.config.static_token

    @property
    def client_id(self) -> str:
        return self.config.client_id

    @property
    def client_secret(self) -> str:
        return self.config.client_secret

    def environment(self) -> dict[str, str]:
        """The ITWIN_* variables that point `itwin-runs` at this simulator."""
        return {
            "ITWIN_API_BASE_URL": self.base_url,
            "ITWIN_ACCESS_TOKEN": self.static_token,
            "ITWIN_CLIENT_ID": self.client_id,
            "ITWIN_CLIENT_SECRET": self.client_secret,
            "ITWIN_TOKEN_URL": self.token_url,
            "ITWIN_CONNECTION_IDS": ",".join(self.direct_connection_ids),
            "ITWIN_IMODEL_IDS": ",".join(self.imodel_ids),
        }

    def start(self) -> SimulatorServer:
        """Bind, start serving in a daemon thread, and return once requests are accepted."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self._requested_port))
        sock.listen(1024)
        self._socket = sock
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            http=_protocol_class(self._transports),
            timeout_graceful_shutdown=1,
            timeout_keep_alive=30,
        )
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(
            target=server.run,
            kwargs={"sockets": [sock]},
            name=f"simulator:{self.port}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the simulator did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        """Stop serving and release the port; safe to call twice."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
            if self._thread.is_alive() and self._server is not None:
                self._server.force_exit = True
                self._thread.join(timeout=2)
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
