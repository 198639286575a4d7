"""reports/<model>.parquet: complete files only, under their final names."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.warehouse import export
from pipeline.warehouse.export import export_parquet
from pipeline.warehouse.models import report_models
from tests.models.builders import mixed_warehouse


def test_exports_every_report_model(tmp_path: Path) -> None:
    con = mixed_warehouse().build()
    paths = export_parquet(con, tmp_path / "reports")
    assert set(paths) == set(report_models())
    for model, path in paths.items():
        assert path == tmp_path / "reports" / f"{model}.parquet"
        table = pq.read_table(path)
        expected = con.execute(f"select count(*) from {model}").fetchone()
        assert expected is not None
        assert table.num_rows == expected[0]
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == sorted(
        f"{m}.parquet" for m in report_models()
    )
    daily = pq.read_table(paths["failure_daily"])
    assert str(daily.schema.field("day").type) == "date32[day]"


def crash_mid_write(con: object, model: str, target: Path) -> None:
    target.write_bytes(b"PAR1 half a file")
    raise KeyboardInterrupt("killed mid-write")


def test_crash_mid_write_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    con = mixed_warehouse().build()
    old = export_parquet(con, tmp_path, ["failure_daily"])["failure_daily"]
    old_bytes = old.read_bytes()
    con.execute("delete from runs")
    con.execute("create or replace table failure_daily as select * from failure_daily limit 0")

    monkeypatch.setattr(export, "_copy_to_parquet", crash_mid_write)
    with pytest.raises(KeyboardInterrupt):  # forced: no build saw the table edited by hand
        export_parquet(con, tmp_path, ["failure_daily"], force=True)
    # a reader still sees the complete old file, and no temp file is left behind
    assert old.read_bytes() == old_bytes
    assert pq.read_table(old).num_rows == 3
    assert [p.name for p in tmp_path.iterdir()] == ["failure_daily.parquet"]

    monkeypatch.undo()
    export_parquet(con, tmp_path, ["failure_daily"], force=True)
    assert pq.read_table(old).num_rows == 0


def test_crash_before_first_write_leaves_no_final_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    con = mixed_warehouse().build()
    monkeypatch.setattr(export, "_copy_to_parquet", crash_mid_write)
    with pytest.raises(KeyboardInterrupt):
        export_parquet(con, tmp_path, ["failure_daily"])
    assert list(tmp_path.iterdir()) == []


def test_leftover_temp_files_are_removed_by_the_next_export(tmp_path: Path) -> None:
    # what a killed process (no chance to clean up) leaves behind
    stale = tmp_path / ".failure_daily.parquet.0123abcd.tmp"
    stale.write_bytes(b"PAR1 half")
    unrelated = tmp_path / "notes.txt"
    unrelated.write_text("keep me")
    con = mixed_warehouse().build()
    export_parquet(con, tmp_path, ["failure_daily"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["failure_daily.parquet", "notes.txt"]


def test_temp_name_is_never_the_final_name(tmp_path: Path) -> None:
    final = tmp_path / "failure_daily.parquet"
    temp = export._temp_path(final)
    assert temp.parent == final.parent
    assert temp.name != final.name
    assert temp.name.startswith(".") and temp.name.endswith(".tmp")


def test_unknown_model_is_refused(tmp_path: Path) -> None:
    con = mixed_warehouse().build()
    with pytest.raises(ValueError, match="no such model"):
        export_parquet(con, tmp_path, ["runs; drop table runs"])
