"""API reads besides the page walk: connections found through iModels, single open runs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from pipeline.collection.results import ConnectionResult
from pipeline.errors import ITwinRunsError
from pipeline.itwin.client import ExportApiClient
from pipeline.itwin.errors import ApiError, NotFoundError
from pipeline.transform.flatten import FetchedRun

log = logging.getLogger("pipeline.collection")


def as_api_error(exc: ITwinRunsError) -> ApiError:
    return exc if isinstance(exc, ApiError) else ApiError(message=str(exc))


async def discover_connections(
    client: ExportApiClient,
    connection_ids: Sequence[str],
    imodel_ids: Sequence[str],
    now: Callable[[], datetime],
) -> tuple[list[str], list[ConnectionResult]]:
    """Configured connection ids plus those of the iModels, each once; failed discoveries."""
    ids = list(dict.fromkeys(connection_ids))
    failures: list[ConnectionResult] = []
    for imodel_id in imodel_ids:
        result = ConnectionResult(f"imodel:{imodel_id}", "discovery", now())
        try:
            async for conn in client.list_connections(imodel_id, stats=result.stats):
                cid = conn.get("id") if isinstance(conn, dict) else None
                if isinstance(cid, str) and cid not in ids:
                    ids.append(cid)
        except ITwinRunsError as exc:
            result.error, result.imodel_id = as_api_error(exc), imodel_id
            result.ended_at = now()
            log.warning("discovering connections of iModel %s failed: %s", imodel_id, exc)
            failures.append(result)
    return ids, failures


async def fetch_runs(
    client: ExportApiClient, connection_id: str, run_ids: Sequence[str], result: ConnectionResult
) -> list[FetchedRun]:
    """Each run by its id, concurrently; a run the API no longer knows (404) is only counted."""

    async def fetch(rid: str) -> FetchedRun | None:
        try:
            run, fetched_at = await client.get_run(connection_id, rid, stats=result.stats)
        except NotFoundError:
            # Keep the last version we stored.
            log.warning("open run %s of connection %s is gone (404)", rid, connection_id)
            result.runs_vanished += 1
            return None
        return FetchedRun(connection_id, run, fetched_at)

    return [f for f in await asyncio.gather(*(fetch(r) for r in run_ids)) if f is not None]
