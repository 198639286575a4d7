"""Paging decisions as pure functions: which pass, and when an incremental walk stops."""

from __future__ import annotations

from datetime import timedelta

from pipeline.collection.paging import PageWalk, choose_mode, page_is_unchanged
from pipeline.transform.flatten import payload_hash
from tests.transform.builders import T0, run

DAY = 24 * 3600.0


def test_a_connection_never_read_whole_gets_a_full_pass() -> None:
    assert choose_mode(None, T0, DAY, force_full=False) == "full"


def test_a_recent_full_pass_makes_the_next_one_incremental_until_it_is_too_old() -> None:
    assert choose_mode(T0, T0 + timedelta(hours=1), DAY, force_full=False) == "incremental"
    assert choose_mode(T0, T0 + timedelta(days=1), DAY, force_full=False) == "full"


def test_force_full_wins() -> None:
    assert choose_mode(T0, T0 + timedelta(hours=1), DAY, force_full=True) == "full"


def test_a_page_is_unchanged_only_if_every_run_is_stored_as_it_is() -> None:
    a, b = run("a"), run("b")
    stored = {"a": payload_hash(a), "b": payload_hash(b)}
    assert page_is_unchanged([a, b], stored)
    assert not page_is_unchanged([a, {**b, "state": "Failed"}], stored)
    assert not page_is_unchanged([a, run("c")], stored)  # not stored at all
    assert not page_is_unchanged([a, {"no": "id"}], stored)  # no id: the loader decides


def _runs_starting(*days: int) -> list[dict[str, object]]:
    return [{**run(f"r{d}"), "startDateTime": f"2025-01-{d:02d}T00:00:00Z"} for d in days]


def test_an_incremental_walk_stops_at_an_unchanged_page_of_a_newest_first_list() -> None:
    walk = PageWalk("incremental")
    assert walk.go_on(_runs_starting(9, 8), unchanged=False, has_next=True)
    assert not walk.go_on(_runs_starting(7, 6), unchanged=True, has_next=True)
    assert not walk.read_all


def test_an_incremental_walk_reads_on_when_the_list_is_not_newest_first() -> None:
    walk = PageWalk("incremental")
    assert walk.go_on(_runs_starting(5, 8), unchanged=False, has_next=True)
    assert walk.go_on(_runs_starting(4, 3), unchanged=True, has_next=True)
    assert walk.read_all


def test_a_full_walk_never_stops_early_and_the_last_page_ends_any_walk() -> None:
    full = PageWalk("full")
    assert full.go_on(_runs_starting(9, 8), unchanged=True, has_next=True)
    last = PageWalk("incremental")
    assert last.go_on(_runs_starting(2, 1), unchanged=True, has_next=False)
    assert last.read_all
