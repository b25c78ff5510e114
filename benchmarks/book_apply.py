"""Cost per depth message: numba book kernels vs a pure-Python book, on real Binance deltas.

Frames come from the real captures in ``../shared/data/captures`` (Binance spot and USD-M).
Parsing happens before timing (it is a different benchmark): every depthUpdate is turned into
float64 arrays of bid and ask changes, each book is seeded from the REST snapshot recorded in the
same session, and then each message is applied to

- hftpipe, per message: one ``apply_update`` call from Python for both sides (what a feed does
  per frame; includes numba's ~0.3 us call overhead),
- hftpipe, batch: ``apply_updates_batch`` over all messages in one call (replay, book-check,
  backtests), the kernels' own cost per message, and
- python: the usual hand-written book, a dict price -> size per side plus a sorted list of
  prices kept with ``bisect`` (insort on new levels, remove on deletes).

Per-message runs time each message on its own with ``perf_counter_ns`` minus the measured cost
of an empty timed region; the batch run times the whole replay and divides by the message count
(so it has a mean, no percentiles). Rounds reset the books; medians and p99 are over all
messages of all rounds.

    python benchmarks/book_apply.py [--rounds N] [--captures DIR] [--quick] [--json]
"""

from __future__ import annotations

import argparse
import bisect
import json
import sys
import time
from pathlib import Path

import numpy as np

from hftpipe.book import apply_snapshot, apply_update, apply_updates_batch, copy_top, new_side

TARGET_RATIO = 10.0
DEFAULT_CAPTURES = Path(__file__).resolve().parents[2] / "shared" / "data" / "captures"
CAPTURES = {"binance_spot": ("BINANCE.ws.1.0", "BINANCE.http.0.0"),
            "binance_usdm": ("BINANCE_FUTURES.ws.1.0", "BINANCE_FUTURES.http.0.0")}


def load_capture(ws_path: Path, http_path: Path):
    """(snapshots by symbol, list of (symbol, bids, asks) depth updates) from a capture pair."""
    snapshots = {}
    for line in http_path.read_text().splitlines():
        if " -> " not in line:
            continue
        url, rest = line.split(" -> ", 1)
        body = rest.split(": ", 1)[1]
        symbol = url.split("symbol=")[1].split("&")[0].upper()
        snap = json.loads(body)
        snapshots.setdefault(symbol, snap)
    messages = []
    for line in ws_path.read_text().splitlines():
        head, sep, text = line.partition(": ")
        if not sep or not text.startswith("{"):
            continue
        try:
            msg = json.loads(text)
        except json.JSONDecodeError:
            continue
        data = msg.get("data", msg)
        if not isinstance(data, dict) or data.get("e") != "depthUpdate":
            continue
        sym = data["s"].upper()
        if sym not in snapshots:
            continue
        bids = np.array(data["b"], dtype=np.float64).reshape(-1, 2)
        asks = np.array(data["a"], dtype=np.float64).reshape(-1, 2)
        messages.append((sym, bids, asks))
    return snapshots, messages


class PyBook:
    """Dict + sorted price list per side: what one writes without numba."""

    def __init__(self, snap):
        self.bids = {float(p): float(q) for p, q in snap["bids"] if float(q) > 0}
        self.asks = {float(p): float(q) for p, q in snap["asks"] if float(q) > 0}
        self.bid_prices = sorted(-p for p in self.bids)  # ascending keys: best bid first
        self.ask_prices = sorted(self.asks)

    @staticmethod
    def _apply(levels, prices, rows, sign):
        for p, q in rows:
            key = sign * p
            if q == 0.0:
                if p in levels:
                    del levels[p]
                    i = bisect.bisect_left(prices, key)
                    del prices[i]
            else:
                if p not in levels:
                    bisect.insort(prices, key)
                levels[p] = q

    def apply(self, bids, asks):
        self._apply(self.bids, self.bid_prices, bids, -1.0)
        self._apply(self.asks, self.ask_prices, asks, 1.0)


def timer_overhead_ns(n=20000):
    pc = time.perf_counter_ns
    samples = np.empty(n, dtype=np.int64)
    for i in range(n):
        t0 = pc()
        samples[i] = pc() - t0
    return int(np.median(samples))


def bench_numba(snapshots, messages, rounds, overhead):
    pc = time.perf_counter_ns
    out = []
    for _ in range(rounds):
        books = {}
        for sym, snap in snapshots.items():
            b, a = new_side(8000), new_side(8000)
            nb = apply_snapshot(b, np.array(snap["bids"], dtype=np.float64).reshape(-1, 2), True)
            na = apply_snapshot(a, np.array(snap["asks"], dtype=np.float64).reshape(-1, 2), False)
            books[sym] = [b, nb, a, na]
        times = np.empty(len(messages), dtype=np.int64)
        for i, (sym, bids, asks) in enumerate(messages):
            bk = books[sym]
            t0 = pc()
            bk[1], bk[3] = apply_update(bk[0], bk[1], bk[2], bk[3], bids, asks)
            times[i] = pc() - t0 - overhead
        out.append(times)
    return np.concatenate(out), books


def bench_batch(snapshots, messages, rounds):
    """Mean ns per message when a whole symbol's stream is applied in one kernel call."""
    per_symbol = {}
    for sym, bids, asks in messages:
        per_symbol.setdefault(sym, []).append((bids, asks))
    packed = {}
    for sym, msgs in per_symbol.items():
        rows, bid_end, ask_end = [], [], []
        n = 0
        for b, a in msgs:
            rows.append(b)
            n += len(b)
            bid_end.append(n)
            rows.append(a)
            n += len(a)
            ask_end.append(n)
        packed[sym] = (np.concatenate(rows), np.array(bid_end, dtype=np.int64), np.array(ask_end, dtype=np.int64))
    best = []
    for _ in range(rounds):
        total = 0
        for sym, snap in snapshots.items():
            if sym not in packed:
                continue
            b, a = new_side(8000), new_side(8000)
            nb = apply_snapshot(b, np.array(snap["bids"], dtype=np.float64).reshape(-1, 2), True)
            na = apply_snapshot(a, np.array(snap["asks"], dtype=np.float64).reshape(-1, 2), False)
            rows, bid_end, ask_end = packed[sym]
            t0 = time.perf_counter_ns()
            apply_updates_batch(b, nb, a, na, rows, bid_end, ask_end)
            total += time.perf_counter_ns() - t0
        best.append(total / len(messages))
    return float(np.median(best))


def bench_python(snapshots, messages, rounds, overhead):
    pc = time.perf_counter_ns
    py_messages = [(s, b.tolist(), a.tolist()) for s, b, a in messages]
    out = []
    for _ in range(rounds):
        books = {sym: PyBook(snap) for sym, snap in snapshots.items()}
        times = np.empty(len(messages), dtype=np.int64)
        for i, (sym, bids, asks) in enumerate(py_messages):
            bk = books[sym]
            t0 = pc()
            bk.apply(bids, asks)
            times[i] = pc() - t0 - overhead
        out.append(times)
    return np.concatenate(out), books


def check_same_books(nb_books, py_books, depth=20):
    """Both implementations must end with the same top of book, or the comparison means nothing."""
    out = np.zeros((depth, 2))
    for sym, (b, nb, a, na) in nb_books.items():
        py = py_books[sym]
        top_b = [(-k, py.bids[-k]) for k in py.bid_prices[:depth]]
        top_a = [(k, py.asks[k]) for k in py.ask_prices[:depth]]
        mb = copy_top(b, nb, out, depth)
        ours_b = [tuple(r) for r in out[:mb]]
        ma = copy_top(a, na, out, depth)
        ours_a = [tuple(r) for r in out[:ma]]
        if ours_b != top_b or ours_a != top_a:
            raise SystemExit(f"books differ for {sym}: the benchmark is invalid")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--captures", type=Path, default=DEFAULT_CAPTURES)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        args.rounds = 3
    overhead = timer_overhead_ns()
    results = {"timer_overhead_ns": overhead, "rounds": args.rounds}
    rows = []
    for label, (ws, http) in CAPTURES.items():
        ws_path, http_path = args.captures / ws, args.captures / http
        if not ws_path.exists():
            print(f"missing capture {ws_path}", file=sys.stderr)
            return 2
        snapshots, messages = load_capture(ws_path, http_path)
        levels = sum(len(b) + len(a) for _, b, a in messages)
        bench_numba(snapshots, messages[:50], 1, overhead)  # compile and warm up
        nb_times, nb_books = bench_numba(snapshots, messages, args.rounds, overhead)
        bench_batch(snapshots, messages[:50], 1)  # compile
        batch_mean = bench_batch(snapshots, messages, args.rounds)
        py_times, py_books = bench_python(snapshots, messages, args.rounds, overhead)
        check_same_books(nb_books, py_books)
        r = {
            "messages": len(messages),
            "levels_per_message": levels / max(len(messages), 1),
            "numba_p50_ns": float(np.percentile(nb_times, 50)),
            "numba_p99_ns": float(np.percentile(nb_times, 99)),
            "python_p50_ns": float(np.percentile(py_times, 50)),
            "python_p99_ns": float(np.percentile(py_times, 99)),
            "numba_mean_ns": float(nb_times.mean()),
            "python_mean_ns": float(py_times.mean()),
            "batch_mean_ns": batch_mean,
        }
        r["ratio_python_vs_numba_p50"] = r["python_p50_ns"] / max(r["numba_p50_ns"], 1.0)
        r["ratio_python_vs_numba_mean"] = r["python_mean_ns"] / max(r["numba_mean_ns"], 1.0)
        r["ratio_python_vs_batch_mean"] = r["python_mean_ns"] / max(r["batch_mean_ns"], 1.0)
        for k, v in r.items():
            results[f"{label}_{k}"] = v
        rows.append((label, r))

    print(f"Book update cost per depth message (timer overhead {overhead} ns subtracted, "
          f"{args.rounds} rounds, books checked equal)")
    print(f"{'capture':<14}{'msgs':>6}{'lvls/msg':>9}{'python p50':>11}{'p99':>9}{'mean':>9}"
          f"{'per-call p50':>13}{'p99':>9}{'mean':>9}{'batch mean':>11}")
    for label, r in rows:
        print(f"{label:<14}{r['messages']:>6}{r['levels_per_message']:>9.1f}{r['python_p50_ns']:>9.0f}ns"
              f"{r['python_p99_ns']:>7.0f}ns{r['python_mean_ns']:>7.0f}ns{r['numba_p50_ns']:>11.0f}ns"
              f"{r['numba_p99_ns']:>7.0f}ns{r['numba_mean_ns']:>7.0f}ns{r['batch_mean_ns']:>9.0f}ns")
    print(f"\n{'capture':<14}{'python/per-call p50':>20}{'python/per-call mean':>21}{'python/batch mean':>18}")
    for label, r in rows:
        print(f"{label:<14}{r['ratio_python_vs_numba_p50']:>19.1f}x{r['ratio_python_vs_numba_mean']:>20.1f}x"
              f"{r['ratio_python_vs_batch_mean']:>17.1f}x")
    print(f"target: numba at least {TARGET_RATIO:.0f}x faster than the pure-Python book")
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
