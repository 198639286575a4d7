"""Length-prefixed messages over a pipe: what our child processes and their parents say.

A message is one kind byte, an 8-byte little-endian length and the body. Used by the
file-reading worker (pipeline.warehouse.worker) and the collection's flattening child
(pipeline.transform.offload); each gives the kinds and bodies their meaning. Both send
flattened batches of Arrow tables as `pickled(...)` bodies, read back with `unpickle`.
"""

from __future__ import annotations

import pickle
import struct
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


def unpickle(body: bytes) -> Any:
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
