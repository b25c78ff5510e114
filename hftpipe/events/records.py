"""Fixed-size event records shared by every part: signals, orders, fills, risk events, positions.

Each kind is a numpy structured dtype, aligned, a multiple of 8 bytes, starting with the same
header (``seq``, ``kind``, ``version``, ``_pad0``, ``ts_ns``, ``wall_ns``) so any journal reader
can tell what it holds:

- ``seq`` (uint64): global sequence in its journal, set by the journal writer at append;
- ``kind`` (uint16, :class:`EventKind`) and ``version`` (uint16, :data:`RECORD_VERSION`);
- ``ts_ns`` (int64): ``time.monotonic_ns()`` when the record was made (comparable across
  processes on one machine, the clock of ``hftpipe.shm.atomics.now_ns``);
- ``wall_ns`` (int64): ``time.time_ns()`` at the same moment (for humans and the graph).

Venue, symbol, asset and ids are fixed-width ASCII bytes, not indices into the config, so a
record means the same thing after the config changes (the graph logger and restart
reconciliation read journals written by earlier runs). :func:`encode_str` refuses what would be
silently truncated; :func:`decode_str` strips the NUL padding.

A record whose ``kind`` (or ``version``) a consumer does not know is the consumer's business:
the journal stores bytes of one layout and never interprets ``kind``. :func:`kind_of` returns
``None`` for an unknown kind so a consumer can count and skip it.

The layouts below are part of the on-disk format: add fields only with a new
:data:`RECORD_VERSION` (and a new journal dtype fingerprint follows automatically), never
reorder them. Other parts build tuples positionally from ``dtype.names``.

The ``new_*`` helpers return a one-element array; given ``out`` (a one-element array of the
right dtype) they fill it in place instead, with no allocation, for hot loops. numba kernels may
also write these dtypes directly (``out[i].legs[k].price = p``, ``out[i].venue = b"okx"``).
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


#: Rule code -> stable lower-case name (the graph, logs and reports use these, not the codes).
RISK_RULE_NAMES: dict[int, str] = {int(r): r.name.lower() for r in RiskRule}


def risk_rule_name(code: int) -> str:
    """Name of a rule code; ``rule_<code>`` for a code this build does not know (a newer writer)."""
    return RISK_RULE_NAMES.get(int(code), f"rule_{int(code)}")


class RiskAction(enum.IntEnum):
    REJECT_ORDER = 0
    ENGAGE_KILL_SWITCH = 1
    WARN = 2


MAX_LEGS = 3

#: The common header, in this order, at these offsets, in every record dtype.
HEADER_FIELDS = ("seq", "kind", "version", "_pad0", "ts_ns", "wall_ns")

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

DTYPE_BY_KIND: dict[EventKind, np.dtype] = {
    EventKind.SIGNAL: SIGNAL_DTYPE,
    EventKind.ORDER: ORDER_DTYPE,
    EventKind.FILL: FILL_DTYPE,
    EventKind.RISK: RISK_DTYPE,
    EventKind.POSITION: POSITION_DTYPE,
}

#: Journal name -> record dtype: one journal per kind, all in the run's data directory.
JOURNALS: dict[str, np.dtype] = {
    "signals": SIGNAL_DTYPE,
    "orders": ORDER_DTYPE,
    "fills": FILL_DTYPE,
    "risk": RISK_DTYPE,
    "positions": POSITION_DTYPE,
}
#: Journal name -> the kind its records carry, and back.
KIND_BY_JOURNAL: dict[str, EventKind] = {
    "signals": EventKind.SIGNAL,
    "orders": EventKind.ORDER,
    "fills": EventKind.FILL,
    "risk": EventKind.RISK,
    "positions": EventKind.POSITION,
}
JOURNAL_BY_KIND: dict[EventKind, str] = {k: n for n, k in KIND_BY_JOURNAL.items()}

for _dt in DTYPE_BY_KIND.values():  # the invariants every reader relies on
    assert _dt.names[:6] == HEADER_FIELDS and _dt.itemsize % 8 == 0 and _dt.fields["ts_ns"][1] == 16
del _dt

_ZERO = {kind: np.zeros((), dtype=dt) for kind, dt in DTYPE_BY_KIND.items()}


def kind_of(record) -> EventKind | None:
    """The kind of a record (np.void or 1-element array); ``None`` if this build does not know it."""
    code = int(record["kind"] if isinstance(record, np.void) else record["kind"].reshape(-1)[0])
    try:
        return EventKind(code)
    except ValueError:
        return None


def new_record(kind: EventKind, out: np.ndarray | None = None) -> np.ndarray:
    """A zeroed one-element record of ``kind`` with its header filled in (``seq`` is set by the journal).

    With ``out`` (a one-element array of the kind's dtype) that record is zeroed and filled instead.
    """
    if out is None:
        out = np.zeros(1, dtype=DTYPE_BY_KIND[kind])
    else:
        if out.dtype != DTYPE_BY_KIND[kind] or out.shape != (1,):
            raise TypeError(f"out must be a 1-element {EventKind(kind).name} record, got {out.dtype} {out.shape}")
        out[...] = _ZERO[kind]
    out["kind"] = int(kind)
    out["version"] = RECORD_VERSION
    out["ts_ns"] = time.monotonic_ns()
    out["wall_ns"] = time.time_ns()
    return out


def encode_str(value: str | bytes, width: int) -> bytes:
    """ASCII bytes for a fixed-width field; refuses what would be silently truncated."""
    raw = value if isinstance(value, bytes) else value.encode("ascii")
    if len(raw) > width:
        raise ValueError(f"{value!r} longer than {width} bytes")
    return raw


def decode_str(raw) -> str:
    """Text of a fixed-width bytes field (bytes, np.bytes_ or a 0-d/1-element array of them)."""
    if isinstance(raw, np.ndarray):
        raw = raw.reshape(-1)[0] if raw.ndim else raw.item()
    return bytes(raw).rstrip(b"\0").decode("ascii", "replace")


def new_signal(strategy: str, signal_id: int, legs: list[tuple], edge_bps: float, edge_quote: float,
               gross_edge_bps: float, instance: int = 0, computed_ns: int | None = None,
               out: np.ndarray | None = None) -> np.ndarray:
    """A SIGNAL record; ``legs`` are (venue, symbol, side, price, size, book_seq, book_recv_ns)."""
    if not 1 <= len(legs) <= MAX_LEGS:
        raise ValueError(f"a signal has 1..{MAX_LEGS} legs, got {len(legs)}")
    rec = new_record(EventKind.SIGNAL, out)
    rec["strategy"] = encode_str(strategy, 24)
    rec["signal_id"] = signal_id
    rec["instance"] = instance
    rec["n_legs"] = len(legs)
    for i, (venue, symbol, side, price, size, book_seq, book_recv_ns) in enumerate(legs):
        if int(side) not in (1, -1):
            raise ValueError(f"leg {i}: side must be +1 (buy) or -1 (sell), got {side!r}")
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


def signal_legs(record) -> list[tuple[str, str, int, float, float, int, int]]:
    """The ``n_legs`` legs of a SIGNAL record as (venue, symbol, side, price, size, book_seq, book_recv_ns)."""
    if isinstance(record, np.ndarray):
        record = record.reshape(-1)[0]
    out = []
    for i in range(min(int(record["n_legs"]), MAX_LEGS)):
        leg = record["legs"][i]
        out.append((decode_str(leg["venue"]), decode_str(leg["symbol"]), int(leg["side"]), float(leg["price"]),
                    float(leg["size"]), int(leg["book_seq"]), int(leg["book_recv_ns"])))
    return out


def new_order(client_order_id: str, venue: str, symbol: str, side: int, order_type: int, price: float,
              size: float, status: int = OrderStatus.NEW, *, filled: float = 0.0, avg_price: float = 0.0,
              signal_id: int = 0, leg: int = 0, venue_order_id: str = "", reason: int = 0,
              out: np.ndarray | None = None) -> np.ndarray:
    """An ORDER record: one state change of one order (every status change is its own record)."""
    rec = new_record(EventKind.ORDER, out)
    rec["client_order_id"] = encode_str(client_order_id, 36)
    rec["venue"] = encode_str(venue, 12)
    rec["symbol"] = encode_str(symbol, 20)
    rec["venue_order_id"] = encode_str(venue_order_id, 40)
    rec["side"] = int(side)
    rec["order_type"] = int(order_type)
    rec["status"] = int(status)
    rec["leg"] = leg
    rec["reason"] = int(reason)
    rec["signal_id"] = signal_id
    rec["price"] = price
    rec["size"] = size
    rec["filled"] = filled
    rec["avg_price"] = avg_price
    return rec


def new_fill(fill_id: str, client_order_id: str, venue: str, symbol: str, side: int, price: float, size: float,
             fee: float, fee_asset: str, liquidity: int = Liquidity.TAKER, *, signal_id: int = 0,
             out: np.ndarray | None = None) -> np.ndarray:
    """A FILL record."""
    rec = new_record(EventKind.FILL, out)
    rec["fill_id"] = encode_str(fill_id, 40)
    rec["client_order_id"] = encode_str(client_order_id, 36)
    rec["venue"] = encode_str(venue, 12)
    rec["symbol"] = encode_str(symbol, 20)
    rec["fee_asset"] = encode_str(fee_asset, 12)
    rec["side"] = int(side)
    rec["liquidity"] = int(liquidity)
    rec["price"] = price
    rec["size"] = size
    rec["fee"] = fee
    rec["signal_id"] = signal_id
    return rec


def new_risk(rule: int, action: int, value: float, limit: float, *, client_order_id: str = "", venue: str = "",
             symbol: str = "", signal_id: int = 0, out: np.ndarray | None = None) -> np.ndarray:
    """A RISK record: rule ``rule`` saw ``value`` against ``limit`` and took ``action``."""
    rec = new_record(EventKind.RISK, out)
    rec["rule"] = int(rule)
    rec["action"] = int(action)
    rec["client_order_id"] = encode_str(client_order_id, 36)
    rec["venue"] = encode_str(venue, 12)
    rec["symbol"] = encode_str(symbol, 20)
    rec["signal_id"] = signal_id
    rec["value"] = value
    rec["limit"] = limit
    return rec


def new_position(venue: str, asset: str, balance: float, avg_cost: float, realized_pnl: float,
                 unrealized_pnl: float, fees: float, exposure: float = 0.0, *,
                 out: np.ndarray | None = None) -> np.ndarray:
    """A POSITION record: a snapshot of one (venue, asset)."""
    rec = new_record(EventKind.POSITION, out)
    rec["venue"] = encode_str(venue, 12)
    rec["asset"] = encode_str(asset, 12)
    rec["balance"] = balance
    rec["avg_cost"] = avg_cost
    rec["realized_pnl"] = realized_pnl
    rec["unrealized_pnl"] = unrealized_pnl
    rec["fees"] = fees
    rec["exposure"] = exposure
    return rec
