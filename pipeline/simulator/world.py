"""The simulated service's data and clock: connections, their runs, and time that moves.

Runs of a connection follow a fixed schedule (each run's gap to the previous one comes from its
own random stream), so what exists at a moment depends only on the seed and that moment, not
on how time was advanced. Runs are generated lazily per connection and finished runs are kept
serialized, because a collection asks for each page once and re-generation would be wasted work.
"""

from __future__ import annotations

import random
import threading
import time
from bisect import insort
from dataclasses import dataclass, field

import orjson

from pipeline.simulator.config import SimulatorConfig
from pipeline.simulator.generate import Era, RunPlan, build_run, run_head, uuid_from, view_at
from pipeline.simulator.story import CALM, Story
from pipeline.simulator.timefmt import TICKS_PER_SECOND, ticks_of

# Display names are what a person types, so untrusted text: one carries quotes, angle
# brackets, an apostrophe and an emoji on purpose (reports must escape them).
_NAMES = (
    "Riverside Bridge – IFC nightly",
    'Tower "B" <East Wing> 🏗️ IFC export',
    "Plant Area 300 – PDF previews",
    "St. Mary's Hospital – Revit to IFC",
    "Metro Line 4 LandXML",
    "Harbour Terminal – coordination model",
    "Wind Farm Substation IFC",
    "Campus North – weekly IFC",
)
_ITWINS = 2  # projects the iModels belong to


@dataclass(frozen=True)
class Connection:
    """An export connection; `direct` ones are what a user lists, the rest are found by iModel."""

    index: int
    id: str
    imodel_id: str
    itwin_id: str
    display_name: str
    authentication_type: str
    direct: bool


@dataclass
class _Runs:
    """One connection's runs in schedule order (sequence number = list index)."""

    ids: list[str] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)
    by_id: dict[str, int] = field(default_factory=dict)
    by_id_order: list[tuple[str, int]] = field(default_factory=list)  # for "unordered"
    finished: dict[int, bytes] = field(default_factory=dict)  # list form, serialized
    open_plans: dict[int, RunPlan] = field(default_factory=dict)


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
        self._runs: dict[str, _Runs] = {}
        self.connections: dict[str, Connection] = {}
        self.imodels: dict[str, list[Connection]] = {}
        self._story = Story(self._start) if config.story else None
        self._build_connections()

    def _build_connections(self) -> None:
        cfg = self.config
        # Ids are drawn in the order they always were, so a seed keeps its connection ids
        # (and the faults drawn from their URLs); the newer details come from other streams.
        rng = random.Random(f"connections:{cfg.seed}")
        details = random.Random(f"connection-details:{cfg.seed}")
        itwin_ids = [uuid_from(rng.getrandbits(128))]
        imodel_ids = [uuid_from(rng.getrandbits(128)) for _ in range(cfg.imodels)]
        itwin_ids += [uuid_from(details.getrandbits(128)) for _ in range(_ITWINS - 1)]
        direct_count = (cfg.connections + 1) // 2 if imodel_ids else cfg.connections
        for index in range(cfg.connections):
            conn_id = uuid_from(rng.getrandbits(128))
            # Every connection exports one iModel; without discoverable iModels, each
            # connection's iModel is its own.
            imodel = (
                imodel_ids[index % len(imodel_ids)]
                if imodel_ids
                else uuid_from(details.getrandbits(128))
            )
            itwin = itwin_ids[(index % len(imodel_ids) if imodel_ids else index) % _ITWINS]
            name = _NAMES[index % len(_NAMES)]
            if index >= len(_NAMES):
                name = f"{name} ({index // len(_NAMES) + 1})"
            conn = Connection(
                index=index,
                id=conn_id,
                imodel_id=imodel,
                itwin_id=itwin,
                display_name=name,
                authentication_type="Service" if rng.random() < 0.3 else "User",
                direct=index < direct_count,
            )
            self.connections[conn.id] = conn
            self.imodels.setdefault(imodel, []).append(conn)

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

    def era(self, seq: int) -> Era:
        """Older runs lack the newer optional fields; the newest carry fields not yet known."""
        n = self.config.runs_per_connection
        return Era(legacy=seq < n // 4, future=seq >= n - max(1, n * 15 // 100))

    def build(self, conn: Connection, seq: int, start: int) -> RunPlan:
        """Run `seq` of the connection, starting at `start` ticks, in its finished form."""
        cfg = self.config
        mood = self._story.mood_at(start) if self._story is not None else CALM
        return build_run(cfg.seed, conn.index, seq, start, cfg.run_interval_s, self.era(seq), mood)

    def _runs_of(self, conn: Connection) -> _Runs:
        """The connection's runs up to now, generating the history on first use."""
        runs = self._runs.get(conn.id)
        if runs is None:
            runs = self._runs[conn.id] = self._history(conn)
        self._extend(conn, runs, self.now_ticks())
        return runs

    def _history(self, conn: Connection) -> _Runs:
        runs = _Runs()
        for run_id, start in zip(*self.initial_schedule(conn), strict=True):
            self._append(runs, run_id, start)
        return runs

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

    def _extend(self, conn: Connection, runs: _Runs, now: int) -> None:
        while runs.starts:
            seq = len(runs.ids)
            run_id, gap = run_head(self.config.seed, conn.index, seq, self.config.run_interval_s)
            start = runs.starts[-1] + gap
            if start > now:
                return
            self._append(runs, run_id, start)

    @staticmethod
    def _append(runs: _Runs, run_id: str, start: int) -> None:
        seq = len(runs.ids)
        runs.ids.append(run_id)
        runs.starts.append(start)
        runs.by_id[run_id] = seq
        insort(runs.by_id_order, (run_id, seq))

    def _serialized(self, conn: Connection, runs: _Runs, seq: int, now: int) -> bytes:
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
            return [self._serialized(conn, runs, seq, now) for seq in seqs], total

    def run(self, connection_id: str, run_id: str) -> bytes | None:
        """The serialized single-run form (with connectionId), or None when unknown."""
        with self._lock:
            conn = self.connections[connection_id]
            runs = self._runs_of(conn)
            seq = runs.by_id.get(run_id)
            if seq is None:
                return None
            body = self._serialized(conn, runs, seq, self.now_ticks())
            return splice_connection_id(body, connection_id)

    def warm(self, connection_ids: list[str] | None = None) -> int:
        """Generate and cache every finished run now; returns how many runs were rendered.

        For benchmarks: afterwards a page costs a join of cached bytes (about 0.3 ms for 50
        runs) instead of generation (a few ms), so the server is not what gets measured.
        """
        count = 0
        for conn_id in connection_ids or list(self.connections):
            with self._lock:
                conn = self.connections[conn_id]
                runs = self._runs_of(conn)
                now = self.now_ticks()
                for seq in range(len(runs.ids)):
                    self._serialized(conn, runs, seq, now)
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
