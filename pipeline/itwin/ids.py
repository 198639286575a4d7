"""Validation of ids before they go into a URL, and their encoding as one path segment.

An id comes from configuration or from API answers; either way it must never be able
to change which resource a request reaches (``..``, ``/``, ``?``), so it is checked
before any URL is built and then percent-encoded.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from urllib.parse import quote

from pipeline.itwin.errors import InvalidIdError

_FORBIDDEN = frozenset("/?#%")
# Real ids are GUIDs (36 characters); a far longer one is a mistake or an attack on the URL.
MAX_ID_LENGTH = 256


def validate_id(value: object, parameter: str) -> str:
    """Return ``value`` if it is a usable id, else raise InvalidIdError naming ``parameter``."""
    if not isinstance(value, str):
        raise InvalidIdError(parameter, f"expected a string, got {type(value).__name__}")
    if value == "":
        raise InvalidIdError(parameter, "is empty")
    if len(value) > MAX_ID_LENGTH:
        raise InvalidIdError(parameter, f"longer than {MAX_ID_LENGTH} characters ({len(value)})")
    if value in (".", ".."):
        raise InvalidIdError(parameter, f"{value!r} is not an id")
    for ch in value:
        if ch in _FORBIDDEN:
            raise InvalidIdError(parameter, f"contains {ch!r}")
        if ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
            raise InvalidIdError(parameter, f"contains whitespace or control character {ch!r}")
    return value


def path_segment(value: object, parameter: str) -> str:
    """Validate ``value`` and percent-encode it so it stays exactly one path segment."""
    return quote(validate_id(value, parameter), safe="")


_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def normalize_id(value: str) -> str:
    """The comparable form of an id: trimmed, and a GUID in lower case.

    The platform's GUIDs are case-insensitive: a connection configured in upper case and
    discovered in lower case is the same connection and must be collected (and counted) once.
    """
    text = value.strip()
    return text.lower() if _GUID.fullmatch(text) else text


def normalize_ids(values: Iterable[str]) -> tuple[str, ...]:
    """Normalised ids in first-seen order, blanks dropped and duplicates removed."""
    return tuple(dict.fromkeys(n for n in map(normalize_id, values) if n))
