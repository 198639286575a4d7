"""`python -m pipeline.simulator`: serve a simulator of any size in its own process.

`itwin-runs simulate` serves the default data set; benchmarks and manual trials need the sizes,
latency and faults on the command line, and a separate process so the server's work does not
share a GIL with the client being measured.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

import orjson

from pipeline.simulator.cli import describe
from pipeline.simulator.config import Faults, SimulatorConfig
from pipeline.simulator.server import SimulatorServer


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m pipeline.simulator", description=__doc__)
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--connections", type=int, default=6)
    p.add_argument("--imodels", type=int, default=2)
    p.add_argument("--runs", type=int, default=60, help="runs per connection at the start")
    p.add_argument("--page-cap", type=int, default=50)
    p.add_argument("--proper-links", action="store_true", help="`?$skip=` next links")
    p.add_argument("--order", choices=["newest_first", "oldest_first", "unordered"])
    p.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    p.add_argument("--rate-limit", type=float, help="server-side limit, requests a minute")
    p.add_argument("--token-lifetime", type=float, default=3600.0)
    p.add_argument("--realtime-speed", type=float, help="simulated seconds per wall second")
    p.add_argument("--story", action="store_true", help="the demo's last week: rising, new, spike")
    p.add_argument("--warm", action="store_true", help="render every run before serving")
    p.add_argument("--json", action="store_true", help="print one JSON line for harnesses")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    config = SimulatorConfig(
        seed=args.seed,
        connections=args.connections,
        imodels=args.imodels,
        runs_per_connection=args.runs,
        page_cap=args.page_cap,
        malformed_next_links=not args.proper_links,
        order=args.order or "newest_first",
        token_lifetime_s=args.token_lifetime,
        realtime_speed=args.realtime_speed,
        faults=Faults(latency_s=args.latency, rate_limit_per_minute=args.rate_limit),
        story=args.story,
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with SimulatorServer(config, port=args.port) as sim:
        if args.warm:
            sim.world.warm()
        if args.json:
            info = {
                "base_url": sim.base_url,
                "token_url": sim.token_url,
                "static_token": sim.static_token,
                "client_id": sim.client_id,
                "client_secret": sim.client_secret,
                "connection_ids": sim.connection_ids,
                "direct_connection_ids": sim.direct_connection_ids,
                "imodel_ids": sim.imodel_ids,
            }
            sys.stdout.write(orjson.dumps(info).decode() + "\n")
        else:
            sys.stdout.write(describe(sim) + "\n")
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
