"""`make bench`: the four measurements, printed and written to benchmarks/RESULTS.md.

1. `itwin-runs load` (the real CLI, in a subprocess) of generated list-page files against
   DuckDB's own read_json + UNNEST into the same four tables, bare and like for like
   (also keeping each run's JSON text, sha256 and fetch time), alternating, medians and
   ratios; peak RSS of the whole process tree at 10k, 100k and 300k runs (load.py).
2. A first collection against the simulator (its own process): 200 connections x 500
   runs, 100 ms latency, page cap 50, a budget of 5,000 requests a minute on both sides:
   wall time against requests / budget, 429s, requests per run.
3. The next collection, with nothing new: requests and wall time; and for 200 connections
   discovered through iModels, its requests with every run listing read and with the
   `lastRun` skip.
4. `itwin-runs demo` end to end, and the part of it that is Dagster starting up.
5. Builds as the history grows (scale.py): warehouses of 30k, 300k and 1M runs, made once
   and kept in benchmarks/.work/; a full rebuild, a build with nothing new and one after
   100 changed runs, each with wall time and peak RSS.

Figures only: nothing here asserts a time. `--quick` (or BENCH_QUICK=1) runs small sizes
once, to check the harness itself. `--baseline DIR` also loads with the code checked out
in DIR (say `git worktree add /tmp/before <commit>`), alternating with the others, to
show a change's before and after from one run.

    .venv/bin/python -m benchmarks.run_all [--quick] [--only load,collect,scale] [--baseline DIR]
    make bench BENCH_ARGS="--baseline /tmp/before"
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from benchmarks.collect import bench_collect, bench_quiet, collect_child
from benchmarks.demo import bench_demo, dagster_start_child
from benchmarks.load import bench_load
from benchmarks.measure import RESULTS, WORK, load_average, machine
from benchmarks.report import render
from benchmarks.scale import QUICK_SIZES, SIZES, bench_scale, render_scale


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", default=bool(os.environ.get("BENCH_QUICK")))
    p.add_argument("--only", default="load,collect,demo,scale")
    p.add_argument("--repeat", type=int)
    p.add_argument("--notes", type=Path, help="a Markdown file appended as ## Notes")
    p.add_argument("--baseline", type=Path, help="a checkout of earlier code to load with too")
    p.add_argument("--child-collect", action="store_true")
    p.add_argument("--child-dagster", action="store_true")
    p.add_argument("--info")
    p.add_argument("--data")
    p.add_argument("--rate", type=int)
    p.add_argument("--discover", action="store_true", help="child: connections via iModels")
    p.add_argument("--no-last-run", action="store_true", help="child: read every listing")
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
        quiet = (20, 20, 2) if quick else (200, 100, 4)
        results["collect"]["quiet"] = bench_quiet(*quiet, rate=5_000)
    if "demo" in only:
        results["demo"] = bench_demo(1 if quick else 2)
    if "scale" in only:
        results["scale"] = bench_scale(
            list(QUICK_SIZES if quick else SIZES), repeat=1 if quick else 2
        )
    command = "make bench" + (" (quick)" if quick else "")
    text = render(results, quick, command)
    if "scale" in results:
        text += "\n" + render_scale(results["scale"])
    if args.notes:  # hand-written notes come last, after every generated section
        text += "\n## Notes\n\n" + args.notes.read_text().strip() + "\n"
    (WORK / f"results-{int(time.time())}.json").write_text(json.dumps(results, indent=1))
    if quick:
        print("\n" + text)
        print("(quick mode: RESULTS.md left unchanged)")
    else:
        RESULTS.write_text(text)
        print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
