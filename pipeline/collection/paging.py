"""Paging decisions: read a connection whole or only its newest pages, and when to stop."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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


def _start_key(run: Any) -> str | None:
    """ISO timestamps of one format sort as text, which is all the order check needs."""
    if isinstance(run, dict):
        value = run.get("startDateTime")
        if isinstance(value, str):
            return value
    return None


class OrderWatch:
    """Tells whether a connection's runs arrive newest-first, across the pages read so far."""

    def __init__(self) -> None:
        self.previous: str | None = None
        self.newest_first = True

    def observe(self, runs: Iterable[Any]) -> None:
        for run in runs:
            key = _start_key(run)
            if key is None:
                continue
            if self.previous is not None and key > self.previous:
                self.newest_first = False
            self.previous = key


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
        self.mode = mode
        self.order = OrderWatch()
        self.read_all = True  # cleared when the walk stops before the list's end

    @property
    def incremental(self) -> bool:
        return self.mode == INCREMENTAL

    def go_on(self, runs: list[Any], unchanged: bool, has_next: bool) -> bool:
        self.order.observe(runs)
        if self.incremental and unchanged and self.order.newest_first and has_next:
            self.read_all = False
            return False
        return True
