"""Binance spot and USD-M on the wire: format as captured, documented book sync, REST, ccxt."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import aiohttp
import pytest
import websockets

from tests.sim.binance_client import BinanceClient, seqs_for
from tests.sim.conftest import ws_connect

CAPTURES = Path("/work/shared/data/captures")
SYMBOLS = ["BTC/USDT", "ETH/USDT", "ETH/BTC"]


def _capture_depth_frames(name: str) -> list[str]:
    path = CAPTURES / name
    if not path.exists():
        pytest.skip(f"capture {path} not available")
    out = []
    for line in path.read_text().splitlines():
        if ": {" in line and "@depth" in line:
            out.append(line.split(": ", 1)[1])
    return out


def _shape(frame: str) -> str:
    """The frame's text layout with values blanked: what must match the real venue's."""
    s = re.sub(r'\[\["[^\]]*"\](,\["[^\]]*"\])*\]', "[L]", frame)
    s = re.sub(r'"stream":"[a-z0-9]+@', '"stream":"S@', s)
    s = re.sub(r'"s":"[A-Z0-9]+"', '"s":"S"', s)
    return re.sub(r":\d+", ":N", s)


def _sorted_ok(levels, descending):
    prices = [float(p) for p, _ in levels]
    return prices == sorted(prices, reverse=descending)


async def _first_frames(url: str, n: int) -> list[str]:
    async with ws_connect(url) as ws:
        return [await ws.recv() for _ in range(n)]


def test_spot_frames_match_capture(start_sim):
    sim = start_sim(venues=("binance",), symbols=SYMBOLS, rate=3000)
    url = sim.urls()["binance"]["ws"] + "/stream?streams=btcusdt@depth@100ms/ethbtc@depth@100ms"
    frames = asyncio.run(_first_frames(url, 300))
    real = _capture_depth_frames("BINANCE.ws.1.0")
    real_shapes = {_shape(f) for f in real}
    for f in frames:
        d = json.loads(f)
        assert list(d) == ["stream", "data"]
        ev = d["data"]
        assert list(ev) == ["e", "E", "s", "U", "u", "b", "a"]
        assert ev["e"] == "depthUpdate" and ev["s"] in ("BTCUSDT", "ETHBTC")
        assert d["stream"] == ev["s"].lower() + "@depth@100ms"
        for p, q in ev["b"] + ev["a"]:
            assert re.fullmatch(r"\d+\.\d{8}", p) and re.fullmatch(r"\d+\.\d{8}", q), (p, q)
        assert _sorted_ok(ev["b"], True) and _sorted_ok(ev["a"], False)
        assert _shape(f) in real_shapes, f  # same text layout as the real venue, values aside
    # contiguous ids per symbol (spot)
    last = {}
    for f in frames:
        ev = json.loads(f)["data"]
        if ev["s"] in last:
            assert ev["U"] == last[ev["s"]] + 1
        last[ev["s"]] = ev["u"]


def test_usdm_frames_match_capture(start_sim):
    sim = start_sim(venues=("binanceusdm",), symbols=["BTC/USDT", "ETH/USDT"], rate=3000)
    url = sim.urls()["binanceusdm"]["ws"] + "/stream?streams=btcusdt@depth@100ms/ethusdt@depth@100ms"
    frames = asyncio.run(_first_frames(url, 300))
    real_frames = _capture_depth_frames("BINANCE_FUTURES.ws.1.0")
    real = [json.loads(f)["data"] for f in real_frames]
    assert real and all(list(d) == ["e", "E", "T", "s", "U", "u", "pu", "b", "a"] for d in real)
    real_shapes = {_shape(f) for f in real_frames}
    last: dict[str, int] = {}
    jumps = 0
    for f in frames:
        ev = json.loads(f)["data"]
        assert list(ev) == ["e", "E", "T", "s", "U", "u", "pu", "b", "a"]
        assert _shape(f) in real_shapes, f
        assert ev["T"] <= ev["E"]
        for p, _q in ev["b"] + ev["a"]:
            # contract pricePrecision: BTCUSDT 2 decimals (tick 0.10), ETHUSDT 2
            assert re.fullmatch(r"\d+\.\d{2}", p), p
        for _p, q in ev["b"] + ev["a"]:
            assert re.fullmatch(r"\d+\.\d{3}", q), q
        assert _sorted_ok(ev["b"], False) and _sorted_ok(ev["a"], False)  # both ascending, as captured
        if ev["s"] in last:
            assert ev["pu"] == last[ev["s"]]
            jumps += ev["U"] != last[ev["s"]] + 1
        last[ev["s"]] = ev["u"]
    assert jumps > len(frames) // 2, "USD-M ids must not be contiguous between events"


async def _sync_and_compare(sim, venue: str, symbols: list[str], seconds: float) -> BinanceClient:
    client = BinanceClient(sim.urls(), venue, symbols)
    try:
        await client.connect()
        await client.sync()
        await asyncio.sleep(seconds)
        seqs = await asyncio.to_thread(sim.pause)
        await client.wait_for(seqs_for(seqs, venue))
        for sym in symbols:
            native = sym.replace("/", "")
            model = await asyncio.to_thread(sim.book, venue, sym, 20)
            book = client.books[native]
            assert book.last_u == model["seq"]
            bids, asks = book.top(20)
            assert len(bids) == 20 and len(asks) == 20
            assert bids == [tuple(x) for x in model["bids"].tolist()], f"{venue} {sym} bids differ"
            assert asks == [tuple(x) for x in model["asks"].tolist()], f"{venue} {sym} asks differ"
            assert book.applied > 50
        assert client.resyncs == 0
        return client
    finally:
        await client.close()


@pytest.mark.parametrize("venue", ["binance", "binanceusdm"])
def test_client_book_equals_model(start_sim, venue):
    symbols = ["BTC/USDT", "ETH/USDT"] + (["ETH/BTC"] if venue == "binance" else [])
    sim = start_sim(venues=("binance", "binanceusdm"), symbols={"binance": SYMBOLS,
                    "binanceusdm": ["BTC/USDT", "ETH/USDT"]}, rate=6000, seed=11)
    asyncio.run(_sync_and_compare(sim, venue, symbols, 1.0))


def test_client_syncs_through_slow_snapshot(start_sim):
    """A snapshot answered 300 ms late (content as of the request) still syncs by the rule."""
    sim = start_sim(venues=("binance",), symbols=["BTC/USDT"], rate=3000,
                    faults=[{"kind": "slow_snapshot", "venue": "binance", "at": [0.0], "duration_s": 60,
                             "delay_ms": 300}])
    asyncio.run(_sync_and_compare(sim, "binance", ["BTC/USDT"], 0.5))


async def _subscribe_dialogue(urls) -> dict:
    out = {}
    base = urls["binance"]["ws"]
    async with ws_connect(base + "/ws") as ws:
        await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@depth@100ms", "btcusdt@aggTrade"],
                                  "id": 1}))
        out["ack"] = await ws.recv()
        out["raw"] = json.loads(await ws.recv())
        await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 3}))
        while True:
            m = json.loads(await ws.recv())
            if "id" in m:
                out["list"] = m
                break
        await ws.send(json.dumps({"method": "UNSUBSCRIBE", "params": ["btcusdt@depth@100ms"], "id": 4}))
        while True:
            m = json.loads(await ws.recv())
            if "id" in m:
                out["unsub"] = m
                break
        await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["not a stream"], "id": 5}))
        out["bad"] = json.loads(await ws.recv())
        await ws.send("{oops")
        out["badjson"] = json.loads(await ws.recv())
        # nothing more arrives after unsubscribing
        try:
            out["after"] = await asyncio.wait_for(ws.recv(), 0.3)
        except TimeoutError:
            out["after"] = None
    async with ws_connect(base + "/ws/ethusdt@depth") as ws:
        out["raw_path"] = json.loads(await ws.recv())
    with pytest.raises(websockets.InvalidStatus):
        async with ws_connect(base + "/nope"):
            pass
    return out


def test_subscribe_dialogue(start_sim):
    sim = start_sim(venues=("binance",), symbols=["BTC/USDT", "ETH/USDT"], rate=2000)
    out = asyncio.run(_subscribe_dialogue(sim.urls()))
    assert out["ack"] == '{"result":null,"id":1}'
    assert out["raw"]["e"] == "depthUpdate" and out["raw"]["s"] == "BTCUSDT"  # raw (/ws): no wrapper
    assert out["list"] == {"result": ["btcusdt@depth@100ms", "btcusdt@aggTrade"], "id": 3}
    assert out["unsub"] == {"result": None, "id": 4}
    assert out["bad"]["error"]["code"] == 2 and out["bad"]["id"] == 5
    assert out["badjson"]["error"]["code"] == 3
    assert out["after"] is None
    assert out["raw_path"]["s"] == "ETHUSDT"


async def _rest(urls) -> dict:
    out = {}
    async with aiohttp.ClientSession() as s:
        for key, url in {
            "spot": urls["binance"]["rest"] + "/api/v3/depth?symbol=BTCUSDT&limit=5",
            "spot_default": urls["binance"]["rest"] + "/api/v3/depth?symbol=BTCUSDT",
            "spot_bad": urls["binance"]["rest"] + "/api/v3/depth?symbol=NOPE",
            "spot_missing": urls["binance"]["rest"] + "/api/v3/depth",
            "fut": urls["binanceusdm"]["rest"] + "/fapi/v1/depth?symbol=BTCUSDT&limit=5",
            "fut_badlimit": urls["binanceusdm"]["rest"] + "/fapi/v1/depth?symbol=BTCUSDT&limit=7",
            "info": urls["binance"]["rest"] + "/api/v3/exchangeInfo",
            "finfo": urls["binanceusdm"]["rest"] + "/fapi/v1/exchangeInfo",
            "404": urls["binance"]["rest"] + "/api/v3/nothing",
        }.items():
            async with s.get(url) as r:
                out[key] = (r.status, r.headers.get("Content-Type"), await r.text())
    return out


def test_rest_endpoints(start_sim):
    sim = start_sim(venues=("binance", "binanceusdm"), symbols=["BTC/USDT", "ETH/USDT"], rate=1000)
    out = asyncio.run(_rest(sim.urls()))
    status, ctype, body = out["spot"]
    assert status == 200 and ctype == "application/json;charset=UTF-8"
    d = json.loads(body)
    assert list(d) == ["lastUpdateId", "bids", "asks"] and len(d["bids"]) == 5 and len(d["asks"]) == 5
    assert body.startswith('{"lastUpdateId":') and re.fullmatch(r"\d+\.\d{8}", d["bids"][0][0])
    assert _sorted_ok(d["bids"], True) and _sorted_ok(d["asks"], False)
    assert float(d["bids"][0][0]) < float(d["asks"][0][0])
    assert len(json.loads(out["spot_default"][2])["bids"]) == 100
    assert out["spot_bad"][0] == 400 and json.loads(out["spot_bad"][2])["code"] == -1121
    assert out["spot_missing"][0] == 400 and json.loads(out["spot_missing"][2])["code"] == -1102
    d = json.loads(out["fut"][2])
    assert list(d) == ["lastUpdateId", "E", "T", "bids", "asks"] and d["T"] <= d["E"]
    assert re.fullmatch(r"\d+\.\d", d["bids"][0][0][:-1]) and re.fullmatch(r"\d+\.\d{3}", d["bids"][0][1])
    assert out["fut_badlimit"][0] == 400
    info = json.loads(out["info"][2])
    btc = next(s for s in info["symbols"] if s["symbol"] == "BTCUSDT")
    filt = {f["filterType"]: f for f in btc["filters"]}
    assert filt["PRICE_FILTER"]["tickSize"] == "0.01000000" and filt["LOT_SIZE"]["stepSize"] == "0.00001000"
    assert (btc["baseAsset"], btc["quoteAsset"]) == ("BTC", "USDT")
    finfo = json.loads(out["finfo"][2])
    fbtc = next(s for s in finfo["symbols"] if s["symbol"] == "BTCUSDT")
    ffilt = {f["filterType"]: f for f in fbtc["filters"]}
    assert ffilt["PRICE_FILTER"]["tickSize"] == "0.10" and ffilt["LOT_SIZE"]["stepSize"] == "0.001"
    assert fbtc["contractType"] == "PERPETUAL" and fbtc["pricePrecision"] == 2
    assert out["404"][0] == 404


def test_ccxt_loads_markets_from_simulator(start_sim):
    ccxt = pytest.importorskip("ccxt")
    sim = start_sim(venues=("binance", "binanceusdm"), symbols={"binance": SYMBOLS,
                    "binanceusdm": ["BTC/USDT", "ETH/USDT"]}, rate=500)
    urls = sim.urls()
    spot = ccxt.binance({"options": {"fetchMarkets": {"types": ["spot"]}, "fetchMargins": False,
                                     "fetchCurrencies": False}})
    spot.urls["api"]["public"] = urls["binance"]["rest"] + "/api/v3"
    markets = spot.load_markets()
    assert set(markets) == set(SYMBOLS)
    assert markets["BTC/USDT"]["precision"]["price"] == 0.01
    ob = spot.fetch_order_book("BTC/USDT", 5)
    assert ob["bids"][0][0] < ob["asks"][0][0]
    fut = ccxt.binanceusdm({"options": {"fetchMarkets": {"types": ["linear"]}, "fetchMargins": False,
                                        "fetchCurrencies": False}})
    fut.urls["api"]["fapiPublic"] = urls["binanceusdm"]["rest"] + "/fapi/v1"
    fmarkets = fut.load_markets()
    assert {"BTC/USDT:USDT", "ETH/USDT:USDT"} <= set(fmarkets)
    assert fmarkets["BTC/USDT:USDT"]["precision"]["price"] == 0.1
    assert fmarkets["BTC/USDT:USDT"]["precision"]["amount"] == 0.001
