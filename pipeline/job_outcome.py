"""What the CLI reads from an in-process Dagster run: failed steps as one line each, failed
asset checks, and whether Dagster's interrupt ended a step."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


@dataclass
class JobOutcome:
    """What the CLI needs of an in-process Dagster run besides its log."""

    success: bool
    step_failures: list[str] = field(default_factory=list)  # one line each
    failed_checks: list[str] = field(default_factory=list)  # one line each
    interrupted: bool = False  # Dagster's interrupt ended a step (a signal outside the loop)


def outcome_of(result: Any) -> JobOutcome:
    """The outcome of an `execute_in_process` result, from its events."""
    from dagster import DagsterEventType

    outcome = JobOutcome(bool(result.success))
    for event in result.all_events:
        if event.event_type == DagsterEventType.STEP_FAILURE:
            error = event.step_failure_data.error
            if _is_interrupt(error):
                outcome.interrupted = True
            else:
                outcome.step_failures.append(f"step {event.step_key} failed: {_root_cause(error)}")
        elif event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION and (
            line := _failed_check(event.asset_check_evaluation_data)
        ):
            outcome.failed_checks.append(line)
    return outcome


def _is_interrupt(error: Any) -> bool:
    while error is not None:
        if error.cls_name in ("DagsterExecutionInterruptedError", "KeyboardInterrupt"):
            return True
        error = error.cause
    return False


def _failed_check(evaluation: Any) -> str | None:
    """One line for a check that did not pass: asset, check, severity and what it found."""
    if evaluation is None or evaluation.passed:
        return None
    asset = "/".join(evaluation.asset_key.path)
    severity = getattr(evaluation.severity, "value", str(evaluation.severity))
    found = evaluation.description or ", ".join(
        f"{key} {getattr(value, 'value', value)}"
        for key, value in evaluation.metadata.items()
        if isinstance(getattr(value, "value", value), int | float | str)
        and len(str(getattr(value, "value", value))) < 80
    )
    return f"{asset} {evaluation.check_name} ({severity}): {found}"


def _root_cause(error: Any) -> str:
    """The first error in the chain that is not Dagster's wrapper, as one line a user can
    act on: its message (an exception without one is named, with where to see more)."""
    while error is not None and error.cls_name and error.cls_name.startswith("Dagster"):
        if error.cause is None:
            break
        error = error.cause
    if error is None:
        return "unknown error (run with -v to see the log)"
    lines = error.message.strip().splitlines()
    first = lines[0] if lines else ""
    # Dagster's message is "module.ClassName: text"; the class means nothing to a user.
    if error.cls_name:
        first = re.sub(rf"^(?:[\w.]+\.)?{re.escape(error.cls_name)}(?::\s*|$)", "", first)
    if first.strip():
        return first.strip()
    return f"{error.cls_name or 'an error'} without a message (run with -v to see the log)"
