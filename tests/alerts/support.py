"""Hand-made model tables with the contract's columns, and a loopback webhook receiver."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import duckdb

AS_OF = date(2026, 12, 6)
SECRET_PART = "canary-hook-9f8e7d6c5b"

FAILURE_DAILY_DDL = """
create table failure_daily (
    day date, completed_runs bigint, failed_runs bigint,
    run_failure_rate double, run_failure_rate_low double, run_failure_rate_high double,
    completed_tasks bigint, failed_tasks bigint,
    task_failure_rate double, task_failure_rate_low double, task_failure_rate_high double,
    baseline_completed_tasks bigint, baseline_failed_tasks bigint,
    baseline_task_failure_rate double, baseline_task_failure_rate_low double,
    baseline_task_failure_rate_high double,
    is_spike boolean
)
"""

TREND_DDL = """
create table failure_trend_by_error_code (
    error_code varchar, as_of_day date,
    recent_failed_tasks bigint, recent_completed_tasks bigint,
    recent_failure_rate double, recent_failure_rate_low double, recent_failure_rate_high double,
    prior_failed_tasks bigint, prior_completed_tasks bigint,
    prior_failure_rate double, prior_failure_rate_low double, prior_failure_rate_high double,
    trend varchar
)
"""


def model_tables(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    con.execute(FAILURE_DAILY_DDL)
    con.execute(TREND_DDL)
    return con


def add_day(
    con: duckdb.DuckDBPyConnection,
    day: date,
    *,
    spike: bool = False,
    completed: int = 40,
    failed: int = 7,
    rate: tuple[float, float, float] = (0.175, 0.0875, 0.3194),
    baseline: tuple[float, float, float] = (0.05, 0.04, 0.062),
    baseline_completed: int = 1200,
) -> None:
    con.execute(
        "insert into failure_daily values"
        " (?, 10, 2, 0.2, 0.06, 0.51, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [day, completed, failed, *rate, baseline_completed, 60, *baseline, spike],
    )


def add_days(con: duckdb.DuckDBPyConnection, *spike_offsets: int, last: date = AS_OF) -> None:
    """Every day of the 40 ending at `last`, a spike on the days `last - offset`."""
    for back in range(40):
        add_day(con, last - timedelta(back), spike=back in spike_offsets)


def add_trend(
    con: duckdb.DuckDBPyConnection,
    code: str,
    trend: str,
    *,
    as_of: date = AS_OF,
    recent: tuple[int, int, float, float, float] = (48, 400, 0.12, 0.0917, 0.1556),
    prior: tuple[int, int, float, float, float] = (48, 1600, 0.03, 0.0227, 0.0395),
) -> None:
    con.execute(
        "insert into failure_trend_by_error_code values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [code, as_of, *recent, *prior, trend],
    )


def move_to(con: duckdb.DuckDBPyConnection, as_of: date, *, spikes: tuple[int, ...] = ()) -> None:
    """Rebuild the models as of a later day, as the next build would."""
    con.execute("delete from failure_daily")
    con.execute("delete from failure_trend_by_error_code")
    add_days(con, *spikes, last=as_of)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@dataclass
class Receiver:
    """What a webhook receiver got, and what it answers next (200 once the list is used up)."""

    port: int
    statuses: list[int] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    hold: threading.Event | None = None  # when set, answers wait for it (a receiver that hangs)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/services/T0001/B0002/{SECRET_PART}"

    @property
    def texts(self) -> list[str]:
        return [body["text"] for body in self.bodies]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length))
            if receiver.hold is not None:
                receiver.hold.wait(10)
            status = receiver.statuses.pop(0) if receiver.statuses else 200
            if status < 300:
                receiver.bodies.append(body)
                receiver.paths.append(self.path)
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def serving(receiver: Receiver) -> Iterator[Receiver]:
    server = ThreadingHTTPServer(("127.0.0.1", receiver.port), _handler(receiver))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        if receiver.hold is not None:
            receiver.hold.set()
        server.shutdown()
        server.server_close()
        thread.join(5)
