"""Binance spot and USD-M sync rules on small hand-made frames, and the engine's handling of bad input."""

import json

import pytest

from hftpipe.feeds.base import FrameError, FrameKind, SyncResult
from hftpipe.feeds.engine import FeedEngine
from hftpipe.feeds.registry import make_venue


def diff(U, u, bids=(), asks=(), pu=None, sym="BTCUSDT"):
    d = {"e": "depthUpdate", "E": 1700000000000, "s": sym, "U": U, "u": u,
         "b": [list(map(str, b)) for b in bids], "a": [list(map(str, a)) for a in asks]}
    if pu is not None:
        d["pu"] = pu
    return json.dumps({"stream": f"{sym.lower()}@depth@100ms", "data": d})


SNAP = json.dumps({"lastUpdateId": 100, "bids": [["100.0", "1"], ["99.0", "2"]], "asks": [["101.0", "1"]]})


class Recorder:
    def __init__(self):
        self.published = []
        self.invalid = []

    def publish(self, symbol, book, update, recv_ns, parsed_ns, applied_ns):
        self.published.append((symbol, book.best_bid(), book.best_ask(), update.last_id))

    def on_invalid(self, symbol, result):
        self.invalid.append((symbol, result))


def engine(venue_id):
    rec = Recorder()
    eng = FeedEngine(make_venue(venue_id), ["BTC/USDT"], capacity=64, publish=rec.publish,
                     on_invalid=rec.on_invalid)
    return eng, rec


def test_spot_buffers_drops_straddles_then_chains():
    eng, rec = engine("binance")
    eng.on_frame(diff(95, 100, bids=[(100.0, 5)]), 0)  # contained in the snapshot: dropped later
    eng.on_frame(diff(101, 103, bids=[(100.5, 1)]), 0)  # straddles lastUpdateId + 1
    assert eng.stats.symbols["BTC/USDT"].buffered == 2 and not rec.published
    assert eng.on_snapshot("BTC/USDT", SNAP, 0) == SyncResult.APPLIED
    st = eng.stats.symbols["BTC/USDT"]
    assert st.dropped == 1
    book = eng.books["BTC/USDT"]
    assert book.best_bid() == 100.5 and book.last_id == 103 and book.bids[book.n_bids - 2, 1] == 1.0
    eng.on_frame(diff(104, 106, asks=[(101.0, 0), (100.8, 3)]), 0)
    assert book.best_ask() == 100.8 and book.last_id == 106
    eng.on_frame(diff(108, 109, bids=[(50, 1)]), 0)  # 107 missing
    assert st.gaps == 1 and not book.synced and rec.invalid == [("BTC/USDT", SyncResult.GAP)]
    assert eng.resync_needed == {"BTC/USDT"}
    # A new snapshot makes the book whole again.
    eng.on_frame(diff(110, 111, bids=[(100.2, 1)]), 0)
    eng.on_snapshot("BTC/USDT", json.dumps({"lastUpdateId": 110, "bids": [["100.1", "1"]], "asks": [["101", "1"]]}), 0)
    assert book.synced and book.best_bid() == 100.2 and book.last_id == 111


def test_spot_first_event_must_straddle():
    eng, rec = engine("binance")
    eng.on_snapshot("BTC/USDT", SNAP, 0)
    eng.on_frame(diff(103, 104, bids=[(100.5, 1)]), 0)  # starts past 101: events lost in between
    assert eng.stats.symbols["BTC/USDT"].gaps == 1


def test_usdm_chains_by_pu_not_by_contiguous_ids():
    eng, rec = engine("binanceusdm")
    eng.on_snapshot("BTC/USDT", SNAP, 0)
    book = eng.books["BTC/USDT"]
    eng.on_frame(diff(90, 99, pu=80, bids=[(1, 1)]), 0)  # u < lastUpdateId: dropped
    eng.on_frame(diff(97, 105, pu=96, bids=[(100.5, 1)]), 0)  # U <= 100 <= u: first event
    assert book.last_id == 105 and book.best_bid() == 100.5
    eng.on_frame(diff(120, 130, pu=105, asks=[(100.9, 2)]), 0)  # ids jump, pu chains: fine
    assert book.last_id == 130 and book.best_ask() == 100.9
    eng.on_frame(diff(131, 140, pu=129), 0)
    assert eng.stats.symbols["BTC/USDT"].gaps == 1 and not book.synced


def test_usdm_first_event_may_start_above_snapshot_when_pu_matches():
    eng, _ = engine("binanceusdm")
    eng.on_snapshot("BTC/USDT", SNAP, 0)
    eng.on_frame(diff(103, 107, pu=100, bids=[(100.5, 1)]), 0)
    assert eng.books["BTC/USDT"].last_id == 107 and eng.stats.symbols["BTC/USDT"].gaps == 0


def test_malformed_frames_are_counted_and_skipped():
    eng, rec = engine("binance")
    eng.on_snapshot("BTC/USDT", SNAP, 0)
    for bad in ["{not json", "[1,2]", json.dumps({"data": {"e": "depthUpdate", "s": "BTCUSDT"}}),
                diff(101, 101, bids=[("abc", "1")])]:
        eng.on_frame(bad, 0)
    assert eng.stats.parse_errors == 4 and eng.books["BTC/USDT"].synced


@pytest.mark.parametrize("level", [("nan", "1"), ("100.5", "-1"), ("100.5", "nan"), ("-5", "1")])
def test_bad_numbers_invalidate_without_touching_the_book(level):
    eng, rec = engine("binance")
    eng.on_snapshot("BTC/USDT", SNAP, 0)
    frame = json.dumps({"data": {"e": "depthUpdate", "E": 1, "s": "BTCUSDT", "U": 101, "u": 101,
                                 "b": [["99.5", "1"], list(level)], "a": []}})
    eng.on_frame(frame, 0)
    st = eng.stats.symbols["BTC/USDT"]
    assert st.invalid == 1 and rec.invalid == [("BTC/USDT", SyncResult.INVALID)]


def test_crossed_book_is_never_published():
    eng, rec = engine("binance")
    eng.on_snapshot("BTC/USDT", SNAP, 0)
    n = len(rec.published)
    eng.on_frame(diff(101, 101, bids=[(101.5, 1)]), 0)
    assert len(rec.published) == n and eng.stats.symbols["BTC/USDT"].crossed == 1
    assert not eng.books["BTC/USDT"].synced


def test_control_frames_and_symbols():
    v = make_venue("binance")
    assert v.parse('{"result":null,"id":1}').kind == FrameKind.ACK
    assert v.parse('{"code":-1121,"msg":"Invalid symbol."}').kind == FrameKind.ERROR
    assert v.parse('{"stream":"btcusdt@bookTicker","data":{"u":1,"s":"BTCUSDT"}}').kind == FrameKind.OTHER
    assert v.native_symbol("ETH/BTC") == "ETHBTC" and v.unified_symbol("NKNUSDT") == "NKN/USDT"
    assert v.unified_symbol("BTCFDUSD") == "BTC/FDUSD"
    with pytest.raises(FrameError):
        v.unified_symbol("USDT")
    assert v.connection_url(["BTC/USDT"]).endswith("/stream?streams=btcusdt@depth@100ms")
    assert v.snapshot_url("BTC/USDT") == "https://api.binance.com/api/v3/depth?symbol=BTCUSDT&limit=1000"


def test_snapshot_with_a_bad_ask_leaves_the_bids_untouched():
    from hftpipe.feeds.base import SymbolBook

    book = SymbolBook("binance", "BTC/USDT", capacity=16)
    import numpy as np

    assert book.load_snapshot(np.array([[100.0, 1.0]]), np.array([[101.0, 1.0]]), 5)
    before = book.bids.copy()
    assert not book.load_snapshot(np.array([[99.0, 2.0]]), np.array([[float("nan"), 1.0]]), 6)
    np.testing.assert_array_equal(book.bids, before)
    assert book.last_id == 5
