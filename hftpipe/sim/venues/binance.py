"""Binance spot (``binance``) and USD-M futures (``binanceusdm``) market-data protocols.

Per Binance's docs ("Diff. Depth Stream", "How to manage a local order book correctly",
``/api/v3/depth``, ``/fapi/v1/depth``, combined streams) and the real frames in
``data/captures/BINANCE*.ws.1.0``:

WebSocket (``ws://host:port`` + one of)
  * ``/stream?streams=btcusdt@depth@100ms/ethusdt@depth@100ms`` - combined: every frame is
    ``{"stream":"<name>","data":<event>}``;
  * ``/ws/btcusdt@depth@100ms`` - raw: frames are the bare event;
  * ``/ws`` or ``/stream`` then ``{"method":"SUBSCRIBE","params":[...],"id":1}`` ->
    ``{"result":null,"id":1}`` (also ``UNSUBSCRIBE``, ``LIST_SUBSCRIPTIONS``,
    ``SET_PROPERTY``/``GET_PROPERTY`` ``combined``).
  USD-M's ``/public`` and ``/market`` path prefixes are accepted too. Depth streams are
  ``<symbol>@depth`` with an optional ``@<N>ms`` speed; the simulator sends every event on every
  speed (no aggregation). Other well-formed stream names (trades, tickers, partial depth) are
  acknowledged and send nothing, as Binance does for a symbol it does not list.

Events
  * spot: ``{"e":"depthUpdate","E":ms,"s":"BTCUSDT","U":first,"u":last,"b":[..],"a":[..]}``,
    ids contiguous per symbol (``U`` = previous ``u`` + 1); prices and sizes written with 8
    decimals, as the real spot feed does (``"0.35130000"``); bids best first, asks best first.
  * USD-M: ``{"e":"depthUpdate","E":ms,"T":ms,"s":..,"U":..,"u":..,"pu":prev_u,"b":..,"a":..}``;
    ids come from one counter for the whole venue, so they jump between events of a symbol and
    only ``pu`` chains them; prices with the contract's ``pricePrecision``, sizes with its
    ``quantityPrecision``; both sides in ascending price order (as captured).

REST (``http://host:port``)
  ``/api/v3/depth`` and ``/fapi/v1/depth`` (``symbol``, ``limit``) -> ``{"lastUpdateId":N,
  "bids":[..],"asks":[..]}`` (USD-M adds ``"E"``, ``"T"`` after ``lastUpdateId``), where N is
  the ``u`` of the last event of the symbol, so the documented bootstrap rule applies as is;
  ``/api/v3/exchangeInfo``, ``/fapi/v1/exchangeInfo`` (PRICE_FILTER ``tickSize``, LOT_SIZE
  ``stepSize``: enough for ccxt's ``load_markets``), ``ping`` and ``time``.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Mapping
from typing import Any, NamedTuple
from urllib.parse import unquote

from hftpipe.sim.model import decimals_of
from hftpipe.sim.venues import (
    Connection,
    Reject,
    RestResponse,
    RestRoute,
    SimSymbol,
    SimVenueProtocol,
    fixed_formatter,
)

_STREAM_RE = re.compile(r"^([a-z0-9]+)@([a-zA-Z0-9_]+)(?:@(\d+ms))?$")
_KNOWN_KINDS = {"trade", "aggTrade", "bookTicker", "ticker", "miniTicker", "markPrice", "forceOrder",
                "depth5", "depth10", "depth20", "avgPrice", "compositeIndex"}
_SPOT_SPEEDS = {None, "100ms", "1000ms"}
_USDM_SPEEDS = {None, "0ms", "100ms", "250ms", "500ms"}
_JSON = "application/json;charset=UTF-8"


class BinanceSeq(NamedTuple):
    first: int  # U
    last: int  # u
    prev: int  # pu (USD-M); -1 on spot


def _err(code: int, msg: str, status: int = 400) -> RestResponse:
    return RestResponse(status, json.dumps({"code": code, "msg": msg}, separators=(",", ":")), _JSON)


class BinanceSpotProtocol(SimVenueProtocol):
    venue = "binance"
    rest = True
    taker_fee_bps = 10.0
    api = "/api/v3"
    speeds = _SPOT_SPEEDS
    depth_limits: tuple[int, ...] | None = None  # None: any 1..5000
    default_limit = 100
    max_limit = 5000

    def __init__(self, ctx):
        super().__init__(ctx)
        self._by_native: dict[str, SimSymbol] = {}  # lower-case native -> symbol

    # -- symbols ---------------------------------------------------------------------------
    def setup_symbol(self, sym: SimSymbol) -> None:
        sym.native = (sym.spec.base + sym.spec.quote).upper()
        self._by_native[sym.native.lower()] = sym
        pd, qd = self.precisions(sym)
        sym.state["pfmt"] = fixed_formatter(sym.spec.tick, pd)
        sym.state["qfmt"] = fixed_formatter(sym.spec.lot, qd)
        sym.state["pdec"], sym.state["qdec"] = pd, qd
        sym.state["last"] = self.first_id(sym)
        # Pre-built pieces of the event text.
        sym.state["head"] = '{"e":"depthUpdate","E":'
        sym.state["s"] = f',"s":"{sym.native}","U":'

    def precisions(self, sym: SimSymbol) -> tuple[int, int]:
        """Decimals of prices and sizes on the wire: spot always writes 8."""
        return max(8, sym.spec.tick_decimals), max(8, sym.spec.lot_decimals)

    def first_id(self, sym: SimSymbol) -> int:
        return 100_000_000 + zlib.crc32(sym.native.encode()) % 400_000_000

    # -- market data -----------------------------------------------------------------------
    def advance(self, sym: SimSymbol, n_changes: int) -> BinanceSeq:
        st = sym.state
        first = st["last"] + 1
        last = st["last"] + max(1, n_changes)
        st["last"] = last
        return BinanceSeq(first, last, -1)

    def _levels(self, sym: SimSymbol, changes: dict[int, int], reverse: bool) -> str:
        if not changes:
            return ""
        pf, qf = sym.state["pfmt"], sym.state["qfmt"]
        return ",".join(['["' + pf(p) + '","' + qf(changes[p]) + '"]'
                         for p in sorted(changes, reverse=reverse)])

    def encode_update(self, sym, seq, bids, asks, event_ms, corrupt_checksum=False) -> str:
        st = sym.state
        return (f'{st["head"]}{event_ms}{st["s"]}{seq.first},"u":{seq.last},'
                f'"b":[{self._levels(sym, bids, True)}],"a":[{self._levels(sym, asks, False)}]}}')

    def frame(self, conn: Connection, tag: Any, payload: str) -> str:
        if conn.state.get("combined"):
            return '{"stream":"' + tag + '","data":' + payload + "}"
        return payload

    # -- connections -----------------------------------------------------------------------
    def on_connect(self, conn: Connection) -> list[str]:
        path = conn.path.rstrip("/") or "/"
        for prefix in ("/public", "/market"):
            if path.startswith(prefix + "/"):
                path = path[len(prefix):]
        if path == "/stream":
            conn.state["combined"] = True
            streams = [s for s in unquote(conn.query.get("streams", "")).split("/") if s]
        elif path == "/ws":
            conn.state["combined"] = False
            streams = []
        elif path.startswith("/ws/"):
            conn.state["combined"] = False
            streams = [s for s in path[4:].split("/") if s]
        else:
            raise Reject(404, "Not Found")
        conn.state["streams"] = []
        for name in streams:
            if not self._subscribe(conn, name):
                raise Reject(400, f"Invalid stream name: {name}")
        return []

    def _parse(self, name: str) -> tuple[str, str | None] | None:
        """(kind, native_lower) of a well-formed stream name, None if malformed."""
        m = _STREAM_RE.match(name)
        if not m:
            return None
        native, kind, speed = m.group(1), m.group(2), m.group(3)
        if kind == "depth":
            if speed not in self.speeds:
                return None
            return "depth", native
        if kind in _KNOWN_KINDS or kind.startswith("kline_"):
            return kind, native
        return None

    def _subscribe(self, conn: Connection, name: str) -> bool:
        parsed = self._parse(name)
        if parsed is None:
            return False
        if name not in conn.state["streams"]:
            conn.state["streams"].append(name)
            kind, native = parsed
            sym = self._by_native.get(native) if kind == "depth" else None
            if sym is not None:
                conn.subscribe(sym, name)
        return True

    def _unsubscribe(self, conn: Connection, name: str) -> None:
        if name in conn.state["streams"]:
            conn.state["streams"].remove(name)
            parsed = self._parse(name)
            if parsed and parsed[0] == "depth" and parsed[1] in self._by_native:
                conn.unsubscribe(self._by_native[parsed[1]], name)

    def on_message(self, conn: Connection, text: str) -> list[str]:
        def reply(obj: Mapping) -> list[str]:
            return [json.dumps(obj, separators=(",", ":"))]

        try:
            msg = json.loads(text)
        except ValueError:
            return reply({"error": {"code": 3, "msg": "Invalid JSON: expected value at line 1 column 1"}})
        if not isinstance(msg, dict):
            return reply({"error": {"code": 2, "msg": "Invalid request: request ID must be an unsigned integer"}})
        rid = msg.get("id")
        method = msg.get("method")
        params = msg.get("params", [])
        if not isinstance(rid, int | str) or isinstance(rid, bool):
            return reply({"error": {"code": 2, "msg": "Invalid request: request ID must be an unsigned integer"},
                          "id": None})
        if method == "SUBSCRIBE":
            if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
                return reply({"error": {"code": 1, "msg": "Invalid value type: expected array of strings"},
                              "id": rid})
            bad = [p for p in params if self._parse(p) is None]
            if bad:
                return reply({"error": {"code": 2, "msg": f"Invalid request: invalid stream name {bad[0]!r}"},
                              "id": rid})
            for p in params:
                self._subscribe(conn, p)
            return reply({"result": None, "id": rid})
        if method == "UNSUBSCRIBE":
            for p in params if isinstance(params, list) else []:
                self._unsubscribe(conn, p)
            return reply({"result": None, "id": rid})
        if method == "LIST_SUBSCRIPTIONS":
            return reply({"result": list(conn.state["streams"]), "id": rid})
        if method == "SET_PROPERTY":
            if isinstance(params, list) and len(params) == 2 and params[0] == "combined" \
                    and isinstance(params[1], bool):
                conn.state["combined"] = params[1]
                return reply({"result": None, "id": rid})
            return reply({"error": {"code": 0, "msg": "Unknown property"}, "id": rid})
        if method == "GET_PROPERTY":
            if isinstance(params, list) and params == ["combined"]:
                return reply({"result": bool(conn.state.get("combined")), "id": rid})
            return reply({"error": {"code": 0, "msg": "Unknown property"}, "id": rid})
        return reply({"error": {"code": 2, "msg": f"Invalid request: unknown method {method!r}"}, "id": rid})

    # -- REST ------------------------------------------------------------------------------
    def rest_routes(self) -> dict[str, RestRoute]:
        return {
            f"{self.api}/depth": RestRoute(self._depth, snapshot=True),
            f"{self.api}/exchangeInfo": RestRoute(self._exchange_info),
            f"{self.api}/ping": RestRoute(lambda q: RestResponse(200, "{}", _JSON)),
            f"{self.api}/time": RestRoute(
                lambda q: RestResponse(200, f'{{"serverTime":{self.ctx.now_ms()}}}', _JSON)),
        }

    def _lookup(self, query: Mapping[str, str]) -> SimSymbol | RestResponse:
        name = query.get("symbol")
        if not name:
            return _err(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
        sym = self._by_native.get(name.lower()) if name.isupper() else None
        if sym is None:
            return _err(-1121, "Invalid symbol.")
        return sym

    def _limit(self, query: Mapping[str, str]) -> int | RestResponse:
        raw = query.get("limit")
        if raw is None:
            return self.default_limit
        try:
            limit = int(raw)
        except ValueError:
            return _err(-1100, "Illegal characters found in parameter 'limit'; legal range is '^[0-9]{1,20}$'.")
        if self.depth_limits is not None:
            if limit not in self.depth_limits:
                return _err(-1130, f"Invalid data sent for a parameter: limit must be one of {list(self.depth_limits)}.")
        elif not 1 <= limit <= self.max_limit:
            return _err(-1130, "Data sent for parameter 'limit' is not valid.")
        return limit

    def _book_json(self, sym: SimSymbol, limit: int) -> tuple[str, str]:
        pf, qf = sym.state["pfmt"], sym.state["qfmt"]
        bids = ",".join(['["' + pf(p) + '","' + qf(s) + '"]' for p, s in sym.book.bids(limit)])
        asks = ",".join(['["' + pf(p) + '","' + qf(s) + '"]' for p, s in sym.book.asks(limit)])
        return bids, asks

    def _depth(self, query: Mapping[str, str]) -> RestResponse:
        sym = self._lookup(query)
        if isinstance(sym, RestResponse):
            return sym
        limit = self._limit(query)
        if isinstance(limit, RestResponse):
            return limit
        bids, asks = self._book_json(sym, limit)
        return RestResponse(200, f'{{"lastUpdateId":{sym.state["last"]},"bids":[{bids}],"asks":[{asks}]}}', _JSON)

    def _filters(self, sym: SimSymbol) -> list[dict]:
        pd, qd = sym.state["pdec"], sym.state["qdec"]
        pf, qf = sym.state["pfmt"], sym.state["qfmt"]
        price = sym.book.price(sym.book.best_bid) if sym.book.bid_px else 1.0
        max_price_ticks = int(price * 100 / sym.book.tick) if price > 0 else 10 ** 9
        max_qty_lots = max(1, int(10_000_000 / max(price, 1e-12) / sym.book.lot))
        min_notional = 5.0
        return [
            {"filterType": "PRICE_FILTER", "minPrice": pf(1), "maxPrice": pf(max_price_ticks), "tickSize": pf(1)},
            {"filterType": "LOT_SIZE", "minQty": qf(1), "maxQty": qf(max_qty_lots), "stepSize": qf(1)},
            {"filterType": "NOTIONAL", "minNotional": f"{min_notional:.{pd}f}", "applyMinToMarket": True,
             "maxNotional": f"{9000000:.{pd}f}", "applyMaxToMarket": False, "avgPriceMins": 5},
            {"filterType": "MARKET_LOT_SIZE", "minQty": f"{0:.{qd}f}", "maxQty": qf(max_qty_lots),
             "stepSize": f"{0:.{qd}f}"},
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
        ]

    def _symbol_info(self, sym: SimSymbol) -> dict:
        return {
            "symbol": sym.native, "status": "TRADING",
            "baseAsset": sym.spec.base, "baseAssetPrecision": 8,
            "quoteAsset": sym.spec.quote, "quotePrecision": 8, "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8, "quoteCommissionPrecision": 8,
            "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
            "icebergAllowed": True, "ocoAllowed": True, "otoAllowed": True,
            "quoteOrderQtyMarketAllowed": True, "allowTrailingStop": True, "cancelReplaceAllowed": True,
            "isSpotTradingAllowed": True, "isMarginTradingAllowed": False,
            "filters": self._filters(sym), "permissions": [], "permissionSets": [["SPOT"]],
            "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
            "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
        }

    def _exchange_info(self, query: Mapping[str, str]) -> RestResponse:
        syms = list(self._by_native.values())
        wanted: list[str] | None = None
        if "symbol" in query:
            wanted = [query["symbol"]]
        elif "symbols" in query:
            try:
                wanted = json.loads(query["symbols"])
            except ValueError:
                return _err(-1100, "Illegal characters found in parameter 'symbols'.")
        if wanted is not None:
            syms = [self._by_native[w.lower()] for w in wanted if isinstance(w, str) and w.lower() in self._by_native]
            if not syms:
                return _err(-1121, "Invalid symbol.")
        body = {
            "timezone": "UTC", "serverTime": self.ctx.now_ms(),
            "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
                {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
            ],
            "exchangeFilters": [],
            "symbols": [self._symbol_info(s) for s in syms],
        }
        return RestResponse(200, json.dumps(body, separators=(",", ":")), _JSON)


class BinanceUsdmProtocol(BinanceSpotProtocol):
    venue = "binanceusdm"
    taker_fee_bps = 5.0
    api = "/fapi/v1"
    speeds = _USDM_SPEEDS
    depth_limits = (5, 10, 20, 50, 100, 500, 1000)
    default_limit = 500
    #: Contract tick/lot sizes as Binance USD-M lists them; ``price_precision`` and
    #: ``qty_precision`` are the decimals on the wire (``pricePrecision``/``quantityPrecision``).
    instruments = {
        "BTC/USDT": {"tick": "0.10", "lot": "0.001", "price_precision": 2, "qty_precision": 3},
        "ETH/USDT": {"tick": "0.01", "lot": "0.001", "price_precision": 2, "qty_precision": 3},
        "SOL/USDT": {"tick": "0.0100", "lot": "1", "price_precision": 4, "qty_precision": 0},
        "BNB/USDT": {"tick": "0.010", "lot": "0.01", "price_precision": 3, "qty_precision": 2},
        "XRP/USDT": {"tick": "0.0001", "lot": "0.1", "price_precision": 4, "qty_precision": 1},
        "DOGE/USDT": {"tick": "0.000010", "lot": "1", "price_precision": 6, "qty_precision": 0},
        "ADA/USDT": {"tick": "0.00010", "lot": "1", "price_precision": 5, "qty_precision": 0},
        "LTC/USDT": {"tick": "0.01", "lot": "0.001", "price_precision": 2, "qty_precision": 3},
    }

    def __init__(self, ctx):
        super().__init__(ctx)
        self._g = 600_000_000_000  # the venue-wide update id counter
        self._lcg = 12345

    def precisions(self, sym: SimSymbol) -> tuple[int, int]:
        extra = self.instruments.get(sym.symbol, {})
        pd = max(int(extra.get("price_precision", 0)), decimals_of(sym.spec.tick))
        qd = max(int(extra.get("qty_precision", 0)), decimals_of(sym.spec.lot))
        return pd, qd

    def setup_symbol(self, sym: SimSymbol) -> None:
        super().setup_symbol(sym)
        sym.state["s"] = f',"s":"{sym.native}","U":'

    def first_id(self, sym: SimSymbol) -> int:
        self._g += 1000 + zlib.crc32(sym.native.encode()) % 100_000
        return self._g

    def advance(self, sym: SimSymbol, n_changes: int) -> BinanceSeq:
        # Other symbols' (and hidden) updates take ids too: a deterministic pseudo-random skip.
        self._lcg = (self._lcg * 1103515245 + 12345) & 0x7FFFFFFF
        first = self._g + 1 + (self._lcg >> 8) % 50
        last = first + max(1, n_changes) - 1 + (self._lcg >> 16) % 3
        self._g = last
        st = sym.state
        prev = st["last"]
        st["last"] = last
        return BinanceSeq(first, last, prev)

    def encode_update(self, sym, seq, bids, asks, event_ms, corrupt_checksum=False) -> str:
        st = sym.state
        return (f'{st["head"]}{event_ms},"T":{event_ms - 3}{st["s"]}{seq.first},"u":{seq.last},'
                f'"pu":{seq.prev},"b":[{self._levels(sym, bids, False)}],'
                f'"a":[{self._levels(sym, asks, False)}]}}')

    def _depth(self, query: Mapping[str, str]) -> RestResponse:
        sym = self._lookup(query)
        if isinstance(sym, RestResponse):
            return sym
        limit = self._limit(query)
        if isinstance(limit, RestResponse):
            return limit
        bids, asks = self._book_json(sym, limit)
        now = self.ctx.now_ms()
        return RestResponse(200, f'{{"lastUpdateId":{sym.state["last"]},"E":{now},"T":{now - 3},'
                                 f'"bids":[{bids}],"asks":[{asks}]}}', _JSON)

    def _symbol_info(self, sym: SimSymbol) -> dict:
        pd, qd = sym.state["pdec"], sym.state["qdec"]
        qf = sym.state["qfmt"]
        tick_s, lot_s = sym.spec.tick, sym.spec.lot  # as the contract lists them ("0.10")
        price = sym.book.price(sym.book.best_bid) if sym.book.bid_px else 1.0
        return {
            "symbol": sym.native, "pair": sym.native, "contractType": "PERPETUAL",
            "deliveryDate": 4133404800000, "onboardDate": 1569398400000, "status": "TRADING",
            "maintMarginPercent": "2.5000", "requiredMarginPercent": "5.0000",
            "baseAsset": sym.spec.base, "quoteAsset": sym.spec.quote, "marginAsset": sym.spec.quote,
            "pricePrecision": pd, "quantityPrecision": qd, "baseAssetPrecision": 8, "quotePrecision": 8,
            "underlyingType": "COIN", "underlyingSubType": [], "settlePlan": 0, "triggerProtect": "0.0500",
            "liquidationFee": "0.012500", "marketTakeBound": "0.05", "maxMoveOrderLimit": 10000,
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": tick_s, "maxPrice": f"{price * 100:.{pd}f}",
                 "tickSize": tick_s},
                {"filterType": "LOT_SIZE", "minQty": lot_s, "maxQty": qf(max(1, int(1000 / sym.book.lot))),
                 "stepSize": lot_s},
                {"filterType": "MARKET_LOT_SIZE", "minQty": lot_s, "maxQty": qf(max(1, int(120 / sym.book.lot))),
                 "stepSize": lot_s},
                {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
                {"filterType": "MIN_NOTIONAL", "notional": "5"},
                {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500", "multiplierDown": "0.9500",
                 "multiplierDecimal": "4"},
            ],
            "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET",
                           "TRAILING_STOP_MARKET"],
            "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
            "permissionSets": ["GRID", "COPY"],
        }

    def _exchange_info(self, query: Mapping[str, str]) -> RestResponse:
        body = {
            "timezone": "UTC", "serverTime": self.ctx.now_ms(), "futuresType": "U_MARGINED",
            "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400},
                {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300},
            ],
            "exchangeFilters": [],
            "assets": [{"asset": a, "marginAvailable": True, "autoAssetExchange": "-10000"}
                       for a in sorted({s.spec.quote for s in self._by_native.values()})],
            "symbols": [self._symbol_info(s) for s in self._by_native.values()],
        }
        return RestResponse(200, json.dumps(body, separators=(",", ":")), _JSON)
