"""API reads besides the page walk: connections found through iModels, single open runs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pipeline.collection.connections import ConnectionDetails, parse_connection
from pipeline.collection.results import ConnectionResult
from pipeline.errors import ITwinRunsError
from pipeline.itwin.client import CallStats, ExportApiClient
from pipeline.itwin.errors import ApiError, InvalidIdError, NotFoundError, UnusableAnswerError
from pipeline.itwin.ids import normalize_id
from pipeline.transform.flatten import FetchedRun, Rejected

log = logging.getLogger("pipeline.collection")


def as_api_error(exc: ITwinRunsError) -> ApiError:
    return exc if isinstance(exc, ApiError) else ApiError(message=str(exc))


@dataclass
class Discovery:
    """Configured connection ids plus those of the iModels (each once, normalised), the
    details of the discovered ones, and the iModels whose listing failed."""

    connection_ids: list[str] = field(default_factory=list)
    details: list[ConnectionDetails] = field(default_factory=list)
    failures: list[ConnectionResult] = field(default_factory=list)
    stats: CallStats = field(default_factory=CallStats)  # of the listings read whole


async def discover_connections(
    client: ExportApiClient,
    connection_ids: Sequence[str],
    imodel_ids: Sequence[str],
    now: Callable[[], datetime],
) -> Discovery:
    """Read each iModel's connection listing; keep the connection objects it returns."""
    found = Discovery(list(dict.fromkeys(normalize_id(c) for c in connection_ids)))
    failures = found.failures
    for imodel_id in imodel_ids:
        result = ConnectionResult(f"imodel:{imodel_id}", "discovery", now())
        try:
            async for conn in client.list_connections(imodel_id, stats=result.stats):
                details = parse_connection(conn, now())
                if details is None:
                    log.warning("iModel %s listed a connection without a usable id", imodel_id)
                    continue
                if details.connection_id not in found.connection_ids:
                    found.connection_ids.append(details.connection_id)
                found.details.append(details)
            found.stats.add(result.stats)
        except ITwinRunsError as exc:
            result.error, result.imodel_id = as_api_error(exc), imodel_id
            result.ended_at = now()
            log.warning("discovering connections of iModel %s failed: %s", imodel_id, exc)
            failures.append(result)
    return found


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
