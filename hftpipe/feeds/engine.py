"""FeedEngine: the I/O-free driver shared by the live feed process and ``hftpipe book-check``.

Frames go in (with their receive time); the venue parses them and applies its sync rule to one
``SymbolBook`` per symbol; whole, in-sequence, uncrossed books go out through ``publish``; any
gap, checksum mismatch, crossed book or bad level invalidates the book, is counted, and puts
the symbol in ``resync_needed`` for the I/O layer to act on (REST snapshot or resubscribe).

Diffs a venue buffers while its snapshot is outstanding (``book.pending``, Binance) are offered
again, in order, right after the snapshot loads, each counted; the book is published once, after
the last of them. On a gap (including a first diff that does not reach back to a snapshot older
than the stream: Binance's "go back to step 3") the diff that revealed it and those buffered
after it are kept for the next REST snapshot instead of being thrown away.

Hot path: no logging, no allocation beyond the venue's parse and the results list entries.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

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

_APPLIED = SyncResult.APPLIED
_BUFFERED = SyncResult.BUFFERED
_DROPPED = SyncResult.DROPPED
_IGNORED = SyncResult.IGNORED
_GAP = SyncResult.GAP
_CHECKSUM_BAD = SyncResult.CHECKSUM_BAD
_CROSSED = SyncResult.CROSSED
_INVALID = SyncResult.INVALID
_BOOK = FrameKind.BOOK
# What a venue parser may raise on input it does not understand, besides FrameError: a frame
# that trips the parser is a parse error (counted, skipped), never the end of the feed.
_PARSE_FAILURES = (FrameError, ValueError, TypeError, KeyError, IndexError, AttributeError)


@dataclass(slots=True)
class SymbolStats:
    """Counters of one symbol's book (``applied`` counts every APPLIED result, snapshots included)."""

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
    snapshots: int = 0  # snapshots received (REST bodies or snapshot frames that loaded)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(slots=True)
class EngineStats:
    """Counters of a connection's frames."""

    messages: int = 0  # frames offered to on_frame
    parse_errors: int = 0  # frames (and REST bodies) that could not be parsed: skipped
    unknown: int = 0  # FrameKind.OTHER frames, and book updates for symbols we do not hold
    acks: int = 0
    errors: int = 0  # the venue reported an error
    heartbeats: int = 0  # HEARTBEAT and PONG frames
    symbols: dict[str, SymbolStats] = field(default_factory=dict)


class FeedEngine:
    """Parse → sync → publish / invalidate, for one venue and its symbols.

    ``publish(symbol, book, update, recv_ns, parsed_ns, applied_ns)`` is called with each whole,
    in-sequence, uncrossed book; ``on_invalid(symbol, result)`` each time a book is invalidated.
    Times other than ``recv_ns`` are ``time.monotonic_ns()``. With ``auto_add`` the engine opens a
    book for every symbol it sees (book-check); otherwise updates for other symbols count as
    ``unknown``.
    """

    def __init__(self, venue: Venue, symbols: list[str] | tuple[str, ...] = (), capacity: int = 5000,
                 publish: PublishFn | None = None, on_invalid: InvalidFn | None = None,
                 auto_add: bool = False):
        self.venue = venue
        self.capacity = capacity
        self.publish = publish
        self.on_invalid = on_invalid
        self.auto_add = auto_add
        self.books: dict[str, SymbolBook] = {}
        self.stats = EngineStats()
        self._sym_stats: dict[str, SymbolStats] = self.stats.symbols
        self.resync_needed: set[str] = set()
        self.last_kind = FrameKind.OTHER  # kind of the last frame (for the I/O layer's logging)
        self.last_info = ""  # what the venue said in the last ACK / ERROR frame
        self.last_error = ""  # why the last unparseable frame or body was skipped
        self._results: list[tuple[str, SyncResult]] = []
        self._rest_snapshots = bool(venue.needs_rest_snapshot)
        for s in symbols:
            self.add_symbol(s)

    def add_symbol(self, symbol: str) -> SymbolBook:
        """Open (or return) the book of ``symbol``."""
        book = self.books.get(symbol)
        if book is None:
            book = self.books[symbol] = SymbolBook(self.venue.id, symbol, self.capacity)
            self._sym_stats[symbol] = SymbolStats()
        return book

    @property
    def parse_errors(self) -> int:
        return self.stats.parse_errors

    # -- input -----------------------------------------------------------------------------------
    def on_frame(self, frame: str | bytes, recv_ns: int) -> list[tuple[str, SyncResult]]:
        """Handle one received frame; never raises on bad input (it is counted instead).

        Returns ``(symbol, result)`` per book update the frame carried. The list is reused by the
        next call: copy it to keep it.
        """
        results = self._results
        results.clear()
        st = self.stats
        st.messages += 1
        try:
            parsed = self.venue.parse(frame)
        except _PARSE_FAILURES as exc:
            st.parse_errors += 1
            self.last_kind = FrameKind.OTHER
            self.last_error = repr(exc)
            return results
        parsed_ns = time.monotonic_ns()
        kind = parsed.kind
        self.last_kind = kind
        if kind != _BOOK:
            if kind == FrameKind.ACK:
                st.acks += 1
                self.last_info = parsed.info
            elif kind == FrameKind.ERROR:
                st.errors += 1
                self.last_info = parsed.info
            elif kind == FrameKind.HEARTBEAT or kind == FrameKind.PONG:
                st.heartbeats += 1
            else:
                st.unknown += 1
            return results
        for update in parsed.updates:
            results.append((update.symbol, self._offer(update, recv_ns, parsed_ns)))
        return results

    def on_snapshot(self, symbol: str, body: str | bytes, recv_ns: int) -> SyncResult:
        """Handle a REST snapshot body for ``symbol`` (venues with ``needs_rest_snapshot``)."""
        if symbol not in self.books:
            if not self.auto_add:
                self.stats.unknown += 1
                return _IGNORED
            self.add_symbol(symbol)
        try:
            update = self.venue.parse_snapshot(symbol, body)
        except _PARSE_FAILURES as exc:
            # The book stays as it was (invalid, waiting for this snapshot): ask for another.
            self.stats.parse_errors += 1
            self.last_error = repr(exc)
            self.resync_needed.add(symbol)
            return _INVALID
        return self._offer(update, recv_ns, time.monotonic_ns())

    # -- sync ------------------------------------------------------------------------------------
    def _offer(self, update: BookUpdate, recv_ns: int, parsed_ns: int) -> SyncResult:
        book = self.books.get(update.symbol)
        if book is None:
            if not self.auto_add:
                self.stats.unknown += 1  # a symbol we did not subscribe to
                return _IGNORED
            book = self.add_symbol(update.symbol)
        if update.is_snapshot and book.pending:
            return self._snapshot_then_pending(book, update, recv_ns, parsed_ns)
        return self._settle(book, update, self.venue.sync(book, update), recv_ns, parsed_ns, True)

    def _snapshot_then_pending(self, book: SymbolBook, snap: BookUpdate, recv_ns: int,
                               parsed_ns: int) -> SyncResult:
        """Load a snapshot, then offer the diffs buffered while it was outstanding, in order."""
        pending = book.pending[:]
        book.pending.clear()
        result = self._settle(book, snap, self.venue.sync(book, snap), recv_ns, parsed_ns, False)
        if result != _APPLIED:
            book.pending[:0] = pending  # a bad snapshot: the buffered diffs wait for the next one
            return result
        last = snap
        for i, upd in enumerate(pending):
            r = self._settle(book, upd, self.venue.sync(book, upd), recv_ns, parsed_ns, False)
            if r == _APPLIED:
                last = upd
            elif r in RESYNC_RESULTS:
                if book.pending:  # a gap: what was buffered after it waits for the next snapshot
                    book.pending.extend(pending[i + 1:])
                return r
        if self.publish is not None:
            self.publish(book.symbol, book, last, recv_ns, parsed_ns, time.monotonic_ns())
        return _APPLIED

    def _settle(self, book: SymbolBook, update: BookUpdate, result: SyncResult, recv_ns: int,
                parsed_ns: int, publish: bool) -> SyncResult:
        """Count one sync result; publish a whole book, or invalidate it and ask for a resync."""
        sst = self._sym_stats[book.symbol]
        if result == _APPLIED:
            if not book.crossed():
                sst.applied += 1
                if update.is_snapshot:
                    sst.snapshots += 1
                if update.checksum is not None and self.venue.checksum_levels:
                    sst.checksum_ok += 1
                if publish and self.publish is not None:
                    self.publish(book.symbol, book, update, recv_ns, parsed_ns, time.monotonic_ns())
                return result
            result = _CROSSED
        if result == _BUFFERED:
            sst.buffered += 1
        elif result == _DROPPED:
            sst.dropped += 1
        elif result == _IGNORED:
            sst.ignored += 1
        else:  # GAP, CHECKSUM_BAD, CROSSED, INVALID: the book cannot be trusted until resynced
            if result == _GAP:
                sst.gaps += 1
            elif result == _CHECKSUM_BAD:
                sst.checksum_bad += 1
            elif result == _CROSSED:
                sst.crossed += 1
            else:
                sst.invalid += 1
            sst.resyncs += 1
            # The diff that reveals a gap (or that does not reach back to a snapshot older than the
            # stream) is itself a good, newer event: buffer it for the next REST snapshot.
            keep = result == _GAP and self._rest_snapshots and not update.is_snapshot
            book.invalidate()
            if keep:
                book.pending.append(update)
            self.resync_needed.add(book.symbol)
            if self.on_invalid is not None:
                self.on_invalid(book.symbol, result)
        return result
