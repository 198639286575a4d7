"""Small builders of run JSON as the Export API sends it, for transform and warehouse tests."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

T0 = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)


def stamp(at: datetime, seven_digits: int = 0) -> str:
    """An API timestamp with 7 fractional digits (the 7th is the one that gets truncated)."""
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond:06d}{seven_digits % 10}Z"


def error(code: str = "TAE_BRW_1000", **overrides: Any) -> dict[str, Any]:
    e = {
        "errorCode": code,
        "message": "Failed to orchestrate file processing.",
        "details": "Error exit code received from bridge wrapper.",
        "bridgeExitCode": -7002,
        "system": "Exporter",
        "phase": "export_file",
        "category": "other",
        "descriptionKey": "FailedToExport",
        "description": "Failed to export your file.",
        "kbArticleLink": "",
        "canUserFix": False,
    }
    e.update(overrides)
    return e


def task(
    task_id: str, *, result: str = "Success", err: dict[str, Any] | None = None
) -> dict[str, Any]:
    t: dict[str, Any] = {
        "id": task_id,
        "startDateTime": stamp(T0, 3),
        "endDateTime": stamp(T0 + timedelta(seconds=5, microseconds=7), 9),
        "retryAttempts": 0,
        "state": "Completed",
        "result": result,
        "exportOutputFileId": f"out-{task_id}",
    }
    if err is not None:
        t["error"] = err
    return t


def run(
    run_id: str,
    *,
    state: str = "Completed",
    result: str = "Success",
    jobs: list[dict[str, Any]] | None = None,
    connection_id: str | None = None,
) -> dict[str, Any]:
    r: dict[str, Any] = {
        "id": run_id,
        "startDateTime": stamp(T0, 1),
        "endDateTime": stamp(T0 + timedelta(minutes=3), 2) if state == "Completed" else None,
        "state": state,
        "result": result,
        "jobs": jobs if jobs is not None else [job(f"{run_id}-j0", tasks=[task(f"{run_id}-t0")])],
    }
    if connection_id is not None:
        r["connectionId"] = connection_id
    return r


def job(job_id: str, *, tasks: list[dict[str, Any]], result: str = "Success") -> dict[str, Any]:
    return {
        "id": job_id,
        "startDateTime": stamp(T0, 5),
        "endDateTime": stamp(T0 + timedelta(minutes=2), 6),
        "state": "Completed",
        "result": result,
        "connectorType": "ShellEx",
        "tasks": tasks,
    }


def random_runs(n: int, seed: int = 1, connection_id: str | None = None) -> list[dict[str, Any]]:
    """Plausible runs: 1-3 jobs of 1-6 tasks, a quarter of tasks with an error."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        rid = str(uuid.UUID(int=rng.getrandbits(128)))
        jobs = []
        for j in range(rng.randint(1, 3)):
            tasks = []
            for t in range(rng.randint(1, 6)):
                failed = rng.random() < 0.25
                tasks.append(
                    task(
                        f"{rid}-{j}-{t}",
                        result="Error" if failed else "Success",
                        err=error(f"E{rng.randint(1, 9)}") if failed else None,
                    )
                )
            jobs.append(job(f"{rid}-{j}", tasks=tasks))
        out.append(run(rid, connection_id=connection_id, jobs=jobs))
    return out
