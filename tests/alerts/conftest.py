from __future__ import annotations

from collections.abc import Iterator

import duckdb
import pytest

from tests.alerts.support import Receiver, free_port, model_tables, serving


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = model_tables(duckdb.connect())
    yield connection
    connection.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with serving(Receiver(port=free_port())) as running:
        yield running
