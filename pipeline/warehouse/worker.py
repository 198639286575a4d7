"""Read and flatten files in a child process while this one writes DuckDB.

Parsing and flattening are Python-bound and DuckDB's inserts are not, so with two cores
they overlap. The child (`python -m pipeline.warehouse.worker`, a fresh interpreter, so
nothing of the caller's state or main module is re-run) writes each batch to its
stdout as a length-prefixed pickle with the Arrow buffers out of band. Where the system
has memory files (Linux), the pickle goes into one and only its descriptor crosses a
Unix socket, so the loader maps the batch instead of copying it through the pipe (see
pipeline.messages). The child waits while the loader is behind (the pipe and the
read-ahead queue are small), which bounds memory to about two batches. Batches arrive
in file order and are loaded as they would be in one process.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from queue import Full, Queue
from typing import IO, TYPE_CHECKING, Any

from pipeline.itwin.errors import ITwinRunsError
from pipeline.messages import (
    SHARED_MEMORY,
    pickled,
    read_message,
    receive_shared,
    send_message,
    send_shared,
    unpickle,
)

if TYPE_CHECKING:  # imported where used: the loader starts this child before importing pyarrow
    from pipeline.warehouse.reading import FileBatch

_BATCH, _SHARED, _FAILED = b"B", b"S", b"F"
# Batches received ahead of the loader (about 20 MB each at 2,500 runs).
READ_AHEAD_BATCHES = 2


class WorkerFailedError(ITwinRunsError):
    """The reading process failed or died; nothing after its last batch was loaded."""


class ReadingWorker:
    """A child process reading and flattening `files`, started at once; iterate for batches.

    Starting it before the loader imports pyarrow and DuckDB overlaps the child's own
    start-up (about 0.4 s) with theirs. Close it (or use it as a context manager) when
    done, also when it was never iterated: that stops the child.
    """

    def __init__(self, files: Sequence[Path], connection_id: str, batch_runs: int) -> None:
        self.files = list(files)
        request: dict[str, Any] = {
            "files": [str(f) for f in self.files],
            "connection": connection_id,
            "batch": batch_runs,
        }
        pair = socket.socketpair() if SHARED_MEMORY else None
        self._socket: socket.socket | None = pair[0] if pair else None
        theirs = pair[1] if pair else None
        if theirs is not None:
            request["fd_socket"] = theirs.fileno()
        self._child = subprocess.Popen(  # our own interpreter and module
            [sys.executable, "-m", "pipeline.warehouse.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            pass_fds=[theirs.fileno()] if theirs is not None else [],
        )
        if theirs is not None:
            theirs.close()  # the child's end: with only the child holding it, its exit ends ours
        assert self._child.stdin is not None and self._child.stdout is not None
        self._child.stdin.write(json.dumps(request).encode())
        self._child.stdin.close()

    def __iter__(self) -> Iterator[FileBatch]:
        """The same batches as `flattened_batches` over the files, in order."""
        assert self._child.stdout is not None
        try:
            yield from _read_ahead(_receive(self._child.stdout, self._socket), READ_AHEAD_BATCHES)
            if self._child.wait() != 0:
                raise WorkerFailedError(
                    f"the file reading process exited with code {self._child.returncode}"
                )
        finally:
            self.close()

    def close(self) -> None:
        if self._child.poll() is None:
            self._child.kill()  # the loader stopped early (an error, Ctrl-C): stop reading too
            self._child.wait()
        assert self._child.stdout is not None
        self._child.stdout.close()
        if self._socket is not None:
            self._socket.close()

    def __enter__(self) -> ReadingWorker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def batches_from_worker(
    files: Sequence[Path], connection_id: str, batch_runs: int
) -> Iterator[FileBatch]:
    """The same batches as `flattened_batches`, made in a child process."""
    with ReadingWorker(files, connection_id, batch_runs) as worker:
        yield from worker


def _read_ahead(items: Iterator[FileBatch], depth: int) -> Iterator[FileBatch]:
    """`items`, pulled by a thread up to `depth` ahead of the consumer.

    Without it the child can run at most one batch ahead (the pipe holds 64 KB), so
    every slow commit or checkpoint of the loader stalls the reader too; unpickling
    also moves off the loading thread. Memory: `depth` more batches in this process.
    """
    queue: Queue[tuple[str, Any]] = Queue(maxsize=depth)
    stopped = threading.Event()

    def pull() -> None:
        try:
            for item in items:
                if not _put(queue, ("item", item), stopped):
                    return
            _put(queue, ("end", None), stopped)
        except BaseException as exc:  # handed to the consumer, who raises it
            _put(queue, ("error", exc), stopped)

    thread = threading.Thread(target=pull, name="itwin-runs-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = queue.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        # Not joined: the puller may be blocked reading the pipe, which ends when the
        # caller stops the child; a puller waiting on a full queue sees this within 0.1 s.
        stopped.set()


def _put(queue: Queue[tuple[str, Any]], message: tuple[str, Any], stopped: threading.Event) -> bool:
    while not stopped.is_set():
        try:
            queue.put(message, timeout=0.1)
            return True
        except Full:
            continue
    return False


def _receive(stream: IO[bytes], fd_socket: socket.socket | None) -> Iterator[FileBatch]:
    from pipeline.warehouse.reading import FileBatch

    while True:
        try:
            message = read_message(stream)
        except EOFError as exc:
            raise WorkerFailedError(
                "the file reading process stopped in the middle of a batch"
            ) from exc
        if message is None:
            return
        kind, body = message
        if kind == _FAILED:
            raise WorkerFailedError(f"reading the files failed:\n{body.decode()}")
        if kind == _SHARED:
            if fd_socket is None or len(body) != 8:
                raise WorkerFailedError("the reading process sent a batch this loader cannot map")
            item = unpickle(receive_shared(fd_socket, int.from_bytes(body, "little")))
        else:
            item = unpickle(body)  # written by our own child process
        if not isinstance(item, FileBatch):
            raise WorkerFailedError(f"unexpected message from the reading process: {type(item)}")
        yield item


def main() -> int:
    """The child: read the request on stdin, write batches to stdout."""
    from pipeline.warehouse.reading import flattened_batches

    request: dict[str, Any] = json.loads(sys.stdin.buffer.read())
    out = sys.stdout.buffer
    files = [Path(f) for f in request["files"]]
    fd_socket = socket.socket(fileno=request["fd_socket"]) if "fd_socket" in request else None
    try:
        for item in flattened_batches(files, request["connection"], request["batch"]):
            if fd_socket is not None:
                size = send_shared(fd_socket, pickled(item))
                send_message(out, _SHARED, size.to_bytes(8, "little"))
            else:
                send_message(out, _BATCH, *pickled(item))
    except (BrokenPipeError, ConnectionResetError):
        return 1  # the loader went away; it reports why
    except Exception:
        send_message(out, _FAILED, traceback.format_exc().encode())
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
