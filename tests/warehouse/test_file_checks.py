"""The warehouse file is checked before anything is written (issue 22): a file of an older
DuckDB is refused unchanged, a file that is not DuckDB gives a clear error without any
extension download, a read-only folder gives one line naming it."""

from __future__ import annotations

import os
import sqlite3
import struct
from pathlib import Path

import duckdb
import pytest

from pipeline.warehouse.store import (
    NO_EXTENSION_DOWNLOADS,
    WarehouseFileError,
    connect_read_only,
    open_warehouse,
)

_MASK = (1 << 64) - 1


def _with_header(source: Path, target: Path, *, version_number: int, library: bytes) -> None:
    """A copy of a DuckDB file whose main header says another storage and library version
    (with its checksum recomputed, so DuckDB itself would read it)."""
    data = bytearray(source.read_bytes())
    data[12:20] = struct.pack("<Q", version_number)
    data[52:84] = library.ljust(32, b"\0")
    checksum = 5381
    for (word,) in struct.iter_unpack("<Q", bytes(data[8:4096])):
        checksum ^= (word * 0xBF58476D1CE4E5B9) & _MASK
    data[0:8] = struct.pack("<Q", checksum)
    target.write_bytes(bytes(data))


@pytest.fixture
def made(tmp_path: Path) -> Path:
    path = tmp_path / "made.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("create table kept (a int)")
    return path


def test_a_warehouse_of_an_older_duckdb_is_refused_before_anything_is_written(
    tmp_path: Path, made: Path
) -> None:
    old = tmp_path / "warehouse.duckdb"
    _with_header(made, old, version_number=64, library=b"v1.1.3")
    with duckdb.connect(":memory:") as con:  # the crafted header is one DuckDB accepts
        con.execute(f"attach '{old}' as w (read_only)")
    before = old.read_bytes()
    with pytest.raises(WarehouseFileError) as caught, open_warehouse(old):
        pass
    message = str(caught.value)
    assert "DuckDB v1.1.3" in message and duckdb.__version__ in message
    assert "EXPORT DATABASE" in message and "ITWIN_RUNS_DATA_DIR" in message
    assert "\n" not in message
    assert old.read_bytes() == before  # not modified
    assert not Path(f"{old}.wal").exists()


def test_a_warehouse_of_this_duckdb_opens(tmp_path: Path, made: Path) -> None:
    with open_warehouse(made) as warehouse:
        assert warehouse.con.execute("select count(*) from kept").fetchall() == [(0,)]


def test_a_sqlite_file_in_the_warehouse_s_place_is_refused_without_a_download(
    tmp_path: Path,
) -> None:
    path = tmp_path / "warehouse.duckdb"
    with sqlite3.connect(path) as con:
        con.execute("create table t (a)")
    before = path.read_bytes()
    with (
        pytest.raises(WarehouseFileError, match="not a DuckDB database file"),
        open_warehouse(path),
    ):
        pass
    assert path.read_bytes() == before


def test_every_connection_we_open_refuses_to_load_extensions(made: Path) -> None:
    # With auto-loading off, a SQLite scan is refused instead of fetching sqlite_scanner.
    for con in (connect_read_only(made), duckdb.connect(config=dict(NO_EXTENSION_DOWNLOADS))):
        with con:
            settings = con.execute(
                "select current_setting('autoinstall_known_extensions'), "
                "current_setting('autoload_known_extensions')"
            ).fetchall()
            assert settings == [(False, False)]
    with open_warehouse(made) as warehouse:
        settings = warehouse.con.execute(
            "select current_setting('autoinstall_known_extensions'), "
            "current_setting('autoload_known_extensions')"
        ).fetchall()
        assert settings == [(False, False)]


def _refused(path: Path) -> str:
    with pytest.raises(WarehouseFileError) as caught, open_warehouse(path):
        pass
    return str(caught.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a folder without w bits")
def test_a_read_only_data_folder_gives_one_line_naming_it(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        message = _refused(folder / "warehouse.duckdb")
    finally:
        folder.chmod(0o755)
    assert str(folder) in message and "read-only" in message


def test_a_folder_the_process_may_not_write_gives_one_line_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As root (CI containers) permission bits do not stop writes; what the OS says does.
    folder = tmp_path / "ro"
    folder.mkdir()
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != folder)
    message = _refused(folder / "warehouse.duckdb")
    assert str(folder) in message and "read-only" in message and "\n" not in message
    assert not (folder / "warehouse.duckdb").exists()


def test_a_data_folder_that_is_a_file_gives_one_line_naming_it(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("not a folder")
    message = _refused(tmp_path / "data" / "warehouse.duckdb")
    assert "cannot create the data folder" in message and str(tmp_path / "data") in message
