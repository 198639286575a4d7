"""Counters of what a piece of work cost in requests, retries, 429s and pages."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class CallStats:
    """Counters for one logical piece of work (e.g. one connection's collection).

    ``requests`` counts every attempt sent to the API (retries included, token
    requests and the one auth replay after a 401 excluded); ``retries`` the attempts
    after the first of each call; ``throttled`` the 429 answers; ``pages`` the list
    pages received (runs and connections lists).
    """

    requests: int = 0
    retries: int = 0
    throttled: int = 0  # 429 answers received
    pages: int = 0

    def add(self, other: CallStats) -> None:
        self.requests += other.requests
        self.retries += other.retries
        self.throttled += other.throttled
        self.pages += other.pages


def bump(field: str, *targets: CallStats) -> None:
    """Add one to ``field`` of each distinct target (a caller may pass the totals itself)."""
    for target in {id(t): t for t in targets}.values():
        setattr(target, field, getattr(target, field) + 1)
