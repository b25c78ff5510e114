"""The feed process: one OS process per venue, WebSocket in, BookRings out.

All decisions live in ``FeedEngine`` and the venue class (pure, I/O-free); this module owns the
I/O around them: the connection, subscriptions, REST snapshots, reconnects with jittered
exponential backoff, stale-feed detection, heartbeats, and stamping the stage timestamps into
the rings and the ControlBlock histograms.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from dataclasses import dataclass, field

import websockets

from hftpipe.feeds.base import FrameKind, SyncResult
from hftpipe.feeds.engine import FeedEngine
from hftpipe.feeds.registry import make_venue
from hftpipe.shm.book_ring import FLAG_RESYNC, FLAG_STALE, FLAG_VALID, BookRing, ring_publish
from hftpipe.shm.control import ControlBlock, Counter, ProcState, Stage, ctl_count, ctl_record_latency

log = logging.getLogger(__name__)

# Plain ints for numba: typing an IntEnum member at each call costs ~0.5 ms (numba resolves
# the whole enum class every time), which once capped a feed at under 10k messages/s.
_RESULT_COUNTER = {
    SyncResult.GAP: int(Counter.GAPS),
    SyncResult.CHECKSUM_BAD: int(Counter.CHECKSUM_BAD),
    SyncResult.CROSSED: int(Counter.CROSSED),
    SyncResult.INVALID: int(Counter.SKIPPED),
}
_C_PUBLISHES = int(Counter.PUBLISHES)
_C_MESSAGES = int(Counter.MESSAGES)
_C_BYTES_IN = int(Counter.BYTES_IN)
_C_RESYNCS = int(Counter.RESYNCS)
_C_SKIPPED = int(Counter.SKIPPED)
_S_PARSE = int(Stage.FRAME_TO_PARSED)
_S_APPLY = int(Stage.PARSED_TO_APPLIED)
_S_PUBLISH = int(Stage.APPLIED_TO_PUBLISHED)
_S_TOTAL = int(Stage.RECV_TO_PUBLISHED)


@dataclass(frozen=True)
class FeedSpec:
    """Everything a feed process needs, picklable for the spawn context."""

    venue: str
    symbols: tuple[str, ...]
    ring_names: dict[str, str]  # unified symbol -> BookRing segment name
    control_name: str | None = None
    proc_slot: int = 0
    ws_url: str | None = None
    rest_url: str | None = None
    book_capacity: int = 5000
    stale_after_s: float = 10.0
    backoff_min_s: float = 0.5
    backoff_max_s: float = 30.0
    heartbeat_interval_s: float = 0.1
    cpu: int | None = None
    venue_options: dict = field(default_factory=dict)


class RateLimitedLog:
    """At most one line per key per interval, with the count of what was suppressed."""

    def __init__(self, interval_s: float = 5.0):
        self.interval_s = interval_s
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def warning(self, key: str, msg: str, *args) -> None:
        now = time.monotonic()
        if now - self._last.get(key, -1e18) >= self.interval_s:
            n = self._suppressed.pop(key, 0)
            log.warning(msg + " suppressed=%d", *args, n)
            self._last[key] = now
        else:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1


class FeedRunner:
    """Drives one venue connection; usable in-process (tests) or as the body of a feed process."""

    def __init__(self, spec: FeedSpec, recorder=None):
        self.spec = spec
        self.recorder = recorder  # hftpipe.feeds.recording.Recorder, when recording
        self.venue = make_venue(spec.venue, ws_url=spec.ws_url, rest_url=spec.rest_url, **spec.venue_options)
        self.rings = {s: BookRing.attach(spec.ring_names[s]) for s in spec.symbols}
        for ring in self.rings.values():
            ring.claim_writer()
        self.ctl = ControlBlock.attach(spec.control_name) if spec.control_name else None
        self.ctl_words = self.ctl.words if self.ctl else None
        self.slot = spec.proc_slot
        self.engine = FeedEngine(self.venue, list(spec.symbols), capacity=spec.book_capacity,
                                 publish=self._publish, on_invalid=self._on_invalid)
        self.rlog = RateLimitedLog()
        self.stopping = asyncio.Event()
        self.connected = asyncio.Event()
        self.reconnects = 0
        self._snapshot_tasks: set[asyncio.Task] = set()
        self._last_frame_ns = 0

    # -- callbacks from the engine (hot path) ----------------------------------------------------
    def _publish(self, symbol, book, update, recv_ns, parsed_ns, applied_ns):
        ring = self.rings[symbol]
        ring_publish(ring.words, ring.fwords, book.bids, book.n_bids, book.asks, book.n_asks,
                     book.last_id, book.exch_ns, recv_ns, parsed_ns, applied_ns, FLAG_VALID, 0, True)
        w = self.ctl_words
        if w is not None:
            published_ns = time.monotonic_ns()
            ctl_count(w, self.slot, _C_PUBLISHES, 1)
            ctl_record_latency(w, self.slot, _S_PARSE, parsed_ns - recv_ns)
            ctl_record_latency(w, self.slot, _S_APPLY, applied_ns - parsed_ns)
            ctl_record_latency(w, self.slot, _S_PUBLISH, published_ns - applied_ns)
            ctl_record_latency(w, self.slot, _S_TOTAL, published_ns - recv_ns)

    def _on_invalid(self, symbol, result):
        self.rings[symbol].publish_invalid(FLAG_RESYNC, recv_ns=time.monotonic_ns())
        if self.ctl_words is not None:
            ctl_count(self.ctl_words, self.slot, _RESULT_COUNTER.get(result, _C_SKIPPED), 1)
            ctl_count(self.ctl_words, self.slot, _C_RESYNCS, 1)
        self.rlog.warning(f"invalid:{symbol}", "event=book_invalid venue=%s symbol=%s reason=%s",
                          self.spec.venue, symbol, SyncResult(result).name.lower())

    def _invalidate_all(self, flags: int) -> None:
        now = time.monotonic_ns()
        for symbol, ring in self.rings.items():
            self.engine.books[symbol].invalidate()
            ring.publish_invalid(flags, recv_ns=now)

    def _count(self, counter: Counter, n: int = 1) -> None:
        """Count a rare event (the per-frame counters use the precomputed ints above)."""
        if self.ctl_words is not None:
            ctl_count(self.ctl_words, self.slot, int(counter), n)

    # -- I/O -------------------------------------------------------------------------------------
    async def run(self) -> None:
        """Connect, stream, and reconnect until ``stop()``."""
        if self.ctl:
            self.ctl.set_state(self.slot, ProcState.RUNNING)
        heartbeat = asyncio.create_task(self._heartbeat_loop())
        backoff = self.spec.backoff_min_s
        try:
            while not self.stopping.is_set():
                started = time.monotonic()
                try:
                    await self._session()
                except (TimeoutError, OSError, websockets.WebSocketException) as exc:
                    self.rlog.warning("disconnect", "event=feed_disconnected venue=%s error=%r",
                                      self.spec.venue, exc)
                self.connected.clear()
                if self.stopping.is_set():
                    break
                self.reconnects += 1
                self._count(Counter.RECONNECTS)
                self._invalidate_all(FLAG_RESYNC)
                if time.monotonic() - started > 60:
                    backoff = self.spec.backoff_min_s  # a long healthy session resets the backoff
                # Full jitter: many feeds reconnecting at once must not stampede the venue.
                delay = random.uniform(self.spec.backoff_min_s, backoff)
                try:
                    await asyncio.wait_for(self.stopping.wait(), timeout=delay)
                except TimeoutError:
                    pass
                backoff = min(backoff * 2, self.spec.backoff_max_s)
        finally:
            heartbeat.cancel()
            for t in self._snapshot_tasks:
                t.cancel()
            if self.ctl:
                self.ctl.set_state(self.slot, ProcState.STOPPED)

    async def _session(self) -> None:
        url = self.venue.connection_url(list(self.spec.symbols))
        async with websockets.connect(url, compression=None, max_size=16 * 2**20,
                                      ping_interval=20, ping_timeout=20, open_timeout=10,
                                      close_timeout=2) as ws:
            for msg in self.venue.subscribe_messages(list(self.spec.symbols)):
                await ws.send(msg)
            self.connected.set()
            if self.venue.needs_rest_snapshot:
                for symbol in self.spec.symbols:
                    self._request_snapshot(symbol)
            self._last_frame_ns = time.monotonic_ns()
            # Staleness and stop requests are watched beside the receive loop, not per frame:
            # an asyncio.wait around every recv() cost more than parsing the frame.
            watchdog = asyncio.create_task(self._watchdog(ws))
            ping_task = asyncio.create_task(self._venue_ping_loop(ws))
            try:
                async for frame in ws:
                    recv_ns = time.monotonic_ns()
                    self._last_frame_ns = recv_ns
                    self._on_frame(frame, recv_ns)
                    if self.engine.resync_needed:
                        await self._resync(ws)
            finally:
                watchdog.cancel()
                ping_task.cancel()

    async def _watchdog(self, ws) -> None:
        """Close the connection when the feed goes stale or a stop is requested."""
        stale_ns = int(self.spec.stale_after_s * 1e9)
        step = min(self.spec.stale_after_s / 4, 0.25)
        while True:
            try:
                await asyncio.wait_for(self.stopping.wait(), timeout=step)
            except TimeoutError:
                pass
            if self.stopping.is_set():
                await ws.close()
                return
            if time.monotonic_ns() - self._last_frame_ns > stale_ns:
                self._count(Counter.STALE)
                self._invalidate_all(FLAG_STALE | FLAG_RESYNC)
                log.warning("event=feed_stale venue=%s after_s=%s", self.spec.venue, self.spec.stale_after_s)
                ws.transport.abort() if hasattr(ws, "transport") else await ws.close()
                return

    def _on_frame(self, frame, recv_ns: int) -> None:
        if self.recorder is not None:
            self.recorder.frame(recv_ns, frame)
        engine = self.engine
        errors_before = engine.parse_errors
        engine.on_frame(frame, recv_ns)
        w = self.ctl_words
        if w is not None:
            ctl_count(w, self.slot, _C_MESSAGES, 1)
            ctl_count(w, self.slot, _C_BYTES_IN, len(frame))
        if engine.parse_errors != errors_before:
            self._count(Counter.PARSE_ERRORS, engine.parse_errors - errors_before)
            self.rlog.warning("parse", "event=frame_skipped venue=%s reason=malformed", self.spec.venue)
        if engine.last_kind == FrameKind.ERROR:
            self.rlog.warning("venue_error", "event=venue_error venue=%s info=%s", self.spec.venue,
                              engine.last_info[:200])

    async def _resync(self, ws) -> None:
        symbols = sorted(self.engine.resync_needed)
        self.engine.resync_needed.clear()
        if self.venue.needs_rest_snapshot:
            for symbol in symbols:
                self._request_snapshot(symbol)
        else:
            # Snapshot-over-WebSocket venues send a fresh snapshot when we subscribe again.
            for msg in self.venue.resubscribe_messages(symbols):
                await ws.send(msg)

    def _request_snapshot(self, symbol: str) -> None:
        task = asyncio.create_task(self._fetch_snapshot(symbol))
        self._snapshot_tasks.add(task)
        task.add_done_callback(self._snapshot_tasks.discard)

    async def _fetch_snapshot(self, symbol: str) -> None:
        import aiohttp

        url = self.venue.snapshot_url(symbol)
        delay = 0.25
        while not self.stopping.is_set():
            try:
                async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
                    async with http.get(url) as resp:
                        body = await resp.read()
                        if resp.status == 429 or resp.status == 418:
                            # Rate limited: honour Retry-After before asking again.
                            delay = float(resp.headers.get("Retry-After", max(delay, 1.0)))
                            raise RuntimeError(f"rate limited status={resp.status}")
                        if resp.status != 200:
                            raise RuntimeError(f"status={resp.status}")
                recv_ns = time.monotonic_ns()
                if self.recorder is not None:
                    self.recorder.rest(recv_ns, url, body)
                self.engine.on_snapshot(symbol, body, recv_ns)
                return
            except (TimeoutError, OSError, RuntimeError, aiohttp.ClientError) as exc:
                self.rlog.warning(f"snapshot:{symbol}", "event=snapshot_failed venue=%s symbol=%s error=%r",
                                  self.spec.venue, symbol, exc)
                await asyncio.sleep(delay + random.uniform(0, delay))
                delay = min(delay * 2, self.spec.backoff_max_s)

    async def _venue_ping_loop(self, ws) -> None:
        msg = self.venue.ping_message()
        if msg is None:
            return
        while True:
            await asyncio.sleep(self.venue.ping_interval_s)
            await ws.send(msg)

    async def _heartbeat_loop(self) -> None:
        while self.ctl is not None:
            self.ctl.heartbeat(self.slot)
            await asyncio.sleep(self.spec.heartbeat_interval_s)

    def stop(self) -> None:
        """Ask ``run()`` to finish (thread-unsafe: call from the loop)."""
        self.stopping.set()

    def close(self) -> None:
        """Release the shared memory (after ``run()`` returned)."""
        for ring in self.rings.values():
            ring.close()
        self.rings.clear()
        if self.ctl:
            self.ctl_words = None
            self.ctl.close()


def feed_process_main(spec: FeedSpec) -> None:
    """Entry point of a feed process (multiprocessing spawn target)."""
    import signal

    if spec.cpu is not None:
        os.sched_setaffinity(0, {spec.cpu})
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    runner = FeedRunner(spec)

    async def main():
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, runner.stop)
        await runner.run()

    try:
        asyncio.run(main())
    finally:
        runner.close()


async def record(venue: str, symbols: list[str], out_dir: str, duration_s: float | None = None,
                 ws_url: str | None = None, rest_url: str | None = None, roll_bytes: int = 64 << 20) -> dict:
    """``hftpipe record``: run a feed into private rings while recording every frame it receives."""
    import secrets

    from hftpipe.feeds.recording import Recorder

    tag = f"hft_rec{os.getpid()}_{secrets.token_hex(3)}"
    rings = {s: BookRing.create(f"{tag}_{i}", 20, 64) for i, s in enumerate(symbols)}
    recorder = Recorder(out_dir, venue, symbols, roll_bytes=roll_bytes)
    runner = None
    try:
        spec = FeedSpec(venue=venue, symbols=tuple(symbols), ring_names={s: r.segment.name for s, r in rings.items()},
                        ws_url=ws_url, rest_url=rest_url)
        runner = FeedRunner(spec, recorder=recorder)
        loop = asyncio.get_running_loop()
        import signal

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, runner.stop)
        if duration_s:
            loop.call_later(duration_s, runner.stop)
        await runner.run()
        return {"venue": venue, "files": [str(p) for p in recorder.files],
                "messages": runner.engine.stats.messages, "reconnects": runner.reconnects}
    finally:
        recorder.close()
        if runner is not None:
            runner.close()
        for r in rings.values():
            r.close()
            r.unlink()
