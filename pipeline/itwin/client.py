"""Async client for the four Export API calls the pipeline needs.

One long-lived httpx.AsyncClient per client: base URL, Accept header, explicit timeouts, no
redirects; auth, retries, the rate budget and paging live in their own modules (auth, session,
ratelimit, paging) and are assembled here, under the calls and their answers' shapes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from pipeline.errors import ConfigError
from pipeline.itwin.answers import Answer, member_list, member_object
from pipeline.itwin.auth import (
    ClientCredentialsAuth,
    IssuedToken,
    StaticTokenAuth,
    fetch_client_credentials_token,
)
from pipeline.itwin.bodies import ACCEPT_ENCODING
from pipeline.itwin.ids import path_segment, validate_id
from pipeline.itwin.logs import install_redaction
from pipeline.itwin.page_parsing import RawItem, RejectedItem
from pipeline.itwin.paging import Pager, checked_start_url, next_href, normalize_next_link
from pipeline.itwin.ratelimit import RateLimiter
from pipeline.itwin.session import ApiSession
from pipeline.itwin.settings import ACCEPT_HEADER, Settings
from pipeline.itwin.stats import CallStats, bump

__all__ = ["CallStats", "ExportApiClient", "RawItem", "RejectedItem", "RunsPage"]

# A connection idle this long (or four request intervals, if longer) is closed.
MIN_KEEPALIVE_S = 0.5


@dataclass(frozen=True)
class RunsPage:
    """One page of a runs list: the runs as sent, when it was fetched, and its URL.

    ``runs`` omits runs an earlier page of the same listing already yielded, and runs
    that are not usable JSON: those are in ``rejected`` (raw text and reason, for the
    quarantine). ``duplicate_keys`` holds the raw text of runs whose object repeats a
    key (their parsed form in ``runs`` keeps the last value).
    """

    runs: list[dict[str, Any]]
    fetched_at: datetime  # UTC, when the response arrived
    url: str
    has_next: bool
    # The page after this one as paging follows it (resolved against ``url``); None at
    # the end. A read stopped after this page can go on from it (``list_runs(start_url=)``).
    next_url: str | None = None
    rejected: tuple[RejectedItem, ...] = ()
    duplicate_keys: tuple[RawItem, ...] = ()


class ExportApiClient:
    """The Export API's connection and run calls, over one long-lived connection pool.

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
        settings.require_credentials()
        install_redaction(settings)
        self._settings = settings
        self._base_url = _checked_base_url(settings.base_url)
        self.limiter = RateLimiter(
            settings.rate_limit_per_minute,
            per_hour=settings.rate_limit_per_hour,
            max_wait_s=settings.max_wait_s,
            history=request_history,
        )
        self._http = _http_client(settings, self._base_url, transport, self.limiter.interval_s)
        self.totals = CallStats()  # counters over every call this client made
        self.auth = _make_auth(settings, self._http, self.limiter, self._base_url)
        self._session = ApiSession(
            settings, http=self._http, auth=self.auth, totals=self.totals, limiter=self.limiter
        )

    async def __aenter__(self) -> ExportApiClient:
        await self._http.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    def __repr__(self) -> str:
        return f"ExportApiClient(base_url={str(self._base_url)!r})"

    def request_times(self) -> list[datetime]:
        """When each API request of this client started (UTC; token requests excluded)."""
        return self.limiter.request_times()

    def list_runs(
        self,
        connection_id: str,
        *,
        stats: CallStats | None = None,
        start_url: str | None = None,
    ) -> AsyncIterator[RunsPage]:
        """Yield the connection's run pages in API order; the caller may stop early.

        ``start_url``: read from there instead of the first page (a page's ``next_url``
        kept from an earlier read). Ids and the start URL are checked at call time, before
        anything is sent: a start URL of another origin, or carrying a user name or
        password, raises PagingError as a next link there would. A next link the client
        refuses (foreign origin, loop, page cap) raises PagingError after the pages before
        it were yielded.
        """
        segment = path_segment(connection_id, "connection_id")
        if start_url is not None:
            url = checked_start_url(start_url, self._base_url, connection_id)
        else:
            url = self._url(f"export/connections/{segment}/runs")
        return self._runs_pages(url, connection_id, stats or CallStats())

    async def _runs_pages(
        self, url: httpx.URL, connection_id: str, stats: CallStats
    ) -> AsyncIterator[RunsPage]:
        async for answer, runs in self._pages(url, "runs", connection_id, stats):
            yield _runs_page(answer, runs)

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
        answer = await self._session.get_object(
            self._url(path), stats=stats or CallStats(), connection_id=connection_id
        )
        return member_object(answer, "run", connection_id), answer.fetched_at

    async def get_connection(
        self, connection_id: str, *, stats: CallStats | None = None
    ) -> dict[str, Any]:
        """The connection object (the `connection` member of the answer)."""
        path = f"export/connections/{path_segment(connection_id, 'connection_id')}"
        answer = await self._session.get_object(
            self._url(path), stats=stats or CallStats(), connection_id=connection_id
        )
        return member_object(answer, "connection", connection_id)

    def list_connections(
        self, imodel_id: str, *, stats: CallStats | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Yield every connection object of the iModel, across all pages."""
        validate_id(imodel_id, "imodel_id")
        url = self._url("export/connections", {"imodelId": imodel_id})
        return self._connections(url, stats or CallStats())

    async def _connections(self, url: httpx.URL, stats: CallStats) -> AsyncIterator[dict[str, Any]]:
        async for _, connections in self._pages(url, "connections", None, stats):
            for connection in connections:
                yield connection

    def _url(self, path: str, params: Mapping[str, str | int] | None = None) -> httpx.URL:
        """An absolute URL under the base URL (whose own path prefix is kept)."""
        return httpx.URL(self._base_url.join(path), params=params)

    async def _pages(
        self, url: httpx.URL, member: str, connection_id: str | None, stats: CallStats
    ) -> AsyncIterator[tuple[Answer, list[dict[str, Any]]]]:
        """Fetch pages by next link; yield (answer, new items) before going on."""
        pager = Pager(
            url,
            base_url=self._base_url,
            max_pages=self._settings.max_pages,
            connection_id=connection_id,
        )
        next_url: httpx.URL | None = url
        while next_url is not None:
            answer = await self._session.get_object(
                next_url, stats=stats, connection_id=connection_id, member=member
            )
            items = member_list(answer, member, connection_id)
            bump("pages", stats, self.totals)
            yield answer, pager.fresh(items)
            next_url = pager.next_url(
                answer.body, current=answer.url, items=len(items) + len(answer.page.rejected)
            )


def _runs_page(answer: Answer, runs: list[dict[str, Any]]) -> RunsPage:
    return RunsPage(
        runs=runs,
        fetched_at=answer.fetched_at,
        url=str(answer.url),
        has_next=next_href(answer.body) is not None,
        next_url=_resolved_next(answer.url, answer.body),
        rejected=answer.page.rejected,
        duplicate_keys=answer.page.duplicate_keys,
    )


def _resolved_next(current: httpx.URL, body: dict[str, Any]) -> str | None:
    href = next_href(body)
    return None if href is None else str(current.join(normalize_next_link(href.strip())))


def _http_client(
    settings: Settings, base_url: httpx.URL, transport: Any, interval_s: float
) -> httpx.AsyncClient:
    """One long-lived pool: base URL, Accept headers, explicit timeouts, no redirects."""
    return httpx.AsyncClient(
        base_url=base_url,
        headers={"Accept": ACCEPT_HEADER, "Accept-Encoding": ACCEPT_ENCODING},
        timeout=httpx.Timeout(
            connect=settings.connect_timeout_s,
            read=settings.read_timeout_s,
            write=settings.read_timeout_s,
            pool=settings.request_deadline_s,
        ),
        follow_redirects=False,
        transport=transport,
        limits=_pool_limits(settings, interval_s),
    )


def _make_auth(
    settings: Settings, http: httpx.AsyncClient, limiter: RateLimiter, base_url: httpx.URL
) -> httpx.Auth:
    """A static token when one is configured, else client credentials."""
    if settings.access_token:
        return StaticTokenAuth(settings.access_token, api_origin=base_url)

    async def fetch() -> IssuedToken:
        return await fetch_client_credentials_token(http, settings, limiter)

    return ClientCredentialsAuth(fetch, api_origin=base_url)


def _pool_limits(settings: Settings, interval_s: float) -> httpx.Limits:
    """As many kept-alive connections as requests may be in flight, idle ones closed soon.

    httpx keeps 20 by default: with more in flight, connections were closed as they fell
    idle and new ones opened a moment later (a TCP and TLS handshake each against the real
    API), and requests queued inside the pool for them. Idle connections close after a
    few request intervals: httpcore's pool checks every connection (a socket poll each) on
    every request start and end, so a pool grown by a burst taxes the event loop until its
    surplus goes; at the paced rate the connections in use are never idle that long.
    """
    slots = settings.in_flight_limit  # at least 1 (see Settings.in_flight_limit)
    return httpx.Limits(
        max_connections=slots,
        max_keepalive_connections=slots,
        keepalive_expiry=max(MIN_KEEPALIVE_S, 4 * interval_s),
    )


def _checked_base_url(raw: str) -> httpx.URL:
    """The base URL with a trailing slash, so relative paths keep any prefix."""
    url = httpx.URL(raw)
    if url.scheme not in ("http", "https") or not url.host or url.userinfo:
        raise ConfigError("ITWIN_API_BASE_URL must be an http(s) URL without user:password@")
    path = url.path if url.path.endswith("/") else url.path + "/"
    return url.copy_with(path=path, query=None, fragment=None)
