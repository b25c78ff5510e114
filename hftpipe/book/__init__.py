"""Order-book kernels (numba, numpy arrays in, scalars out). Imports nothing but numpy and numba."""

from hftpipe.book.kernels import (
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

__all__ = [
    "apply_deltas", "apply_level", "apply_snapshot", "apply_update", "apply_updates_batch", "best_ask", "best_bid", "copy_top",
    "is_crossed", "microprice", "mid_price", "new_side", "notional_at_depth", "spread",
    "spread_bps", "walk_depth", "walk_depth_quote", "walk_levels", "walk_levels_quote",
]
