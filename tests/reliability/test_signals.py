"""SIGINT and SIGTERM in the middle of `itwin-runs collect` (issue 22): the command stops
fetching, keeps what was fetched, leaves models that describe the tables, prints one line
and exits 130 / 143; the next collection completes the rest. Ctrl-C in the middle of
`itwin-runs load` leaves the warehouse whole, and loading again completes it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import duckdb
import pytest

from pipeline.simulator.config import Faults, SimulatorConfig
from pipeline.simulator.server import SimulatorServer
from pipeline.sources.files import load_files
from pipeline.warehouse.models import build_models, list_models
from pipeline.warehouse.store import open_warehouse
from tests.reliability.helpers import integrity_problems
from tests.support import collect_once, sim_settings, write_pages
from tests.transform.builders import random_runs

# Slow pages, so the collection is surely fetching when the signal comes.
SLOW = SimulatorConfig(
    seed=3,
    connections=3,
    imodels=1,
    runs_per_connection=300,
    page_cap=5,
    faults=Faults(latency_s=0.05),
)


def _models(path: Path) -> dict[str, list[tuple[object, ...]]]:
    with duckdb.connect(str(path), read_only=True) as con:
        return {
            m.name: sorted(con.execute(f"select * from {m.name}").fetchall(), key=repr)
            for m in list_models()
        }


def _child_env(sim: SimulatorServer, data_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        **sim.environment(),
        "ITWIN_ACCESS_TOKEN": "",
        "ITWIN_RUNS_DATA_DIR": str(data_dir),
        "ITWIN_RATE_LIMIT_PER_MINUTE": "60000",
        "CI": "1",
    }


def _collect_and_signal(sim: SimulatorServer, data_dir: Path, signum: int) -> tuple[int, str]:
    child = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "collect"],
        env=_child_env(sim, data_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stderr is not None
    lines: list[str] = []
    # The first progress line says pages are being fetched: signal then.
    for line in child.stderr:
        lines.append(line)
        if " pages, " in line:
            child.send_signal(signum)
            break
    timer = threading.Timer(120, child.kill)  # bounded: a swallowed signal fails, not hangs
    timer.start()
    try:
        rest, _ = child.communicate()[1], None
    finally:
        timer.cancel()
    lines += (rest or "").splitlines(keepends=True)
    return child.returncode, "".join(lines)


@pytest.mark.long
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_mid_collection_stops_it_cleanly_and_the_next_one_completes(
    tmp_path: Path, signum: int, code: int
) -> None:
    data_dir = tmp_path / "data"
    with SimulatorServer(SLOW) as sim:
        exit_code, stderr = _collect_and_signal(sim, data_dir, signum)
        assert exit_code == code, stderr
        interrupted = [line for line in stderr.splitlines() if "interrupted by" in line]
        assert interrupted == [
            line for line in stderr.splitlines() if line.startswith("itwin-runs: interrupted")
        ]
        assert len(interrupted) == 1 and signal.Signals(signum).name in interrupted[0]
        assert "Traceback" not in stderr
        path = data_dir / "warehouse.duckdb"
        assert integrity_problems(path) == []
        with duckdb.connect(str(path), read_only=True) as con:
            loaded = con.execute("select count(*) from runs").fetchall()[0][0]
            outcomes = {r[0] for r in con.execute("select outcome from collection_log").fetchall()}
        expected_total = SLOW.connections * SLOW.runs_per_connection
        assert 0 < loaded < expected_total  # stopped mid-way, what was fetched kept
        assert "failed" in outcomes
        # The models describe the tables as they are: building them again changes nothing.
        before = _models(path)
        with open_warehouse(path) as warehouse:
            build_models(warehouse.con)
        assert _models(path) == before
        again = collect_once(sim_settings(sim, data_dir))
        assert again.ok, [c.describe_error() for c in again.failed]
    with duckdb.connect(str(path), read_only=True) as con:
        total = con.execute("select count(*) from runs").fetchall()[0][0]
    assert total >= expected_total


# `itwin-runs collect` whose first model build meets SIGTERM in the middle of a DuckDB
# query (Dagster raises its interrupt there, or at the next step; either way the command
# must say it was interrupted, not that a step failed).
_SIGNAL_DURING_MODELS = """
import os, signal, sys, threading
import pipeline.defs.assets as assets
from pipeline.cli import main

build_models = assets.build_models
interrupted = []

def build_interrupted_once(con, *args, **kwargs):
    if not interrupted:
        interrupted.append(True)
        threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM)).start()
        con.execute("select sum(i) from range(2000000000) t(i)").fetchall()
    return build_models(con, *args, **kwargs)

assets.build_models = build_interrupted_once
sys.exit(main(["collect"]))
"""


def test_a_signal_during_the_model_build_exits_with_its_code_and_leaves_models_current(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    config = SimulatorConfig(seed=4, connections=2, imodels=1, runs_per_connection=20)
    with SimulatorServer(config) as sim:
        done = subprocess.run(
            [sys.executable, "-c", _SIGNAL_DURING_MODELS],
            env=_child_env(sim, data_dir),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 143, done.stderr
    lines = done.stderr.splitlines()
    assert [line for line in lines if "interrupted" in line] == [
        f"itwin-runs: interrupted by SIGTERM: what was fetched is loaded and the models "
        f"describe it (warehouse {data_dir / 'warehouse.duckdb'})"
    ]
    assert "failed" not in done.stderr and "Traceback" not in done.stderr
    path = data_dir / "warehouse.duckdb"
    assert integrity_problems(path) == []
    before = _models(path)
    assert before["failure_rate_by_connection"]  # the command built them after the signal
    with open_warehouse(path) as warehouse:
        build_models(warehouse.con)
    assert _models(path) == before


# `itwin-runs load` with each batch's DuckDB statements slowed down, so Ctrl-C surely
# comes while a batch is loading in the worker thread and the next is being flattened.
_SLOW_LOAD = """
import sys, time
from pipeline.cli import main
from pipeline.warehouse.loader import RunLoader

apply = RunLoader.apply

def slow_apply(self, batch):
    time.sleep(0.3)
    return apply(self, batch)

RunLoader.apply = slow_apply
sys.exit(main(["load", *sys.argv[1:]]))
"""


def test_ctrl_c_during_a_file_load_keeps_the_warehouse_whole_and_loading_again_completes_it(
    tmp_path: Path,
) -> None:
    pages = tmp_path / "pages"
    runs = random_runs(7_500, seed=5, connection_id="c1")  # three batches of 2,500
    write_pages(pages, runs, size=50)
    data_dir = tmp_path / "data"
    env = {**os.environ, "ITWIN_RUNS_DATA_DIR": str(data_dir), "CI": "1"}
    child = subprocess.Popen(
        [sys.executable, "-c", _SLOW_LOAD, str(pages)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stderr is not None
    lines: list[str] = []
    for line in child.stderr:  # the first progress line: a batch is loaded, more follow
        lines.append(line)
        if line.startswith("reading:"):
            child.send_signal(signal.SIGINT)
            break
    timer = threading.Timer(120, child.kill)
    timer.start()
    try:
        lines += child.communicate()[1].splitlines(keepends=True)
    finally:
        timer.cancel()
    stderr = "".join(lines)
    assert child.returncode == 130, stderr
    assert "itwin-runs: interrupted; what was loaded before stays committed" in stderr
    assert "Traceback" not in stderr
    path = data_dir / "warehouse.duckdb"
    assert integrity_problems(path) == []
    with duckdb.connect(str(path), read_only=True) as con:
        # One commit group (100,000 runs) was open: it is rolled back whole.
        assert con.execute("select count(*) from runs").fetchall() == [(0,)]
    with open_warehouse(path) as warehouse:
        assert load_files([pages], warehouse).runs_loaded == len(runs)
