"""Parsing a list page so one bad item cannot spoil the others.

A page is parsed whole with orjson when it can be. When it cannot, its item list is
split at the top level (a small tokenizer over the raw bytes, no recursion) and each
item is parsed on its own: good items come back, each bad one as a RejectedItem with
its raw text and a reason. Only a page whose own structure is unreadable (cut short,
not an object, no item list) is an error. Items whose object repeats a key are kept
but their raw text is returned too, since the parsed value keeps only the last one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import orjson

from pipeline.transform.canonical import find_bad_value

# A whole JSON string, or one structural character; everything between is scalars and space.
_STRING = rb'"[^"\\]*(?:\\.[^"\\]*)*"'
_TOKEN = re.compile(_STRING + rb"|\[+|\]+|[{},:]", re.DOTALL)
# Inside an item only brackets matter: skip everything else, strings whole, in one match.
_NEXT_BRACKET = re.compile(rb'(?:[^"\[\]{}]++|' + _STRING + rb")*+(\[+|\]+|[{}])", re.DOTALL)
# A string followed by a colon is an object key (strings are matched whole, so never inside one).
_KEY = re.compile(_STRING + rb"\s*(:?)", re.DOTALL)


class UnreadableBody(Exception):
    """A 200 whose body is not the JSON object we asked for (truncated, HTML, ...)."""


class UnusableValue(Exception):
    """A complete JSON answer holding a value JSON cannot carry (NaN, a lone surrogate, ...).

    Not worth a retry: the service will send the same again. ``raw`` is the answer's text.
    """

    def __init__(self, raw: str, reason: str) -> None:
        super().__init__(reason)
        self.raw = raw
        self.reason = reason


@dataclass(frozen=True)
class RejectedItem:
    """An item of a page that is not usable JSON: its position, raw text and why."""

    index: int
    raw: str  # as sent; bytes that are not UTF-8 appear as \\xNN escapes
    reason: str


@dataclass(frozen=True)
class RawItem:
    """An item kept with its raw text (e.g. its object repeats a key)."""

    index: int
    raw: str


@dataclass(frozen=True)
class ParsedPage:
    """A page's JSON object (its item list holding the good items only) and what was set aside."""

    body: dict[str, Any]
    rejected: tuple[RejectedItem, ...] = ()
    duplicate_keys: tuple[RawItem, ...] = ()


def decode_object(content: bytes) -> dict[str, Any]:
    """Parse a JSON object body; anything else (truncated, HTML, a bare list) is unreadable."""
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        raise UnreadableBody(f"body is not JSON ({len(content)} bytes)") from exc
    if not isinstance(body, dict):
        raise UnreadableBody(f"body is JSON {type(body).__name__}, expected an object")
    return body


def parse_page(content: bytes, member: str | None) -> ParsedPage:
    """The page's object, tolerating bad items in its ``member`` list (None: parse strictly)."""
    try:
        body = decode_object(content)
    except UnreadableBody as exc:
        if member is None:
            _raise_if_unusable(content, exc.__cause__)
            raise
        return _parse_item_by_item(content, member)
    if member is None or not isinstance(body.get(member), list):
        return ParsedPage(body)
    if not repeats_a_key(content, body):
        return ParsedPage(body)
    spans = split_list(content, member)
    if spans is None:
        return ParsedPage(body)
    dupes = [
        RawItem(i, _text(content[start:end]))
        for i, (start, end) in enumerate(spans)
        if _item_repeats_a_key(content[start:end])
    ]
    return ParsedPage(body, duplicate_keys=tuple(dupes))


def _parse_item_by_item(content: bytes, member: str) -> ParsedPage:
    spans = split_list(content, member)
    if spans is None:
        raise UnreadableBody(f"body is not JSON ({len(content)} bytes)")
    skeleton = content[: spans[0][0]] + content[spans[-1][1] :] if spans else content
    body = decode_object(skeleton)
    good: list[Any] = []
    rejected: list[RejectedItem] = []
    dupes: list[RawItem] = []
    for index, (start, end) in enumerate(spans):
        raw = content[start:end]
        try:
            item = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            rejected.append(RejectedItem(index, _text(raw), bad_item_reason(raw, exc)))
            continue
        good.append(item)
        if repeats_a_key(raw, item):
            dupes.append(RawItem(index, _text(raw)))
    body[member] = good
    return ParsedPage(body, tuple(rejected), tuple(dupes))


def bad_item_reason(raw: bytes, error: orjson.JSONDecodeError) -> str:
    """Why an item is not usable JSON, in the words the file loader's quarantine uses."""
    try:
        lenient = json.loads(raw)  # accepts NaN, Infinity, 1e999 and lone surrogates
    except RecursionError:
        return "(payload): nested too deeply to read as JSON"
    except ValueError:
        return f"(payload): not valid JSON: {error}"
    return find_bad_value(lenient) or f"(payload): not valid JSON: {error}"


def _raise_if_unusable(content: bytes, error: BaseException | None) -> None:
    """Raise UnusableValue when the answer is complete JSON but holds an unusable value."""
    if not isinstance(error, orjson.JSONDecodeError):
        return
    try:
        lenient = json.loads(content)
    except RecursionError:
        lenient = None
    except ValueError:
        return  # cut short or not JSON: unreadable, worth a retry
    reason = bad_item_reason(content, error) if lenient is None else find_bad_value(lenient)
    if reason:
        raise UnusableValue(_text(content), reason)


def split_list(content: bytes, member: str) -> list[tuple[int, int]] | None:
    """Byte spans of the items of the top-level ``member`` list, or None if there is none.

    None too when the text around the list is not balanced (cut short), so a truncated
    page is never mistaken for a page with a bad last item.
    """
    depth = 0
    previous = b""
    key = b""
    found = in_list = False
    spans: list[tuple[int, int]] = []
    item_start = 0
    position = 0
    while True:
        deep = depth >= 3
        token = (_NEXT_BRACKET.match if deep else _TOKEN.search)(content, position)
        if token is None:
            break
        kind, at = (token.group(1), token.start(1)) if deep else (token.group(), token.start())
        position = token.end()
        first = kind[:1]
        if first == b"[":
            if depth == 1 and previous == b":" and _is(key, member):
                if found:
                    return None  # the member twice: which one counts is ambiguous
                found = in_list = True
                item_start = at + 1
            depth += len(kind)
        elif first == b"]":
            if in_list and depth - len(kind) < 2:  # this run closes the list
                _add_span(content, item_start, at + depth - 2, spans)
                in_list = False
            depth -= len(kind)
            if depth < 0:
                return None
        elif kind == b"{":
            depth += 1
        elif kind == b"}":
            depth -= 1
            if depth < 0:
                return None
        elif kind == b"," and in_list and depth == 2:
            _add_span(content, item_start, at, spans)
            item_start = position
        elif kind == b":" and depth == 1:
            key = previous
        previous = kind
    return spans if found and depth == 0 and not in_list else None


def _add_span(content: bytes, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    while start < end and content[start] in b" \t\r\n":
        start += 1
    while end > start and content[end - 1] in b" \t\r\n":
        end -= 1
    if end > start:
        spans.append((start, end))


def _is(key: bytes, member: str) -> bool:
    try:
        return bool(orjson.loads(key) == member)
    except orjson.JSONDecodeError:
        return False


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "backslashreplace")


def _raw_key_count(content: bytes) -> int:
    marks = _KEY.findall(content)
    return len(marks) - marks.count(b"")


def repeats_a_key(raw: bytes, parsed: Any) -> bool:
    """Whether the JSON text ``raw`` (parsed as ``parsed``) repeats a key in some object.

    Cheap and exact without a second parse: every colon of the compact dump is a key's
    or one inside a string, and a repeated key's colon (and any in the value it lost)
    is missing from the dump. Only ``\\u003a`` escapes in the raw text (a colon the
    count cannot see) need the slower count of keys.
    """
    try:
        dumped = orjson.dumps(parsed)
    except orjson.JSONEncodeError:  # deeper than orjson writes
        return _walked_key_count(parsed) != _raw_key_count(raw)
    if b"\\u003a" in raw or b"\\u003A" in raw:
        return _raw_key_count(dumped) != _raw_key_count(raw)
    return raw.count(b":") != dumped.count(b":")


def _walked_key_count(value: Any) -> int:
    """Keys in every object of a parsed value; iterative, so deep nesting is safe."""
    count = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            count += len(item)
            stack.extend(v for v in item.values() if isinstance(v, dict | list))
        elif isinstance(item, list):
            stack.extend(v for v in item if isinstance(v, dict | list))
    return count


def _item_repeats_a_key(raw: bytes) -> bool:
    try:
        return repeats_a_key(raw, orjson.loads(raw))
    except orjson.JSONDecodeError:
        return False
