"""Running a benchmark child and watching its process tree; the machine it ran on."""

from __future__ import annotations

import os
import platform
import resource
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / ".work"
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
CLI = Path(sys.executable).with_name("itwin-runs")


@dataclass
class Measured:
    wall_s: float
    peak_tree_mb: float
    returncode: int
    stdout: str = ""
    stderr: str = ""
    marks: dict[str, float] = field(default_factory=dict)  # stderr line prefix -> seconds
    cpu_s: float = 0.0  # user + system CPU of the process and the children it waited for


def run_watched(
    cmd: list[str], env: dict[str, str], marks: tuple[str, ...] = (), cwd: Path = ROOT
) -> Measured:
    """Run `cmd`, sampling the RSS of it and all its children every 20 ms (the sum's peak)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    peak = [0.0]
    seen: dict[str, float] = {}
    err_lines: list[str] = []

    def sample() -> None:
        root = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                procs = [root, *root.children(recursive=True)]
                total = sum(p.memory_info().rss for p in procs if p.is_running())
            except psutil.Error:
                continue
            peak[0] = max(peak[0], total / 2**20)
            time.sleep(0.02)

    def read_err() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            err_lines.append(line)
            for prefix in marks:
                if line.startswith(prefix) and prefix not in seen:
                    seen[prefix] = time.perf_counter() - started

    threads = [threading.Thread(target=sample), threading.Thread(target=read_err)]
    for t in threads:
        t.start()
    out = proc.stdout.read() if proc.stdout else ""
    proc.wait()
    wall = time.perf_counter() - started
    for t in threads:
        t.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return Measured(wall, peak[0], proc.returncode, out, "".join(err_lines), seen, cpu)


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def machine() -> dict[str, str]:
    import dagster
    import duckdb
    import httpx
    import orjson
    import pyarrow

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": f"{cpu} x {os.cpu_count()}",
        "memory": f"{psutil.virtual_memory().total / 2**30:.0f} GiB",
        "os": platform.platform(),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "pyarrow": pyarrow.__version__,
        "orjson": orjson.__version__,
        "dagster": dagster.__version__,
        "httpx": httpx.__version__,
    }


def med(values: list[float]) -> float:
    return statistics.median(values)
