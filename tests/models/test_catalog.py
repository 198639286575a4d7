"""Fixability, description keys with Bentley's catalogue, and connection names and roll-ups.

Catalogue: K_BOTH in both catalogues (exporter: user-fixable; connector: not), K_CONN in
the connector one only (its kbArticleLink is ""), K_NONE in neither.
  c1/r1 (3-01 10:00): t1 Error K_BOTH canUserFix=false (the API overrides the catalogue)
                      t2 Error K_BOTH canUserFix absent (the exporter entry decides: true)
                      t3 Error K_CONN canUserFix absent (the connector entry: true)
                      t4 Error K_NONE canUserFix absent (nobody knows)
                      t6 Succeeded K_NONE canUserFix=false (an occurrence, not a failure)
                      t7 Error, no error row
  c2/r2 (3-02 09:00): t5 Error, NULL key, canUserFix=true; t8 Succeeded, no error row
8 completed tasks, 6 failed.
"""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import pytest

from tests.models.builders import Warehouse, approx_rows, rate, rows

U = "(unspecified)"
R1 = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
R2 = datetime(2024, 3, 2, 9, 0, tzinfo=UTC)

DIMENSION_COLUMNS = (
    "failed_tasks",
    "error_occurrences",
    "completed_tasks",
    "failure_rate",
    "failure_rate_low",
    "failure_rate_high",
    "share_of_failures",
    "runs_affected",
    "connections_affected",
    "first_seen",
    "last_seen",
)


@pytest.fixture
def catalogued() -> duckdb.DuckDBPyConnection:
    w = Warehouse.empty("America/Los_Angeles")
    w.catalog_entry("exporter", "K_BOTH", "exporter text", "Exp", True, "https://kb.example/exp")
    w.catalog_entry("connector", "K_BOTH", "connector text", "Conn", False, "https://kb/conn")
    w.catalog_entry("connector", "K_CONN", "connector only", "Files", True, "")
    w.run("c1", "r1", "2024-03-01 10:00:00+00", "Completed", "Error")
    for task, result, key, fix in (
        ("t1", "Error", "K_BOTH", False),
        ("t2", "Error", "K_BOTH", None),
        ("t3", "Error", "K_CONN", None),
        ("t4", "Error", "K_NONE", None),
        ("t6", "Succeeded", "K_NONE", False),
    ):
        w.task("c1", "r1", task, "Completed", result)
        w.error("c1", "r1", task, "E", "P", "S", description_key=key, can_user_fix=fix)
    w.task("c1", "r1", "t7", "Completed", "Error")
    w.run("c2", "r2", "2024-03-02 09:00:00+00", "Completed", "Error")
    w.task("c2", "r2", "t5", "Completed", "Error")
    w.error("c2", "r2", "t5", "E", "P", "S", description_key=None, can_user_fix=True)
    w.task("c2", "r2", "t8", "Completed", "Succeeded")
    return w.build()


def dimension_row(value_column: str, *values: object) -> dict[str, object]:
    """(value, failed, occurrences, runs, connections, first, last) over 8 completed, 6 failed."""
    value, failed, occurrences, runs, connections, first, last = values
    assert isinstance(failed, int)
    counts = (value, failed, occurrences, 8, *rate(failed, 8), failed / 6, runs, connections)
    return dict(zip((value_column, *DIMENSION_COLUMNS), (*counts, first, last), strict=True))


def test_fixability_api_first_then_exporter_then_connector(
    catalogued: duckdb.DuckDBPyConnection,
) -> None:
    assert rows(catalogued, "failure_rate_by_fixability") == approx_rows(
        [
            # t2 (exporter entry, not the connector's false), t3 (connector), t5 (API)
            dimension_row("fixability", "user_fixable", 3, 3, 2, 2, R1, R2),
            # t4: a key in no catalogue and no canUserFix; t7: no error row at all
            dimension_row("fixability", U, 2, 1, 1, 1, R1, R1),
            # t1: the API's false beats the exporter entry's true; t6 only an occurrence
            dimension_row("fixability", "not_user_fixable", 1, 2, 1, 1, R1, R1),
        ]
    )


def test_description_keys_carry_the_catalogue_entry(
    catalogued: duckdb.DuckDBPyConnection,
) -> None:
    catalogue = ("in_catalog", "description", "category", "can_user_fix", "kb_article_link")
    expected = [
        # in both catalogues: the exporter entry, whatever the tasks' canUserFix said
        (
            dimension_row("description_key", "K_BOTH", 2, 2, 1, 1, R1, R1),
            (True, "exporter text", "Exp", True, "https://kb.example/exp"),
        ),
        # a NULL key (t5) and a failed task with no error row (t7)
        (dimension_row("description_key", U, 2, 1, 2, 2, R1, R2), (False, None, None, None, None)),
        # in no catalogue: NULLs, in_catalog false
        (
            dimension_row("description_key", "K_NONE", 1, 2, 1, 1, R1, R1),
            (False, None, None, None, None),
        ),
        # the connector's entry; its empty link is no link
        (
            dimension_row("description_key", "K_CONN", 1, 1, 1, 1, R1, R1),
            (True, "connector only", "Files", True, None),
        ),
    ]
    assert rows(catalogued, "failure_rate_by_description_key") == approx_rows(
        [{**row, **dict(zip(catalogue, entry, strict=True))} for row, entry in expected]
    )


def test_fixability_shares_add_up_to_all_failures(catalogued: duckdb.DuckDBPyConnection) -> None:
    shares = catalogued.execute(
        "select sum(share_of_failures), sum(failed_tasks) from failure_rate_by_fixability"
    ).fetchall()
    assert shares == [(pytest.approx(1.0), 6)]


ROLLUP_COLUMNS = (
    "completed_runs",
    "failed_runs",
    "run_failure_rate",
    "run_failure_rate_low",
    "run_failure_rate_high",
    "completed_tasks",
    "failed_tasks",
    "task_failure_rate",
    "task_failure_rate_low",
    "task_failure_rate_high",
    "last_run_start",
)


def named_warehouse() -> duckdb.DuckDBPyConnection:
    """ca, cb in iModel m1; cc in m2 (all iTwin w1); cd unknown; ce known without details;
    cz known with no runs (no row anywhere)."""
    w = Warehouse.empty("Asia/Tokyo")
    w.connection("ca", "A 'quoted' <b>", "m1", "w1").connection("cb", "B", "m1", "w1")
    w.connection("cc", "C 🚧", "m2", "w1").connection("ce", None, None, None)
    w.connection("cz", "Z", "m3", "w2")
    w.run("ca", "r1", "2024-03-01 10:00:00+00", "Completed", "Error")
    w.task("ca", "r1", "t1", "Completed", "Error")
    w.run("cb", "r2", "2024-03-02 10:00:00+00", "Completed", "Succeeded")
    w.task("cb", "r2", "t1", "Completed", "Succeeded")
    w.run("cc", "r3", "2024-03-03 10:00:00+00", "Completed", "Error")
    w.task("cc", "r3", "t1", "Completed", "Error").task("cc", "r3", "t2")
    w.run("cd", "r4", "2024-03-04 10:00:00+00", "Completed", "TimedOut")
    w.run("ce", "r5", "2024-03-05 10:00:00+00", "Running", None)
    return w.build()


def day(d: int) -> datetime:
    return datetime(2024, 3, d, 10, 0, tzinfo=UTC)


def test_connections_carry_their_names() -> None:
    con = named_warehouse()
    assert con.execute(
        "select connection_id, display_name, imodel_id, itwin_id from failure_rate_by_connection"
    ).fetchall() == [
        ("ca", "A 'quoted' <b>", "m1", "w1"),
        ("cb", "B", "m1", "w1"),
        ("cc", "C 🚧", "m2", "w1"),
        ("cd", None, None, None),  # has runs, no details: NULL names
        ("ce", None, None, None),
    ]


def test_imodels_roll_up_their_connections() -> None:
    expected = [
        ("m1", "w1", 2, 2, 1, *rate(1, 2), 2, 1, *rate(1, 2), day(2)),
        ("m2", "w1", 1, 1, 1, *rate(1, 1), 2, 1, *rate(1, 2), day(3)),
        # cd and ce have no details; no tasks at all gives no task rate
        (None, None, 2, 1, 1, *rate(1, 1), 0, 0, *rate(0, 0), day(5)),
    ]
    columns = ("imodel_id", "itwin_id", "connections", *ROLLUP_COLUMNS)
    assert rows(named_warehouse(), "failure_rate_by_imodel") == approx_rows(
        [dict(zip(columns, row, strict=True)) for row in expected]
    )


def test_itwins_roll_up_their_imodels() -> None:
    expected = [
        ("w1", 2, 3, 3, 2, *rate(2, 3), 4, 2, *rate(2, 4), day(3)),
        (None, 0, 2, 1, 1, *rate(1, 1), 0, 0, *rate(0, 0), day(5)),
    ]
    columns = ("itwin_id", "imodels", "connections", *ROLLUP_COLUMNS)
    assert rows(named_warehouse(), "failure_rate_by_itwin") == approx_rows(
        [dict(zip(columns, row, strict=True)) for row in expected]
    )
