"""Position tracker: hand-computed average cost and PnL; rebuild from the FILL journal == live state."""

import os
import random

import numpy as np
import pytest

from hftpipe.events import FILL_DTYPE, POSITION_DTYPE, decode_str
from hftpipe.execution.positions import STATE_FIELDS, PositionTracker, rebuild_from_journal
from hftpipe.shm.journal import JournalWriter
from tests.execution.conftest import fill


def test_increase_partial_close_flip_and_flat():
    pt = PositionTracker()
    pt.apply_fill(fill(1, 100.0, 2.0, fee=0.2))
    p = pt.position("binance", "BTC")
    assert (p.balance, p.avg_cost, p.realized_pnl, p.fees, p.cost_quote) == (2.0, 100.0, 0.0, 0.2, "USDT")

    pt.apply_fill(fill(1, 130.0, 1.0))  # increase: (200 + 130) / 3
    p = pt.position("binance", "BTC")
    assert (p.balance, p.avg_cost, p.realized_pnl) == (3.0, 110.0, 0.0)

    pt.apply_fill(fill(-1, 120.0, 1.5))  # partial close: 1.5 * (120 - 110)
    p = pt.position("binance", "BTC")
    assert (p.balance, p.avg_cost, p.realized_pnl) == (1.5, 110.0, 15.0)

    pt.apply_fill(fill(-1, 90.0, 3.0))  # flip: close 1.5 * (90 - 110) = -30, open -1.5 at 90
    p = pt.position("binance", "BTC")
    assert (p.balance, p.avg_cost, p.realized_pnl) == (-1.5, 90.0, -15.0)

    pt.apply_fill(fill(1, 80.0, 0.5))  # short cover: 0.5 * (90 - 80)
    p = pt.position("binance", "BTC")
    assert (p.balance, p.avg_cost, p.realized_pnl) == (-1.0, 90.0, -10.0)

    pt.apply_fill(fill(1, 85.0, 1.0, fee=0.085))  # flat: 1 * (90 - 85)
    p = pt.position("binance", "BTC")
    assert (p.balance, p.avg_cost, p.realized_pnl, p.cost_quote) == (0.0, 0.0, -5.0, "")
    assert p.fees == pytest.approx(0.285)

    cash = pt.position("binance", "USDT")
    flows = -200.0 - 130.0 + 180.0 + 270.0 - 40.0 - 85.0
    assert cash.balance == pytest.approx(flows - 0.285)
    # Flat again: all the PnL is in the cash, net of fees.
    assert cash.balance == pytest.approx(p.realized_pnl - p.fees)


def test_unrealized_pnl_and_exposure_at_the_mid():
    pt = PositionTracker()
    pt.apply_fill(fill(1, 100.0, 2.0))
    pt.apply_fill(fill(1, 130.0, 1.0))
    pt.apply_fill(fill(-1, 120.0, 1.5))  # 1.5 @ 110 left
    pt.apply_fill(fill(-1, 2000.0, 0.5, symbol="ETH/USDT", venue="okx"))  # short 0.5 ETH on okx
    recs = pt.snapshot({("binance", "BTC/USDT"): 120.0, ("okx", "ETH/USDT"): 2100.0})
    assert recs.dtype == POSITION_DTYPE
    by_key = {(decode_str(r["venue"]), decode_str(r["asset"])): r for r in recs}
    btc = by_key[("binance", "BTC")]
    assert (btc["balance"], btc["avg_cost"], btc["realized_pnl"]) == (1.5, 110.0, 15.0)
    assert btc["unrealized_pnl"] == pytest.approx(15.0) and btc["exposure"] == pytest.approx(180.0)
    eth = by_key[("okx", "ETH")]
    assert eth["unrealized_pnl"] == pytest.approx(-50.0) and eth["exposure"] == pytest.approx(1050.0)
    usdt = by_key[("binance", "USDT")]
    assert usdt["unrealized_pnl"] == 0.0 and usdt["exposure"] == 0.0  # cash carries no cost
    # The same pair on another venue marks a slot whose own venue has no book.
    unrealized, _ = pt.marked({("okx", "BTC/USDT"): 100.0, ("okx", "ETH/USDT"): 2000.0})
    assert unrealized[pt.keys().index(("binance", "BTC"))] == pytest.approx(-15.0)
    # No mark at all: NaN, not a made-up zero.
    unrealized, exposure = pt.marked({})
    assert np.isnan(unrealized[pt.keys().index(("binance", "BTC"))])


def test_fee_in_the_base_asset():
    pt = PositionTracker()
    pt.apply_fill(fill(1, 100.0, 1.0, fee=0.001, fee_asset="BTC"))  # Binance takes buy fees in base
    p = pt.position("binance", "BTC")
    assert p.balance == pytest.approx(0.999) and p.fees == pytest.approx(0.1) and p.avg_cost == 100.0


def test_fee_in_a_third_asset_leaves_its_balance():
    pt = PositionTracker()
    pt.apply_fill(fill(1, 100.0, 1.0, fee=0.01, fee_asset="BNB"))
    assert pt.position("binance", "BNB").balance == -0.01
    assert pt.position("binance", "BTC").fees == 0.0


def test_triangular_cycle_books_the_pnl_in_cash():
    pt = PositionTracker()
    pt.apply_fill(fill(1, 50000.0, 1.0))  # BTC/USDT: buy 1 BTC
    pt.apply_fill(fill(1, 0.05, 20.0, symbol="ETH/BTC"))  # ETH/BTC: pay the BTC for 20 ETH
    assert pt.position("binance", "BTC").balance == 0.0
    eth = pt.position("binance", "ETH")
    assert (eth.balance, eth.avg_cost, eth.cost_quote) == (20.0, 0.05, "BTC")
    pt.apply_fill(fill(-1, 2510.0, 20.0, symbol="ETH/USDT"))  # sold in another quote: at cost
    eth = pt.position("binance", "ETH")
    assert (eth.balance, eth.realized_pnl, eth.cost_quote) == (0.0, 0.0, "")
    assert pt.position("binance", "USDT").balance == pytest.approx(200.0)


def test_flip_through_another_quote_takes_that_price():
    pt = PositionTracker()
    pt.apply_fill(fill(1, 0.05, 10.0, symbol="ETH/BTC"))
    pt.apply_fill(fill(-1, 2500.0, 15.0, symbol="ETH/USDT"))
    eth = pt.position("binance", "ETH")
    assert (eth.balance, eth.avg_cost, eth.cost_quote) == (-5.0, 2500.0, "USDT")


def test_slots_are_per_venue():
    pt = PositionTracker()
    pt.apply_fill(fill(1, 100.0, 1.0, venue="binance"))
    pt.apply_fill(fill(-1, 101.0, 1.0, venue="okx"))
    assert pt.position("binance", "BTC").balance == 1.0 and pt.position("okx", "BTC").balance == -1.0
    assert pt.keys() == [("binance", "BTC"), ("binance", "USDT"), ("okx", "BTC"), ("okx", "USDT")]


def random_fills(n, seed=5):
    rng = random.Random(seed)
    markets = [("binance", "BTC/USDT", 100.0), ("okx", "BTC/USDT", 100.0), ("binance", "ETH/BTC", 0.05),
               ("binance", "ETH/USDT", 5.0), ("bybit", "SOL/USDT", 20.0)]
    out = []
    for k in range(n):
        venue, symbol, px = rng.choice(markets)
        price = px * (1 + rng.uniform(-0.05, 0.05))
        size = round(rng.uniform(0.001, 3.0), rng.choice([3, 8]))
        fee_asset = rng.choice([symbol.split("/")[1], symbol.split("/")[0], "BNB"])
        out.append(fill(rng.choice([1, -1]), price, size, fee=price * size * 1e-3, venue=venue, symbol=symbol,
                        fee_asset=fee_asset, coid=f"c{k}"))
    return out


def test_rebuild_from_the_journal_is_byte_identical(tmp_path):
    fills = random_fills(3000)
    live = PositionTracker(capacity=2)  # grows on the way: growth must not change anything either
    writer = JournalWriter.open(tmp_path, "fills", FILL_DTYPE, roll_bytes=65536)  # several files
    for rec in fills:
        writer.append(rec)
        live.apply_fill(rec)
    writer.close()
    rebuilt = rebuild_from_journal(tmp_path)
    assert rebuilt.keys() == live.keys()
    assert rebuilt.fills_applied == live.fills_applied == 3000
    a, b = live.state_arrays(), rebuilt.state_arrays()
    for name in STATE_FIELDS:
        assert a[name].tobytes() == b[name].tobytes(), name
    # Snapshots agree too (minus their clocks).
    mids = {("binance", "BTC/USDT"): 101.0, ("binance", "ETH/BTC"): 0.051, ("bybit", "SOL/USDT"): 19.0}
    s1, s2 = live.snapshot(mids, ts_ns=1), rebuilt.snapshot(mids, ts_ns=1)
    s1["wall_ns"] = s2["wall_ns"] = 0
    assert s1.tobytes() == s2.tobytes()
    # The rebuild's private reader leaves no cursor behind (it would block journal pruning).
    assert os.listdir(tmp_path / "cursors") == []


def test_rebuild_from_records_in_memory():
    fills = random_fills(200, seed=9)
    live = PositionTracker()
    for rec in fills:
        live.apply_fill(rec)
    rebuilt = PositionTracker.rebuild(np.concatenate(fills))
    for name in STATE_FIELDS:
        assert live.state_arrays()[name].tobytes() == rebuilt.state_arrays()[name].tobytes()
