"""Helpers of the reliability suite: clean baselines, warehouse integrity, a recording server."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import duckdb

from pipeline.simulator.config import SimulatorConfig
from pipeline.simulator.server import SimulatorServer
from pipeline.transform.schema import CORE_TABLES
from tests.support import collect_once, sim_settings, snapshot

Snapshot = dict[str, list[tuple[Any, ...]]]

# Keys of each core table (the contract's "path of ids").
KEYS = {
    "runs": ("connection_id", "run_id"),
    "jobs": ("connection_id", "run_id", "job_id"),
    "tasks": ("connection_id", "run_id", "job_id", "task_id"),
    "task_errors": ("connection_id", "run_id", "job_id", "task_id"),
    "raw_latest": ("connection_id", "run_id"),
}
PARENTS = {"jobs": "runs", "tasks": "jobs", "task_errors": "tasks"}


class Baselines:
    """Fault-free collections of simulated data sets, made once per session and size."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._cache: dict[str, Snapshot] = {}

    def of(self, **sizes: Any) -> Snapshot:
        key = json.dumps(sizes, sort_keys=True)
        if key not in self._cache:
            target = self.root / f"clean-{len(self._cache)}"
            with SimulatorServer(SimulatorConfig(**sizes)) as clean:
                result = collect_once(sim_settings(clean, target))
            assert result.ok, [c.describe_error() for c in result.failed]
            self._cache[key] = snapshot(target / "warehouse.duckdb")
        return self._cache[key]


def integrity_problems(path: Path) -> list[str]:
    """Duplicate keys and orphans in the core tables (empty when the warehouse is sound)."""
    problems = []
    with duckdb.connect(str(path), read_only=True) as con:
        for table, key in KEYS.items():
            cols = ", ".join(key)
            dupes = con.execute(
                f"select count(*) from "
                f"(select {cols} from {table} group by all having count(*) > 1)"
            ).fetchall()[0][0]
            if dupes:
                problems.append(f"{table}: {dupes} duplicate keys")
        for child, parent in PARENTS.items():
            on = " and ".join(f"c.{k} = p.{k}" for k in KEYS[parent])
            orphans = con.execute(
                f"select count(*) from {child} c anti join {parent} p on {on}"
            ).fetchall()[0][0]
            if orphans:
                problems.append(f"{child}: {orphans} rows without their {parent} row")
    return problems


def subtrees(snap: Snapshot) -> dict[tuple[str, str], tuple[tuple[Any, ...], ...]]:
    """Each run's rows across the four core tables, keyed by (connection_id, run_id).

    Rows start with connection_id, run_id (every core table's column order does).
    """
    out: dict[tuple[str, str], list[Any]] = {}
    for table in CORE_TABLES:
        for row in snap[table]:
            out.setdefault((row[0], row[1]), []).append((table, row))
    return {key: tuple(sorted(rows, key=repr)) for key, rows in out.items()}


def half_loaded_runs(state: Snapshot, *allowed: Snapshot) -> list[tuple[str, str]]:
    """Runs of `state` whose whole subtree equals none of the allowed versions of that run."""
    versions = [subtrees(a) for a in allowed]
    bad = []
    for key, rows in subtrees(state).items():
        if not any(v.get(key) == rows for v in versions):
            bad.append(key)
    return bad


def restrict(snap: Snapshot, connections: set[str]) -> Snapshot:
    """The core tables of `snap` limited to the given connections."""
    return {t: [r for r in snap[t] if r[0] in connections] for t in CORE_TABLES}


# --- a tiny recording HTTP server -------------------------------------------------------


@dataclass
class Hit:
    method: str
    path: str
    headers: dict[str, str]
    at: float


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"{}"
    headers: dict[str, str] = field(default_factory=dict)


class Recorder:
    """A loopback HTTP server that records every request and answers from `respond`.

    Used where the simulator cannot say something precisely enough (one exact Retry-After
    value, a redirect) and as the "other origin" that must never receive the token.
    """

    def __init__(self, respond: Callable[[Hit, int], Reply] | None = None) -> None:
        self.hits: list[Hit] = []
        self._respond = respond or (lambda hit, n: Reply(404, b'{"error": {"code": "x"}}'))
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                hit = Hit(self.command, self.path, dict(self.headers.items()), time.monotonic())
                recorder.hits.append(hit)
                reply = recorder._respond(hit, len(recorder.hits))
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply.body)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(reply.body)

            do_GET = do_POST = _any

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def authorization_seen(self) -> list[str]:
        return [h.headers[k] for h in self.hits for k in h.headers if k.lower() == "authorization"]

    def __enter__(self) -> Recorder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
