"""A minimal Binance depth client written for the tests with plain websockets + aiohttp + json.

It is deliberately independent of ``hftpipe.feeds``: it follows Binance's documented local
order book rule, so a simulator that passes with it speaks Binance, not "whatever our parser
accepts".

Spot:  drop events with ``u <= lastUpdateId``; the first applied event has
       ``U <= lastUpdateId + 1 <= u``; then every event has ``U == previous u + 1``.
USD-M: drop events with ``u < lastUpdateId``; the first applied event has
       ``U <= lastUpdateId <= u`` or ``pu == lastUpdateId``; then ``pu == previous u``.
"""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import websockets


class GapError(Exception):
    pass


class LocalBook:
    def __init__(self, venue: str, native: str):
        self.venue = venue
        self.native = native
        self.bids: dict[str, str] = {}
        self.asks: dict[str, str] = {}
        self.last_u = -1
        self.synced = False
        self.buffer: list[dict] = []
        self.history: list[tuple[int, float, float, float, float, int]] = []  # (u, bid, ask, bsz, asz, ns)
        self.applied = 0
        self.gaps = 0
        self.ready = False  # snapshot loaded: offer events directly instead of buffering

    def load(self, snap: dict) -> None:
        self.bids = {p: q for p, q in snap["bids"]}
        self.asks = {p: q for p, q in snap["asks"]}
        self.last_u = snap["lastUpdateId"]
        self.synced = False
        self.record()

    def _apply_levels(self, ev: dict) -> None:
        for side, levels in ((self.bids, ev["b"]), (self.asks, ev["a"])):
            for p, q in levels:
                if float(q) == 0.0:
                    side.pop(p, None)
                else:
                    side[p] = q

    def offer(self, ev: dict, futures: bool) -> None:
        """Apply one event by the documented rule (raises GapError on a broken chain)."""
        U, u = ev["U"], ev["u"]
        L = self.last_u
        if not self.synced:
            if (u < L) if futures else (u <= L):
                return
            ok = (U <= L <= u or ev.get("pu") == L) if futures else (U <= L + 1 <= u)
            if not ok:
                raise GapError(f"{self.native}: first event {U}..{u} does not straddle {L}")
            self.synced = True
        else:
            ok = ev["pu"] == L if futures else U == L + 1
            if not ok:
                raise GapError(f"{self.native}: event {U}..{u} (pu {ev.get('pu')}) after {L}")
        self._apply_levels(ev)
        self.last_u = u
        self.applied += 1
        self.record()

    def record(self) -> None:
        bb = max(self.bids, key=float) if self.bids else None
        ba = min(self.asks, key=float) if self.asks else None
        self.history.append((self.last_u, float(bb) if bb else float("nan"), float(ba) if ba else float("nan"),
                             float(self.bids[bb]) if bb else 0.0, float(self.asks[ba]) if ba else 0.0,
                             time.time_ns()))

    def top(self, n: int = 20) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        bids = sorted(((float(p), float(q)) for p, q in self.bids.items()), reverse=True)[:n]
        asks = sorted((float(p), float(q)) for p, q in self.asks.items())[:n]
        return bids, asks

    def best(self) -> tuple[float, float]:
        return max(map(float, self.bids)), min(map(float, self.asks))


class BinanceClient:
    """Keeps local books of some symbols of one Binance venue (spot or USD-M)."""

    def __init__(self, urls: dict, venue: str, symbols: list[str], stream_suffix: str = "@depth@100ms"):
        self.venue = venue
        self.futures = venue == "binanceusdm"
        self.ws_url = urls[venue]["ws"]
        self.rest_url = urls[venue]["rest"]
        self.natives = [s.replace("/", "") for s in symbols]
        self.books = {n: LocalBook(venue, n) for n in self.natives}
        self.streams = {f"{n.lower()}{stream_suffix}": n for n in self.natives}
        self.ws = None
        self.http: aiohttp.ClientSession | None = None
        self.frames: list[str] = []
        self.resyncs = 0
        self._task: asyncio.Task | None = None

    @property
    def api(self) -> str:
        return "/fapi/v1" if self.futures else "/api/v3"

    async def connect(self) -> None:
        url = self.ws_url + "/stream?streams=" + "/".join(self.streams)
        self.ws = await websockets.connect(url, compression=None, max_size=None, close_timeout=1.0)
        self.http = aiohttp.ClientSession()

    async def snapshot(self, native: str) -> dict:
        async with self.http.get(f"{self.rest_url}{self.api}/depth",
                                 params={"symbol": native, "limit": 1000}) as r:
            assert r.status == 200, await r.text()
            return json.loads(await r.text())

    async def sync(self) -> None:
        """Fetch every snapshot (diffs keep arriving into the buffer meanwhile)."""
        self._task = asyncio.create_task(self._reader())
        for n, book in self.books.items():
            book.load(await self.snapshot(n))
            pending, book.buffer = book.buffer, []
            for ev in pending:
                book.offer(ev, self.futures)
            book.ready = True

    async def _reader(self) -> None:
        async for text in self.ws:
            self.frames.append(text)
            msg = json.loads(text)
            ev = msg["data"]
            book = self.books[self.streams[msg["stream"]]]
            if not book.ready:
                book.buffer.append(ev)
                continue
            try:
                book.offer(ev, self.futures)
            except GapError:
                book.gaps += 1
                self.resyncs += 1
                book.ready = False
                book.load(await self.snapshot(book.native))
                book.ready = True

    async def wait_for(self, seqs: dict[str, int], timeout: float = 10.0) -> None:
        """Wait until every book has applied up to ``seqs[native]``."""
        deadline = time.monotonic() + timeout
        while any(self.books[n].last_u < s for n, s in seqs.items()):
            if self._task is not None and self._task.done():
                self._task.result()
                raise AssertionError("reader stopped")
            if time.monotonic() > deadline:
                raise AssertionError({n: (self.books[n].last_u, s) for n, s in seqs.items()})
            await asyncio.sleep(0.01)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, websockets.ConnectionClosed):
                pass
        if self.ws is not None:
            await self.ws.close()
        if self.http is not None:
            await self.http.close()


def seqs_for(pause_result: dict[str, int], venue: str) -> dict[str, int]:
    """``sim.pause()`` result -> {native: last id} for one venue."""
    out = {}
    for key, last in pause_result.items():
        v, sym = key.split(":", 1)
        if v == venue:
            out[sym.replace("/", "")] = last
    return out
