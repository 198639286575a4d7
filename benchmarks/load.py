"""`itwin-runs load` of generated page files against DuckDB's own load of the same files.

Methods, alternating round by round, each in a fresh process: the real CLI (the load
part up to its 'loaded' line, and the whole command with the models and reports), the
bare DuckDB reference and the like-for-like one (benchmarks/reference.py), and with
`--baseline DIR` the CLI of another checkout.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.flatten_bench import ensure_pages
from benchmarks.measure import CLI, ROOT, WORK, Measured, load_average, run_watched

LOADED = "loaded "
METHODS = ("cli", "bare", "like")


def cli_load(pages: Path, source: Path | None = None) -> Measured:
    """`itwin-runs load`; with `source`, the CLI of another checkout (the code before a change)."""
    data = Path(tempfile.mkdtemp(prefix="bench-load-", dir=WORK))
    env = {**os.environ, "ITWIN_RUNS_DATA_DIR": str(data), "CI": "1"}
    cmd = [str(CLI), "load", str(pages)]
    if source is not None:  # `-m` puts the working directory first on sys.path
        env["PYTHONPATH"] = str(source)
        cmd = [sys.executable, "-m", "pipeline.cli", "load", str(pages.resolve())]
    try:
        m = run_watched(cmd, env, marks=(LOADED,), cwd=source or ROOT)
    finally:
        shutil.rmtree(data, ignore_errors=True)
    if m.returncode != 0:
        raise RuntimeError(f"itwin-runs load failed:\n{m.stderr[-2000:]}")
    return m


def reference_load(pages: Path, like_for_like: bool) -> Measured:
    db = WORK / "bench-reference.duckdb"
    cmd = [sys.executable, "-m", "benchmarks.reference", "--pages", str(pages), "--db", str(db)]
    if like_for_like:
        cmd.append("--like-for-like")
    m = run_watched(cmd, dict(os.environ), marks=(LOADED,))
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
    methods = [*METHODS, *(["before"] if baseline else [])]
    rows: dict[str, list[Measured]] = {method: [] for method in (*METHODS, "before")}
    loads = [load_average()]
    for round_ in range(repeat):
        for method in methods if round_ % 2 == 0 else methods[::-1]:
            if method in ("bare", "like"):
                m = reference_load(pages, like_for_like=method == "like")
            else:
                m = cli_load(pages, baseline if method == "before" else None)
            rows[method].append(m)
            print(
                f"  round {round_ + 1} {method:7s} {m.wall_s:6.1f} s "
                f"(load part {m.marks.get(LOADED, float('nan')):.1f} s) "
                f"{m.peak_tree_mb:6.0f} MB tree RSS, {m.cpu_s:6.1f} s CPU",
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
    out: dict[str, Any] = {"runs": runs, "files": len(files), "size_mb": size_mb}
    for method, measured in rows.items():
        out[method] = {
            "wall": [m.wall_s for m in measured],
            "load_part": [m.marks.get(LOADED, float("nan")) for m in measured],
            "rss": [m.peak_tree_mb for m in measured],
            "cpu": [m.cpu_s for m in measured],
        }
    out["rss_by_size"] = rss
    out["load_avg"] = loads
    return out
