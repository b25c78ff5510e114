"""Scenarios: the ground truth matches what the wire really showed."""

from __future__ import annotations

import asyncio
import json
import math

import pytest

from hftpipe.sim import SimConfig, SimExchange
from hftpipe.sim.scenarios import SCENARIOS, find_cycles
from tests.sim.binance_client import BinanceClient, seqs_for

REQUIRED = {"id", "kind", "venues", "symbols", "direction", "start_ns", "end_ns", "start_seq", "end_seq",
            "size_available", "gross_edge_bps", "start_event_ms", "end_event_ms"}


async def _watch(sim, venue_symbols: dict[str, list[str]], seconds: float) -> dict[str, BinanceClient]:
    """Sync one test client per venue while paused, run the market ``seconds``, drain."""
    clients = {v: BinanceClient(sim.urls(), v, syms) for v, syms in venue_symbols.items()}
    try:
        for c in clients.values():
            await c.connect()
            await c.sync()
        await asyncio.to_thread(sim.resume)
        await asyncio.sleep(seconds)
        seqs = await asyncio.to_thread(sim.pause)
        for v, c in clients.items():
            await c.wait_for(seqs_for(seqs, v))
            assert c.resyncs == 0
    finally:
        for c in clients.values():
            await c.close()
    return clients


def _states(clients, key: str, start: int, end: int, inclusive: bool):
    venue, symbol = key.split(":", 1)
    hist = clients[venue].books[symbol.replace("/", "")].history
    return [h for h in hist if start <= h[0] and (h[0] <= end if inclusive else h[0] < end)]


def _ground_truth(path) -> list[dict]:
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    for e in lines:
        assert REQUIRED <= set(e), REQUIRED - set(e)
    return lines


def test_cross_exchange_ground_truth_is_on_the_wire(start_sim, tmp_path):
    gt = tmp_path / "gt.jsonl"
    sim = start_sim(venues=("binance", "binanceusdm"), symbols=["BTC/USDT", "ETH/USDT"], rate=5000, seed=3,
                    start_paused=True, scenario="cross_exchange", ground_truth=gt,
                    scenario_params={"at": [0.3, 0.8, 1.3, 1.8], "lifetime_ms": 250, "edge_bps": 25})
    clients = asyncio.run(_watch(sim, {"binance": ["BTC/USDT", "ETH/USDT"],
                                       "binanceusdm": ["BTC/USDT", "ETH/USDT"]}, 2.3))
    sim.stop()
    entries = _ground_truth(gt)
    assert len(entries) == 4 and not any(e["truncated"] for e in entries)
    moved_sides = set()
    for e in entries:
        assert e["kind"] == "cross_exchange" and len(e["venues"]) == 2 and e["venues"][0] != e["venues"][1]
        assert e["gross_edge_bps"] >= 25 and e["start_ns"] < e["end_ns"]
        assert e["size_available"] > 0
        buy, sell = e["legs"]
        assert (buy["side"], sell["side"]) == ("buy", "sell")
        assert e["gross_edge_bps"] == pytest.approx((sell["price"] / buy["price"] - 1) * 1e4, abs=1e-3)
        moved_sides.add(e["moved"] == f"{buy['venue']}:{buy['symbol']}")
        for leg in (buy, sell):
            key = f"{leg['venue']}:{leg['symbol']}"
            moved = key == e["moved"]
            states = _states(clients, key, e["start_seq"][key], e["end_seq"][key], inclusive=not moved)
            assert states, f"{e['id']}: no state of {key} seen during the opportunity"
            if moved:
                assert states[0][0] == e["start_seq"][key]
            for u, bid, ask, bsz, asz, _ns in states:
                if leg["side"] == "buy":
                    assert ask == leg["price"] and asz >= leg["size"] >= e["size_available"], (e["id"], u)
                else:
                    assert bid == leg["price"] and bsz >= leg["size"] >= e["size_available"], (e["id"], u)
        # the wire really showed ask(A) below bid(B) by the stated edge
        assert (sell["price"] / buy["price"] - 1) * 1e4 >= 25
        # and once over, the moved book is back near the other venue
        key = e["moved"]
        after = _states(clients, key, e["end_seq"][key], e["end_seq"][key], inclusive=True)
        assert after and (after[0][1] != buy["price"] or after[0][2] != buy["price"])
    assert moved_sides == {True, False} or len(entries) < 3


def _max_dislocations(clients) -> tuple[float, float]:
    """Replay every book state in receive order: the worst cross-venue (bid_B / ask_A - 1) and
    triangle (BTC/USDT, ETH/BTC, ETH/USDT on binance, both directions) gross edge, in bps."""
    events = []
    for v, c in clients.items():
        for native, book in c.books.items():
            for h in book.history:
                events.append((h[5], v, native, h[1], h[2]))
    events.sort()
    cur: dict[tuple[str, str], tuple[float, float]] = {}
    worst_x = worst_tri = -math.inf
    for _ns, v, native, bid, ask in events:
        cur[(v, native)] = (bid, ask)
        for (va, na), (_ba, aa) in cur.items():
            for (vb, nb), (bb, _ab) in cur.items():
                if na == nb and va != vb:
                    worst_x = max(worst_x, (bb / aa - 1) * 1e4)
        if all(("binance", n) in cur for n in ("BTCUSDT", "ETHBTC", "ETHUSDT")):
            btc, ethbtc, eth = cur[("binance", "BTCUSDT")], cur[("binance", "ETHBTC")], cur[("binance", "ETHUSDT")]
            fwd = eth[0] / (btc[1] * ethbtc[1]) - 1  # USDT -> BTC -> ETH -> USDT
            rev = ethbtc[0] * btc[0] / eth[1] - 1  # USDT -> ETH -> BTC -> USDT
            worst_tri = max(worst_tri, fwd * 1e4, rev * 1e4)
    return worst_x, worst_tri


def test_quiet_has_no_opportunity(start_sim, tmp_path):
    gt = tmp_path / "gt.jsonl"
    sim = start_sim(venues=("binance", "binanceusdm"),
                    symbols={"binance": ["BTC/USDT", "ETH/USDT", "ETH/BTC", "SOL/USDT"],
                             "binanceusdm": ["BTC/USDT", "ETH/USDT", "SOL/USDT"]},
                    rate=6000, seed=9, start_paused=True, scenario="quiet", ground_truth=gt,
                    model=SimConfig().model.__class__(vol_scale=3.0))  # livelier than real, still quiet
    clients = asyncio.run(_watch(sim, {"binance": ["BTC/USDT", "ETH/USDT", "ETH/BTC", "SOL/USDT"],
                                       "binanceusdm": ["BTC/USDT", "ETH/USDT", "SOL/USDT"]}, 1.5))
    sim.stop()
    assert gt.read_text() == ""
    worst_x, worst_tri = _max_dislocations(clients)
    print(f"\nquiet: worst cross-venue bid/ask dislocation {worst_x:.2f} bps, worst triangle {worst_tri:.2f} bps")
    # taker fees: binance 10 bps, binanceusdm 5 bps -> 15 bps a round trip; stay well inside
    assert worst_x < 7.5
    assert worst_tri < 10.0  # three binance taker legs: 30 bps


def test_triangular_ground_truth_is_on_the_wire(start_sim, tmp_path):
    gt = tmp_path / "gt.jsonl"
    syms = {"binance": ["BTC/USDT", "ETH/USDT", "ETH/BTC"], "binanceusdm": ["BTC/USDT", "ETH/USDT"]}
    sim = start_sim(venues=("binance", "binanceusdm"), symbols=syms, rate=5000, seed=4, start_paused=True,
                    scenario="triangular", ground_truth=gt,
                    scenario_params={"at": [0.3, 0.8], "lifetime_ms": 200, "edge_bps": 15})
    clients = asyncio.run(_watch(sim, {"binance": syms["binance"]}, 1.2))
    sim.stop()
    entries = _ground_truth(gt)
    assert len(entries) == 2
    for e in entries:
        assert e["kind"] == "triangular" and e["venues"] == ["binance"]
        assert sorted(e["symbols"]) == ["BTC/USDT", "ETH/BTC", "ETH/USDT"]
        assert e["moved"] == "binance:ETH/BTC"  # the leg no other venue lists
        prod = 1.0
        for leg in e["legs"]:
            prod *= 1 / leg["price"] if leg["side"] == "buy" else leg["price"]
            key = f"binance:{leg['symbol']}"
            states = _states(clients, key, e["start_seq"][key], e["end_seq"][key], inclusive=key != e["moved"])
            assert states
            for _u, bid, ask, bsz, asz, _ns in states:
                if leg["side"] == "buy":
                    assert ask == leg["price"] and asz == leg["size"]
                else:
                    assert bid == leg["price"] and bsz == leg["size"]
        assert (prod - 1) * 1e4 == pytest.approx(e["gross_edge_bps"], abs=1e-3)
        assert e["gross_edge_bps"] >= 15 and e["size_available"] > 0 and e["size_asset"] == "USDT"


def test_pairs_divergence_shows_in_mids(start_sim, tmp_path):
    gt = tmp_path / "gt.jsonl"
    sim = start_sim(venues=("binance",), symbols=["BTC/USDT", "ETH/USDT"], rate=4000, seed=8, start_paused=True,
                    scenario="pairs", ground_truth=gt,
                    scenario_params={"at": [0.5], "ramp_ms": 100, "hold_ms": 600, "revert_ms": 100,
                                     "k_sigma": 3, "min_divergence_bps": 20})
    clients = asyncio.run(_watch(sim, {"binance": ["BTC/USDT", "ETH/USDT"]}, 1.6))
    sim.stop()
    (e,) = _ground_truth(gt)
    assert e["kind"] == "pairs" and e["symbols"] == ["ETH/USDT", "BTC/USDT"]
    assert e["divergence_bps"] >= max(20, 3 * e["sigma_bps"]) - 1e-6
    books = clients["binance"].books

    def ratio_at(ns):
        mids = {}
        for n in ("ETHUSDT", "BTCUSDT"):
            st = [h for h in books[n].history if h[5] <= ns][-1]
            mids[n] = (st[1] + st[2]) / 2
        return math.log(mids["ETHUSDT"]) - math.log(mids["BTCUSDT"])

    base = ratio_at(e["diverge_start_ns"])
    sign = 1 if e["direction"].startswith("sell ETH/USDT") else -1
    hold_times = [h[5] for h in books["ETHUSDT"].history if e["start_ns"] + 50_000_000 < h[5] < e["reverting_ns"]]
    assert len(hold_times) > 50
    shifts = [(ratio_at(ns) - base) * 1e4 * sign for ns in hold_times[::10]]
    assert min(shifts) > e["divergence_bps"] - 6 and max(shifts) < e["divergence_bps"] + 6, shifts[:5]
    after = (ratio_at(books["ETHUSDT"].history[-1][5]) - base) * 1e4 * sign
    assert abs(after) < 6


def test_mixed_runs_every_kind(tmp_path):
    gt = tmp_path / "gt.jsonl"
    cfg = SimConfig(venues=("binance", "binanceusdm"),
                    symbols={"binance": ["BTC/USDT", "ETH/USDT", "ETH/BTC"], "binanceusdm": ["BTC/USDT", "ETH/USDT"]},
                    rate=3000, scenario="default", ground_truth=gt,
                    scenario_params={"cross_exchange": {"at": [0.1], "lifetime_ms": 100},
                                     "triangular": {"at": [0.1], "lifetime_ms": 100},
                                     "pairs": {"at": [0.2], "ramp_ms": 50, "hold_ms": 100, "revert_ms": 50}})
    sim = SimExchange(cfg).run_in_thread()
    try:
        deadline = asyncio.run(asyncio.sleep(1.2))
        del deadline
    finally:
        sim.stop()
    kinds = [e["kind"] for e in _ground_truth(gt) if not e["truncated"]]
    assert sorted(kinds) == ["cross_exchange", "pairs", "triangular"]
    entries = _ground_truth(gt)
    spans = sorted((e["start_ns"], e["end_ns"]) for e in entries)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False)), "injections overlap"


def test_scenario_registry_and_cycles():
    assert {"quiet", "cross_exchange", "triangular", "pairs", "mixed", "default"} <= set(SCENARIOS)
    with pytest.raises(ValueError):
        SimExchange(SimConfig(scenario="nope"))
    sim = SimExchange(SimConfig(venues=("binance",), symbols=["BTC/USDT", "ETH/USDT", "ETH/BTC", "SOL/USDT"]))
    cycles = find_cycles(sim.model.books)
    assert len(cycles) == 2  # one triangle, two directions
    for legs in cycles:
        assert legs[0][2] == "USDT" and legs[-1][3] == "USDT"
