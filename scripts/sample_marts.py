"""Mart rows for the sample world, aggregated in Python with exactly the spec's columns.

Stands in for a SQL model this checkout does not have yet (see sample_warehouse.py), so
the report page can be looked at before the models land. Definitions as in CONTRACT.md.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import date

from sample_world import CAUSES, CONNECTIONS, UNSPECIFIED, Row, Task

from tests.report.fixtures import with_rate


def dimension_rows(key: str, tasks: list[Task], value_of: Callable[[Task], str]) -> list[Row]:
    completed, failed = len(tasks), [t for t in tasks if t.failed]
    groups: dict[str, list[Task]] = defaultdict(list)
    for t in failed:
        groups[value_of(t)].append(t)
    rows = []
    for value, group in groups.items():
        row = {
            key: value,
            "failed_tasks": len(group),
            "error_occurrences": len(group),
            "completed_tasks": completed,
            "share_of_failures": len(group) / len(failed),
            "runs_affected": len({t.run_id for t in group}),
            "connections_affected": len({t.connection_id for t in group}),
            "first_seen": min(t.start for t in group),
            "last_seen": max(t.start for t in group),
        }
        rows.append(with_rate(row, "failure_rate", len(group), completed))
    return rows


def fixability(t: Task) -> str:
    fixable = CAUSES[t.code][3] if t.code else None
    return UNSPECIFIED if fixable is None else "user_fixable" if fixable else "not_user_fixable"


def description_rows(tasks: list[Task]) -> list[Row]:
    rows = dimension_rows(
        "description_key", tasks, lambda t: CAUSES[t.code][0] if t.code else UNSPECIFIED
    )
    by_key = {cause[0]: cause for cause in CAUSES.values()}
    for row in rows:
        cause = by_key.get(row["description_key"])
        known = cause is not None and cause[5] != ""
        row |= {
            "in_catalog": known,
            "description": cause[5] if known else None,
            "category": "other" if known else None,
            "can_user_fix": cause[3] if known else None,
            "kb_article_link": cause[4] if known else None,
        }
    return rows


def _totals(row: Row, runs: Iterable[Row], tasks: Iterable[Task]) -> Row:
    runs, tasks = list(runs), list(tasks)
    failed_runs, failed_tasks = sum(r["failed"] for r in runs), sum(t.failed for t in tasks)
    row |= {
        "completed_runs": len(runs),
        "failed_runs": failed_runs,
        "completed_tasks": len(tasks),
        "failed_tasks": failed_tasks,
    }
    return with_rate(
        with_rate(row, "run_failure_rate", failed_runs, len(runs)),
        "task_failure_rate",
        failed_tasks,
        len(tasks),
    )


def place_rows(runs: list[Row], tasks: list[Task]) -> tuple[list[Row], list[Row], list[Row]]:
    info = {c[0]: c for c in CONNECTIONS}
    connections, imodels, itwins = [], [], []
    for cid, name, imodel, itwin, _ in CONNECTIONS:
        mine = [r for r in runs if r["connection_id"] == cid]
        last = max(mine, key=lambda r: r["start"])
        row = {
            "connection_id": cid,
            "display_name": name,
            "imodel_id": imodel,
            "itwin_id": itwin,
            "partial_runs": 0,
            "last_run_start": last["start"],
            "last_run_result": "Error" if last["failed"] else "Succeeded",
        }
        connections.append(_totals(row, mine, (t for t in tasks if t.connection_id == cid)))
    for key, out, extra in (("imodel_id", imodels, 2), ("itwin_id", itwins, 3)):
        for value in {c[extra] for c in CONNECTIONS}:
            ids = {c[0] for c in CONNECTIONS if c[extra] == value}
            mine = [r for r in runs if r["connection_id"] in ids]
            row: Row = {
                key: value,
                "connections": len(ids),
                "last_run_start": max(r["start"] for r in mine),
            }
            if key == "imodel_id":
                row["itwin_id"] = info[next(iter(ids))][3]
            else:
                row["imodels"] = len({c[2] for c in CONNECTIONS if c[0] in ids and c[2]})
            out.append(_totals(row, mine, (t for t in tasks if t.connection_id in ids)))
    return connections, imodels, itwins


def daily_rows(runs: list[Row], tasks: list[Task]) -> list[Row]:
    per_day: dict[date, tuple[int, int]] = defaultdict(lambda: (0, 0))
    for t in tasks:
        n, k = per_day[t.day]
        per_day[t.day] = (n + 1, k + t.failed)
    rows = []
    for day in sorted({r["day"] for r in runs}):
        window = [per_day[d] for d in list(per_day) if 1 <= (day - d).days <= 28]
        bn, bk = sum(w[0] for w in window), sum(w[1] for w in window)
        mine = (r for r in runs if r["day"] == day)
        row = _totals({"day": day}, mine, (t for t in tasks if t.day == day))
        row |= {"baseline_completed_tasks": bn, "baseline_failed_tasks": bk}
        row = with_rate(row, "baseline_task_failure_rate", bk, bn)
        low, high = row["task_failure_rate_low"], row["baseline_task_failure_rate_high"]
        rows.append(row | {"is_spike": low is not None and high is not None and low > high})
    return rows


def trend_rows(tasks: list[Task]) -> list[Row]:
    as_of = max(t.day for t in tasks)
    recent = [t for t in tasks if 0 <= (as_of - t.day).days <= 6]
    prior = [t for t in tasks if 7 <= (as_of - t.day).days <= 34]
    rows = []
    for code in sorted({t.code for t in recent + prior if t.failed and t.code}):
        rk, pk = sum(t.code == code for t in recent), sum(t.code == code for t in prior)
        row = {
            "error_code": code,
            "as_of_day": as_of,
            "recent_failed_tasks": rk,
            "recent_completed_tasks": len(recent),
            "prior_failed_tasks": pk,
            "prior_completed_tasks": len(prior),
        }
        row = with_rate(
            with_rate(row, "recent_failure_rate", rk, len(recent)),
            "prior_failure_rate",
            pk,
            len(prior),
        )
        trend = (
            "new"
            if pk == 0
            else "rising"
            if row["recent_failure_rate_low"] > row["prior_failure_rate_high"]
            else "falling"
            if row["recent_failure_rate_high"] < row["prior_failure_rate_low"]
            else "steady"
        )
        rows.append(row | {"trend": trend})
    return rows


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def duration_rows(runs: list[Row]) -> list[Row]:
    rows = []
    for day in sorted({r["day"] for r in runs}):
        values = [r["duration"] for r in runs if r["day"] == day]
        rows.append(
            {
                "day": day,
                "completed_runs": len(values),
                "p50_duration_s": _quantile(values, 0.5),
                "p90_duration_s": _quantile(values, 0.9),
                "p95_duration_s": _quantile(values, 0.95),
                "max_duration_s": max(values),
            }
        )
    return rows
