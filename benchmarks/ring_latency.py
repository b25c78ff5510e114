"""One-way latency and maximum lossless rate: BookRing vs multiprocessing.Queue and Pipe.

Writer and reader are separate processes pinned to different CPUs and carry the same L2
snapshot (one BookRing slot: ``depth`` levels per side plus the header). Latency is measured
from the writer's clock read just before it hands the snapshot over to the reader's clock read
just after it holds a complete copy (CLOCK_MONOTONIC, shared by both processes). The writer is
paced so that latency, not queueing, is measured. Baselines block in ``get()``/``recv()``: a
spinning reader would starve the Queue's feeder thread and make the baseline look worse than it
is (FIELD-NOTES).

The lossless-rate part publishes bursts at rising target rates to a sequential BookRing reader
and reports the highest rate with zero skipped snapshots; Queue and Pipe never lose messages
(they block the writer instead), so their figure is simply the sustained delivery rate.

    python benchmarks/ring_latency.py [--samples N] [--depth D] [--quick] [--json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import secrets
import sys
import time

import numpy as np
from numba import njit

from hftpipe.shm.atomics import cpu_relax, now_ns
from hftpipe.shm.book_ring import (
    READ_OK,
    S_RECV_NS,
    WAIT_SPIN,
    BookRing,
    ring_publish,
    ring_read_latest,
    ring_read_next,
    ring_wait,
    slot_words_for,
)

TARGETS = {"ring_p50_us": 1.0, "ring_p99_us": 10.0, "ratio_vs_queue_p50": 50.0}


def _cpus():
    cpus = sorted(os.sched_getaffinity(0))
    return cpus[0], cpus[-1]


def _pin(cpu):
    os.sched_setaffinity(0, {cpu})


@njit(cache=True)
def _ring_writer_loop(words, fwords, bids, asks, n, interval_ns):
    depth = bids.shape[0]
    start = now_ns() + 1_000_000
    for k in range(n):
        target = start + k * interval_ns
        while now_ns() < target:
            cpu_relax()
        t0 = now_ns()
        ring_publish(words, fwords, bids, depth, asks, depth, k, 0, t0, t0, t0, 1, 0)


@njit(cache=True)
def _ring_reader_loop(words, out, stats, lat, n_expected_last):
    last = 0
    count = 0
    while count < lat.shape[0]:
        cursor = ring_wait(words, last, WAIT_SPIN, 2_000_000_000)
        if cursor == last:
            break
        p = ring_read_latest(words, out, stats)
        t1 = now_ns()
        lat[count] = t1 - out[S_RECV_NS]
        count += 1
        last = p
        if p >= n_expected_last:
            break
    return count


@njit(cache=True)
def _ring_burst_writer(words, fwords, bids, asks, n, interval_ns):
    depth = bids.shape[0]
    start = now_ns() + 1_000_000
    for k in range(n):
        if interval_ns > 0:
            target = start + k * interval_ns
            while now_ns() < target:
                cpu_relax()
        ring_publish(words, fwords, bids, depth, asks, depth, k, 0, 0, 0, 0, 1, 0)
    return now_ns() - start


@njit(cache=True)
def _ring_sequential_reader(words, out, stats, n):
    want = 1
    skipped_total = 0
    reads = 0
    last_ns = now_ns()
    max_gap_ns = 0
    while want <= n:
        status, p, skipped = ring_read_next(words, want, out, stats)
        skipped_total += skipped
        if status == READ_OK:
            t = now_ns()
            if reads > 0 and t - last_ns > max_gap_ns:
                max_gap_ns = t - last_ns
            last_ns = t
            reads += 1
            want = p + 1
        else:
            want = p
    return reads, skipped_total, max_gap_ns


def _book(depth):
    bids = np.array([[100.0 - 0.01 * i, 1.0 + i] for i in range(depth)])
    asks = np.array([[100.01 + 0.01 * i, 1.0 + i] for i in range(depth)])
    return bids, asks


# ---- BookRing latency -------------------------------------------------------------------------

def _ring_writer(name, cpu, depth, n, interval_ns, go):
    _pin(cpu)
    ring = BookRing.attach(name)
    bids, asks = _book(depth)
    scratch = ring.words.copy()
    _ring_writer_loop(scratch, scratch.view(np.float64), bids, asks, 2, 1)  # compile off the ring
    go.wait()
    _ring_writer_loop(ring.words, ring.fwords, bids, asks, n, interval_ns)


def _ring_reader(name, cpu, n, ready, go, out_q):
    _pin(cpu)
    ring = BookRing.attach(name, readonly=True)
    out = np.zeros(ring.slot_words, dtype=np.int64)
    stats = np.zeros(2, dtype=np.int64)
    lat = np.zeros(n, dtype=np.int64)
    _ring_reader_loop(ring.words, out, stats, lat[:0], 0)  # compile
    ready.set()
    go.wait()
    count = _ring_reader_loop(ring.words, out, stats, lat, n - 1)
    out_q.put(lat[:count].copy())


def bench_ring_latency(depth, n, interval_ns, cpus):
    ctx = mp.get_context("spawn")
    name = f"hft_bench{os.getpid()}_{secrets.token_hex(3)}_ring"
    ring = BookRing.create(name, depth, 64)
    ready, go, q = ctx.Event(), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_ring_reader, args=(name, cpus[1], n, ready, go, q)),
             ctx.Process(target=_ring_writer, args=(name, cpus[0], depth, n, interval_ns, go))]
    try:
        for p in procs:
            p.start()
        ready.wait(120)
        time.sleep(0.5)  # writer compiles its loop
        go.set()
        lat = q.get(timeout=600)
        for p in procs:
            p.join(60)
        return lat
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
            p.join(5)
        ring.close()
        ring.unlink()


# ---- Queue / Pipe latency ---------------------------------------------------------------------

def _spin_until(target_ns):
    while time.monotonic_ns() < target_ns:
        pass


def _queue_writer(q, cpu, payload, n, interval_ns, go):
    _pin(cpu)
    go.wait()
    start = time.monotonic_ns() + 1_000_000
    for k in range(n):
        _spin_until(start + k * interval_ns)
        payload[0] = time.monotonic_ns()
        q.put(payload)
    q.put(None)


def _queue_reader(q, cpu, n, ready, go, out_q):
    _pin(cpu)
    lat = np.zeros(n, dtype=np.int64)
    ready.set()
    go.wait()
    i = 0
    first = last = 0
    while True:
        msg = q.get()
        t1 = time.monotonic_ns()
        if msg is None:
            break
        lat[i] = t1 - int(msg[0])
        first = first or t1
        last = t1
        i += 1
    out_q.put((lat[:i], last - first))


def _pipe_writer(conn, cpu, payload, n, interval_ns, go):
    _pin(cpu)
    go.wait()
    start = time.monotonic_ns() + 1_000_000
    for k in range(n):
        _spin_until(start + k * interval_ns)
        payload[0] = time.monotonic_ns()
        conn.send_bytes(payload)
    conn.send_bytes(b"")


def _pipe_reader(conn, cpu, n, ready, go, out_q):
    _pin(cpu)
    lat = np.zeros(n, dtype=np.int64)
    buf = bytearray(1 << 16)
    ready.set()
    go.wait()
    i = 0
    first = last = 0
    while True:
        size = conn.recv_bytes_into(buf)
        t1 = time.monotonic_ns()
        if size == 0:
            break
        lat[i] = t1 - int(np.frombuffer(buf, dtype=np.int64, count=1)[0])
        first = first or t1
        last = t1
        i += 1
    out_q.put((lat[:i], last - first))


def bench_baseline(kind, depth, n, interval_ns, cpus, with_span=False):
    ctx = mp.get_context("spawn")
    payload = np.zeros(slot_words_for(depth), dtype=np.int64)
    ready, go, out_q = ctx.Event(), ctx.Event(), ctx.Queue()
    if kind == "queue":
        chan = ctx.Queue()
        procs = [ctx.Process(target=_queue_reader, args=(chan, cpus[1], n, ready, go, out_q)),
                 ctx.Process(target=_queue_writer, args=(chan, cpus[0], payload, n, interval_ns, go))]
    else:
        r, w = ctx.Pipe(duplex=False)
        procs = [ctx.Process(target=_pipe_reader, args=(r, cpus[1], n, ready, go, out_q)),
                 ctx.Process(target=_pipe_writer, args=(w, cpus[0], payload, n, interval_ns, go))]
    try:
        for p in procs:
            p.start()
        ready.wait(120)
        time.sleep(0.3)
        go.set()
        lat, span_ns = out_q.get(timeout=600)
        for p in procs:
            p.join(60)
        return (lat, span_ns) if with_span else lat
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
            p.join(5)


# ---- lossless rate ----------------------------------------------------------------------------

def _burst_writer(name, cpu, depth, n, interval_ns, go, out_q):
    _pin(cpu)
    ring = BookRing.attach(name)
    bids, asks = _book(depth)
    scratch = ring.words.copy()
    _ring_burst_writer(scratch, scratch.view(np.float64), bids, asks, 2, 0)
    go.wait()
    out_q.put(("writer", int(_ring_burst_writer(ring.words, ring.fwords, bids, asks, n, interval_ns))))


def _burst_reader(name, cpu, n, ready, go, out_q):
    _pin(cpu)
    ring = BookRing.attach(name, readonly=True)
    out = np.zeros(ring.slot_words, dtype=np.int64)
    stats = np.zeros(2, dtype=np.int64)
    _ring_sequential_reader(ring.words, out, stats, 0)
    ready.set()
    go.wait()
    reads, skipped, max_gap_ns = _ring_sequential_reader(ring.words, out, stats, n)
    out_q.put(("reader", int(reads), int(skipped), int(max_gap_ns)))


def ring_burst(depth, n, interval_ns, cpus, n_slots=64):
    ctx = mp.get_context("spawn")
    name = f"hft_bench{os.getpid()}_{secrets.token_hex(3)}_burst"
    ring = BookRing.create(name, depth, n_slots)
    ready, go, q = ctx.Event(), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_burst_reader, args=(name, cpus[1], n, ready, go, q)),
             ctx.Process(target=_burst_writer, args=(name, cpus[0], depth, n, interval_ns, go, q))]
    try:
        for p in procs:
            p.start()
        ready.wait(120)
        time.sleep(0.5)
        go.set()
        got = {}
        for _ in range(2):
            item = q.get(timeout=600)
            got[item[0]] = item[1:]
        for p in procs:
            p.join(60)
        elapsed_ns = got["writer"][0]
        reads, skipped, max_gap_ns = got["reader"]
        return n / (elapsed_ns / 1e9), reads, skipped, max_gap_ns
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
            p.join(5)
        ring.close()
        ring.unlink()


def _percentiles(lat_ns):
    lat_us = np.asarray(lat_ns, dtype=np.float64) / 1e3
    return {
        "p50_us": float(np.percentile(lat_us, 50)),
        "p99_us": float(np.percentile(lat_us, 99)),
        "p999_us": float(np.percentile(lat_us, 99.9)),
        "max_us": float(lat_us.max()),
        "samples": int(lat_us.size),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=200_000, help="BookRing latency samples")
    ap.add_argument("--baseline-samples", type=int, default=20_000, help="Queue/Pipe latency samples")
    ap.add_argument("--depth", type=int, default=20)
    ap.add_argument("--interval-us", type=float, default=20.0, help="writer pacing for latency runs")
    ap.add_argument("--burst", type=int, default=2_000_000, help="max messages per lossless-rate run")
    ap.add_argument("--burst-seconds", type=float, default=2.0, help="length of a paced lossless-rate run")
    ap.add_argument("--quick", action="store_true", help="short smoke run")
    ap.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = ap.parse_args(argv)
    if args.quick:
        args.samples, args.baseline_samples, args.burst, args.burst_seconds = 20_000, 2_000, 200_000, 0.5
    cpus = _cpus()
    if cpus[0] == cpus[1]:
        print("warning: only one CPU available; writer and reader share it", file=sys.stderr)
    interval_ns = int(args.interval_us * 1000)

    results = {"depth": args.depth, "writer_cpu": cpus[0], "reader_cpu": cpus[1]}
    ring = _percentiles(bench_ring_latency(args.depth, args.samples, interval_ns, cpus))
    # Baselines get a slower pace: at 20 us they would queue behind their own ~50 us hand-off.
    base_interval = max(interval_ns, 200_000)
    queue = _percentiles(bench_baseline("queue", args.depth, args.baseline_samples, base_interval, cpus))
    pipe = _percentiles(bench_baseline("pipe", args.depth, args.baseline_samples, base_interval, cpus))
    for label, r in (("ring", ring), ("queue", queue), ("pipe", pipe)):
        for k, v in r.items():
            results[f"{label}_{k}"] = v
    results["ratio_vs_queue_p50"] = queue["p50_us"] / ring["p50_us"]
    results["ratio_vs_queue_p99"] = queue["p99_us"] / ring["p99_us"]
    results["ratio_vs_pipe_p50"] = pipe["p50_us"] / ring["p50_us"]

    # Lossless rate: rising target rates until the sequential reader first skips, per ring size.
    # A latest-value ring loses what a stalled reader misses, so the lossless rate is bounded by
    # n_slots / (longest reader stall): the stall is printed with each run.
    rate_rows = []
    for n_slots in (64, 4096):
        best = 0.0
        for target in (50_000, 100_000, 250_000, 500_000, 1_000_000, 2_000_000, 4_000_000, 0):
            interval = int(1e9 / target) if target else 0
            n = min(args.burst, int(target * args.burst_seconds)) if target else args.burst
            achieved, reads, skipped, max_gap_ns = ring_burst(args.depth, n, interval, cpus, n_slots)
            rate_rows.append((n_slots, target or "unpaced", achieved, reads, skipped, max_gap_ns / 1e3))
            if skipped:
                break
            best = max(best, achieved)
        results[f"ring{n_slots}_lossless_rate_msgs_per_s"] = best
    results["queue_rate_msgs_per_s"] = _baseline_rate("queue", args.depth, args.baseline_samples, cpus)
    results["pipe_rate_msgs_per_s"] = _baseline_rate("pipe", args.depth, args.baseline_samples, cpus)

    print(f"One-way latency, snapshot of depth {args.depth} ({8 * slot_words_for(args.depth)} bytes), "
          f"writer cpu {cpus[0]} -> reader cpu {cpus[1]}")
    print(f"{'channel':<10}{'p50 us':>10}{'p99 us':>10}{'p99.9 us':>10}{'max us':>11}{'samples':>10}")
    for label, r in (("BookRing", ring), ("Queue", queue), ("Pipe", pipe)):
        print(f"{label:<10}{r['p50_us']:>10.2f}{r['p99_us']:>10.2f}{r['p999_us']:>10.2f}"
              f"{r['max_us']:>11.1f}{r['samples']:>10}")
    print(f"BookRing p50 {ring['p50_us']:.2f} us (target <= {TARGETS['ring_p50_us']}), "
          f"p99 {ring['p99_us']:.2f} us (target <= {TARGETS['ring_p99_us']})")
    print(f"ratio Queue/BookRing p50 {results['ratio_vs_queue_p50']:.0f}x (target >= "
          f"{TARGETS['ratio_vs_queue_p50']:.0f}x), p99 {results['ratio_vs_queue_p99']:.0f}x; "
          f"Pipe/BookRing p50 {results['ratio_vs_pipe_p50']:.0f}x")
    print("\nLossless rate (sequential BookRing reader; stops at the first rate that skips):")
    print(f"{'slots':>6}{'target/s':>12}{'achieved/s':>14}{'read':>10}{'skipped':>10}{'longest stall us':>18}")
    for n_slots, target, achieved, reads, skipped, gap_us in rate_rows:
        print(f"{n_slots:>6}{target!s:>12}{achieved:>14,.0f}{reads:>10}{skipped:>10}{gap_us:>18,.0f}")
    print(f"BookRing max lossless: 64 slots {results['ring64_lossless_rate_msgs_per_s']:,.0f} msg/s, "
          f"4096 slots {results['ring4096_lossless_rate_msgs_per_s']:,.0f} msg/s; "
          f"Queue {results['queue_rate_msgs_per_s']:,.0f} msg/s; "
          f"Pipe {results['pipe_rate_msgs_per_s']:,.0f} msg/s (blocking, never lossy)")
    if args.json:
        print(json.dumps(results))
    return 0


def _baseline_rate(kind, depth, n, cpus):
    """Sustained delivery rate with an unpaced writer: messages over first-to-last receive time."""
    _, span_ns = bench_baseline(kind, depth, n, 0, cpus, with_span=True)
    return (n - 1) / (span_ns / 1e9) if span_ns > 0 else 0.0


if __name__ == "__main__":
    sys.exit(main())
