"""Read and flatten files in child processes while this one writes DuckDB.

Parsing and flattening are Python-bound and DuckDB's inserts are not, so they overlap;
reading takes more CPU than loading, so two readers share it (see MAX_READERS). Each
child (`python -m pipeline.warehouse.worker`, a fresh interpreter, so nothing of the
caller's state or main module is re-run) writes each batch to its stdout as a
length-prefixed pickle with the Arrow buffers out of band. Where the system has memory
files (Linux), the pickle goes into one and only its descriptor crosses a Unix socket,
so the loader maps the batch instead of copying it through the pipe (see
pipeline.messages). A child waits while the loader is behind (the pipe, the read-ahead
queue and the batches handed over but not yet taken are few), which bounds memory to
a few batches per reader. Batches arrive in file order and are loaded as they would be
in one process.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from queue import Full, Queue
from typing import IO, TYPE_CHECKING, Any, Generic, TypeVar, cast

from pipeline.errors import ITwinRunsError
from pipeline.messages import (
    SHARED_MEMORY,
    SharedSender,
    pickled,
    read_message,
    receive_shared,
    send_message,
    unpickle,
)
from pipeline.warehouse.inputs import file_bytes

if TYPE_CHECKING:  # imported where used: the loader starts this child before importing pyarrow
    from pipeline.warehouse.reading import FileBatch

_BATCH, _SHARED, _CHUNK_END, _FAILED = b"B", b"S", b"E", b"F"
T = TypeVar("T")
# Batches received ahead of the loader, in all (about 20 MB each at 2,500 runs).
READ_AHEAD_BATCHES = 2
# Reading processes at most. For a 100k-run load, reading and flattening take about 7 s
# of CPU and DuckDB's writes about 5 s, so with one reader the loader waited ~2 s for it.
# Two readers: 7.0-8.0 s against 7.1-8.4 s (medians 7.29 / 7.63 s of six alternating
# loads each) for 160 MB more memory (peak 843 MB against 678 MB). More would only queue.
MAX_READERS = 2
# Readers run at this niceness, so that on two cores the loader, which all of them wait
# on, is never the one preempted (without it, two readers: median 9.44 s against 9.56 s
# with one and 8.99 s niced, four loads each, measured).
READER_NICENESS = 10
# With several readers, files are dealt out in chunks of about this many bytes per
# batch run: the generated pages hold ~4 KB a run, so a chunk is about one batch.
RUN_BYTES_GUESS = 4096


class WorkerFailedError(ITwinRunsError):
    """The reading process failed or died; nothing after its last batch was loaded."""


class ReadingWorker:
    """Child processes reading and flattening `files`, started at once; iterate for batches.

    With several readers, the files are cut into chunks of consecutive files (about a
    batch each; a batch never spans two) dealt to the readers in turn, and the chunks
    are taken back in turn, so batches arrive in file order. Starting the readers before
    the loader imports pyarrow and DuckDB overlaps their start-up (about 0.4 s) with
    those imports. Close it (or use it as a context manager) when done, also when it
    was never iterated: that stops the children.
    """

    def __init__(
        self, files: Sequence[Path], connection_id: str, batch_runs: int, readers: int | None = None
    ) -> None:
        self.files = list(files)
        count = readers or default_readers()
        chunks = [self.files]
        if count > 1:
            chunks = file_chunks(self.files, batch_runs * RUN_BYTES_GUESS)
        count = max(1, min(count, len(chunks)))
        depth = max(1, READ_AHEAD_BATCHES // count)
        self._chunks = len(chunks)
        self._readers: list[_Reader] = []
        try:
            for k in range(count):
                self._readers.append(_Reader(chunks[k::count], connection_id, batch_runs, depth))
        except BaseException:
            self.close()
            raise

    def __iter__(self) -> Iterator[FileBatch]:
        """The same batches as `flattened_batches` over the files, in file order."""
        try:
            for turn in range(self._chunks):
                yield from self._readers[turn % len(self._readers)].chunk()
            for reader in self._readers:
                reader.finish()
        finally:
            self.close()

    def close(self) -> None:
        for reader in self._readers:
            reader.close()

    def __enter__(self) -> ReadingWorker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def default_readers() -> int:
    return max(1, min(MAX_READERS, os.cpu_count() or 1))


def file_chunks(files: Sequence[Path], chunk_bytes: int) -> list[list[Path]]:
    """Consecutive files of about `chunk_bytes` together (a bigger file is a chunk alone)."""
    chunks: list[list[Path]] = []
    size = 0
    for path in files:
        path_bytes = file_bytes(path)
        if not chunks or size + path_bytes > chunk_bytes:
            chunks.append([])
            size = 0
        chunks[-1].append(path)
        size += path_bytes
    return chunks


class _Reader:
    """One child process, reading its chunks of files in order."""

    def __init__(
        self, chunks: list[list[Path]], connection_id: str, batch_runs: int, depth: int
    ) -> None:
        request: dict[str, Any] = {
            "chunks": [[str(f) for f in chunk] for chunk in chunks],
            "connection": connection_id,
            "batch": batch_runs,
        }
        self._socket: socket.socket | None = None
        theirs: list[int] = []  # the child's end of the socket, if any
        if SHARED_MEMORY:
            self._socket, child_end = socket.socketpair()
            theirs = [child_end.detach()]
            request["fd_socket"] = theirs[0]
        try:
            self._child = subprocess.Popen(  # our own interpreter and module
                [sys.executable, "-m", "pipeline.warehouse.worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                pass_fds=theirs,
            )
        finally:
            for fd in theirs:
                os.close(fd)  # with only the child holding its end, the child's exit ends ours
        assert self._child.stdin is not None and self._child.stdout is not None
        self._child.stdin.write(json.dumps(request).encode())
        self._child.stdin.close()
        self._depth = depth
        self._items: _ReadAhead[FileBatch | None] | None = None

    def chunk(self) -> Iterator[FileBatch]:
        """The batches of this reader's next chunk, as they arrive."""
        if self._items is None:  # started on first use: it imports pyarrow to unpickle
            assert self._child.stdout is not None
            self._items = _ReadAhead(_receive(self._child.stdout, self._socket), self._depth)
        for item in self._items:
            if item is None:  # the end of the chunk
                return
            yield item
        raise WorkerFailedError("the file reading process stopped before its last file")

    def finish(self) -> None:
        if self._items is not None and next(self._items, None) is not None:
            raise WorkerFailedError("the file reading process sent more than it was asked for")
        if self._child.wait() != 0:
            raise WorkerFailedError(
                f"the file reading process exited with code {self._child.returncode}"
            )

    def close(self) -> None:
        if self._items is not None:
            self._items.close()
        if self._child.poll() is None:
            self._child.kill()  # the loader stopped early (an error, Ctrl-C): stop reading too
            self._child.wait()
        assert self._child.stdout is not None
        self._child.stdout.close()
        if self._socket is not None:
            self._socket.close()


class _ReadAhead(Generic[T]):
    """`items`, pulled by a thread up to `depth` ahead of the consumer.

    Without it the child can run at most one batch ahead (the pipe holds 64 KB), so
    every slow commit or checkpoint of the loader stalls the reader too; unpickling
    also moves off the loading thread. Memory: `depth` more batches in this process.
    """

    def __init__(self, items: Iterator[T], depth: int) -> None:
        self._queue: Queue[tuple[str, Any]] = Queue(maxsize=depth)
        self._stopped = threading.Event()
        self._ended = False
        self._items = items
        thread = threading.Thread(target=self._pull, name="itwin-runs-read-ahead", daemon=True)
        thread.start()

    def _pull(self) -> None:
        try:
            for item in self._items:
                if not _put(self._queue, ("item", item), self._stopped):
                    return
            _put(self._queue, ("end", None), self._stopped)
        except BaseException as exc:  # handed to the consumer, who raises it
            _put(self._queue, ("error", exc), self._stopped)

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        if self._ended:
            raise StopIteration
        kind, value = self._queue.get()
        if kind == "item":
            return cast(T, value)
        self._ended = True
        if kind == "error":
            raise value
        raise StopIteration

    def close(self) -> None:
        # Not joined: the puller may be blocked reading the pipe, which ends when the
        # caller stops the child; a puller waiting on a full queue sees this within 0.1 s.
        self._ended = True
        self._stopped.set()


def _put(queue: Queue[tuple[str, Any]], message: tuple[str, Any], stopped: threading.Event) -> bool:
    while not stopped.is_set():
        try:
            queue.put(message, timeout=0.1)
            return True
        except Full:
            continue
    return False


def _receive(stream: IO[bytes], fd_socket: socket.socket | None) -> Iterator[FileBatch | None]:
    """The child's batches, and None at the end of each of its chunks."""
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
        if kind == _CHUNK_END:
            yield None
            continue
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
    import pyarrow as pa

    from pipeline.warehouse.reading import flattened_batches

    # Arrow's default pool (mimalloc) held each reader ~40 MB higher at the same speed:
    # a 100k-run load peaked at 745-755 MB of tree RSS with the system allocator against
    # 821-833 MB (median load part 7.64 against 7.72 s, four alternating loads each).
    pa.set_memory_pool(pa.system_memory_pool())

    request: dict[str, Any] = json.loads(sys.stdin.buffer.read())
    out = sys.stdout.buffer
    if hasattr(os, "nice"):
        os.nice(READER_NICENESS)
    shared = None
    if "fd_socket" in request:
        shared = SharedSender(socket.socket(fileno=request["fd_socket"]))
    try:
        for chunk in request["chunks"]:
            files = [Path(f) for f in chunk]
            for item in flattened_batches(files, request["connection"], request["batch"]):
                if shared is not None:
                    size = shared.send(pickled(item))
                    send_message(out, _SHARED, size.to_bytes(8, "little"))
                else:
                    send_message(out, _BATCH, *pickled(item))
            send_message(out, _CHUNK_END)
    except (BrokenPipeError, ConnectionResetError):
        return 1  # the loader went away; it reports why
    except KeyboardInterrupt:
        return 130  # Ctrl-C reaches the whole process group: the loader says what stays
    except Exception:
        send_message(out, _FAILED, traceback.format_exc().encode())
        return 1
    finally:
        if shared is not None:
            shared.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
