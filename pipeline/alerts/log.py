"""`alert_log`: the findings alerted on, kept in the warehouse so each is sent once.

A row is written when a finding is first seen with a webhook configured; `sent_at`
stays NULL (pending) until a POST is answered with a 2xx, so a failed delivery is
retried at the next build. Nothing here holds the webhook URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb

from pipeline.alerts.findings import Finding

ALERT_LOG = "alert_log"

# A trend alert for a code is not repeated while one with the same trend went out for
# an as_of_day in these days before; a still-rising code is news again a week later.
TREND_QUIET_DAYS = 7

ALERT_LOG_DDL = f"""
create table if not exists {ALERT_LOG} (
    finding_key varchar primary key,
    kind varchar not null,
    day date,
    error_code varchar,
    trend varchar,
    as_of_day date not null,
    text varchar not null,
    first_found_at timestamp with time zone not null,
    sent_at timestamp with time zone,
    attempts integer not null default 0,
    last_attempt_at timestamp with time zone,
    last_status varchar
)
"""


@dataclass(frozen=True)
class PendingAlert:
    finding_key: str
    text: str


def ensure_alert_log(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(ALERT_LOG_DDL)


def is_alerted(con: duckdb.DuckDBPyConnection, finding: Finding) -> bool:
    """Whether the finding, or one it repeats, is already in the log (sent or pending)."""
    if finding.kind == "spike":
        row = con.execute(
            f"select 1 from {ALERT_LOG} where kind = 'spike' and day = ?", [finding.day]
        ).fetchone()
    else:
        row = con.execute(
            f"""
            select 1 from {ALERT_LOG}
            where kind = 'trend' and error_code = ? and trend = ? and as_of_day >= ?
            """,
            [finding.error_code, finding.trend, finding.as_of_day - timedelta(TREND_QUIET_DAYS)],
        ).fetchone()
    return row is not None


def record_new(
    con: duckdb.DuckDBPyConnection, findings: list[Finding], found_at: datetime
) -> list[Finding]:
    """Log the findings not alerted before, as pending; returns them.

    No transaction of its own, so a caller may hold one; a build stopped half-way
    logs the rest next time.
    """
    new = [finding for finding in findings if not is_alerted(con, finding)]
    if new:
        con.executemany(
            f"""
            insert into {ALERT_LOG}
                (finding_key, kind, day, error_code, trend, as_of_day, text, first_found_at)
            values (?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [
                [f.key, f.kind, f.day, f.error_code, f.trend, f.as_of_day, f.text, found_at]
                for f in new
            ],
        )
    return new


def pending(con: duckdb.DuckDBPyConnection) -> list[PendingAlert]:
    """Alerts not yet delivered, oldest first."""
    rows = con.execute(
        f"""
        select finding_key, text from {ALERT_LOG}
        where sent_at is null
        order by first_found_at, finding_key
        """
    ).fetchall()
    return [PendingAlert(finding_key=key, text=text) for key, text in rows]


def record_attempt(
    con: duckdb.DuckDBPyConnection,
    finding_key: str,
    *,
    at: datetime,
    delivered: bool,
    status: str,
) -> None:
    con.execute(
        f"""
        update {ALERT_LOG}
        set attempts = attempts + 1,
            last_attempt_at = ?,
            last_status = ?,
            sent_at = case when ? then ? else sent_at end
        where finding_key = ?
        """,
        [at, status, delivered, at, finding_key],
    )
