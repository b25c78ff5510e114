"""Orders: the lifecycle state machine, deterministic client order ids, and signal validation.

Lifecycle (``OrderStatus``)::

    NEW ──> ACKED ──> PARTIALLY_FILLED ──> FILLED
     │        │             │  ↺ (more fills)
     │        └─────────────┴──> CANCELLED / EXPIRED
     ├──> PARTIALLY_FILLED / FILLED / CANCELLED / EXPIRED   (the venue's first answer may already be final)
     └──> REJECTED                                           (only a NEW order can be refused)

FILLED, CANCELLED, REJECTED and EXPIRED are terminal. Anything else is an ``OrderStateError``
whose ``reason`` says why; so is a fill that goes backwards or past the order size.

Client order ids are a pure function of (run tag, signal id, purpose, leg, attempt). A network
retry of one request reuses the id, so the venue refuses a second order with it and the retry is
idempotent; ``attempt`` grows only when a NEW order is meant for the same leg (after a definitive
reject). Ids are alphanumeric only: the strictest venue rule of the supported ones (OKX
``clOrdId``) is letters and digits, up to 32 characters, and that also satisfies Binance's
``^[\\.A-Z\\:/a-z0-9_-]{1,36}$`` and Bybit's ``orderLinkId``. Typical ids are 12-16 characters,
the longest possible 23.

Signal ids key both the duplicate check and the client order ids, so strategies must emit ids
that are unique across strategies (not merely per strategy).
"""

from __future__ import annotations

import enum
import hashlib
import math
import re
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from hftpipe.events.records import (
    MAX_LEGS,
    ORDER_DTYPE,
    TERMINAL_STATUSES,
    EventKind,
    OrderStatus,
    OrderType,
    RiskRule,
    decode_str,
    encode_str,
    new_record,
)


class OrderReason(enum.IntEnum):
    """Why an order record has its status (ORDER_DTYPE ``reason``); risk rejections are ``RISK_BASE + rule``."""

    NONE = 0
    NO_LIQUIDITY = 1  # nothing on the book within the limit price (IOC / market)
    IOC_REMAINDER = 2  # the unfilled rest of an IOC / market order expired
    USER_CANCEL = 3
    KILL_SWITCH = 4  # cancelled because the kill switch engaged
    TIMEOUT = 5  # not acknowledged / filled within order_timeout_s
    LEG_FAILURE = 6  # corrective order of the leg-failure policy
    VENUE_REJECT = 7
    INVALID_ORDER = 8  # NaN / non-positive size or price, unknown type
    RISK_BASE = 100


def risk_reason(rule: int) -> int:
    """ORDER ``reason`` code of an order refused by risk rule ``rule``."""
    return OrderReason.RISK_BASE + int(rule)


# --------------------------------------------------------------------------------------------
# Lifecycle

_S = OrderStatus
#: Status -> statuses it may move to. PARTIALLY_FILLED -> PARTIALLY_FILLED is a further fill.
ALLOWED_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    _S.NEW: frozenset({_S.ACKED, _S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELLED, _S.REJECTED, _S.EXPIRED}),
    _S.ACKED: frozenset({_S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELLED, _S.EXPIRED}),
    _S.PARTIALLY_FILLED: frozenset({_S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELLED, _S.EXPIRED}),
    _S.FILLED: frozenset(),
    _S.CANCELLED: frozenset(),
    _S.REJECTED: frozenset(),
    _S.EXPIRED: frozenset(),
}

#: Relative tolerance under which a fill quantity counts as the whole order (float sums of levels).
FILL_EPS = 1e-12


class OrderStateError(ValueError):
    """A transition the lifecycle does not allow; ``reason`` says which rule it broke."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


_ALLOWED_PAIRS = frozenset((int(a), int(b)) for a, bs in ALLOWED_TRANSITIONS.items() for b in bs)


def transition_error(old: int, new: int) -> str | None:
    """None if ``old -> new`` is allowed, else the reason it is not."""
    if (old, new) in _ALLOWED_PAIRS:  # fast path: no enum construction for the common case
        return None
    try:
        old_s, new_s = OrderStatus(old), OrderStatus(new)
    except ValueError:
        return f"unknown order status {old} -> {new}"
    if old_s in TERMINAL_STATUSES:
        return f"order is already {old_s.name} (terminal); cannot become {new_s.name}"
    if new_s not in ALLOWED_TRANSITIONS[old_s]:
        if new_s == OrderStatus.REJECTED:
            return f"only a NEW order can be REJECTED, this one is {old_s.name}"
        return f"{old_s.name} -> {new_s.name} is not a lifecycle transition"
    return None


def fill_error(status: int, size: float, old_filled: float, new_filled: float) -> str | None:
    """None if the cumulative fill ``new_filled`` is consistent with ``status``, else the reason."""
    if not math.isfinite(new_filled) or new_filled < 0.0:
        return f"filled quantity {new_filled} is not a finite non-negative number"
    if new_filled < old_filled:
        return f"filled quantity went backwards ({old_filled} -> {new_filled})"
    tol = FILL_EPS * max(size, 1.0)
    if new_filled > size + tol:
        return f"filled quantity {new_filled} exceeds the order size {size}"
    if status == OrderStatus.FILLED and new_filled < size - tol:
        return f"FILLED with {new_filled} of {size}"
    if status == OrderStatus.PARTIALLY_FILLED and not 0.0 < new_filled < size - tol:
        return f"PARTIALLY_FILLED needs 0 < filled < size, got {new_filled} of {size}"
    if status == OrderStatus.PARTIALLY_FILLED and new_filled == old_filled and old_filled > 0.0:
        return "PARTIALLY_FILLED again without a new fill"
    if status in (OrderStatus.ACKED, OrderStatus.REJECTED) and new_filled != 0.0:
        return f"{OrderStatus(status).name} with a filled quantity of {new_filled}"
    return None


def _one(rec):
    """The np.void of a 1-element record array (or the void itself)."""
    return rec[0] if isinstance(rec, np.ndarray) else rec


_O = {name: i for i, name in enumerate(ORDER_DTYPE.names)}
_O_SEQ, _O_TS, _O_WALL, _O_COID, _O_VOID, _O_STATUS, _O_REASON, _O_SIZE, _O_FILLED, _O_AVG = (
    _O[k] for k in ("seq", "ts_ns", "wall_ns", "client_order_id", "venue_order_id", "status", "reason", "size",
                    "filled", "avg_price"))


def advance(order, status: int, *, filled: float | None = None, avg_price: float | None = None,
            reason: int = OrderReason.NONE, venue_order_id: str | None = None,
            ts_ns: int | None = None) -> np.ndarray:
    """The next ORDER record of ``order`` in ``status`` (validated; the input is not modified)."""
    t = order.item()  # every field at once: ~0.5 us, where each numpy field read is ~0.27 us
    old_filled = t[_O_FILLED]
    new_filled = old_filled if filled is None else float(filled)
    err = transition_error(t[_O_STATUS], status)
    if err is None:
        err = fill_error(status, t[_O_SIZE], old_filled, new_filled)
    if err is not None:
        raise OrderStateError(f"{t[_O_COID].decode('ascii', 'replace')}: {err}")
    fields = list(t)
    fields[_O_SEQ] = 0
    fields[_O_TS] = time.monotonic_ns() if ts_ns is None else ts_ns
    fields[_O_WALL] = time.time_ns()
    fields[_O_STATUS] = int(status)
    fields[_O_FILLED] = new_filled
    if avg_price is not None:
        fields[_O_AVG] = avg_price
    fields[_O_REASON] = int(reason)
    if venue_order_id is not None:
        fields[_O_VOID] = encode_str(venue_order_id, 40)
    rec = np.empty(1, dtype=ORDER_DTYPE)
    rec[0] = tuple(fields)
    return rec


def new_order(client_order_id: str, venue: str, symbol: str, side: int, order_type: int, price: float,
              size: float, *, signal_id: int = 0, leg: int = 0, ts_ns: int | None = None) -> np.ndarray:
    """A NEW ORDER record."""
    rec = new_record(EventKind.ORDER)
    if ts_ns is not None:
        rec["ts_ns"] = ts_ns
    rec["client_order_id"] = encode_str(client_order_id, 36)
    rec["venue"] = encode_str(venue, 12)
    rec["symbol"] = encode_str(symbol, 20)
    rec["side"] = int(side)
    rec["order_type"] = int(order_type)
    rec["status"] = int(OrderStatus.NEW)
    rec["leg"] = leg
    rec["signal_id"] = signal_id
    rec["price"] = price
    rec["size"] = size
    rec["avg_price"] = np.nan
    return rec


def order_from_leg(signal, leg: int, run_tag: str, *, order_type: int = OrderType.IOC, attempt: int = 0,
                   ts_ns: int | None = None) -> np.ndarray:
    """The NEW ORDER record for leg ``leg`` of a SIGNAL record (limit price and size from the leg)."""
    sig = _one(signal)
    lg = sig["legs"][leg]
    sid = int(sig["signal_id"])
    return new_order(client_order_id(run_tag, sid, leg, attempt), decode_str(lg["venue"]),
                     decode_str(lg["symbol"]), int(lg["side"]), order_type, float(lg["price"]),
                     float(lg["size"]), signal_id=sid, leg=leg, ts_ns=ts_ns)


# --------------------------------------------------------------------------------------------
# Client order ids

_B36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
RUN_TAG_LEN = 5
#: Why the order exists: e = a signal's entry leg, u = unwind, h = hedge (leg-failure policy).
PURPOSES = ("e", "u", "h")
MAX_ATTEMPT = 36 * 36 - 1
CLIENT_ID_RE = re.compile(r"^H([0-9A-Z]{5})([0-9A-Z]{1,13})([euh])([0-9])([0-9A-Z]{1,2})$")
#: Binance's rule for ``newClientOrderId``; every id made here also matches it.
BINANCE_CLIENT_ID_RE = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")


def _b36(n: int) -> str:
    if n == 0:
        return "0"
    out = []
    while n:
        n, r = divmod(n, 36)
        out.append(_B36[r])
    return "".join(reversed(out))


def run_tag(run_name: str, run_started_ns: int) -> str:
    """Five base-36 characters naming one run (stable across executor restarts of that run)."""
    digest = hashlib.blake2b(f"{run_name}|{run_started_ns}".encode(), digest_size=8).digest()
    return _b36(int.from_bytes(digest, "little") % 36**RUN_TAG_LEN).rjust(RUN_TAG_LEN, "0")


def client_order_id(run_tag: str, signal_id: int, leg: int, attempt: int = 0, purpose: str = "e") -> str:
    """``H`` + run tag + signal id (base 36) + purpose + leg + attempt: deterministic, ≤ 23 chars."""
    if len(run_tag) != RUN_TAG_LEN or any(c not in _B36 for c in run_tag):
        raise ValueError(f"run tag {run_tag!r}: expected {RUN_TAG_LEN} characters of 0-9A-Z (see run_tag())")
    if not 0 <= signal_id < 2**64:
        raise ValueError(f"signal id {signal_id} is not a u64")
    if not 0 <= leg <= 9:
        raise ValueError(f"leg {leg} out of 0..9")
    if not 0 <= attempt <= MAX_ATTEMPT:
        raise ValueError(f"attempt {attempt} out of 0..{MAX_ATTEMPT}")
    if purpose not in PURPOSES:
        raise ValueError(f"purpose {purpose!r}: expected one of {PURPOSES}")
    return f"H{run_tag}{_b36(signal_id)}{purpose}{leg}{_b36(attempt)}"


@dataclass(frozen=True, slots=True)
class ClientOrderId:
    """The parts of a client order id."""

    run_tag: str
    signal_id: int
    purpose: str
    leg: int
    attempt: int


def parse_client_order_id(coid: str) -> ClientOrderId | None:
    """The parts of an id made by ``client_order_id``, or None for any other string."""
    m = CLIENT_ID_RE.match(coid)
    if m is None:
        return None
    return ClientOrderId(m.group(1), int(m.group(2), 36), m.group(3), int(m.group(4)), int(m.group(5), 36))


# --------------------------------------------------------------------------------------------
# Signal validation


@dataclass(frozen=True, slots=True)
class SignalVerdict:
    """Outcome of validating one signal: ``ok``, else the rule, the leg at fault (-1: none) and why."""

    ok: bool
    rule: int = 0
    reason: str = ""
    leg: int = -1

    def __bool__(self) -> bool:
        return self.ok


SIGNAL_OK = SignalVerdict(True)


def _malformed(reason: str, leg: int = -1) -> SignalVerdict:
    return SignalVerdict(False, RiskRule.MALFORMED_SIGNAL, reason, leg)


class SignalValidator:
    """Rejects malformed signals and signal ids already seen; remembers the last ``memory`` ids."""

    def __init__(self, markets: Iterable[tuple[str, str]], memory: int = 1 << 20):
        # Raw bytes as they sit in the record: no decode per leg on the hot path.
        self._markets = frozenset((v.encode("ascii"), s.encode("ascii")) for v, s in markets)
        self._venues = frozenset(v for v, _ in self._markets)
        self._memory = memory
        self._seen: set[int] = set()
        self._order: deque[int] = deque()

    def seen(self, signal_id: int) -> bool:
        """Whether ``signal_id`` was already accepted."""
        return signal_id in self._seen

    def remember(self, signal_id: int) -> None:
        """Mark an id as seen (restart: replay the ids of signals handled before)."""
        if signal_id in self._seen:
            return
        self._seen.add(signal_id)
        self._order.append(signal_id)
        if len(self._order) > self._memory:
            self._seen.discard(self._order.popleft())

    def validate(self, signal) -> SignalVerdict:
        """Check one SIGNAL record; an accepted signal's id is remembered (a second one is a duplicate)."""
        sig = _one(signal)
        n = int(sig["n_legs"])
        if not 1 <= n <= MAX_LEGS:
            return _malformed(f"n_legs {n} out of 1..{MAX_LEGS}")
        legs = sig["legs"]
        for i in range(n):
            lg = legs[i]
            venue, symbol = lg["venue"], lg["symbol"]
            if venue not in self._venues:
                return _malformed(f"leg {i}: unknown venue {venue.decode('ascii', 'replace')!r}", i)
            if (venue, symbol) not in self._markets:
                return _malformed(f"leg {i}: unknown symbol {symbol.decode('ascii', 'replace')!r} on "
                                  f"{venue.decode('ascii')}", i)
            side = int(lg["side"])
            if side != 1 and side != -1:
                return _malformed(f"leg {i}: side {side} is not +1 (buy) or -1 (sell)", i)
            price = float(lg["price"])
            if not (math.isfinite(price) and price > 0.0):
                return _malformed(f"leg {i}: price {price} is not a positive finite number", i)
            size = float(lg["size"])
            if not (math.isfinite(size) and size > 0.0):
                return _malformed(f"leg {i}: size {size} is not a positive finite number", i)
        sid = int(sig["signal_id"])
        if sid in self._seen:
            return SignalVerdict(False, RiskRule.DUPLICATE_SIGNAL, f"signal id {sid} already seen")
        self.remember(sid)
        return SIGNAL_OK
