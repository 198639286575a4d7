from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import duckdb
import httpx
import pytest

from pipeline.alerts import current_findings, send_alerts
from pipeline.itwin.settings import Secret
from tests.alerts.support import (
    AS_OF,
    Receiver,
    add_days,
    add_trend,
    free_port,
    move_to,
    serving,
)
from tests.models.builders import mixed_warehouse

NOW = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)


def log_rows(con: duckdb.DuckDBPyConnection) -> list[tuple[object, ...]]:
    return con.execute(
        "select finding_key, sent_at is not null, attempts, last_status from alert_log"
        " order by finding_key"
    ).fetchall()


def test_each_finding_is_posted_once_as_a_text_message(
    con: duckdb.DuckDBPyConnection, receiver: Receiver
) -> None:
    add_days(con, 2)
    add_trend(con, "TAE_X", "rising")
    report = send_alerts(con, receiver.url, now=NOW)
    assert receiver.texts == [f.text for f in current_findings(con)]
    assert all(set(body) == {"text"} for body in receiver.bodies)
    assert (report.findings, report.new, report.sent, report.failed, report.pending) == (
        2,
        2,
        2,
        0,
        0,
    )
    assert log_rows(con) == [
        (f"spike:{AS_OF - timedelta(2)}", True, 1, "HTTP 200"),
        (f"trend:TAE_X:rising:{AS_OF}", True, 1, "HTTP 200"),
    ]


def test_the_next_build_sends_nothing_already_sent(
    con: duckdb.DuckDBPyConnection, receiver: Receiver
) -> None:
    add_days(con, 2)
    add_trend(con, "TAE_X", "new")
    send_alerts(con, receiver.url, now=NOW)
    again = send_alerts(con, receiver.url, now=NOW + timedelta(hours=1))
    assert len(receiver.bodies) == 2
    assert (again.findings, again.new, again.sent, again.pending) == (2, 0, 0, 0)


def test_a_spike_day_is_sent_once_while_it_stays_in_the_window(
    con: duckdb.DuckDBPyConnection, receiver: Receiver
) -> None:
    add_days(con, 0)
    send_alerts(con, receiver.url, now=NOW)
    move_to(con, AS_OF + timedelta(3), spikes=(3, 1))  # the same day, and a new one
    send_alerts(con, receiver.url, now=NOW + timedelta(days=3))
    assert [t.split(":")[0] for t in receiver.texts] == [
        f"Task failure spike on {AS_OF}",
        f"Task failure spike on {AS_OF + timedelta(2)}",
    ]


def test_an_alert_the_receiver_refuses_with_500_is_sent_at_the_next_build(
    con: duckdb.DuckDBPyConnection, receiver: Receiver
) -> None:
    add_days(con, 0)
    receiver.statuses = [500]
    failed = send_alerts(con, receiver.url, now=NOW)
    assert (failed.sent, failed.failed, failed.pending) == (0, 1, 1)
    assert failed.summary() == "alerts: 1 finding, 1 new, 0 sent, 1 pending (last POST: HTTP 500)"
    assert log_rows(con) == [(f"spike:{AS_OF}", False, 1, "HTTP 500")]
    recovered = send_alerts(con, receiver.url, now=NOW + timedelta(hours=1))
    assert (recovered.new, recovered.sent, recovered.pending) == (0, 1, 0)
    assert log_rows(con) == [(f"spike:{AS_OF}", True, 2, "HTTP 200")]
    send_alerts(con, receiver.url, now=NOW + timedelta(hours=2))
    assert len(receiver.bodies) == 1


def test_alerts_wait_while_nothing_listens_and_go_once_it_does(
    con: duckdb.DuckDBPyConnection,
) -> None:
    add_days(con, 0, 1)
    add_trend(con, "TAE_X", "rising")
    down = Receiver(port=free_port())
    report = send_alerts(con, down.url, now=NOW)
    # The first refused connection leaves the rest for the next build.
    assert (report.new, report.sent, report.failed, report.pending) == (3, 0, 1, 3)
    assert report.problem == "last POST: no answer (ConnectError)"
    with serving(down) as up:
        recovered = send_alerts(con, up.url, now=NOW + timedelta(hours=1))
        send_alerts(con, up.url, now=NOW + timedelta(hours=2))
    assert (recovered.sent, recovered.pending) == (3, 0)
    assert sorted(up.texts) == sorted(f.text for f in current_findings(con))


def test_a_receiver_that_does_not_answer_leaves_the_alert_pending(
    con: duckdb.DuckDBPyConnection,
) -> None:
    add_days(con, 0)
    with serving(Receiver(port=free_port(), hold=threading.Event())) as hung:
        report = send_alerts(con, hung.url, now=NOW, timeout_s=0.2)
    assert (report.sent, report.pending) == (0, 1)
    assert report.problem == "last POST: no answer within 0.2 s"


def test_a_message_the_receiver_rejects_does_not_hold_up_the_others(
    con: duckdb.DuckDBPyConnection, receiver: Receiver
) -> None:
    add_days(con, 0, 1)
    receiver.statuses = [400]
    report = send_alerts(con, receiver.url, now=NOW)
    assert (report.sent, report.failed, report.pending) == (1, 1, 1)


def test_a_rate_limited_receiver_is_not_pressed_for_the_rest(
    con: duckdb.DuckDBPyConnection, receiver: Receiver
) -> None:
    add_days(con, 0, 1)
    receiver.statuses = [429]
    report = send_alerts(con, receiver.url, now=NOW)
    assert (report.sent, report.failed, report.pending) == (0, 1, 2)


def test_a_failing_transport_never_fails_the_build(con: duckdb.DuckDBPyConnection) -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("unexpected")

    add_days(con, 0)
    report = send_alerts(
        con, "https://hooks.example/x", now=NOW, transport=httpx.MockTransport(broken)
    )
    assert (report.sent, report.pending, report.problem) == (
        0,
        1,
        "last POST: not sent (RuntimeError)",
    )


def test_a_trend_alerted_in_the_7_days_before_is_not_sent_again_and_is_after(
    con: duckdb.DuckDBPyConnection, receiver: Receiver
) -> None:
    add_trend(con, "TAE_X", "rising")
    send_alerts(con, receiver.url, now=NOW)
    for later in (1, 7, 8, 9, 15, 16):
        con.execute("delete from failure_trend_by_error_code")
        add_trend(con, "TAE_X", "rising", as_of=AS_OF + timedelta(later))
        send_alerts(con, receiver.url, now=NOW + timedelta(days=later))
    assert [t.split("to ")[1][:10] for t in receiver.texts] == [
        str(AS_OF),
        str(AS_OF + timedelta(8)),
        str(AS_OF + timedelta(16)),
    ]


def test_a_code_that_turns_from_new_to_rising_is_news(
    con: duckdb.DuckDBPyConnection, receiver: Receiver
) -> None:
    add_trend(con, "TAE_X", "new")
    send_alerts(con, receiver.url, now=NOW)
    con.execute("delete from failure_trend_by_error_code")
    add_trend(con, "TAE_X", "rising", as_of=AS_OF + timedelta(1))
    send_alerts(con, receiver.url, now=NOW + timedelta(days=1))
    assert [t.split(":")[0] for t in receiver.texts] == [
        "Error code TAE_X is new",
        "Error code TAE_X is rising",
    ]


@pytest.mark.parametrize("no_url", [None, ""])
def test_nothing_is_sent_or_written_without_a_url(
    con: duckdb.DuckDBPyConnection, receiver: Receiver, no_url: str | None
) -> None:
    add_days(con, 0)
    add_trend(con, "TAE_X", "rising")
    report = send_alerts(con, no_url, now=NOW)
    assert (report.webhook_configured, report.findings, report.new, report.sent) == (
        False,
        2,
        2,
        0,
    )
    assert report.summary() == (
        "alerts: 2 findings, 2 not alerted before; nothing sent (no webhook URL set)"
    )
    assert not con.execute(
        "select 1 from duckdb_tables() where table_name = 'alert_log'"
    ).fetchall()
    assert receiver.bodies == []


def test_without_a_url_findings_already_alerted_are_not_counted_as_new(
    con: duckdb.DuckDBPyConnection, receiver: Receiver
) -> None:
    add_days(con, 0)
    send_alerts(con, receiver.url, now=NOW)
    add_trend(con, "TAE_X", "rising")
    assert send_alerts(con, None, now=NOW).new == 1


def test_the_url_may_come_as_a_secret(con: duckdb.DuckDBPyConnection, receiver: Receiver) -> None:
    add_days(con, 0)
    assert send_alerts(con, Secret(receiver.url), now=NOW).sent == 1


def test_a_url_that_is_not_http_keeps_alerts_pending_and_says_what_to_set(
    con: duckdb.DuckDBPyConnection,
) -> None:
    add_days(con, 0)
    report = send_alerts(con, "hooks.slack.com/services/x", now=NOW)
    assert (report.new, report.sent, report.pending) == (1, 0, 1)
    assert report.problem is not None and "ITWIN_RUNS_ALERT_WEBHOOK_URL" in report.problem


def test_an_old_warehouse_without_the_models_sends_nothing(receiver: Receiver) -> None:
    with duckdb.connect() as old:
        report = send_alerts(old, receiver.url, now=NOW)
        assert (report.findings, report.sent) == (0, 0)
        assert old.execute("select count(*) from alert_log").fetchone() == (0,)
    assert receiver.bodies == []


def test_texts_from_the_api_cannot_ping_a_channel(
    con: duckdb.DuckDBPyConnection, receiver: Receiver
) -> None:
    add_trend(con, "<!channel> & co", "new")
    send_alerts(con, receiver.url, now=NOW)
    assert receiver.texts[0].startswith("Error code &lt;!channel&gt; &amp; co is new")
    stored = con.execute("select text from alert_log").fetchone()
    assert stored is not None and stored[0].startswith("Error code <!channel> & co is new")


def test_when_it_was_found_and_sent_is_kept(
    con: duckdb.DuckDBPyConnection, receiver: Receiver
) -> None:
    add_days(con, 0)
    receiver.statuses = [503]
    send_alerts(con, receiver.url, now=NOW)
    send_alerts(con, receiver.url, now=NOW + timedelta(hours=1))
    row = con.execute(
        "select kind, day, as_of_day, first_found_at, sent_at, last_attempt_at from alert_log"
    ).fetchone()
    assert row == (
        "spike",
        AS_OF,
        AS_OF,
        NOW,
        NOW + timedelta(hours=1),
        NOW + timedelta(hours=1),
    )


def test_a_warehouse_built_by_the_sql_models_alerts_on_its_findings_once(
    receiver: Receiver,
) -> None:
    # Whatever version of the models is built: before spikes and trends existed this is
    # an old warehouse with no findings; after, it has codes that are all `new`.
    with mixed_warehouse().build() as built:
        findings = current_findings(built)
        first = send_alerts(built, receiver.url, now=NOW)
        second = send_alerts(built, receiver.url, now=NOW + timedelta(hours=1))
    assert receiver.texts == [f.text for f in findings]
    assert (first.sent, second.sent, second.pending) == (len(findings), 0, 0)


def test_a_proxy_setting_that_cannot_be_used_keeps_alerts_pending(
    con: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "socks9://user:pw-canary@proxy.example:1080")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    add_days(con, 0)
    report = send_alerts(con, "https://hooks.example/services/x", now=NOW)
    assert (report.sent, report.pending) == (0, 1)
    assert report.problem is not None and "HTTPS_PROXY" in report.problem
    assert "pw-canary" not in report.problem
