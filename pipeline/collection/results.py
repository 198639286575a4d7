"""What a collection reports: per-connection results, the whole collection's, and progress."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from pipeline.itwin.client import CallStats
from pipeline.itwin.errors import ApiError, WaitTooLongError, describe_failure
from pipeline.warehouse.loader import ConnectionLoadStats

FULL = "full"
INCREMENTAL = "incremental"


@dataclass
class ConnectionResult:
    """The outcome of collecting one connection (or discovering one iModel's connections)."""

    connection_id: str
    mode: str
    started_at: datetime
    ended_at: datetime | None = None
    stats: CallStats = field(default_factory=CallStats)
    runs_seen: int = 0
    runs_new: int = 0
    runs_changed: int = 0
    runs_unchanged: int = 0
    runs_quarantined: int = 0
    runs_refreshed: int = 0
    runs_vanished: int = 0
    duplicate_keys: int = 0  # runs whose object repeated a key (loaded, raw text kept)
    error: ApiError | None = None
    imodel_id: str | None = None  # set when this records a failed iModel discovery
    display_name: str | None = None  # the connection's name, once its details are known

    @property
    def label(self) -> str:
        return connection_label(self.connection_id, self.display_name)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def stopped(self) -> bool:
        """Stopped on a wait longer than ITWIN_MAX_WAIT_S: the next collection resumes it."""
        return isinstance(self.error, WaitTooLongError)

    @property
    def outcome(self) -> str:
        """As the collection log records it: 'ok', 'stopped' or 'failed'."""
        return "ok" if self.ok else "stopped" if self.stopped else "failed"

    def add_loaded(self, counts: ConnectionLoadStats) -> None:
        self.runs_new += counts.new
        self.runs_changed += counts.changed
        self.runs_unchanged += counts.unchanged
        self.runs_quarantined += counts.quarantined

    def describe_counts(self) -> str:
        return (
            f"{self.runs_new} new, {self.runs_changed} changed, {self.runs_unchanged} "
            f"unchanged, {self.stats.requests} requests"
        )

    def describe_error(self) -> str:
        if self.error is None:
            return ""
        if self.stopped:
            return self.error.message
        return describe_failure(self.error.status, self.error.code, self.error.message)


@dataclass
class CollectionResult:
    collection_id: str
    started_at: datetime
    ended_at: datetime
    connections: list[ConnectionResult]
    totals: CallStats

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.connections)

    @property
    def failed(self) -> list[ConnectionResult]:
        return [c for c in self.connections if not c.ok]

    @property
    def runs_loaded(self) -> int:
        return sum(c.runs_new + c.runs_changed for c in self.connections)


def connection_label(connection_id: str, display_name: str | None) -> str:
    """`name (id)` for people, or the id alone. A display name is untrusted text: no
    terminal control sequences from it."""
    name = "".join(ch if ch.isprintable() else "?" for ch in (display_name or "")).strip()
    return f"{name} ({connection_id})" if name else connection_id


class Progress(Protocol):
    """What a front end (terminal bars, Dagster log lines) is told as work advances."""

    def connection_started(
        self, connection_id: str, mode: str, display_name: str | None
    ) -> None: ...

    def pages_fetched(self, connection_id: str, pages: int, runs: int) -> None: ...

    def connection_finished(self, result: ConnectionResult) -> None: ...


class NoProgress:
    """Tells nobody (a collection run by a library caller or a test)."""

    def connection_started(self, connection_id: str, mode: str, display_name: str | None) -> None:
        pass

    def pages_fetched(self, connection_id: str, pages: int, runs: int) -> None:
        pass

    def connection_finished(self, result: ConnectionResult) -> None:
        pass


class FanOutProgress:
    """Tell several front ends at once (e.g. Dagster's log and a terminal's bars)."""

    def __init__(self, *sinks: Progress) -> None:
        self.sinks = sinks

    def connection_started(self, connection_id: str, mode: str, display_name: str | None) -> None:
        for sink in self.sinks:
            sink.connection_started(connection_id, mode, display_name)

    def pages_fetched(self, connection_id: str, pages: int, runs: int) -> None:
        for sink in self.sinks:
            sink.pages_fetched(connection_id, pages, runs)

    def connection_finished(self, result: ConnectionResult) -> None:
        for sink in self.sinks:
            sink.connection_finished(result)
