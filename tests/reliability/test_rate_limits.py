"""The platform's hourly cap and long waits (issue 22, CONTRACT "Rate limits"): a stopped
connection's fetched runs are all loaded, the summary names it with the reason and the
wait, and the next collection completes the rest."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import duckdb

from pipeline.collection import CollectionResult
from pipeline.simulator.config import Faults, SimulatorConfig
from pipeline.simulator.server import SimulatorServer
from pipeline.summary import read_summary
from tests.reliability.helpers import Baselines, integrity_problems
from tests.support import collect_once, sim_settings, snapshot

SIZES = {"seed": 11, "connections": 4, "imodels": 1, "runs_per_connection": 60, "page_cap": 10}


def _loaded(data_dir: Path) -> int:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        return int(con.execute("select count(*) from runs").fetchall()[0][0])


def _fetched(result: CollectionResult) -> int:
    return sum(c.runs_seen + c.runs_refreshed for c in result.connections)


def _stopped_lines(data_dir: Path) -> list[str]:
    text = read_summary(data_dir).render(seconds=0.0, collected=True)
    return [line for line in text.splitlines() if "stopped:" in line]


def test_the_platform_s_hourly_cap_stops_the_collection_and_nothing_fetched_is_lost(
    tmp_path: Path, baselines: Baselines
) -> None:
    clean = baselines.of(**SIZES)
    data_dir = tmp_path / "data"
    config = SimulatorConfig(**SIZES, faults=Faults(rate_limit_per_hour=25))
    with SimulatorServer(config) as sim:
        first = collect_once(sim_settings(sim, data_dir))
        assert not first.ok and all(c.stopped for c in first.failed)
        assert _fetched(first) == _loaded(data_dir) > 0  # every run fetched is loaded
        lines = _stopped_lines(data_dir)
        assert len(lines) == len(first.failed)
        assert all("HTTP 429" in line and " s (ITWIN_MAX_WAIT_S" in line for line in lines)
        assert integrity_problems(data_dir / "warehouse.duckdb") == []
        sim.faults.rate_limit_per_hour = None  # an hour later
        second = collect_once(sim_settings(sim, data_dir))
    assert second.ok, [c.describe_error() for c in second.failed]
    assert snapshot(data_dir / "warehouse.duckdb") == clean


def test_our_hourly_budget_stops_before_the_cap_and_counts_earlier_collections(
    tmp_path: Path, baselines: Baselines
) -> None:
    clean = baselines.of(**SIZES)
    data_dir = tmp_path / "data"
    with SimulatorServer(SimulatorConfig(**SIZES)) as sim:
        settings = sim_settings(sim, data_dir, rate_limit_per_hour=20)
        first = collect_once(settings)
        assert not first.ok and all(c.stopped for c in first.failed)
        assert sum(c.stats.throttled for c in first.connections) == 0  # paced, not refused
        assert _fetched(first) == _loaded(data_dir)
        lines = _stopped_lines(data_dir)
        assert lines and all("hourly budget" in line for line in lines)
        sent = len(sim.requests)
        # The budget is used up for this hour: the next collection sends nothing new.
        again = collect_once(settings)
        assert not again.ok and len(sim.requests) == sent
        wider = dataclasses.replace(settings, rate_limit_per_hour=None)
        last = collect_once(wider)
    assert last.ok, [c.describe_error() for c in last.failed]
    assert snapshot(data_dir / "warehouse.duckdb") == clean
