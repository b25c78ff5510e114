"""BookRing semantics in one process: publish/read, lapping, invalid books, wait strategies."""

import math
import time

import numpy as np
import pytest

from hftpipe.shm.book_ring import (
    FLAG_RESYNC,
    FLAG_VALID,
    READ_LAPPED,
    READ_NOT_YET,
    READ_OK,
    WAIT_SLEEP,
    WAIT_SPIN,
    WAIT_SPIN_YIELD,
    BookRing,
    ring_read,
    slot_words_for,
)
from hftpipe.shm.segment import SegmentError

from .conftest import unique_name

BIDS = np.array([[100.0, 1.0], [99.5, 2.0], [99.0, 3.0]])
ASKS = np.array([[100.5, 1.5], [101.0, 2.5]])


@pytest.fixture
def ring():
    r = BookRing.create(unique_name("ring"), depth=4, n_slots=8)
    try:
        yield r
    finally:
        r.close()
        r.unlink()


def test_slot_layout_is_cache_line_aligned():
    for depth in (1, 5, 20, 50):
        assert slot_words_for(depth) % 16 == 0
        assert slot_words_for(depth) >= 16 + 4 * depth


def test_publish_then_read_latest_roundtrip(ring):
    snap = ring.snapshot_buffer()
    assert ring.read_latest(snap) == 0
    t0 = time.monotonic_ns()
    p = ring.publish(BIDS, 3, ASKS, 2, venue_seq=42, exch_ns=1_700_000_000_000_000_000,
                     recv_ns=t0, parsed_ns=t0 + 1, applied_ns=t0 + 2)
    assert p == 1 and ring.cursor == 1
    assert ring.read_latest(snap) == 1
    assert snap.valid and snap.venue_seq == 42 and snap.exch_ns == 1_700_000_000_000_000_000
    assert (snap.recv_ns, snap.parsed_ns, snap.applied_ns) == (t0, t0 + 1, t0 + 2)
    assert snap.applied_ns <= snap.publish_ns <= time.monotonic_ns()
    assert snap.n_bids == 3 and snap.n_asks == 2
    np.testing.assert_array_equal(snap.bids[:3], BIDS)
    np.testing.assert_array_equal(snap.asks[:2], ASKS)
    assert not snap.bids[3:].any() and not snap.asks[2:].any()
    assert snap.best_bid() == 100.0 and snap.best_ask() == 100.5


def test_levels_beyond_depth_are_cut(ring):
    deep = np.array([[100.0 - i, 1.0] for i in range(10)])
    ring.publish(deep, 10, ASKS, 2)
    snap = ring.snapshot_buffer()
    ring.read_latest(snap)
    assert snap.n_bids == 4
    np.testing.assert_array_equal(snap.bids, deep[:4])


def test_invalid_publish_marks_book_not_tradeable(ring):
    ring.publish(BIDS, 3, ASKS, 2)
    ring.publish_invalid(FLAG_RESYNC, venue_seq=7)
    snap = ring.snapshot_buffer()
    assert ring.read_latest(snap) == 2
    assert not snap.valid and snap.flags & FLAG_RESYNC
    assert snap.n_bids == 0 and math.isnan(snap.best_bid())


def test_sequential_reader_detects_lapping(ring):
    for _ in range(20):
        ring.publish(BIDS, 3, ASKS, 2)
    snap = ring.snapshot_buffer()
    status, got, skipped = ring.read_next(1, snap)
    # 8 slots hold publishes 13..20: 1..12 are gone and must be reported, not silently skipped.
    assert (status, got, skipped) == (READ_OK, 13, 12)
    assert ring.read_next(21, snap)[0] == READ_NOT_YET
    stats = np.zeros(2, dtype=np.int64)
    assert ring_read(ring.words, 5, snap.raw, stats) == READ_LAPPED
    assert ring_read(ring.words, 20, snap.raw, stats) == READ_OK


def test_reader_attached_readonly_cannot_write(ring):
    ring.publish(BIDS, 3, ASKS, 2)
    reader = BookRing.attach(ring.segment.name, readonly=True)
    try:
        snap = reader.snapshot_buffer()
        assert reader.read_latest(snap) == 1
        with pytest.raises(ValueError):
            reader.words[0] = 0
    finally:
        reader.close()


@pytest.mark.parametrize("strategy", [WAIT_SPIN, WAIT_SPIN_YIELD, WAIT_SLEEP])
def test_wait_returns_on_timeout_and_on_publish(ring, strategy):
    assert ring.wait(0, strategy, timeout_ns=2_000_000) == 0
    ring.publish(BIDS, 3, ASKS, 2)
    assert ring.wait(0, strategy, timeout_ns=2_000_000) == 1


def test_bad_parameters_and_wrong_segment_are_clear_errors():
    with pytest.raises(ValueError, match="power of two"):
        BookRing.create(unique_name("bad"), depth=4, n_slots=6)
    with pytest.raises(ValueError, match="depth"):
        BookRing.create(unique_name("bad"), depth=0, n_slots=8)
    with pytest.raises(SegmentError, match="does not exist"):
        BookRing.attach(unique_name("missing"))


def test_attach_to_non_ring_segment_fails(tmp_path):
    from hftpipe.shm.segment import Segment

    seg = Segment.create(unique_name("notring"), 4096)
    try:
        with pytest.raises(SegmentError, match="not a BookRing"):
            BookRing.attach(seg.name)
    finally:
        seg.close()
        seg.unlink()


def test_flags_default_valid(ring):
    ring.publish(BIDS, 3, ASKS, 2)
    snap = ring.snapshot_buffer()
    ring.read_latest(snap)
    assert snap.flags == FLAG_VALID


def test_publish_from_full_depth_book_sides(ring):
    from hftpipe.book import apply_snapshot, new_side

    bids, asks = new_side(16), new_side(16)
    nb = apply_snapshot(bids, np.array([[100.0 - i, 1.0 + i] for i in range(6)]), True)
    na = apply_snapshot(asks, np.array([[101.0 + i, 2.0 + i] for i in range(6)]), False)
    ring.publish(bids, nb, asks, na, best_last=True)
    snap = ring.snapshot_buffer()
    ring.read_latest(snap)
    np.testing.assert_array_equal(snap.bids, [[100.0 - i, 1.0 + i] for i in range(4)])
    np.testing.assert_array_equal(snap.asks, [[101.0 + i, 2.0 + i] for i in range(4)])
