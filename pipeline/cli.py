"""`itwin-runs`: what each command does (the arguments and help are in pipeline/arguments.py)."""

from __future__ import annotations

import functools
import logging
import os
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.arguments import build_parser
from pipeline.errors import ConfigError, ITwinRunsError
from pipeline.itwin.settings import Settings, load_settings
from pipeline.warehouse import WAREHOUSE_FILE

if TYPE_CHECKING:
    from pipeline.collection import Progress
    from pipeline.job_outcome import JobOutcome

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# Dagster's console log would repeat every failure with stack traces; the CLI prints its
# own one-line errors and summary instead (-v shows our own debug log).
QUIET_DAGSTER = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def _interactive() -> bool:
    return sys.stderr.isatty() and os.environ.get("CI") is None


@contextmanager
def _progress() -> Iterator[Progress]:
    """Bars on a terminal, plain lines in a pipe or CI, for the collection running in-process."""
    from pipeline.progress import LineProgress, TerminalProgress

    say = functools.partial(print, file=sys.stderr, flush=True)
    sink = TerminalProgress() if _interactive() else LineProgress(say)
    with sink:
        yield sink


def _execute(
    job_name: str,
    settings: Settings,
    config_file: Path | None,
    run_config: dict[str, Any] | None = None,
    progress: Progress | None = None,
) -> JobOutcome:
    """Run a Dagster job in-process on the settings' data dir.

    The resource gets the config file's path and the non-secret settings only: the token
    and client secret are read from the environment or the file when the run starts, so
    they never enter Dagster's run config, event log or metadata. `progress` is told how
    the collection advances.
    """
    from pipeline.definitions import build_definitions
    from pipeline.defs.resources import ITwinApiResource
    from pipeline.job_outcome import outcome_of

    resource = ITwinApiResource(
        base_url=settings.base_url,
        client_id=settings.client_id,
        token_url=settings.token_url,
        scope=settings.scope,
        connection_ids=list(settings.connection_ids),
        imodel_ids=list(settings.imodel_ids),
        rate_limit_per_minute=settings.rate_limit_per_minute,
        config_file=str(config_file) if config_file else None,
    )
    defs = build_definitions(
        data_dir=settings.data_dir,
        itwin_api=resource,
        progress=progress,
        lock_timeout_s=settings.lock_timeout_s,  # every step, not only the collection's
    )
    job = defs.resolve_job_def(job_name)
    config = {**QUIET_DAGSTER, **(run_config or {})}
    result = job.execute_in_process(run_config=config, raise_on_error=False)
    return outcome_of(result)


def _print_step_failures(outcome: JobOutcome) -> None:
    for line in outcome.step_failures:
        print(f"itwin-runs: {line}", file=sys.stderr)


def _signal_exit(signum: int, settings: Settings) -> int:
    """One line and the shell's code for a collection stopped by a signal (130, 143)."""
    name = signal.Signals(signum).name
    print(
        f"itwin-runs: interrupted by {name}: what was fetched is loaded and "
        f"the models describe it (warehouse {settings.data_dir / WAREHOUSE_FILE})",
        file=sys.stderr,
    )
    return 128 + signum


def _rebuild_models(settings: Settings) -> None:
    """After a run interrupted outside the collection, models may describe older tables."""
    from pipeline.warehouse.models import build_models
    from pipeline.warehouse.store import open_warehouse

    with open_warehouse(settings.data_dir / WAREHOUSE_FILE) as warehouse:
        build_models(warehouse.con)


def _summary(
    settings: Settings, *, started: float, collected: bool, failed_checks: Sequence[str] = ()
) -> int:
    """Print runs, failed connections, top causes and output paths; return the exit code."""
    import duckdb

    from pipeline.summary import read_summary

    try:
        summary = read_summary(settings.data_dir)
    except duckdb.Error as exc:  # e.g. another process holds the file
        reason = str(exc).strip().splitlines()[0]
        print(f"itwin-runs: no summary, cannot read the warehouse: {reason}", file=sys.stderr)
        return EXIT_FAILED
    summary.failed_checks = list(failed_checks)
    print(summary.render(seconds=time.monotonic() - started, collected=collected))
    return EXIT_FAILED if collected and summary.failed_connections else EXIT_OK


def cmd_collect(settings: Settings, config_file: Path | None, *, full: bool = False) -> int:
    settings.require_credentials()
    settings.require_targets()
    started = time.monotonic()
    run_config = {"ops": {"collection": {"config": {"full_pass": full}}}}
    from pipeline.collection.stopping import signals_noticed

    with signals_noticed() as first_stop_signal, _progress() as progress:
        outcome = _execute("collect_job", settings, config_file, run_config, progress)
        signum = first_stop_signal()
    if signum is None and not outcome.interrupted:
        _print_step_failures(outcome)
        failed_checks = outcome.failed_checks
        code = _summary(settings, started=started, collected=True, failed_checks=failed_checks)
        return code if outcome.success else EXIT_FAILED
    # A step the signal cut short (whichever error it surfaced as) is not a failure to
    # report, but it may have left the models describing older tables.
    if not outcome.success:
        _rebuild_models(settings)
    return _signal_exit(signum or signal.SIGINT, settings)


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the duration, restoring what was there before."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def simulator_environment(sim: Any) -> dict[str, str]:
    """The ITWIN_* variables for this simulator, using its OAuth client (no static token)."""
    return {**sim.environment(), "ITWIN_ACCESS_TOKEN": ""}


def this_hour() -> datetime:
    """The simulated world ends now (to the hour), so freshness and stuck-run checks read true."""
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def cmd_demo(data_dir: Path) -> int:
    from pipeline.simulator.config import Faults
    from pipeline.simulator.server import SimulatorServer
    from pipeline.simulator.story import demo_config

    # Weeks of history with a story in the last one (a rising code, a new one, a spike
    # day), and mild transient faults the client must ride out.
    config = demo_config(this_hour(), Faults(error_5xx_rate=0.05, seed=7))
    with SimulatorServer(config) as sim:
        print(f"simulator listening on {sim.base_url}", file=sys.stderr)
        env = simulator_environment(sim)
        env.update({"ITWIN_RATE_LIMIT_PER_MINUTE": "5000", "ITWIN_RUNS_DATA_DIR": str(data_dir)})
        # Simulated findings must not reach a real channel: the summary lists them instead.
        env["ITWIN_RUNS_ALERT_WEBHOOK_URL"] = ""
        with _environment(env):
            return cmd_collect(load_settings(os.environ), None)


def _existing_warehouse(settings: Settings) -> Path:
    path = settings.data_dir / WAREHOUSE_FILE
    if not path.exists():
        raise ConfigError(
            f"no warehouse at {path}: run `itwin-runs collect` or `itwin-runs load` first, "
            "or set ITWIN_RUNS_DATA_DIR"
        )
    return path


def cmd_report(settings: Settings, config_file: Path | None, *, full: bool = False) -> int:
    from pipeline.defs.jobs import full_build_run_config

    started = time.monotonic()
    _existing_warehouse(settings)
    return _report(settings, config_file, started, full_build_run_config() if full else None)


def _report(
    settings: Settings,
    config_file: Path | None,
    started: float,
    run_config: dict[str, Any] | None = None,
) -> int:
    outcome = _execute("report_job", settings, config_file, run_config)
    _print_step_failures(outcome)
    if not outcome.success:
        return EXIT_FAILED
    return _summary(settings, started=started, collected=False, failed_checks=outcome.failed_checks)


def cmd_rebuild(settings: Settings, config_file: Path | None) -> int:
    from pipeline.warehouse.store import open_warehouse

    started = time.monotonic()
    path = _existing_warehouse(settings)
    with open_warehouse(path, lock_timeout_s=settings.lock_timeout_s) as warehouse:
        stats = warehouse.rewriter.rebuild_from_raw()
    total = stats.total()
    print(
        f"rebuilt the core tables from {total.new} runs' raw versions "
        f"({total.quarantined} quarantined)",
        file=sys.stderr,
    )
    return _report(settings, config_file, started)


def cmd_load(
    settings: Settings, config_file: Path | None, paths: Sequence[Path], connection: str | None
) -> int:
    from pipeline.progress import FileLoadProgress
    from pipeline.sources.files import load_files
    from pipeline.warehouse.store import open_warehouse

    started = time.monotonic()
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise ConfigError(f"no such file or folder: {', '.join(missing)}")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with (
        open_warehouse(settings.data_dir / WAREHOUSE_FILE) as warehouse,
        FileLoadProgress(_interactive(), sys.stderr) as progress,
    ):
        outcome = load_files(paths, warehouse, default_connection_id=connection, on_batch=progress)
    print(f"loaded {outcome}", file=sys.stderr)
    return _report(settings, config_file, started)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.command == "simulate":
            from pipeline.simulator.cli import serve_forever

            return serve_forever(port=args.port, seed=args.seed)
        if args.command == "dev":
            from pipeline.dev import cmd_dev

            return cmd_dev(args.port)
        settings = load_settings(os.environ, config_file=args.config)
        if args.command == "collect":
            return cmd_collect(settings, args.config, full=args.full)
        if args.command == "demo":
            return cmd_demo(settings.data_dir)
        if args.command == "report":
            return cmd_report(settings, args.config, full=args.full)
        if args.command == "rebuild":
            return cmd_rebuild(settings, args.config)
        if args.command == "load":
            return cmd_load(settings, args.config, args.paths, args.connection)
    except ConfigError as exc:
        print(f"itwin-runs: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ITwinRunsError as exc:
        print(f"itwin-runs: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("itwin-runs: interrupted; what was loaded before stays committed", file=sys.stderr)
        return 130
    parser.error(f"unknown command {args.command}")
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
