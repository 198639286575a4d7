"""Export the report models as `reports/<model>.parquet`, each replaced atomically.

Every file is written under a temporary name in the same directory, fsynced, then moved
over the final name with `os.replace`, so a reader sees the old file or the new one and
never a half-written one. Temporary names start with a dot and end in `.tmp`; those a
crash left behind are removed by the next export.
"""

from __future__ import annotations

import contextlib
import functools
import os
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

import duckdb

from pipeline.warehouse.builds import ABSENT, record_written, written_version
from pipeline.warehouse.models import list_models, model_versions, report_models
from pipeline.warehouse.statements import sql_string

TEMP_SUFFIX = ".tmp"


def _temp_path(final: Path) -> Path:
    # Unique per attempt so two writers never share a temp file; never the final name.
    return final.with_name(f".{final.name}.{uuid.uuid4().hex}{TEMP_SUFFIX}")


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not every platform can open a directory.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(final: Path, write: Callable[[Path], None]) -> None:
    """Call `write(temp_path)`, fsync the result, then move it over `final`."""
    final.parent.mkdir(parents=True, exist_ok=True)
    temp = _temp_path(final)
    try:
        write(temp)
        with open(temp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(temp, final)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_dir(final.parent)


def _remove_stale_temp_files(final: Path) -> None:
    """Delete the temp files an interrupted write of `final` left beside it."""
    for stale in final.parent.glob(f".{final.name}.*{TEMP_SUFFIX}"):
        stale.unlink(missing_ok=True)


def _copy_to_parquet(con: duckdb.DuckDBPyConnection, model: str, target: Path) -> None:
    # `model` is checked against the known model names before it reaches SQL.
    con.execute(f"copy (select * from {model}) to {sql_string(str(target))} (format parquet)")


def write_if_changed(
    con: duckdb.DuckDBPyConnection,
    final: Path,
    version: str,
    write: Callable[[Path], None],
    *,
    force: bool = False,
) -> bool:
    """Write `final` atomically unless it exists and was written from `version`.

    Returns whether it was written. The version is recorded in the warehouse after the
    file is in place, so an interrupted write is redone by the next call; temp files a
    killed earlier write left beside `final` are removed first, written or not.
    """
    _remove_stale_temp_files(final)
    key = str(final.resolve())
    if not force and final.exists() and written_version(con, key) == version:
        return False
    atomic_write(final, write)
    record_written(con, key, version)
    return True


def export_parquet(
    con: duckdb.DuckDBPyConnection,
    reports_dir: Path,
    models: Iterable[str] | None = None,
    *,
    sql_dir: Path | None = None,
    force: bool = False,
) -> dict[str, Path]:
    """Write each model's table (default: every model in sql/marts/) to
    `reports_dir/<model>.parquet`; return model -> path.

    A file already written from the version its model holds now is left as it is
    (`force` rewrites every one)."""
    wanted = list(report_models(sql_dir) if models is None else models)
    known = {m.name for m in list_models(sql_dir)}
    unknown = [m for m in wanted if m not in known]
    if unknown:
        raise ValueError(f"no such model: {', '.join(unknown)}")
    reports_dir = Path(reports_dir)
    reports_dir.mkdir(parents=True, exist_ok=True)
    versions = model_versions(con, sql_dir)
    written: dict[str, Path] = {}
    for model in wanted:
        final = reports_dir / f"{model}.parquet"
        write = functools.partial(_copy_to_parquet, con, model)
        # A table no build recorded (an older warehouse) may hold anything: always written.
        held = versions[model]
        write_if_changed(con, final, held, write, force=force or held == ABSENT)
        written[model] = final
    return written
