"""Same seed, same subscription -> byte-identical frames."""

from __future__ import annotations

import asyncio
import json

from hftpipe.sim import SimConfig, SimExchange
from tests.sim.conftest import EPOCH_MS, ws_connect

N_FRAMES = 1500


async def _collect(sim: SimExchange) -> dict[str, list[str]]:
    urls = sim.urls()
    out: dict[str, list[str]] = {}
    conns = {}
    try:
        # subscribe in a fixed order: spot by URL, USD-M by a SUBSCRIBE message
        conns["binance"] = await ws_connect(
            urls["binance"]["ws"] + "/stream?streams=btcusdt@depth@100ms/ethbtc@depth@100ms/ethusdt@depth@100ms")
        conns["binanceusdm"] = await ws_connect(urls["binanceusdm"]["ws"] + "/ws")
        await conns["binanceusdm"].send(json.dumps(
            {"method": "SUBSCRIBE", "params": ["ethusdt@depth@100ms", "btcusdt@depth@100ms"], "id": 1}))
        assert await conns["binanceusdm"].recv() == '{"result":null,"id":1}'
        await asyncio.to_thread(sim.resume)
        for venue, ws in conns.items():
            out[venue] = [await ws.recv() for _ in range(N_FRAMES)]
    finally:
        for ws in conns.values():
            await ws.close()
    return out


def _run(seed: int, tmp_path, tag: str) -> dict[str, list[str]]:
    cfg = SimConfig(venues=("binance", "binanceusdm"),
                    symbols={"binance": ["BTC/USDT", "ETH/USDT", "ETH/BTC"], "binanceusdm": ["BTC/USDT", "ETH/USDT"]},
                    seed=seed, rate=8000, epoch_ms=EPOCH_MS, start_paused=True, scenario="mixed",
                    scenario_params={"cross_exchange": {"at": [0.05, 0.2], "lifetime_ms": 50},
                                     "triangular": {"at": [0.12], "lifetime_ms": 50}},
                    faults=[{"kind": "gap", "venue": "binance", "at": [0.1]},
                            {"kind": "malformed", "venue": "binanceusdm", "at": [0.15]}],
                    ground_truth=tmp_path / f"gt-{tag}.jsonl")
    sim = SimExchange(cfg).run_in_thread()
    try:
        return asyncio.run(_collect(sim))
    finally:
        sim.stop()


def test_same_seed_same_bytes(tmp_path):
    a = _run(5, tmp_path, "a")
    b = _run(5, tmp_path, "b")
    for venue in a:
        assert len(a[venue]) == N_FRAMES
        assert a[venue] == b[venue], f"{venue}: frame sequences differ"
    # the run really contained injected opportunities and faults
    gt_a = [json.loads(x) for x in (tmp_path / "gt-a.jsonl").read_text().splitlines()]
    gt_b = [json.loads(x) for x in (tmp_path / "gt-b.jsonl").read_text().splitlines()]
    gt_a = [e for e in gt_a if not e["truncated"]]  # the last one may be cut by the stop
    gt_b = [e for e in gt_b if not e["truncated"]]
    strip = ("start_ns", "end_ns")
    assert {e["kind"] for e in gt_a} == {"cross_exchange", "triangular"}
    assert [{k: v for k, v in e.items() if k not in strip} for e in gt_a] == \
           [{k: v for k, v in e.items() if k not in strip} for e in gt_b]
    c = _run(6, tmp_path, "c")
    assert c["binance"] != a["binance"]
