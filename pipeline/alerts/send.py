"""The one call after the models are built: log new findings, POST what is pending, report counts.

Without a webhook URL nothing is written or sent: findings are only counted, so setting
the URL later alerts on what is current then, not on a backlog of stale days. Delivery
never raises and takes bounded time: one short timeout per POST, no retries inside a
build, and the rest left pending once the receiver stops answering.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import duckdb
import httpx

from pipeline.alerts.findings import Finding, current_findings
from pipeline.alerts.log import (
    ALERT_LOG,
    ensure_alert_log,
    is_alerted,
    pending,
    record_attempt,
    record_new,
)
from pipeline.alerts.webhook import (
    DEFAULT_TIMEOUT_S,
    WebhookUrlError,
    checked_url,
    make_transport,
    post_text,
)
from pipeline.itwin.settings import Secret

log = logging.getLogger("pipeline.alerts")


@dataclass(frozen=True)
class AlertReport:
    """What one build did about alerts; holds no URL."""

    findings: int
    """Current findings (spike days in the recent window, new or rising codes)."""
    new: int
    """Findings not alerted before (logged as pending this build when a URL is set)."""
    webhook_configured: bool
    sent: int = 0
    """Alerts delivered this build (new ones and earlier pending ones)."""
    failed: int = 0
    """POSTs that failed this build."""
    pending: int = 0
    """Alerts still undelivered after this build; they are sent at the next one."""
    problem: str | None = None
    """Why delivery did not happen or stopped (last failure, or a bad URL), if it did."""

    def summary(self) -> str:
        found = f"alerts: {self.findings} finding{'' if self.findings == 1 else 's'}"
        if not self.webhook_configured:
            return f"{found}, {self.new} not alerted before; nothing sent (no webhook URL set)"
        text = f"{found}, {self.new} new, {self.sent} sent, {self.pending} pending"
        return f"{text} ({self.problem})" if self.problem else text


def send_alerts(
    con: duckdb.DuckDBPyConnection,
    webhook_url: str | Secret | None,
    *,
    now: datetime | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    transport: httpx.BaseTransport | None = None,
) -> AlertReport:
    """Alert on the findings of the models in `con` not alerted before; see the module doc.

    `transport` replaces the HTTP transport (tests); by default a fresh one honouring
    proxy variables is used and closed.
    """
    at = now or datetime.now(UTC)
    findings = current_findings(con)
    url = webhook_url.reveal() if isinstance(webhook_url, Secret) else webhook_url
    if not url:
        unalerted = _count_unalerted(con, findings)
        return AlertReport(findings=len(findings), new=unalerted, webhook_configured=False)
    ensure_alert_log(con)
    report = AlertReport(
        findings=len(findings), new=len(record_new(con, findings, at)), webhook_configured=True
    )
    try:
        target = checked_url(url)
        http = make_transport(target) if transport is None else transport
    except Exception as exc:  # a bad URL or proxy setting must not fail the build
        reason = str(exc) if isinstance(exc, WebhookUrlError) else _transport_problem(exc)
        log.warning("alerts not sent: %s", reason)
        return replace(report, pending=len(pending(con)), problem=reason)
    try:
        sent, failed, problem = _deliver(con, http, target, at, timeout_s)
    finally:
        if transport is None:
            http.close()
    return replace(report, sent=sent, failed=failed, pending=len(pending(con)), problem=problem)


def _deliver(
    con: duckdb.DuckDBPyConnection,
    http: httpx.BaseTransport,
    url: httpx.URL,
    at: datetime,
    timeout_s: float,
) -> tuple[int, int, str | None]:
    sent = failed = 0
    problem = None
    waiting = pending(con)
    for position, alert in enumerate(waiting):
        delivery = post_text(http, url, alert.text, timeout_s=timeout_s)
        record_attempt(
            con, alert.finding_key, at=at, delivered=delivery.delivered, status=delivery.status
        )
        if delivery.delivered:
            sent += 1
            log.info("alert %s sent", alert.finding_key)
            continue
        failed += 1
        problem = f"last POST: {delivery.status}"
        log.warning(
            "alert %s not delivered (%s); it stays pending for the next build",
            alert.finding_key,
            delivery.status,
        )
        if delivery.receiver_down:
            left = len(waiting) - position - 1
            if left:
                log.warning("the webhook is not taking messages; %d more left pending", left)
            break
    return sent, failed, problem


def _transport_problem(exc: Exception) -> str:
    # The error text may quote a proxy address with its password, so only its kind is told.
    return (
        f"no HTTP transport ({type(exc).__name__}); check the proxy and certificate "
        "settings (HTTPS_PROXY, NO_PROXY, SSL_CERT_FILE)"
    )


def _count_unalerted(con: duckdb.DuckDBPyConnection, findings: list[Finding]) -> int:
    exists = con.execute(
        """
        select count(*) from information_schema.tables
        where table_catalog = current_database() and table_schema = current_schema()
            and table_name = ?
        """,
        [ALERT_LOG],
    ).fetchone()
    if not exists or not exists[0]:
        return len(findings)
    return sum(not is_alerted(con, finding) for finding in findings)
