"""Helpers shared by the test suites: settings for a simulator, collecting into a warehouse
without Dagster, the "Identical" snapshot (core tables and models, sorted), and loading
runs or saved pages into a warehouse directly."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import subprocess
import sys
import textwrap
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from pipeline.cli import simulator_environment
from pipeline.itwin.settings import Secret, Settings
from pipeline.simulator.server import SimulatorServer
from pipeline.transform.flatten import FetchedRun, flatten_runs
from pipeline.transform.schema import CORE_TABLES
from pipeline.warehouse.loader import LoadStats
from pipeline.warehouse.models import build_models, report_models
from pipeline.warehouse.store import Warehouse, open_warehouse

if TYPE_CHECKING:
    from pipeline.collection import CollectionResult

# run_state_history is left out: it records how the collections saw each run over time,
# which rightly differs between two histories that end in the same data.
SNAPSHOT_TABLES = (*CORE_TABLES, *(m for m in report_models() if m != "run_state_history"))


def sim_settings(sim: SimulatorServer, data_dir: Path, **changes: Any) -> Settings:
    """Settings a user would write for this simulator: OAuth client, direct ids and iModels."""
    base = Settings(
        base_url=sim.base_url,
        token_url=sim.token_url,
        client_id=sim.client_id,
        client_secret=Secret(sim.client_secret),
        connection_ids=tuple(sim.direct_connection_ids),
        imodel_ids=tuple(sim.imodel_ids),
        rate_limit_per_minute=60_000,
        data_dir=data_dir,
        backoff_base_s=0.01,
        backoff_cap_s=0.2,
        max_retries=8,
    )
    return replace(base, **changes)


def collect_once(settings: Settings, *, force_full: bool = False) -> CollectionResult:
    """One collection plus the SQL models, as the job does, without Dagster."""
    from pipeline.collection import collect  # only here: the warehouse suites need no API

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with open_warehouse(settings.data_dir / "warehouse.duckdb") as warehouse:
        result = asyncio.run(collect(settings, warehouse, force_full=force_full))
        build_models(warehouse.con)
    return result


def snapshot(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every core table and model, sorted by all columns: what "Identical" compares."""
    with duckdb.connect(str(path), read_only=True) as con:
        con.execute("set TimeZone = 'UTC'")
        return {
            table: con.execute(f'select * from "{table}" order by all').fetchall()
            for table in SNAPSHOT_TABLES
        }


# --- loading into a warehouse directly (tests/warehouse, tests/sources, tests/defs) ---

LOAD_TIME = datetime(2024, 5, 1, tzinfo=UTC)
ROOT = Path(__file__).parents[1]


def load_runs(
    w: Warehouse, payloads: list[dict[str, Any]], at: datetime = LOAD_TIME, conn: str = "c1"
) -> LoadStats:
    """Flatten and load these run payloads as fetched at `at` from connection `conn`."""
    runs = [FetchedRun(conn, copy.deepcopy(p), at) for p in payloads]
    return w.loader.load(flatten_runs(runs))


def stored_rows(
    w: Warehouse, tables: tuple[str, ...] = (*CORE_TABLES, "raw_runs", "raw_latest", "quarantine")
) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of these tables, sorted: equal when two warehouses hold the same."""
    return {t: w.con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in tables}


def write_pages(folder: Path, runs: list[dict[str, Any]], size: int = 7) -> None:
    """Save the runs as list pages of `size` runs, as a user's saved API answers."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(0, len(runs), size):
        (folder / f"page-{i // size:03d}.json").write_text(json.dumps({"runs": runs[i : i + size]}))


# A process loading into the warehouse at argv[1] that stops (holding the file's lock)
# before the statement labelled argv[2] and says "paused".
_PAUSED_LOAD = textwrap.dedent(
    """
    import sys, time
    from datetime import timedelta
    from pipeline.warehouse.store import open_warehouse
    from tests.support import LOAD_TIME, load_runs
    from tests.transform.builders import random_runs

    def pause(label):
        if label == sys.argv[2]:
            print("paused", flush=True)
            time.sleep(120)

    with open_warehouse(sys.argv[1]) as w:
        w.loader.statements.between_statements = pause
        runs = random_runs(300, seed=1)
        for r in runs:
            r["state"] = "Executing"
        load_runs(w, runs + random_runs(300, seed=2), at=LOAD_TIME + timedelta(hours=1))
    """
)


def start_paused_load(path: Path, pause_at: str) -> subprocess.Popen[str]:
    """Start _PAUSED_LOAD and wait until it has paused inside its load."""
    child = subprocess.Popen(
        [sys.executable, "-c", _PAUSED_LOAD, str(path), pause_at],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "paused"
    return child


def sim_env(sim: SimulatorServer, data_dir: Path) -> dict[str, str]:
    """The environment `itwin-runs` needs to collect from `sim` into `data_dir`, unthrottled."""
    return {
        **simulator_environment(sim),
        "ITWIN_RATE_LIMIT_PER_MINUTE": "60000",
        "ITWIN_RUNS_DATA_DIR": str(data_dir),
    }
