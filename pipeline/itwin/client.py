"""Async client for the four Export API calls the pipeline needs.

One long-lived httpx.AsyncClient per ExportApiClient: base URL, Accept header,
explicit timeouts, no redirects; auth, retries, the rate budget and paging live
in their own modules (auth, session, ratelimit, paging) and are assembled here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any

import httpx

from pipeline.errors import ConfigError
from pipeline.itwin.auth import (
    ClientCredentialsAuth,
    IssuedToken,
    StaticTokenAuth,
    fetch_client_credentials_token,
)
from pipeline.itwin.bodies import ACCEPT_ENCODING
from pipeline.itwin.errors import ApiError
from pipeline.itwin.ids import path_segment, validate_id
from pipeline.itwin.logs import install_redaction
from pipeline.itwin.page_parsing import RawItem, RejectedItem
from pipeline.itwin.paging import Pager, next_href
from pipeline.itwin.ratelimit import RateLimiter
from pipeline.itwin.session import Answer, ApiSession
from pipeline.itwin.settings import ACCEPT_HEADER, Settings
from pipeline.itwin.stats import CallStats, bump

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
    index: int = 0  # 0 for the first page
    extra: dict[str, Any] = field(default_factory=dict)
    rejected: tuple[RejectedItem, ...] = ()
    duplicate_keys: tuple[RawItem, ...] = ()


def _pool_limits(settings: Settings) -> httpx.Limits:
    """As many kept-alive connections as requests may be in flight.

    httpx keeps 20 by default: with more in flight, connections were closed as they fell
    idle and new ones opened a moment later (a TCP and TLS handshake each against the real
    API), and requests queued inside the pool for them (up to 40 at once, measured in a
    200-connection collection).
    """
    slots = settings.in_flight_limit  # at least 1 (see Settings.in_flight_limit)
    return httpx.Limits(max_connections=slots, max_keepalive_connections=slots)


class ExportApiClient:
    """One long-lived httpx.AsyncClient with auth, retries, rate budget and paging.

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
        self._http = httpx.AsyncClient(
            base_url=self._base_url,
            headers={"Accept": ACCEPT_HEADER, "Accept-Encoding": ACCEPT_ENCODING},
            timeout=_timeouts(settings),
            follow_redirects=False,
            transport=transport,
            limits=_pool_limits(settings),
        )
        self._totals = CallStats()
        self.auth = self._make_auth()
        self._session = ApiSession(
            settings, http=self._http, auth=self.auth, totals=self._totals, limiter=self.limiter
        )

    def _make_auth(self) -> httpx.Auth:
        """A static token when one is configured, else client credentials."""
        if self._settings.access_token:
            return StaticTokenAuth(self._settings.access_token, api_origin=self._base_url)

        async def fetch() -> IssuedToken:
            return await fetch_client_credentials_token(self._http, self._settings, self.limiter)

        return ClientCredentialsAuth(fetch, api_origin=self._base_url)

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
        return f"ExportApiClient(base_url={str(self._base_url)!r})"

    @property
    def totals(self) -> CallStats:
        """Counters over every call this client made."""
        return self._totals

    def request_times(self) -> list[datetime]:
        """When each API request of this client started (UTC; token requests excluded)."""
        return self.limiter.request_times()

    def list_runs(
        self, connection_id: str, *, stats: CallStats | None = None, page_size: int | None = None
    ) -> AsyncIterator[RunsPage]:
        """Yield the connection's run pages in API order; the caller may stop early.

        Ids are checked at call time, before anything is sent. A next link the
        client refuses (foreign origin, loop, page cap) raises PagingError after
        the pages before it were yielded.
        """
        segment = path_segment(connection_id, "connection_id")
        params = {"$top": _page_size(page_size)} if page_size is not None else None
        url = self._url(f"export/connections/{segment}/runs", params)
        return self._runs_pages(url, connection_id, stats or CallStats())

    async def _runs_pages(
        self, url: httpx.URL, connection_id: str, stats: CallStats
    ) -> AsyncIterator[RunsPage]:
        async for index, answer, runs in self._pages(url, "runs", connection_id, stats):
            yield RunsPage(
                runs=runs,
                fetched_at=answer.fetched_at,
                url=str(answer.url),
                has_next=next_href(answer.body) is not None,
                index=index,
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
        answer = await self._get(self._url(path), connection_id, stats or CallStats())
        return _member_object(answer, "run", connection_id), answer.fetched_at

    async def get_connection(
        self, connection_id: str, *, stats: CallStats | None = None
    ) -> dict[str, Any]:
        """The connection object (the `connection` member of the answer)."""
        path = f"export/connections/{path_segment(connection_id, 'connection_id')}"
        answer = await self._get(self._url(path), connection_id, stats or CallStats())
        return _member_object(answer, "connection", connection_id)

    def list_connections(
        self, imodel_id: str, *, stats: CallStats | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Yield every connection object of the iModel, across all pages."""
        validate_id(imodel_id, "imodel_id")
        url = self._url("export/connections", {"imodelId": imodel_id})
        return self._connections(url, stats or CallStats())

    async def _connections(self, url: httpx.URL, stats: CallStats) -> AsyncIterator[dict[str, Any]]:
        async for _, _, connections in self._pages(url, "connections", None, stats):
            for connection in connections:
                yield connection

    async def _pages(
        self, url: httpx.URL, member: str, connection_id: str | None, stats: CallStats
    ) -> AsyncIterator[tuple[int, Answer, list[dict[str, Any]]]]:
        """Fetch pages by next link; yield (index, answer, new items) before going on."""
        pager = Pager(
            url,
            base_url=self._base_url,
            max_pages=self._settings.max_pages,
            connection_id=connection_id,
        )
        index = 0
        next_url: httpx.URL | None = url
        while next_url is not None:
            answer = await self._get(next_url, connection_id, stats, member)
            items = _member_list(answer, member, connection_id)
            bump("pages", stats, self._totals)
            yield index, answer, pager.fresh(items)
            next_url = pager.next_url(
                answer.body, current=answer.url, items=len(items) + len(answer.page.rejected)
            )
            index += 1

    async def _get(
        self,
        url: httpx.URL,
        connection_id: str | None,
        stats: CallStats,
        member: str | None = None,
    ) -> Answer:
        return await self._session.get_object(
            url, stats=stats, connection_id=connection_id, member=member
        )

    def _url(self, path: str, params: Mapping[str, str | int] | None = None) -> httpx.URL:
        """An absolute URL under the base URL (whose own path prefix is kept)."""
        return httpx.URL(self._base_url.join(path), params=params)


def _checked_base_url(raw: str) -> httpx.URL:
    """The base URL with a trailing slash, so relative paths keep any prefix."""
    url = httpx.URL(raw)
    if url.scheme not in ("http", "https") or not url.host or url.userinfo:
        raise ConfigError("ITWIN_API_BASE_URL must be an http(s) URL without user:password@")
    path = url.path if url.path.endswith("/") else url.path + "/"
    return url.copy_with(path=path, query=None, fragment=None)


def _timeouts(settings: Settings) -> httpx.Timeout:
    return httpx.Timeout(
        connect=settings.connect_timeout_s,
        read=settings.read_timeout_s,
        write=settings.read_timeout_s,
        pool=settings.request_deadline_s,
    )


def _page_size(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"page_size must be a positive integer, got {value!r}")
    return value


def _member_list(answer: Answer, member: str, connection_id: str | None) -> list[dict[str, Any]]:
    items = answer.body.get(member)
    if not isinstance(items, list):
        raise _unexpected(answer, f"a list page without a {member!r} list", connection_id)
    return items


def _member_object(answer: Answer, member: str, connection_id: str | None) -> dict[str, Any]:
    value = answer.body.get(member)
    if not isinstance(value, dict):
        raise _unexpected(answer, f"an answer without a {member!r} object", connection_id)
    return value


def _unexpected(answer: Answer, what: str, connection_id: str | None) -> ApiError:
    return ApiError(
        message=f"the API sent {what}",
        status=200,
        code="UnexpectedAnswer",
        connection_id=connection_id,
        url=str(answer.url),
    )
