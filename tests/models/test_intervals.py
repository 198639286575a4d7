"""The Wilson interval macros against values computed here with math and published ones."""

from __future__ import annotations

import duckdb
import pytest

from pipeline.warehouse.models import create_macros
from tests.models.builders import wilson


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    create_macros(con)
    return con


@pytest.mark.parametrize(
    ("k", "n", "published"),
    [
        # published 95% Wilson intervals, to four places
        (0, 10, (0.0, 0.2775)),
        (5, 10, (0.2366, 0.7634)),
        (10, 10, (0.7225, 1.0)),
        (1, 40, (0.0044, 0.1288)),
    ],
)
def test_wilson_matches_the_formula_and_published_values(
    con: duckdb.DuckDBPyConnection, k: int, n: int, published: tuple[float, float]
) -> None:
    low, high = con.execute("select wilson_low(?, ?), wilson_high(?, ?)", [k, n, k, n]).fetchall()[
        0
    ]
    expected_low, expected_high = wilson(k, n)
    assert (low, high) == (pytest.approx(expected_low, abs=1e-12), pytest.approx(expected_high))
    assert (round(low, 4), round(high, 4)) == published


def test_no_trials_give_no_interval(con: duckdb.DuckDBPyConnection) -> None:
    assert con.execute("select wilson_low(0, 0), wilson_high(0, 0)").fetchall() == [(None, None)]
    assert con.execute("select wilson_low(null, null)").fetchall() == [(None,)]


def test_bounds_never_leave_zero_to_one(con: duckdb.DuckDBPyConnection) -> None:
    outside = con.execute(
        "select count(*) from range(0, 200) as n(n), range(0, 200) as k(k) "
        "where k <= n and n > 0 and (wilson_low(k, n) < 0 or wilson_high(k, n) > 1 "
        "or wilson_low(k, n) > k / n or wilson_high(k, n) < k / n)"
    ).fetchall()
    assert outside == [(0,)]
