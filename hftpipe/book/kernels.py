"""Order-book kernels: numba functions over plain numpy arrays, pure and allocation-free.

Two layouts, named apart because mixing them up is the classic bug:

- A **book side** (full depth, mutable, kept by the feeds): a float64 array ``side`` of shape
  ``(capacity, 2)`` holding ``[price, size]`` rows sorted worst first, so the touch is the LAST
  live row ``n - 1``. Almost all venue activity happens near the touch; with the touch at the
  end, an insert or delete there shifts a few rows instead of the whole depth (measured on a
  1000-level Binance book: ~0.6 us per shift best-first, a few ns best-last). When an insert
  would exceed the capacity, the level farthest from the touch (row 0) is dropped, and a new
  level worse than every kept one is ignored. A dropped level is gone: if the levels above it
  are later deleted, the side shows fewer levels than the venue has. So capacity must exceed
  the venue's snapshot depth (Binance: 1000; the feeds use 5000).
- **Levels** (top of book, best first, as in BookRing slots and signals): ``(depth, 2)`` rows,
  row 0 is the touch. ``copy_top`` turns a book side into levels.

Every kernel that changes a side validates its input first and returns -1 with the side
unchanged on a NaN or infinite number, a non-positive price, a negative size, or a count
outside ``[0, capacity]`` (e.g. a -1 passed back in): the caller counts the skip.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.extending import intrinsic


def new_side(capacity: int) -> np.ndarray:
    """An empty side with room for ``capacity`` levels."""
    return np.zeros((capacity, 2), dtype=np.float64)


@njit(cache=True, inline="always")
def _valid_level(price, size):
    return math.isfinite(price) and price > 0.0 and math.isfinite(size) and size >= 0.0


@intrinsic
def _move_rows(typingctx, side, dst_row, src_row, n_rows):
    """memmove ``n_rows`` rows of a C-contiguous float64 (k, 2) array (overlap-safe).

    A level insert or delete shifts every row between it and the end of the side; the scalar
    loop LLVM makes of that moved ~8 bytes a cycle, memmove several times that (measured 3.1x
    on a 1000-level side).
    """
    if not (isinstance(side, types.Array) and side.ndim == 2 and side.layout == "C"
            and side.dtype == types.float64):
        raise TypingError("book sides must be C-contiguous float64 (capacity, 2) arrays")
    sig = types.void(side, types.intp, types.intp, types.intp)

    def codegen(context, builder, signature, args):
        arr, dst, src, n = args
        ary = context.make_array(signature.args[0])(context, builder, arr)
        n_cols = cgutils.unpack_tuple(builder, ary.shape, 2)[1]
        row_bytes = builder.mul(n_cols, context.get_constant(types.intp, 8))
        base = builder.bitcast(ary.data, cgutils.voidptr_t)
        to = builder.gep(base, [builder.mul(dst, row_bytes)])
        frm = builder.gep(base, [builder.mul(src, row_bytes)])
        cgutils.raw_memmove(builder, to, frm, builder.mul(n, row_bytes), 1)
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True, inline="always")
def _n_ok(side, n):
    # A count the caller forgot to check (-1) or took from another side would make the row
    # shifts write outside the array: refuse it like any other invalid input.
    return 0 <= n <= side.shape[0]


# Rows nearest the touch searched without data-dependent branches (see _find).
_TOUCH_WINDOW = 32


@njit(cache=True)
def _find(side, n, price, is_bid):
    """Row of ``price`` if present, else its insertion point, in a worst-first side.

    Venue changes cluster near the touch (on the Binance captures: median 4-9 levels from it,
    90% within 47), and a search's cost here is mostly mispredicted branches, not probes. So a
    price among the ``_TOUCH_WINDOW`` rows nearest the touch is found by a fixed 5-step bisection
    whose only branch compiles to a select; anything deeper gallops outwards from the touch in
    doubling steps, then bisects the bracket: O(log distance) probes instead of O(log n).
    Measured on the USD-M capture: 40% less time per message than a plain bisection.
    """
    # Rows ascend in key = price for bids and -price for asks, so one comparison serves both.
    sgn = 1.0 if is_bid else -1.0
    key = sgn * price
    w = _TOUCH_WINDOW
    if n >= w and sgn * side[n - w, 0] < key:
        base = n - w  # invariant: key(base) < key, and the answer lies in (base, base + length]
        length = w
        while length > 1:
            half = length >> 1
            if sgn * side[base + half, 0] < key:
                base += half
            length -= half
        return base + 1
    hi = n  # rows >= hi all have a key above ``key``
    lo = n - 1
    step = 1
    while lo >= 0:
        k = sgn * side[lo, 0]
        if k <= key:
            if k == key:
                return lo
            break
        hi = lo
        lo = hi - step
        step <<= 1
    lo = lo + 1 if lo >= 0 else 0  # row lo (if any) has a key below ``key``
    while lo < hi:
        mid = (lo + hi) >> 1
        if sgn * side[mid, 0] < key:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True)
def _set_level(side, n, price, size, is_bid):
    capacity = side.shape[0]
    i = _find(side, n, price, is_bid)
    present = i < n and side[i, 0] == price
    if size == 0.0:
        if present:
            _move_rows(side, i, i + 1, n - 1 - i)
            return n - 1
        return n
    if present:
        side[i, 1] = size
        return n
    if n < capacity:
        _move_rows(side, i + 1, i, n - i)
        side[i, 0] = price
        side[i, 1] = size
        return n + 1
    if i == 0:
        return n  # worse than every kept level of a full side: beyond our capacity
    # Full: drop the worst level (row 0) to make room.
    _move_rows(side, 0, 1, i - 1)
    side[i - 1, 0] = price
    side[i - 1, 1] = size
    return n


@njit(cache=True)
def _rows_valid(levels, start, stop):
    for k in range(start, stop):
        if not _valid_level(levels[k, 0], levels[k, 1]):
            return False
    return True


@njit(cache=True)
def apply_level(side, n, price, size, is_bid):
    """Set the level at ``price`` to ``size`` (0 deletes); returns the new count or -1 on invalid input."""
    if not _n_ok(side, n) or not _valid_level(price, size):
        return -1
    return _set_level(side, n, price, size, is_bid)


@njit(cache=True)
def apply_deltas(side, n, levels, is_bid):
    """Apply rows of ``[price, size]`` in order; returns the new count, or -1 (side unchanged) if any row is invalid."""
    if not _n_ok(side, n) or not _rows_valid(levels, 0, levels.shape[0]):
        return -1
    for k in range(levels.shape[0]):
        n = _set_level(side, n, levels[k, 0], levels[k, 1], is_bid)
    return n


@njit(cache=True)
def apply_update(bids, nb, asks, na, bid_rows, ask_rows):
    """Apply one venue message to both sides in one call; returns (nb, na), or (-1, -1) with nothing changed."""
    # One call instead of two apply_deltas: numba's dispatch (~0.3 us from Python) is most of
    # the cost of a typical message, and the message must be all-or-nothing across both sides.
    if (not _n_ok(bids, nb) or not _n_ok(asks, na) or not _rows_valid(bid_rows, 0, bid_rows.shape[0])
            or not _rows_valid(ask_rows, 0, ask_rows.shape[0])):
        return -1, -1
    for k in range(bid_rows.shape[0]):
        nb = _set_level(bids, nb, bid_rows[k, 0], bid_rows[k, 1], True)
    for k in range(ask_rows.shape[0]):
        na = _set_level(asks, na, ask_rows[k, 0], ask_rows[k, 1], False)
    return nb, na


@njit(cache=True)
def apply_updates_batch(bids, nb, asks, na, rows, bid_end, ask_end):
    """Apply many messages in one call (replay, backtests); returns (nb, na, invalid messages skipped)."""
    # Message m's bid rows are rows[ask_end[m-1]:bid_end[m]] and its ask rows
    # rows[bid_end[m]:ask_end[m]]; an invalid message is skipped whole, the rest still apply.
    if not _n_ok(bids, nb) or not _n_ok(asks, na):
        return -1, -1, bid_end.shape[0]
    start = 0
    skipped = 0
    for m in range(bid_end.shape[0]):
        b1 = bid_end[m]
        a1 = ask_end[m]
        if not _rows_valid(rows, start, a1):
            skipped += 1
            start = a1
            continue
        for k in range(start, b1):
            nb = _set_level(bids, nb, rows[k, 0], rows[k, 1], True)
        for k in range(b1, a1):
            na = _set_level(asks, na, rows[k, 0], rows[k, 1], False)
        start = a1
    return nb, na, skipped


@njit(cache=True)
def _snapshot_order(levels, is_bid):
    """+1 if the rows are strictly best first (how venues send them), -1 if strictly worst first, else 0."""
    sgn = 1.0 if is_bid else -1.0
    best_first = True
    worst_first = True
    for k in range(1, levels.shape[0]):
        prev = sgn * levels[k - 1, 0]
        cur = sgn * levels[k, 0]
        if not cur < prev:
            best_first = False
        if not cur > prev:
            worst_first = False
        if not best_first and not worst_first:
            return 0
    return 1 if best_first else -1


@njit(cache=True)
def apply_snapshot(side, levels, is_bid):
    """Replace the side with ``levels`` (any order, zero sizes skipped, last duplicate wins); -1 if invalid."""
    if not _rows_valid(levels, 0, levels.shape[0]):
        return -1
    capacity = side.shape[0]
    order = _snapshot_order(levels, is_bid)
    if order == 0:
        # Unsorted or repeated prices: insert one by one so the last duplicate wins. Quadratic
        # in the worst case, but venues send sorted snapshots, which take the paths below.
        n = 0
        for k in range(levels.shape[0]):
            n = _set_level(side, n, levels[k, 0], levels[k, 1], is_bid)
        return n
    # Sorted without duplicates: copy straight in, O(k). Inserting a best-first snapshot row by
    # row into a worst-first side would shift every kept row on each insert (2.3 ms at 5000).
    live = 0
    for k in range(levels.shape[0]):
        if levels[k, 1] > 0.0:
            live += 1
    n = min(live, capacity)
    if order == 1:
        j = 0
        for k in range(levels.shape[0]):
            if j == n:
                break
            if levels[k, 1] > 0.0:
                side[n - 1 - j, 0] = levels[k, 0]
                side[n - 1 - j, 1] = levels[k, 1]
                j += 1
    else:
        skip = live - n  # the worst rows beyond the capacity come first
        j = 0
        for k in range(levels.shape[0]):
            if levels[k, 1] > 0.0:
                if skip > 0:
                    skip -= 1
                    continue
                side[j, 0] = levels[k, 0]
                side[j, 1] = levels[k, 1]
                j += 1
    return n


@njit(cache=True)
def best_bid(bids, nb):
    """Highest bid price of a book side, NaN when empty."""
    return bids[nb - 1, 0] if nb > 0 else np.nan


@njit(cache=True)
def best_ask(asks, na):
    """Lowest ask price of a book side, NaN when empty."""
    return asks[na - 1, 0] if na > 0 else np.nan


@njit(cache=True)
def mid_price(bids, nb, asks, na):
    """(best bid + best ask) / 2, NaN unless both sides have levels."""
    if nb == 0 or na == 0:
        return np.nan
    return 0.5 * (bids[nb - 1, 0] + asks[na - 1, 0])


@njit(cache=True)
def microprice(bids, nb, asks, na):
    """Size-weighted mid: leans toward the side with less size at the touch."""
    if nb == 0 or na == 0:
        return np.nan
    bp, bsz = bids[nb - 1, 0], bids[nb - 1, 1]
    ap, asz = asks[na - 1, 0], asks[na - 1, 1]
    if bsz + asz <= 0.0:
        return 0.5 * (bp + ap)
    return (bp * asz + ap * bsz) / (bsz + asz)


@njit(cache=True)
def spread(bids, nb, asks, na):
    """Best ask - best bid, NaN unless both sides have levels."""
    if nb == 0 or na == 0:
        return np.nan
    return asks[na - 1, 0] - bids[nb - 1, 0]


@njit(cache=True)
def spread_bps(bids, nb, asks, na):
    """Spread in basis points of the mid."""
    if nb == 0 or na == 0:
        return np.nan
    b = bids[nb - 1, 0]
    a = asks[na - 1, 0]
    return (a - b) / (0.5 * (a + b)) * 1e4


@njit(cache=True)
def is_crossed(bids, nb, asks, na):
    """Best bid >= best ask (a book that must never be published)."""
    return nb > 0 and na > 0 and bids[nb - 1, 0] >= asks[na - 1, 0]


@njit(cache=True, inline="always")
def _row(side, n, k, best_last):
    return n - 1 - k if best_last else k


@njit(cache=True)
def _walk(side, n, size, best_last):
    if not size > 0.0 or n <= 0:  # also rejects NaN
        return np.nan, 0.0, 0
    remaining = size
    notional = 0.0
    filled = 0.0
    used = 0
    for k in range(n):
        r = _row(side, n, k, best_last)
        take = min(remaining, side[r, 1])
        notional += take * side[r, 0]
        filled += take
        remaining -= take
        used += 1
        if remaining <= 0.0:
            # Report exactly what was asked rather than a sum that may be off by an ulp.
            filled = size
            break
    if filled <= 0.0:  # only zero-size rows (a zero-filled top-of-book copy)
        return np.nan, 0.0, 0
    return notional / filled, filled, used


@njit(cache=True)
def _walk_quote(side, n, quote_amount, best_last):
    if not quote_amount > 0.0 or n <= 0:  # also rejects NaN
        return np.nan, 0.0, 0
    remaining = quote_amount
    spent = 0.0
    base = 0.0
    used = 0
    for k in range(n):
        r = _row(side, n, k, best_last)
        price = side[r, 0]
        level_quote = price * side[r, 1]
        used += 1
        if level_quote <= remaining:
            base += side[r, 1]
            spent += level_quote
            remaining -= level_quote
            if remaining <= 0.0:
                break
        else:
            base += remaining / price
            spent += remaining
            break
    if base <= 0.0:  # only zero-size rows (a zero-filled top-of-book copy)
        return np.nan, 0.0, 0
    return spent / base, base, used


@njit(cache=True)
def walk_depth(side, n, size):
    """Take ``size`` base units from a book side's touch outwards: (average price, filled size, levels used)."""
    return _walk(side, n, size, True)


@njit(cache=True)
def walk_depth_quote(side, n, quote_amount):
    """Spend ``quote_amount`` on a book side from the touch: (average price, filled base size, levels used)."""
    return _walk_quote(side, n, quote_amount, True)


@njit(cache=True)
def walk_levels(levels, n, size):
    """``walk_depth`` over best-first levels (ring snapshots)."""
    return _walk(levels, n, size, False)


@njit(cache=True)
def walk_levels_quote(levels, n, quote_amount):
    """``walk_depth_quote`` over best-first levels (ring snapshots)."""
    return _walk_quote(levels, n, quote_amount, False)


@njit(cache=True)
def notional_at_depth(side, n, levels):
    """Sum of price * size over the ``levels`` levels nearest the touch of a book side."""
    total = 0.0
    for k in range(min(n, levels)):
        total += side[n - 1 - k, 0] * side[n - 1 - k, 1]
    return total


@njit(cache=True)
def copy_top(side, n, out, depth):
    """Write a book side's top ``min(n, depth)`` levels best-first into ``out`` (at most its rows), zero the rest up to ``depth``; returns the count."""
    # Never write past ``out``: a wrong ``depth`` must not corrupt whatever sits after it.
    depth = min(depth, out.shape[0])
    m = max(min(n, depth), 0)
    for k in range(m):
        out[k, 0] = side[n - 1 - k, 0]
        out[k, 1] = side[n - 1 - k, 1]
    for k in range(m, depth):
        out[k, 0] = 0.0
        out[k, 1] = 0.0
    return m
