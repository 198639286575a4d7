"""Transport-level faults over a real loopback socket (no simulator needed).

A scripted raw HTTP server answers each request with the next behaviour: a body
cut short, a connection closed without an answer, a body dripped too slowly, and
finally a good answer; the client must get through all of them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from pipeline.itwin.client import CallStats, ExportApiClient
from pipeline.itwin.errors import ServiceUnavailableError
from tests.itwin.conftest import fast_settings, load_fixture

Behaviour = Callable[[asyncio.StreamWriter], Awaitable[None]]
BODY = json.dumps(load_fixture("get-connection-200.json")).encode()


def _head(length: int) -> bytes:
    return (
        f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


async def truncated(writer: asyncio.StreamWriter) -> None:
    writer.write(_head(len(BODY)) + BODY[:20])
    await writer.drain()


async def dropped(writer: asyncio.StreamWriter) -> None:
    return None


async def dripped(writer: asyncio.StreamWriter) -> None:
    writer.write(_head(len(BODY)))
    for i in range(len(BODY)):
        writer.write(BODY[i : i + 1])
        await writer.drain()
        await asyncio.sleep(0.05)


async def good(writer: asyncio.StreamWriter) -> None:
    writer.write(_head(len(BODY)) + BODY)
    await writer.drain()


class ScriptedServer:
    def __init__(self, script: list[Behaviour]) -> None:
        self.script = script
        self.seen = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            behaviour = self.script[min(self.seen, len(self.script) - 1)]
            self.seen += 1
            await behaviour(writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def serve() -> AsyncIterator[
    Callable[[list[Behaviour]], Awaitable[tuple[str, ScriptedServer]]]
]:
    servers: list[asyncio.Server] = []

    async def start(script: list[Behaviour]) -> tuple[str, ScriptedServer]:
        scripted = ScriptedServer(script)
        server = await asyncio.start_server(scripted.handle, "127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}", scripted

    yield start
    for server in servers:
        server.close()


@pytest.mark.anyio
async def test_cut_dropped_and_dripped_answers_are_retried(
    serve: Callable[..., Awaitable[tuple[str, ScriptedServer]]],
) -> None:
    base_url, server = await serve([truncated, dropped, dripped, good])
    settings = fast_settings(base_url=base_url, connect_timeout_s=0.3, read_timeout_s=0.3)
    stats = CallStats()
    async with ExportApiClient(settings) as client:
        connection = await client.get_connection("c1", stats=stats)
    assert connection["id"] == "fc226d0d-1647-48d7-8c11-f1f74f2d9808"
    assert server.seen == 4 and stats.retries == 3 and stats.requests == 4


@pytest.mark.anyio
async def test_the_request_deadline_bounds_all_attempts(
    serve: Callable[..., Awaitable[tuple[str, ScriptedServer]]],
) -> None:
    base_url, _ = await serve([dripped])
    settings = fast_settings(
        base_url=base_url,
        connect_timeout_s=0.2,
        read_timeout_s=0.2,
        request_deadline_s=0.5,
        max_retries=50,
    )
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with ExportApiClient(settings) as client:
        with pytest.raises(ServiceUnavailableError) as info:
            await client.get_connection("c1")
    assert loop.time() - started < 3.0
    assert info.value.connection_id == "c1"
