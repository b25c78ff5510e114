"""Kraken spot (``kraken``): WebSocket v2 ``book`` channel, and the v1 ``book-N`` channel of recordings.

What the docs say (docs.kraken.com: "Book (Level 2)" v2 reference, "Book checksum (WebSocket v2)"
and "(WebSocket v1)" guides):

- v2 subscribe ``{"method": "subscribe", "params": {"channel": "book", "symbol": ["BTC/USD"],
  "depth": 10}}``, depth one of 10, 25, 100, 500, 1000 (default 10); ack ``{"method":
  "subscribe", "result": {...}, "success": true}`` (``false`` + ``error``: ERROR). Pushes are
  ``{"channel": "book", "type": "snapshot" | "update", "data": [{"symbol", "bids", "asks",
  "checksum", "timestamp"}]}``, levels ``{"price": <number>, "qty": <number>}``; checksum on
  snapshots and updates ("Book checksum: Snapshot + updates"). ``heartbeat`` channel: HEARTBEAT;
  ``status``: OTHER; ``{"method": "ping"}`` is answered by ``{"method": "pong"}``: PONG.
- Maintaining the book: "Process all price level updates in a message before calculating the
  checksum." "An update with "qty": 0 means that price level should be removed." "After each
  update, truncate your book to the subscribed depth — you will not receive "qty": 0 for levels
  that fall out of scope." So after every message the book keeps only ``depth`` levels a side.
- Checksum: "The checksum is always calculated over the top 10 price levels regardless of
  subscription depth." "For each of the top 10 ask price levels, sorted by price low to high:
  Remove . from price, Remove leading zeros, Remove . from qty, Remove leading zeros, Append
  price + qty to the asks string"; "For each of the top 10 bid price levels, sorted by price
  high to low, apply the same formatting and append to the bids string"; "Concatenate asks +
  bids strings, then pass the result to a CRC32 function. Cast the result to an unsigned 32-bit
  integer and compare to the checksum field". Mismatch: CHECKSUM_BAD.
- Precision: v2 sends prices and quantities as JSON numbers ("Parse price and qty fields using a
  decimal or string decoder to preserve full precision through deserialisation"; the FIX guide:
  "Prices and quantities ... are sent as floats. To compute the checksum correctly, you must
  first determine the precision for each instrument"). Frames are decoded with rapidjson's
  ``NM_DECIMAL`` (no float ever meets the text) and each value's text is formatted with the
  instrument's ``price_precision`` / ``qty_precision`` (constructor ``precisions=`` or the
  ``instrument`` channel, which ``subscribe_messages`` adds when a symbol's precision is not
  configured); without a known precision, the decimal exactly as received is used.
- v1 (``[channelID, {"as": [...], "bs": [...]}, "book-10", "XBT/USD"]`` snapshots and
  ``[channelID, {"a": [...]}, {"b": [...], "c": "checksum"}, "book-10", "XBT/USD"]`` updates,
  levels ``[price, volume, timestamp(, "r")]`` as strings, "r" = republished level): "Checksums
  are not sent in snapshot messages — only in update messages. The checksum field ("c")
  appears in the last bid or ask map structure in the message." "Processing order matters ...
  Do not sort by timestamp": levels apply in array order. The strings are used as received.
  Depth comes from the channel name.

Kraken sends no sequence ids: ``first_id``/``last_id`` of an update are a running count of book
messages (so ``book.last_id`` still increases) and only the checksum guards the book. A book
message that cannot be parsed is a lost update: its symbol's next update is a GAP. Updates
that arrive while the book waits for its snapshot are DROPPED (the snapshot contains them).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation

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
from hftpipe.feeds.coinbase import rfc3339_ns

CHECKSUM_LEVELS = 10
DEPTHS = (10, 25, 100, 500, 1000)
# v1 (and REST) spell some currencies the old way; v2 and ccxt use the common codes.
CURRENCY_ALIASES = {"XBT": "BTC", "XDG": "DOGE"}

_decode = rapidjson.Decoder(number_mode=rapidjson.NM_DECIMAL | rapidjson.NM_NAN)
_f64 = np.float64
_OTHER = Frame(FrameKind.OTHER)
_HEARTBEAT = Frame(FrameKind.HEARTBEAT)
_PONG = Frame(FrameKind.PONG)
_APPLIED = SyncResult.APPLIED


# -- checksum ------------------------------------------------------------------------------------
def checksum_token(text: str) -> str:
    """A price or quantity as the checksum wants it: ``"0.00100000"`` -> ``"100000"``."""
    return text.replace(".", "").lstrip("0")


def kraken_checksum(asks: Sequence[Sequence[str]], bids: Sequence[Sequence[str]],
                    levels: int = CHECKSUM_LEVELS) -> int:
    """Kraken's book checksum (v1 and v2) of best-first ``(price_text, qty_text)`` rows per side.

    Top ``levels`` asks (low to high) then top ``levels`` bids (high to low), each value without
    its ``.`` and leading zeros, CRC32 as an unsigned 32-bit integer. Usable by the simulator.
    """
    parts: list[str] = []
    for rows in (asks, bids):
        for row in rows[:levels]:
            parts.append(row[0].replace(".", "").lstrip("0"))
            parts.append(row[1].replace(".", "").lstrip("0"))
    return zlib.crc32("".join(parts).encode()) & 0xFFFF_FFFF


# -- values --------------------------------------------------------------------------------------
def _value(v, prec: int | None) -> tuple[str, str]:
    """A decoded price/qty -> (text for the float array, text for the checksum)."""
    t = type(v)
    if t is Decimal:
        lit = str(v)
        return lit, (f"{v:.{prec}f}" if prec is not None else format(v, "f"))
    if t is int:
        lit = str(v)
        return lit, (f"{lit}.{'0' * prec}" if prec else lit)
    if t is str:
        if prec is None:
            return v, v
        try:
            return v, f"{Decimal(v):.{prec}f}"
        except InvalidOperation:
            raise FrameError(f"not a number: {v!r}") from None
    raise FrameError(f"price/qty must be a number, got {v!r}")


def _floats(rows: list) -> np.ndarray:
    try:
        arr = np.array(rows, dtype=_f64)
    except (ValueError, TypeError) as exc:
        raise FrameError(f"bad level: {exc}") from None
    return arr


def _v2_side(rows, prec: tuple[int, int] | None) -> tuple[np.ndarray, list[tuple[str, str]]]:
    if type(rows) is not list:
        raise FrameError("book side is not a list")
    if not rows:
        return EMPTY_LEVELS, []
    pp, qp = prec if prec is not None else (None, None)
    lits = []
    texts = []
    try:
        for r in rows:
            p_lit, p_txt = _value(r["price"], pp)
            q_lit, q_txt = _value(r["qty"], qp)
            lits.append((p_lit, q_lit))
            texts.append((p_txt, q_txt))
    except KeyError as exc:
        raise FrameError(f"book level without {exc}") from None
    except TypeError:
        raise FrameError("book level is not an object") from None
    return _floats(lits), texts


def _v1_side(rows) -> tuple[np.ndarray, list[tuple[str, str]], int]:
    """v1 ``[[price, volume, timestamp(, "r")], ...]`` -> levels, strings, latest timestamp (ns)."""
    if type(rows) is not list:
        raise FrameError("v1 book side is not a list")
    if not rows:
        return EMPTY_LEVELS, [], 0
    try:
        trip = [(r[0], r[1], r[2]) for r in rows]
    except (TypeError, IndexError, KeyError):
        raise FrameError("v1 level is not a [price, volume, timestamp] array") from None
    for r in rows:
        if type(r) is not list or len(r) > 4:
            raise FrameError(f"bad v1 level {r!r}")
    for p, q, ts in trip:
        if type(p) is not str or type(q) is not str or type(ts) is not str:
            raise FrameError(f"v1 level values must be strings: {p!r}, {q!r}, {ts!r}")
    arr = _floats(trip)
    latest = trip[int(np.argmax(arr[:, 2]))][2]
    return arr[:, :2].copy(), [(p, q) for p, q, _ in trip], _epoch_ns(latest)


def _epoch_ns(text: str) -> int:
    """``"1534614248.456738"`` -> ns (exactly, from the digits)."""
    sec, _, frac = text.partition(".")
    try:
        return int(sec) * 1_000_000_000 + (int(frac[:9].ljust(9, "0")) if frac else 0)
    except ValueError:
        raise FrameError(f"bad v1 timestamp {text!r}") from None


# -- book helpers --------------------------------------------------------------------------------
def _load_raw(raw: dict, levels: np.ndarray, texts: list | None) -> None:
    raw.clear()
    _merge_raw(raw, levels, texts)


def _merge_raw(raw: dict, levels: np.ndarray, texts: list | None) -> None:
    """Keep each level's text by price, in message order like the kernels (qty 0 deletes)."""
    if not texts:
        return
    for price, size, text in zip(levels[:, 0].tolist(), levels[:, 1].tolist(), texts, strict=True):
        if size == 0.0:
            raw.pop(price, None)
        else:
            raw[price] = text


def _truncate(side: np.ndarray, n: int, raw: dict, depth: int) -> int:
    """Keep the ``depth`` best levels of a worst-first side (touch at row n - 1); returns the count."""
    if n <= depth:
        return n
    cut = n - depth
    for price in side[:cut, 0].tolist():
        raw.pop(price, None)
    side[:depth] = side[cut:n].copy()
    return depth


def _top_texts(side: np.ndarray, n: int, raw: dict, k: int) -> list:
    """Best-first texts of a side's top ``k`` levels (a level without text falls back to repr)."""
    rows = side[max(n - k, 0):n]
    try:
        return [raw[p] for p in rows[::-1, 0].tolist()]
    except KeyError:
        return [raw.get(p) or (repr(p), repr(s)) for p, s in rows[::-1].tolist()]


class Kraken(Venue):
    """Kraken spot order books: v2 ``book`` (live) and v1 ``book-N`` (recordings), with the CRC32 check."""

    id = "kraken"
    ws_url = "wss://ws.kraken.com/v2"
    checksum_levels = CHECKSUM_LEVELS
    ping_interval_s = 20.0

    def __init__(self, ws_url: str | None = None, rest_url: str | None = None, depth: int = 10,
                 precisions: dict[str, tuple[int, int]] | None = None,
                 instrument_channel: bool | None = None):
        super().__init__(ws_url, rest_url)
        if depth not in DEPTHS:
            raise ValueError(f"Kraken book depth must be one of {DEPTHS}, not {depth!r}")
        self.depth = depth
        self.precisions: dict[str, tuple[int, int]] = {}
        for symbol, prec in (precisions or {}).items():
            self.set_precision(symbol, *prec)
        # None: subscribe to the instrument channel when a symbol's precision is not configured.
        self.instrument_channel = instrument_channel
        self._unified: dict[str, str] = {}
        self._depths: dict[str, int] = {}  # per symbol, when the venue told us (v1 name, v2 ack)
        self._lost: set[str] = set()  # symbols whose book message could not be parsed
        self._msg_no = 0

    def set_precision(self, symbol: str, price_precision: int, qty_precision: int) -> None:
        """Decimals of a unified symbol's prices and quantities (what the checksum text uses)."""
        for v in (price_precision, qty_precision):
            if type(v) is not int or not 0 <= v <= 30:
                raise ValueError(f"bad precision {v!r} for {symbol}")
        self.precisions[symbol] = (price_precision, qty_precision)

    # -- symbols ---------------------------------------------------------------------------------
    def native_symbol(self, unified: str) -> str:
        """``BTC/USD`` -> ``BTC/USD`` (v2 uses the common currency codes)."""
        base, _, quote = unified.partition("/")
        if not base or not quote or ":" in quote:
            raise ValueError(f"not a Kraken spot symbol: {unified!r}")
        native = f"{base}/{quote}".upper()
        self._unified[native] = unified
        return native

    def unified_symbol(self, native: str) -> str:
        """``BTC/USD`` (v2) or ``XBT/USD`` (v1) -> ``BTC/USD``."""
        if type(native) is not str:
            raise FrameError(f"symbol is not a string: {native!r}")
        known = self._unified.get(native)
        if known is not None:
            return known
        base, sep, quote = native.partition("/")
        if not sep or not base or not quote:
            raise FrameError(f"cannot map Kraken symbol {native!r}")
        base = CURRENCY_ALIASES.get(base, base)
        quote = CURRENCY_ALIASES.get(quote, quote)
        unified = self._unified.get(f"{base}/{quote}", f"{base}/{quote}")
        self._unified[native] = unified
        return unified

    # -- connection ------------------------------------------------------------------------------
    def _book(self, method: str, symbols: list[str]) -> str:
        return rapidjson.dumps({"method": method, "params": {
            "channel": "book", "symbol": [self.native_symbol(s) for s in symbols], "depth": self.depth}})

    def subscribe_messages(self, symbols: list[str]) -> list[str]:
        if not symbols:
            return []
        msgs = []
        want = self.instrument_channel
        if want or (want is None and any(s not in self.precisions for s in symbols)):
            msgs.append(rapidjson.dumps({"method": "subscribe",
                                         "params": {"channel": "instrument", "snapshot": True}}))
        msgs.append(self._book("subscribe", symbols))
        return msgs

    def resubscribe_messages(self, symbols: list[str]) -> list[str]:
        """Unsubscribe then subscribe (a live subscription cannot be repeated): a fresh snapshot follows."""
        if not symbols:
            return []
        return [self._book("unsubscribe", symbols), self._book("subscribe", symbols)]

    def ping_message(self) -> str:
        return '{"method":"ping"}'

    # -- parsing ---------------------------------------------------------------------------------
    def parse(self, frame: str | bytes) -> Frame:
        try:
            msg = _decode(frame)
        except (ValueError, TypeError) as exc:
            raise FrameError(f"invalid JSON: {exc}") from None
        t = type(msg)
        if t is dict:
            return self._message(msg)
        if t is list:
            return self._v1(msg)
        raise FrameError("frame is neither a JSON object nor an array")

    def _message(self, msg: dict) -> Frame:
        channel = msg.get("channel")
        if channel == "book":
            return self._v2_book(msg)
        if channel == "heartbeat":
            return _HEARTBEAT
        if channel == "instrument":
            return Frame(FrameKind.OTHER, info=f"instrument: {self._instrument(msg)} pairs")
        if channel is not None:
            return _OTHER  # status, ticker, trade, ohlc, ...
        method = msg.get("method")
        if method is not None:
            if method == "pong":
                return _PONG
            success = msg.get("success")
            if success is True:
                result = msg.get("result")
                if type(result) is dict and result.get("channel") == "book" and method == "subscribe":
                    self._note_depth(result.get("symbol"), result.get("depth"))
                return Frame(FrameKind.ACK, info=f"{method} {_describe(result)}".strip())
            if success is False:
                return Frame(FrameKind.ERROR, info=f"{method}: {msg.get('error', '')}")
            return _OTHER
        event = msg.get("event")  # v1 control messages (recordings)
        if event is not None:
            if event == "heartbeat":
                return _HEARTBEAT
            if event == "pong":
                return _PONG
            if event == "subscriptionStatus":
                status = msg.get("status")
                if status == "subscribed" or status == "unsubscribed":
                    return Frame(FrameKind.ACK, info=f"{status} {msg.get('channelName', '')} {msg.get('pair', '')}")
                if status == "error":
                    return Frame(FrameKind.ERROR, info=str(msg.get("errorMessage", "")))
            if event == "error":
                return Frame(FrameKind.ERROR, info=str(msg.get("errorMessage", "")))
            return _OTHER  # systemStatus, ...
        if "error" in msg:
            return Frame(FrameKind.ERROR, info=str(msg.get("error")))
        return _OTHER

    def _note_depth(self, symbol, depth) -> None:
        if type(symbol) is str and type(depth) is int and depth > 0:
            self._depths[self.unified_symbol(symbol)] = depth

    def _instrument(self, msg: dict) -> int:
        """Take ``price_precision`` / ``qty_precision`` of every pair an instrument message lists."""
        data = msg.get("data")
        pairs = data.get("pairs") if type(data) is dict else None
        if type(pairs) is not list:
            return 0
        n = 0
        for p in pairs:
            if type(p) is not dict:
                continue
            sym, pp, qp = p.get("symbol"), p.get("price_precision"), p.get("qty_precision")
            if type(sym) is str and type(pp) is int and type(qp) is int and 0 <= pp <= 30 and 0 <= qp <= 30:
                try:
                    self.precisions[self.unified_symbol(sym)] = (pp, qp)
                    n += 1
                except FrameError:
                    continue
        return n

    def _v2_book(self, msg: dict) -> Frame:
        kind = msg.get("type")
        if kind == "snapshot":
            is_snapshot = True
        elif kind == "update":
            is_snapshot = False
        else:
            raise FrameError(f"bad book type {kind!r}")
        data = msg.get("data")
        if type(data) is not list:
            raise FrameError("book data is not a list")
        updates: list[BookUpdate] = []
        try:
            for entry in data:
                updates.append(self._v2_entry(entry, is_snapshot))
        except FrameError:
            # The whole message is lost: so is every book it touched.
            self._lost.update(u.symbol for u in updates)
            for entry in data[len(updates):]:
                if type(entry) is dict and type(entry.get("symbol")) is str:
                    try:
                        self._lost.add(self.unified_symbol(entry["symbol"]))
                    except FrameError:
                        pass
            raise
        return Frame(FrameKind.BOOK, updates)

    def _v2_entry(self, entry, is_snapshot: bool) -> BookUpdate:
        if type(entry) is not dict:
            raise FrameError("book data entry is not an object")
        symbol = self.unified_symbol(entry.get("symbol"))
        prec = self.precisions.get(symbol)
        try:
            bids, raw_bids = _v2_side(entry["bids"], prec)
            asks, raw_asks = _v2_side(entry["asks"], prec)
        except KeyError as exc:
            raise FrameError(f"book data without {exc}") from None
        checksum = entry.get("checksum")
        if checksum is not None and (type(checksum) is not int or not 0 <= checksum <= 0xFFFF_FFFF):
            raise FrameError(f"bad checksum {checksum!r}")
        ts = entry.get("timestamp")
        exch_ns = rfc3339_ns(ts) if ts is not None else 0
        self._msg_no += 1
        n = self._msg_no
        return BookUpdate(symbol, is_snapshot, n, n, -1, bids, asks, exch_ns, checksum, raw_bids, raw_asks)

    def _v1(self, msg: list) -> Frame:
        if len(msg) < 4:
            raise FrameError("v1 array message too short")
        name, pair = msg[-2], msg[-1]
        if type(name) is not str or type(pair) is not str:
            raise FrameError("v1 message without channel name and pair")
        if not name.startswith("book-"):
            return _OTHER  # trade, ticker, spread, ohlc-N
        try:
            depth = int(name[5:])
        except ValueError:
            raise FrameError(f"bad v1 book channel {name!r}") from None
        symbol = self.unified_symbol(pair)
        try:
            update = self._v1_book(symbol, msg[1:-2])
        except FrameError:
            self._lost.add(symbol)
            raise
        self._depths[symbol] = depth
        return Frame(FrameKind.BOOK, [update])

    def _v1_book(self, symbol: str, payloads: list) -> BookUpdate:
        if not payloads or any(type(p) is not dict for p in payloads):
            raise FrameError("v1 book payload is not an object")
        first = payloads[0]
        checksum = None
        if "as" in first or "bs" in first:
            if len(payloads) != 1:
                raise FrameError("v1 snapshot with several payloads")
            is_snapshot = True
            a_rows, b_rows = first.get("as", []), first.get("bs", [])
        else:
            is_snapshot = False
            a_rows, b_rows = [], []
            for p in payloads:
                for key, value in p.items():
                    if key == "a" or key == "b":
                        if type(value) is not list:
                            raise FrameError(f"v1 {key} is not a list")
                        (a_rows if key == "a" else b_rows).extend(value)
                    elif key == "c":
                        if type(value) is not str or not value.isdigit() or int(value) > 0xFFFF_FFFF:
                            raise FrameError(f"bad v1 checksum {value!r}")
                        checksum = int(value)
        asks, raw_asks, ta = _v1_side(a_rows)
        bids, raw_bids, tb = _v1_side(b_rows)
        self._msg_no += 1
        n = self._msg_no
        return BookUpdate(symbol, is_snapshot, n, n, -1, bids, asks, max(ta, tb), checksum, raw_bids, raw_asks)

    # -- sync ------------------------------------------------------------------------------------
    def sync(self, book: SymbolBook, update: BookUpdate) -> SyncResult:
        depth = self._depths.get(update.symbol, self.depth)
        if update.is_snapshot:
            if not book.load_snapshot(update.bids, update.asks, update.last_id):
                book.invalidate()
                return SyncResult.INVALID
            self._lost.discard(update.symbol)
            _load_raw(book.raw_bids, update.bids, update.raw_bids)
            _load_raw(book.raw_asks, update.asks, update.raw_asks)
            book.n_bids = _truncate(book.bids, book.n_bids, book.raw_bids, depth)
            book.n_asks = _truncate(book.asks, book.n_asks, book.raw_asks, depth)
            book.awaiting_first = False
            book.exch_ns = update.exch_ns
            return self._verify(book, update)
        if not book.synced:
            return SyncResult.DROPPED
        if self._lost and update.symbol in self._lost:
            self._lost.discard(update.symbol)
            return SyncResult.GAP  # the message before this one was lost
        if not book.apply(update.bids, update.asks):
            return SyncResult.INVALID  # NaN / inf / negative: the kernels left the book untouched
        _merge_raw(book.raw_bids, update.bids, update.raw_bids)
        _merge_raw(book.raw_asks, update.asks, update.raw_asks)
        book.n_bids = _truncate(book.bids, book.n_bids, book.raw_bids, depth)
        book.n_asks = _truncate(book.asks, book.n_asks, book.raw_asks, depth)
        book.last_id = update.last_id
        book.exch_ns = update.exch_ns
        return self._verify(book, update)

    def _verify(self, book: SymbolBook, update: BookUpdate) -> SyncResult:
        if update.checksum is None or self.book_checksum(book) == update.checksum:
            return _APPLIED
        return SyncResult.CHECKSUM_BAD

    def book_checksum(self, book: SymbolBook) -> int:
        """Kraken's checksum of our book: top 10 levels per side, from the kept texts."""
        k = CHECKSUM_LEVELS
        return kraken_checksum(_top_texts(book.asks, book.n_asks, book.raw_asks, k),
                               _top_texts(book.bids, book.n_bids, book.raw_bids, k), k)


def _describe(result) -> str:
    if type(result) is not dict:
        return ""
    return " ".join(f"{k}={result[k]}" for k in ("channel", "symbol", "depth") if k in result)
