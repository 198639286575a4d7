"""The whole Dagster job against the simulator with faults on, in a temporary directory."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from pipeline.catalog import replace_error_catalog
from pipeline.definitions import build_definitions
from pipeline.defs.resources import ITwinApiResource
from pipeline.simulator.config import Faults, SimulatorConfig
from pipeline.simulator.server import SimulatorServer
from pipeline.warehouse.models import build_models, report_models
from pipeline.warehouse.store import open_warehouse
from tests.support import collect_once, sim_settings, snapshot


def test_whole_job_with_faults(tmp_path: Path) -> None:
    sizes = dict(seed=21, connections=4, imodels=1, runs_per_connection=70)
    faults = Faults(error_5xx_rate=0.08, truncated_rate=0.04, non_json_rate=0.04, seed=2)
    with SimulatorServer(SimulatorConfig(**sizes, faults=faults)) as sim:
        resource = ITwinApiResource(
            base_url=sim.base_url,
            token_url=sim.token_url,
            client_id=sim.client_id,
            client_secret=sim.client_secret,
            connection_ids=list(sim.direct_connection_ids),
            imodel_ids=list(sim.imodel_ids),
            rate_limit_per_minute=60_000,
        )
        defs = build_definitions(data_dir=tmp_path / "job", itwin_api=resource)
        result = defs.resolve_job_def("collect_job").execute_in_process()
    assert result.success

    checks = result.get_asset_check_evaluations()
    assert checks, "asset checks ran"
    failed = [(c.asset_key.to_user_string(), c.check_name) for c in checks if not c.passed]
    # Simulated runs are from 2025, so the stuck-runs warning may fire; the simulator
    # speaks a few keys in no catalogue on purpose, and a day may spike by chance.
    warnings = {
        ("runs", "no_stuck_runs"),
        ("failure_rate_by_description_key", "vocabulary_in_catalog"),
        ("failure_daily", "latest_day_no_spike"),
    }
    assert set(failed) <= warnings, failed
    names = {(c.asset_key.to_user_string(), c.check_name) for c in checks}
    assert ("runs", "unique_key") in names and ("jobs", "no_orphans") in names

    mats = result.asset_materializations_for_node("collection")
    by_key = {m.asset_key.to_user_string(): m.metadata for m in mats}
    assert by_key["runs"]["row_count"].value == sum(
        sim.world.run_count(c) for c in sim.connection_ids
    )
    assert by_key["runs"]["retries"].value > 0
    assert "| connection | id | outcome |" in by_key["runs"]["outcomes"].value
    for cid in sim.connection_ids:  # each id with its display name beside it
        name = sim.world.connections[cid].display_name
        assert f"| {cid} | ok |" in by_key["runs"]["outcomes"].value
        assert name.split("<")[0].strip() in by_key["runs"]["outcomes"].value

    reports = tmp_path / "job" / "reports"
    for model in report_models():
        table = pq.read_table(reports / f"{model}.parquet")
        with duckdb.connect(str(tmp_path / "job" / "warehouse.duckdb"), read_only=True) as con:
            assert table.num_rows == con.execute(f"select count(*) from {model}").fetchone()[0]
    html = (reports / "report.html").read_text()
    assert "<svg" in html and "http://" not in html.replace("http://www.w3.org", "")

    # Identical to a fault-free collection of the same simulated data.
    with SimulatorServer(SimulatorConfig(**sizes)) as clean:
        collect_once(sim_settings(clean, tmp_path / "clean"))
    with open_warehouse(tmp_path / "clean" / "warehouse.duckdb") as store:
        replace_error_catalog(store.con)  # as every build of the job does
        build_models(store.con)
    assert snapshot(tmp_path / "job" / "warehouse.duckdb") == snapshot(
        tmp_path / "clean" / "warehouse.duckdb"
    )
