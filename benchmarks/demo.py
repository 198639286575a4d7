"""`itwin-runs demo` end to end, and the part of it that is Dagster starting up."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.measure import CLI, WORK, load_average, run_watched


def dagster_start_child() -> None:
    """Dagster's own start-up, as `itwin-runs demo` pays it: imports, Definitions, a run."""
    t0 = time.perf_counter()
    import dagster as dg

    from pipeline.definitions import build_definitions

    t1 = time.perf_counter()
    data = Path(tempfile.mkdtemp(prefix="bench-dagster-"))
    defs = build_definitions(data_dir=data)
    defs.resolve_job_def("collect_job")
    t2 = time.perf_counter()

    @dg.op
    def noop() -> None:
        return None

    @dg.job
    def empty() -> None:
        noop()

    empty.execute_in_process(
        run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    )
    t3 = time.perf_counter()
    shutil.rmtree(data, ignore_errors=True)
    print(json.dumps({"imports_s": t1 - t0, "definitions_s": t2 - t1, "one_op_run_s": t3 - t2}))


def bench_demo(repeat: int) -> dict[str, Any]:
    print("\n[4] itwin-runs demo", flush=True)
    load_before = load_average()
    demos, starts = [], []
    for _ in range(repeat):
        data = Path(tempfile.mkdtemp(prefix="bench-demo-", dir=WORK))
        env = {**os.environ, "ITWIN_RUNS_DATA_DIR": str(data), "CI": "1"}
        m = run_watched([str(CLI), "demo"], env)
        shutil.rmtree(data, ignore_errors=True)
        if m.returncode != 0:
            raise RuntimeError(f"demo failed:\n{m.stderr[-3000:]}")
        demos.append(m)
        s = run_watched(
            [sys.executable, "-m", "benchmarks.run_all", "--child-dagster"], dict(os.environ)
        )
        starts.append(json.loads(s.stdout.strip().splitlines()[-1]))
        print(
            f"  demo {m.wall_s:.1f} s, {m.peak_tree_mb:.0f} MB; dagster start {starts[-1]}",
            flush=True,
        )
    return {
        "demo_wall": [m.wall_s for m in demos],
        "demo_rss": [m.peak_tree_mb for m in demos],
        "dagster": starts,
        "load_avg": [load_before, load_average()],
        "summary_tail": demos[-1].stdout.strip().splitlines()[-12:],
    }
