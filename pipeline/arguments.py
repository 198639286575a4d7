"""The `itwin-runs` command line: every command and argument, with help and an example."""

from __future__ import annotations

import argparse
from pathlib import Path

DESCRIPTION = """Collect iTwin Export API runs into a DuckDB warehouse, model failure rates and
report them (Parquet files and an HTML page). Run `itwin-runs COMMAND --help` for a
command's options and an example."""

TOP_EXAMPLES = """examples:
  itwin-runs demo                      # the whole job against the built-in simulator
  ITWIN_IMODEL_IDS=7dbd531d-... itwin-runs collect
  itwin-runs --config itwin-runs.yaml report
"""


def _command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    summary: str,
    example: str,
    details: str = "",
) -> argparse.ArgumentParser:
    """A subcommand whose --help gives its summary, details and an example."""
    return sub.add_parser(
        name,
        help=summary,
        description=f"{summary[0].upper()}{summary[1:]}.\n\n{details}".strip(),
        epilog=f"example:\n{example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="itwin-runs",
        description=DESCRIPTION,
        epilog=TOP_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="YAML settings file (else $ITWIN_RUNS_CONFIG), e.g. itwin.yaml",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", title="commands")
    collect = _command(
        sub,
        "collect",
        "fetch, flatten, load, model and report (the production job, in-process)",
        "  export ITWIN_CLIENT_ID=my-app ITWIN_CLIENT_SECRET=... ITWIN_IMODEL_IDS=7dbd531d-...\n"
        "  itwin-runs collect",
        "Exits 0 when every connection was collected, 1 when some failed (the others are\n"
        "still loaded and reported), 2 for a configuration problem.",
    )
    collect.add_argument(
        "--full",
        action="store_true",
        help="read every page of every connection, not only the newest (e.g. after an outage)",
    )
    _command(
        sub,
        "demo",
        "collect from the built-in simulator and report",
        "  ITWIN_RUNS_DATA_DIR=/tmp/itwin-demo itwin-runs demo",
    )
    sim = _command(
        sub,
        "simulate",
        "serve the built-in Export API simulator alone",
        "  itwin-runs simulate --port 8765 --seed 7   # prints the ITWIN_* variables to export",
    )
    sim.add_argument("--port", type=int, default=8765, help="loopback port (default 8765)")
    sim.add_argument(
        "--seed", type=int, default=7, help="seed of the simulated runs and faults (default 7)"
    )
    report = _command(
        sub,
        "report",
        "rebuild models and reports from the warehouse, no API calls",
        "  ITWIN_RUNS_DATA_DIR=data itwin-runs report\n"
        "  itwin-runs report --full   # e.g. after editing a model by hand",
        "Only the models whose inputs or SQL changed since the last build are rebuilt,\n"
        "and only the reports whose models changed are rewritten.",
    )
    report.add_argument(
        "--full",
        action="store_true",
        help="rebuild every model and rewrite every report, whatever was built before",
    )
    _command(
        sub,
        "rebuild",
        "rebuild the core tables from the raw versions kept in the warehouse, then report",
        "  itwin-runs rebuild   # e.g. after a flattening fix, or if core tables were damaged",
        "Every run's latest raw version is flattened again; no API call is made.",
    )
    load = _command(
        sub,
        "load",
        "load saved API answers (files or folders) and report",
        "  itwin-runs load saved/runs-page-1.json saved/more/ --connection fc226d0d-...",
        "Takes list pages, single-run answers or NDJSON of either; a folder means every\n"
        ".json/.ndjson file in it.",
    )
    load.add_argument(
        "paths",
        nargs="+",
        type=Path,
        metavar="PATH",
        help="files or folders of saved answers, e.g. saved/",
    )
    load.add_argument(
        "--connection",
        metavar="ID",
        help="connection id for runs that carry none, e.g. fc226d0d-...",
    )
    dev = _command(
        sub,
        "dev",
        "the Dagster UI against the simulator (make dev)",
        "  itwin-runs dev --port 3000   # then open http://127.0.0.1:3000",
        "Stopping it (Ctrl-C or SIGTERM) stops dagster dev and everything it started.",
    )
    dev.add_argument("--port", type=int, default=3000, help="Dagster UI port (default 3000)")
    return parser
