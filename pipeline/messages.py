"""Length-prefixed messages over a pipe: what our child processes and their parents say.

A message is one kind byte, an 8-byte little-endian length and the body. Used by the
file-reading worker (pipeline.warehouse.worker) and the collection's flattening child
(pipeline.transform.offload); each gives the kinds and bodies their meaning.
"""

from __future__ import annotations

import struct
from typing import IO

_HEADER = struct.Struct("<Q")


def send_message(stream: IO[bytes], kind: bytes, body: bytes) -> None:
    stream.write(kind + _HEADER.pack(len(body)))
    stream.write(body)
    stream.flush()


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
