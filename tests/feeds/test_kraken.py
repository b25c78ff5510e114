"""Kraken v2 ``book`` (and v1 ``book-N``): docs checksum examples, truncation to depth, precision, parsing."""

import json
import random
import zlib
from decimal import Decimal

import numpy as np
import pytest

from hftpipe.feeds.base import FrameError, FrameKind, SymbolBook, SyncResult
from hftpipe.feeds.engine import FeedEngine
from hftpipe.feeds.kraken import Kraken, checksum_token, kraken_checksum

# -- the docs' worked examples -----------------------------------------------------------------

# "Book checksum (WebSocket v2)" example: the snapshot's levels and the published strings / CRC.
DOC_V2_ASKS = [("45285.2", "0.00100000"), ("45286.4", "1.54571953"), ("45286.6", "1.54571109"),
               ("45289.6", "1.54560911"), ("45290.2", "0.15890660"), ("45291.8", "1.54553491"),
               ("45294.7", "0.04454749"), ("45296.1", "0.35380000"), ("45297.5", "0.09945542"),
               ("45299.5", "0.18772827")]
DOC_V2_BIDS = [("45283.5", "0.10000000"), ("45283.4", "1.54582015"), ("45282.1", "0.10000000"),
               ("45281.0", "0.10000000"), ("45280.3", "1.54592586"), ("45279.0", "0.07990000"),
               ("45277.6", "0.03310103"), ("45277.5", "0.30000000"), ("45277.3", "1.54602737"),
               ("45276.6", "0.15445238")]
DOC_V2_ASK_STRING = ("45285210000045286415457195345286615457110945289615456091145290215890660"
                     "452918154553491452947445474945296135380000452975994554245299518772827")
DOC_V2_BID_STRING = ("452835100000004528341545820154528211000000045281010000000452803154592586"
                     "452790799000045277633101034527753000000045277315460273745276615445238")
DOC_V2_CHECKSUM = 3310070434

# "Book checksum (WebSocket v1)" example book state, and its update frame (checksum "974947235").
DOC_V1_ASKS = [(p, "0.00000500") for p in ("0.05005", "0.05010", "0.05015", "0.05020", "0.05025",
                                           "0.05030", "0.05035", "0.05040", "0.05045", "0.05050")]
DOC_V1_BIDS = [(p, "0.00000500") for p in ("0.05000", "0.04995", "0.04990", "0.04980", "0.04975",
                                           "0.04970", "0.04965", "0.04960", "0.04955", "0.04950")]
DOC_V1_UPDATE = [0, {"a": [["0.05120", "0.00000500", "1582905486.493008"],
                           ["0.05275", "0.00000500", "1582905486.493034"]]},
                 {"b": [["0.04765", "0.00000500", "1582905486.493008"],
                        ["0.04940", "0.00000500", "1582905486.493034"]],
                  "c": "974947235"}, "book-1000", "BTC/USD"]


# -- an independent model: Decimal levels, the docs' rules, the docs' checksum --------------------


class Model:
    """Price -> qty (Decimal) per side; apply in order, qty 0 deletes, truncate to depth, checksum."""

    def __init__(self, depth, pp, qp):
        self.depth, self.pp, self.qp = depth, pp, qp
        self.bids, self.asks = {}, {}

    def apply(self, bids=(), asks=()):
        for side, rows in ((self.bids, bids), (self.asks, asks)):
            for p, q in rows:
                if Decimal(q) == 0:
                    side.pop(Decimal(p), None)
                else:
                    side[Decimal(p)] = Decimal(q)
        self.bids = dict(sorted(self.bids.items(), reverse=True)[:self.depth])
        self.asks = dict(sorted(self.asks.items())[:self.depth])

    def best_first(self):
        return (sorted(self.bids.items(), reverse=True), sorted(self.asks.items()))

    def checksum(self):
        bids, asks = self.best_first()

        def fmt(d, n):
            return f"{d:.{n}f}".replace(".", "").lstrip("0")

        text = "".join(fmt(p, self.pp) + fmt(q, self.qp) for p, q in asks[:10])
        text += "".join(fmt(p, self.pp) + fmt(q, self.qp) for p, q in bids[:10])
        return zlib.crc32(text.encode())


def v2(kind, bids=(), asks=(), checksum=None, symbol="BTC/USD", ts="2023-10-06T17:35:55.440295Z"):
    """A v2 book frame with prices/quantities written as bare JSON numbers, exactly as given."""
    def levels(rows):
        return "[" + ",".join(f'{{"price":{p},"qty":{q}}}' for p, q in rows) + "]"
    entry = f'{{"symbol":"{symbol}","bids":{levels(bids)},"asks":{levels(asks)}'
    if checksum is not None:
        entry += f',"checksum":{checksum}'
    if ts is not None:
        entry += f',"timestamp":"{ts}"'
    return f'{{"channel":"book","type":"{kind}","data":[{entry}}}]}}'


def v1_snapshot(bids, asks, name="book-10", pair="XBT/USD", ts="1582905487.439814"):
    return json.dumps([0, {"as": [[p, q, ts] for p, q in asks], "bs": [[p, q, ts] for p, q in bids]}, name, pair])


def offer(venue, book, frame):
    (upd,) = venue.parse(frame).updates
    return venue.sync(book, upd)


def top(book, n=1000):
    b = book.bids[max(book.n_bids - n, 0):book.n_bids][::-1].tolist()
    a = book.asks[max(book.n_asks - n, 0):book.n_asks][::-1].tolist()
    return b, a


def snapshot_state(book):
    return (book.bids.copy(), book.asks.copy(), book.n_bids, book.n_asks, book.last_id,
            dict(book.raw_bids), dict(book.raw_asks))


def assert_same_state(before, book):
    after = snapshot_state(book)
    assert np.array_equal(before[0], after[0]) and np.array_equal(before[1], after[1])
    assert before[2:] == after[2:]


# -- checksum: the docs' examples ---------------------------------------------------------------


def test_docs_v2_checksum_example_strings_and_crc():
    assert zlib.crc32((DOC_V2_ASK_STRING + DOC_V2_BID_STRING).encode()) == DOC_V2_CHECKSUM
    assert "".join(checksum_token(p) + checksum_token(q) for p, q in DOC_V2_ASKS) == DOC_V2_ASK_STRING
    assert "".join(checksum_token(p) + checksum_token(q) for p, q in DOC_V2_BIDS) == DOC_V2_BID_STRING
    assert kraken_checksum(DOC_V2_ASKS, DOC_V2_BIDS) == DOC_V2_CHECKSUM
    # The docs' per-step examples.
    assert checksum_token("45285.2") == "452852" and checksum_token("0.00100000") == "100000"
    assert checksum_token("0.05000") == "5000" and checksum_token("0.00000304") == "304"


def test_docs_v2_snapshot_through_the_book_as_json_numbers():
    venue, book = Kraken(), SymbolBook("kraken", "BTC/USD", 64)
    frame = venue.parse(v2("snapshot", DOC_V2_BIDS, DOC_V2_ASKS, DOC_V2_CHECKSUM))
    assert frame.kind == FrameKind.BOOK
    (upd,) = frame.updates
    assert upd.is_snapshot and upd.symbol == "BTC/USD" and upd.checksum == DOC_V2_CHECKSUM
    assert upd.raw_asks[0] == ("45285.2", "0.00100000")  # the decimal text survived the decoder
    assert venue.sync(book, upd) == SyncResult.APPLIED
    assert venue.book_checksum(book) == DOC_V2_CHECKSUM
    bids, asks = top(book)
    assert bids[0] == [45283.5, 0.1] and asks[0] == [45285.2, 0.001] and len(bids) == len(asks) == 10
    assert book.exch_ns == 1696613755440295000


def test_docs_v2_example_as_shortest_floats_needs_the_instrument_precision():
    # A serializer that went through floats would send 0.001 and 0.1: the text must be rebuilt
    # from the instrument's precision (BTC/USD: price 1, qty 8).
    def short(rows):
        return [(repr(float(p)), repr(float(q))) for p, q in rows]
    frame = v2("snapshot", short(DOC_V2_BIDS), short(DOC_V2_ASKS), DOC_V2_CHECKSUM)
    assert '"qty":0.001}' in frame
    # Without the precision the received text is used: it cannot match.
    book = SymbolBook("kraken", "BTC/USD", 64)
    assert offer(Kraken(instrument_channel=False), book, frame) == SyncResult.CHECKSUM_BAD
    # With it from the constructor...
    book = SymbolBook("kraken", "BTC/USD", 64)
    assert offer(Kraken(precisions={"BTC/USD": (1, 8)}), book, frame) == SyncResult.APPLIED
    # ...or from the instrument channel.
    venue, book = Kraken(), SymbolBook("kraken", "BTC/USD", 64)
    instrument = {"channel": "instrument", "type": "snapshot", "data": {
        "assets": [{"id": "BTC", "status": "enabled", "precision": 10}],
        "pairs": [{"symbol": "BTC/USD", "base": "BTC", "quote": "USD", "status": "online",
                   "qty_precision": 8, "qty_increment": 0.00000001, "price_precision": 1,
                   "cost_precision": 5, "marginable": True, "has_index": True, "cost_min": 0.5,
                   "tick_size": 0.1, "price_increment": 0.1, "qty_min": 0.0001},
                  {"symbol": "ETH/BTC", "price_precision": 5, "qty_precision": 8}]}}
    f = venue.parse(json.dumps(instrument))
    assert f.kind == FrameKind.OTHER and venue.precisions == {"BTC/USD": (1, 8), "ETH/BTC": (5, 8)}
    assert offer(venue, book, frame) == SyncResult.APPLIED
    assert venue.book_checksum(book) == DOC_V2_CHECKSUM


def test_docs_v1_example_with_truncation_to_depth():
    # The v1 guide's book state, then its update frame: every level it sends lies beyond the 10th,
    # so on a depth-10 book they are truncated away and the book (and checksum) stay the example's.
    for name, n in (("book-10", 10), ("book-1000", 12)):
        venue = Kraken()
        eng = FeedEngine(venue, ["BTC/USD"], capacity=64)
        assert eng.on_frame(v1_snapshot(DOC_V1_BIDS, DOC_V1_ASKS, name), 0) == [("BTC/USD", SyncResult.APPLIED)]
        book = eng.books["BTC/USD"]
        upd = DOC_V1_UPDATE[:3] + [name, "XBT/USD"]
        assert eng.on_frame(json.dumps(upd), 1) == [("BTC/USD", SyncResult.APPLIED)]
        assert venue.book_checksum(book) == 974947235
        assert book.n_asks == book.n_bids == n
        assert eng.stats.symbols["BTC/USD"].checksum_ok == 1
        if n == 10:
            assert 0.0512 not in book.raw_asks and 0.04765 not in book.raw_bids
    assert kraken_checksum(DOC_V1_ASKS, DOC_V1_BIDS) == 974947235


def test_v1_update_exch_time_checksum_and_republish_flag():
    venue, book = Kraken(), SymbolBook("kraken", "BTC/USD", 64)
    assert offer(venue, book, v1_snapshot(DOC_V1_BIDS, DOC_V1_ASKS)) == SyncResult.APPLIED
    asks = [("0.05003", "0.00000700")] + DOC_V1_ASKS[:9]
    frame = json.dumps([0, {"a": [["0.05003", "0.00000700", "1582905488.000001", "r"]],
                            "c": str(kraken_checksum(asks, DOC_V1_BIDS))}, "book-10", "XBT/USD"])
    (upd,) = venue.parse(frame).updates
    assert upd.exch_ns == 1582905488000001000 and upd.raw_asks == [("0.05003", "0.00000700")]
    assert venue.sync(book, upd) == SyncResult.APPLIED
    assert book.n_asks == 10 and 0.0505 not in book.raw_asks and book.best_ask() == 0.05003


# -- a constructed sequence, checked against the independent model ------------------------------


def test_random_sequence_matches_the_model_checksum_every_message():
    rng = random.Random(7)
    depth, pp, qp = 10, 1, 8
    model = Model(depth, pp, qp)
    venue = Kraken(depth=depth, precisions={"BTC/USD": (pp, qp)})
    eng = FeedEngine(venue, ["BTC/USD"], capacity=64)
    book = eng.books["BTC/USD"]

    def price(x):
        return f"{x / 10:.1f}"

    def qty():
        return f"{rng.randint(1, 10**9) / 10**8:.8f}"

    bids = [(price(1000 - i), qty()) for i in range(depth)]
    asks = [(price(1001 + i), qty()) for i in range(depth)]
    model.apply(bids, asks)
    assert eng.on_frame(v2("snapshot", bids, asks, model.checksum()), 0) == [("BTC/USD", SyncResult.APPLIED)]
    truncated = 0
    for i in range(300):
        mb, ma = model.best_first()
        bid_top = int(mb[0][0] * 10) if mb else 1000
        ask_top = int(ma[0][0] * 10) if ma else bid_top + 1
        ub, ua = [], []
        for _ in range(rng.randint(1, 4)):
            side, ref, sgn = (ub, bid_top, -1) if rng.random() < 0.5 else (ua, ask_top, 1)
            r = rng.random()
            if r < 0.3:  # a new best level: pushes the worst out of a full book
                p = ref - sgn * rng.randint(1, 2)
                if (side is ub and p >= ask_top) or (side is ua and p <= bid_top):
                    continue
                if side is ub:
                    bid_top = p
                else:
                    ask_top = p
            elif r < 0.5:  # beyond the subscribed depth: truncated away at once
                p = ref + sgn * rng.randint(depth + 5, depth + 20)
            else:
                p = ref + sgn * rng.randint(0, depth)
            q = "0.00000000" if rng.random() < 0.3 else qty()
            side.append((price(p), q))
        before = (len(model.bids), len(model.asks))
        model.apply(ub, ua)
        truncated += len(model.bids) < before[0] + sum(1 for _ in ub)
        frame = v2("update", ub, ua, model.checksum())
        assert eng.on_frame(frame, i) == [("BTC/USD", SyncResult.APPLIED)], i
        mb, ma = model.best_first()
        bids_now, asks_now = top(book)
        assert bids_now == [[float(p), float(q)] for p, q in mb]
        assert asks_now == [[float(p), float(q)] for p, q in ma]
        assert set(book.raw_bids) == {float(p) for p, _ in mb} and set(book.raw_asks) == {float(p) for p, _ in ma}
    assert truncated > 10
    st = eng.stats.symbols["BTC/USD"]
    assert st.checksum_ok == 301 and st.checksum_bad == 0 and st.resyncs == 0


def test_truncation_to_the_subscribed_depth_and_the_ack_depth():
    venue = Kraken(depth=10, precisions={"BTC/USD": (1, 8)})
    # The ack says depth 25: that is what the venue keeps for this symbol.
    ack = {"method": "subscribe", "result": {"channel": "book", "depth": 25, "snapshot": True,
                                             "symbol": "BTC/USD"}, "success": True,
           "time_in": "2023-09-25T09:04:31.742599Z", "time_out": "2023-09-25T09:04:31.742648Z"}
    for depth_told, expect in ((None, 10), (25, 25)):
        v = Kraken(depth=10, precisions={"BTC/USD": (1, 8)}) if depth_told is None else venue
        if depth_told:
            assert v.parse(json.dumps(ack)).kind == FrameKind.ACK
        book = SymbolBook("kraken", "BTC/USD", 128)
        bids = [(f"{100 - i}.0", "1.00000000") for i in range(30)]
        asks = [(f"{200 + i}.0", "1.00000000") for i in range(30)]
        assert offer(v, book, v2("snapshot", bids, asks)) == SyncResult.APPLIED
        assert book.n_bids == book.n_asks == expect
        worst_bid = book.bids[0, 0]
        # A better bid pushes the worst one out; its text goes with it.
        assert offer(v, book, v2("update", [("100.5", "2.00000000")])) == SyncResult.APPLIED
        assert book.n_bids == expect and book.best_bid() == 100.5 and worst_bid not in book.raw_bids
        assert book.bids[0, 0] == worst_bid + 1 and len(book.raw_bids) == expect
        # A level beyond the depth never stays.
        assert offer(v, book, v2("update", [("1.0", "1.00000000")])) == SyncResult.APPLIED
        assert book.n_bids == expect and 1.0 not in book.raw_bids
        # A deletion leaves depth - 1 levels (Kraken then republishes the next one as an update).
        assert offer(v, book, v2("update", [("100.5", "0.00000000")])) == SyncResult.APPLIED
        assert book.n_bids == expect - 1


# -- checksum mismatch, bad levels, lost messages ----------------------------------------------


def test_checksum_mismatch_is_checksum_bad_and_the_engine_resyncs():
    venue = Kraken(precisions={"BTC/USD": (1, 8)})
    invalid = []
    eng = FeedEngine(venue, ["BTC/USD"], capacity=64, on_invalid=lambda s, r: invalid.append((s, r)))
    eng.on_frame(v2("snapshot", DOC_V2_BIDS, DOC_V2_ASKS, DOC_V2_CHECKSUM), 0)
    assert eng.on_frame(v2("update", [("45283.5", "0.20000000")], (), DOC_V2_CHECKSUM), 1) == \
        [("BTC/USD", SyncResult.CHECKSUM_BAD)]
    book = eng.books["BTC/USD"]
    assert invalid == [("BTC/USD", SyncResult.CHECKSUM_BAD)] and not book.synced
    assert eng.resync_needed == {"BTC/USD"} and eng.stats.symbols["BTC/USD"].checksum_bad == 1
    # A bad checksum on a snapshot is caught as well.
    assert offer(venue, SymbolBook("kraken", "BTC/USD"), v2("snapshot", DOC_V2_BIDS, DOC_V2_ASKS, 1)) == \
        SyncResult.CHECKSUM_BAD
    # Resync: unsubscribe + subscribe brings a new snapshot.
    assert [json.loads(m)["method"] for m in venue.resubscribe_messages(["BTC/USD"])] == ["unsubscribe", "subscribe"]
    eng.on_frame(v2("snapshot", DOC_V2_BIDS, DOC_V2_ASKS, DOC_V2_CHECKSUM), 2)
    assert book.synced and venue.book_checksum(book) == DOC_V2_CHECKSUM


@pytest.mark.parametrize("bad", [("45283.9", "NaN"), ("45283.9", "-1.00000000"), ("-45283.9", "1.00000000"),
                                 ("45283.9", "Infinity")])
def test_nan_or_negative_levels_are_invalid_and_leave_the_book_unchanged(bad):
    venue, book = Kraken(precisions={"BTC/USD": (1, 8)}), SymbolBook("kraken", "BTC/USD", 64)
    offer(venue, book, v2("snapshot", DOC_V2_BIDS, DOC_V2_ASKS, DOC_V2_CHECKSUM))
    before = snapshot_state(book)
    assert offer(venue, book, v2("update", [("45283.6", "1.00000000"), bad])) == SyncResult.INVALID
    assert_same_state(before, book)
    # v1 strings too.
    v1book = SymbolBook("kraken", "BTC/USD", 64)
    offer(venue, v1book, v1_snapshot(DOC_V1_BIDS, DOC_V1_ASKS))
    before = snapshot_state(v1book)
    frame = json.dumps([0, {"b": [["0.05001", "nan", "1582905488.1"]], "c": "1"}, "book-10", "XBT/USD"])
    assert offer(venue, v1book, frame) == SyncResult.INVALID
    assert_same_state(before, v1book)
    # A bad snapshot level: INVALID, nothing half loaded.
    assert offer(venue, book, v2("snapshot", [bad], DOC_V2_ASKS)) == SyncResult.INVALID
    assert not book.synced and book.n_bids == 0


@pytest.mark.parametrize("frame", [
    "{not json",
    "42",
    '{"channel":"book","type":"update"}',  # no data
    '{"channel":"book","type":"partial","data":[]}',
    '{"channel":"book","type":"update","data":{}}',
    '{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[]}]}',  # no asks
    '{"channel":"book","type":"update","data":[{"bids":[],"asks":[]}]}',  # no symbol
    '{"channel":"book","type":"update","data":[{"symbol":["BTC/USD"],"bids":[],"asks":[]}]}',
    '{"channel":"book","type":"update","data":[{"symbol":"BTCUSD","bids":[],"asks":[]}]}',
    '{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[{"price":1.0}],"asks":[]}]}',
    '{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[[1.0, 2.0]],"asks":[]}]}',
    '{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[{"price":true,"qty":1.0}],"asks":[]}]}',
    '{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[{"price":"abc","qty":1.0}],"asks":[]}]}',
    '{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":{},"asks":[]}]}',
    '{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[],"asks":[],"checksum":"12"}]}',
    '{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[],"asks":[],"checksum":-1}]}',
    '{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[],"asks":[],"timestamp":"soon"}]}',
    '[0, {"a": [["0.05", "1"]]}, "book-10", "XBT/USD"]',  # v1 level without its timestamp
    '[0, {"a": [[0.05, "1", "1.0"]]}, "book-10", "XBT/USD"]',  # v1 numbers, not strings
    '[0, {"a": [], "c": 974947235}, "book-10", "XBT/USD"]',  # v1 checksum is a quoted integer
    '[0, {"a": "x"}, "book-10", "XBT/USD"]',
    '[0, "x", "book-10", "XBT/USD"]',
    '[0, {"a": []}, "book-x", "XBT/USD"]',
    '[0, {"a": []}, 5, "XBT/USD"]',
    '[0, "book-10"]',
])
def test_malformed_frames_raise_frame_error(frame):
    with pytest.raises(FrameError):
        Kraken(precisions={"BTC/USD": (1, 8)}).parse(frame)


def test_a_lost_book_message_makes_the_next_update_a_gap():
    venue = Kraken(precisions={"BTC/USD": (1, 8)})
    eng = FeedEngine(venue, ["BTC/USD"], capacity=64)
    eng.on_frame(v2("snapshot", DOC_V2_BIDS, DOC_V2_ASKS, DOC_V2_CHECKSUM), 0)
    bad = v2("update", [("45283.5", "0.20000000")]).replace('"qty":0.20000000', '"qty":"x"')
    assert eng.on_frame(bad, 1) == [] and eng.parse_errors == 1
    # The lost update may have changed any level (even one beyond the checksum's top 10): resync.
    assert eng.on_frame(v2("update", [("45270.0", "1.00000000")]), 2) == [("BTC/USD", SyncResult.GAP)]
    assert eng.resync_needed == {"BTC/USD"}
    # The new snapshot clears it.
    assert eng.on_frame(v2("snapshot", DOC_V2_BIDS, DOC_V2_ASKS, DOC_V2_CHECKSUM), 3) == \
        [("BTC/USD", SyncResult.APPLIED)]


def test_updates_before_the_snapshot_are_dropped_and_ids_increase():
    venue, book = Kraken(), SymbolBook("kraken", "BTC/USD", 64)
    assert offer(venue, book, v2("update", [("100.0", "1.0")])) == SyncResult.DROPPED
    assert book.n_bids == 0
    offer(venue, book, v2("snapshot", [("100.0", "1.0")], [("101.0", "1.0")]))
    first = book.last_id
    offer(venue, book, v2("update", [("100.0", "2.0")]))
    assert book.last_id > first


def test_several_symbols_in_one_message():
    venue = Kraken()
    msg = json.loads(v2("update", [("100.0", "1.0")]))
    msg["data"].append(dict(msg["data"][0], symbol="ETH/USD"))
    frame = venue.parse(json.dumps(msg))
    assert [u.symbol for u in frame.updates] == ["BTC/USD", "ETH/USD"]


# -- control frames, symbols, subscriptions ----------------------------------------------------


def test_control_frames():
    v = Kraken()
    ack = v.parse('{"method":"subscribe","result":{"channel":"book","depth":10,"snapshot":true,'
                  '"symbol":"BTC/USD"},"success":true,"time_in":"2023-09-25T09:04:31.742599Z",'
                  '"time_out":"2023-09-25T09:04:31.742648Z"}')
    assert ack.kind == FrameKind.ACK and "BTC/USD" in ack.info
    err = v.parse('{"error":"Currency pair not supported ALGO/USDX","method":"subscribe","success":false,'
                  '"symbol":"ALGO/USDX","time_in":"2023-09-25T09:04:31.742599Z",'
                  '"time_out":"2023-09-25T09:04:31.742648Z"}')
    assert err.kind == FrameKind.ERROR and "not supported" in err.info
    assert v.parse('{"channel":"heartbeat"}').kind == FrameKind.HEARTBEAT
    status = ('{"channel":"status","data":[{"api_version":"v2","connection_id":12393906104898154338,'
              '"system":"online","version":"2.0.0"}],"type":"update"}')
    assert v.parse(status).kind == FrameKind.OTHER
    assert v.parse('{"method":"pong","req_id":101,"time_in":"2023-09-24T14:10:23.799685Z",'
                   '"time_out":"2023-09-24T14:10:23.799703Z"}').kind == FrameKind.PONG
    assert v.parse('{"channel":"trade","type":"update","data":[]}').kind == FrameKind.OTHER
    assert v.ping_message() == '{"method":"ping"}'
    # v1 control messages of recordings.
    assert v.parse('{"event":"heartbeat"}').kind == FrameKind.HEARTBEAT
    assert v.parse('{"event":"pong","reqid":42}').kind == FrameKind.PONG
    assert v.parse('{"event":"systemStatus","status":"online","version":"1.0.0"}').kind == FrameKind.OTHER
    assert v.parse('{"channelID":10001,"channelName":"book-10","event":"subscriptionStatus","pair":"XBT/USD",'
                   '"status":"subscribed","subscription":{"depth":10,"name":"book"}}').kind == FrameKind.ACK
    assert v.parse('{"errorMessage":"Subscription depth not supported","event":"subscriptionStatus",'
                   '"pair":"XBT/USD","status":"error"}').kind == FrameKind.ERROR
    assert v.parse('[1234, [["5541.2", "0.1", "1534614057.321597", "s", "l", ""]], "trade", "XBT/USD"]').kind == \
        FrameKind.OTHER


def test_symbols_and_subscribe_messages():
    v = Kraken(depth=25, precisions={"BTC/USD": (1, 8)})
    assert v.native_symbol("BTC/USD") == "BTC/USD" and v.unified_symbol("BTC/USD") == "BTC/USD"
    assert v.unified_symbol("XBT/USD") == "BTC/USD" and v.unified_symbol("XDG/EUR") == "DOGE/EUR"
    assert v.unified_symbol("ETH/XBT") == "ETH/BTC"
    with pytest.raises(ValueError):
        v.native_symbol("BTC/USD:USD")
    with pytest.raises(FrameError):
        v.unified_symbol("XBTUSD")
    msgs = [json.loads(m) for m in v.subscribe_messages(["BTC/USD"])]
    assert msgs == [{"method": "subscribe", "params": {"channel": "book", "symbol": ["BTC/USD"], "depth": 25}}]
    # A symbol without a known precision: the instrument channel first.
    msgs = [json.loads(m) for m in v.subscribe_messages(["BTC/USD", "ETH/USD"])]
    assert msgs[0] == {"method": "subscribe", "params": {"channel": "instrument", "snapshot": True}}
    assert msgs[1]["params"] == {"channel": "book", "symbol": ["BTC/USD", "ETH/USD"], "depth": 25}
    assert Kraken().subscribe_messages([]) == []
    with pytest.raises(ValueError):
        Kraken(depth=20)
    with pytest.raises(ValueError):
        Kraken(precisions={"BTC/USD": (1, -8)})


def test_registry_style_construction():
    # The feed process builds venues as make_venue(id, ws_url=..., rest_url=..., **options).
    v = Kraken(ws_url="ws://127.0.0.1:9/v2", rest_url=None, depth=100)
    assert v.ws_url == "ws://127.0.0.1:9/v2" and v.depth == 100 and Kraken.id == "kraken"
    assert Kraken.checksum_levels == 10
