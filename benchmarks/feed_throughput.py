"""Feed throughput: parse + apply + publish per message, live and on recorded frames, vs cryptofeed.

(a) Live: the simulator (Binance spot, 2 symbols) streams at rising rates over loopback
    WebSocket to one real feed process; the feed stamps every frame and its ControlBlock
    histograms give frame received -> parsed -> applied -> published per message. The sustained
    rate is frames the feed handled per second over the window, next to what the simulator sent.
(b) Recorded: the same frames (recorded from the simulator with ``hftpipe record``'s recorder)
    through hftpipe's FeedEngine + BookRing publish in-process, and through cryptofeed's own
    Binance message handler (``message_handler``: JSON decode, sync check, book update,
    callback), each frame timed on its own. Needs ``pip install cryptofeed`` (the ``bench`` extra).

    python benchmarks/feed_throughput.py [--quick] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import secrets
import signal
import sys
import tempfile
import time
import urllib.request

import numpy as np

from hftpipe.feeds.engine import FeedEngine
from hftpipe.feeds.process import FeedSpec, feed_process_main, record
from hftpipe.feeds.recording import read_events
from hftpipe.feeds.registry import make_venue
from hftpipe.shm.book_ring import BookRing, ring_publish
from hftpipe.shm.control import ControlBlock, Stage, hist_percentile
from hftpipe.sim.server import SimConfig, SimExchange

TARGETS = {"p50_us": 10.0, "p99_us": 50.0, "msgs_per_s": 40_000, "ratio_vs_cryptofeed": 3.0}
SYMBOLS = ("BTC/USDT", "ETH/USDT")


def _tag():
    return f"hft_bench{os.getpid()}_{secrets.token_hex(3)}"


def live_run(rate: float, seconds: float) -> dict:
    """One feed process against the simulator at ``rate`` events/s; stage percentiles from its histograms."""
    sim = SimExchange(SimConfig(venues=("binance",), symbols=SYMBOLS, seed=11, rate=rate)).run_in_thread()
    tag = _tag()
    ctl = ControlBlock.create(f"{tag}_ctl", max_procs=1)
    rings = {s: BookRing.create(f"{tag}_{i}", 20, 64) for i, s in enumerate(SYMBOLS)}
    urls = sim.urls()["binance"]
    spec = FeedSpec(venue="binance", symbols=SYMBOLS, ring_names={s: r.segment.name for s, r in rings.items()},
                    control_name=ctl.segment.name, ws_url=urls["ws"], rest_url=urls["rest"],
                    cpu=sorted(os.sched_getaffinity(0))[-1])
    proc = mp.get_context("spawn").Process(target=feed_process_main, args=(spec,), daemon=True)
    try:
        proc.start()
        time.sleep(2.0)  # connect, snapshots, numba cache load
        ctl.reset_stats(0)
        sent0 = sim.stats()["venues"]["binance"]["frames_sent"]
        t0 = time.monotonic()
        time.sleep(seconds)
        elapsed = time.monotonic() - t0
        sent = sim.stats()["venues"]["binance"]["frames_sent"] - sent0
        c = ctl.counters(0)
        out = {"rate_target_per_s": rate, "frames_sent_per_s": sent / elapsed,
               "msgs_per_s": c["messages"] / elapsed, "publishes": c["publishes"], "gaps": c["gaps"],
               "stale": c["stale"], "reconnects": c["reconnects"]}
        for stage, key in ((Stage.FRAME_TO_PARSED, "parse"), (Stage.PARSED_TO_APPLIED, "apply"),
                           (Stage.APPLIED_TO_PUBLISHED, "publish"), (Stage.RECV_TO_PUBLISHED, "total")):
            h = ctl.histogram(0, stage)
            out[f"{key}_p50_us"] = hist_percentile(h, 0.50) / 1e3
            out[f"{key}_p99_us"] = hist_percentile(h, 0.99) / 1e3
        return out
    finally:
        if proc.is_alive():
            os.kill(proc.pid, signal.SIGTERM)
            proc.join(10)
        if proc.is_alive():
            proc.kill()
        sim.stop()
        for r in rings.values():
            r.close()
            r.unlink()
        ctl.close()
        ctl.unlink()


def record_frames(out_dir: str, rate: float, seconds: float) -> tuple[list[str], str]:
    """Record simulator frames; returns the files and the simulator's exchangeInfo body."""
    sim = SimExchange(SimConfig(venues=("binance",), symbols=SYMBOLS, seed=12, rate=rate)).run_in_thread()
    try:
        urls = sim.urls()["binance"]
        res = asyncio.run(record("binance", list(SYMBOLS), out_dir, seconds, urls["ws"], urls["rest"]))
        with urllib.request.urlopen(urls["rest"] + "/api/v3/exchangeInfo", timeout=10) as resp:
            info = resp.read().decode()
        return res["files"], info
    finally:
        sim.stop()


def hftpipe_recorded(files: list[str], rounds: int) -> np.ndarray:
    """ns per frame: FeedEngine parse + sync + apply + BookRing publish, in-process."""
    events = list(read_events(files))
    tag = _tag()
    rings = {s: BookRing.create(f"{tag}_{i}", 20, 64) for i, s in enumerate(SYMBOLS)}
    pc = time.perf_counter_ns
    try:
        times = []
        for _ in range(rounds):
            venue = make_venue("binance")

            def publish(symbol, book, update, recv_ns, parsed_ns, applied_ns):
                ring = rings[symbol]
                ring_publish(ring.words, ring.fwords, book.bids, book.n_bids, book.asks, book.n_asks,
                             book.last_id, book.exch_ns, recv_ns, parsed_ns, applied_ns, 1, 0, True)

            engine = FeedEngine(venue, list(SYMBOLS), publish=publish)
            t = np.zeros(sum(1 for e in events if e[1] == "F"), dtype=np.int64)
            i = 0
            for recv_ns, kind, url, text in events:
                if kind == "R":
                    sym = venue.unified_symbol(url.split("symbol=")[1].split("&")[0])
                    engine.on_snapshot(sym, text, recv_ns)
                    continue
                t0 = pc()
                engine.on_frame(text, t0)
                t[i] = pc() - t0
                i += 1
            if engine.stats.symbols["BTC/USDT"].gaps:
                raise SystemExit("hftpipe saw a gap in the recording: the benchmark is invalid")
            times.append(t)
        return np.concatenate(times)
    finally:
        for r in rings.values():
            r.close()
            r.unlink()


def cryptofeed_recorded(files: list[str], exchange_info: str, rounds: int) -> np.ndarray | None:
    """ns per frame through cryptofeed's Binance message handler, or None when cryptofeed is absent."""
    try:
        from cryptofeed.defines import L2_BOOK
        from cryptofeed.exchanges import Binance
        from cryptofeed.symbols import Symbols
    except ImportError:
        return None
    syms, info = Binance._parse_symbol_data(json.loads(exchange_info))
    Symbols.set(Binance.id, syms, info)
    events = list(read_events(files))
    snapshots = {}
    for _, kind, url, text in events:
        if kind == "R":
            snapshots.setdefault(url.split("symbol=")[1].split("&")[0], text)

    async def run_round() -> np.ndarray:
        count = 0

        async def on_book(book, receipt_ts):
            nonlocal count
            count += 1

        feed = Binance(symbols=[s.replace("/", "-") for s in SYMBOLS], channels=[L2_BOOK],
                       callbacks={L2_BOOK: on_book})

        class RecordedHTTP:
            """Answers cryptofeed's snapshot request with the body recorded at that point."""

            async def read(self, url, **kwargs):
                native = url.split("symbol=")[1].split("&")[0]
                return snapshots[native]

        feed.http_conn = RecordedHTTP()
        t = np.zeros(sum(1 for e in events if e[1] == "F"), dtype=np.int64)
        pc = time.perf_counter_ns
        i = 0
        for _, kind, _, text in events:
            if kind == "R":
                continue  # cryptofeed asks for its snapshot itself, on the first diff
            t0 = pc()
            await feed.message_handler(text, None, time.time())
            t[i] = pc() - t0
            i += 1
        if count == 0:
            raise SystemExit("cryptofeed produced no book updates: the benchmark is invalid")
        return t

    return np.concatenate([asyncio.run(run_round()) for _ in range(rounds)])


def _pct(t_ns: np.ndarray) -> dict:
    return {"p50_us": float(np.percentile(t_ns, 50)) / 1e3, "p99_us": float(np.percentile(t_ns, 99)) / 1e3,
            "mean_us": float(t_ns.mean()) / 1e3, "msgs_per_s": 1e9 / float(t_ns.mean()), "frames": int(t_ns.size)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--seconds", type=float, default=4.0, help="measurement window per live rate")
    args = ap.parse_args(argv)
    rates = [5_000, 20_000] if args.quick else [10_000, 40_000, 60_000, 80_000]
    seconds = 2.0 if args.quick else args.seconds
    results: dict = {}
    live = []
    for rate in rates:
        r = live_run(rate, seconds)
        live.append(r)
        for k, v in r.items():
            if k != "rate_target_per_s":
                results[f"live{int(rate)}_{k}"] = v
    with tempfile.TemporaryDirectory() as tmp:
        files, info = record_frames(tmp, 2_000 if args.quick else 5_000, 2.0 if args.quick else 4.0)
        rounds = 2 if args.quick else 5
        ours = _pct(hftpipe_recorded(files, rounds))
        theirs_raw = cryptofeed_recorded(files, info, rounds)
    theirs = _pct(theirs_raw) if theirs_raw is not None else None
    for k, v in ours.items():
        results[f"recorded_hftpipe_{k}"] = v
    if theirs:
        for k, v in theirs.items():
            results[f"recorded_cryptofeed_{k}"] = v
        results["ratio_vs_cryptofeed_p50"] = theirs["p50_us"] / ours["p50_us"]
        results["ratio_vs_cryptofeed_mean"] = theirs["mean_us"] / ours["mean_us"]

    print("(a) one feed process, live over loopback WebSocket from the simulator (Binance spot, 2 symbols)")
    print(f"{'target/s':>9}{'sent/s':>9}{'handled/s':>10}{'parse p50/p99 us':>18}{'apply p50/p99':>15}"
          f"{'publish p50/p99':>17}{'total p50/p99 us':>18}{'gaps':>6}{'stale':>6}")
    for r in live:
        print(f"{r['rate_target_per_s']:>9,.0f}{r['frames_sent_per_s']:>9,.0f}{r['msgs_per_s']:>10,.0f}"
              f"{r['parse_p50_us']:>9.1f}/{r['parse_p99_us']:<8.1f}{r['apply_p50_us']:>7.1f}/{r['apply_p99_us']:<7.1f}"
              f"{r['publish_p50_us']:>8.1f}/{r['publish_p99_us']:<8.1f}{r['total_p50_us']:>9.1f}/{r['total_p99_us']:<8.1f}"
              f"{r['gaps']:>6}{r['stale']:>6}")
    best = max((r["msgs_per_s"] for r in live if r["msgs_per_s"] >= 0.95 * r["frames_sent_per_s"]), default=0.0)
    results["live_sustained_msgs_per_s"] = best
    print(f"sustained (handled >= 95% of sent): {best:,.0f} msg/s (target >= {TARGETS['msgs_per_s']:,})")
    print(f"targets: parse+apply+publish p50 <= {TARGETS['p50_us']} us, p99 <= {TARGETS['p99_us']} us")
    print("\n(b) the same recorded frames in-process, each frame timed")
    print(f"{'':<12}{'p50 us':>9}{'p99 us':>9}{'mean us':>9}{'msgs/s':>11}{'frames':>8}")
    for name, r in (("hftpipe", ours), ("cryptofeed", theirs)):
        if r is None:
            print(f"{name:<12} not installed (pip install cryptofeed) - no comparison")
            continue
        print(f"{name:<12}{r['p50_us']:>9.2f}{r['p99_us']:>9.2f}{r['mean_us']:>9.2f}{r['msgs_per_s']:>11,.0f}"
              f"{r['frames']:>8}")
    if theirs:
        print(f"ratio cryptofeed/hftpipe: p50 {results['ratio_vs_cryptofeed_p50']:.1f}x, mean "
              f"{results['ratio_vs_cryptofeed_mean']:.1f}x (target >= {TARGETS['ratio_vs_cryptofeed']}x)")
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
