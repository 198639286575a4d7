"""The synthetic world of scripts/sample_warehouse.py: causes, connections, runs and tasks.

Weeks of steady background failures, one error code rising in the last week, one new this
week, one falling, a spike day, a tiny first day, and connections with names (two alike,
one missing, one hostile: quotes, angle brackets, SQL and an emoji).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

Row = dict[str, Any]
END = date(2026, 11, 27)
UNSPECIFIED = "(unspecified)"
# Keys, descriptions and links from Bentley's public connector error catalogue (CC BY 3.0).
KB = "https://bentleysystems.service-now.com/community?id=kb_article&sysparm_article="
CAUSES: dict[str, tuple[str, str, str, bool | None, str | None, str]] = {
    # error code: (description key, phase, system, can user fix, kb link, description)
    "FileNotFound": (
        "CanNotOpenFile",
        "fetch_from_dms",
        "connector",
        True,
        KB + "KB0098395",
        "Cannot open the file; the path is incorrect or the file is missing.",
    ),
    "AccessDenied": (
        "AccessToDataSourceDenied",
        "file_download",
        "cloud_orchestrator",
        True,
        KB + "KB0098347",
        "Access to the data source was denied.",
    ),
    "ConcurrentPush": (
        "AnotherUserPushing",
        "pull_merge_push",
        "connector",
        True,
        KB + "KB0098412",
        "Another user is attempting to push data to the same iModel.",
    ),
    "TokenExpired": (
        "UserNotAuthenticated",
        "initialization",
        "cloud_orchestrator",
        True,
        KB + "KB0098401",
        "User is not authenticated.",
    ),
    "OrchestrationFailed": (
        "RunOrchestrationError",
        "planning",
        "cloud_orchestrator",
        False,
        None,
        "Failed to orchestrate Run.",
    ),
    "PreprocessorCrash": (
        "PreprocessingFailed",
        "preprocessor",
        "cloud_orchestrator",
        False,
        None,
        "Preprocessing of the Run failed.",
    ),
    "QueueTimeout": (
        "AllFilesHaveFailed",
        "master",
        "cloud_orchestrator",
        False,
        KB + "KB0098417",
        "Synchronization job was in the queue for too long.",
    ),
    "SchemaUpgradeFailed": ("SchemaImportFailed_Custom", "schema", "connector", None, None, ""),
}
BACKGROUND = {
    "FileNotFound": 5,
    "AccessDenied": 2,
    "OrchestrationFailed": 3,
    "TokenExpired": 1,
    "QueueTimeout": 2,
    "PreprocessorCrash": 2,
}
RISING, NEW, FALLING = "ConcurrentPush", "SchemaUpgradeFailed", "QueueTimeout"
HOSTILE = 'Plant <b>"Q"</b> \'; DROP TABLE runs; -- 🚧'
CONNECTIONS = [  # id, display name, iModel, iTwin, runs per day
    ("0f3a1c2e-5b7d-4e0f-9a61-0c2d3e4f5a6b", "Bridge North", "im-bridge", "tw-infra", 3),
    ("7c1d9e00-2b44-4c1a-8f00-19a2b3c4d5e6", "Bridge North", "im-bridge", "tw-infra", 1),
    (
        "a1b2c3d4-0000-4aaa-8bbb-ccccdddd0001",
        "Civil corridor — main line",
        "im-corridor",
        "tw-infra",
        4,
    ),
    ("a1b2c3d4-0000-4aaa-8bbb-ccccdddd0002", HOSTILE, "im-plant", "tw-plant", 2),
    ("a1b2c3d4-0000-4aaa-8bbb-ccccdddd0003", "Campus MEP", "im-campus", "tw-plant", 2),
    ("e9f8a7b6-1111-4222-8333-444455556666", None, None, None, 1),
]
SPIKE_DAY = END - timedelta(days=3)


@dataclass
class Task:
    connection_id: str
    run_id: str
    day: date
    start: datetime
    failed: bool
    code: str | None


def _code_weights(day: date) -> dict[str, float]:
    age = (END - day).days
    weights = {code: float(w) for code, w in BACKGROUND.items()}
    weights[RISING] = 1.0 if age > 6 else 6.0
    weights[FALLING] = 2.0 if age > 6 else 0.1
    if age <= 4:
        weights[NEW] = 2.5
    return weights


def simulate(days: int, rng: random.Random) -> tuple[list[Row], list[Task]]:
    runs: list[Row] = []
    tasks: list[Task] = []
    first = END - timedelta(days=days - 1)
    for offset in range(days):
        day = first + timedelta(days=offset)
        for cid, _name, _imodel, _itwin, per_day in CONNECTIONS:
            count = (
                1
                if offset == 0 and cid == CONNECTIONS[0][0]
                else 0
                if offset == 0
                else rng.randint(0, per_day * 2)
            )
            for n in range(count):
                start = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(
                    seconds=rng.uniform(0, 86000)
                )
                run_id = f"run-{day:%m%d}-{cid[:4]}-{n}"
                p = 1.0 if offset == 0 else 0.08 * (4 if day == SPIKE_DAY else 1)
                weights = _code_weights(day)
                outcomes = [rng.random() < p for _ in range(rng.randint(3, 9) if offset else 1)]
                for failed in outcomes:
                    code = rng.choices(list(weights), list(weights.values()))[0] if failed else None
                    tasks.append(Task(cid, run_id, day, start, failed, code))
                duration = rng.lognormvariate(math.log(900), 0.5) * (1 + 2 * any(outcomes))
                runs.append(
                    {
                        "connection_id": cid,
                        "run_id": run_id,
                        "start": start,
                        "day": day,
                        "failed": any(outcomes),
                        "partial": False,
                        "duration": duration,
                    }
                )
    return runs, tasks
