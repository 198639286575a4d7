"""`itwin-runs simulate`: serve the simulator until Ctrl-C, with time moving in real time."""

from __future__ import annotations

import signal
import threading

from pipeline.simulator.config import SimulatorConfig
from pipeline.simulator.server import SimulatorServer


def describe(sim: SimulatorServer) -> str:
    """The settings a user exports to point `itwin-runs` (or curl) at this simulator."""
    first = sim.connection_ids[0] if sim.connection_ids else "<connection-id>"
    return "\n".join(
        [
            f"Export API simulator serving on {sim.base_url} (Ctrl-C to stop)",
            "",
            *(f"export {name}={value}" for name, value in sim.environment().items()),
            "",
            "Try:",
            f'  curl -H "Authorization: Bearer {sim.static_token}" '
            f"{sim.base_url}/export/connections/{first}/runs",
        ]
    )


def serve_forever(port: int, seed: int) -> int:
    """Serve on 127.0.0.1:`port` until interrupted; simulated time runs 60x real time."""
    config = SimulatorConfig(seed=seed, realtime_speed=60.0)
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        # A shell starts background jobs with SIGINT ignored, and Python then installs no
        # KeyboardInterrupt handler: "Ctrl-C to stop" (or kill -INT) must work anyway.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    # Ctrl-C may come at any point, even while the settings are printed: every way out
    # goes through the server's __exit__, which stops it and releases the port.
    try:
        with SimulatorServer(config, port=port) as sim:
            print(describe(sim), flush=True)
            while not stop.wait(3600):
                pass
    except KeyboardInterrupt:
        print("\nstopped", flush=True)
    return 0
