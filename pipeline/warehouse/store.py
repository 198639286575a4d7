"""Opening the warehouse file: waiting for its lock, DuckDB settings, and the Warehouse
that holds the connection with its loader and the collector's bookkeeping."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipeline.errors import ITwinRunsError
from pipeline.warehouse.bookkeeping import Bookkeeping
from pipeline.warehouse.ddl import create_all_tables
from pipeline.warehouse.loader import RunLoader
from pipeline.warehouse.statements import execute

# DuckDB caches up to 80% of RAM by default; every connection of ours is held to this so
# memory is bounded by a batch (DuckDB spills beyond it), not by the history.
MEMORY_LIMIT = "512MB"

# Rows per row group of the tables we write (DuckDB's default is 122,880). A checkpoint
# rewrites each table's last, partly filled row group, which with raw payloads of a few
# KB a run is large; smaller groups make frequent commits cheaper for a slightly larger
# file. A setting of the attachment, not stored in the file.
WRITE_ROW_GROUP_SIZE = 16_384

_HOLDER = re.compile(r"[Cc]onflicting lock is held in (.*?) \(PID (\d+)\)")


class WarehouseLockedError(ITwinRunsError):
    """Another process holds the warehouse file's lock for longer than we were willing to wait."""

    def __init__(self, path: Path, holder: str, waited_s: float) -> None:
        self.path = path
        self.holder = holder
        self.waited_s = waited_s
        super().__init__(
            f"the warehouse {path} is in use by {holder}; waited {waited_s:.0f} s for it. "
            "Wait for that process to finish (a collection, load or report in progress) "
            "or stop it, then run the command again."
        )


@dataclass(frozen=True)
class Warehouse:
    """One open warehouse: its connection, what loads batches, what the collector asks."""

    con: duckdb.DuckDBPyConnection
    loader: RunLoader
    bookkeeping: Bookkeeping

    @classmethod
    def over(cls, con: duckdb.DuckDBPyConnection, memory_limit: str | None = None) -> Warehouse:
        """The warehouse over an open connection, its tables created if missing."""
        if memory_limit:
            execute(con, f"SET memory_limit = '{memory_limit}'")
        create_all_tables(con)
        # DuckDB shows its memory limit rounded down, so it is restored as given.
        given = {"memory_limit": memory_limit} if memory_limit else {}
        return cls(con, RunLoader(con, given), Bookkeeping(con))


@contextmanager
def open_warehouse(
    path: str | Path,
    *,
    lock_timeout_s: float = 30.0,
    read_only: bool = False,
    memory_limit: str | None = MEMORY_LIMIT,
) -> Iterator[Warehouse]:
    """Open the warehouse file, waiting up to lock_timeout_s while another process holds it."""
    con = _connect(Path(path), lock_timeout_s, read_only)
    try:
        yield Warehouse.over(con, memory_limit)
    finally:
        con.close()


def _connect(path: Path, timeout_s: float, read_only: bool) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + timeout_s
    delay = 0.05
    while True:
        try:
            if read_only:
                return duckdb.connect(str(path), read_only=True)
            return _attach_for_writing(path)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WarehouseLockedError(path, _holder(str(exc)), timeout_s) from exc
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, 1.0)


def _attach_for_writing(path: Path) -> duckdb.DuckDBPyConnection:
    """A connection whose default database is the warehouse file, with our row group size."""
    # Spill beside the file, as DuckDB does when it opens a file itself (an in-memory
    # database would spill to `.tmp` in the working directory).
    con = duckdb.connect(config={"temp_directory": f"{path}.tmp"})
    try:
        literal = str(path).replace("'", "''")
        execute(con, f"ATTACH '{literal}' AS warehouse (ROW_GROUP_SIZE {WRITE_ROW_GROUP_SIZE})")
        execute(con, "USE warehouse")
    except BaseException:
        con.close()
        raise
    return con


def _holder(message: str) -> str:
    m = _HOLDER.search(message)
    if m is None:
        return f"another process (DuckDB said: {message.strip()})"
    return f"process {m.group(2)} ({m.group(1)})"
