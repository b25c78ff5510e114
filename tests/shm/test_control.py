"""ControlBlock: slots, counters, histograms and percentiles, kill switch across processes."""

import multiprocessing as mp

import numpy as np
import pytest

from hftpipe.shm.control import (
    N_BINS,
    ControlBlock,
    Counter,
    ProcState,
    Stage,
    bin_bounds,
    hist_percentile,
    latency_bin,
)

from .conftest import unique_name


@pytest.fixture
def ctl():
    c = ControlBlock.create(unique_name("ctl"), max_procs=4)
    try:
        yield c
    finally:
        c.close()
        c.unlink()


def test_latency_bins_contain_their_values():
    for ns in [0, 1, 3, 4, 5, 7, 8, 100, 999, 1000, 12_345, 10**6, 10**9, 2**40 + 17]:
        b = latency_bin(ns)
        lo, hi = bin_bounds(b)
        assert lo <= ns < hi, (ns, b, lo, hi)
    assert latency_bin(2**62) == N_BINS - 1
    # Bins are at most ~25% wide: percentiles are meaningful.
    for b in range(8, N_BINS):
        lo, hi = bin_bounds(b)
        assert (hi - lo) / lo <= 0.25


def test_percentiles_from_histogram_match_numpy_within_bin_width():
    rng = np.random.default_rng(1)
    samples = rng.lognormal(mean=7.0, sigma=1.0, size=20_000).astype(np.int64)
    counts = np.zeros(N_BINS, dtype=np.int64)
    for s in samples:
        counts[latency_bin(s)] += 1
    for q in (0.5, 0.9, 0.99):
        est = hist_percentile(counts, q)
        true = np.quantile(samples, q)
        assert abs(est - true) / true < 0.25, (q, est, true)
    assert np.isnan(hist_percentile(np.zeros(N_BINS, dtype=np.int64), 0.5))


def test_counters_histograms_and_state(ctl):
    ctl.register(1, "feed-binance", pid=4242, cpu_mask=0b10)
    ctl.set_state(1, ProcState.RUNNING)
    ctl.count(1, Counter.MESSAGES, 10)
    ctl.count(1, Counter.GAPS)
    for ns in (500, 600, 700):
        ctl.record_latency(1, Stage.RECV_TO_PUBLISHED, ns)
    info = ctl.proc_info(1)
    assert info["name"] == "feed-binance" and info["pid"] == 4242 and info["state"] == "running"
    assert info["counters"]["messages"] == 10 and info["counters"]["gaps"] == 1
    assert ctl.histogram(1, Stage.RECV_TO_PUBLISHED).sum() == 3
    assert ctl.active_slots() == [1]
    ctl.reset_stats(1)
    assert ctl.counters(1)["messages"] == 0
    with pytest.raises(IndexError):
        ctl.register(4, "x", 1)


def _child_engages_kill(name, proc):
    c = ControlBlock.attach(name)
    c.count(proc, Counter.REJECTS, 3)
    c.engage_kill_switch(reason=7)
    c.close()


def test_kill_switch_and_counters_cross_processes(ctl):
    assert not ctl.kill_switch
    p = mp.get_context("spawn").Process(target=_child_engages_kill, args=(ctl.segment.name, 2))
    p.start()
    p.join(60)
    assert p.exitcode == 0
    assert ctl.kill_switch and ctl.kill_reason() == 7
    assert ctl.counters(2)["rejects"] == 3
    ctl.clear_kill_switch()
    assert not ctl.kill_switch


def test_readonly_attach_reads_everything(ctl):
    ctl.register(0, "executor", pid=1)
    ro = ControlBlock.attach(ctl.segment.name, readonly=True)
    try:
        assert ro.proc_name(0) == "executor"
        with pytest.raises(ValueError):
            ro.words[0] = 1
    finally:
        ro.close()
