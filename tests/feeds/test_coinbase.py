"""Coinbase Advanced Trade ``level2``: books, the connection-wide ``sequence_num`` check, parsing."""

import datetime
import json

import numpy as np
import pytest

from hftpipe.feeds.base import FrameError, FrameKind, SymbolBook, SyncResult
from hftpipe.feeds.coinbase import EPOCH_SPAN, Coinbase, rfc3339_ns
from hftpipe.feeds.engine import FeedEngine

TS = "2023-02-09T20:32:50.714964855Z"
TS_NS = 1675974770714964855


def l2(seq, *events, ts=TS):
    """An ``l2_data`` message; each event is (type, product_id, [(side, price, qty), ...])."""
    return json.dumps({
        "channel": "l2_data", "client_id": "", "timestamp": ts, "sequence_num": seq,
        "events": [{"type": kind, "product_id": product,
                    "updates": [{"side": side, "event_time": "2023-02-09T20:32:50.714964855Z",
                                 "price_level": px, "new_quantity": qty} for side, px, qty in rows]}
                   for kind, product, rows in events]})


def heartbeat(seq, counter=1):
    return json.dumps({"channel": "heartbeats", "client_id": "", "timestamp": TS, "sequence_num": seq,
                       "events": [{"current_time": "2023-06-23 20:31:56.121961769 +0000 UTC m=+91717.525857105",
                                   "heartbeat_counter": str(counter)}]})


def ticker(seq, product="BTC-USD"):
    return json.dumps({"channel": "ticker", "client_id": "", "timestamp": TS, "sequence_num": seq,
                       "events": [{"type": "update", "tickers": [{"type": "ticker", "product_id": product,
                                                                  "price": "21932.98"}]}]})


def subscriptions(seq):
    return json.dumps({"channel": "subscriptions", "client_id": "", "timestamp": TS, "sequence_num": seq,
                       "events": [{"subscriptions": {"level2": ["BTC-USD", "ETH-USD"], "heartbeats": ["heartbeats"]}}]})


BTC_SNAP = ("snapshot", "BTC-USD", [("bid", "21921.73", "0.06317902"), ("bid", "21921.3", "0.002"),
                                    ("bid", "21920.5", "1.5"), ("offer", "21921.74", "0.5"),
                                    ("offer", "21922.00", "0.25"), ("offer", "21925", "3")])
ETH_SNAP = ("snapshot", "ETH-USD", [("bid", "1500.10", "2"), ("offer", "1500.20", "3")])


class Recorder:
    def __init__(self):
        self.published = []
        self.invalid = []

    def publish(self, symbol, book, update, recv_ns, parsed_ns, applied_ns):
        self.published.append((symbol, book.best_bid(), book.best_ask(), book.last_id))

    def on_invalid(self, symbol, result):
        self.invalid.append((symbol, result))


def engine(symbols=("BTC/USD", "ETH/USD"), subscribe=True):
    rec = Recorder()
    venue = Coinbase()
    if subscribe:
        venue.subscribe_messages(list(symbols))  # what the feed process sends on connecting
    eng = FeedEngine(venue, list(symbols), capacity=64, publish=rec.publish, on_invalid=rec.on_invalid)
    return eng, rec


def results(eng, frame, recv_ns=0):
    return sorted(eng.on_frame(frame, recv_ns))


def top(book, n=10):
    b = book.bids[max(book.n_bids - n, 0):book.n_bids][::-1].tolist()
    a = book.asks[max(book.n_asks - n, 0):book.n_asks][::-1].tolist()
    return b, a


APPLIED, GAP = SyncResult.APPLIED, SyncResult.GAP


# -- books ---------------------------------------------------------------------------------------


def test_snapshot_and_updates_give_the_expected_book():
    eng, rec = engine()
    assert eng.on_frame(subscriptions(0), 0) == [] and eng.stats.acks == 1
    assert results(eng, l2(1, BTC_SNAP)) == [("BTC/USD", APPLIED)]
    book = eng.books["BTC/USD"]
    assert top(book) == ([[21921.73, 0.06317902], [21921.3, 0.002], [21920.5, 1.5]],
                         [[21921.74, 0.5], [21922.0, 0.25], [21925.0, 3.0]])
    assert book.exch_ns == TS_NS
    # new_quantity is the new size (not a delta); "0" removes the level.
    upd = ("update", "BTC-USD", [("bid", "21921.3", "0"), ("bid", "21921.5", "0.7"),
                                 ("offer", "21921.74", "0.125"), ("offer", "21925", "0.00000000")])
    assert results(eng, l2(2, upd)) == [("BTC/USD", APPLIED)]
    assert top(book) == ([[21921.73, 0.06317902], [21921.5, 0.7], [21920.5, 1.5]],
                         [[21921.74, 0.125], [21922.0, 0.25]])
    assert rec.published[-1] == ("BTC/USD", 21921.73, 21921.74, book.last_id)
    assert eng.stats.symbols["BTC/USD"].gaps == 0


def test_updates_before_the_snapshot_are_dropped():
    eng, _ = engine()
    assert results(eng, l2(0, ("update", "BTC-USD", [("bid", "1", "1")]))) == [("BTC/USD", SyncResult.DROPPED)]
    assert results(eng, l2(1, BTC_SNAP)) == [("BTC/USD", APPLIED)]


def test_several_products_in_one_message_and_other_channels_in_between_are_not_gaps():
    eng, _ = engine()
    assert results(eng, l2(0, BTC_SNAP, ETH_SNAP)) == [("BTC/USD", APPLIED), ("ETH/USD", APPLIED)]
    # Messages of another product, of the heartbeats channel and of another channel each take a
    # sequence_num of the connection: none of them is a gap for the BTC book.
    assert results(eng, l2(1, ("update", "ETH-USD", [("bid", "1500.15", "1")]))) == [("ETH/USD", APPLIED)]
    assert eng.on_frame(heartbeat(2), 0) == [] and eng.stats.heartbeats == 1
    assert eng.on_frame(ticker(3), 0) == [] and eng.stats.unknown == 1
    assert eng.on_frame(subscriptions(4), 0) == []
    assert results(eng, l2(5, ("update", "BTC-USD", [("bid", "21921.74", "1")]))) == [("BTC/USD", SyncResult.CROSSED)]
    assert results(eng, l2(6, ("update", "ETH-USD", [("bid", "1500.16", "1")]))) == [("ETH/USD", APPLIED)]
    assert eng.venue.connection_gaps == 0 and eng.stats.symbols["ETH/USD"].gaps == 0


# -- the connection-wide sequence --------------------------------------------------------------


def test_a_sequence_gap_is_a_gap_for_every_book_on_the_connection():
    eng, rec = engine()
    results(eng, l2(0, BTC_SNAP, ETH_SNAP))
    results(eng, l2(1, ("update", "BTC-USD", [("bid", "21921.0", "1")])))
    # sequence_num 2 is lost: it may have been an update of either product (or anything else).
    assert results(eng, l2(3, ("update", "ETH-USD", [("bid", "1500.11", "1")]))) == [("BTC/USD", GAP), ("ETH/USD", GAP)]
    assert sorted(rec.invalid) == [("BTC/USD", GAP), ("ETH/USD", GAP)]
    assert eng.resync_needed == {"BTC/USD", "ETH/USD"}
    assert not eng.books["BTC/USD"].synced and not eng.books["ETH/USD"].synced
    assert eng.venue.connection_gaps == 1 and eng.venue.last_gap == (2, 3)
    # The feed process resubscribes both at once; meanwhile updates are dropped, not more gaps.
    msgs = [json.loads(m) for m in eng.venue.resubscribe_messages(sorted(eng.resync_needed))]
    assert [(m["type"], m["channel"], m["product_ids"]) for m in msgs] == [
        ("unsubscribe", "level2", ["BTC-USD", "ETH-USD"]), ("subscribe", "level2", ["BTC-USD", "ETH-USD"])]
    eng.resync_needed.clear()
    assert results(eng, l2(4, ("update", "BTC-USD", [("bid", "21921.0", "2")]))) == [("BTC/USD", SyncResult.DROPPED)]
    assert results(eng, l2(5, BTC_SNAP)) == [("BTC/USD", APPLIED)]
    assert results(eng, l2(6, ("update", "BTC-USD", [("bid", "21921.0", "2")]))) == [("BTC/USD", APPLIED)]
    assert results(eng, l2(7, ("update", "ETH-USD", [("bid", "1500.11", "1")]))) == [("ETH/USD", SyncResult.DROPPED)]
    assert results(eng, l2(8, ETH_SNAP)) == [("ETH/USD", APPLIED)]
    assert not eng.resync_needed
    assert eng.stats.symbols["BTC/USD"].gaps == eng.stats.symbols["ETH/USD"].gaps == 1


def test_a_gap_revealed_by_a_heartbeat_or_another_channel():
    for reveal in (heartbeat(5), ticker(5)):
        eng, _ = engine()
        results(eng, l2(0, BTC_SNAP, ETH_SNAP))
        frame = eng.venue.parse(reveal)  # parsed on its own first: 1..4 were lost
        assert frame.kind == FrameKind.BOOK and "expected 1, got 5" in frame.info
        assert sorted(u.symbol for u in frame.updates) == ["BTC/USD", "ETH/USD"]
        for u in frame.updates:
            assert eng.venue.sync(eng.books[u.symbol], u) == GAP
    # Through the engine: every book is invalidated at once.
    eng, _ = engine()
    results(eng, l2(0, BTC_SNAP, ETH_SNAP))
    assert results(eng, heartbeat(2)) == [("BTC/USD", GAP), ("ETH/USD", GAP)]
    assert eng.resync_needed == {"BTC/USD", "ETH/USD"}


def test_a_book_that_had_no_update_in_the_gap_message_is_still_a_gap_later():
    venue = Coinbase()
    btc, eth = SymbolBook("coinbase", "BTC/USD", 64), SymbolBook("coinbase", "ETH/USD", 64)
    for u in venue.parse(l2(0, BTC_SNAP, ETH_SNAP)).updates:
        assert venue.sync(btc if u.symbol == "BTC/USD" else eth, u) == APPLIED
    # The gap message carries only BTC (and a marker for ETH an engine might not offer).
    frame = venue.parse(l2(2, ("update", "BTC-USD", [("bid", "21921.0", "1")])))
    btc_upd = [u for u in frame.updates if u.symbol == "BTC/USD"]
    assert venue.sync(btc, btc_upd[0]) == GAP
    # ETH's next update, after the gap, continues nothing we can trust.
    (eth_upd,) = venue.parse(l2(3, ("update", "ETH-USD", [("bid", "1500.11", "1")]))).updates
    assert eth_upd.prev_id == eth_upd.first_id - 1  # this message itself follows its predecessor
    assert venue.sync(eth, eth_upd) == GAP


def test_a_snapshot_in_the_gap_message_rebuilds_its_book():
    eng, _ = engine()
    results(eng, l2(0, BTC_SNAP, ETH_SNAP))
    res = results(eng, l2(9, BTC_SNAP, ("update", "BTC-USD", [("bid", "21921.0", "1")])))
    assert res == [("BTC/USD", APPLIED), ("BTC/USD", APPLIED), ("ETH/USD", GAP)]
    assert eng.books["BTC/USD"].synced and eng.resync_needed == {"ETH/USD"}


def test_a_book_waiting_for_its_snapshot_resubscribes_after_a_gap():
    # The lost message may have been the very snapshot the book waits for.
    eng, _ = engine()
    assert eng.on_frame(subscriptions(0), 0) == []
    assert results(eng, heartbeat(2)) == [("BTC/USD", GAP), ("ETH/USD", GAP)]
    assert eng.resync_needed == {"BTC/USD", "ETH/USD"}


def test_a_malformed_l2_message_is_a_lost_message():
    eng, _ = engine()
    results(eng, l2(0, BTC_SNAP, ETH_SNAP))
    bad = json.loads(l2(1, ("update", "BTC-USD", [("bid", "21921.0", "1")])))
    del bad["events"][0]["updates"][0]["price_level"]
    assert eng.on_frame(json.dumps(bad), 0) == [] and eng.parse_errors == 1
    # Its sequence_num was not taken: the next message shows the jump.
    assert results(eng, heartbeat(2)) == [("BTC/USD", GAP), ("ETH/USD", GAP)]


def test_a_new_connection_starts_a_new_sequence():
    eng, rec = engine()
    results(eng, l2(0, BTC_SNAP, ETH_SNAP))
    results(eng, l2(1, ("update", "BTC-USD", [("bid", "21921.0", "1")])))
    old_id = eng.books["BTC/USD"].last_id
    # The feed process reconnects: it invalidates its books and sends subscribe_messages again.
    for b in eng.books.values():
        b.invalidate()
    eng.venue.subscribe_messages(["BTC/USD", "ETH/USD"])
    assert eng.on_frame(subscriptions(0), 0) == []
    assert results(eng, l2(1, BTC_SNAP)) == [("BTC/USD", APPLIED)]
    assert eng.books["BTC/USD"].last_id > old_id and eng.venue.connection_gaps == 0
    assert results(eng, l2(2, ("update", "BTC-USD", [("bid", "21921.0", "3")]))) == [("BTC/USD", APPLIED)]
    # A book of the old connection (had it not been invalidated) cannot continue on the new one.
    venue = Coinbase()
    book = SymbolBook("coinbase", "BTC/USD", 64)
    venue.sync(book, venue.parse(l2(0, BTC_SNAP)).updates[0])
    venue.subscribe_messages(["BTC/USD"])
    (upd,) = venue.parse(l2(0, ("update", "BTC-USD", [("bid", "21921.0", "1")]))).updates
    assert venue.sync(book, upd) == GAP


def test_a_replay_across_reconnects_sees_the_sequence_restart():
    # book-check replays recordings without calling subscribe_messages.
    eng, _ = engine(subscribe=False)
    results(eng, l2(0, BTC_SNAP, ETH_SNAP))
    results(eng, l2(1, ("update", "BTC-USD", [("bid", "21921.0", "1")])))
    assert results(eng, subscriptions(0)) == [("BTC/USD", GAP), ("ETH/USD", GAP)]
    assert results(eng, l2(1, BTC_SNAP, ETH_SNAP)) == [("BTC/USD", APPLIED), ("ETH/USD", APPLIED)]
    assert results(eng, l2(2, ("update", "ETH-USD", [("bid", "1500.11", "1")]))) == [("ETH/USD", APPLIED)]
    ids = (eng.books["BTC/USD"].last_id, eng.books["ETH/USD"].last_id)
    assert ids == (EPOCH_SPAN + 1, EPOCH_SPAN + 2)


def test_ids_chain_on_the_connection():
    venue = Coinbase()
    venue.subscribe_messages(["BTC/USD"])
    base = venue.gap_at
    (u0,) = venue.parse(l2(0, BTC_SNAP)).updates
    assert (u0.first_id, u0.last_id, u0.prev_id) == (base, base, base - 1)
    venue.parse(heartbeat(1))
    (u2,) = venue.parse(l2(2, ("update", "BTC-USD", [("bid", "1", "1")]))).updates
    assert (u2.first_id, u2.prev_id) == (base + 2, base + 1)


# -- bad levels and malformed frames -----------------------------------------------------------


@pytest.mark.parametrize("bad", [("bid", "21921.0", "nan"), ("bid", "21921.0", "-1"), ("offer", "-5", "1"),
                                 ("offer", "inf", "1")])
def test_nan_or_negative_levels_are_invalid_and_leave_the_book_unchanged(bad):
    venue, book = Coinbase(), SymbolBook("coinbase", "BTC/USD", 64)
    venue.sync(book, venue.parse(l2(0, BTC_SNAP)).updates[0])
    before = (book.bids.copy(), book.asks.copy(), book.n_bids, book.n_asks, book.last_id)
    (upd,) = venue.parse(l2(1, ("update", "BTC-USD", [("bid", "21920.9", "1"), bad]))).updates
    assert venue.sync(book, upd) == SyncResult.INVALID
    assert np.array_equal(before[0], book.bids) and np.array_equal(before[1], book.asks)
    assert before[2:] == (book.n_bids, book.n_asks, book.last_id)
    (snap,) = venue.parse(l2(2, ("snapshot", "BTC-USD", [bad]))).updates
    assert venue.sync(book, snap) == SyncResult.INVALID and not book.synced


@pytest.mark.parametrize("frame", [
    "{not json",
    "[1, 2]",
    json.dumps({"channel": "l2_data", "sequence_num": 1}),  # no events
    json.dumps({"channel": "l2_data", "sequence_num": "1", "events": []}),
    json.dumps({"channel": "l2_data", "sequence_num": -1, "events": []}),
    json.dumps({"channel": "l2_data", "sequence_num": 1, "events": {}}),
    json.dumps({"channel": "l2_data", "sequence_num": 1, "events": ["x"]}),
    json.dumps({"channel": "l2_data", "sequence_num": 1, "events": [{"type": "update", "product_id": "BTC-USD"}]}),
    json.dumps({"channel": "l2_data", "sequence_num": 1, "events": [{"type": "delta", "product_id": "BTC-USD",
                                                                     "updates": []}]}),
    json.dumps({"channel": "l2_data", "sequence_num": 1, "events": [{"type": "update", "product_id": 5,
                                                                     "updates": []}]}),
    json.dumps({"channel": "l2_data", "sequence_num": 1, "events": [{"type": "update", "product_id": "BTC-USD",
                                                                     "updates": {}}]}),
    l2(1, ("update", "BTC-USD", [("buy", "1", "1")])),
    l2(1, ("update", "BTC-USD", [("bid", "abc", "1")])),
    l2(1, ("update", "BTC-USD", [("bid", "1", "1")])).replace('"price_level": "1"', '"price_level": 1'),
    l2(1, ("update", "BTC-USD", [("bid", "1", "1")])).replace('"updates": [{', '"updates": [7, {'),
    l2(1, ("update", "BTC-USD", [("bid", "1", "1")]), ts="yesterday"),
    l2(1, ("update", "BTC-USD", [("bid", "1", "1")]), ts="2023-02-30T20:32:50Z"),
])
def test_malformed_frames_raise_frame_error(frame):
    with pytest.raises(FrameError):
        Coinbase().parse(frame)


# -- control frames, symbols, subscriptions ----------------------------------------------------


def test_control_frames():
    v = Coinbase()
    ack = v.parse(subscriptions(0))
    assert ack.kind == FrameKind.ACK and "level2" in ack.info
    assert v.parse(heartbeat(1)).kind == FrameKind.HEARTBEAT
    err = v.parse(json.dumps({"type": "error", "message": "failure to subscribe"}))
    assert err.kind == FrameKind.ERROR and err.info == "failure to subscribe"
    assert v.parse(ticker(2)).kind == FrameKind.OTHER
    assert v.parse(json.dumps({"channel": "status", "sequence_num": 3, "events": []})).kind == FrameKind.OTHER
    assert v.ping_message() is None and v.connection_gaps == 0


def test_symbols_and_subscribe_messages():
    v = Coinbase()
    assert v.native_symbol("BTC/USD") == "BTC-USD" and v.unified_symbol("BTC-USD") == "BTC/USD"
    assert v.unified_symbol("ETH-EUR") == "ETH/EUR" and v.unified_symbol("WEIRD") == "WEIRD"
    with pytest.raises(ValueError):
        v.native_symbol("BTCUSD")
    with pytest.raises(FrameError):
        v.unified_symbol(7)
    msgs = [json.loads(m) for m in v.subscribe_messages(["BTC/USD", "ETH/USD"])]
    assert msgs == [{"type": "subscribe", "channel": "heartbeats"},
                    {"type": "subscribe", "product_ids": ["BTC-USD", "ETH-USD"], "channel": "level2"}]
    assert v.resubscribe_messages([]) == []
    # level2 serves a -USDC book as the -USD product ...
    u = Coinbase()
    u.native_symbol("SOL/USDC")
    assert u.unified_symbol("SOL-USD") == "SOL/USDC" and u.unified_symbol("SOL-USDC") == "SOL/USDC"
    # ... unless the -USD book is subscribed too.
    w = Coinbase()
    w.native_symbol("SOL/USDC")
    w.native_symbol("SOL/USD")
    assert w.unified_symbol("SOL-USD") == "SOL/USD"
    assert Coinbase(ws_url="ws://127.0.0.1:9").ws_url == "ws://127.0.0.1:9" and Coinbase.id == "coinbase"


def test_rfc3339_timestamps():
    assert rfc3339_ns(TS) == TS_NS
    for text in ("2024-10-03T02:46:57.050170Z", "2023-01-01T00:00:00Z", "2023-06-30T23:59:59.9+02:00",
                 "2023-06-30 23:59:59.123456-05:30"):
        dt = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
        expect = int(dt.timestamp()) * 10**9 + dt.microsecond * 1000
        assert rfc3339_ns(text) == expect, text
    assert rfc3339_ns("2023-02-09T20:32:50.1234567891Z") % 10**9 == 123456789  # beyond ns: cut
    for bad in ("2023-02-09", "2023-02-09T25:00:00Z", "2023-02-09T20:32:50", "x", 5, "2023-13-01T00:00:00Z"):
        with pytest.raises(FrameError):
            rfc3339_ns(bad)
