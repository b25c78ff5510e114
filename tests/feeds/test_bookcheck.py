"""book-check: the real Binance captures replay through the live feed code with zero gaps and zero
crossed books, and the final books equal an independent pure-Python replay of the documented rule."""

import argparse
import json
import subprocess
import sys

import numpy as np
import pytest

from hftpipe.book import copy_top
from hftpipe.feeds.bookcheck import add_subcommand, book_check, main_book_check
from hftpipe.feeds.engine import FeedEngine
from hftpipe.feeds.registry import make_venue

from .captures import BINANCE_PAIRS, book_check_lines, needs_binance_captures, to_book_check


@pytest.fixture(scope="module")
def capture_files(tmp_path_factory):
    out = tmp_path_factory.mktemp("captures")
    return {venue: to_book_check(ws, http, out / f"{venue}.txt") for venue, ws, http in BINANCE_PAIRS}


@needs_binance_captures
@pytest.mark.parametrize("venue", ["binance", "binanceusdm"])
def test_real_capture_syncs_with_zero_gaps_and_zero_crossed(capture_files, venue):
    res = book_check(venue, capture_files[venue])
    assert res["venue"] == venue and res["messages"] > 200
    assert (res["gaps"], res["crossed"], res["resyncs"], res["invalid"], res["parse_errors"]) == (0, 0, 0, 0, 0)
    assert res["checksum_bad"] == 0 and res["checksum_ok"] == 0  # Binance sends no checksum
    assert len(res["symbols"]) == 4
    for sym, s in res["symbols"].items():
        assert s["synced"] and s["snapshots"] == 1 and s["applied"] > 1, sym
        assert float(s["best_bid"]) < float(s["best_ask"]), sym
        assert s["bids"][0][0] == s["best_bid"] and s["asks"][0][0] == s["best_ask"]
        assert len(s["bids"]) == len(s["asks"]) == 20


def dict_replay(lines, venue_id):
    """Independent replay: Binance's documented rule on plain dicts, straight from the JSON text.

    Spot: drop u <= lastUpdateId; first U <= lastUpdateId + 1 <= u; then U == previous u + 1.
    USD-M: drop u < lastUpdateId; first U <= lastUpdateId <= u; then pu == previous u.
    Asserts the chain holds; returns {native: (bids, asks, applied diffs)}.
    """
    spot = venue_id == "binance"
    books, last, first, pending, applied = {}, {}, {}, {}, {}
    for line in lines:
        if line.startswith("REST "):
            _, url, body = line.split(" ", 2)
            sym = url.split("symbol=")[1].split("&")[0]
            snap = json.loads(body)
            books[sym] = ({float(p): float(q) for p, q in snap["bids"]}, {float(p): float(q) for p, q in snap["asks"]})
            last[sym], first[sym], applied[sym] = snap["lastUpdateId"], True, 0
            events = pending.pop(sym, [])
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
            lid = last[sym]
            if first[sym]:
                if d["u"] < lid or (spot and d["u"] == lid):
                    continue
                assert d["U"] <= lid + 1 <= d["u"] if spot else d["U"] <= lid <= d["u"], (sym, d["U"], d["u"], lid)
                first[sym] = False
            elif spot:
                assert d["U"] == lid + 1, (sym, d["U"], lid)
            else:
                assert d["pu"] == lid, (sym, d["pu"], lid)
            for side, key in ((0, "b"), (1, "a")):
                for p, q in d[key]:
                    if float(q) == 0:
                        books[sym][side].pop(float(p), None)
                    else:
                        books[sym][side][float(p)] = float(q)
            last[sym] = d["u"]
            applied[sym] += 1
    return {s: (b, a, applied[s]) for s, (b, a) in books.items()}


@needs_binance_captures
@pytest.mark.parametrize("venue,ws,http", BINANCE_PAIRS)
def test_kernel_books_equal_an_independent_dict_replay(capture_files, venue, ws, http):
    lines = book_check_lines(ws, http)
    ref = dict_replay(lines, venue)
    assert len(ref) == 4
    v = make_venue(venue)
    engine = FeedEngine(v, [v.unified_symbol(n) for n in ref])
    for line in lines:
        if line.startswith("REST "):
            _, url, body = line.split(" ", 2)
            engine.on_snapshot(v.unified_symbol(url.split("symbol=")[1].split("&")[0]), body, 0)
        else:
            engine.on_frame(line, 0)
    summary = book_check(venue, capture_files[venue], depth=20)
    out = np.zeros((20, 2))
    for native, (bids, asks, n_applied) in ref.items():
        unified = v.unified_symbol(native)
        book = engine.books[unified]
        want_bids = sorted(bids.items(), reverse=True)[:20]
        want_asks = sorted(asks.items())[:20]
        m = copy_top(book.bids, book.n_bids, out, 20)
        assert [tuple(r) for r in out[:m]] == want_bids, unified
        m = copy_top(book.asks, book.n_asks, out, 20)
        assert [tuple(r) for r in out[:m]] == want_asks, unified
        assert (book.n_bids, book.n_asks) == (len(bids), len(asks))  # full depth, not only the top
        s = summary["symbols"][unified]
        assert s["applied"] == n_applied + 1  # + the snapshot
        assert [[float(p), float(q)] for p, q in s["bids"]] == [list(r) for r in want_bids]
        assert [[float(p), float(q)] for p, q in s["asks"]] == [list(r) for r in want_asks]


def test_synthetic_file_gap_resync_and_bad_lines(tmp_path):
    def d(U, u, b=()):
        return json.dumps({"stream": "btcusdt@depth@100ms", "data": {
            "e": "depthUpdate", "E": 1, "s": "BTCUSDT", "U": U, "u": u, "b": [list(x) for x in b], "a": []}})

    url = "https://api.binance.com/api/v3/depth?symbol=BTCUSDT&limit=1000"
    lines = [
        '{"result":null,"id":1}',
        d(9, 10),
        f'REST {url} {{"lastUpdateId":10,"bids":[["100.10","1"]],"asks":[["100.30","2"]]}}',
        d(11, 12, [("100.20", "1")]),
        "{garbage",
        d(14, 15),  # 13 missing: gap
        d(16, 16, [("100.25", "3")]),
        "REST https://api.binance.com/api/v3/depth?limit=1000 {}",  # no symbol: counted, skipped
        f'REST {url} {{"lastUpdateId":15,"bids":[["100.00","1"]],"asks":[["100.30","2"]]}}',
        '{"stream":"btcusdt@bookTicker","data":{"u":1,"s":"BTCUSDT","b":"1","B":"1","a":"2","A":"1"}}',
        "",
    ]
    path = tmp_path / "frames.txt"
    path.write_text("\r\n".join(lines))
    res = book_check("binance", path, depth=3)
    s = res["symbols"]["BTC/USDT"]
    assert (res["messages"], res["parse_errors"], res["acks"], res["unknown"]) == (7, 2, 1, 1)
    assert (res["gaps"], res["resyncs"], res["crossed"]) == (1, 1, 0)
    assert (s["applied"], s["buffered"], s["dropped"], s["snapshots"], s["synced"]) == (4, 2, 2, 2, True)
    assert s["best_bid"] == "100.25" and s["best_ask"] == "100.3" and s["last_id"] == 16
    assert s["bids"] == [["100.25", "3.0"], ["100.0", "1.0"]] and len(s["asks"]) == 1


def test_cli_exit_codes_in_process(tmp_path, capsys):
    path = tmp_path / "f.txt"
    path.write_text('{"result":null,"id":1}\n')
    assert main_book_check("binance", str(path), 20) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["venue"] == "binance" and out["acks"] == 1 and out["symbols"] == {}
    assert main_book_check("nope", str(path), 20) == 2
    assert "unknown venue 'nope'" in capsys.readouterr().err
    assert main_book_check("binance", str(tmp_path / "missing"), 20) == 2
    assert main_book_check("binance", str(tmp_path), 20) == 2  # a directory
    (tmp_path / "bin").write_bytes(b"\xff\xfe\x00garbage")
    assert main_book_check("binance", str(tmp_path / "bin"), 20) == 2
    parser = argparse.ArgumentParser(prog="hftpipe")
    add_subcommand(parser.add_subparsers())
    args = parser.parse_args(["book-check", "--venue", "binanceusdm", "--depth", "5", str(path)])
    assert (args.venue, args.depth, args.file) == ("binanceusdm", 5, str(path))
    assert args.handler(args) == 0 and args.func is args.handler
    assert json.loads(capsys.readouterr().out)["depth"] == 5
    with pytest.raises(SystemExit):
        parser.parse_args(["book-check", "--venue", "binance", "--depth", "0", str(path)])


@needs_binance_captures
def test_cli_prints_one_json_object(capture_files):
    res = subprocess.run([sys.executable, "-m", "hftpipe", "book-check", "--venue", "binanceusdm",
                          str(capture_files["binanceusdm"])], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["gaps"] == 0 and out["crossed"] == 0 and len(out["symbols"]) == 4
