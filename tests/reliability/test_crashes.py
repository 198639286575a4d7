"""Kill -9 at random points of a collection, and two collections on one warehouse.

Each trial copies a warehouse holding an older state of the simulated world, runs a whole
collection of the newer world in a child process (tests/reliability/crash_child.py) and
kills it with SIGKILL: at a hook point (fetching, flattening, a statement inside the load
transaction, a model of the incremental build that follows, a Parquet temp file written,
the HTML report) or after a random delay. Then:
the warehouse opens without repair, has no duplicate keys or orphans, every run in it is
whole (exactly its old or its new version), no Parquet file under its final name is torn,
and the next collection is Identical to a fault-free one.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest

from pipeline.report.html import write_html_report
from pipeline.simulator.config import SimulatorConfig
from pipeline.simulator.server import SimulatorServer
from pipeline.warehouse.export import export_parquet
from pipeline.warehouse.models import build_models, report_models
from pipeline.warehouse.store import open_warehouse
from tests.reliability.conftest import trials
from tests.reliability.helpers import Snapshot, half_loaded_runs, integrity_problems
from tests.support import collect_once, sim_settings, snapshot

ROOT = Path(__file__).parents[2]
SIZES: dict[str, Any] = dict(seed=61, connections=3, imodels=1, runs_per_connection=40, page_cap=8)
ADVANCE_S = 4 * 86_400.0  # new runs and state changes between the two collections
POINTS = ("fetch", "flatten", "html", "load", "build", "refresh", "parquet")
BATCHES = (8, 40, 2_000)  # runs per load: many small transactions, or one per connection


@dataclass
class World:
    """The simulator after `advance`, the old warehouse to start from, and both snapshots."""

    sim: SimulatorServer
    template: Path
    old: Snapshot
    new: Snapshot
    calibration: dict[int, dict[str, Any]]  # batch size -> hook counts and seconds, uncrashed

    def calibrated(self, batch: int) -> dict[str, Any]:
        """The batch size's calibration, made on first use: xdist workers each build this
        module's world, and most of its tests name their kill point and need none."""
        if batch not in self.calibration:
            data_dir = self.template.parent / f"calibrate-{batch}"
            self.calibration[batch] = calibrate(self, data_dir, batch)
        return self.calibration[batch]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("crash-world")
    with SimulatorServer(SimulatorConfig(**SIZES)) as sim:
        finish(collect_once(sim_settings(sim, root / "template")), root / "template")
        old = snapshot(root / "template" / "warehouse.duckdb")
        sim.world.advance(ADVANCE_S)
        finish(collect_once(sim_settings(sim, root / "new"), force_full=True), root / "new")
        new = snapshot(root / "new" / "warehouse.duckdb")
        assert old != new
        WORLD_NEW.clear()
        WORLD_NEW.update(new)
        yield World(sim, root / "template", old, new, {})


def calibrate(w: World, data_dir: Path, batch: int) -> dict[str, Any]:
    """How often each hook point is reached, and how long the work takes, without a crash."""
    shutil.copytree(w.template, data_dir)
    child = start_child(child_env(w.sim, data_dir, CRASH_BATCH=str(batch)))
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "started"
    started = time.monotonic()
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0, err
    counts = json.loads(out.splitlines()[-1])["counts"]
    assert set(counts) == set(POINTS), counts
    assert identical_problems(data_dir) == []
    return {"counts": counts, "seconds": time.monotonic() - started}


# A warehouse collected twice keeps both versions of a run that changed in between, so its
# state history differs from a one-collection warehouse's; it must equal its own full rebuild.
HISTORY = "run_state_history"


def identical_problems(data_dir: Path) -> list[str]:
    """What differs from the fault-free collection (`WORLD_NEW`) and, model by model, from a
    full rebuild of this same warehouse (so an incremental build converged)."""
    path = data_dir / "warehouse.duckdb"
    state = snapshot(path)
    problems = [
        f"{table} not Identical"
        for table in state
        if table != HISTORY and state[table] != WORLD_NEW[table]
    ]
    rebuilt = data_dir.parent / f"{data_dir.name}-full-rebuild"
    shutil.rmtree(rebuilt, ignore_errors=True)
    rebuilt.mkdir()
    shutil.copy(path, rebuilt / "warehouse.duckdb")
    with open_warehouse(rebuilt / "warehouse.duckdb") as copy:
        build_models(copy.con, full=True)
    full = snapshot(rebuilt / "warehouse.duckdb")
    problems += [
        f"{table} differs from a full rebuild" for table in state if state[table] != full[table]
    ]
    shutil.rmtree(rebuilt)
    return problems


WORLD_NEW: dict[str, Any] = {}


def finish(result: Any, data_dir: Path) -> None:
    assert result.ok, [c.describe_error() for c in result.failed]
    with open_warehouse(data_dir / "warehouse.duckdb") as w:
        export_parquet(w.con, data_dir / "reports")
        write_html_report(w.con, data_dir / "reports" / "report.html")


def child_env(sim: SimulatorServer, data_dir: Path, **extra: str) -> dict[str, str]:
    settings = {
        "base_url": sim.base_url,
        "token_url": sim.token_url,
        "client_id": sim.client_id,
        "client_secret": sim.client_secret,
        "connection_ids": sim.direct_connection_ids,
        "imodel_ids": sim.imodel_ids,
        "data_dir": str(data_dir),
    }
    return {**os.environ, "PYTHONPATH": str(ROOT), "CRASH_SETTINGS": json.dumps(settings), **extra}


def start_child(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.reliability.crash_child"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def after_crash_problems(data_dir: Path, w: World) -> list[str]:
    """Everything wrong with a warehouse and reports a killed collection left behind."""
    path = data_dir / "warehouse.duckdb"
    problems: list[str] = []
    try:
        with open_warehouse(path, lock_timeout_s=10) as reopened:
            reopened.table_counts()
    except Exception as exc:  # the point: it must open without manual repair
        return [f"does not reopen: {exc!r}"]
    problems += integrity_problems(path)
    state = snapshot(path)
    half = half_loaded_runs(state, w.old, w.new)
    if half:
        problems.append(f"{len(half)} runs neither their old nor their new version: {half[:3]}")
    for parquet in sorted((data_dir / "reports").glob("*.parquet")):
        try:
            pq.read_table(parquet)
        except Exception as exc:
            problems.append(f"torn {parquet.name}: {exc!r}")
    page = data_dir / "reports" / "report.html"
    if page.exists() and not page.read_text(encoding="utf-8").endswith("</html>\n"):
        problems.append("torn report.html")
    return problems


def next_collection_problems(data_dir: Path, w: World) -> list[str]:
    result = collect_once(sim_settings(w.sim, data_dir))
    if not result.ok:
        return [f"next collection failed: {[c.describe_error() for c in result.failed]}"]
    finish(result, data_dir)
    problems = []
    problems += identical_problems(data_dir)
    leftovers = [p.name for p in (data_dir / "reports").glob(".*.tmp")]
    if leftovers:
        problems.append(f"temp files left: {leftovers}")
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        for model in report_models():
            rows = pq.read_table(data_dir / "reports" / f"{model}.parquet").num_rows
            if rows != con.execute(f"select count(*) from {model}").fetchall()[0][0]:
                problems.append(f"{model}.parquet differs from its model")
    return problems


def crash_trial(
    w: World, data_dir: Path, rng: random.Random, *, at: str | None, batch: int | None = None
) -> dict[str, Any]:
    """One trial: at "point" (its n-th time drawn at random), "point:n", or (None) a kill
    after a random delay."""
    shutil.copytree(w.template, data_dir)
    batch = batch or rng.choice(BATCHES)
    drawn = at is None or ":" not in at  # the kill point or delay is drawn from a calibration
    calibration = w.calibrated(batch) if drawn else {}
    if at is not None and ":" not in at:
        # In the first half of the point's calibrated count: how many loads (and merged
        # flattens) a collection makes depends on timing, and a busy machine merges more.
        at = f"{at}:{rng.randint(1, max(1, (calibration['counts'][at] + 1) // 2))}"
    extra = {"CRASH_AT": at or "", "CRASH_BATCH": str(batch)}
    child = start_child(child_env(w.sim, data_dir, **extra))
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "started"  # imports done; the work begins
    if at is None:
        # Within most of the calibrated run: a delay past its end kills nothing.
        time.sleep(rng.uniform(0.0, 0.8 * calibration["seconds"]))
        child.kill()  # SIGKILL
    _out, err = child.communicate(timeout=120)
    killed = child.returncode == -9
    problems = after_crash_problems(data_dir, w)
    if not problems:
        problems = next_collection_problems(data_dir, w)
    if not killed and child.returncode != 0:
        problems.append(f"child failed on its own: {err[-500:]}")
    return {"at": at or "random delay", "batch": batch, "killed": killed, "problems": problems}


def run_trials(w: World, root: Path, count: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    for batch in BATCHES:  # each also proves a fault-free collection at that size Identical
        w.calibrated(batch)
    outcomes = []
    for i in range(count):
        # Alternate hook points (all of them in turn) with random-delay kills.
        at = POINTS[(i // 2) % len(POINTS)] if i % 2 == 0 else None
        outcomes.append(crash_trial(w, root / f"trial-{i}", rng, at=at))
    failures = [o for o in outcomes if o["problems"]]
    by_point: dict[str, int] = {}
    for o in outcomes:
        if o["killed"]:
            key = o["at"].split(":")[0]
            by_point[key] = by_point.get(key, 0) + 1
    return {
        "trials": len(outcomes),
        "killed": sum(o["killed"] for o in outcomes),
        "killed_by_point": by_point,
        "failures": len(failures),
        "calibration_seconds": {b: round(c["seconds"], 2) for b, c in w.calibration.items()},
        "failure_details": [(o["at"], o["problems"]) for o in failures][:5],
    }


@pytest.mark.long
def test_a_crash_between_batches_of_an_incremental_read_is_caught_up(
    tmp_path: Path, world: World
) -> None:
    """Regression: newer pages loaded, older new runs not; the next read must not stop early."""
    outcome = crash_trial(world, tmp_path / "t", random.Random(0), at="flatten:3", batch=8)
    assert outcome["killed"] and outcome["problems"] == []


@pytest.mark.parametrize("at", ["build:1", "build:9", "refresh:1", "refresh:3"])
def test_a_kill_during_an_incremental_build_converges_on_a_full_rebuild(
    tmp_path: Path, world: World, at: str
) -> None:
    """The build after the collection is incremental (the template was built); killed at a
    model or inside a day refresh, the next build must equal the full build of `new`."""
    outcome = crash_trial(world, tmp_path / "t", random.Random(0), at=at, batch=40)
    assert outcome["killed"] and outcome["problems"] == []


@pytest.mark.long
def test_kill_9_trials_quick(tmp_path: Path, world: World, figures: list[Any]) -> None:
    summary = run_trials(world, tmp_path, 10, seed=1)
    figures.append({"figure": "crash_trials_quick", **summary})
    assert summary["killed"] >= 7, summary
    assert summary["failures"] == 0, summary["failure_details"]


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_kill_9_trials_many(tmp_path: Path, world: World, figures: list[Any]) -> None:
    summary = run_trials(world, tmp_path, trials("crash_trials", 60), seed=2)
    figures.append({"figure": "crash_trials", **summary})
    assert summary["failures"] == 0, summary["failure_details"]


# --- two collections on one warehouse ----------------------------------------------------


@pytest.mark.parametrize("lock_timeout", ["30", "0.2"])
def test_two_collections_started_together(tmp_path: Path, world: World, lock_timeout: str) -> None:
    """Both finish (the second waited), or the second fails naming the first; never damage."""
    data_dir = tmp_path / "shared"
    shutil.copytree(world.template, data_dir)
    env = child_env(world.sim, data_dir, CRASH_LOCK_TIMEOUT=lock_timeout)
    children = [start_child(env), start_child(env)]
    outcomes = [(c.pid, *c.communicate(timeout=180), c.returncode) for c in children]
    winners = [pid for pid, _, _, code in outcomes if code == 0]
    losers = [(pid, err) for pid, _, err, code in outcomes if code != 0]
    assert winners, outcomes
    for _pid, err in losers:
        assert lock_timeout != "30", f"a 30 s wait is enough here: {err[-300:]}"
        assert "WarehouseLockedError" in err and f"process {winners[0]}" in err, err[-500:]
    assert integrity_problems(data_dir / "warehouse.duckdb") == []
    assert identical_problems(data_dir) == []
