"""OKX v5 order books: docs examples, seqId chain (keep-alive, reset, gap), CRC32 checksum, parsing."""

import copy
import json
import zlib

import numpy as np
import pytest

from hftpipe.feeds.base import FrameError, FrameKind, SymbolBook, SyncResult
from hftpipe.feeds.engine import FeedEngine
from hftpipe.feeds.okx import Okx, okx_checksum

# -- an independent model of the book and of OKX's checksum ------------------------------------


def expected_checksum(bids: dict, asks: dict) -> int:
    """OKX docs: top 25 bids/asks as 'bid:ask:bid:ask...', the longer side alone at the end, signed CRC32."""
    b = sorted(bids.items(), key=lambda kv: -float(kv[0]))[:25]
    a = sorted(asks.items(), key=lambda kv: float(kv[0]))[:25]
    fields = []
    for i in range(max(len(b), len(a))):
        for side in (b, a):
            if i < len(side):
                fields += [side[i][1][0], side[i][1][1]]
    crc = zlib.crc32(":".join(fields).encode())
    return int.from_bytes(crc.to_bytes(4, "big"), "big", signed=True)


class Model:
    """Price (float) -> (price_str, size_str) per side, updated as the docs say."""

    def __init__(self, bids, asks):
        self.bids = {float(p): (p, s) for p, s in bids if float(s) != 0}
        self.asks = {float(p): (p, s) for p, s in asks if float(s) != 0}

    def update(self, bids=(), asks=()):
        for side, rows in ((self.bids, bids), (self.asks, asks)):
            for p, s in rows:
                if float(s) == 0:
                    side.pop(float(p), None)
                else:
                    side[float(p)] = (p, s)

    def checksum(self):
        return expected_checksum(self.bids, self.asks)


def lv(rows):
    return [[p, s, "0", "1"] for p, s in rows]


def push(action, bids=(), asks=(), seq=None, prev=None, checksum=None, inst="BTC-USDT", channel="books",
         ts="1597026383085"):
    d = {"asks": lv(asks), "bids": lv(bids), "ts": ts}
    if checksum is not None:
        d["checksum"] = checksum
    if prev is not None:
        d["prevSeqId"] = prev
    if seq is not None:
        d["seqId"] = seq
    msg = {"arg": {"channel": channel, "instId": inst}, "data": [d]}
    if action is not None:
        msg["action"] = action
    return json.dumps(msg)


class Recorder:
    def __init__(self):
        self.published = []
        self.invalid = []

    def publish(self, symbol, book, update, recv_ns, parsed_ns, applied_ns):
        self.published.append((symbol, book.best_bid(), book.best_ask(), book.last_id))

    def on_invalid(self, symbol, result):
        self.invalid.append((symbol, result))


def engine(**options):
    rec = Recorder()
    venue = Okx(**options)
    venue.native_symbol("BTC/USDT")
    eng = FeedEngine(venue, ["BTC/USDT"], capacity=512, publish=rec.publish, on_invalid=rec.on_invalid)
    return eng, rec


def offer(venue, book, frame):
    """Parse one frame and sync its single update; the sync result."""
    (upd,) = venue.parse(frame).updates
    return venue.sync(book, upd)


def top(book, n=25):
    """Best-first [(price, size)] per side, from the kernels' worst-first layout."""
    b = book.bids[max(book.n_bids - n, 0):book.n_bids][::-1].tolist()
    a = book.asks[max(book.n_asks - n, 0):book.n_asks][::-1].tolist()
    return b, a


# The docs' "Push Data Example: Full Snapshot" of the books channel, verbatim.
DOCS_SNAPSHOT = {
    "arg": {"channel": "books", "instId": "BTC-USDT"},
    "action": "snapshot",
    "data": [{
        "asks": [["8476.98", "415", "0", "13"], ["8477", "7", "0", "2"], ["8477.34", "85", "0", "1"],
                 ["8477.56", "1", "0", "1"], ["8505.84", "8", "0", "1"], ["8506.37", "85", "0", "1"],
                 ["8506.49", "2", "0", "1"], ["8506.96", "100", "0", "2"]],
        "bids": [["8476.97", "256", "0", "12"], ["8475.55", "101", "0", "1"], ["8475.54", "100", "0", "1"],
                 ["8475.3", "1", "0", "1"], ["8447.32", "6", "0", "1"], ["8447.02", "246", "0", "1"],
                 ["8446.83", "24", "0", "1"], ["8446", "95", "0", "3"]],
        "ts": "1597026383085",
        "checksum": -855196043,
        "prevSeqId": -1,
        "seqId": 123456,
    }],
}


# -- checksum ----------------------------------------------------------------------------------


def test_checksum_matches_the_docs_examples():
    # Docs "Calculate Checksum" 1: more than 25 levels (2 shown): "3366.1:7:3366.8:9:3366:6:3368:8".
    bids = [("3366.1", "7"), ("3366", "6")]
    asks = [("3366.8", "9"), ("3368", "8")]
    assert okx_checksum(bids, asks) == -1881014294
    # Docs 2: fewer than 25 levels on one side: "3366.1:7:3366.8:9:3368:8:3372:8".
    assert okx_checksum([("3366.1", "7")], [("3366.8", "9"), ("3368", "8"), ("3372", "8")]) == 831078360


def test_docs_checksum_example_through_the_book():
    venue, book = Okx(), SymbolBook("okx", "BTC/USDT", 64)
    frame = push("snapshot", bids=[("3366.1", "7"), ("3366", "6")], asks=[("3366.8", "9"), ("3368", "8")],
                 seq=10, prev=-1, checksum=-1881014294)
    assert offer(venue, book, frame) == SyncResult.APPLIED
    assert venue.book_checksum(book) == -1881014294
    # "3366.1:7:3366.8:9:3368:8:3372:8": unequal sides, reached by increments.
    frame = push("update", bids=[("3366", "0")], asks=[("3372", "8")], seq=11, prev=10, checksum=831078360)
    assert offer(venue, book, frame) == SyncResult.APPLIED
    assert book.n_bids == 1 and book.n_asks == 3


def test_docs_push_example_parses_but_its_checksum_is_illustrative():
    """The docs' full-snapshot example carries checksum -855196043, which is not the CRC32 of its own
    levels (checked independently here): verbatim it must be CHECKSUM_BAD; with the right value, APPLIED."""
    venue = Okx()
    frame = venue.parse(json.dumps(DOCS_SNAPSHOT))
    assert frame.kind == FrameKind.BOOK
    (upd,) = frame.updates
    assert upd.symbol == "BTC/USDT" and upd.is_snapshot and upd.last_id == 123456 and upd.prev_id == -1
    assert upd.exch_ns == 1597026383085 * 1_000_000 and upd.bids.shape == (8, 2)
    assert upd.raw_asks[1] == ("8477", "7")
    book = SymbolBook("okx", "BTC/USDT", 64)
    assert venue.sync(book, upd) == SyncResult.CHECKSUM_BAD
    m = Model([r[:2] for r in DOCS_SNAPSHOT["data"][0]["bids"]], [r[:2] for r in DOCS_SNAPSHOT["data"][0]["asks"]])
    assert m.checksum() != -855196043
    fixed = copy.deepcopy(DOCS_SNAPSHOT)
    fixed["data"][0]["checksum"] = m.checksum()
    book = SymbolBook("okx", "BTC/USDT", 64)
    assert offer(venue, book, json.dumps(fixed)) == SyncResult.APPLIED
    assert book.best_bid() == 8476.97 and book.best_ask() == 8476.98 and book.last_id == 123456


def test_checksum_over_a_sequence_of_increments_uses_the_received_strings():
    """30 levels a side (the 26th enters the top 25 after deletes), prices with trailing zeros."""
    eng, rec = engine()
    bids = [(f"{100 - i * 0.5:.2f}", f"{i + 1}.000") for i in range(30)]  # "100.00", "99.50", ...
    asks = [(f"{100.5 + i * 0.5:.1f}", f"{i + 2}") for i in range(30)]  # "100.5", "101.0", ...
    m = Model(bids, asks)
    eng.on_frame(push("snapshot", bids, asks, seq=1, prev=-1, checksum=m.checksum()), 0)
    book = eng.books["BTC/USDT"]
    assert book.synced and rec.published[-1] == ("BTC/USDT", 100.0, 100.5, 1)
    steps = [
        dict(bids=[("100.00", "0"), ("99.50", "0.5")], asks=[]),  # delete the best bid, resize
        dict(bids=[("100.10", "3.25")], asks=[("100.5", "0"), ("100.40", "1")]),  # insert inside
        dict(bids=[("97.00", "0"), ("96.50", "0"), ("96.00", "0")], asks=[("110.0", "0")]),  # deeper moves up
        dict(bids=[("90.000", "7")], asks=[("100.40", "2.5000")]),  # new text for a known price
        dict(bids=[], asks=[("101.0", "0"), ("101.5", "0"), ("102.0", "0")]),
    ]
    seq = 1
    for step in steps:
        m.update(**step)
        eng.on_frame(push("update", step["bids"], step["asks"], seq=seq + 7, prev=seq, checksum=m.checksum()), 0)
        seq += 7
        assert book.last_id == seq
    st = eng.stats.symbols["BTC/USDT"]
    assert st.checksum_bad == 0 and st.gaps == 0 and st.checksum_ok == 1 + len(steps)
    assert eng.venue.book_checksum(book) == m.checksum()
    b, a = top(book, 100)
    assert b == [[p, float(s)] for p, (_, s) in sorted(m.bids.items(), reverse=True)]
    assert a == [[p, float(s)] for p, (_, s) in sorted(m.asks.items())]
    assert book.raw_asks[100.4] == ("100.40", "2.5000")  # the last text received for that level


def test_checksum_with_unequal_sides_longer_side_continues_alone():
    venue, book = Okx(), SymbolBook("okx", "BTC/USDT", 64)
    bids = [("99", "1"), ("98", "2"), ("97", "3")]
    asks = [(str(100 + i), str(i + 1)) for i in range(30)]
    m = Model(bids, asks)
    assert offer(venue, book, push("snapshot", bids, asks, seq=5, prev=-1, checksum=m.checksum())) == SyncResult.APPLIED
    text = "99:1:100:1:98:2:101:2:97:3:102:3:" + ":".join(f"{100 + i}:{i + 1}" for i in range(3, 25))
    crc = zlib.crc32(text.encode())
    assert venue.book_checksum(book) == (crc - 2**32 if crc >= 2**31 else crc) == m.checksum()
    # And the mirror image: asks shorter than bids.
    book2 = SymbolBook("okx", "BTC/USDT", 64)
    m2 = Model(asks=[("101", "1")], bids=[(str(100 - i), "1") for i in range(27)])
    frame = push("snapshot", [(str(100 - i), "1") for i in range(27)], [("101", "1")], seq=1, prev=-1,
                 checksum=m2.checksum())
    assert offer(venue, book2, frame) == SyncResult.APPLIED


def test_checksum_mismatch_is_checksum_bad_and_asks_for_a_resync():
    eng, rec = engine()
    bids, asks = [("100", "1")], [("101", "1")]
    m = Model(bids, asks)
    eng.on_frame(push("snapshot", bids, asks, seq=1, prev=-1, checksum=m.checksum()), 0)
    m.update(bids=[("100", "2")])
    eng.on_frame(push("update", [("100", "2")], seq=2, prev=1, checksum=m.checksum() ^ 1), 0)
    st = eng.stats.symbols["BTC/USDT"]
    assert st.checksum_bad == 1 and rec.invalid == [("BTC/USDT", SyncResult.CHECKSUM_BAD)]
    assert eng.resync_needed == {"BTC/USDT"} and not eng.books["BTC/USDT"].synced
    # Increments in flight before the new snapshot are dropped, not chained; the snapshot heals.
    eng.on_frame(push("update", [("100", "3")], seq=3, prev=2), 0)
    assert st.dropped == 1 and st.gaps == 0
    eng.on_frame(push("snapshot", bids, asks, seq=9, prev=-1, checksum=Model(bids, asks).checksum()), 0)
    assert eng.books["BTC/USDT"].synced and eng.books["BTC/USDT"].last_id == 9


def test_zero_checksum_is_the_deprecated_field_not_a_checksum():
    venue = Okx()
    (upd,) = venue.parse(push("snapshot", [("100", "1")], [("101", "1")], seq=1, prev=-1, checksum=0)).updates
    assert upd.checksum is None
    assert venue.sync(SymbolBook("okx", "BTC/USDT", 16), upd) == SyncResult.APPLIED


# -- sequence ----------------------------------------------------------------------------------


def test_docs_sequence_example_keepalive_and_reset():
    """Docs: snapshot (-1, 10); update (10, 15); no update (15, 15); reset (15, 3); update (3, 5)."""
    eng, rec = engine()
    book = eng.books["BTC/USDT"]
    eng.on_frame(push("snapshot", [("100", "1")], [("101", "1")], seq=10, prev=-1), 0)
    eng.on_frame(push("update", [("100.5", "1")], seq=15, prev=10), 0)
    n_pub = len(rec.published)
    eng.on_frame(push("update", seq=15, prev=15), 0)  # keep-alive: 'asks': [], 'bids': []
    st = eng.stats.symbols["BTC/USDT"]
    assert st.ignored == 1 and len(rec.published) == n_pub and book.last_id == 15
    eng.on_frame(push("update", asks=[("100.8", "2")], seq=3, prev=15), 0)  # maintenance reset
    assert book.last_id == 3 and book.best_ask() == 100.8
    eng.on_frame(push("update", bids=[("100.6", "1")], seq=5, prev=3), 0)
    assert book.last_id == 5 and book.best_bid() == 100.6
    assert st.gaps == 0 and st.resyncs == 0 and rec.invalid == []


def test_prev_seq_id_must_chain_else_gap():
    eng, rec = engine()
    eng.on_frame(push("snapshot", [("100", "1")], [("101", "1")], seq=10, prev=-1), 0)
    eng.on_frame(push("update", [("100.5", "1")], seq=15, prev=10), 0)
    eng.on_frame(push("update", [("100.6", "1")], seq=20, prev=16), 0)  # 15 -> 16 lost
    st = eng.stats.symbols["BTC/USDT"]
    assert st.gaps == 1 and rec.invalid == [("BTC/USDT", SyncResult.GAP)]
    assert not eng.books["BTC/USDT"].synced and eng.resync_needed == {"BTC/USDT"}


def test_keepalive_for_another_seq_id_is_a_gap():
    venue, book = Okx(), SymbolBook("okx", "BTC/USDT", 16)
    offer(venue, book, push("snapshot", [("100", "1")], [("101", "1")], seq=10, prev=-1))
    assert offer(venue, book, push("update", seq=12, prev=12)) == SyncResult.GAP
    book2 = SymbolBook("okx", "BTC/USDT", 16)
    offer(venue, book2, push("snapshot", [("100", "1")], [("101", "1")], seq=10, prev=-1))
    assert offer(venue, book2, push("update", seq=10, prev=10)) == SyncResult.IGNORED
    # A keep-alive's checksum is still the book's.
    assert offer(venue, book2, push("update", seq=10, prev=10, checksum=12345)) == SyncResult.CHECKSUM_BAD


def test_recordings_without_seq_ids_rely_on_the_checksum():
    venue, book = Okx(), SymbolBook("okx", "BTC/USDT", 16)
    m = Model([("100", "1")], [("101", "1")])
    assert offer(venue, book, push("snapshot", [("100", "1")], [("101", "1")], checksum=m.checksum())) == SyncResult.APPLIED
    m.update(bids=[("100.5", "2")])
    assert offer(venue, book, push("update", [("100.5", "2")], checksum=m.checksum())) == SyncResult.APPLIED
    assert offer(venue, book, push("update")) == SyncResult.IGNORED
    assert offer(venue, book, push("update", [("100.7", "2")], checksum=m.checksum())) == SyncResult.CHECKSUM_BAD


def test_updates_before_the_snapshot_are_dropped():
    venue, book = Okx(), SymbolBook("okx", "BTC/USDT", 16)
    assert offer(venue, book, push("update", [("100", "1")], seq=5, prev=4)) == SyncResult.DROPPED
    assert book.n_bids == 0 and not book.pending


# -- bad levels and malformed frames -----------------------------------------------------------


@pytest.mark.parametrize("bad", [("100.5", "nan"), ("100.5", "-1"), ("nan", "1"), ("-5", "1"), ("inf", "1")])
def test_nan_or_negative_levels_are_invalid_and_leave_the_book_unchanged(bad):
    venue, book = Okx(), SymbolBook("okx", "BTC/USDT", 16)
    offer(venue, book, push("snapshot", [("100", "1")], [("101", "1")], seq=1, prev=-1))
    before = (book.bids.copy(), book.asks.copy(), book.n_bids, book.n_asks, book.last_id,
              dict(book.raw_bids), dict(book.raw_asks))
    assert offer(venue, book, push("update", [("99", "3"), bad], seq=2, prev=1)) == SyncResult.INVALID
    after = (book.bids, book.asks, book.n_bids, book.n_asks, book.last_id, book.raw_bids, book.raw_asks)
    assert np.array_equal(before[0], after[0]) and np.array_equal(before[1], after[1])
    assert before[2:] == after[2:]
    # A bad snapshot level: INVALID and no half-loaded book.
    assert offer(venue, book, push("snapshot", [("100", "1")], [bad], seq=3, prev=-1)) == SyncResult.INVALID
    assert not book.synced and book.n_bids == 0


@pytest.mark.parametrize("frame", [
    "{not json",
    "[1, 2]",
    json.dumps({"arg": {"channel": "books", "instId": "BTC-USDT"}, "action": "update"}),  # no data
    json.dumps({"arg": {"channel": "books", "instId": "BTC-USDT"}, "action": "update", "data": [{"bids": []}]}),
    json.dumps({"arg": {"channel": "books"}, "action": "update", "data": []}),  # no instId
    json.dumps({"arg": "books", "data": []}),
    json.dumps({"arg": {"channel": "books", "instId": "BTC-USDT"}, "action": "partial", "data": []}),
    json.dumps({"arg": {"channel": "books", "instId": "BTC-USDT"}, "data": []}),  # books needs an action
    push("update", [(100.5, 1)], seq=2, prev=1).replace('"100.5"', "100.5"),  # numbers, not strings
    json.dumps({"arg": {"channel": "books", "instId": "BTC-USDT"}, "action": "update",
                "data": [{"bids": [[100.5, 1, "0", "1"]], "asks": []}]}),
    push("update", [("abc", "1")], seq=2, prev=1),
    push("update", [("100", "1")], seq="2", prev=1),  # seqId must be an integer
    push("update", [("100", "1")], seq=2, prev=1, checksum="123"),
    json.dumps({"arg": {"channel": "books", "instId": "BTC-USDT"}, "action": "update",
                "data": [{"bids": [["100"]], "asks": []}]}),
    json.dumps({"arg": {"channel": "books", "instId": "BTC-USDT"}, "action": "update",
                "data": [{"bids": {"100": "1"}, "asks": []}]}),
    json.dumps({"arg": {"channel": "books", "instId": "BTC-USDT"}, "action": "update",
                "data": [{"bids": [], "asks": [], "ts": "soon"}]}),
])
def test_malformed_frames_raise_frame_error(frame):
    with pytest.raises(FrameError):
        Okx().parse(frame)


def test_engine_counts_malformed_frames_and_keeps_going():
    eng, rec = engine()
    eng.on_frame("{oops", 0)
    eng.on_frame(push("snapshot", [("100", "1")], [("101", "1")], seq=1, prev=-1), 0)
    assert eng.parse_errors == 1 and eng.books["BTC/USDT"].synced


# -- control frames, channels, symbols ---------------------------------------------------------


def test_control_frames():
    v = Okx()
    ack = v.parse(json.dumps({"id": "1512", "event": "subscribe", "arg": {"channel": "books", "instId": "BTC-USDT"},
                              "connId": "a4d3ae55"}))
    assert ack.kind == FrameKind.ACK and "books:BTC-USDT" in ack.info
    assert v.parse(json.dumps({"event": "unsubscribe", "arg": {"channel": "books", "instId": "BTC-USDT"},
                               "connId": "a4d3ae55"})).kind == FrameKind.ACK
    err = v.parse(json.dumps({"id": "1512", "event": "error", "code": "60012",
                              "msg": "Invalid request: {\"op\": \"subscribe\", \"argss\":[]}", "connId": "a4d3ae55"}))
    assert err.kind == FrameKind.ERROR and err.info.startswith("60012")
    assert v.parse("pong").kind == FrameKind.PONG and v.parse(b"pong").kind == FrameKind.PONG
    notice = v.parse(json.dumps({"event": "notice", "code": "64008",
                                 "msg": "The connection will soon be closed for a service upgrade."}))
    assert notice.kind == FrameKind.OTHER and "64008" in notice.info
    trades = {"arg": {"channel": "trades", "instId": "BTC-USDT"}, "data": [{"px": "1"}]}
    assert v.parse(json.dumps(trades)).kind == FrameKind.OTHER
    assert v.ping_message() == "ping" and v.ping_interval_s < 30


def test_subscribe_messages_and_symbols():
    v = Okx()
    assert v.subscribe_messages(["BTC/USDT"]) == ['{"op":"subscribe","args":[{"channel":"books","instId":"BTC-USDT"}]}']
    assert [json.loads(m)["op"] for m in v.resubscribe_messages(["BTC/USDT"])] == ["unsubscribe", "subscribe"]
    assert v.native_symbol("ETH/BTC") == "ETH-BTC" and v.unified_symbol("SOL-USDC") == "SOL/USDC"
    assert v.unified_symbol("BTC-USDT") == "BTC/USDT"
    assert v.native_symbol("BTC/USDT:USDT") == "BTC-USDT-SWAP" and v.unified_symbol("ETH-USDT-SWAP") == "ETH/USDT:USDT"
    assert v.unified_symbol("BTC-USD-SWAP") == "BTC/USD:BTC" and v.unified_symbol("BTC-USD-250328") == "BTC/USD:BTC-250328"
    assert v.native_symbol("BTC/USD:BTC-250328") == "BTC-USD-250328"
    with pytest.raises(FrameError):
        v.unified_symbol("BTCUSDT")
    with pytest.raises(ValueError):
        v.native_symbol("BTCUSDT")
    with pytest.raises(ValueError):
        Okx(channel="books7")
    assert json.loads(Okx(channel="bbo-tbt").subscribe_messages(["BTC/USDT"])[0])["args"][0]["channel"] == "bbo-tbt"


def test_books5_and_bbo_tbt_push_snapshots_every_time():
    # Docs "Push Data Example of books5 channel" / "of bbo-tbt channel".
    books5 = {"arg": {"channel": "books5", "instId": "BCH-USDT-SWAP"}, "data": [{
        "asks": [["111.06", "55154", "0", "2"], ["111.07", "53276", "0", "2"], ["111.08", "72435", "0", "2"],
                 ["111.09", "70312", "0", "2"], ["111.1", "67272", "0", "2"]],
        "bids": [["111.05", "57745", "0", "2"], ["111.04", "57109", "0", "2"], ["111.03", "69563", "0", "2"],
                 ["111.02", "71248", "0", "2"], ["111.01", "65090", "0", "2"]],
        "instId": "BCH-USDT-SWAP", "ts": "1670324386802", "seqId": 363996337}]}
    bbo = {"arg": {"channel": "bbo-tbt", "instId": "BCH-USDT-SWAP"}, "data": [{
        "asks": [["111.06", "55154", "0", "2"]], "bids": [["111.05", "57745", "0", "2"]],
        "ts": "1670324386802", "seqId": 363996337}]}
    for channel, msg, n in (("books5", books5, 5), ("bbo-tbt", bbo, 1)):
        venue = Okx(channel=channel)
        venue.native_symbol("BCH/USDT:USDT")
        eng = FeedEngine(venue, ["BCH/USDT:USDT"], capacity=16)
        eng.on_frame(json.dumps(msg), 0)
        book = eng.books["BCH/USDT:USDT"]
        assert book.synced and book.n_bids == n and book.best_bid() == 111.05 and book.best_ask() == 111.06
        # The next push replaces the whole book (no action, no prevSeqId, lower levels gone).
        nxt = copy.deepcopy(msg)
        nxt["data"][0].update(asks=[["111.2", "1", "0", "1"]], bids=[["111.0", "2", "0", "1"]], seqId=363996340)
        eng.on_frame(json.dumps(nxt), 0)
        assert (book.n_bids, book.n_asks, book.best_bid(), book.best_ask()) == (1, 1, 111.0, 111.2)
        assert eng.stats.symbols["BCH/USDT:USDT"].gaps == 0


def test_several_data_entries_in_one_push():
    v = Okx()
    msg = json.loads(push("update", [("100", "1")], seq=2, prev=1))
    msg["data"].append(dict(msg["data"][0], seqId=3, prevSeqId=2))
    frame = v.parse(json.dumps(msg))
    assert [(u.prev_id, u.last_id) for u in frame.updates] == [(1, 2), (2, 3)]


def test_a_level_without_its_text_fails_the_checksum_instead_of_crashing():
    venue, book = Okx(), SymbolBook("okx", "BTC/USDT", 16)
    m = Model([("100.0", "1")], [("101", "1")])
    offer(venue, book, push("snapshot", [("100.0", "1")], [("101", "1")], seq=1, prev=-1, checksum=m.checksum()))
    book.raw_bids.clear()  # (only possible by tampering: every change goes through sync)
    assert venue.book_checksum(book) != m.checksum()
    assert offer(venue, book, push("update", seq=1, prev=1, checksum=m.checksum())) == SyncResult.CHECKSUM_BAD
