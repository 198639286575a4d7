"""Paging decisions: read a connection whole or only its newest pages, and when to stop."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pipeline.collection.results import FULL, INCREMENTAL
from pipeline.transform.flatten import payload_hash


def choose_mode(
    last_full_pass: datetime | None, now: datetime, full_pass_every_s: float, force_full: bool
) -> str:
    """A full pass when asked, when none finished yet, or when the last one is too old."""
    if force_full or last_full_pass is None:
        return FULL
    age = (now - last_full_pass).total_seconds()
    return FULL if age >= full_pass_every_s else INCREMENTAL


def run_id(run: Any) -> str | None:
    if isinstance(run, dict) and isinstance(run.get("id"), str):
        return str(run["id"])
    return None


def page_is_unchanged(runs: list[Any], stored_hashes: Mapping[str, str]) -> bool:
    """Every run on the page is stored exactly as it is now (runs without an id never are)."""
    for run in runs:
        rid = run_id(run)
        if rid is None or stored_hashes.get(rid) != payload_hash(run):
            return False
    return True


class PageWalk:
    """One connection's walk over its run list: whether to read the next page.

    Only an incremental walk stops early, and only on a page with nothing new, when the
    list has proved newest-first so far (else older pages may still hold new runs).
    """

    def __init__(self, mode: str) -> None:
        self.incremental = mode == INCREMENTAL
        self.read_all = True  # cleared when the walk stops before the list's end
        self.newest_first = True  # cleared when a run starts later than the one before it
        self._previous_start: str | None = None

    def go_on(self, runs: list[Any], unchanged: bool, has_next: bool) -> bool:
        self._watch_order(runs)
        if self.incremental and unchanged and self.newest_first and has_next:
            self.read_all = False
            return False
        return True

    def _watch_order(self, runs: list[Any]) -> None:
        """ISO timestamps of one format sort as text, which is all the order check needs."""
        for run in runs:
            start = run.get("startDateTime") if isinstance(run, dict) else None
            if not isinstance(start, str):
                continue
            if self._previous_start is not None and start > self._previous_start:
                self.newest_first = False
            self._previous_start = start
