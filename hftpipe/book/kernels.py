"""Order-book kernels: numba functions over plain numpy arrays, pure and allocation-free.

One side of a book is a float64 array ``side`` of shape ``(capacity, 2)`` holding
``[price, size]`` rows sorted best first (bids descending, asks ascending) and a count ``n`` of
live rows; rows at ``n`` and beyond are garbage. A side keeps the full depth a venue sends, so
deleting a top level exposes the next one; only the top ``depth`` is published. When an insert
would exceed the capacity, the level farthest from the touch is dropped: capacity must exceed
the venue's snapshot depth (Binance sends up to 5000 levels, others far fewer).

Every kernel that changes a side first validates its input and returns -1 with the side
unchanged on a NaN, infinite, non-positive price or negative size: the caller counts the skip.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


def new_side(capacity: int) -> np.ndarray:
    """An empty side with room for ``capacity`` levels."""
    return np.zeros((capacity, 2), dtype=np.float64)


@njit(cache=True, inline="always")
def _valid_level(price, size):
    return math.isfinite(price) and price > 0.0 and math.isfinite(size) and size >= 0.0


@njit(cache=True, inline="always")
def _better(a, b, is_bid):
    # True when price a sits closer to the touch than price b on this side.
    return a > b if is_bid else a < b


@njit(cache=True)
def _find(side, n, price, is_bid):
    """Index of ``price`` if present, else its insertion point (binary search)."""
    lo = 0
    hi = n
    while lo < hi:
        mid = (lo + hi) >> 1
        p = side[mid, 0]
        if p == price:
            return mid
        if _better(p, price, is_bid):
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
            for j in range(i, n - 1):
                side[j, 0] = side[j + 1, 0]
                side[j, 1] = side[j + 1, 1]
            return n - 1
        return n
    if present:
        side[i, 1] = size
        return n
    if i >= capacity:
        return n  # worse than every kept level of a full side: beyond our capacity
    last = n if n < capacity else capacity - 1  # a full side drops its worst level
    for j in range(last, i, -1):
        side[j, 0] = side[j - 1, 0]
        side[j, 1] = side[j - 1, 1]
    side[i, 0] = price
    side[i, 1] = size
    return n + 1 if n < capacity else n


@njit(cache=True)
def apply_level(side, n, price, size, is_bid):
    """Set the level at ``price`` to ``size`` (0 deletes); returns the new count or -1 on invalid input."""
    if not _valid_level(price, size):
        return -1
    return _set_level(side, n, price, size, is_bid)


@njit(cache=True)
def apply_deltas(side, n, levels, is_bid):
    """Apply rows of ``[price, size]`` in order; returns the new count, or -1 (side unchanged) if any row is invalid."""
    for k in range(levels.shape[0]):
        if not _valid_level(levels[k, 0], levels[k, 1]):
            return -1
    for k in range(levels.shape[0]):
        n = _set_level(side, n, levels[k, 0], levels[k, 1], is_bid)
    return n


@njit(cache=True)
def apply_snapshot(side, levels, is_bid):
    """Replace the side with ``levels`` (any order, zero sizes skipped, last duplicate wins); -1 if invalid."""
    for k in range(levels.shape[0]):
        if not _valid_level(levels[k, 0], levels[k, 1]):
            return -1
    n = 0
    for k in range(levels.shape[0]):
        n = _set_level(side, n, levels[k, 0], levels[k, 1], is_bid)
    return n


@njit(cache=True)
def best_bid(bids, nb):
    """Highest bid price, NaN when empty."""
    return bids[0, 0] if nb > 0 else np.nan


@njit(cache=True)
def best_ask(asks, na):
    """Lowest ask price, NaN when empty."""
    return asks[0, 0] if na > 0 else np.nan


@njit(cache=True)
def mid_price(bids, nb, asks, na):
    """(best bid + best ask) / 2, NaN unless both sides have levels."""
    if nb == 0 or na == 0:
        return np.nan
    return 0.5 * (bids[0, 0] + asks[0, 0])


@njit(cache=True)
def microprice(bids, nb, asks, na):
    """Size-weighted mid: leans toward the side with less size at the touch."""
    if nb == 0 or na == 0:
        return np.nan
    bsz = bids[0, 1]
    asz = asks[0, 1]
    if bsz + asz <= 0.0:
        return 0.5 * (bids[0, 0] + asks[0, 0])
    return (bids[0, 0] * asz + asks[0, 0] * bsz) / (bsz + asz)


@njit(cache=True)
def spread(bids, nb, asks, na):
    """Best ask - best bid, NaN unless both sides have levels."""
    if nb == 0 or na == 0:
        return np.nan
    return asks[0, 0] - bids[0, 0]


@njit(cache=True)
def spread_bps(bids, nb, asks, na):
    """Spread in basis points of the mid."""
    if nb == 0 or na == 0:
        return np.nan
    mid = 0.5 * (bids[0, 0] + asks[0, 0])
    return (asks[0, 0] - bids[0, 0]) / mid * 1e4


@njit(cache=True)
def is_crossed(bids, nb, asks, na):
    """Best bid >= best ask (a book that must never be published)."""
    return nb > 0 and na > 0 and bids[0, 0] >= asks[0, 0]


@njit(cache=True)
def walk_depth(side, n, size):
    """Take ``size`` base units from the touch outwards: (average price, filled size, levels used)."""
    remaining = size
    notional = 0.0
    used = 0
    for i in range(n):
        if remaining <= 0.0:
            break
        take = min(remaining, side[i, 1])
        notional += take * side[i, 0]
        remaining -= take
        used += 1
    filled = size - remaining if remaining > 0.0 else size
    if filled <= 0.0:
        return np.nan, 0.0, 0
    return notional / filled, filled, used


@njit(cache=True)
def walk_depth_quote(side, n, quote_amount):
    """Spend ``quote_amount`` from the touch outwards: (average price, filled base size, levels used)."""
    remaining = quote_amount
    base = 0.0
    used = 0
    for i in range(n):
        if remaining <= 0.0:
            break
        level_quote = side[i, 0] * side[i, 1]
        if level_quote <= remaining:
            base += side[i, 1]
            remaining -= level_quote
        else:
            base += remaining / side[i, 0]
            remaining = 0.0
        used += 1
    if base <= 0.0:
        return np.nan, 0.0, 0
    return (quote_amount - remaining) / base, base, used


@njit(cache=True)
def notional_at_depth(side, n, levels):
    """Sum of price * size over the first ``levels`` levels."""
    total = 0.0
    for i in range(min(n, levels)):
        total += side[i, 0] * side[i, 1]
    return total


@njit(cache=True)
def copy_top(side, n, out, depth):
    """Copy the top ``min(n, depth)`` rows into ``out``, zero the rest up to ``depth``; returns the count."""
    m = min(n, depth)
    for i in range(m):
        out[i, 0] = side[i, 0]
        out[i, 1] = side[i, 1]
    for i in range(m, depth):
        out[i, 0] = 0.0
        out[i, 1] = 0.0
    return m
