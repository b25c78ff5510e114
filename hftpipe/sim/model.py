"""Market model of the offline exchange simulator: deterministic for a seed, venue-agnostic.

What it models
--------------
* **Fair prices.** Every non-stable asset has a log USD price ``W_a + X_a + O_a``: ``W`` is a
  random walk whose increments are correlated across assets (Cholesky factor of a correlation
  matrix with a common factor ``corr``), ``X`` a mean-reverting (Ornstein-Uhlenbeck)
  idiosyncratic part, so pairs of assets are cointegrated, and ``O`` an offset scenarios set
  (the pairs divergence). Stablecoins (USDT, USDC, ...) are fixed at 1. A symbol ``B/Q`` has
  fair price ``p_B / p_Q``, so cross rates are consistent for triangles by construction.
* **Venues.** Each (venue, symbol) book follows ``fair * exp(basis + noise)``: a constant basis
  of at most ``venue_basis_bps`` and an OU noise of ``venue_noise_bps`` (clipped at
  ``noise_clip_bps``), independent per book. With the defaults the mids of two venues never
  differ by more than ~5 bps, well inside any pair of taker fees.
* **Books.** Full L2 books in integer ticks and lots, 50-200 levels per side, lognormal sizes,
  a spread of a few ticks, gaps between levels growing with depth. One *event* of a book is a
  handful of level changes: size changes, new levels, deletions, and a touch move whenever the
  book's target mid leaves its touch. Changes are dicts ``{price_ticks: size_lots}`` per side,
  ``0`` = delete.

The model is driven by two calls: :meth:`MarketModel.advance` (latent prices, on a fixed
sim-time grid of ``tick_s``) and :meth:`MarketModel.event` (one book event). It never looks at a
clock: given the seed and the sequence of calls it produces the same books and changes, so the
simulator's frames are deterministic whatever the timing of the sockets.

Hot path notes: random numbers come from numpy in batches (``.tolist()``) and are consumed from
Python lists; books are sorted Python lists of int ticks plus dicts of sizes (50-200 levels, so
``bisect`` and list inserts are cheap). One event costs a few microseconds.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal

import numpy as np

# --------------------------------------------------------------------------------------------
# Reference data

#: Assets whose USD price is fixed (log price 0 unless listed here).
FIXED_USD: dict[str, float] = {
    "USDT": 1.0, "USDC": 1.0, "USD": 1.0, "BUSD": 1.0, "FDUSD": 1.0, "TUSD": 1.0, "DAI": 1.0,
    "EUR": 1.08,
}

#: Reference USD prices of the assets the default instrument table knows.
ASSET_USD: dict[str, float] = {
    "BTC": 60000.0, "ETH": 3000.0, "SOL": 150.0, "BNB": 550.0, "XRP": 0.6, "DOGE": 0.15,
    "ADA": 0.45, "LTC": 80.0, "AVAX": 30.0, "LINK": 15.0, "DOT": 6.5, "TRX": 0.12, "MATIC": 0.7,
}

#: Annualised volatility per asset (default for unlisted assets: 0.8).
ASSET_VOL: dict[str, float] = {"BTC": 0.5, "ETH": 0.65, "BNB": 0.6, "SOL": 0.9}

#: Default instruments (Binance spot-like tick and lot sizes). Venue protocols override
#: per venue (e.g. Binance USD-M: BTC tick 0.1, lot 0.001).
DEFAULT_INSTRUMENTS: dict[str, dict] = {
    "BTC/USDT": {"tick": "0.01", "lot": "0.00001", "activity": 3.0},
    "ETH/USDT": {"tick": "0.01", "lot": "0.0001", "activity": 2.0},
    "ETH/BTC": {"tick": "0.00001", "lot": "0.0001", "activity": 1.0},
    "SOL/USDT": {"tick": "0.01", "lot": "0.001", "activity": 1.5},
    "SOL/BTC": {"tick": "0.0000001", "lot": "0.001", "activity": 0.5},
    "SOL/ETH": {"tick": "0.00001", "lot": "0.001", "activity": 0.5},
    "BNB/USDT": {"tick": "0.01", "lot": "0.001", "activity": 1.0},
    "BNB/BTC": {"tick": "0.000001", "lot": "0.001", "activity": 0.5},
    "BNB/ETH": {"tick": "0.00001", "lot": "0.001", "activity": 0.5},
    "XRP/USDT": {"tick": "0.0001", "lot": "0.1", "activity": 1.0},
    "DOGE/USDT": {"tick": "0.00001", "lot": "1", "activity": 1.0},
    "ADA/USDT": {"tick": "0.0001", "lot": "0.1", "activity": 0.8},
    "LTC/USDT": {"tick": "0.01", "lot": "0.001", "activity": 0.8},
    "BTC/USDC": {"tick": "0.01", "lot": "0.00001", "activity": 1.0},
    "ETH/USDC": {"tick": "0.01", "lot": "0.0001", "activity": 1.0},
}


def split_symbol(symbol: str) -> tuple[str, str]:
    """``"BTC/USDT"`` (or ccxt's ``"BTC/USDT:USDT"``) -> ``("BTC", "USDT")``."""
    core = symbol.split(":", 1)[0]
    if "/" not in core:
        raise ValueError(f"symbol {symbol!r} is not unified (expected BASE/QUOTE)")
    base, quote = core.split("/", 1)
    if not base or not quote:
        raise ValueError(f"symbol {symbol!r} is not unified (expected BASE/QUOTE)")
    return base, quote


def asset_usd(asset: str, extra: Mapping[str, float] | None = None) -> float:
    if extra and asset in extra:
        return float(extra[asset])
    if asset in FIXED_USD:
        return FIXED_USD[asset]
    if asset in ASSET_USD:
        return ASSET_USD[asset]
    raise ValueError(f"no reference price for asset {asset!r}: give it in ModelParams.asset_prices")


def decimals_of(step: str) -> int:
    """Number of decimals of a decimal string step: ``"0.010"`` -> 2, ``"1"`` -> 0."""
    d = Decimal(step).normalize()
    exp = d.as_tuple().exponent
    return max(0, -int(exp))


@dataclass(frozen=True)
class InstrumentSpec:
    """One market as one venue lists it. ``tick``/``lot`` are exact decimal strings."""

    venue: str
    symbol: str  # unified "BASE/QUOTE" (no ":SETTLE" suffix)
    base: str
    quote: str
    tick: str
    lot: str
    activity: float = 1.0  # relative share of the message rate
    min_levels: int = 50
    max_levels: int = 200
    spread_ticks: tuple[int, int] = (1, 3)
    span_bps: float = 25.0  # rough price span of the whole book (sets the gaps between levels)
    level_usd: float = 8000.0  # median notional of a level, USD

    @property
    def tick_decimals(self) -> int:
        return decimals_of(self.tick)

    @property
    def lot_decimals(self) -> int:
        return decimals_of(self.lot)


def make_instrument(venue: str, symbol: str, overrides: Mapping | None = None,
                    asset_prices: Mapping[str, float] | None = None) -> InstrumentSpec:
    """Instrument from the default table, derived ticks for unknown symbols, then overrides."""
    base, quote = split_symbol(symbol)
    unified = f"{base}/{quote}"
    spec: dict = dict(DEFAULT_INSTRUMENTS.get(unified, {}))
    if "tick" not in spec or "lot" not in spec:
        price = asset_usd(base, asset_prices) / asset_usd(quote, asset_prices)
        # ~1e-6 relative tick, lot worth ~1 USD / 100
        spec.setdefault("tick", _pow10_str(math.floor(math.log10(price)) - 5))
        spec.setdefault("lot", _pow10_str(math.floor(math.log10(0.01 / asset_usd(base, asset_prices)))))
    if overrides:
        spec.update({k: v for k, v in overrides.items() if k in InstrumentSpec.__dataclass_fields__})
    if "spread_ticks" in spec:
        spec["spread_ticks"] = tuple(spec["spread_ticks"])
    return InstrumentSpec(venue=venue, symbol=unified, base=base, quote=quote, **spec)


def _pow10_str(e: int) -> str:
    if e >= 0:
        return "1" + "0" * e
    return "0." + "0" * (-e - 1) + "1"


@dataclass(frozen=True)
class ModelParams:
    """Knobs of the market model (all have sensible defaults)."""

    tick_s: float = 0.01  # latent price update interval, sim seconds
    corr: float = 0.8  # correlation of asset returns (common factor)
    vol_scale: float = 1.0  # multiplies every asset's annual volatility
    idio_bps: float = 15.0  # stationary std of the mean-reverting idiosyncratic part
    idio_halflife_s: float = 30.0
    venue_basis_bps: float = 1.0  # constant per-book basis, uniform in +-this
    venue_noise_bps: float = 0.5  # stationary std of the per-book OU noise
    venue_noise_halflife_s: float = 2.0
    noise_clip_bps: float = 2.0
    changes_mean: float = 1.6  # mean level changes per event (>= 1)
    max_changes: int = 8
    depth_mean: float = 6.0  # mean depth index (from the touch) of a random change
    p_size: float = 0.55  # share of size changes among random changes (the rest: new levels
    # and deletions, balanced so that a side keeps about (min_levels + max_levels) / 2 levels)
    p_improve: float = 0.03  # chance that an event puts a new level inside a wide spread
    size_sigma: float = 0.9  # lognormal sigma of level sizes
    asset_prices: Mapping[str, float] = field(default_factory=dict)  # extra/override USD prices
    asset_vols: Mapping[str, float] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# Random numbers in batches


class _Batch:
    """Pre-drawn uniforms and normals consumed from Python lists (numpy per call is too slow)."""

    __slots__ = ("_rng", "_n", "u", "ui", "z", "zi")

    def __init__(self, rng: np.random.Generator, n: int = 1 << 15):
        self._rng = rng
        self._n = n
        self.u: list[float] = rng.random(n).tolist()
        self.ui = 0
        self.z: list[float] = rng.standard_normal(n).tolist()
        self.zi = 0

    def uniform(self) -> float:
        i = self.ui
        if i >= self._n:
            self.u = self._rng.random(self._n).tolist()
            i = 0
        self.ui = i + 1
        return self.u[i]

    def normal(self) -> float:
        i = self.zi
        if i >= self._n:
            self.z = self._rng.standard_normal(self._n).tolist()
            i = 0
        self.zi = i + 1
        return self.z[i]


# --------------------------------------------------------------------------------------------
# Books


class Book:
    """Authoritative full L2 book of one (venue, symbol) in integer ticks and lots.

    ``bid_px`` and ``ask_px`` are ascending lists of prices in ticks (best bid = ``bid_px[-1]``,
    best ask = ``ask_px[0]``); ``bid_sz``/``ask_sz`` map price ticks to size in lots (> 0).
    """

    __slots__ = (
        "index", "spec", "venue", "symbol", "tick", "lot", "bid_px", "ask_px", "bid_sz", "ask_sz",
        "pinned", "target", "smin", "smax", "lo", "hi", "gap", "size_med", "weight",
    )

    def __init__(self, index: int, spec: InstrumentSpec):
        self.index = index
        self.spec = spec
        self.venue = spec.venue
        self.symbol = spec.symbol
        self.tick = float(spec.tick)
        self.lot = float(spec.lot)
        self.bid_px: list[int] = []
        self.ask_px: list[int] = []
        self.bid_sz: dict[int, int] = {}
        self.ask_sz: dict[int, int] = {}
        self.pinned = False  # touch frozen by a scenario: random activity stays behind it
        self.target = 0.0  # target mid, in ticks
        self.smin, self.smax = spec.spread_ticks
        self.lo, self.hi = spec.min_levels, spec.max_levels
        self.gap = 1.0  # mean gap between deep levels, ticks
        self.size_med = 1.0  # median level size, lots
        self.weight = spec.activity

    # -- reading ---------------------------------------------------------------------------
    @property
    def best_bid(self) -> int:
        return self.bid_px[-1]

    @property
    def best_ask(self) -> int:
        return self.ask_px[0]

    def bids(self, depth: int | None = None) -> list[tuple[int, int]]:
        """Best first: [(price_ticks, size_lots), ...]."""
        px = self.bid_px[::-1] if depth is None else self.bid_px[: -depth - 1: -1]
        sz = self.bid_sz
        return [(p, sz[p]) for p in px]

    def asks(self, depth: int | None = None) -> list[tuple[int, int]]:
        px = self.ask_px if depth is None else self.ask_px[:depth]
        sz = self.ask_sz
        return [(p, sz[p]) for p in px]

    def price(self, ticks: int) -> float:
        """Exact-decimal price as float (what a client gets parsing the wire string)."""
        return float(Decimal(ticks) * Decimal(self.spec.tick))

    def size(self, lots: int) -> float:
        return float(Decimal(lots) * Decimal(self.spec.lot))

    def to_arrays(self, depth: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(bids, asks) as float64 arrays of shape (n, 2) [price, size], best first."""
        tick, lot = Decimal(self.spec.tick), Decimal(self.spec.lot)

        def conv(levels):
            out = np.zeros((len(levels), 2), dtype=np.float64)
            for i, (p, s) in enumerate(levels):
                out[i, 0] = float(Decimal(p) * tick)
                out[i, 1] = float(Decimal(s) * lot)
            return out

        return conv(self.bids(depth)), conv(self.asks(depth))

    def check(self) -> None:
        """Raise AssertionError if an invariant is broken (tests)."""
        assert self.bid_px == sorted(set(self.bid_px)) and self.ask_px == sorted(set(self.ask_px))
        assert set(self.bid_px) == set(self.bid_sz) and set(self.ask_px) == set(self.ask_sz)
        assert all(s > 0 for s in self.bid_sz.values()) and all(s > 0 for s in self.ask_sz.values())
        assert self.bid_px and self.ask_px and self.bid_px[-1] < self.ask_px[0]


# --------------------------------------------------------------------------------------------
# The model


class MarketModel:
    """Latent fair prices + one authoritative book per (venue, symbol).

    ``instruments`` lists the books (one :class:`InstrumentSpec` per venue and symbol); their
    order is the book index order. Every public mutation returns the level changes it made as
    ``(bid_changes, ask_changes)`` dicts ``{price_ticks: size_lots}`` (0 = delete), which the
    server turns into one venue event.
    """

    def __init__(self, instruments: Iterable[InstrumentSpec], seed: int = 1,
                 params: ModelParams | None = None):
        self.params = p = params or ModelParams()
        self.seed = seed
        self.books: list[Book] = [Book(i, spec) for i, spec in enumerate(instruments)]
        if not self.books:
            raise ValueError("the market model needs at least one instrument")
        self.by_key: dict[tuple[str, str], Book] = {}
        for b in self.books:
            if (b.venue, b.symbol) in self.by_key:
                raise ValueError(f"duplicate instrument {b.venue} {b.symbol}")
            self.by_key[(b.venue, b.symbol)] = b
        ss = np.random.SeedSequence(seed)
        latent_seed, book_seed, init_seed = ss.spawn(3)
        self._lrng = np.random.default_rng(latent_seed)
        self._r = _Batch(np.random.default_rng(book_seed))
        irng = np.random.default_rng(init_seed)

        # -- assets and latent state ----------------------------------------------------------
        assets: list[str] = []
        for b in self.books:
            for a in (b.spec.base, b.spec.quote):
                if a not in FIXED_USD and a not in assets:
                    assets.append(a)
        self.assets = assets
        na = len(assets)
        self._asset_ix = {a: i for i, a in enumerate(assets)}
        self.lp0 = np.array([math.log(asset_usd(a, p.asset_prices)) for a in assets], dtype=np.float64)
        self.w = np.zeros(na)  # random-walk part
        self.x = np.zeros(na)  # mean-reverting idiosyncratic part
        self.offset = np.zeros(na)  # scenario offsets (pairs divergence)
        vols = np.array([p.asset_vols.get(a, ASSET_VOL.get(a, 0.8)) for a in assets]) * p.vol_scale
        year = 365.0 * 86400.0
        dt = p.tick_s
        self._w_sd = vols * math.sqrt(dt / year)
        corr = np.full((na, na), p.corr) + np.eye(na) * (1.0 - p.corr) if na else np.zeros((0, 0))
        self.chol = np.linalg.cholesky(corr) if na else corr
        self._x_phi = math.exp(-math.log(2) * dt / p.idio_halflife_s)
        self._x_sd = p.idio_bps * 1e-4 * math.sqrt(1 - self._x_phi ** 2)
        nb = len(self.books)
        self.basis = irng.uniform(-p.venue_basis_bps, p.venue_basis_bps, nb) * 1e-4
        self.noise = np.zeros(nb)
        self._n_phi = math.exp(-math.log(2) * dt / p.venue_noise_halflife_s)
        self._n_sd = p.venue_noise_bps * 1e-4 * math.sqrt(1 - self._n_phi ** 2)
        self._n_clip = p.noise_clip_bps * 1e-4
        # Book -> asset index (-1 = fixed asset with log price log(FIXED_USD)).
        self._bix = np.array([self._asset_ix.get(b.spec.base, -1) for b in self.books])
        self._qix = np.array([self._asset_ix.get(b.spec.quote, -1) for b in self.books])
        self._bfix = np.array([math.log(FIXED_USD.get(b.spec.base, 1.0)) for b in self.books])
        self._qfix = np.array([math.log(FIXED_USD.get(b.spec.quote, 1.0)) for b in self.books])
        self._inv_tick = np.array([1.0 / b.tick for b in self.books])
        self.t = 0.0  # sim time of the latent state
        self.ticks = 0  # latent updates done
        self._update_targets()

        # -- initial books --------------------------------------------------------------------
        for b in self.books:
            self._init_book(b, irng)

    # -- latent prices ---------------------------------------------------------------------------
    def asset_log_prices(self) -> np.ndarray:
        return self.lp0 + self.w + self.x + self.offset

    def fair_price(self, symbol: str) -> float:
        """Fair (venue-free) price of a unified symbol."""
        base, quote = split_symbol(symbol)
        return math.exp(self._asset_lp(base) - self._asset_lp(quote))

    def _asset_lp(self, a: str) -> float:
        if a in self._asset_ix:
            i = self._asset_ix[a]
            return float(self.lp0[i] + self.w[i] + self.x[i] + self.offset[i])
        return math.log(FIXED_USD.get(a, 1.0))

    def _update_targets(self) -> None:
        lp = self.asset_log_prices()
        lpe = np.append(lp, 0.0)  # index -1 -> 0.0, then add the fixed log prices
        lb = lpe[self._bix] + np.where(self._bix < 0, self._bfix, 0.0)
        lq = lpe[self._qix] + np.where(self._qix < 0, self._qfix, 0.0)
        mids = np.exp(lb - lq + self.basis + self.noise) * self._inv_tick
        for b, m in zip(self.books, mids.tolist(), strict=True):
            b.target = m

    def advance(self, t: float) -> None:
        """Step the latent prices on the ``tick_s`` grid up to sim time ``t``."""
        dt = self.params.tick_s
        n = int((t - self.t) / dt + 1e-9)
        if n <= 0:
            return
        na, nb = len(self.assets), len(self.books)
        rng = self._lrng
        for _ in range(n):
            if na:
                z = self.chol @ rng.standard_normal(na)
                self.w += z * self._w_sd
                self.x = self.x * self._x_phi + rng.standard_normal(na) * self._x_sd
            self.noise = np.clip(self.noise * self._n_phi + rng.standard_normal(nb) * self._n_sd,
                                 -self._n_clip, self._n_clip)
        self.ticks += n
        self.t += n * dt
        self._update_targets()

    def set_offset(self, asset: str, log_offset: float) -> None:
        """Scenario hook: shift an asset's log USD price (every symbol with it moves)."""
        self.offset[self._asset_ix[asset]] = log_offset
        self._update_targets()

    # -- book construction -------------------------------------------------------------------
    def _init_book(self, b: Book, irng: np.random.Generator) -> None:
        spec = b.spec
        base_usd = asset_usd(spec.base, self.params.asset_prices)
        b.size_med = max(1.0, spec.level_usd / base_usd / b.lot)
        levels = int(irng.integers(spec.min_levels + (spec.max_levels - spec.min_levels) // 4,
                                   spec.max_levels - (spec.max_levels - spec.min_levels) // 4 + 1))
        b.gap = max(1.0, spec.span_bps * 1e-4 * b.target / levels)
        s = int(irng.integers(b.smin, b.smax + 1))
        nb = math.floor(b.target - (s - 1) / 2.0)
        na = nb + s
        p = nb
        for i in range(levels):
            b.bid_px.append(p)
            b.bid_sz[p] = self._size(b)
            p -= self._gap(b, i)
            if p <= 0:
                break
        b.bid_px.reverse()
        p = na
        for i in range(levels):
            b.ask_px.append(p)
            b.ask_sz[p] = self._size(b)
            p += self._gap(b, i)

    def _size(self, b: Book) -> int:
        return max(1, int(b.size_med * math.exp(self.params.size_sigma * self._r.normal())))

    def _gap(self, b: Book, depth: int) -> int:
        """Gap in ticks to the next level, for a level ``depth`` levels from the touch."""
        mean = (b.gap - 1.0) * min(1.6, 0.15 + depth / 40.0)
        u = self._r.uniform()
        return 1 + int(-math.log(1.0 - u) * mean)

    # -- events --------------------------------------------------------------------------------
    def event(self, b: Book) -> tuple[dict[int, int], dict[int, int]]:
        """One venue event of book ``b``: a touch move if its target left the touch, then a
        handful of random changes, then depth kept within [min_levels, max_levels]."""
        r = self._r
        ch_b: dict[int, int] = {}
        ch_a: dict[int, int] = {}
        if not b.pinned:
            m = b.target
            bb, ba = b.bid_px[-1], b.ask_px[0]
            if m < bb or m > ba or ba - bb > b.smax:
                s = b.smin + int(r.uniform() * (b.smax - b.smin + 1))
                nb = math.floor(m - (s - 1) / 2.0)
                self._move_touch(b, nb, nb + s, ch_b, ch_a)
            elif ba - bb > 1 and r.uniform() < self.params.p_improve:
                # improve the touch by one level inside the spread
                if r.uniform() < 0.5:
                    self._set(b, True, bb + 1, self._size(b), ch_b)
                else:
                    self._set(b, False, ba - 1, self._size(b), ch_a)
        n = 1 + int(-math.log(1.0 - r.uniform()) * (self.params.changes_mean - 1.0))
        if n > self.params.max_changes:
            n = self.params.max_changes
        ps = self.params.p_size
        pn = ps + (1.0 - ps) * 0.5
        for _ in range(n):
            is_bid = r.uniform() < 0.5
            px = b.bid_px if is_bid else b.ask_px
            ch = ch_b if is_bid else ch_a
            nlev = len(px)
            d = int(-math.log(1.0 - r.uniform()) * self.params.depth_mean)
            if b.pinned and d == 0:
                d = 1
            if d >= nlev:
                d = nlev - 1
            u = r.uniform()
            if u >= ps:
                # new vs delete: pulled towards the middle of [lo, hi] levels
                f = 0.5 + (b.lo + b.hi - 2 * nlev) / (b.hi - b.lo + 1)
                f = 0.1 if f < 0.1 else 0.9 if f > 0.9 else f
                u = ps + (1.0 - ps) * ((u - ps) / (1.0 - ps) * 0.5 / f if (u - ps) / (1.0 - ps) < f
                                       else 0.5 + 0.5 * ((u - ps) / (1.0 - ps) - f) / (1.0 - f))
            if u < ps or d <= 0 and u >= pn:
                # size change (the touch is never deleted by random activity)
                p = px[-1 - d] if is_bid else px[d]
                sz = b.bid_sz if is_bid else b.ask_sz
                old = sz[p]
                new = max(1, int(old * math.exp(0.7 * r.normal())))
                if new == old:
                    new = old + 1
                sz[p] = new
                ch[p] = new
            elif u < pn:
                self._new_level(b, is_bid, d, ch)
            else:
                p = px[-1 - d] if is_bid else px[d]
                self._set(b, is_bid, p, 0, ch)
        self._keep_depth(b, ch_b, ch_a)
        return ch_b, ch_a

    def _new_level(self, b: Book, is_bid: bool, d: int, ch: dict[int, int]) -> None:
        px = b.bid_px if is_bid else b.ask_px
        if is_bid:
            hi_p = px[-1 - d]
            lo_p = px[-2 - d] if d + 1 < len(px) else hi_p - 2 * self._gap(b, d) - 1
        else:
            lo_p = px[d]
            hi_p = px[d + 1] if d + 1 < len(px) else lo_p + 2 * self._gap(b, d) + 1
        if hi_p - lo_p < 2 or lo_p <= 0:
            # no gap here: change the size of the level instead
            p = hi_p if is_bid else lo_p
            self._set(b, is_bid, p, self._size(b), ch)
            return
        p = lo_p + 1 + int(self._r.uniform() * (hi_p - lo_p - 1))
        self._set(b, is_bid, p, self._size(b), ch)

    def _set(self, b: Book, is_bid: bool, p: int, size: int, ch: dict[int, int]) -> None:
        """Set one level (size 0 = delete) and record the change."""
        px, sz = (b.bid_px, b.bid_sz) if is_bid else (b.ask_px, b.ask_sz)
        if size <= 0:
            if p in sz:
                del sz[p]
                del px[bisect.bisect_left(px, p)]
                ch[p] = 0
            return
        if p not in sz:
            bisect.insort(px, p)
        sz[p] = size
        ch[p] = size

    def _move_touch(self, b: Book, nb: int, na: int, ch_b: dict[int, int], ch_a: dict[int, int],
                    bid_size: int = 0, ask_size: int = 0) -> None:
        """Put the touch at (nb, na): delete crossing levels, add the touch levels if absent.
        ``bid_size``/``ask_size`` > 0 also set the touch sizes."""
        if nb < 1:  # prices stay positive
            na += 1 - nb
            nb = 1
        bp, bs, ap, as_ = b.bid_px, b.bid_sz, b.ask_px, b.ask_sz
        while bp and bp[-1] > nb:
            p = bp.pop()
            del bs[p]
            ch_b[p] = 0
        k = bisect.bisect_left(ap, na)
        if k:
            for p in ap[:k]:
                del as_[p]
                ch_a[p] = 0
            del ap[:k]
        if bid_size or not bp or bp[-1] != nb:
            self._set(b, True, nb, bid_size or self._size(b), ch_b)
        if ask_size or not ap or ap[0] != na:
            self._set(b, False, na, ask_size or self._size(b), ch_a)

    def _keep_depth(self, b: Book, ch_b: dict[int, int], ch_a: dict[int, int]) -> None:
        bp, ap = b.bid_px, b.ask_px
        while len(bp) > b.hi:
            self._set(b, True, bp[0], 0, ch_b)
        while len(ap) > b.hi:
            self._set(b, False, ap[-1], 0, ch_a)
        while len(bp) < b.lo and bp and bp[0] > 1:
            p = bp[0] - self._gap(b, len(bp))
            if p <= 0:
                break
            self._set(b, True, p, self._size(b), ch_b)
        while len(ap) < b.lo:
            self._set(b, False, ap[-1] + self._gap(b, len(ap)), self._size(b), ch_a)

    # -- scenario hooks ----------------------------------------------------------------------
    def realign(self, b: Book) -> tuple[dict[int, int], dict[int, int]]:
        """Move the touch of ``b`` to its target now (used when a scenario releases a book)."""
        ch_b: dict[int, int] = {}
        ch_a: dict[int, int] = {}
        s = b.smin + int(self._r.uniform() * (b.smax - b.smin + 1))
        nb = math.floor(b.target - (s - 1) / 2.0)
        self._move_touch(b, nb, nb + s, ch_b, ch_a)
        if not ch_b and not ch_a:
            # already aligned: refresh the touch sizes so that the event is never empty
            self._set(b, True, nb, self._size(b), ch_b)
        self._keep_depth(b, ch_b, ch_a)
        return ch_b, ch_a

    def place_touch(self, b: Book, bid: int, ask: int, bid_size: int = 0, ask_size: int = 0
                    ) -> tuple[dict[int, int], dict[int, int]]:
        """Force the touch of ``b`` to (bid, ask) ticks, optionally with touch sizes."""
        if bid >= ask:
            raise ValueError("bid must be below ask")
        ch_b: dict[int, int] = {}
        ch_a: dict[int, int] = {}
        self._move_touch(b, bid, ask, ch_b, ch_a, bid_size, ask_size)
        self._keep_depth(b, ch_b, ch_a)
        return ch_b, ch_a

    def ensure_touch_size(self, b: Book, bid_size: int = 0, ask_size: int = 0
                          ) -> tuple[dict[int, int], dict[int, int]]:
        """Raise the touch sizes to at least the given lots (no change if already enough)."""
        ch_b: dict[int, int] = {}
        ch_a: dict[int, int] = {}
        if bid_size and b.bid_sz[b.bid_px[-1]] < bid_size:
            self._set(b, True, b.bid_px[-1], bid_size, ch_b)
        if ask_size and b.ask_sz[b.ask_px[0]] < ask_size:
            self._set(b, False, b.ask_px[0], ask_size, ch_a)
        return ch_b, ch_a

    # -- helpers for tests / ground truth ------------------------------------------------------
    @staticmethod
    def to_deltas(b: Book, bids: Mapping[int, int], asks: Mapping[int, int]
                  ) -> list[tuple[str, str, float, float]]:
        """An event's changes as ``(symbol, side, price, size)`` tuples (size 0 = delete)."""
        return ([(b.symbol, "bid", b.price(p), b.size(s)) for p, s in sorted(bids.items(), reverse=True)]
                + [(b.symbol, "ask", b.price(p), b.size(s)) for p, s in sorted(asks.items())])

    def book(self, venue: str, symbol: str) -> Book:
        base, quote = split_symbol(symbol)
        return self.by_key[(venue, f"{base}/{quote}")]

    def with_params(self, **kw) -> ModelParams:
        return replace(self.params, **kw)
