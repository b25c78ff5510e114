"""``hftpipe sim``: run the exchange simulator in the foreground.

Wiring (for ``hftpipe.cli``, which owns the parser)::

    from hftpipe.sim import cli as sim_cli
    sim_cli.add_subcommand(subparsers)           # an argparse subparsers object
    # or, with the hftpipe.cli registry:
    command("sim", help=sim_cli.HELP, arguments=sim_cli.add_arguments)(sim_cli.run)

On start it prints one JSON line to stdout: ``{"urls": {"binance": {"ws": ..., "rest": ...}},
"pid": ..., "seed": ..., "scenario": ...}``; then it runs until ``--duration`` elapses or it is
interrupted (SIGINT/SIGTERM), and prints a last JSON line with its statistics.
``python -m hftpipe.sim ...`` runs the same command without the rest of the CLI.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from typing import Any

HELP = "run the offline exchange simulator (real venue protocols on loopback)"


def _csv(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--venues", type=_csv, default=["binance", "binanceusdm"],
                   help="comma-separated venue ids (default: binance,binanceusdm)")
    p.add_argument("--symbols", type=_csv, default=["BTC/USDT", "ETH/USDT"],
                   help="comma-separated unified symbols for every venue (default: BTC/USDT,ETH/USDT)")
    p.add_argument("--seed", type=int, default=1, help="market model seed (default 1)")
    p.add_argument("--rate", type=float, default=2000.0, metavar="MSGS_PER_S",
                   help="total book events per second over all venues and symbols (default 2000)")
    p.add_argument("--scenario", default="quiet",
                   help="quiet, cross_exchange, triangular, pairs, mixed (default quiet)")
    p.add_argument("--scenario-params", type=json.loads, default={}, metavar="JSON",
                   help='scenario parameters as JSON, e.g. \'{"edge_bps": 30}\'')
    p.add_argument("--ground-truth", metavar="FILE", help="write injected opportunities here (JSON lines)")
    p.add_argument("--fault-log", metavar="FILE", help="write injected faults here (JSON lines)")
    p.add_argument("--fault", action="append", type=json.loads, default=[], metavar="JSON",
                   help='a fault, repeatable, e.g. \'{"kind": "gap", "venue": "binance", "every_s": 5}\'')
    p.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds")
    p.add_argument("--host", default="127.0.0.1", help="loopback address to listen on")
    p.add_argument("--epoch-ms", type=int, default=None,
                   help="event time of sim time 0 (fix it for byte-identical runs)")
    p.add_argument("--config", metavar="FILE",
                   help="take venues, symbols, fees and the simulator block from an hftpipe YAML config")


def run(args: argparse.Namespace) -> int:
    import logging

    from hftpipe.sim.server import SimConfig, SimExchange

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.config:
            from hftpipe.config import load_config

            cfg = SimConfig.from_hft_config(load_config(args.config))
            if args.ground_truth:
                cfg.ground_truth = args.ground_truth
            if args.fault_log:
                cfg.fault_log = args.fault_log
        else:
            cfg = SimConfig(venues=args.venues, symbols=args.symbols, seed=args.seed, rate=args.rate,
                            scenario=args.scenario, scenario_params=args.scenario_params,
                            ground_truth=args.ground_truth, fault_log=args.fault_log, faults=args.fault,
                            host=args.host, epoch_ms=args.epoch_ms)
        sim = SimExchange(cfg)
    except (ValueError, TypeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    def ready(s: SimExchange) -> None:
        info: dict[str, Any] = {"urls": s.urls(), "pid": __import__("os").getpid(), "seed": cfg.seed,
                                "scenario": cfg.scenario, "rate": cfg.rate}
        print(json.dumps(info), flush=True)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, task.cancel)
            except (NotImplementedError, RuntimeError):  # pragma: no cover - not main thread
                pass
        try:
            await sim.serve(args.duration, on_ready=ready)
        except asyncio.CancelledError:
            pass

    try:
        asyncio.run(main())
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    stats = sim.stats()
    print(json.dumps({"stopped": True, "stats": stats, "opportunities": len(sim.ground_truth),
                      "faults": len(sim.fault_log)}), flush=True)
    return 0


def add_subcommand(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``sim`` on an argparse subparsers object; the handler is ``args.handler``."""
    p = subparsers.add_parser("sim", help=HELP, description=HELP)
    add_arguments(p)
    p.set_defaults(handler=run)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hftpipe sim", description=HELP)
    add_arguments(parser)
    return run(parser.parse_args(argv))
