"""Scale benchmark (issue 21): what `itwin-runs report` costs as the history grows.

For each size a warehouse of generated runs is made once and kept in benchmarks/.work/
(generated list pages from the simulator's generator, loaded with `itwin-runs load`, so it
is exactly what the pipeline itself writes, raw_runs included; the pages are then deleted).
Every measurement works on a copy of that data directory, in this order:

1. a full rebuild: `itwin-runs report --full` where the CLI has the flag, else
   `itwin-runs report` (which also leaves the copy's build state current);
2. a build with nothing new: `itwin-runs report`;
3. a build after 100 changed runs: `itwin-runs load` of 100 stored runs with a changed
   result, the load part (up to its 'loaded' line) timed apart from the build that follows.

Each child's wall time and the peak RSS of its process tree (psutil, sampled every 20 ms)
are recorded; Dagster's start-up (importing Dagster and our definitions) is measured alone
in a fresh process. Figures only: nothing here asserts a time.

    .venv/bin/python -m benchmarks.scale [--sizes 30000,300000] [--quick] [--repeat N]

From another script: `render_scale(bench_scale([30_000, 300_000]))` gives a Markdown section.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import measure
from benchmarks.measure import CLI, ROOT, WORK, Measured

SIZES = (30_000, 300_000, 1_000_000)
QUICK_SIZES = (2_000, 6_000)
CHANGED_RUNS = 100
RUNS_PER_CONNECTION = 1_000  # 1M runs: the thousand connections
SEED = 7

# The goals of issue 21, printed beside the figures.
GOAL_RATIO = 1.5  # nothing-new and 100-changed builds at 300k against 30k
GOAL_INCREMENTAL_1M_S = 10.0
GOAL_FULL_1M_S = 60.0
GOAL_RSS_MB = 1024.0

_START_UP = """
import json, time
t0, c0 = time.perf_counter(), time.process_time()
import dagster
import pipeline.definitions
print(json.dumps({"start_up_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0}))
"""


def run_watched(cmd: list[str], env: dict[str, str], marks: tuple[str, ...] = ()) -> Measured:
    """measure.run_watched, failing loudly: a failed build would measure nothing."""
    m = measure.run_watched(cmd, env, marks)
    if m.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {m.returncode}:\n{m.stderr[-3000:]}")
    return m


def load_average() -> float:
    """The one-minute load average (the machine may be shared: read figures beside it)."""
    return os.getloadavg()[0]


def _figures(m: Measured) -> dict[str, float]:
    return {"wall_s": m.wall_s, "cpu_s": m.cpu_s, "peak_mb": m.peak_tree_mb}


def _loaded_line(m: Measured) -> str:
    return next((line for line in m.stderr.splitlines() if line.startswith("loaded ")), "")


def _env(data_dir: Path) -> dict[str, str]:
    return {**os.environ, "ITWIN_RUNS_DATA_DIR": str(data_dir), "CI": "1"}


# --- the cached warehouses ------------------------------------------------------------------


def ensure_warehouse(runs: int, *, regenerate: bool = False) -> Path:
    """The data directory holding a warehouse of `runs` generated runs, made once."""
    from pipeline.simulator.pages import write_run_pages

    data = WORK / f"scale-{runs}"
    done = data / ".complete"
    if done.exists() and not regenerate:
        return data
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    pages = Path(tempfile.mkdtemp(prefix=f"scale-pages-{runs}-", dir=WORK))
    try:
        started = time.perf_counter()
        connections = max(1, runs // RUNS_PER_CONNECTION)
        write_run_pages(pages, runs=runs, connections=connections, seed=SEED)
        generated = time.perf_counter() - started
        loaded = run_watched([str(CLI), "load", str(pages)], _env(data), marks=("loaded ",))
    finally:
        shutil.rmtree(pages, ignore_errors=True)
    how = {
        "runs": runs,
        "connections": connections,
        "seed": SEED,
        "how": "simulator list pages (pipeline.simulator.pages) loaded with `itwin-runs load`",
        "generate_s": generated,
        "load_s": loaded.marks.get("loaded ", loaded.wall_s),
        "load_and_build_s": loaded.wall_s,
    }
    done.write_text(json.dumps(how, indent=1))
    print(
        f"  made a warehouse of {runs:,} runs: pages {generated:.1f} s, "
        f"`itwin-runs load` {loaded.wall_s:.1f} s",
        flush=True,
    )
    return data


def write_changed_runs(data_dir: Path, out: Path, round_: int, count: int = CHANGED_RUNS) -> Path:
    """A list page of `count` stored runs, each with its result and one task's result changed.

    The runs are spread over the whole history (ordered by a hash of their id), so they
    touch many days; each round takes the next `count`, so no round repeats another's.
    """
    import duckdb
    import orjson

    con = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
    try:
        rows = con.execute(
            "SELECT r.connection_id, r.payload FROM raw_latest l "
            "JOIN raw_runs r USING (connection_id, run_id, payload_hash) "
            "ORDER BY hash(l.run_id), l.run_id LIMIT ? OFFSET ?",
            [count, round_ * count],
        ).fetchall()
    finally:
        con.close()
    runs = [_changed(orjson.loads(payload), connection_id) for connection_id, payload in rows]
    out.write_bytes(orjson.dumps({"runs": runs}))
    return out


def _changed(run: dict[str, Any], connection_id: str) -> dict[str, Any]:
    """The run as a correction would bring it: result flipped, and its last task's too."""
    flip = {"Error": "Success"}
    run["connectionId"] = connection_id
    run["result"] = flip.get(run.get("result") or "", "Error")
    tasks = [t for job in run.get("jobs") or [] for t in job.get("tasks") or []]
    if tasks:
        tasks[-1]["result"] = flip.get(tasks[-1].get("result") or "", "Error")
    return run


# --- the measurements ---------------------------------------------------------------------


def dagster_start_up(repeat: int) -> list[dict[str, float]]:
    """Wall and CPU seconds to import Dagster and our definitions in a fresh process."""
    times = []
    for _ in range(repeat):
        data = Path(tempfile.mkdtemp(prefix="scale-startup-", dir=WORK))
        try:
            out = subprocess.run(
                [sys.executable, "-c", _START_UP],
                cwd=ROOT,
                env=_env(data),
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        finally:
            shutil.rmtree(data, ignore_errors=True)
        times.append(json.loads(out.strip().splitlines()[-1]))
    return times


def report_has_full_flag() -> bool:
    out = subprocess.run([str(CLI), "report", "--help"], capture_output=True, text=True)
    return "--full" in out.stdout


def bench_size(runs: int, repeat: int, full_flag: bool) -> dict[str, Any]:
    """Full rebuild, nothing-new and 100-changed builds on a copy of the cached warehouse."""
    source = ensure_warehouse(runs)
    copy = Path(tempfile.mkdtemp(prefix=f"scale-copy-{runs}-", dir=WORK)) / "data"
    load_before = load_average()
    try:
        shutil.copytree(source, copy)
        db_mb = (copy / "warehouse.duckdb").stat().st_size / 2**20
        full_cmd = [str(CLI), "report", *(["--full"] if full_flag else [])]
        full = run_watched(full_cmd, _env(copy))
        print(
            f"  {runs:,}: full rebuild {full.wall_s:.1f} s ({full.cpu_s:.1f} s CPU), "
            f"{full.peak_tree_mb:.0f} MB",
            flush=True,
        )
        nothing_new = []
        for _ in range(repeat):
            nothing_new.append(run_watched([str(CLI), "report"], _env(copy)))
            m = nothing_new[-1]
            print(
                f"  {runs:,}: nothing new {m.wall_s:.1f} s ({m.cpu_s:.1f} s CPU), "
                f"{m.peak_tree_mb:.0f} MB",
                flush=True,
            )
        changed = []
        for round_ in range(repeat):
            page = write_changed_runs(copy, copy.parent / f"changed-{round_}.json", round_)
            m = run_watched([str(CLI), "load", str(page)], _env(copy), marks=("loaded ",))
            # Not a timing check: a load that changed fewer runs would measure something else.
            if f" {CHANGED_RUNS} changed," not in _loaded_line(m):
                raise RuntimeError(f"the changed runs did not load as changed: {_loaded_line(m)}")
            changed.append(m)
            load_s = m.marks.get("loaded ", float("nan"))
            print(
                f"  {runs:,}: {CHANGED_RUNS} changed: load {load_s:.1f} s, then build "
                f"{m.wall_s - load_s:.1f} s ({m.cpu_s:.1f} s CPU in all), {m.peak_tree_mb:.0f} MB",
                flush=True,
            )
    finally:
        shutil.rmtree(copy.parent, ignore_errors=True)
    made = json.loads((source / ".complete").read_text())
    return {
        "runs": runs,
        "warehouse_mb": db_mb,
        "made": made,
        "full": _figures(full),
        "nothing_new": [_figures(m) for m in nothing_new],
        "changed": [
            {
                "wall_s": m.wall_s,
                "peak_mb": m.peak_tree_mb,
                "load_s": m.marks.get("loaded ", float("nan")),
                "build_s": m.wall_s - m.marks.get("loaded ", float("nan")),
                "cpu_s": m.cpu_s,
            }
            for m in changed
        ],
        "load_avg": [load_before, load_average()],
    }


def bench_scale(sizes: list[int], repeat: int = 1, start_up_repeat: int = 3) -> dict[str, Any]:
    """Measure every size; the dict `render_scale` turns into Markdown (and JSON-friendly)."""
    WORK.mkdir(parents=True, exist_ok=True)
    full_flag = report_has_full_flag()
    print(f"\n[scale] sizes {sizes}, load average {load_average():.2f}", flush=True)
    start_up = dagster_start_up(start_up_repeat)
    walls = ", ".join(f"{s['start_up_s']:.2f}" for s in start_up)
    print(f"  Dagster start-up: {walls} s", flush=True)
    by_size = [bench_size(n, repeat, full_flag) for n in sizes]
    return {
        "sizes": by_size,
        "dagster_start_up": start_up,
        "full_flag": full_flag,
        "repeat": repeat,
        "cpus": os.cpu_count(),
    }


# --- Markdown -----------------------------------------------------------------------------


def _med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def render_scale(results: dict[str, Any]) -> str:
    """A Markdown section: one row per size, then each goal of issue 21 with its figure."""
    start_up = _med([s["start_up_s"] for s in results["dagster_start_up"]])
    start_up_cpu = _med([s["cpu_s"] for s in results["dagster_start_up"]])
    full_name = "`report --full`" if results["full_flag"] else "`report` (no `--full` flag yet)"
    lines = [
        "## Builds as the history grows (`python -m benchmarks.scale`)",
        "",
        f"Each size is a warehouse of generated runs ({RUNS_PER_CONNECTION:,} per connection, "
        "simulator list pages loaded with `itwin-runs load`), copied before every set of "
        f"measurements. Median of {results['repeat']} round(s); wall time of the whole process; "
        "peak RSS of its process tree. Dagster start-up (importing Dagster and our "
        f"definitions, measured alone, median): **{start_up:.2f} s** ({start_up_cpu:.2f} s "
        "CPU), part of every build below; the figures in brackets subtract it. CPU is user + "
        "system time of the process tree, steadier than wall time on a shared machine.",
        "",
        f"| runs | warehouse MB | full rebuild ({full_name}) s | nothing new s (build) "
        f"| {CHANGED_RUNS} changed: load s | {CHANGED_RUNS} changed: then build s (build) "
        "| CPU s (full / nothing new / changed, load and build) "
        "| peak RSS MB (full / nothing new / changed) | load average (1 min) before, after |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in results["sizes"]:
        nothing = _med([m["wall_s"] for m in s["nothing_new"]])
        load = _med([m["load_s"] for m in s["changed"]])
        build = _med([m["build_s"] for m in s["changed"]])
        rss = (
            s["full"]["peak_mb"],
            max(m["peak_mb"] for m in s["nothing_new"]),
            max(m["peak_mb"] for m in s["changed"]),
        )
        cpu = (
            s["full"]["cpu_s"],
            _med([m["cpu_s"] for m in s["nothing_new"]]),
            _med([m["cpu_s"] for m in s["changed"]]),
        )
        lines.append(
            f"| {s['runs']:,} | {s['warehouse_mb']:.0f} | {s['full']['wall_s']:.1f} "
            f"| {nothing:.1f} ({nothing - start_up:.1f}) | {load:.1f} "
            f"| {build:.1f} ({build - start_up:.1f}) "
            f"| {cpu[0]:.1f} / {cpu[1]:.1f} / {cpu[2]:.1f} "
            f"| {rss[0]:.0f} / {rss[1]:.0f} / {rss[2]:.0f} "
            f"| {s['load_avg'][0]:.2f}, {s['load_avg'][1]:.2f} |"
        )
    lines += ["", *_goals(results, start_up), ""]
    return "\n".join(lines)


def _goals(results: dict[str, Any], start_up: float) -> list[str]:
    """Each goal with the figure it is judged on (build times net of Dagster start-up)."""
    by_runs = {s["runs"]: s for s in results["sizes"]}

    def builds(s: dict[str, Any]) -> tuple[float, float]:
        nothing = _med([m["wall_s"] for m in s["nothing_new"]]) - start_up
        return nothing, _med([m["build_s"] for m in s["changed"]]) - start_up

    def cpu(s: dict[str, Any], kind: str) -> float:
        return _med([m["cpu_s"] for m in s[kind]])

    lines = ["| goal (issue 21) | figure | |", "|---|---|---|"]
    if 30_000 in by_runs and 300_000 in by_runs:
        small, large = by_runs[30_000], by_runs[300_000]
        for label, kind, a, b in (
            ("nothing-new build", "nothing_new", builds(small)[0], builds(large)[0]),
            (f"{CHANGED_RUNS}-changed build", "changed", builds(small)[1], builds(large)[1]),
        ):
            ratio = b / a if a > 0 else float("inf")
            lines.append(
                f"| {label} at 300k within {GOAL_RATIO}x of 30k | {ratio:.2f}x wall "
                f"({b:.1f} s / {a:.1f} s); CPU of the whole process {cpu(large, kind):.1f} s / "
                f"{cpu(small, kind):.1f} s | {_verdict(ratio <= GOAL_RATIO)} |"
            )
    if 1_000_000 in by_runs:
        big = by_runs[1_000_000]
        nothing, changed = builds(big)
        full = big["full"]["wall_s"]
        lines += [
            f"| nothing-new build at 1M under {GOAL_INCREMENTAL_1M_S:.0f} s | {nothing:.1f} s "
            f"| {_verdict(nothing < GOAL_INCREMENTAL_1M_S)} |",
            f"| {CHANGED_RUNS}-changed build at 1M under {GOAL_INCREMENTAL_1M_S:.0f} s "
            f"| {changed:.1f} s | {_verdict(changed < GOAL_INCREMENTAL_1M_S)} |",
            f"| full rebuild at 1M under {GOAL_FULL_1M_S:.0f} s (whole process) | {full:.1f} s "
            f"| {_verdict(full < GOAL_FULL_1M_S)} |",
        ]
    peak = max(
        max(s["full"]["peak_mb"], *(m["peak_mb"] for m in s["nothing_new"] + s["changed"]))
        for s in results["sizes"]
    )
    lines.append(
        f"| peak RSS under {GOAL_RSS_MB:.0f} MiB at every size | {peak:.0f} MiB "
        f"| {_verdict(peak < GOAL_RSS_MB)} |"
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", help="comma-separated run counts (default 30000,300000,1000000)")
    parser.add_argument("--quick", action="store_true", help=f"tiny sizes {QUICK_SIZES}")
    parser.add_argument("--repeat", type=int, default=1, help="rounds of each incremental build")
    parser.add_argument("--regenerate", action="store_true", help="remake the cached warehouses")
    parser.add_argument("--prepare", action="store_true", help="only make missing warehouses")
    args = parser.parse_args()
    if args.sizes:
        sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s]
    else:
        sizes = list(QUICK_SIZES if args.quick else SIZES)
    if args.regenerate or args.prepare:
        WORK.mkdir(parents=True, exist_ok=True)
        for n in sizes:
            ensure_warehouse(n, regenerate=args.regenerate)
        if args.prepare:
            return
    results = bench_scale(sizes, repeat=args.repeat)
    (WORK / f"scale-results-{int(time.time())}.json").write_text(json.dumps(results, indent=1))
    print("\n" + render_scale(results))


if __name__ == "__main__":
    main()
