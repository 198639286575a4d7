"""Flatten a collection's batches in a child process, so the collecting process keeps its GIL.

During a collection one process runs the HTTP client (httpx and orjson hold the GIL) and
DuckDB (which does not); flattening is pure Python plus pyarrow and holds the GIL, so in
the same process it slows every request. The child (`python -m pipeline.transform.offload`,
a fresh interpreter, so the caller's state and main module are never re-run) gets each
batch as one JSON text per payload (orjson writes 5000 payloads in ~35 ms, a pickle of the
same dict trees takes ~220 ms), plus each run's connection id, fetch time and source, and
answers with the FlatBatch pickled (Arrow buffers out of band: cheap both ways). Only
run payloads go to the child: no settings, and its environment has no ITWIN_* variables
(no tokens).

Results are identical to `flatten_runs` in this process: payloads parsed by orjson (what
the API client hands over) come back from orjson text unchanged; a payload orjson cannot
write (not JSON: a non-string key, an integer beyond 64 bits...) goes pickled instead.
Payloads with NaN floats (orjson writes null) cannot come from JSON and are not expected
here: build them by hand and flatten them with `flatten_runs`.

A small collection flattens in a thread as before: the child starts only once
`offload_after_runs` runs have been flattened, and batches are flattened in the thread
until it is ready. If the child dies, errs or stops answering, it is stopped, a warning
names what happened, and that batch and all later ones are flattened in the thread:
flattening is pure and deterministic, so this loses and changes nothing. The child is
stopped and reaped by `close()` (the collector calls it on every way out).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import pickle
import signal
import subprocess
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import IO, Any, TypeVar

import orjson

from pipeline.messages import Piece, pickled, read_message, send_message, unpickle
from pipeline.transform.flatten import FetchedRun, FlatBatch, flatten_runs

log = logging.getLogger("pipeline.transform.offload")

_READY, _REQUEST, _BATCH, _FAILED = b"R", b"Q", b"B", b"F"
# A child is ready 0.2 s after it is started (warm caches; ~0.5 s cold), about what
# 2,500-5,000 runs cost to flatten in a thread; a collection that big is likely to go on.
OFFLOAD_AFTER_RUNS = 5_000
_START_TIMEOUT_S = 60.0
# Far above any real batch (5,000 runs take ~0.7 s): only a stuck child reaches it.
_BASE_TIMEOUT_S, _TIMEOUT_PER_RUN_S = 60.0, 0.002
_STOP_TIMEOUT_S = 5.0

T = TypeVar("T")


class FlatteningChildFailed(RuntimeError):
    """The flattening process died, failed or stopped answering; the text says which."""


def encode_runs(runs: Sequence[FetchedRun]) -> bytes:
    """Payloads as orjson text (pickled only where orjson cannot write them), plus metadata."""
    texts: list[bytes | None] = []
    others: dict[int, Any] = {}
    for i, run in enumerate(runs):
        try:
            texts.append(orjson.dumps(run.payload))
        except (TypeError, orjson.JSONEncodeError):
            texts.append(None)
            others[i] = run.payload  # the flattener names why; it must see it as it is
    meta = (
        [r.connection_id for r in runs],
        [r.fetched_at for r in runs],
        [r.source for r in runs],
    )
    return pickle.dumps((meta, texts, others), protocol=pickle.HIGHEST_PROTOCOL)


def decode_runs(body: bytes) -> list[FetchedRun]:
    (connections, fetched, sources), texts, others = pickle.loads(body)  # noqa: S301 - our parent
    return [
        FetchedRun(conn, orjson.loads(text) if text is not None else others[i], at, source)
        for i, (conn, at, source, text) in enumerate(
            zip(connections, fetched, sources, texts, strict=True)
        )
    ]


# --- the child ----------------------------------------------------------------------------


def main() -> int:
    """The child: answer each request on stdin with its FlatBatch on stdout, until EOF."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    try:
        send_message(stdout, _READY, b"")
        while (message := read_message(stdin)) is not None:
            kind, body = _answer(message)
            send_message(stdout, kind, *body)
    except (BrokenPipeError, EOFError):
        return 1  # the collector went away; it knows why
    return 0


def _answer(message: tuple[bytes, bytes]) -> tuple[bytes, list[Piece]]:
    kind, body = message
    try:
        if kind != _REQUEST:
            raise ValueError(f"unexpected message kind {kind!r}")
        batch = _flatten_without_gc(body)
        return _BATCH, pickled(batch)
    except Exception:
        return _FAILED, [traceback.format_exc().encode()]


def _flatten_without_gc(body: bytes) -> FlatBatch:
    # Decoding makes many small containers and no cycles; the cyclic collector's passes
    # over them cost ~20% of the decoding (measured), as in flatten_runs.
    gc.disable()
    try:
        return flatten_runs(decode_runs(body))
    finally:
        gc.enable()


# --- the parent's handle on one child (blocking calls: run them in a thread) -------------


def _child_environment() -> dict[str, str]:
    # Settings come from ITWIN_* variables (tokens, client secret); the child needs none.
    return {k: v for k, v in os.environ.items() if not k.startswith("ITWIN_")}


class FlatteningChild:
    """One child process; one request at a time."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(  # our own interpreter and module
            [sys.executable, "-m", "pipeline.transform.offload"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=_child_environment(),
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._in: IO[bytes] = self.proc.stdin
        self._out: IO[bytes] = self.proc.stdout

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self) -> None:
        kind, _ = self._expect("starting")
        if kind != _READY:
            raise FlatteningChildFailed(f"the flattening process said {kind!r} instead of ready")

    def flatten(self, runs: Sequence[FetchedRun]) -> FlatBatch:
        body = encode_runs(runs)
        try:
            send_message(self._in, _REQUEST, body)
        except (BrokenPipeError, ValueError, OSError) as exc:
            raise FlatteningChildFailed(f"{self.describe_exit()} (sending a batch: {exc})") from exc
        kind, answer = self._expect(f"flattening {len(runs)} runs")
        if kind == _FAILED:
            raise FlatteningChildFailed(f"flattening in the child failed:\n{answer.decode()}")
        batch = unpickle(answer)  # written by our own child process
        if kind != _BATCH or not isinstance(batch, FlatBatch):
            raise FlatteningChildFailed(f"unexpected answer from the flattening process: {kind!r}")
        return batch

    def _expect(self, doing: str) -> tuple[bytes, bytes]:
        try:
            message = read_message(self._out)
        except (EOFError, ValueError, OSError) as exc:
            message, why = None, f" ({exc})"
        else:
            why = ""
        if message is None:
            raise FlatteningChildFailed(f"{self.describe_exit()} while {doing}{why}")
        return message

    def describe_exit(self) -> str:
        try:
            code = self.proc.wait(timeout=1.0)  # it closed its stdout: it is ending
        except subprocess.TimeoutExpired:
            return f"the flattening process (pid {self.pid}) closed its output"
        if code < 0:
            name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
            return f"the flattening process (pid {self.pid}) was killed by {name}"
        return f"the flattening process (pid {self.pid}) exited with code {code}"

    def kill(self) -> None:
        """Stop it now; a thread blocked on its pipes then sees the end of the stream."""
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()

    def stop(self) -> None:
        """End it (EOF on its stdin ends its loop; kill if it does not go) and reap it."""
        with contextlib.suppress(OSError, ValueError):
            self._in.close()
        try:
            self.proc.wait(timeout=_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()
            self.proc.wait()


# --- what the collector uses --------------------------------------------------------------


class CollectionFlattener:
    """`flatten_runs` for a collection: in a thread, or in one child once it is worth it.

    Not for concurrent use by itself: the collector's loader flattens one batch at a time
    (a lock makes a second caller wait rather than interleave on the pipes).
    """

    def __init__(
        self,
        *,
        offload_after_runs: int | None = OFFLOAD_AFTER_RUNS,
        flatten_here: Callable[[Sequence[FetchedRun]], FlatBatch] = flatten_runs,
    ) -> None:
        self.offload_after_runs = offload_after_runs  # None: never start a child
        self.flatten_here = flatten_here
        self.runs_flattened = 0
        self.runs_offloaded = 0
        self.failure: str | None = None  # why the child was given up, if it was
        self._child: FlatteningChild | None = None
        self._ready: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._closed = False

    async def flatten(self, runs: Sequence[FetchedRun]) -> FlatBatch:
        async with self._lock:
            self.runs_flattened += len(runs)
            child = self._usable_child()
            if child is not None:
                try:
                    batch = await _bounded(child, self._timeout(runs), child.flatten, runs)
                except FlatteningChildFailed as exc:
                    self._give_up(str(exc))
                else:
                    self.runs_offloaded += len(runs)
                    return batch
            return await asyncio.to_thread(self.flatten_here, runs)

    def _usable_child(self) -> FlatteningChild | None:
        """The child if it is ready; else start it when due and flatten in the thread."""
        if self._ready is None:
            due = self.offload_after_runs is not None and not self._closed
            if due and self.runs_flattened >= (self.offload_after_runs or 0):
                self._start()
            return None
        if not self._ready.done():
            return None
        if self._ready.cancelled() or self._ready.exception() is not None:
            if self._child is not None:  # not given up yet
                self._give_up(f"the flattening process did not start: {self._ready_error()}")
            return None
        return self._child

    def _start(self) -> None:
        child = self._child = FlatteningChild()
        log.debug("started the flattening process (pid %d)", child.pid)
        self._ready = asyncio.ensure_future(_bounded(child, _START_TIMEOUT_S, child.wait_ready))
        self._ready.add_done_callback(_quiet)

    def _ready_error(self) -> str:
        assert self._ready is not None
        return "cancelled" if self._ready.cancelled() else str(self._ready.exception())

    @staticmethod
    def _timeout(runs: Sequence[FetchedRun]) -> float:
        return _BASE_TIMEOUT_S + _TIMEOUT_PER_RUN_S * len(runs)

    def _give_up(self, why: str) -> None:
        """Stop using the child for the rest of the collection; say so once."""
        self.failure = why
        child, self._child = self._child, None
        if child is not None:
            child.kill()
            child.proc.wait()  # reap now: it is dead or dying
            log.warning("%s; flattening in this process for the rest of the collection", why)

    def close(self) -> None:
        """Stop and reap the child (if any); later batches flatten in the thread."""
        self._closed = True
        starting = self._ready is not None and not self._ready.done()
        child, self._child = self._child, None
        if child is None:
            return
        if starting or self._lock.locked():
            child.kill()  # it is busy (the collection was cancelled or failed): no waiting
        child.stop()


async def _bounded(child: FlatteningChild, limit_s: float, fn: Callable[..., T], *args: Any) -> T:
    """Run a blocking call on the child in a thread; kill the child if it takes too long.

    Killing is what frees the thread (its read ends), so neither a stuck child nor a
    cancelled collection leaves a thread waiting.
    """
    work = asyncio.ensure_future(asyncio.to_thread(fn, *args))
    work.add_done_callback(_quiet)
    try:
        return await asyncio.wait_for(asyncio.shield(work), limit_s)
    except TimeoutError:
        child.kill()
        raise FlatteningChildFailed(
            f"the flattening process (pid {child.pid}) gave no answer in {limit_s:.0f} s; "
            "it was killed"
        ) from None
    except asyncio.CancelledError:
        child.kill()
        raise


def _quiet(future: asyncio.Future[Any]) -> None:
    # A call abandoned after a timeout or cancellation ends with an error nobody awaits.
    if not future.cancelled():
        future.exception()


if __name__ == "__main__":
    sys.exit(main())
