"""Sending one GET to the API until it yields a JSON object or a final, typed error.

Every attempt waits for a concurrency slot and the shared rate budget, and has a
per-attempt time limit inside the request's total deadline. Transient failures
(5xx, 429, timeouts, resets, truncated or non-JSON 200 bodies) are retried a
bounded number of times; each retry is logged with the URL and reason only. What an
answer means is read in `answers`; the pauses the service asks for are kept by `ratelimit`.
"""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import UTC, datetime

import httpx

from pipeline.itwin.answers import (
    Answer,
    Transient,
    exhausted_error,
    fetch_capped,
    read_answer,
    too_large_error,
)
from pipeline.itwin.bodies import BadEncoding, TooLarge
from pipeline.itwin.ratelimit import RateLimiter, parse_rate_hint
from pipeline.itwin.retry import Outcome, backoff_delay, classify_status
from pipeline.itwin.settings import Settings
from pipeline.itwin.stats import CallStats, bump

__all__ = ["Answer", "ApiSession"]

logger = logging.getLogger("pipeline.itwin")


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
    ) -> None:
        self._settings = settings
        self._http = http
        self._auth = auth
        self._totals = totals
        self._rng = random.Random()
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
                raise exhausted_error(result, url, attempt + 1, connection_id)
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
    ) -> Answer | Transient:
        """One attempt under the concurrency bound and the rate budget."""
        async with self._slots:
            await self.limiter.acquire(connection_id)
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return Transient("request deadline reached")
            bump("requests", stats, self._totals)
            try:
                async with asyncio.timeout(min(remaining, self._attempt_limit_s())):
                    response = await fetch_capped(
                        self._http,
                        url,
                        auth=self._auth,
                        max_bytes=self._settings.max_answer_bytes,
                    )
            except (TimeoutError, httpx.TimeoutException):
                return Transient("timed out")
            except httpx.TransportError as exc:
                return Transient(f"connection failed ({type(exc).__name__})")
            except BadEncoding as exc:
                return Transient(f"unreadable answer: {exc}")
            except TooLarge as exc:
                raise too_large_error(url, exc.cap_bytes, connection_id) from None
        return self._judge(response, stats, connection_id, member)

    def _attempt_limit_s(self) -> float:
        """A whole attempt, slow-dripping bodies included, gets connect plus read time."""
        return self._settings.connect_timeout_s + self._settings.read_timeout_s

    def _judge(
        self,
        response: httpx.Response,
        stats: CallStats,
        connection_id: str | None,
        member: str | None,
    ) -> Answer | Transient:
        """Tell the rate budget what the answer says about it, then read the answer."""
        fetched_at = datetime.now(UTC)
        hint = parse_rate_hint(response.headers)
        outcome = classify_status(response.status_code)
        if outcome is Outcome.OK:
            self.limiter.observe(hint, fallback_pause_s=self._settings.backoff_base_s)
        elif outcome is Outcome.THROTTLED:
            bump("throttled", stats, self._totals)
        return read_answer(
            response,
            outcome,
            hint.wait_s,
            fetched_at=fetched_at,
            connection_id=connection_id,
            member=member,
        )

    def _delay(self, failure: Transient, attempt: int) -> float:
        """The service's wait when it gave a sane one, else capped backoff with jitter."""
        if failure.wait_s is not None:
            return failure.wait_s
        return backoff_delay(
            attempt,
            base_s=self._settings.backoff_base_s,
            cap_s=self._settings.backoff_cap_s,
            rng=self._rng,
        )

    def _log_retry(self, url: httpx.URL, failure: Transient, attempt: int, delay: float) -> None:
        logger.warning(
            "GET %s: %s; retry %d of %d in %.2fs",
            url,
            failure.reason,
            attempt + 1,
            self._settings.max_retries,
            delay,
        )
