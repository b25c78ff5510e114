"""Order lifecycle transitions, client order ids, signal validation."""

import itertools

import numpy as np
import pytest

from hftpipe.events import MAX_LEGS, OrderStatus, OrderType, RiskRule, decode_str, new_signal
from hftpipe.execution.orders import (
    ALLOWED_TRANSITIONS,
    BINANCE_CLIENT_ID_RE,
    OrderReason,
    OrderStateError,
    SignalValidator,
    advance,
    client_order_id,
    order_from_leg,
    parse_client_order_id,
    risk_reason,
    run_tag,
    transition_error,
)
from tests.execution.conftest import order

S = OrderStatus
VALID = [
    (S.NEW, S.ACKED), (S.NEW, S.PARTIALLY_FILLED), (S.NEW, S.FILLED), (S.NEW, S.CANCELLED),
    (S.NEW, S.REJECTED), (S.NEW, S.EXPIRED), (S.ACKED, S.PARTIALLY_FILLED), (S.ACKED, S.FILLED),
    (S.ACKED, S.CANCELLED), (S.ACKED, S.EXPIRED), (S.PARTIALLY_FILLED, S.PARTIALLY_FILLED),
    (S.PARTIALLY_FILLED, S.FILLED), (S.PARTIALLY_FILLED, S.CANCELLED), (S.PARTIALLY_FILLED, S.EXPIRED),
]


def test_transition_table_is_exactly_the_lifecycle():
    allowed = {(a, b) for a, bs in ALLOWED_TRANSITIONS.items() for b in bs}
    assert allowed == set(VALID)
    for a, b in itertools.product(S, S):
        err = transition_error(a, b)
        assert (err is None) == ((a, b) in VALID), (a, b, err)


@pytest.mark.parametrize("old, new, reason", [
    (S.FILLED, S.CANCELLED, "already FILLED (terminal)"),
    (S.CANCELLED, S.FILLED, "already CANCELLED (terminal)"),
    (S.ACKED, S.REJECTED, "only a NEW order can be REJECTED"),
    (S.PARTIALLY_FILLED, S.ACKED, "PARTIALLY_FILLED -> ACKED is not a lifecycle transition"),
    (S.ACKED, S.NEW, "ACKED -> NEW is not a lifecycle transition"),
    (S.NEW, 42, "unknown order status"),
])
def test_invalid_transitions_say_why(old, new, reason):
    assert reason in transition_error(old, new)


def test_advance_through_a_partial_fill():
    o = order(size=2.0, coid="Hx", order_type=OrderType.LIMIT)
    a = advance(o, S.ACKED, venue_order_id="123")
    p = advance(a, S.PARTIALLY_FILLED, filled=0.5, avg_price=100.0)
    p2 = advance(p, S.PARTIALLY_FILLED, filled=1.5, avg_price=100.1)
    f = advance(p2, S.FILLED, filled=2.0, avg_price=100.2)
    assert [int(r["status"][0]) for r in (o, a, p, p2, f)] == [0, 1, 2, 2, 3]
    assert f["filled"][0] == 2.0 and f["avg_price"][0] == 100.2
    assert decode_str(f["venue_order_id"]) == "123" and decode_str(f["client_order_id"]) == "Hx"
    assert o["status"][0] == S.NEW  # inputs are not modified


@pytest.mark.parametrize("steps, reason", [
    ([(S.FILLED, 0.5)], "FILLED with 0.5 of 2.0"),
    ([(S.PARTIALLY_FILLED, 2.5)], "exceeds the order size"),
    ([(S.PARTIALLY_FILLED, 1.0), (S.PARTIALLY_FILLED, 0.5)], "went backwards"),
    ([(S.PARTIALLY_FILLED, 1.0), (S.PARTIALLY_FILLED, 1.0)], "without a new fill"),
    ([(S.PARTIALLY_FILLED, 0.0)], "needs 0 < filled < size"),
    ([(S.ACKED, 1.0)], "ACKED with a filled quantity"),
    ([(S.FILLED, 2.0), (S.CANCELLED, 2.0)], "terminal"),
    ([(S.PARTIALLY_FILLED, float("nan"))], "not a finite"),
])
def test_inconsistent_fills_are_errors(steps, reason):
    rec = order(size=2.0)
    with pytest.raises(OrderStateError) as exc:
        for status, filled in steps:
            rec = advance(rec, status, filled=filled)
    assert reason in exc.value.reason


def test_reason_codes():
    assert risk_reason(RiskRule.MAX_POSITION) == 101
    rec = advance(order(), S.REJECTED, reason=risk_reason(RiskRule.PRICE_BAND))
    assert rec["reason"][0] == OrderReason.RISK_BASE + RiskRule.PRICE_BAND


# ---- client order ids


def test_client_order_id_is_deterministic_and_venue_valid():
    tag = run_tag("demo", 1_700_000_000_000_000_000)
    assert tag == run_tag("demo", 1_700_000_000_000_000_000) and len(tag) == 5
    assert run_tag("demo", 1_700_000_000_000_000_001) != tag
    coid = client_order_id(tag, 123456789, 1, 0)
    assert coid == client_order_id(tag, 123456789, 1, 0)  # a retry sends the same id
    assert BINANCE_CLIENT_ID_RE.match(coid) and coid.isalnum() and len(coid) <= 32


def test_client_order_ids_differ_by_every_part():
    tag = run_tag("demo", 1)
    ids = {client_order_id(tag, sid, leg, attempt, purpose)
           for sid in (0, 1, 35, 36, 2**64 - 1) for leg in range(MAX_LEGS) for attempt in (0, 1, 1295)
           for purpose in ("e", "u", "h")}
    ids.add(client_order_id(run_tag("other", 1), 0, 0, 0))
    assert len(ids) == 5 * MAX_LEGS * 3 * 3 + 1
    longest = max(ids, key=len)
    assert len(longest) == 23 and all(BINANCE_CLIENT_ID_RE.match(i) for i in ids)


def test_client_order_id_parses_back():
    tag = run_tag("demo", 1)
    for sid, leg, attempt, purpose in [(0, 0, 0, "e"), (2**64 - 1, 9, 1295, "h"), (777, 2, 3, "u")]:
        parts = parse_client_order_id(client_order_id(tag, sid, leg, attempt, purpose))
        assert (parts.run_tag, parts.signal_id, parts.leg, parts.attempt, parts.purpose) == (
            tag, sid, leg, attempt, purpose)
    assert parse_client_order_id("x-R4BD3S82abc") is None


@pytest.mark.parametrize("kwargs", [
    dict(run_tag="abc"), dict(run_tag="abcde"), dict(signal_id=-1), dict(signal_id=2**64), dict(leg=10),
    dict(attempt=1296), dict(purpose="x"),
])
def test_client_order_id_refuses_bad_parts(kwargs):
    args = dict(run_tag="A0B1C", signal_id=1, leg=0, attempt=0, purpose="e") | kwargs
    with pytest.raises(ValueError):
        client_order_id(**args)


def test_order_from_a_signal_leg():
    sig = new_signal("cross_exchange_arbitrage", 77, [
        ("binance", "BTC/USDT", 1, 100.0, 0.5, 1, 2), ("okx", "BTC/USDT", -1, 101.0, 0.5, 3, 4)], 10.0, 0.5, 30.0)
    tag = run_tag("demo", 1)
    rec = order_from_leg(sig, 1, tag)
    assert decode_str(rec["client_order_id"]) == client_order_id(tag, 77, 1, 0)
    assert decode_str(rec["venue"]) == "okx" and rec["side"][0] == -1 and rec["price"][0] == 101.0
    assert rec["size"][0] == 0.5 and rec["leg"][0] == 1 and rec["signal_id"][0] == 77
    assert rec["status"][0] == S.NEW and rec["order_type"][0] == OrderType.IOC


# ---- signal validation

MARKETS = [("binance", "BTC/USDT"), ("okx", "BTC/USDT"), ("binance", "ETH/USDT")]


def signal(sid=1, legs=None):
    legs = legs or [("binance", "BTC/USDT", 1, 100.0, 0.5, 1, 2), ("okx", "BTC/USDT", -1, 101.0, 0.5, 3, 4)]
    return new_signal("cross_exchange_arbitrage", sid, legs, 10.0, 0.5, 30.0)


def test_a_good_signal_passes_once_then_is_a_duplicate():
    v = SignalValidator(MARKETS)
    assert v.validate(signal(5)).ok
    dup = v.validate(signal(5))
    assert not dup and dup.rule == RiskRule.DUPLICATE_SIGNAL and dup.reason == "signal id 5 already seen"
    assert v.validate(signal(6)).ok


def set_leg(sig, i, **fields):
    for k, val in fields.items():
        sig["legs"][0, i][k] = val
    return sig


@pytest.mark.parametrize("mutate, leg, reason", [
    (lambda s: s.__setitem__("n_legs", 0), -1, "n_legs 0 out of 1..3"),
    (lambda s: s.__setitem__("n_legs", 4), -1, "n_legs 4 out of 1..3"),
    (lambda s: set_leg(s, 1, venue=b"kraken"), 1, "leg 1: unknown venue 'kraken'"),
    (lambda s: set_leg(s, 1, symbol=b"ETH/USDT"), 1, "leg 1: unknown symbol 'ETH/USDT' on okx"),
    (lambda s: set_leg(s, 0, side=0), 0, "leg 0: side 0 is not +1 (buy) or -1 (sell)"),
    (lambda s: set_leg(s, 0, side=2), 0, "leg 0: side 2 is not"),
    (lambda s: set_leg(s, 0, price=float("nan")), 0, "leg 0: price nan is not a positive finite number"),
    (lambda s: set_leg(s, 1, price=-1.0), 1, "leg 1: price -1.0 is not"),
    (lambda s: set_leg(s, 0, size=0.0), 0, "leg 0: size 0.0 is not"),
    (lambda s: set_leg(s, 1, size=float("inf")), 1, "leg 1: size inf is not"),
])
def test_malformed_signals_are_rejected_with_a_reason(mutate, leg, reason):
    v = SignalValidator(MARKETS)
    sig = signal()
    mutate(sig)
    verdict = v.validate(sig)
    assert not verdict.ok and verdict.rule == RiskRule.MALFORMED_SIGNAL
    assert verdict.reason.startswith(reason) and verdict.leg == leg
    assert not v.seen(1)  # a refused signal is not remembered as handled


def test_legs_beyond_n_legs_are_ignored():
    sig = signal()
    sig["n_legs"] = 1
    set_leg(sig, 1, side=0, price=np.nan)
    assert SignalValidator(MARKETS).validate(sig).ok


def test_validator_memory_is_bounded_and_restorable():
    v = SignalValidator(MARKETS, memory=2)
    for sid in (1, 2, 3):
        assert v.validate(signal(sid)).ok
    assert not v.seen(1) and v.seen(2) and v.seen(3)
    v2 = SignalValidator(MARKETS)
    v2.remember(9)  # restart: ids handled before the restart
    assert v2.validate(signal(9)).rule == RiskRule.DUPLICATE_SIGNAL
