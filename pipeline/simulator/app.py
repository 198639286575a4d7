"""The ASGI application: each request through the gate, the routes and the fault delivery.

Written as a bare ASGI callable rather than on a framework because faults need byte-level
control of delivery (drip, cut bodies, resets) and the hot path should not copy bodies.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import unquote

from pipeline.simulator import responses as r
from pipeline.simulator.asgi import Receive, RecordedRequest, Scope, Send
from pipeline.simulator.auth import TokenStore
from pipeline.simulator.config import Faults, SimulatorConfig
from pipeline.simulator.delivery import FaultyDelivery
from pipeline.simulator.faults import Fault
from pipeline.simulator.gate import Gatekeeper
from pipeline.simulator.routes import ExportRoutes
from pipeline.simulator.world import World

__all__ = ["RecordedRequest", "SimulatorApp"]


class SimulatorApp:
    """Serves the token endpoint and the four Export API calls."""

    def __init__(
        self,
        config: SimulatorConfig,
        world: World,
        requests: list[RecordedRequest],
        transports: dict[Any, asyncio.Transport],
    ) -> None:
        self.faults: Faults = config.faults
        self.tokens = TokenStore(config, lambda: time.monotonic() + world.advanced_seconds)
        self.requests = requests
        self.gate = Gatekeeper(self.faults, self.tokens)
        self.routes = ExportRoutes(config, world)
        self.delivery = FaultyDelivery(self.faults, transports)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        raw_path = scope["raw_path"].decode("latin-1")
        query = scope["query_string"].decode("latin-1")
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        record = RecordedRequest(scope["method"], raw_path, unquote(query), headers, query)
        self.requests.append(record)
        faults = self.faults
        if faults.latency_s > 0:
            await asyncio.sleep(faults.latency_s)
        if raw_path == "/connect/token":
            reply = await self.gate.token(scope, receive, headers)
            await self.delivery.deliver(send, reply, record)
            return
        await self._api(scope, send, record)

    async def _api(self, scope: Scope, send: Send, record: RecordedRequest) -> None:
        """Answer an Export API call: auth, rate limit, route, then the drawn faults."""
        chosen = self.delivery.draw(f"{record.path}?{record.raw_query}")
        limit_headers: list[tuple[bytes, bytes]] = []
        reply = self.gate.authorize_and_limit(record.headers, limit_headers)
        if reply is None:
            if chosen.fault in (Fault.ERROR_5XX, Fault.DROP_BEFORE):
                reply = r.Reply(200, b"")  # never sent: spare the rendering
            else:
                reply = self.routes.route(
                    record.method, record.path, record.raw_query, record.headers
                )
            reply.headers.extend(limit_headers)
        await self.delivery.send(scope, send, reply, record, chosen)
