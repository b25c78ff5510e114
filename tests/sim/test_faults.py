"""Each fault as it appears on the wire."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest
import websockets

from hftpipe.sim import FaultSpec
from tests.sim.conftest import EPOCH_MS, ws_connect


async def _read_for(ws, seconds: float) -> list[str]:
    out = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            out.append(await asyncio.wait_for(ws.recv(), left))
        except TimeoutError:
            break
    return out


async def _both(urls, seconds: float, sim) -> tuple[list[str], list[str]]:
    spot = await ws_connect(urls["binance"]["ws"] + "/stream?streams=btcusdt@depth@100ms")
    fut = await ws_connect(urls["binanceusdm"]["ws"] + "/stream?streams=btcusdt@depth@100ms")
    try:
        await asyncio.to_thread(sim.resume)
        a, b = await asyncio.gather(_read_for(spot, seconds), _read_for(fut, seconds))
        return a, b
    finally:
        await spot.close()
        await fut.close()


def test_gap_skips_update_ids(start_sim):
    sim = start_sim(venues=("binance", "binanceusdm"), symbols=["BTC/USDT"], rate=2000, start_paused=True,
                    faults=[{"kind": "gap", "at": [0.3]}, {"kind": "sequence_gap", "venue": "binance", "at": [0.6],
                                                          "count": 3}])
    spot, fut = asyncio.run(_both(sim.urls(), 0.9, sim))
    evs = [json.loads(f)["data"] for f in spot]
    breaks = [(p, e) for p, e in zip(evs, evs[1:], strict=False) if e["U"] != p["u"] + 1]
    assert len(breaks) == 2, [(p["u"], e["U"]) for p, e in breaks]
    gaps = [f for f in sim.fault_log if f["kind"] == "gap" and f["venue"] == "binance" and "seq" in f]
    assert len(gaps) == 4  # 1 + 3 dropped events
    # the first break skips exactly the dropped event's ids
    (p, e) = breaks[0]
    assert p["u"] + 1 == gaps[0]["first"] and gaps[0]["seq"] + 1 == e["U"]
    fevs = [json.loads(f)["data"] for f in fut]
    fbreaks = [(p, e) for p, e in zip(fevs, fevs[1:], strict=False) if e["pu"] != p["u"]]
    assert len(fbreaks) == 1
    fgap = next(f for f in sim.fault_log if f["kind"] == "gap" and f["venue"] == "binanceusdm" and "seq" in f)
    assert fbreaks[0][1]["pu"] == fgap["seq"]
    assert sim.stats()["venues"]["binance"]["dropped"] == 4


def test_malformed_frame_is_not_json(start_sim):
    sim = start_sim(venues=("binance", "binanceusdm"), symbols=["BTC/USDT"], rate=2000, start_paused=True,
                    faults=[{"kind": "malformed_frame", "venue": "binance", "at": [0.3]}])
    spot, fut = asyncio.run(_both(sim.urls(), 0.6, sim))
    bad = []
    evs = []
    for f in spot:
        try:
            evs.append(json.loads(f)["data"])
        except ValueError:
            bad.append(f)
    assert len(bad) == 1 and bad[0].startswith('{"stream":"btcusdt@depth@100ms"')
    # the sequence is still whole: the broken frame was an extra copy
    assert all(e["U"] == p["u"] + 1 for p, e in zip(evs, evs[1:], strict=False))
    for f in fut:
        json.loads(f)


@pytest.mark.parametrize("mode", ["abort", "close"])
def test_disconnect_closes_and_refuses(start_sim, mode):
    sim = start_sim(venues=("binance",), symbols=["BTC/USDT"], rate=1000, start_paused=True,
                    faults=[{"kind": "disconnect", "venue": "binance", "at": [0.3], "duration_s": 0.5,
                             "mode": mode}])

    async def go():
        url = sim.urls()["binance"]["ws"] + "/ws/btcusdt@depth@100ms"
        ws = await ws_connect(url)
        await asyncio.to_thread(sim.resume)
        t0 = time.monotonic()
        n = 0
        with pytest.raises(websockets.ConnectionClosed) as info:
            while True:
                await asyncio.wait_for(ws.recv(), 3)
                n += 1
        closed_after = time.monotonic() - t0
        # refused while the venue is "down"
        with pytest.raises(websockets.InvalidStatus) as refused:
            await ws_connect(url)
        await asyncio.sleep(0.6)
        ws2 = await ws_connect(url)
        frame = json.loads(await asyncio.wait_for(ws2.recv(), 3))
        await ws2.close()
        return n, closed_after, info.value, refused.value, frame

    n, closed_after, exc, refused, frame = asyncio.run(go())
    assert n > 50 and 0.2 < closed_after < 1.0
    if mode == "abort":
        assert isinstance(exc, websockets.ConnectionClosedError) and exc.rcvd is None  # no close frame: 1006
    else:
        assert exc.rcvd is not None and exc.rcvd.code == 1001
    assert refused.response.status_code == 503
    assert frame["e"] == "depthUpdate"
    entry = next(f for f in sim.fault_log if f["kind"] == "disconnect")
    assert entry["connections"] == 1


def test_slow_snapshot_is_delayed(start_sim):
    sim = start_sim(venues=("binance",), symbols=["BTC/USDT"], rate=500,
                    faults=[{"kind": "slow_snapshot", "venue": "binance", "at": [0.0], "count": 1,
                             "delay_ms": 400}])

    async def go():
        base = sim.urls()["binance"]["rest"]
        times = []
        async with aiohttp.ClientSession() as s:
            for path in ("/api/v3/exchangeInfo", "/api/v3/depth?symbol=BTCUSDT", "/api/v3/depth?symbol=BTCUSDT"):
                t0 = time.monotonic()
                async with s.get(base + path) as r:
                    assert r.status == 200
                    await r.read()
                times.append(time.monotonic() - t0)
        return times

    time.sleep(0.05)
    info, slow, fast = asyncio.run(go())
    assert slow >= 0.4, slow
    assert info < 0.3 and fast < 0.3, (info, fast)


def test_burst_multiplies_rate(start_sim):
    sim = start_sim(venues=("binance",), symbols=["BTC/USDT"], rate=1000, start_paused=True,
                    faults=[{"kind": "burst", "venue": "binance", "at": [0.4], "duration_s": 0.4, "multiplier": 5}])

    async def go():
        ws = await ws_connect(sim.urls()["binance"]["ws"] + "/ws/btcusdt@depth")
        await asyncio.to_thread(sim.resume)
        frames = await _read_for(ws, 1.1)
        await ws.close()
        return frames

    frames = asyncio.run(go())
    t = [(json.loads(f)["E"] - EPOCH_MS) / 1000 for f in frames]
    before = sum(1 for x in t if 0.0 <= x < 0.4)
    during = sum(1 for x in t if 0.4 <= x < 0.8)
    after = sum(1 for x in t if 0.8 <= x < 1.0)
    assert 300 < before < 500, before
    assert 4.0 < during / before < 6.0, (before, during)
    assert 150 < after < 250, after


def test_bad_checksum_logged_unsupported_on_binance(start_sim):
    sim = start_sim(venues=("binance",), symbols=["BTC/USDT"], rate=1000,
                    faults=[{"kind": "checksum_error", "venue": "binance", "at": [0.05]}])
    deadline = time.monotonic() + 3
    while not any(f.get("unsupported") for f in sim.fault_log) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert any(f["kind"] == "bad_checksum" and f.get("unsupported") for f in sim.fault_log)


def test_fault_spec_validation():
    assert FaultSpec.from_any({"kind": "sequence_gap", "every_s": 5}).kind == "gap"
    with pytest.raises(ValueError):
        FaultSpec(kind="meteor", at=[1])
    with pytest.raises(ValueError):
        FaultSpec(kind="gap")  # neither at nor every_s
    with pytest.raises(ValueError):
        FaultSpec.from_any({"kind": "gap", "at": [1], "typo": 1})
