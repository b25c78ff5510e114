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

Orders (SIGNED endpoints; the engine, its matching rules and faults: :mod:`hftpipe.sim.orders`)
  Binance's "SIGNED (TRADE and USER_DATA) Endpoint security": ``X-MBX-APIKEY`` header (missing:
  401 ``-2014``, unknown: 401 ``-2015``), ``signature`` = hex HMAC SHA256 of totalParams (the
  query string concatenated with the body, without the signature; wrong: 400 ``-1022``),
  ``timestamp`` within ``recvWindow`` (default 5000, max 60000; else 400 ``-1021``). Parameters
  may come in the query string, the form body or both (the query string wins).

  * spot ``/api/v3``: ``POST|GET|DELETE order``, ``POST order/test``, ``GET|DELETE openOrders``,
    ``GET allOrders``, ``GET account``, ``GET myTrades``. Types LIMIT (GTC/IOC/FOK), MARKET (by
    ``quantity`` or ``quoteOrderQty``), LIMIT_MAKER; ``newOrderRespType`` ACK/RESULT/FULL.
    Errors: duplicate ``newClientOrderId`` -2010 "Duplicate order sent.", balance -2010 "Account
    has insufficient balance for requested action.", post-only -2010 "Order would immediately
    match and take.", filters -1013 "Filter failure: PRICE_FILTER|LOT_SIZE|MARKET_LOT_SIZE|NOTIONAL
    |MAX_NUM_ORDERS", unknown order -2013 "Order does not exist." (query) / -2011 "Unknown order
    sent." (cancel).
  * USD-M ``/fapi/v1``: ``POST|GET|DELETE order``, ``POST order/test``, ``GET openOrder``, ``GET
    openOrders``, ``DELETE allOpenOrders``, ``GET allOrders``, ``GET userTrades``, ``POST
    leverage``, ``GET leverageBracket``, ``GET positionSide/dual``; ``/fapi/v2`` and ``/fapi/v3``:
    ``GET account``, ``GET balance``, ``GET positionRisk``. One-way mode (positionSide BOTH),
    cross margin. Types LIMIT (GTC/IOC/FOK/GTX), MARKET; ``reduceOnly``; ``newOrderRespType``
    ACK (default)/RESULT. Errors: duplicate -4116 "ClientOrderId is duplicated.", margin -2019
    "Margin is insufficient.", -4014 tick, -1111 precision, -4004/-4005/-4023 quantity, -4164
    notional, -4016/-4024 PERCENT_PRICE (against the book's mid), -2022 reduce-only, -5022 GTX.

  Filters are read from the symbol's own exchangeInfo entry, so what ccxt's ``load_markets``
  sees is what is enforced. Stop and trailing order types answer -1014 "Unsupported order
  combination." (the simulator has none).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import re
import zlib
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, unquote

from hftpipe.sim.model import decimals_of
from hftpipe.sim.orders import (
    BUY,
    SELL,
    AccountState,
    Order,
    OrderEngine,
    OrderFault,
    OrderReject,
    OrderSimConfig,
    hmac_sha256_hex,
)
from hftpipe.sim.venues import (
    Connection,
    Reject,
    RestRequest,
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


class _Err(Exception):  # noqa: N818 - an error reply, raised from deep in a handler
    def __init__(self, code: int, msg: str, status: int = 400):
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, status


_INT_RE = re.compile(r"^-?[0-9]{1,20}$")
_DEC_RE = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
_CLID_RE = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
_FUT_CLID_RE = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")


def _f8(x: Decimal) -> str:
    return f"{x:.8f}"


def _fd(x: Decimal, decimals: int) -> str:
    return f"{x:.{decimals}f}"


def _strip_signature(raw: str) -> str:
    """``raw`` (query string or body) without its ``signature`` parameter, as it was signed."""
    if "signature=" not in raw:
        return raw
    return "&".join(part for part in raw.split("&") if not part.startswith("signature="))


def _fault_response(f: OrderFault) -> RestResponse:
    if f.code is None or f.body is not None:
        body = f.body if f.body is not None else ""
        ctype = _JSON if body.startswith("{") else "text/html"
        return RestResponse(f.status, body, ctype)
    return _err(f.code, f.msg, f.status)


class BinanceSpotProtocol(SimVenueProtocol):
    venue = "binance"
    rest = True
    taker_fee_bps = 10.0
    maker_fee_bps = 10.0
    market_kind = "spot"  # for the order engine: "spot" balances or "linear" margin and positions
    #: ccxt ``urls['api']`` entries this venue serves, as paths under the REST URL
    ccxt_api = {"public": "/api/v3", "private": "/api/v3"}
    api = "/api/v3"
    speeds = _SPOT_SPEEDS
    depth_limits: tuple[int, ...] | None = None  # None: any 1..5000
    default_limit = 100
    max_limit = 5000

    def __init__(self, ctx):
        super().__init__(ctx)
        self._by_native: dict[str, SimSymbol] = {}  # lower-case native -> symbol
        self.orders = self._make_engine()
        self._order_watch = self.orders.resting  # symbols with resting orders (checked per event)

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
        self.orders.add_symbol(sym)

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
        if sym.symbol in self._order_watch:
            self.orders.on_book(sym)
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
            **self._order_routes(),
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
        return RestResponse(200, self._depth_body(sym, bids, asks), _JSON)

    def _depth_body(self, sym: SimSymbol, bids: str, asks: str) -> str:
        return f'{{"lastUpdateId":{sym.state["last"]},"bids":[{bids}],"asks":[{asks}]}}'

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

    # -- orders (signed endpoints) -----------------------------------------------------------
    def _make_engine(self) -> OrderEngine:
        cfg = getattr(self.ctx, "config", None)
        ocfg = OrderSimConfig.from_any(getattr(cfg, "orders", None))
        fees = dict(getattr(cfg, "fees_bps", None) or {})
        taker = ocfg.taker_fee_bps.get(self.venue, fees.get(self.venue, self.taker_fee_bps))
        maker = ocfg.maker_fee_bps.get(self.venue, self.maker_fee_bps)
        return OrderEngine(self.venue, self.market_kind, ocfg, int(getattr(cfg, "seed", 1)), taker, maker,
                           self.ctx.now_ms)

    def _order_routes(self) -> dict[str, RestRoute]:
        a = self.api
        return {
            f"{a}/order": self._signed_route(self._h_order, ("GET", "POST", "DELETE")),
            f"{a}/order/test": self._signed_route(self._h_order_test, ("POST",)),
            f"{a}/openOrders": self._signed_route(self._h_open_orders, ("GET", "DELETE")),
            f"{a}/allOrders": self._signed_route(self._h_all_orders, ("GET",)),
            f"{a}/account": self._signed_route(self._h_account, ("GET",)),
            f"{a}/myTrades": self._signed_route(self._h_my_trades, ("GET",)),
        }

    def _signed_route(self, fn: Callable[[str, AccountState, dict[str, str]], Any],
                      methods: tuple[str, ...]) -> RestRoute:
        async def handler(req: RestRequest) -> RestResponse:
            return await self._serve_signed(req, fn)

        return RestRoute(handler, methods=methods, raw=True)

    async def _serve_signed(self, req: RestRequest, fn) -> RestResponse:
        eng = self.orders
        if req.method == "DELETE":
            endpoint = "cancel"
        elif req.method == "POST" and req.path.endswith("/order"):
            endpoint = "place"
        else:
            endpoint = "query"
        fault = eng.take_fault(endpoint, req.path)
        if fault is not None and fault.kind == "error" and not fault.after:
            return _fault_response(fault)
        try:
            st, params = self._authenticate(req)
            out = fn(req.method, st, params)
            resp = out if isinstance(out, RestResponse) else RestResponse(
                200, json.dumps(out, separators=(",", ":")), _JSON)
        except _Err as e:
            resp = _err(e.code, e.msg, e.status)
        if fault is not None:
            if fault.kind == "delay":
                await asyncio.sleep(fault.delay_ms / 1000.0)
            else:
                resp = _fault_response(fault)
        return resp

    def _authenticate(self, req: RestRequest) -> tuple[AccountState, dict[str, str]]:
        """Binance's SIGNED endpoint security: API key header, HMAC SHA256 of totalParams (query
        string + body, without the signature), timestamp within recvWindow."""
        key = req.headers.get("X-MBX-APIKEY")
        if not key:
            raise _Err(-2014, "API-key format invalid.", 401)
        st = self.orders.account(key)
        if st is None:
            raise _Err(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        params = dict(parse_qsl(req.body, keep_blank_values=True)) if req.body else {}
        params.update(parse_qsl(req.raw_query, keep_blank_values=True))  # the query string wins
        signature = params.pop("signature", "")
        if not signature:
            raise _Err(-1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.")
        total = _strip_signature(req.raw_query) + _strip_signature(req.body)
        if not hmac.compare_digest(hmac_sha256_hex(st.account.secret, total), signature.lower()):
            raise _Err(-1022, "Signature for this request is not valid.")
        ts = self._p_int(params, "timestamp", required=True)
        recv = self._p_int(params, "recvWindow") if params.get("recvWindow") else 5000
        if recv > 60000:
            raise _Err(-1131, "recvWindow must be less than 60000")
        server = self.orders.server_time_ms()
        if server is not None:
            if ts >= server + 1000:
                raise _Err(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")
            if server - ts > recv:
                raise _Err(-1021, "Timestamp for this request is outside of the recvWindow.")
        return st, params

    # parameters
    def _p_symbol(self, p: Mapping[str, str], required: bool = True) -> SimSymbol | None:
        name = p.get("symbol")
        if not name:
            if required:
                raise _Err(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
            return None
        sym = self._by_native.get(name.lower()) if name.isupper() else None
        if sym is None:
            raise _Err(-1121, "Invalid symbol.")
        return sym

    @staticmethod
    def _p_int(p: Mapping[str, str], name: str, required: bool = False) -> int | None:
        raw = p.get(name)
        if raw is None or raw == "":
            if required:
                raise _Err(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
            return None
        if not _INT_RE.match(raw):
            raise _Err(-1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'.")
        return int(raw)

    @staticmethod
    def _p_dec(p: Mapping[str, str], name: str, required: bool = False) -> Decimal | None:
        raw = p.get(name)
        if raw is None or raw == "":
            if required:
                raise _Err(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
            return None
        if not _DEC_RE.match(raw):
            raise _Err(-1100, f"Illegal characters found in parameter '{name}'; legal range is "
                              f"'^([0-9]{{1,20}})(\\.[0-9]{{1,20}})?$'.")
        return Decimal(raw)

    def _p_client_id(self, p: Mapping[str, str], name: str = "newClientOrderId") -> str | None:
        cid = p.get(name)
        if cid is None:
            return None
        if not _CLID_RE.match(cid):
            raise _Err(-1100, f"Illegal characters found in parameter '{name}'; legal range is "
                              f"'^[\\.A-Z\\:/a-z0-9_-]{{1,36}}$'.")
        return cid

    def _p_lookup(self, st: AccountState, sym: SimSymbol, p: Mapping[str, str], missing_code: int,
                  missing_msg: str) -> Order:
        oid = self._p_int(p, "orderId")
        cid = p.get("origClientOrderId") or None
        if oid is None and cid is None:
            raise _Err(-1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")
        o = self.orders.find(st, sym, oid, None if oid is not None else cid)
        if o is None:
            raise _Err(missing_code, missing_msg)
        return o

    def _rules(self, sym: SimSymbol) -> dict[str, Any]:
        """The order rules the symbol's exchangeInfo filters advertise."""
        f = {x["filterType"]: x for x in self._symbol_info(sym)["filters"]}
        pf, ls = f["PRICE_FILTER"], f["LOT_SIZE"]
        mls = f.get("MARKET_LOT_SIZE", {})
        r: dict[str, Any] = {
            "tick": Decimal(pf["tickSize"]), "min_price": Decimal(pf["minPrice"]), "max_price": Decimal(pf["maxPrice"]),
            "step": Decimal(ls["stepSize"]), "min_qty": Decimal(ls["minQty"]), "max_qty": Decimal(ls["maxQty"]),
            "mkt_step": Decimal(mls.get("stepSize", "0")), "mkt_min_qty": Decimal(mls.get("minQty", "0")),
            "mkt_max_qty": Decimal(mls["maxQty"]) if "maxQty" in mls else None,
        }
        mno = f.get("MAX_NUM_ORDERS", {})
        r["max_orders"] = int(mno.get("maxNumOrders", mno.get("limit", 200)))
        if "NOTIONAL" in f:
            n = f["NOTIONAL"]
            r.update(min_notional=Decimal(n["minNotional"]), max_notional=Decimal(n["maxNotional"]),
                     min_to_market=bool(n.get("applyMinToMarket")))
        if "MIN_NOTIONAL" in f:
            r.update(min_notional=Decimal(f["MIN_NOTIONAL"]["notional"]), max_notional=None, min_to_market=True)
        if "PERCENT_PRICE" in f:
            r.update(up=Decimal(f["PERCENT_PRICE"]["multiplierUp"]), down=Decimal(f["PERCENT_PRICE"]["multiplierDown"]))
        return r

    @staticmethod
    def _on_grid(x: Decimal, lo: Decimal, step: Decimal) -> bool:
        return step == 0 or (x - lo) % step == 0

    # spot handlers
    def _h_order(self, method: str, st: AccountState, p: dict[str, str]) -> Any:
        if method == "POST":
            return self._new_order(st, p)
        sym = self._p_symbol(p)
        if method == "GET":
            return self._order_json(self._p_lookup(st, sym, p, -2013, "Order does not exist."))
        o = self._p_lookup(st, sym, p, -2011, "Unknown order sent.")
        if not o.is_open:
            raise _Err(-2011, "Unknown order sent.")
        self.orders.cancel(st, o)
        return self._cancel_json(o, p)

    def _h_order_test(self, method: str, st: AccountState, p: dict[str, str]) -> Any:
        self._new_order(st, p, test=True)
        return {}

    def _h_open_orders(self, method: str, st: AccountState, p: dict[str, str]) -> Any:
        if method == "DELETE":
            sym = self._p_symbol(p)
            open_ = sorted((o for o in st.open.values() if o.sym is sym), key=lambda o: o.order_id)
            if not open_:
                raise _Err(-2011, "Unknown order sent.")
            out = []
            for o in open_:
                self.orders.cancel(st, o)
                out.append(self._cancel_json(o, {}))
            return out
        sym = self._p_symbol(p, required=False)
        return [self._order_json(o) for o in sorted(st.open.values(), key=lambda o: o.order_id)
                if sym is None or o.sym is sym]

    def _h_all_orders(self, method: str, st: AccountState, p: dict[str, str]) -> Any:
        sym = self._p_symbol(p)
        oid = self._p_int(p, "orderId")
        start, end = self._p_int(p, "startTime"), self._p_int(p, "endTime")
        limit = min(self._p_int(p, "limit") or 500, 1000)
        orders = [o for o in st.orders.values() if o.sym is sym and (oid is None or o.order_id >= oid)
                  and (start is None or o.time >= start) and (end is None or o.time <= end)]
        orders.sort(key=lambda o: o.order_id)
        orders = orders[:limit] if oid is not None else orders[-limit:]
        return [self._order_json(o) for o in orders]

    def _trades_of(self, st: AccountState, p: dict[str, str]) -> list:
        sym = self._p_symbol(p)
        oid, from_id = self._p_int(p, "orderId"), self._p_int(p, "fromId")
        start, end = self._p_int(p, "startTime"), self._p_int(p, "endTime")
        limit = min(self._p_int(p, "limit") or 500, 1000)
        trades = [f for f in st.trades if f.order.sym is sym and (oid is None or f.order.order_id == oid)
                  and (from_id is None or f.trade_id >= from_id) and (start is None or f.time >= start)
                  and (end is None or f.time <= end)]
        return trades[:limit] if from_id is not None else trades[-limit:]

    def _h_my_trades(self, method: str, st: AccountState, p: dict[str, str]) -> Any:
        out = []
        for f in self._trades_of(st, p):
            o = f.order
            out.append({"symbol": o.sym.native, "id": f.trade_id, "orderId": o.order_id, "orderListId": -1,
                        "price": o.sym.state["pfmt"](f.ticks), "qty": o.sym.state["qfmt"](f.lots),
                        "quoteQty": _f8(f.quote), "commission": _f8(f.commission),
                        "commissionAsset": f.commission_asset, "time": f.time, "isBuyer": o.side == BUY,
                        "isMaker": f.maker, "isBestMatch": True})
        return out

    def _h_account(self, method: str, st: AccountState, p: dict[str, str]) -> Any:
        eng = self.orders
        maker, taker = eng.maker_rate, eng.taker_rate
        assets = sorted(set(st.free) | set(st.locked))
        balances = [{"asset": a, "free": _f8(st.free.get(a, Decimal(0))), "locked": _f8(st.locked.get(a, Decimal(0)))}
                    for a in assets]
        if p.get("omitZeroBalances") == "true":
            balances = [b for b in balances if Decimal(b["free"]) or Decimal(b["locked"])]
        return {
            "makerCommission": int(eng.maker_fee_bps), "takerCommission": int(eng.taker_fee_bps),
            "buyerCommission": 0, "sellerCommission": 0,
            "commissionRates": {"maker": _f8(maker), "taker": _f8(taker), "buyer": "0.00000000",
                                "seller": "0.00000000"},
            "canTrade": True, "canWithdraw": True, "canDeposit": True, "brokered": False,
            "requireSelfTradePrevention": False, "preventSor": False,
            "updateTime": st.update_time or self.ctx.now_ms(), "accountType": "SPOT",
            "balances": balances, "permissions": ["SPOT"], "uid": 1000 + list(eng.accounts).index(st.api_key),
        }

    def _new_order(self, st: AccountState, p: dict[str, str], test: bool = False) -> Any:
        sym = self._p_symbol(p)
        side = p.get("side")
        if not side:
            raise _Err(-1102, "Mandatory parameter 'side' was not sent, was empty/null, or malformed.")
        if side not in (BUY, SELL):
            raise _Err(-1117, "Invalid side.")
        otype = p.get("type")
        if not otype:
            raise _Err(-1102, "Mandatory parameter 'type' was not sent, was empty/null, or malformed.")
        if otype not in ("LIMIT", "MARKET", "LIMIT_MAKER"):
            if otype in ("STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"):
                raise _Err(-1014, "Unsupported order combination.")  # the simulator has no stop orders
            raise _Err(-1116, "Invalid orderType.")
        tif = p.get("timeInForce")
        if otype == "LIMIT":
            if not tif:
                raise _Err(-1102, "Mandatory parameter 'timeInForce' was not sent, was empty/null, or malformed.")
            if tif not in ("GTC", "IOC", "FOK"):
                raise _Err(-1115, "Invalid timeInForce.")
        elif tif:
            raise _Err(-1106, "Parameter 'timeInForce' sent when not required.")
        price = self._p_dec(p, "price", required=otype != "MARKET")
        if otype == "MARKET" and price is not None:
            raise _Err(-1106, "Parameter 'price' sent when not required.")
        qty = self._p_dec(p, "quantity")
        quote_qty = self._p_dec(p, "quoteOrderQty")
        if otype == "MARKET":
            if qty is None and quote_qty is None:
                raise _Err(-1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!")
            if qty is not None and quote_qty is not None:
                raise _Err(-1106, "Parameter 'quoteOrderQty' sent when not required.")
        else:
            if qty is None:
                raise _Err(-1102, "Mandatory parameter 'quantity' was not sent, was empty/null, or malformed.")
            if quote_qty is not None:
                raise _Err(-1106, "Parameter 'quoteOrderQty' sent when not required.")
        cid = self._p_client_id(p)
        resp = p.get("newOrderRespType") or ("ACK" if otype == "LIMIT_MAKER" else "FULL")
        if resp not in ("ACK", "RESULT", "FULL"):
            raise _Err(-1130, "Data sent for parameter 'newOrderRespType' is not valid.")
        for v in (price, qty, quote_qty):
            if v is not None and -v.as_tuple().exponent > 8:
                raise _Err(-1111, "Precision is over the maximum defined for this asset.")
        r = self._rules(sym)
        lot = Decimal(sym.spec.lot)
        ticks = lots = None
        if price is not None:
            if price <= 0 or price < r["min_price"] or price > r["max_price"] \
                    or not self._on_grid(price, r["min_price"], r["tick"]):
                raise _Err(-1013, "Filter failure: PRICE_FILTER")
            ticks = int(price / Decimal(sym.spec.tick))
        if qty is not None:
            if qty <= 0 or qty < r["min_qty"] or qty > r["max_qty"] or not self._on_grid(qty, r["min_qty"], r["step"]):
                raise _Err(-1013, "Filter failure: LOT_SIZE")
            if otype == "MARKET" and ((r["mkt_max_qty"] is not None and qty > r["mkt_max_qty"])
                                      or qty < r["mkt_min_qty"] or not self._on_grid(qty, r["mkt_min_qty"], r["mkt_step"])):
                raise _Err(-1013, "Filter failure: MARKET_LOT_SIZE")
            lots = int(qty / lot)
        if otype == "MARKET":
            notional = quote_qty if quote_qty is not None else qty * self.orders.mid(sym)
            if r["min_to_market"] and notional < r["min_notional"]:
                raise _Err(-1013, "Filter failure: NOTIONAL")
        else:
            notional = price * qty
            if notional < r["min_notional"] or (r["max_notional"] is not None and notional > r["max_notional"]):
                raise _Err(-1013, "Filter failure: NOTIONAL")
        try:
            o = self.orders.place(st, sym, side, otype, tif or "GTC", ticks, lots, quote_qty, cid,
                                  post_only=otype == "LIMIT_MAKER", max_open=r["max_orders"], test=test)
        except OrderReject as e:
            raise self._reject(e) from None
        if o is None:
            return {}
        o.resp_type = resp
        return self._new_order_json(o, resp)

    def _reject(self, e: OrderReject) -> _Err:
        msg = {"duplicate": "Duplicate order sent.",
               "insufficient": "Account has insufficient balance for requested action.",
               "would_take": "Order would immediately match and take."}.get(e.reason)
        if msg is not None:
            return _Err(-2010, msg)
        if e.reason == "max_orders":
            return _Err(-1013, "Filter failure: MAX_NUM_ORDERS")
        return _Err(-2010, "Unsupported order combination")

    # spot JSON
    def _order_fields(self, o: Order) -> dict[str, Any]:
        s = o.sym.state
        return {"price": s["pfmt"](o.ticks) if o.ticks is not None else _f8(Decimal(0)),
                "origQty": s["qfmt"](o.lots), "executedQty": s["qfmt"](o.filled_lots),
                "origQuoteOrderQty": _f8(o.quote_qty or Decimal(0)), "cummulativeQuoteQty": _f8(o.cum_quote),
                "status": o.status, "timeInForce": o.tif, "type": o.type, "side": o.side}

    def _new_order_json(self, o: Order, resp: str) -> dict[str, Any]:
        out: dict[str, Any] = {"symbol": o.sym.native, "orderId": o.order_id, "orderListId": -1,
                               "clientOrderId": o.client_id, "transactTime": o.time}
        if resp == "ACK":
            return out
        out.update(self._order_fields(o))
        out.update(workingTime=o.time, selfTradePreventionMode="EXPIRE_MAKER")
        if resp == "FULL":
            s = o.sym.state
            out["fills"] = [{"price": s["pfmt"](f.ticks), "qty": s["qfmt"](f.lots), "commission": _f8(f.commission),
                             "commissionAsset": f.commission_asset, "tradeId": f.trade_id}
                            for f in o.fills if not f.maker]
        return out

    def _order_json(self, o: Order) -> dict[str, Any]:
        out: dict[str, Any] = {"symbol": o.sym.native, "orderId": o.order_id, "orderListId": -1,
                               "clientOrderId": o.client_id}
        out.update(self._order_fields(o))
        out.update(stopPrice=_f8(Decimal(0)), icebergQty=_f8(Decimal(0)), time=o.time, updateTime=o.update_time,
                   isWorking=True, workingTime=o.time, selfTradePreventionMode="EXPIRE_MAKER")
        return out

    def _cancel_json(self, o: Order, p: Mapping[str, str]) -> dict[str, Any]:
        out: dict[str, Any] = {"symbol": o.sym.native, "origClientOrderId": o.client_id, "orderId": o.order_id,
                               "orderListId": -1,
                               "clientOrderId": self._p_client_id(p) or self.orders.new_client_id(),
                               "transactTime": o.update_time}
        out.update(self._order_fields(o))
        out["selfTradePreventionMode"] = "EXPIRE_MAKER"
        return out


class BinanceUsdmProtocol(BinanceSpotProtocol):
    venue = "binanceusdm"
    taker_fee_bps = 5.0
    maker_fee_bps = 2.0
    market_kind = "linear"
    ccxt_api = {"fapiPublic": "/fapi/v1", "fapiPublicV2": "/fapi/v2", "fapiPublicV3": "/fapi/v3",
                "fapiPrivate": "/fapi/v1", "fapiPrivateV2": "/fapi/v2", "fapiPrivateV3": "/fapi/v3"}
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
        if sym.symbol in self._order_watch:
            self.orders.on_book(sym)
        return BinanceSeq(first, last, prev)

    def encode_update(self, sym, seq, bids, asks, event_ms, corrupt_checksum=False) -> str:
        st = sym.state
        return (f'{st["head"]}{event_ms},"T":{event_ms - 3}{st["s"]}{seq.first},"u":{seq.last},'
                f'"pu":{seq.prev},"b":[{self._levels(sym, bids, False)}],'
                f'"a":[{self._levels(sym, asks, False)}]}}')

    def _depth_body(self, sym: SimSymbol, bids: str, asks: str) -> str:
        now = self.ctx.now_ms()
        return (f'{{"lastUpdateId":{sym.state["last"]},"E":{now},"T":{now - 3},'
                f'"bids":[{bids}],"asks":[{asks}]}}')

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

    # -- orders (signed endpoints) -----------------------------------------------------------
    def _order_routes(self) -> dict[str, RestRoute]:
        return {
            "/fapi/v1/order": self._signed_route(self._h_order, ("GET", "POST", "DELETE")),
            "/fapi/v1/order/test": self._signed_route(self._h_order_test, ("POST",)),
            "/fapi/v1/openOrder": self._signed_route(self._h_open_order, ("GET",)),
            "/fapi/v1/openOrders": self._signed_route(self._h_open_orders, ("GET",)),
            "/fapi/v1/allOpenOrders": self._signed_route(self._h_cancel_all, ("DELETE",)),
            "/fapi/v1/allOrders": self._signed_route(self._h_all_orders, ("GET",)),
            "/fapi/v1/userTrades": self._signed_route(self._h_my_trades, ("GET",)),
            "/fapi/v1/leverage": self._signed_route(self._h_leverage, ("POST",)),
            "/fapi/v1/leverageBracket": self._signed_route(self._h_leverage_bracket, ("GET",)),
            "/fapi/v1/positionSide/dual": self._signed_route(
                lambda m, st, p: {"dualSidePosition": False}, ("GET",)),
            "/fapi/v2/account": self._signed_route(self._h_account, ("GET",)),
            "/fapi/v3/account": self._signed_route(self._h_account, ("GET",)),
            "/fapi/v2/balance": self._signed_route(self._h_balance, ("GET",)),
            "/fapi/v3/balance": self._signed_route(self._h_balance, ("GET",)),
            "/fapi/v2/positionRisk": self._signed_route(self._h_position_risk, ("GET",)),
            "/fapi/v3/positionRisk": self._signed_route(self._h_position_risk, ("GET",)),
        }

    def _h_open_order(self, method: str, st: AccountState, p: dict[str, str]) -> Any:
        o = self._p_lookup(st, self._p_symbol(p), p, -2013, "Order does not exist.")
        if not o.is_open:
            raise _Err(-2013, "Order does not exist.")
        return self._order_json(o)

    def _h_open_orders(self, method: str, st: AccountState, p: dict[str, str]) -> Any:
        sym = self._p_symbol(p, required=False)
        return [self._order_json(o) for o in sorted(st.open.values(), key=lambda o: o.order_id)
                if sym is None or o.sym is sym]

    def _h_cancel_all(self, method: str, st: AccountState, p: dict[str, str]) -> Any:
        sym = self._p_symbol(p)
        for o in sorted((o for o in st.open.values() if o.sym is sym), key=lambda o: o.order_id):
            self.orders.cancel(st, o)
        return {"code": 200, "msg": "The operation of cancel all open order is done."}

    def _h_my_trades(self, method: str, st: AccountState, p: dict[str, str]) -> Any:
        out = []
        for f in self._trades_of(st, p):
            o = f.order
            s = o.sym.state
            out.append({"buyer": o.side == BUY, "commission": _f8(f.commission), "commissionAsset": f.commission_asset,
                        "id": f.trade_id, "maker": f.maker, "orderId": o.order_id, "price": s["pfmt"](f.ticks),
                        "qty": s["qfmt"](f.lots), "quoteQty": _fd(f.quote, s["pdec"] + s["qdec"]),
                        "realizedPnl": _f8(f.realized_pnl), "side": o.side, "positionSide": "BOTH",
                        "symbol": o.sym.native, "time": f.time})
        return out

    def _h_leverage(self, method: str, st: AccountState, p: dict[str, str]) -> Any:
        sym = self._p_symbol(p)
        lev = self._p_int(p, "leverage", required=True)
        if not 1 <= lev <= 125:
            raise _Err(-4028, f"Leverage {lev} is not valid")
        st.leverage[sym.symbol] = lev
        return {"leverage": lev, "maxNotionalValue": "1000000", "symbol": sym.native}

    def _h_leverage_bracket(self, method: str, st: AccountState, p: dict[str, str]) -> Any:
        sym = self._p_symbol(p, required=False)
        return [{"symbol": s.native, "notionalCoef": 1.0,
                 "brackets": [{"bracket": 1, "initialLeverage": 125, "notionalCap": 1_000_000_000, "notionalFloor": 0,
                               "maintMarginRatio": 0.004, "cum": 0.0}]}
                for s in self._by_native.values() if sym is None or s is sym]

    def _margin_assets(self, st: AccountState) -> list[str]:
        return sorted(set(st.free) | {s.spec.quote for s in self._by_native.values()})

    def _h_account(self, method: str, st: AccountState, p: dict[str, str]) -> Any:
        eng = self.orders
        now = st.update_time or self.ctx.now_ms()
        assets, tot = [], {k: Decimal(0) for k in ("wallet", "unrealized", "margin_balance", "position_im",
                                                    "order_im", "available")}
        for a in self._margin_assets(st):
            m = eng.margin_summary(st, a)
            for k in tot:
                tot[k] += m[k]
            assets.append({
                "asset": a, "walletBalance": _f8(m["wallet"]), "unrealizedProfit": _f8(m["unrealized"]),
                "marginBalance": _f8(m["margin_balance"]), "maintMargin": _f8(Decimal(0)),
                "initialMargin": _f8(m["position_im"] + m["order_im"]), "positionInitialMargin": _f8(m["position_im"]),
                "openOrderInitialMargin": _f8(m["order_im"]), "crossWalletBalance": _f8(m["wallet"]),
                "crossUnPnl": _f8(m["unrealized"]), "availableBalance": _f8(m["available"]),
                "maxWithdrawAmount": _f8(max(m["available"], Decimal(0))), "marginAvailable": True,
                "updateTime": now})
        positions = []
        for sym in self._by_native.values():
            pos = st.positions.get(sym.symbol)
            has_orders = any(o.sym is sym for o in st.open.values())
            if (pos is None or pos.lots == 0) and not has_orders:
                continue
            positions.append(self._position_json(st, sym))
        return {
            "feeTier": 0, "canTrade": True, "canDeposit": True, "canWithdraw": True, "updateTime": 0,
            "multiAssetsMargin": False, "tradeGroupId": -1,
            "totalInitialMargin": _f8(tot["position_im"] + tot["order_im"]), "totalMaintMargin": _f8(Decimal(0)),
            "totalWalletBalance": _f8(tot["wallet"]), "totalUnrealizedProfit": _f8(tot["unrealized"]),
            "totalMarginBalance": _f8(tot["margin_balance"]), "totalPositionInitialMargin": _f8(tot["position_im"]),
            "totalOpenOrderInitialMargin": _f8(tot["order_im"]), "totalCrossWalletBalance": _f8(tot["wallet"]),
            "totalCrossUnPnl": _f8(tot["unrealized"]), "availableBalance": _f8(tot["available"]),
            "maxWithdrawAmount": _f8(max(tot["available"], Decimal(0))), "assets": assets, "positions": positions,
        }

    def _h_balance(self, method: str, st: AccountState, p: dict[str, str]) -> Any:
        now = st.update_time or self.ctx.now_ms()
        out = []
        for a in self._margin_assets(st):
            m = self.orders.margin_summary(st, a)
            out.append({"accountAlias": "SgsR", "asset": a, "balance": _f8(m["wallet"]),
                        "crossWalletBalance": _f8(m["wallet"]), "crossUnPnl": _f8(m["unrealized"]),
                        "availableBalance": _f8(m["available"]),
                        "maxWithdrawAmount": _f8(max(m["available"], Decimal(0))), "marginAvailable": True,
                        "updateTime": now})
        return out

    def _position_json(self, st: AccountState, sym: SimSymbol) -> dict[str, Any]:
        eng = self.orders
        pos = st.positions.get(sym.symbol)
        lots = pos.lots if pos else 0
        s = sym.state
        mark = eng.mid(sym)
        amt = Decimal(lots) * Decimal(sym.spec.lot)
        lev = eng.leverage(st, sym.symbol)
        notional = amt * mark
        im = abs(notional) / lev
        return {"symbol": sym.native, "positionSide": "BOTH", "positionAmt": s["qfmt"](lots),
                "entryPrice": _fd(pos.entry if pos else Decimal(0), s["pdec"] + 5),
                "breakEvenPrice": _fd(pos.entry if pos else Decimal(0), s["pdec"] + 5),
                "markPrice": _fd(mark, s["pdec"] + 6), "unRealizedProfit": _f8(eng.unrealized(st, sym.symbol)),
                "unrealizedProfit": _f8(eng.unrealized(st, sym.symbol)), "liquidationPrice": "0",
                "leverage": str(lev), "maxNotionalValue": "1000000", "marginType": "cross", "isolatedMargin": _f8(Decimal(0)),
                "isAutoAddMargin": "false", "notional": _f8(notional), "isolatedWallet": "0",
                "initialMargin": _f8(im), "positionInitialMargin": _f8(im), "openOrderInitialMargin": "0",
                "maintMargin": _f8(Decimal(0)), "adl": 0, "bidNotional": "0", "askNotional": "0",
                "updateTime": pos.update_time if pos else 0}

    def _h_position_risk(self, method: str, st: AccountState, p: dict[str, str]) -> Any:
        sym = self._p_symbol(p, required=False)
        return [self._position_json(st, s) for s in self._by_native.values() if sym is None or s is sym]

    def _new_order(self, st: AccountState, p: dict[str, str], test: bool = False) -> Any:
        sym = self._p_symbol(p)
        side = p.get("side")
        if not side:
            raise _Err(-1102, "Mandatory parameter 'side' was not sent, was empty/null, or malformed.")
        if side not in (BUY, SELL):
            raise _Err(-1117, "Invalid side.")
        pside = p.get("positionSide", "BOTH")
        if pside not in ("BOTH", "LONG", "SHORT"):
            raise _Err(-4060, "Invalid position side.")
        if pside != "BOTH":
            raise _Err(-4061, "Order's position side does not match user's setting.")
        otype = p.get("type")
        if not otype:
            raise _Err(-1102, "Mandatory parameter 'type' was not sent, was empty/null, or malformed.")
        if otype not in ("LIMIT", "MARKET"):
            if otype in ("STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"):
                raise _Err(-1014, "Unsupported order combination.")  # the simulator has no stop orders
            raise _Err(-1116, "Invalid orderType.")
        tif = p.get("timeInForce")
        if otype == "LIMIT":
            if not tif:
                raise _Err(-1102, "Mandatory parameter 'timeInForce' was not sent, was empty/null, or malformed.")
            if tif not in ("GTC", "IOC", "FOK", "GTX"):
                raise _Err(-1115, "Invalid timeInForce.")
        elif tif:
            raise _Err(-1106, "Parameter 'timeInForce' sent when not required.")
        price = self._p_dec(p, "price", required=otype == "LIMIT")
        if otype == "MARKET" and price is not None:
            raise _Err(-1106, "Parameter 'price' sent when not required.")
        qty = self._p_dec(p, "quantity", required=True)
        reduce_only = p.get("reduceOnly", "false").lower()
        if reduce_only not in ("true", "false"):
            raise _Err(-1130, "Data sent for parameter 'reduceOnly' is not valid.")
        cid = p.get("newClientOrderId")
        if cid is not None and not _FUT_CLID_RE.match(cid):
            raise _Err(-4015, "Client order id is not valid.")
        resp = p.get("newOrderRespType") or "ACK"
        if resp not in ("ACK", "RESULT"):
            raise _Err(-1136, "Invalid newOrderRespType.")
        s = sym.state
        r = self._rules(sym)
        ticks = None
        if price is not None:
            if -price.as_tuple().exponent > s["pdec"]:
                raise _Err(-1111, "Precision is over the maximum defined for this asset.")
            if price < r["min_price"]:
                raise _Err(-4013, "Price less than min price.")
            if price > r["max_price"]:
                raise _Err(-4002, "Price greater than max price.")
            if not self._on_grid(price, r["min_price"], r["tick"]):
                raise _Err(-4014, "Price not increased by tick size.")
            mark = self.orders.mid(sym)
            if side == BUY and price > mark * r["up"]:
                raise _Err(-4016, f"Limit price can't be higher than {_fd(mark * r['up'], s['pdec'])}.")
            if side == SELL and price < mark * r["down"]:
                raise _Err(-4024, f"Limit price can't be lower than {_fd(mark * r['down'], s['pdec'])}.")
            ticks = int(price / Decimal(sym.spec.tick))
        if -qty.as_tuple().exponent > s["qdec"]:
            raise _Err(-1111, "Precision is over the maximum defined for this asset.")
        if qty <= 0:
            raise _Err(-4003, "Quantity less than or equal to zero.")
        if qty < r["min_qty"]:
            raise _Err(-4004, "Quantity less than min quantity.")
        max_qty = r["mkt_max_qty"] if otype == "MARKET" and r["mkt_max_qty"] is not None else r["max_qty"]
        if qty > max_qty:
            raise _Err(-4005, "Quantity greater than max quantity.")
        if not self._on_grid(qty, r["min_qty"], r["step"]):
            raise _Err(-4023, "Qty not increased by step size.")
        notional = qty * (price if price is not None else self.orders.mid(sym))
        if reduce_only == "false" and notional < r["min_notional"]:
            raise _Err(-4164, f"Order's notional must be no smaller than {r['min_notional']:f} "
                              "(unless you choose reduce only).")
        lots = int(qty / Decimal(sym.spec.lot))
        try:
            o = self.orders.place(st, sym, side, otype, tif or "GTC", ticks, lots, None, cid,
                                  post_only=tif == "GTX", reduce_only=reduce_only == "true",
                                  max_open=r["max_orders"], test=test)
        except OrderReject as e:
            raise self._reject(e) from None
        if o is None:
            return {}
        o.resp_type = resp
        return self._order_json(o, cum=True, ack=resp == "ACK")

    def _reject(self, e: OrderReject) -> _Err:
        if e.reason == "duplicate":
            return _Err(-4116, "ClientOrderId is duplicated.")
        if e.reason == "insufficient":
            return _Err(-2019, "Margin is insufficient.")
        if e.reason == "would_take":
            return _Err(-5022, "Due to the order could not be executed as maker, the Post Only order will be "
                               "rejected. The order will not be recorded in the order history")
        if e.reason == "reduce_only":
            return _Err(-2022, "ReduceOnly Order is rejected.")
        if e.reason == "max_orders":
            return _Err(-2025, "Reach max open order limit.")
        return _Err(-1014, "Unsupported order combination.")

    def _order_json(self, o: Order, cum: bool = False, ack: bool = False) -> dict[str, Any]:
        s = o.sym.state
        filled = 0 if ack else o.filled_lots
        quote = Decimal(0) if ack else o.cum_quote
        avg = quote / (Decimal(filled) * Decimal(o.sym.spec.lot)) if filled else Decimal(0)
        out: dict[str, Any] = {
            "orderId": o.order_id, "symbol": o.sym.native, "status": "NEW" if ack else o.status,
            "clientOrderId": o.client_id, "price": s["pfmt"](o.ticks) if o.ticks is not None else "0",
            "avgPrice": _fd(avg, s["pdec"] + 5), "origQty": s["qfmt"](o.lots), "executedQty": s["qfmt"](filled),
        }
        if cum:
            out["cumQty"] = s["qfmt"](filled)
        out.update({
            "cumQuote": _fd(quote, s["pdec"] + s["qdec"]), "timeInForce": o.tif, "type": o.type,
            "reduceOnly": o.reduce_only, "closePosition": False, "side": o.side, "positionSide": "BOTH",
            "stopPrice": "0", "workingType": "CONTRACT_PRICE", "priceProtect": False, "origType": o.type,
            "priceMatch": "NONE", "selfTradePreventionMode": "EXPIRE_MAKER", "goodTillDate": 0,
        })
        if not cum:
            out["time"] = o.time
        out["updateTime"] = o.time if ack else o.update_time
        return out

    def _cancel_json(self, o: Order, p: Mapping[str, str]) -> dict[str, Any]:
        return self._order_json(o, cum=True)
