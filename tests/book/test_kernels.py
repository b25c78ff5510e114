"""Book kernels: hand-computed cases, edge cases included (properties live in test_properties.py)."""

import ast
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import hftpipe.book as book
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

NAN, INF = float("nan"), float("inf")
BAD_LEVELS = [(NAN, 1.0), (100.0, NAN), (INF, 1.0), (-INF, 1.0), (-1.0, 1.0), (0.0, 1.0),
              (100.0, -0.5), (100.0, INF)]


def levels(*rows):
    return np.array(rows, dtype=np.float64).reshape(-1, 2)


def as_rows(side, n):
    """A book side's live rows best first (sides are stored worst first)."""
    return [tuple(r) for r in side[:n][::-1]]


def side_of(rows, is_bid, capacity=8):
    side = new_side(capacity)
    return side, apply_snapshot(side, levels(*rows), is_bid)


# ---- layout and module contract ------------------------------------------------------------

def test_new_side_is_an_empty_float64_array():
    side = new_side(5)
    assert side.shape == (5, 2) and side.dtype == np.float64 and side.flags.c_contiguous
    assert not side.any()


def test_module_imports_only_numpy_and_numba():
    for path in Path(book.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                roots = {node.module.split(".")[0]}
            else:
                continue
            if path.name == "__init__.py":
                roots.discard("hftpipe")  # the package re-exports its own kernels
            assert roots <= {"numpy", "numba", "math", "__future__"}, (path.name, roots)


def test_public_kernels_are_cached_njit_functions_with_one_line_docstrings():
    for name in book.__all__:
        fn = getattr(book, name)
        if name == "new_side":
            assert not hasattr(fn, "py_func")
            continue
        assert hasattr(fn, "py_func"), name
        assert type(fn._cache).__name__ == "FunctionCache", name
        doc = (fn.py_func.__doc__ or "").strip()
        assert doc and "\n" not in doc, name


def test_kernels_allocate_nothing():
    # NRT statistics must be on before numba loads, hence a fresh interpreter. Passing an array
    # from Python costs one MemInfo per array argument; anything beyond that is the kernel's.
    code = textwrap.dedent("""
        import numpy as np
        from numba.core.runtime import rtsys
        import hftpipe.book as b
        bids, asks = b.new_side(64), b.new_side(64)
        out = np.array([[100.0 + i, 1.0] for i in range(10)])
        snap_b = np.array([[100.0 - i, 1.0 + i] for i in range(40)])
        snap_a = np.array([[101.0 + i, 1.0 + i] for i in range(40)])
        shuffled = snap_b[::-1].copy()
        rows = np.array([[99.5, 2.0], [100.0, 0.0], [80.0, 1.0], [120.0, 3.0]])
        ends = np.array([2], dtype=np.int64), np.array([4], dtype=np.int64)
        calls = [
            (b.apply_snapshot, (bids, snap_b, True)), (b.apply_snapshot, (asks, snap_a, False)),
            (b.apply_snapshot, (bids, shuffled, True)), (b.apply_snapshot, (bids, rows, True)),
            (b.apply_level, (bids, 40, 99.25, 1.0, True)), (b.apply_deltas, (asks, 40, rows, False)),
            (b.apply_update, (bids, 40, asks, 40, rows, rows)),
            (b.apply_updates_batch, (bids, 40, asks, 40, rows, ends[0], ends[1])),
            (b.best_bid, (bids, 40)), (b.best_ask, (asks, 40)), (b.mid_price, (bids, 40, asks, 40)),
            (b.microprice, (bids, 40, asks, 40)), (b.spread, (bids, 40, asks, 40)),
            (b.spread_bps, (bids, 40, asks, 40)), (b.is_crossed, (bids, 40, asks, 40)),
            (b.walk_depth, (asks, 40, 100.0)), (b.walk_depth_quote, (asks, 40, 1e4)),
            (b.walk_levels, (out, 10, 3.0)), (b.walk_levels_quote, (out, 10, 300.0)),
            (b.notional_at_depth, (bids, 40, 5)), (b.copy_top, (bids, 40, out, 10)),
        ]
        for i, (fn, args) in enumerate(calls):
            fn(*args)  # load from cache / compile outside the measurement
            arrays = sum(isinstance(a, np.ndarray) for a in args)
            before = rtsys.get_allocation_stats().alloc
            for _ in range(10):
                fn(*args)
            extra = rtsys.get_allocation_stats().alloc - before - 10 * arrays
            print(f"{i}:{fn.__name__}", extra)
    """)
    env = dict(os.environ, NUMBA_NRT_STATS="1")
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    extra = [line.split() for line in res.stdout.splitlines()]
    assert len(extra) == 21
    assert all(v == "0" for _, v in extra), extra


# ---- snapshots -------------------------------------------------------------------------------

def test_unsorted_snapshot_sorts_skips_zero_and_last_duplicate_wins():
    bids = new_side(8)
    n = apply_snapshot(bids, levels([99, 1], [100, 2], [98, 3], [101, 0], [99, 5]), True)
    assert n == 3 and as_rows(bids, n) == [(100, 2), (99, 5), (98, 3)]
    asks = new_side(8)
    n = apply_snapshot(asks, levels([102, 1], [101, 2], [102, 0], [103, 4]), False)
    assert as_rows(asks, n) == [(101, 2), (103, 4)]


@pytest.mark.parametrize("is_bid", [True, False])
def test_sorted_snapshot_in_either_order_gives_the_same_side(is_bid):
    best_first = [(100 - i, i + 1) if is_bid else (100 + i, i + 1) for i in range(6)]
    best_first[2] = (best_first[2][0], 0.0)  # zero sizes are skipped on the fast path too
    a, na = side_of(best_first, is_bid)
    b, nb = side_of(best_first[::-1], is_bid)
    assert na == nb == 5
    assert as_rows(a, na) == as_rows(b, nb) == [r for r in best_first if r[1] > 0]


@pytest.mark.parametrize("is_bid", [True, False])
@pytest.mark.parametrize("reverse", [False, True])
def test_snapshot_deeper_than_capacity_keeps_the_best_levels(is_bid, reverse):
    best_first = [(100 - i, 1 + i) if is_bid else (100 + i, 1 + i) for i in range(10)]
    rows = best_first[::-1] if reverse else best_first
    side, n = side_of(rows, is_bid, capacity=4)
    assert n == 4 and as_rows(side, n) == best_first[:4]
    shuffled = [rows[i] for i in (3, 7, 0, 9, 5, 1, 8, 2, 6, 4)]
    side, n = side_of(shuffled, is_bid, capacity=4)
    assert as_rows(side, n) == best_first[:4]


def test_snapshot_replaces_everything_and_empty_snapshot_empties():
    bids, n = side_of([(100, 1), (99, 1), (98, 1)], True)
    n = apply_snapshot(bids, levels([50, 2]), True)
    assert as_rows(bids, n) == [(50, 2)]
    assert apply_snapshot(bids, np.zeros((0, 2)), True) == 0


# ---- deltas ----------------------------------------------------------------------------------

def test_insert_update_delete_keep_order_on_both_sides():
    bids, n = side_of([(100, 1), (98, 1)], True)
    n = apply_level(bids, n, 99.0, 4.0, True)
    n = apply_level(bids, n, 101.0, 5.0, True)
    n = apply_level(bids, n, 97.0, 6.0, True)
    n = apply_level(bids, n, 98.0, 7.0, True)  # update in place
    assert as_rows(bids, n) == [(101, 5), (100, 1), (99, 4), (98, 7), (97, 6)]
    asks, n = side_of([(101, 1), (103, 1)], False)
    n = apply_deltas(asks, n, levels([102, 2], [100, 3], [104, 4], [103, 0], [102, 9]), False)
    assert as_rows(asks, n) == [(100, 3), (101, 1), (102, 9), (104, 4)]


def test_empty_book_insert_and_delete():
    side = new_side(4)
    assert apply_level(side, 0, 100.0, 0.0, True) == 0  # delete on an empty side: nothing
    assert apply_level(side, 0, 100.0, 2.0, False) == 1 and as_rows(side, 1) == [(100, 2)]
    assert apply_deltas(side, 1, np.zeros((0, 2)), False) == 1


@pytest.mark.parametrize("is_bid", [True, False])
def test_delete_of_top_exposes_next_and_absent_delete_is_noop(is_bid):
    rows = [(100, 1), (99, 2), (98, 3)] if is_bid else [(101, 1), (102, 2), (103, 3)]
    side, n = side_of(rows, is_bid)
    n = apply_level(side, n, rows[0][0], 0.0, is_bid)
    assert n == 2 and as_rows(side, n) == rows[1:]
    top = best_bid(side, n) if is_bid else best_ask(side, n)
    assert top == rows[1][0]
    before = side.copy()
    assert apply_level(side, n, 150.0, 0.0, is_bid) == 2  # absent: outside the book
    assert apply_level(side, n, 98.5 if is_bid else 102.5, 0.0, is_bid) == 2  # absent: inside
    np.testing.assert_array_equal(side, before)


def test_capacity_overflow_drops_the_worst_level():
    bids, n = side_of([(100, 1), (99, 1), (98, 1)], True, capacity=3)
    n = apply_level(bids, n, 99.5, 7.0, True)
    assert n == 3 and as_rows(bids, n) == [(100, 1), (99.5, 7), (99, 1)]
    n = apply_level(bids, n, 101.0, 2.0, True)  # a new touch pushes the worst out
    assert as_rows(bids, n) == [(101, 2), (100, 1), (99.5, 7)]
    # Worse than everything a full side keeps: beyond capacity, ignored.
    assert apply_level(bids, n, 90.0, 1.0, True) == 3
    assert as_rows(bids, n) == [(101, 2), (100, 1), (99.5, 7)]
    asks, n = side_of([(101, 1), (102, 1)], False, capacity=2)
    n = apply_level(asks, n, 100.0, 3.0, False)
    assert as_rows(asks, n) == [(100, 3), (101, 1)]


@pytest.mark.parametrize("price,size", BAD_LEVELS)
def test_invalid_level_rejected_and_book_unchanged(price, size):
    bids, n = side_of([(100, 1), (99, 2)], True)
    asks, na = side_of([(101, 1)], False)
    before = bids.copy(), asks.copy()
    assert apply_level(bids, n, price, size, True) == -1
    # A bad row anywhere in a message rejects all of it, even the good rows before it.
    assert apply_deltas(bids, n, levels([99.5, 1.0], [price, size]), True) == -1
    assert apply_snapshot(bids, levels([1, 1], [price, size]), True) == -1
    assert apply_update(bids, n, asks, na, levels([99.5, 1]), levels([price, size])) == (-1, -1)
    np.testing.assert_array_equal(bids, before[0])
    np.testing.assert_array_equal(asks, before[1])


@pytest.mark.parametrize("bad_n", [-1, 9])
def test_count_outside_the_side_is_rejected(bad_n):
    bids, n = side_of([(100, 1), (99, 2)], True)
    asks, na = side_of([(101, 1)], False)
    before = bids.copy()
    assert apply_level(bids, bad_n, 98.0, 1.0, True) == -1
    assert apply_deltas(bids, bad_n, levels([98, 1]), True) == -1
    assert apply_update(bids, bad_n, asks, na, levels([98, 1]), levels([102, 1])) == (-1, -1)
    one = np.array([1], dtype=np.int64)
    assert apply_updates_batch(bids, bad_n, asks, na, levels([98, 1]), one, one)[:2] == (-1, -1)
    np.testing.assert_array_equal(bids, before)


def test_apply_update_is_all_or_nothing_across_sides():
    bids, nb = side_of([(100, 1), (99, 2)], True)
    asks, na = side_of([(101, 1)], False)
    nb, na = apply_update(bids, nb, asks, na, levels([99.5, 1], [100, 0]), levels([100.5, 3]))
    assert as_rows(bids, nb) == [(99.5, 1), (99, 2)] and as_rows(asks, na) == [(100.5, 3), (101, 1)]
    assert apply_update(bids, nb, asks, na, np.zeros((0, 2)), np.zeros((0, 2))) == (nb, na)


def test_batch_skips_and_counts_invalid_messages_only():
    bids, nb = side_of([(100, 1)], True)
    asks, na = side_of([(101, 1)], False)
    # Three messages: ok, bad (NaN ask), ok.
    rows = levels([99, 1], [102, 1], [98, 1], [103, NAN], [100, 0], [101, 0])
    bid_end = np.array([1, 3, 5], dtype=np.int64)
    ask_end = np.array([2, 4, 6], dtype=np.int64)
    nb, na, skipped = apply_updates_batch(bids, nb, asks, na, rows, bid_end, ask_end)
    assert skipped == 1
    assert as_rows(bids, nb) == [(99, 1)] and as_rows(asks, na) == [(102, 1)]


# ---- top of book -----------------------------------------------------------------------------

def test_top_of_book_measures():
    bids, nb = side_of([(100, 3), (99, 1)], True)
    asks, na = side_of([(101, 1), (102, 5)], False)
    assert best_bid(bids, nb) == 100 and best_ask(asks, na) == 101
    assert mid_price(bids, nb, asks, na) == 100.5
    assert spread(bids, nb, asks, na) == 1.0
    assert spread_bps(bids, nb, asks, na) == pytest.approx(1.0 / 100.5 * 1e4, rel=1e-14)
    # More bid size at the touch pushes the microprice toward the ask.
    assert microprice(bids, nb, asks, na) == pytest.approx((100 * 1 + 101 * 3) / 4, rel=1e-14)
    assert not is_crossed(bids, nb, asks, na)


def test_empty_sides_give_nan_and_are_not_crossed():
    bids, nb = side_of([(100, 3)], True)
    empty = new_side(4)
    assert math.isnan(best_bid(empty, 0)) and math.isnan(best_ask(empty, 0))
    for fn in (mid_price, microprice, spread, spread_bps):
        assert math.isnan(fn(bids, nb, empty, 0)), fn.__name__
        assert math.isnan(fn(empty, 0, bids, nb)), fn.__name__
    assert not is_crossed(bids, nb, empty, 0) and not is_crossed(empty, 0, empty, 0)


def test_crossed_and_locked_books_are_detected():
    bids, nb = side_of([(100, 1)], True)
    asks, na = side_of([(101, 1)], False)
    assert not is_crossed(bids, nb, asks, na)
    nb = apply_level(bids, nb, 101.0, 1.0, True)  # locked: bid == ask
    assert is_crossed(bids, nb, asks, na)
    nb = apply_level(bids, nb, 101.0, 0.0, True)
    nb = apply_level(bids, nb, 102.0, 1.0, True)  # crossed
    assert is_crossed(bids, nb, asks, na) and spread(bids, nb, asks, na) == -1.0


# ---- depth walks -----------------------------------------------------------------------------

def test_walk_depth_partial_level_and_exhausted_depth():
    asks, na = side_of([(100, 1), (101, 2), (103, 1)], False)
    avg, filled, used = walk_depth(asks, na, 2.5)
    assert (filled, used) == (2.5, 2) and avg == pytest.approx((100 * 1 + 101 * 1.5) / 2.5, rel=1e-14)
    avg, filled, used = walk_depth(asks, na, 3.0)  # ends exactly on a level boundary
    assert (filled, used) == (3.0, 2) and avg == pytest.approx(302 / 3, rel=1e-14)
    avg, filled, used = walk_depth(asks, na, 10.0)  # past all depth: partial
    assert (filled, used) == (4.0, 3) and avg == pytest.approx((100 + 202 + 103) / 4, rel=1e-14)
    avg, filled, used = walk_depth(asks, na, INF)
    assert (filled, used) == (4.0, 3) and avg == pytest.approx((100 + 202 + 103) / 4, rel=1e-14)


def test_walk_depth_on_bids_goes_down_from_the_touch():
    bids, nb = side_of([(99, 1), (100, 1), (98, 5)], True)
    avg, filled, used = walk_depth(bids, nb, 3.0)
    assert (filled, used) == (3.0, 3) and avg == pytest.approx((100 + 99 + 98) / 3, rel=1e-14)


@pytest.mark.parametrize("amount", [0.0, -1.0, NAN])
def test_walks_of_nothing_or_nan_or_an_empty_side_fill_nothing(amount):
    asks, na = side_of([(100, 1)], False)
    for walk in (walk_depth, walk_depth_quote):
        avg, filled, used = walk(asks, na, amount)
        assert math.isnan(avg) and filled == 0.0 and used == 0
        avg, filled, used = walk(asks, 0, 1.0)
        assert math.isnan(avg) and filled == 0.0 and used == 0


def test_walk_depth_quote_spends_a_quote_amount():
    asks, na = side_of([(100, 1), (101, 2), (103, 1)], False)
    avg, base, used = walk_depth_quote(asks, na, 150.5)
    assert used == 2 and base == pytest.approx(1 + 50.5 / 101, rel=1e-14)
    assert avg == pytest.approx(150.5 / base, rel=1e-14)
    avg, base, used = walk_depth_quote(asks, na, 302.0)  # exactly the first two levels
    assert (base, used) == (3.0, 2) and avg == pytest.approx(302 / 3, rel=1e-14)
    for amount in (1e6, INF):  # more than the whole side is worth
        avg, base, used = walk_depth_quote(asks, na, amount)
        assert (base, used) == (4.0, 3) and avg == pytest.approx(405 / 4, rel=1e-14)


def test_walk_levels_on_best_first_snapshot_matches_walk_depth_on_the_side():
    asks, na = side_of([(100, 1), (101, 2), (103, 1)], False)
    top = np.zeros((5, 2))
    m = copy_top(asks, na, top, 5)
    for size in (0.5, 2.5, 10.0):
        assert walk_levels(top, m, size) == walk_depth(asks, na, size)
        assert walk_levels_quote(top, m, size * 100) == walk_depth_quote(asks, na, size * 100)


def test_notional_at_depth():
    bids, nb = side_of([(100, 1), (99, 2), (98, 3)], True)
    assert notional_at_depth(bids, nb, 2) == 100 + 198
    assert notional_at_depth(bids, nb, 10) == 100 + 198 + 294
    assert notional_at_depth(bids, nb, 0) == 0.0 and notional_at_depth(bids, 0, 5) == 0.0


# ---- publishing the top ----------------------------------------------------------------------

def test_copy_top_writes_best_first_and_zero_fills_up_to_depth():
    bids, nb = side_of([(100, 1), (99, 2)], True)
    out = np.full((6, 2), 7.0)
    assert copy_top(bids, nb, out, 4) == 2
    np.testing.assert_array_equal(out[:4], levels([100, 1], [99, 2], [0, 0], [0, 0]))
    np.testing.assert_array_equal(out[4:], np.full((2, 2), 7.0))  # beyond depth: untouched
    asks, na = side_of([(103, 3), (101, 1), (102, 2)], False)
    assert copy_top(asks, na, out, 2) == 2
    np.testing.assert_array_equal(out[:2], levels([101, 1], [102, 2]))
    assert copy_top(asks, 0, out, 3) == 0 and not out[:3].any()


def test_copy_top_never_writes_past_out():
    asks, na = side_of([(101, 1), (102, 2), (103, 3)], False)
    buf = np.full((4, 2), 7.0)
    out = buf[:2]
    assert copy_top(asks, na, out, 3) == 2  # depth larger than out: clamped
    np.testing.assert_array_equal(buf, levels([101, 1], [102, 2], [7, 7], [7, 7]))


def test_walks_over_zero_filled_rows_fill_nothing():
    top = np.zeros((3, 2))  # what copy_top leaves past the live levels
    for walk in (walk_levels, walk_levels_quote):
        avg, filled, used = walk(top, 3, 1.0)
        assert math.isnan(avg) and filled == 0.0 and used == 0
