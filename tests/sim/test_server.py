"""SimExchange lifecycle and options."""

from __future__ import annotations

import asyncio
import json
import statistics
import time

import pytest

from hftpipe.config import load_config_dict
from hftpipe.sim import SimConfig, SimExchange
from tests.sim.conftest import ws_connect


def test_context_manager_and_async_use():
    with SimExchange(SimConfig(venues=("binance",), symbols=["BTC/USDT"], rate=500)) as sim:
        urls = sim.urls()
        assert urls["binance"]["ws"].startswith("ws://127.0.0.1:")
        time.sleep(0.2)
        assert sim.stats()["events"] > 20
        with pytest.raises(RuntimeError):
            asyncio.run(sim.start_async())
    assert sim._state == "stopped"

    async def inside_loop():
        async with SimExchange(SimConfig(venues=("binanceusdm",), symbols=["ETH/USDT"], rate=500)) as s:
            with pytest.raises(RuntimeError):
                s.start()  # a loop is running here
            async with ws_connect(s.urls()["binanceusdm"]["ws"] + "/ws/ethusdt@depth") as ws:
                return json.loads(await ws.recv())

    assert asyncio.run(inside_loop())["s"] == "ETHUSDT"


def test_latency_delays_frames(start_sim):
    sim = start_sim(venues=("binance",), symbols=["BTC/USDT"], rate=1000, epoch_ms=None, latency_ms={"binance": 60})

    async def go():
        delays = []
        async with ws_connect(sim.urls()["binance"]["ws"] + "/ws/btcusdt@depth") as ws:
            for _ in range(200):
                ev = json.loads(await ws.recv())
                delays.append(time.time() * 1000 - ev["E"])
        return delays

    d = asyncio.run(go())
    assert 55 <= statistics.median(d) <= 90, statistics.median(d)


def test_from_hft_config():
    cfg = load_config_dict({"hft": {
        "enabled": True,
        "market_data": {"exchanges": {"binance": {"enabled": True, "symbols": ["BTC/USDT", "ETH/USDT"]},
                                      "binanceusdm": {"enabled": True, "symbols": ["BTC/USDT"]}}},
        "simulator": {"enabled": True, "seed": 4, "message_rate_per_s": 100,
                      "faults": [{"kind": "sequence_gap", "venue": "binance", "every_s": 30}]},
    }})
    sc = SimConfig.from_hft_config(cfg)
    assert list(sc.venues) == ["binance", "binanceusdm"] and sc.rate == 300
    assert sc.fees_bps == {"binance": 10.0, "binanceusdm": 5.0}
    assert sc.faults[0].kind == "gap" and sc.scenario == "default"
    sim = SimExchange(sc)
    assert {(b.venue, b.symbol) for b in sim.model.books} == {
        ("binance", "BTC/USDT"), ("binance", "ETH/USDT"), ("binanceusdm", "BTC/USDT")}
    assert sim.model.book("binanceusdm", "BTC/USDT:USDT").spec.tick == "0.10"


def test_pause_resume_and_book(start_sim):
    sim = start_sim(venues=("binance",), symbols=["BTC/USDT"], rate=2000)
    time.sleep(0.1)
    seqs = sim.pause()
    time.sleep(0.1)
    assert sim.pause() == seqs  # nothing moves while paused
    b = sim.book("binance", "BTC/USDT", depth=5)
    assert b["seq"] == seqs["binance:BTC/USDT"] and b["bids"].shape == (5, 2)
    assert b["bids"][0, 0] < b["asks"][0, 0]
    sim.resume()
    time.sleep(0.1)
    assert sim.seq("binance", "BTC/USDT") > seqs["binance:BTC/USDT"]
