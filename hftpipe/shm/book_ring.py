"""BookRing: single-writer, many-reader, latest-value ring of L2 snapshots in shared memory.

Layout (all words are 8 bytes; the segment is viewed both as int64 and float64):

    word 0..15   ring header: magic, version, depth, n_slots, slot_words, created_ns, writer pid
    word 16      cursor: publish number of the newest complete slot (0 = nothing yet)
    word 32..    n_slots slots of ``slot_words`` words, each starting on a 128-byte boundary

    slot word 0  seq: seqlock counter (odd while the writer is inside the slot)
    slot word 1  pubno: publish number held by the slot (1, 2, 3, ...)
    slot 2..11   venue_seq, exch_ns, recv_ns, parsed_ns, applied_ns, publish_ns, n_bids, n_asks,
                 flags, aux
    slot 16..    bids: depth x (price, size) float64, then asks: depth x (price, size)

The cursor lives 128 bytes away from slot 0 so the writer's two hot words never share a cache
line pair (x86 adjacent-line prefetch) with what a reader is copying. Readers never write to the
ring, so any number of them costs the writer nothing.

Protocol (Boehm 2012, see FIELD-NOTES): the writer stores ``seq = s + 1`` (odd), issues a
release fence so no payload store can move above it, writes the payload with relaxed atomic
stores, then stores ``seq = s + 2`` with release, then the cursor with release. A reader
load-acquires ``seq``, retries if odd, copies the payload with relaxed atomic loads, issues an
acquire fence so no payload load can move below it, reloads ``seq`` and accepts the copy only if
it is unchanged. On x86-64 these orderings are free at run time (TSO keeps store-store and
load-load order) but stop LLVM from reordering or hoisting; on ARM64 they become
``stlr``/``ldar``/``dmb`` and also stop the CPU. Relaxed per-word atomics keep the payload
accesses data-race-free in the C++/LLVM model, so the proof does not rely on luck.

Timestamps ``recv_ns``..``publish_ns`` are CLOCK_MONOTONIC (``time.monotonic_ns()``), comparable
across processes; ``exch_ns`` is the venue's event time since the epoch.
"""

from __future__ import annotations

import os

import numpy as np
from numba import njit

from hftpipe.shm.atomics import (
    cpu_relax,
    fence_acquire,
    fence_release,
    load_acquire,
    load_relaxed,
    now_ns,
    sched_yield,
    sleep_us,
    store_relaxed,
    store_release,
)
from hftpipe.shm.segment import Segment, SegmentError

RING_MAGIC = 0x31474E4952544648  # b"HFTRING1" little-endian
RING_VERSION = 1

H_MAGIC, H_VERSION, H_DEPTH, H_NSLOTS, H_SLOT_WORDS, H_CREATED_NS, H_WRITER_PID = range(7)
CURSOR = 16
SLOTS = 32

S_SEQ = 0
S_PUBNO = 1
S_VENUE_SEQ = 2
S_EXCH_NS = 3
S_RECV_NS = 4
S_PARSED_NS = 5
S_APPLIED_NS = 6
S_PUBLISH_NS = 7
S_N_BIDS = 8
S_N_ASKS = 9
S_FLAGS = 10
S_AUX = 11
S_LEVELS = 16

# Slot flags.
FLAG_VALID = 1  # the book is whole and in sequence; readers must not trade on a slot without it
FLAG_RESYNC = 2  # published while resyncing after a gap / checksum error / reconnect
FLAG_STALE = 4  # the feed saw no message for longer than its stale limit

# Read results.
READ_OK = 0
READ_NOT_YET = 1  # the requested publish number has not been written yet
READ_LAPPED = 2  # the writer overwrote the slot before (or while) we could read it
READ_EMPTY = 3  # nothing published yet

# Wait strategies (LMAX Disruptor style).
WAIT_SPIN = 0
WAIT_SPIN_YIELD = 1
WAIT_SLEEP = 2
WAIT_STRATEGIES = {"spin": WAIT_SPIN, "spin_yield": WAIT_SPIN_YIELD, "sleep": WAIT_SLEEP}

_MAX_TORN_RETRIES = 64
_SPINS_BEFORE_YIELD = 200


def slot_words_for(depth: int) -> int:
    """Words per slot for a depth: header + 4 words per level, rounded up to 128 bytes."""
    words = S_LEVELS + 4 * depth
    return -(-words // 16) * 16


def ring_bytes(depth: int, n_slots: int) -> int:
    """Segment size for a ring."""
    return 8 * (SLOTS + n_slots * slot_words_for(depth))


@njit(cache=True)
def ring_publish(words, fwords, bids, n_bids, asks, n_asks, venue_seq, exch_ns, recv_ns,
                 parsed_ns, applied_ns, flags, aux, best_last=False):
    """Publish the top of a book into the next slot; returns its publish number.

    ``bids``/``asks`` are ``[price, size]`` rows, best first, or with ``best_last`` the feeds'
    full-depth book sides (worst first, touch at row n - 1); the slot is always best first.
    """
    depth = words[H_DEPTH]
    n_slots = words[H_NSLOTS]
    slot_words = words[H_SLOT_WORDS]
    pubno = load_relaxed(words, CURSOR) + 1
    base = SLOTS + ((pubno - 1) & (n_slots - 1)) * slot_words
    seq = load_relaxed(words, base + S_SEQ)
    store_relaxed(words, base + S_SEQ, seq + 1)
    fence_release()
    nb = min(n_bids, depth)
    na = min(n_asks, depth)
    store_relaxed(words, base + S_PUBNO, pubno)
    store_relaxed(words, base + S_VENUE_SEQ, venue_seq)
    store_relaxed(words, base + S_EXCH_NS, exch_ns)
    store_relaxed(words, base + S_RECV_NS, recv_ns)
    store_relaxed(words, base + S_PARSED_NS, parsed_ns)
    store_relaxed(words, base + S_APPLIED_NS, applied_ns)
    store_relaxed(words, base + S_N_BIDS, nb)
    store_relaxed(words, base + S_N_ASKS, na)
    store_relaxed(words, base + S_FLAGS, flags)
    store_relaxed(words, base + S_AUX, aux)
    lv = base + S_LEVELS
    for i in range(depth):
        if i < nb:
            r = n_bids - 1 - i if best_last else i
            store_relaxed(fwords, lv + 2 * i, bids[r, 0])
            store_relaxed(fwords, lv + 2 * i + 1, bids[r, 1])
        else:
            store_relaxed(fwords, lv + 2 * i, 0.0)
            store_relaxed(fwords, lv + 2 * i + 1, 0.0)
    lv += 2 * depth
    for i in range(depth):
        if i < na:
            r = n_asks - 1 - i if best_last else i
            store_relaxed(fwords, lv + 2 * i, asks[r, 0])
            store_relaxed(fwords, lv + 2 * i + 1, asks[r, 1])
        else:
            store_relaxed(fwords, lv + 2 * i, 0.0)
            store_relaxed(fwords, lv + 2 * i + 1, 0.0)
    store_relaxed(words, base + S_PUBLISH_NS, now_ns())
    store_release(words, base + S_SEQ, seq + 2)
    store_release(words, CURSOR, pubno)
    return pubno


@njit(cache=True)
def ring_read(words, pubno, out, stats):
    """Copy the slot holding ``pubno`` into ``out`` (int64[slot_words]); returns a READ_* code.

    ``stats[0]`` accumulates torn-read retries.
    """
    n_slots = words[H_NSLOTS]
    slot_words = words[H_SLOT_WORDS]
    base = SLOTS + ((pubno - 1) & (n_slots - 1)) * slot_words
    for _ in range(_MAX_TORN_RETRIES):
        s1 = load_acquire(words, base + S_SEQ)
        if s1 & 1:
            stats[0] += 1
            cpu_relax()
            continue
        for i in range(slot_words):
            out[i] = load_relaxed(words, base + i)
        fence_acquire()
        s2 = load_relaxed(words, base + S_SEQ)
        if s1 != s2:
            stats[0] += 1
            continue
        held = out[S_PUBNO]
        if held == pubno:
            return READ_OK
        if held > pubno:
            return READ_LAPPED
        return READ_NOT_YET
    # The writer keeps re-entering this very slot: it is lapping us.
    return READ_LAPPED


@njit(cache=True)
def ring_read_latest(words, out, stats):
    """Copy the newest complete snapshot into ``out``; returns its publish number (0 when empty)."""
    while True:
        cursor = load_acquire(words, CURSOR)
        if cursor == 0:
            return 0
        status = ring_read(words, cursor, out, stats)
        if status == READ_OK:
            return cursor
        # Lapped while copying: a newer snapshot exists, take that one instead.
        stats[1] += 1


@njit(cache=True)
def ring_read_next(words, next_pubno, out, stats):
    """Sequential consumer step: read ``next_pubno`` or, if it was overwritten, the oldest still held.

    Returns (status, pubno, skipped). With READ_OK, ``pubno`` is the publish copied into ``out``;
    otherwise it is the publish number to ask for next. ``skipped`` counts publishes lost to
    being lapped, so a consumer always knows exactly how much it missed.
    """
    cursor = load_acquire(words, CURSOR)
    if next_pubno > cursor:
        return READ_NOT_YET, next_pubno, 0
    n_slots = words[H_NSLOTS]
    skipped = 0
    want = next_pubno
    while True:
        oldest = cursor - n_slots + 1
        if want < oldest:
            skipped += oldest - want
            want = oldest
        status = ring_read(words, want, out, stats)
        if status == READ_OK:
            return READ_OK, want, skipped
        if status == READ_NOT_YET:
            return READ_NOT_YET, want, skipped
        cursor = load_acquire(words, CURSOR)
        if want >= cursor - n_slots + 1:
            # The writer is inside this slot for publish want + n_slots: want is lost.
            skipped += 1
            want += 1
            if want > cursor:
                return READ_NOT_YET, want, skipped


@njit(cache=True)
def ring_wait(words, last_pubno, strategy, timeout_ns):
    """Wait until the cursor passes ``last_pubno`` or ``timeout_ns`` elapses; returns the cursor."""
    cursor = load_acquire(words, CURSOR)
    if cursor != last_pubno:
        return cursor
    deadline = now_ns() + timeout_ns
    spins = 0
    backoff_us = 1
    while True:
        cursor = load_acquire(words, CURSOR)
        if cursor != last_pubno:
            return cursor
        spins += 1
        if strategy == WAIT_SPIN:
            cpu_relax()
        elif strategy == WAIT_SPIN_YIELD:
            if spins < _SPINS_BEFORE_YIELD:
                cpu_relax()
            else:
                sched_yield()
        else:
            sleep_us(np.uint32(backoff_us))
            if backoff_us < 1000:
                backoff_us *= 2
        if (spins & 63) == 0 or strategy == WAIT_SLEEP:
            if now_ns() >= deadline:
                return cursor


class BookSnapshot:
    """A reader's private copy of one slot, with named views (no allocation per read)."""

    def __init__(self, depth: int):
        self.depth = depth
        self.raw = np.zeros(slot_words_for(depth), dtype=np.int64)
        f = self.raw.view(np.float64)
        self.bids = f[S_LEVELS:S_LEVELS + 2 * depth].reshape(depth, 2)
        self.asks = f[S_LEVELS + 2 * depth:S_LEVELS + 4 * depth].reshape(depth, 2)

    pubno = property(lambda self: int(self.raw[S_PUBNO]))
    venue_seq = property(lambda self: int(self.raw[S_VENUE_SEQ]))
    exch_ns = property(lambda self: int(self.raw[S_EXCH_NS]))
    recv_ns = property(lambda self: int(self.raw[S_RECV_NS]))
    parsed_ns = property(lambda self: int(self.raw[S_PARSED_NS]))
    applied_ns = property(lambda self: int(self.raw[S_APPLIED_NS]))
    publish_ns = property(lambda self: int(self.raw[S_PUBLISH_NS]))
    n_bids = property(lambda self: int(self.raw[S_N_BIDS]))
    n_asks = property(lambda self: int(self.raw[S_N_ASKS]))
    flags = property(lambda self: int(self.raw[S_FLAGS]))
    aux = property(lambda self: int(self.raw[S_AUX]))

    @property
    def valid(self) -> bool:
        return bool(self.raw[S_FLAGS] & FLAG_VALID)

    def best_bid(self) -> float:
        return float(self.bids[0, 0]) if self.n_bids else float("nan")

    def best_ask(self) -> float:
        return float(self.asks[0, 0]) if self.n_asks else float("nan")


class BookRing:
    """One (venue, symbol) ring. ``create`` in the owner, ``attach`` everywhere else."""

    def __init__(self, segment: Segment):
        self.segment = segment
        self.words = segment.array(np.int64)
        self.fwords = segment.array(np.float64)
        if int(self.words[H_MAGIC]) != RING_MAGIC:
            self.words = self.fwords = None
            segment.close()
            raise SegmentError(f"segment {segment.name} is not a BookRing (bad magic)")
        self.depth = int(self.words[H_DEPTH])
        self.n_slots = int(self.words[H_NSLOTS])
        self.slot_words = int(self.words[H_SLOT_WORDS])
        self.stats = np.zeros(2, dtype=np.int64)  # [torn retries, lapped re-reads]
        self._empty_levels = np.zeros((1, 2))

    @classmethod
    def create(cls, name: str, depth: int, n_slots: int) -> BookRing:
        """Create a ring segment (owner side)."""
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        if n_slots < 2 or n_slots & (n_slots - 1):
            raise ValueError(f"n_slots must be a power of two >= 2, got {n_slots}")
        seg = Segment.create(name, ring_bytes(depth, n_slots))
        w = seg.array(np.int64)
        w[H_DEPTH] = depth
        w[H_NSLOTS] = n_slots
        w[H_SLOT_WORDS] = slot_words_for(depth)
        w[H_CREATED_NS] = _monotonic_ns()
        w[H_VERSION] = RING_VERSION
        w[H_MAGIC] = RING_MAGIC
        del w
        return cls(seg)

    @classmethod
    def attach(cls, name: str, readonly: bool = False) -> BookRing:
        """Attach to an existing ring (writer or reader side)."""
        return cls(Segment.attach(name, readonly=readonly))

    def claim_writer(self) -> None:
        """Record the writing process's pid in the header (informational)."""
        self.words[H_WRITER_PID] = os.getpid()

    def publish(self, bids, n_bids, asks, n_asks, venue_seq=0, exch_ns=0, recv_ns=0,
                parsed_ns=0, applied_ns=0, flags=FLAG_VALID, aux=0, best_last=False) -> int:
        """Publish a snapshot from Python (the feed's hot path calls ``ring_publish`` directly)."""
        return ring_publish(self.words, self.fwords, bids, n_bids, asks, n_asks, venue_seq, exch_ns,
                            recv_ns, parsed_ns, applied_ns, flags, aux, best_last)

    def publish_invalid(self, flags: int = FLAG_RESYNC, venue_seq: int = 0, recv_ns: int = 0) -> int:
        """Publish an empty, not-valid slot: readers stop trading this book until it is whole again."""
        e = self._empty_levels
        return ring_publish(self.words, self.fwords, e, 0, e, 0, venue_seq, 0, recv_ns, recv_ns,
                            recv_ns, flags & ~FLAG_VALID, 0)

    def snapshot_buffer(self) -> BookSnapshot:
        """A reusable buffer for reads from this ring."""
        return BookSnapshot(self.depth)

    def read_latest(self, snap: BookSnapshot) -> int:
        """Copy the newest snapshot into ``snap``; returns its publish number (0 if none)."""
        return ring_read_latest(self.words, snap.raw, self.stats)

    def read_next(self, next_pubno: int, snap: BookSnapshot) -> tuple[int, int, int]:
        """Sequential read; see ``ring_read_next``."""
        return ring_read_next(self.words, next_pubno, snap.raw, self.stats)

    def wait(self, last_pubno: int, strategy: int = WAIT_SPIN_YIELD, timeout_ns: int = 100_000_000) -> int:
        """Block (per the wait strategy) until a publish after ``last_pubno``; returns the cursor."""
        return ring_wait(self.words, last_pubno, strategy, timeout_ns)

    @property
    def cursor(self) -> int:
        return int(self.words[CURSOR])

    def close(self) -> None:
        """Drop our views, then unmap."""
        self.words = self.fwords = None
        self.segment.close()

    def unlink(self) -> None:
        """Remove the segment name (owner only)."""
        self.segment.unlink()


def _monotonic_ns() -> int:
    import time

    return time.monotonic_ns()
