"""Shared fixtures of the reliability suite: trial counts, recorded figures, clean baselines.

Figures (trials, failures, shares) are printed at the end of the session and, when
RELIABILITY_FIGURES names a file, written there as JSON lines for docs/RELIABILITY.md.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.helpers import Baselines

_FIGURES: list[dict[str, Any]] = []


def trials(name: str, default: int) -> int:
    """A trial count, overridable as RELIABILITY_<NAME> (e.g. RELIABILITY_CRASH_TRIALS)."""
    return int(os.environ.get(f"RELIABILITY_{name.upper()}", default))


@pytest.fixture(scope="session")
def figures() -> Iterator[list[dict[str, Any]]]:
    yield _FIGURES


@pytest.fixture(scope="session")
def baselines(tmp_path_factory: pytest.TempPathFactory) -> Baselines:
    return Baselines(tmp_path_factory.mktemp("baselines"))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _FIGURES:
        return
    terminalreporter.section("reliability figures")
    for figure in _FIGURES:
        terminalreporter.write_line(json.dumps(figure, sort_keys=True, default=str))
    target = os.environ.get("RELIABILITY_FIGURES")
    if target:
        with Path(target).open("a", encoding="utf-8") as out:
            for figure in _FIGURES:
                out.write(json.dumps(figure, sort_keys=True, default=str) + "\n")
