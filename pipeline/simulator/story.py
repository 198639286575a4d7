"""The demo world's story: is it getting worse? A steady background, then a last week where one
error kind rises, a new one appears, and one day spikes.

The story is told in UTC days counted back from the world's start day (day 0, the day of
`start_time`), so a trend or spike analysis on the runs' days finds it whatever the start
hour. Runs after the start (time advancing) stay in the last week's mood.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pipeline.simulator.catalog import KIND_INDEX, NEW_KIND_CODE, RISING_KIND_CODE
from pipeline.simulator.config import Faults, SimulatorConfig
from pipeline.simulator.timefmt import TICKS_PER_SECOND

_TICKS_PER_DAY = 86_400 * TICKS_PER_SECOND

LAST_WEEK_DAYS = 7  # days 0 to 6 before the start day are "the last week"
SPIKE_DAYS_AGO = 3
# Shares of the last week's failing runs whose failures carry the rising or the new kind
# instead of a background one, and the chance that a successful run of the spike day fails.
# Small enough that the background kinds keep steady rates in the last week.
RISING_BEFORE_SHARE = 0.015
RISING_RUN_SHARE = 0.2
NEW_RUN_SHARE = 0.08
SPIKE_RUN_SHARE = 0.6
# A seed whose background adds no chance finding to the last week at any start hour (the
# story's own findings hold for every seed; a 95% interval also flags some chance days).
DEMO_SEED = 2


@dataclass(frozen=True, slots=True)
class Mood:
    """How one run's draws are bent: forced failures and the kind they carry."""

    rising: float = 0.0  # chance a failing run's failures carry the rising kind
    new: float = 0.0  # chance they carry the new kind
    spike: float = 0.0  # chance a successful run fails instead


CALM = Mood()
_BEFORE = Mood(rising=RISING_BEFORE_SHARE)
_LAST_WEEK = Mood(rising=RISING_RUN_SHARE, new=NEW_RUN_SHARE)
_SPIKE_DAY = Mood(rising=RISING_RUN_SHARE, new=NEW_RUN_SHARE, spike=SPIKE_RUN_SHARE)

RISING_KIND = KIND_INDEX[RISING_KIND_CODE]
NEW_KIND = KIND_INDEX[NEW_KIND_CODE]


class Story:
    """The mood of each run, from its start time relative to the world's start day."""

    def __init__(self, start_ticks: int) -> None:
        self.start_day = start_ticks // _TICKS_PER_DAY

    def days_ago(self, ticks: int) -> int:
        """Whole UTC days between the start day and the day of `ticks` (negative: later)."""
        return self.start_day - ticks // _TICKS_PER_DAY

    def mood_at(self, ticks: int) -> Mood:
        days_ago = self.days_ago(ticks)
        if days_ago >= LAST_WEEK_DAYS:
            return _BEFORE
        return _SPIKE_DAY if days_ago == SPIKE_DAYS_AGO else _LAST_WEEK


def demo_config(start_time: datetime, faults: Faults | None = None) -> SimulatorConfig:
    """The demo's world: 8 connections, seven weeks of history ending at `start_time`.

    A run every 3 hours per connection gives about 600 completed tasks a day, enough that
    the last week's story stands out of the background with 95% confidence.
    """
    return SimulatorConfig(
        seed=DEMO_SEED,
        connections=8,
        runs_per_connection=400,
        run_interval_s=3 * 3600.0,
        start_time=start_time,
        story=True,
        faults=faults or Faults(),
    )
