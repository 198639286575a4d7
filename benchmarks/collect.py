"""Collections against the simulator: a first one into a fresh warehouse, then the next.

Each collection runs `pipeline.collection.collect` (no Dagster) in a fresh process
(`run_all --child-collect`); the simulator runs in its own and limits at the budget.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from benchmarks.measure import ROOT, WORK, load_average, run_watched


def start_simulator(
    connections: int, runs: int, latency: float, rate: int, imodels: int = 0
) -> tuple[Any, dict]:
    cmd = [
        sys.executable,
        "-m",
        "pipeline.simulator",
        "--json",
        "--warm",
        "--imodels",
        str(imodels),
    ]
    cmd += ["--connections", str(connections), "--runs", str(runs), "--page-cap", "50"]
    cmd += ["--latency", str(latency), "--rate-limit", str(rate)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    info = json.loads(proc.stdout.readline())
    return proc, info


def collect_child(args: argparse.Namespace) -> None:
    """In a fresh process: one collection with the library (no Dagster), one JSON line out."""
    from pipeline.collection import collect
    from pipeline.collection.connections import ConnectionBook
    from pipeline.itwin.settings import Secret, Settings
    from pipeline.warehouse.store import open_warehouse

    info = json.loads(Path(args.info).read_text())
    if getattr(args, "no_last_run", False):
        # The collection as it was before the lastRun skip: every listing is read.
        ConnectionBook.is_quiet = lambda self, connection_id, open_runs: False  # type: ignore[method-assign]
    discover = getattr(args, "discover", False)
    settings = Settings(
        base_url=info["base_url"],
        access_token=Secret(info["static_token"]),
        connection_ids=() if discover else tuple(info["connection_ids"]),
        imodel_ids=tuple(info["imodel_ids"]) if discover else (),
        rate_limit_per_minute=float(args.rate),
        data_dir=Path(args.data),
    )
    with open_warehouse(Path(args.data) / "warehouse.duckdb") as warehouse:
        started, cpu = time.perf_counter(), time.process_time()
        result = asyncio.run(collect(settings, warehouse))
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        opened = warehouse.bookkeeping.open_runs_by_connection(info["connection_ids"])
        connections_with_open_runs = len(opened)
        open_runs = sum(len(ids) for ids in opened.values())
    t = result.totals
    out = {
        "wall_s": wall,
        "cpu_s": cpu,
        "requests": t.requests,
        "pages": t.pages,
        "retries": t.retries,
        "throttled_429": t.throttled,
        "runs_loaded": result.runs_loaded,
        "failed": len(result.failed),
        "open_runs_after": open_runs,
        "connections_with_open_runs": connections_with_open_runs,
        "in_flight_limit": settings.in_flight_limit,
    }
    print(json.dumps(out))


def bench_collect(
    connections: int, runs: int, latency: float, rate: int, rounds: int
) -> dict[str, Any]:
    """`rounds` first collections, each into a fresh warehouse, then one next collection.

    Repeated because one first collection varies by +-1.5 s here (when DuckDB's last
    checkpoints land against the last page); the median is reported with every round.
    """
    print(
        f"\n[2] first collection: {connections} connections x {runs} runs, "
        f"{latency * 1000:.0f} ms latency, budget {rate}/min (server limit the same), "
        f"{rounds} round(s)",
        flush=True,
    )
    load_before = load_average()
    sim, info = start_simulator(connections, runs, latency, rate)
    firsts: list[dict[str, Any]] = []
    nxt: dict[str, Any] = {}
    try:
        for round_ in range(rounds):
            data = Path(tempfile.mkdtemp(prefix="bench-collect-", dir=WORK))
            try:
                firsts.append(_one_collection(sim, info, data, rate, f"first #{round_ + 1}"))
                if round_ == rounds - 1:
                    nxt = _one_collection(sim, info, data, rate, "next")
            finally:
                shutil.rmtree(data, ignore_errors=True)
    finally:
        sim.terminate()
        sim.wait()
    walls = [f["wall_s"] for f in firsts]
    first = sorted(firsts, key=lambda f: f["wall_s"])[len(firsts) // 2]  # the median round
    pages_needed = connections * -(-runs // 50)
    return {
        "connections": connections,
        "runs": runs,
        "latency": latency,
        "rate": rate,
        "first": first,
        "first_walls": walls,
        "first_ratios": [f["wall_s"] * rate / 60.0 / f["requests"] for f in firsts],
        "next": nxt,
        "pages_needed": pages_needed,
        "min_wall_s": first["requests"] * 60.0 / rate,
        "min_wall_needed_s": pages_needed * 60.0 / rate,
        "load_avg": [load_before, load_average()],
    }


def bench_quiet(connections: int, runs: int, imodels: int, rate: int) -> dict[str, Any]:
    """Connections found through iModels, nothing new: the next collection's requests with
    every run listing read (as before the lastRun skip) and with the skip."""
    print(
        f"\n[3b] next collection, nothing new: {connections} connections x {runs} runs "
        f"discovered through {imodels} iModels",
        flush=True,
    )
    sim, info = start_simulator(connections, runs, 0.0, rate, imodels=imodels)
    data = Path(tempfile.mkdtemp(prefix="bench-quiet-", dir=WORK))
    try:
        first = _one_collection(sim, info, data, rate, "first", ["--discover"])
        before = _one_collection(
            sim, info, data, rate, "next, every listing read", ["--discover", "--no-last-run"]
        )
        after = _one_collection(sim, info, data, rate, "next, lastRun skip", ["--discover"])
    finally:
        sim.terminate()
        sim.wait()
        shutil.rmtree(data, ignore_errors=True)
    return {
        "connections": connections,
        "runs": runs,
        "imodels": imodels,
        "listing_pages": imodels * -(-(connections // imodels) // 50),
        "first": first,
        "before": before,
        "after": after,
    }


def _one_collection(
    sim: Any,
    info: dict[str, Any],
    data: Path,
    rate: int,
    label: str,
    flags: list[str] | None = None,
) -> dict[str, Any]:
    """One collection in a fresh process into the warehouse under `data`."""
    info_file = data / "sim.json"
    info_file.write_text(json.dumps(info))
    cmd = [sys.executable, "-m", "benchmarks.run_all", "--child-collect", *(flags or [])]
    cmd += ["--info", str(info_file), "--data", str(data), "--rate", str(rate)]
    sim_cpu = psutil.Process(sim.pid).cpu_times()
    m = run_watched(cmd, dict(os.environ))
    sim_after = psutil.Process(sim.pid).cpu_times()
    if m.returncode != 0:
        raise RuntimeError(f"collection failed:\n{m.stderr[-3000:]}")
    r: dict[str, Any] = json.loads(m.stdout.strip().splitlines()[-1])
    r["process_wall_s"] = m.wall_s
    r["simulator_cpu_s"] = (sim_after.user + sim_after.system) - (sim_cpu.user + sim_cpu.system)
    r["peak_tree_mb"] = m.peak_tree_mb
    print(f"  {label}: {json.dumps(r)}", flush=True)
    return r
