"""Reading one HTTP answer of the API: the body under the size cap, then what it means.

An answer is a JSON object (`Answer`), a failure worth retrying (`Transient`), or a final,
typed error raised at once; the retry loop in `session` decides what to do with the first two.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from pipeline.itwin.bodies import decoded_response, read_capped
from pipeline.itwin.errors import (
    AnswerTooLargeError,
    ApiError,
    ServiceUnavailableError,
    UnusableAnswerError,
)
from pipeline.itwin.page_parsing import ParsedPage, UnreadableBody, UnusableValue, parse_page
from pipeline.itwin.paging import origin_text
from pipeline.itwin.responses import error_from_response
from pipeline.itwin.retry import Outcome


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
class Transient:
    """A failed attempt worth retrying; ``response`` is None for transport failures."""

    reason: str
    response: httpx.Response | None = None
    wait_s: float | None = None  # what the service asked for, if anything
    throttled: bool = False


async def fetch_capped(
    http: httpx.AsyncClient, url: httpx.URL, *, auth: httpx.Auth, max_bytes: int
) -> httpx.Response:
    """GET with the body read under the answer-size cap (compressed or not)."""
    async with http.stream("GET", url, auth=auth) as streamed:
        body = await read_capped(streamed, max_bytes)
    return decoded_response(streamed, body)


def read_answer(
    response: httpx.Response,
    outcome: Outcome,
    wait_s: float | None,
    *,
    fetched_at: datetime,
    connection_id: str | None,
    member: str | None,
) -> Answer | Transient:
    """What an answer means: success, a retry (waiting ``wait_s`` if the service said),
    or (raised) a final error. With ``member``, bad items of that list are set aside."""
    if outcome is Outcome.OK:
        try:
            page = parse_page(response.content, member)
        except UnreadableBody as exc:
            return Transient(f"unreadable 200 answer: {exc}", response)
        except UnusableValue as exc:
            raise _unusable(response.request.url, exc, connection_id) from None
        return Answer(page=page, fetched_at=fetched_at, url=response.request.url)
    if outcome is Outcome.THROTTLED:
        return Transient("HTTP 429", response, wait_s, throttled=True)
    if outcome is Outcome.RETRY:
        return Transient(f"HTTP {response.status_code}", response, wait_s)
    raise _final_error(response, outcome, connection_id)


def exhausted_error(
    failure: Transient, url: httpx.URL, attempts: int, connection_id: str | None
) -> ApiError:
    """The error for a call that kept failing until retries or the deadline ran out."""
    note = f"gave up after {attempts} attempts"
    response = failure.response
    if response is not None and response.status_code >= 300:
        return error_from_response(response, connection_id=connection_id, note=note)
    # A transport failure, or an unreadable 200: the reason says what went wrong.
    return ServiceUnavailableError(
        message=f"{failure.reason} ({note})",
        status=None if response is None else response.status_code,
        connection_id=connection_id,
        url=str(url),
    )


def too_large_error(url: httpx.URL, cap_bytes: int, connection_id: str | None) -> ApiError:
    """The error for an answer over the size cap (refused unread, not retried)."""
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


def member_list(answer: Answer, member: str, connection_id: str | None) -> list[dict[str, Any]]:
    """The answer's ``member`` list (a list page's items), or an UnexpectedAnswer error."""
    items = answer.body.get(member)
    if not isinstance(items, list):
        raise _unexpected(answer, f"a list page without a {member!r} list", connection_id)
    return items


def member_object(answer: Answer, member: str, connection_id: str | None) -> dict[str, Any]:
    """The answer's ``member`` object (the run, the connection), or an UnexpectedAnswer error."""
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
