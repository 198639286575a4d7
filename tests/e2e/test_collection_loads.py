"""Loads asked for while another runs are merged, and every waiting connection hears the outcome."""

from __future__ import annotations

import asyncio

import pytest

from pipeline.collection import _MergingLoader
from pipeline.transform.flatten import FetchedRun
from pipeline.warehouse.loader import LoadStats
from tests.transform.builders import T0, run


def runs(conn: str, n: int) -> list[FetchedRun]:
    return [FetchedRun(conn, run(f"{conn}-{i}"), T0) for i in range(n)]


def test_concurrent_loads_merge_and_each_waits_for_its_own_runs() -> None:
    calls: list[list[str]] = []

    async def load(batch: list[FetchedRun]) -> LoadStats:
        calls.append(sorted({r.connection_id for r in batch}))
        await asyncio.sleep(0.01)
        return LoadStats()

    async def main() -> None:
        loader = _MergingLoader(load)
        await asyncio.gather(*(loader.submit(runs(f"c{i}", 3)) for i in range(5)))

    asyncio.run(main())
    assert calls[0] == ["c0"]  # the first load starts at once
    assert calls[1:] == [["c1", "c2", "c3", "c4"]]  # the rest, queued meanwhile, go together


def test_a_failed_merged_load_fails_every_connection_in_it() -> None:
    async def load(batch: list[FetchedRun]) -> LoadStats:
        await asyncio.sleep(0.01)
        if len({r.connection_id for r in batch}) > 1:
            raise OSError("disk full")
        return LoadStats()

    async def main() -> list[object]:
        loader = _MergingLoader(load)
        subs = [loader.submit(runs(f"c{i}", 2)) for i in range(3)]
        return await asyncio.gather(*subs, return_exceptions=True)

    outcomes = asyncio.run(main())
    assert isinstance(outcomes[0], LoadStats)
    assert all(isinstance(o, OSError) for o in outcomes[1:])


@pytest.mark.parametrize("n", [0, 1])
def test_a_lone_load_is_not_delayed(n: int) -> None:
    async def load(batch: list[FetchedRun]) -> LoadStats:
        return LoadStats()

    assert isinstance(asyncio.run(_MergingLoader(load).submit(runs("c", n))), LoadStats)
