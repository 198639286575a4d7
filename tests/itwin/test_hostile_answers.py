"""Answers that must not take the process down or spoil a page, over loopback HTTP.

Compression bombs are refused at the answer-size cap without inflating the rest and
without a retry; a bad run inside a page comes back rejected with its reason and raw
text while the page's other runs load; the page is fetched once.
"""

from __future__ import annotations

import gzip
import struct
import threading
import time
import zlib
from typing import Any

import orjson
import psutil
import pytest

from pipeline.itwin.client import ExportApiClient, RunsPage
from pipeline.itwin.errors import (
    AnswerTooLargeError,
    PagingError,
    ServiceUnavailableError,
    UnusableAnswerError,
)
from pipeline.itwin.settings import Secret, Settings
from tests.reliability.helpers import Recorder, Reply

TOKEN = "hostile-answers-token-5c1e"
CONNECTION = "c0ffee00-0000-4000-8000-000000000001"
INFLATED_BYTES = 1 << 30  # each bomb inflates to 1 GiB


def _bomb(encoding: str) -> bytes:
    """1 GiB of zeros, gzip or zlib-wrapped deflate, made without ever holding 1 GiB.

    After a full flush a deflate stream starts afresh, so one compressed megabyte of
    zeros can be repeated; only the checksum at the end must cover the whole.
    """
    zeros = bytes(1 << 20)
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = packer.compress(zeros) + packer.flush(zlib.Z_FULL_FLUSH)
    count = INFLATED_BYTES >> 20
    stream = block * count + packer.flush()
    if encoding == "gzip":
        crc = 0
        for _ in range(count):
            crc = zlib.crc32(zeros, crc)
        header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
        return header + stream + struct.pack("<II", crc, INFLATED_BYTES & 0xFFFFFFFF)
    adler = 1
    for _ in range(count):
        adler = zlib.adler32(zeros, adler)
    return b"\x78\xda" + stream + struct.pack(">I", adler)


@pytest.fixture(scope="module")
def bombs() -> dict[str, bytes]:
    return {"gzip": _bomb("gzip"), "deflate": _bomb("deflate")}


def settings_for(server: Recorder, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "base_url": server.base_url,
        "access_token": Secret(TOKEN),
        "rate_limit_per_minute": 60_000.0,
        "backoff_base_s": 0.01,
        "backoff_cap_s": 0.05,
        "max_retries": 3,
        "connect_timeout_s": 5.0,
        "read_timeout_s": 30.0,
        "request_deadline_s": 60.0,
    }
    values.update(changes)
    return Settings(**values)


class PeakRss:
    """Samples this process's resident memory in a thread; ``growth`` is peak minus start."""

    def __init__(self) -> None:
        self._process = psutil.Process()
        self.start = self.peak = self._process.memory_info().rss
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            time.sleep(0.005)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.start) / (1 << 20)


async def pages_of(settings: Settings) -> list[RunsPage]:
    async with ExportApiClient(settings) as client:
        return [page async for page in client.list_runs(CONNECTION)]


@pytest.mark.anyio
@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_a_compression_bomb_is_refused_at_the_cap_once_and_memory_stays_bounded(
    encoding: str, bombs: dict[str, bytes]
) -> None:
    body = bombs[encoding]
    reply = Reply(200, body, {"Content-Encoding": encoding})
    with (
        Recorder(lambda hit, n: reply) as server,
        PeakRss() as rss,
        pytest.raises(AnswerTooLargeError) as caught,
    ):
        await pages_of(settings_for(server, max_answer_mb=16))
    message = str(caught.value)
    print(f"{encoding} bomb: {len(body)} bytes sent, peak RSS growth {rss.growth_mb:.0f} MB")
    assert len(server.hits) == 1  # refused, not retried
    assert f"/export/connections/{CONNECTION}/runs" in message and "max_answer_mb" in message
    assert TOKEN not in message
    assert rss.growth_mb < 200  # 1 GiB inflated would show; the cap is 16 MB


@pytest.mark.anyio
async def test_a_huge_plain_page_is_refused_by_its_declared_length_before_reading() -> None:
    body = b'{"runs": [' + b'{"id": "x"},' * 200_000 + b'{"id": "y"}]}'
    with (
        Recorder(lambda hit, n: Reply(200, body)) as server,
        pytest.raises(AnswerTooLargeError, match="larger than max_answer_mb"),
    ):
        await pages_of(settings_for(server, max_answer_mb=1))
    assert len(server.hits) == 1


@pytest.mark.anyio
async def test_a_gzip_page_under_the_cap_is_read_as_usual() -> None:
    runs = [{"id": f"run-{i}", "state": "Completed"} for i in range(60)]
    body = gzip.compress(orjson.dumps({"runs": runs}))
    reply = Reply(200, body, {"Content-Encoding": "gzip"})
    with Recorder(lambda hit, n: reply) as server:
        pages = await pages_of(settings_for(server))
    assert [r["id"] for r in pages[0].runs] == [r["id"] for r in runs]
    assert server.hits[0].headers.get("Accept-Encoding") == "gzip, deflate"


def page_with(bad: bytes, good: int = 59) -> bytes:
    runs = [orjson.dumps({"id": f"run-{i}", "state": "Completed"}) for i in range(good)]
    runs.insert(30, bad)
    return b'{"runs": [' + b", ".join(runs) + b'], "_links": {"self": {"href": "x"}}}'


DEEP = b'{"id": "deep", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (b'{"id": "r", "tasks": [{"error": {"value": NaN}}]}', "nan is not a finite number"),
        (b'{"id": "r", "tasks": [{"error": {"value": Infinity}}]}', "inf is not a finite"),
        (b'{"id": "r", "tasks": [{"error": {"value": 1e999}}]}', "inf is not a finite"),
        (b'{"id": "r", "tasks": [{"error": {"message": "\\udc00"}}]}', "lone surrogate"),
        (DEEP, "nested too deeply"),
    ],
    ids=["nan", "infinity", "1e999", "lone-surrogate", "deep-nesting"],
)
async def test_one_bad_run_is_rejected_and_the_other_59_come_back_from_one_fetch(
    bad: bytes, reason: str
) -> None:
    with Recorder(lambda hit, n: Reply(200, page_with(bad))) as server:
        pages = await pages_of(settings_for(server))
    assert len(server.hits) == 1
    (page,) = pages
    assert len(page.runs) == 59 and "r" not in {run["id"] for run in page.runs}
    (rejected,) = page.rejected
    assert rejected.index == 30 and reason in rejected.reason
    assert rejected.raw == bad.decode()


@pytest.mark.anyio
async def test_a_page_cut_short_is_still_an_error_after_retries_not_a_rejected_run() -> None:
    cut = page_with(b'{"id": "r"}')[:-40]
    with (
        Recorder(lambda hit, n: Reply(200, cut)) as server,
        pytest.raises(ServiceUnavailableError, match="unreadable 200 answer"),
    ):
        await pages_of(settings_for(server, max_retries=2))
    assert len(server.hits) == 3


@pytest.mark.anyio
async def test_a_run_with_a_repeated_key_is_kept_with_its_raw_text() -> None:
    twice = b'{"id": "r", "state": "Failed", "state": "Completed"}'
    with Recorder(lambda hit, n: Reply(200, page_with(twice))) as server:
        (page,) = await pages_of(settings_for(server))
    assert len(server.hits) == 1 and len(page.runs) == 60 and page.rejected == ()
    (duplicate,) = page.duplicate_keys
    assert duplicate.index == 30 and duplicate.raw == twice.decode()


@pytest.mark.anyio
async def test_a_single_run_answer_with_an_unusable_value_fails_once_with_its_raw_text() -> None:
    body = b'{"run": {"id": "r", "tasks": [{"error": {"value": NaN}}]}}'
    with (
        Recorder(lambda hit, n: Reply(200, body)) as server,
        pytest.raises(UnusableAnswerError) as caught,
    ):
        async with ExportApiClient(settings_for(server)) as client:
            await client.get_run(CONNECTION, "r")
    assert len(server.hits) == 1
    assert caught.value.raw == body.decode() and "nan is not a finite number" in caught.value.reason
    assert "/runs/r" in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.anyio
async def test_a_next_link_with_a_password_in_it_is_not_followed() -> None:
    def respond(hit: Any, n: int) -> Reply:
        link = f"http://user:pw@127.0.0.1:{server.port}/export/connections/{CONNECTION}/runs?p=2"
        return Reply(200, orjson.dumps({"runs": [{"id": "a"}], "_links": {"next": {"href": link}}}))

    with Recorder(respond) as server, pytest.raises(PagingError, match="user name or password"):
        await pages_of(settings_for(server))
    assert len(server.hits) == 1


@pytest.mark.anyio
async def test_a_page_of_only_bad_runs_still_leads_to_the_next_page() -> None:
    def respond(hit: Any, n: int) -> Reply:
        if "p=2" in hit.path:
            return Reply(200, b'{"runs": [{"id": "good"}]}')
        link = f"/export/connections/{CONNECTION}/runs?p=2"
        return Reply(
            200, b'{"runs": [{"id": NaN}], "_links": {"next": {"href": "%s"}}}' % link.encode()
        )

    with Recorder(respond) as server:
        first, second = await pages_of(settings_for(server))
    assert (first.runs, len(first.rejected)) == ([], 1)
    assert second.runs == [{"id": "good"}] and len(server.hits) == 2
