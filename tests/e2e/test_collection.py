"""Incremental collection against the simulator over loopback HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipeline.simulator.config import Faults, SimulatorConfig
from pipeline.simulator.server import SimulatorServer
from tests.support import collect_once, sim_settings, snapshot


@pytest.fixture
def sim():
    with SimulatorServer(
        SimulatorConfig(seed=11, connections=4, imodels=1, runs_per_connection=120)
    ) as s:
        yield s


def test_first_collection_reads_every_run(sim: SimulatorServer, tmp_path: Path) -> None:
    result = collect_once(sim_settings(sim, tmp_path))
    assert result.ok, [c.describe_error() for c in result.failed]
    got = {c.connection_id: c.runs_new for c in result.connections}
    assert got == {cid: sim.world.run_count(cid) for cid in sim.connection_ids}
    assert all(c.mode == "full" for c in result.connections)


def test_nothing_new_costs_one_request_per_connection_plus_open_runs(
    sim: SimulatorServer, tmp_path: Path
) -> None:
    settings = sim_settings(sim, tmp_path)
    collect_once(settings)
    before = snapshot(tmp_path / "warehouse.duckdb")
    import duckdb

    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        open_runs = con.execute("select count(*) from runs where state <> 'Completed'").fetchone()[
            0
        ]
    result = collect_once(settings)
    assert result.ok
    assert all(c.mode == "incremental" for c in result.connections)
    list_requests = len(sim.imodel_ids)  # discovery, one page each
    # One page per connection; open runs seen on that page need no extra call.
    assert result.totals.requests <= len(sim.connection_ids) + open_runs + list_requests
    assert result.runs_loaded == 0
    assert snapshot(tmp_path / "warehouse.duckdb") == before


def test_incremental_collections_converge_to_a_full_collection(
    sim: SimulatorServer, tmp_path: Path
) -> None:
    incremental = tmp_path / "incremental"
    settings = sim_settings(sim, incremental)
    collect_once(settings)
    new = changed = 0
    for _ in range(3):
        sim.world.advance(2 * 24 * 3600)  # new runs arrive, open runs complete
        result = collect_once(settings)
        assert result.ok
        assert all(c.mode == "incremental" for c in result.connections)
        new += sum(c.runs_new for c in result.connections)
        changed += sum(c.runs_changed for c in result.connections)
    assert new > 0 and changed > 0  # the world really moved between collections
    full = tmp_path / "full"
    collect_once(sim_settings(sim, full), force_full=True)
    assert snapshot(incremental / "warehouse.duckdb") == snapshot(full / "warehouse.duckdb")


def test_unordered_connections_are_read_whole(tmp_path: Path) -> None:
    config = SimulatorConfig(
        seed=3, connections=2, imodels=1, runs_per_connection=130, order="unordered"
    )
    with SimulatorServer(config) as sim:
        settings = sim_settings(sim, tmp_path / "a")
        collect_once(settings)
        sim.world.advance(3 * 24 * 3600)
        collect_once(settings)
        collect_once(sim_settings(sim, tmp_path / "b"), force_full=True)
        assert snapshot(tmp_path / "a" / "warehouse.duckdb") == snapshot(
            tmp_path / "b" / "warehouse.duckdb"
        )


def test_one_failing_connection_does_not_stop_the_others(tmp_path: Path) -> None:
    config = SimulatorConfig(seed=5, connections=4, imodels=1, runs_per_connection=40)
    with SimulatorServer(config) as sim:
        bad = sim.direct_connection_ids[0]
        sim.faults.forbidden_connections.add(bad)
        result = collect_once(sim_settings(sim, tmp_path))
        assert [c.connection_id for c in result.failed] == [bad]
        failure = result.failed[0]
        assert failure.error is not None
        assert failure.error.status == 403 and failure.error.code == "InsufficientPermissions"
        ok = [c for c in result.connections if c.ok]
        assert sum(c.runs_new for c in ok) == sum(sim.world.run_count(c.connection_id) for c in ok)


def test_faults_on_every_request_class_still_end_identical(tmp_path: Path) -> None:
    sizes = dict(seed=9, connections=3, imodels=1, runs_per_connection=90)
    with SimulatorServer(SimulatorConfig(**sizes)) as clean:
        collect_once(sim_settings(clean, tmp_path / "clean"))
    faults = Faults(
        error_5xx_rate=0.1, truncated_rate=0.05, non_json_rate=0.05, drop_rate=0.05, seed=4
    )
    with SimulatorServer(SimulatorConfig(**sizes, faults=faults)) as faulty:
        result = collect_once(sim_settings(faulty, tmp_path / "faulty"))
        assert result.ok, [c.describe_error() for c in result.failed]
        assert result.totals.retries > 0
    assert snapshot(tmp_path / "clean" / "warehouse.duckdb") == snapshot(
        tmp_path / "faulty" / "warehouse.duckdb"
    )


def test_a_failed_end_record_loses_no_runs_and_the_next_read_is_whole(
    sim: SimulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    from pipeline.warehouse.bookkeeping import Bookkeeping

    def broken(self: Bookkeeping, **_: Any) -> None:
        raise OSError("disk full")

    settings = sim_settings(sim, tmp_path)
    with monkeypatch.context() as patched:
        patched.setattr(Bookkeeping, "record_finished", broken)
        first = collect_once(settings)
    # The runs are committed; only the bookkeeping is missing, and the log says so.
    assert first.ok and first.runs_loaded == sum(map(sim.world.run_count, sim.connection_ids))
    assert "could not record the end of connection" in caplog.text
    again = collect_once(settings)
    assert all(c.mode == "full" for c in again.connections)  # no full pass was recorded
    assert again.ok and again.runs_loaded == 0
    assert all(c.mode == "incremental" for c in collect_once(settings).connections)
