"""The settings every scripted-API collection test starts from."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.itwin.settings import Secret, Settings
from tests.collection.scripted import BASE, CONN


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        base_url=BASE,
        access_token=Secret("token"),
        connection_ids=(CONN,),
        rate_limit_per_minute=60_000,
        data_dir=tmp_path,
    )
