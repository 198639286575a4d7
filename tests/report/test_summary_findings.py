"""The CLI summary ends with the findings the alerts would send."""

from __future__ import annotations

from pathlib import Path

import duckdb

from pipeline.summary import findings_block, read_summary
from tests.alerts.support import add_days, add_trend, model_tables


def summary_text(tmp_path: Path) -> str:
    return read_summary(tmp_path).render(seconds=1.0, collected=False)


def test_the_summary_ends_with_each_finding(tmp_path: Path) -> None:
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        model_tables(con)
        add_days(con, 2)  # a spike two days before the latest day
        add_trend(con, "TAE_NEW_1", "new", prior=(0, 1600, 0.0, 0.0, 0.0024))
        add_trend(con, "TAE_UP_\x1b[31m2", "rising")  # API text: no terminal escapes
        add_trend(con, "TAE_FLAT_3", "steady")
    lines = summary_text(tmp_path).splitlines()
    assert lines[-4] == "is it getting worse? 3 findings (what the alerts say):"
    assert lines[-3].startswith("  - Task failure spike on 2026-12-04: 18% (9–32%)")
    assert lines[-2].startswith("  - Error code TAE_NEW_1 is new: 48 failed tasks")
    assert lines[-1].startswith("  - Error code TAE_UP_?[31m2 is rising: 48 failed tasks")
    assert "TAE_FLAT_3" not in "\n".join(lines)


def test_without_findings_the_summary_says_so(tmp_path: Path) -> None:
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        model_tables(con)
        add_days(con)
        add_trend(con, "TAE_FLAT_3", "steady")
    assert summary_text(tmp_path).splitlines()[-1].startswith("is it getting worse? no:")


def test_one_finding_is_named_in_the_singular() -> None:
    assert findings_block(["Error code X is new."])[0] == (
        "is it getting worse? 1 finding (what the alerts say):"
    )
