"""Length-prefixed messages over a pipe: what our child processes and their parents say.

A message is one kind byte, an 8-byte little-endian length and the body. Used by the
file-reading worker (pipeline.warehouse.worker) and the collection's flattening child
(pipeline.transform.offload); each gives the kinds and bodies their meaning. Both send
flattened batches of Arrow tables as `pickled(...)` bodies, read back with `unpickle`.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import pickle
import socket
import struct
import weakref
from collections.abc import Sequence
from typing import IO, Any

_HEADER = struct.Struct("<Q")
# Body pieces: bytes, or views of Arrow buffers (collections.abc.Buffer from Python 3.12).
Piece = bytes | memoryview
_ALIGN = 64  # Arrow's buffer alignment; also keeps every int64 and float64 aligned


def send_message(stream: IO[bytes], kind: bytes, *body: Piece) -> None:
    """One message; a body given in pieces is written piece by piece, never joined."""
    size = sum(memoryview(piece).nbytes for piece in body)
    stream.write(kind + _HEADER.pack(size))
    for piece in body:
        stream.write(piece)
    stream.flush()


def pickled(obj: Any) -> list[Piece]:
    """`obj` as message body pieces: the pickle, then its Arrow buffers out of band.

    An in-band pickle copies every buffer into one bytes object, and unpickling copies it
    out again: 18 ms each way per 2,500-run batch (21 MB), 0.7 s of a 100k-run load in the
    reading process and as much, holding the GIL, in the loading one. Out of band, the
    buffers go to the pipe as they are and come back as views of the message (about 1 ms).
    """
    buffers: list[pickle.PickleBuffer] = []
    head = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
    parts: list[Piece] = [head, *(b.raw() for b in buffers)]
    sizes = [memoryview(part).nbytes for part in parts]
    index = _HEADER.pack(len(sizes)) + b"".join(_HEADER.pack(n) for n in sizes)
    pieces: list[Piece] = [index]
    offset = len(index)
    for part, size in zip(parts, sizes, strict=True):
        pad = -offset % _ALIGN
        pieces += [bytes(pad), part]
        offset += pad + size
    return pieces


def unpickle(body: bytes | mmap.mmap) -> Any:
    """What `pickled` sent; its Arrow buffers are views of `body`, which they keep alive.

    Only for bodies from our own child processes: unpickling runs code the sender chose.
    """
    view = memoryview(body)
    (count,) = _HEADER.unpack_from(view, 0) if len(body) >= _HEADER.size else (0,)
    if not 0 < count <= len(body) // _HEADER.size - 1:
        raise ValueError(f"a message of {len(body)} bytes is not a pickle from pickled()")
    sizes = [_HEADER.unpack_from(view, _HEADER.size * (1 + i))[0] for i in range(count)]
    offset = _HEADER.size * (1 + count)
    parts = []
    for size in sizes:
        offset += -offset % _ALIGN
        parts.append(view[offset : offset + size])
        offset += size
    if offset != len(body):
        raise ValueError(f"a pickled message of {len(body)} bytes announced {offset}")
    head, *buffers = parts
    return pickle.loads(head, buffers=buffers)  # noqa: S301 - see the docstring


# --- handing a body over in shared memory ------------------------------------------------
#
# Through a pipe, every byte of a body is copied into the kernel by the sender and out
# again by the receiver, 64 KB at a time with a wake-up each way: for a 100k-run load
# (850 MB of batches) the receiving thread alone spent 0.8 s of CPU (perf, 5% of the
# load's samples). A body written once into an anonymous memory file (memfd) and handed
# over as a file descriptor on a Unix socket is mapped by the receiver instead of copied.
#
# A new memory file costs more than the copy into it: the kernel allocates and zeroes
# its pages for the sender and frees them after the receiver. Writing 42 bodies of
# 20 MB and mapping each took 0.52-0.59 s of CPU in new files and 0.29 s in three
# reused ones (measured), so SharedSender writes into files the receiver has let go of.

SHARED_MEMORY = hasattr(os, "memfd_create") and hasattr(socket, "send_fds")
_IOV_MAX = 512  # pieces per writev, well under the system's IOV_MAX (1024 on Linux)
# The receiver's answers, one byte each: it has mapped a body, or it has let go of the
# body of a memory file the sender keeps for reuse (the file's number, 0-127, in the
# low bits).
_TAKEN = b"T"
_RELEASED = 0x80
# A body in a memory file the sender does not keep (nothing to answer when released).
_NOT_KEPT = 0xFF


def send_shared(sock: socket.socket, body: Sequence[Piece]) -> int:
    """Write `body` into a new memfd and send its descriptor on `sock`; returns its size.

    Nothing bounds how many are in flight: see SharedSender for a sender that waits.
    """
    fd = _new_memory_file()
    try:
        return _hand_over(sock, fd, _NOT_KEPT, body)
    finally:
        os.close(fd)  # the receiver holds its own descriptor now


def _new_memory_file() -> int:
    return os.memfd_create("itwin-runs-batch", os.MFD_CLOEXEC)


def _hand_over(sock: socket.socket, fd: int, number: int, body: Sequence[Piece]) -> int:
    """`body` as the whole content of memory file `fd` (overwritten, cut to size), sent
    on `sock` with the file's number (`_NOT_KEPT` for one used once); returns its size."""
    size = 0
    for start in range(0, len(body), _IOV_MAX):
        chunk = body[start : start + _IOV_MAX]
        want = sum(memoryview(piece).nbytes for piece in chunk)
        if os.pwritev(fd, chunk, size) != want:  # a memfd takes all (or raises ENOMEM)
            raise OSError(f"short write of a batch to shared memory ({want} bytes)")
        size += want
    os.ftruncate(fd, size)  # a reused file may have held a longer body
    socket.send_fds(sock, [b"F", bytes([number])], [fd])
    return size


class SharedSender:
    """`send_shared` that never has more than `limit` bodies sent but not yet taken.

    A body in flight is memory no process has mapped yet: it shows in no process's RSS,
    and a sender faster than its receiver would pile them up without bound (a reader
    ahead of the loader held 13 batches, 285 MB, measured). `receive_shared` answers
    each body it maps with one byte on the socket; the sender waits for those.

    It also keeps up to `keep` memory files and writes the next body into one the
    receiver has let go of: `receive_shared` says so when the body's mapping is freed,
    which is only once nothing views the body any more, so a body still in use is never
    overwritten. With none free it takes a new file, used once: it never waits for one.
    Three per reader sufficed in a 100k-run load (no file used once), whose load part
    took 6.07 s against 6.23 s with a new file per body (medians of four alternating
    loads each; 0.25 s less CPU).
    """

    def __init__(self, sock: socket.socket, limit: int = 1, keep: int = 3) -> None:
        self._sock = sock
        self._limit = max(1, limit)
        self._untaken = 0
        self._files: list[int] = []  # the memory files kept, by number
        self._free: list[int] = []  # numbers of those the receiver let go of
        self._keep = min(keep, _NOT_KEPT - _RELEASED)

    def send(self, body: Sequence[Piece]) -> int:
        while self._untaken >= self._limit:
            self._answers(wait=True)
        self._answers(wait=False)
        if not self._free and len(self._files) >= self._keep:
            size = send_shared(self._sock, body)
        else:
            number = self._free.pop() if self._free else self._new_file()
            size = _hand_over(self._sock, self._files[number], number, body)
        self._untaken += 1
        return size

    def close(self) -> None:
        for fd in self._files:
            os.close(fd)
        self._files.clear()
        self._free.clear()

    def _new_file(self) -> int:
        self._files.append(_new_memory_file())
        return len(self._files) - 1

    def _answers(self, wait: bool) -> None:
        try:
            answers = self._sock.recv(64, 0 if wait else socket.MSG_DONTWAIT)
        except BlockingIOError:
            return
        if not answers:
            raise BrokenPipeError("the receiver of shared batches went away")
        for answer in answers:
            if answer == _TAKEN[0]:
                self._untaken -= 1
            elif answer & _RELEASED:
                self._release(answer - _RELEASED)

    def _release(self, number: int) -> None:
        # Each use of a file is released once. A release of a file at rest already, or of
        # no file, is a receiver's mistake; trusting it could overwrite a body still read.
        if number < len(self._files) and number not in self._free:
            self._free.append(number)


def receive_shared(sock: socket.socket, size: int) -> mmap.mmap:
    """The body `send_shared` sent: `size` bytes mapped read-only, pages already mapped.

    The mapping lives as long as anything views it (the Arrow buffers `unpickle` makes).
    The sender is told at once that it was taken, and, for a memory file it keeps for
    reuse, again when the last view has gone and the mapping with it.
    """
    message, fds, _, _ = socket.recv_fds(sock, 2, 1)
    if len(fds) != 1:
        raise EOFError("the sender went away before handing over a batch")
    try:
        if os.fstat(fds[0]).st_size != size:
            raise ValueError(f"a shared batch announced {size} bytes but holds a different size")
        flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)  # one call, not a fault a page
        body = mmap.mmap(fds[0], size, flags=flags, prot=mmap.PROT_READ)
    finally:
        os.close(fds[0])
    number = message[1] if len(message) == 2 else _NOT_KEPT
    if number != _NOT_KEPT:
        # Called when the last view of the body goes, in whichever thread drops it.
        weakref.finalize(body, _answer, sock, bytes([_RELEASED | number])).atexit = False
    _answer(sock, _TAKEN)
    return body


def _answer(sock: socket.socket, answer: bytes) -> None:
    # A sender that has sent its last body may be gone already; it needs no answer.
    with contextlib.suppress(OSError):
        sock.send(answer)


def read_message(stream: IO[bytes]) -> tuple[bytes, bytes] | None:
    """(kind, body), or None at a clean end of the stream; EOFError when it ends mid-message."""
    kind = stream.read(1)
    if not kind:
        return None
    head = stream.read(_HEADER.size)
    if len(head) != _HEADER.size:
        raise EOFError("the stream ended inside a message header")
    (size,) = _HEADER.unpack(head)
    body = stream.read(size)
    if len(body) != size:
        raise EOFError("the stream ended inside a message")
    return kind, body
