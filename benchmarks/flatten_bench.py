"""Flattening alone: the same runs through the vectorised fast path and the careful path.

The fast path (pipeline.transform.fastpath) must pay for itself: this prints the time
of flattening generated runs, a batch at a time as a load does, with it and with the
careful path alone (pipeline.transform.flatten), alternating, medians of --repeat.
Also holds `ensure_pages`, the generated page files every load benchmark reads.

    .venv/bin/python -m benchmarks.flatten_bench [--runs 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path
from unittest import mock

import orjson

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / ".work"


def ensure_pages(runs: int, seed: int) -> Path:
    from pipeline.simulator.pages import write_run_pages

    pages = WORK / f"pages-{runs}-{seed}"
    done = pages / ".complete"
    if not done.exists():
        started = time.perf_counter()
        write_run_pages(pages, runs=runs, page_size=50, seed=seed, include_connection_id=True)
        done.touch()
        print(f"wrote {runs} runs as pages in {time.perf_counter() - started:.1f} s", flush=True)
    return pages


def flatten_seconds(pages: Path, batch_runs: int, fast: bool) -> float:
    """Seconds flattening every run of the pages, `batch_runs` at a time (reading excluded)."""
    import pipeline.transform.flatten as flatten

    at = datetime.now(UTC)
    runs = [
        flatten.FetchedRun(run["connectionId"], run, at)
        for path in sorted(pages.glob("*.json"))
        for run in orjson.loads(path.read_bytes())["runs"]
    ]
    # The careful path alone: the fast path declines every batch, as it does unusual ones.
    decline = mock.patch.object(flatten, "flatten_clean", lambda *_: None)
    gc.collect()
    started = time.perf_counter()
    with nullcontext() if fast else decline:
        for start in range(0, len(runs), batch_runs):
            flatten.flatten_runs(runs[start : start + batch_runs])
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch-runs", type=int, default=2_500)
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    pages = ensure_pages(args.runs, args.seed)
    times: dict[str, list[float]] = {"fast path": [], "careful path only": []}
    for round_ in range(args.repeat):
        order = list(times) if round_ % 2 == 0 else list(times)[::-1]
        for name in order:
            seconds = flatten_seconds(pages, args.batch_runs, fast=name == "fast path")
            times[name].append(seconds)
            print(f"  round {round_ + 1} {name:18s} {seconds:6.2f} s", flush=True)
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:18s} median {median:6.2f} s, {args.runs / median:,.0f} runs/s")
    fast, careful = (statistics.median(v) for v in times.values())
    print(f"careful / fast: {careful / fast:.2f}")


if __name__ == "__main__":
    main()
