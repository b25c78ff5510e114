"""Fixtures for shared-memory tests: unique names and guaranteed cleanup of segments and children."""

import os
import secrets

import pytest

from hftpipe.shm.book_ring import BookRing


def unique_name(kind):
    """A segment name no other test or run can collide with."""
    return f"hft_test{os.getpid()}_{secrets.token_hex(3)}_{kind}"


class ProcGuard:
    """Tracks what a test creates and tears it all down, even when the test fails."""

    def __init__(self):
        self.procs = []
        self.rings = []

    def ring(self, name, depth, n_slots):
        ring = BookRing.create(name, depth, n_slots)
        self.rings.append(ring)
        return ring

    def start(self, proc):
        proc.daemon = True
        proc.start()
        self.procs.append(proc)
        return proc

    def cleanup(self):
        for p in self.procs:
            if p.is_alive():
                p.kill()
            p.join(timeout=10)
        for r in self.rings:
            try:
                r.close()
            finally:
                r.unlink()


@pytest.fixture
def proc_guard():
    guard = ProcGuard()
    try:
        yield guard
    finally:
        guard.cleanup()
