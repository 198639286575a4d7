"""Reading answers under the inflated-size cap: every encoding we ask for, and the refusals."""

from __future__ import annotations

import gzip
import zlib

import httpx
import pytest

from pipeline.itwin.bodies import BadEncoding, TooLarge, read_capped

TEXT = b'{"runs": []}' * 10


def streamed(body: bytes, encoding: str | None) -> httpx.Response:
    headers = {"Content-Encoding": encoding} if encoding else {}
    return httpx.Response(200, headers=headers, stream=httpx.ByteStream(body))


def raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("body", "encoding"),
    [
        (TEXT, None),
        (TEXT, "identity"),
        (gzip.compress(TEXT), "gzip"),
        (gzip.compress(TEXT[:50]) + gzip.compress(TEXT[50:]), "gzip"),  # two members
        (zlib.compress(TEXT), "deflate"),
        (raw_deflate(TEXT), "deflate"),  # deflate without the zlib wrapper, as some send it
    ],
    ids=["plain", "identity", "gzip", "gzip-two-members", "deflate-zlib", "deflate-raw"],
)
async def test_every_encoding_we_ask_for_is_read_whole(body: bytes, encoding: str | None) -> None:
    assert await read_capped(streamed(body, encoding), cap_bytes=len(TEXT)) == TEXT


@pytest.mark.anyio
@pytest.mark.parametrize("encoding", [None, "gzip", "deflate"])
async def test_one_byte_past_the_cap_is_refused(encoding: str | None) -> None:
    body = {None: TEXT, "gzip": gzip.compress(TEXT), "deflate": zlib.compress(TEXT)}[encoding]
    with pytest.raises(TooLarge):
        await read_capped(streamed(body, encoding), cap_bytes=len(TEXT) - 1)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("body", "encoding"),
    [
        (gzip.compress(TEXT)[:-12], "gzip"),
        (b"not gzip at all", "gzip"),
        (TEXT, "br"),
    ],
    ids=["gzip-cut-short", "gzip-garbage", "unasked-encoding"],
)
async def test_bodies_that_cannot_be_inflated_are_bad_encoding(body: bytes, encoding: str) -> None:
    with pytest.raises(BadEncoding):
        await read_capped(streamed(body, encoding), cap_bytes=1 << 20)
