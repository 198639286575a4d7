"""Reading an answer's body under a cap on its inflated size.

httpx inflates gzip and deflate without a bound, so a small compressed answer can
expand to gigabytes in memory. Here the raw bytes are inflated piece by piece with
an output limit and a running count, and reading stops the moment the cap is passed.
"""

from __future__ import annotations

import zlib

import httpx

# What we ask for: encodings this module can inflate under the cap.
ACCEPT_ENCODING = "gzip, deflate"
_GZIP_WBITS = 16 + zlib.MAX_WBITS
_ZLIB_WBITS = zlib.MAX_WBITS
_RAW_DEFLATE_WBITS = -zlib.MAX_WBITS


class TooLarge(Exception):
    """The body passed the cap; ``cap_bytes`` is the cap."""

    def __init__(self, cap_bytes: int) -> None:
        super().__init__(f"more than {cap_bytes} bytes")
        self.cap_bytes = cap_bytes


class BadEncoding(Exception):
    """The body cannot be inflated (corrupt, cut short, or an encoding we did not ask for)."""


class _Inflater:
    """Incremental gzip/deflate (or identity) decoding that never outputs more than asked."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self._first = True
        self._decoder: zlib._Decompress | None = None
        if encoding == "gzip":
            self._decoder = zlib.decompressobj(_GZIP_WBITS)
        elif encoding == "deflate":
            self._decoder = zlib.decompressobj(_ZLIB_WBITS)
        elif encoding not in ("", "identity"):
            raise BadEncoding(f"content-encoding {encoding!r} was not asked for")

    def feed(self, data: bytes, budget: int) -> bytes:
        """Up to ``budget`` bytes of output for ``data``; more pending means the cap is passed."""
        if self._decoder is None:
            return data[:budget]
        try:
            return self._inflate(data, budget)
        except zlib.error as exc:
            raise BadEncoding(f"{self.encoding} body is corrupt ({exc})") from None

    def _inflate(self, data: bytes, budget: int) -> bytes:
        assert self._decoder is not None
        if self._first and self.encoding == "deflate":
            self._first = False
            try:
                probe = zlib.decompressobj(_ZLIB_WBITS)
                out = probe.decompress(data, budget)
                self._decoder = probe
            except zlib.error:  # servers send raw deflate as often as zlib-wrapped
                self._decoder = zlib.decompressobj(_RAW_DEFLATE_WBITS)
                out = self._decoder.decompress(data, budget)
        else:
            out = self._decoder.decompress(data, budget)
        while len(out) < budget:
            if self._decoder.unconsumed_tail:
                out += self._decoder.decompress(self._decoder.unconsumed_tail, budget - len(out))
            elif self.encoding == "gzip" and self._decoder.eof and self._decoder.unused_data:
                rest = self._decoder.unused_data  # gzip may hold several members back to back
                self._decoder = zlib.decompressobj(_GZIP_WBITS)
                out += self._decoder.decompress(rest, budget - len(out))
            else:
                break
        return out

    def finish(self) -> None:
        if self._decoder is not None and self.encoding == "gzip" and not self._decoder.eof:
            raise BadEncoding("gzip body is cut short")


async def read_capped(response: httpx.Response, cap_bytes: int) -> bytes:
    """The decoded body of a streamed ``response``; raises TooLarge past ``cap_bytes``."""
    declared = response.headers.get("Content-Length", "")
    encoding = response.headers.get("Content-Encoding", "").strip().lower()
    if not encoding and declared.isdigit() and int(declared) > cap_bytes:
        raise TooLarge(cap_bytes)
    if response.is_stream_consumed:  # already read and decoded (an in-memory transport)
        if len(response.content) > cap_bytes:
            raise TooLarge(cap_bytes)
        return response.content
    inflater = _Inflater(encoding)
    body = bytearray()
    async for chunk in response.aiter_raw():
        piece = inflater.feed(chunk, cap_bytes + 1 - len(body))
        body += piece
        if len(body) > cap_bytes:
            raise TooLarge(cap_bytes)
    inflater.finish()
    return bytes(body)


def decoded_response(response: httpx.Response, body: bytes) -> httpx.Response:
    """A complete Response holding ``body`` as already decoded, for the code that judges it."""
    headers = [
        (k, v)
        for k, v in response.headers.multi_items()
        if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")
    ]
    return httpx.Response(
        response.status_code,
        headers=headers,
        content=body,
        request=response.request,
        extensions=response.extensions,
    )
