"""The webhook URL is a secret: after builds that send, fail, hang or are refused, no log
record (every logger at DEBUG), output, return value, error text or warehouse byte holds it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import httpx
import pytest

from pipeline.alerts import send_alerts
from tests.alerts.support import (
    SECRET_PART,
    Receiver,
    add_days,
    add_trend,
    free_port,
    model_tables,
    serving,
)

NOW = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)


@pytest.fixture
def every_logger_at_debug(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "pipeline", "pipeline.alerts"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def logged_text(caplog: pytest.LogCaptureFixture) -> str:
    parts = []
    for record in caplog.records:
        parts += [record.getMessage(), repr(record.args), repr(record.__dict__)]
    return caplog.text + "\n".join(parts)


def warehouse_text(path: Path) -> str:
    with duckdb.connect(path) as con:
        tables = [
            name for (name,) in con.execute("select table_name from duckdb_tables()").fetchall()
        ]
        return "\n".join(repr(con.execute(f"select * from {t}").fetchall()) for t in tables)


def _ok(receiver: Receiver) -> AbstractContextManager[Receiver]:
    return serving(receiver)


def _failing(receiver: Receiver) -> AbstractContextManager[Receiver]:
    receiver.statuses = [500, 400, 500]
    return serving(receiver)


def _hung(receiver: Receiver) -> AbstractContextManager[Receiver]:
    receiver.hold = threading.Event()
    return serving(receiver)


def _refused(receiver: Receiver) -> AbstractContextManager[Receiver]:
    return nullcontext(receiver)


@pytest.mark.parametrize("behaviour", [_ok, _failing, _hung, _refused])
def test_the_webhook_url_reaches_no_log_output_result_or_warehouse(
    tmp_path: Path,
    every_logger_at_debug: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    behaviour: Callable[[Receiver], AbstractContextManager[Receiver]],
) -> None:
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(path) as con:
        model_tables(con)
        add_days(con, 0, 1)
        add_trend(con, "TAE_X", "rising")
        with behaviour(Receiver(port=free_port())) as receiver:
            reports = [send_alerts(con, receiver.url, now=NOW, timeout_s=0.2) for _ in range(2)]
        con.execute("checkpoint")
    # The capture must see the transport's own debug records, or this test proves nothing.
    assert any(r.name.startswith("httpcore") for r in every_logger_at_debug.records)
    output = capsys.readouterr()
    for text in (
        logged_text(every_logger_at_debug),
        output.out + output.err,
        repr(reports) + "".join(r.summary() for r in reports),
        warehouse_text(path),
    ):
        assert SECRET_PART not in text
    assert SECRET_PART.encode() not in path.read_bytes()


@pytest.mark.parametrize(
    "bad_url",
    [
        f"ftp://hooks.example/{SECRET_PART}",
        f"hooks.example/services/{SECRET_PART}",
        f"http:///{SECRET_PART}",
        f"https://hooks\x00.example/{SECRET_PART}",
        f"https://[::1/{SECRET_PART}",
    ],
)
def test_a_malformed_url_is_reported_without_showing_it(
    every_logger_at_debug: pytest.LogCaptureFixture, bad_url: str
) -> None:
    with duckdb.connect() as con:
        model_tables(con)
        add_days(con, 0)
        report = send_alerts(con, bad_url, now=NOW)
        stored = con.execute("select * from alert_log").fetchall()
    assert report.problem is not None and "ITWIN_RUNS_ALERT_WEBHOOK_URL" in report.problem
    assert SECRET_PART not in logged_text(every_logger_at_debug) + repr(report) + repr(stored)


def test_an_error_that_carries_the_url_is_reported_by_kind_only(
    every_logger_at_debug: pytest.LogCaptureFixture,
) -> None:
    def leaky(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot reach {request.url}", request=request)

    with duckdb.connect() as con:
        model_tables(con)
        add_days(con, 0)
        url = f"https://hooks.example/services/{SECRET_PART}"
        report = send_alerts(con, url, now=NOW, transport=httpx.MockTransport(leaky))
        stored = con.execute("select * from alert_log").fetchall()
    assert report.problem == "last POST: no answer (ConnectError)"
    assert SECRET_PART not in logged_text(every_logger_at_debug) + repr(report) + repr(stored)


def test_the_capture_would_see_the_url_an_httpx_client_logs(
    every_logger_at_debug: pytest.LogCaptureFixture, receiver: Receiver
) -> None:
    # Why alerts bypass the client: its request line names the URL at INFO.
    with httpx.Client() as client:
        client.post(receiver.url, json={"text": "hello"})
    assert SECRET_PART in logged_text(every_logger_at_debug)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with serving(Receiver(port=free_port())) as running:
        yield running
