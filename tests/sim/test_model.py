"""Market model: deterministic, valid books, correlated venues, consistent cross rates."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hftpipe.sim.model import MarketModel, ModelParams, make_instrument
from hftpipe.sim.venues import fixed_formatter

SYMS = ["BTC/USDT", "ETH/USDT", "ETH/BTC", "SOL/USDT"]


def _model(seed=1, **kw):
    specs = [make_instrument(v, s) for v in ("binance", "okx") for s in SYMS]
    return MarketModel(specs, seed=seed, params=ModelParams(**kw))


def _run(m: MarketModel, n: int, rate: float = 20000.0):
    out = []
    for k in range(n):
        m.advance(k / rate)
        b = m.books[k % len(m.books)]
        out.append(m.event(b))
    return out


def test_deterministic_for_a_seed():
    a, b, c = _model(7), _model(7), _model(8)
    assert _run(a, 3000) == _run(b, 3000)
    assert _run(_model(7), 3000) != _run(c, 3000)
    for x, y in zip(a.books, b.books, strict=True):
        assert x.bids() == y.bids() and x.asks() == y.asks()


def test_books_stay_valid_and_deep():
    m = _model(3, vol_scale=5.0)
    changes = _run(m, 40000)
    for b in m.books:
        b.check()
        assert 50 <= len(b.bid_px) <= 200 and 50 <= len(b.ask_px) <= 200
        assert 1 <= b.best_ask - b.best_bid <= b.smax
        # the touch follows the latent target
        assert b.best_bid - 1 <= b.target <= b.best_ask + 1
    sizes = [len(cb) + len(ca) for cb, ca in changes]
    assert 1 <= np.mean(sizes) <= 4 and min(sizes) >= 1


def test_changes_replay_to_the_book():
    """Applying the emitted changes to the initial book gives the model's book."""
    m = _model(5)
    books = {b.index: ({p: s for p, s in b.bids()}, {p: s for p, s in b.asks()}) for b in m.books}
    for k in range(20000):
        m.advance(k / 20000)
        b = m.books[(k * 7) % len(m.books)]
        cb, ca = m.event(b)
        for side, ch in ((books[b.index][0], cb), (books[b.index][1], ca)):
            for p, s in ch.items():
                if s == 0:
                    side.pop(p, None)
                else:
                    side[p] = s
    for b in m.books:
        assert books[b.index][0] == dict(b.bids()) and books[b.index][1] == dict(b.asks())


def test_venues_correlated_and_triangles_consistent():
    m = _model(11, vol_scale=20.0)
    mids = {b.index: [] for b in m.books}
    for k in range(1, 3001):
        m.advance(k * 0.1)  # 300 s of latent prices, sampled every 100 ms
        for b in m.books:
            mids[b.index].append(b.target * b.tick)
    r = {i: np.diff(np.log(v)) for i, v in mids.items()}
    idx = {(b.venue, b.symbol): b.index for b in m.books}
    same = np.corrcoef(r[idx[("binance", "BTC/USDT")]], r[idx[("okx", "BTC/USDT")]])[0, 1]
    cross = np.corrcoef(r[idx[("binance", "BTC/USDT")]], r[idx[("binance", "ETH/USDT")]])[0, 1]
    assert same > 0.95
    assert 0.5 < cross < 0.95
    # cross rate: ETH/BTC ~ ETH/USDT / BTC/USDT within the venue noise
    for v in ("binance", "okx"):
        eth = np.array(mids[idx[(v, "ETH/USDT")]])
        btc = np.array(mids[idx[(v, "BTC/USDT")]])
        ethbtc = np.array(mids[idx[(v, "ETH/BTC")]])
        dev = np.abs(np.log(ethbtc) - np.log(eth / btc)) * 1e4
        assert dev.max() < 3 * 2.0 + 1e-6  # three books' noise, each clipped at 2 bps
    # venues stay within a few bps of each other
    diff = np.abs(np.log(mids[idx[("binance", "BTC/USDT")]]) - np.log(mids[idx[("okx", "BTC/USDT")]])) * 1e4
    assert diff.max() < 2 * (1.0 + 2.0) + 1e-6


def test_instruments_and_formatting():
    spec = make_instrument("binance", "BTC/USDT:USDT", {"tick": "0.10"})
    assert (spec.symbol, spec.tick, spec.lot) == ("BTC/USDT", "0.10", "0.00001")
    unknown = make_instrument("x", "AVAX/USDT")
    assert float(unknown.tick) > 0 and float(unknown.lot) > 0
    with pytest.raises(ValueError):
        make_instrument("x", "NOPE/USDT")
    f = fixed_formatter("0.01", 8)
    assert f(6000001) == "60000.01000000" and f(1) == "0.01000000" and f(0) == "0.00000000"
    assert fixed_formatter("0.10", 2)(600003) == "60000.30"
    assert fixed_formatter("1", 0)(813) == "813"
    with pytest.raises(ValueError):
        fixed_formatter("0.001", 2)
    m = _model(1)
    b = m.books[0]
    bids, asks = b.to_arrays(5)
    assert bids.shape == (5, 2) and bids[0, 0] == b.price(b.best_bid) and math.isfinite(asks[0, 1])


def test_place_touch_and_pin():
    m = _model(2)
    b = m.book("binance", "BTC/USDT")
    bid, ask = b.best_bid - 500, b.best_bid - 497
    cb, ca = m.place_touch(b, bid, ask, ask_size=12345)
    b.pinned = True
    assert b.best_bid == bid and b.best_ask == ask and b.ask_sz[ask] == 12345
    assert all(s == 0 for p, s in cb.items() if p > bid)
    for _ in range(2000):
        m.event(b)
    assert b.best_bid == bid and b.best_ask == ask and b.ask_sz[ask] == 12345
    b.pinned = False
    m.realign(b)
    assert b.best_bid - 1 <= b.target <= b.best_ask + 1
    b.check()
