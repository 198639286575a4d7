"""The simulated service's data and clock: looking up connections and their runs at a moment.

The connections come from `connections`, the runs from `schedule`; this module answers the
questions the routes ask, under one lock, on a clock that tests and the demo can move.
"""

from __future__ import annotations

import threading
import time

import orjson

from pipeline.simulator.config import SimulatorConfig
from pipeline.simulator.connections import Connection, build_connections
from pipeline.simulator.schedule import ConnectionRuns, RunSchedule
from pipeline.simulator.timefmt import TICKS_PER_SECOND, ticks_of

__all__ = ["Connection", "World", "splice_connection_id"]


def splice_connection_id(run: bytes, connection_id: str) -> bytes:
    """Insert `connectionId` after the leading `id` member of a serialized run."""
    cut = run.index(b'",', 7) + 2
    return b'%s"connectionId":%s,%s' % (run[:cut], orjson.dumps(connection_id), run[cut:])


class World:
    """Connections, runs and the simulated clock; safe to use from several threads."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self._lock = threading.RLock()
        self._start = ticks_of(config.start_time)
        self._offset = 0  # ticks added by advance()
        self._wall_anchor = time.monotonic()
        self.schedule = RunSchedule(config, self._start)
        self._runs: dict[str, ConnectionRuns] = {}
        self.connections, self.imodels = build_connections(config)

    # -- the clock -------------------------------------------------------------------------

    def now_ticks(self) -> int:
        """Simulated now, in ticks: the start, plus advances, plus real time when realtime."""
        speed = self.config.realtime_speed
        now = self._start + self._offset
        if speed:
            now += int((time.monotonic() - self._wall_anchor) * speed * TICKS_PER_SECOND)
        return now

    @property
    def advanced_seconds(self) -> float:
        """Simulated seconds added by advance() (token expiry counts them too)."""
        return self._offset / TICKS_PER_SECOND

    def advance(self, seconds: float) -> None:
        """Move simulated time forward: open runs progress and scheduled runs appear."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        with self._lock:
            self._offset += int(seconds * TICKS_PER_SECOND)

    # -- runs ------------------------------------------------------------------------------

    def _runs_of(self, conn: Connection) -> ConnectionRuns:
        """The connection's runs up to now, generating the history on first use."""
        runs = self._runs.get(conn.id)
        if runs is None:
            runs = self._runs[conn.id] = self.schedule.history(conn)
        self.schedule.extend(conn, runs, self.now_ticks())
        return runs

    def run_count(self, connection_id: str) -> int:
        """How many runs the connection has now."""
        with self._lock:
            return len(self._runs_of(self.connections[connection_id]).ids)

    def page(self, connection_id: str, skip: int, top: int) -> tuple[list[bytes], int]:
        """Serialized runs (list form, no connectionId) at [skip, skip+top) and the total."""
        with self._lock:
            conn = self.connections[connection_id]
            runs = self._runs_of(conn)
            total = len(runs.ids)
            order = self.config.order
            if order == "oldest_first":
                seqs = list(range(skip, min(total, skip + top)))
            elif order == "newest_first":
                seqs = list(range(total - 1 - skip, max(-1, total - 1 - skip - top), -1))
            else:
                seqs = [seq for _, seq in runs.by_id_order[skip : skip + top]]
            now = self.now_ticks()
            return [self.schedule.serialized(conn, runs, seq, now) for seq in seqs], total

    def run(self, connection_id: str, run_id: str) -> bytes | None:
        """The serialized single-run form (with connectionId), or None when unknown."""
        with self._lock:
            conn = self.connections[connection_id]
            runs = self._runs_of(conn)
            seq = runs.by_id.get(run_id)
            if seq is None:
                return None
            body = self.schedule.serialized(conn, runs, seq, self.now_ticks())
            return splice_connection_id(body, connection_id)

    def warm(self) -> int:
        """Generate and cache every finished run now; returns how many runs were rendered.

        For benchmarks: afterwards a page is a join of cached bytes instead of generation,
        so the server is not what gets measured.
        """
        count = 0
        for conn in self.connections.values():
            with self._lock:
                runs = self._runs_of(conn)
                now = self.now_ticks()
                for seq in range(len(runs.ids)):
                    self.schedule.serialized(conn, runs, seq, now)
                count += len(runs.ids)
        return count

    def run_ids(self, connection_id: str) -> list[str]:
        """Every run id of the connection now, oldest first (for tests and benchmarks)."""
        with self._lock:
            return list(self._runs_of(self.connections[connection_id]).ids)

    def last_run_id(self, connection_id: str) -> str | None:
        """The newest run's id (the connection's `lastRun` link)."""
        with self._lock:
            ids = self._runs_of(self.connections[connection_id]).ids
            return ids[-1] if ids else None
