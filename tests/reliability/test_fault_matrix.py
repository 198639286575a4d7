"""A seeded fault matrix: many collections, each under a random mix of API faults.

Every seed picks fault rates, a Retry-After form, token-endpoint outages and a token
lifetime; the collection must end Identical to a fault-free one. The share that did is
recorded as a figure (goal: 100%).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from pipeline.simulator.config import Faults, SimulatorConfig
from pipeline.simulator.server import SimulatorServer
from tests.reliability.conftest import trials
from tests.reliability.helpers import Baselines
from tests.support import collect_once, sim_settings, snapshot

RETRY_AFTER = [None, "http-date", "past-date", "missing", "0", "-5", "garbage", "99999"]


def data_sizes(seed: int) -> dict[str, Any]:
    return dict(seed=100 + seed % 3, connections=3, imodels=1, runs_per_connection=24, page_cap=8)


def fault_mix(seed: int) -> tuple[Faults, float]:
    """Random fault rates for one seed, and the token lifetime to use."""
    rng = random.Random(seed)

    def rate(high: float) -> float:
        return round(rng.choice([0.0, rng.uniform(0, high)]), 3)

    throttle = rng.random() < 0.4
    faults = Faults(
        error_5xx_rate=rate(0.25),
        truncated_rate=rate(0.1),
        non_json_rate=rate(0.1),
        drop_rate=rate(0.1),
        drip_rate=rate(0.15),
        drip_chunk_bytes=512,
        drip_interval_s=0.005,
        slow_rate=rate(0.05),
        slow_seconds=1.2,
        rate_limit_per_minute=1200 if throttle else None,
        rate_limit_window_s=1.0,
        retry_after=rng.choice(RETRY_AFTER),
        token_endpoint_failures=rng.choice([0, 0, 1, 3]),
        seed=seed,
    )
    return faults, rng.choice([3600.0, 3600.0, 1.0])


def run_matrix(seeds: range, root: Path, baselines: Baselines) -> dict[str, Any]:
    outcomes: list[dict[str, Any]] = []
    for seed in seeds:
        faults, lifetime = fault_mix(seed)
        sizes = data_sizes(seed)
        target = root / f"seed-{seed}"
        config = SimulatorConfig(**sizes, faults=faults, token_lifetime_s=lifetime)
        with SimulatorServer(config) as sim:
            result = collect_once(
                sim_settings(sim, target, read_timeout_s=0.8, max_retries=10, backoff_cap_s=0.5)
            )
            injected = sum(
                1 for r in sim.requests if r.fault or (r.status or 0) in (429, 500, 502, 503, 504)
            )
        identical = result.ok and snapshot(target / "warehouse.duckdb") == baselines.of(**sizes)
        outcomes.append(
            {"seed": seed, "injected": injected, "identical": identical, "ok": result.ok}
        )
    faulty = [o for o in outcomes if o["injected"]]
    return {
        "collections": len(outcomes),
        "with_injected_faults": len(faulty),
        "faults_injected": sum(o["injected"] for o in outcomes),
        "identical_after_faults": sum(o["identical"] for o in faulty),
        "share_identical": (sum(o["identical"] for o in faulty) / len(faulty)) if faulty else None,
        "not_identical_seeds": [o["seed"] for o in outcomes if not o["identical"]],
    }


def test_fault_matrix_quick(tmp_path: Path, baselines: Baselines, figures: list[Any]) -> None:
    summary = run_matrix(range(6), tmp_path, baselines)
    figures.append({"figure": "fault_matrix_quick", **summary})
    assert summary["with_injected_faults"] >= 4, "the mixes must really inject faults"
    assert summary["not_identical_seeds"] == []


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_fault_matrix_many_seeds(tmp_path: Path, baselines: Baselines, figures: list[Any]) -> None:
    count = trials("matrix_seeds", 60)
    summary = run_matrix(range(1000, 1000 + count), tmp_path, baselines)
    figures.append({"figure": "fault_matrix", **summary})
    assert summary["not_identical_seeds"] == []
