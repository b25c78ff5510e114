"""Segment ownership: attachers never destroy segments, views block close, crashed runs are swept."""

import multiprocessing as mp
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from hftpipe.shm.segment import (
    SHM_DIR,
    RunActiveError,
    RunLock,
    Segment,
    SegmentError,
    data_dir_tag,
    list_segments,
    segment_name,
)

from .conftest import unique_name


def test_names_are_sanitised_and_scoped_by_data_dir(tmp_path):
    tag = data_dir_tag(tmp_path)
    assert tag == data_dir_tag(str(tmp_path) + "/.")
    assert tag != data_dir_tag(tmp_path / "other")
    assert segment_name(tag, "abc123", "book", "binance", "BTC/USDT") == f"hft_{tag}_abc123_book_binance_BTC-USDT"


def test_attacher_exit_does_not_unlink_or_warn():
    seg = Segment.create(unique_name("attach"), 8192)
    try:
        code = (
            "from hftpipe.shm.segment import Segment;"
            f"s = Segment.attach({seg.name!r}); a = s.array('u1'); a[0] = 7; del a; s.close()"
        )
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        assert "leaked" not in res.stderr and "resource_tracker" not in res.stderr
        assert (SHM_DIR / seg.name).exists()
        view = seg.array(np.uint8)
        assert view[0] == 7
        del view
    finally:
        seg.close()
        seg.unlink()


def test_close_with_live_view_is_an_error_not_a_crash():
    seg = Segment.create(unique_name("views"), 4096)
    view = seg.array(np.int64)
    with pytest.raises(SegmentError, match="views still alive"):
        seg.close()
    del view
    seg.close()
    assert seg.closed
    seg.unlink()


def test_only_owner_unlinks():
    seg = Segment.create(unique_name("own"), 4096)
    other = Segment.attach(seg.name)
    try:
        with pytest.raises(SegmentError, match="only its owner"):
            other.unlink()
    finally:
        other.close()
        seg.close()
        seg.unlink()


def test_create_existing_name_fails():
    seg = Segment.create(unique_name("dup"), 4096)
    try:
        with pytest.raises(SegmentError, match="already exists"):
            Segment.create(seg.name, 4096)
    finally:
        seg.close()
        seg.unlink()


def _crashing_run(data_dir, ready):
    lock = RunLock(data_dir).acquire()
    for kind in ("ctrl", "book"):
        Segment.create(lock.segment_name(kind, "x"), 4096)
    ready.set()
    signal.pause()


def test_new_run_sweeps_segments_of_a_killed_run(tmp_path):
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    p = ctx.Process(target=_crashing_run, args=(tmp_path, ready), daemon=True)
    p.start()
    try:
        assert ready.wait(60)
        tag = data_dir_tag(tmp_path)
        assert len(list_segments(tag)) == 2
        with pytest.raises(RunActiveError, match="in use"):
            RunLock(tmp_path).acquire()
        os.kill(p.pid, signal.SIGKILL)
        p.join(10)
        assert len(list_segments(tag)) == 2  # a SIGKILLed run cleans nothing
        with RunLock(tmp_path) as lock:
            assert len(lock.swept) == 2
            assert list_segments(tag) == []
            mine = Segment.create(lock.segment_name("ctrl"), 4096)
            mine.close()
        assert list_segments(tag) == []  # release removes this run's segments too
    finally:
        if p.is_alive():
            p.kill()
        p.join(10)
