"""The demo world's story, found the way the models find it (CONTRACT: 95% Wilson intervals,
28-day baseline, recent week against the 28 days before): one code rising, one new, one spike.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import orjson
import pytest

from pipeline.simulator.catalog import NEW_KIND_CODE, RISING_KIND_CODE
from pipeline.simulator.config import SimulatorConfig
from pipeline.simulator.story import SPIKE_DAYS_AGO, demo_config
from pipeline.simulator.world import World

Z = 1.959963984540054


def wilson(k: int, n: int) -> tuple[float, float]:
    centre = (k + Z * Z / 2) / (n + Z * Z)
    half = Z * math.sqrt(k * (n - k) / n + Z * Z / 4) / (n + Z * Z)
    return centre - half, centre + half


@dataclass
class Days:
    """Completed and failed tasks per UTC day of their run, failed ones also per error code."""

    completed: Counter[date] = field(default_factory=Counter)
    failed: Counter[date] = field(default_factory=Counter)
    by_code: defaultdict[str, Counter[date]] = field(default_factory=lambda: defaultdict(Counter))
    first_run: datetime | None = None

    def total(self, counter: Counter[date], last: date, first_back: int, last_back: int) -> int:
        return sum(counter[last - timedelta(days=d)] for d in range(first_back, last_back + 1))


def tally(world: World) -> Days:
    days = Days()
    for conn in world.connections:
        for run in map(orjson.loads, world.page(conn, 0, 100_000)[0]):
            start = datetime.fromisoformat(run["startDateTime"][:19] + "+00:00")
            days.first_run = min(days.first_run or start, start)
            for task in (t for job in run["jobs"] for t in job["tasks"]):
                if task["state"] != "Completed":
                    continue
                days.completed[start.date()] += 1
                if task["result"] in ("Error", "TimedOut"):
                    days.failed[start.date()] += 1
                    code = (task.get("error") or {}).get("errorCode") or "(unspecified)"
                    days.by_code[code][start.date()] += 1
    return days


def trend(days: Days, code: str, as_of: date) -> str:
    recent_n = days.total(days.completed, as_of, 0, 6)
    prior_n = days.total(days.completed, as_of, 7, 34)
    recent_k = days.total(days.by_code[code], as_of, 0, 6)
    prior_k = days.total(days.by_code[code], as_of, 7, 34)
    if prior_k == 0:
        return "new"
    if wilson(recent_k, recent_n)[0] > wilson(prior_k, prior_n)[1]:
        return "rising"
    if wilson(recent_k, recent_n)[1] < wilson(prior_k, prior_n)[0]:
        return "falling"
    return "steady"


def is_spike(days: Days, day: date) -> bool:
    baseline_n = days.total(days.completed, day, 1, 28)
    baseline_k = days.total(days.failed, day, 1, 28)
    if not days.completed[day] or not baseline_n:
        return False
    low = wilson(days.failed[day], days.completed[day])[0]
    return low > wilson(baseline_k, baseline_n)[1]


# Mid-day and just after midnight, when the start day holds almost no runs.
STARTS = [datetime(2026, 12, 7, 12, tzinfo=UTC), datetime(2026, 3, 2, 1, tzinfo=UTC)]


@pytest.fixture(scope="module", params=STARTS, ids=lambda s: s.strftime("%H:00"))
def demo(request: pytest.FixtureRequest) -> tuple[datetime, Days]:
    start: datetime = request.param
    return start, tally(World(demo_config(start)))


def test_the_demo_has_six_weeks_of_busy_days(demo: tuple[datetime, Days]) -> None:
    start, days = demo
    assert days.first_run is not None and days.first_run <= start - timedelta(weeks=6)
    as_of = max(days.completed)
    # Every day of the trend windows and the spike's baseline has enough tasks to judge.
    busy = [days.completed[as_of - timedelta(days=d)] for d in range(1, 36)]
    assert min(busy) >= 40, busy


def test_one_code_rises_in_the_last_week(demo: tuple[datetime, Days]) -> None:
    start, days = demo
    last_week = start.date() - timedelta(days=6)
    prior_n = sum(n for d, n in days.completed.items() if d < last_week)
    recent_n = sum(n for d, n in days.completed.items() if d >= last_week)
    rising = days.by_code[RISING_KIND_CODE]
    prior_k = sum(k for d, k in rising.items() if d < last_week)
    recent_k = sum(k for d, k in rising.items() if d >= last_week)
    assert prior_k > 0 and recent_k / recent_n > 3 * prior_k / prior_n
    assert trend(days, RISING_KIND_CODE, max(days.completed)) == "rising"


def test_one_code_is_new_in_the_last_week(demo: tuple[datetime, Days]) -> None:
    start, days = demo
    last_week = start.date() - timedelta(days=6)
    new = days.by_code[NEW_KIND_CODE]
    assert sum(k for d, k in new.items() if d >= last_week) > 0
    assert not [d for d, k in new.items() if d < last_week and k]
    assert trend(days, NEW_KIND_CODE, max(days.completed)) == "new"


def test_one_spike_day_in_the_last_week(demo: tuple[datetime, Days]) -> None:
    start, days = demo
    spike_day = start.date() - timedelta(days=SPIKE_DAYS_AGO)
    assert is_spike(days, spike_day)
    baseline = days.total(days.failed, spike_day, 1, 28) / days.total(
        days.completed, spike_day, 1, 28
    )
    assert days.failed[spike_day] / days.completed[spike_day] > 2 * baseline


def test_the_story_is_all_the_last_week_says(demo: tuple[datetime, Days]) -> None:
    """What an alert would name: this spike day and these two codes, nothing by chance."""
    start, days = demo
    as_of = max(days.completed)
    spikes = [as_of - timedelta(days=d) for d in range(7) if is_spike(days, as_of - timedelta(d))]
    assert spikes == [start.date() - timedelta(days=SPIKE_DAYS_AGO)]
    findings = {c: trend(days, c, as_of) for c in days.by_code}
    assert {c: t for c, t in findings.items() if t in ("new", "rising")} == {
        RISING_KIND_CODE: "rising",
        NEW_KIND_CODE: "new",
    }


def test_without_the_story_the_new_code_never_appears() -> None:
    config = demo_config(STARTS[0])
    config.story = False
    config.runs_per_connection = 100
    days = tally(World(config))
    assert NEW_KIND_CODE not in days.by_code and RISING_KIND_CODE not in days.by_code


def test_the_story_is_the_same_for_the_same_seed() -> None:
    config = SimulatorConfig(seed=5, connections=2, runs_per_connection=80, story=True)
    one, two = World(config), World(config)
    for conn in one.connections:
        assert one.page(conn, 0, 100) == two.page(conn, 0, 100)
