"""Asset checks: key integrity blocks bad data from flowing on; the rest warn."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dagster as dg

from pipeline.defs.assets import markdown_cell
from pipeline.defs.finding_checks import latest_day_no_spike, vocabulary_in_catalog
from pipeline.defs.model_checks import rates_in_range_check
from pipeline.defs.resources import WarehouseResource
from pipeline.transform.schema import CORE_TABLES
from pipeline.warehouse import quality

STUCK_AFTER_HOURS = 24.0
FRESH_WITHIN_HOURS = 26.0  # a daily schedule with slack; hourly runs stay well inside


def unique_key_check(table: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=table, name="unique_key", blocking=True)
    def _check(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        with warehouse.get_connection() as con:
            dupes = quality.duplicate_keys(con, table)
        return dg.AssetCheckResult(passed=dupes == 0, metadata={"duplicate_keys": dupes})

    return _check


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec("no_orphans", asset=child, blocking=True) for child in quality.PARENTS
    ],
)
def no_orphans(warehouse: WarehouseResource):  # type: ignore[no-untyped-def]
    with warehouse.get_connection() as con:
        found = quality.orphans(con)
    for child, count in found.items():
        yield dg.AssetCheckResult(
            asset_key=child, check_name="no_orphans", passed=count == 0, metadata={"orphans": count}
        )


@dg.asset_check(asset="runs", name="known_states_and_results")
def known_states_and_results(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.get_connection() as con:
        unknown = quality.unknown_values(con)
    table = "\n".join(f"- {t}.{c} = {v!r}: {n} rows" for t, c, v, n in unknown) or "none"
    return dg.AssetCheckResult(
        passed=not unknown,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"unknown_values": dg.MetadataValue.md(table)},
    )


# A connection runs one export at a time, so a stuck run blocks new exports of its iModel.
_STUCK_BY_CONNECTION = """
select r.connection_id, c.display_name, c.imodel_id, count(*) as stuck, min(r.start_time)
from runs as r left join connections as c using (connection_id)
where coalesce(r.state, '') <> 'Completed'
    and r.start_time < ?::timestamptz - to_microseconds(cast(? * 3600e6 as bigint))
group by all order by stuck desc, r.connection_id limit 50
"""


def stuck_runs_markdown(rows: list[tuple[Any, ...]]) -> str:
    lines = ["| connection | id | iModel | stuck runs | oldest start |", "|---|---|---|---|---|"]
    for cid, name, imodel, n, oldest in rows:
        lines.append(
            f"| {markdown_cell(name or '')} | {cid} | {imodel or ''} | {n} | "
            f"{oldest:%Y-%m-%d %H:%M} |"
        )
    return "\n".join(lines)


@dg.asset_check(asset="runs", name="no_stuck_runs")
def no_stuck_runs(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """Runs not Completed a day after they started; each blocks new exports of its iModel."""
    now = datetime.now(UTC)
    with warehouse.get_connection() as con:
        stuck = quality.stuck_runs(con, now, STUCK_AFTER_HOURS)
        rows = con.execute(_STUCK_BY_CONNECTION, [now, STUCK_AFTER_HOURS]).fetchall()
    metadata: dict[str, Any] = {"stuck_runs": stuck, "threshold_hours": STUCK_AFTER_HOURS}
    if rows:
        metadata["connections"] = dg.MetadataValue.md(stuck_runs_markdown(rows))
    return dg.AssetCheckResult(
        passed=stuck == 0, severity=dg.AssetCheckSeverity.WARN, metadata=metadata
    )


@dg.asset_check(asset="collection_log", name="fresh_successful_collection")
def fresh_successful_collection(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.get_connection() as con:
        last = quality.last_successful_collection(con)
    age_h = None if last is None else (datetime.now(UTC) - last).total_seconds() / 3600
    return dg.AssetCheckResult(
        passed=age_h is not None and age_h <= FRESH_WITHIN_HOURS,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "last_fully_successful_collection": str(last) if last else "never",
            "age_hours": round(age_h, 2) if age_h is not None else -1.0,
        },
    )


@dg.asset_check(asset="runs", name="no_negative_durations")
def no_negative_durations(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """Runs ending before they start: stored as they came, with a negative duration."""
    with warehouse.get_connection() as con:
        count, named = quality.negative_durations(con)
    return dg.AssetCheckResult(
        passed=count == 0,
        severity=dg.AssetCheckSeverity.WARN,
        description=_naming(count, named, "end before they start"),
        metadata={"runs": count, "first_runs": dg.MetadataValue.md(_listing(named))},
    )


@dg.asset_check(asset="runs", name="runs_in_documented_states")
def runs_in_documented_states(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """Runs whose state or result the failure models do not know, named."""
    with warehouse.get_connection() as con:
        count, named = quality.runs_with_unknown_values(con)
    return dg.AssetCheckResult(
        passed=count == 0,
        severity=dg.AssetCheckSeverity.WARN,
        description=_naming(count, named, "have a state or result outside the documented ones"),
        metadata={"runs": count, "first_runs": dg.MetadataValue.md(_listing(named))},
    )


def _naming(count: int, named: list[str], what: str) -> str:
    if not count:
        return "none"
    shown = named[:5]
    more = f" and {count - len(shown)} more" if count > len(shown) else ""
    return f"{count} runs {what}: {', '.join(shown)}{more}"


def _listing(named: list[str]) -> str:
    return "\n".join(f"- {n}" for n in named) or "none"


def all_checks() -> list[dg.AssetChecksDefinition]:
    return [
        *(unique_key_check(t) for t in CORE_TABLES),
        no_orphans,
        known_states_and_results,
        no_negative_durations,
        runs_in_documented_states,
        no_stuck_runs,
        fresh_successful_collection,
        vocabulary_in_catalog,
        latest_day_no_spike,
        rates_in_range_check(),
    ]
