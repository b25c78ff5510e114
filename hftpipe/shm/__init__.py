"""Shared-memory channels: BookRing, EventJournal, ControlBlock, and the segments beneath them."""

from hftpipe.shm.book_ring import (
    FLAG_RESYNC,
    FLAG_STALE,
    FLAG_VALID,
    READ_LAPPED,
    READ_NOT_YET,
    READ_OK,
    WAIT_SLEEP,
    WAIT_SPIN,
    WAIT_SPIN_YIELD,
    WAIT_STRATEGIES,
    BookRing,
    BookSnapshot,
)
from hftpipe.shm.control import ControlBlock, Counter, ProcState, Stage, hist_percentile
from hftpipe.shm.segment import RunActiveError, RunLock, Segment, SegmentError

__all__ = [
    "FLAG_RESYNC", "FLAG_STALE", "FLAG_VALID", "READ_LAPPED", "READ_NOT_YET", "READ_OK",
    "WAIT_SLEEP", "WAIT_SPIN", "WAIT_SPIN_YIELD", "WAIT_STRATEGIES", "BookRing", "BookSnapshot",
    "ControlBlock", "Counter", "ProcState", "Stage", "hist_percentile",
    "RunActiveError", "RunLock", "Segment", "SegmentError",
]
