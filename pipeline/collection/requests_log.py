"""The hourly budget across collections: request times read from and stored in the warehouse."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime

from pipeline.collection.loading import WarehouseGate
from pipeline.itwin.client import ExportApiClient

log = logging.getLogger("pipeline.collection")

# How often the request times of a running collection are stored, so a crash loses little.
RECORD_EVERY_S = 10.0


class RequestRecorder:
    """Stores the client's new request times now and then, and at the end.

    Use as `async with` around the collection.
    """

    def __init__(
        self,
        client: ExportApiClient,
        gate: WarehouseGate,
        now: Callable[[], datetime],
        every_s: float = RECORD_EVERY_S,
    ) -> None:
        self._client = client
        self._gate = gate
        self._now = now
        self._every_s = every_s
        self._stored = 0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> RequestRecorder:
        self._task = asyncio.create_task(self._every_while())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        # Shielded: a cancelled collection still stores the requests it sent.
        await asyncio.shield(self.record())

    async def record(self) -> None:
        times = self._client.request_times()
        new = times[self._stored :]
        try:
            await self._gate.call(
                self._gate.warehouse.bookkeeping.requests.record_requests, new, self._now()
            )
        except Exception:
            # Only the next collection's pacing loses them; the API still has the last word.
            log.exception("could not store the times of %d API requests", len(new))
            return
        self._stored = len(times)

    async def _every_while(self) -> None:
        while True:
            await asyncio.sleep(self._every_s)
            with contextlib.suppress(Exception):
                await self.record()
