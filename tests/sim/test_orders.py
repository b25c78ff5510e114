"""Signed order endpoints of the simulator, driven by ccxt itself over real HTTP on loopback.

Binance spot (``/api/v3``) and USD-M (``/fapi/v1``, ``/fapi/v2``, ``/fapi/v3``): placing,
matching against the model's book (walked depth, taker fee, partial fills, resting orders that
fill when the market trades through them), cancelling, querying, balances, Binance's signed
request security, filters, and the timeout-then-retry case that idempotent client order ids
exist for. Every simulator is started through the ``start_sim`` fixture, which stops it even
when the test fails.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from decimal import Decimal
from urllib.parse import urlencode

import pytest

from hftpipe.sim.orders import (
    DEFAULT_API_KEY,
    DEFAULT_API_SECRET,
    SimOrders,
    ccxt_api_urls,
    hmac_sha256_hex,
)

ccxt = pytest.importorskip("ccxt")
accxt = pytest.importorskip("ccxt.async_support")

SPOT, USDM = "binance", "binanceusdm"
SYMBOLS = ("BTC/USDT", "ETH/USDT")
BTC_TICK, BTC_LOT = Decimal("0.01"), Decimal("0.00001")  # spot BTC/USDT
FUT_TICK, FUT_LOT = Decimal("0.10"), Decimal("0.001")  # USD-M BTCUSDT


def _options(venue: str) -> dict:
    types = ["spot"] if venue == SPOT else ["linear"]
    return {"fetchMarkets": {"types": types}, "fetchMargins": False, "fetchCurrencies": False}


def client(sim, venue: str = SPOT, module=ccxt, secret: str = DEFAULT_API_SECRET, api_key: str = DEFAULT_API_KEY,
           **kw):
    """A ccxt client of ``venue`` pointed at the simulator, exactly as an executor would build it."""
    cls = getattr(module, venue)
    ex = cls({"apiKey": api_key, "secret": secret, "options": _options(venue), **kw})
    ex.urls["api"].update(ccxt_api_urls(sim, venue))
    return ex


def _start(start_sim, **kw):
    kw.setdefault("venues", (SPOT, USDM))
    kw.setdefault("symbols", SYMBOLS)
    kw.setdefault("rate", 300)
    kw.setdefault("seed", 11)
    return start_sim(**kw)


def _walk(levels, lots: int, limit_ticks: int, buy: bool = True) -> list[tuple[int, int]]:
    """Hand-computed depth walk over ``[(ticks, lots)]`` best first."""
    out = []
    for p, s in levels:
        if (p > limit_ticks) if buy else (p < limit_ticks):
            break
        take = min(s, lots)
        out.append((p, take))
        lots -= take
        if lots == 0:
            break
    return out


def _signed_request(url: str, method: str, params: dict, secret: str = DEFAULT_API_SECRET,
                    api_key: str | None = DEFAULT_API_KEY) -> tuple[int, dict]:
    qs = urlencode(params)
    qs += "&signature=" + hmac_sha256_hex(secret, qs)
    headers = {} if api_key is None else {"X-MBX-APIKEY": api_key}
    req = urllib.request.Request(f"{url}?{qs}", method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


# ---------------------------------------------------------------------------------------------
# signatures


def test_signature_matches_binance_documented_examples():
    secret = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
    body = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
    assert hmac_sha256_hex(secret, body) == "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
    mixed = ("symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC"
             "quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559")
    assert hmac_sha256_hex(secret, mixed) == "0fd168b8ddb4876a0358a8d14d0c9f3da0e9b20c5d52b2a00fcf7d1c602f9a77"


def test_bad_signature_key_and_timestamp_are_rejected(start_sim):
    sim = _start(start_sim, venues=(SPOT,))
    url = sim.urls()[SPOT]["rest"] + "/api/v3/account"
    now = int(time.time() * 1000)
    assert _signed_request(url, "GET", {"timestamp": now})[0] == 200
    assert _signed_request(url, "GET", {"timestamp": now}, secret="wrong") == (
        400, {"code": -1022, "msg": "Signature for this request is not valid."})
    assert _signed_request(url, "GET", {"timestamp": now}, api_key="nobody") == (
        401, {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."})
    assert _signed_request(url, "GET", {"timestamp": now}, api_key=None) == (
        401, {"code": -2014, "msg": "API-key format invalid."})
    assert _signed_request(url, "GET", {"timestamp": now - 10_000, "recvWindow": 5000}) == (
        400, {"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."})
    assert _signed_request(url, "GET", {"timestamp": now + 5_000})[1]["code"] == -1021
    # signature over query string + body (Binance's "mixed" form): ccxt sends POST params in the body
    ex = client(sim)
    ex.load_markets()
    assert ex.fetch_balance()["USDT"]["free"] == 1_000_000
    bad = client(sim, secret="not-the-secret")
    bad.load_markets()
    with pytest.raises(ccxt.AuthenticationError, match="-1022"):
        bad.fetch_balance()
    with pytest.raises(ccxt.AuthenticationError, match="-1022"):
        bad.create_order("BTC/USDT", "limit", "buy", 0.001, 10_000)
    assert SimOrders(sim, SPOT).orders() == []


# ---------------------------------------------------------------------------------------------
# spot: matching, balances, queries, cancel


def test_spot_limit_ioc_fills_by_walking_depth_with_taker_fee(start_sim):
    sim = _start(start_sim, start_paused=True)
    ex = client(sim)
    ex.load_markets()
    asks = sim.book(SPOT, "BTC/USDT", 10)["ask_levels"]
    lots = asks[0][1] + asks[1][1] + asks[2][1] // 2
    limit = asks[2][0]
    expected = _walk(asks, lots, limit)
    assert len(expected) == 3
    qty = Decimal(lots) * BTC_LOT
    cost = sum(Decimal(p) * BTC_TICK * Decimal(n) * BTC_LOT for p, n in expected)
    o = ex.create_order("BTC/USDT", "limit", "buy", float(qty), float(Decimal(limit) * BTC_TICK),
                        {"timeInForce": "IOC"})
    assert o["status"] == "closed" and o["info"]["status"] == "FILLED"
    assert o["filled"] == pytest.approx(float(qty))
    assert o["cost"] == pytest.approx(float(cost), abs=1e-8)
    assert o["average"] == pytest.approx(float(cost / qty), rel=1e-12)
    fills = [(Decimal(f["price"]), Decimal(f["qty"])) for f in o["info"]["fills"]]
    assert fills == [(Decimal(p) * BTC_TICK, Decimal(n) * BTC_LOT) for p, n in expected]
    fees = [Decimal(f["commission"]) for f in o["info"]["fills"]]
    assert fees == [(Decimal(n) * BTC_LOT * Decimal("0.001")).quantize(Decimal("1e-8")) for _, n in expected]
    assert {f["commissionAsset"] for f in o["info"]["fills"]} == {"BTC"}  # a buy pays in what it gets
    bal = ex.fetch_balance()
    assert Decimal(str(bal["BTC"]["free"])) == Decimal(10) + qty - sum(fees)
    assert Decimal(str(bal["USDT"]["free"])) == Decimal(1_000_000) - cost
    assert bal["USDT"]["used"] == 0
    trades = ex.fetch_my_trades("BTC/USDT")
    assert [(t["price"], t["amount"], t["takerOrMaker"]) for t in trades] == [
        (float(Decimal(p) * BTC_TICK), float(Decimal(n) * BTC_LOT), "taker") for p, n in expected]
    assert ex.fetch_order(o["id"], "BTC/USDT")["status"] == "closed"
    assert ex.fetch_open_orders("BTC/USDT") == []


def test_spot_partial_fill_expires_the_rest_and_sell_pays_fee_in_quote(start_sim):
    sim = _start(start_sim, start_paused=True)
    ex = client(sim)
    ex.load_markets()
    bids = sim.book(SPOT, "BTC/USDT", 10)["bid_levels"]
    limit = bids[1][0]
    available = bids[0][1] + bids[1][1]
    lots = available + 500
    o = ex.create_order("BTC/USDT", "limit", "sell", float(Decimal(lots) * BTC_LOT),
                        float(Decimal(limit) * BTC_TICK), {"timeInForce": "IOC"})
    assert o["status"] == "expired" and o["info"]["status"] == "EXPIRED"
    assert o["filled"] == pytest.approx(float(Decimal(available) * BTC_LOT))
    assert o["remaining"] == pytest.approx(float(Decimal(500) * BTC_LOT))
    proceeds = sum(Decimal(p) * BTC_TICK * Decimal(n) * BTC_LOT for p, n in bids[:2])
    fee = sum((Decimal(p) * BTC_TICK * Decimal(n) * BTC_LOT * Decimal("0.001")).quantize(Decimal("1e-8"))
              for p, n in bids[:2])
    assert {f["commissionAsset"] for f in o["info"]["fills"]} == {"USDT"}
    bal = ex.fetch_balance()
    assert Decimal(str(bal["USDT"]["free"])) == Decimal(1_000_000) + proceeds - fee
    assert Decimal(str(bal["BTC"]["free"])) == Decimal(10) - Decimal(available) * BTC_LOT
    assert bal["BTC"]["used"] == 0
    # FOK that cannot fill completely: nothing happens
    o = ex.create_order("BTC/USDT", "limit", "sell", float(Decimal(lots) * BTC_LOT),
                        float(Decimal(limit) * BTC_TICK), {"timeInForce": "FOK"})
    assert o["status"] == "expired" and o["filled"] == 0


def test_spot_resting_gtc_order_query_and_cancel(start_sim):
    sim = _start(start_sim, start_paused=True)
    ex = client(sim)
    ex.load_markets()
    best_bid = sim.book(SPOT, "BTC/USDT", 1)["bid_levels"][0][0]
    price = Decimal(best_bid - 500) * BTC_TICK
    qty = Decimal("0.05")
    o = ex.create_order("BTC/USDT", "limit", "buy", float(qty), float(price), {"clientOrderId": "rest-1"})
    assert o["status"] == "open" and o["filled"] == 0 and o["clientOrderId"] == "rest-1"
    assert ex.fetch_order(o["id"], "BTC/USDT")["status"] == "open"
    assert ex.fetch_order(None, "BTC/USDT", {"clientOrderId": "rest-1"})["id"] == o["id"]
    assert [x["id"] for x in ex.fetch_open_orders("BTC/USDT")] == [o["id"]]
    bal = ex.fetch_balance()
    assert Decimal(str(bal["USDT"]["used"])) == price * qty  # locked while it rests
    assert Decimal(str(bal["USDT"]["free"])) == Decimal(1_000_000) - price * qty
    c = ex.cancel_order(o["id"], "BTC/USDT")
    assert c["status"] == "canceled"
    assert ex.fetch_order(o["id"], "BTC/USDT")["status"] == "canceled"
    assert ex.fetch_open_orders("BTC/USDT") == []
    bal = ex.fetch_balance()
    assert bal["USDT"]["used"] == 0 and bal["USDT"]["free"] == 1_000_000
    with pytest.raises(ccxt.OrderNotFound, match="-2011"):  # cancelling twice
        ex.cancel_order(o["id"], "BTC/USDT")
    with pytest.raises(ccxt.OrderNotFound, match="-2013"):
        ex.fetch_order("123", "BTC/USDT")
    assert [x["status"] for x in SimOrders(sim, SPOT).orders(client_order_id="rest-1")] == ["CANCELED"]


def test_resting_order_fills_as_maker_when_the_market_trades_through_it(start_sim):
    sim = _start(start_sim, start_paused=True, orders={"maker_fee_bps": {SPOT: 2.0}})
    ex = client(sim)
    ex.load_markets()
    best_bid = sim.book(SPOT, "BTC/USDT", 1)["bid_levels"][0][0]
    p = best_bid - 300
    lots = 4000  # 0.04 BTC
    o = ex.create_order("BTC/USDT", "limit", "buy", float(Decimal(lots) * BTC_LOT), float(Decimal(p) * BTC_TICK))
    assert o["status"] == "open"
    book = sim.model.book(SPOT, "BTC/USDT")

    def trade_through():  # the market falls: the best ask comes down to our price
        sim.emit(book, *sim.model.place_touch(book, p - 2, p, ask_size=1500))

    sim.call(trade_through)  # 1500 lots at our price: a partial fill
    f = ex.fetch_order(o["id"], "BTC/USDT")
    assert f["status"] == "open" and f["info"]["status"] == "PARTIALLY_FILLED"
    assert f["filled"] == pytest.approx(0.015)
    sim.call(lambda: sim.emit(book, *sim.model.place_touch(book, p - 3, p - 1, ask_size=10_000)))
    f = ex.fetch_order(o["id"], "BTC/USDT")
    assert f["status"] == "closed" and f["filled"] == pytest.approx(0.04)
    assert f["average"] == pytest.approx(float(Decimal(p) * BTC_TICK))  # a maker fills at its own price
    trades = ex.fetch_my_trades("BTC/USDT")
    assert [t["takerOrMaker"] for t in trades] == ["maker", "maker"]
    assert [t["amount"] for t in trades] == [pytest.approx(0.015), pytest.approx(0.025)]
    assert trades[1]["fee"]["cost"] == pytest.approx(0.025 * 0.0002)  # the maker fee
    bal = ex.fetch_balance()
    assert bal["USDT"]["used"] == 0
    assert Decimal(str(bal["USDT"]["free"])) == Decimal(1_000_000) - Decimal(p) * BTC_TICK * Decimal("0.04")


def test_spot_filters_and_balance_are_enforced_with_binance_errors(start_sim):
    sim = _start(start_sim, venues=(SPOT,), start_paused=True,
                 orders={"accounts": [{"balances": {"USDT": 1000, "BTC": 0.001}}]})
    ex = client(sim)
    ex.load_markets()
    bid = Decimal(sim.book(SPOT, "BTC/USDT", 1)["bid_levels"][0][0]) * BTC_TICK
    base = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC"}

    def send(**kw):
        return ex.private_post_order({**base, **kw})  # ccxt's raw endpoint: no rounding on the way

    with pytest.raises(ccxt.InvalidOrder, match="Filter failure: PRICE_FILTER"):
        send(quantity="0.001", price=str(bid - Decimal("0.005")))
    with pytest.raises(ccxt.InvalidOrder, match="Filter failure: LOT_SIZE"):
        send(quantity="0.000015", price=str(bid))
    with pytest.raises(ccxt.ExchangeError, match="Filter failure: NOTIONAL"):
        send(quantity="0.00001", price=str(bid))
    with pytest.raises(ccxt.InsufficientFunds, match="insufficient balance"):
        send(quantity="0.1", price=str(bid))  # ~6,000 USDT with 1,000
    with pytest.raises(ccxt.InsufficientFunds):
        send(side="SELL", quantity="0.002", price=str(bid))  # 0.002 BTC with 0.001
    with pytest.raises(ccxt.InvalidOrder, match="would immediately match"):
        ex.create_order("BTC/USDT", "limit", "buy", 0.001, float(bid + 100), {"postOnly": True})
    assert SimOrders(sim, SPOT).orders() == []
    # market buy by quote amount (ccxt's createMarketBuyOrderWithCost)
    o = ex.create_market_buy_order_with_cost("BTC/USDT", 100)
    assert o["status"] == "closed" and 99 < o["cost"] <= 100


# ---------------------------------------------------------------------------------------------
# idempotent retries


def test_timeout_then_retry_with_same_client_order_id_never_duplicates(start_sim):
    sim = _start(start_sim, start_paused=True)
    orders = SimOrders(sim, SPOT)
    ex = client(sim, timeout=300)
    ex.load_markets()
    price = float(Decimal(sim.book(SPOT, "BTC/USDT", 1)["bid_levels"][0][0] - 400) * BTC_TICK)
    orders.inject("delay", delay_ms=1500)  # the next new order is accepted, then answered late
    params = {"clientOrderId": "retry-me-1"}
    t0 = time.monotonic()
    with pytest.raises(ccxt.RequestTimeout):
        ex.create_order("BTC/USDT", "limit", "buy", 0.01, price, params)
    assert time.monotonic() - t0 < 1.2
    with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent"):
        ex.create_order("BTC/USDT", "limit", "buy", 0.01, price, params)
    held = orders.orders(client_order_id="retry-me-1")
    assert len(held) == 1 and held[0]["status"] == "NEW"
    assert len(orders.orders()) == 1
    # reconciliation by client order id finds the one order
    assert ex.fetch_order(None, "BTC/USDT", params)["id"] == str(held[0]["order_id"])
    assert orders.fault_log()[0]["kind"] == "delay"


def test_async_timeout_retry_of_a_filled_ioc_order_does_not_fill_twice(start_sim):
    sim = _start(start_sim, start_paused=True)
    orders = SimOrders(sim, SPOT)
    ask = Decimal(sim.book(SPOT, "BTC/USDT", 1)["ask_levels"][0][0]) * BTC_TICK

    async def run():
        ex = client(sim, module=accxt, timeout=300)
        try:
            await ex.load_markets()
            orders.inject("delay", delay_ms=1200)
            params = {"clientOrderId": "ioc-retry", "timeInForce": "IOC"}
            with pytest.raises(ccxt.RequestTimeout):
                await ex.create_order("BTC/USDT", "limit", "buy", 0.001, float(ask), params)
            with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent"):
                await ex.create_order("BTC/USDT", "limit", "buy", 0.001, float(ask), params)
            found = await ex.fetch_order(None, "BTC/USDT", {"clientOrderId": "ioc-retry"})
            bal = await ex.fetch_balance()
            return found, bal
        finally:
            await ex.close()

    found, bal = asyncio.run(run())
    assert found["status"] == "closed" and found["filled"] == pytest.approx(0.001)
    assert len(orders.orders()) == 1
    assert bal["BTC"]["total"] == pytest.approx(10 + 0.001 * (1 - 0.001))  # one fill, not two


def test_binance_open_scope_lets_a_filled_client_id_be_reused(start_sim):
    """Binance's own rule (``client_id_scope="open"``): an id is unique among OPEN orders only, so
    blindly retrying an order that already filled places a second one. The default scope
    ("all") refuses it; an executor that must also work on the real venue reconciles first."""
    sim = _start(start_sim, venues=(SPOT,), start_paused=True, orders={"client_id_scope": "open"})
    ex = client(sim)
    ex.load_markets()
    ask = float(Decimal(sim.book(SPOT, "BTC/USDT", 1)["ask_levels"][0][0]) * BTC_TICK)
    params = {"clientOrderId": "same", "timeInForce": "IOC"}
    ex.create_order("BTC/USDT", "limit", "buy", 0.001, ask, params)
    ex.create_order("BTC/USDT", "limit", "buy", 0.001, ask, params)
    assert len(SimOrders(sim, SPOT).orders(client_order_id="same")) == 2
    bid = float(Decimal(sim.book(SPOT, "BTC/USDT", 1)["bid_levels"][0][0] - 100) * BTC_TICK)
    ex.create_order("BTC/USDT", "limit", "buy", 0.001, bid, {"clientOrderId": "resting"})
    with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent"):  # while it is open
        ex.create_order("BTC/USDT", "limit", "buy", 0.001, bid, {"clientOrderId": "resting"})


def test_injected_errors_before_and_after_processing(start_sim):
    sim = _start(start_sim, venues=(SPOT,), start_paused=True)
    orders = SimOrders(sim, SPOT)
    ex = client(sim)
    ex.load_markets()
    price = float(Decimal(sim.book(SPOT, "BTC/USDT", 1)["bid_levels"][0][0] - 400) * BTC_TICK)
    orders.inject("error", status=503)  # -1001 DISCONNECTED, request not processed
    with pytest.raises(ccxt.OperationFailed, match="-1001"):
        ex.create_order("BTC/USDT", "limit", "buy", 0.001, price, {"clientOrderId": "e1"})
    assert orders.orders() == []
    orders.inject("error", after=True, code=None, status=502, body="<html>502 Bad Gateway</html>")
    with pytest.raises(ccxt.ExchangeNotAvailable):
        ex.create_order("BTC/USDT", "limit", "buy", 0.001, price, {"clientOrderId": "e2"})
    assert [o["client_order_id"] for o in orders.orders()] == ["e2"]  # status unknown to the client: it exists
    orders.inject("error", endpoint="query", count=2)
    for _ in range(2):
        with pytest.raises(ccxt.OperationFailed):
            ex.fetch_open_orders("BTC/USDT")
    assert len(ex.fetch_open_orders("BTC/USDT")) == 1


def test_order_ids_are_deterministic_for_a_seed(start_sim):
    ids = []
    for seed in (5, 5, 6):
        sim = _start(start_sim, venues=(SPOT,), seed=seed, start_paused=True)
        ex = client(sim)
        ex.load_markets()
        price = float(Decimal(sim.book(SPOT, "BTC/USDT", 1)["bid_levels"][0][0] - 400) * BTC_TICK)
        a = ex.create_order("BTC/USDT", "limit", "buy", 0.001, price, {"newOrderRespType": "ACK"})
        # POST with every parameter in the query string and no client id: the simulator makes one
        status, b = _signed_request(sim.urls()[SPOT]["rest"] + "/api/v3/order", "POST", {
            "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.001",
            "price": str(price), "newOrderRespType": "RESULT", "timestamp": int(time.time() * 1000)})
        assert status == 200 and b["status"] == "NEW" and "fills" not in b
        ids.append((a["id"], str(b["orderId"]), b["clientOrderId"]))
        sim.stop()
    assert ids[0] == ids[1] and ids[0] != ids[2]
    assert int(ids[0][1]) == int(ids[0][0]) + 1


# ---------------------------------------------------------------------------------------------
# USD-M futures


def test_usdm_orders_positions_and_retry_with_async_ccxt(start_sim):
    sim = _start(start_sim, start_paused=True)
    orders = SimOrders(sim, USDM)
    asks = sim.book(USDM, "BTC/USDT", 10)["ask_levels"]
    bid = sim.book(USDM, "BTC/USDT", 1)["bid_levels"][0][0]
    lots = asks[0][1] + asks[1][1] // 2  # 1 lot = 0.001 BTC
    expected = _walk(asks, lots, asks[1][0])
    cost = sum(Decimal(p) * FUT_TICK * Decimal(n) * FUT_LOT for p, n in expected)
    qty = Decimal(lots) * FUT_LOT

    async def run():
        ex = client(sim, USDM, module=accxt, timeout=300)
        try:
            await ex.load_markets()
            o = await ex.create_order("BTC/USDT:USDT", "limit", "buy", float(qty),
                                      float(Decimal(asks[1][0]) * FUT_TICK), {"timeInForce": "IOC"})
            pos = await ex.fetch_positions(["BTC/USDT:USDT"])
            trades = await ex.fetch_my_trades("BTC/USDT:USDT")
            bal = await ex.fetch_balance()
            price = float(Decimal(bid - 200) * FUT_TICK)
            r = await ex.create_order("BTC/USDT:USDT", "limit", "sell", 0.01, price * 1.01, {"clientOrderId": "f-1"})
            opened = await ex.fetch_open_orders("BTC/USDT:USDT")
            with pytest.raises(ccxt.ExchangeError, match="-4116"):
                await ex.create_order("BTC/USDT:USDT", "limit", "sell", 0.01, price * 1.01, {"clientOrderId": "f-1"})
            c = await ex.cancel_order(r["id"], "BTC/USDT:USDT")
            orders.inject("delay", delay_ms=1000)
            with pytest.raises(ccxt.RequestTimeout):
                await ex.create_order("BTC/USDT:USDT", "limit", "buy", 0.01, price, {"clientOrderId": "f-2"})
            with pytest.raises(ccxt.ExchangeError, match="ClientOrderId is duplicated"):
                await ex.create_order("BTC/USDT:USDT", "limit", "buy", 0.01, price, {"clientOrderId": "f-2"})
            close = await ex.create_order("BTC/USDT:USDT", "market", "sell", float(qty), None, {"reduceOnly": True})
            after = await ex.fetch_positions(["BTC/USDT:USDT"])
            return o, pos, trades, bal, r, opened, c, close, after
        finally:
            await ex.close()

    o, pos, trades, bal, r, opened, c, close, after = asyncio.run(run())
    assert o["status"] == "closed" and o["filled"] == pytest.approx(float(qty))
    assert o["average"] == pytest.approx(float(cost / qty), rel=1e-9)
    assert [(t["price"], t["amount"]) for t in trades] == [
        (float(Decimal(p) * FUT_TICK), float(Decimal(n) * FUT_LOT)) for p, n in expected]
    fee = sum(Decimal(str(t["fee"]["cost"])) for t in trades)
    assert fee == sum((Decimal(p) * FUT_TICK * Decimal(n) * FUT_LOT * Decimal("0.0005")).quantize(Decimal("1e-8"))
                      for p, n in expected)
    assert pos[0]["contracts"] == pytest.approx(float(qty)) and pos[0]["side"] == "long"
    assert pos[0]["entryPrice"] == pytest.approx(float(cost / qty), rel=1e-9)
    assert bal["USDT"]["total"] < 1_000_000 and bal["USDT"]["used"] > 0
    assert r["status"] == "open" and [x["id"] for x in opened] == [r["id"]]
    assert c["status"] == "canceled"
    assert close["status"] == "closed" and all(not p["contracts"] for p in after)
    assert len(orders.orders(client_order_id="f-2")) == 1
    assert len(orders.orders(client_order_id="f-1")) == 1


def test_usdm_filters_and_margin(start_sim):
    sim = _start(start_sim, venues=(USDM,), start_paused=True)
    ex = client(sim, USDM)
    ex.load_markets()
    ask = Decimal(sim.book(USDM, "BTC/USDT", 1)["ask_levels"][0][0]) * FUT_TICK
    base = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC"}

    def send(**kw):
        return ex.fapiprivate_post_order({**base, **kw})

    with pytest.raises(ccxt.ExchangeError, match="-4014"):
        send(quantity="0.01", price=str(ask - Decimal("0.05")))
    with pytest.raises(ccxt.ExchangeError, match="-1111"):
        send(quantity="0.0001", price=str(ask))
    with pytest.raises(ccxt.ExchangeError, match="-4164"):
        send(quantity="0.001", price=str(Decimal(1000)))  # 1 USDT notional (and far below the band)
    with pytest.raises(ccxt.ExchangeError, match="-4016"):  # PERCENT_PRICE: a buy 10% above the mark
        send(quantity="0.01", price=str(int(ask * Decimal("1.1") / FUT_TICK) * FUT_TICK))
    with pytest.raises(ccxt.ExchangeError, match="-4024"):
        send(side="SELL", quantity="0.01", price=str(int(ask * Decimal("0.9") / FUT_TICK) * FUT_TICK))
    with pytest.raises(ccxt.ExchangeError, match="-2019"):
        send(quantity="500", price=str(ask), timeInForce="IOC")  # 30M notional at 20x with 1M USDT
    with pytest.raises(ccxt.ExchangeError, match="-2022"):
        send(side="SELL", quantity="0.01", price=str(ask), reduceOnly="true")  # no position to reduce
    assert SimOrders(sim, USDM).orders() == []
