"""Coinbase Advanced Trade (``coinbase``): the ``level2`` channel of ``wss://advanced-trade-ws.coinbase.com``.

What the docs say (docs.cdp.coinbase.com, Advanced Trade WebSocket channels / overview / AsyncAPI):

- level2: "Guarantees delivery of all updates and is the easiest way to keep an order book
  snapshot in sync. Subscribe with channel level2; received messages carry channel l2_data.
  new_quantity is the updated size at a price level (not a delta); a value of "0" means the
  level can be removed." A message is ``{"channel": "l2_data", "client_id": "", "timestamp":
  RFC 3339, "sequence_num": N, "events": [{"type": "snapshot" | "update", "product_id":
  "BTC-USD", "updates": [{"side": "bid" | "offer", "event_time", "price_level",
  "new_quantity"}]}]}``; a ``snapshot`` event is the whole book of its product.
- "You can only subscribe to one channel per subscription message": ``{"type": "subscribe",
  "product_ids": [...], "channel": "level2"}`` and ``{"type": "subscribe", "channel":
  "heartbeats"}`` ("Most channels close within 60-90 seconds if no updates are sent. Subscribe
  to heartbeats to keep all subscriptions open."). Replies: ``channel: "subscriptions"`` (ACK),
  ``heartbeats`` (HEARTBEAT), ``{"type": "error", "message": ...}`` (ERROR).
- "Subscribing to "-USDC" based products are only available on the user channel. Other channels
  will return the same data as the corresponding "-USD" based products": a ``BTC/USDC`` book is
  fed by ``BTC-USD`` events unless ``BTC/USD`` is subscribed too.

Sequence rule. ``sequence_num`` is not per product: it numbers EVERY message of the connection,
across channels and products, from 0 (field notes; two independent captures confirm it). A
jump means some message was lost, and it may have been any product's l2 update (or its
snapshot), so after a jump every book on the connection is suspect. ``parse`` therefore tracks the
connection's sequence and gives each update

    first_id = last_id = the message's id,   prev_id = the id of the previous message seen

where an id is ``epoch * 2**40 + sequence_num`` (the epoch grows at every new connection, so ids
only ever increase) and the first message of a connection has ``prev_id = id(0) - 1``. An update
"follows a break" when ``prev_id != first_id - 1``. ``sync`` returns GAP:

- for any update of a message that follows a break (also for a book still waiting for its
  snapshot: the lost message may have been that snapshot), unless a snapshot in the same
  message already rebuilt the book;
- for any later update of a book whose last applied message is older than the latest break
  (``book.last_id < gap_at``).

And so the engine hears of the break at once for every book, the message that reveals it (any
channel: a heartbeat will do) also carries one empty "marker" update per other symbol known on
the connection; each one syncs to GAP, so every book is invalidated and resubscribed together
(the engine then sends one ``resubscribe_messages`` for all of them). The engine needs nothing
Coinbase-specific for this; ``resync_all_on_gap`` states the rule for an engine that wants to act
on the first GAP itself. ``subscribe_messages`` is sent once per new connection and starts a new
epoch; in a replay a ``sequence_num`` that goes backwards is a new connection, and a break.

A message that cannot be parsed does not advance the tracked sequence: the next one then shows
the jump, and the lost content is resynced like any other lost message.
"""

from __future__ import annotations

import datetime
import re

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

EPOCH_SPAN = 1 << 40  # ids of one connection: epoch * EPOCH_SPAN + sequence_num
_loads = rapidjson.loads
_f64 = np.float64
_OTHER = Frame(FrameKind.OTHER)
_HEARTBEAT = Frame(FrameKind.HEARTBEAT)
_APPLIED = SyncResult.APPLIED
_GAP = SyncResult.GAP

# -- RFC 3339 ------------------------------------------------------------------------------------
_RFC3339 = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))", re.ASCII)
_EPOCH_ORDINAL = datetime.date(1970, 1, 1).toordinal()
_DAY_NS: dict[str, int] = {}  # "YYYY-MM-DD" -> ns at its midnight UTC (a few entries per run)


def rfc3339_ns(text) -> int:
    """``2023-02-09T20:32:50.714964855Z`` (any fraction length, ``Z`` or ``+hh:mm``) -> ns since the epoch."""
    if type(text) is not str:
        raise FrameError(f"timestamp is not a string: {text!r}")
    m = _RFC3339.fullmatch(text)
    if m is None:
        raise FrameError(f"not an RFC 3339 timestamp: {text!r}")
    date, hh, mm, ss, frac, _z, sign, oh, om = m.groups()
    day = _DAY_NS.get(date)
    if day is None:
        try:
            day = (datetime.date.fromisoformat(date).toordinal() - _EPOCH_ORDINAL) * 86_400_000_000_000
        except ValueError:
            raise FrameError(f"bad date in timestamp {text!r}") from None
        if len(_DAY_NS) > 64:
            _DAY_NS.clear()
        _DAY_NS[date] = day
    h, mi, s = int(hh), int(mm), int(ss)
    if h > 23 or mi > 59 or s > 60:
        raise FrameError(f"bad time in timestamp {text!r}")
    ns = day + (h * 3600 + mi * 60 + s) * 1_000_000_000
    if frac:
        ns += int(frac[:9].ljust(9, "0"))
    if sign is not None:
        offset = (int(oh) * 60 + int(om)) * 60_000_000_000
        ns = ns - offset if sign == "+" else ns + offset
    return ns


class Coinbase(Venue):
    """Coinbase Advanced Trade ``level2`` books, with the connection-wide ``sequence_num`` check."""

    id = "coinbase"
    ws_url = "wss://advanced-trade-ws.coinbase.com"
    ping_interval_s = 20.0  # WebSocket pings; the heartbeats channel keeps the subscriptions open
    resync_all_on_gap = True  # a GAP on one book means every book on the connection is suspect

    def __init__(self, ws_url: str | None = None, rest_url: str | None = None):
        super().__init__(ws_url, rest_url)
        self._unified: dict[str, str] = {}
        self._known: dict[str, None] = {}  # symbols of this connection (subscribed or seen), ordered
        self._epoch = 0
        self._last_seq = -1  # sequence_num of the last message parsed on this connection (-1: none)
        self.gap_at = -1  # id of the first message after the latest break: older books are suspect
        self.connection_gaps = 0  # breaks seen (jumps, restarts, a first message other than 0)
        self.last_gap: tuple[int, int] | None = None  # (sequence_num expected, received)

    # -- symbols ---------------------------------------------------------------------------------
    def native_symbol(self, unified: str) -> str:
        """``BTC/USD`` -> ``BTC-USD``."""
        base, _, rest = unified.partition("/")
        quote = rest.partition(":")[0]
        if not base or not quote or ":" in rest:
            raise ValueError(f"not a Coinbase spot symbol: {unified!r}")
        native = f"{base}-{quote}".upper()
        self._unified[native] = unified
        if quote.upper() == "USDC":  # level2 serves -USDC books as the -USD product
            self._unified.setdefault(f"{base.upper()}-USD", unified)
        return native

    def unified_symbol(self, native: str) -> str:
        """``BTC-USD`` -> ``BTC/USD`` (a product id of another shape is returned as it is)."""
        if type(native) is not str:
            raise FrameError(f"product_id is not a string: {native!r}")
        known = self._unified.get(native)
        if known is not None:
            return known
        base, sep, quote = native.partition("-")
        unified = f"{base}/{quote}" if sep and base and quote and "-" not in quote else native
        self._unified[native] = unified
        return unified

    # -- connection ------------------------------------------------------------------------------
    def _level2(self, op: str, symbols: list[str]) -> str:
        return rapidjson.dumps({"type": op, "product_ids": [self.native_symbol(s) for s in symbols],
                                "channel": "level2"})

    def subscribe_messages(self, symbols: list[str]) -> list[str]:
        """level2 for ``symbols`` and heartbeats; sent once per new connection, so it resets the sequence."""
        self.reset_connection()
        for s in symbols:
            self._known[s] = None
        msgs = [rapidjson.dumps({"type": "subscribe", "channel": "heartbeats"})]
        if symbols:
            msgs.append(self._level2("subscribe", symbols))
        return msgs

    def resubscribe_messages(self, symbols: list[str]) -> list[str]:
        """Unsubscribe then subscribe level2 on the same connection: fresh snapshots follow."""
        if not symbols:
            return []
        return [self._level2("unsubscribe", symbols), self._level2("subscribe", symbols)]

    def reset_connection(self) -> None:
        """A new connection begins: its ``sequence_num`` starts again, in a new epoch of ids."""
        self._epoch += 1
        self._last_seq = -1
        self.gap_at = self._epoch * EPOCH_SPAN  # a book of an older connection cannot continue

    # -- parsing ---------------------------------------------------------------------------------
    def parse(self, frame: str | bytes) -> Frame:
        try:
            msg = _loads(frame)
        except (ValueError, TypeError) as exc:
            raise FrameError(f"invalid JSON: {exc}") from None
        if type(msg) is not dict:
            raise FrameError("frame is not a JSON object")
        seq = msg.get("sequence_num")
        if seq is not None and (type(seq) is not int or seq < 0):
            raise FrameError(f"bad sequence_num {seq!r}")
        # Where this message sits in the connection's sequence (committed only once it parsed).
        last = self._last_seq
        epoch = self._epoch
        if seq is None:
            msg_id = prev_id = -1
            broke = False
        else:
            if 0 <= last < seq or last < 0:  # continuing, jumping, or the connection's first message
                base = epoch * EPOCH_SPAN
                prev_id = base + last if last >= 0 else base - 1
                broke = seq != last + 1
            else:  # sequence_num went back: a new connection (a replay spanning reconnects)
                prev_id = epoch * EPOCH_SPAN + last
                epoch += 1
                broke = True
            msg_id = epoch * EPOCH_SPAN + seq
        channel = msg.get("channel")
        if channel == "l2_data":
            result = Frame(FrameKind.BOOK, self._l2(msg, msg_id, prev_id))
        elif channel == "heartbeats":
            result = _HEARTBEAT
        elif channel == "subscriptions":
            result = Frame(FrameKind.ACK, info=_short(msg.get("events")))
        elif msg.get("type") == "error" or channel == "error":
            result = Frame(FrameKind.ERROR, info=f"{msg.get('message', '')} {msg.get('reason', '')}".strip())
        else:
            result = _OTHER  # ticker, market_trades, status, candles, ...
        if seq is None:
            return result
        self._epoch = epoch
        self._last_seq = seq
        if not broke:
            return result
        self.gap_at = msg_id
        self.connection_gaps += 1
        self.last_gap = (last + 1 if last >= 0 else 0, seq)
        return self._with_markers(result, msg_id, prev_id, msg)

    def _with_markers(self, result: Frame, msg_id: int, prev_id: int, msg: dict) -> Frame:
        """Add an empty update (it syncs to GAP) for every known symbol the message does not carry."""
        carried = {u.symbol for u in result.updates}
        markers = [BookUpdate(s, False, msg_id, msg_id, prev_id) for s in self._known if s not in carried]
        if not markers:
            return result
        info = f"sequence_num break: expected {self.last_gap[0]}, got {self.last_gap[1]}"
        if result.kind == FrameKind.BOOK:
            result.updates.extend(markers)
            result.info = info
            return result
        return Frame(FrameKind.BOOK, markers, info=f"{info}; {result.kind.name.lower()} {result.info}".strip())

    def _l2(self, msg: dict, msg_id: int, prev_id: int) -> list[BookUpdate]:
        events = msg.get("events")
        if type(events) is not list:
            raise FrameError("l2_data without an events list")
        ts = msg.get("timestamp")
        exch_ns = rfc3339_ns(ts) if ts is not None else 0
        out = []
        known = self._known
        for ev in events:
            try:
                kind = ev["type"]
                product = ev["product_id"]
                rows = ev["updates"]
            except KeyError as exc:
                raise FrameError(f"l2_data event without {exc}") from None
            except TypeError:
                raise FrameError("l2_data event is not an object") from None
            if kind == "snapshot":
                is_snapshot = True
            elif kind == "update":
                is_snapshot = False
            else:
                raise FrameError(f"bad l2_data event type {kind!r}")
            if type(product) is not str:
                raise FrameError(f"product_id is not a string: {product!r}")
            bids, asks = _sides(rows)
            symbol = self.unified_symbol(product)
            if symbol not in known:
                known[symbol] = None
            out.append(BookUpdate(symbol, is_snapshot, msg_id, msg_id, prev_id, bids, asks, exch_ns))
        return out

    # -- sync ------------------------------------------------------------------------------------
    def sync(self, book: SymbolBook, update: BookUpdate) -> SyncResult:
        if update.is_snapshot:
            if not book.load_snapshot(update.bids, update.asks, update.last_id):
                book.invalidate()
                return SyncResult.INVALID
            book.awaiting_first = False
            book.exch_ns = update.exch_ns
            return _APPLIED
        follows_break = update.prev_id != update.first_id - 1
        if not book.synced:
            # Waiting for the snapshot our (re)subscription brings; if a message was lost meanwhile
            # it may have been that very snapshot, so subscribe again.
            return _GAP if follows_break else SyncResult.DROPPED
        last = book.last_id
        if last < self.gap_at or (follows_break and last < update.first_id):
            return _GAP  # a message lost after the book's last one may have been one of its updates
        if update.last_id < last:
            return SyncResult.DROPPED  # older than the book (cannot happen on one live connection)
        if update.bids.shape[0] == 0 and update.asks.shape[0] == 0:
            return SyncResult.IGNORED
        if not book.apply(update.bids, update.asks):
            return SyncResult.INVALID  # NaN / inf / negative: the kernels left the book untouched
        book.last_id = update.last_id
        book.exch_ns = update.exch_ns
        return _APPLIED


def _sides(rows) -> tuple[np.ndarray, np.ndarray]:
    """An event's ``updates`` -> bid and ask (k, 2) float64 rows, in message order per side."""
    if type(rows) is not list:
        raise FrameError("updates is not a list")
    bids: list[tuple[str, str]] = []
    asks: list[tuple[str, str]] = []
    try:
        for u in rows:
            side = u["side"]
            px = u["price_level"]
            qty = u["new_quantity"]
            if type(px) is not str or type(qty) is not str:
                raise FrameError(f"price_level/new_quantity must be strings: {px!r}, {qty!r}")
            if side == "bid":
                bids.append((px, qty))
            elif side == "offer" or side == "ask":
                asks.append((px, qty))
            else:
                raise FrameError(f"bad side {side!r}")
    except KeyError as exc:
        raise FrameError(f"level update without {exc}") from None
    except TypeError:
        raise FrameError("level update is not an object") from None
    return _levels(bids), _levels(asks)


def _levels(pairs: list[tuple[str, str]]) -> np.ndarray:
    if not pairs:
        return EMPTY_LEVELS
    try:
        return np.array(pairs, dtype=_f64)
    except ValueError as exc:
        raise FrameError(f"bad level: {exc}") from None


def _short(value, limit: int = 300) -> str:
    try:
        text = rapidjson.dumps(value)
    except (TypeError, ValueError, OverflowError):
        text = repr(value)
    return text[:limit]
