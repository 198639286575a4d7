"""`itwin-runs`: the command line (collect, demo, simulate, report, load)."""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="itwin-runs", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sim = sub.add_parser("simulate", help="serve the built-in Export API simulator alone")
    sim.add_argument("--port", type=int, default=8765)
    sim.add_argument("--seed", type=int, default=7)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "simulate":
        from pipeline.simulator.cli import serve_forever

        return serve_forever(port=args.port, seed=args.seed)
    return 2


if __name__ == "__main__":
    sys.exit(main())
