"""Binance spot and USD-M futures: diff depth stream + REST snapshot.

Book sync, from Binance's "How to manage a local order book correctly" (spot and USD-M pages):

- Both: buffer stream events until the REST snapshot arrives; drop events the snapshot already
  contains; the book then continues from ``lastUpdateId``.
- Spot: drop ``u <= lastUpdateId``; the first applied event must straddle it,
  ``U <= lastUpdateId + 1 <= u``; afterwards every event's ``U`` is the previous ``u + 1``.
- USD-M: drop ``u < lastUpdateId``; the first applied event has ``U <= lastUpdateId <= u``;
  afterwards every event's ``pu`` equals the previous event's ``u`` (update ids themselves are not
  contiguous between events). The real capture also shows a first event that starts above
  ``lastUpdateId`` while its ``pu`` equals it: that continues the snapshot exactly and is applied.

Any break in the chain is a GAP: the book is invalid until a new snapshot.
"""

from __future__ import annotations

import abc

import numpy as np
import rapidjson

from hftpipe.feeds.base import (
    EMPTY_LEVELS,
    BookUpdate,
    Frame,
    FrameError,
    FrameKind,
    SymbolBook,
    SyncResult,
    Venue,
)

# Quote assets, longest first so "FDUSD" wins over "USD" and "USDT" over "USD".
_QUOTES = sorted(["USDT", "USDC", "FDUSD", "BUSD", "TUSD", "DAI", "BTC", "ETH", "BNB", "EUR", "TRY",
                  "GBP", "BRL", "AUD", "JPY", "RUB", "UAH", "BIDR", "IDRT", "NGN", "PLN", "RON",
                  "ZAR", "ARS", "MXN", "COP", "CZK", "XRP", "TRX", "DOGE", "DOT", "USD"],
                 key=len, reverse=True)
_MAX_PENDING = 10_000  # diffs buffered while a snapshot is outstanding


def _levels(rows) -> np.ndarray:
    if not rows:
        return EMPTY_LEVELS
    try:
        arr = np.array(rows, dtype=np.float64)
    except (ValueError, TypeError) as exc:
        raise FrameError(f"bad level: {exc}") from None
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise FrameError("levels must be [price, qty] pairs")
    return arr


class _BinanceBase(Venue):
    needs_rest_snapshot = True
    max_symbols_per_connection = 200  # Binance allows 1024 streams per connection
    depth_stream = "depth@100ms"
    snapshot_path = ""

    def __init__(self, ws_url: str | None = None, rest_url: str | None = None):
        super().__init__(ws_url, rest_url)
        self._unified: dict[str, str] = {}

    def native_symbol(self, unified: str) -> str:
        base, _, quote = unified.partition("/")
        if not base or not quote:
            raise ValueError(f"not a unified symbol: {unified!r}")
        native = f"{base}{quote.split(':')[0]}".upper()
        self._unified[native] = unified
        return native

    def unified_symbol(self, native: str) -> str:
        native = native.upper()
        known = self._unified.get(native)
        if known:
            return known
        for quote in _QUOTES:
            if native.endswith(quote) and len(native) > len(quote):
                unified = f"{native[:-len(quote)]}/{quote}"
                self._unified[native] = unified
                return unified
        raise FrameError(f"cannot map Binance symbol {native!r}")

    def connection_url(self, symbols: list[str]) -> str:
        streams = "/".join(f"{self.native_symbol(s).lower()}@{self.depth_stream}" for s in symbols)
        return f"{self.ws_url.rstrip('/')}/stream?streams={streams}"

    def snapshot_url(self, symbol: str) -> str:
        return f"{self.rest_url.rstrip('/')}{self.snapshot_path}?symbol={self.native_symbol(symbol)}&limit=1000"

    def parse(self, frame: str | bytes) -> Frame:
        try:
            msg = rapidjson.loads(frame)
        except (ValueError, TypeError) as exc:
            raise FrameError(f"invalid JSON: {exc}") from None
        if not isinstance(msg, dict):
            raise FrameError("frame is not a JSON object")
        data = msg.get("data", msg)
        if not isinstance(data, dict):
            raise FrameError("data is not an object")
        if data.get("e") == "depthUpdate":
            return Frame(FrameKind.BOOK, [self._depth_update(data)])
        if "result" in msg and "id" in msg:
            return Frame(FrameKind.ACK, info=str(msg.get("id")))
        if "code" in msg and "msg" in msg or "error" in msg:
            return Frame(FrameKind.ERROR, info=rapidjson.dumps(msg))
        return Frame(FrameKind.OTHER)

    def _depth_update(self, d: dict) -> BookUpdate:
        try:
            symbol = self.unified_symbol(d["s"])
            first_id = int(d["U"])
            last_id = int(d["u"])
            prev_id = int(d["pu"]) if "pu" in d else -1
            exch_ns = int(d.get("E", 0)) * 1_000_000
            bids, asks = _levels(d["b"]), _levels(d["a"])
        except (KeyError, TypeError, ValueError) as exc:
            raise FrameError(f"bad depthUpdate: {exc!r}") from None
        return BookUpdate(symbol, False, first_id, last_id, prev_id, bids, asks, exch_ns)

    def parse_snapshot(self, symbol: str, body: str | bytes) -> BookUpdate:
        try:
            snap = rapidjson.loads(body)
            last_id = int(snap["lastUpdateId"])
            bids, asks = _levels(snap["bids"]), _levels(snap["asks"])
            exch_ns = int(snap.get("E", 0)) * 1_000_000
        except (ValueError, TypeError, KeyError) as exc:
            raise FrameError(f"bad depth snapshot: {exc!r}") from None
        return BookUpdate(symbol, True, last_id, last_id, -1, bids, asks, exch_ns)

    # -- sync ------------------------------------------------------------------------------------
    def sync(self, book: SymbolBook, update: BookUpdate) -> SyncResult:
        if update.is_snapshot:
            return self._load_snapshot(book, update)
        if not book.synced:
            if len(book.pending) >= _MAX_PENDING:
                del book.pending[0]  # the straddle check will catch what this loses
            book.pending.append(update)
            return SyncResult.BUFFERED
        return self._apply_diff(book, update)

    def _load_snapshot(self, book: SymbolBook, snap: BookUpdate) -> SyncResult:
        # Buffered diffs stay in book.pending: the engine offers them next, counting each.
        if not book.load_snapshot(snap.bids, snap.asks, snap.last_id):
            book.invalidate()
            return SyncResult.INVALID
        book.awaiting_first = True
        book.exch_ns = snap.exch_ns
        return SyncResult.APPLIED

    def _apply_diff(self, book: SymbolBook, upd: BookUpdate) -> SyncResult:
        verdict = self._continuity(book, upd)
        if verdict != SyncResult.APPLIED:
            return verdict
        if not book.apply(upd.bids, upd.asks):
            return SyncResult.INVALID
        book.last_id = upd.last_id
        book.awaiting_first = False
        book.exch_ns = upd.exch_ns
        return SyncResult.APPLIED

    @abc.abstractmethod
    def _continuity(self, book: SymbolBook, upd: BookUpdate) -> SyncResult:
        """Whether ``upd`` continues the book (each market states its own rule)."""


class BinanceSpot(_BinanceBase):
    """Binance spot: ``<symbol>@depth@100ms`` + ``/api/v3/depth``."""

    id = "binance"
    ws_url = "wss://stream.binance.com:9443"
    rest_url = "https://api.binance.com"
    snapshot_path = "/api/v3/depth"

    def _continuity(self, book: SymbolBook, upd: BookUpdate) -> SyncResult:
        last = book.last_id
        if upd.last_id <= last:
            return SyncResult.DROPPED
        if book.awaiting_first:
            return SyncResult.APPLIED if upd.first_id <= last + 1 else SyncResult.GAP
        return SyncResult.APPLIED if upd.first_id == last + 1 else SyncResult.GAP


class BinanceUsdm(_BinanceBase):
    """Binance USD-M futures: ``<symbol>@depth@100ms`` + ``/fapi/v1/depth``, chained by ``pu``."""

    id = "binanceusdm"
    ws_url = "wss://fstream.binance.com"
    rest_url = "https://fapi.binance.com"
    snapshot_path = "/fapi/v1/depth"

    def _continuity(self, book: SymbolBook, upd: BookUpdate) -> SyncResult:
        last = book.last_id
        if upd.last_id < last:
            return SyncResult.DROPPED
        if book.awaiting_first:
            if upd.first_id <= last <= upd.last_id or upd.prev_id == last:
                return SyncResult.APPLIED
            return SyncResult.GAP
        return SyncResult.APPLIED if upd.prev_id == last else SyncResult.GAP
