"""OKX v5 public order books: ``books`` (snapshot + increments), ``books5`` and ``bbo-tbt`` (snapshots).

Book sync, from OKX's v5 docs ("WS / Order book channel", "Sequence ID", "Checksum"):

- ``books``: "400 depth levels will be pushed in the initial full snapshot. Incremental data will
  be pushed every 100 ms"; ``action`` is ``snapshot`` or ``update``. ``books5`` / ``bbo-tbt`` push
  a snapshot every time (no ``action``, no ``prevSeqId``): each one replaces the book.
- Sequence: "The ``prevSeqId`` in the new message matches with ``seqId`` of the previous
  message. The smallest possible sequence ID value is 0, except in snapshot messages where the
  prevSeqId is always -1." Any other ``prevSeqId`` is a GAP.
- Keep-alive: "OKX will send a message with 'asks': [], 'bids': [] ... ``seqId`` is the same as
  the last sent message and ``prevSeqId`` equals to ``seqId``": IGNORED (its checksum is still
  checked). One whose ``seqId`` is not our last one means we missed messages: GAP.
- Reset: "The sequence number may be reset due to maintenance, and in this case, users will
  receive an incremental message with ``seqId`` smaller than ``prevSeqId``. However, subsequent
  messages will follow the regular sequencing rule." (docs example: prevSeqId = 15, seqId = 3,
  then prevSeqId = 3, seqId = 5). So a lower ``seqId`` is applied like any update (its
  ``prevSeqId`` still chains to our last ``seqId``) and the chain continues from it.
- ``seqId``/``prevSeqId`` are optional (older recordings lack them): without them only the
  checksum guards the book.
- Checksum: "Use the first 25 bids and asks in the full load to form a string (where a colon
  connects the price and size in an ask or a bid), and then calculate the CRC32 value (32-bit
  signed integer)", bids and asks "alternately arranged"; "When the bid or ask depth data is
  less than 25 levels, the missing depth data will be ignored". The strings are the ones
  received (``book.raw_bids`` / ``book.raw_asks`` keep them per price level).
- OKX announced (21 May 2026) that the ``checksum`` field of ``books`` will "always return 0
  and must no longer be used" (production from 23 June 2026): a checksum of 0 is therefore read
  as "none sent" and the ``seqId`` chain is what guards the book.

An increment that arrives while the book waits for a snapshot is DROPPED: the snapshot that
follows (re)subscribing contains it.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

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

CHECKSUM_LEVELS = 25
# Channels whose pushes are increments on top of a snapshot (and carry prevSeqId / checksum).
_INCREMENTAL_CHANNELS = frozenset({"books", "books-l2-tbt", "books50-l2-tbt"})
# Channels that push a whole (shallow) book every time.
_SNAPSHOT_CHANNELS = frozenset({"books5", "bbo-tbt"})
BOOK_CHANNELS = _INCREMENTAL_CHANNELS | _SNAPSHOT_CHANNELS
_RAW_SLACK = 64  # stale raw-string entries tolerated before a prune (levels the book dropped)


def okx_checksum(bids: Sequence[Sequence[str]], asks: Sequence[Sequence[str]],
                 levels: int = CHECKSUM_LEVELS) -> int:
    """OKX's checksum of a book given as best-first ``(price_str, size_str)`` rows per side.

    ``bid1:ask1:bid2:ask2...`` over the top ``levels`` of each side (the longer side goes on
    alone), CRC32 of that text as a signed 32-bit integer. Also usable by the simulator.
    """
    nb = min(len(bids), levels)
    na = min(len(asks), levels)
    parts: list[str] = []
    for i in range(max(nb, na)):
        if i < nb:
            b = bids[i]
            parts.append(b[0])
            parts.append(b[1])
        if i < na:
            a = asks[i]
            parts.append(a[0])
            parts.append(a[1])
    crc = zlib.crc32(":".join(parts).encode())
    return crc - 0x1_0000_0000 if crc & 0x8000_0000 else crc


def _strict_int(value, name: str) -> int:
    if type(value) is int:
        return value
    raise FrameError(f"{name} is not an integer: {value!r}")


def _side(rows) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """OKX levels ``[px, sz, liqOrders(deprecated), numOrders]`` -> float64 (k, 2) and the strings."""
    if type(rows) is not list:
        raise FrameError("book side is not a list")
    if not rows:
        return EMPTY_LEVELS, []
    try:
        pairs = [(r[0], r[1]) for r in rows]
    except (TypeError, IndexError, KeyError):
        raise FrameError("book level is not a [price, size, ...] array") from None
    for px, sz in pairs:
        if type(px) is not str or type(sz) is not str:
            raise FrameError(f"price/size must be strings: {px!r}, {sz!r}")
    try:
        arr = np.array(pairs, dtype=np.float64)
    except ValueError as exc:
        raise FrameError(f"bad level: {exc}") from None
    return arr, pairs


def _load_raw(raw: dict, levels: np.ndarray, strings: list | None) -> None:
    raw.clear()
    _merge_raw(raw, levels, strings)


def _merge_raw(raw: dict, levels: np.ndarray, strings: list | None) -> None:
    """Keep the received strings per price (size 0 deletes), in message order like the kernels."""
    if not strings:
        return
    for price, size, text in zip(levels[:, 0].tolist(), levels[:, 1].tolist(), strings, strict=True):
        if size == 0.0:
            raw.pop(price, None)
        else:
            raw[price] = text


def _prune_raw(raw: dict, side: np.ndarray, n: int) -> None:
    """Forget strings of levels the book no longer holds (dropped past its capacity)."""
    if len(raw) > n + _RAW_SLACK:
        kept = {p: raw[p] for p in side[:n, 0].tolist() if p in raw}
        raw.clear()
        raw.update(kept)


class Okx(Venue):
    """OKX v5 public WebSocket order books (spot ``BTC-USDT``, also ``-SWAP`` / dated contracts)."""

    id = "okx"
    ws_url = "wss://ws.okx.com:8443/ws/v5/public"
    # "If you need to subscribe to many 50 or 400 depth level channels, it is recommended to
    # subscribe through multiple websocket connections, with each of less than 30 channels."
    max_symbols_per_connection = 29
    checksum_levels = CHECKSUM_LEVELS
    # "The connection will break automatically if ... data has not been pushed for more than 30
    # seconds": send the text 'ping' more often than that.
    ping_interval_s = 20.0

    def __init__(self, ws_url: str | None = None, rest_url: str | None = None, channel: str = "books"):
        super().__init__(ws_url, rest_url)
        if channel not in BOOK_CHANNELS:
            raise ValueError(f"unknown OKX book channel {channel!r}; known: {', '.join(sorted(BOOK_CHANNELS))}")
        self.channel = channel
        self._unified: dict[str, str] = {}

    # -- symbols ---------------------------------------------------------------------------------
    def native_symbol(self, unified: str) -> str:
        """``BTC/USDT`` -> ``BTC-USDT``; ``BTC/USDT:USDT`` -> ``BTC-USDT-SWAP``; ``BTC/USD:BTC-250328`` -> ``BTC-USD-250328``."""
        base, _, rest = unified.partition("/")
        quote, _, settle = rest.partition(":")
        if not base or not quote:
            raise ValueError(f"not a unified symbol: {unified!r}")
        native = f"{base}-{quote}".upper()
        if settle:
            _, _, expiry = settle.partition("-")
            native += f"-{expiry}" if expiry else "-SWAP"
        self._unified[native] = unified
        return native

    def unified_symbol(self, native: str) -> str:
        known = self._unified.get(native)
        if known:
            return known
        parts = native.split("-")
        if len(parts) < 2 or not all(parts):
            raise FrameError(f"cannot map OKX instId {native!r}")
        base, quote = parts[0], parts[1]
        if len(parts) == 2:
            unified = f"{base}/{quote}"
        elif len(parts) == 3:
            settle = base if quote == "USD" else quote  # USD-quoted contracts are coin-margined
            unified = f"{base}/{quote}:{settle}" if parts[2] == "SWAP" else f"{base}/{quote}:{settle}-{parts[2]}"
        else:
            raise FrameError(f"cannot map OKX instId {native!r}")  # options are not books we keep
        self._unified[native] = unified
        return unified

    # -- connection ------------------------------------------------------------------------------
    def _args(self, symbols: list[str]) -> list[dict]:
        return [{"channel": self.channel, "instId": self.native_symbol(s)} for s in symbols]

    def subscribe_messages(self, symbols: list[str]) -> list[str]:
        if not symbols:
            return []
        return [rapidjson.dumps({"op": "subscribe", "args": self._args(symbols)})]

    def resubscribe_messages(self, symbols: list[str]) -> list[str]:
        """Unsubscribe then subscribe: the new subscription starts with a fresh snapshot."""
        if not symbols:
            return []
        args = self._args(symbols)
        return [rapidjson.dumps({"op": "unsubscribe", "args": args}),
                rapidjson.dumps({"op": "subscribe", "args": args})]

    def ping_message(self) -> str:
        return "ping"

    # -- parsing ---------------------------------------------------------------------------------
    def parse(self, frame: str | bytes) -> Frame:
        if frame == "pong" or frame == b"pong":
            return Frame(FrameKind.PONG)
        try:
            msg = rapidjson.loads(frame)
        except (ValueError, TypeError) as exc:
            raise FrameError(f"invalid JSON: {exc}") from None
        if type(msg) is not dict:
            raise FrameError("frame is not a JSON object")
        event = msg.get("event")
        if event is not None:
            return self._event(event, msg)
        arg = msg.get("arg")
        if arg is None:
            return Frame(FrameKind.OTHER)
        if type(arg) is not dict:
            raise FrameError("arg is not an object")
        channel = arg.get("channel")
        if channel not in BOOK_CHANNELS:
            return Frame(FrameKind.OTHER)  # trades, tickers, ...
        inst = arg.get("instId")
        data = msg.get("data")
        if type(inst) is not str or type(data) is not list:
            raise FrameError("book push without instId or data list")
        symbol = self.unified_symbol(inst)
        if channel in _SNAPSHOT_CHANNELS:
            is_snapshot = True
        else:
            action = msg.get("action")
            if action == "snapshot":
                is_snapshot = True
            elif action == "update":
                is_snapshot = False
            else:
                raise FrameError(f"bad action {action!r}")
        return Frame(FrameKind.BOOK, [self._update(symbol, is_snapshot, d) for d in data])

    @staticmethod
    def _event(event, msg: dict) -> Frame:
        if event == "subscribe" or event == "unsubscribe":
            arg = msg.get("arg")
            what = f"{arg.get('channel')}:{arg.get('instId')}" if type(arg) is dict else ""
            return Frame(FrameKind.ACK, info=f"{event} {what}".strip())
        if event == "error":
            return Frame(FrameKind.ERROR, info=f"{msg.get('code', '')} {msg.get('msg', '')}".strip())
        # notice (e.g. 64008 "The connection will soon be closed for a service upgrade"),
        # channel-conn-count, login, ...
        return Frame(FrameKind.OTHER, info=f"{event} {msg.get('code', '')} {msg.get('msg', '')}".strip())

    @staticmethod
    def _update(symbol: str, is_snapshot: bool, d) -> BookUpdate:
        if type(d) is not dict:
            raise FrameError("book data entry is not an object")
        try:
            bids, raw_bids = _side(d["bids"])
            asks, raw_asks = _side(d["asks"])
        except KeyError as exc:
            raise FrameError(f"book data without {exc}") from None
        seq = d.get("seqId")
        seq = -1 if seq is None else _strict_int(seq, "seqId")
        prev = d.get("prevSeqId")
        prev = -1 if prev is None or is_snapshot else _strict_int(prev, "prevSeqId")
        checksum = d.get("checksum")
        if checksum is not None:
            checksum = _strict_int(checksum, "checksum") or None  # 0: deprecated field, not a checksum
        ts = d.get("ts")
        try:
            exch_ns = int(ts) * 1_000_000 if ts is not None else 0
        except (TypeError, ValueError):
            raise FrameError(f"bad ts {ts!r}") from None
        return BookUpdate(symbol, is_snapshot, seq, seq, prev, bids, asks, exch_ns, checksum,
                          raw_bids, raw_asks)

    # -- sync ------------------------------------------------------------------------------------
    def sync(self, book: SymbolBook, update: BookUpdate) -> SyncResult:
        if update.is_snapshot:
            if not book.load_snapshot(update.bids, update.asks, update.last_id):
                book.invalidate()  # load_snapshot may have replaced one side already
                return SyncResult.INVALID
            _load_raw(book.raw_bids, update.bids, update.raw_bids)
            _load_raw(book.raw_asks, update.asks, update.raw_asks)
            book.awaiting_first = False
            book.exch_ns = update.exch_ns
            return self._verify(book, update, SyncResult.APPLIED)
        if not book.synced:
            return SyncResult.DROPPED
        seq, prev, last = update.last_id, update.prev_id, book.last_id
        if prev >= 0 and last >= 0 and prev != last:
            return SyncResult.GAP  # seq < prev with prev == last is the documented reset: fine
        if update.bids.shape[0] == 0 and update.asks.shape[0] == 0 and (seq < 0 or seq == prev):
            return self._verify(book, update, SyncResult.IGNORED)  # keep-alive
        if not book.apply(update.bids, update.asks):
            return SyncResult.INVALID
        _merge_raw(book.raw_bids, update.bids, update.raw_bids)
        _merge_raw(book.raw_asks, update.asks, update.raw_asks)
        _prune_raw(book.raw_bids, book.bids, book.n_bids)
        _prune_raw(book.raw_asks, book.asks, book.n_asks)
        if seq >= 0:
            book.last_id = seq
        book.exch_ns = update.exch_ns
        return self._verify(book, update, SyncResult.APPLIED)

    def _verify(self, book: SymbolBook, update: BookUpdate, ok: SyncResult) -> SyncResult:
        if update.checksum is None or self.book_checksum(book) == update.checksum:
            return ok
        return SyncResult.CHECKSUM_BAD

    def book_checksum(self, book: SymbolBook) -> int:
        """OKX's checksum of our book: top 25 levels per side, from the strings received.

        A level without its received text (never the case when every change went through
        ``sync``) falls back to Python's float repr, which then simply fails the comparison.
        """
        k = self.checksum_levels
        return okx_checksum(_top_strings(book.bids, book.n_bids, book.raw_bids, k),
                            _top_strings(book.asks, book.n_asks, book.raw_asks, k), k)


def _top_strings(side: np.ndarray, n: int, raw: dict, k: int) -> list:
    """Best-first received strings of a side's top ``k`` levels (worst-first layout: touch at n - 1)."""
    rows = side[max(n - k, 0):n]
    try:
        return [raw[p] for p in rows[::-1, 0].tolist()]
    except KeyError:
        return [raw.get(p) or (repr(p), repr(s)) for p, s in rows[::-1].tolist()]
