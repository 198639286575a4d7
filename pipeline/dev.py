"""`itwin-runs dev`: the simulator plus `dagster dev`, stopped together.

`dagster dev` starts a webserver and a daemon of its own. It runs in a process group
of its own, and SIGTERM or SIGINT sent to `itwin-runs dev` is passed to that whole
group, so stopping the command (a supervisor, `kill`, Ctrl-C) leaves nothing running.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
GRACE_S = 10.0  # how long the group gets to shut down cleanly before SIGKILL


class _Stop(Exception):
    """Raised by the signal handler to leave the wait for the child."""


def dagster_dev_command(port: int) -> list[str]:
    dagster = Path(sys.executable).with_name("dagster")
    return [str(dagster), "dev", "-w", "workspace.yaml", "-p", str(port), "-h", "127.0.0.1"]


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    """Whether a process of the group is still running (zombies waiting to be reaped are not)."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for stat in proc.glob("[0-9]*/stat"):
        try:
            # pid (comm) state ppid pgrp ...: comm may hold spaces, so split after ")".
            state, _ppid, pgrp = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, ValueError):
            continue
        if int(pgrp) == pgid and state not in ("Z", "X"):
            return True
    return False


def _stop_group(pgid: int, grace_s: float) -> None:
    """SIGTERM the group, wait up to grace_s for it to go, then SIGKILL what is left."""
    _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while _group_alive(pgid):
        if time.monotonic() > deadline:
            _signal_group(pgid, signal.SIGKILL)
            return
        time.sleep(0.05)


def run_process_group(
    cmd: Sequence[str], env: dict[str, str], *, grace_s: float = GRACE_S
) -> tuple[int, bool]:
    """Run `cmd` in a new process group until it exits or this process is told to stop.

    Returns the child's exit code and whether a stop signal ended it. Either way the
    whole group is stopped before returning, so no grandchild outlives the command.
    """

    def stop(signum: int, frame: FrameType | None) -> None:
        raise _Stop

    previous = {sig: signal.signal(sig, stop) for sig in STOP_SIGNALS}
    child: subprocess.Popen[bytes] | None = None
    stopped = False
    try:
        try:
            child = subprocess.Popen(list(cmd), env=env, start_new_session=True)  # noqa: S603
            child.wait()
        except _Stop:
            stopped = True
            for sig in STOP_SIGNALS:  # a second Ctrl-C must not cut the shutdown short
                signal.signal(sig, signal.SIG_IGN)
        if child is None:  # stopped before the child was started
            return 0, True
        _stop_group(child.pid, grace_s)
        code = child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code, stopped


def cmd_dev(port: int) -> int:
    from pipeline.cli import simulator_environment, this_hour
    from pipeline.simulator.config import SimulatorConfig
    from pipeline.simulator.server import SimulatorServer

    config = SimulatorConfig(seed=7, realtime_speed=60.0, start_time=this_hour())
    with SimulatorServer(config) as sim:
        env = {**os.environ, **simulator_environment(sim)}
        # A persistent instance, so schedule state and run history survive restarts.
        home = Path(env.get("DAGSTER_HOME") or ".dagster_home").resolve()
        home.mkdir(parents=True, exist_ok=True)
        env["DAGSTER_HOME"] = str(home)
        print(
            f"simulator on {sim.base_url}; Dagster UI on http://127.0.0.1:{port}", file=sys.stderr
        )
        code, stopped = run_process_group(dagster_dev_command(port), env)
    if stopped:
        print("itwin-runs: stopped dagster dev and the simulator", file=sys.stderr)
        return 0
    return code
