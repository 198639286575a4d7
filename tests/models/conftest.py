from __future__ import annotations

from collections.abc import Iterator

import duckdb
import pytest

from tests.models.builders import mixed_warehouse


@pytest.fixture
def mixed() -> Iterator[duckdb.DuckDBPyConnection]:
    con = mixed_warehouse().build()
    yield con
    con.close()
