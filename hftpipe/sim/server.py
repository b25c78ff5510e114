"""``SimExchange``: the offline exchange simulator's servers, clock and event loop.

One WebSocket server (``websockets``, no compression) and, where the venue needs REST, one
HTTP server (``aiohttp``) per venue, on ``127.0.0.1`` with ephemeral ports unless configured.
A single pacing task draws events from the market model at the configured total rate, turns
them into each venue's frames (:mod:`hftpipe.sim.venues`) and writes them to the subscribed
connections; scenarios and faults act on the same sim clock.

Usage::

    cfg = SimConfig(venues=("binance", "binanceusdm"), symbols=("BTC/USDT", "ETH/USDT"),
                    seed=7, rate=5000, scenario="cross_exchange", ground_truth="gt.jsonl")
    with SimExchange(cfg) as sim:            # background thread, returns when listening
        urls = sim.urls()                    # {"binance": {"ws": "ws://127.0.0.1:PORT",
        ...                                  #              "rest": "http://127.0.0.1:PORT"}, ...}
    # or inside a running event loop:  async with SimExchange(cfg) as sim: ...
    # or as a process:                 hftpipe sim --venues binance --rate 5000

Determinism: the market model, the scenario and the fault schedule run on a sim clock in which
the k-th event happens at a fixed time, whatever the sockets do; events are generated for
every (venue, symbol) whether or not someone listens. So two runs with the same config give the
same event (same update id, same bytes, given a fixed ``epoch_ms``) for every stream; with
``start_paused=True`` and :meth:`SimExchange.resume` after subscribing, a client sees the
identical frame sequence from the first frame on.

Rate: ``rate`` is the total number of book events per second over all venues and symbols
(split by the instruments' ``activity``). Frames are written as raw WebSocket frames straight
to each connection's transport, one write per connection per pacing batch (~1 ms), which is
what lets one Python process serve tens of thousands of events per second. A connection whose
write buffer exceeds ``max_write_buffer`` is dropped as a slow consumer (as venues do).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import inspect
import json
import logging
import os
import struct
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import numpy as np
from aiohttp import web
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from hftpipe.sim.faults import FaultSpec, build_schedules
from hftpipe.sim.model import Book, MarketModel, ModelParams, make_instrument
from hftpipe.sim.scenarios import Scenario, make_scenario
from hftpipe.sim.venues import Reject, RestRequest, RestResponse, SimSymbol, SimVenueProtocol, get_protocol

log = logging.getLogger("hftpipe.sim")

_H16 = struct.Struct("!BBH")
_H64 = struct.Struct("!BBQ")


@dataclass
class SimConfig:
    """Everything the simulator needs; every field has a default."""

    venues: Sequence[str] = ("binance", "binanceusdm")
    #: unified symbols for every venue, or a mapping venue -> symbols
    symbols: Sequence[str] | Mapping[str, Sequence[str]] = ("BTC/USDT", "ETH/USDT")
    seed: int = 1
    rate: float = 2000.0  # total book events per second, all venues and symbols together
    scenario: str = "quiet"
    scenario_params: Mapping[str, Any] = field(default_factory=dict)
    ground_truth: str | os.PathLike | None = None  # JSON lines, one per injected opportunity
    fault_log: str | os.PathLike | None = None  # JSON lines, one per injected fault
    faults: Sequence[FaultSpec | Mapping] = ()
    host: str = "127.0.0.1"
    #: fixed ports per venue, e.g. {"binance": {"ws": 9100, "rest": 9101}}; default ephemeral
    ports: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    latency_ms: Mapping[str, float] = field(default_factory=dict)  # one-way delay per venue
    epoch_ms: int | None = None  # event time of sim time 0; None = wall clock at start
    start_paused: bool = False  # market clock stopped until resume()
    model: ModelParams = field(default_factory=ModelParams)
    #: instrument overrides per venue and symbol: {"binance": {"BTC/USDT": {"tick": "0.1"}}}
    instruments: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(default_factory=dict)
    fees_bps: Mapping[str, float] = field(default_factory=dict)  # taker fees (ground truth)
    #: signed order endpoints: accounts, keys, fees, faults (``hftpipe.sim.orders.OrderSimConfig``
    #: or a mapping of its fields); None = one account with the documented test key
    orders: Any = None
    max_batch: int = 4096  # events per pacing step at most (then the loop yields)
    max_write_buffer: int = 32 * 2**20
    ws_max_size: int = 2**20
    ping_interval: float | None = 20.0

    def symbols_for(self, venue: str) -> list[str]:
        if isinstance(self.symbols, Mapping):
            return list(self.symbols.get(venue, ()))
        return list(self.symbols)

    @classmethod
    def from_hft_config(cls, cfg: Any, **overrides: Any) -> SimConfig:
        """From a loaded ``hftpipe.config`` Config: its enabled venues and symbols, taker fees
        and ``simulator`` block (``message_rate_per_s`` is per venue and symbol there)."""
        sim = cfg.simulator
        ex = cfg.market_data.exchanges
        venues = [v for v, e in ex.items() if e.enabled]
        symbols = {v: list(ex[v].symbols) for v in venues}
        n = sum(len(s) for s in symbols.values()) or 1
        ports = {}
        if getattr(sim, "port", 0):
            for i, v in enumerate(venues):
                ports[v] = {"ws": sim.port + 2 * i, "rest": sim.port + 2 * i + 1}
        kw: dict[str, Any] = dict(
            venues=venues, symbols=symbols, seed=sim.seed, rate=float(sim.message_rate_per_s) * n,
            scenario=sim.scenario, faults=[FaultSpec.from_any(f) for f in sim.faults], host=sim.host,
            ports=ports, latency_ms={v: float(sim.latency_ms.get(v, 0.0)) for v in venues},
            fees_bps={v: float(ex[v].taker_fee_bps) for v in venues},
        )
        kw.update(overrides)
        return cls(**kw)


class SimConnection:
    """One client WebSocket connection (the ``Connection`` protocols see)."""

    def __init__(self, server: SimExchange, venue: str, path: str, raw_query: str):
        self.server = server
        self.venue = venue
        self.path = path
        self.raw_query = raw_query
        self.query: dict[str, str] = dict(parse_qsl(raw_query, keep_blank_values=True))
        self.state: dict[str, Any] = {}
        self.ws: ServerConnection | None = None
        self.transport: asyncio.Transport | None = None
        self.out: list = []  # texts (or (due, text) with latency) waiting for the flush
        self.delay = 0.0  # one-way latency, sim seconds
        self.active = False
        self.closed = False
        self._subs: list[tuple[SimSymbol, Any]] = []
        self.frames = 0
        self.bytes = 0
        self.peer = ""

    # -- protocol API ----------------------------------------------------------------------
    def subscribe(self, sym: SimSymbol, tag: Any = None) -> bool:
        if self.closed:
            return False
        for s, t in self._subs:
            if s is sym and t == tag:
                return False
        self._subs.append((sym, tag))
        if self.active:
            sym.subs.append((self, tag))
        return True

    def unsubscribe(self, sym: SimSymbol, tag: Any = None) -> bool:
        for i, (s, t) in enumerate(self._subs):
            if s is sym and t == tag:
                del self._subs[i]
                if self.active:
                    with contextlib.suppress(ValueError):
                        sym.subs.remove((self, tag))
                return True
        return False

    def subscriptions(self) -> list[tuple[SimSymbol, Any]]:
        return list(self._subs)

    def send(self, text: str) -> None:
        self.write([text])

    # -- server side -----------------------------------------------------------------------
    def activate(self, ws: ServerConnection) -> None:
        self.ws = ws
        self.transport = ws.transport
        self.active = True
        with contextlib.suppress(Exception):
            self.peer = "{}:{}".format(*ws.remote_address[:2])
        for sym, tag in self._subs:
            sym.subs.append((self, tag))

    def deactivate(self) -> None:
        if self.active:
            for sym, tag in self._subs:
                with contextlib.suppress(ValueError):
                    sym.subs.remove((self, tag))
        self.active = False
        self.closed = True
        self.out.clear()

    def is_open(self) -> bool:
        return (not self.closed and self.ws is not None and self.ws.protocol.state is State.OPEN
                and not self.transport.is_closing())

    def write(self, texts: Sequence[str]) -> None:
        """Write text frames now (raw WebSocket frames, one transport write)."""
        if not texts or not self.is_open():
            return
        parts = []
        n_bytes = 0
        for s in texts:
            b = s.encode()
            n = len(b)
            if n < 126:
                parts.append(bytes((0x81, n)))
            elif n < 65536:
                parts.append(_H16.pack(0x81, 126, n))
            else:
                parts.append(_H64.pack(0x81, 127, n))
            parts.append(b)
            n_bytes += n
        tr = self.transport
        tr.write(b"".join(parts))
        self.frames += len(texts)
        self.bytes += n_bytes
        if tr.get_write_buffer_size() > self.server.config.max_write_buffer:
            log.warning("sim %s: dropping slow consumer %s (%d bytes unsent)", self.venue, self.peer,
                        tr.get_write_buffer_size())
            self.server._log_fault({"kind": "slow_consumer", "venue": self.venue, "peer": self.peer})
            self.deactivate()
            tr.abort()


class _VenueRuntime:
    """Per-venue server state."""

    def __init__(self, venue: str, proto: SimVenueProtocol):
        self.venue = venue
        self.proto = proto
        self.symbols: dict[str, SimSymbol] = {}
        self.conns: set[SimConnection] = set()
        self.ws_server = None
        self.runner: web.AppRunner | None = None
        self.ws_port = 0
        self.rest_port = 0
        self.latency = 0.0
        self.mult = 1.0
        self.pending: list[list] = []  # [kind, symbol|None, remaining]
        self.refuse_until = -1.0
        self.slow_until = -1.0
        self.slow_delay = 0.0
        self.slow_count = 0
        self.slow_count_delay = 0.0
        self.events = 0
        self.dropped = 0
        self.rest_requests = 0
        self.frames_closed = 0  # frames of connections already gone
        self.bytes_closed = 0
        self.connections_total = 0
        self.routes: dict = {}


class SimExchange:
    """The simulator. See the module docstring."""

    def __init__(self, config: SimConfig | None = None, **kw: Any):
        if config is None:
            config = SimConfig(**kw)
        elif kw:
            raise TypeError("give a SimConfig or keyword arguments, not both")
        self.config = config
        if config.rate <= 0:
            raise ValueError("rate must be > 0")
        if not config.venues:
            raise ValueError("no venues")
        self._venues: dict[str, _VenueRuntime] = {}
        specs = []
        for v in config.venues:
            if v in self._venues:
                raise ValueError(f"venue {v} listed twice")
            proto = get_protocol(v)(self)
            self._venues[v] = _VenueRuntime(v, proto)
            syms = [proto.normalize_symbol(s) for s in config.symbols_for(v)]
            if not syms:
                raise ValueError(f"venue {v} has no symbols")
            for s in syms:
                over = dict(proto.instruments.get(s, {}))
                over.update(config.instruments.get(v, {}).get(s, {}))
                specs.append(make_instrument(v, s, over, config.model.asset_prices))
        self.model = MarketModel(specs, seed=config.seed, params=config.model)
        self._ss: list[SimSymbol] = []
        self._vs: list[_VenueRuntime] = []
        for b in self.model.books:
            vr = self._venues[b.venue]
            ss = SimSymbol(b.venue, b.symbol, b.spec, b)
            vr.proto.setup_symbol(ss)
            vr.symbols[b.symbol] = ss
            self._ss.append(ss)
            self._vs.append(vr)
        for v, vr in self._venues.items():
            vr.latency = float(config.latency_ms.get(v, 0.0)) / 1000.0
            vr.routes = vr.proto.rest_routes() if vr.proto.rest else {}
        self._last_seq: list[int] = [ss.state.get("last", 0) for ss in self._ss]
        self.scenario: Scenario = make_scenario(config.scenario, config.scenario_params, config.seed)
        self.scenario.bind(self)
        self._faults = build_schedules([FaultSpec.from_any(f) for f in config.faults], config.seed)
        for fs in self._faults:
            if fs.spec.venue is not None and fs.spec.venue not in self._venues:
                raise ValueError(f"fault for venue {fs.spec.venue!r}, which is not simulated")
            if fs.spec.symbol is not None:
                for v in [fs.spec.venue] if fs.spec.venue else list(self._venues):
                    if self._venues[v].proto.normalize_symbol(fs.spec.symbol) not in self._venues[v].symbols:
                        raise ValueError(f"fault for symbol {fs.spec.symbol!r}, which {v} does not list")
        self.ground_truth: list[dict] = []
        self.fault_log: list[dict] = []
        self._gt_file = None
        self._fault_file = None
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._timer_n = 0
        self._recompute_rates()
        # clock
        self._t0 = 0.0
        self._epoch_ms = 0
        self._t_next = 0.0
        self._cur_t = 0.0
        self._next_action = 0.0
        self._paused = config.start_paused
        self._paused_t = 0.0
        self._lag = 0.0
        self._dirty: list[SimConnection] = []
        self._delayed: set[SimConnection] = set()
        self._events_total = 0
        # lifecycle
        self._state = "new"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._market_task: asyncio.Task | None = None
        self._stopped: asyncio.Event | None = None
        self._resume_evt: asyncio.Event | None = None
        self._pending_conns: dict[int, SimConnection] = {}
        self._bg_tasks: set[asyncio.Future] = set()

    # ------------------------------------------------------------------------------------------
    # lifecycle

    async def start_async(self) -> SimExchange:
        if self._state != "new":
            raise RuntimeError(f"simulator already {self._state}")
        self._state = "starting"
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        self._resume_evt = asyncio.Event()
        cfg = self.config
        try:
            if cfg.ground_truth:
                self._gt_file = open(cfg.ground_truth, "w", encoding="utf-8")  # noqa: SIM115
            if cfg.fault_log:
                self._fault_file = open(cfg.fault_log, "w", encoding="utf-8")  # noqa: SIM115
            for v, vr in self._venues.items():
                ports = cfg.ports.get(v, {})
                vr.ws_server = await serve(
                    lambda ws, _v=v: self._ws_handler(ws, _v), cfg.host, int(ports.get("ws", 0)),
                    compression=None, max_size=cfg.ws_max_size, ping_interval=cfg.ping_interval,
                    ping_timeout=cfg.ping_interval, close_timeout=1.0,
                    process_request=lambda conn, req, _v=v: self._process_request(conn, req, _v),
                )
                vr.ws_port = vr.ws_server.sockets[0].getsockname()[1]
                if vr.proto.rest:
                    app = web.Application()
                    app.router.add_route("*", "/{tail:.*}", self._rest_handler(v))
                    vr.runner = web.AppRunner(app, access_log=None, handle_signals=False)
                    await vr.runner.setup()
                    site = web.TCPSite(vr.runner, cfg.host, int(ports.get("rest", 0)))
                    await site.start()
                    vr.rest_port = vr.runner.addresses[0][1]
        except BaseException:
            await self._close_servers()
            self._close_files()
            self._state = "stopped"
            raise
        self._epoch_ms = cfg.epoch_ms if cfg.epoch_ms is not None else time.time_ns() // 1_000_000
        self._t0 = time.perf_counter()
        if self._paused:
            self._paused_t = 0.0
        else:
            self._resume_evt.set()
        self._market_task = asyncio.create_task(self._market(), name="hftpipe-sim-market")
        self._state = "running"
        log.info("simulator running: %s", json.dumps(self.urls()))
        return self

    async def stop_async(self) -> None:
        if self._state not in ("running", "starting"):
            return
        self._state = "stopping"
        if self._market_task is not None:
            self._market_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._market_task
        try:
            self.scenario.finish(self._sim_now())
        except Exception:  # pragma: no cover - never lose the shutdown
            log.exception("scenario finish failed")
        self._flush(float("inf"))
        await self._close_servers()
        self._close_files()
        self._pending_conns.clear()
        self._state = "stopped"
        if self._stopped is not None:
            self._stopped.set()

    async def _close_servers(self) -> None:
        for vr in self._venues.values():
            for c in list(vr.conns):
                c.deactivate()
            if vr.ws_server is not None:
                vr.ws_server.close(close_connections=True)
                try:
                    await asyncio.wait_for(vr.ws_server.wait_closed(), 3.0)
                except (TimeoutError, Exception):  # pragma: no cover
                    for c in list(vr.conns):
                        if c.transport is not None:
                            c.transport.abort()
            if vr.runner is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(vr.runner.cleanup(), 3.0)

    def _close_files(self) -> None:
        for f in (self._gt_file, self._fault_file):
            if f is not None:
                with contextlib.suppress(Exception):
                    f.close()
        self._gt_file = self._fault_file = None

    async def __aenter__(self) -> SimExchange:
        return await self.start_async()

    async def __aexit__(self, *exc) -> None:
        await self.stop_async()

    def run_in_thread(self, timeout: float = 30.0) -> SimExchange:
        """Run the simulator's event loop in a daemon thread; return once it listens."""
        ready = threading.Event()
        err: list[BaseException] = []

        def main() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                try:
                    loop.run_until_complete(self.start_async())
                except BaseException as exc:  # noqa: BLE001 - handed to the caller
                    err.append(exc)
                    return
                finally:
                    ready.set()
                loop.run_until_complete(self._stopped.wait())
            finally:
                tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
                for t in tasks:
                    t.cancel()
                if tasks:
                    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=main, name="hftpipe-sim", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise TimeoutError("simulator did not start")
        if err:
            self._thread.join(5)
            raise err[0]
        return self

    def start(self) -> SimExchange:
        """Start in a background thread (inside a running loop use ``await start_async()``)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return self.run_in_thread()
        raise RuntimeError("an event loop is running here: use 'await sim.start_async()' or 'async with sim'")

    def stop(self, timeout: float = 15.0) -> None:
        """Stop a simulator started with ``start()``/``run_in_thread()``; safe to call twice."""
        if self._thread is None:
            return
        loop = self._loop
        if loop is not None and not loop.is_closed() and self._thread.is_alive():
            fut = asyncio.run_coroutine_threadsafe(self.stop_async(), loop)
            with contextlib.suppress(Exception):
                fut.result(timeout)
        self._thread.join(timeout)
        self._thread = None

    def __enter__(self) -> SimExchange:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    async def serve(self, duration: float | None = None, on_ready: Callable[[SimExchange], None] | None = None
                    ) -> None:
        """Run in the current loop until ``duration`` seconds pass or the task is cancelled."""
        await self.start_async()
        try:
            if on_ready is not None:
                on_ready(self)
            if duration is None:
                await self._stopped.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopped.wait(), duration)
        finally:
            await self.stop_async()

    # ------------------------------------------------------------------------------------------
    # public helpers (thread-safe: run on the simulator's loop)

    def urls(self) -> dict[str, dict[str, str | None]]:
        """Per venue ``{"ws": "ws://host:port", "rest": "http://host:port" or None}``."""
        host = self.config.host
        out = {}
        for v, vr in self._venues.items():
            out[v] = {"ws": f"ws://{host}:{vr.ws_port}",
                      "rest": f"http://{host}:{vr.rest_port}" if vr.proto.rest else None}
        return out

    def call(self, fn: Callable[..., Any], *args: Any, timeout: float = 10.0) -> Any:
        """Run ``fn(*args)`` on the simulator's loop (between events) and return its result."""
        loop = self._loop
        if loop is None or self._state not in ("running", "starting"):
            return fn(*args)
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            return fn(*args)

        async def run():
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), loop).result(timeout)

    def pause(self) -> dict[str, int]:
        """Stop the market clock (frames already queued are flushed); returns
        ``{"venue:symbol": last sequence id}``."""

        def do():
            if not self._paused:
                self._paused_t = self._sim_now()
                self._paused = True
                self._resume_evt.clear()
                self._flush(float("inf"))
            return {f"{ss.venue}:{ss.symbol}": self._last_seq[i] for i, ss in enumerate(self._ss)}

        return self.call(do)

    def resume(self) -> None:
        """Restart the market clock where it stopped."""

        def do():
            if self._paused:
                self._t0 = time.perf_counter() - self._paused_t
                self._paused = False
                self._resume_evt.set()

        self.call(do)

    def book(self, venue: str, symbol: str, depth: int | None = 20) -> dict[str, Any]:
        """The model's authoritative book: ``{"seq": last id, "bids": (n,2) float64 best
        first, "asks": ..., "bid_levels": [(ticks, lots)], "ask_levels": [...]}``."""

        def do():
            b = self.model.book(venue, self._venues[venue].proto.normalize_symbol(symbol))
            bids, asks = b.to_arrays(depth)
            return {"seq": self._last_seq[b.index], "bids": bids, "asks": asks,
                    "bid_levels": b.bids(depth), "ask_levels": b.asks(depth)}

        return self.call(do)

    def protocol(self, venue: str) -> SimVenueProtocol:
        """The venue's protocol object (its state lives on the simulator's loop: read or change
        it through :meth:`call`)."""
        return self._venues[venue].proto

    def seq(self, venue: str, symbol: str) -> int:
        return self.call(lambda: self._last_seq[self.model.book(venue, symbol).index])

    def stats(self) -> dict[str, Any]:
        def do():
            out: dict[str, Any] = {"sim_time_s": self._sim_now(), "lag_s": self._lag,
                                   "events": self._events_total, "rate": self._rate, "venues": {}}
            for v, vr in self._venues.items():
                frames = vr.frames_closed + sum(c.frames for c in vr.conns)
                nbytes = vr.bytes_closed + sum(c.bytes for c in vr.conns)
                out["venues"][v] = {"events": vr.events, "dropped": vr.dropped, "frames_sent": frames,
                                    "bytes_sent": nbytes, "connections": len(vr.conns),
                                    "connections_total": vr.connections_total,
                                    "rest_requests": vr.rest_requests}
            return out

        return self.call(do)

    # ------------------------------------------------------------------------------------------
    # VenueContext / ScenarioContext

    def now_ms(self) -> int:
        return self._epoch_ms + int(self._sim_now() * 1000)

    def event_ms(self, t: float) -> int:
        return self._epoch_ms + int(t * 1000)

    def wall_ns(self) -> int:
        return time.time_ns()

    def symbol(self, unified: str) -> SimSymbol | None:  # pragma: no cover - for protocols
        for ss in self._ss:
            if ss.symbol == unified:
                return ss
        return None

    def symbols(self) -> list[SimSymbol]:  # pragma: no cover - for protocols
        return list(self._ss)

    def emit(self, book: Book, bids: dict[int, int], asks: dict[int, int]) -> int:
        return self._emit(book.index, bids, asks, self._cur_t)

    def seq_last(self, book: Book) -> int:
        return self._last_seq[book.index]

    def fee_bps(self, venue: str) -> float:
        if venue in self.config.fees_bps:
            return float(self.config.fees_bps[venue])
        return float(self._venues[venue].proto.taker_fee_bps)

    def record(self, entry: dict) -> None:
        entry = {k: (float(v) if isinstance(v, np.floating) else v) for k, v in entry.items()}
        self.ground_truth.append(entry)
        if self._gt_file is not None:
            self._gt_file.write(json.dumps(entry, separators=(",", ":")) + "\n")
            self._gt_file.flush()

    def _log_fault(self, entry: dict) -> None:
        entry.setdefault("wall_ns", time.time_ns())
        entry.setdefault("t", round(self._cur_t, 6))
        self.fault_log.append(entry)
        if self._fault_file is not None:
            self._fault_file.write(json.dumps(entry, separators=(",", ":")) + "\n")
            self._fault_file.flush()

    # ------------------------------------------------------------------------------------------
    # the market

    def _sim_now(self) -> float:
        if self._paused:
            return self._paused_t
        return time.perf_counter() - self._t0

    def _recompute_rates(self) -> None:
        w = [b.weight for b in self.model.books]
        total_w = sum(w)
        eff = [wi * self._vs[i].mult for i, wi in enumerate(w)]
        self._cum = list(np.cumsum(eff).tolist())
        self._cum_total = self._cum[-1]
        self._rate = self.config.rate * self._cum_total / total_w
        self._dt = 1.0 / self._rate

    async def _market(self) -> None:
        model = self.model
        books = model.books
        rand = model._r
        max_batch = self.config.max_batch
        min_sleep = 0.001
        perf = time.perf_counter
        try:
            while True:
                if self._paused:
                    await self._resume_evt.wait()
                    continue
                now = perf() - self._t0
                t = self._t_next
                n = 0
                cum, total = self._cum, self._cum_total
                dt = self._dt
                while t <= now and n < max_batch:
                    if t >= self._next_action:
                        self._cur_t = t
                        self._actions(t)
                        cum, total, dt = self._cum, self._cum_total, self._dt
                    i = bisect.bisect_right(cum, rand.uniform() * total)
                    if i >= len(books):
                        i = len(books) - 1
                    ch_b, ch_a = model.event(books[i])
                    self._emit(i, ch_b, ch_a, t)
                    t += dt
                    n += 1
                self._t_next = t
                self._cur_t = t
                self._flush(now)
                self._lag = now - t
                wake = t
                for c in self._delayed:
                    if c.out and c.out[0][0] < wake:
                        wake = c.out[0][0]
                delay = wake - (perf() - self._t0)
                if delay <= 0:
                    await asyncio.sleep(0)
                else:
                    await asyncio.sleep(max(delay, min_sleep))
        except asyncio.CancelledError:
            raise
        except Exception:  # pragma: no cover - a bug: keep the sockets up, say it loudly
            log.exception("simulator market loop failed")
            raise

    def _actions(self, t: float) -> None:
        m = self.model
        tick = m.params.tick_s
        if t >= m.t + tick:
            m.advance(t)
        if t >= self.scenario.next_t:
            self.scenario.step(t)
        for fs in self._faults:
            while fs.next_t <= t:
                if fs.pop(t):
                    self._fire(fs.spec, t)
        while self._timers and self._timers[0][0] <= t:
            _, _, fn = self._timers.pop(0)
            fn()
        nxt = m.t + tick
        nxt = min(nxt, self.scenario.next_t)
        for fs in self._faults:
            nxt = min(nxt, fs.next_t)
        if self._timers:
            nxt = min(nxt, self._timers[0][0])
        self._next_action = nxt

    def _add_timer(self, t: float, fn: Callable[[], None]) -> None:
        self._timer_n += 1
        bisect.insort(self._timers, (t, self._timer_n, fn))
        self._next_action = min(self._next_action, t)

    def _emit(self, i: int, ch_b: dict[int, int], ch_a: dict[int, int], t: float) -> int:
        ss = self._ss[i]
        vr = self._vs[i]
        proto = vr.proto
        seq = proto.advance(ss, len(ch_b) + len(ch_a))
        last = seq.last
        self._last_seq[i] = last
        vr.events += 1
        self._events_total += 1
        broken = corrupt = False
        if vr.pending:
            drop, broken, corrupt = self._event_faults(vr, ss, seq)
            if drop:
                return last
        subs = ss.subs
        if subs:
            payload = proto.encode_update(ss, seq, ch_b, ch_a, self._epoch_ms + int(t * 1000), corrupt)
            frame = proto.frame
            dirty = self._dirty
            if vr.latency:
                due = t + vr.latency
                for conn, tag in subs:
                    text = frame(conn, tag, payload)
                    if not conn.out:
                        self._delayed.add(conn)
                    if broken:
                        conn.out.append((due, proto.malformed(text)))
                    conn.out.append((due, text))
            else:
                for conn, tag in subs:
                    text = frame(conn, tag, payload)
                    if not conn.out:
                        dirty.append(conn)
                    if broken:
                        conn.out.append(proto.malformed(text))
                    conn.out.append(text)
        return last

    def _flush(self, now: float) -> None:
        for conn in self._dirty:
            if conn.out:
                conn.write(conn.out)
                conn.out.clear()
        self._dirty.clear()
        if self._delayed:
            for conn in list(self._delayed):
                out = conn.out
                k = 0
                while k < len(out) and out[k][0] <= now:
                    k += 1
                if k:
                    conn.write([x[1] for x in out[:k]])
                    del out[:k]
                if not out:
                    self._delayed.discard(conn)

    # ------------------------------------------------------------------------------------------
    # faults

    def _fire(self, spec: FaultSpec, t: float) -> None:
        venues = [spec.venue] if spec.venue else list(self._venues)
        for v in venues:
            vr = self._venues[v]
            entry = {"kind": spec.kind, "venue": v, "t": round(t, 6)}
            if spec.kind == "disconnect":
                n = 0
                for c in list(vr.conns):
                    n += 1
                    self._drop_connection(c, spec.mode)
                vr.refuse_until = t + spec.duration_s
                entry.update(connections=n, mode=spec.mode, refuse_s=spec.duration_s)
            elif spec.kind in ("gap", "malformed", "bad_checksum"):
                sym = vr.proto.normalize_symbol(spec.symbol) if spec.symbol else None
                vr.pending.append([spec.kind, sym, spec.count])
                entry.update(symbol=sym, count=spec.count, armed=True)
            elif spec.kind == "burst":
                vr.mult = spec.multiplier
                self._recompute_rates()

                def end_burst(vr=vr):
                    vr.mult = 1.0
                    self._recompute_rates()
                    self._log_fault({"kind": "burst_end", "venue": vr.venue})

                self._add_timer(t + spec.duration_s, end_burst)
                entry.update(multiplier=spec.multiplier, duration_s=spec.duration_s)
            elif spec.kind == "slow_snapshot":
                if spec.duration_s > 0:
                    vr.slow_until = t + spec.duration_s
                    vr.slow_delay = spec.delay_ms / 1000.0
                else:
                    vr.slow_count += spec.count
                    vr.slow_count_delay = spec.delay_ms / 1000.0
                entry.update(delay_ms=spec.delay_ms, duration_s=spec.duration_s, count=spec.count)
            self._log_fault(entry)

    def _event_faults(self, vr: _VenueRuntime, ss: SimSymbol, seq) -> tuple[bool, bool, bool]:
        drop = broken = corrupt = False
        for item in list(vr.pending):
            kind, sym, _ = item
            if sym is not None and sym != ss.symbol:
                continue
            entry = {"kind": kind, "venue": vr.venue, "symbol": ss.symbol, "seq": seq.last,
                     "subscribers": len(ss.subs)}
            if hasattr(seq, "first"):
                entry["first"] = seq.first
            if kind == "gap":
                drop = True
                vr.dropped += 1
            elif kind == "malformed":
                broken = True
            elif kind == "bad_checksum":
                if vr.proto.supports_checksum:
                    corrupt = True
                else:
                    entry["unsupported"] = True
            item[2] -= 1
            if item[2] <= 0:
                vr.pending.remove(item)
            self._log_fault(entry)
        return drop, broken, corrupt

    def _drop_connection(self, c: SimConnection, mode: str) -> None:
        c.deactivate()
        ws = c.ws
        if ws is None:
            return
        if mode == "close":
            task = asyncio.ensure_future(ws.close(1001, "going away"))
            self._bg_tasks.add(task)
            task.add_done_callback(self._bg_tasks.discard)
        else:
            ws.transport.abort()

    def _snapshot_delay(self, vr: _VenueRuntime) -> float:
        now = self._sim_now()
        delay = 0.0
        if now < vr.slow_until:
            delay = vr.slow_delay
        if vr.slow_count > 0:
            vr.slow_count -= 1
            delay = max(delay, vr.slow_count_delay)
        return delay

    # ------------------------------------------------------------------------------------------
    # sockets

    def _process_request(self, ws: ServerConnection, request, venue: str):
        vr = self._venues[venue]
        if self._state != "running":
            return ws.respond(503, "Service Unavailable\n")
        if self._sim_now() < vr.refuse_until:
            return ws.respond(503, "Service Unavailable\n")
        parts = urlsplit(request.path)
        conn = SimConnection(self, venue, parts.path, parts.query)
        conn.delay = vr.latency
        try:
            first = vr.proto.on_connect(conn)
        except Reject as r:
            return ws.respond(r.status, (r.body or "Bad Request") + "\n")
        conn.state["_first"] = first
        self._pending_conns[id(ws)] = conn
        return None

    async def _ws_handler(self, ws: ServerConnection, venue: str) -> None:
        vr = self._venues[venue]
        conn = self._pending_conns.pop(id(ws), None)
        if conn is None or self._state != "running":
            return
        first = conn.state.pop("_first", [])
        conn.activate(ws)
        vr.conns.add(conn)
        vr.connections_total += 1
        try:
            if first:
                conn.write(first)
            async for msg in ws:
                if isinstance(msg, bytes):
                    msg = msg.decode("utf-8", "replace")
                try:
                    replies = vr.proto.on_message(conn, msg)
                except Exception:
                    log.exception("sim %s: protocol failed on %r", venue, msg[:200])
                    continue
                if replies:
                    conn.write(replies)
        except ConnectionClosed:
            pass
        finally:
            conn.deactivate()
            vr.conns.discard(conn)
            vr.frames_closed += conn.frames
            vr.bytes_closed += conn.bytes

    def _rest_handler(self, venue: str):
        async def handler(request: web.Request) -> web.StreamResponse:
            return await self._rest(request, venue)

        return handler

    async def _rest(self, request: web.Request, venue: str) -> web.StreamResponse:
        vr = self._venues[venue]
        vr.rest_requests += 1
        route = vr.routes.get(request.path)
        if route is None or request.method not in route.methods:
            resp = RestResponse(404 if route is None else 405, '{"code":-1,"msg":"Not found"}')
        else:
            try:
                if route.raw:
                    body = await request.text() if request.body_exists else ""
                    out = route.handler(RestRequest(request.method, request.path, request.query,
                                                    request.rel_url.raw_query_string, request.headers, body))
                    resp = await out if inspect.isawaitable(out) else out
                else:
                    resp = route.handler(request.query)
            except Exception:
                log.exception("sim %s: REST handler failed for %s", venue, request.path_qs)
                resp = RestResponse(500, '{"code":-1000,"msg":"internal error"}')
            if route.snapshot:
                delay = self._snapshot_delay(vr)
                if delay > 0:
                    self._log_fault({"kind": "slow_snapshot", "venue": venue, "path": request.path_qs,
                                     "delay_ms": delay * 1000})
                    await asyncio.sleep(delay)
        headers = {"Content-Type": resp.content_type}
        if resp.headers:
            headers.update(resp.headers)
        return web.Response(status=resp.status, body=resp.body.encode(), headers=headers)

