"""Bybit v5 public order books: ``orderbook.{depth}.{symbol}`` on the spot or linear stream.

Book sync, from Bybit's v5 docs ("WebSocket Stream / Public / Orderbook"):

- "Once you have subscribed successfully, you will receive a snapshot. The WebSocket will keep
  pushing delta messages every time the orderbook changes. If you receive a new snapshot
  message, you will have to reset your local orderbook. If there is a problem on Bybit's end, a
  snapshot will be re-sent, which is guaranteed to contain the latest data."
- Deltas: "If you receive an amount that is 0, delete the entry; If you receive an amount that
  does not exist, insert it; If the entry exists, you simply update the value."
- ``u`` (update ID): "Occasionally, you'll receive "u"=1, which is a snapshot data due to the
  restart of the service. So please overwrite your local orderbook" - a message with ``u == 1``
  replaces the book whatever its ``type`` says (with empty sides it empties it: the docs' full
  orderbook page lists delisting and pre-auction states sent as ``u=1`` with no levels).
- Continuity: the current v5 table calls ``u`` only "Update ID"; earlier wordings of the same
  field say "Update ID. Is a sequence." and "Update id, is always in sequence", and the SBE
  level-50 feed documents it as "Update id (monotonic per symbol). Useful to check
  continuity." A delta must therefore carry the previous ``u`` + 1, otherwise GAP; a delta with
  ``u`` at or below the book's (already applied, e.g. before the snapshot) is DROPPED.
- ``seq`` is a "Cross sequence ... to compare different levels orderbook data": not a per-book
  chain, not used. ``cts`` ("The timestamp from the matching engine when this orderbook data is
  produced") gives the event time, else ``ts``.
- Level 1: "if 3 seconds have elapsed without a change in the orderbook, a snapshot message will
  be pushed again, and the field u will be the same": snapshots simply replace.

A delta that arrives while the book waits for a snapshot is DROPPED: the snapshot that follows
(re)subscribing contains it. Bybit has no book checksum.
"""

from __future__ import annotations

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

# Quote assets, longest first so "FDUSD" wins over "USD..." and "USDT" over shorter endings.
_QUOTES = sorted(["USDT", "USDC", "USDE", "USDR", "FDUSD", "DAI", "BTC", "ETH", "EUR", "BRL", "PLN", "TRY",
                  "GBP", "MNT", "KZT", "BRZ", "USD"], key=len, reverse=True)
_URLS = {
    "spot": "wss://stream.bybit.com/v5/public/spot",
    "linear": "wss://stream.bybit.com/v5/public/linear",
}
# Depths per category (docs: "Depths" of the orderbook topic).
_DEPTHS = {"spot": (1, 50, 200, 1000), "linear": (1, 50, 200, 500, 1000)}
# "Spot can input up to 10 args for each subscription request sent to one connection."
_ARGS_PER_REQUEST = 10


def _levels(rows) -> np.ndarray:
    if type(rows) is not list:
        raise FrameError("book side is not a list")
    if not rows:
        return EMPTY_LEVELS
    try:
        arr = np.array(rows, dtype=np.float64)
    except (ValueError, TypeError) as exc:
        raise FrameError(f"bad level: {exc}") from None
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise FrameError("levels must be [price, size] pairs")
    return arr


def _int(value, name: str) -> int:
    if type(value) is int:
        return value
    if type(value) is str and value.isdigit():
        return int(value)
    raise FrameError(f"{name} is not an integer: {value!r}")


class Bybit(Venue):
    """Bybit v5 public order book (``category="spot"`` or ``"linear"``), default depth 50."""

    id = "bybit"
    ws_url = _URLS["spot"]
    # Bybit's own advice: "send the ping heartbeat packet every 20 seconds".
    ping_interval_s = 20.0

    def __init__(self, ws_url: str | None = None, rest_url: str | None = None, category: str = "spot",
                 depth: int = 50):
        if category not in _URLS:
            raise ValueError(f"unknown Bybit category {category!r}; known: {', '.join(_URLS)}")
        if depth not in _DEPTHS[category]:
            raise ValueError(f"Bybit {category} order books come in depths {_DEPTHS[category]}, not {depth}")
        self.ws_url = _URLS[category]
        super().__init__(ws_url, rest_url)
        self.category = category
        self.depth = depth
        self._unified: dict[str, str] = {}

    # -- symbols ---------------------------------------------------------------------------------
    def native_symbol(self, unified: str) -> str:
        """``BTC/USDT`` (or ``BTC/USDT:USDT`` on linear) -> ``BTCUSDT``."""
        base, _, rest = unified.partition("/")
        quote = rest.partition(":")[0]
        if not base or not quote:
            raise ValueError(f"not a unified symbol: {unified!r}")
        native = f"{base}{quote}".upper()
        self._unified[native] = unified
        return native

    def unified_symbol(self, native: str) -> str:
        known = self._unified.get(native)
        if known:
            return known
        for quote in _QUOTES:
            if native.endswith(quote) and len(native) > len(quote):
                unified = f"{native[:-len(quote)]}/{quote}"
                if self.category == "linear":
                    unified += f":{quote}"
                self._unified[native] = unified
                return unified
        raise FrameError(f"cannot map Bybit symbol {native!r}")

    # -- connection ------------------------------------------------------------------------------
    def _topics(self, symbols: list[str]) -> list[str]:
        return [f"orderbook.{self.depth}.{self.native_symbol(s)}" for s in symbols]

    @staticmethod
    def _requests(op: str, topics: list[str]) -> list[str]:
        return [rapidjson.dumps({"op": op, "args": topics[i:i + _ARGS_PER_REQUEST]})
                for i in range(0, len(topics), _ARGS_PER_REQUEST)]

    def subscribe_messages(self, symbols: list[str]) -> list[str]:
        return self._requests("subscribe", self._topics(symbols))

    def resubscribe_messages(self, symbols: list[str]) -> list[str]:
        """Unsubscribe then subscribe (a second subscribe to a live topic is refused): a fresh snapshot follows."""
        topics = self._topics(symbols)
        return self._requests("unsubscribe", topics) + self._requests("subscribe", topics)

    def ping_message(self) -> str:
        return '{"op":"ping"}'

    # -- parsing ---------------------------------------------------------------------------------
    def parse(self, frame: str | bytes) -> Frame:
        try:
            msg = rapidjson.loads(frame)
        except (ValueError, TypeError) as exc:
            raise FrameError(f"invalid JSON: {exc}") from None
        if type(msg) is not dict:
            raise FrameError("frame is not a JSON object")
        topic = msg.get("topic")
        if topic is not None:
            if type(topic) is not str:
                raise FrameError("topic is not a string")
            if not topic.startswith("orderbook."):
                return Frame(FrameKind.OTHER)
            return Frame(FrameKind.BOOK, [self._book(msg)])
        op = msg.get("op")
        if op is None:
            return Frame(FrameKind.OTHER)
        # Public pong: {"success":true,"ret_msg":"pong","conn_id":...,"op":"ping"};
        # private-style pong: {"op":"pong","args":[...],"conn_id":...}.
        if op == "pong" or (op == "ping" and msg.get("ret_msg") == "pong"):
            return Frame(FrameKind.PONG)
        success = msg.get("success")
        if success is True:
            return Frame(FrameKind.ACK, info=str(op))
        if success is False:
            return Frame(FrameKind.ERROR, info=f"{op}: {msg.get('ret_msg', '')}")
        return Frame(FrameKind.OTHER)

    def _book(self, msg: dict) -> BookUpdate:
        kind = msg.get("type")
        if kind != "snapshot" and kind != "delta":
            raise FrameError(f"bad orderbook type {kind!r}")
        data = msg.get("data")
        if type(data) is not dict:
            raise FrameError("orderbook data is not an object")
        try:
            native = data["s"]
            u = _int(data["u"], "u")
            bids, asks = _levels(data["b"]), _levels(data["a"])
        except KeyError as exc:
            raise FrameError(f"orderbook data without {exc}") from None
        if type(native) is not str:
            raise FrameError("symbol is not a string")
        t = msg.get("cts")
        if t is None:
            t = msg.get("ts")
        exch_ns = _int(t, "ts") * 1_000_000 if t is not None else 0
        # u == 1: the service restarted and this message is the whole book.
        is_snapshot = kind == "snapshot" or u == 1
        return BookUpdate(self.unified_symbol(native), is_snapshot, u, u, -1, bids, asks, exch_ns)

    # -- sync ------------------------------------------------------------------------------------
    def sync(self, book: SymbolBook, update: BookUpdate) -> SyncResult:
        if update.is_snapshot:
            if not book.load_snapshot(update.bids, update.asks, update.last_id):
                book.invalidate()  # load_snapshot may have replaced one side already
                return SyncResult.INVALID
            book.awaiting_first = False
            book.exch_ns = update.exch_ns
            return SyncResult.APPLIED
        if not book.synced:
            return SyncResult.DROPPED
        u, last = update.last_id, book.last_id
        if u <= last:
            return SyncResult.DROPPED
        if u != last + 1:
            return SyncResult.GAP
        if not book.apply(update.bids, update.asks):
            return SyncResult.INVALID
        book.last_id = u
        book.exch_ns = update.exch_ns
        return SyncResult.APPLIED
