"""Book kernels: hand-computed cases and hypothesis properties against a plain dict book."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hftpipe.book import (
    apply_deltas,
    apply_level,
    apply_snapshot,
    apply_update,
    apply_updates_batch,
    best_ask,
    best_bid,
    copy_top,
    is_crossed,
    microprice,
    mid_price,
    new_side,
    notional_at_depth,
    spread,
    spread_bps,
    walk_depth,
    walk_depth_quote,
    walk_levels,
    walk_levels_quote,
)


def levels(*rows):
    return np.array(rows, dtype=np.float64).reshape(-1, 2)


def best_first(side, n):
    """A book side's live rows in best-first order (sides are stored worst first)."""
    return side[:n][::-1]


def as_rows(side, n):
    return [tuple(r) for r in best_first(side, n)]


def test_snapshot_sorts_skips_zero_and_last_duplicate_wins():
    bids = new_side(8)
    n = apply_snapshot(bids, levels([99, 1], [100, 2], [98, 3], [101, 0], [99, 5]), True)
    assert n == 3
    np.testing.assert_array_equal(best_first(bids, n), levels([100, 2], [99, 5], [98, 3]))
    asks = new_side(8)
    n = apply_snapshot(asks, levels([102, 1], [101, 2]), False)
    np.testing.assert_array_equal(best_first(asks, n), levels([101, 2], [102, 1]))


def test_delete_top_exposes_next_and_absent_delete_is_noop():
    asks = new_side(8)
    n = apply_snapshot(asks, levels([101, 1], [102, 2], [103, 3]), False)
    n = apply_level(asks, n, 101.0, 0.0, False)
    assert n == 2 and best_ask(asks, n) == 102.0
    assert apply_level(asks, n, 150.0, 0.0, False) == 2
    np.testing.assert_array_equal(best_first(asks, 2), levels([102, 2], [103, 3]))


def test_capacity_overflow_drops_worst_level():
    bids = new_side(3)
    n = apply_snapshot(bids, levels([100, 1], [99, 1], [98, 1]), True)
    n = apply_level(bids, n, 99.5, 7.0, True)
    assert n == 3
    np.testing.assert_array_equal(best_first(bids, 3), levels([100, 1], [99.5, 7], [99, 1]))
    # Worse than everything kept: beyond capacity, ignored.
    assert apply_level(bids, n, 90.0, 1.0, True) == 3
    np.testing.assert_array_equal(best_first(bids, 3), levels([100, 1], [99.5, 7], [99, 1]))


@pytest.mark.parametrize("price,size", [(float("nan"), 1.0), (100.0, float("nan")), (float("inf"), 1.0),
                                        (-1.0, 1.0), (0.0, 1.0), (100.0, -0.5), (100.0, float("inf"))])
def test_invalid_input_rejected_and_book_unchanged(price, size):
    bids = new_side(8)
    n = apply_snapshot(bids, levels([100, 1], [99, 2]), True)
    before = bids.copy()
    assert apply_level(bids, n, price, size, True) == -1
    assert apply_deltas(bids, n, levels([99.5, 1.0], [price, size]), True) == -1
    assert apply_snapshot(bids, levels([1, 1], [price, size]), True) == -1
    np.testing.assert_array_equal(bids, before)


def test_top_of_book_measures():
    bids, asks = new_side(4), new_side(4)
    nb = apply_snapshot(bids, levels([100, 3], [99, 1]), True)
    na = apply_snapshot(asks, levels([101, 1], [102, 5]), False)
    assert best_bid(bids, nb) == 100 and best_ask(asks, na) == 101
    assert mid_price(bids, nb, asks, na) == 100.5
    assert spread(bids, nb, asks, na) == 1.0
    assert spread_bps(bids, nb, asks, na) == pytest.approx(1.0 / 100.5 * 1e4)
    # More bid size at the touch pushes the microprice toward the ask.
    assert microprice(bids, nb, asks, na) == pytest.approx((100 * 1 + 101 * 3) / 4)
    assert not is_crossed(bids, nb, asks, na)
    nb = apply_level(bids, nb, 101.0, 1.0, True)
    assert is_crossed(bids, nb, asks, na)
    assert math.isnan(best_bid(bids, 0)) and math.isnan(mid_price(bids, 0, asks, na))
    assert not is_crossed(bids, 0, asks, na)


def test_walk_depth_hand_computed():
    asks = new_side(4)
    na = apply_snapshot(asks, levels([100, 1], [101, 2], [103, 1]), False)
    avg, filled, used = walk_depth(asks, na, 2.5)
    assert (filled, used) == (2.5, 2) and avg == pytest.approx((100 * 1 + 101 * 1.5) / 2.5)
    avg, filled, used = walk_depth(asks, na, 10.0)  # depth exhausted: partial
    assert (filled, used) == (4.0, 3) and avg == pytest.approx((100 + 202 + 103) / 4)
    avg, filled, used = walk_depth(asks, 0, 1.0)
    assert math.isnan(avg) and filled == 0.0 and used == 0
    avg, base, used = walk_depth_quote(asks, na, 150.5)
    assert used == 2 and base == pytest.approx(1 + 50.5 / 101) and avg == pytest.approx(150.5 / base)
    assert notional_at_depth(asks, na, 2) == pytest.approx(100 + 202)


def test_copy_top_zero_fills():
    bids = new_side(8)
    n = apply_snapshot(bids, levels([100, 1], [99, 2]), True)
    out = np.full((4, 2), 7.0)
    assert copy_top(bids, n, out, 4) == 2
    np.testing.assert_array_equal(out, levels([100, 1], [99, 2], [0, 0], [0, 0]))


# ---- properties against a reference book -----------------------------------------------------

class RefBook:
    """The simplest correct book: a dict price -> size."""

    def __init__(self, is_bid):
        self.is_bid = is_bid
        self.levels = {}

    def snapshot(self, rows):
        self.levels = {}
        for p, s in rows:
            if s == 0:
                self.levels.pop(p, None)
            else:
                self.levels[p] = s

    def apply(self, rows):
        for p, s in rows:
            if s == 0:
                self.levels.pop(p, None)
            else:
                self.levels[p] = s

    def sorted(self):
        return sorted(self.levels.items(), reverse=self.is_bid)


prices = st.integers(min_value=1, max_value=60).map(lambda t: 100.0 + t * 0.5)
sizes = st.one_of(st.just(0.0), st.integers(min_value=1, max_value=1000).map(lambda q: q / 100))
rows = st.lists(st.tuples(prices, sizes), max_size=12)


@settings(max_examples=150, deadline=None)
@given(is_bid=st.booleans(), snap=rows, deltas=st.lists(rows, max_size=25))
def test_kernel_book_equals_reference_book(is_bid, snap, deltas):
    side = new_side(128)
    ref = RefBook(is_bid)
    n = apply_snapshot(side, levels(*snap) if snap else np.zeros((0, 2)), is_bid)
    ref.snapshot(snap)
    assert as_rows(side, n) == ref.sorted()
    for msg in deltas:
        n = apply_deltas(side, n, levels(*msg) if msg else np.zeros((0, 2)), is_bid)
        ref.apply(msg)
        assert as_rows(side, n) == ref.sorted()


@settings(max_examples=100, deadline=None)
@given(is_bid=st.booleans(), snap=rows, deltas=st.lists(rows, max_size=25),
       capacity=st.integers(min_value=1, max_value=6))
def test_truncated_book_keeps_a_prefix_of_the_best_levels(is_bid, snap, deltas, capacity):
    # With a small capacity, what is kept is always ordered and every kept level is a real
    # level with its latest size; the best level is exact as long as nothing better was dropped.
    side = new_side(capacity)
    ref = RefBook(is_bid)
    n = apply_snapshot(side, levels(*snap) if snap else np.zeros((0, 2)), is_bid)
    ref.snapshot(snap)
    for msg in deltas:
        n = apply_deltas(side, n, levels(*msg) if msg else np.zeros((0, 2)), is_bid)
        ref.apply(msg)
        kept = as_rows(side, n)
        assert n <= capacity
        assert kept == sorted(kept, reverse=is_bid)
        for p, s in kept:
            assert ref.levels.get(p) == s


@settings(max_examples=150, deadline=None)
@given(snap=st.lists(st.tuples(prices, st.integers(min_value=1, max_value=1000).map(lambda q: q / 100)),
                     min_size=1, max_size=15),
       size=st.integers(min_value=1, max_value=5000).map(lambda q: q / 100), is_bid=st.booleans())
def test_walk_depth_matches_reference(snap, size, is_bid):
    side = new_side(64)
    n = apply_snapshot(side, levels(*snap), is_bid)
    ref = RefBook(is_bid)
    ref.snapshot(snap)
    remaining, notional, used = size, 0.0, 0
    for p, s in ref.sorted():
        if remaining <= 0:
            break
        take = min(remaining, s)
        notional += take * p
        remaining -= take
        used += 1
    filled = size - max(remaining, 0.0)
    avg, got_filled, got_used = walk_depth(side, n, size)
    assert got_used == used
    assert got_filled == pytest.approx(filled, rel=1e-12)
    assert avg == pytest.approx(notional / filled, rel=1e-12)
    # Never more than the displayed depth.
    assert got_filled <= sum(s for _, s in ref.sorted()) + 1e-9


def test_apply_update_is_all_or_nothing_across_sides():
    bids, asks = new_side(8), new_side(8)
    nb = apply_snapshot(bids, levels([100, 1], [99, 2]), True)
    na = apply_snapshot(asks, levels([101, 1]), False)
    before = (bids.copy(), asks.copy())
    assert apply_update(bids, nb, asks, na, levels([99.5, 1]), levels([101, float("nan")])) == (-1, -1)
    np.testing.assert_array_equal(bids, before[0])
    np.testing.assert_array_equal(asks, before[1])
    nb, na = apply_update(bids, nb, asks, na, levels([99.5, 1], [100, 0]), levels([100.5, 3]))
    assert as_rows(bids, nb) == [(99.5, 1), (99, 2)] and as_rows(asks, na) == [(100.5, 3), (101, 1)]


@settings(max_examples=60, deadline=None)
@given(snap_b=rows, snap_a=rows, msgs=st.lists(st.tuples(rows, rows), max_size=20))
def test_batch_replay_equals_message_by_message(snap_b, snap_a, msgs):
    def fresh():
        b, a = new_side(128), new_side(128)
        return b, apply_snapshot(b, levels(*snap_b) if snap_b else np.zeros((0, 2)), True), a, \
            apply_snapshot(a, levels(*snap_a) if snap_a else np.zeros((0, 2)), False)

    b1, nb1, a1, na1 = fresh()
    for mb, ma in msgs:
        nb1, na1 = apply_update(b1, nb1, a1, na1, levels(*mb) if mb else np.zeros((0, 2)),
                                levels(*ma) if ma else np.zeros((0, 2)))
    b2, nb2, a2, na2 = fresh()
    flat, bid_end, ask_end = [], [], []
    for mb, ma in msgs:
        flat += mb
        bid_end.append(len(flat))
        flat += ma
        ask_end.append(len(flat))
    nb2, na2, skipped = apply_updates_batch(b2, nb2, a2, na2, levels(*flat) if flat else np.zeros((0, 2)),
                                            np.array(bid_end, dtype=np.int64), np.array(ask_end, dtype=np.int64))
    assert skipped == 0
    assert as_rows(b1, nb1) == as_rows(b2, nb2) and as_rows(a1, na1) == as_rows(a2, na2)


def test_walk_levels_on_best_first_snapshot_matches_walk_depth_on_book():
    asks = new_side(8)
    na = apply_snapshot(asks, levels([100, 1], [101, 2], [103, 1]), False)
    top = np.zeros((5, 2))
    m = copy_top(asks, na, top, 5)
    assert walk_levels(top, m, 2.5) == walk_depth(asks, na, 2.5)
    assert walk_levels_quote(top, m, 150.5) == walk_depth_quote(asks, na, 150.5)
