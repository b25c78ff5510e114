"""Book kernels against the simplest correct book (a dict price -> size), on random message streams."""

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hftpipe.book import (
    apply_deltas,
    apply_level,
    apply_snapshot,
    apply_update,
    apply_updates_batch,
    copy_top,
    new_side,
    notional_at_depth,
    walk_depth,
    walk_depth_quote,
)

BIG = 256  # more than any stream below can create: nothing is ever truncated


class RefBook:
    """One side as a dict price -> size; with a capacity, it drops the worst level like the kernels."""

    def __init__(self, is_bid, capacity=None):
        self.is_bid = is_bid
        self.capacity = capacity
        self.levels = {}

    def worse(self, a, b):
        return a < b if self.is_bid else a > b

    def set(self, price, size):
        if size == 0:
            self.levels.pop(price, None)
        elif price in self.levels or self.capacity is None or len(self.levels) < self.capacity:
            self.levels[price] = size
        else:
            worst = min(self.levels) if self.is_bid else max(self.levels)
            if self.worse(worst, price):  # else the new level is the worst: ignored
                del self.levels[worst]
                self.levels[price] = size

    def snapshot(self, rows):
        self.levels = {}
        for p, s in rows:
            self.set(p, s)

    def apply(self, rows):
        for p, s in rows:
            self.set(p, s)

    def sorted(self):
        return sorted(self.levels.items(), reverse=self.is_bid)


def arr(rows):
    return np.array(rows, dtype=np.float64).reshape(-1, 2)


def as_rows(side, n):
    return [tuple(r) for r in side[:n][::-1]]


# A narrow price grid so streams hit the same levels again (updates, deletes, re-inserts).
prices = st.integers(min_value=1, max_value=60).map(lambda t: 100.0 + t * 0.5)
pos_sizes = st.integers(min_value=1, max_value=1000).map(lambda q: q / 100)
sizes = st.one_of(st.just(0.0), pos_sizes)
rows = st.lists(st.tuples(prices, sizes), max_size=12)
streams = st.lists(rows, max_size=25)
bad_numbers = st.sampled_from([float("nan"), float("inf"), -float("inf"), -1.0])


@settings(max_examples=150, deadline=None)
@given(is_bid=st.booleans(), snap=rows, deltas=streams)
def test_side_equals_reference_after_every_message(is_bid, snap, deltas):
    side = new_side(BIG)
    ref = RefBook(is_bid)
    n = apply_snapshot(side, arr(snap), is_bid)
    ref.snapshot(snap)
    assert as_rows(side, n) == ref.sorted()
    for msg in deltas:
        n = apply_deltas(side, n, arr(msg), is_bid)
        ref.apply(msg)
        assert as_rows(side, n) == ref.sorted()


@settings(max_examples=100, deadline=None)
@given(is_bid=st.booleans(), snap=rows, deltas=st.lists(st.tuples(prices, sizes), max_size=60))
def test_level_by_level_equals_reference(is_bid, snap, deltas):
    side = new_side(BIG)
    ref = RefBook(is_bid)
    n = apply_snapshot(side, arr(snap), is_bid)
    ref.snapshot(snap)
    for p, s in deltas:
        n = apply_level(side, n, p, s, is_bid)
        ref.set(p, s)
        assert as_rows(side, n) == ref.sorted()


@settings(max_examples=60, deadline=None)
@given(is_bid=st.booleans(), ticks=st.sets(st.integers(min_value=0, max_value=400), min_size=30, max_size=250),
       deltas=st.lists(st.tuples(st.integers(min_value=-20, max_value=420), sizes), max_size=80),
       data=st.data())
def test_deep_side_equals_reference(is_bid, ticks, deltas, data):
    # Deep enough that a search runs both near the touch and far from it, where the kernels
    # search differently; the touch also moves through the book as levels are deleted.
    snap = [(100.0 + t * 0.25, data.draw(pos_sizes)) for t in sorted(ticks, reverse=is_bid)]
    side = new_side(BIG + 200)
    ref = RefBook(is_bid)
    n = apply_snapshot(side, arr(snap), is_bid)
    ref.snapshot(snap)
    near = [p for p, _ in ref.sorted()[:40]]
    for t, s in deltas:
        # Half the changes hit the levels nearest the touch, as on a real venue.
        p = data.draw(st.sampled_from(near)) if data.draw(st.booleans()) else 100.0 + t * 0.25
        n = apply_level(side, n, p, s, is_bid)
        ref.set(p, s)
        assert as_rows(side, n) == ref.sorted()


@settings(max_examples=100, deadline=None)
@given(is_bid=st.booleans(), ticks=st.sets(st.integers(min_value=1, max_value=500), max_size=40),
       data=st.data())
def test_snapshot_in_any_order_equals_reference(is_bid, ticks, data):
    # Sorted snapshots take a copy path, unsorted ones the insert path: both must agree.
    snap = [(100.0 + t * 0.25, data.draw(sizes)) for t in ticks]
    ref = RefBook(is_bid)
    ref.snapshot(snap)
    best_first = sorted(snap, reverse=is_bid)
    for order in (best_first, best_first[::-1], data.draw(st.permutations(snap))):
        side = new_side(BIG)
        n = apply_snapshot(side, arr(order), is_bid)
        assert as_rows(side, n) == ref.sorted()


@settings(max_examples=100, deadline=None)
@given(snap_b=rows, snap_a=rows, msgs=st.lists(st.tuples(rows, rows), max_size=20))
def test_two_sided_updates_and_batch_replay_equal_reference(snap_b, snap_a, msgs):
    bids, asks = new_side(BIG), new_side(BIG)
    nb, na = apply_snapshot(bids, arr(snap_b), True), apply_snapshot(asks, arr(snap_a), False)
    ref_b, ref_a = RefBook(True), RefBook(False)
    ref_b.snapshot(snap_b)
    ref_a.snapshot(snap_a)
    seed = bids.copy(), nb, asks.copy(), na
    for mb, ma in msgs:
        nb, na = apply_update(bids, nb, asks, na, arr(mb), arr(ma))
        ref_b.apply(mb)
        ref_a.apply(ma)
        assert as_rows(bids, nb) == ref_b.sorted() and as_rows(asks, na) == ref_a.sorted()
    # The same stream in one batch call ends in the same book.
    b2, nb2, a2, na2 = seed
    flat, bid_end, ask_end = [], [], []
    for mb, ma in msgs:
        flat += mb
        bid_end.append(len(flat))
        flat += ma
        ask_end.append(len(flat))
    nb2, na2, skipped = apply_updates_batch(b2, nb2, a2, na2, arr(flat), np.array(bid_end, dtype=np.int64),
                                            np.array(ask_end, dtype=np.int64))
    assert skipped == 0
    assert as_rows(b2, nb2) == ref_b.sorted() and as_rows(a2, na2) == ref_a.sorted()


@settings(max_examples=100, deadline=None)
@given(is_bid=st.booleans(), snap=rows, deltas=streams, data=st.data())
def test_a_bad_row_anywhere_rejects_the_message_and_changes_nothing(is_bid, snap, deltas, data):
    side = new_side(BIG)
    n = apply_snapshot(side, arr(snap), is_bid)
    for msg in deltas:
        bad = list(msg)
        row = data.draw(st.tuples(prices, pos_sizes))
        row = (data.draw(bad_numbers), row[1]) if data.draw(st.booleans()) else (row[0], data.draw(bad_numbers))
        bad.insert(data.draw(st.integers(min_value=0, max_value=len(msg))), row)
        before = side.copy()
        assert apply_deltas(side, n, arr(bad), is_bid) == -1
        assert apply_snapshot(side, arr(bad), is_bid) == -1
        np.testing.assert_array_equal(side, before)
        n = apply_deltas(side, n, arr(msg), is_bid)
        assert n >= 0


# ---- truncation ------------------------------------------------------------------------------

@settings(max_examples=150, deadline=None)
@given(is_bid=st.booleans(), snap=rows, deltas=streams, capacity=st.integers(min_value=1, max_value=6))
def test_truncated_side_equals_a_reference_that_drops_the_worst(is_bid, snap, deltas, capacity):
    side = new_side(capacity)
    ref = RefBook(is_bid, capacity)
    n = apply_snapshot(side, arr(snap), is_bid)
    ref.snapshot(snap)
    assert as_rows(side, n) == ref.sorted()
    for msg in deltas:
        n = apply_deltas(side, n, arr(msg), is_bid)
        ref.apply(msg)
        assert n <= capacity and as_rows(side, n) == ref.sorted()


@settings(max_examples=100, deadline=None)
@given(is_bid=st.booleans(), snap=st.lists(st.tuples(prices, pos_sizes), max_size=20),
       deltas=st.lists(st.lists(st.tuples(prices, pos_sizes), max_size=12), max_size=15),
       capacity=st.integers(min_value=1, max_value=6))
def test_without_deletes_truncation_keeps_exactly_the_best_levels(is_bid, snap, deltas, capacity):
    # Deletes can expose levels a truncated side never kept; without them, it must hold exactly
    # the best ``capacity`` levels of the full book, sizes up to date.
    side = new_side(capacity)
    full = RefBook(is_bid)
    n = apply_snapshot(side, arr(snap), is_bid)
    full.snapshot(snap)
    assert as_rows(side, n) == full.sorted()[:capacity]
    for msg in deltas:
        n = apply_deltas(side, n, arr(msg), is_bid)
        full.apply(msg)
        assert as_rows(side, n) == full.sorted()[:capacity]


# ---- reading the book ------------------------------------------------------------------------

def ref_walk(levels, size):
    remaining, notional, filled, used = size, 0.0, 0.0, 0
    for p, s in levels:
        take = min(remaining, s)
        notional += take * p
        filled += take
        remaining -= take
        used += 1
        if remaining <= 0:
            filled = size
            break
    return (notional / filled if filled else math.nan), filled, used


def ref_walk_quote(levels, amount):
    remaining, spent, base, used = amount, 0.0, 0.0, 0
    for p, s in levels:
        used += 1
        if p * s <= remaining:
            base += s
            spent += p * s
            remaining -= p * s
            if remaining <= 0:
                break
        else:
            base += remaining / p
            spent += remaining
            break
    return (spent / base if base else math.nan), base, used


book_rows = st.lists(st.tuples(prices, pos_sizes), min_size=1, max_size=25)


@settings(max_examples=150, deadline=None)
@given(is_bid=st.booleans(), snap=book_rows, size=st.integers(min_value=1, max_value=20000).map(lambda q: q / 100))
def test_walk_depth_equals_reference(is_bid, snap, size):
    side = new_side(64)
    n = apply_snapshot(side, arr(snap), is_bid)
    ref = RefBook(is_bid)
    ref.snapshot(snap)
    avg, filled, used = walk_depth(side, n, size)
    r_avg, r_filled, r_used = ref_walk(ref.sorted(), size)
    assert used == r_used
    assert math.isclose(filled, r_filled, rel_tol=1e-12)
    assert math.isclose(avg, r_avg, rel_tol=1e-12)
    # Never more than the displayed depth, never better than the touch.
    assert filled <= math.fsum(ref.levels.values()) * (1 + 1e-12)
    touch = ref.sorted()[0][0]
    assert (avg <= touch * (1 + 1e-12)) if is_bid else (avg >= touch * (1 - 1e-12))


@settings(max_examples=150, deadline=None)
@given(is_bid=st.booleans(), snap=book_rows,
       amount=st.integers(min_value=1, max_value=2_000_000).map(lambda q: q / 100))
def test_walk_depth_quote_equals_reference(is_bid, snap, amount):
    side = new_side(64)
    n = apply_snapshot(side, arr(snap), is_bid)
    ref = RefBook(is_bid)
    ref.snapshot(snap)
    avg, base, used = walk_depth_quote(side, n, amount)
    r_avg, r_base, r_used = ref_walk_quote(ref.sorted(), amount)
    assert used == r_used
    assert math.isclose(base, r_base, rel_tol=1e-12)
    assert math.isclose(avg, r_avg, rel_tol=1e-12)
    assert avg * base <= amount * (1 + 1e-12)


@settings(max_examples=100, deadline=None)
@given(is_bid=st.booleans(), snap=rows, depth=st.integers(min_value=0, max_value=15),
       levels=st.integers(min_value=0, max_value=15))
def test_copy_top_and_notional_equal_reference(is_bid, snap, depth, levels):
    side = new_side(BIG)
    n = apply_snapshot(side, arr(snap), is_bid)
    ref = RefBook(is_bid)
    ref.snapshot(snap)
    top = ref.sorted()[:depth]
    out = np.full((depth + 2, 2), -1.0)
    assert copy_top(side, n, out, depth) == len(top)
    assert [tuple(r) for r in out[:len(top)]] == top
    assert not out[len(top):depth].any() and (out[depth:] == -1.0).all()
    expected = math.fsum(p * s for p, s in ref.sorted()[:levels])
    assert math.isclose(notional_at_depth(side, n, levels), expected, rel_tol=1e-12, abs_tol=1e-12)
