"""A child process for crash trials: one whole collection (fetch, flatten, load, models,
Parquet, HTML) that kills itself with SIGKILL at a chosen hook point, or is killed by the
parent after a random delay.

    python -m tests.reliability.crash_child   (settings as JSON in $CRASH_SETTINGS)

$CRASH_AT is "point:n" (the n-th time the point is reached) or empty. Points: fetch,
flatten, load (any statement of a load transaction), build (before each model of the
build's transaction), refresh (an incremental model's changed days deleted and recomputed,
not yet committed), parquet (a model's temp file written, not yet renamed), html.
$CRASH_BATCH sets the collector's batch size.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from pipeline import collection
from pipeline.collection import loading
from pipeline.itwin import session
from pipeline.itwin.client import ExportApiClient
from pipeline.itwin.settings import Secret, Settings
from pipeline.report import html
from pipeline.warehouse import export, models
from pipeline.warehouse.models import build_models
from pipeline.warehouse.store import open_warehouse

POINT, _, NTH = (os.environ.get("CRASH_AT") or ":0").partition(":")
COUNTS: dict[str, int] = {}


def reached(point: str) -> None:
    COUNTS[point] = COUNTS.get(point, 0) + 1
    if point == POINT and COUNTS[point] == int(NTH):
        os.kill(os.getpid(), signal.SIGKILL)


def install_hooks() -> None:
    get_object = session.ApiSession.get_object

    async def fetch(self: Any, *args: Any, **kwargs: Any) -> Any:
        reached("fetch")
        return await get_object(self, *args, **kwargs)

    session.ApiSession.get_object = fetch  # type: ignore[method-assign]

    flatten_runs = loading.flatten_runs

    def flatten(*args: Any, **kwargs: Any) -> Any:
        batch = flatten_runs(*args, **kwargs)
        reached("flatten")
        return batch

    loading.flatten_runs = flatten  # type: ignore[assignment]

    build_one = models._build_one

    def build_then_crash(*args: Any) -> int:
        reached("build")
        return build_one(*args)

    models._build_one = build_then_crash  # type: ignore[assignment]

    refresh = models.refresh_partitions

    def refresh_then_crash(*args: Any) -> None:
        refresh(*args)
        reached("refresh")

    models.refresh_partitions = refresh_then_crash  # type: ignore[assignment]

    copy = export._copy_to_parquet

    def copy_then_crash(*args: Any) -> None:
        copy(*args)
        reached("parquet")

    export._copy_to_parquet = copy_then_crash  # type: ignore[assignment]

    write_if_changed = html.write_if_changed

    def html_write(con: Any, final: Path, version: str, write: Any, **kw: Any) -> bool:
        def write_then_crash(temp: Path) -> None:
            write(temp)
            reached("html")  # the page's temp file is written, not yet in place

        return write_if_changed(con, final, version, write_then_crash, **kw)

    html.write_if_changed = html_write  # type: ignore[assignment]


def settings_from_env() -> Settings:
    raw = json.loads(os.environ["CRASH_SETTINGS"])
    return Settings(
        base_url=raw["base_url"],
        token_url=raw["token_url"],
        client_id=raw["client_id"],
        client_secret=Secret(raw["client_secret"]),
        connection_ids=tuple(raw["connection_ids"]),
        imodel_ids=tuple(raw["imodel_ids"]),
        rate_limit_per_minute=60_000,
        data_dir=Path(raw["data_dir"]),
        backoff_base_s=0.01,
        backoff_cap_s=0.2,
    )


async def collect(settings: Settings, warehouse: Any) -> Any:
    batch = int(os.environ.get("CRASH_BATCH") or 2_000)
    async with ExportApiClient(settings) as client:
        collector = collection.Collector(client, warehouse, settings, batch_runs=batch)
        return await collector.run()


def main() -> int:
    install_hooks()
    settings = settings_from_env()
    lock_timeout = float(os.environ.get("CRASH_LOCK_TIMEOUT") or 30)
    print("started", flush=True)
    with open_warehouse(
        settings.data_dir / "warehouse.duckdb", lock_timeout_s=lock_timeout
    ) as warehouse:
        print("opened", flush=True)
        warehouse.loader.statements.between_statements = lambda label: reached("load")
        result = asyncio.run(collect(settings, warehouse))
        build_models(warehouse.con)
        reports = settings.data_dir / "reports"
        export.export_parquet(warehouse.con, reports)
        html.write_html_report(warehouse.con, reports / "report.html")
    print(json.dumps({"ok": result.ok, "counts": COUNTS}), flush=True)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
