"""Canonical JSON of a run payload, its hash, and finding the value that makes JSON impossible.

The canonical form (orjson, keys sorted, strings as sent) is what raw_runs stores and
what payload_hash hashes, so a stored version can be checked against its hash and the
collector can tell new, changed and unchanged runs before loading anything.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import orjson

_OPTIONS = orjson.OPT_SORT_KEYS
_INT_MIN = -(2**63)
_UINT_MAX = 2**64 - 1
_MAX_DEPTH = 200  # orjson refuses deeper nesting; say so instead of failing obscurely
_FLAT_SCALARS = frozenset({str, int, bool, type(None)})


class UnreadablePayload(ValueError):
    """The payload cannot be written as JSON; the message names where and why."""


def canonical_json(payload: Any) -> bytes:
    """Keys sorted, no whitespace, UTF-8; raises UnreadablePayload naming the bad value."""
    try:
        return orjson.dumps(payload, option=_OPTIONS)
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise UnreadablePayload(
            find_bad_value(payload) or f"not serialisable as JSON: {exc}"
        ) from exc


def extra_json(extra: dict[str, Any]) -> str:
    """JSON text (keys sorted) of a row's fields without a column; raises UnreadablePayload.

    Flat scalars need no walk: the payload's canonical dump already vetted its ints and
    strings. Only floats (NaN would silently become null) and nested values are walked.
    """
    if not _FLAT_SCALARS.issuperset(map(type, extra.values())):
        bad = find_bad_value(extra)
        if bad:
            raise UnreadablePayload(bad)
    return orjson.dumps(extra, option=_OPTIONS).decode("utf-8")


def payload_hash(payload: Any) -> str:
    """Stable SHA-256 (hex) of the canonical JSON; garbage still hashes (via its repr)."""
    try:
        data = canonical_json(payload)
    except UnreadablePayload:
        data = _safe_repr(payload).encode("utf-8", "backslashreplace")
    return hash_bytes(data)


def hash_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fallback_text(payload: Any) -> str:
    """Best-effort text for a payload that has no canonical JSON (stored in quarantine)."""
    try:
        return orjson.dumps(payload, option=_OPTIONS | orjson.OPT_NON_STR_KEYS).decode()
    except (TypeError, orjson.JSONEncodeError):
        return _safe_repr(payload).encode("utf-8", "backslashreplace").decode("utf-8")


def _safe_repr(payload: Any) -> str:
    try:
        return repr(payload)
    except (RecursionError, ValueError):  # absurd nesting; ValueError: huge int digits limit
        return f"<{type(payload).__name__} too deeply nested to show>"


def find_bad_value(payload: Any, root: str = "") -> str | None:
    """Path and problem of the first value JSON cannot carry faithfully, or None.

    Iterative, so hostile nesting cannot exhaust Python's recursion limit. Non-finite
    floats count as bad: orjson would silently write them as null.
    """
    stack: list[tuple[str, Any, int]] = [(root, payload, 0)]
    while stack:
        path, value, depth = stack.pop()
        problem = _scalar_problem(value)
        if problem:
            return f"{path or '(payload)'}: {problem}"
        if depth > _MAX_DEPTH and isinstance(value, dict | list | tuple):
            return f"{path or '(payload)'}: nested more than {_MAX_DEPTH} levels deep"
        if isinstance(value, dict):
            for key, item in reversed(list(value.items())):
                if not isinstance(key, str):
                    return f"{path or '(payload)'}: object key {key!r} is not a string"
                stack.append((f"{path}.{key}" if path else key, item, depth + 1))
        elif isinstance(value, list | tuple):
            for i in reversed(range(len(value))):
                stack.append((f"{path}[{i}]", value[i], depth + 1))
    return None


def _scalar_problem(value: Any) -> str | None:
    if value is None or isinstance(value, bool | dict | list | tuple):
        return None
    if isinstance(value, int):
        return None if _INT_MIN <= value <= _UINT_MAX else f"integer {value} out of 64-bit range"
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{value} is not a finite number"
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "string is not valid Unicode (lone surrogate)"
        return None
    return f"{type(value).__name__} is not a JSON value"
