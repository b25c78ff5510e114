"""Event records: fixed, aligned layouts with a common header, and safe string fields."""

import numpy as np
import pytest

from hftpipe.events import (
    DTYPE_BY_KIND,
    JOURNALS,
    EventKind,
    Side,
    decode_str,
    encode_str,
    new_record,
    new_signal,
)
from hftpipe.shm.journal import JournalReader, JournalWriter


@pytest.mark.parametrize("kind", list(EventKind))
def test_every_kind_has_the_common_header_and_8_byte_size(kind):
    dt = DTYPE_BY_KIND[kind]
    assert dt.names[:5] == ("seq", "kind", "version", "_pad0", "ts_ns")
    assert dt.itemsize % 8 == 0
    assert dt.fields["seq"][1] == 0 and dt.fields["ts_ns"][1] == 16
    rec = new_record(kind)
    assert rec["kind"][0] == kind and rec["ts_ns"][0] > 0 and rec["wall_ns"][0] > 0


def test_signal_roundtrip_through_a_journal(tmp_path):
    legs = [("binance", "BTC/USDT", Side.BUY, 100.0, 0.5, 11, 22),
            ("okx", "BTC/USDT", Side.SELL, 101.0, 0.5, 33, 44)]
    sig = new_signal("cross_exchange_arbitrage", 7, legs, edge_bps=12.5, edge_quote=0.6, gross_edge_bps=30.0)
    _, dtype = JOURNALS["signals"]
    w = JournalWriter.open(tmp_path, "signals", dtype)
    w.append(sig)
    w.close()
    r = JournalReader.open(tmp_path, "signals", dtype, "t")
    got = r.poll()[0]
    r.close()
    assert decode_str(got["strategy"]) == "cross_exchange_arbitrage" and got["signal_id"] == 7
    assert got["n_legs"] == 2 and got["edge_bps"] == 12.5
    assert decode_str(got["legs"][1]["venue"]) == "okx" and got["legs"][1]["side"] == -1
    assert got["legs"][0]["book_seq"] == 11 and got["legs"][1]["price"] == 101.0


def test_strings_that_do_not_fit_are_refused_not_truncated():
    assert encode_str("BTC/USDT", 20) == b"BTC/USDT"
    with pytest.raises(ValueError, match="longer than"):
        encode_str("x" * 21, 20)
    with pytest.raises(ValueError, match="legs"):
        new_signal("s", 1, [], 0.0, 0.0, 0.0)
    assert decode_str(np.array([b"abc"])[0]) == "abc"
