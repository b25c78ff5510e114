"""FeedEngine: the I/O-free driver shared by the live feed process and ``hftpipe book-check``.

Frames go in (with their receive time); the venue parses them and applies its sync rule to one
``SymbolBook`` per symbol; whole, in-sequence, uncrossed books go out through ``publish``; any
gap, checksum mismatch, crossed book or bad level invalidates the book, is counted, and puts
the symbol in ``resync_needed`` for the I/O layer to act on (REST snapshot or resubscribe).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from hftpipe.feeds.base import (
    RESYNC_RESULTS,
    BookUpdate,
    FrameError,
    FrameKind,
    SymbolBook,
    SyncResult,
    Venue,
)

PublishFn = Callable[[str, SymbolBook, BookUpdate, int, int, int], None]
InvalidFn = Callable[[str, SyncResult], None]


@dataclass
class SymbolStats:
    """Counters of one symbol's book."""

    applied: int = 0
    buffered: int = 0
    dropped: int = 0
    ignored: int = 0
    gaps: int = 0
    resyncs: int = 0
    checksum_ok: int = 0
    checksum_bad: int = 0
    crossed: int = 0
    invalid: int = 0
    snapshots: int = 0


@dataclass
class EngineStats:
    """Counters of a connection's frames."""

    messages: int = 0
    parse_errors: int = 0
    unknown: int = 0
    acks: int = 0
    errors: int = 0
    heartbeats: int = 0
    symbols: dict[str, SymbolStats] = field(default_factory=dict)


class FeedEngine:
    """Parse → sync → publish / invalidate, for one venue and its symbols."""

    def __init__(self, venue: Venue, symbols: list[str], capacity: int = 5000,
                 publish: PublishFn | None = None, on_invalid: InvalidFn | None = None):
        self.venue = venue
        self.books = {s: SymbolBook(venue.id, s, capacity) for s in symbols}
        self.publish = publish
        self.on_invalid = on_invalid
        self.resync_needed: set[str] = set()
        self.stats = EngineStats(symbols={s: SymbolStats() for s in symbols})
        self.last_kind = FrameKind.OTHER
        self.last_info = ""

    @property
    def parse_errors(self) -> int:
        return self.stats.parse_errors

    def on_frame(self, frame: str | bytes, recv_ns: int) -> None:
        """Handle one received frame; never raises on bad input (it is counted instead)."""
        st = self.stats
        st.messages += 1
        try:
            parsed = self.venue.parse(frame)
        except FrameError:
            st.parse_errors += 1
            self.last_kind = FrameKind.OTHER
            return
        parsed_ns = time.monotonic_ns()
        kind = parsed.kind
        self.last_kind = kind
        if kind != FrameKind.BOOK:
            if kind == FrameKind.ACK:
                st.acks += 1
            elif kind == FrameKind.ERROR:
                st.errors += 1
                self.last_info = parsed.info
            elif kind == FrameKind.HEARTBEAT or kind == FrameKind.PONG:
                st.heartbeats += 1
            else:
                st.unknown += 1
            return
        for update in parsed.updates:
            self._offer(update, recv_ns, parsed_ns)

    def on_snapshot(self, symbol: str, body: str | bytes, recv_ns: int) -> SyncResult:
        """Handle a REST snapshot body for ``symbol``."""
        try:
            update = self.venue.parse_snapshot(symbol, body)
        except FrameError:
            self.stats.parse_errors += 1
            self.resync_needed.add(symbol)
            return SyncResult.INVALID
        self.stats.symbols[symbol].snapshots += 1
        return self._offer(update, recv_ns, time.monotonic_ns())

    def _offer(self, update: BookUpdate, recv_ns: int, parsed_ns: int) -> SyncResult:
        book = self.books.get(update.symbol)
        if book is None:
            self.stats.unknown += 1  # a symbol we did not subscribe to
            return SyncResult.IGNORED
        pending: list[BookUpdate] = []
        if update.is_snapshot and book.pending:
            pending = book.pending[:]
            book.pending.clear()
        result = self.venue.sync(book, update)
        if result == SyncResult.APPLIED and pending:
            # Diffs buffered while the snapshot was outstanding continue it, in order; the book is
            # published once, after the last of them.
            for buffered in pending:
                r = self.venue.sync(book, buffered)
                if r != SyncResult.APPLIED:
                    r = self._settle(book, buffered, r, recv_ns, parsed_ns, publish=False)
                    if r in RESYNC_RESULTS:
                        return r
                else:
                    self.stats.symbols[update.symbol].applied += 1
        return self._settle(book, update, result, recv_ns, parsed_ns, publish=True)

    def _settle(self, book: SymbolBook, update: BookUpdate, result: SyncResult, recv_ns: int,
                parsed_ns: int, publish: bool) -> SyncResult:
        """Count one sync result; publish a whole book, or invalidate it and ask for a resync."""
        sst = self.stats.symbols[update.symbol]
        if result == SyncResult.APPLIED:
            if book.crossed():
                result = SyncResult.CROSSED
            else:
                sst.applied += 1
                if self.venue.checksum_levels and update.checksum is not None:
                    sst.checksum_ok += 1
                if publish and self.publish is not None:
                    self.publish(update.symbol, book, update, recv_ns, parsed_ns, time.monotonic_ns())
                return result
        if result in RESYNC_RESULTS:
            if result == SyncResult.GAP:
                sst.gaps += 1
            elif result == SyncResult.CHECKSUM_BAD:
                sst.checksum_bad += 1
            elif result == SyncResult.CROSSED:
                sst.crossed += 1
            else:
                sst.invalid += 1
            sst.resyncs += 1
            book.invalidate()
            self.resync_needed.add(update.symbol)
            if self.on_invalid is not None:
                self.on_invalid(update.symbol, result)
        elif result == SyncResult.BUFFERED:
            sst.buffered += 1
        elif result == SyncResult.DROPPED:
            sst.dropped += 1
        else:
            sst.ignored += 1
        return result
