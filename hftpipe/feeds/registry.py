"""Venue id (ccxt's exchange id) -> adapter class; one line per venue.

Values are ``"module:Class"`` strings, imported on first use (a feed process imports only its own
venue), or the class itself.
"""

from __future__ import annotations

import importlib

from hftpipe.feeds.base import Venue

VENUES: dict[str, str | type[Venue]] = {
    "binance": "hftpipe.feeds.binance:BinanceSpot",
    "binanceusdm": "hftpipe.feeds.binance:BinanceUsdm",
    "okx": "hftpipe.feeds.okx:Okx",
    "bybit": "hftpipe.feeds.bybit:Bybit",
    "coinbase": "hftpipe.feeds.coinbase:Coinbase",
    "kraken": "hftpipe.feeds.kraken:Kraken",
}


def venue_class(venue_id: str) -> type[Venue]:
    """The adapter class of a venue id; KeyError naming the known ones otherwise."""
    try:
        target = VENUES[venue_id]
    except (KeyError, TypeError):
        raise KeyError(f"unknown venue {venue_id!r}; known: {', '.join(sorted(VENUES))}") from None
    if isinstance(target, str):
        module, _, name = target.partition(":")
        return getattr(importlib.import_module(module), name)
    return target


def make_venue(venue_id: str, ws_url: str | None = None, rest_url: str | None = None, **options) -> Venue:
    """An adapter instance, with URL overrides (the simulator) when given."""
    return venue_class(venue_id)(ws_url=ws_url, rest_url=rest_url, **options)
