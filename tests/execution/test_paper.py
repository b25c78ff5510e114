"""Paper fills against hand-computed depth walks; IOC remainders; resting limits; leg-failure policy."""

import math

import numpy as np
import pytest

from hftpipe.book import walk_levels
from hftpipe.events import Liquidity, OrderStatus, OrderType, decode_str
from hftpipe.execution.orders import OrderReason, transition_error
from hftpipe.execution.paper import (
    LegOutcome,
    execute,
    execute_on_book,
    leg_failure_orders,
    match_resting,
)
from tests.execution.conftest import levels, order

ASKS = levels((100.0, 1.0), (100.5, 2.0), (101.0, 5.0))
BIDS = levels((99.5, 1.0), (99.0, 2.0), (98.0, 5.0))
FEE_BPS = 10.0


def run(o, book=None, n=3, **kw):
    side = int(o["side"][0])
    book = book if book is not None else (ASKS if side == 1 else BIDS)
    return execute(o, book, n, taker_fee_bps=FEE_BPS, **kw)


def fill_rows(res):
    return [(float(f["price"]), float(f["size"])) for f in res.fills]


def assert_lifecycle(res, start=OrderStatus.NEW):
    prev = start
    for status in res.transitions:
        assert transition_error(prev, status) is None, (prev, status)
        prev = status
    assert [int(s) for s in res.orders["status"]] == [int(s) for s in res.transitions]


def test_ioc_buy_walks_asks_up_to_the_limit():
    res = run(order(side=1, price=100.5, size=2.5, coid="a"))
    assert fill_rows(res) == [(100.0, 1.0), (100.5, 1.5)]
    assert res.status == OrderStatus.FILLED and res.transitions == (OrderStatus.FILLED,)
    assert res.filled == 2.5
    assert res.avg_price == pytest.approx((100.0 * 1 + 100.5 * 1.5) / 2.5)
    # Same average as the book kernel's unbounded walk (the limit did not bind here).
    avg, filled, used = walk_levels(ASKS, 3, 2.5)
    assert (res.avg_price, res.filled, len(res.fills)) == (pytest.approx(avg), filled, used)
    # Taker fee per fill: notional * 10 bps, in the quote asset.
    assert list(res.fills["fee"]) == pytest.approx([100.0 * 1e-3, 100.5 * 1.5 * 1e-3])
    assert res.fee_quote == pytest.approx(0.1 + 0.15075)
    assert {decode_str(f["fee_asset"]) for f in res.fills} == {"USDT"}
    assert set(res.fills["liquidity"]) == {Liquidity.TAKER}
    assert [decode_str(f["fill_id"]) for f in res.fills] == ["a.0", "a.1"]
    assert res.orders["filled"][-1] == 2.5 and res.orders["avg_price"][-1] == res.avg_price
    assert res.next_fill_no == 2 and not res.resting
    assert_lifecycle(res)


def test_ioc_partial_fill_expires_the_remainder():
    res = run(order(side=1, price=100.5, size=4.0))
    assert fill_rows(res) == [(100.0, 1.0), (100.5, 2.0)]  # 101 is beyond the limit
    assert res.filled == 3.0
    assert res.avg_price == pytest.approx(301.0 / 3.0)
    assert res.transitions == (OrderStatus.PARTIALLY_FILLED, OrderStatus.EXPIRED)
    assert res.status == OrderStatus.EXPIRED and res.reason == OrderReason.IOC_REMAINDER
    assert list(res.orders["reason"]) == [OrderReason.NONE, OrderReason.IOC_REMAINDER]
    assert list(res.orders["filled"]) == [3.0, 3.0]
    assert_lifecycle(res)


def test_ioc_with_nothing_fillable_is_rejected():
    res = run(order(side=1, price=99.9, size=1.0))
    assert len(res.fills) == 0 and res.filled == 0.0 and math.isnan(res.avg_price)
    assert res.transitions == (OrderStatus.REJECTED,) and res.reason == OrderReason.NO_LIQUIDITY
    assert_lifecycle(res)


def test_ioc_sell_walks_bids_down_to_the_limit():
    res = run(order(side=-1, price=99.0, size=10.0))
    assert fill_rows(res) == [(99.5, 1.0), (99.0, 2.0)]
    assert res.status == OrderStatus.EXPIRED and res.filled == 3.0


def test_market_orders_walk_without_a_limit():
    res = run(order(side=-1, price=0.0, size=4.0, order_type=OrderType.MARKET))
    assert fill_rows(res) == [(99.5, 1.0), (99.0, 2.0), (98.0, 1.0)]
    assert res.avg_price == pytest.approx((99.5 + 198.0 + 98.0) / 4.0)
    assert res.status == OrderStatus.FILLED
    res = run(order(side=1, price=0.0, size=10.0, order_type=OrderType.MARKET))
    assert res.filled == 8.0 and res.transitions == (OrderStatus.PARTIALLY_FILLED, OrderStatus.EXPIRED)


def test_empty_book_and_zero_size_levels():
    assert run(order(), np.zeros((5, 2)), 0).status == OrderStatus.REJECTED
    book = levels((100.0, 0.0), (100.2, 1.0))
    assert fill_rows(run(order(price=101.0), book, 2)) == [(100.2, 1.0)]


def test_only_the_first_n_levels_count():
    res = run(order(side=1, price=101.0, size=10.0), ASKS, 2)
    assert res.filled == 3.0
    # A count beyond the array is clamped, never read past its end.
    assert run(order(side=1, price=101.0, size=10.0), ASKS[:3], 50).filled == 8.0


def test_invalid_orders_are_rejected():
    for o in (order(size=0.0), order(size=float("nan")), order(price=float("nan")), order(side=0)):
        res = run(o, ASKS)
        assert res.status == OrderStatus.REJECTED and res.reason == OrderReason.INVALID_ORDER


def test_limit_order_that_does_not_cross_rests_and_fills_later_as_maker():
    o = order(side=1, price=99.8, size=1.0, order_type=OrderType.LIMIT, coid="L")
    res = run(o)
    assert res.transitions == (OrderStatus.ACKED,) and res.resting and len(res.fills) == 0
    working = res.orders[-1:]
    # The asks come down through our bid: 0.7 crosses (99.7 and 99.8), 100 does not.
    later = levels((99.7, 0.4), (99.8, 0.3), (100.0, 9.0))
    r2 = match_resting(working, later, 3, maker_fee_bps=2.0, fill_no=res.next_fill_no)
    assert fill_rows(r2) == [(99.8, 0.7)]  # at our own price
    assert r2.transitions == (OrderStatus.PARTIALLY_FILLED,) and r2.resting
    assert set(r2.fills["liquidity"]) == {Liquidity.MAKER}
    assert r2.fee_quote == pytest.approx(99.8 * 0.7 * 2e-4)
    assert_lifecycle(r2, OrderStatus.ACKED)
    # Nothing crossing: no change.
    r3 = match_resting(r2.orders[-1:], levels((100.0, 5.0)), 1, maker_fee_bps=2.0, fill_no=r2.next_fill_no)
    assert r3.transitions == () and r3.status == OrderStatus.PARTIALLY_FILLED and len(r3.fills) == 0
    r4 = match_resting(r2.orders[-1:], levels((99.5, 5.0)), 1, maker_fee_bps=2.0, fill_no=r3.next_fill_no)
    assert fill_rows(r4) == [(99.8, pytest.approx(0.3))]
    assert r4.status == OrderStatus.FILLED and r4.filled == 1.0 and r4.avg_price == pytest.approx(99.8)
    assert [decode_str(f["fill_id"]) for f in np.concatenate([r2.fills, r4.fills])] == ["L.0", "L.1"]
    assert_lifecycle(r4, OrderStatus.PARTIALLY_FILLED)


def test_limit_order_that_crosses_takes_then_rests():
    res = run(order(side=1, price=100.2, size=3.0, order_type=OrderType.LIMIT))
    assert fill_rows(res) == [(100.0, 1.0)]
    assert res.transitions == (OrderStatus.PARTIALLY_FILLED,) and res.resting
    r2 = match_resting(res.orders[-1:], levels((100.1, 5.0)), 1, maker_fee_bps=0.0, fill_no=res.next_fill_no)
    assert r2.status == OrderStatus.FILLED and r2.filled == 3.0
    assert r2.avg_price == pytest.approx((100.0 * 1 + 100.2 * 2) / 3)


def test_limit_order_that_fully_crosses_fills():
    res = run(order(side=-1, price=99.0, size=3.0, order_type=OrderType.LIMIT))
    assert res.status == OrderStatus.FILLED and not res.resting


def test_match_resting_refuses_finished_or_non_limit_orders():
    done = run(order(side=1, price=100.5, size=1.0)).orders[-1:]
    with pytest.raises(ValueError, match="working limit order"):
        match_resting(done, ASKS, 3, maker_fee_bps=0.0)


def test_execute_on_book_takes_the_opposite_side():
    buy = execute_on_book(order(side=1, price=101.0, size=1.0), BIDS, 3, ASKS, 3, taker_fee_bps=0.0)
    sell = execute_on_book(order(side=-1, price=99.0, size=1.0), BIDS, 3, ASKS, 3, taker_fee_bps=0.0)
    assert fill_rows(buy) == [(100.0, 1.0)] and fill_rows(sell) == [(99.5, 1.0)]


def test_fills_carry_the_order_identity():
    res = run(order(side=1, price=101.0, size=1.0, coid="Hid", signal_id=99, venue="okx"))
    f = res.fills[0]
    assert decode_str(f["client_order_id"]) == "Hid" and f["signal_id"] == 99
    assert decode_str(f["venue"]) == "okx" and decode_str(f["symbol"]) == "BTC/USDT" and f["side"] == 1


# ---- leg-failure policy


def legs(*fills):
    """Two-leg cross-exchange signal: buy 1.0 on binance, sell 1.0 on okx."""
    specs = [("binance", 1), ("okx", -1)]
    return [LegOutcome(i, v, "BTC/USDT", s, 1.0, f) for i, ((v, s), f) in enumerate(zip(specs, fills, strict=True))]


def test_unwind_reverses_the_filled_leg_at_market():
    out = leg_failure_orders(legs(1.0, 0.0), "unwind")
    assert [(o.leg, o.venue, o.side, o.size, o.order_type, o.purpose) for o in out] == [
        (0, "binance", -1, 1.0, OrderType.MARKET, "u")]


def test_hedge_completes_the_missing_leg_at_market():
    out = leg_failure_orders(legs(1.0, 0.0), "hedge")
    assert [(o.leg, o.venue, o.side, o.size, o.order_type, o.purpose) for o in out] == [
        (1, "okx", -1, 1.0, OrderType.MARKET, "h")]


def test_partial_legs_unwind_only_the_excess_or_hedge_up_to_the_most_filled():
    assert [(o.leg, o.side, o.size) for o in leg_failure_orders(legs(1.0, 0.6), "unwind")] == [
        (0, -1, pytest.approx(0.4))]
    assert [(o.leg, o.side, o.size) for o in leg_failure_orders(legs(1.0, 0.6), "hedge")] == [
        (1, -1, pytest.approx(0.4))]
    # Neither leg complete: hedge brings both to the larger fraction.
    assert [(o.leg, o.size) for o in leg_failure_orders(legs(0.5, 0.2), "hedge")] == [(1, pytest.approx(0.3))]


def test_three_legs_in_their_own_units():
    # Triangular: sizes differ per leg; leg 2 failed entirely.
    out = [LegOutcome(0, "binance", "BTC/USDT", 1, 0.02, 0.02), LegOutcome(1, "binance", "ETH/BTC", 1, 0.4, 0.4),
           LegOutcome(2, "binance", "ETH/USDT", -1, 0.4, 0.0)]
    assert [(o.leg, o.symbol, o.side, o.size) for o in leg_failure_orders(out, "unwind")] == [
        (0, "BTC/USDT", -1, 0.02), (1, "ETH/BTC", -1, 0.4)]
    assert [(o.leg, o.symbol, o.side, o.size) for o in leg_failure_orders(out, "hedge")] == [
        (2, "ETH/USDT", -1, 0.4)]


def test_nothing_to_correct():
    for policy in ("unwind", "hedge"):
        assert leg_failure_orders(legs(1.0, 1.0), policy) == []
        assert leg_failure_orders(legs(0.0, 0.0), policy) == []
    with pytest.raises(ValueError, match="leg failure policy"):
        leg_failure_orders(legs(1.0, 0.0), "pray")


def test_leg_outcome_from_an_order_record():
    res = run(order(side=1, price=100.5, size=4.0))
    lg = LegOutcome.from_order(res.orders[-1:])
    assert (lg.venue, lg.symbol, lg.side, lg.size, lg.filled) == ("binance", "BTC/USDT", 1, 4.0, 3.0)
