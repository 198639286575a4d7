"""`make bench`: the four measurements of issue 5, printed and written to benchmarks/RESULTS.md.

1. `itwin-runs load` (the real CLI, in a subprocess) of generated list-page files against
   DuckDB's own read_json + UNNEST into the same four tables, alternating, medians and
   ratio; peak RSS of the whole process tree at 10k, 100k and 300k runs.
2. A first collection against the simulator (its own process): 200 connections x 500
   runs, 100 ms latency, page cap 50, a budget of 5,000 requests a minute on both sides:
   wall time against requests / budget, 429s, requests per run.
3. The next collection, with nothing new: requests and wall time.
4. `itwin-runs demo` end to end, and the part of it that is Dagster starting up.

Figures only: nothing here asserts a time. `--quick` (or BENCH_QUICK=1) runs small sizes
once, to check the harness itself. `--baseline DIR` also loads with the code checked out
in DIR (say `git worktree add /tmp/before <commit>`), alternating with the others, to
show a change's before and after from one run.

    .venv/bin/python -m benchmarks.run_all [--quick] [--only load,collect,demo] [--baseline DIR]
    make bench BENCH_ARGS="--baseline /tmp/before"
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from benchmarks.flatten_bench import ensure_pages

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / ".work"
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
CLI = Path(sys.executable).with_name("itwin-runs")


# --- running a child and watching its process tree ----------------------------------------


@dataclass
class Measured:
    wall_s: float
    peak_tree_mb: float
    returncode: int
    stdout: str = ""
    stderr: str = ""
    marks: dict[str, float] = field(default_factory=dict)  # stderr line prefix -> seconds
    cpu_s: float = 0.0  # user + system CPU of the process and the children it waited for


def run_watched(
    cmd: list[str], env: dict[str, str], marks: tuple[str, ...] = (), cwd: Path = ROOT
) -> Measured:
    """Run `cmd`, sampling the RSS of it and all its children every 20 ms (the sum's peak).

    Batches handed between our processes in shared memory are in no process's RSS until
    they are mapped; the system's growth in shared memory beyond what the tree has mapped
    is added, so they count too (Linux; elsewhere RSS alone).
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    peak = [0.0]
    seen: dict[str, float] = {}
    err_lines: list[str] = []

    shmem_before = _system_shmem()

    def sample() -> None:
        root = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                procs = [root, *root.children(recursive=True)]
                total = sum(p.memory_info().rss for p in procs if p.is_running())
                mapped = sum(_mapped_shmem(p.pid) for p in procs)
            except psutil.Error:
                continue
            total += max(0, _system_shmem() - shmem_before - mapped)
            peak[0] = max(peak[0], total / 2**20)
            time.sleep(0.02)

    def read_err() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            err_lines.append(line)
            for prefix in marks:
                if line.startswith(prefix) and prefix not in seen:
                    seen[prefix] = time.perf_counter() - started

    threads = [threading.Thread(target=sample), threading.Thread(target=read_err)]
    for t in threads:
        t.start()
    out = proc.stdout.read() if proc.stdout else ""
    proc.wait()
    wall = time.perf_counter() - started
    for t in threads:
        t.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return Measured(wall, peak[0], proc.returncode, out, "".join(err_lines), seen, cpu)


def _system_shmem() -> int:
    """Bytes of shared memory in the system (memory files included), 0 where unknown."""
    return _kib_field("/proc/meminfo", "Shmem:")


def _mapped_shmem(pid: int) -> int:
    """Bytes of shared memory the process has mapped (part of its RSS), 0 where unknown."""
    return _kib_field(f"/proc/{pid}/status", "RssShmem:")


def _kib_field(path: str, name: str) -> int:
    try:
        with open(path) as lines:
            for line in lines:
                if line.startswith(name):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


# --- 1. loading page files -----------------------------------------------------------------


def cli_load(pages: Path, source: Path | None = None) -> Measured:
    """`itwin-runs load`; with `source`, the CLI of another checkout (the code before a change)."""
    data = Path(tempfile.mkdtemp(prefix="bench-load-", dir=WORK))
    env = {**os.environ, "ITWIN_RUNS_DATA_DIR": str(data), "CI": "1"}
    cmd = [str(CLI), "load", str(pages)]
    if source is not None:  # `-m` puts the working directory first on sys.path
        env["PYTHONPATH"] = str(source)
        cmd = [sys.executable, "-m", "pipeline.cli", "load", str(pages.resolve())]
    try:
        m = run_watched(cmd, env, marks=("loaded ",), cwd=source or ROOT)
    finally:
        shutil.rmtree(data, ignore_errors=True)
    if m.returncode != 0:
        raise RuntimeError(f"itwin-runs load failed:\n{m.stderr[-2000:]}")
    return m


def reference_load(pages: Path) -> Measured:
    db = WORK / "bench-reference.duckdb"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "flatten_bench.py"), "--child", "reference"]
    cmd += ["--pages", str(pages), "--db", str(db)]
    m = run_watched(cmd, dict(os.environ))
    db.unlink(missing_ok=True)
    if m.returncode != 0:
        raise RuntimeError(f"reference failed:\n{m.stderr[-2000:]}")
    return m


def bench_load(
    runs: int, repeat: int, rss_sizes: list[int], baseline: Path | None = None
) -> dict[str, Any]:
    pages = ensure_pages(runs, seed=7)
    files = sorted(pages.glob("*.json"))
    size_mb = sum(f.stat().st_size for f in files) / 1e6
    print(f"\n[1] load: {runs} runs, {len(files)} page files, {size_mb:.0f} MB", flush=True)
    rows: dict[str, list[Measured]] = {"cli": [], "reference": [], "before": []}
    loads = [load_average()]
    methods = ["cli", "reference", *(["before"] if baseline else [])]
    for round_ in range(repeat):
        order = methods if round_ % 2 == 0 else methods[::-1]
        for method in order:
            if method == "reference":
                m = reference_load(pages)
            else:
                m = cli_load(pages, baseline if method == "before" else None)
            rows[method].append(m)
            extra = f"  (load part {m.marks['loaded ']:.1f} s)" if "loaded " in m.marks else ""
            print(
                f"  round {round_ + 1} {method:9s} {m.wall_s:6.1f} s  "
                f"{m.peak_tree_mb:6.0f} MB tree RSS, {m.cpu_s:6.1f} s CPU{extra}",
                flush=True,
            )
    loads.append(load_average())
    rss = {}
    for n in rss_sizes:
        if n == runs:
            rss[n] = max(m.peak_tree_mb for m in rows["cli"])
            continue
        m = cli_load(ensure_pages(n, seed=7))
        rss[n] = m.peak_tree_mb
        print(f"  {n} runs: itwin-runs load {m.wall_s:.1f} s, {m.peak_tree_mb:.0f} MB", flush=True)
    return {
        "runs": runs,
        "files": len(files),
        "size_mb": size_mb,
        "cli_wall": [m.wall_s for m in rows["cli"]],
        "cli_load_part": [m.marks.get("loaded ", float("nan")) for m in rows["cli"]],
        "cli_rss": [m.peak_tree_mb for m in rows["cli"]],
        "cli_cpu": [m.cpu_s for m in rows["cli"]],
        "ref_cpu": [m.cpu_s for m in rows["reference"]],
        "ref_wall": [m.wall_s for m in rows["reference"]],
        "ref_rss": [m.peak_tree_mb for m in rows["reference"]],
        "before_wall": [m.wall_s for m in rows["before"]],
        "before_load_part": [m.marks.get("loaded ", float("nan")) for m in rows["before"]],
        "before_rss": [m.peak_tree_mb for m in rows["before"]],
        "rss_by_size": rss,
        "load_avg": loads,
    }


# --- 2 and 3. collections against the simulator --------------------------------------------


def start_simulator(connections: int, runs: int, latency: float, rate: int) -> tuple[Any, dict]:
    cmd = [sys.executable, "-m", "pipeline.simulator", "--json", "--warm", "--imodels", "0"]
    cmd += ["--connections", str(connections), "--runs", str(runs), "--page-cap", "50"]
    cmd += ["--latency", str(latency), "--rate-limit", str(rate)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    info = json.loads(proc.stdout.readline())
    return proc, info


def collect_child(args: argparse.Namespace) -> None:
    """In a fresh process: one collection with the library (no Dagster), one JSON line out."""
    from pipeline.collection import collect
    from pipeline.itwin.settings import Secret, Settings
    from pipeline.warehouse.store import open_warehouse

    info = json.loads(Path(args.info).read_text())
    settings = Settings(
        base_url=info["base_url"],
        access_token=Secret(info["static_token"]),
        connection_ids=tuple(info["connection_ids"]),
        rate_limit_per_minute=float(args.rate),
        data_dir=Path(args.data),
    )
    with open_warehouse(Path(args.data) / "warehouse.duckdb") as warehouse:
        started, cpu = time.perf_counter(), time.process_time()
        result = asyncio.run(collect(settings, warehouse))
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        open_runs = sum(len(warehouse.open_run_ids(c)) for c in info["connection_ids"])
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


def _one_collection(
    sim: Any, info: dict[str, Any], data: Path, rate: int, label: str
) -> dict[str, Any]:
    """One collection in a fresh process into the warehouse under `data`."""
    info_file = data / "sim.json"
    info_file.write_text(json.dumps(info))
    cmd = [sys.executable, "-m", "benchmarks.run_all", "--child-collect"]
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


# --- 4. the demo -------------------------------------------------------------------------


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


# --- RESULTS.md --------------------------------------------------------------------------


def machine() -> dict[str, str]:
    import dagster
    import duckdb
    import httpx
    import orjson
    import pyarrow

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": f"{cpu} x {os.cpu_count()}",
        "memory": f"{psutil.virtual_memory().total / 2**30:.0f} GiB",
        "os": platform.platform(),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "pyarrow": pyarrow.__version__,
        "orjson": orjson.__version__,
        "dagster": dagster.__version__,
        "httpx": httpx.__version__,
    }


def med(values: list[float]) -> float:
    return statistics.median(values)


def render(results: dict[str, Any], quick: bool, command: str) -> str:
    m = results["machine"]
    lines = [
        "# Benchmark results",
        "",
        f"Written by `{command}` on {time.strftime('%Y-%m-%d %H:%M %Z')}"
        + (" (QUICK MODE: small sizes, one repetition; not the real figures)" if quick else "")
        + ". Figures, not assertions; see benchmarks/run_all.py for exactly what runs.",
        "",
        f"Machine: {m['cpu']}, {m['memory']}, {m['os']}. Python {m['python']}, duckdb "
        f"{m['duckdb']}, pyarrow {m['pyarrow']}, orjson {m['orjson']}, dagster {m['dagster']}, "
        f"httpx {m['httpx']}.",
        "",
    ]
    if "load" in results:
        r = results["load"]
        cli, part, ref = med(r["cli_wall"]), med(r["cli_load_part"]), med(r["ref_wall"])
        lines += [
            f"## 1. `itwin-runs load` of {r['runs']:,} runs ({r['files']:,} page files, "
            f"{r['size_mb']:.0f} MB) against DuckDB read_json + UNNEST",
            "",
            f"Load average (1/5/15 min) before: {r['load_avg'][0]}; after: {r['load_avg'][1]}. "
            f"{len(r['cli_wall'])} alternating rounds, each method in a fresh process "
            "(wall time from process start, imports included; RSS is the peak of the sum over "
            "the process and its children, sampled every 20 ms).",
            "",
            "| method | median wall s | runs/s | peak tree RSS MB | all rounds s |",
            "|---|---|---|---|---|",
            f"| `itwin-runs load` up to 'loaded' (parse, flatten, raw versions, atomic loads) "
            f"| {part:.1f} | {r['runs'] / part:,.0f} | | "
            f"{', '.join(f'{x:.1f}' for x in r['cli_load_part'])} |",
            f"| `itwin-runs load` whole command (+ SQL models, Parquet, HTML via Dagster) "
            f"| {cli:.1f} | {r['runs'] / cli:,.0f} | {max(r['cli_rss']):.0f} | "
            f"{', '.join(f'{x:.1f}' for x in r['cli_wall'])} |",
            *(
                [
                    f"| before this work (`--baseline`), up to 'loaded' | "
                    f"{med(r['before_load_part']):.1f} | "
                    f"{r['runs'] / med(r['before_load_part']):,.0f} | | "
                    f"{', '.join(f'{x:.1f}' for x in r['before_load_part'])} |",
                    f"| before this work, whole command | {med(r['before_wall']):.1f} | "
                    f"{r['runs'] / med(r['before_wall']):,.0f} | {max(r['before_rss']):.0f} | "
                    f"{', '.join(f'{x:.1f}' for x in r['before_wall'])} |",
                ]
                if r["before_wall"]
                else []
            ),
            f"| DuckDB read_json + UNNEST (reference) | {ref:.1f} | {r['runs'] / ref:,.0f} | "
            f"{max(r['ref_rss']):.0f} | {', '.join(f'{x:.1f}' for x in r['ref_wall'])} |",
            "",
            f"Ratio of medians, reference / ours: load part **{ref / part:.2f}**, whole command "
            f"**{ref / cli:.2f}** (1.00 or more meets the goal).",
            "",
            *(
                [
                    f"CPU time of the whole process tree (user + system, median): `itwin-runs "
                    f"load` whole command {med(r['cli_cpu']):.1f} s, reference "
                    f"{med(r['ref_cpu']):.1f} s. On two cores, wall time cannot fall below "
                    "half the CPU time.",
                    "",
                ]
                if r.get("cli_cpu")
                else []
            ),
            "Peak RSS of `itwin-runs load` (whole process tree) by history size:",
            "",
            "| runs | peak tree RSS MB |",
            "|---|---|",
            *[f"| {n:,} | {mb:.0f} |" for n, mb in sorted(r["rss_by_size"].items())],
            "",
        ]
    if "collect" in results:
        c = results["collect"]
        f, n = c["first"], c["next"]
        lines += [
            f"## 2. First collection: {c['connections']} connections x {c['runs']} runs, "
            f"{c['latency'] * 1000:.0f} ms latency, page cap 50, {c['rate']:,} requests/min",
            "",
            f"Load average before: {c['load_avg'][0]}; after: {c['load_avg'][1]}. The simulator "
            "runs in its own process and also limits at the budget (a 429 would show our pace "
            "was too fast). The collection runs `pipeline.collection.collect` (client, flatten, "
            "load) in a fresh process, without Dagster.",
            "",
            "| figure | value |",
            "|---|---|",
            f"| wall time (median of {len(c['first_walls'])} first collections, each into a "
            f"fresh warehouse; all: {', '.join(f'{x:.1f}' for x in c['first_walls'])} s) "
            f"| {f['wall_s']:.1f} s |",
            f"| requests made (pages {f['pages']}, retries {f['retries']}) | {f['requests']} |",
            f"| minimum the budget allows for them (requests / budget) | {c['min_wall_s']:.1f} s |",
            f"| **wall / minimum** (goal at most 1.15; all rounds: "
            f"{', '.join(f'{x:.3f}' for x in c['first_ratios'])}) "
            f"| **{f['wall_s'] / c['min_wall_s']:.3f}** |",
            f"| 429 answers | {f['throttled_429']} |",
            f"| runs collected | {f['runs_loaded']:,} |",
            f"| requests per run collected | {f['requests'] / max(f['runs_loaded'], 1):.4f} |",
            f"| requests in flight at most (derived from the budget) | {f['in_flight_limit']} |",
            f"| peak RSS of the collecting process | {f['peak_tree_mb']:.0f} MB |",
            "",
            "## 3. Next collection, nothing new",
            "",
            "| figure | value |",
            "|---|---|",
            f"| wall time | {n['wall_s']:.2f} s |",
            f"| requests | {n['requests']} |",
            f"| goal: one per connection + one per open run | {c['connections']} + "
            f"{f['open_runs_after']} = {c['connections'] + f['open_runs_after']} |",
            f"| 429 answers | {n['throttled_429']} |",
            f"| runs new or changed | {n['runs_loaded']} |",
            "",
        ]
    if "demo" in results:
        d = results["demo"]
        dag = d["dagster"]
        imports = med([x["imports_s"] for x in dag])
        defs = med([x["definitions_s"] for x in dag])
        run1 = med([x["one_op_run_s"] for x in dag])
        total = med(d["demo_wall"])
        lines += [
            "## 4. `itwin-runs demo` end to end",
            "",
            f"Load average before: {d['load_avg'][0]}; after: {d['load_avg'][1]}. "
            f"{len(d['demo_wall'])} run(s); Dagster's start-up measured in a separate fresh "
            "process the same way the CLI pays it.",
            "",
            "| part | median s |",
            "|---|---|",
            f"| whole `itwin-runs demo` (process start to exit) | {total:.1f} |",
            f"| Dagster: importing dagster and the definitions module | {imports:.1f} |",
            f"| Dagster: building the Definitions and resolving the job | {defs:.2f} |",
            f"| Dagster: an in-process run of a one-op job (run start, events, storage) | "
            f"{run1:.2f} |",
            f"| the rest: simulator, collection, models, reports, per-step Dagster overhead | "
            f"{total - imports - defs - run1:.1f} |",
            "",
            f"Peak RSS of the demo's process tree: {max(d['demo_rss']):.0f} MB.",
            "",
        ]
    notes = results.get("notes")
    if notes:
        lines += ["## Notes", "", notes.strip(), ""]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", default=bool(os.environ.get("BENCH_QUICK")))
    p.add_argument("--only", default="load,collect,demo")
    p.add_argument("--repeat", type=int)
    p.add_argument("--notes", type=Path, help="a Markdown file appended as ## Notes")
    p.add_argument("--baseline", type=Path, help="a checkout of earlier code to load with too")
    p.add_argument("--child-collect", action="store_true")
    p.add_argument("--child-dagster", action="store_true")
    p.add_argument("--info")
    p.add_argument("--data")
    p.add_argument("--rate", type=int)
    args = p.parse_args()
    if args.child_collect:
        collect_child(args)
        return
    if args.child_dagster:
        dagster_start_child()
        return
    WORK.mkdir(parents=True, exist_ok=True)
    only = set(args.only.split(","))
    quick = args.quick
    repeat = args.repeat or (1 if quick else 3)
    # The reference alone ranged 6.0-7.6 s from one load to the next on this machine, so
    # the load comparison gets more rounds than the (steadier, slower) collections.
    load_rounds = args.repeat or (1 if quick else 5)
    print(f"machine load average: {load_average()}", flush=True)
    results: dict[str, Any] = {"machine": machine()}
    if "load" in only:
        if quick:
            results["load"] = bench_load(5_000, load_rounds, [2_000, 5_000], args.baseline)
        else:
            sizes = [10_000, 100_000, 300_000]
            results["load"] = bench_load(100_000, load_rounds, sizes, args.baseline)
    if "collect" in only:
        if quick:
            results["collect"] = bench_collect(20, 100, 0.1, 5_000, rounds=1)
        else:
            results["collect"] = bench_collect(200, 500, 0.1, 5_000, rounds=repeat)
    if "demo" in only:
        results["demo"] = bench_demo(1 if quick else 2)
    if args.notes:
        results["notes"] = args.notes.read_text()
    command = "make bench" + (" (quick)" if quick else "")
    text = render(results, quick, command)
    (WORK / f"results-{int(time.time())}.json").write_text(json.dumps(results, indent=1))
    if quick:
        print("\n" + text)
        print("(quick mode: RESULTS.md left unchanged)")
    else:
        RESULTS.write_text(text)
        print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
