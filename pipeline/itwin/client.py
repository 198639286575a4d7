"""Async client for the four Export API calls the pipeline needs.

The calls and their answers' shapes live here; the plumbing under them (the httpx client,
auth, retries, the rate budget, following next links) is `channel.ApiChannel`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any

import httpx

from pipeline.itwin.answers import member_object
from pipeline.itwin.channel import ApiChannel
from pipeline.itwin.ids import path_segment, validate_id
from pipeline.itwin.page_parsing import RawItem, RejectedItem
from pipeline.itwin.paging import checked_start_url, next_href, normalize_next_link
from pipeline.itwin.ratelimit import RateLimiter
from pipeline.itwin.settings import Settings
from pipeline.itwin.stats import CallStats

__all__ = ["CallStats", "ExportApiClient", "RawItem", "RejectedItem", "RunsPage"]


@dataclass(frozen=True)
class RunsPage:
    """One page of a runs list: the runs as sent, when it was fetched, and its URL.

    ``runs`` omits runs an earlier page of the same listing already yielded, and runs
    that are not usable JSON: those are in ``rejected`` (raw text and reason, for the
    quarantine). ``duplicate_keys`` holds the raw text of runs whose object repeats a
    key (their parsed form in ``runs`` keeps the last value). ``extra`` holds the page's
    other top-level members as sent (``_links``, ...).
    """

    runs: list[dict[str, Any]]
    fetched_at: datetime  # UTC, when the response arrived
    url: str
    has_next: bool
    index: int = 0  # 0 for the first page read
    # The page after this one as paging follows it (resolved against ``url``); None at
    # the end. A read stopped after this page can go on from it (``list_runs(start_url=)``).
    next_url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    rejected: tuple[RejectedItem, ...] = ()
    duplicate_keys: tuple[RawItem, ...] = ()


class ExportApiClient:
    """The Export API's connection and run calls, over one long-lived channel.

    Use as ``async with ExportApiClient(settings) as api:``; every call may run
    concurrently with the others and they share one rate budget and token.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        transport: Any = None,
        request_history: Iterable[datetime] = (),
    ) -> None:
        """``request_history``: when the API requests of the last hour started (UTC),
        earlier collections' included, so the hourly budget counts them too."""
        self._channel = ApiChannel(settings, transport=transport, request_history=request_history)
        self._http = self._channel.http

    @property
    def auth(self) -> httpx.Auth:
        return self._channel.auth

    @property
    def limiter(self) -> RateLimiter:
        return self._channel.limiter

    async def __aenter__(self) -> ExportApiClient:
        await self._http.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    def __repr__(self) -> str:
        return f"ExportApiClient(base_url={str(self._channel.base_url)!r})"

    @property
    def totals(self) -> CallStats:
        """Counters over every call this client made."""
        return self._channel.totals

    def request_times(self) -> list[datetime]:
        """When each API request of this client started (UTC; token requests excluded)."""
        return self.limiter.request_times()

    def list_runs(
        self,
        connection_id: str,
        *,
        stats: CallStats | None = None,
        page_size: int | None = None,
        start_url: str | None = None,
    ) -> AsyncIterator[RunsPage]:
        """Yield the connection's run pages in API order; the caller may stop early.

        ``start_url``: read from there instead of the first page (a page's ``next_url``
        kept from an earlier read); ``page_size`` is then the link's own. Ids and the start
        URL are checked at call time, before anything is sent: a start URL of another
        origin, or carrying a user name or password, raises PagingError as a next link
        there would. A next link the client refuses (foreign origin, loop, page cap)
        raises PagingError after the pages before it were yielded.
        """
        segment = path_segment(connection_id, "connection_id")
        if start_url is not None:
            url = checked_start_url(start_url, self._channel.base_url, connection_id)
        else:
            params = {"$top": _page_size(page_size)} if page_size is not None else None
            url = self._channel.url(f"export/connections/{segment}/runs", params)
        return self._runs_pages(url, connection_id, stats or CallStats())

    async def _runs_pages(
        self, url: httpx.URL, connection_id: str, stats: CallStats
    ) -> AsyncIterator[RunsPage]:
        async for index, answer, runs in self._channel.pages(url, "runs", connection_id, stats):
            yield RunsPage(
                runs=runs,
                fetched_at=answer.fetched_at,
                url=str(answer.url),
                has_next=next_href(answer.body) is not None,
                index=index,
                next_url=_resolved_next(answer.url, answer.body),
                extra={k: v for k, v in answer.body.items() if k != "runs"},
                rejected=answer.page.rejected,
                duplicate_keys=answer.page.duplicate_keys,
            )

    async def get_run(
        self, connection_id: str, run_id: str, *, stats: CallStats | None = None
    ) -> tuple[dict[str, Any], datetime]:
        """The run object (the `run` member of the answer) and when it was fetched.

        A complete answer whose run holds a value JSON cannot carry (NaN, a lone
        surrogate, ...) raises UnusableAnswerError at once, with ``raw`` and ``reason``
        for the quarantine.
        """
        path = (
            f"export/connections/{path_segment(connection_id, 'connection_id')}"
            f"/runs/{path_segment(run_id, 'run_id')}"
        )
        answer = await self._channel.get(
            self._channel.url(path), connection_id, stats or CallStats()
        )
        return member_object(answer, "run", connection_id), answer.fetched_at

    async def get_connection(
        self, connection_id: str, *, stats: CallStats | None = None
    ) -> dict[str, Any]:
        """The connection object (the `connection` member of the answer)."""
        path = f"export/connections/{path_segment(connection_id, 'connection_id')}"
        answer = await self._channel.get(
            self._channel.url(path), connection_id, stats or CallStats()
        )
        return member_object(answer, "connection", connection_id)

    def list_connections(
        self, imodel_id: str, *, stats: CallStats | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Yield every connection object of the iModel, across all pages."""
        validate_id(imodel_id, "imodel_id")
        url = self._channel.url("export/connections", {"imodelId": imodel_id})
        return self._connections(url, stats or CallStats())

    async def _connections(self, url: httpx.URL, stats: CallStats) -> AsyncIterator[dict[str, Any]]:
        async for _, _, connections in self._channel.pages(url, "connections", None, stats):
            for connection in connections:
                yield connection


def _resolved_next(current: httpx.URL, body: dict[str, Any]) -> str | None:
    href = next_href(body)
    return None if href is None else str(current.join(normalize_next_link(href.strip())))


def _page_size(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"page_size must be a positive integer, got {value!r}")
    return value
