"""The job over the whole graph and its schedule."""

from __future__ import annotations

from typing import Any

import dagster as dg

from pipeline.defs.assets import MODELS_OP

DEFAULT_CRON = "0 * * * *"  # hourly

collect_job = dg.define_asset_job(
    "collect_job",
    selection=dg.AssetSelection.all(),
    description="Fetch, flatten, load, build the SQL models and write the reports.",
)


def collect_schedule(cron: str = DEFAULT_CRON) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name="collect_schedule",
        job=collect_job,
        cron_schedule=cron,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )


# Models and reports only (with the catalogue they read and the alerts they raise):
# rebuild from the warehouse without calling the API.
report_job = dg.define_asset_job(
    "report_job",
    selection=dg.AssetSelection.groups("models", "reports")
    | dg.AssetSelection.assets("error_catalog"),
    description="Rebuild the SQL models and reports from what the warehouse holds.",
)


REPORT_ASSETS = ("parquet_reports", "html_report")


def full_build_run_config() -> dict[str, Any]:
    """Run config for report_job or collect_job that rebuilds every model and rewrites every
    report, whatever was built before (in the launchpad: `full: true` on those ops)."""
    return {"ops": {name: {"config": {"full": True}} for name in (MODELS_OP, *REPORT_ASSETS)}}
