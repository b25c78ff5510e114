"""Cost of one pre-trade risk check: the numba kernel vs a plain-Python implementation of the same rules.

A seeded stream of orders (two venues, BTC/USDT, ETH/USDT and ETH/BTC, the default risk limits,
prices within and beyond the price band, some stale books, some oversized orders, resting orders
in the self-trade table, positions in every asset) goes through

- ``check_order`` called in a loop inside an njit driver: the kernel's own cost (mean only),
- ``check_order`` called once per order from Python: what the executor pays per call,
  including numba's dispatch and argument unboxing (3 arrays, 10 scalars),
- ``RiskManager.check`` on an ORDER record: the whole Python-facing path (record fields,
  index maps, reservation),
- a plain-Python implementation of the same rules over lists and floats.

Accepted orders reserve a rate token and an open-order slot and are released right after (as
if filled), outside the timed region; the clock advances 50 ms per order so the rate limit
decides some orders, not all. Every implementation must reach the same decisions (rule, value,
limit) for every order, or the benchmark is invalid and exits non-zero. Per-call times are
``perf_counter_ns`` around one call minus the measured cost of an empty timed region.

    python benchmarks/risk_check.py [--orders N] [--quick] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

import numpy as np
from numba import njit

from hftpipe.config.schema import RiskConfig
from hftpipe.events import ORDER_DTYPE, OrderStatus, OrderType, encode_str
from hftpipe.execution.orders import client_order_id
from hftpipe.execution.risk import (
    A_DAY_START_EQUITY,
    A_KILL,
    A_PEAK_EQUITY,
    L_BUCKET_CAPACITY,
    L_MAX_DAILY_LOSS,
    L_MAX_DRAWDOWN,
    L_MAX_EXPOSURE,
    L_MAX_OPEN_ORDERS,
    L_MAX_ORDER_NOTIONAL,
    L_MAX_POSITION,
    L_ORDERS_PER_S,
    L_PRICE_BAND_BPS,
    L_SELF_TRADE_GUARD,
    L_STALE_BOOK_MS,
    L_STALE_BOOK_NS,
    R_PRICE,
    R_SIDE,
    R_SYMBOL,
    R_VENUE,
    RiskManager,
    check_order,
)

TARGET_NS = 2000.0
CONFIG = RiskConfig(max_position_size=1.0, max_exposure=10000.0, max_order_notional=1000.0, max_open_orders=20,
                    max_orders_per_s=10.0, max_daily_loss=500.0, max_drawdown=1000.0, stale_book_ms=1000.0,
                    price_band_bps=50.0, self_trade_guard=True)
MARKETS = [("binance", "BTC/USDT", 50000.0), ("okx", "BTC/USDT", 50010.0), ("binance", "ETH/USDT", 2500.0),
           ("okx", "ETH/USDT", 2501.0), ("binance", "ETH/BTC", 0.05)]
T0 = 10**12
STEP_NS = 50_000_000  # 20 orders/s over 2 venues: a venue's 10/s bucket is sometimes empty


def new_manager():
    """A manager with positions in every asset and four resting limit orders (self-trade table)."""
    rm = RiskManager(CONFIG, [(v, s) for v, s, _ in MARKETS], now_ns=T0 - 10**10)
    rm.set_mark("BTC", 50000.0)
    rm.set_mark("ETH", 2500.0)
    for asset, qty in (("BTC", 0.05), ("ETH", 0.4), ("USDT", -3500.0)):
        rm.set_position(asset, qty)
    rm.roll_day()
    for k, (venue, symbol, side, price) in enumerate([("binance", "BTC/USDT", -1, 50100.0),
                                                        ("okx", "BTC/USDT", 1, 49900.0),
                                                        ("binance", "ETH/USDT", -1, 2510.0),
                                                        ("okx", "ETH/USDT", 1, 2490.0)]):
        rec = np.zeros(1, dtype=ORDER_DTYPE)
        rec["client_order_id"] = encode_str(f"rest{k}", 36)
        rec["venue"], rec["symbol"] = encode_str(venue, 12), encode_str(symbol, 20)
        rec["side"], rec["order_type"], rec["price"], rec["size"] = side, OrderType.LIMIT, price, 0.001
        rm.on_order_state(rec)
    return rm


def make_stream(n, seed=7):
    """Order requests as columns, plus the same orders as ORDER records."""
    rng = np.random.default_rng(seed)
    m = rng.integers(0, len(MARKETS), n)
    mids = np.array([MARKETS[i][2] for i in m]) * (1.0 + rng.normal(0.0, 2e-4, n))
    side = rng.choice(np.array([1, -1]), n)
    is_market = rng.random(n) < 0.1
    band = rng.normal(0.0, 25.0, n)  # bps from mid: ~5% beyond the 50 bps band
    price = np.where(is_market, 0.0, mids * (1.0 + band * 1e-4))
    notional = rng.uniform(50.0, 1100.0, n)  # ~9% above max_order_notional
    quote_usdt = np.array([50000.0 if MARKETS[i][1].endswith("/BTC") else 1.0 for i in m])
    size = notional / (mids * quote_usdt)
    age_ns = rng.exponential(150e6, n).astype(np.int64)  # ~0.1% older than 1 s
    now = T0 + np.arange(n, dtype=np.int64) * STEP_NS
    book_ns = now - age_ns
    valid = rng.random(n) > 0.002
    orders = np.zeros(n, dtype=ORDER_DTYPE)
    orders["client_order_id"] = [encode_str(client_order_id("BENCH", i, 0), 36) for i in range(n)]
    orders["venue"] = [MARKETS[i][0].encode() for i in m]
    orders["symbol"] = [MARKETS[i][1].encode() for i in m]
    orders["side"] = side
    orders["order_type"] = np.where(is_market, OrderType.MARKET, OrderType.IOC)
    orders["price"] = price
    orders["size"] = size
    done = orders.copy()
    done["status"] = OrderStatus.FILLED
    return dict(m=m, mids=mids, side=side, is_market=is_market, price=price, size=size, book_ns=book_ns,
                now=now, valid=valid, orders=orders, done=done)


def market_ids(rm, stream):
    """Per order: the manager's market index, and the market's venue index."""
    idx = np.array([rm.market(v, s)[:2] for v, s, _ in MARKETS], dtype=np.int64)
    return idx[stream["m"], 0], idx[stream["m"], 1]


def state_arrays(rm):
    st = rm.state
    return st.fstate, st.istate, st.resting


@njit(cache=True)
def _drive(fstate, istate, resting, open_orders, market, venue, side, is_market, price, size, mid, book_ns, valid,
           now, out_rule, out_value, out_limit):
    for i in range(market.shape[0]):
        rule, value, limit = check_order(fstate, istate, resting, market[i], side[i], is_market[i], price[i],
                                         size[i], mid[i], book_ns[i], valid[i], now[i], True)
        if rule == 0:
            open_orders[venue[i]] -= 1  # filled at once: release the slot as the executor would
        out_rule[i] = rule
        out_value[i] = value
        out_limit[i] = limit


def bench_njit_loop(stream, rounds):
    best = math.inf
    out = None
    for _ in range(rounds):
        rm = new_manager()
        market, venue = market_ids(rm, stream)
        n = len(stream["m"])
        out = (np.zeros(n, np.int64), np.zeros(n), np.zeros(n))
        t0 = time.perf_counter_ns()
        _drive(*state_arrays(rm), rm.state.open_orders, market, venue, stream["side"], stream["is_market"],
               stream["price"], stream["size"], stream["mids"], stream["book_ns"], stream["valid"], stream["now"],
               *out)
        best = min(best, (time.perf_counter_ns() - t0) / n)
    return best, list(zip(out[0].tolist(), out[1].tolist(), out[2].tolist(), strict=True))


def requests(market, stream):
    """Per order, the kernel's scalar arguments as Python objects (what the executor would pass)."""
    return list(zip(market.tolist(), stream["side"].tolist(), stream["is_market"].tolist(),
                    stream["price"].tolist(), stream["size"].tolist(), stream["mids"].tolist(),
                    stream["book_ns"].tolist(), stream["valid"].tolist(), stream["now"].tolist(), strict=True))


def bench_kernel_calls(stream, overhead):
    rm = new_manager()
    args = state_arrays(rm)
    open_orders = rm.state.open_orders
    market, venue = market_ids(rm, stream)
    venues = venue.tolist()
    reqs = requests(market, stream)
    pc = time.perf_counter_ns
    times = np.empty(len(reqs), dtype=np.int64)
    decisions = []
    for i, req in enumerate(reqs):
        t0 = pc()
        d = check_order(*args, *req, True)
        times[i] = pc() - t0 - overhead
        if d[0] == 0:
            open_orders[venues[i]] -= 1
        decisions.append(d)
    return times, decisions


def bench_manager(stream, overhead):
    rm = new_manager()
    orders, done = stream["orders"], stream["done"]
    mids, book_ns, valid, now = (stream[k].tolist() for k in ("mids", "book_ns", "valid", "now"))
    pc = time.perf_counter_ns
    times = np.empty(len(orders), dtype=np.int64)
    decisions = []
    check = rm.check
    records = [orders[i:i + 1] for i in range(len(orders))]  # 1-element arrays, as new_order makes them
    for i, rec in enumerate(records):
        t0 = pc()
        d = check(rec, mids[i], book_ns[i], valid[i], now[i])
        times[i] = pc() - t0 - overhead
        if d.accepted:
            rm.on_order_state(done[i:i + 1])
        decisions.append((int(d.rule), d.value, d.limit))
    return times, decisions


class PyRisk:
    """The same rules, written the usual way: Python lists, floats and a loop per call."""

    def __init__(self, rm):
        st = rm.state
        lim = st.limits
        self.max_position = lim[L_MAX_POSITION].item()
        self.max_exposure = lim[L_MAX_EXPOSURE].item()
        self.max_order_notional = lim[L_MAX_ORDER_NOTIONAL].item()
        self.max_open_orders = lim[L_MAX_OPEN_ORDERS].item()
        self.orders_per_s = lim[L_ORDERS_PER_S].item()
        self.capacity = lim[L_BUCKET_CAPACITY].item()
        self.max_daily_loss = lim[L_MAX_DAILY_LOSS].item()
        self.max_drawdown = lim[L_MAX_DRAWDOWN].item()
        self.stale_ns = lim[L_STALE_BOOK_NS].item()
        self.stale_ms = lim[L_STALE_BOOK_MS].item()
        self.band_bps = lim[L_PRICE_BAND_BPS].item()
        self.self_trade = bool(lim[L_SELF_TRADE_GUARD])
        self.killed = bool(st.account[A_KILL])
        self.day_start = st.account[A_DAY_START_EQUITY].item()
        self.peak = st.account[A_PEAK_EQUITY].item()
        self.positions = st.positions.tolist()
        self.marks = st.marks.tolist()
        self.cash = [c != 0.0 for c in st.cash.tolist()]
        self.open_orders = st.open_orders.tolist()
        self.tokens = st.bucket_tokens.tolist()
        self.bucket_ns = st.bucket_ns.tolist()
        self.resting = [(int(r[R_VENUE]), int(r[R_SYMBOL]), int(r[R_SIDE]), r[R_PRICE].item())
                        for r in st.resting if r[R_VENUE] >= 0]
        self.markets = [tuple(r) for r in st.markets.tolist()]

    def check(self, market, side, is_market, price, size, mid, book_ns, valid, now):
        if self.killed:
            return 11, 1.0, 0.0
        if side != 1 and side != -1:
            return 12, float(side), 0.0
        if not (0.0 < size < math.inf):
            return 12, size, 0.0
        if not is_market and not (0.0 < price < math.inf):
            return 12, price, 0.0
        venue, symbol, base, quote = self.markets[market]
        book_ok = valid and 0.0 < mid < math.inf
        age_ns = now - book_ns
        fresh = book_ok and age_ns <= self.stale_ns
        quote_mark = self.marks[quote]
        if fresh and 0.0 < quote_mark < math.inf:
            self.marks[base] = mid * quote_mark
        equity = 0.0
        for p, mk in zip(self.positions, self.marks, strict=True):
            if p != 0.0:
                equity += p * mk
        if equity > self.peak:
            self.peak = equity
        loss = self.day_start - equity
        if not loss <= self.max_daily_loss:
            return 6, loss, self.max_daily_loss
        drawdown = self.peak - equity
        if not drawdown <= self.max_drawdown:
            return 7, drawdown, self.max_drawdown
        if not fresh:
            return 8, (age_ns / 1e6 if book_ok else math.inf), self.stale_ms
        if not is_market:
            band = abs(price - mid) / mid * 1e4
            if not band <= self.band_bps:
                return 9, band, self.band_bps
        px = mid if is_market else price
        notional = size * px * quote_mark
        if not notional <= self.max_order_notional:
            return 3, notional, self.max_order_notional
        base_flow = side * size
        quote_flow = -base_flow * px
        for asset, flow in ((base, base_flow), (quote, quote_flow)):
            if not self.cash[asset]:
                before = abs(self.positions[asset])
                after = abs(self.positions[asset] + flow)
                if not (after <= self.max_position or after <= before):
                    return 1, after, self.max_position
        exp_before = exp_after = 0.0
        for i, p in enumerate(self.positions):
            if self.cash[i]:
                continue
            q = p + (base_flow if i == base else 0.0) + (quote_flow if i == quote else 0.0)
            if p != 0.0:
                exp_before += abs(p) * self.marks[i]
            if q != 0.0:
                exp_after += abs(q) * self.marks[i]
        if not (exp_after <= self.max_exposure or exp_after <= exp_before):
            return 2, exp_after, self.max_exposure
        total = sum(self.open_orders)
        if not total + 1 <= self.max_open_orders:
            return 4, float(total + 1), self.max_open_orders
        if self.self_trade:
            for rv, rs, rside, rp in self.resting:
                if rv == venue and rs == symbol and rside == -side:
                    if is_market or (side == 1 and price >= rp) or (side == -1 and price <= rp):
                        return 10, rp, px
        tokens = self.tokens[venue]
        elapsed = now - self.bucket_ns[venue]
        if elapsed > 0:
            tokens = min(self.capacity, tokens + elapsed * self.orders_per_s * 1e-9)
        if tokens < 1.0:
            return 5, self.capacity - tokens + 1.0, self.capacity
        self.tokens[venue] = tokens - 1.0
        if now > self.bucket_ns[venue]:
            self.bucket_ns[venue] = now
        self.open_orders[venue] += 1
        return 0, 0.0, 0.0


def bench_python(stream, overhead):
    rm = new_manager()
    py = PyRisk(rm)
    market, venue = market_ids(rm, stream)
    venues = venue.tolist()
    reqs = requests(market, stream)
    pc = time.perf_counter_ns
    times = np.empty(len(reqs), dtype=np.int64)
    decisions = []
    check = py.check
    for i, req in enumerate(reqs):
        t0 = pc()
        d = check(*req)
        times[i] = pc() - t0 - overhead
        if d[0] == 0:
            py.open_orders[venues[i]] -= 1
        decisions.append(d)
    return times, decisions


def timer_overhead_ns(n=20000):
    pc = time.perf_counter_ns
    samples = np.empty(n, dtype=np.int64)
    for i in range(n):
        t0 = pc()
        samples[i] = pc() - t0
    return int(np.median(samples))


def same(a, b):
    """Decision lists equal, NaN == NaN."""
    for (r1, v1, l1), (r2, v2, l2) in zip(a, b, strict=True):
        if r1 != r2 or l1 != l2 or not (v1 == v2 or (math.isnan(v1) and math.isnan(v2))):
            return False
    return True


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--orders", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=5, help="rounds of the njit loop (best is kept)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 20,000 orders, 2 rounds")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        args.orders, args.rounds = 20_000, 2
    stream = make_stream(args.orders)
    warm = make_stream(200, seed=1)
    bench_njit_loop(warm, 1)  # compile / load from cache
    bench_kernel_calls(warm, 0)
    bench_manager(warm, 0)
    overhead = timer_overhead_ns()

    loop_mean, loop_dec = bench_njit_loop(stream, args.rounds)
    call_t, call_dec = bench_kernel_calls(stream, overhead)
    mgr_t, mgr_dec = bench_manager(stream, overhead)
    py_t, py_dec = bench_python(stream, overhead)
    for name, dec in (("kernel from Python", call_dec), ("RiskManager.check", mgr_dec), ("plain Python", py_dec)):
        if not same(loop_dec, dec):
            print(f"decisions differ between the njit loop and {name}: the benchmark is invalid", file=sys.stderr)
            return 1
    rules = np.array([d[0] for d in loop_dec])
    accepted = float((rules == 0).mean())

    def stats(t):
        return float(np.percentile(t, 50)), float(np.percentile(t, 99)), float(t.mean())

    res = {"orders": args.orders, "accepted_fraction": accepted, "timer_overhead_ns": overhead,
           "target_ns": TARGET_NS, "njit_loop_mean_ns": loop_mean}
    for key, t in (("kernel_call", call_t), ("manager_check", mgr_t), ("python", py_t)):
        p50, p99, mean = stats(t)
        res[f"{key}_p50_ns"], res[f"{key}_p99_ns"], res[f"{key}_mean_ns"] = p50, p99, mean
    res["ratio_python_vs_kernel_call_p50"] = res["python_p50_ns"] / max(res["kernel_call_p50_ns"], 1.0)
    res["ratio_python_vs_njit_loop_mean"] = res["python_mean_ns"] / max(loop_mean, 1.0)
    res["target_met_kernel_call_p50"] = res["kernel_call_p50_ns"] <= TARGET_NS
    res["target_met_manager_check_p50"] = res["manager_check_p50_ns"] <= TARGET_NS

    breakdown = {int(r): int(c) for r, c in zip(*np.unique(rules, return_counts=True), strict=True)}
    print(f"Risk check cost per order ({args.orders} orders, {accepted:.0%} accepted, "
          f"decisions equal across all four; timer overhead {overhead} ns subtracted)")
    print(f"rule mix: {breakdown}  (0 = accepted)")
    print(f"{'implementation':<34}{'p50':>9}{'p99':>9}{'mean':>9}")
    print(f"{'check_order, loop inside njit':<34}{'':>9}{'':>9}{loop_mean:>7.0f}ns")
    for label, key in (("check_order, one call from Python", "kernel_call"),
                       ("RiskManager.check(ORDER record)", "manager_check"), ("plain Python rules", "python")):
        print(f"{label:<34}{res[key + '_p50_ns']:>7.0f}ns{res[key + '_p99_ns']:>7.0f}ns{res[key + '_mean_ns']:>7.0f}ns")
    print(f"\nplain Python / check_order call (p50): {res['ratio_python_vs_kernel_call_p50']:.1f}x;"
          f"  plain Python / njit loop (mean): {res['ratio_python_vs_njit_loop_mean']:.1f}x")
    verdict = "met" if res["target_met_manager_check_p50"] else "NOT met"
    print(f"target: risk check <= {TARGET_NS:.0f} ns: {verdict} (RiskManager.check p50 "
          f"{res['manager_check_p50_ns']:.0f} ns, check_order call p50 {res['kernel_call_p50_ns']:.0f} ns)")
    if args.json:
        print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
