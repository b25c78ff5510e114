"""Positions per (venue, asset): balance, average cost, realized / unrealized PnL, fees, exposure.

A fill moves two assets of its venue: the base asset by ``side * size`` at ``price`` (a priced
flow, which carries cost), and the quote asset by ``-side * size * price`` (cash). The fee
leaves the fee asset's balance and is added, converted to the fill's quote, to the base
asset's ``fees``.

Average cost (quote per unit, in the slot's *cost quote*, the quote of the fill that opened it):

- an increase (same sign, or from flat) averages: ``avg = (avg*|pos| + price*|qty|) / |pos + qty|``;
- a decrease realizes ``closed * (price - avg) * sign(pos)`` and keeps ``avg``;
- a flip realizes the whole old position and opens the rest at ``price``;
- flat resets the slot (no cost, no cost quote).

Flows with no price in the slot's cost quote (cash legs, and fills of the asset in another quote,
e.g. ETH bought on ETH/BTC and sold on ETH/USDT) move the balance at the current average cost
and realize nothing: their PnL shows in the cash balances instead, so equity stays right.
Realized PnL and fees are in each slot's cost quote; both exclude each other (net = realized -
fees).

The live path (``apply_fill``) and the restart path (``rebuild``) are the same code applied to
the same records in the same order, so a rebuilt tracker's arrays are byte-identical to the
live ones: slots are numbered by first appearance, and every float operation is plain IEEE
double arithmetic in a fixed order.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import NamedTuple

import numpy as np

from hftpipe.events.records import FILL_DTYPE, POSITION_DTYPE, RECORD_VERSION, EventKind
from hftpipe.execution.orders import FILL_EPS
from hftpipe.shm.journal import JournalReader

_F = {name: i for i, name in enumerate(FILL_DTYPE.names)}
_F_VENUE, _F_SYMBOL, _F_FEE_ASSET, _F_SIDE, _F_PRICE, _F_SIZE, _F_FEE = (
    _F[k] for k in ("venue", "symbol", "fee_asset", "side", "price", "size", "fee"))

#: Names of the state arrays, in the order ``state_arrays`` returns them.
STATE_FIELDS = ("balance", "avg_cost", "realized_pnl", "fees", "cost_quote")


class Position(NamedTuple):
    """One slot, readable: cost and PnL in ``cost_quote`` (empty while the slot has no cost)."""

    venue: str
    asset: str
    balance: float
    avg_cost: float
    realized_pnl: float
    fees: float
    cost_quote: str


class PositionTracker:
    """Per (venue, asset) positions built from FILL records."""

    def __init__(self, capacity: int = 16):
        self._slots: dict[tuple[bytes, bytes], int] = {}
        self._keys: list[tuple[bytes, bytes]] = []
        self._asset_codes: dict[bytes, int] = {}
        self._asset_names: list[bytes] = []
        self.n = 0
        self.fills_applied = 0
        self.balance = np.zeros(capacity, dtype=np.float64)
        self.avg_cost = np.zeros(capacity, dtype=np.float64)
        self.realized_pnl = np.zeros(capacity, dtype=np.float64)
        self.fees = np.zeros(capacity, dtype=np.float64)
        self.cost_quote = np.full(capacity, -1, dtype=np.int64)  # asset code; -1 = no cost basis

    # ---- slots

    def _grow(self) -> None:
        cap = 2 * len(self.balance)
        for name in STATE_FIELDS:
            old = getattr(self, name)
            new = np.full(cap, -1 if name == "cost_quote" else 0, dtype=old.dtype)
            new[: len(old)] = old
            setattr(self, name, new)

    def _slot(self, venue: bytes, asset: bytes) -> int:
        i = self._slots.get((venue, asset))
        if i is None:
            if self.n == len(self.balance):
                self._grow()
            i = self.n
            self._slots[(venue, asset)] = i
            self._keys.append((venue, asset))
            self.n += 1
        return i

    def _code(self, asset: bytes) -> int:
        c = self._asset_codes.get(asset)
        if c is None:
            c = len(self._asset_names)
            self._asset_codes[asset] = c
            self._asset_names.append(asset)
        return c

    # ---- flows

    def _reset(self, i: int) -> None:
        self.balance[i] = 0.0
        self.avg_cost[i] = 0.0
        self.cost_quote[i] = -1

    def _priced_flow(self, i: int, qty: float, price: float, quote_code: int) -> None:
        pos = float(self.balance[i])
        new = pos + qty
        if pos == 0.0:
            self.balance[i] = qty
            self.avg_cost[i] = price
            self.cost_quote[i] = quote_code
            return
        dust = abs(new) <= FILL_EPS * max(abs(pos), abs(qty))
        flips = not dust and (new > 0.0) != (pos > 0.0)
        if self.cost_quote[i] != quote_code:
            # No price in the slot's cost unit: move the balance at cost. A flip's remainder was
            # opened by this very flow, so its cost is known: this price in this quote.
            if dust:
                self._reset(i)
            elif flips:
                self.balance[i] = new
                self.avg_cost[i] = price
                self.cost_quote[i] = quote_code
            else:
                self.balance[i] = new
            return
        avg = float(self.avg_cost[i])
        if (qty > 0.0) == (pos > 0.0):
            self.avg_cost[i] = (avg * abs(pos) + price * abs(qty)) / abs(new)
            self.balance[i] = new
            return
        closed = min(abs(qty), abs(pos))
        self.realized_pnl[i] += closed * (price - avg) if pos > 0.0 else closed * (avg - price)
        if dust:
            self._reset(i)
        elif flips:
            self.balance[i] = new
            self.avg_cost[i] = price
        else:
            self.balance[i] = new

    def _cash_flow(self, i: int, amount: float) -> None:
        pos = float(self.balance[i])
        new = pos + amount
        if abs(new) <= FILL_EPS * max(abs(pos), abs(amount)):
            self._reset(i)
        elif pos != 0.0 and (new > 0.0) != (pos > 0.0):
            # Crossed zero without a price: what is left has no known cost.
            self.balance[i] = new
            self.avg_cost[i] = 0.0
            self.cost_quote[i] = -1
        else:
            self.balance[i] = new

    def apply_fill(self, fill) -> None:
        """Apply one FILL record (1-element array or np.void)."""
        t = fill.item()
        venue, symbol, fee_asset = t[_F_VENUE], t[_F_SYMBOL], t[_F_FEE_ASSET]
        price, size, fee = t[_F_PRICE], t[_F_SIZE], t[_F_FEE]
        base, sep, quote = symbol.partition(b"/")
        if not sep:
            raise ValueError(f"fill symbol {symbol!r} is not BASE/QUOTE")
        qty = t[_F_SIDE] * size
        b = self._slot(venue, base)
        q = self._slot(venue, quote)
        quote_code = self._code(quote)
        if qty != 0.0:
            self._priced_flow(b, qty, price, quote_code)
            self._cash_flow(q, -qty * price)
        if fee != 0.0:
            if fee_asset == quote:
                self.fees[b] += fee
            elif fee_asset == base:
                self.fees[b] += fee * price
            # Any other fee asset (BNB): its balance pays, but its quote value is unknown here.
            if fee_asset:
                self._cash_flow(self._slot(venue, fee_asset), -fee)
        self.fills_applied += 1

    def apply_fills(self, fills: Iterable) -> None:
        """Apply FILL records in order (an array of them, or an iterable of records)."""
        for rec in fills:
            self.apply_fill(rec)

    @classmethod
    def rebuild(cls, fills: Iterable) -> PositionTracker:
        """A tracker from FILL records (journal order): identical to the one that applied them live."""
        tracker = cls()
        tracker.apply_fills(fills)
        return tracker

    # ---- reads

    def state_arrays(self) -> dict[str, np.ndarray]:
        """The fill-derived state (copies, ``n`` slots): what a rebuild must reproduce byte for byte."""
        return {name: getattr(self, name)[: self.n].copy() for name in STATE_FIELDS}

    def keys(self) -> list[tuple[str, str]]:
        """(venue, asset) of every slot, in slot order."""
        return [(v.decode("ascii"), a.decode("ascii")) for v, a in self._keys]

    def _cost_quote_name(self, i: int) -> str:
        c = int(self.cost_quote[i])
        return self._asset_names[c].decode("ascii") if c >= 0 else ""

    def position(self, venue: str, asset: str) -> Position:
        """The slot of (venue, asset); a flat empty Position if never traded."""
        i = self._slots.get((venue.encode("ascii"), asset.encode("ascii")))
        if i is None:
            return Position(venue, asset, 0.0, 0.0, 0.0, 0.0, "")
        return Position(venue, asset, float(self.balance[i]), float(self.avg_cost[i]),
                        float(self.realized_pnl[i]), float(self.fees[i]), self._cost_quote_name(i))

    def _mark_of(self, i: int, mids: Mapping[tuple[str, str], float], by_symbol: dict[str, float]) -> float:
        venue, asset = self._keys[i]
        symbol = f"{asset.decode('ascii')}/{self._cost_quote_name(i)}"
        mid = mids.get((venue.decode("ascii"), symbol))
        if mid is None:
            mid = by_symbol.get(symbol, np.nan)  # the same pair on another venue is the next best mark
        return float(mid)

    def marked(self, mids: Mapping[tuple[str, str], float]) -> tuple[np.ndarray, np.ndarray]:
        """(unrealized PnL, exposure) per slot, in each slot's cost quote, at ``mids[(venue, symbol)]``.

        Slots without a cost basis (cash) have 0 of both; a costed slot with no mark gets NaN.
        """
        by_symbol: dict[str, float] = {}
        for (_, symbol), mid in mids.items():
            by_symbol.setdefault(symbol, mid)
        unrealized = np.zeros(self.n, dtype=np.float64)
        exposure = np.zeros(self.n, dtype=np.float64)
        for i in range(self.n):
            bal = float(self.balance[i])
            if self.cost_quote[i] < 0 or bal == 0.0:
                continue
            mark = self._mark_of(i, mids, by_symbol)
            unrealized[i] = (mark - float(self.avg_cost[i])) * bal
            exposure[i] = abs(bal) * mark
        return unrealized, exposure

    def snapshot(self, mids: Mapping[tuple[str, str], float] | None = None, ts_ns: int | None = None) -> np.ndarray:
        """POSITION records of every slot, unrealized PnL and exposure marked at ``mids``."""
        unrealized, exposure = self.marked(mids or {})
        out = np.zeros(self.n, dtype=POSITION_DTYPE)
        out["kind"] = int(EventKind.POSITION)
        out["version"] = RECORD_VERSION
        out["ts_ns"] = time.monotonic_ns() if ts_ns is None else ts_ns
        out["wall_ns"] = time.time_ns()
        out["venue"] = [v for v, _ in self._keys]
        out["asset"] = [a for _, a in self._keys]
        out["balance"] = self.balance[: self.n]
        out["avg_cost"] = self.avg_cost[: self.n]
        out["realized_pnl"] = self.realized_pnl[: self.n]
        out["unrealized_pnl"] = unrealized
        out["fees"] = self.fees[: self.n]
        out["exposure"] = exposure
        return out


def read_journal(directory: str | os.PathLike, name: str = "fills", dtype=FILL_DTYPE, batch: int = 4096):
    """Every committed record of a journal, in order (a private reader whose cursor is removed after)."""
    reader_name = f"rebuild-{os.getpid()}-{time.monotonic_ns()}"
    reader = JournalReader.open(directory, name, dtype, reader_name)
    try:
        while True:
            chunk = reader.poll(batch)
            if not len(chunk):
                return
            yield from chunk
    finally:
        reader.close()
        # A cursor left behind at 0 would stop ``prune`` from ever removing a file.
        (Path(directory) / "cursors" / f"{name}.{reader_name}.cursor").unlink(missing_ok=True)


def rebuild_from_journal(directory: str | os.PathLike, name: str = "fills") -> PositionTracker:
    """A tracker rebuilt from every fill of the FILL journal in ``directory``."""
    return PositionTracker.rebuild(read_journal(directory, name))
