"""Each connection's runs on their fixed schedule, and their bodies as they stand at a moment.

Runs of a connection follow a fixed schedule (each run's gap to the previous one comes from its
own random stream), so what exists at a moment depends only on the seed and that moment, not
on how time was advanced. Runs are generated lazily per connection and finished runs are kept
serialized, because a collection asks for each page once and re-generation would be wasted work.
"""

from __future__ import annotations

import random
from bisect import insort
from dataclasses import dataclass, field

import orjson

from pipeline.simulator.config import SimulatorConfig
from pipeline.simulator.connections import Connection
from pipeline.simulator.generate import Era, RunPlan, build_run, run_head, view_at
from pipeline.simulator.story import CALM, Story


@dataclass
class ConnectionRuns:
    """One connection's runs in schedule order (sequence number = list index)."""

    ids: list[str] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)
    by_id: dict[str, int] = field(default_factory=dict)
    by_id_order: list[tuple[str, int]] = field(default_factory=list)  # for "unordered"
    finished: dict[int, bytes] = field(default_factory=dict)  # list form, serialized
    open_plans: dict[int, RunPlan] = field(default_factory=dict)


class RunSchedule:
    """Generates the runs of each connection's schedule; not thread-safe (World locks)."""

    def __init__(self, config: SimulatorConfig, start: int) -> None:
        self.config = config
        self._start = start  # ticks of the configured start time
        self._story = Story(start) if config.story else None

    def era(self, seq: int) -> Era:
        """Older runs lack the newer optional fields; the newest carry fields not yet known."""
        n = self.config.runs_per_connection
        return Era(legacy=seq < n // 4, future=seq >= n - max(1, n * 15 // 100))

    def build(self, conn: Connection, seq: int, start: int) -> RunPlan:
        """Run `seq` of the connection, starting at `start` ticks, in its finished form."""
        cfg = self.config
        mood = self._story.mood_at(start) if self._story is not None else CALM
        return build_run(cfg.seed, conn.index, seq, start, cfg.run_interval_s, self.era(seq), mood)

    def initial_schedule(self, conn: Connection) -> tuple[list[str], list[int]]:
        """Ids and start ticks of the runs that exist at the start time, oldest first."""
        cfg = self.config
        seed, n, interval = cfg.seed, cfg.runs_per_connection, cfg.run_interval_s
        if n == 0:
            return [], []
        # The newest initial run started shortly before the start time, so that often it is
        # still queued or executing: the data set begins with open runs that later complete.
        last = self.build(conn, n - 1, self._start)
        share = random.Random(f"anchor:{seed}:{conn.index}").random() * 1.6
        start = self._start - int((last.end - last.start) * share)
        heads = [run_head(seed, conn.index, seq, interval) for seq in range(n)]
        starts = [0] * n
        for seq in range(n - 1, -1, -1):
            starts[seq] = start
            start -= heads[seq][1]
        return [run_id for run_id, _ in heads], starts

    def history(self, conn: Connection) -> ConnectionRuns:
        """The connection's runs as of the start time."""
        runs = ConnectionRuns()
        for run_id, start in zip(*self.initial_schedule(conn), strict=True):
            _append(runs, run_id, start)
        return runs

    def extend(self, conn: Connection, runs: ConnectionRuns, now: int) -> None:
        """Add the scheduled runs that have started by `now`."""
        while runs.starts:
            seq = len(runs.ids)
            run_id, gap = run_head(self.config.seed, conn.index, seq, self.config.run_interval_s)
            start = runs.starts[-1] + gap
            if start > now:
                return
            _append(runs, run_id, start)

    def serialized(self, conn: Connection, runs: ConnectionRuns, seq: int, now: int) -> bytes:
        """Run `seq` in its list form as it stands at `now` (cached once finished)."""
        done = runs.finished.get(seq)
        if done is not None:
            return done
        plan = runs.open_plans.get(seq)
        if plan is None:
            plan = self.build(conn, seq, runs.starts[seq])
        if now >= plan.end:
            runs.open_plans.pop(seq, None)
            done = runs.finished[seq] = orjson.dumps(plan.body)
            return done
        runs.open_plans[seq] = plan
        return orjson.dumps(view_at(plan, now))


def _append(runs: ConnectionRuns, run_id: str, start: int) -> None:
    seq = len(runs.ids)
    runs.ids.append(run_id)
    runs.starts.append(start)
    runs.by_id[run_id] = seq
    insort(runs.by_id_order, (run_id, seq))
