"""``hftpipe sim`` as a process: URLs on the first line, stats on the last."""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys

from hftpipe.sim import cli
from tests.sim.conftest import ws_connect


def test_cli_process_prints_urls_and_serves(tmp_path):
    gt = tmp_path / "gt.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "hftpipe.sim", "--venues", "binance,binanceusdm", "--symbols", "BTC/USDT,ETH/USDT",
         "--seed", "3", "--rate", "2000", "--scenario", "cross_exchange", "--scenario-params",
         '{"at": [0.2], "lifetime_ms": 100}', "--ground-truth", str(gt), "--duration", "1.5"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = json.loads(proc.stdout.readline())
        urls = first["urls"]
        assert set(urls) == {"binance", "binanceusdm"}
        assert urls["binance"]["ws"].startswith("ws://127.0.0.1:") and urls["binance"]["rest"].startswith("http://")

        async def one_frame():
            async with ws_connect(urls["binance"]["ws"] + "/ws/btcusdt@depth@100ms") as ws:
                return json.loads(await ws.recv())

        assert asyncio.run(one_frame())["e"] == "depthUpdate"
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    last = json.loads(out.strip().splitlines()[-1])
    assert last["stopped"] and last["opportunities"] == 1
    assert json.loads(gt.read_text())["kind"] == "cross_exchange"


def test_cli_bad_venue_is_usage_error(capsys):
    assert cli.main(["--venues", "nowhere", "--duration", "0.1"]) == 2
    assert "no protocol" in capsys.readouterr().err


def test_add_subcommand():
    parser = argparse.ArgumentParser(prog="hftpipe")
    sub = parser.add_subparsers()
    cli.add_subcommand(sub)
    args = parser.parse_args(["sim", "--venues", "binance", "--rate", "500", "--fault",
                              '{"kind": "gap", "every_s": 2}'])
    assert args.handler is cli.run and args.venues == ["binance"] and args.rate == 500.0
    assert args.fault == [{"kind": "gap", "every_s": 2}]
