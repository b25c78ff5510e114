"""Cost per depth message: numba book kernels vs a pure-Python book, on real Binance deltas.

Frames come from the real captures in ``../shared/data/captures`` next to the repository
(Binance spot and USD-M, ``--captures DIR`` to point elsewhere). Parsing happens before timing
(it is a different benchmark): every depthUpdate becomes float64 arrays of bid and ask changes,
each book is seeded from the REST snapshot recorded in the same session, and diffs the snapshot
already contains (``u <= lastUpdateId``, the venue's sync rule) are dropped, so both books apply
exactly what a feed would. Each message is then applied to

- numba: the ``hftpipe.book`` kernels on full-depth sides (capacity 5000, as the feeds use),
- python: the usual hand-written book, a dict price -> size per side plus a sorted list of
  prices kept with ``bisect`` (insort on new levels, delete on removals).

Two timing methods, both printed:

- per call: each message on its own, one ``apply_update`` call from Python (what a feed does
  per frame) vs one ``PyBook.apply`` call, timed with ``perf_counter_ns`` minus the median cost
  of an empty timed region. Gives p50/p99 per message. The numba figure includes the call's
  dispatch from Python, shown separately as the same call into a kernel that does nothing.
- block: each symbol's whole stream timed as one block, ``apply_updates_batch`` (one call) vs a
  Python loop of ``PyBook.apply``; block time / messages = mean cost per message without
  per-message timer or dispatch overhead (replay, book-check, backtests).

Every round resets the books from the snapshot; the garbage collector is off while timing;
warm-up rounds (numba cache load, caches, clocks) run first and are discarded; after every
round both books must hold identical levels at all depths, else the run stops. Percentiles are
over all messages of all timed rounds; block figures are the median over rounds. Replaying the
same stream every round lets branch predictors learn it a little, for both books alike.

    python benchmarks/book_apply.py [--rounds N] [--captures DIR] [--quick] [--json]
"""

from __future__ import annotations

import argparse
import bisect
import gc
import json
import sys
import time
from pathlib import Path

import numpy as np
from numba import njit

from hftpipe.book import apply_snapshot, apply_update, apply_updates_batch, new_side

TARGET_RATIO = 10.0  # the issue: at least 10x faster than pure Python
CAPACITY = 5000
DEFAULT_CAPTURES = Path(__file__).resolve().parents[2] / "shared" / "data" / "captures"
CAPTURES = {"binance_spot": ("BINANCE.ws.1.0", "BINANCE.http.0.0"),
            "binance_usdm": ("BINANCE_FUTURES.ws.1.0", "BINANCE_FUTURES.http.0.0")}


def _rows(levels) -> np.ndarray:
    return np.array(levels, dtype=np.float64).reshape(-1, 2)


def load_capture(ws_path: Path, http_path: Path):
    """(snapshots by symbol, [(symbol, bid rows, ask rows)] in arrival order, stale diffs dropped)."""
    snapshots = {}
    for line in http_path.read_text().splitlines():
        url, sep, rest = line.partition(" -> ")
        if not sep or "symbol=" not in url:
            continue
        symbol = url.split("symbol=")[1].split("&")[0].upper()
        snapshots.setdefault(symbol, json.loads(rest.split(": ", 1)[1]))
    messages = []
    stale = 0
    for line in ws_path.read_text().splitlines():
        if " <-" in line:  # connection opened / frame we sent
            continue
        _, sep, text = line.partition(": ")
        if not sep or "depthUpdate" not in text:
            continue
        data = json.loads(text)["data"]
        symbol = data["s"].upper()
        if symbol not in snapshots:
            continue
        if data["u"] <= snapshots[symbol]["lastUpdateId"]:
            stale += 1
            continue
        messages.append((symbol, _rows(data["b"]), _rows(data["a"])))
    return snapshots, messages, stale


class PyBook:
    """Dict + sorted price list per side: what one writes without numba."""

    def __init__(self, snap):
        self.bids = {float(p): float(q) for p, q in snap["bids"] if float(q) > 0}
        self.asks = {float(p): float(q) for p, q in snap["asks"] if float(q) > 0}
        self.bid_keys = sorted(-p for p in self.bids)  # ascending keys: best bid first
        self.ask_keys = sorted(self.asks)

    @staticmethod
    def _apply(levels, keys, rows, sign):
        for p, q in rows:
            if q == 0.0:
                if p in levels:
                    del levels[p]
                    del keys[bisect.bisect_left(keys, sign * p)]
            else:
                if p not in levels:
                    bisect.insort(keys, sign * p)
                levels[p] = q

    def apply(self, bids, asks):
        self._apply(self.bids, self.bid_keys, bids, -1.0)
        self._apply(self.asks, self.ask_keys, asks, 1.0)

    def sides(self):
        return ([(-k, self.bids[-k]) for k in self.bid_keys], [(k, self.asks[k]) for k in self.ask_keys])


@njit(cache=True)
def _dispatch_only(bids, nb, asks, na, bid_rows, ask_rows):
    # Same argument types as apply_update, no work: what calling numba from Python costs.
    return nb, na


class Capture:
    """One capture's pre-parsed messages and snapshot seeds, in both books' input forms."""

    def __init__(self, snapshots, messages):
        self.messages = messages
        self.py_messages = [(s, b.tolist(), a.tolist()) for s, b, a in messages]
        self.snapshots = {s: snap for s, snap in snapshots.items() if any(m[0] == s for m in messages)}
        self.seeds = {}
        for sym, snap in self.snapshots.items():
            bids, asks = new_side(CAPACITY), new_side(CAPACITY)
            nb = apply_snapshot(bids, _rows(snap["bids"]), True)
            na = apply_snapshot(asks, _rows(snap["asks"]), False)
            self.seeds[sym] = (bids, nb, asks, na)
        self.blocks = {}  # symbol -> (rows, bid_end, ask_end) for apply_updates_batch, and python rows
        for sym in self.snapshots:
            mine = [(b, a) for s, b, a in messages if s == sym]
            rows, bid_end, ask_end, total = [], [], [], 0
            for b, a in mine:
                rows += [b, a]
                total += len(b)
                bid_end.append(total)
                total += len(a)
                ask_end.append(total)
            self.blocks[sym] = (np.concatenate(rows), np.array(bid_end, dtype=np.int64),
                                np.array(ask_end, dtype=np.int64),
                                [(b.tolist(), a.tolist()) for b, a in mine])

    def fresh_numba(self):
        return {s: [b.copy(), nb, a.copy(), na] for s, (b, nb, a, na) in self.seeds.items()}

    def fresh_python(self):
        return {s: PyBook(snap) for s, snap in self.snapshots.items()}


def timer_overhead_ns(n=20000) -> int:
    pc = time.perf_counter_ns
    samples = np.empty(n, dtype=np.int64)
    for i in range(n):
        t0 = pc()
        samples[i] = pc() - t0
    return int(np.median(samples))


def per_call_numba(cap, overhead, kernel=apply_update):
    pc = time.perf_counter_ns
    books = cap.fresh_numba()
    times = np.empty(len(cap.messages), dtype=np.int64)
    for i, (sym, bids, asks) in enumerate(cap.messages):
        bk = books[sym]
        b, nb, a, na = bk
        t0 = pc()
        r = kernel(b, nb, a, na, bids, asks)
        t1 = pc()
        bk[1], bk[3] = r
        times[i] = t1 - t0 - overhead
    return times, books


def per_call_python(cap, overhead):
    pc = time.perf_counter_ns
    books = cap.fresh_python()
    times = np.empty(len(cap.py_messages), dtype=np.int64)
    for i, (sym, bids, asks) in enumerate(cap.py_messages):
        apply = books[sym].apply
        t0 = pc()
        apply(bids, asks)
        t1 = pc()
        times[i] = t1 - t0 - overhead
    return times, books


def block_numba(cap):
    pc = time.perf_counter_ns
    books = cap.fresh_numba()
    total = 0
    for sym, (rows, bid_end, ask_end, _) in cap.blocks.items():
        bk = books[sym]
        t0 = pc()
        nb, na, skipped = apply_updates_batch(bk[0], bk[1], bk[2], bk[3], rows, bid_end, ask_end)
        total += pc() - t0
        if skipped:
            raise SystemExit(f"{sym}: {skipped} messages rejected as invalid")
        bk[1], bk[3] = nb, na
    return total / len(cap.messages), books


def block_python(cap):
    pc = time.perf_counter_ns
    books = cap.fresh_python()
    total = 0
    for sym, (_, _, _, py_msgs) in cap.blocks.items():
        apply = books[sym].apply
        t0 = pc()
        for bids, asks in py_msgs:
            apply(bids, asks)
        total += pc() - t0
    return total / len(cap.messages), books


def check_same_books(label, numba_books, py_books):
    """Both books must hold the same levels at every depth, or the comparison means nothing."""
    for sym, (b, nb, a, na) in numba_books.items():
        if nb >= CAPACITY or na >= CAPACITY:
            raise SystemExit(f"{label} {sym}: side reached capacity, levels may have been dropped")
        ours = ([tuple(r) for r in b[:nb][::-1]], [tuple(r) for r in a[:na][::-1]])
        if ours != py_books[sym].sides():
            raise SystemExit(f"{label} {sym}: books differ, the benchmark is invalid")


def run_capture(label, cap, rounds, warmup, overhead):
    nb_t, py_t, noop_t, nb_blk, py_blk = [], [], [], [], []
    gc.disable()
    try:
        # The first rounds load the kernels from numba's cache (or compile them) and settle
        # caches and clocks; they are run like the others and then discarded.
        for i in range(warmup + rounds):
            if i == warmup:
                nb_t, py_t, noop_t, nb_blk, py_blk = [], [], [], [], []
            t, books_n = per_call_numba(cap, overhead)
            nb_t.append(t)
            t, books_p = per_call_python(cap, overhead)
            py_t.append(t)
            check_same_books(label, books_n, books_p)
            noop_t.append(per_call_numba(cap, overhead, _dispatch_only)[0])
            mean, books_n = block_numba(cap)
            nb_blk.append(mean)
            mean, books_p = block_python(cap)
            py_blk.append(mean)
            check_same_books(label, books_n, books_p)
    finally:
        gc.enable()
    nb_t, py_t, noop_t = np.concatenate(nb_t), np.concatenate(py_t), np.concatenate(noop_t)
    r = {
        "messages": len(cap.messages),
        "levels_per_message": sum(len(b) + len(a) for _, b, a in cap.messages) / len(cap.messages),
        "python_p50_ns": float(np.percentile(py_t, 50)),
        "python_p99_ns": float(np.percentile(py_t, 99)),
        "python_mean_ns": float(py_t.mean()),
        "numba_p50_ns": float(np.percentile(nb_t, 50)),
        "numba_p99_ns": float(np.percentile(nb_t, 99)),
        "numba_mean_ns": float(nb_t.mean()),
        "numba_dispatch_p50_ns": float(np.percentile(noop_t, 50)),
        "python_block_mean_ns": float(np.median(py_blk)),
        "numba_block_mean_ns": float(np.median(nb_blk)),
    }
    r["ratio_python_vs_numba_p50"] = r["python_p50_ns"] / max(r["numba_p50_ns"], 1.0)
    r["ratio_python_vs_numba_p99"] = r["python_p99_ns"] / max(r["numba_p99_ns"], 1.0)
    r["ratio_python_vs_numba_mean"] = r["python_mean_ns"] / max(r["numba_mean_ns"], 1.0)
    r["ratio_python_vs_numba_block_mean"] = r["python_block_mean_ns"] / max(r["numba_block_mean_ns"], 1.0)
    return r


def verdict(ratio):
    return f"{ratio:.1f}x (target >= {TARGET_RATIO:.0f}x: {'met' if ratio >= TARGET_RATIO else 'NOT met'})"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--captures", type=Path, default=DEFAULT_CAPTURES, help="directory of the capture files")
    ap.add_argument("--rounds", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=3, help="rounds run first and discarded")
    ap.add_argument("--quick", action="store_true", help="a short smoke run (3 rounds after 1 warm-up round)")
    ap.add_argument("--json", action="store_true", help="print every figure as one JSON object on the last line")
    args = ap.parse_args(argv)
    if args.quick:
        args.rounds, args.warmup = 3, 1
    overhead = timer_overhead_ns()
    results = {"timer_overhead_ns": overhead, "rounds": args.rounds, "warmup_rounds": args.warmup,
               "capacity_levels": CAPACITY,
               "target_ratio_python_vs_numba": TARGET_RATIO}
    rows = []
    for label, (ws, http) in CAPTURES.items():
        ws_path, http_path = args.captures / ws, args.captures / http
        if not ws_path.exists() or not http_path.exists():
            print(f"missing capture {ws_path} or {http_path} (use --captures DIR)", file=sys.stderr)
            return 2
        snapshots, messages, stale = load_capture(ws_path, http_path)
        r = {"stale_dropped": stale, **run_capture(label, Capture(snapshots, messages), args.rounds, args.warmup, overhead)}
        for key in ("p50", "p99", "mean", "block_mean"):
            results[f"{label}_target_met_{key}"] = r[f"ratio_python_vs_numba_{key}"] >= TARGET_RATIO
        for k, v in r.items():
            results[f"{label}_{k}"] = v
        rows.append((label, r))

    stale = ", ".join(f"{label} {r['stale_dropped']}" for label, r in rows)
    print(f"Book update cost per depth message, ns ({args.rounds} rounds after {args.warmup} warm-up; "
          f"books checked equal at all depths; stale diffs dropped: {stale})")
    print(f"per call: each message timed alone, timer overhead {overhead} ns subtracted; numba includes "
          f"the call's dispatch from Python")
    print(f"{'capture':<14}{'msgs':>6}{'lvls/msg':>9}{'python p50':>12}{'p99':>8}{'mean':>8}"
          f"{'numba p50':>11}{'p99':>8}{'mean':>8}{'dispatch p50':>14}")
    for label, r in rows:
        print(f"{label:<14}{r['messages']:>6}{r['levels_per_message']:>9.1f}{r['python_p50_ns']:>12.0f}"
              f"{r['python_p99_ns']:>8.0f}{r['python_mean_ns']:>8.0f}{r['numba_p50_ns']:>11.0f}"
              f"{r['numba_p99_ns']:>8.0f}{r['numba_mean_ns']:>8.0f}{r['numba_dispatch_p50_ns']:>14.0f}")
    print("block: each symbol's stream timed whole (apply_updates_batch vs a Python loop), mean per message")
    print(f"{'capture':<14}{'python mean':>12}{'numba mean':>12}")
    for label, r in rows:
        print(f"{label:<14}{r['python_block_mean_ns']:>12.0f}{r['numba_block_mean_ns']:>12.0f}")
    print("speed-up python / numba")
    for label, r in rows:
        print(f"{label:<14} per call p50 {verdict(r['ratio_python_vs_numba_p50'])}, "
              f"p99 {verdict(r['ratio_python_vs_numba_p99'])}")
        print(f"{'':<14} block mean   {verdict(r['ratio_python_vs_numba_block_mean'])}")
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
