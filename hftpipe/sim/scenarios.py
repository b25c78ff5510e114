"""Named market scenarios: the regime, and the opportunities injected into it, with ground truth.

``quiet``
    No opportunity at all: the model keeps every venue's mid within a few bps of the fair price
    (basis <= 1 bp, noise clipped at 2 bps), so no venue's ask is below another's bid by
    anything near a taker fee, and triangles stay consistent to a few bps.
``cross_exchange``
    At scheduled times one venue's best ask is put below another venue's best bid for the same
    symbol by ``edge_bps`` (gross), with ``size_usd`` of size on both touches, for
    ``lifetime_ms``. Both touches are frozen meanwhile (deeper levels keep changing).
``triangular``
    A three-market cycle on one venue (e.g. BTC/USDT, ETH/BTC, ETH/USDT) is mispriced by
    ``edge_bps`` for ``lifetime_ms`` by moving one leg (the one listed on the fewest venues);
    the three touches are frozen meanwhile.
``pairs``
    Two correlated symbols (same quote) diverge: the base asset of the first is shifted by
    ``k_sigma`` times the trailing std of their log price ratio (at least
    ``min_divergence_bps``), held for ``hold_ms``, then reverted. The shift applies to every
    symbol with that asset on every venue, so it creates no cross-venue or triangle dislocation.
``mixed`` (alias ``default``)
    All of the above that the venues and symbols allow, one opportunity at a time.

Every injected opportunity is appended to the ground-truth file as one JSON line when it ends
(or, marked ``"truncated": true``, when the simulator stops first)::

    {"id": "xex-0001", "kind": "cross_exchange", "venues": [...], "symbols": [...],
     "direction": "buy binance sell binanceusdm", "legs": [{"venue", "symbol", "side",
     "price", "size"}], "start_ns", "end_ns", "start_event_ms", "end_event_ms",
     "start_seq": {"binance:BTC/USDT": u, ...}, "end_seq": {...},
     "size_available": 0.83, "size_asset": "BTC", "gross_edge_bps": 20.4, ...}

``start_seq`` holds each involved book's last sequence id once the opportunity is on the wire;
``end_seq`` the ids once it is gone: the dislocation holds for every book state between them.
Times: ``*_ns`` wall clock when the frames were handed to the sockets, ``*_event_ms`` the
venue event time (``E``) of those frames.

Parameters (``SimConfig.scenario_params``; per kind under ``mixed``, e.g.
``{"cross_exchange": {"edge_bps": 30}}``): ``at`` (explicit start times, sim s), ``start_s``,
``every_s`` (mean spacing), ``edge_bps``, ``lifetime_ms``, ``size_usd``, ``symbols``,
``venues``/``venue``; pairs: ``pair``, ``k_sigma``, ``min_divergence_bps``, ``ramp_ms``,
``hold_ms``, ``revert_ms``, ``sigma_window_s``.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np

from hftpipe.sim.model import FIXED_USD, Book, MarketModel

INF = float("inf")


class ScenarioContext(Protocol):
    """What a scenario may use of the server."""

    model: MarketModel

    def emit(self, book: Book, bids: dict[int, int], asks: dict[int, int]) -> int: ...
    def seq_last(self, book: Book) -> int: ...
    def record(self, entry: dict) -> None: ...
    def wall_ns(self) -> int: ...
    def event_ms(self, t: float) -> int: ...
    def fee_bps(self, venue: str) -> float: ...


class Scenario:
    """Base: a scenario is stepped at its ``next_t`` (sim seconds) by the server."""

    name = "quiet"
    next_t: float = INF

    def __init__(self, params: Mapping[str, Any] | None = None, rng: np.random.Generator | None = None,
                 lock: _Lock | None = None):
        self.params = dict(params or {})
        self.rng = rng or np.random.default_rng(0)
        self.lock = lock or _Lock()
        self.ctx: ScenarioContext | None = None

    def bind(self, ctx: ScenarioContext) -> None:
        self.ctx = ctx

    def step(self, t: float) -> None:
        pass

    def finish(self, t: float) -> None:
        """The simulator stops: record what is still running as truncated."""


class Quiet(Scenario):
    name = "quiet"


class _Lock:
    """One injection at a time (shared by the parts of ``mixed``)."""

    def __init__(self):
        self.owner: object | None = None


def _key(b: Book) -> str:
    return f"{b.venue}:{b.symbol}"


class _Injecting(Scenario):
    """Schedule + start/end of one injected opportunity at a time."""

    prefix = "opp"
    defaults: dict[str, Any] = {}

    def __init__(self, params=None, rng=None, lock=None):
        super().__init__(params, rng, lock)
        p = dict(self.defaults)
        p.update(self.params)
        self.p = p
        self._at = sorted(float(x) for x in p.get("at") or [])
        self._explicit = bool(self._at)
        self._next_start = self._at.pop(0) if self._at else float(p["start_s"])
        self._active: dict | None = None
        self._end_t = INF
        self._n = 0
        self.next_t = self._next_start

    # subclasses
    def start(self, t: float) -> dict | None:
        raise NotImplementedError

    def end(self, t: float, entry: dict) -> None:
        raise NotImplementedError

    def _schedule_next(self, t: float) -> None:
        if self._explicit:
            self._next_start = self._at.pop(0) if self._at else INF
            if self._next_start < t:
                self._next_start = t
        else:
            every = float(self.p["every_s"])
            self._next_start = t + every * float(self.rng.uniform(0.5, 1.5))

    def tick_active(self, t: float, entry: dict) -> None:
        """Called at each step while an injection is active (set ``entry["_next_step"]``)."""

    def step(self, t: float) -> None:
        if self._active is not None:
            if t >= self._end_t:
                entry = self._active
                self.end(t, entry)
                self._finish_entry(entry)
                self._active = None
                self.lock.owner = None
                self._schedule_next(t)
            else:
                self.tick_active(t, self._active)
        elif t >= self._next_start:
            if self.lock.owner is not None:
                self._next_start = t + 0.1
            else:
                entry = self.start(t)
                if entry is None:
                    self._schedule_next(t)
                else:
                    self._n += 1
                    entry = {"id": f"{self.prefix}-{self._n:04d}", "kind": self.name, **entry}
                    self._active = entry
                    self.lock.owner = self
                    self.tick_active(t, entry)
        if self._active is not None:
            self.next_t = min(self._end_t, self._active.get("_next_step", INF))
        else:
            self.next_t = self._next_start

    def _finish_entry(self, entry: dict, truncated: bool = False) -> None:
        out = {k: v for k, v in entry.items() if not k.startswith("_")}
        out["truncated"] = truncated
        self.ctx.record(out)

    def finish(self, t: float) -> None:
        if self._active is not None:
            entry = self._active
            entry.setdefault("end_ns", self.ctx.wall_ns())
            entry.setdefault("end_event_ms", self.ctx.event_ms(t))
            entry.setdefault("end_seq", {_key(b): self.ctx.seq_last(b) for b in entry["_books"]})
            self._finish_entry(entry, truncated=True)
            self._active = None

    # helpers
    def _lots(self, b: Book, usd: float) -> int:
        base_usd = math.exp(self.ctx.model._asset_lp(b.spec.base)) if b.spec.base not in FIXED_USD \
            else FIXED_USD[b.spec.base]
        return max(1, math.ceil(usd / base_usd / b.lot))

    def _seqs(self, books) -> dict[str, int]:
        return {_key(b): self.ctx.seq_last(b) for b in books}

    def _stamp_start(self, t: float, books) -> dict:
        return {"start_ns": self.ctx.wall_ns(), "start_event_ms": self.ctx.event_ms(t),
                "start_seq": self._seqs(books)}

    def _stamp_end(self, t: float, entry: dict) -> None:
        entry["end_ns"] = self.ctx.wall_ns()
        entry["end_event_ms"] = self.ctx.event_ms(t)
        entry["end_seq"] = self._seqs(entry["_books"])


def _touch_spread(b: Book) -> int:
    return max(1, b.ask_px[0] - b.bid_px[-1])


def _free(*books: Book) -> bool:
    return not any(b.pinned for b in books)


class CrossExchange(_Injecting):
    name = "cross_exchange"
    prefix = "xex"
    defaults = {"start_s": 1.0, "every_s": 3.0, "edge_bps": 20.0, "lifetime_ms": 500.0, "size_usd": 50_000.0,
                "symbols": None, "venues": None}

    def _candidates(self) -> list[tuple[Book, Book]]:
        model = self.ctx.model
        venues = self.p.get("venues")
        symbols = self.p.get("symbols")
        by_symbol: dict[str, list[Book]] = {}
        for b in model.books:
            if venues and b.venue not in venues:
                continue
            if symbols and b.symbol not in symbols:
                continue
            by_symbol.setdefault(b.symbol, []).append(b)
        pairs = []
        for books in by_symbol.values():
            for a, c in itertools.permutations(books, 2):
                pairs.append((a, c))
        return pairs

    def start(self, t: float) -> dict | None:
        cands = [(a, b) for a, b in self._candidates() if _free(a, b)]
        if not cands:
            return None
        buy, sell = cands[int(self.rng.integers(len(cands)))]  # buy at buy's ask, sell at sell's bid
        edge = float(self.p["edge_bps"]) * 1e-4
        move_buy = bool(self.rng.random() < 0.5)
        size_usd = float(self.p["size_usd"])
        lots_buy, lots_sell = self._lots(buy, size_usd), self._lots(sell, size_usd)
        if move_buy:
            bid_s = sell.price(sell.bid_px[-1])
            ask = math.floor(bid_s / (1 + edge) / buy.tick + 1e-9)
            while ask > 1 and bid_s / buy.price(ask) - 1 < edge:
                ask -= 1
            spread = _touch_spread(buy)
            if ask - spread < 1:
                return None
            sell.pinned = True
            ch = self.ctx.model.ensure_touch_size(sell, bid_size=lots_sell)
            if ch[0] or ch[1]:
                self.ctx.emit(sell, *ch)
            ch = self.ctx.model.place_touch(buy, ask - spread, ask, ask_size=max(lots_buy, buy.ask_sz.get(ask, 0)))
            buy.pinned = True
            self.ctx.emit(buy, *ch)
            moved = buy
        else:
            ask_b = buy.price(buy.ask_px[0])
            bid = math.ceil(ask_b * (1 + edge) / sell.tick - 1e-9)
            while sell.price(bid) / ask_b - 1 < edge:
                bid += 1
            buy.pinned = True
            ch = self.ctx.model.ensure_touch_size(buy, ask_size=lots_buy)
            if ch[0] or ch[1]:
                self.ctx.emit(buy, *ch)
            ch = self.ctx.model.place_touch(sell, bid, bid + _touch_spread(sell),
                                            bid_size=max(lots_sell, sell.bid_sz.get(bid, 0)))
            sell.pinned = True
            self.ctx.emit(sell, *ch)
            moved = sell
        ask_p, bid_p = buy.price(buy.ask_px[0]), sell.price(sell.bid_px[-1])
        size_buy = buy.size(buy.ask_sz[buy.ask_px[0]])
        size_sell = sell.size(sell.bid_sz[sell.bid_px[-1]])
        fees = self.ctx.fee_bps(buy.venue) + self.ctx.fee_bps(sell.venue)
        gross = (bid_p / ask_p - 1) * 1e4
        self._end_t = t + float(self.p["lifetime_ms"]) / 1000.0
        return {
            "venues": [buy.venue, sell.venue], "symbols": [buy.symbol],
            "direction": f"buy {buy.venue} sell {sell.venue}",
            "legs": [{"venue": buy.venue, "symbol": buy.symbol, "side": "buy", "price": ask_p, "size": size_buy},
                     {"venue": sell.venue, "symbol": sell.symbol, "side": "sell", "price": bid_p, "size": size_sell}],
            "moved": _key(moved),
            **self._stamp_start(t, (buy, sell)),
            "size_available": min(size_buy, size_sell), "size_asset": buy.spec.base,
            "gross_edge_bps": round(gross, 4), "requested_edge_bps": float(self.p["edge_bps"]),
            "taker_fees_bps": fees, "net_edge_bps": round(gross - fees, 4),
            "lifetime_ms": float(self.p["lifetime_ms"]),
            "_books": (buy, sell), "_moved": moved,
        }

    def end(self, t: float, entry: dict) -> None:
        for b in entry["_books"]:
            b.pinned = False
        moved = entry["_moved"]
        self.ctx.emit(moved, *self.ctx.model.realign(moved))
        self._stamp_end(t, entry)


def find_cycles(books: list[Book]) -> list[list[tuple[Book, str, str, str]]]:
    """Three-market cycles among one venue's books, both directions.

    A cycle is a list of legs ``(book, side, from_asset, to_asset)``: ``buy`` converts quote to
    base at the ask, ``sell`` base to quote at the bid. It starts from the asset that is a
    quote the most (USDT in BTC/USDT, ETH/BTC, ETH/USDT)."""
    out = []
    for trio in itertools.combinations(books, 3):
        assets: dict[str, int] = {}
        quotes: dict[str, int] = {}
        for b in trio:
            for a in (b.spec.base, b.spec.quote):
                assets[a] = assets.get(a, 0) + 1
            quotes[b.spec.quote] = quotes.get(b.spec.quote, 0) + 1
        if len(assets) != 3 or any(n != 2 for n in assets.values()):
            continue
        start = max(sorted(assets), key=lambda a: quotes.get(a, 0))
        for first in [b for b in trio if start in (b.spec.base, b.spec.quote)]:
            legs = []
            cur, used = start, set()
            b = first
            while True:
                if b.spec.quote == cur:
                    legs.append((b, "buy", cur, b.spec.base))
                    cur = b.spec.base
                else:
                    legs.append((b, "sell", cur, b.spec.quote))
                    cur = b.spec.quote
                used.add(id(b))
                nxt = [x for x in trio if id(x) not in used and cur in (x.spec.base, x.spec.quote)]
                if not nxt:
                    break
                b = nxt[0]
            if len(legs) == 3 and cur == start:
                out.append(legs)
    return out


def _factor(b: Book, side: str) -> float:
    return 1.0 / b.price(b.ask_px[0]) if side == "buy" else b.price(b.bid_px[-1])


class Triangular(_Injecting):
    name = "triangular"
    prefix = "tri"
    defaults = {"start_s": 1.5, "every_s": 3.0, "edge_bps": 15.0, "lifetime_ms": 300.0, "size_usd": 20_000.0,
                "venue": None}

    def _cycles(self):
        model = self.ctx.model
        venues = sorted({b.venue for b in model.books})
        if self.p.get("venue"):
            venues = [v for v in venues if v == self.p["venue"]]
        cycles = []
        for v in venues:
            cycles.extend(find_cycles([b for b in model.books if b.venue == v]))
        return cycles

    def start(self, t: float) -> dict | None:
        cycles = [c for c in self._cycles() if _free(*(leg[0] for leg in c))]
        if not cycles:
            return None
        legs = cycles[int(self.rng.integers(len(cycles)))]
        model = self.ctx.model
        listed = {}
        for b in model.books:
            listed[b.symbol] = listed.get(b.symbol, 0) + 1
        # the leg listed on the fewest venues moves (least cross-venue side effect); ties: middle
        mi = min(range(3), key=lambda i: (listed[legs[i][0].symbol], i != 1))
        mb, mside = legs[mi][0], legs[mi][1]
        others = 1.0
        for i, (b, side, _, _) in enumerate(legs):
            if i != mi:
                others *= _factor(b, side)
        target = (1 + float(self.p["edge_bps"]) * 1e-4) / others  # needed factor of the moved leg
        size_usd = float(self.p["size_usd"])
        for b in (leg[0] for leg in legs):
            b.pinned = True
        for i, (b, side, _, _) in enumerate(legs):
            if i == mi:
                continue
            lots = self._lots(b, size_usd)
            ch = model.ensure_touch_size(b, bid_size=lots if side == "sell" else 0,
                                         ask_size=lots if side == "buy" else 0)
            if ch[0] or ch[1]:
                self.ctx.emit(b, *ch)
        lots = self._lots(mb, size_usd)
        if mside == "buy":
            ask = math.floor(1.0 / target / mb.tick + 1e-9)
            while ask > 1 and 1.0 / mb.price(ask) < target:
                ask -= 1
            spread = _touch_spread(mb)
            if ask - spread < 1:
                for b in (leg[0] for leg in legs):
                    b.pinned = False
                return None
            ch = model.place_touch(mb, ask - spread, ask, ask_size=lots)
        else:
            bid = math.ceil(target / mb.tick - 1e-9)
            while mb.price(bid) < target:
                bid += 1
            ch = model.place_touch(mb, bid, bid + _touch_spread(mb), bid_size=lots)
        self.ctx.emit(mb, *ch)
        # what the wire now shows
        prod, cum = 1.0, 1.0
        cap = INF
        out_legs = []
        for b, side, _src, _dst in legs:
            if side == "buy":
                price, size = b.price(b.ask_px[0]), b.size(b.ask_sz[b.ask_px[0]])
                cap = min(cap, size * price / cum)
            else:
                price, size = b.price(b.bid_px[-1]), b.size(b.bid_sz[b.bid_px[-1]])
                cap = min(cap, size / cum)
            f = _factor(b, side)
            prod *= f
            cum *= f
            out_legs.append({"venue": b.venue, "symbol": b.symbol, "side": side, "price": price, "size": size})
        gross = (prod - 1) * 1e4
        venue = mb.venue
        fees = 3 * self.ctx.fee_bps(venue)
        self._end_t = t + float(self.p["lifetime_ms"]) / 1000.0
        path = " -> ".join([legs[0][2]] + [leg[3] for leg in legs])
        return {
            "venues": [venue], "symbols": [leg[0].symbol for leg in legs],
            "direction": path, "legs": out_legs, "moved": _key(mb),
            **self._stamp_start(t, [leg[0] for leg in legs]),
            "size_available": cap, "size_asset": legs[0][2],
            "gross_edge_bps": round(gross, 4), "requested_edge_bps": float(self.p["edge_bps"]),
            "taker_fees_bps": fees, "net_edge_bps": round(gross - fees, 4),
            "lifetime_ms": float(self.p["lifetime_ms"]),
            "_books": tuple(leg[0] for leg in legs), "_moved": mb,
        }

    def end(self, t: float, entry: dict) -> None:
        for b in entry["_books"]:
            b.pinned = False
        moved = entry["_moved"]
        self.ctx.emit(moved, *self.ctx.model.realign(moved))
        self._stamp_end(t, entry)


class Pairs(_Injecting):
    name = "pairs"
    prefix = "pair"
    defaults = {"start_s": 3.0, "every_s": 10.0, "k_sigma": 3.0, "min_divergence_bps": 8.0, "ramp_ms": 300.0,
                "hold_ms": 1500.0, "revert_ms": 1500.0, "sigma_window_s": 10.0, "pair": None, "venue": None,
                "sample_ms": 20.0}

    def bind(self, ctx: ScenarioContext) -> None:
        super().bind(ctx)
        self._pair = self._choose_pair()
        self._samples: deque[float] = deque(maxlen=max(10, int(float(self.p["sigma_window_s"]) * 1000
                                                              / float(self.p["sample_ms"]))))
        self._next_sample = 0.0
        if self._pair is not None:
            self.next_t = 0.0

    def _choose_pair(self) -> tuple[str, str] | None:
        model = self.ctx.model
        if self.p.get("pair"):
            a, b = self.p["pair"]
            return (a, b)
        venues = [self.p["venue"]] if self.p.get("venue") else sorted({b.venue for b in model.books})
        for v in venues:
            syms = [b for b in model.books if b.venue == v]
            for x, y in itertools.combinations(syms, 2):
                if (x.spec.quote == y.spec.quote and x.spec.base != y.spec.base
                        and x.spec.base not in FIXED_USD and y.spec.base not in FIXED_USD):
                    return (x.symbol, y.symbol) if x.spec.base != "BTC" else (y.symbol, x.symbol)
        return None

    def _spread(self) -> float:
        a, b = self._pair
        m = self.ctx.model
        return math.log(m.fair_price(a)) - math.log(m.fair_price(b))

    def step(self, t: float) -> None:
        if self._pair is None:
            self.next_t = INF
            return
        if t >= self._next_sample:
            self._samples.append(self._spread())
            self._next_sample = t + float(self.p["sample_ms"]) / 1000.0
        super().step(t)
        self.next_t = min(self.next_t, self._next_sample)

    def _books(self) -> list[Book]:
        a, b = self._pair
        v = self.p.get("venue")
        return [bk for bk in self.ctx.model.books if bk.symbol in (a, b) and (not v or bk.venue == v)]

    def start(self, t: float) -> dict | None:
        books = self._books()
        if len(self._samples) < 10 or not _free(*books):
            return None
        sigma_bps = float(np.std(np.asarray(self._samples))) * 1e4
        k = float(self.p["k_sigma"])
        div_bps = max(k * sigma_bps, float(self.p["min_divergence_bps"]))
        sign = 1.0 if self.rng.random() < 0.5 else -1.0
        a, b = self._pair
        asset = a.split("/")[0]
        ramp, hold, revert = (float(self.p[x]) / 1000.0 for x in ("ramp_ms", "hold_ms", "revert_ms"))
        rich, cheap = (a, b) if sign > 0 else (b, a)
        entry = {
            "venues": sorted({bk.venue for bk in books}), "symbols": [a, b],
            "direction": f"sell {rich} buy {cheap}", "shifted_asset": asset,
            "legs": [{"symbol": rich, "side": "sell"}, {"symbol": cheap, "side": "buy"}],
            "diverge_start_ns": self.ctx.wall_ns(), "k_sigma": k, "sigma_bps": round(sigma_bps, 4),
            "divergence_bps": round(div_bps, 4), "gross_edge_bps": round(div_bps, 4),
            "requested_edge_bps": round(div_bps, 4),
            "hold_ms": hold * 1000, "_books": tuple(books), "_asset": asset, "_sign": sign,
            "_t0": t, "_phases": (t + ramp, t + ramp + hold, t + ramp + hold + revert),
            "_next_step": t,
        }
        self._end_t = entry["_phases"][2]
        return entry

    def _apply(self, t: float, entry: dict) -> None:
        t0 = entry["_t0"]
        up, hold_end, down_end = entry["_phases"]
        d = entry["divergence_bps"] * 1e-4 * entry["_sign"]
        if t < up:
            x = d * (t - t0) / max(up - t0, 1e-9)
        elif t < hold_end:
            x = d
        elif t < down_end:
            x = d * (1 - (t - hold_end) / max(down_end - hold_end, 1e-9))
        else:
            x = 0.0
        self.ctx.model.set_offset(entry["_asset"], x)

    def tick_active(self, t: float, entry: dict) -> None:
        self._apply(t, entry)
        up, hold_end, _ = entry["_phases"]
        if "start_ns" not in entry and t >= up:
            entry.update(self._stamp_start(t, entry["_books"]))
            books = entry["_books"]
            size = min(bk.price(bk.bid_px[-1]) * bk.size(bk.bid_sz[bk.bid_px[-1]]) for bk in books)
            entry["size_available"] = size
            entry["size_asset"] = books[0].spec.quote
        if "reverting_ns" not in entry and t >= hold_end:
            entry["reverting_ns"] = self.ctx.wall_ns()
        entry["_next_step"] = t + float(self.p["sample_ms"]) / 1000.0

    def end(self, t: float, entry: dict) -> None:
        self.ctx.model.set_offset(entry["_asset"], 0.0)
        if "start_ns" not in entry:
            entry.update(self._stamp_start(t, entry["_books"]))
            entry.setdefault("size_available", 0.0)
            entry.setdefault("size_asset", entry["_books"][0].spec.quote)
        self._stamp_end(t, entry)

    def finish(self, t: float) -> None:
        if self._active is not None:
            self.ctx.model.set_offset(self._active["_asset"], 0.0)
            self._active.setdefault("start_ns", self.ctx.wall_ns())
            self._active.setdefault("start_seq", self._seqs(self._active["_books"]))
            self._active.setdefault("size_available", 0.0)
            self._active.setdefault("size_asset", self._active["_books"][0].spec.quote)
        super().finish(t)


class Mixed(Scenario):
    """All injections the instruments allow, one at a time."""

    name = "mixed"
    parts_defaults = {
        "cross_exchange": {"start_s": 1.0, "every_s": 4.0},
        "triangular": {"start_s": 2.5, "every_s": 4.0},
        "pairs": {"start_s": 6.0, "every_s": 15.0},
    }

    def __init__(self, params=None, rng=None, lock=None):
        super().__init__(params, rng, lock)
        self.parts: list[Scenario] = []
        rngs = self.rng.spawn(3)
        for (name, cls), r in zip((("cross_exchange", CrossExchange), ("triangular", Triangular),
                                   ("pairs", Pairs)), rngs, strict=True):
            p = dict(self.parts_defaults[name])
            p.update(self.params.get(name) or {})
            if p.get("enabled", True):
                p.pop("enabled", None)
                self.parts.append(cls(p, r, self.lock))

    def bind(self, ctx: ScenarioContext) -> None:
        super().bind(ctx)
        for s in self.parts:
            s.bind(ctx)
        self.next_t = min((s.next_t for s in self.parts), default=INF)

    def step(self, t: float) -> None:
        for s in self.parts:
            if t >= s.next_t:
                s.step(t)
        self.next_t = min((s.next_t for s in self.parts), default=INF)

    def finish(self, t: float) -> None:
        for s in self.parts:
            s.finish(t)


SCENARIOS: dict[str, type[Scenario]] = {
    "quiet": Quiet,
    "cross_exchange": CrossExchange,
    "triangular": Triangular,
    "pairs": Pairs,
    "mixed": Mixed,
    "default": Mixed,
}


def make_scenario(name: str, params: Mapping[str, Any] | None, seed: int) -> Scenario:
    try:
        cls = SCENARIOS[name]
    except KeyError:
        raise ValueError(f"unknown scenario {name!r} (known: {', '.join(SCENARIOS)})") from None
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5CE7]))
    return cls(params, rng)
