"""sql/ ships inside the wheel, and the model loader finds it there once installed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from pipeline.warehouse.models import SQL_DIR, list_models

ROOT = Path(__file__).resolve().parents[2]

FIND_MODELS = (
    "import json; from pipeline.warehouse.models import SQL_DIR, list_models; "
    "print(json.dumps([str(SQL_DIR), [[m.kind, m.name] for m in list_models()]]))"
)


def build_wheel(out: Path) -> Path:
    # hatchling is the project's build backend; calling it directly needs no network.
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=120,
    )
    (wheel,) = out.glob("itwin_runs-*.whl")
    return wheel


def test_the_wheel_carries_every_model_and_the_loader_finds_them(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "dist")
    with zipfile.ZipFile(wheel) as archive:
        shipped = {n for n in archive.namelist() if n.endswith(".sql")}
        archive.extractall(tmp_path / "site")
    in_repo = {f"pipeline/sql/{p.relative_to(SQL_DIR).as_posix()}" for p in SQL_DIR.rglob("*.sql")}
    assert in_repo and shipped == in_repo

    # The unpacked wheel comes first on the path, as an installed package would.
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    done = subprocess.run(
        [sys.executable, "-c", FIND_MODELS],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    sql_dir, models = json.loads(done.stdout)
    assert Path(sql_dir) == tmp_path / "site" / "pipeline" / "sql"
    assert models == [[m.kind, m.name] for m in list_models()]


def test_in_a_checkout_the_loader_reads_the_repository_sql() -> None:
    assert SQL_DIR == ROOT / "sql"
