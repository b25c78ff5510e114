"""Order endpoints of the offline exchange simulator: accounts, keys, matching, balances, faults.

This module is venue-agnostic: it holds the accounts, the orders, the fills, the balances and
(for linear contracts) the positions of one venue, and matches orders against the market
model's book of that venue. A venue protocol (``hftpipe/sim/venues/binance.py``) speaks the
venue's wire format around it: signed requests, parameters, filters, error codes, JSON.

Matching
--------
* An order is matched against the model's **current** book of its (venue, symbol), the book the
  market-data streams describe at that moment: a buy walks the asks from the best up to its limit
  price (a sell the bids), level by level, each level a separate fill at that level's price with
  the venue's **taker** fee. IOC keeps what filled and expires the rest, FOK fills completely or
  expires with nothing, MARKET walks without a price limit (spot also by quote amount), GTC
  rests what did not fill (post-only orders that would take are refused).
* **Resting orders fill when the market trades through them.** After every book event of the
  symbol (checked in the protocol's ``advance``, which runs for every event whether or not it is
  sent), a resting buy whose price is at or above the best ask (a sell at or below the best bid)
  fills against the crossing levels' size, at its own limit price, as **maker** (maker fee).
  Orders that rest never show in the public book, and fills do not consume the model's
  liquidity: two orders taking the same level both get it (within one event, resting orders
  share the crossing size). Simple, deterministic, and enough to test an executor.
* Spot: balances per asset, ``free``/``locked``. A limit buy needs ``price * qty`` of the quote
  asset free, a market buy the cost of its walk, a sell its quantity of the base asset; what
  rests is locked. The commission is taken from what the order receives (base asset on a buy,
  quote asset on a sell), rounded to 8 decimals.
* Linear contracts (one-way mode, cross margin): a wallet in the quote (margin) asset,
  positions per symbol with their average entry price; fees and realized PnL go to the wallet.
  An order that adds exposure needs ``added notional / leverage`` of available balance (wallet
  + unrealized PnL at the book's mid - position and open-order initial margin).

Identifiers: order ids, trade ids and generated client order ids come from a generator seeded
with the simulator's seed and the venue: the same requests in the same order get the same ids.
Client order ids are unique per account and venue: with ``client_id_scope="all"`` (default) an
id the venue has seen once is refused for as long as the simulator runs, so a retry with the same
id can never create a second order; ``"open"`` is Binance's exact rule (an id is refused only
while its order is open, so retrying an order that already filled DOES create a new one).

Faults (:class:`OrderFault`): the next ``count`` requests of an endpoint kind (``place``,
``cancel``, ``query``, ``any``) are answered ``delay_ms`` late AFTER they were processed (the
client times out, the order exists: the case idempotent retries are for), or answered with an
HTTP error (``status``, Binance ``code``/``msg`` or a raw ``body``) either instead of being
processed or, with ``after=True``, after being processed (execution status unknown).

State lives on the simulator's event loop: from another thread use :class:`SimOrders`, which
goes through ``SimExchange.call``.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hftpipe.sim.venues import SimSymbol

#: The simulator's default test credentials (``X-MBX-APIKEY`` / HMAC secret): never real keys.
DEFAULT_API_KEY = "hftpipe-sim-api-key"
DEFAULT_API_SECRET = "hftpipe-sim-api-secret"

#: Start balances of the default account, per asset; every venue holds its own copy.
DEFAULT_BALANCES: dict[str, float] = {
    "USDT": 1_000_000.0, "USDC": 1_000_000.0, "BTC": 10.0, "ETH": 200.0, "SOL": 5_000.0,
    "BNB": 1_000.0, "XRP": 1_000_000.0, "DOGE": 5_000_000.0, "ADA": 2_000_000.0, "LTC": 10_000.0,
}

BUY, SELL = "BUY", "SELL"
OPEN_STATUSES = frozenset({"NEW", "PARTIALLY_FILLED"})
FAULT_KINDS = ("delay", "error")
FAULT_ENDPOINTS = ("place", "cancel", "query", "any")
_Q8 = Decimal("0.00000001")
_ZERO = Decimal(0)
_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def hmac_sha256_hex(secret: str, payload: str) -> str:
    """Binance's HMAC SHA256 signature: lowercase hex of HMAC(secret, totalParams)."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def _dec(x: Any) -> Decimal:
    return x if isinstance(x, Decimal) else Decimal(str(x))


# --------------------------------------------------------------------------------------------
# Configuration


@dataclass(frozen=True)
class SimAccount:
    """One API key pair and its start balances (``venue_balances[venue]`` replaces ``balances``
    on that venue; linear venues only use their margin asset)."""

    api_key: str = DEFAULT_API_KEY
    secret: str = DEFAULT_API_SECRET
    balances: Mapping[str, float | str] = field(default_factory=lambda: dict(DEFAULT_BALANCES))
    venue_balances: Mapping[str, Mapping[str, float | str]] = field(default_factory=dict)
    name: str = "default"

    def start_balances(self, venue: str) -> dict[str, Decimal]:
        src = self.venue_balances.get(venue, self.balances)
        return {a: _dec(v) for a, v in src.items()}


@dataclass(frozen=True)
class OrderFault:
    """A fault of the order endpoints (see the module docstring)."""

    kind: str  # "delay" | "error"
    venue: str | None = None  # None = every venue
    endpoint: str = "place"  # place (new order) | cancel | query (every GET) | any
    count: int = 1  # the next N matching requests
    delay_ms: float = 1000.0  # delay: answer this late, after processing
    status: int = 500  # error: HTTP status
    code: int | None = -1001  # error: venue error code (None: send ``body`` as is)
    msg: str = "Internal error; unable to process your request. Please try again."
    body: str | None = None  # error: raw body instead of {"code":..,"msg":..}
    after: bool = False  # error: process the request first, then answer the error

    def __post_init__(self):
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"order fault kind {self.kind!r}: expected one of {', '.join(FAULT_KINDS)}")
        if self.endpoint not in FAULT_ENDPOINTS:
            raise ValueError(f"order fault endpoint {self.endpoint!r}: expected one of {', '.join(FAULT_ENDPOINTS)}")
        if self.count < 1:
            raise ValueError("order fault count must be >= 1")
        if self.delay_ms < 0:
            raise ValueError("order fault delay_ms must be >= 0")

    @classmethod
    def from_any(cls, obj: OrderFault | Mapping) -> OrderFault:
        if isinstance(obj, OrderFault):
            return obj
        names = {f.name for f in fields(cls)}
        unknown = set(obj) - names
        if unknown:
            raise ValueError(f"unknown order fault field(s): {', '.join(sorted(unknown))}")
        return cls(**obj)


@dataclass(frozen=True)
class OrderSimConfig:
    """``SimConfig(orders=...)``: an instance or a mapping of these fields."""

    accounts: Sequence[SimAccount | Mapping] = (SimAccount(),)
    client_id_scope: str = "all"  # "all": an id is never reused; "open": Binance's rule
    #: which clock ``timestamp``/``recvWindow`` are checked against: "wall" (the machine's
    #: clock, what clients send; default), "sim" (the simulator's ``now_ms``, which is what
    #: ``/time`` answers: use with a client that adjusts for the time difference), "off"
    timestamp_check: str = "wall"
    taker_fee_bps: Mapping[str, float] = field(default_factory=dict)  # per venue; default: SimConfig.fees_bps
    maker_fee_bps: Mapping[str, float] = field(default_factory=dict)  # per venue; default: the protocol's
    leverage: int = 20  # linear contracts: initial leverage of every symbol
    faults: Sequence[OrderFault | Mapping] = ()

    def __post_init__(self):
        accounts = tuple(a if isinstance(a, SimAccount) else SimAccount(**a) for a in self.accounts)
        keys = [a.api_key for a in accounts]
        if len(set(keys)) != len(keys):
            raise ValueError("two simulator accounts share an API key")
        object.__setattr__(self, "accounts", accounts)
        object.__setattr__(self, "faults", tuple(OrderFault.from_any(f) for f in self.faults))
        if self.client_id_scope not in ("all", "open"):
            raise ValueError("client_id_scope must be 'all' or 'open'")
        if self.timestamp_check not in ("wall", "sim", "off"):
            raise ValueError("timestamp_check must be 'wall', 'sim' or 'off'")
        if self.leverage < 1:
            raise ValueError("leverage must be >= 1")

    @classmethod
    def from_any(cls, obj: OrderSimConfig | Mapping | None) -> OrderSimConfig:
        if obj is None:
            return cls()
        if isinstance(obj, OrderSimConfig):
            return obj
        names = {f.name for f in fields(cls)}
        unknown = set(obj) - names
        if unknown:
            raise ValueError(f"unknown orders option(s): {', '.join(sorted(unknown))}")
        return cls(**obj)


# --------------------------------------------------------------------------------------------
# State


class OrderReject(Exception):  # noqa: N818 - a refusal the venue layer turns into its error
    """The engine refuses an order; ``reason`` is one of ``duplicate``, ``insufficient``,
    ``would_take`` (post-only), ``reduce_only``, ``max_orders``."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class Fill:
    __slots__ = ("trade_id", "order", "ticks", "lots", "price", "qty", "quote", "commission",
                 "commission_asset", "maker", "time", "realized_pnl")

    def __init__(self, trade_id: int, order: Order, ticks: int, lots: int, price: Decimal, qty: Decimal,
                 commission: Decimal, commission_asset: str, maker: bool, time_ms: int,
                 realized_pnl: Decimal = _ZERO):
        self.trade_id = trade_id
        self.order = order
        self.ticks = ticks
        self.lots = lots
        self.price = price
        self.qty = qty
        self.quote = price * qty
        self.commission = commission
        self.commission_asset = commission_asset
        self.maker = maker
        self.time = time_ms
        self.realized_pnl = realized_pnl


class Order:
    """One order. Prices in ticks (None for market orders), quantities in lots."""

    __slots__ = ("order_id", "client_id", "sym", "side", "type", "tif", "ticks", "lots", "quote_qty",
                 "filled_lots", "cum_quote", "status", "time", "update_time", "fills", "reduce_only",
                 "position_side", "resp_type", "lock_asset", "api_key", "extra")

    def __init__(self, order_id: int, client_id: str, sym: SimSymbol, side: str, otype: str, tif: str,
                 ticks: int | None, lots: int, quote_qty: Decimal | None, time_ms: int):
        self.order_id = order_id
        self.client_id = client_id
        self.sym = sym
        self.side = side
        self.type = otype
        self.tif = tif
        self.ticks = ticks
        self.lots = lots  # original quantity (for a spot market order by quote: what filled)
        self.quote_qty = quote_qty  # spot MARKET quoteOrderQty
        self.filled_lots = 0
        self.cum_quote = _ZERO
        self.status = "NEW"
        self.time = time_ms
        self.update_time = time_ms
        self.fills: list[Fill] = []
        self.reduce_only = False
        self.position_side = "BOTH"
        self.resp_type = ""
        self.lock_asset = ""
        self.api_key = ""
        self.extra: dict[str, Any] = {}

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def remaining_lots(self) -> int:
        return self.lots - self.filled_lots

    @property
    def price(self) -> Decimal:
        return _ZERO if self.ticks is None else Decimal(self.ticks) * Decimal(self.sym.spec.tick)

    @property
    def orig_qty(self) -> Decimal:
        return Decimal(self.lots) * Decimal(self.sym.spec.lot)

    @property
    def executed_qty(self) -> Decimal:
        return Decimal(self.filled_lots) * Decimal(self.sym.spec.lot)

    @property
    def avg_price(self) -> Decimal:
        return self.cum_quote / self.executed_qty if self.filled_lots else _ZERO

    @property
    def commission(self) -> Decimal:
        return sum((f.commission for f in self.fills), _ZERO)

    def snapshot(self) -> dict[str, Any]:
        """Plain-data view (floats) for tests and reports."""
        return {
            "order_id": self.order_id, "client_order_id": self.client_id, "symbol": self.sym.symbol,
            "side": self.side, "type": self.type, "time_in_force": self.tif,
            "price": float(self.price) if self.ticks is not None else None,
            "qty": float(self.orig_qty), "filled": float(self.executed_qty),
            "cost": float(self.cum_quote), "average": float(self.avg_price) if self.filled_lots else None,
            "status": self.status, "time": self.time, "update_time": self.update_time,
            "fills": [{"trade_id": f.trade_id, "price": float(f.price), "qty": float(f.qty),
                       "commission": float(f.commission), "commission_asset": f.commission_asset,
                       "maker": f.maker, "time": f.time} for f in self.fills],
        }


class Position:
    __slots__ = ("lots", "entry", "update_time")

    def __init__(self) -> None:
        self.lots = 0  # signed
        self.entry = _ZERO
        self.update_time = 0


class AccountState:
    """One account on one venue."""

    def __init__(self, account: SimAccount, balances: Mapping[str, Decimal]):
        self.account = account
        self.free: dict[str, Decimal] = dict(balances)
        self.locked: dict[str, Decimal] = {a: _ZERO for a in balances}
        self.orders: dict[int, Order] = {}
        self.by_client: dict[str, Order] = {}  # client id -> latest order with it
        self.open: dict[int, Order] = {}
        self.trades: list[Fill] = []
        self.positions: dict[str, Position] = {}
        self.leverage: dict[str, int] = {}
        self.update_time = 0

    @property
    def api_key(self) -> str:
        return self.account.api_key

    def add(self, asset: str, free: Decimal = _ZERO, locked: Decimal = _ZERO) -> None:
        self.free[asset] = self.free.get(asset, _ZERO) + free
        self.locked[asset] = self.locked.get(asset, _ZERO) + locked


class _Resting:
    """Our resting orders of one symbol, with the best prices cached for the per-event check."""

    __slots__ = ("buys", "sells", "best_buy", "best_sell")

    def __init__(self) -> None:
        self.buys: list[Order] = []
        self.sells: list[Order] = []
        self.best_buy = -1
        self.best_sell = 1 << 62

    def refresh(self) -> None:
        self.buys.sort(key=lambda o: (-o.ticks, o.order_id))
        self.sells.sort(key=lambda o: (o.ticks, o.order_id))
        self.best_buy = self.buys[0].ticks if self.buys else -1
        self.best_sell = self.sells[0].ticks if self.sells else 1 << 62


# --------------------------------------------------------------------------------------------
# The engine


class OrderEngine:
    """Orders, fills and balances of one venue (see the module docstring). ``kind`` is
    ``"spot"`` or ``"linear"``. Runs on the simulator's loop; not thread-safe by itself."""

    def __init__(self, venue: str, kind: str, config: OrderSimConfig, seed: int, taker_fee_bps: float,
                 maker_fee_bps: float, now_ms: Callable[[], int]):
        if kind not in ("spot", "linear"):
            raise ValueError(f"unknown market kind {kind!r}")
        self.venue = venue
        self.kind = kind
        self.config = config
        self.taker_rate = _dec(taker_fee_bps) / 10_000
        self.maker_rate = _dec(maker_fee_bps) / 10_000
        self.taker_fee_bps = float(taker_fee_bps)
        self.maker_fee_bps = float(maker_fee_bps)
        self.now_ms = now_ms
        self._rng = random.Random(f"hftpipe.sim.orders:{venue}:{seed}")
        self._next_order_id = self._rng.randrange(1_000, 9_000) * 1_000_000
        self._next_trade_id = self._rng.randrange(1_000, 9_000) * 100_000
        self.accounts: dict[str, AccountState] = {
            a.api_key: AccountState(a, a.start_balances(venue)) for a in config.accounts}
        self.symbols: dict[str, SimSymbol] = {}
        self.resting: dict[str, _Resting] = {}
        self.faults: list[list] = []  # [OrderFault, remaining]
        self.fault_log: list[dict] = []
        for f in config.faults:
            self.inject(f)

    # -- setup ---------------------------------------------------------------------------------
    def add_symbol(self, sym: SimSymbol) -> None:
        self.symbols[sym.symbol] = sym
        assets = (sym.spec.base, sym.spec.quote) if self.kind == "spot" else (sym.spec.quote,)
        for st in self.accounts.values():
            for a in assets:
                st.add(a)

    def account(self, api_key: str) -> AccountState | None:
        return self.accounts.get(api_key)

    # -- ids -----------------------------------------------------------------------------------
    def new_order_id(self) -> int:
        self._next_order_id += 1
        return self._next_order_id

    def new_trade_id(self) -> int:
        self._next_trade_id += 1
        return self._next_trade_id

    def new_client_id(self, prefix: str = "") -> str:
        return prefix + "".join(self._rng.choice(_ALNUM) for _ in range(22 - len(prefix)))

    # -- faults --------------------------------------------------------------------------------
    def inject(self, fault: OrderFault | Mapping) -> None:
        fault = OrderFault.from_any(fault)
        if fault.venue is None or fault.venue == self.venue:
            self.faults.append([fault, fault.count])

    def take_fault(self, endpoint: str, path: str = "") -> OrderFault | None:
        """Pop one use of the first armed fault for ``endpoint`` (place/cancel/query)."""
        for item in self.faults:
            f = item[0]
            if f.endpoint in (endpoint, "any"):
                item[1] -= 1
                if item[1] <= 0:
                    self.faults.remove(item)
                self.fault_log.append({"kind": f.kind, "venue": self.venue, "endpoint": endpoint, "path": path,
                                       "delay_ms": f.delay_ms if f.kind == "delay" else None,
                                       "status": f.status if f.kind == "error" else None, "after": f.after,
                                       "wall_ns": time.time_ns()})
                return f
        return None

    def server_time_ms(self) -> int | None:
        """The clock signed requests are checked against (None: no check)."""
        mode = self.config.timestamp_check
        if mode == "off":
            return None
        if mode == "sim":
            return self.now_ms()
        return time.time_ns() // 1_000_000

    # -- helpers -------------------------------------------------------------------------------
    @staticmethod
    def _tick(sym: SimSymbol) -> Decimal:
        return Decimal(sym.spec.tick)

    @staticmethod
    def _lot(sym: SimSymbol) -> Decimal:
        return Decimal(sym.spec.lot)

    def mid(self, sym: SimSymbol) -> Decimal:
        b = sym.book
        if not b.bid_px or not b.ask_px:
            return _ZERO
        return Decimal(b.bid_px[-1] + b.ask_px[0]) * self._tick(sym) / 2

    @staticmethod
    def walk(sym: SimSymbol, side: str, limit_ticks: int | None, lots: int | None,
             quote_units: int | None = None, used: Mapping[int, int] | None = None) -> list[tuple[int, int]]:
        """Levels ``[(ticks, lots)]`` a taker order takes: a buy walks the asks up to
        ``limit_ticks`` (a sell the bids down to it), for ``lots`` or, with ``quote_units`` (price
        ticks * lots, spot market by quote), for that much notional. ``used`` is size already
        taken per level."""
        b = sym.book
        out: list[tuple[int, int]] = []
        if side == BUY:
            px, sz, it = b.ask_px, b.ask_sz, iter(b.ask_px)
        else:
            px, sz, it = b.bid_px, b.bid_sz, reversed(b.bid_px)
        if not px:
            return out
        left = lots
        budget = quote_units
        for p in it:
            if limit_ticks is not None and (p > limit_ticks if side == BUY else p < limit_ticks):
                break
            avail = sz[p] - (used.get(p, 0) if used else 0)
            if avail <= 0:
                continue
            take = avail
            if left is not None:
                take = min(take, left)
            if budget is not None:
                take = min(take, budget // p)
            if take <= 0:
                break
            out.append((p, take))
            if left is not None:
                left -= take
                if left <= 0:
                    break
            if budget is not None:
                budget -= take * p
        return out

    def _margin_asset(self, sym: SimSymbol) -> str:
        return sym.spec.quote

    def leverage(self, st: AccountState, symbol: str) -> int:
        return st.leverage.get(symbol, self.config.leverage)

    def unrealized(self, st: AccountState, symbol: str) -> Decimal:
        pos = st.positions.get(symbol)
        if pos is None or pos.lots == 0:
            return _ZERO
        sym = self.symbols[symbol]
        return (self.mid(sym) - pos.entry) * Decimal(pos.lots) * self._lot(sym)

    def margin_summary(self, st: AccountState, asset: str) -> dict[str, Decimal]:
        """Linear: wallet, unrealized PnL, initial margins and available balance of ``asset``."""
        wallet = st.free.get(asset, _ZERO)
        upnl = pos_im = ord_im = _ZERO
        for symbol, pos in st.positions.items():
            sym = self.symbols[symbol]
            if pos.lots and sym.spec.quote == asset:
                upnl += self.unrealized(st, symbol)
                pos_im += abs(Decimal(pos.lots)) * self._lot(sym) * self.mid(sym) / self.leverage(st, symbol)
        for o in st.open.values():
            if o.sym.spec.quote == asset and not o.reduce_only:
                ord_im += Decimal(o.remaining_lots) * self._lot(o.sym) * o.price / self.leverage(st, o.sym.symbol)
        available = wallet + upnl - pos_im - ord_im
        return {"wallet": wallet, "unrealized": upnl, "position_im": pos_im, "order_im": ord_im,
                "margin_balance": wallet + upnl, "available": available}

    # -- orders --------------------------------------------------------------------------------
    def place(self, st: AccountState, sym: SimSymbol, side: str, otype: str, tif: str, ticks: int | None,
              lots: int | None, quote_qty: Decimal | None = None, client_id: str | None = None,
              post_only: bool = False, reduce_only: bool = False, max_open: int | None = None,
              test: bool = False) -> Order | None:
        """Validate and execute an order (``test``: validate only, return None). ``ticks`` is
        None for MARKET; ``lots`` None only for a spot MARKET order by ``quote_qty``."""
        if client_id is not None:
            prev = st.by_client.get(client_id)
            if prev is not None and (self.config.client_id_scope == "all" or prev.is_open):
                raise OrderReject("duplicate", client_id)
        if max_open is not None and ticks is not None and tif in ("GTC", "GTX") \
                and sum(1 for o in st.open.values() if o.sym is sym) >= max_open:
            raise OrderReject("max_orders")
        book = sym.book
        if post_only:
            if side == BUY and book.ask_px and ticks >= book.ask_px[0]:
                raise OrderReject("would_take")
            if side == SELL and book.bid_px and ticks <= book.bid_px[-1]:
                raise OrderReject("would_take")
        quote_units = None
        if lots is None:  # spot market by quote amount
            quote_units = int(quote_qty / (self._tick(sym) * self._lot(sym)))
        if reduce_only:  # only against the position, and not beyond it
            pos = st.positions.get(sym.symbol)
            have = pos.lots if pos else 0
            if have == 0 or (have > 0) == (side == BUY) or (lots or 0) > abs(have):
                raise OrderReject("reduce_only")
        levels = [] if post_only else self.walk(sym, side, ticks, lots, quote_units)
        got = sum(n for _, n in levels)
        if tif == "FOK" and got < (lots or 0):
            levels, got = [], 0
        self._check_funds(st, sym, side, otype, tif, ticks, lots, levels, reduce_only)
        if test:
            return None
        now = self.now_ms()
        if client_id is None:
            client_id = self.new_client_id()
        order = Order(self.new_order_id(), client_id, sym, side, otype, tif, ticks,
                      lots if lots is not None else got, quote_qty, now)
        order.reduce_only = reduce_only
        order.api_key = st.api_key
        st.orders[order.order_id] = order
        st.by_client[client_id] = order
        for p, n in levels:
            self._fill(st, order, p, n, maker=False, now=now)
        if order.filled_lots >= order.lots and order.lots > 0:
            order.status = "FILLED"
        elif ticks is not None and tif in ("GTC", "GTX"):
            order.status = "PARTIALLY_FILLED" if order.filled_lots else "NEW"
            self._rest(st, order)
        else:
            order.status = "EXPIRED"
        order.update_time = now
        st.update_time = now
        return order

    def _check_funds(self, st: AccountState, sym: SimSymbol, side: str, otype: str, tif: str,
                     ticks: int | None, lots: int | None, levels: list[tuple[int, int]], reduce_only: bool) -> None:
        tick, lot = self._tick(sym), self._lot(sym)
        walked_quote = sum((Decimal(p) * Decimal(n) for p, n in levels), _ZERO) * tick * lot
        walked_lots = sum(n for _, n in levels)
        if self.kind == "spot":
            if side == BUY:
                need = walked_quote if ticks is None else Decimal(ticks) * tick * Decimal(lots) * lot
                asset = sym.spec.quote
            else:
                need = Decimal(lots if lots is not None else walked_lots) * lot
                asset = sym.spec.base
            if st.free.get(asset, _ZERO) < need:
                raise OrderReject("insufficient", f"{need} {asset} needed, {st.free.get(asset, _ZERO)} free")
            return
        if reduce_only:
            return
        pos = st.positions.get(sym.symbol)
        have = pos.lots if pos else 0
        q = lots if lots is not None else walked_lots
        signed = q if side == BUY else -q
        added = max(0, abs(have + signed) - abs(have))
        if not added:
            return
        if ticks is not None:
            price = Decimal(ticks) * tick
        elif walked_lots:
            price = walked_quote / (Decimal(walked_lots) * lot)
        else:
            price = self.mid(sym)
        need = Decimal(added) * lot * price / self.leverage(st, sym.symbol) + walked_quote * self.taker_rate
        avail = self.margin_summary(st, sym.spec.quote)["available"]
        if avail < need:
            raise OrderReject("insufficient", f"{need} {sym.spec.quote} margin needed, {avail} available")

    def _rest(self, st: AccountState, order: Order) -> None:
        st.open[order.order_id] = order
        sym = order.sym
        if self.kind == "spot":
            rem = Decimal(order.remaining_lots) * self._lot(sym)
            if order.side == BUY:
                asset, amount = sym.spec.quote, rem * order.price
            else:
                asset, amount = sym.spec.base, rem
            st.free[asset] = st.free.get(asset, _ZERO) - amount
            st.locked[asset] = st.locked.get(asset, _ZERO) + amount
            order.lock_asset = asset
        r = self.resting.get(sym.symbol)
        if r is None:
            r = self.resting[sym.symbol] = _Resting()
        (r.buys if order.side == BUY else r.sells).append(order)
        r.refresh()

    def _unrest(self, st: AccountState, order: Order) -> None:
        st.open.pop(order.order_id, None)
        sym = order.sym
        if self.kind == "spot" and order.lock_asset:
            rem = Decimal(order.remaining_lots) * self._lot(sym)
            amount = rem * order.price if order.side == BUY else rem
            st.locked[order.lock_asset] -= amount
            st.free[order.lock_asset] += amount
        r = self.resting.get(sym.symbol)
        if r is not None:
            lst = r.buys if order.side == BUY else r.sells
            if order in lst:
                lst.remove(order)
            if r.buys or r.sells:
                r.refresh()
            else:
                del self.resting[sym.symbol]

    def _fill(self, st: AccountState, order: Order, ticks: int, lots: int, maker: bool, now: int) -> Fill:
        sym = order.sym
        price = Decimal(ticks) * self._tick(sym)
        qty = Decimal(lots) * self._lot(sym)
        quote = price * qty
        rate = self.maker_rate if maker else self.taker_rate
        realized = _ZERO
        base_a, quote_a = sym.spec.base, sym.spec.quote
        if self.kind == "spot":
            if order.side == BUY:
                commission, asset = (qty * rate).quantize(_Q8, ROUND_HALF_UP), base_a
                if maker:
                    st.locked[quote_a] -= quote
                else:
                    st.free[quote_a] -= quote
                st.free[base_a] = st.free.get(base_a, _ZERO) + qty - commission
            else:
                commission, asset = (quote * rate).quantize(_Q8, ROUND_HALF_UP), quote_a
                if maker:
                    st.locked[base_a] -= qty
                else:
                    st.free[base_a] -= qty
                st.free[quote_a] = st.free.get(quote_a, _ZERO) + quote - commission
        else:
            commission, asset = (quote * rate).quantize(_Q8, ROUND_HALF_UP), quote_a
            realized = self._apply_position(st, sym, lots if order.side == BUY else -lots, price, now)
            st.free[quote_a] = st.free.get(quote_a, _ZERO) + realized - commission
        f = Fill(self.new_trade_id(), order, ticks, lots, price, qty, commission, asset, maker, now, realized)
        order.fills.append(f)
        order.filled_lots += lots
        order.cum_quote += quote
        order.update_time = now
        st.trades.append(f)
        st.update_time = now
        return f

    def _apply_position(self, st: AccountState, sym: SimSymbol, signed_lots: int, price: Decimal, now: int) -> Decimal:
        pos = st.positions.get(sym.symbol)
        if pos is None:
            pos = st.positions[sym.symbol] = Position()
        realized = _ZERO
        have = pos.lots
        if have == 0 or (have > 0) == (signed_lots > 0):
            total = abs(have) + abs(signed_lots)
            pos.entry = (pos.entry * abs(have) + price * abs(signed_lots)) / total
            pos.lots = have + signed_lots
        else:
            closed = min(abs(have), abs(signed_lots))
            direction = 1 if have > 0 else -1
            realized = (price - pos.entry) * Decimal(closed) * self._lot(sym) * direction
            pos.lots = have + signed_lots
            if pos.lots == 0:
                pos.entry = _ZERO
            elif (pos.lots > 0) != (have > 0):  # flipped: the rest opens at this price
                pos.entry = price
        pos.update_time = now
        return realized

    def cancel(self, st: AccountState, order: Order) -> None:
        now = self.now_ms()
        self._unrest(st, order)
        order.status = "CANCELED"
        order.update_time = now
        st.update_time = now

    def find(self, st: AccountState, sym: SimSymbol, order_id: int | None = None,
             client_id: str | None = None) -> Order | None:
        if order_id is not None:
            o = st.orders.get(order_id)
        elif client_id is not None:
            o = st.by_client.get(client_id)
        else:
            return None
        return o if o is not None and o.sym is sym else None

    # -- the market moves ----------------------------------------------------------------------
    def wants(self, symbol: str) -> bool:
        return symbol in self.resting

    def on_book(self, sym: SimSymbol) -> None:
        """After a book event of ``sym``: fill resting orders the market now trades through."""
        r = self.resting.get(sym.symbol)
        if r is None:
            return
        b = sym.book
        if not ((b.ask_px and r.best_buy >= b.ask_px[0]) or (b.bid_px and r.best_sell <= b.bid_px[-1])):
            return
        now = self.now_ms()
        for side, orders in ((BUY, list(r.buys)), (SELL, list(r.sells))):
            used: dict[int, int] = {}
            for o in orders:
                levels = self.walk(sym, side, o.ticks, o.remaining_lots, used=used)
                if not levels:
                    break  # sorted best first: the next ones cross even less
                st = self.accounts[o.api_key]
                for p, n in levels:
                    used[p] = used.get(p, 0) + n
                    self._fill(st, o, o.ticks, n, maker=True, now=now)
                if o.filled_lots >= o.lots:
                    o.status = "FILLED"
                    self._unrest(st, o)
                else:
                    o.status = "PARTIALLY_FILLED"

    # -- views ---------------------------------------------------------------------------------
    def balances(self, api_key: str = DEFAULT_API_KEY) -> dict[str, dict[str, float]]:
        st = self.accounts[api_key]
        assets = sorted(set(st.free) | set(st.locked))
        return {a: {"free": float(st.free.get(a, _ZERO)), "locked": float(st.locked.get(a, _ZERO)),
                    "total": float(st.free.get(a, _ZERO) + st.locked.get(a, _ZERO))} for a in assets}

    def positions(self, api_key: str = DEFAULT_API_KEY) -> dict[str, dict[str, float]]:
        st = self.accounts[api_key]
        return {s: {"qty": float(Decimal(p.lots) * self._lot(self.symbols[s])), "entry": float(p.entry),
                    "unrealized": float(self.unrealized(st, s))} for s, p in st.positions.items() if p.lots}

    def orders(self, api_key: str | None = None, client_order_id: str | None = None,
               open_only: bool = False) -> list[dict[str, Any]]:
        out = []
        for key, st in self.accounts.items():
            if api_key is not None and key != api_key:
                continue
            for o in st.orders.values():
                if client_order_id is not None and o.client_id != client_order_id:
                    continue
                if open_only and not o.is_open:
                    continue
                out.append(o.snapshot())
        out.sort(key=lambda d: d["order_id"])
        return out


# --------------------------------------------------------------------------------------------
# Thread-safe access from tests and tools


def ccxt_api_urls(sim: Any, venue: str) -> dict[str, str]:
    """The ``exchange.urls['api']`` entries that point a ccxt client of ``venue`` at a running
    simulator (``ex.urls['api'].update(ccxt_api_urls(sim, 'binance'))``)."""
    rest = sim.urls()[venue]["rest"]
    if rest is None:
        raise ValueError(f"venue {venue} has no REST server")
    paths = getattr(sim.protocol(venue), "ccxt_api", None) or {}
    return {name: rest + path for name, path in paths.items()}


class SimOrders:
    """Order state of one simulated venue, read and changed from any thread::

        orders = SimOrders(sim, "binance")
        orders.inject("delay", delay_ms=1500)          # the next new order answers 1.5 s late
        orders.orders(client_order_id="my-id")         # -> [snapshot dict], one per order
        orders.balances()["USDT"]["free"]
    """

    def __init__(self, sim: Any, venue: str):
        self._sim = sim
        self.venue = venue
        engine = getattr(sim.protocol(venue), "orders", None)
        if not isinstance(engine, OrderEngine):
            raise ValueError(f"venue {venue} has no simulated order endpoints")
        self.engine = engine

    def _call(self, fn: Callable[[], Any]) -> Any:
        return self._sim.call(fn)

    def inject(self, kind: str, **kw: Any) -> None:
        """Arm an :class:`OrderFault` on this venue (``kind`` "delay" or "error")."""
        fault = OrderFault(kind=kind, venue=self.venue, **kw)
        self._call(lambda: self.engine.inject(fault))

    def orders(self, client_order_id: str | None = None, api_key: str | None = None,
               open_only: bool = False) -> list[dict[str, Any]]:
        return self._call(lambda: self.engine.orders(api_key, client_order_id, open_only))

    def balances(self, api_key: str = DEFAULT_API_KEY) -> dict[str, dict[str, float]]:
        return self._call(lambda: self.engine.balances(api_key))

    def positions(self, api_key: str = DEFAULT_API_KEY) -> dict[str, dict[str, float]]:
        return self._call(lambda: self.engine.positions(api_key))

    def fault_log(self) -> list[dict]:
        return self._call(lambda: list(self.engine.fault_log))

    def fees_bps(self) -> tuple[float, float]:
        """(taker, maker) fee of the venue in basis points."""
        return self.engine.taker_fee_bps, self.engine.maker_fee_bps
