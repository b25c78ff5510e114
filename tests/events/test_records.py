"""Event records: fixed, aligned layouts with a common header, helpers, and safe string fields."""

import time

import numpy as np
import pytest
from numba import njit

from hftpipe.events import (
    DTYPE_BY_KIND,
    HEADER_FIELDS,
    JOURNAL_BY_KIND,
    JOURNALS,
    KIND_BY_JOURNAL,
    MAX_LEGS,
    RECORD_VERSION,
    RISK_RULE_NAMES,
    SIGNAL_DTYPE,
    EventKind,
    Liquidity,
    OrderStatus,
    OrderType,
    RiskAction,
    RiskRule,
    Side,
    decode_str,
    encode_str,
    kind_of,
    new_fill,
    new_order,
    new_position,
    new_record,
    new_risk,
    new_signal,
    risk_rule_name,
    signal_legs,
)
from hftpipe.shm.journal import JournalReader, JournalWriter, scan

LEGS = [("binance", "BTC/USDT", Side.BUY, 100.0, 0.5, 11, 22),
        ("okx", "BTC/USDT", Side.SELL, 101.0, 0.5, 33, 44)]


@pytest.mark.parametrize("kind", list(EventKind))
def test_every_kind_has_the_common_header_and_8_byte_size(kind):
    dt = DTYPE_BY_KIND[kind]
    assert dt.names[:6] == HEADER_FIELDS
    assert [dt.fields[n][1] for n in ("seq", "kind", "version", "ts_ns", "wall_ns")] == [0, 8, 10, 16, 24]
    assert dt.fields["seq"][0] == np.dtype("<u8") and dt.fields["kind"][0] == np.dtype("<u2")
    assert dt.itemsize % 8 == 0 and dt.isalignedstruct
    for name in dt.names:  # every field naturally aligned
        sub, off = dt.fields[name][:2]
        assert off % sub.base.alignment == 0, name
    t0, w0 = time.monotonic_ns(), time.time_ns()
    rec = new_record(kind)
    assert rec.shape == (1,) and rec["kind"][0] == kind and rec["version"][0] == RECORD_VERSION
    assert t0 <= rec["ts_ns"][0] <= time.monotonic_ns() and w0 <= rec["wall_ns"][0] <= time.time_ns()
    assert kind_of(rec) is kind and kind_of(rec[0]) is kind


def test_journal_table_covers_every_kind():
    assert set(JOURNALS) == {"signals", "orders", "fills", "risk", "positions"}
    assert {KIND_BY_JOURNAL[n]: dt for n, dt in JOURNALS.items()} == DTYPE_BY_KIND
    assert all(JOURNAL_BY_KIND[KIND_BY_JOURNAL[n]] == n for n in JOURNALS)


def test_unknown_kind_is_reported_not_raised():
    rec = new_record(EventKind.FILL)
    rec["kind"] = 999
    assert kind_of(rec) is None
    assert risk_rule_name(RiskRule.STALE_BOOK) == "stale_book" == RISK_RULE_NAMES[8]
    assert risk_rule_name(777) == "rule_777"


def test_signal_roundtrip_through_a_journal(tmp_path):
    sig = new_signal("cross_exchange_arbitrage", 7, LEGS, edge_bps=12.5, edge_quote=0.6, gross_edge_bps=30.0,
                     instance=3)
    dtype = JOURNALS["signals"]
    with JournalWriter.open(tmp_path, "signals", dtype) as w:
        assert w.append(sig) == 0
    with JournalReader.open(tmp_path, "signals", dtype, "t") as r:
        got = r.poll()[0]
    assert decode_str(got["strategy"]) == "cross_exchange_arbitrage" and got["signal_id"] == 7
    assert got["n_legs"] == 2 and got["edge_bps"] == 12.5 and got["instance"] == 3 and got["seq"] == 0
    assert decode_str(got["legs"][1]["venue"]) == "okx" and got["legs"][1]["side"] == -1
    assert got["legs"][0]["book_seq"] == 11 and got["legs"][1]["price"] == 101.0
    assert signal_legs(got) == [("binance", "BTC/USDT", 1, 100.0, 0.5, 11, 22),
                                ("okx", "BTC/USDT", -1, 101.0, 0.5, 33, 44)]


def test_every_helper_roundtrips_through_its_journal(tmp_path):
    recs = {
        "signals": new_signal("tri", 1, LEGS[:1], 1.0, 2.0, 3.0),
        "orders": new_order("hft-1-7-0", "binance", "ETH/BTC", Side.SELL, OrderType.IOC, 0.05, 2.0,
                            OrderStatus.PARTIALLY_FILLED, filled=1.0, avg_price=0.0501, signal_id=7, leg=2,
                            venue_order_id="123456789", reason=4),
        "fills": new_fill("f-1", "hft-1-7-0", "binance", "ETH/BTC", Side.SELL, 0.0501, 1.0, 0.00005, "BTC",
                          Liquidity.MAKER, signal_id=7),
        "risk": new_risk(RiskRule.MAX_ORDER_NOTIONAL, RiskAction.REJECT_ORDER, 1200.0, 1000.0,
                         client_order_id="hft-1-7-0", venue="binance", symbol="ETH/BTC", signal_id=7),
        "positions": new_position("binance", "ETH", 3.0, 0.05, 1.5, -0.2, 0.01, exposure=0.15),
    }
    for name, rec in recs.items():
        assert kind_of(rec) == KIND_BY_JOURNAL[name]
        # One record per file: the poll below gathers across a rollover and must stay byte-exact.
        with JournalWriter.open(tmp_path, name, JOURNALS[name], roll_bytes=4096 + rec.itemsize) as w:
            w.append(rec)
            w.append(rec[0])
        [got] = scan(tmp_path, name, JOURNALS[name])
        assert got["seq"].tolist() == [0, 1]
        rec["seq"] = 1
        assert got[1].tobytes() == rec[0].tobytes()  # padding included: records are copied as bytes
    o = recs["orders"][0]
    assert decode_str(o["venue_order_id"]) == "123456789" and OrderStatus(o["status"]) is OrderStatus.PARTIALLY_FILLED
    assert (o["side"], o["order_type"], o["leg"], o["reason"], o["filled"]) == (-1, OrderType.IOC, 2, 4, 1.0)
    f = recs["fills"][0]
    assert decode_str(f["fee_asset"]) == "BTC" and f["liquidity"] == Liquidity.MAKER and f["fee"] == 0.00005
    k = recs["risk"][0]
    assert (k["rule"], k["action"], k["value"], k["limit"]) == (RiskRule.MAX_ORDER_NOTIONAL, 0, 1200.0, 1000.0)
    p = recs["positions"][0]
    assert decode_str(p["asset"]) == "ETH" and p["unrealized_pnl"] == -0.2 and p["exposure"] == 0.15


def test_out_fills_a_given_record_in_place():
    buf = new_signal("a", 1, LEGS, 9.0, 9.0, 9.0)
    out = new_signal("b", 2, LEGS[:1], 1.0, 2.0, 3.0, out=buf)
    assert out is buf and decode_str(buf["strategy"]) == "b" and buf["n_legs"][0] == 1
    assert buf["legs"][0, 1]["price"] == 0.0 and decode_str(buf["legs"][0, 1]["venue"]) == ""  # zeroed first
    o = np.zeros(1, dtype=DTYPE_BY_KIND[EventKind.ORDER])
    assert new_order("c", "okx", "BTC/USDT", 1, 0, 1.0, 1.0, out=o) is o and o["kind"][0] == EventKind.ORDER
    with pytest.raises(TypeError, match="1-element"):
        new_fill("f", "c", "okx", "BTC/USDT", 1, 1.0, 1.0, 0.0, "USDT", out=o)


def test_strings_that_do_not_fit_are_refused_not_truncated():
    assert encode_str("BTC/USDT", 20) == b"BTC/USDT" and encode_str(b"okx", 12) == b"okx"
    with pytest.raises(ValueError, match="longer than"):
        encode_str("x" * 21, 20)
    with pytest.raises(ValueError, match="longer than"):
        new_order("x" * 37, "okx", "BTC/USDT", 1, 0, 1.0, 1.0)
    with pytest.raises(ValueError, match="legs"):
        new_signal("s", 1, [], 0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="legs"):
        new_signal("s", 1, LEGS * 2, 0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="side"):
        new_signal("s", 1, [("okx", "BTC/USDT", 0, 1.0, 1.0, 0, 0)], 0.0, 0.0, 0.0)
    assert decode_str(np.array([b"abc"])[0]) == "abc" and decode_str(np.array([b"abc"])) == "abc"
    assert decode_str(b"ab\0\0") == "ab" and MAX_LEGS == 3


@njit(cache=True)
def _fill_in_numba(out, i, venue, price):
    r = out[i]
    r.kind = 1
    r.n_legs = 2
    r.legs[0].venue = venue
    r.legs[0].price = price
    r.legs[1].side = -1
    r.edge_bps = price * 2


def test_numba_kernels_can_write_signal_records():
    out = np.zeros(2, dtype=SIGNAL_DTYPE)
    _fill_in_numba(out, 1, b"bybit", 3.5)
    assert signal_legs(out[1])[0][:4] == ("bybit", "", 0, 3.5) and out[1]["legs"][1]["side"] == -1
    assert out[1]["edge_bps"] == 7.0 and kind_of(out[1]) is EventKind.SIGNAL and out[0]["kind"] == 0
