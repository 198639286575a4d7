"""Async client for the four Export API calls the pipeline needs.

INTERFACE STUB: the signatures below are what the rest of the pipeline calls;
the implementation is being written (issue 2).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any

from pipeline.itwin.settings import Settings


@dataclass
class CallStats:
    """Counters for one logical piece of work (e.g. one connection's collection)."""

    requests: int = 0
    retries: int = 0
    throttled: int = 0  # 429 answers received
    pages: int = 0

    def add(self, other: CallStats) -> None:
        self.requests += other.requests
        self.retries += other.retries
        self.throttled += other.throttled
        self.pages += other.pages


@dataclass(frozen=True)
class RunsPage:
    """One page of a runs list: the runs as sent, when it was fetched, and its URL."""

    runs: list[dict[str, Any]]
    fetched_at: datetime  # UTC, when the response arrived
    url: str
    has_next: bool
    index: int = 0  # 0 for the first page
    extra: dict[str, Any] = field(default_factory=dict)


class ExportApiClient:
    """One long-lived httpx.AsyncClient with auth, retries, rate budget and paging."""

    def __init__(self, settings: Settings, *, transport: Any = None) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> ExportApiClient:
        raise NotImplementedError

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        raise NotImplementedError

    @property
    def totals(self) -> CallStats:
        """Counters over every call this client made."""
        raise NotImplementedError

    def list_runs(
        self, connection_id: str, *, stats: CallStats | None = None, page_size: int | None = None
    ) -> AsyncIterator[RunsPage]:
        """Yield the connection's run pages in API order; the caller may stop early."""
        raise NotImplementedError

    async def get_run(
        self, connection_id: str, run_id: str, *, stats: CallStats | None = None
    ) -> tuple[dict[str, Any], datetime]:
        """The run object (the `run` member of the answer) and when it was fetched."""
        raise NotImplementedError

    async def get_connection(
        self, connection_id: str, *, stats: CallStats | None = None
    ) -> dict[str, Any]:
        raise NotImplementedError

    def list_connections(
        self, imodel_id: str, *, stats: CallStats | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Yield every connection object of the iModel, across all pages."""
        raise NotImplementedError
