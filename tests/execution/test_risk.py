"""Risk rules: each passes at its limit and breaches past it with the exact (rule, value, limit)."""

import math

import numpy as np
import pytest

from hftpipe.events import OrderStatus, OrderType, RiskAction, RiskRule, decode_str
from hftpipe.execution.orders import advance
from hftpipe.execution.risk import ACCEPTED, RiskManager, check_order
from tests.execution.conftest import MARKETS, NOW, fill, order, risk_config


def check(rm, o, mid=100.0, age_ms=0.0, valid=True, now=NOW, reserve=True):
    return rm.check(o, mid, now - int(age_ms * 1e6), valid, now, reserve=reserve)


def hold(rm, asset, quantity, mark=None):
    """Hold ``quantity`` of ``asset``, bought or sold at its mark: equity does not move."""
    if mark is not None:
        rm.set_mark(asset, mark)
    i, usdt = rm.asset_index[asset], rm.asset_index["USDT"]
    rm.state.positions[usdt] -= (quantity - rm.state.positions[i]) * rm.state.marks[i]
    rm.state.positions[i] = quantity


def assert_breach(decision, rule, value, limit):
    assert not decision.accepted
    assert decision.rule == rule, decision.reason
    if isinstance(value, float) and math.isnan(value):
        assert math.isnan(decision.value)
    else:
        assert decision.value == pytest.approx(value, rel=1e-12, abs=1e-12)
    assert decision.limit == limit
    rec = decision.record[0]
    assert rec["rule"] == rule and rec["limit"] == limit
    assert rec["value"] == decision.value or math.isnan(decision.value)


def test_an_ordinary_order_passes_and_reserves(rm):
    d = check(rm, order())
    assert d is ACCEPTED and d.accepted and bool(d)
    assert rm.open_order_count == 1
    assert rm.state.bucket_tokens[rm.venue_index["binance"]] == pytest.approx(1.0)


# ---- kill switch


def test_kill_switch_blocks_everything(rm):
    rec = rm.engage_kill()
    assert rec["rule"][0] == RiskRule.KILL_SWITCH and rec["action"][0] == RiskAction.ENGAGE_KILL_SWITCH
    assert rm.killed
    for o in (order(), order(side=-1, coid="c2"), order(venue="okx", coid="c3"),
              order(order_type=OrderType.MARKET, price=0.0, coid="c4"), order(size=0.001, coid="c5")):
        d = check(rm, o)
        assert_breach(d, RiskRule.KILL_SWITCH, 1.0, 0.0)
        assert d.action == RiskAction.REJECT_ORDER
    assert rm.open_order_count == 0
    rm.reset_kill()
    assert check(rm, order(coid="c6")).accepted


def test_kill_switch_beats_every_other_breach(rm):
    rm.engage_kill()
    # Stale, out of band and too large at once: the answer is still the kill switch.
    assert_breach(check(rm, order(price=150.0, size=100.0), age_ms=5000), RiskRule.KILL_SWITCH, 1.0, 0.0)


# ---- malformed orders


@pytest.mark.parametrize("kwargs, value", [
    (dict(side=0), 0.0), (dict(size=-1.0), -1.0), (dict(size=float("nan")), float("nan")),
    (dict(size=0.0), 0.0), (dict(price=-5.0), -5.0), (dict(price=float("inf")), float("inf")),
])
def test_malformed_orders_are_refused(rm, kwargs, value):
    assert_breach(check(rm, order(**kwargs)), RiskRule.MALFORMED_SIGNAL, value, 0.0)


def test_unknown_market_is_malformed(rm):
    assert_breach(check(rm, order(venue="kraken")), RiskRule.MALFORMED_SIGNAL, float("nan"), 0.0)


# ---- max order notional


def test_max_order_notional(rm):
    assert check(rm, order(size=5.0)).accepted  # 500 == limit
    assert_breach(check(rm, order(size=5.5, coid="c2")), RiskRule.MAX_ORDER_NOTIONAL, 550.0, 500.0)


def test_order_notional_of_a_crypto_quote_is_in_the_reference_quote(rm):
    # ETH/BTC at 0.05 BTC, BTC at 100 USDT: 60 ETH is 3 BTC = 300 USDT; 120 ETH would be 600.
    hold(rm, "ETH", -55.0, mark=5.0)  # so that buying ETH reduces the ETH position
    assert check(rm, order(symbol="ETH/BTC", price=0.05, size=60.0), mid=0.05).accepted
    d = check(rm, order(symbol="ETH/BTC", price=0.05, size=120.0, coid="c2"), mid=0.05)
    assert_breach(d, RiskRule.MAX_ORDER_NOTIONAL, 600.0, 500.0)


def test_market_orders_are_valued_at_mid(rm):
    d = check(rm, order(order_type=OrderType.MARKET, price=0.0, size=5.5), mid=100.0)
    assert_breach(d, RiskRule.MAX_ORDER_NOTIONAL, 550.0, 500.0)


# ---- max position


def test_max_position(rm):
    hold(rm, "BTC", 8.0)
    assert check(rm, order(size=2.0)).accepted  # 10 == limit
    assert_breach(check(rm, order(size=3.0, coid="c2")), RiskRule.MAX_POSITION, 11.0, 10.0)


def test_max_position_short_side_and_flip(rm):
    hold(rm, "BTC", 7.0)
    # Selling 4 from +7 leaves +3; selling 4 from -7.5 would leave -11.5.
    assert check(rm, order(side=-1, size=4.0)).accepted
    hold(rm, "BTC", -7.5)
    assert_breach(check(rm, order(side=-1, size=4.0, coid="c2")), RiskRule.MAX_POSITION, 11.5, 10.0)


def test_reducing_an_over_limit_position_passes(rm):
    hold(rm, "BTC", 12.0)
    assert check(rm, order(side=-1, size=1.0)).accepted  # 11 > 10 but better than 12
    assert_breach(check(rm, order(side=1, size=0.5, coid="c2")), RiskRule.MAX_POSITION, 12.5, 10.0)


def test_max_position_of_a_crypto_quote(rm):
    # Buying 5 ETH on ETH/BTC at 0.05 pays 0.25 BTC: from -9.875 BTC that is -10.125.
    hold(rm, "BTC", -9.75)
    assert check(rm, order(symbol="ETH/BTC", price=0.05, size=5.0), mid=0.05).accepted  # -> -10.0
    hold(rm, "BTC", -9.875)
    d = check(rm, order(symbol="ETH/BTC", price=0.05, size=5.0, coid="c2"), mid=0.05)
    assert_breach(d, RiskRule.MAX_POSITION, 10.125, 10.0)


def test_cash_assets_have_no_position_limit(rm):
    rm.set_position("USDT", 1e6)  # far above max_position_size, and fine: it is cash
    assert check(rm, order(size=1.0)).accepted


# ---- max exposure


def test_max_exposure(rm):
    hold(rm, "BTC", 8.0)
    hold(rm, "ETH", 9.0)
    rm.set_mark("ETH", 120.0)  # exposure 800 + 1080 = 1880
    assert check(rm, order(size=1.0)).accepted  # 900 + 1080 = 1980
    assert_breach(check(rm, order(size=2.0, coid="c2")), RiskRule.MAX_EXPOSURE, 2080.0, 2000.0)


def test_exposure_reducing_order_passes_over_the_limit(rm):
    hold(rm, "BTC", 10.0)
    hold(rm, "ETH", 10.0)
    rm.set_mark("ETH", 120.0)  # 2200 > 2000 already
    assert check(rm, order(side=-1, size=1.0)).accepted


def test_unknown_mark_is_a_breach_not_a_pass(rm):
    hold(rm, "ETH", 1.0)
    rm.set_mark("ETH", float("nan"))
    # Equity is unknown: the order is refused (fail safe) but the kill switch stays off.
    d = check(rm, order())
    assert d.rule == RiskRule.DAILY_LOSS and math.isnan(d.value)
    assert d.action == RiskAction.REJECT_ORDER and not rm.killed


# ---- max open orders


def test_max_open_orders(rm):
    for i in range(3):  # spaced 1 s apart so the rate limit stays out of it
        assert check(rm, order(coid=f"c{i}"), now=NOW + i * 10**9).accepted
    assert rm.open_order_count == 3
    assert_breach(check(rm, order(coid="c9"), now=NOW + 3 * 10**9), RiskRule.MAX_OPEN_ORDERS, 4.0, 3.0)
    # A terminal state frees the slot.
    done = advance(order(coid="c1"), OrderStatus.FILLED, filled=1.0, avg_price=100.0)
    rm.on_order_state(done)
    assert rm.open_order_count == 2
    assert check(rm, order(coid="c9"), now=NOW + 3 * 10**9).accepted


def test_open_orders_count_across_venues(rm):
    assert check(rm, order(coid="a")).accepted
    assert check(rm, order(coid="b", venue="okx")).accepted
    assert check(rm, order(coid="c", venue="okx")).accepted
    assert_breach(check(rm, order(coid="d", symbol="ETH/USDT")), RiskRule.MAX_OPEN_ORDERS, 4.0, 3.0)


def test_a_retry_with_the_same_id_reserves_nothing(rm):
    assert check(rm, order(coid="r")).accepted
    assert check(rm, order(coid="r")).accepted
    assert rm.open_order_count == 1


def test_restart_counts_orders_it_did_not_reserve(rm):
    rm.on_order_state(advance(order(coid="x"), OrderStatus.ACKED))
    assert rm.open_order_count == 1
    rm.on_order_state(advance(order(coid="x"), OrderStatus.CANCELLED))
    assert rm.open_order_count == 0


# ---- order rate


def test_order_rate_token_bucket(rm):
    release = lambda coid: rm.on_order_state(advance(order(coid=coid), OrderStatus.CANCELLED))  # noqa: E731
    assert check(rm, order(coid="a")).accepted
    assert check(rm, order(coid="b")).accepted
    release("a")
    release("b")
    # Bucket of 2 (2 orders/s) empty: this would be the 3rd order inside the window.
    assert_breach(check(rm, order(coid="c")), RiskRule.ORDER_RATE, 3.0, 2.0)
    # A check that does not reserve consumes nothing.
    assert_breach(check(rm, order(coid="c"), reserve=False), RiskRule.ORDER_RATE, 3.0, 2.0)
    # Other venues have their own bucket.
    assert check(rm, order(coid="d", venue="okx")).accepted
    # 0.25 s later half a token came back: still short.
    assert_breach(check(rm, order(coid="c"), now=NOW + 250_000_000), RiskRule.ORDER_RATE, 2.5, 2.0)
    # 0.5 s later one token is back.
    assert check(rm, order(coid="c"), now=NOW + 500_000_000).accepted


# ---- daily loss and drawdown


def test_daily_loss_engages_the_kill_switch(rm):
    assert rm.on_fill(fill(1, 100.0, 5.0)).accepted  # equity 0
    rm.mark("BTC/USDT", 81.0)  # equity -95
    assert check(rm, order(symbol="ETH/USDT")).accepted
    rm.mark("BTC/USDT", 79.0)  # equity -105
    d = check(rm, order(symbol="ETH/USDT", coid="c2"))
    assert_breach(d, RiskRule.DAILY_LOSS, 105.0, 100.0)
    assert d.action == RiskAction.ENGAGE_KILL_SWITCH
    assert d.record[0]["action"] == RiskAction.ENGAGE_KILL_SWITCH
    assert rm.killed
    assert_breach(check(rm, order(symbol="ETH/USDT", coid="c3")), RiskRule.KILL_SWITCH, 1.0, 0.0)


def test_daily_loss_from_a_fill_engages_the_kill_switch(rm):
    rm.on_fill(fill(1, 100.0, 5.0))
    rm.set_mark("BTC", 80.0)
    d = rm.on_fill(fill(1, 80.0, 0.0, fee=5.5))  # equity -100 - 5.5 fee
    assert_breach(d, RiskRule.DAILY_LOSS, 105.5, 100.0)
    assert d.action == RiskAction.ENGAGE_KILL_SWITCH and rm.killed
    assert rm.check_portfolio().accepted  # recorded once, not on every later fill or mark


def test_roll_day_restarts_the_daily_loss(rm):
    rm.on_fill(fill(1, 100.0, 5.0))
    rm.set_mark("BTC", 85.0)  # loss 75
    rm.roll_day()
    rm.set_mark("BTC", 70.0)  # 75 more today (150 since the start, within the 150 drawdown)
    assert rm.check_portfolio().accepted


def test_drawdown_from_the_peak(rm):
    rm.on_fill(fill(1, 100.0, 5.0))
    rm.set_mark("BTC", 140.0)
    assert rm.check_portfolio().accepted  # equity 200 is the new peak
    rm.set_mark("BTC", 120.0)  # drawdown 100, daily "loss" -100
    assert check(rm, order(symbol="ETH/USDT")).accepted
    rm.set_mark("BTC", 100.0)  # equity 0: drawdown 200, loss 0
    d = check(rm, order(symbol="ETH/USDT", coid="c2"))
    assert_breach(d, RiskRule.DRAWDOWN, 200.0, 150.0)
    assert d.action == RiskAction.ENGAGE_KILL_SWITCH and rm.killed


def test_fees_count_in_equity(rm):
    rm.on_fill(fill(1, 100.0, 1.0, fee=0.1))
    assert rm.equity == pytest.approx(-0.1)


# ---- stale book


def test_stale_book(rm):
    assert check(rm, order(), age_ms=1000.0).accepted  # == limit
    assert_breach(check(rm, order(coid="c2"), age_ms=1000.5), RiskRule.STALE_BOOK, 1000.5, 1000.0)


def test_invalid_or_empty_book_is_stale(rm):
    assert_breach(check(rm, order(), valid=False), RiskRule.STALE_BOOK, math.inf, 1000.0)
    assert_breach(check(rm, order(), mid=float("nan")), RiskRule.STALE_BOOK, math.inf, 1000.0)


def test_a_stale_book_does_not_move_the_mark(rm):
    check(rm, order(), mid=90.0, age_ms=5000)
    assert rm.state.marks[rm.asset_index["BTC"]] == 100.0
    check(rm, order(), mid=90.0)
    assert rm.state.marks[rm.asset_index["BTC"]] == 90.0


# ---- price band


def test_price_band(rm):
    assert check(rm, order(price=100.4)).accepted
    assert check(rm, order(side=-1, price=99.6, coid="c2")).accepted
    assert_breach(check(rm, order(price=100.6, coid="c3")), RiskRule.PRICE_BAND, 60.0, 50.0)
    assert_breach(check(rm, order(side=-1, price=99.3, coid="c4")), RiskRule.PRICE_BAND, 70.0, 50.0)


def test_market_orders_have_no_price_band(rm):
    assert check(rm, order(order_type=OrderType.MARKET, price=0.0)).accepted


# ---- self-trade guard


def test_self_trade_guard(rm):
    assert check(rm, order(side=-1, price=100.2, order_type=OrderType.LIMIT, coid="rest")).accepted
    no_reserve = dict(now=NOW + 10**9, reserve=False)
    assert check(rm, order(side=1, price=100.1, coid="c1"), **no_reserve).accepted  # does not reach our ask
    assert check(rm, order(side=1, price=100.3, venue="okx", coid="c2"), **no_reserve).accepted  # other venue
    assert check(rm, order(side=-1, price=100.3, coid="c3"), **no_reserve).accepted  # same side
    d = check(rm, order(side=1, price=100.3, coid="c4"), now=NOW + 10**9)
    assert_breach(d, RiskRule.SELF_TRADE, 100.2, 100.3)
    d = check(rm, order(side=1, price=0.0, order_type=OrderType.MARKET, coid="c5"), now=NOW + 10**9)
    assert_breach(d, RiskRule.SELF_TRADE, 100.2, 100.0)
    # Once the resting order is gone the guard lets it through.
    rm.on_order_state(advance(order(side=-1, price=100.2, order_type=OrderType.LIMIT, coid="rest"),
                              OrderStatus.CANCELLED))
    assert check(rm, order(side=1, price=100.3, coid="c4"), now=NOW + 2 * 10**9).accepted


def test_self_trade_guard_off():
    rm = RiskManager(risk_config(self_trade_guard=False), MARKETS, now_ns=NOW - 10**10)
    rm.set_mark("BTC", 100.0)
    assert check(rm, order(side=-1, price=100.2, order_type=OrderType.LIMIT, coid="rest")).accepted
    assert check(rm, order(side=1, price=100.3, coid="c4")).accepted


def test_resting_table_stays_packed_and_grows():
    rm = RiskManager(risk_config(max_open_orders=100, max_orders_per_s=1000.0), MARKETS,
                     now_ns=NOW - 10**10, resting_capacity=2)
    rm.set_mark("BTC", 100.0)
    for i in range(5):
        assert check(rm, order(side=-1, price=100.1 + i * 0.01, order_type=OrderType.LIMIT, coid=f"r{i}")).accepted
    assert rm.state.resting.shape[0] >= 5
    for i in (0, 2):
        rm.on_order_state(advance(order(coid=f"r{i}", order_type=OrderType.LIMIT), OrderStatus.CANCELLED))
    live = rm.state.resting[rm.state.resting[:, 0] >= 0]
    assert sorted(np.round(live[:, 3], 2)) == [100.11, 100.13, 100.14]
    assert (rm.state.resting[:3, 0] >= 0).all() and (rm.state.resting[3:, 0] < 0).all()
    assert_breach(check(rm, order(side=1, price=100.12, coid="b")), RiskRule.SELF_TRADE, 100.11, 100.12)


# ---- records and counters


def test_breach_record_and_counters(rm):
    d = check(rm, order(size=5.5, coid="Hxyz", signal_id=42))
    rec = d.record[0]
    assert decode_str(rec["client_order_id"]) == "Hxyz" and rec["signal_id"] == 42
    assert decode_str(rec["venue"]) == "binance" and decode_str(rec["symbol"]) == "BTC/USDT"
    assert rec["action"] == RiskAction.REJECT_ORDER
    check(rm, order(size=6.0, coid="b"))
    check(rm, order(price=120.0, coid="c"))
    assert rm.breach_counts() == {RiskRule.MAX_ORDER_NOTIONAL: 2, RiskRule.PRICE_BAND: 1}
    assert d.reason == "MAX_ORDER_NOTIONAL: 550 > 500"


def test_kernel_directly_is_pure_without_reserve(rm):
    st = rm.state
    before = [a.copy() for a in (st.open_orders, st.bucket_tokens, st.bucket_ns)]
    market = rm.market("binance", "BTC/USDT")[0]
    args = (st.fstate, st.istate, st.resting, market, 1, False, 100.0, 1.0, 100.0, NOW, True, NOW)
    assert check_order(*args, False) == (0, 0.0, 0.0)
    for a, b in zip(before, (st.open_orders, st.bucket_tokens, st.bucket_ns), strict=True):
        assert np.array_equal(a, b)
    assert check_order(*args, True) == (0, 0.0, 0.0)
    assert st.open_orders[rm.venue_index["binance"]] == 1 and st.bucket_tokens[0] == 1.0


def test_state_views_share_the_packed_arrays(rm):
    st = rm.state
    for view in (st.limits, st.account, st.positions, st.marks, st.cash, st.bucket_tokens):
        assert np.shares_memory(view, st.fstate)
    for view in (st.open_orders, st.bucket_ns, st.markets):
        assert np.shares_memory(view, st.istate)
    assert [tuple(r) for r in st.markets] == [rm.market(v, s)[1:] for v, s in MARKETS]
    assert st.cash.tolist() == [0.0, 1.0, 0.0]  # BTC, USDT, ETH
