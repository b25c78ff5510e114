"""numba loops for the BookRing torture test: a writer whose every slot carries a checksum, and readers that verify it."""

import numpy as np
from numba import njit

from hftpipe.shm.book_ring import (
    READ_OK,
    S_AUX,
    S_LEVELS,
    S_N_ASKS,
    S_N_BIDS,
    S_PUBNO,
    S_VENUE_SEQ,
    ring_publish,
    ring_read_latest,
    ring_read_next,
)


@njit(cache=True)
def payload_checksum(levels_f, n_words):
    """Order-sensitive hash of the float payload's bit patterns."""
    h = np.int64(1469598103934665603)
    bits = levels_f[:n_words].view(np.int64)
    for i in range(n_words):
        h = (h ^ bits[i]) * np.int64(1099511628211)
    return h


@njit(cache=True)
def torture_write(words, fwords, n_publishes, depth):
    """Publish ``n_publishes`` snapshots whose levels, counts and checksum are all derived from the publish number."""
    bids = np.zeros((depth, 2))
    asks = np.zeros((depth, 2))
    flat = np.zeros(4 * depth)
    for k in range(1, n_publishes + 1):
        nb = 1 + (k % depth)
        na = 1 + ((k * 7) % depth)
        for i in range(depth):
            if i < nb:
                bids[i, 0] = 1000.0 + k * 0.5 - i
                bids[i, 1] = float(k % 97) + i
            else:
                bids[i, 0] = 0.0
                bids[i, 1] = 0.0
            if i < na:
                asks[i, 0] = 1001.0 + k * 0.5 + i
                asks[i, 1] = float(k % 89) + 2 * i
            else:
                asks[i, 0] = 0.0
                asks[i, 1] = 0.0
            flat[2 * i] = bids[i, 0]
            flat[2 * i + 1] = bids[i, 1]
            flat[2 * depth + 2 * i] = asks[i, 0]
            flat[2 * depth + 2 * i + 1] = asks[i, 1]
        aux = payload_checksum(flat, 4 * depth)
        ring_publish(words, fwords, bids, nb, asks, na, k * 3, k, k, k, k, 1, aux)


@njit(cache=True)
def _verify(out, depth):
    f = out.view(np.float64)
    k = out[S_PUBNO]
    ok = out[S_VENUE_SEQ] == 3 * k
    ok = ok and out[S_N_BIDS] == 1 + (k % depth) and out[S_N_ASKS] == 1 + ((k * 7) % depth)
    ok = ok and payload_checksum(f[S_LEVELS:], 4 * depth) == out[S_AUX]
    return ok


@njit(cache=True)
def torture_read_latest(words, out, stats, depth, until_pubno, max_reads):
    """Read the newest slot until the writer's last publish is seen; returns (reads, bad, regressions, distinct)."""
    reads = 0
    bad = 0
    regressions = 0
    distinct = 0
    last = 0
    while reads < max_reads:
        p = ring_read_latest(words, out, stats)
        if p == 0:
            continue
        reads += 1
        if not _verify(out, depth) or out[S_PUBNO] != p:
            bad += 1
        if p < last:
            regressions += 1
        elif p > last:
            distinct += 1
            last = p
        if p >= until_pubno:
            break
    return reads, bad, regressions, distinct


@njit(cache=True)
def torture_read_next(words, out, stats, depth, until_pubno, max_reads):
    """Sequential reader; returns (reads, bad, out_of_order, skipped)."""
    reads = 0
    bad = 0
    out_of_order = 0
    skipped_total = 0
    want = 1
    last = 0
    while reads < max_reads and want <= until_pubno:
        status, p, skipped = ring_read_next(words, want, out, stats)
        skipped_total += skipped
        if status != READ_OK:
            want = p
            continue
        reads += 1
        if not _verify(out, depth):
            bad += 1
        if p <= last:
            out_of_order += 1
        last = p
        want = p + 1
    return reads, bad, out_of_order, skipped_total
