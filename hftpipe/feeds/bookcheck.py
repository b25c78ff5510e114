"""``hftpipe book-check``: replay received frames through the live feed code, offline.

FILE holds one received frame per line, exactly as the venue sent it, and lines
``REST <url> <body>`` giving a REST snapshot body as returned by ``url`` at that point.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from hftpipe.feeds.base import FrameError
from hftpipe.feeds.engine import FeedEngine
from hftpipe.feeds.registry import make_venue


def _rest_symbol(venue, url: str) -> str:
    query = parse_qs(urlparse(url).query)
    native = (query.get("symbol") or query.get("instId") or [""])[0]
    if not native:
        raise ValueError(f"cannot tell the symbol of REST line {url!r}")
    return venue.unified_symbol(native)


def _fmt(x: float) -> str | None:
    return None if x != x else repr(float(x))


def book_check(venue_id: str, path: str | Path, depth: int = 20) -> dict:
    """Replay FILE through a FeedEngine; the summary dict book-check prints."""
    venue = make_venue(venue_id)
    lines = Path(path).read_text().splitlines()
    rest = []
    for i, line in enumerate(lines):
        if line.startswith("REST "):
            _, url, body = line.split(" ", 2)
            rest.append((i, url, body))
    symbols = {_rest_symbol(venue, url) for _, url, _ in rest}
    # Venues that send snapshots over the WebSocket have no REST lines: learn symbols from frames.
    scout = make_venue(venue_id)
    for i, line in enumerate(lines):
        if line and i not in {j for j, _, _ in rest}:
            try:
                symbols.update(u.symbol for u in scout.parse(line).updates)
            except FrameError:
                pass
    symbols = sorted(symbols)
    for s in symbols:
        venue.native_symbol(s)
    engine = FeedEngine(venue, symbols)
    rest_at = {i: (url, body) for i, url, body in rest}
    for i, line in enumerate(lines):
        if i in rest_at:
            url, body = rest_at[i]
            engine.on_snapshot(_rest_symbol(venue, url), body, 0)
        elif line:
            engine.on_frame(line, 0)
    st = engine.stats
    per_symbol = {}
    for s, book in engine.books.items():
        ss = st.symbols[s]
        per_symbol[s] = {
            "applied": ss.applied, "dropped": ss.dropped, "buffered": ss.buffered, "gaps": ss.gaps,
            "resyncs": ss.resyncs, "checksum_ok": ss.checksum_ok, "checksum_bad": ss.checksum_bad,
            "crossed": ss.crossed, "invalid": ss.invalid, "synced": book.synced,
            "best_bid": _fmt(book.best_bid()), "best_ask": _fmt(book.best_ask()),
        }
    total = {k: sum(v[k] for v in per_symbol.values())
             for k in ("gaps", "resyncs", "checksum_ok", "checksum_bad", "crossed", "invalid")}
    return {"venue": venue_id, "depth": depth, "messages": st.messages, "parse_errors": st.parse_errors,
            "unknown": st.unknown, **total, "symbols": per_symbol}


def main_book_check(venue: str, path: str, depth: int) -> int:
    """CLI body: print the summary as one JSON object; 2 on unreadable file or unknown venue."""
    import sys

    try:
        result = book_check(venue, path, depth)
    except (OSError, KeyError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0
