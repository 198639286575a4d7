"""Request times are stored while a collection runs, not only at its end (a crash loses
little of the hourly budget's history), and pruned past the hour."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pipeline.collection.loading import WarehouseGate
from pipeline.collection.requests_log import RequestRecorder
from pipeline.warehouse.store import open_warehouse

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class FakeClient:
    def __init__(self) -> None:
        self.times: list[datetime] = []

    def request_times(self) -> list[datetime]:
        return list(self.times)


def test_request_times_are_stored_as_the_collection_goes_and_old_ones_pruned(
    tmp_path: Path,
) -> None:
    client = FakeClient()

    def count(warehouse: Any) -> int:
        return int(warehouse.con.execute("select count(*) from api_requests").fetchall()[0][0])

    with open_warehouse(tmp_path / "w.duckdb") as warehouse:
        warehouse.bookkeeping.requests.record_requests(
            [NOW - timedelta(hours=2)], NOW - timedelta(hours=2)
        )
        gate = WarehouseGate(warehouse)
        seen_during: list[int] = []

        async def main() -> None:
            async with RequestRecorder(client, gate, lambda: NOW, every_s=0.01):  # type: ignore[arg-type]
                client.times += [NOW - timedelta(seconds=5), NOW - timedelta(seconds=4)]
                for _ in range(100):
                    await asyncio.sleep(0.01)
                    seen_during.append(await gate.call(count, warehouse))
                    if seen_during[-1] == 2:
                        break
                client.times.append(NOW)

        asyncio.run(main())
        assert seen_during[-1] == 2  # stored before the end, the 2-hour-old one pruned
        assert warehouse.bookkeeping.requests.recent_requests(NOW) == [
            NOW - timedelta(seconds=5),
            NOW - timedelta(seconds=4),
            NOW,
        ]
