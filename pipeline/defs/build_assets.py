"""Assets every build runs besides the models: Bentley's error catalogue before them, the
alerts after them."""

from typing import Any

import dagster as dg

from pipeline.alerts import send_alerts
from pipeline.catalog import replace_error_catalog
from pipeline.defs.assets import CORE_GROUP, REPORT_GROUP
from pipeline.defs.resources import ITwinApiResource, WarehouseResource


@dg.asset(group_name=CORE_GROUP, kinds={"duckdb"})
def error_catalog(warehouse: WarehouseResource) -> dg.MaterializeResult[None]:
    """Bentley's connector error catalogue, loaded from the snapshot shipped with the code.

    Also adds a `connections` row for any connection known only from its runs (e.g. runs
    loaded from files), so every build's reports can name what they count.
    """
    with warehouse.open() as store:
        added = store.bookkeeping.connections.add_connections_with_runs()
        rows = replace_error_catalog(store.con)
    return dg.MaterializeResult(metadata={"row_count": rows, "connections_added": added})


@dg.asset(
    deps=["failure_daily", "failure_trend_by_error_code"], group_name=REPORT_GROUP, kinds={"python"}
)
def alerts(
    context: dg.AssetExecutionContext, itwin_api: ITwinApiResource, warehouse: WarehouseResource
) -> dg.MaterializeResult[None]:
    """New findings (spike days, new or rising error codes) posted once each to the webhook
    ITWIN_RUNS_ALERT_WEBHOOK_URL; a failed delivery stays pending for the next build and
    never fails this one. The metadata holds counts, never the URL."""
    settings = itwin_api.settings()
    with warehouse.get_connection() as con:
        report = send_alerts(con, settings.alert_webhook_url)
    if report.problem:
        context.log.warning(report.summary())
    metadata: dict[str, Any] = {
        "findings": report.findings,
        "new": report.new,
        "sent": report.sent,
        "failed": report.failed,
        "pending": report.pending,
        "webhook_configured": report.webhook_configured,
    }
    if report.problem:
        metadata["problem"] = report.problem
    return dg.MaterializeResult(metadata=metadata)
