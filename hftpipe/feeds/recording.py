"""Record raw frames with their receive times; replay them through the same feed code.

A recording is a set of gzip files ``<venue>-<start>-<n>.rec.gz`` that roll by size and age.
Each file starts with ``# hftpipe-recording v1 venue=<id> symbols=<A,B>`` and then holds one
line per event: ``<recv_ns> F <frame>`` for a WebSocket frame exactly as received, or
``<recv_ns> R <url> <body>`` for a REST snapshot body. JSON cannot hold a raw newline inside a
string, so folding a frame's newlines into spaces keeps it one line without changing what
parses out of it.

Replay feeds the recorded events, in order, to a ``FeedEngine`` that publishes into BookRings,
at the original pace (``speed=1``), faster (``speed=X``) or as fast as possible (``speed=None``).
Local timestamps aside, replaying one recording twice gives identical ring contents: ``digest``
hashes exactly the content a strategy reads.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

from hftpipe.feeds.engine import FeedEngine
from hftpipe.feeds.registry import make_venue
from hftpipe.shm.book_ring import (
    CURSOR,
    H_NSLOTS,
    H_SLOT_WORDS,
    S_EXCH_NS,
    S_FLAGS,
    S_LEVELS,
    S_N_ASKS,
    S_N_BIDS,
    S_PUBNO,
    S_VENUE_SEQ,
    SLOTS,
    BookRing,
    ring_publish,
)

HEADER = "# hftpipe-recording v1"


class RecordingError(ValueError):
    """A recording file that is not one, or a line that cannot be read."""


class Recorder:
    """Appends received frames and REST bodies to rolling gzip files."""

    def __init__(self, directory: str | os.PathLike, venue: str, symbols: list[str],
                 roll_bytes: int = 64 << 20, roll_seconds: float = 3600.0):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.venue = venue
        self.symbols = list(symbols)
        self.roll_bytes = roll_bytes
        self.roll_seconds = roll_seconds
        self.files: list[Path] = []
        self._fh = None
        self._written = 0
        self._opened = 0.0
        self._start = time.strftime("%Y%m%dT%H%M%S", time.gmtime())

    def _open(self) -> None:
        self.close()
        path = self.directory / f"{self.venue}-{self._start}-{len(self.files):04d}.rec.gz"
        # Level 1: recording must keep up with the feed; the ratio is still ~8x on JSON frames.
        self._fh = gzip.open(path, "wt", compresslevel=1, encoding="utf-8")
        self._fh.write(f"{HEADER} venue={self.venue} symbols={','.join(self.symbols)}\n")
        self.files.append(path)
        self._written = 0
        self._opened = time.monotonic()

    def _write(self, line: str) -> None:
        if (self._fh is None or self._written >= self.roll_bytes
                or time.monotonic() - self._opened >= self.roll_seconds):
            self._open()
        self._fh.write(line)
        self._written += len(line)

    def frame(self, recv_ns: int, frame: str | bytes) -> None:
        """Record one received WebSocket frame."""
        text = frame.decode("utf-8", "replace") if isinstance(frame, bytes) else frame
        self._write(f"{recv_ns} F {text.replace(chr(10), ' ')}\n")

    def rest(self, recv_ns: int, url: str, body: str | bytes) -> None:
        """Record one REST snapshot body."""
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        self._write(f"{recv_ns} R {url} {text.replace(chr(10), ' ')}\n")

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def read_header(path: str | os.PathLike) -> dict[str, str]:
    """venue and symbols of a recording file."""
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        first = fh.readline().rstrip("\n")
    if not first.startswith(HEADER):
        raise RecordingError(f"{path}: not an hftpipe recording")
    fields = dict(kv.split("=", 1) for kv in first[len(HEADER):].split() if "=" in kv)
    return {"venue": fields.get("venue", ""), "symbols": fields.get("symbols", "")}


def read_events(paths: list[str | os.PathLike]) -> Iterator[tuple[int, str, str, str]]:
    """(recv_ns, kind 'F' or 'R', url or '', text) for every recorded event, files in order."""
    for path in sorted(paths, key=str):
        read_header(path)
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            next(fh)
            for lineno, line in enumerate(fh, 2):
                ts, _, rest = line.rstrip("\n").partition(" ")
                kind, _, payload = rest.partition(" ")
                try:
                    recv_ns = int(ts)
                except ValueError:
                    raise RecordingError(f"{path}:{lineno}: bad receive time {ts!r}") from None
                if kind == "F":
                    yield recv_ns, "F", "", payload
                elif kind == "R":
                    url, _, body = payload.partition(" ")
                    yield recv_ns, "R", url, body
                else:
                    raise RecordingError(f"{path}:{lineno}: unknown event kind {kind!r}")


def ring_digest(ring: BookRing) -> str:
    """Hash of everything a reader sees in a ring but local clock readings, oldest slot first."""
    words = ring.words
    n_slots = int(words[H_NSLOTS])
    slot_words = int(words[H_SLOT_WORDS])
    cursor = int(words[CURSOR])
    h = hashlib.sha256()
    for pubno in range(max(1, cursor - n_slots + 1), cursor + 1):
        base = SLOTS + ((pubno - 1) % n_slots) * slot_words
        slot = words[base:base + slot_words]
        fields = slot[[S_PUBNO, S_VENUE_SEQ, S_EXCH_NS, S_N_BIDS, S_N_ASKS, S_FLAGS]]
        h.update(fields.tobytes())
        h.update(slot[S_LEVELS:].tobytes())
    return h.hexdigest()


def replay(paths: list[str | os.PathLike], rings: dict[str, BookRing], venue_id: str | None = None,
           speed: float | None = None, capacity: int = 5000) -> FeedEngine:
    """Drive recorded events through a FeedEngine into ``rings`` (symbol -> ring); returns the engine."""
    header = read_header(sorted(paths, key=str)[0])
    venue = make_venue(venue_id or header["venue"])
    symbols = list(rings)
    for s in symbols:
        venue.native_symbol(s)

    def publish(symbol, book, update, recv_ns, parsed_ns, applied_ns):
        ring = rings[symbol]
        ring_publish(ring.words, ring.fwords, book.bids, book.n_bids, book.asks, book.n_asks,
                     book.last_id, book.exch_ns, recv_ns, parsed_ns, applied_ns, 1, 0, True)

    def on_invalid(symbol, result):
        rings[symbol].publish_invalid()

    engine = FeedEngine(venue, symbols, capacity=capacity, publish=publish, on_invalid=on_invalid)
    t0_wall = time.monotonic_ns()
    t0_rec = None
    for recv_ns, kind, url, text in read_events(paths):
        if speed:
            t0_rec = recv_ns if t0_rec is None else t0_rec
            due = t0_wall + (recv_ns - t0_rec) / speed
            delay = (due - time.monotonic_ns()) / 1e9
            if delay > 0:
                time.sleep(delay)
        if kind == "F":
            engine.on_frame(text, recv_ns)
        else:
            symbol = _snapshot_symbol(venue, url)
            if symbol in engine.books:
                engine.on_snapshot(symbol, text, recv_ns)
    return engine


def _snapshot_symbol(venue, url: str) -> str:
    from urllib.parse import parse_qs, urlparse

    native = (parse_qs(urlparse(url).query).get("symbol") or [""])[0]
    return venue.unified_symbol(native) if native else ""


def replay_to_private_rings(paths: list[str], depth: int = 20, speed: float | None = None,
                            venue_id: str | None = None) -> dict:
    """``hftpipe replay``: replay into rings of our own; summary with per-symbol digests."""
    import secrets

    header = read_header(sorted(paths, key=str)[0])
    symbols = [s for s in header["symbols"].split(",") if s]
    tag = f"hft_replay{os.getpid()}_{secrets.token_hex(3)}"
    rings = {s: BookRing.create(f"{tag}_{i}", depth, 64) for i, s in enumerate(symbols)}
    try:
        t0 = time.perf_counter()
        engine = replay(paths, rings, venue_id=venue_id, speed=speed)
        elapsed = time.perf_counter() - t0
        st = engine.stats
        return {
            "venue": engine.venue.id, "messages": st.messages, "parse_errors": st.parse_errors,
            "elapsed_s": elapsed, "messages_per_s": st.messages / elapsed if elapsed > 0 else None,
            "symbols": {s: {"applied": st.symbols[s].applied, "gaps": st.symbols[s].gaps,
                            "resyncs": st.symbols[s].resyncs, "publishes": rings[s].cursor,
                            "digest": ring_digest(rings[s])} for s in symbols},
        }
    finally:
        for r in rings.values():
            r.close()
            r.unlink()
