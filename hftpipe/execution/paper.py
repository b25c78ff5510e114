"""Paper fills: orders simulated against book levels, pure (no clock, no I/O, no state).

The caller hands in the book as it is when the order would ARRIVE at the venue (the snapshot
taken after the venue's configured ``order_latency_ms``), so latency slippage is the caller's
choice of snapshot, not hidden in here.

Taking (market, IOC, and the crossing part of a limit order): a buy walks the asks best-first
while ``ask price <= limit``, a sell walks the bids while ``bid price >= limit`` (a market
order has no limit); each level taken is one fill at that level's price, with the venue's taker
fee in basis points of its notional, paid in the quote asset.

Outcome (statuses the ORDER journal gets, in order):

=========================  ===============================  ==================================
order                       fills                           transitions from NEW
=========================  ===============================  ==================================
market / IOC               all                              FILLED
market / IOC               some                             PARTIALLY_FILLED, EXPIRED (rest)
market / IOC               none within the limit            REJECTED (NO_LIQUIDITY)
limit (GTC)                all                              FILLED
limit (GTC)                some                             PARTIALLY_FILLED (rest rests)
limit (GTC)                none (does not cross)            ACKED (rests)
=========================  ===============================  ==================================

The IOC remainder EXPIRES, as Binance reports it and as ``hftpipe.sim`` answers, so paper and
live journals read the same. A resting limit order fills later through ``match_resting`` when the
book trades through it: at its own limit price, as maker, up to the crossing size (the
simulator's rule, so paper and simulator agree).

``leg_failure_orders`` turns the outcome of a multi-leg signal into corrective market orders
for the configured ``leg_failure_policy``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from numba import njit

from hftpipe.events.records import (
    FILL_DTYPE,
    ORDER_DTYPE,
    RECORD_VERSION,
    EventKind,
    Liquidity,
    OrderStatus,
    OrderType,
    Side,
    decode_str,
    encode_str,
)
from hftpipe.execution.orders import FILL_EPS, OrderReason

_FILLABLE = (OrderStatus.NEW, OrderStatus.ACKED, OrderStatus.PARTIALLY_FILLED)


@njit(cache=True)
def take_levels(levels, n, size, limit_price, is_buy, out):
    """Take up to ``size`` from best-first ``levels[:n]`` within ``limit_price``; fills -> ``out``: (count, filled).

    ``out`` receives one [price, size] row per level taken. ``filled`` is ``size - remaining``
    so a complete fill equals ``size`` exactly (no float dust from summing the level sizes).
    """
    remaining = size
    count = 0
    for k in range(min(n, levels.shape[0], out.shape[0])):  # numba does not bounds-check: clamp
        if remaining <= 0.0:
            break
        price = levels[k, 0]
        if is_buy:
            if price > limit_price:
                break
        elif price < limit_price:
            break
        avail = levels[k, 1]
        if avail <= 0.0:
            continue
        take = min(remaining, avail)
        out[count, 0] = price
        out[count, 1] = take
        remaining -= take
        count += 1
    return count, size - remaining


@njit(cache=True)
def crossing_size(levels, n, limit_price, is_buy):
    """Size on best-first ``levels[:n]`` at prices that trade through ``limit_price``."""
    total = 0.0
    for k in range(min(n, levels.shape[0])):
        price = levels[k, 0]
        if (is_buy and price > limit_price) or (not is_buy and price < limit_price):
            break
        if levels[k, 1] > 0.0:
            total += levels[k, 1]
    return total


class PaperResult(NamedTuple):
    """What the paper venue did with one order."""

    status: OrderStatus  # final status
    transitions: tuple[OrderStatus, ...]  # statuses after NEW, in order (one ORDER record each)
    filled: float  # cumulative, base units
    avg_price: float  # cumulative average fill price (NaN while nothing filled)
    fee_quote: float  # fees of the fills of this call, in the quote asset
    fills: np.ndarray  # FILL_DTYPE records of this call, one per level taken
    orders: np.ndarray  # ORDER_DTYPE records, one per transition
    reason: OrderReason
    next_fill_no: int  # fill number to pass to the next match_resting of this order

    @property
    def resting(self) -> bool:
        """Still working on the book (a limit order not completely filled)."""
        return self.status in (OrderStatus.ACKED, OrderStatus.PARTIALLY_FILLED)


def quote_asset(symbol: str) -> str:
    """``"BTC/USDT"`` -> ``"USDT"``."""
    return symbol.partition("/")[2]


# Records are built as whole tuples: one assignment per record instead of a numpy call per field
# (a two-fill IOC went from ~28 us to a few us). Field positions come from the dtypes.
_O = {name: i for i, name in enumerate(ORDER_DTYPE.names)}
_O_SEQ, _O_TS, _O_WALL, _O_COID, _O_VENUE, _O_SYMBOL, _O_SIDE, _O_TYPE, _O_STATUS, _O_REASON = (
    _O[k] for k in ("seq", "ts_ns", "wall_ns", "client_order_id", "venue", "symbol", "side", "order_type", "status",
                    "reason"))
_O_SIGNAL, _O_PRICE, _O_SIZE, _O_FILLED, _O_AVG = (
    _O[k] for k in ("signal_id", "price", "size", "filled", "avg_price"))
_FILL_FIELDS = ("seq", "kind", "version", "_pad0", "ts_ns", "wall_ns", "fill_id", "client_order_id", "venue",
                "symbol", "fee_asset", "side", "liquidity", "_pad1", "price", "size", "fee", "signal_id")
if FILL_DTYPE.names != _FILL_FIELDS:
    raise ImportError("FILL_DTYPE changed: update hftpipe.execution.paper._fills")
_FILL_KIND = int(EventKind.FILL)


def _fills(t: tuple, rows: list, liquidity: int, fee_bps: float, fee_asset: str, fill_no: int,
           ts_ns: int | None) -> np.ndarray:
    out = np.empty(len(rows), dtype=FILL_DTYPE)
    if not rows:
        return out
    ts = time.monotonic_ns() if ts_ns is None else ts_ns
    wall = time.time_ns()
    coid = t[_O_COID]
    prefix = coid.decode("ascii") + "."
    fee_asset_b = encode_str(fee_asset, 12)
    fee_rate = fee_bps * 1e-4
    for k, (price, size) in enumerate(rows):
        out[k] = (0, _FILL_KIND, RECORD_VERSION, 0, ts, wall, encode_str(f"{prefix}{fill_no + k}", 40), coid,
                  t[_O_VENUE], t[_O_SYMBOL], fee_asset_b, t[_O_SIDE], liquidity, b"", price, size,
                  price * size * fee_rate, t[_O_SIGNAL])
    return out


def _orders(t: tuple, transitions, filled: float, avg_price: float, reason: int, ts_ns: int | None) -> np.ndarray:
    out = np.empty(len(transitions), dtype=ORDER_DTYPE)
    fields = list(t)
    fields[_O_SEQ] = 0
    fields[_O_TS] = time.monotonic_ns() if ts_ns is None else ts_ns
    fields[_O_WALL] = time.time_ns()
    fields[_O_FILLED] = filled
    fields[_O_AVG] = avg_price
    last = len(transitions) - 1
    for i, status in enumerate(transitions):
        fields[_O_STATUS] = int(status)
        fields[_O_REASON] = int(reason) if i == last else int(OrderReason.NONE)  # the final status's reason
        out[i] = tuple(fields)
    return out


def _result(order, status_seq, filled, avg, fills, reason, fill_no, ts_ns) -> PaperResult:
    fee = math.fsum(fills["fee"].tolist()) if len(fills) else 0.0
    orders = _orders(order, status_seq, filled, avg, reason, ts_ns)
    return PaperResult(status_seq[-1], tuple(status_seq), filled, avg, fee, fills, orders, reason,
                       fill_no + len(fills))


def _reject(order, reason: OrderReason, ts_ns, fill_no: int = 0) -> PaperResult:
    empty = np.zeros(0, dtype=FILL_DTYPE)
    return _result(order, (OrderStatus.REJECTED,), 0.0, math.nan, empty, reason, fill_no, ts_ns)


def _as_void(order):
    return order[0] if isinstance(order, np.ndarray) else order


def _as_tuple(order) -> tuple:
    """All fields of an ORDER record (1-element array or np.void) as a tuple."""
    return order.item()


def execute(order, levels: np.ndarray, n_levels: int, *, taker_fee_bps: float, fee_asset: str | None = None,
            fill_no: int = 0, ts_ns: int | None = None) -> PaperResult:
    """Execute a NEW order against the opposite side's best-first ``levels[:n_levels]`` (asks for a buy)."""
    t = _as_tuple(order)
    side, size, price, order_type = t[_O_SIDE], t[_O_SIZE], t[_O_PRICE], t[_O_TYPE]
    if side not in (Side.BUY, Side.SELL) or not (math.isfinite(size) and size > 0.0):
        return _reject(t, OrderReason.INVALID_ORDER, ts_ns, fill_no)
    is_buy = side == Side.BUY
    if order_type == OrderType.MARKET:
        limit = math.inf if is_buy else 0.0
    elif order_type in (OrderType.IOC, OrderType.LIMIT) and math.isfinite(price) and price > 0.0:
        limit = price
    else:
        return _reject(t, OrderReason.INVALID_ORDER, ts_ns, fill_no)
    fee_asset = fee_asset or quote_asset(t[_O_SYMBOL].decode("ascii"))
    out = np.empty((max(n_levels, 0), 2), dtype=np.float64)
    count, filled = take_levels(levels, n_levels, size, limit, is_buy, out)
    rows = out[:count].tolist()
    fills = _fills(t, rows, Liquidity.TAKER, taker_fee_bps, fee_asset, fill_no, ts_ns)
    avg = math.fsum(p * q for p, q in rows) / filled if count else math.nan
    complete = filled >= size * (1.0 - FILL_EPS)
    if order_type == OrderType.LIMIT:
        if complete:
            seq = (OrderStatus.FILLED,)
        elif count:
            seq = (OrderStatus.PARTIALLY_FILLED,)
        else:
            seq = (OrderStatus.ACKED,)
        return _result(t, seq, filled, avg, fills, OrderReason.NONE, fill_no, ts_ns)
    if complete:
        return _result(t, (OrderStatus.FILLED,), filled, avg, fills, OrderReason.NONE, fill_no, ts_ns)
    if count:
        return _result(t, (OrderStatus.PARTIALLY_FILLED, OrderStatus.EXPIRED), filled, avg, fills,
                       OrderReason.IOC_REMAINDER, fill_no, ts_ns)
    return _result(t, (OrderStatus.REJECTED,), 0.0, math.nan, fills, OrderReason.NO_LIQUIDITY, fill_no, ts_ns)


def execute_on_book(order, bids: np.ndarray, n_bids: int, asks: np.ndarray, n_asks: int, **kwargs) -> PaperResult:
    """``execute`` against a whole book (e.g. a BookSnapshot's ``bids``/``asks``): picks the side to take."""
    if _as_tuple(order)[_O_SIDE] == Side.BUY:
        return execute(order, asks, n_asks, **kwargs)
    return execute(order, bids, n_bids, **kwargs)


def match_resting(order, levels: np.ndarray, n_levels: int, *, maker_fee_bps: float, fee_asset: str | None = None,
                  fill_no: int = 0, ts_ns: int | None = None) -> PaperResult:
    """Fill a resting limit order (ACKED / PARTIALLY_FILLED) that the opposite side now trades through.

    Fills at the order's own limit price as maker, up to the size resting at crossing prices;
    ``fill_no`` continues the fill ids (``PaperResult.next_fill_no`` of the previous call).
    Nothing crossing: the order is returned unchanged with no transition.
    """
    t = _as_tuple(order)
    status = OrderStatus(t[_O_STATUS])
    if t[_O_TYPE] != OrderType.LIMIT or status not in _FILLABLE:
        raise ValueError(f"match_resting needs a working limit order, got {status.name} "
                         f"{OrderType(t[_O_TYPE]).name}")
    size, price, done, prev_avg = t[_O_SIZE], t[_O_PRICE], t[_O_FILLED], t[_O_AVG]
    is_buy = t[_O_SIDE] == Side.BUY
    remaining = size - done
    take = min(remaining, float(crossing_size(levels, n_levels, price, is_buy)))
    fee_asset = fee_asset or quote_asset(t[_O_SYMBOL].decode("ascii"))
    if take <= 0.0:
        fills = np.zeros(0, dtype=FILL_DTYPE)
        return PaperResult(status, (), done, prev_avg, 0.0, fills, np.zeros(0, dtype=ORDER_DTYPE),
                           OrderReason.NONE, fill_no)
    fills = _fills(t, [(price, take)], Liquidity.MAKER, maker_fee_bps, fee_asset, fill_no, ts_ns)
    complete = take >= remaining * (1.0 - FILL_EPS)
    filled = size if complete else done + take
    avg = price if done == 0.0 else (prev_avg * done + price * take) / filled
    seq = (OrderStatus.FILLED,) if complete else (OrderStatus.PARTIALLY_FILLED,)
    return _result(t, seq, filled, avg, fills, OrderReason.NONE, fill_no, ts_ns)


# --------------------------------------------------------------------------------------------
# Multi-leg signals


class LegOutcome(NamedTuple):
    """How far one leg of a signal got."""

    leg: int
    venue: str
    symbol: str
    side: int
    size: float  # requested, base units
    filled: float

    @classmethod
    def from_order(cls, order) -> LegOutcome:
        """From the latest ORDER record of the leg."""
        o = _as_void(order)
        return cls(int(o["leg"]), decode_str(o["venue"]), decode_str(o["symbol"]), int(o["side"]),
                   float(o["size"]), float(o["filled"]))


class CorrectiveOrder(NamedTuple):
    """A market order the leg-failure policy asks for; ``purpose`` is 'u' (unwind) or 'h' (hedge)."""

    leg: int
    venue: str
    symbol: str
    side: int
    size: float
    purpose: str
    order_type: int = OrderType.MARKET


def leg_failure_orders(legs: Sequence[LegOutcome], policy: str) -> list[CorrectiveOrder]:
    """Corrective market orders for a multi-leg signal whose legs did not all fill (``[]`` if nothing to do).

    Legs are compared by the fraction of their requested size that filled (legs of one signal
    are sized to match, in their own units). ``unwind`` reverses each leg's excess over the
    least-filled fraction, leaving only the part that is a complete, hedged trade (nothing at
    all when a leg got nothing); ``hedge`` completes each leg up to the most-filled fraction
    (the whole size when any leg filled completely). No leg filled at all: nothing to correct.
    """
    if policy not in ("unwind", "hedge"):
        raise ValueError(f"unknown leg failure policy {policy!r}: expected 'unwind' or 'hedge'")
    if not legs:
        return []
    fractions = [min(max(lg.filled / lg.size, 0.0), 1.0) if lg.size > 0.0 else 0.0 for lg in legs]
    lo, hi = min(fractions), max(fractions)
    if hi - lo <= FILL_EPS:
        return []  # all legs at the same fraction: already a consistent trade
    out = []
    for lg, f in zip(legs, fractions, strict=True):
        if policy == "unwind":
            excess = (f - lo) * lg.size
            if excess > lg.size * FILL_EPS:
                # f == 1 and lo == 0: reverse exactly what filled, no float rounding of the size.
                qty = lg.filled if lo == 0.0 else excess
                out.append(CorrectiveOrder(lg.leg, lg.venue, lg.symbol, -lg.side, qty, "u"))
        else:
            missing = (hi - f) * lg.size
            if missing > lg.size * FILL_EPS:
                qty = lg.size - lg.filled if hi == 1.0 else missing
                out.append(CorrectiveOrder(lg.leg, lg.venue, lg.symbol, lg.side, qty, "h"))
    return out
