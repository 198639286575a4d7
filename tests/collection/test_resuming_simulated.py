"""Against the simulator's hourly cap (the Community tier's, scaled down): a first
collection larger than an hour's budget finishes over several collections, reading each
page once, and ends with the warehouse an unthrottled collection makes (issue 22)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from pipeline.simulator.asgi import RecordedRequest
from pipeline.simulator.config import Faults, SimulatorConfig
from pipeline.simulator.server import SimulatorServer
from tests.support import collect_once, sim_settings, snapshot

SIZES = {"seed": 11, "connections": 2, "imodels": 1, "runs_per_connection": 120, "page_cap": 10}
PER_HOUR = 8


def run_pages(requests: list[RecordedRequest]) -> list[str]:
    """The run list pages the simulator answered, as path and query."""
    return [f"{r.path}?{r.query}" for r in requests if r.path.endswith("/runs") and r.status == 200]


def test_a_first_collection_over_the_hourly_cap_finishes_over_several_hours(
    tmp_path: Path,
) -> None:
    with SimulatorServer(SimulatorConfig(**SIZES)) as sim:
        collect_once(sim_settings(sim, tmp_path / "whole"))
        whole = run_pages(sim.requests)
    config = SimulatorConfig(**SIZES, faults=Faults(rate_limit_per_hour=PER_HOUR))
    data_dir = tmp_path / "data"
    per_collection: list[int] = []
    with SimulatorServer(config) as sim:
        for hour in range(1, 20):
            sim.faults.rate_limit_per_hour = PER_HOUR * hour  # an hour later: a new budget
            sent = len(sim.requests)
            result = collect_once(sim_settings(sim, data_dir))
            per_collection.append(len(run_pages(sim.requests[sent:])))
            if result.ok:
                break
            assert all(c.stopped for c in result.failed)
        assert result.ok, [c.describe_error() for c in result.failed]
        pages = run_pages(sim.requests)
    assert len(per_collection) > 2 and max(per_collection) <= PER_HOUR
    # Each page read once over all the collections; besides, a connection whose pass
    # finished in an earlier collection reads its newest page (an incremental read).
    extra = Counter(pages) - Counter(whole)
    assert not Counter(whole) - Counter(pages)
    assert all(page.endswith("/runs?") for page in extra) and extra.total() <= len(per_collection)
    assert snapshot(data_dir / "warehouse.duckdb") == snapshot(
        tmp_path / "whole" / "warehouse.duckdb"
    )
