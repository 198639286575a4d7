"""What the collection tests' scripted APIs share: where they answer and how."""

from __future__ import annotations

import json
from typing import Any

import httpx

from pipeline.itwin.settings import Settings
from pipeline.warehouse.store import open_warehouse

BASE = "https://api.test"
CONN = "conn-1"


def json_answer(status: int, body: dict[str, Any]) -> httpx.Response:
    return httpx.Response(
        status, content=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )


def connection_answer(connection_id: str) -> httpx.Response:
    """`GET /export/connections/{id}`: the details a configured connection is read with."""
    return json_answer(200, {"connection": {"id": connection_id, "displayName": "One"}})


def stored(settings: Settings, sql: str) -> list[tuple[Any, ...]]:
    with open_warehouse(settings.data_dir / "warehouse.duckdb") as warehouse:
        return warehouse.con.execute(sql).fetchall()
