"""The real capture files (shared/data/captures) as book-check input.

``BINANCE*.ws.1.0`` lines ``TS: TEXT`` are received frames; ``BINANCE*.http.0.0`` lines
``URL -> TS: BODY`` are REST snapshot bodies. ``book_check_lines`` merges both by TS, so each
snapshot is applied at the point it was received, as ``REST URL BODY`` lines.
"""

from __future__ import annotations

from pathlib import Path

import pytest

CAPTURES = Path(__file__).resolve().parents[3] / "shared" / "data" / "captures"

# (venue id, WebSocket capture, REST capture)
BINANCE_PAIRS = [("binance", "BINANCE.ws.1.0", "BINANCE.http.0.0"),
                 ("binanceusdm", "BINANCE_FUTURES.ws.1.0", "BINANCE_FUTURES.http.0.0")]


def have(*names: str) -> bool:
    return all((CAPTURES / n).is_file() for n in names)


needs_binance_captures = pytest.mark.skipif(
    not have(*(n for _, ws, http in BINANCE_PAIRS for n in (ws, http))),
    reason=f"real Binance captures not found in {CAPTURES}")


def _received(path: Path):
    """(ts, text) of every frame received: ``TS: TEXT`` (connection and client lines are skipped)."""
    for line in path.read_text(encoding="utf-8").split("\n"):
        ts, sep, text = line.partition(": ")
        if not sep:
            continue  # "URL <-> TS" (connection opened) or an empty line
        try:
            yield float(ts), text  # "URL <- TS: TEXT" (frames we sent) fails here
        except ValueError:
            continue


def _rest(path: Path):
    """(ts, "REST url body") of every REST response: ``URL -> TS: BODY``."""
    for line in path.read_text(encoding="utf-8").split("\n"):
        url, sep, rest = line.partition(" -> ")
        if not sep:
            continue
        ts, sep, body = rest.partition(": ")
        if sep:
            yield float(ts), f"REST {url} {body}"


def book_check_lines(ws_name: str, http_name: str) -> list[str]:
    """Frames and REST lines merged in receive-time order (stable: a frame first on a tie)."""
    events = list(_received(CAPTURES / ws_name)) + list(_rest(CAPTURES / http_name))
    events.sort(key=lambda e: e[0])
    return [text for _, text in events]


def to_book_check(ws_name: str, http_name: str, out: Path) -> Path:
    """Write ``out`` in book-check format (one line per frame / REST body)."""
    out.write_text("\n".join(book_check_lines(ws_name, http_name)) + "\n", encoding="utf-8")
    return out
