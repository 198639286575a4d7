"""report.html from models built by the SQL in sql/: self-contained, escaped, right figures,
sane with no data or one day. (tests/report/test_page.py checks each section against a
hand-made warehouse with the spec's mart columns.)"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pytest

from pipeline.report.charts import Bar, bar_chart, ticks
from pipeline.report.html import FailureCause, top_failure_causes, write_html_report
from pipeline.report.timeline import Series, day_chart
from tests.models.builders import Warehouse, mixed_warehouse
from tests.report.pages import assert_self_contained, section

GENERATED = datetime(2024, 3, 4, 12, 0, tzinfo=UTC)
HOSTILE = "<script>alert('x')</script>"


def render(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> str:
    path = tmp_path / "report.html"
    assert write_html_report(con, path, generated_at=GENERATED)  # written, not skipped
    return path.read_text(encoding="utf-8")


def figure(page: str, label: str) -> str:
    match = re.search(
        rf'<div class="label">{re.escape(label)}</div><div class="value">([^<]*)</div>', page
    )
    assert match, label
    return match.group(1)


def test_headline_figures(tmp_path: Path) -> None:
    page = render(mixed_warehouse().build(), tmp_path)
    assert_self_contained(page)
    expected = {
        "runs": "6",
        "completed runs": "5",
        "failed runs": "2",
        "run failure rate": "40.0%",
        "completed tasks": "10",
        "failed tasks": "6",
        "task failure rate": "60.0%",
        "connections": "2",
        "run start dates (UTC)": "2024-03-01 → 2024-03-03",
    }
    assert {label: figure(page, label) for label in expected} == expected
    assert "of 12 tasks" in page
    assert "Generated 2024-03-04 12:00 UTC" in page


def test_sections_show_the_models(tmp_path: Path) -> None:
    page = render(mixed_warehouse().build(), tmp_path)
    for heading in ("Top error codes", "Top phases", "Top systems", "Daily failure rate"):
        assert f"<h2>{heading}</h2>" in page
    codes = section(page, "Top error codes")
    # E1: 3 failed tasks, half of all failures, in the bar label and the table
    assert "3 (50.0%)" in codes and "<svg" in codes
    assert "first failure" in codes  # most common message of E1's failed tasks
    assert "2024-03-02 09:00" in codes  # E1's last_seen, in UTC
    assert "<svg" in section(page, "Daily failure rate")
    assert ">PartialSuccess<" in section(page, "Connections by iModel")  # c2's last run result


def test_hostile_values_are_escaped(tmp_path: Path) -> None:
    w = Warehouse.empty()
    w.run(HOSTILE, "r1", "2024-03-01 10:00:00+00", "Completed", "Error")
    w.task(HOSTILE, "r1", "t1", "Completed", "Error")
    w.error(HOSTILE, "r1", "t1", HOSTILE, '"><img src=x onerror=alert(1)>', "a&b", HOSTILE)
    page = render(w.build(), tmp_path)
    assert_self_contained(page)
    assert HOSTILE not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    assert "a&amp;b" in page


def test_empty_warehouse_renders(tmp_path: Path) -> None:
    page = render(Warehouse.empty().build(), tmp_path)
    assert_self_contained(page)
    assert figure(page, "runs") == "0"
    assert figure(page, "run failure rate") == "–"
    assert figure(page, "run start dates (UTC)") == "no runs yet"
    assert "No failed tasks yet." in page
    assert "No runs yet." in page
    assert "No connections with runs yet." in page
    assert "<svg" not in page.replace("No runs yet", "")


def test_one_day_of_data_draws_points_not_lines(tmp_path: Path) -> None:
    w = Warehouse.empty()
    w.run("c1", "r1", "2024-03-01 10:00:00+00", "Completed", "Error")
    w.task("c1", "r1", "t1", "Completed", "Error")
    page = render(w.build(), tmp_path)
    trend = page[page.index("<h2>Daily failure rate</h2>") :]
    assert trend.count("<circle") == 1  # one point: the day's task failure rate
    assert "<polyline" not in trend
    assert "01 Mar" in trend
    assert "100%" in trend


def test_write_is_atomic_and_leaves_no_temp_file(tmp_path: Path) -> None:
    (tmp_path / "report.html").write_text("old")
    render(mixed_warehouse().build(), tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_top_failure_causes() -> None:
    con = mixed_warehouse().build()
    u = "(unspecified)"
    assert top_failure_causes(con, n=5) == [
        FailureCause("E1", "P1", "S1", 2, pytest.approx(2 / 6)),
        FailureCause(u, u, u, 1, pytest.approx(1 / 6)),
        FailureCause(u, "P2", "S2", 1, pytest.approx(1 / 6)),
        FailureCause("E1", "P2", u, 1, pytest.approx(1 / 6)),
        FailureCause("E2", "P1", "S2", 1, pytest.approx(1 / 6)),
    ]
    assert len(top_failure_causes(con, n=2)) == 2
    assert top_failure_causes(Warehouse.empty().build()) == []


def test_bar_chart_truncates_long_labels_and_keeps_full_text() -> None:
    label = "UnsupportedSchemaVersionInSourceFileWithAVeryLongName"
    svg = bar_chart([Bar(label, 5, "5 (100.0%)")], title="t", x_label="failed tasks")
    assert f"<title>{label}: 5 (100.0%)</title>" in svg
    assert ">UnsupportedSchemaVersionInS…<" in svg
    assert ">failed tasks<" in svg


def test_day_chart_breaks_at_missing_values_and_small_samples() -> None:
    days = [date(2024, 3, d) for d in (1, 2, 3, 4, 5)]
    svg = day_chart(
        days,
        [
            Series(
                "tasks",
                "#000",
                [0.1, 0.2, None, 0.3, 0.25],
                ["a", "b", "c", "d", "e"],
                faint=[False, False, False, False, True],
            )
        ],
        title="t",
        y_label="failure rate",
        y_format=lambda v: f"{v * 100:.0f}%",
        y_top=0.3,
    )
    assert svg.count("<polyline") == 1  # 1-2 joined; 4 stands alone; 5 is a small sample
    assert svg.count("<circle") == 4
    assert svg.count('stroke="#9ca3af"') == 1  # the small-sample day is grey
    assert ">30%<" in svg  # y axis in percent, topped at a nice value


@pytest.mark.parametrize(
    ("top", "integer", "expected"),
    [
        (169, True, [0, 50, 100, 150, 200]),
        (3, True, [0, 1, 2, 3]),
        (1, True, [0, 1]),
        (0.23, False, [0, 0.05, 0.1, 0.15, 0.2, 0.25]),
    ],
)
def test_ticks(top: float, integer: bool, expected: list[float]) -> None:
    assert ticks(top, integer=integer) == pytest.approx(expected)


def test_a_killed_earlier_write_leaves_no_temp_file(tmp_path: Path) -> None:
    # What `kill -9` in the middle of atomic_write leaves: a dot-named temp beside the page.
    stale = tmp_path / ".report.html.0123456789abcdef.tmp"
    stale.write_bytes(b"<!doctype html><html><body>half")
    other = tmp_path / ".failure_daily.parquet.0123.tmp"  # not the page's: left alone here
    other.write_bytes(b"x")
    render(mixed_warehouse().build(), tmp_path)
    assert not stale.exists()
    assert other.exists()
