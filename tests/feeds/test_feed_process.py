"""A real feed process against the simulator over real sockets: sync, faults, resync, equality."""

import multiprocessing as mp
import os
import signal
import time

import numpy as np
import pytest

from hftpipe.feeds.process import FeedSpec, feed_process_main
from hftpipe.shm.book_ring import BookRing
from hftpipe.shm.control import ControlBlock
from hftpipe.sim.server import SimConfig, SimExchange
from tests.shm.conftest import unique_name

SYMBOLS = ("BTC/USDT", "ETH/USDT")


class Pipeline:
    """Simulator + rings + control block + one feed process; torn down whatever happens."""

    def __init__(self, venue, faults=(), rate=1500):
        self.venue = venue
        self.sim = SimExchange(SimConfig(venues=(venue,), symbols=SYMBOLS, seed=7, rate=rate,
                                         faults=list(faults))).run_in_thread()
        self.ctl = ControlBlock.create(unique_name("ctl"), max_procs=2)
        self.rings = {s: BookRing.create(unique_name("book"), depth=20, n_slots=64) for s in SYMBOLS}
        urls = self.sim.urls()[venue]
        self.spec = FeedSpec(venue=venue, symbols=SYMBOLS,
                             ring_names={s: r.segment.name for s, r in self.rings.items()},
                             control_name=self.ctl.segment.name, proc_slot=0, ws_url=urls["ws"],
                             rest_url=urls["rest"], backoff_min_s=0.05, backoff_max_s=0.5, stale_after_s=3)
        self.proc = mp.get_context("spawn").Process(target=feed_process_main, args=(self.spec,), daemon=True)
        self.proc.start()

    def counters(self):
        return self.ctl.counters(0)

    def wait_synced_equal(self, timeout=30.0):
        """Pause the market, let the feed drain, then compare every ring with the model's book."""
        deadline = time.monotonic() + timeout
        last_err = None
        while time.monotonic() < deadline:
            self.sim.pause()
            time.sleep(0.3)
            try:
                for s, ring in self.rings.items():
                    snap = ring.snapshot_buffer()
                    assert ring.read_latest(snap) > 0, f"{s}: nothing published"
                    assert snap.valid, f"{s}: book not valid"
                    truth = self.sim.book(self.venue, s, 20)
                    assert snap.venue_seq == truth["seq"], f"{s}: seq {snap.venue_seq} != {truth['seq']}"
                    np.testing.assert_allclose(snap.bids[:snap.n_bids], truth["bids"], rtol=1e-12)
                    np.testing.assert_allclose(snap.asks[:snap.n_asks], truth["asks"], rtol=1e-12)
                    del snap
                return
            except AssertionError as exc:
                last_err = exc
                self.sim.resume()
                time.sleep(0.5)
        raise AssertionError(f"books never matched the simulator: {last_err}")

    def close(self):
        try:
            if self.proc.is_alive():
                os.kill(self.proc.pid, signal.SIGTERM)
                self.proc.join(10)
            if self.proc.is_alive():
                self.proc.kill()
                self.proc.join(5)
        finally:
            self.sim.stop()
            for r in self.rings.values():
                r.close()
                r.unlink()
            self.ctl.close()
            self.ctl.unlink()


@pytest.fixture
def pipeline():
    made = []

    def make(*args, **kwargs):
        p = Pipeline(*args, **kwargs)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


@pytest.mark.parametrize("venue", ["binance", "binanceusdm"])
def test_feed_syncs_and_tracks_the_simulator(pipeline, venue):
    p = pipeline(venue)
    time.sleep(2.0)
    p.wait_synced_equal()
    c = p.counters()
    assert c["messages"] > 500 and c["publishes"] > 500
    assert c["gaps"] == 0 and c["resyncs"] == 0 and c["parse_errors"] == 0
    assert p.proc.exitcode is None
    os.kill(p.proc.pid, signal.SIGTERM)
    p.proc.join(10)
    assert p.proc.exitcode == 0


@pytest.mark.parametrize("venue", ["binance", "binanceusdm"])
def test_sequence_gap_is_detected_and_resynced(pipeline, venue):
    p = pipeline(venue, faults=[{"kind": "gap", "venue": venue, "at": [1.0], "count": 1}])
    time.sleep(3.0)
    p.wait_synced_equal()
    c = p.counters()
    assert c["gaps"] >= 1 and c["resyncs"] >= 1


def test_disconnect_reconnects_and_resyncs(pipeline):
    p = pipeline("binance", faults=[{"kind": "disconnect", "venue": "binance", "at": [1.0]}])
    time.sleep(3.0)
    p.wait_synced_equal()
    assert p.counters()["reconnects"] >= 1


def test_malformed_frame_is_a_counted_skip(pipeline):
    p = pipeline("binance", faults=[{"kind": "malformed", "venue": "binance", "at": [1.0], "count": 3}])
    time.sleep(2.5)
    p.wait_synced_equal()
    c = p.counters()
    assert c["parse_errors"] >= 1 and c["gaps"] == 0
    assert p.ctl.histogram(0, 3).sum() > 0  # recv -> published latency recorded
