"""Write generated runs as API list-page files, for the loading benchmarks and `itwin-runs load`.

The pages hold exactly what the simulator would serve at its start time (same generator, same
seed), written newest first as the service lists them. Runs are generated and written one page
at a time, so memory stays flat however many runs are asked for; large requests are split by
connection across processes because generation, not writing, is the cost.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from pipeline.simulator.config import SimulatorConfig
from pipeline.simulator.generate import view_at
from pipeline.simulator.responses import runs_page
from pipeline.simulator.timefmt import ticks_of
from pipeline.simulator.world import Connection, World, splice_connection_id

PUBLIC_BASE = "https://api.bentley.com"
_PARALLEL_FROM = 20_000  # below this, starting worker processes costs more than it saves


def write_run_pages(
    out_dir: str | os.PathLike[str],
    *,
    runs: int,
    page_size: int = 50,
    seed: int = 7,
    connections: int | None = None,
    include_connection_id: bool = True,
    ndjson: bool = False,
    workers: int | None = None,
) -> list[Path]:
    """Write `runs` runs over `connections` connections as list pages; return the files.

    Each file is one page `{"runs": [...], "_links": {...}}` named `<connection>-<page>.json`;
    with `ndjson=True` a single `runs.ndjson` holds one page per line instead. Connections
    default to one per 500 runs (the collection benchmark's shape). Without
    `include_connection_id` the runs lack `connectionId`, as the real list pages do.
    `workers` processes share the connections (default: one per CPU from 20,000 runs on).
    """
    if runs < 0 or page_size < 1:
        raise ValueError("runs must be >= 0 and page_size >= 1")
    n_conns = max(1, connections if connections is not None else runs // 500)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    per_conn = [runs // n_conns + (1 if i < runs % n_conns else 0) for i in range(n_conns)]
    jobs = [
        _Job(str(out), seed, n_conns, i, count, page_size, include_connection_id, ndjson)
        for i, count in enumerate(per_conn)
        if count
    ]
    if workers is None:  # automatic: parallel only where it pays
        workers = (os.cpu_count() or 1) if runs >= _PARALLEL_FROM else 1
    if workers > 1 and len(jobs) > 1:
        _run_in_subprocesses([jobs[i::workers] for i in range(workers)])
    else:
        for job in jobs:
            _write_connection(job)
    parts = [job.path(number) for job in jobs for number in range(job.files)]
    if not ndjson:
        return parts
    target = out / "runs.ndjson"
    with target.open("wb") as sink:
        for part in parts:
            with part.open("rb") as source:
                shutil.copyfileobj(source, sink, 1 << 20)
            part.unlink()
    return [target]


def _run_in_subprocesses(chunks: list[list[_Job]]) -> None:
    """Write each chunk in its own Python process.

    Plain subprocesses rather than multiprocessing: they need no `if __name__ == "__main__"`
    guard in the caller's script, and start the same whatever threads the caller runs.
    """
    root = str(Path(__file__).resolve().parents[2])
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
    }
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "pipeline.simulator.pages"],
            stdin=subprocess.PIPE,
            env=env,
        )
        for chunk in chunks
        if chunk
    ]
    payloads = [orjson.dumps([vars(job) for job in chunk]) for chunk in chunks if chunk]
    for proc, payload in zip(procs, payloads, strict=True):
        assert proc.stdin is not None
        proc.stdin.write(payload)
        proc.stdin.close()
    failed = [proc.wait() for proc in procs]
    if any(failed):
        raise RuntimeError(f"page writer processes failed with exit codes {failed}")


@dataclass(frozen=True)
class _Job:
    """One connection's pages; plain fields, so it can be sent to a worker process as JSON."""

    out: str
    seed: int
    connections: int
    index: int
    runs: int
    page_size: int
    include_connection_id: bool
    ndjson: bool

    @property
    def files(self) -> int:
        """How many files the job writes: one per page, or with `ndjson` one part file."""
        return 1 if self.ndjson else -(-self.runs // self.page_size)

    def path(self, number: int) -> Path:
        suffix = ".ndjson.part" if self.ndjson else f"-{number:05d}.json"
        return Path(self.out) / f"{self.index:05d}{suffix}"


def _write_connection(job: _Job) -> None:
    config = SimulatorConfig(
        seed=job.seed, connections=job.connections, runs_per_connection=job.runs
    )
    world = World(config)
    conn = next(c for c in world.connections.values() if c.index == job.index)
    if job.ndjson:
        with job.path(0).open("wb") as sink:
            for _, page in _pages(world, conn, job):
                sink.write(page + b"\n")
        return
    for number, page in _pages(world, conn, job):
        job.path(number).write_bytes(page)


def _pages(world: World, conn: Connection, job: _Job) -> Iterator[tuple[int, bytes]]:
    """The connection's list pages, newest run first, generated a page at a time."""
    cfg = world.config
    ids, starts = world.schedule.initial_schedule(conn)
    now = ticks_of(cfg.start_time)
    base = f"{PUBLIC_BASE}/export/connections/{conn.id}/runs"
    total, size = len(ids), job.page_size
    for number, skip in enumerate(range(0, total, size)):
        batch = []
        for seq in range(total - 1 - skip, max(-1, total - 1 - skip - size), -1):
            plan = world.schedule.build(conn, seq, starts[seq])
            body = orjson.dumps(view_at(plan, now))
            batch.append(splice_connection_id(body, conn.id) if job.include_connection_id else body)
        links = {"self": {"href": f"{base}&$skip={skip}&$top={size}"}}
        if skip + size < total:
            links["next"] = {"href": f"{base}&$skip={skip + size}&$top={size}"}
        yield number, runs_page(batch, links)


def _worker_main() -> None:
    """Entry of a worker process: the jobs arrive as JSON on stdin."""
    for fields in orjson.loads(sys.stdin.buffer.read()):
        _write_connection(_Job(**fields))


if __name__ == "__main__":
    _worker_main()
