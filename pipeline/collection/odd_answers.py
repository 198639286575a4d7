"""What the collection keeps of answers it cannot load as they are: runs a page could not
parse (quarantined) and the raw text of runs that repeated a key (loaded all the same)."""

from __future__ import annotations

import orjson

from pipeline.itwin.client import RunsPage
from pipeline.transform.flatten import Rejected
from pipeline.warehouse.bookkeeping import RawText

# Quarantine rows that keep the raw text of a run loaded all the same.
DUPLICATE_KEYS_SOURCE = "duplicate keys"
DUPLICATE_KEYS_REASON = (
    "the run object repeats a key: loaded with the last value of each key; raw text kept here"
)


def rejected_runs(connection_id: str, page: RunsPage) -> list[Rejected]:
    """A page's runs that are not usable JSON, for the quarantine (the page is not re-read)."""
    return [
        Rejected(
            connection_id,
            f"run {item.index} of the page: {item.reason}",
            item.raw,
            page.fetched_at,
            page.url,
        )
        for item in page.rejected
    ]


def duplicate_key_texts(connection_id: str, page: RunsPage) -> list[RawText]:
    return [
        RawText(
            connection_id,
            _id_in(item.raw),
            DUPLICATE_KEYS_REASON,
            item.raw,
            page.fetched_at,
            DUPLICATE_KEYS_SOURCE,
        )
        for item in page.duplicate_keys
    ]


def _id_in(raw: str) -> str | None:
    try:
        rid = orjson.loads(raw).get("id")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return rid if isinstance(rid, str) else None
