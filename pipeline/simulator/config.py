"""Settings of the simulated Export API: the data set's size and shape, and the faults it injects.

`Faults` stays mutable on purpose: tests flip faults on a running server to watch a client react.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

RunOrder = Literal["newest_first", "oldest_first", "unordered"]

# The default simulated "now": fixed, so a seed always yields the same data set.
DEFAULT_START = datetime(2025, 1, 15, 12, 0, 0, tzinfo=UTC)


@dataclass
class Faults:
    """What goes wrong, and how often. Rates are probabilities per API request.

    Random faults are drawn from `seed`, the request's path and query, and how many times that
    same URL was asked before, so a retry gets a fresh draw and a run is reproducible whatever
    the order concurrent requests arrive in.

    Order of checks on an API call: latency, auth (401), rate limits per minute and per hour
    (429 with Retry-After, iTwinPlatform-RateLimit-Retry-After-Seconds and x-ratelimit-*),
    per-connection sets (404 unknown, 403 forbidden, 429 or 503 permanent), then one random
    fault: drop (half before any byte, half mid-body; half of each a TCP reset), 5xx (500
    JSON, 502 HTML, 503 text, 504 empty), truncated or HTML body on a 200, or a drip;
    `slow_rate` adds `slow_seconds` on top. The token endpoint only sees latency,
    `token_endpoint_failures` (503s) and `token_endpoint_throttled_s` (429s). Every request
    lands in `sim.requests`.
    """

    rate_limit_per_minute: float | None = None
    # The platform's hourly cap (the Community tier has 5,000): past it, a 429 whose wait runs
    # until the oldest call of the last hour leaves the window.
    rate_limit_per_hour: float | None = None
    # None: Retry-After is the integer seconds to wait. Otherwise a literal form to send:
    # "http-date", "past-date", "missing", or the header value itself ("0", "-5", "garbage", ...).
    retry_after: str | None = None
    error_5xx_rate: float = 0.0
    slow_rate: float = 0.0
    slow_seconds: float = 2.0
    drip_rate: float = 0.0
    truncated_rate: float = 0.0
    non_json_rate: float = 0.0
    drop_rate: float = 0.0
    latency_s: float = 0.0
    forbidden_connections: set[str] = field(default_factory=set)
    unknown_connections: set[str] = field(default_factory=set)
    permanent_5xx_connections: set[str] = field(default_factory=set)
    permanent_429_connections: set[str] = field(default_factory=set)
    foreign_next_link: str | None = None
    token_endpoint_failures: int = 0
    # Set: the token endpoint answers 429 asking for this many seconds (both wait headers).
    token_endpoint_throttled_s: float | None = None
    seed: int = 0
    # Finer controls: the rate limit's window, and how a drip is paced (at most about 20
    # chunks of at least drip_chunk_bytes, drip_interval_s apart).
    rate_limit_window_s: float = 60.0
    drip_chunk_bytes: int = 512
    drip_interval_s: float = 0.05


@dataclass
class SimulatorConfig:
    """The data set (sizes and seed), paging, auth and clock of one simulator."""

    seed: int = 7
    connections: int = 6
    imodels: int = 2
    runs_per_connection: int = 60
    page_cap: int = 50
    malformed_next_links: bool = True
    order: RunOrder = "newest_first"
    token_lifetime_s: float = 3600.0
    # Credentials of the simulator only; tests pass canary values to trace leaks.
    static_token: str = "sim-static-token-7f3a9c"  # noqa: S105
    client_id: str = "sim-client"
    client_secret: str = "sim-secret-d41d8cd9"  # noqa: S105
    # None: simulated time moves only through world.advance(). Otherwise simulated seconds per
    # wall-clock second (what `itwin-runs simulate` uses).
    realtime_speed: float | None = None
    faults: Faults = field(default_factory=Faults)
    # Beyond the interface the client tests rely on:
    # mean simulated time between two runs of one connection (how many runs advance() adds),
    run_interval_s: float = 6 * 3600.0
    # the simulated "now" at start, and the scope issued tokens carry.
    start_time: datetime = DEFAULT_START
    scope: str = "itwin-platform"
    # Tell the demo's story (pipeline.simulator.story): in the last week before start_time one
    # error kind rises, a new one appears and one day spikes; off, every day is alike.
    story: bool = False
