"""Warning checks on what the models found: vocabulary drift against Bentley's catalogues,
and a spike on the latest day."""

from __future__ import annotations

from typing import Any

import dagster as dg
import duckdb

from pipeline.catalog import read_catalogs
from pipeline.defs.resources import WarehouseResource
from pipeline.report.data import rows_of
from pipeline.report.format import format_rate

# Values of failed tasks' error rows, from the all-time model (failed tasks as the models
# count them); a missing value is `(unspecified)` there and is no drift.
_DRIFT_SQL = """
select
    replace(dimension, '_', ' ') as field,
    value,
    failed_tasks
from int_failure_rate_by_dimension
where failed_tasks > 0
    and value <> '(unspecified)'
    and case dimension
        when 'description_key' then value not in (
            select description_key from error_catalog where description_key is not null
        )
        when 'system' then lower(value) not in (select unnest(?::varchar[]))
        when 'phase' then lower(value) not in (select unnest(?::varchar[]))
        else false
    end
order by field, failed_tasks desc, value
"""


def vocabulary_drift(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, int]]:
    """(field, value, failed tasks) for each description key in no catalogue, and each
    system or phase in neither catalogue's (compared case-insensitively: real payloads
    say `Exporter` for the catalogue's `exporter`). Reads int_failure_rate_by_dimension:
    the check runs after the models, and the tasks themselves are the whole history."""
    catalogs = read_catalogs()
    systems = sorted({s.lower() for c in catalogs for s in c.systems})
    phases = sorted({p.lower() for c in catalogs for ps in c.systems.values() for p in ps})
    rows = con.execute(_DRIFT_SQL, [systems, phases]).fetchall()
    return [(str(f), str(v), int(n)) for f, v, n in rows]


@dg.asset_check(asset="failure_rate_by_description_key", name="vocabulary_in_catalog")
def vocabulary_in_catalog(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """Warns when failed tasks carry description keys, systems or phases no catalogue knows."""
    with warehouse.get_connection() as con:
        drift = vocabulary_drift(con)
    lines = [f"- {field} `{value}`: {n} failed tasks" for field, value, n in drift]
    return dg.AssetCheckResult(
        passed=not drift,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "unknown_values": len(drift),
            "failed_tasks_affected": sum(n for *_, n in drift),
            "values": dg.MetadataValue.md("\n".join(lines) or "none"),
        },
    )


def latest_day(con: duckdb.DuckDBPyConnection) -> dict[str, Any] | None:
    rows = rows_of(con, "select * from failure_daily order by day desc limit 1")
    return rows[0] if rows else None


@dg.asset_check(asset="failure_daily", name="latest_day_no_spike")
def latest_day_no_spike(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """Warns when the latest day's task failure rate is a spike over its 28-day baseline."""
    with warehouse.get_connection() as con:
        day = latest_day(con)
    if day is None:
        return dg.AssetCheckResult(passed=True, metadata={"day": "no runs yet"})
    rate = format_rate(
        day["task_failure_rate"], day["task_failure_rate_low"], day["task_failure_rate_high"]
    )
    baseline = format_rate(
        day["baseline_task_failure_rate"],
        day["baseline_task_failure_rate_low"],
        day["baseline_task_failure_rate_high"],
    )
    return dg.AssetCheckResult(
        passed=not day["is_spike"],
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "day": str(day["day"]),
            "task_failure_rate": f"{rate} of {day['completed_tasks']} completed tasks",
            "baseline_28_days": f"{baseline} of {day['baseline_completed_tasks']} completed tasks",
        },
    )
