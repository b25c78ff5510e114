"""Fixtures for the simulator tests: every simulator started here is stopped, even on failure."""

from __future__ import annotations

import pytest

from hftpipe.sim import SimConfig, SimExchange

EPOCH_MS = 1_700_000_000_000


@pytest.fixture
def start_sim():
    """``start_sim(**SimConfig fields) -> SimExchange`` running in a background thread."""
    sims: list[SimExchange] = []

    def start(**kw) -> SimExchange:
        kw.setdefault("epoch_ms", EPOCH_MS)
        sim = SimExchange(SimConfig(**kw))
        sims.append(sim)
        return sim.run_in_thread()

    yield start
    for sim in sims:
        sim.stop()


def ws_connect(url: str, **kw):
    """``websockets.connect`` as the tests use it: no compression, unbounded incoming queue and a
    short close timeout (a client that stops reading a fast stream would otherwise wait the whole
    close timeout for the server's close frame, queued behind the unread data)."""
    import websockets

    kw.setdefault("compression", None)
    kw.setdefault("max_queue", None)
    kw.setdefault("close_timeout", 1.0)
    return websockets.connect(url, **kw)
