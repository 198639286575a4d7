"""Helpers shared by the integration suites: settings for a simulator, collecting into a
warehouse without Dagster, and the "Identical" snapshot (core tables and models, sorted)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import duckdb

from pipeline.collection import CollectionResult, collect
from pipeline.itwin.settings import Secret, Settings
from pipeline.simulator.server import SimulatorServer
from pipeline.transform.schema import CORE_TABLES
from pipeline.warehouse.models import build_models, report_models
from pipeline.warehouse.store import open_warehouse

SNAPSHOT_TABLES = (*CORE_TABLES, *report_models())


def sim_settings(sim: SimulatorServer, data_dir: Path, **changes: Any) -> Settings:
    """Settings a user would write for this simulator: OAuth client, direct ids and iModels."""
    base = Settings(
        base_url=sim.base_url,
        token_url=sim.token_url,
        client_id=sim.client_id,
        client_secret=Secret(sim.client_secret),
        connection_ids=tuple(sim.direct_connection_ids),
        imodel_ids=tuple(sim.imodel_ids),
        rate_limit_per_minute=60_000,
        data_dir=data_dir,
        backoff_base_s=0.01,
        backoff_cap_s=0.2,
        max_retries=8,
    )
    return replace(base, **changes)


def collect_once(settings: Settings, *, force_full: bool = False) -> CollectionResult:
    """One collection plus the SQL models, as the job does, without Dagster."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with open_warehouse(settings.data_dir / "warehouse.duckdb") as warehouse:
        result = asyncio.run(collect(settings, warehouse, force_full=force_full))
        build_models(warehouse.con)
    return result


def snapshot(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every core table and model, sorted by all columns: what "Identical" compares."""
    with duckdb.connect(str(path), read_only=True) as con:
        con.execute("set TimeZone = 'UTC'")
        return {
            table: con.execute(f'select * from "{table}" order by all').fetchall()
            for table in SNAPSHOT_TABLES
        }
