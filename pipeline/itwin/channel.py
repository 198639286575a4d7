"""The plumbing under ExportApiClient: one httpx client, auth, the rate budget, paging.

One long-lived httpx.AsyncClient per client: base URL, Accept header, explicit timeouts, no
redirects; auth, retries, the rate budget and paging live in their own modules (auth, session,
ratelimit, paging) and are assembled here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import datetime
from typing import Any

import httpx

from pipeline.errors import ConfigError
from pipeline.itwin.answers import Answer, member_list
from pipeline.itwin.auth import (
    ClientCredentialsAuth,
    IssuedToken,
    StaticTokenAuth,
    fetch_client_credentials_token,
)
from pipeline.itwin.bodies import ACCEPT_ENCODING
from pipeline.itwin.logs import install_redaction
from pipeline.itwin.paging import Pager
from pipeline.itwin.ratelimit import RateLimiter
from pipeline.itwin.session import ApiSession
from pipeline.itwin.settings import ACCEPT_HEADER, Settings
from pipeline.itwin.stats import CallStats, bump

# A connection idle this long (or four request intervals, if longer) is closed.
MIN_KEEPALIVE_S = 0.5


class ApiChannel:
    """Sends the client's GETs: builds the pieces once, then fetches answers and pages."""

    def __init__(
        self, settings: Settings, *, transport: Any, request_history: Iterable[datetime]
    ) -> None:
        settings.require_credentials()
        install_redaction(settings)
        self.settings = settings
        self.base_url = _checked_base_url(settings.base_url)
        self.limiter = RateLimiter(
            settings.rate_limit_per_minute,
            per_hour=settings.rate_limit_per_hour,
            max_wait_s=settings.max_wait_s,
            history=request_history,
        )
        self.http = httpx.AsyncClient(
            base_url=self.base_url,
            headers={"Accept": ACCEPT_HEADER, "Accept-Encoding": ACCEPT_ENCODING},
            timeout=_timeouts(settings),
            follow_redirects=False,
            transport=transport,
            limits=_pool_limits(settings, self.limiter.interval_s),
        )
        self.totals = CallStats()
        self.auth = self._make_auth()
        self._session = ApiSession(
            settings, http=self.http, auth=self.auth, totals=self.totals, limiter=self.limiter
        )

    def _make_auth(self) -> httpx.Auth:
        """A static token when one is configured, else client credentials."""
        if self.settings.access_token:
            return StaticTokenAuth(self.settings.access_token, api_origin=self.base_url)

        async def fetch() -> IssuedToken:
            return await fetch_client_credentials_token(self.http, self.settings, self.limiter)

        return ClientCredentialsAuth(fetch, api_origin=self.base_url)

    def url(self, path: str, params: Mapping[str, str | int] | None = None) -> httpx.URL:
        """An absolute URL under the base URL (whose own path prefix is kept)."""
        return httpx.URL(self.base_url.join(path), params=params)

    async def get(
        self,
        url: httpx.URL,
        connection_id: str | None,
        stats: CallStats,
        member: str | None = None,
    ) -> Answer:
        """The JSON object at ``url``, after the session's retries."""
        return await self._session.get_object(
            url, stats=stats, connection_id=connection_id, member=member
        )

    async def pages(
        self, url: httpx.URL, member: str, connection_id: str | None, stats: CallStats
    ) -> AsyncIterator[tuple[int, Answer, list[dict[str, Any]]]]:
        """Fetch pages by next link; yield (index, answer, new items) before going on."""
        pager = Pager(
            url,
            base_url=self.base_url,
            max_pages=self.settings.max_pages,
            connection_id=connection_id,
        )
        index = 0
        next_url: httpx.URL | None = url
        while next_url is not None:
            answer = await self.get(next_url, connection_id, stats, member)
            items = member_list(answer, member, connection_id)
            bump("pages", stats, self.totals)
            yield index, answer, pager.fresh(items)
            next_url = pager.next_url(
                answer.body, current=answer.url, items=len(items) + len(answer.page.rejected)
            )
            index += 1


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


def _timeouts(settings: Settings) -> httpx.Timeout:
    return httpx.Timeout(
        connect=settings.connect_timeout_s,
        read=settings.read_timeout_s,
        write=settings.read_timeout_s,
        pool=settings.request_deadline_s,
    )
