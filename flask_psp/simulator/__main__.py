"""``python -m flask_psp.simulator serve [--host 127.0.0.1] [--port 8101] [--provider payplug]``

Runs the PSP simulators on loopback until Ctrl-C, printing their URLs. With several providers, the first
listens on ``--port`` and the next ones on the following ports (``--port 0``: any free port each).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from . import SIMULATORS, create_simulator


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m flask_psp.simulator", description="flask-psp PSP simulators")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the simulators until Ctrl-C")
    serve.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8101, help="port of the first simulator (default 8101)")
    serve.add_argument("--provider", action="append", choices=sorted(SIMULATORS), dest="providers",
                       help="provider to simulate; repeat for several (default: all)")
    serve.add_argument("--retry-delays", default=None,
                       help="notification retry delays in seconds, comma-separated (default 1,5,30,120,600)")
    serve.add_argument("--quiet", action="store_true", help="log warnings only")
    return parser


def serve(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.quiet:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    options = {}
    if args.retry_delays:
        options["retry_delays"] = tuple(int(part) for part in args.retry_delays.split(",") if part.strip())
    providers = args.providers or sorted(SIMULATORS)
    running = []
    try:
        for index, name in enumerate(dict.fromkeys(providers)):
            simulator = create_simulator(name, **options)
            port = args.port + index if args.port else 0
            simulator.serve(args.host, port)
            running.append(simulator)
            print(f"{name}: {simulator.url}", flush=True)
            for line in simulator.describe():
                print(f"  {line}", flush=True)
        print("Ctrl-C stops the simulators.", flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            while not stop.wait(1):
                pass
        except KeyboardInterrupt:
            pass
    finally:
        for simulator in running:
            simulator.close()
    return 0


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return serve(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
