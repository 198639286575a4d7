"""report.html against a hand-made warehouse with the spec's mart columns and known values."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from pipeline.report.html import write_html_report
from tests.report.fixtures import (
    C_NAMELESS,
    HOSTILE_NAME,
    KB_LINK,
    MART_COLUMNS,
    report_warehouse,
)
from tests.report.pages import assert_self_contained, column, data_rows, has_section, section

GENERATED = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)
KB_LINKS = frozenset({KB_LINK, "http://kb.example.com/crash"})
RATE_CELL = re.compile(r"^(–|\d+(\.\d)?% \(\d+(\.\d)?–\d+(\.\d)?%\))$")
NEW_MODEL_SECTIONS = {
    "failure_rate_by_fixability": "Who can fix it",
    "failure_trend_by_error_code": "What changed this week",
    "failure_rate_by_imodel": "Failures by iModel",
    "failure_rate_by_itwin": "Failures by iTwin",
    "run_duration_daily": "Run durations by day",
    "failure_rate_by_connection": "Connections by iModel",
    "failure_daily": "Daily failure rate",
}


def render(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> str:
    path = tmp_path / "report.html"
    write_html_report(con, path, generated_at=GENERATED)
    return path.read_text(encoding="utf-8")


@pytest.fixture
def page(tmp_path: Path) -> str:
    return render(report_warehouse(), tmp_path)


def test_every_section_is_there(page: str) -> None:
    assert_self_contained(page, KB_LINKS)
    for heading in [
        "What changed this week",
        "Daily failure rate",
        "Who can fix it",
        "Top error codes",
        "Top phases",
        "Top systems",
        "Failures by iTwin",
        "Failures by iModel",
        "Connections by iModel",
        "Run durations by day",
    ]:
        assert has_section(page, heading), heading
    assert "Getting worse? Yes: 1 new error code, 1 rising, 1 spike day in the last 7 days." in page


def test_every_rate_cell_shows_its_interval(page: str) -> None:
    cells = re.findall(r'<td class="rate"[^>]*>([^<]*)</td>', page)
    assert len(cells) > 60
    shown = [c.replace("&#x27;", "'") for c in cells]
    assert all(RATE_CELL.match(c) for c in shown), [c for c in shown if not RATE_CELL.match(c)]
    assert sum(1 for c in shown if "(" in c) >= len(shown) - 4  # only empty days show "–"


def test_connections_are_named_and_grouped_by_imodel(page: str) -> None:
    part = section(page, "Connections by iModel")
    names = column(part, "connection")
    # iModels by failed tasks (imodel-0002: 10, imodel-0001: 9, none: 3), then their
    # connections by failed tasks; a shared name gets the id's first 8 characters.
    assert names[1:] == ["Bridge North · aaaa1111", "Bridge North · bbbb2222", C_NAMELESS]
    assert names[0].startswith("\"><script>alert('x')</script> ' OR 1=1; DROP TABLE runs;")
    assert column(part, "task failure rate") == [
        "10% (6–17%)",  # 10 of 100
        "20% (10–35%)",  # 8 of 40
        "5% (1–24%)",  # 1 of 20
        "100% (44–100%)",  # 3 of 3
    ]
    headings = re.findall(r'<tr class="group"><th colspan="\d+">(.*?)</th>', part)
    assert headings == [
        'iModel imodel-0002 <span class="muted">in iTwin itwin-0001</span>',
        'iModel imodel-0001 <span class="muted">in iTwin itwin-0001</span>',
        "(no iModel details)",
    ]
    greyed = [r.cells[0] for r in data_rows(part) if r.css == "small"]
    assert greyed == [C_NAMELESS]  # 3 completed tasks


def test_rollups_per_imodel_and_itwin_sort_by_counts(page: str) -> None:
    imodels = section(page, "Failures by iModel")
    # imodel-0001 has the higher rate (15%) but fewer failed tasks: counts decide.
    assert column(imodels, "iModel") == ["imodel-0002", "imodel-0001", "(no iModel details)"]
    assert column(imodels, "task failure rate") == ["10% (6–17%)", "15% (8–26%)", "100% (44–100%)"]
    assert [r.css for r in data_rows(imodels)] == ["", "", "small"]
    itwins = section(page, "Failures by iTwin")
    assert column(itwins, "iTwin") == ["itwin-0001", "(unknown iTwin)"]
    assert column(itwins, "iModels") == ["2", "0"]
    assert column(itwins, "task failure rate") == ["12% (8–18%)", "100% (44–100%)"]


def test_what_changed_lists_new_and_rising_first(page: str) -> None:
    part = section(page, "What changed this week")
    moving = part[: part.index("<details>")]
    assert column(moving, "error code") == ["NewCode", "RisingCode", "FallingCode"]
    assert column(moving, "trend") == ["NEW", "rising ↑", "falling ↓"]
    assert '<th class="span" colspan="2">last 7 days</th>' in moving
    assert '<th class="span" colspan="2">the 28 days before</th>' in moving
    assert column(moving, "failure rate") == [
        "1.3% (0.5–3.4%)",  # 4 of 300
        "10.0% (7.1–13.9%)",  # 30 of 300: a narrow interval earns a decimal
        "0.3% (0.1–1.9%)",  # 1 of 300
    ]
    assert column(moving, "failure rate", 1)[0] == "0.0% (0.0–0.3%)"  # 0 of 1200
    steady = part[part.index("<details>") :]
    assert "1 error code steady" in steady
    assert column(steady, "error code") == ["SteadyCode"]
    assert "Last 7 days: 04 Nov to 10 Nov 2026; the 28 days before: 07 Oct to 03 Nov." in part


def test_spike_days_are_marked(page: str) -> None:
    part = section(page, "Daily failure rate")
    assert (
        "Spike days: 2026-11-08: 50% (37–63%) of 50 completed tasks, baseline 10.0% (6.6–14.9%)."
        in part
    )
    days = column(part, "day (UTC)")
    spikes = column(part, "spike")
    assert days[0] == "2026-11-10" and len(days) == 10  # newest first
    assert [d for d, s in zip(days, spikes, strict=True) if s == "SPIKE"] == ["2026-11-08"]
    chart = part[part.index("<svg") : part.index("</svg>")]
    marks = re.findall(r"<g><title>([^<]*)</title><rect", chart)
    assert marks == ["2026-11-08: 50% (37–63%) of 50 completed tasks (spike)"]
    assert "spike day" in chart  # the legend


def test_a_tiny_first_day_does_not_dominate_the_chart(page: str) -> None:
    part = section(page, "Daily failure rate")
    chart = part[part.index("<svg") : part.index("</svg>")]
    # 1 of 1 on the first day: the axis is scaled to the days worth reading, the day is a
    # grey dot off the line, and its table row is greyed.
    assert ">100%<" not in chart and ">80%<" in chart
    first = re.search(r'<circle cx="64.0"[^>]*>', chart)
    assert first and 'stroke="#9ca3af"' in first.group(0)
    task_lines = re.findall(r'<polyline fill="none" stroke="#c2410c"[^>]*points="([^"]*)"', chart)
    assert task_lines and all(not p.startswith("64.0,") for p in task_lines)
    greyed = [r.cells[0] for r in data_rows(part) if r.css == "small"]
    assert greyed == ["2026-11-01"]


def test_who_can_fix_it_lists_fixable_causes_with_their_links(page: str) -> None:
    part = section(page, "Who can fix it")
    assert column(part, "who can fix it") == ["user cannot fix", "user can fix", "(unspecified)"]
    assert column(part, "failure rate (95% interval)") == [
        "6.1% (3.4–10.9%)",  # 10 of 163
        "5.5% (2.9–10.2%)",  # 9 of 163
        "1.8% (0.6–5.3%)",  # 3 of 163
    ]
    fixable = part[
        part.index("<h3>Top causes the user can fix</h3>") : part.index("<h3>Top causes by")
    ]
    assert column(fixable, "description key") == ["MissingReferenceFile", "BadLinkKey"]
    assert column(fixable, "what it means (catalogue)")[0] == "A reference file could not be found."
    href = KB_LINK.replace("&", "&amp;")
    assert (
        f'<a href="{href}" rel="noopener noreferrer" target="_blank" class="kb">KB article</a>'
        in fixable
    )
    # a link that is not http(s) is shown as text, never as a link
    assert column(fixable, "knowledge base")[1] == "javascript:alert(1)"
    assert 'href="javascript' not in page
    outside = {h.replace("&amp;", "&") for h in re.findall(r'<a href="([^"#][^"]*)"', page)}
    assert outside == KB_LINKS  # the catalogue's http(s) links, and nothing else leaves the page
    every = part[part.index("<h3>Top causes by") :]
    assert column(every, "description key") == [
        "ServiceCrash",
        "MissingReferenceFile",
        "BadLinkKey",
        "NotInAnyCatalogue",
    ]
    assert column(every, "user can fix") == ["no", "yes", "yes", "–"]


def test_display_names_are_escaped(page: str) -> None:
    assert_self_contained(page, KB_LINKS)
    assert "<script>" not in page
    assert HOSTILE_NAME not in page
    escaped = (
        "&quot;&gt;&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &#x27; OR 1=1; "
        "DROP TABLE runs; -- 🚧"
    )
    assert f'title="{escaped} (connection id dddd4444-' in page  # the full name on hover


def test_durations_by_day(page: str) -> None:
    part = section(page, "Run durations by day")
    assert column(part, "day (UTC)") == ["2026-11-10", "2026-11-09", "2026-11-08"]
    assert column(part, "p50") == ["5 min 0 s", "5 min 1 s", "5 min 2 s"]
    assert column(part, "p95") == ["20 min 0 s"] * 3
    assert column(part, "max") == ["2 h 0 min"] * 3
    assert "<polyline" in part


@pytest.mark.parametrize("model", sorted(NEW_MODEL_SECTIONS))
def test_a_missing_model_leaves_its_section_out(model: str, tmp_path: Path) -> None:
    page = render(report_warehouse(leave_out=(model,)), tmp_path)
    assert not has_section(page, NEW_MODEL_SECTIONS[model])
    assert has_section(page, "Top error codes")
    assert_self_contained(page, KB_LINKS)


def test_a_warehouse_with_none_of_the_models_still_renders(tmp_path: Path) -> None:
    page = render(report_warehouse(leave_out=tuple(MART_COLUMNS)), tmp_path)
    assert_self_contained(page)
    assert "<h2>" not in page
    assert "<nav>" not in page
    assert re.search(r'<div class="label">runs</div><div class="value">0</div>', page)


def test_the_imodel_table_cuts_a_long_itwin_id_and_shows_it_whole_on_hover(
    tmp_path: Path,
) -> None:
    # Two whole UUIDs side by side pushed this table past the page's width.
    itwin = "8d5d7f86-acfb-2960-f01c-88604dcf41c4"
    con = report_warehouse()
    con.execute(
        "update failure_rate_by_imodel set itwin_id = ? where itwin_id = 'itwin-0001'", [itwin]
    )
    imodels = section(render(con, tmp_path), "Failures by iModel")
    assert column(imodels, "iTwin")[:2] == ["8d5d7f86-acfb-…"] * 2
    assert f'title="{itwin}"' in imodels
    assert column(imodels, "iModel")[0] == "imodel-0002"  # the row's own id stays whole


def test_durations_stay_on_one_line(page: str) -> None:
    durations = section(page, "Run durations by day")
    cells = re.findall(r'<td class="([^"]*)">\d+ min \d+ s</td>', durations)
    assert cells and set(cells) == {"num when"}
