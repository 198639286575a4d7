"""Re-reading stored runs that are not Completed: by id after a connection's pages, or
through the list when an id cannot be addressed."""

from __future__ import annotations

from pipeline.collection.bookkeeping import Bookkeeper
from pipeline.collection.fetching import fetch_runs
from pipeline.collection.loading import CollectedRunsWriter, Handed
from pipeline.collection.results import ConnectionResult
from pipeline.itwin.client import ExportApiClient
from pipeline.itwin.errors import InvalidIdError
from pipeline.itwin.ids import validate_id


class OpenRunRefresher:
    """Re-fetches each connection's open runs (as stored when the collection began)."""

    def __init__(
        self,
        client: ExportApiClient,
        loader: CollectedRunsWriter,
        books: Bookkeeper,
        batch_runs: int,
    ) -> None:
        self.client = client
        self._loader = loader
        self._books = books
        self.batch_runs = batch_runs

    async def refresh(self, connection_id: str, seen: set[str], result: ConnectionResult) -> None:
        """Re-fetch stored runs that are not Completed and were not on the pages just read.

        What was fetched is loaded even when the refresh ended early (its error is raised
        after); runs it did not re-read stay as stored, open, for the next collection.
        """
        todo = [r for r in self._books.open_at_start.get(connection_id, []) if r not in seen]
        refreshed = await fetch_runs(self.client, connection_id, todo, result)
        result.runs_refreshed += len(refreshed.fetched)
        handed: list[Handed] = [*refreshed.fetched, *refreshed.rejected]
        for start in range(0, len(handed), self.batch_runs):
            stats = await self._loader.write(handed[start : start + self.batch_runs])
            result.add_loaded(stats.for_connection(connection_id))
        if refreshed.error is not None:
            raise refreshed.error

    def has_unaddressable(self, connection_id: str) -> bool:
        """An open run whose id cannot be a URL path segment is re-read through the list
        (a full pass reads it there) instead of by id, so it never wedges the connection."""
        for rid in self._books.open_at_start.get(connection_id, []):
            try:
                validate_id(rid, "run_id")
            except InvalidIdError:
                return True
        return False
