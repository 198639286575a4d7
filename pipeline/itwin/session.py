"""Sending one GET to the API until it yields a JSON object or a final, typed error.

Every attempt waits for a concurrency slot and the shared rate budget, and has a
per-attempt time limit inside the request's total deadline. Transient failures
(5xx, 429, timeouts, resets, truncated or non-JSON 200 bodies) are retried a
bounded number of times; each retry is logged with the URL and reason only.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from pipeline.itwin.bodies import BadEncoding, TooLarge, decoded_response, read_capped
from pipeline.itwin.errors import (
    AnswerTooLargeError,
    ApiError,
    ServiceUnavailableError,
    UnusableAnswerError,
)
from pipeline.itwin.page_parsing import ParsedPage, UnreadableBody, UnusableValue, parse_page
from pipeline.itwin.paging import origin_text
from pipeline.itwin.ratelimit import RateLimiter, parse_rate_hint
from pipeline.itwin.responses import error_from_response
from pipeline.itwin.retry import Outcome, backoff_delay, classify_status
from pipeline.itwin.settings import Settings
from pipeline.itwin.stats import CallStats, bump

logger = logging.getLogger("pipeline.itwin")


@dataclass(frozen=True)
class Answer:
    """A successful answer: the JSON object, when it arrived (UTC) and from where.

    ``page`` holds what a list page's tolerant parse set aside (rejected and duplicate-key
    items); ``body`` is ``page.body``.
    """

    page: ParsedPage
    fetched_at: datetime
    url: httpx.URL

    @property
    def body(self) -> dict[str, Any]:
        return self.page.body


@dataclass(frozen=True)
class _Transient:
    """A failed attempt worth retrying; ``response`` is None for transport failures."""

    reason: str
    response: httpx.Response | None = None
    wait_s: float | None = None  # what the service asked for, if anything
    throttled: bool = False


class ApiSession:
    """The request engine shared by every call of one client."""

    def __init__(
        self,
        settings: Settings,
        *,
        http: httpx.AsyncClient,
        auth: httpx.Auth,
        totals: CallStats,
        limiter: RateLimiter,
        rng: random.Random | None = None,
    ) -> None:
        self._settings = settings
        self._http = http
        self._auth = auth
        self._totals = totals
        self._rng = rng or random.Random()
        self.limiter = limiter
        self._slots = asyncio.Semaphore(max(1, settings.in_flight_limit))

    async def get_object(
        self,
        url: httpx.URL,
        *,
        stats: CallStats,
        connection_id: str | None,
        member: str | None = None,
    ) -> Answer:
        """GET ``url`` (absolute, same origin as the API) and return its JSON object.

        With ``member``, a bad item of that list is set aside (see page_parsing) instead
        of making the whole answer unreadable.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settings.request_deadline_s
        attempt = 0
        while True:
            result = await self._attempt(url, stats, deadline, connection_id, member)
            if isinstance(result, Answer):
                return result
            delay = self._delay(result, attempt)
            if result.throttled:
                self.limiter.pause_for(delay)  # everyone waits, not only this caller
                self.limiter.check(connection_id)  # unless the wait is too long for anyone
                deadline += delay  # a wait the settings accept does not eat the deadline
            if attempt >= self._settings.max_retries or loop.time() + delay > deadline:
                raise self._exhausted(result, url, attempt + 1, connection_id)
            self._log_retry(url, result, attempt, delay)
            bump("retries", stats, self._totals)
            await asyncio.sleep(delay)
            attempt += 1

    async def _attempt(
        self,
        url: httpx.URL,
        stats: CallStats,
        deadline: float,
        connection_id: str | None,
        member: str | None,
    ) -> Answer | _Transient:
        """One attempt under the concurrency bound and the rate budget."""
        async with self._slots:
            await self.limiter.acquire(connection_id)
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return _Transient("request deadline reached")
            bump("requests", stats, self._totals)
            try:
                async with asyncio.timeout(min(remaining, self._attempt_limit_s())):
                    response = await self._fetch(url)
            except (TimeoutError, httpx.TimeoutException):
                return _Transient("timed out")
            except httpx.TransportError as exc:
                return _Transient(f"connection failed ({type(exc).__name__})")
            except BadEncoding as exc:
                return _Transient(f"unreadable answer: {exc}")
            except TooLarge as exc:
                raise _too_large(url, exc.cap_bytes, connection_id) from None
        return self._judge(response, stats, connection_id, member)

    async def _fetch(self, url: httpx.URL) -> httpx.Response:
        """GET with the body read under the answer-size cap (compressed or not)."""
        async with self._http.stream("GET", url, auth=self._auth) as streamed:
            body = await read_capped(streamed, self._settings.max_answer_bytes)
        return decoded_response(streamed, body)

    def _attempt_limit_s(self) -> float:
        """A whole attempt, slow-dripping bodies included, gets connect plus read time."""
        return self._settings.connect_timeout_s + self._settings.read_timeout_s

    def _judge(
        self,
        response: httpx.Response,
        stats: CallStats,
        connection_id: str | None,
        member: str | None,
    ) -> Answer | _Transient:
        """Decide what an answer means: success, retry, or (raised) a final error."""
        fetched_at = datetime.now(UTC)
        hint = parse_rate_hint(response.headers)
        outcome = classify_status(response.status_code)
        if outcome is Outcome.OK:
            self.limiter.observe(hint, fallback_pause_s=self._settings.backoff_base_s)
            try:
                page = parse_page(response.content, member)
            except UnreadableBody as exc:
                return _Transient(f"unreadable 200 answer: {exc}", response)
            except UnusableValue as exc:
                raise _unusable(response.request.url, exc, connection_id) from None
            return Answer(page=page, fetched_at=fetched_at, url=response.request.url)
        if outcome is Outcome.THROTTLED:
            bump("throttled", stats, self._totals)
            return _Transient("HTTP 429", response, hint.wait_s, throttled=True)
        if outcome is Outcome.RETRY:
            return _Transient(f"HTTP {response.status_code}", response, hint.wait_s)
        raise _final_error(response, outcome, connection_id)

    def _delay(self, failure: _Transient, attempt: int) -> float:
        """The service's wait when it gave a sane one, else capped backoff with jitter."""
        if failure.wait_s is not None:
            return failure.wait_s
        return backoff_delay(
            attempt,
            base_s=self._settings.backoff_base_s,
            cap_s=self._settings.backoff_cap_s,
            rng=self._rng,
        )

    def _exhausted(
        self, failure: _Transient, url: httpx.URL, attempts: int, connection_id: str | None
    ) -> ApiError:
        """The error for a call that kept failing until retries or the deadline ran out."""
        note = f"gave up after {attempts} attempts"
        if failure.response is not None:
            error = error_from_response(failure.response, connection_id=connection_id, note=note)
            if failure.response.status_code < 300:  # an unreadable 200
                error = ServiceUnavailableError(
                    message=f"{failure.reason} ({note})",
                    status=failure.response.status_code,
                    connection_id=connection_id,
                    url=str(url),
                )
            return error
        return ServiceUnavailableError(
            message=f"{failure.reason} ({note})", connection_id=connection_id, url=str(url)
        )

    def _log_retry(self, url: httpx.URL, failure: _Transient, attempt: int, delay: float) -> None:
        logger.warning(
            "GET %s: %s; retry %d of %d in %.2fs",
            url,
            failure.reason,
            attempt + 1,
            self._settings.max_retries,
            delay,
        )


def _too_large(url: httpx.URL, cap_bytes: int, connection_id: str | None) -> ApiError:
    mb = cap_bytes / (1024 * 1024)
    return AnswerTooLargeError(
        message=(
            f"the answer to GET {url.path} is larger than max_answer_mb ({mb:g} MB once "
            "inflated); it was refused unread and not retried. If pages this large are "
            "expected, raise max_answer_mb in the config file"
        ),
        code="AnswerTooLarge",
        connection_id=connection_id,
        url=str(url.copy_with(query=None)),
    )


def _unusable(url: httpx.URL, problem: UnusableValue, connection_id: str | None) -> ApiError:
    error = UnusableAnswerError(
        message=f"the answer to GET {url.path} holds a value JSON cannot carry: {problem.reason}",
        status=200,
        code="UnusableAnswer",
        connection_id=connection_id,
        url=str(url.copy_with(query=None)),
    )
    error.raw, error.reason = problem.raw, problem.reason
    return error


def _final_error(response: httpx.Response, outcome: Outcome, connection_id: str | None) -> ApiError:
    """A non-retryable answer as a typed error."""
    if outcome is Outcome.REDIRECT:
        location = response.headers.get("Location", "")
        target = response.request.url.join(location) if location else None
        where = origin_text(target) if target is not None else "an unnamed location"
        return ApiError(
            message=f"the API redirected to {where}; redirects are not followed with the token",
            status=response.status_code,
            code="RedirectRefused",
            connection_id=connection_id,
            url=str(response.request.url),
            extra={"location_origin": where},
        )
    return error_from_response(response, connection_id=connection_id)
