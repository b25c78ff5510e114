"""The real Binance captures replay through the live feed code with zero gaps and zero crossed books."""

import json
import subprocess
import sys

import numpy as np
import pytest

from hftpipe.book import copy_top
from hftpipe.feeds.bookcheck import book_check
from hftpipe.feeds.engine import FeedEngine
from hftpipe.feeds.registry import make_venue

from .captures import CAPTURES, to_book_check

PAIRS = [("binance", "BINANCE.ws.1.0", "BINANCE.http.0.0"),
         ("binanceusdm", "BINANCE_FUTURES.ws.1.0", "BINANCE_FUTURES.http.0.0")]
needs_captures = pytest.mark.skipif(not (CAPTURES / "BINANCE.ws.1.0").exists(),
                                    reason=f"real captures not found in {CAPTURES}")


@needs_captures
@pytest.mark.parametrize("venue,ws,http", PAIRS)
def test_real_capture_syncs_with_zero_gaps_and_zero_crossed(tmp_path, venue, ws, http):
    path = to_book_check(ws, http, tmp_path / "frames.txt")
    res = book_check(venue, path)
    assert res["gaps"] == 0 and res["crossed"] == 0 and res["resyncs"] == 0 and res["parse_errors"] == 0
    assert len(res["symbols"]) == 4
    for sym, s in res["symbols"].items():
        assert s["synced"] and s["applied"] > 1, sym
        assert float(s["best_bid"]) < float(s["best_ask"]), sym


def _dict_replay(path, venue_id):
    """Independent replay: the documented rule on dict books, straight from the JSON."""
    books, last, first = {}, {}, {}
    pending = {}
    for line in path.read_text().splitlines():
        if line.startswith("REST "):
            _, url, body = line.split(" ", 2)
            sym = url.split("symbol=")[1].split("&")[0]
            snap = json.loads(body)
            books[sym] = ({float(p): float(q) for p, q in snap["bids"]}, {float(p): float(q) for p, q in snap["asks"]})
            last[sym] = snap["lastUpdateId"]
            first[sym] = True
            events, pending[sym] = pending.get(sym, []), []
        else:
            d = json.loads(line).get("data", {})
            if d.get("e") != "depthUpdate":
                continue
            sym = d["s"]
            if sym not in books:
                pending.setdefault(sym, []).append(d)
                continue
            events = [d]
        for d in events:
            if d["u"] < last[sym] or (venue_id == "binance" and d["u"] == last[sym]):
                continue
            for side, key in ((0, "b"), (1, "a")):
                for p, q in d[key]:
                    if float(q) == 0:
                        books[sym][side].pop(float(p), None)
                    else:
                        books[sym][side][float(p)] = float(q)
            last[sym] = d["u"]
    return books


@needs_captures
@pytest.mark.parametrize("venue,ws,http", PAIRS)
def test_kernel_books_equal_an_independent_dict_replay(tmp_path, venue, ws, http):
    path = to_book_check(ws, http, tmp_path / "frames.txt")
    ref = _dict_replay(path, venue)
    v = make_venue(venue)
    syms = {v.unified_symbol(n): n for n in ref}
    engine = FeedEngine(v, sorted(syms))
    for line in path.read_text().splitlines():
        if line.startswith("REST "):
            _, url, body = line.split(" ", 2)
            engine.on_snapshot(v.unified_symbol(url.split("symbol=")[1].split("&")[0]), body, 0)
        else:
            engine.on_frame(line, 0)
    out = np.zeros((20, 2))
    for unified, native in syms.items():
        book = engine.books[unified]
        bids, asks = ref[native]
        m = copy_top(book.bids, book.n_bids, out, 20)
        assert [tuple(r) for r in out[:m]] == sorted(bids.items(), reverse=True)[:20]
        m = copy_top(book.asks, book.n_asks, out, 20)
        assert [tuple(r) for r in out[:m]] == sorted(asks.items())[:20]


@needs_captures
def test_book_check_cli_prints_one_json_object(tmp_path):
    path = to_book_check("BINANCE.ws.1.0", "BINANCE.http.0.0", tmp_path / "frames.txt")
    res = subprocess.run([sys.executable, "-m", "hftpipe", "book-check", "--venue", "binance", str(path)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["gaps"] == 0 and out["messages"] > 200
    bad = subprocess.run([sys.executable, "-m", "hftpipe", "book-check", "--venue", "nope", str(path)],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "unknown venue" in bad.stderr
    missing = subprocess.run([sys.executable, "-m", "hftpipe", "book-check", "--venue", "binance",
                              str(tmp_path / "missing")], capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2
