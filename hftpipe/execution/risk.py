"""Pre-trade risk: state in numpy arrays, decisions in one numba kernel, a thin Python manager around it.

Every order passes ``check_order`` before it leaves. The kernel reads the state arrays and returns
``(rule, value, limit)``: 0 when the order may go, else the first rule it breaks with the observed
value and the limit it broke. Rules, in the order they are evaluated:

==================  =========================================  ===============================
rule                value                                      limit
==================  =========================================  ===============================
KILL_SWITCH         1                                          0
MALFORMED_SIGNAL    the bad side / size / price                0
DAILY_LOSS          day-start equity - equity (quote)          max_daily_loss
DRAWDOWN            peak equity - equity (quote)               max_drawdown
STALE_BOOK          book age in ms (inf: book invalid)         stale_book_ms
PRICE_BAND          abs(limit price - mid) / mid in bps        price_band_bps
MAX_ORDER_NOTIONAL  size x price x quote mark (quote)          max_order_notional
MAX_POSITION        abs(position after the order) (units)      max_position_size
MAX_EXPOSURE        sum abs(position) x mark after (quote)     max_exposure
MAX_OPEN_ORDERS     open orders on all venues incl. this one   max_open_orders
SELF_TRADE          price of our crossing resting order        this order's price (mid: market)
ORDER_RATE          orders in the venue's bucket incl. this    bucket capacity (1 s of orders)
==================  =========================================  ===============================

Why this order: the kill switch wins over everything; bad numbers are refused before they are
used; daily loss and drawdown come before any order-level rule because their breach engages the
kill switch and must not hide behind a smaller rule; the book must be fresh before its mid is
used by the band, notional and exposure rules; the rate limit is last because it is the only rule
that consumes state when an order passes.

Accounting. ``positions`` holds, per asset, what trading has added or removed since the start:
a fill adds ``side * size`` to its base asset and ``-side * size * price`` to its quote asset,
and takes the fee from the fee asset. ``marks`` values one unit of each asset in the reference
quote (cash assets such as USDT are 1.0, other assets get ``mid * mark(quote)`` from books).
Equity is then ``sum(position * mark)``: realized PnL, unrealized PnL and fees in one number
that cannot drift from the fills. Cash assets are exempt from the position and exposure limits
(a position of 1.0 means BTC, not USDT). Position and exposure limits only stop orders that make
things worse: an order that reduces an over-limit position always passes.

NaN is never a pass: every comparison is written ``not (value <= limit)``, so an unknown mark,
a NaN price or an empty book breaches instead of slipping through. A NaN loss rejects the order
but does not engage the kill switch (it means a missing mark, not a loss).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numba import njit

from hftpipe.config.schema import Config, RiskConfig
from hftpipe.events.records import (
    FILL_DTYPE,
    ORDER_DTYPE,
    RECORD_VERSION,
    RISK_DTYPE,
    TERMINAL_STATUSES,
    EventKind,
    OrderType,
    RiskAction,
    RiskRule,
)

# Limits (read-only in the kernel), indices into ``RiskState.limits``.
L_MAX_POSITION = 0
L_MAX_EXPOSURE = 1
L_MAX_ORDER_NOTIONAL = 2
L_MAX_OPEN_ORDERS = 3
L_ORDERS_PER_S = 4
L_BUCKET_CAPACITY = 5
L_MAX_DAILY_LOSS = 6
L_MAX_DRAWDOWN = 7
L_STALE_BOOK_NS = 8
L_STALE_BOOK_MS = 9
L_PRICE_BAND_BPS = 10
L_SELF_TRADE_GUARD = 11
N_LIMITS = 12

# Account scalars, indices into ``RiskState.account``.
A_KILL = 0
A_DAY_START_EQUITY = 1
A_PEAK_EQUITY = 2
N_ACCOUNT = 3

# Columns of the resting-order table; rows with venue < 0 are free, live rows are packed first.
R_VENUE = 0
R_SYMBOL = 1
R_SIDE = 2
R_PRICE = 3
N_RESTING_COLS = 4

# The state lives in two packed arrays plus the resting table. numba unboxes every array
# argument of a call from Python (~70 ns each, measured here): nine separate arrays and four
# market indices made one call ~1.07 us, three arrays and one market index ~0.7 us. ``RiskState`` hands out named views into them.
#   fstate (float64): limits | account | positions[A] | marks[A] | cash[A] (0/1) | bucket_tokens[V]
#   istate (int64):   header | open_orders[V] | bucket_ns[V] | markets[M, 4] (venue, symbol, base, quote)
F_LIMITS = 0
F_ACCOUNT = N_LIMITS
F_ASSETS = N_LIMITS + N_ACCOUNT
I_N_ASSETS = 0
I_N_VENUES = 1
I_N_MARKETS = 2
I_HEADER = 4
M_VENUE = 0
M_SYMBOL = 1
M_BASE = 2
M_QUOTE = 3

# Rule codes as plain ints: numba freezes module globals into constants.
_KILL_SWITCH = int(RiskRule.KILL_SWITCH)
_MALFORMED = int(RiskRule.MALFORMED_SIGNAL)
_DAILY_LOSS = int(RiskRule.DAILY_LOSS)
_DRAWDOWN = int(RiskRule.DRAWDOWN)
_STALE_BOOK = int(RiskRule.STALE_BOOK)
_PRICE_BAND = int(RiskRule.PRICE_BAND)
_MAX_ORDER_NOTIONAL = int(RiskRule.MAX_ORDER_NOTIONAL)
_MAX_POSITION = int(RiskRule.MAX_POSITION)
_MAX_EXPOSURE = int(RiskRule.MAX_EXPOSURE)
_MAX_OPEN_ORDERS = int(RiskRule.MAX_OPEN_ORDERS)
_SELF_TRADE = int(RiskRule.SELF_TRADE)
_ORDER_RATE = int(RiskRule.ORDER_RATE)

#: Assets valued at 1.0 and exempt from position / exposure limits unless told otherwise.
DEFAULT_CASH_ASSETS = frozenset({"USDT", "USDC", "USD", "BUSD", "FDUSD", "TUSD", "DAI"})

_INF = math.inf
_MARKET = int(OrderType.MARKET)
_LIMIT = int(OrderType.LIMIT)
_TERMINAL = frozenset(int(s) for s in TERMINAL_STATUSES)
_RISK_KIND = int(EventKind.RISK)
# risk_record fills RISK_DTYPE positionally: fail at import, not in a journal, if the layout moves.
if RISK_DTYPE.names != ("seq", "kind", "version", "_pad0", "ts_ns", "wall_ns", "rule", "action", "_pad1",
                        "client_order_id", "venue", "symbol", "signal_id", "value", "limit"):
    raise ImportError("RISK_DTYPE changed: update risk_record")

# Positions of fields in ``record.item()`` tuples: one item() (~0.5 us) costs less than two
# field reads of a numpy record (~0.27 us each), and the check needs seven.
_O = {name: i for i, name in enumerate(ORDER_DTYPE.names)}
_O_COID, _O_VENUE, _O_SYMBOL, _O_SIDE, _O_TYPE, _O_STATUS, _O_SIGNAL, _O_PRICE, _O_SIZE = (
    _O[k] for k in ("client_order_id", "venue", "symbol", "side", "order_type", "status", "signal_id",
                    "price", "size"))
_F = {name: i for i, name in enumerate(FILL_DTYPE.names)}
_F_VENUE, _F_SYMBOL, _F_FEE_ASSET, _F_SIDE, _F_PRICE, _F_SIZE, _F_FEE = (
    _F[k] for k in ("venue", "symbol", "fee_asset", "side", "price", "size", "fee"))


# --------------------------------------------------------------------------------------------
# Kernels


@njit(cache=True)
def portfolio_equity(positions, marks):
    """Sum of position x mark over all assets (quote): realized + unrealized PnL - fees since the start."""
    equity = 0.0
    for i in range(positions.shape[0]):
        p = positions[i]
        if p != 0.0:  # a flat asset without a mark must not turn the sum into NaN
            equity += p * marks[i]
    return equity


@njit(cache=True, inline="always")
def _asset_views(fstate, istate):
    # positions, marks, cash flags: consecutive runs of n_assets floats.
    n = istate[I_N_ASSETS]
    return fstate[F_ASSETS:F_ASSETS + n], fstate[F_ASSETS + n:F_ASSETS + 2 * n], fstate[F_ASSETS + 2 * n:F_ASSETS + 3 * n]


@njit(cache=True, inline="always")
def _venue_views(fstate, istate):
    # bucket tokens (float), open orders and bucket refill times (int).
    na = istate[I_N_ASSETS]
    nv = istate[I_N_VENUES]
    t0 = F_ASSETS + 3 * na
    return fstate[t0:t0 + nv], istate[I_HEADER:I_HEADER + nv], istate[I_HEADER + nv:I_HEADER + 2 * nv]


@njit(cache=True)
def portfolio_rule(fstate, istate):
    """Daily-loss and drawdown check on current equity (records a new equity peak): (rule, value, limit)."""
    positions, marks, _ = _asset_views(fstate, istate)
    equity = portfolio_equity(positions, marks)
    peak_i = F_ACCOUNT + A_PEAK_EQUITY
    if equity > fstate[peak_i]:
        fstate[peak_i] = equity
    loss = fstate[F_ACCOUNT + A_DAY_START_EQUITY] - equity
    if not loss <= fstate[L_MAX_DAILY_LOSS]:
        return _DAILY_LOSS, loss, fstate[L_MAX_DAILY_LOSS]
    drawdown = fstate[peak_i] - equity
    if not drawdown <= fstate[L_MAX_DRAWDOWN]:
        return _DRAWDOWN, drawdown, fstate[L_MAX_DRAWDOWN]
    return 0, 0.0, 0.0


@njit(cache=True)
def check_order(fstate, istate, resting, market, side, is_market, price, size, mid, book_ns, book_valid,
                now_ns, reserve):
    """Risk decision for one proposed order: (rule or 0, observed value, limit); see the module table.

    ``fstate``/``istate``/``resting`` are a ``RiskState``'s arrays; ``market`` indexes its
    markets table (unchecked, as numba does not bounds-check: ``RiskManager`` only passes known ones); ``price`` is the limit price (ignored for market orders, which are valued at
    ``mid``); ``book_ns`` is the receive time of the book the order is priced from. Observations
    are always recorded (the base asset's mark from a fresh book, a new equity peak); the
    reservation (a rate token and an open-order slot) is taken only when the order passes and
    ``reserve`` is true.
    """
    limits = fstate[:N_LIMITS]
    if fstate[F_ACCOUNT + A_KILL] != 0.0:
        return _KILL_SWITCH, 1.0, 0.0
    if side != 1 and side != -1:
        return _MALFORMED, float(side), 0.0
    if not (size > 0.0 and size < _INF):
        return _MALFORMED, size, 0.0
    if not is_market and not (price > 0.0 and price < _INF):
        return _MALFORMED, price, 0.0
    positions, marks, cash = _asset_views(fstate, istate)
    bucket_tokens, open_orders, bucket_ns = _venue_views(fstate, istate)
    row = I_HEADER + 2 * istate[I_N_VENUES] + 4 * market
    venue = istate[row + M_VENUE]
    symbol = istate[row + M_SYMBOL]
    base = istate[row + M_BASE]
    quote = istate[row + M_QUOTE]

    # The order's own book is the freshest mark of its base asset: take it before valuing anything.
    book_ok = book_valid and mid > 0.0 and mid < _INF
    age_ns = now_ns - book_ns
    fresh = book_ok and age_ns <= limits[L_STALE_BOOK_NS]
    quote_mark = marks[quote]
    if fresh and quote_mark > 0.0 and quote_mark < _INF:
        marks[base] = mid * quote_mark

    rule, value, limit = portfolio_rule(fstate, istate)
    if rule != 0:
        return rule, value, limit

    if not fresh:
        age_ms = age_ns / 1e6 if book_ok else _INF
        return _STALE_BOOK, age_ms, limits[L_STALE_BOOK_MS]

    if not is_market:
        band_bps = abs(price - mid) / mid * 1e4
        if not band_bps <= limits[L_PRICE_BAND_BPS]:
            return _PRICE_BAND, band_bps, limits[L_PRICE_BAND_BPS]
    px = mid if is_market else price

    notional = size * px * quote_mark
    if not notional <= limits[L_MAX_ORDER_NOTIONAL]:
        return _MAX_ORDER_NOTIONAL, notional, limits[L_MAX_ORDER_NOTIONAL]

    base_flow = side * size
    quote_flow = -base_flow * px
    max_pos = limits[L_MAX_POSITION]
    if cash[base] == 0.0:
        before = abs(positions[base])
        after = abs(positions[base] + base_flow)
        if not (after <= max_pos or after <= before):
            return _MAX_POSITION, after, max_pos
    if cash[quote] == 0.0:  # a crypto quote (ETH/BTC): its position moves too
        before = abs(positions[quote])
        after = abs(positions[quote] + quote_flow)
        if not (after <= max_pos or after <= before):
            return _MAX_POSITION, after, max_pos

    exposure_before = 0.0
    exposure_after = 0.0
    for i in range(positions.shape[0]):
        if cash[i] != 0.0:
            continue
        p = positions[i]
        q = p
        if i == base:
            q += base_flow
        if i == quote:
            q += quote_flow
        if p != 0.0:
            exposure_before += abs(p) * marks[i]
        if q != 0.0:
            exposure_after += abs(q) * marks[i]
    if not (exposure_after <= limits[L_MAX_EXPOSURE] or exposure_after <= exposure_before):
        return _MAX_EXPOSURE, exposure_after, limits[L_MAX_EXPOSURE]

    total_open = 0
    for v in range(open_orders.shape[0]):
        total_open += open_orders[v]
    if not total_open + 1 <= limits[L_MAX_OPEN_ORDERS]:
        return _MAX_OPEN_ORDERS, float(total_open + 1), limits[L_MAX_OPEN_ORDERS]

    if limits[L_SELF_TRADE_GUARD] != 0.0:
        for r in range(resting.shape[0]):
            if resting[r, R_VENUE] < 0.0:
                break  # live rows are packed at the front
            if (resting[r, R_VENUE] == venue and resting[r, R_SYMBOL] == symbol
                    and resting[r, R_SIDE] == -side):
                rp = resting[r, R_PRICE]
                if is_market or (side == 1 and price >= rp) or (side == -1 and price <= rp):
                    return _SELF_TRADE, rp, px

    # Token bucket: refilled lazily from the elapsed time, so a check that does not reserve
    # leaves it untouched and the same call at the same instant gives the same answer.
    capacity = limits[L_BUCKET_CAPACITY]
    tokens = bucket_tokens[venue]
    elapsed_ns = now_ns - bucket_ns[venue]
    if elapsed_ns > 0:
        tokens = min(capacity, tokens + elapsed_ns * limits[L_ORDERS_PER_S] * 1e-9)
    if tokens < 1.0:
        return _ORDER_RATE, capacity - tokens + 1.0, capacity

    if reserve:
        bucket_tokens[venue] = tokens - 1.0
        if now_ns > bucket_ns[venue]:
            bucket_ns[venue] = now_ns
        open_orders[venue] += 1
    return 0, 0.0, 0.0


# --------------------------------------------------------------------------------------------
# State


class RiskState:
    """The packed arrays ``check_order`` works on, with a named view for every part."""

    def __init__(self, config: RiskConfig, n_venues: int, cash_flags: np.ndarray, markets: np.ndarray,
                 now_ns: int, resting_capacity: int):
        na = len(cash_flags)
        nv = n_venues
        nm = len(markets)
        self.fstate = np.zeros(F_ASSETS + 3 * na + nv, dtype=np.float64)
        self.istate = np.zeros(I_HEADER + 2 * nv + 4 * nm, dtype=np.int64)
        self.istate[[I_N_ASSETS, I_N_VENUES, I_N_MARKETS]] = na, nv, nm
        f, i = self.fstate, self.istate
        self.limits = f[F_LIMITS:F_LIMITS + N_LIMITS]
        self.account = f[F_ACCOUNT:F_ACCOUNT + N_ACCOUNT]
        self.positions = f[F_ASSETS:F_ASSETS + na]
        self.marks = f[F_ASSETS + na:F_ASSETS + 2 * na]
        self.cash = f[F_ASSETS + 2 * na:F_ASSETS + 3 * na]
        self.bucket_tokens = f[F_ASSETS + 3 * na:]
        self.open_orders = i[I_HEADER:I_HEADER + nv]
        self.bucket_ns = i[I_HEADER + nv:I_HEADER + 2 * nv]
        self.markets = i[I_HEADER + 2 * nv:].reshape(nm, 4)
        self.markets[:] = markets
        lim = self.limits
        lim[L_MAX_POSITION] = config.max_position_size
        lim[L_MAX_EXPOSURE] = config.max_exposure
        lim[L_MAX_ORDER_NOTIONAL] = config.max_order_notional
        lim[L_MAX_OPEN_ORDERS] = config.max_open_orders
        lim[L_ORDERS_PER_S] = config.max_orders_per_s
        # One second's worth of orders may go in a burst; at least one, or a rate < 1/s never sends.
        lim[L_BUCKET_CAPACITY] = max(1.0, config.max_orders_per_s)
        lim[L_MAX_DAILY_LOSS] = config.max_daily_loss
        lim[L_MAX_DRAWDOWN] = config.max_drawdown
        lim[L_STALE_BOOK_NS] = config.stale_book_ms * 1e6
        lim[L_STALE_BOOK_MS] = config.stale_book_ms
        lim[L_PRICE_BAND_BPS] = config.price_band_bps
        lim[L_SELF_TRADE_GUARD] = 1.0 if config.self_trade_guard else 0.0
        self.cash[:] = np.asarray(cash_flags, dtype=np.float64)
        # Cash is worth 1.0 quote; everything else is unknown (NaN) until a book marks it.
        self.marks[:] = np.where(self.cash != 0.0, 1.0, np.nan)
        self.bucket_tokens[:] = lim[L_BUCKET_CAPACITY]
        self.bucket_ns[:] = now_ns
        self.resting = np.full((resting_capacity, N_RESTING_COLS), -1.0, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class RiskDecision:
    """Outcome of a check: accepted, or the rule broken with its value, limit, action and RISK record."""

    accepted: bool
    rule: int = 0
    value: float = 0.0
    limit: float = 0.0
    action: RiskAction | None = None
    record: np.ndarray | None = None

    def __bool__(self) -> bool:
        return self.accepted

    @property
    def reason(self) -> str:
        """One line for logs: ``"MAX_POSITION: 1.5 > 1"``."""
        if self.accepted:
            return "accepted"
        return f"{RiskRule(self.rule).name}: {self.value:g} > {self.limit:g}"


ACCEPTED = RiskDecision(True)
_ENGAGES_KILL = frozenset({_DAILY_LOSS, _DRAWDOWN})


def risk_record(rule: int, action: int, value: float, limit: float, *, client_order_id: bytes = b"",
                venue: bytes = b"", symbol: bytes = b"", signal_id: int = 0) -> np.ndarray:
    """A RISK record (1-element array) for the journal."""
    rec = np.empty(1, dtype=RISK_DTYPE)
    # One tuple assignment sets every field (~1 us); field by field it was ~6 us per breach.
    rec[0] = (0, _RISK_KIND, RECORD_VERSION, 0, time.monotonic_ns(), time.time_ns(), int(rule), int(action), b"",
              client_order_id, venue, symbol, signal_id, value, limit)
    return rec


def split_symbol(symbol: str) -> tuple[str, str]:
    """``"BTC/USDT"`` -> ``("BTC", "USDT")``."""
    base, sep, quote = symbol.partition("/")
    if not sep or not base or not quote:
        raise ValueError(f"symbol {symbol!r} is not BASE/QUOTE")
    return base, quote


class _Open:
    __slots__ = ("venue", "row")

    def __init__(self, venue: int, row: int):
        self.venue = venue
        self.row = row


class RiskManager:
    """Config -> risk arrays, name -> index maps, ``check`` per order, state updates from fills and orders."""

    def __init__(self, config: RiskConfig, markets: Iterable[tuple[str, str]], *,
                 cash_assets: Iterable[str] = DEFAULT_CASH_ASSETS, now_ns: int | None = None,
                 resting_capacity: int | None = None):
        self.config = config
        self.venue_index: dict[str, int] = {}
        self.symbol_index: dict[str, int] = {}
        self.asset_index: dict[str, int] = {}
        # (venue bytes, symbol bytes) as they sit in records -> (market, venue, symbol, base, quote).
        self._markets: dict[tuple[bytes, bytes], tuple[int, int, int, int, int]] = {}
        rows = []
        for venue, symbol in markets:
            key = (venue.encode("ascii"), symbol.encode("ascii"))
            if key in self._markets:
                continue
            v = self.venue_index.setdefault(venue, len(self.venue_index))
            s = self.symbol_index.setdefault(symbol, len(self.symbol_index))
            base, quote = split_symbol(symbol)
            b = self.asset_index.setdefault(base, len(self.asset_index))
            q = self.asset_index.setdefault(quote, len(self.asset_index))
            self._markets[key] = (len(rows), v, s, b, q)
            rows.append((v, s, b, q))
        self._asset_bytes = {a.encode("ascii"): i for a, i in self.asset_index.items()}
        cash = set(cash_assets)
        flags = np.array([a in cash for a in self.asset_index], dtype=np.bool_)
        cap = resting_capacity or 2 * config.max_open_orders + 16
        self.state = RiskState(config, len(self.venue_index), flags, np.array(rows, dtype=np.int64).reshape(-1, 4),
                               now_ns or time.monotonic_ns(), cap)
        self.counters = np.zeros(max(RiskRule) + 1, dtype=np.int64)
        self._open: dict[bytes, _Open] = {}
        self._resting_ids: list[bytes | None] = [None] * cap
        self._n_resting = 0
        self.unknown_fills = 0

    @classmethod
    def from_config(cls, config: Config, **kwargs) -> RiskManager:
        """A manager for every symbol of every enabled exchange of ``config``."""
        markets = [(v, s) for v in config.enabled_venues() for s in config.market_data.exchanges[v].symbols]
        return cls(config.risk, markets, **kwargs)

    # ---- reads

    @property
    def killed(self) -> bool:
        return bool(self.state.account[A_KILL])

    @property
    def equity(self) -> float:
        """Mark-to-market equity since the start, in the reference quote."""
        return float(portfolio_equity(self.state.positions, self.state.marks))

    @property
    def open_order_count(self) -> int:
        return int(self.state.open_orders.sum())

    def breach_counts(self) -> dict[RiskRule, int]:
        """Breaches so far per rule (rules never breached are left out)."""
        return {RiskRule(i): int(n) for i, n in enumerate(self.counters) if n}

    def market(self, venue: str, symbol: str) -> tuple[int, int, int, int, int]:
        """(market, venue, symbol, base, quote) indices of a market; KeyError if unknown."""
        return self._markets[(venue.encode("ascii"), symbol.encode("ascii"))]

    # ---- the check

    def check(self, order, mid: float, book_ns: int, book_valid: bool = True, now_ns: int | None = None,
              reserve: bool = True) -> RiskDecision:
        """Risk decision for an ORDER record priced from a book with ``mid`` received at ``book_ns``.

        With ``reserve`` an accepted order counts as open (and, if it is a limit order, as resting
        for the self-trade guard) until ``on_order_state`` sees it end. A second check of an id
        already open (a retry) is checked again but reserves nothing.
        """
        t = order.item()
        m = self._markets.get((t[_O_VENUE], t[_O_SYMBOL]))
        if m is None:
            return self._breach(_MALFORMED, math.nan, 0.0, t)
        if now_ns is None:
            now_ns = time.monotonic_ns()
        coid = t[_O_COID]
        if reserve:
            if not coid:
                raise ValueError("a reserving risk check needs the order's client_order_id")
            if coid in self._open:
                reserve = False
        side = t[_O_SIDE]
        order_type = t[_O_TYPE]
        price = t[_O_PRICE]
        st = self.state
        rule, value, limit = check_order(st.fstate, st.istate, st.resting, m[0], side, order_type == _MARKET,
                                         price, t[_O_SIZE], mid, book_ns, book_valid, now_ns, reserve)
        if rule == 0:
            if reserve:
                self._register(coid, m[1], m[2], side, order_type, price)
            return ACCEPTED
        return self._breach(rule, value, limit, t)

    def _breach(self, rule: int, value: float, limit: float, t: tuple | None = None) -> RiskDecision:
        action = RiskAction.REJECT_ORDER
        if rule in _ENGAGES_KILL and math.isfinite(value):
            action = RiskAction.ENGAGE_KILL_SWITCH
            self.state.account[A_KILL] = 1.0
        self.counters[rule] += 1
        if t is None:
            record = risk_record(rule, action, value, limit)
        else:
            record = risk_record(rule, action, value, limit, client_order_id=t[_O_COID], venue=t[_O_VENUE],
                                 symbol=t[_O_SYMBOL], signal_id=t[_O_SIGNAL])
        return RiskDecision(False, RiskRule(rule), value, limit, action, record)

    def check_portfolio(self) -> RiskDecision:
        """Daily loss / drawdown on current marks; a breach engages the kill switch (once).

        A NaN equity (an asset held without a mark) decides nothing here: no order is at stake,
        and ``check_order`` refuses orders until the mark arrives.
        """
        st = self.state
        rule, value, limit = portfolio_rule(st.fstate, st.istate)
        if rule == 0 or self.killed or not math.isfinite(value):
            return ACCEPTED
        return self._breach(rule, value, limit)

    # ---- state updates

    def _register(self, coid: bytes, venue: int, symbol: int, side: int, order_type: int, price: float) -> None:
        row = -1
        # Any limit order may end up resting, so it guards from the moment it is sent, not when acked.
        if order_type == _LIMIT:
            row = self._n_resting
            if row == self.state.resting.shape[0]:
                self._grow_resting()
            r = self.state.resting[row]
            r[R_VENUE], r[R_SYMBOL], r[R_SIDE], r[R_PRICE] = venue, symbol, side, price
            self._resting_ids[row] = coid
            self._n_resting += 1
        self._open[coid] = _Open(venue, row)

    def _grow_resting(self) -> None:
        old = self.state.resting
        new = np.full((2 * old.shape[0], N_RESTING_COLS), -1.0, dtype=np.float64)
        new[: old.shape[0]] = old
        self.state.resting = new
        self._resting_ids.extend([None] * old.shape[0])

    def _release(self, coid: bytes) -> None:
        entry = self._open.pop(coid)
        self.state.open_orders[entry.venue] -= 1
        row = entry.row
        if row >= 0:
            # Swap the last live row into the hole so live rows stay packed for the kernel's scan.
            last = self._n_resting - 1
            table = self.state.resting
            if row != last:
                table[row] = table[last]
                moved = self._resting_ids[last]
                self._resting_ids[row] = moved
                self._open[moved].row = row
            table[last] = -1.0
            self._resting_ids[last] = None
            self._n_resting = last

    def on_order_state(self, order) -> None:
        """Track an ORDER record: terminal statuses free the open-order slot; unknown live orders take one."""
        t = order.item()
        coid = t[_O_COID]
        if t[_O_STATUS] in _TERMINAL:
            if coid in self._open:
                self._release(coid)
            return
        if coid not in self._open:
            # An order this manager did not reserve (restart reconciliation): count it all the same.
            m = self._markets.get((t[_O_VENUE], t[_O_SYMBOL]))
            if m is None:
                return
            self.state.open_orders[m[1]] += 1
            self._register(coid, m[1], m[2], t[_O_SIDE], t[_O_TYPE], t[_O_PRICE])

    def on_fill(self, fill) -> RiskDecision:
        """Apply a FILL record to the asset positions, then re-check daily loss and drawdown."""
        t = fill.item()
        m = self._markets.get((t[_F_VENUE], t[_F_SYMBOL]))
        if m is None:
            self.unknown_fills += 1
            return ACCEPTED
        b, q = m[3], m[4]
        pos = self.state.positions
        base_flow = t[_F_SIDE] * t[_F_SIZE]
        pos[b] += base_flow
        pos[q] -= base_flow * t[_F_PRICE]
        fee_idx = self._asset_bytes.get(t[_F_FEE_ASSET])
        if fee_idx is not None:
            pos[fee_idx] -= t[_F_FEE]
        return self.check_portfolio()

    def mark(self, symbol: str, mid: float) -> None:
        """Mark a symbol's base asset at ``mid`` (x its quote's mark)."""
        base, quote = split_symbol(symbol)
        b, q = self.asset_index[base], self.asset_index[quote]
        self.state.marks[b] = mid * self.state.marks[q]

    def set_mark(self, asset: str, value: float) -> None:
        """Value of one unit of ``asset`` in the reference quote."""
        self.state.marks[self.asset_index[asset]] = value

    def set_position(self, asset: str, quantity: float) -> None:
        """Overwrite an asset position (reconciliation)."""
        self.state.positions[self.asset_index[asset]] = quantity

    def roll_day(self) -> None:
        """Start a new trading day: daily loss counts from the current equity."""
        equity = self.equity
        if math.isfinite(equity):
            self.state.account[A_DAY_START_EQUITY] = equity

    def engage_kill(self, value: float = 1.0) -> np.ndarray:
        """Engage the kill switch (CLI, control block, operator); returns the RISK record to journal."""
        self.state.account[A_KILL] = 1.0
        self.counters[_KILL_SWITCH] += 1
        return risk_record(_KILL_SWITCH, RiskAction.ENGAGE_KILL_SWITCH, value, 0.0)

    def reset_kill(self) -> None:
        """Release the kill switch (operator action only; nothing in here ever resets it)."""
        self.state.account[A_KILL] = 0.0
