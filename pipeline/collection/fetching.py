"""API reads besides the page walk: connections found through iModels, single open runs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pipeline.collection.results import ConnectionResult
from pipeline.errors import ITwinRunsError
from pipeline.itwin.client import ExportApiClient
from pipeline.itwin.errors import ApiError, InvalidIdError, NotFoundError, UnusableAnswerError
from pipeline.itwin.ids import normalize_id, normalize_ids
from pipeline.transform.flatten import FetchedRun, Rejected

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
    # Compared in normal form: a GUID configured in upper case and discovered in lower case
    # is one connection, collected once.
    ids = list(normalize_ids(connection_ids))
    failures: list[ConnectionResult] = []
    for imodel_id in imodel_ids:
        result = ConnectionResult(f"imodel:{imodel_id}", "discovery", now())
        try:
            async for conn in client.list_connections(imodel_id, stats=result.stats):
                cid = conn.get("id") if isinstance(conn, dict) else None
                if isinstance(cid, str) and normalize_id(cid) and normalize_id(cid) not in ids:
                    ids.append(normalize_id(cid))
        except ITwinRunsError as exc:
            result.error, result.imodel_id = as_api_error(exc), imodel_id
            result.ended_at = now()
            log.warning("discovering connections of iModel %s failed: %s", imodel_id, exc)
            failures.append(result)
    return ids, failures


@dataclass
class RefreshedRuns:
    """What re-reading open runs one by one gave: runs to load, answers to quarantine, and
    the error that ended it early (the fetched ones are loaded all the same)."""

    fetched: list[FetchedRun] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    error: ITwinRunsError | None = None


async def fetch_runs(
    client: ExportApiClient, connection_id: str, run_ids: Sequence[str], result: ConnectionResult
) -> RefreshedRuns:
    """Each run by its id, concurrently; a run the API no longer knows (404) is only counted.

    One run never fails the others: an unusable answer is quarantined, an id that cannot
    be put in a URL is skipped (the collector reads such a connection's list whole), and
    the first other error is returned once every fetch has ended.
    """
    out = RefreshedRuns()

    async def fetch(rid: str) -> None:
        try:
            run, fetched_at = await client.get_run(connection_id, rid, stats=result.stats)
        except NotFoundError:
            # Keep the last version we stored.
            log.warning("open run %s of connection %s is gone (404)", rid, connection_id)
            result.runs_vanished += 1
        except UnusableAnswerError as exc:
            reason = f"single-run answer: {exc.reason or exc.message}"
            out.rejected.append(
                Rejected(connection_id, reason, exc.raw, datetime.now(UTC), f"run {rid[:100]}")
            )
        except InvalidIdError as exc:
            log.warning("open run of connection %s not re-read by id: %s", connection_id, exc)
        except ITwinRunsError as exc:
            out.error = out.error or exc
        else:
            out.fetched.append(FetchedRun(connection_id, run, fetched_at))

    await asyncio.gather(*(fetch(r) for r in run_ids))
    return out
