"""Bybit v5 order books: docs examples, u continuity, u == 1 / snapshot resets, parsing, control frames."""

import json

import numpy as np
import pytest

from hftpipe.feeds.base import FrameError, FrameKind, SymbolBook, SyncResult
from hftpipe.feeds.bybit import Bybit
from hftpipe.feeds.engine import FeedEngine

# The v5 docs' orderbook "Response Example" snapshot (its "..." rows left out).
DOCS_SNAPSHOT = {
    "topic": "orderbook.50.BTCUSDT",
    "type": "snapshot",
    "ts": 1672304484978,
    "data": {
        "s": "BTCUSDT",
        "b": [["16493.50", "0.006"], ["16493.00", "0.100"]],
        "a": [["16611.00", "0.029"], ["16612.00", "0.213"]],
        "u": 18521288,
        "seq": 7961638724,
    },
    "cts": 1672304484976,
}


def msg(kind, u, bids=(), asks=(), sym="BTCUSDT", depth=50, seq=None, ts=1672304485000):
    return json.dumps({
        "topic": f"orderbook.{depth}.{sym}", "type": kind, "ts": ts,
        "data": {"s": sym, "b": [list(b) for b in bids], "a": [list(a) for a in asks], "u": u,
                 "seq": seq if seq is not None else 7961638724 + u},
        "cts": ts - 2,
    })


class Recorder:
    def __init__(self):
        self.published = []
        self.invalid = []

    def publish(self, symbol, book, update, recv_ns, parsed_ns, applied_ns):
        self.published.append((symbol, book.best_bid(), book.best_ask(), book.last_id))

    def on_invalid(self, symbol, result):
        self.invalid.append((symbol, result))


def engine(symbol="BTC/USDT", **options):
    rec = Recorder()
    venue = Bybit(**options)
    venue.native_symbol(symbol)
    eng = FeedEngine(venue, [symbol], capacity=256, publish=rec.publish, on_invalid=rec.on_invalid)
    return eng, rec


def levels(book):
    """Best-first [(price, size)] per side."""
    return (book.bids[:book.n_bids][::-1].tolist(), book.asks[:book.n_asks][::-1].tolist())


def offer(venue, book, frame):
    (upd,) = venue.parse(frame).updates
    return venue.sync(book, upd)


def test_docs_snapshot_then_steady_deltas():
    eng, rec = engine()
    eng.on_frame(json.dumps(DOCS_SNAPSHOT), 0)
    book = eng.books["BTC/USDT"]
    assert book.synced and book.last_id == 18521288
    assert levels(book) == ([[16493.5, 0.006], [16493.0, 0.1]], [[16611.0, 0.029], [16612.0, 0.213]])
    assert book.exch_ns == 1672304484976 * 1_000_000  # cts: the matching engine's time
    eng.on_frame(msg("delta", 18521289, bids=[("16493.50", "0"), ("16495.00", "1.5")], asks=[("16611.00", "0.5")]), 0)
    eng.on_frame(msg("delta", 18521290, asks=[("16600.00", "0.010"), ("16612.00", "0")]), 0)
    eng.on_frame(msg("delta", 18521291, bids=[("16490.00", "2")]), 0)
    assert levels(book) == ([[16495.0, 1.5], [16493.0, 0.1], [16490.0, 2.0]],
                            [[16600.0, 0.01], [16611.0, 0.5]])
    assert book.last_id == 18521291
    assert [p[1:] for p in rec.published] == [(16493.5, 16611.0, 18521288), (16495.0, 16611.0, 18521289),
                                              (16495.0, 16600.0, 18521290), (16495.0, 16600.0, 18521291)]
    st = eng.stats.symbols["BTC/USDT"]
    assert st.applied == 4 and st.gaps == 0 and rec.invalid == []


def test_u_must_be_the_previous_u_plus_one():
    eng, rec = engine()
    eng.on_frame(json.dumps(DOCS_SNAPSHOT), 0)
    eng.on_frame(msg("delta", 18521289, bids=[("16494", "1")]), 0)
    eng.on_frame(msg("delta", 18521291, bids=[("16495", "1")]), 0)  # 18521290 lost
    st = eng.stats.symbols["BTC/USDT"]
    assert st.gaps == 1 and rec.invalid == [("BTC/USDT", SyncResult.GAP)]
    assert eng.resync_needed == {"BTC/USDT"} and not eng.books["BTC/USDT"].synced
    # Deltas in flight before the fresh snapshot are dropped; the snapshot makes the book whole.
    eng.on_frame(msg("delta", 18521292, bids=[("16496", "1")]), 0)
    assert st.dropped == 1 and st.gaps == 1
    eng.on_frame(msg("snapshot", 18521300, bids=[("16490", "1")], asks=[("16500", "1")]), 0)
    eng.on_frame(msg("delta", 18521301, bids=[("16491", "1")]), 0)
    assert eng.books["BTC/USDT"].synced and eng.books["BTC/USDT"].best_bid() == 16491.0


def test_delta_already_contained_is_dropped():
    venue, book = Bybit(), SymbolBook("bybit", "BTC/USDT", 16)
    offer(venue, book, msg("snapshot", 100, bids=[("10", "1")], asks=[("11", "1")]))
    assert offer(venue, book, msg("delta", 100, bids=[("10", "5")])) == SyncResult.DROPPED
    assert offer(venue, book, msg("delta", 99, bids=[("10", "5")])) == SyncResult.DROPPED
    assert book.bids[book.n_bids - 1, 1] == 1.0 and book.last_id == 100
    assert offer(venue, book, msg("delta", 101, bids=[("10", "5")])) == SyncResult.APPLIED


def test_new_snapshot_replaces_the_book():
    eng, rec = engine()
    eng.on_frame(json.dumps(DOCS_SNAPSHOT), 0)
    eng.on_frame(msg("snapshot", 18521500, bids=[("16000", "1")], asks=[("16001", "2")]), 0)
    book = eng.books["BTC/USDT"]
    assert levels(book) == ([[16000.0, 1.0]], [[16001.0, 2.0]]) and book.last_id == 18521500
    assert eng.stats.symbols["BTC/USDT"].gaps == 0


def test_delta_with_u_1_is_a_service_restart_that_replaces_the_book():
    eng, rec = engine()
    eng.on_frame(json.dumps(DOCS_SNAPSHOT), 0)
    eng.on_frame(msg("delta", 18521289, bids=[("16494", "1")]), 0)
    eng.on_frame(msg("delta", 1, bids=[("17000.5", "3")], asks=[("17001", "4")]), 0)  # restart
    book = eng.books["BTC/USDT"]
    assert levels(book) == ([[17000.5, 3.0]], [[17001.0, 4.0]]) and book.last_id == 1
    eng.on_frame(msg("delta", 2, asks=[("17000.8", "1")]), 0)
    assert book.best_ask() == 17000.8 and book.last_id == 2
    st = eng.stats.symbols["BTC/USDT"]
    assert st.gaps == 0 and st.resyncs == 0 and rec.invalid == []
    # u == 1 with empty sides (delisting / before a pre-market auction): an empty book.
    eng.on_frame(msg("delta", 1), 0)
    assert book.n_bids == 0 and book.n_asks == 0 and book.synced


def test_u_1_before_any_snapshot_starts_the_book():
    venue, book = Bybit(), SymbolBook("bybit", "BTC/USDT", 16)
    assert offer(venue, book, msg("delta", 5, bids=[("10", "1")])) == SyncResult.DROPPED
    assert offer(venue, book, msg("delta", 1, bids=[("10", "1")], asks=[("11", "1")])) == SyncResult.APPLIED
    assert book.synced and book.last_id == 1


@pytest.mark.parametrize("bad", [("16494", "nan"), ("16494", "-0.5"), ("nan", "1"), ("0", "1"), ("-16494", "1")])
def test_nan_or_negative_levels_are_invalid_and_leave_the_book_unchanged(bad):
    venue, book = Bybit(), SymbolBook("bybit", "BTC/USDT", 16)
    offer(venue, book, json.dumps(DOCS_SNAPSHOT))
    before = (book.bids.copy(), book.asks.copy(), book.n_bids, book.n_asks, book.last_id)
    assert offer(venue, book, msg("delta", 18521289, bids=[("16490", "1"), bad])) == SyncResult.INVALID
    assert np.array_equal(before[0], book.bids) and np.array_equal(before[1], book.asks)
    assert before[2:] == (book.n_bids, book.n_asks, book.last_id)
    # A bad snapshot: INVALID and no half-loaded book.
    assert offer(venue, book, msg("snapshot", 18521300, bids=[("1", "1")], asks=[bad])) == SyncResult.INVALID
    assert not book.synced and book.n_bids == 0


def test_engine_resyncs_after_an_invalid_delta():
    eng, rec = engine()
    eng.on_frame(json.dumps(DOCS_SNAPSHOT), 0)
    eng.on_frame(msg("delta", 18521289, asks=[("16611.00", "nan")]), 0)
    assert rec.invalid == [("BTC/USDT", SyncResult.INVALID)] and eng.resync_needed == {"BTC/USDT"}


def _topic_msg(**over):
    m = json.loads(json.dumps(DOCS_SNAPSHOT))
    data = over.pop("data", None)
    if data is not None:
        m["data"].update(data)
    for k, v in over.items():
        if v is None:
            m.pop(k)
        else:
            m[k] = v
    return json.dumps(m)


@pytest.mark.parametrize("frame", [
    "{not json",
    '"pong"',
    _topic_msg(type="partial"),
    _topic_msg(type=None),
    _topic_msg(data={"u": "x1"}),
    _topic_msg(data={"u": 1.5}),
    _topic_msg(data={"b": [["16493.50"]]}),
    _topic_msg(data={"b": [["abc", "1"]]}),
    _topic_msg(data={"a": {"16611.00": "0.029"}}),
    _topic_msg(data={"s": 5}),
    _topic_msg(ts="later", cts=None),
    _topic_msg(topic=7),
    json.dumps({"topic": "orderbook.50.BTCUSDT", "type": "delta", "data": [1, 2]}),
    json.dumps({"topic": "orderbook.50.BTCUSDT", "type": "delta", "data": {"s": "BTCUSDT", "b": [], "a": []}}),
    json.dumps({"topic": "orderbook.50.BTCUSDT", "type": "delta", "data": {"s": "BTCUSDT", "u": 5, "a": []}}),
])
def test_malformed_frames_raise_frame_error(frame):
    with pytest.raises(FrameError):
        Bybit().parse(frame)


def test_control_frames():
    v = Bybit()
    # Docs: subscription responses (spot, then linear) and the public pong.
    for ack in ({"success": True, "ret_msg": "subscribe", "conn_id": "2324d924-aa4d-45b0-a858-7b8be29ab52b",
                 "req_id": "10001", "op": "subscribe"},
                {"success": True, "ret_msg": "", "conn_id": "3cd84cb1-4d06-4a05-930a-2efe5fc70f0f", "req_id": "",
                 "op": "subscribe"},
                {"success": True, "ret_msg": "", "op": "unsubscribe", "conn_id": "x"}):
        assert v.parse(json.dumps(ack)).kind == FrameKind.ACK
    err = v.parse(json.dumps({"success": False, "ret_msg": "Invalid symbol :[orderbook.50.NOPEUSDT]",
                              "conn_id": "x", "op": "subscribe"}))
    assert err.kind == FrameKind.ERROR and "Invalid symbol" in err.info
    pong = {"success": True, "ret_msg": "pong", "conn_id": "465772b1-7630-4fdc-a492-e003e6f0f260", "req_id": "",
            "op": "ping"}
    assert v.parse(json.dumps(pong)).kind == FrameKind.PONG
    assert v.parse(json.dumps({"req_id": "test", "op": "pong", "args": ["1675418560633"],
                               "conn_id": "cfcb4ocsvfriu23r3er0-1b"})).kind == FrameKind.PONG
    trade = {"topic": "publicTrade.BTCUSDT", "type": "snapshot", "ts": 1, "data": [{"p": "1"}]}
    assert v.parse(json.dumps(trade)).kind == FrameKind.OTHER
    assert v.parse(json.dumps({"hello": 1})).kind == FrameKind.OTHER
    assert json.loads(v.ping_message()) == {"op": "ping"} and v.ping_interval_s <= 20


def test_subscribe_messages_urls_and_options():
    spot = Bybit()
    assert spot.ws_url == "wss://stream.bybit.com/v5/public/spot"
    assert spot.subscribe_messages(["BTC/USDT"]) == ['{"op":"subscribe","args":["orderbook.50.BTCUSDT"]}']
    many = [f"C{i}/USDT" for i in range(23)]
    msgs = [json.loads(m) for m in spot.subscribe_messages(many)]
    assert [len(m["args"]) for m in msgs] == [10, 10, 3]  # spot: at most 10 args per request
    assert [json.loads(m)["op"] for m in spot.resubscribe_messages(["BTC/USDT"])] == ["unsubscribe", "subscribe"]
    linear = Bybit(category="linear", depth=200)
    assert linear.ws_url == "wss://stream.bybit.com/v5/public/linear"
    assert json.loads(linear.subscribe_messages(["BTC/USDT:USDT"])[0])["args"] == ["orderbook.200.BTCUSDT"]
    assert Bybit(ws_url="ws://127.0.0.1:9/v5/public/spot").ws_url == "ws://127.0.0.1:9/v5/public/spot"
    with pytest.raises(ValueError):
        Bybit(category="option")
    with pytest.raises(ValueError):
        Bybit(depth=25)


def test_symbol_mapping_both_ways():
    v = Bybit()
    assert v.native_symbol("BTC/USDT") == "BTCUSDT" and v.unified_symbol("BTCUSDT") == "BTC/USDT"
    assert v.unified_symbol("ETHBTC") == "ETH/BTC" and v.unified_symbol("SOLUSDC") == "SOL/USDC"
    assert v.unified_symbol("USDCUSDT") == "USDC/USDT" and v.unified_symbol("BTCEUR") == "BTC/EUR"
    assert v.unified_symbol("ETHFDUSD") == "ETH/FDUSD"
    with pytest.raises(FrameError):
        v.unified_symbol("USDT")
    with pytest.raises(ValueError):
        v.native_symbol("BTCUSDT")
    lin = Bybit(category="linear")
    assert lin.unified_symbol("ETHUSDT") == "ETH/USDT:USDT"
    assert lin.native_symbol("BTC/USDT:USDT") == "BTCUSDT" and lin.unified_symbol("BTCUSDT") == "BTC/USDT:USDT"


def test_linear_book_keyed_by_the_configured_symbol():
    eng, rec = engine("BTC/USDT:USDT", category="linear")
    eng.on_frame(json.dumps(DOCS_SNAPSHOT), 0)
    assert eng.books["BTC/USDT:USDT"].synced and rec.published[0][0] == "BTC/USDT:USDT"
