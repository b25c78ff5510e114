"""Binance spot and USD-M: parsing, symbols, and each market's documented sync rule on hand-made frames."""

import json

import numpy as np
import pytest

from hftpipe.feeds.base import FrameError, FrameKind, SyncResult
from hftpipe.feeds.binance import BinanceSpot, BinanceUsdm
from hftpipe.feeds.engine import FeedEngine
from hftpipe.feeds.registry import make_venue

from .captures import BINANCE_PAIRS, CAPTURES, needs_binance_captures

A, B, D, G, INV = (SyncResult.APPLIED, SyncResult.BUFFERED, SyncResult.DROPPED, SyncResult.GAP,
                 SyncResult.INVALID)


def diff(U, u, bids=(), asks=(), pu=None, sym="BTCUSDT", E=1700000000123, T=None):
    d = {"e": "depthUpdate", "E": E, "s": sym, "U": U, "u": u,
         "b": [[str(x) for x in lvl] for lvl in bids], "a": [[str(x) for x in lvl] for lvl in asks]}
    if T is not None:
        d["T"] = T
    if pu is not None:
        d["pu"] = pu
    return json.dumps({"stream": f"{sym.lower()}@depth@100ms", "data": d})


def snap(last_id, bids=((100.0, 1), (99.0, 2)), asks=((101.0, 1), (102.0, 3))):
    return json.dumps({"lastUpdateId": last_id, "bids": [[str(p), str(q)] for p, q in bids],
                       "asks": [[str(p), str(q)] for p, q in asks]})


class Recorder:
    def __init__(self):
        self.published = []
        self.invalid = []

    def publish(self, symbol, book, update, recv_ns, parsed_ns, applied_ns):
        self.published.append((symbol, book.best_bid(), book.best_ask(), book.last_id))

    def on_invalid(self, symbol, result):
        self.invalid.append((symbol, result))


def engine(venue_id):
    rec = Recorder()
    eng = FeedEngine(make_venue(venue_id), ["BTC/USDT"], capacity=64, publish=rec.publish,
                     on_invalid=rec.on_invalid)
    return eng, rec, eng.books["BTC/USDT"], eng.stats.symbols["BTC/USDT"]


def results(eng, frame):
    return [r for _, r in eng.on_frame(frame, 1)]


def levels(book):
    return ([tuple(r) for r in book.bids[:book.n_bids][::-1]], [tuple(r) for r in book.asks[:book.n_asks][::-1]])


# -- spot: drop u <= lastUpdateId; first U <= lastUpdateId + 1 <= u; then U == prev u + 1 -----------

def test_spot_buffers_until_the_snapshot_then_drops_straddles_and_chains():
    eng, rec, book, st = engine("binance")
    assert results(eng, diff(95, 100, bids=[(100.0, 5)])) == [B]  # u == lastUpdateId: in the snapshot
    assert results(eng, diff(101, 103, bids=[(100.5, 1)])) == [B]  # U <= 101 <= u: straddles
    assert st.buffered == 2 and not rec.published and not book.synced
    assert eng.on_snapshot("BTC/USDT", snap(100), 7) == A
    assert st.dropped == 1 and st.applied == 2  # the snapshot + the straddling diff
    assert book.last_id == 103 and book.best_bid() == 100.5 and levels(book)[0][1] == (100.0, 1.0)
    assert rec.published == [("BTC/USDT", 100.5, 101.0, 103)]  # once, after the buffered diffs
    assert results(eng, diff(104, 106, asks=[(101.0, 0), (100.8, 3)])) == [A]
    assert book.best_ask() == 100.8 and book.last_id == 106
    assert results(eng, diff(105, 106, asks=[(100.7, 1)])) == [D]  # a duplicate: already in
    assert book.best_ask() == 100.8 and st.gaps == 0 and rec.invalid == []


def test_spot_first_diff_exactly_at_last_update_id_plus_one():
    eng, rec, book, st = engine("binance")
    eng.on_snapshot("BTC/USDT", snap(100), 0)
    assert results(eng, diff(99, 100)) == [D]
    assert results(eng, diff(101, 101, bids=[(99.5, 4)])) == [A]
    assert book.last_id == 101 and (99.5, 4.0) in levels(book)[0]


def test_spot_gap_invalidates_and_a_new_snapshot_makes_the_book_whole():
    eng, rec, book, st = engine("binance")
    eng.on_snapshot("BTC/USDT", snap(100), 0)
    eng.on_frame(diff(101, 102, bids=[(100.2, 1)]), 0)
    assert results(eng, diff(104, 105, bids=[(50, 1)])) == [G]  # 103 missing: U != prev u + 1
    assert st.gaps == 1 and st.resyncs == 1 and not book.synced and book.n_bids == 0
    assert rec.invalid == [("BTC/USDT", G)] and eng.resync_needed == {"BTC/USDT"}
    n_pub = len(rec.published)
    assert results(eng, diff(106, 108, bids=[(100.3, 1)])) == [B]  # buffered for the next snapshot
    assert len(rec.published) == n_pub
    eng.resync_needed.clear()
    assert eng.on_snapshot("BTC/USDT", snap(106, bids=[(100.1, 1)], asks=[(101, 1)]), 0) == A
    # 104-105 (kept: it revealed the gap, it is newer than it) is contained in the snapshot; 106-108 straddles.
    assert book.synced and book.last_id == 108 and book.best_bid() == 100.3 and st.gaps == 1
    assert rec.published[-1] == ("BTC/USDT", 100.3, 101.0, 108)
    assert not eng.resync_needed


def test_spot_snapshot_older_than_the_stream_keeps_the_buffer_for_the_next_one():
    # Binance: "If the lastUpdateId from the snapshot is < than the U from step 2, go back to step 3."
    eng, rec, book, st = engine("binance")
    eng.on_frame(diff(120, 121, bids=[(100.4, 1)]), 0)
    eng.on_frame(diff(122, 125, bids=[(100.6, 1)]), 0)
    assert eng.on_snapshot("BTC/USDT", snap(100), 0) == G  # 101..119 are neither in it nor buffered
    assert not book.synced and eng.resync_needed == {"BTC/USDT"} and not rec.published
    assert [u.last_id for u in book.pending] == [121, 125]
    assert eng.on_snapshot("BTC/USDT", snap(122), 0) == A
    assert book.synced and book.last_id == 125 and book.best_bid() == 100.6 and st.dropped == 1


def test_spot_first_live_diff_past_the_snapshot_is_a_gap():
    eng, rec, book, st = engine("binance")
    eng.on_snapshot("BTC/USDT", snap(100), 0)
    assert results(eng, diff(103, 104, bids=[(100.5, 1)])) == [G]  # 101-102 lost
    assert st.gaps == 1 and not book.synced


def test_spot_late_duplicate_snapshot_is_dropped_and_a_newer_one_reloads():
    eng, rec, book, st = engine("binance")
    eng.on_snapshot("BTC/USDT", snap(100), 0)
    eng.on_frame(diff(101, 103, bids=[(100.5, 1)]), 0)
    assert eng.on_snapshot("BTC/USDT", snap(101, bids=[(90, 1)]), 0) == D
    assert book.best_bid() == 100.5 and book.last_id == 103
    assert eng.on_snapshot("BTC/USDT", snap(110, bids=[(100.9, 1)]), 0) == A
    assert book.best_bid() == 100.9 and book.last_id == 110
    assert results(eng, diff(104, 110)) == [D] and results(eng, diff(111, 111)) == [A]


# -- USD-M: drop u < lastUpdateId; first U <= lastUpdateId <= u (or pu == it); then pu == prev u ----

def test_usdm_drops_older_applies_the_event_ending_at_the_snapshot_and_chains_by_pu():
    eng, rec, book, st = engine("binanceusdm")
    assert results(eng, diff(90, 99, pu=80, bids=[(1, 1)])) == [B]  # u < lastUpdateId: dropped later
    assert results(eng, diff(97, 100, pu=99, bids=[(100.5, 1)])) == [B]  # u == lastUpdateId: kept
    assert eng.on_snapshot("BTC/USDT", snap(100), 0) == A
    assert st.dropped == 1 and book.last_id == 100 and book.best_bid() == 100.5
    assert results(eng, diff(120, 130, pu=100, asks=[(100.9, 2)])) == [A]  # ids jump; pu chains
    assert book.last_id == 130 and book.best_ask() == 100.9
    assert results(eng, diff(125, 130, pu=110)) == [D]  # already contained
    assert results(eng, diff(131, 140, pu=129)) == [G]  # pu != previous u
    assert st.gaps == 1 and not book.synced and rec.invalid == [("BTC/USDT", G)]


def test_usdm_first_event_straddling_last_update_id():
    eng, rec, book, st = engine("binanceusdm")
    eng.on_snapshot("BTC/USDT", snap(100), 0)
    assert results(eng, diff(97, 105, pu=96, bids=[(100.5, 1)])) == [A]  # U <= 100 <= u
    assert book.last_id == 105


def test_usdm_first_event_may_start_above_the_snapshot_when_pu_equals_it():
    # Seen in the real capture: ids are not contiguous; the event after lastUpdateId starts above it.
    eng, rec, book, st = engine("binanceusdm")
    eng.on_snapshot("BTC/USDT", snap(100), 0)
    assert results(eng, diff(103, 107, pu=100, bids=[(100.5, 1)])) == [A]
    assert book.last_id == 107 and st.gaps == 0


def test_usdm_first_event_neither_straddling_nor_chained_is_a_gap_then_resync():
    eng, rec, book, st = engine("binanceusdm")
    eng.on_snapshot("BTC/USDT", snap(100), 0)
    assert results(eng, diff(103, 107, pu=102, bids=[(100.5, 1)])) == [G]
    assert not book.synced and [u.last_id for u in book.pending] == [107]
    assert eng.on_snapshot("BTC/USDT", snap(105), 0) == A  # 103 <= 105 <= 107: the kept event straddles
    assert book.synced and book.last_id == 107 and book.best_bid() == 100.5


def test_usdm_chain_across_non_contiguous_ids_is_not_a_gap():
    eng, rec, book, st = engine("binanceusdm")
    eng.on_snapshot("BTC/USDT", snap(100), 0)
    eng.on_frame(diff(95, 100, pu=94), 0)
    for prev, (U, u) in zip([100, 180, 260], [(150, 180), (200, 260), (300, 300)], strict=True):
        assert results(eng, diff(U, u, pu=prev, bids=[(99.0, u)])) == [A]
    assert st.gaps == 0 and book.last_id == 300 and (99.0, 300.0) in levels(book)[0]


# -- bad input ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("venue_id", ["binance", "binanceusdm"])
def test_malformed_frames_are_counted_skipped_and_the_chain_catches_the_loss(venue_id):
    eng, rec, book, st = engine(venue_id)
    eng.on_snapshot("BTC/USDT", snap(100), 0)
    pu = 100 if venue_id == "binanceusdm" else None
    bad = ["{not json", "[1,2]", '"text"', json.dumps({"data": {"e": "depthUpdate", "s": "BTCUSDT"}}),
           diff(101, 101, bids=[("abc", "1")], pu=pu), diff(101, 101, bids=[("1", "2", "3")], pu=pu),
           diff("101", 101, pu=pu), diff(102, 101, pu=pu), diff(101, 101, sym="NOQUOTEXYZ", pu=pu),
           json.dumps({"data": {"e": "depthUpdate", "s": "BTCUSDT", "U": 101, "u": 101, "b": None, "a": []}}),
           json.dumps({"data": "x"})]
    for frame in bad:
        assert eng.on_frame(frame, 0) == []
    assert eng.stats.parse_errors == len(bad) and eng.stats.messages == len(bad)
    assert book.synced and book.last_id == 100 and st.applied == 1
    # The skipped diff 101 was lost: the next one cannot chain, so the book resyncs.
    assert results(eng, diff(102, 102, bids=[(99.5, 1)], pu=101)) == [G]


@pytest.mark.parametrize("venue_id", ["binance", "binanceusdm"])
@pytest.mark.parametrize("level", [("nan", "1"), ("100.5", "-1"), ("100.5", "nan"), ("-5", "1"),
                                   ("inf", "1"), ("100.5", "inf")])
def test_nan_or_negative_levels_are_invalid_and_leave_the_book_untouched(venue_id, level):
    eng, rec, book, st = engine(venue_id)
    eng.on_snapshot("BTC/USDT", snap(100), 0)
    frame = diff(101, 101, bids=[("99.5", "1"), level], asks=[("101.5", "2")],
                 pu=100 if venue_id == "binanceusdm" else None)
    # The venue's sync: INVALID, and nothing of the update (not even its good levels) reached the book.
    before = (book.bids.copy(), book.asks.copy(), book.n_bids, book.n_asks, book.last_id, book.synced)
    (update,) = eng.venue.parse(frame).updates
    assert eng.venue.sync(book, update) == INV
    np.testing.assert_array_equal(book.bids, before[0])
    np.testing.assert_array_equal(book.asks, before[1])
    assert (book.n_bids, book.n_asks, book.last_id, book.synced) == before[2:]
    # Through the engine: counted, never published, the book invalidated until a resync.
    n_pub = len(rec.published)
    assert results(eng, frame) == [INV]
    assert st.invalid == 1 and st.resyncs == 1 and rec.invalid == [("BTC/USDT", INV)]
    assert len(rec.published) == n_pub and not book.synced and eng.resync_needed == {"BTC/USDT"}


def test_bad_snapshot_leaves_the_book_invalid_and_the_buffer_for_the_next_one():
    eng, rec, book, st = engine("binance")
    eng.on_frame(diff(101, 101, bids=[(100.5, 1)]), 0)
    assert eng.on_snapshot("BTC/USDT", snap(100, asks=[(101, -1)]), 0) == INV
    assert not book.synced and st.invalid == 1 and eng.resync_needed == {"BTC/USDT"}
    assert eng.on_snapshot("BTC/USDT", '{"code":-1121,"msg":"Invalid symbol."}', 0) == INV
    assert eng.stats.parse_errors == 1 and not rec.published
    assert eng.on_snapshot("BTC/USDT", snap(100, bids=[(100.4, 1)], asks=[(100.2, 1)]), 0) == SyncResult.CROSSED
    assert st.crossed == 1 and not rec.published
    assert [u.last_id for u in book.pending] == [101]
    assert eng.on_snapshot("BTC/USDT", snap(100), 0) == A
    assert book.synced and book.last_id == 101 and book.best_bid() == 100.5


def test_crossed_book_is_never_published():
    eng, rec, book, st = engine("binance")
    eng.on_snapshot("BTC/USDT", snap(100), 0)
    n = len(rec.published)
    assert results(eng, diff(101, 101, bids=[(101.5, 1)])) == [SyncResult.CROSSED]
    assert len(rec.published) == n and st.crossed == 1 and st.resyncs == 1 and st.applied == 1
    assert not book.synced and rec.invalid == [("BTC/USDT", SyncResult.CROSSED)]


# -- frames, times, symbols, URLs ---------------------------------------------------------------------

def test_control_and_other_frames():
    v = BinanceSpot()
    assert v.parse('{"result":null,"id":1}').kind == FrameKind.ACK
    assert v.parse('{"result":["btcusdt@depth"],"id":3}').kind == FrameKind.ACK
    err = v.parse('{"code":-1121,"msg":"Invalid symbol."}')
    assert err.kind == FrameKind.ERROR and "Invalid symbol" in err.info
    assert v.parse('{"error":{"code":2,"msg":"Invalid request"},"id":1}').kind == FrameKind.ERROR
    for other in ['{"stream":"btcusdt@bookTicker","data":{"u":1,"s":"BTCUSDT","b":"1","B":"1","a":"2","A":"1"}}',
                  '{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1,"s":"BTCUSDT","p":"1","q":"1"}}',
                  '{"stream":"btcusdt@kline_1m","data":{"e":"kline","E":1,"s":"BTCUSDT","k":{}}}',
                  '{"stream":"!ticker@arr","data":[{"e":"24hrTicker"}]}']:
        f = v.parse(other)
        assert f.kind == FrameKind.OTHER and f.updates == []
    raw = v.parse(json.dumps(json.loads(diff(1, 2))["data"]))  # a raw (/ws/<stream>) event
    assert raw.kind == FrameKind.BOOK and raw.updates[0].last_id == 2


def test_depth_update_fields_and_event_times():
    (u,) = BinanceSpot().parse(diff(5, 9, bids=[("1.5", "2")], asks=[("1.6", "0")]).encode()).updates
    assert (u.symbol, u.is_snapshot, u.first_id, u.last_id, u.prev_id) == ("BTC/USDT", False, 5, 9, -1)
    assert u.bids.dtype == np.float64 and u.bids.tolist() == [[1.5, 2.0]] and u.asks.tolist() == [[1.6, 0.0]]
    assert u.exch_ns == 1700000000123 * 1_000_000  # spot: E
    (f,) = BinanceUsdm().parse(diff(5, 9, pu=4, E=1700000000200, T=1700000000190)).updates
    assert f.prev_id == 4 and f.exch_ns == 1700000000190 * 1_000_000  # USD-M: T, the matching engine's
    empty = BinanceSpot().parse(diff(5, 9)).updates[0]
    assert empty.bids.shape == (0, 2) and empty.asks.shape == (0, 2)


def test_snapshot_parsing():
    s = BinanceUsdm().parse_snapshot("BTC/USDT", '{"lastUpdateId":7,"E":1000,"T":999,"bids":[["1","2"]],"asks":[]}')
    assert (s.is_snapshot, s.last_id, s.exch_ns, s.bids.tolist(), s.asks.shape) == (True, 7, 999_000_000, [[1.0, 2.0]], (0, 2))
    for bad in ["", "{", "[]", '{"bids":[],"asks":[]}', '{"lastUpdateId":"7","bids":[],"asks":[]}',
                '{"lastUpdateId":7,"bids":[["x","1"]],"asks":[]}', '{"lastUpdateId":7,"bids":[]}']:
        with pytest.raises(FrameError):
            BinanceSpot().parse_snapshot("BTC/USDT", bad)


def test_symbols_and_urls():
    spot, usdm = BinanceSpot(), BinanceUsdm()
    assert spot.native_symbol("BTC/USDT") == "BTCUSDT" and spot.native_symbol("eth/btc") == "ETHBTC"
    cases = {"NKNUSDT": "NKN/USDT", "BLZETH": "BLZ/ETH", "LRCBTC": "LRC/BTC", "RUNEEUR": "RUNE/EUR",
             "BTCFDUSD": "BTC/FDUSD", "BTCTUSD": "BTC/TUSD", "ETHUSDC": "ETH/USDC", "BNBTRY": "BNB/TRY",
             "SOLBNB": "SOL/BNB", "USDCUSDT": "USDC/USDT", "FDUSDUSDT": "FDUSD/USDT", "btcusdt": "BTC/USDT"}
    for native, unified in cases.items():
        assert BinanceSpot().unified_symbol(native) == unified
    for bad in ["USDT", "XYZ", ""]:
        with pytest.raises(FrameError):
            spot.unified_symbol(bad)
    assert usdm.native_symbol("BTC/USDT:USDT") == "BTCUSDT" and usdm.unified_symbol("BTCUSDT") == "BTC/USDT:USDT"
    assert spot.connection_url(["BTC/USDT", "ETH/USDT"]) == \
        "wss://stream.binance.com:9443/stream?streams=btcusdt@depth@100ms/ethusdt@depth@100ms"
    assert usdm.connection_url(["BTC/USDT"]) == "wss://fstream.binance.com/stream?streams=btcusdt@depth@100ms"
    assert spot.snapshot_url("BTC/USDT") == "https://api.binance.com/api/v3/depth?symbol=BTCUSDT&limit=1000"
    assert usdm.snapshot_url("BTC/USDT") == "https://fapi.binance.com/fapi/v1/depth?symbol=BTCUSDT&limit=1000"
    sim = make_venue("binance", ws_url="ws://127.0.0.1:9/", rest_url="http://127.0.0.1:8")
    assert sim.connection_url(["BTC/USDT"]).startswith("ws://127.0.0.1:9/stream?streams=")
    assert sim.snapshot_url("BTC/USDT").startswith("http://127.0.0.1:8/api/v3/depth?symbol=BTCUSDT")
    assert spot.needs_rest_snapshot and usdm.needs_rest_snapshot
    assert (spot.id, usdm.id) == ("binance", "binanceusdm")


@needs_binance_captures
@pytest.mark.parametrize("venue_id,ws,http", BINANCE_PAIRS)
def test_every_real_frame_parses(venue_id, ws, http):
    from .captures import _received, _rest

    v = make_venue(venue_id)
    kinds = {FrameKind.BOOK: 0, FrameKind.OTHER: 0}
    for _, text in _received(CAPTURES / ws):
        f = v.parse(text)
        kinds[f.kind] += 1
        is_depth = '"depthUpdate"' in text
        assert (f.kind == FrameKind.BOOK) == is_depth
        if is_depth:
            (u,) = f.updates
            assert u.first_id <= u.last_id and u.exch_ns > 0 and (u.prev_id >= 0) == (venue_id == "binanceusdm")
    assert kinds[FrameKind.BOOK] > 100 and kinds[FrameKind.OTHER] > 50
    for _, line in _rest(CAPTURES / http):
        _, url, body = line.split(" ", 2)
        s = v.parse_snapshot("X/Y", body)
        assert s.is_snapshot and s.bids.shape[0] > 100 and s.asks.shape[0] > 100
