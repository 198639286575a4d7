"""Opening the warehouse file: waiting for its lock, DuckDB settings, and the Warehouse
that holds the connection with its loader and the collector's bookkeeping."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipeline.errors import ITwinRunsError
from pipeline.transform.schema import BOOKKEEPING_TABLES, CORE_TABLES
from pipeline.warehouse.bookkeeping import Bookkeeping
from pipeline.warehouse.ddl import create_all_tables
from pipeline.warehouse.loader import RunLoader
from pipeline.warehouse.rewrites import RunRewriter
from pipeline.warehouse.statements import StatementRunner, execute, first_value, sql_string

# DuckDB caches up to 80% of RAM by default; every connection of ours is held to this so
# memory is bounded by a batch (DuckDB spills beyond it), not by the history.
MEMORY_LIMIT = "512MB"

# Rows per row group of the tables we write (DuckDB's default is 122,880). A checkpoint
# rewrites each table's last, partly filled row group, which with raw payloads of a few
# KB a run is large; smaller groups make frequent commits cheaper for a slightly larger
# file. A setting of the attachment, not stored in the file.
WRITE_ROW_GROUP_SIZE = 8_192

# Every connection we open: DuckDB must never fetch code from the internet because a file
# (say a SQLite one in the warehouse's place) looks like something an extension reads.
NO_EXTENSION_DOWNLOADS = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}

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


class WarehouseFileError(ITwinRunsError):
    """The warehouse file or its folder cannot be used as it is; nothing was written."""


@dataclass(frozen=True)
class Warehouse:
    """One open warehouse: its connection, what loads batches, what rewrites stored runs,
    what the collector asks."""

    con: duckdb.DuckDBPyConnection
    loader: RunLoader
    rewriter: RunRewriter
    bookkeeping: Bookkeeping

    @classmethod
    def over(cls, con: duckdb.DuckDBPyConnection, memory_limit: str | None = None) -> Warehouse:
        """The warehouse over an open connection, its tables created if missing."""
        if memory_limit:
            execute(con, f"SET memory_limit = '{memory_limit}'")
        create_all_tables(con)
        _add_missing_columns(con)
        # DuckDB shows its memory limit rounded down, so it is restored as given.
        given = {"memory_limit": memory_limit} if memory_limit else {}
        statements = StatementRunner(con)
        return cls(con, RunLoader(statements, given), RunRewriter(statements), Bookkeeping(con))

    def table_counts(self) -> dict[str, int]:
        """Rows in each core and bookkeeping table."""
        return {
            name: int(first_value(self.con, f"SELECT count(*) FROM {name}") or 0)
            for name in (*CORE_TABLES, *BOOKKEEPING_TABLES)
        }


@contextmanager
def open_warehouse(
    path: str | Path,
    *,
    lock_timeout_s: float = 30.0,
    read_only: bool = False,
    memory_limit: str | None = MEMORY_LIMIT,
) -> Iterator[Warehouse]:
    """Open the warehouse file, waiting up to lock_timeout_s while another process holds it.

    The file's format is checked before anything is written (see check_storage_version).
    """
    path = Path(path)
    check_storage_version(path)
    if not read_only:
        _check_writable(path)
    con = _connect(path, lock_timeout_s, read_only)
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
                return connect_read_only(path)
            return _attach_for_writing(path)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise _file_error(path, exc) from exc
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WarehouseLockedError(path, _holder(str(exc)), timeout_s) from exc
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, 1.0)
        except duckdb.Error as exc:
            raise _file_error(path, exc) from exc


def _attach_for_writing(path: Path) -> duckdb.DuckDBPyConnection:
    """A connection whose default database is the warehouse file, with our row group size."""
    # Spill beside the file, as DuckDB does when it opens a file itself (an in-memory
    # database would spill to `.tmp` in the working directory).
    con = duckdb.connect(config={"temp_directory": f"{path}.tmp", **NO_EXTENSION_DOWNLOADS})
    try:
        target = sql_string(str(path))
        execute(con, f"ATTACH {target} AS warehouse (ROW_GROUP_SIZE {WRITE_ROW_GROUP_SIZE})")
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


def connect_read_only(path: str | Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the warehouse file, extension downloads off."""
    return duckdb.connect(str(path), read_only=True, config=dict(NO_EXTENSION_DOWNLOADS))


# The main header of a DuckDB file: checksum (8 bytes), "DUCK", the storage version
# number (8 bytes), flags (32 bytes), then the writing library's version text (32 bytes).
_MAGIC = slice(8, 12)
_LIBRARY_VERSION = slice(52, 84)


def check_storage_version(path: Path) -> None:
    """Refuse a warehouse file written by an older major DuckDB, before anything opens it.

    A newer DuckDB can open such a file and change it (create tables) before failing on
    it, leaving a file neither version reads well.
    """
    try:
        with path.open("rb") as f:
            header = f.read(_LIBRARY_VERSION.stop)
    except (FileNotFoundError, NotADirectoryError):
        return  # nothing to check; opening says what is wrong with the folder
    except OSError as exc:
        raise WarehouseFileError(f"cannot read the warehouse {path}: {exc.strerror}") from exc
    if len(header) < _LIBRARY_VERSION.stop or header[_MAGIC] != b"DUCK":
        if header:
            raise WarehouseFileError(
                f"{path} is not a DuckDB database file; move it away or set "
                "ITWIN_RUNS_DATA_DIR to another folder"
            )
        return
    written_by = header[_LIBRARY_VERSION].split(b"\0", 1)[0].decode("ascii", "replace")
    match = re.fullmatch(r"v?(\d+)\.(\d+)\.\S*", written_by)
    ours = int(duckdb.__version__.split(".")[0])
    if match is not None and int(match.group(1)) >= ours:
        return
    raise WarehouseFileError(
        f"the warehouse {path} was written by DuckDB {written_by or 'of an unknown version'} "
        f"and this installation uses DuckDB {duckdb.__version__}; nothing was changed. "
        "Export it with that DuckDB version (EXPORT DATABASE) and import it with this one "
        "(IMPORT DATABASE), or set ITWIN_RUNS_DATA_DIR to a new folder"
    )


def _check_writable(path: Path) -> None:
    """One clear line when the file or its folder cannot be written, before DuckDB tries."""
    folder = path.parent
    if folder.exists() and not folder.is_dir():
        raise WarehouseFileError(
            f"cannot create the data folder {folder}: a file of that name is in the way; "
            "move it or set ITWIN_RUNS_DATA_DIR to another folder"
        )
    if not folder.exists():
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WarehouseFileError(
                f"cannot create the data folder {folder}: {exc.strerror}; "
                "set ITWIN_RUNS_DATA_DIR to a folder you can write"
            ) from exc
    target = path if path.exists() else folder
    if not os.access(target, os.W_OK) or not os.access(folder, os.W_OK | os.X_OK):
        raise WarehouseFileError(
            f"cannot write the warehouse {path}: {target} is read-only; make it writable "
            "or set ITWIN_RUNS_DATA_DIR to a folder you can write"
        )


def _file_error(path: Path, exc: duckdb.Error) -> WarehouseFileError:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return WarehouseFileError(f"cannot open the warehouse {path}: {first}")


def _add_missing_columns(con: duckdb.DuckDBPyConnection) -> None:
    """Columns added to bookkeeping tables since a warehouse was made (skipped read-only)."""
    present = {
        str(name)
        for (name,) in con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE table_name = 'collection_log' "
            "AND database_name = current_database()"
        ).fetchall()
    }
    if "duplicate_keys" not in present:
        execute(con, "ALTER TABLE collection_log ADD COLUMN duplicate_keys BIGINT")
