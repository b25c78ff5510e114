"""``hftpipe book-check``: replay received frames through the live feed code, offline.

FILE holds one received frame per line, exactly as the venue sent it, and lines
``REST <url> <body>`` giving a REST snapshot body as returned by ``url`` at that point (the symbol
comes from the URL's ``symbol=`` query parameter). Every line goes through the same
``FeedEngine`` and venue class as the live feed process, in file order.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np

from hftpipe.book import copy_top
from hftpipe.feeds.base import FrameError, SymbolBook, Venue
from hftpipe.feeds.engine import FeedEngine
from hftpipe.feeds.registry import make_venue

TOTALS = ("gaps", "resyncs", "checksum_ok", "checksum_bad", "crossed", "invalid")


def rest_symbol(venue: Venue, url: str) -> str:
    """Unified symbol of a REST snapshot URL (``...?symbol=BTCUSDT&limit=1000`` -> ``BTC/USDT``)."""
    query = parse_qs(urlparse(url).query)
    native = (query.get("symbol") or query.get("instId") or [""])[0]
    if not native:
        raise FrameError(f"no symbol= in REST url {url!r}")
    return venue.unified_symbol(native)


def fmt_price(x: float) -> str | None:
    """Shortest round-tripping decimal text of a float, never in exponent form; None for NaN."""
    if x != x:
        return None
    return np.format_float_positional(float(x), trim="0")


def _top(side: np.ndarray, n: int, depth: int) -> list[list[str]]:
    out = np.zeros((depth, 2), dtype=np.float64)
    m = copy_top(side, n, out, depth)
    return [[fmt_price(p), fmt_price(q)] for p, q in out[:m]]


def read_lines(path: str | Path) -> list[str]:
    """Lines of FILE split on ``\\n`` only (a frame's text may hold other line separators)."""
    text = Path(path).read_text(encoding="utf-8")
    return [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]


def replay_lines(engine: FeedEngine, lines: list[str]) -> None:
    """Offer frames and ``REST`` lines to ``engine`` in order (receive time: the line number)."""
    venue = engine.venue
    for i, line in enumerate(lines):
        if not line:
            continue
        if line.startswith("REST "):
            parts = line.split(" ", 2)
            try:
                if len(parts) != 3:
                    raise FrameError("REST line without a body")
                symbol = rest_symbol(venue, parts[1])
            except FrameError as exc:
                engine.stats.parse_errors += 1
                engine.last_error = repr(exc)
                continue
            engine.on_snapshot(symbol, parts[2], i)
        else:
            engine.on_frame(line, i)


def summarize(engine: FeedEngine, depth: int = 20) -> dict:
    """The book-check summary of an engine's counters and final books."""
    st = engine.stats
    per_symbol = {}
    for symbol in sorted(engine.books):
        book: SymbolBook = engine.books[symbol]
        ss = st.symbols[symbol]
        per_symbol[symbol] = {
            **ss.as_dict(),
            "synced": book.synced,
            "last_id": book.last_id,
            "levels": [book.n_bids, book.n_asks],
            "best_bid": fmt_price(book.best_bid()),
            "best_ask": fmt_price(book.best_ask()),
            "bids": _top(book.bids, book.n_bids, depth),
            "asks": _top(book.asks, book.n_asks, depth),
        }
    totals = {k: sum(v[k] for v in per_symbol.values()) for k in TOTALS}
    return {"venue": engine.venue.id, "depth": depth, "messages": st.messages,
            "parse_errors": st.parse_errors, "unknown": st.unknown, "acks": st.acks, "errors": st.errors,
            **totals, "symbols": per_symbol}


def book_check(venue_id: str, path: str | Path, depth: int = 20) -> dict:
    """Replay FILE through a FeedEngine for ``venue_id``; the summary book-check prints.

    Raises KeyError for an unknown venue and OSError / UnicodeDecodeError for an unreadable file;
    bad lines inside the file are counted (``parse_errors``), never raised.
    """
    if depth < 1:
        raise ValueError("depth must be at least 1")
    venue = make_venue(venue_id)
    lines = read_lines(path)
    engine = FeedEngine(venue, auto_add=True)
    replay_lines(engine, lines)
    return summarize(engine, depth)


def main_book_check(venue: str, path: str, depth: int = 20) -> int:
    """CLI body: print the summary as one JSON object; 2 on unreadable file or unknown venue."""
    if depth < 1:
        print("error: --depth must be at least 1", file=sys.stderr)
        return 2
    try:
        result = book_check(venue, path, depth)
    except KeyError as exc:
        print(f"error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except UnicodeDecodeError as exc:
        print(f"error: {path} is not UTF-8 text: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


def _positive_int(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return n


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--venue", required=True, help="venue id (binance, binanceusdm, okx, bybit, ...)")
    p.add_argument("--depth", type=_positive_int, default=20, help="levels per side to report (default 20)")
    p.add_argument("file", metavar="FILE", help="one received frame per line; 'REST <url> <body>' lines")


def run(args: argparse.Namespace) -> int:
    """Handler of ``book-check`` (argparse namespace with venue, depth, file)."""
    return main_book_check(args.venue, args.file, args.depth)


def add_subcommand(subparsers) -> argparse.ArgumentParser:
    """Register ``book-check --venue VENUE [--depth N] FILE`` on an argparse subparsers object.

    The handler is set as both ``handler`` and ``func`` defaults; it returns the exit code.
    """
    p = subparsers.add_parser("book-check", help="replay recorded frames through the feed code and report book sync",
                              description=__doc__.splitlines()[0])
    add_arguments(p)
    p.set_defaults(handler=run, func=run)
    return p
