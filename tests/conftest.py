"""Suite-wide guards: no test may leave a shared-memory segment or a child process behind."""

import os
import re

import psutil
import pytest

from hftpipe.shm.segment import SHM_DIR


def _hft_segments():
    """Segments this test process named (its pid is in every test/replay segment name).

    Segments of other processes, such as another test run on the same machine, are not ours to
    judge; segments a test's child process creates are that child's to clean up.
    """
    mine = re.compile(rf"^hft_[a-z]+{os.getpid()}_")
    try:
        return {n for n in os.listdir(SHM_DIR) if mine.match(n)}
    except FileNotFoundError:
        return set()


@pytest.fixture(autouse=True)
def no_leaks():
    """Fail the test that leaks a segment or a child; clean both up either way."""
    before = _hft_segments()
    yield
    leaked = _hft_segments() - before
    children = psutil.Process().children(recursive=True)
    # multiprocessing's resource tracker / forkserver helpers are shared infrastructure, not leaks.
    stray = [c for c in children if _is_stray(c)]
    for name in leaked:
        try:
            os.unlink(SHM_DIR / name)
        except FileNotFoundError:
            pass
    for c in stray:
        try:
            c.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(stray, timeout=5)
    assert not leaked, f"test left shared-memory segments: {sorted(leaked)}"
    assert not stray, f"test left child processes: {[c.pid for c in stray]}"


def _is_stray(proc):
    try:
        cmd = " ".join(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    return "resource_tracker" not in cmd and "forkserver" not in cmd
