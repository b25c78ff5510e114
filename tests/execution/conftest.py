"""Shared builders for the execution tests: a small risk config with round numbers, orders, fills."""

import numpy as np
import pytest

from hftpipe.config.schema import RiskConfig
from hftpipe.events import EventKind, Liquidity, OrderType, encode_str, new_record
from hftpipe.execution.orders import new_order
from hftpipe.execution.risk import RiskManager

NOW = 10**12  # monotonic ns used as "now" in the risk tests
MARKETS = [("binance", "BTC/USDT"), ("okx", "BTC/USDT"), ("binance", "ETH/USDT"), ("binance", "ETH/BTC")]


def risk_config(**overrides):
    values = dict(max_position_size=10.0, max_exposure=2000.0, max_order_notional=500.0, max_open_orders=3,
                  max_orders_per_s=2.0, max_daily_loss=100.0, max_drawdown=150.0, stale_book_ms=1000.0,
                  price_band_bps=50.0, self_trade_guard=True)
    values.update(overrides)
    return RiskConfig(**values)


@pytest.fixture
def rm():
    m = RiskManager(risk_config(), MARKETS, now_ns=NOW - 10**10)
    m.set_mark("BTC", 100.0)
    m.set_mark("ETH", 100.0)
    return m


def order(side=1, price=100.0, size=1.0, venue="binance", symbol="BTC/USDT", order_type=OrderType.IOC,
          coid="c1", signal_id=7):
    return new_order(coid, venue, symbol, side, order_type, price, size, signal_id=signal_id)


def fill(side, price, size, fee=0.0, venue="binance", symbol="BTC/USDT", fee_asset="USDT", coid="c1", n=0):
    rec = new_record(EventKind.FILL)
    rec["fill_id"] = encode_str(f"{coid}.{n}", 40)
    rec["client_order_id"] = encode_str(coid, 36)
    rec["venue"] = encode_str(venue, 12)
    rec["symbol"] = encode_str(symbol, 20)
    rec["fee_asset"] = encode_str(fee_asset, 12)
    rec["side"] = side
    rec["liquidity"] = int(Liquidity.TAKER)
    rec["price"] = price
    rec["size"] = size
    rec["fee"] = fee
    return rec


def levels(*rows):
    """Best-first (depth, 2) levels, padded with zero rows like a ring snapshot."""
    out = np.zeros((max(len(rows), 1) + 2, 2))
    for i, (p, q) in enumerate(rows):
        out[i] = (p, q)
    return out


