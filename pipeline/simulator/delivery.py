"""Drawing each request's faults and delivering the answer with them: whole, broken or slow."""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any

from pipeline.simulator import responses as r
from pipeline.simulator.asgi import RecordedRequest, Scope, Send
from pipeline.simulator.config import Faults
from pipeline.simulator.faults import Draw, Fault, draw


class FaultyDelivery:
    """Chooses a request's faults and sends its answer as they say."""

    def __init__(self, faults: Faults, transports: dict[Any, asyncio.Transport]) -> None:
        self.faults = faults
        self._transports = transports  # (host, port) of the client -> its transport
        self._attempts: dict[str, int] = {}

    def draw(self, url: str) -> Draw:
        """This request's faults; each retry of a URL gets a fresh, reproducible draw."""
        attempt = self._attempts.get(url, 0)
        self._attempts[url] = attempt + 1
        return draw(self.faults, url, attempt)

    async def send(
        self, scope: Scope, send: Send, reply: r.Reply, record: RecordedRequest, chosen: Draw
    ) -> None:
        """Apply the drawn faults to the answer and send it."""
        faults = self.faults
        fault = chosen.fault
        if chosen.slow:
            await asyncio.sleep(faults.slow_seconds)
        if fault is Fault.ERROR_5XX:
            reply = r.server_error((500, 502, 503, 504)[int(chosen.rng.random() * 4)])
            if reply.status == 503 and chosen.rng.random() < 0.5:
                reply.headers.append((b"retry-after", b"1"))  # gateways sometimes say when
        elif fault in (Fault.TRUNCATED, Fault.NON_JSON, Fault.DRIP) and reply.status != 200:
            fault = None
        record.fault = fault.value if fault else None
        if fault is Fault.TRUNCATED:
            cut = max(1, int(len(reply.body) * (0.1 + 0.8 * chosen.rng.random())))
            reply.body = reply.body[:cut]
        elif fault is Fault.NON_JSON:
            reply = r.Reply(200, r.HTML_ERROR_PAGE, r.HTML_TYPE)
        if fault in (Fault.DROP_BEFORE, Fault.DROP_MID):
            await self._drop(scope, send, reply, record, fault, chosen.rng.random() < 0.5)
        elif fault is Fault.DRIP:
            await self._drip(send, reply, record)
        else:
            await self.deliver(send, reply, record)

    @staticmethod
    async def _start(send: Send, reply: r.Reply, length: int) -> None:
        headers = [
            (b"content-type", reply.content_type),
            (b"content-length", str(length).encode()),
            *reply.headers,
        ]
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})

    async def deliver(self, send: Send, reply: r.Reply, record: RecordedRequest) -> None:
        """Send the whole answer at once."""
        record.status = reply.status
        await self._start(send, reply, len(reply.body))
        await send({"type": "http.response.body", "body": reply.body})

    async def _drip(self, send: Send, reply: r.Reply, record: RecordedRequest) -> None:
        record.status = reply.status
        body = reply.body
        # At most about 20 chunks, so a drip is slow but ends in bounded time.
        chunk = max(self.faults.drip_chunk_bytes, len(body) // 20 + 1)
        await self._start(send, reply, len(body))
        for at in range(0, len(body), chunk):
            more = at + chunk < len(body)
            await send(
                {"type": "http.response.body", "body": body[at : at + chunk], "more_body": more}
            )
            if more:
                await asyncio.sleep(self.faults.drip_interval_s)

    async def _drop(
        self,
        scope: Scope,
        send: Send,
        reply: r.Reply,
        record: RecordedRequest,
        fault: Fault,
        reset: bool,
    ) -> None:
        record.status = 0
        transport = self._transports.get(scope.get("client"))
        if transport is None:  # cannot happen under SimulatorServer; answer something broken
            await self.deliver(send, r.server_error(502), record)
            return
        if fault is Fault.DROP_MID:
            await self._start(send, reply, len(reply.body))
            await send(
                {
                    "type": "http.response.body",
                    "body": reply.body[: len(reply.body) // 2],
                    "more_body": True,
                }
            )
        sock = transport.get_extra_info("socket")
        if reset and sock is not None:
            # SO_LINGER 0 turns the close into a TCP reset ("connection reset by peer").
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
        await asyncio.sleep(0)  # let the server see the connection lost before we return
