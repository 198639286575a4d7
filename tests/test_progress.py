"""Progress lines name connections as people know them: `name (id)`, or the id alone."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.collection import collect
from pipeline.collection.results import ConnectionResult
from pipeline.progress import LineProgress
from pipeline.simulator.config import SimulatorConfig
from pipeline.simulator.server import SimulatorServer
from pipeline.warehouse.store import open_warehouse
from tests.support import sim_settings

CID = "0b0e7a2c-5c1d-4c7e-9a52-3f1f0d2a9b11"


def test_lines_carry_the_name_the_connection_started_with() -> None:
    lines: list[str] = []
    progress = LineProgress(lines.append, every_pages=2)
    progress.connection_started(CID, "full", "Bridge IFC")
    progress.pages_fetched(CID, 1, 10)
    progress.pages_fetched(CID, 2, 20)
    result = ConnectionResult(CID, "full", datetime(2026, 1, 1, tzinfo=UTC))
    result.display_name = "Bridge IFC"
    progress.connection_finished(result)
    assert lines[0] == f"collecting Bridge IFC ({CID}) (full pass)"
    assert lines[1] == f"  Bridge IFC ({CID}): 2 pages, 20 runs"
    assert lines[2].startswith(f"done Bridge IFC ({CID}): 0 new")


def test_a_connection_without_a_name_is_its_id_and_a_hostile_name_is_defused() -> None:
    lines: list[str] = []
    progress = LineProgress(lines.append)
    progress.connection_started(CID, "incremental", None)
    progress.connection_started(CID, "incremental", "  ")
    progress.connection_started(CID, "incremental", "evil\x1b[2J\nname")
    assert lines[0] == lines[1] == f"collecting {CID} (incremental pass)"
    assert "\x1b" not in lines[2] and "\n" not in lines[2]
    assert lines[2] == f"collecting evil?[2J?name ({CID}) (incremental pass)"


@pytest.mark.parametrize("discover", [True, False], ids=["listed by iModel", "configured"])
def test_a_collection_names_every_connection_it_reads(tmp_path: Path, discover: bool) -> None:
    config = SimulatorConfig(seed=5, connections=3, imodels=1, runs_per_connection=4)
    lines: list[str] = []
    again: list[str] = []
    with SimulatorServer(config) as sim, open_warehouse(tmp_path / "w.duckdb") as warehouse:
        settings = sim_settings(sim, tmp_path)
        if not discover:  # named by their own details, then by the stored ones
            settings = replace(settings, imodel_ids=())
        result = asyncio.run(collect(settings, warehouse, progress=LineProgress(lines.append)))
        # The next one fetches no details (a day has not passed): names come from the table.
        asyncio.run(collect(settings, warehouse, progress=LineProgress(again.append)))
        names = {cid: c.display_name for cid, c in sim.world.connections.items()}
    assert result.ok
    # Discovered ones are named by the listing, configured ones by their details.
    for said, mode in [(lines, "full"), (again, "incremental")]:
        started = sorted(line for line in said if line.startswith("collecting "))
        expected = sorted(
            f"collecting {names[r.connection_id]} ({r.connection_id}) ({mode} pass)"
            for r in result.connections
        )
        assert started == expected and len(started) >= 2
