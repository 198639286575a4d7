"""Deterministic generation of connections and runs, shared by the server and `pages.py`.

Every run is generated from its own random stream, seeded by (seed, connection, sequence
number), so any run can be produced alone, in any order, and always comes out the same. A run
is generated once in its finished form together with the times of its jobs and tasks; `view_at`
cuts that plan down to what the service would show at an earlier moment (queued, executing).
"""

from __future__ import annotations

import random
from bisect import bisect
from dataclasses import dataclass
from math import log
from typing import Any

from pipeline.simulator.catalog import (
    ERROR_BODIES,
    ERROR_KINDS,
    FAILURE_WEIGHTS,
    KIND_INDEX,
    TIMEOUT_KIND_CODE,
    WARNING_KINDS,
    WARNING_WEIGHTS,
)
from pipeline.simulator.story import CALM, NEW_KIND, RISING_KIND, Mood
from pipeline.simulator.timefmt import TICKS_PER_SECOND, format_ticks

Json = dict[str, Any]

_OUTCOMES = ("Success", "Error", "PartialSuccess", "TimedOut", "Canceled", "Skipped")
_OUTCOME_CUM = (0.70, 0.83, 0.90, 0.94, 0.97, 1.0)
_JOBS_CUM = (0.25, 0.60, 0.90, 1.0)  # 1-4 jobs, mean 2.25
_TASKS_CUM = (0.08, 0.19, 0.33, 0.50, 0.67, 0.81, 0.92, 1.0)  # 1-8 tasks, mean 4.5
_CONNECTOR_TYPES = ("MSTN", "REVIT", "IFC", "DWG", "CIVIL3D", "NWD", "SPPID")
_PENDING_STATES = ("Queued", "NotStarted", "WaitingToExecute")
_TIMEOUT_KIND = KIND_INDEX[TIMEOUT_KIND_CODE]

# Attach an error object to this share of Success tasks (the service does that) ...
_WARNING_RATE = 0.2
# ... and leave it off this share of failed tasks (it does that too).
_FAILED_WITHOUT_ERROR = 0.07


def uuid_from(bits: int) -> str:
    """A UUID-shaped id from 128 random bits."""
    h = f"{bits:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def run_stream(seed: int, connection: int, seq: int) -> random.Random:
    """The random stream of one run: independent of every other run."""
    return random.Random((((seed & 0xFFFFFFFF) << 22) + connection) * 4_194_304 + seq)


def run_head(seed: int, connection: int, seq: int, interval_s: float) -> tuple[str, int]:
    """A run's id and the gap in ticks since the previous run: the first two draws of its stream."""
    rng = run_stream(seed, connection, seq)
    run_id = uuid_from(rng.getrandbits(128))
    gap_s = max(300.0, rng.expovariate(1.0 / interval_s))
    return run_id, int(gap_s * TICKS_PER_SECOND)


@dataclass(frozen=True, slots=True)
class Era:
    """Which optional fields a run carries: older runs lack newer fields, the newest add some."""

    legacy: bool  # no connectorType / exportOutputFileId yet
    future: bool  # fields the client does not know yet


@dataclass(slots=True)
class TaskPlan:
    body: Json
    start: int
    end: int


@dataclass(slots=True)
class JobPlan:
    body: Json
    start: int
    end: int
    tasks: list[TaskPlan]


@dataclass(slots=True)
class RunPlan:
    """A run in its finished form plus the moments that decide its earlier views."""

    body: Json  # finished form, without connectionId
    start: int
    queued_until: int
    end: int
    pending_state: str
    jobs: list[JobPlan]
    open_end_null: bool  # open runs send endDateTime null (else leave it out)


def _pick(rng: random.Random, cumulative: tuple[float, ...]) -> int:
    return bisect(cumulative, rng.random())


def _draw_kind(rng: random.Random, failed: bool) -> int:
    if failed:
        index = bisect(FAILURE_WEIGHTS, rng.random() * FAILURE_WEIGHTS[-1])
        return min(index, len(FAILURE_WEIGHTS) - 1)
    index = bisect(WARNING_WEIGHTS, rng.random() * WARNING_WEIGHTS[-1])
    return WARNING_KINDS[min(index, len(WARNING_KINDS) - 1)]


def _error(rng: random.Random, kind_index: int, era: Era) -> Json:
    error = dict(ERROR_BODIES[kind_index])
    kind = ERROR_KINDS[kind_index]
    codes = kind.exit_codes
    error["bridgeExitCode"] = codes[int(rng.random() * len(codes))]
    # The API sends the catalogue's fields unreliably: mostly an empty link, sometimes the
    # link, sometimes null; fixability or category missing now and then.
    quirk = rng.random()
    if quirk < 0.03:
        del error["bridgeExitCode"]
    elif quirk < 0.05:
        error["phase"] = None
        error["system"] = None
    elif quirk < 0.25:
        error["kbArticleLink"] = kind.kb_article_link or ""
    elif quirk < 0.28:
        error["kbArticleLink"] = None
    elif quirk < 0.43:
        error["canUserFix"] = None
    elif quirk < 0.48:
        error["category"] = ""
    if era.future:
        error["correlationId"] = uuid_from(rng.getrandbits(128))
    return error


def _task_results(rng: random.Random, outcome: str, n: int, failing: bool) -> list[str]:
    """Results of one job's tasks, consistent with the run's outcome."""
    if outcome == "Skipped":
        return ["Skipped"] * n
    if not failing or outcome == "Success":
        return ["Success"] * n
    point = int(rng.random() * n)
    head = ["Success"] * point
    if outcome == "TimedOut":
        return [*head, "TimedOut", *(["Canceled"] * (n - point - 1))]
    if outcome == "Canceled":
        return [*head, *(["Canceled"] * (n - point))]
    tail = [
        "Skipped" if r < 0.4 else ("Error" if r < 0.48 else "Success")
        for r in (rng.random() for _ in range(n - point - 1))
    ]
    return [*head, "Error", *tail]


def _job_result(outcome: str, results: list[str], cancelled: str) -> str:
    if outcome == "Skipped":
        return "Skipped"
    if "TimedOut" in results:
        return "TimedOut"
    if "Canceled" in results:
        return cancelled
    if "Error" in results:
        return "PartialSuccess" if "Success" in results else "Error"
    return "Success"


def build_run(
    seed: int,
    connection: int,
    seq: int,
    start: int,
    interval_s: float,
    era: Era,
    mood: Mood = CALM,
) -> RunPlan:
    """Generate run `seq` of `connection` in its finished form, starting at `start` ticks."""
    rng = run_stream(seed, connection, seq)
    run_id = uuid_from(rng.getrandbits(128))
    rng.expovariate(1.0 / interval_s)  # the gap, drawn by run_head
    outcome = _OUTCOMES[_pick(rng, _OUTCOME_CUM)]
    forced: int | None = None
    if mood is not CALM:
        # The rising and new kinds take the place of background causes in failing runs (the
        # failure rate stays steady); a spike day makes more runs fail.
        draw = rng.random()
        if outcome == "Success" and draw < mood.spike:
            outcome = "Error"
        elif outcome in ("Error", "PartialSuccess"):
            if draw < mood.rising:
                forced = RISING_KIND
            elif draw < mood.rising + mood.new:
                forced = NEW_KIND
    cancelled = "Cancelled" if rng.random() < 0.35 else "Canceled"
    # About one run in ten is written with millisecond precision: fewer fractional digits.
    grain = 10_000 if rng.random() < 0.1 else 1
    pending_state = _PENDING_STATES[int(rng.random() * 3)]
    open_end_null = rng.random() < 0.5
    n_jobs = _pick(rng, _JOBS_CUM) + 1
    failing_jobs = {int(rng.random() * n_jobs)}
    if outcome in ("Error", "PartialSuccess") and n_jobs > 1 and rng.random() < 0.1:
        failing_jobs.add(int(rng.random() * n_jobs))
    if outcome == "PartialSuccess" and n_jobs > 1:
        failing_jobs = set(list(failing_jobs)[:1])

    def tick(t: int) -> int:
        return t - t % grain

    run_start = tick(start)
    queued_until = run_start + int((1 + rng.random() * 90) * TICKS_PER_SECOND)
    clock = queued_until
    jobs: list[JobPlan] = []
    for j in range(n_jobs):
        n_tasks = _pick(rng, _TASKS_CUM) + 1
        job_id = uuid_from(rng.getrandbits(128))
        connector = _CONNECTOR_TYPES[int(rng.random() * len(_CONNECTOR_TYPES))]
        results = _task_results(rng, outcome, n_tasks, j in failing_jobs)
        if outcome == "PartialSuccess" and n_jobs == 1 and all(r != "Success" for r in results):
            results[0] = "Success"
        job_start = tick(clock + int(rng.random() * 3 * TICKS_PER_SECOND))
        clock = job_start
        tasks: list[TaskPlan] = []
        for result in results:
            # Hot loop (ten tasks a run): expovariate and tick() written out inline.
            if result == "Skipped":
                duration_s = 0.5 + rng.random() * 3
            else:
                duration_s = 5 - log(1.0 - rng.random()) * 90
            t_start = clock + int(rng.random() * 2 * TICKS_PER_SECOND)
            t_end = t_start + int(duration_s * TICKS_PER_SECOND)
            if grain != 1:
                t_start -= t_start % grain
                t_end -= t_end % grain
            clock = t_end
            task = _task(rng, result, t_start, t_end, era, forced)
            tasks.append(TaskPlan(task, t_start, t_end))
        job_end = tick(clock + int(rng.random() * 40 * TICKS_PER_SECOND))
        clock = job_end
        job: Json = {
            "id": job_id,
            "startDateTime": format_ticks(job_start),
            "endDateTime": format_ticks(job_end),
            "state": "Completed",
            "result": _job_result(outcome, results, cancelled),
        }
        if not era.legacy:
            job["connectorType"] = connector
        if era.future:
            job["jobPriority"] = int(rng.random() * 5)
        job["tasks"] = [t.body for t in tasks]
        jobs.append(JobPlan(job, job_start, job_end, tasks))
    run_end = tick(clock + int((2 + rng.random() * 20) * TICKS_PER_SECOND))
    body: Json = {
        "id": run_id,
        "state": "Completed",
        "result": cancelled if outcome == "Canceled" else outcome,
        "startDateTime": format_ticks(run_start),
        "endDateTime": format_ticks(run_end),
        "jobs": [job.body for job in jobs],
    }
    if era.future:
        body["triggerType"] = "Scheduled" if rng.random() < 0.8 else "OnDemand"
    return RunPlan(body, run_start, queued_until, run_end, pending_state, jobs, open_end_null)


def _task(
    rng: random.Random, result: str, start: int, end: int, era: Era, forced: int | None
) -> Json:
    failed = result in ("Error", "TimedOut")
    retries = 0
    if rng.random() < (0.3 if failed else 0.03):
        retries = 1 + int(rng.random() * 3)
    task: Json = {
        "id": uuid_from(rng.getrandbits(128)),
        "startDateTime": format_ticks(start),
        "endDateTime": format_ticks(end),
        "retryAttempts": retries,
        "state": "Completed",
        "result": result,
    }
    if not era.legacy:
        task["exportOutputFileId"] = (
            uuid_from(rng.getrandbits(128)) if result == "Success" else None
        )
    if era.future:
        task["outputSizeBytes"] = int(rng.expovariate(1 / 5e7)) if result == "Success" else 0
    draw = rng.random()
    if failed and forced is not None:
        task["error"] = _error(rng, forced, era)
    elif failed and draw >= _FAILED_WITHOUT_ERROR:
        timed_out = result == "TimedOut" and draw < 0.7
        task["error"] = _error(rng, _TIMEOUT_KIND if timed_out else _draw_kind(rng, True), era)
    elif result == "Success" and draw < _WARNING_RATE:
        task["error"] = _error(rng, _draw_kind(rng, False), era)
    return task


def view_at(plan: RunPlan, now: int) -> Json:
    """The run as the service shows it at `now`: finished, executing, or still queued."""
    if now >= plan.end:
        return plan.body
    body = plan.body
    view: Json = {
        "id": body["id"],
        "state": plan.pending_state if now < plan.queued_until else "Executing",
        "result": "Undetermined",
        "startDateTime": body["startDateTime"],
    }
    if plan.open_end_null:
        view["endDateTime"] = None
    view["jobs"] = [_job_at(job, now) for job in plan.jobs if job.start <= now]
    for key in body.keys() - view.keys() - {"endDateTime"}:
        view[key] = body[key]  # fields beyond the known ones (the "future" era)
    return view


def _job_at(job: JobPlan, now: int) -> Json:
    if now >= job.end:
        return job.body
    view = {key: value for key, value in job.body.items() if key != "tasks"}
    view.update(state="Executing", result="Undetermined", endDateTime=None)
    view["tasks"] = [_task_at(task, now) for task in job.tasks if task.start <= now]
    return view


def _task_at(task: TaskPlan, now: int) -> Json:
    if now >= task.end:
        return task.body
    view = {k: v for k, v in task.body.items() if k not in ("error", "exportOutputFileId")}
    view.update(state="Executing", result="Undetermined", endDateTime=None)
    return view
