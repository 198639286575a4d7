"""The ASGI shapes the simulator speaks, and the log entry of each request it received."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass
class RecordedRequest:
    """One request as received; `status` is filled in once answered (0: connection dropped).

    `path` is the raw path as sent (percent-escapes kept, to see exactly what arrived);
    `query` is percent-decoded for reading (`$top=2`), `raw_query` as sent (`%24top=2`).
    """

    method: str
    path: str
    query: str
    headers: dict[str, str]
    raw_query: str = ""
    at: float = field(default_factory=time.time)
    status: int | None = None
    fault: str | None = None


async def read_body(receive: Receive) -> bytes:
    """The whole request body, however many messages it came in."""
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)
