"""Dagster assets: the collection, one asset per SQL model file, and the reports.

Each body is a few lines calling the pure modules; what they return is metadata.
"""

import asyncio
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import dagster as dg

from pipeline.collection import CollectionResult, FanOutProgress, Progress, collect
from pipeline.defs.resources import ITwinApiResource, WarehouseResource
from pipeline.progress import LineProgress
from pipeline.report.html import write_html_report
from pipeline.transform.schema import CORE_TABLES
from pipeline.warehouse.export import export_parquet
from pipeline.warehouse.models import build_models, list_models, report_models

CORE_GROUP = "warehouse"
MODEL_GROUP = "models"
REPORT_GROUP = "reports"
COLLECTION_TABLES = ("raw_runs", *CORE_TABLES, "quarantine", "collection_log", "connections")


class BuildConfig(dg.Config):
    """`full`: rebuild the model (write the report) whatever was built before."""

    full: bool = False


class CollectConfig(dg.Config):
    """Launchpad overrides; empty lists mean "use the resource / environment"."""

    connection_ids: list[str] = []
    imodel_ids: list[str] = []
    full_pass: bool = False


def reports_dir(warehouse: WarehouseResource) -> Path:
    return warehouse.path.parent / "reports"


def markdown_cell(text: str) -> str:
    """Untrusted text (a display name, an API message) as one Markdown table cell."""
    flat = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    return flat.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def outcome_markdown(result: CollectionResult, names: Mapping[str, str]) -> str:
    """One row per connection: its display name (when known) beside its id, and the outcome."""
    lines = [
        "| connection | id | outcome | new | changed | unchanged | requests |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in result.connections:
        outcome = "ok" if c.ok else f"failed: {c.describe_error()}"
        name = names.get(c.connection_id, "")
        lines.append(
            f"| {markdown_cell(name)} | {c.connection_id} | {markdown_cell(outcome)} | "
            f"{c.runs_new} | {c.runs_changed} | {c.runs_unchanged} | {c.stats.requests} |"
        )
    return "\n".join(lines)


@dg.multi_asset(
    specs=[
        dg.AssetSpec(name, group_name=CORE_GROUP, kinds={"duckdb"}, skippable=False)
        for name in COLLECTION_TABLES
    ],
    description="Fetch runs of every configured export connection and load them into DuckDB.",
)
def collection(
    context: dg.AssetExecutionContext,
    config: CollectConfig,
    itwin_api: ITwinApiResource,
    warehouse: WarehouseResource,
    collection_progress: dg.ResourceParam[Progress],
) -> Iterator[dg.MaterializeResult[None]]:
    settings = itwin_api.settings(
        connection_ids=config.connection_ids, imodel_ids=config.imodel_ids
    )
    to_log = LineProgress(context.log.info, warn=context.log.warning, every_pages=20)
    progress = FanOutProgress(to_log, collection_progress)
    # A second collection waits this long for the file lock, then fails naming its holder.
    with warehouse.open(lock_timeout_s=settings.lock_timeout_s) as store:
        result = asyncio.run(
            collect(
                settings,
                store,
                progress=progress,
                transport=itwin_api.transport(),
                force_full=config.full_pass,
            )
        )
        store.bookkeeping.connections.add_connections_with_runs()
        counts = store.table_counts()
        names = store.bookkeeping.connections.display_names(
            [c.connection_id for c in result.connections]
        )
    shared: dict[str, Any] = {
        "requests": result.totals.requests,
        "retries": result.totals.retries,
        "throttled_429": result.totals.throttled,
        "connections_ok": sum(c.ok for c in result.connections),
        "connections_failed": len(result.failed),
        "runs_loaded": result.runs_loaded,
        "collection_id": result.collection_id,
        "outcomes": dg.MetadataValue.md(outcome_markdown(result, names)),
    }
    for name in COLLECTION_TABLES:
        yield dg.MaterializeResult(
            asset_key=name, metadata={"row_count": counts.get(name, 0), **shared}
        )


def top_error_codes_markdown(con: Any) -> str:
    rows = con.execute(
        "select error_code, failed_tasks, share_of_failures from failure_rate_by_error_code "
        "where failed_tasks > 0 order by failed_tasks desc, error_code limit 10"
    ).fetchall()
    lines = ["| error code | failed tasks | share |", "|---|---|---|"]
    lines += [f"| {code} | {n} | {share or 0:.1%} |" for code, n, share in rows]
    return "\n".join(lines)


MODELS_OP = "sql_models"


def _model_metadata(con: Any, name: str, rows: int | None) -> dict[str, Any]:
    metadata: dict[str, Any] = {} if rows is None else {"row_count": rows}
    if name == "failure_rate_by_error_code":
        metadata["top_error_codes"] = dg.MetadataValue.md(top_error_codes_markdown(con))
    return metadata


def models_asset() -> dg.AssetsDefinition:
    """One asset per SQL file, its dependencies from the file's declared deps, all built by
    one step: one warehouse open and one transaction per build instead of one per model.
    Any subset can be materialized (the models not selected are left as they are)."""
    models = list_models()
    specs = [
        dg.AssetSpec(
            m.name,
            deps=[*m.sources, *m.deps],
            group_name=MODEL_GROUP,
            kinds={"duckdb", "sql"},
            description=f"SQL model sql/{m.kind}/{m.name}.sql",
            skippable=True,
        )
        for m in models
    ]

    @dg.multi_asset(name=MODELS_OP, specs=specs, can_subset=True)
    def _models(
        context: dg.AssetExecutionContext, config: BuildConfig, warehouse: WarehouseResource
    ) -> Iterator[dg.MaterializeResult[None]]:
        selected = {key.to_user_string() for key in context.selected_asset_keys}
        names = [m.name for m in models if m.name in selected]
        with warehouse.get_connection() as con:
            counts = build_models(con, names, full=config.full)
            results: list[dg.MaterializeResult[None]] = [
                dg.MaterializeResult(
                    asset_key=name, metadata=_model_metadata(con, name, counts[name])
                )
                for name in names
            ]
        yield from results

    return _models


@dg.asset(deps=list(report_models()), group_name=REPORT_GROUP, kinds={"parquet"})
def parquet_reports(
    config: BuildConfig, warehouse: WarehouseResource
) -> dg.MaterializeResult[None]:
    """Every report model as reports/<model>.parquet, each rewritten (atomically) only
    when its model changed."""
    with warehouse.get_connection() as con:
        paths = export_parquet(con, reports_dir(warehouse), force=config.full)
    return dg.MaterializeResult(
        metadata={name: dg.MetadataValue.path(str(p)) for name, p in paths.items()}
    )


@dg.asset(deps=list(report_models()), group_name=REPORT_GROUP, kinds={"html"})
def html_report(config: BuildConfig, warehouse: WarehouseResource) -> dg.MaterializeResult[None]:
    """A self-contained page with the headline tables and charts, rewritten when a model
    changed."""
    path = reports_dir(warehouse) / "report.html"
    with warehouse.get_connection() as con:
        written = write_html_report(con, path, force=config.full)
    return dg.MaterializeResult(
        metadata={"path": dg.MetadataValue.path(str(path)), "rewritten": written}
    )
