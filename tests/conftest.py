"""Suite-wide scheduling: the longest tests start first.

`make test` runs pytest-xdist with `--maxschedchunk 1`, so workers take tests one at a
time in collection order; a long test collected last would keep one worker busy after
the others have finished. Tests marked `long` are moved to the front; they still run
(and fail) exactly as before.
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.get_closest_marker("long") is None)  # stable sort
