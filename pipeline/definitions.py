"""The one place the Dagster Definitions are assembled (loaded by workspace.yaml)."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from pipeline.collection import NoProgress, Progress
from pipeline.defs.assets import collection, html_report, models_asset, parquet_reports
from pipeline.defs.build_assets import alerts, error_catalog
from pipeline.defs.checks import all_checks
from pipeline.defs.jobs import DEFAULT_CRON, collect_job, collect_schedule, report_job
from pipeline.defs.resources import ITwinApiResource, WarehouseResource
from pipeline.warehouse import WAREHOUSE_FILE


def build_definitions(
    data_dir: Path | None = None,
    itwin_api: ITwinApiResource | None = None,
    cron: str | None = None,
    progress: Progress | None = None,
    lock_timeout_s: float = 30.0,
) -> dg.Definitions:
    """Definitions for a data directory; the CLI and tests pass theirs explicitly.

    The defaults follow ITWIN_RUNS_DATA_DIR and ITWIN_RUNS_SCHEDULE_CRON when the code
    location loads (Dagster reloads it on change); API settings and secrets are read
    by the resource only when a run starts. `progress` also hears how the collection
    advances (the CLI's terminal bars); the asset logs it to Dagster either way.
    `lock_timeout_s`: how long each step waits for another process's warehouse lock.
    """
    data_dir = data_dir or Path(os.environ.get("ITWIN_RUNS_DATA_DIR") or "data")
    return dg.Definitions(
        assets=[collection, error_catalog, models_asset(), parquet_reports, html_report, alerts],
        asset_checks=all_checks(),
        jobs=[collect_job, report_job],
        schedules=[
            collect_schedule(cron or os.environ.get("ITWIN_RUNS_SCHEDULE_CRON") or DEFAULT_CRON)
        ],
        resources={
            "itwin_api": itwin_api or ITwinApiResource(),
            "warehouse": WarehouseResource(
                database=str(data_dir / WAREHOUSE_FILE), lock_timeout_s=lock_timeout_s
            ),
            "collection_progress": progress or NoProgress(),
        },
    )


defs = build_definitions()
