"""The venue adapter contract and the per-symbol book every venue's sync rule works on.

A venue module is one small class (as in cryptofeed): its URLs, subscribe messages, native <->
unified symbol mapping, frame parser and book-sync rule. It performs no I/O: the feed process
(sockets, REST) and ``hftpipe book-check`` (a file) drive the same ``FeedEngine`` with frames,
so what is checked offline is exactly what runs live.

Sequence ids are venue-specific but always land in ``BookUpdate``'s three fields:
``first_id``/``last_id`` (the range an update covers, equal when the venue sends one id) and
``prev_id`` (the id the venue says precedes it, -1 when the venue sends none).
"""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass, field

import numpy as np

from hftpipe.book import apply_snapshot, apply_update, best_ask, best_bid, is_crossed, new_side

EMPTY_LEVELS = np.zeros((0, 2), dtype=np.float64)


class FrameError(ValueError):
    """A frame that cannot be understood (malformed JSON, missing field, bad number): counted and skipped."""


class FrameKind(enum.IntEnum):
    """What a frame was, for counters and the connection state machine."""

    BOOK = 0  # carries book updates
    ACK = 1  # subscription acknowledged
    ERROR = 2  # the venue reported an error (e.g. bad subscription)
    PONG = 3  # answer to our ping
    HEARTBEAT = 4  # venue heartbeat / keep-alive without book content
    OTHER = 5  # a message we do not use (trades, tickers, info)


class SyncResult(enum.IntEnum):
    """Outcome of offering one update to a symbol's book."""

    APPLIED = 0  # the book changed and is whole and in sequence: publish it
    BUFFERED = 1  # held until the snapshot it must follow has arrived
    DROPPED = 2  # already contained in the book (older than the snapshot): harmless
    IGNORED = 3  # a keep-alive or no-op that changes nothing
    GAP = 4  # the sequence chain broke: the book is invalid until resynced
    CHECKSUM_BAD = 5  # the venue's checksum disagrees with our book: resync
    CROSSED = 6  # best bid >= best ask after applying: resync
    INVALID = 7  # NaN / negative / non-numeric levels: the book is untouched, resync to be safe


RESYNC_RESULTS = frozenset({SyncResult.GAP, SyncResult.CHECKSUM_BAD, SyncResult.CROSSED, SyncResult.INVALID})


@dataclass(slots=True)
class BookUpdate:
    """One parsed book message for one symbol: a snapshot or a set of level changes."""

    symbol: str  # unified, ccxt style: "BTC/USDT"
    is_snapshot: bool
    first_id: int
    last_id: int
    prev_id: int = -1
    bids: np.ndarray = field(default_factory=lambda: EMPTY_LEVELS)  # (k, 2) float64 [price, size]
    asks: np.ndarray = field(default_factory=lambda: EMPTY_LEVELS)
    exch_ns: int = 0  # venue event time, ns since the epoch (0 when the venue sends none)
    checksum: int | None = None  # the venue's checksum of the book after this update
    raw_bids: list | None = None  # price/size strings exactly as received (checksum venues)
    raw_asks: list | None = None


@dataclass(slots=True)
class Frame:
    """A parsed WebSocket frame."""

    kind: FrameKind
    updates: list[BookUpdate] = field(default_factory=list)
    info: str = ""  # for ACK / ERROR: what the venue said


class SymbolBook:
    """Full-depth book of one symbol plus its sync state; arithmetic runs in the numba kernels.

    ``bids``/``asks`` are book sides in the kernels' worst-first layout (touch at row n - 1).
    """

    def __init__(self, venue: str, symbol: str, capacity: int = 5000):
        self.venue = venue
        self.symbol = symbol
        self.capacity = capacity
        self.bids = new_side(capacity)
        self.asks = new_side(capacity)
        self.n_bids = 0
        self.n_asks = 0
        self.last_id = -1  # id of the last update applied (snapshot id right after a snapshot)
        self.synced = False
        self.awaiting_first = False  # snapshot loaded, no update applied on top of it yet
        self.pending: list[BookUpdate] = []  # updates waiting for a snapshot
        # Venue-specific text needed to recompute a checksum (e.g. OKX/Kraken strings by price).
        self.raw_bids: dict[float, tuple[str, str]] = {}
        self.raw_asks: dict[float, tuple[str, str]] = {}
        self.exch_ns = 0

    def load_snapshot(self, bids: np.ndarray, asks: np.ndarray, snapshot_id: int) -> bool:
        """Replace both sides; False (book unchanged) if any level is invalid."""
        # Check both sides before writing either: a bad ask must not leave new bids behind.
        if not _snapshot_levels_valid(bids) or not _snapshot_levels_valid(asks):
            return False
        nb = apply_snapshot(self.bids, bids, True)
        na = apply_snapshot(self.asks, asks, False)
        self.n_bids, self.n_asks = nb, na
        self.last_id = snapshot_id
        self.synced = True
        return True

    def apply(self, bids: np.ndarray, asks: np.ndarray) -> bool:
        """Apply level changes to both sides; False (book unchanged) if any level is invalid."""
        nb, na = apply_update(self.bids, self.n_bids, self.asks, self.n_asks, bids, asks)
        if nb < 0:
            return False
        self.n_bids, self.n_asks = nb, na
        return True

    def crossed(self) -> bool:
        """Best bid >= best ask."""
        return bool(is_crossed(self.bids, self.n_bids, self.asks, self.n_asks))

    def invalidate(self) -> None:
        """Forget the book: it must be rebuilt from a snapshot."""
        self.n_bids = self.n_asks = 0
        self.last_id = -1
        self.synced = False
        self.awaiting_first = False
        self.pending.clear()
        self.raw_bids.clear()
        self.raw_asks.clear()

    def best_bid(self) -> float:
        return float(best_bid(self.bids, self.n_bids))

    def best_ask(self) -> float:
        return float(best_ask(self.asks, self.n_asks))


def _snapshot_levels_valid(levels: np.ndarray) -> bool:
    # Snapshots are rare: a numpy check here keeps the kernels' own validation for the hot path.
    if len(levels) == 0:
        return True
    return bool(np.isfinite(levels).all() and (levels[:, 0] > 0).all() and (levels[:, 1] >= 0).all())


class Venue(abc.ABC):
    """Base class of a venue adapter. Subclasses set the class attributes and implement the methods."""

    id: str = ""  # ccxt exchange id: binance, binanceusdm, okx, bybit, coinbase, kraken
    ws_url: str = ""  # public market-data WebSocket endpoint
    rest_url: str | None = None  # REST base, when snapshots come over REST
    needs_rest_snapshot: bool = False  # True: books start from a REST snapshot (Binance)
    max_symbols_per_connection: int = 100
    checksum_levels: int = 0  # levels per side the venue's checksum covers (0 = no checksum)
    ping_interval_s: float = 20.0  # how often ``ping_message`` is sent, when the venue wants one

    def __init__(self, ws_url: str | None = None, rest_url: str | None = None):
        if ws_url:
            self.ws_url = ws_url
        if rest_url:
            self.rest_url = rest_url

    # -- symbols ---------------------------------------------------------------------------------
    @abc.abstractmethod
    def native_symbol(self, unified: str) -> str:
        """Venue's own symbol for a unified one (``BTC/USDT`` -> ``BTCUSDT``)."""

    @abc.abstractmethod
    def unified_symbol(self, native: str) -> str:
        """Unified symbol for the venue's own."""

    # -- connection ------------------------------------------------------------------------------
    def connection_url(self, symbols: list[str]) -> str:
        """URL to connect to for these symbols (Binance puts streams in the URL)."""
        return self.ws_url

    def subscribe_messages(self, symbols: list[str]) -> list[str]:
        """Text frames to send after connecting."""
        return []

    def resubscribe_messages(self, symbols: list[str]) -> list[str]:
        """Frames that make the venue send fresh snapshots for these symbols (resync without reconnect)."""
        return self.subscribe_messages(symbols)

    def ping_message(self) -> str | None:
        """Application-level ping the venue expects (None: WebSocket ping frames suffice)."""
        return None

    def snapshot_url(self, symbol: str) -> str | None:
        """REST URL of a book snapshot (venues with ``needs_rest_snapshot``)."""
        return None

    # -- parsing ---------------------------------------------------------------------------------
    @abc.abstractmethod
    def parse(self, frame: str | bytes) -> Frame:
        """Parse one received frame; raises FrameError when malformed."""

    def parse_snapshot(self, symbol: str, body: str | bytes) -> BookUpdate:
        """Parse a REST snapshot body; raises FrameError when malformed."""
        raise FrameError(f"{self.id} books do not start from a REST snapshot")

    # -- sync rule -------------------------------------------------------------------------------
    @abc.abstractmethod
    def sync(self, book: SymbolBook, update: BookUpdate) -> SyncResult:
        """Offer one update to a book following the venue's documented rule."""

    def book_checksum(self, book: SymbolBook) -> int | None:
        """The venue's checksum of our book (None when the venue has none)."""
        return None
