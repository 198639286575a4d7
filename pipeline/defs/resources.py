"""Dagster resources: configuration only; they build the plain clients the assets use."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import httpx

from pipeline.itwin.settings import Settings, load_settings
from pipeline.warehouse.store import Warehouse, open_warehouse


class ITwinApiResource(dg.ConfigurableResource["ITwinApiResource"]):
    """Where and how to reach the Export API.

    Unset fields fall back to the ITWIN_* environment variables and the optional
    config file (ITWIN_RUNS_CONFIG), read when a run starts, never at import. Secrets
    (the client secret, the alert webhook URL) can be given in run config as
    `{"env": "ITWIN_CLIENT_SECRET"}` (Dagster's EnvVar), so they never sit in the
    launchpad or the event log.
    """

    base_url: str | None = None
    access_token: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    token_url: str | None = None
    scope: str | None = None
    connection_ids: list[str] = []
    imodel_ids: list[str] = []
    rate_limit_per_minute: float | None = None
    rate_limit_per_hour: float | None = None
    max_wait_s: float | None = None
    alert_webhook_url: str | None = None
    config_file: str | None = None

    def settings(self, **overrides: Any) -> Settings:
        """The effective settings: defaults < config file < environment < resource < overrides."""
        from_resource = {
            name: getattr(self, name)
            for name in (
                "base_url",
                "access_token",
                "client_id",
                "client_secret",
                "token_url",
                "scope",
                "rate_limit_per_minute",
                "rate_limit_per_hour",
                "max_wait_s",
                "alert_webhook_url",
            )
            if getattr(self, name) is not None
        }
        if self.connection_ids:
            from_resource["connection_ids"] = list(self.connection_ids)
        if self.imodel_ids:
            from_resource["imodel_ids"] = list(self.imodel_ids)
        from_resource.update({k: v for k, v in overrides.items() if v not in (None, [], ())})
        config_file = Path(self.config_file) if self.config_file else None
        return load_settings(os.environ, config_file=config_file, overrides=from_resource)

    def transport(self) -> httpx.AsyncBaseTransport | None:
        """The client's HTTP transport: None for httpx's own; asset tests override this
        (e.g. with an httpx.MockTransport), so they need no server."""
        return None


class WarehouseResource(dg.ConfigurableResource["WarehouseResource"]):
    """The DuckDB warehouse file, opened the one way every writer of it opens it.

    `open_warehouse` attaches the file with the loader's row group size (see
    store.WRITE_ROW_GROUP_SIZE): a connection with DuckDB's default would rewrite and
    recompress every table on its first checkpoint. Like every open of the file, it
    waits up to `lock_timeout_s` for another process's lock and then names that process.
    Its folder is created on the first open, not when the definitions load.
    """

    database: str
    lock_timeout_s: float = 30.0

    @property
    def path(self) -> Path:
        return Path(self.database)

    @contextmanager
    def open(self, lock_timeout_s: float | None = None) -> Iterator[Warehouse]:
        timeout = self.lock_timeout_s if lock_timeout_s is None else lock_timeout_s
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open_warehouse(self.path, lock_timeout_s=timeout) as warehouse:
            yield warehouse

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self.open() as warehouse:
            yield warehouse.con
