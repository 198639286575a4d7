"""One exception family for everything the Export API client can report.

Each error carries the HTTP status, the API's error code and message, its details
and the connection it concerns, so a caller can tell "no permission on connection X"
from "the service is down". Messages never contain tokens or secrets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipeline.errors import ITwinRunsError


def describe_failure(status: int | None, code: str | None, message: str | None) -> str:
    """How a failed connection is named to users: HTTP status, the API's code and message."""
    head = f"HTTP {status}" if status is not None else "no HTTP status"
    return f"{head}, {code or 'no API error code'}: {message or ''}"


class InvalidIdError(ITwinRunsError, ValueError):
    """An id that cannot safely be put in a URL path; raised before any request."""

    def __init__(self, parameter: str, reason: str) -> None:
        self.parameter = parameter
        self.reason = reason
        super().__init__(f"invalid {parameter}: {reason}")


@dataclass(frozen=True)
class ErrorDetail:
    code: str | None
    message: str | None
    target: str | None = None


@dataclass
class ApiError(ITwinRunsError):
    """The API (or the way to it) failed for good after any retries."""

    message: str
    status: int | None = None
    code: str | None = None
    target: str | None = None
    details: tuple[ErrorDetail, ...] = ()
    connection_id: str | None = None
    url: str | None = None  # never contains credentials
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        parts = []
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        if self.code:
            parts.append(self.code)
        head = " ".join(parts)
        where = f" (connection {self.connection_id})" if self.connection_id else ""
        return f"{head}: {self.message}{where}" if head else f"{self.message}{where}"


class AuthenticationError(ApiError):
    """401 that a token renewal did not cure, or the token endpoint refused us."""


class PermissionDeniedError(ApiError):
    """403: the service app has no access to this connection's iTwin."""


class NotFoundError(ApiError):
    """404: unknown connection or run."""


class InvalidRequestError(ApiError):
    """400/422: the API rejected the request itself."""


class RateLimitedError(ApiError):
    """429 still answered after the bounded retries."""


class ServiceUnavailableError(ApiError):
    """5xx, timeouts, resets or unreadable bodies still failing after retries."""


class PagingError(ApiError):
    """A next link we refuse to follow (foreign origin) or a paging loop."""


class WaitTooLongError(ApiError):
    """The next request would have to wait longer than ITWIN_MAX_WAIT_S; nothing was sent.

    ``reason`` is ``HTTP 429`` (the API asked for the wait) or ``hourly budget`` (our own
    ITWIN_RATE_LIMIT_PER_HOUR); ``wait_s`` is the wait in seconds. Once raised, every later
    request of the same client fails fast with it, so a collection stops instead of hammering.
    """

    @classmethod
    def build(
        cls, reason: str, wait_s: float, max_wait_s: float, connection_id: str | None = None
    ) -> WaitTooLongError:
        asked = "the API asked to wait" if reason == "HTTP 429" else "the next request would wait"
        return cls(
            message=(
                f"stopped: {reason}, {asked} {wait_s:.0f} s (ITWIN_MAX_WAIT_S is {max_wait_s:g})"
            ),
            # No status or code: str() is then the summary line itself.
            connection_id=connection_id,
            extra={"reason": reason, "wait_s": wait_s, "max_wait_s": max_wait_s},
        )

    @property
    def reason(self) -> str:
        return str(self.extra.get("reason", ""))

    @property
    def wait_s(self) -> float:
        return float(self.extra.get("wait_s", 0.0))


class AnswerTooLargeError(ApiError):
    """An answer inflated past the max_answer_mb cap; refused unread and not retried."""


class UnusableAnswerError(ApiError):
    """A complete answer (e.g. one run) holding a value JSON cannot carry; not retried.

    ``raw`` is the answer's text and ``reason`` where and why, as the quarantine wants them;
    neither is part of the message, which stays one line.
    """

    raw: str = ""
    reason: str = ""
