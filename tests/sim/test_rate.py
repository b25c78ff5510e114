"""The configured message rate is what one client really receives."""

from __future__ import annotations

import asyncio
import time

from tests.sim.conftest import ws_connect

RATE = 20_000
WINDOW_S = 2.0


def test_rate_20k(start_sim, record_property):
    sim = start_sim(venues=("binance",), symbols=["BTC/USDT", "ETH/USDT", "SOL/USDT"], rate=RATE)

    async def go() -> float:
        url = sim.urls()["binance"]["ws"] + "/stream?streams=btcusdt@depth@100ms/ethusdt@depth@100ms/solusdt@depth@100ms"
        async with ws_connect(url, max_size=None) as ws:
            t_end = time.perf_counter() + 0.3
            while time.perf_counter() < t_end:  # warm up
                await ws.recv()
            n = 0
            t0 = time.perf_counter()
            t_end = t0 + WINDOW_S
            while time.perf_counter() < t_end:
                await ws.recv()
                n += 1
            return n / (time.perf_counter() - t0)

    measured = asyncio.run(go())
    record_property("measured_msgs_per_s", round(measured))
    print(f"\nrate: configured {RATE}/s, received {measured:.0f}/s over {WINDOW_S:.0f} s "
          f"({(measured / RATE - 1) * 100:+.1f}%)")
    assert 0.8 * RATE <= measured <= 1.2 * RATE
