"""The merging writer: what queues during a write goes into the next one, and every
waiting connection hears the outcome of its own write."""

from __future__ import annotations

import asyncio

import pytest

from pipeline.collection.loading import MergingWriter
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
        async with MergingWriter(load) as writer:
            first = writer.hand_over(runs("c0", 3))
            await asyncio.sleep(0)  # the consumer takes it alone
            rest = [writer.hand_over(runs(f"c{i}", 3)) for i in range(1, 5)]
            await asyncio.gather(first, *rest)
            assert writer.waiting == 0

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
        async with MergingWriter(load) as writer:
            first = writer.hand_over(runs("c0", 2))
            await asyncio.sleep(0)
            rest = [writer.hand_over(runs(f"c{i}", 2)) for i in range(1, 3)]
            outcomes = await asyncio.gather(first, *rest, return_exceptions=True)
            # The consumer goes on after a failed write.
            outcomes.append(await writer.write(runs("c9", 1)))
            return outcomes

    outcomes = asyncio.run(main())
    assert isinstance(outcomes[0], LoadStats)
    assert all(isinstance(o, OSError) for o in outcomes[1:3])
    assert isinstance(outcomes[3], LoadStats)


@pytest.mark.parametrize("n", [0, 1])
def test_a_lone_load_is_not_delayed(n: int) -> None:
    written: list[int] = []

    async def load(batch: list[FetchedRun]) -> LoadStats:
        written.append(len(batch))
        return LoadStats()

    async def main() -> LoadStats:
        async with MergingWriter(load) as writer:
            return await writer.write(runs("c", n))

    assert isinstance(asyncio.run(main()), LoadStats)
    assert written == [n]


def test_leaving_on_an_error_cancels_what_is_still_queued() -> None:
    handed: list[asyncio.Future[LoadStats]] = []

    async def main() -> None:
        gate = asyncio.Event()

        async def load(batch: list[FetchedRun]) -> LoadStats:
            await gate.wait()  # never set: the write is still running when we leave
            return LoadStats()

        async with MergingWriter(load) as writer:
            handed.append(writer.hand_over(runs("a", 1)))
            await asyncio.sleep(0)
            handed.append(writer.hand_over(runs("b", 1)))
            raise RuntimeError("the collection failed")

    with pytest.raises(RuntimeError):
        asyncio.run(main())
    assert all(f.cancelled() for f in handed)


def test_leaving_normally_writes_what_was_handed_over_even_if_nobody_waits() -> None:
    written: list[str] = []

    async def main() -> None:
        async def load(batch: list[FetchedRun]) -> LoadStats:
            await asyncio.sleep(0.01)
            written.extend(r.payload["id"] for r in batch)
            return LoadStats()

        async with MergingWriter(load) as writer:
            first = writer.hand_over(runs("a", 1))
            first.cancel()  # its connection stopped waiting (a signal): still written
            writer.hand_over(runs("b", 2))

    asyncio.run(main())
    assert len(written) == 3


def test_handing_over_to_a_writer_not_running_says_how_to_use_it() -> None:
    async def load(batch: list[FetchedRun]) -> LoadStats:
        return LoadStats()

    async def main() -> None:
        MergingWriter(load).hand_over(runs("c", 1))

    with pytest.raises(RuntimeError, match="async with"):
        asyncio.run(main())


def test_the_next_batch_is_prepared_while_the_previous_one_is_written() -> None:
    events: list[str] = []

    async def main() -> None:
        first_write_may_end = asyncio.Event()

        async def prepare(batch: list[FetchedRun]) -> list[FetchedRun]:
            events.append("prepare " + batch[0].connection_id)
            return batch

        async def write(batch: list[FetchedRun]) -> LoadStats:
            name = batch[0].connection_id
            events.append("write " + name)
            if name == "a":
                await first_write_may_end.wait()
            events.append("written " + name)
            return LoadStats()

        async with MergingWriter(write, prepare=prepare) as writer:
            first = writer.hand_over(runs("a", 1))
            await asyncio.sleep(0.01)  # "a" is being written
            second = writer.hand_over(runs("b", 1))
            await asyncio.sleep(0.01)  # "b" is prepared meanwhile, not yet written
            assert events == ["prepare a", "write a", "prepare b"]
            first_write_may_end.set()
            await asyncio.gather(first, second)

    asyncio.run(main())
    # Writes stay in hand-over order: "b" is written only after "a" is.
    assert events == ["prepare a", "write a", "prepare b", "written a", "write b", "written b"]


def test_a_failed_preparation_fails_only_its_own_batch() -> None:
    async def prepare(batch: list[FetchedRun]) -> list[FetchedRun]:
        if batch[0].connection_id == "bad":
            raise ValueError("cannot flatten")
        return batch

    async def write(batch: list[FetchedRun]) -> LoadStats:
        return LoadStats()

    async def main() -> list[object]:
        async with MergingWriter(write, prepare=prepare) as writer:
            bad = await asyncio.gather(writer.write(runs("bad", 1)), return_exceptions=True)
            good = await writer.write(runs("good", 2))
            assert writer.waiting == 0
            return [*bad, good]

    outcomes = asyncio.run(main())
    assert isinstance(outcomes[0], ValueError)
    assert isinstance(outcomes[1], LoadStats)
