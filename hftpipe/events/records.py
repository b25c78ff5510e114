"""Fixed-size event records shared by every part: signals, orders, fills, risk events, positions.

Each kind is a numpy structured dtype, aligned, a multiple of 8 bytes, starting with the same
header (``seq``, ``kind``, ``version``, ``ts_ns``, ``wall_ns``) so any journal reader can tell
what it holds. Venue and symbol are fixed-width ASCII, not ids from the config, so a record
means the same thing after the config changes (the graph logger and restart reconciliation read
journals written by earlier runs).
"""

from __future__ import annotations

import enum
import time

import numpy as np

RECORD_VERSION = 1


class EventKind(enum.IntEnum):
    SIGNAL = 1
    ORDER = 2
    FILL = 3
    RISK = 4
    POSITION = 5


class Side(enum.IntEnum):
    BUY = 1
    SELL = -1


class OrderType(enum.IntEnum):
    LIMIT = 0
    MARKET = 1
    IOC = 2


class OrderStatus(enum.IntEnum):
    """Order lifecycle: new -> acked -> partially filled -> filled / cancelled / rejected / expired."""

    NEW = 0
    ACKED = 1
    PARTIALLY_FILLED = 2
    FILLED = 3
    CANCELLED = 4
    REJECTED = 5
    EXPIRED = 6


TERMINAL_STATUSES = frozenset({OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED,
                               OrderStatus.EXPIRED})


class Liquidity(enum.IntEnum):
    TAKER = 0
    MAKER = 1


class RiskRule(enum.IntEnum):
    """Pre-trade and portfolio rules; a breach is a RISK record naming one of these."""

    MAX_POSITION = 1
    MAX_EXPOSURE = 2
    MAX_ORDER_NOTIONAL = 3
    MAX_OPEN_ORDERS = 4
    ORDER_RATE = 5
    DAILY_LOSS = 6
    DRAWDOWN = 7
    STALE_BOOK = 8
    PRICE_BAND = 9
    SELF_TRADE = 10
    KILL_SWITCH = 11
    MALFORMED_SIGNAL = 12
    DUPLICATE_SIGNAL = 13


class RiskAction(enum.IntEnum):
    REJECT_ORDER = 0
    ENGAGE_KILL_SWITCH = 1
    WARN = 2


MAX_LEGS = 3

_HEADER = [("seq", "<u8"), ("kind", "<u2"), ("version", "<u2"), ("_pad0", "<u4"),
           ("ts_ns", "<i8"), ("wall_ns", "<i8")]

LEG_DTYPE = np.dtype([
    ("venue", "S12"), ("symbol", "S20"), ("side", "i1"), ("_pad", "S7"),
    ("price", "<f8"), ("size", "<f8"), ("book_seq", "<i8"), ("book_recv_ns", "<i8"),
], align=True)

SIGNAL_DTYPE = np.dtype(_HEADER + [
    ("signal_id", "<u8"), ("strategy", "S24"), ("instance", "<u4"), ("n_legs", "u1"), ("_pad1", "S3"),
    ("legs", LEG_DTYPE, (MAX_LEGS,)),
    ("edge_bps", "<f8"), ("edge_quote", "<f8"), ("gross_edge_bps", "<f8"), ("computed_ns", "<i8"),
], align=True)

ORDER_DTYPE = np.dtype(_HEADER + [
    ("client_order_id", "S36"), ("venue", "S12"), ("symbol", "S20"), ("venue_order_id", "S40"),
    ("side", "i1"), ("order_type", "u1"), ("status", "u1"), ("leg", "u1"), ("reason", "<u2"),
    ("_pad1", "S2"),
    ("signal_id", "<u8"), ("price", "<f8"), ("size", "<f8"), ("filled", "<f8"), ("avg_price", "<f8"),
], align=True)

FILL_DTYPE = np.dtype(_HEADER + [
    ("fill_id", "S40"), ("client_order_id", "S36"), ("venue", "S12"), ("symbol", "S20"),
    ("fee_asset", "S12"), ("side", "i1"), ("liquidity", "u1"), ("_pad1", "S6"),
    ("price", "<f8"), ("size", "<f8"), ("fee", "<f8"), ("signal_id", "<u8"),
], align=True)

RISK_DTYPE = np.dtype(_HEADER + [
    ("rule", "<u2"), ("action", "<u2"), ("_pad1", "S4"),
    ("client_order_id", "S36"), ("venue", "S12"), ("symbol", "S20"),
    ("signal_id", "<u8"), ("value", "<f8"), ("limit", "<f8"),
], align=True)

POSITION_DTYPE = np.dtype(_HEADER + [
    ("venue", "S12"), ("asset", "S12"),
    ("balance", "<f8"), ("avg_cost", "<f8"), ("realized_pnl", "<f8"), ("unrealized_pnl", "<f8"),
    ("fees", "<f8"), ("exposure", "<f8"),
], align=True)

DTYPE_BY_KIND = {
    EventKind.SIGNAL: SIGNAL_DTYPE,
    EventKind.ORDER: ORDER_DTYPE,
    EventKind.FILL: FILL_DTYPE,
    EventKind.RISK: RISK_DTYPE,
    EventKind.POSITION: POSITION_DTYPE,
}

#: Journal name -> (kind, dtype): one journal per kind.
JOURNALS = {
    "signals": (EventKind.SIGNAL, SIGNAL_DTYPE),
    "orders": (EventKind.ORDER, ORDER_DTYPE),
    "fills": (EventKind.FILL, FILL_DTYPE),
    "risk": (EventKind.RISK, RISK_DTYPE),
    "positions": (EventKind.POSITION, POSITION_DTYPE),
}


def new_record(kind: EventKind) -> np.ndarray:
    """A zeroed one-element record of ``kind`` with its header filled in (seq is set by the journal)."""
    rec = np.zeros(1, dtype=DTYPE_BY_KIND[kind])
    rec["kind"] = int(kind)
    rec["version"] = RECORD_VERSION
    rec["ts_ns"] = time.monotonic_ns()
    rec["wall_ns"] = time.time_ns()
    return rec


def encode_str(value: str, width: int) -> bytes:
    """ASCII bytes for a fixed-width field; refuses what would be silently truncated."""
    raw = value.encode("ascii")
    if len(raw) > width:
        raise ValueError(f"{value!r} longer than {width} bytes")
    return raw


def decode_str(raw) -> str:
    """Text of a fixed-width bytes field."""
    if isinstance(raw, np.ndarray):
        raw = raw.item()
    return raw.rstrip(b"\0").decode("ascii", "replace")


def new_signal(strategy: str, signal_id: int, legs: list[tuple], edge_bps: float, edge_quote: float,
               gross_edge_bps: float, instance: int = 0, computed_ns: int | None = None) -> np.ndarray:
    """A SIGNAL record; ``legs`` are (venue, symbol, side, price, size, book_seq, book_recv_ns)."""
    if not 1 <= len(legs) <= MAX_LEGS:
        raise ValueError(f"a signal has 1..{MAX_LEGS} legs, got {len(legs)}")
    rec = new_record(EventKind.SIGNAL)
    rec["strategy"] = encode_str(strategy, 24)
    rec["signal_id"] = signal_id
    rec["instance"] = instance
    rec["n_legs"] = len(legs)
    for i, (venue, symbol, side, price, size, book_seq, book_recv_ns) in enumerate(legs):
        leg = rec["legs"][0, i]
        leg["venue"] = encode_str(venue, 12)
        leg["symbol"] = encode_str(symbol, 20)
        leg["side"] = int(side)
        leg["price"] = price
        leg["size"] = size
        leg["book_seq"] = book_seq
        leg["book_recv_ns"] = book_recv_ns
    rec["edge_bps"] = edge_bps
    rec["edge_quote"] = edge_quote
    rec["gross_edge_bps"] = gross_edge_bps
    rec["computed_ns"] = computed_ns if computed_ns is not None else time.monotonic_ns()
    return rec
