"""Classifying a batch into new, changed and unchanged runs as the history grows.

For each history size, a warehouse file whose raw_latest holds that many runs (filled
with SQL, kept under benchmarks/.work for reuse), then batches of 2,000 runs (half
stored, half new) classified by RunLoader.classify both ways: joining the batch with
all of raw_latest, and looking its runs up in the raw_latest(run_id) index. Prints
milliseconds per batch; loads switch ways at load_sql.LOOKUP_ABOVE_STORED_RUNS.

    .venv/bin/python -m benchmarks.classify [--sizes 10000,300000,1000000] [--batches 10]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

from benchmarks.measure import WORK, load_average
from pipeline.transform.schema import RAW_LATEST
from pipeline.warehouse import load_sql
from pipeline.warehouse.statements import execute
from pipeline.warehouse.store import Warehouse, open_warehouse

BATCH_RUNS = 2_000
CONNECTIONS = 1_000


def history(size: int) -> Path:
    """A warehouse file with `size` stored runs in raw_latest (made once)."""
    path = WORK / f"classify-{size}.duckdb"
    if path.exists():
        return path
    with open_warehouse(path) as w:
        execute(
            w.con,
            "INSERT INTO raw_latest SELECT 'conn-' || (i % ?)::VARCHAR, md5(i::VARCHAR), "
            "sha256(i::VARCHAR), TIMESTAMPTZ '2026-01-01' + to_seconds(i), 'Completed' "
            "FROM range(?) t(i)",
            [CONNECTIONS, size],
        )
        execute(w.con, "CHECKPOINT")
    return path


def batch(size: int, rng: random.Random) -> pa.Table:
    """2,000 runs as a batch's `latest` table: half stored (one in ten changed), half new."""
    import hashlib

    stored = rng.sample(range(size), BATCH_RUNS // 2)
    first_new = size + rng.randrange(10**6)
    new = range(first_new, first_new + BATCH_RUNS // 2)
    ids = [*stored, *new]
    hashes = [
        hashlib.sha256(str(i).encode()).hexdigest() if k % 10 else "changed"
        for k, i in enumerate(ids)
    ]
    at = datetime(2027, 1, 1, tzinfo=UTC)
    columns = {
        "connection_id": [f"conn-{i % CONNECTIONS}" for i in ids],
        "run_id": [hashlib.md5(str(i).encode()).hexdigest() for i in ids],  # noqa: S324
        "payload_hash": hashes,
        "fetched_at": [at] * len(ids),
        "state": ["Completed"] * len(ids),
    }
    return pa.Table.from_pydict(columns, schema=RAW_LATEST)


def per_batch_ms(w: Warehouse, size: int, batches: int, lookups: bool) -> list[float]:
    """Milliseconds of RunLoader.classify per batch, by index lookups or by the join."""
    rng = random.Random(size)
    chosen = load_sql.LOOKUP_ABOVE_STORED_RUNS
    load_sql.LOOKUP_ABOVE_STORED_RUNS = -1 if lookups else 2**62
    try:
        times = []
        for _ in range(batches):
            latest = batch(size, rng)
            started = time.perf_counter()
            outcome = w.loader.classify(latest)
            times.append((time.perf_counter() - started) * 1000)
    finally:
        load_sql.LOOKUP_ABOVE_STORED_RUNS = chosen
    counts: dict[str, int] = {}
    for _, kind, n in outcome:
        counts[kind] = counts.get(kind, 0) + n
    if sum(counts.values()) != BATCH_RUNS or counts.get("new") != BATCH_RUNS // 2:
        raise RuntimeError(f"classified {counts}, expected half of {BATCH_RUNS} runs new")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,300000,1000000")
    parser.add_argument("--batches", type=int, default=10)
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    print(f"load average {load_average()}; ms per {BATCH_RUNS:,}-run batch, median (all)")
    print(f"loads use index lookups above {load_sql.LOOKUP_ABOVE_STORED_RUNS:,} stored runs")
    for size in (int(s) for s in args.sizes.split(",")):
        with open_warehouse(history(size)) as w:
            for lookups in (False, True):  # alternating, so load on the machine hits both
                times = per_batch_ms(w, size, args.batches, lookups)
                way = "index lookups" if lookups else "join all"
                rounds = " ".join(f"{x:.0f}" for x in times)
                print(f"{size:>10,d} {way:14s} {statistics.median(times):7.1f} ({rounds})")
    print(f"load average {load_average()}")


if __name__ == "__main__":
    main()
