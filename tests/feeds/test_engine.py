"""FeedEngine mechanics, venue-agnostic: counting, publishing, invalidation, buffered replay, bad input."""

import json

import numpy as np
import pytest

from hftpipe.feeds.base import (
    RESYNC_RESULTS,
    BookUpdate,
    Frame,
    FrameError,
    FrameKind,
    SymbolBook,
    SyncResult,
    Venue,
)
from hftpipe.feeds.engine import FeedEngine
from hftpipe.feeds.registry import VENUES, make_venue, venue_class


def lv(*rows):
    return np.array(rows, dtype=np.float64).reshape(-1, 2)


class Scripted(Venue):
    """A venue whose frames are JSON ``{"kind", "sym", "id", "bids", "asks", "result"}``.

    ``result`` forces what sync answers (after applying when it is APPLIED); the default rule is
    "snapshot loads, then ids must follow one by one".
    """

    id = "scripted"
    checksum_levels = 1

    def native_symbol(self, unified):
        return unified.replace("/", "")

    def unified_symbol(self, native):
        return native[:3] + "/" + native[3:]

    def parse(self, frame):
        msg = json.loads(frame)
        kind = msg["kind"]
        if kind == "boom":
            raise KeyError("parser bug on odd input")
        if kind != "book":
            return Frame(FrameKind[kind.upper()], info=msg.get("info", ""))
        ups = []
        for u in msg["updates"]:
            up = BookUpdate(u["sym"], u.get("snap", False), u["id"], u["id"], u["id"] - 1,
                            lv(*u.get("bids", [])), lv(*u.get("asks", [])), checksum=u.get("checksum"))
            up.raw_bids = u.get("result")  # smuggle the forced result in a field sync can see
            ups.append(up)
        return Frame(FrameKind.BOOK, ups)

    def parse_snapshot(self, symbol, body):
        u = json.loads(body)
        return BookUpdate(symbol, True, u["id"], u["id"], -1, lv(*u["bids"]), lv(*u["asks"]))

    def sync(self, book, update):
        forced = update.raw_bids
        if forced is not None and forced != "APPLIED":
            return SyncResult[forced]
        if update.is_snapshot:
            book.load_snapshot(update.bids, update.asks, update.last_id)
            return SyncResult.APPLIED
        if not book.synced:
            book.pending.append(update)
            return SyncResult.BUFFERED
        if update.last_id <= book.last_id:
            return SyncResult.DROPPED
        if update.last_id != book.last_id + 1:
            return SyncResult.GAP
        if not book.apply(update.bids, update.asks):
            return SyncResult.INVALID
        book.last_id = update.last_id
        return SyncResult.APPLIED


def frame(*updates):
    return json.dumps({"kind": "book", "updates": list(updates)})


def up(i, sym="BTC/USDT", **kw):
    return {"sym": sym, "id": i, **kw}


class Rec:
    def __init__(self):
        self.published, self.invalid = [], []

    def publish(self, symbol, book, update, recv_ns, parsed_ns, applied_ns):
        self.published.append((symbol, update.last_id, book.best_bid(), book.best_ask(), recv_ns, parsed_ns, applied_ns))

    def on_invalid(self, symbol, result):
        self.invalid.append((symbol, result))


@pytest.fixture
def eng():
    rec = Rec()
    e = FeedEngine(Scripted(), ["BTC/USDT", "ETH/USDT"], capacity=32, publish=rec.publish, on_invalid=rec.on_invalid)
    e.rec = rec
    e.on_frame(frame(up(10, snap=True, bids=[[100, 1]], asks=[[101, 1]])), 5)
    return e


def test_results_per_update_and_publish_arguments(eng):
    rec = eng.rec
    res = eng.on_frame(frame(up(11, bids=[[100.5, 2]]), up(1, sym="ETH/USDT")), 1_000)
    assert res == [("BTC/USDT", SyncResult.APPLIED), ("ETH/USDT", SyncResult.BUFFERED)]
    sym, last, bid, ask, recv, parsed, applied = rec.published[-1]
    assert (sym, last, bid, ask, recv) == ("BTC/USDT", 11, 100.5, 101.0, 1_000)
    assert 0 < parsed <= applied
    st = eng.stats
    assert st.messages == 2 and st.symbols["BTC/USDT"].applied == 2 and st.symbols["ETH/USDT"].buffered == 1
    assert eng.on_frame(frame(up(11)), 0) == [("BTC/USDT", SyncResult.DROPPED)]
    assert eng.on_frame('{"kind": "other"}', 0) == []


def test_every_resync_result_is_counted_invalidates_and_is_reported(eng):
    rec, st = eng.rec, eng.stats.symbols["BTC/USDT"]
    expected = {SyncResult.GAP: "gaps", SyncResult.CHECKSUM_BAD: "checksum_bad", SyncResult.CROSSED: "crossed",
                SyncResult.INVALID: "invalid"}
    assert set(expected) == RESYNC_RESULTS
    for n, (result, counter) in enumerate(expected.items(), start=1):
        eng.resync_needed.clear()
        eng.on_snapshot("BTC/USDT", json.dumps({"id": 10 * n + 10, "bids": [[100, 1]], "asks": [[101, 1]]}), 0)
        book = eng.books["BTC/USDT"]
        assert book.synced
        n_pub = len(rec.published)
        assert eng.on_frame(frame(up(10 * n + 11, result=result.name)), 0) == [("BTC/USDT", result)]
        assert getattr(st, counter) == 1 and st.resyncs == n
        assert not book.synced and book.n_bids == 0 and book.last_id == -1
        assert rec.invalid[-1] == ("BTC/USDT", result) and eng.resync_needed == {"BTC/USDT"}
        assert len(rec.published) == n_pub
    assert eng.books["ETH/USDT"].pending == [] and eng.stats.symbols["ETH/USDT"].resyncs == 0


def test_crossed_after_apply_is_never_published(eng):
    rec = eng.rec
    n_pub = len(rec.published)
    assert eng.on_frame(frame(up(11, bids=[[101, 1]])), 0) == [("BTC/USDT", SyncResult.CROSSED)]
    assert len(rec.published) == n_pub and eng.stats.symbols["BTC/USDT"].crossed == 1
    assert eng.stats.symbols["BTC/USDT"].applied == 1  # only the snapshot
    # A crossed snapshot is refused the same way.
    eng.on_snapshot("BTC/USDT", json.dumps({"id": 20, "bids": [[102, 1]], "asks": [[101, 1]]}), 0)
    assert eng.stats.symbols["BTC/USDT"].crossed == 2 and len(rec.published) == n_pub


def test_checksum_ok_is_counted_when_the_venue_sends_one(eng):
    eng.on_frame(frame(up(11, checksum=123)), 0)
    eng.on_frame(frame(up(12)), 0)
    assert eng.stats.symbols["BTC/USDT"].checksum_ok == 1


def test_buffered_updates_replay_after_the_snapshot_and_publish_once(eng):
    rec = eng.rec
    for i in (4, 5, 6):
        eng.on_frame(frame(up(i, sym="ETH/USDT", asks=[[50 - i, 1]])), 0)
    n_pub = len(rec.published)
    assert eng.on_snapshot("ETH/USDT", json.dumps({"id": 4, "bids": [[40, 1]], "asks": [[47, 1]]}), 99) == SyncResult.APPLIED
    st = eng.stats.symbols["ETH/USDT"]
    assert (st.buffered, st.dropped, st.applied, st.snapshots) == (3, 1, 3, 1)
    assert len(rec.published) == n_pub + 1 and rec.published[-1][:4] == ("ETH/USDT", 6, 40.0, 44.0)
    assert rec.published[-1][4] == 99


def test_a_crossing_buffered_update_stops_the_replay(eng):
    rec = eng.rec
    eng.on_frame(frame(up(5, sym="ETH/USDT", bids=[[48, 1]])), 0)
    eng.on_frame(frame(up(6, sym="ETH/USDT")), 0)
    n_pub = len(rec.published)
    res = eng.on_snapshot("ETH/USDT", json.dumps({"id": 4, "bids": [[40, 1]], "asks": [[47, 1]]}), 0)
    assert res == SyncResult.CROSSED and len(rec.published) == n_pub
    assert not eng.books["ETH/USDT"].synced and eng.books["ETH/USDT"].pending == []


def test_bad_input_is_counted_never_raised(eng):
    st = eng.stats
    for bad in ["{oops", '{"kind": "boom"}', '{"nokind": 1}', "[]", b"\xff\xfe"]:
        assert eng.on_frame(bad, 0) == []
    assert st.parse_errors == 5 and eng.parse_errors == 5 and eng.last_error
    assert eng.on_snapshot("ETH/USDT", "not json", 0) == SyncResult.INVALID
    assert st.parse_errors == 6 and eng.resync_needed == {"ETH/USDT"}
    assert eng.on_snapshot("XRP/USDT", "{}", 0) == SyncResult.IGNORED and st.unknown == 1


def test_control_frames_and_unknown_symbols(eng):
    st = eng.stats
    eng.on_frame('{"kind": "ack", "info": "1"}', 0)
    assert eng.last_kind == FrameKind.ACK and st.acks == 1
    eng.on_frame('{"kind": "error", "info": "bad symbol"}', 0)
    assert eng.last_kind == FrameKind.ERROR and eng.last_info == "bad symbol" and st.errors == 1
    eng.on_frame('{"kind": "heartbeat"}', 0)
    eng.on_frame('{"kind": "pong"}', 0)
    eng.on_frame('{"kind": "other"}', 0)
    assert st.heartbeats == 2 and st.unknown == 1
    assert eng.on_frame(frame(up(1, sym="XRP/USDT")), 0) == [("XRP/USDT", SyncResult.IGNORED)]
    assert st.unknown == 2 and "XRP/USDT" not in eng.books
    auto = FeedEngine(Scripted(), auto_add=True)
    assert auto.on_frame(frame(up(1, sym="XRP/USDT")), 0) == [("XRP/USDT", SyncResult.BUFFERED)]
    assert isinstance(auto.books["XRP/USDT"], SymbolBook) and auto.stats.symbols["XRP/USDT"].buffered == 1


def test_results_list_is_reused_between_calls(eng):
    a = eng.on_frame(frame(up(11)), 0)
    b = eng.on_frame(frame(up(12)), 0)
    assert a is b and b == [("BTC/USDT", SyncResult.APPLIED)]


def test_gap_keeps_the_revealing_update_only_for_rest_snapshot_venues():
    binance = FeedEngine(make_venue("binance"), ["BTC/USDT"], capacity=16)
    binance.on_snapshot("BTC/USDT", '{"lastUpdateId":10,"bids":[["1","1"]],"asks":[["2","1"]]}', 0)
    d = '{"data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":15,"u":16,"b":[],"a":[]}}'
    assert binance.on_frame(d, 0) == [("BTC/USDT", SyncResult.GAP)]
    assert [u.last_id for u in binance.books["BTC/USDT"].pending] == [16]
    scripted = FeedEngine(Scripted(), ["BTC/USDT"], capacity=16)
    scripted.on_frame(frame(up(10, snap=True, bids=[[1, 1]], asks=[[2, 1]])), 0)
    assert scripted.on_frame(frame(up(15)), 0) == [("BTC/USDT", SyncResult.GAP)]
    assert scripted.books["BTC/USDT"].pending == []


def test_registry():
    assert set(VENUES) >= {"binance", "binanceusdm"}
    assert venue_class("binance").id == "binance" and venue_class("binanceusdm").id == "binanceusdm"
    with pytest.raises(KeyError, match="unknown venue 'nope'"):
        venue_class("nope")
    VENUES["scripted"] = Scripted
    try:
        assert isinstance(make_venue("scripted"), Scripted)
    finally:
        del VENUES["scripted"]
    with pytest.raises(FrameError):
        make_venue("binance").parse("")
