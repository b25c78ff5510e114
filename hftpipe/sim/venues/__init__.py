"""Per-venue wire protocols of the simulator, and the guide to adding one.

The simulator (:mod:`hftpipe.sim.server`) owns the sockets, the clock, the market model, the
scenarios and the faults. A venue protocol only speaks the venue's language: it turns model
events into the venue's exact frames, understands the venue's subscribe messages and serves its
REST bodies. One class per venue (ccxt id), in its own module under ``hftpipe/sim/venues/``;
the registry finds it by itself (any :class:`SimVenueProtocol` subclass with a ``venue``
attribute in a module of this package), so adding a venue touches no shared file.

Adding a venue (e.g. ``okx.py``)
--------------------------------
1. Read the venue's official docs and, if there is one, a real capture; match field order,
   string formatting of prices and sizes, sequence fields, the subscribe/ack dialogue.
2. Subclass :class:`SimVenueProtocol`; set ``venue``, ``rest`` (True when clients need an HTTP
   server: REST snapshots, exchangeInfo), ``supports_checksum``, ``taker_fee_bps`` and, where
   the venue lists a market with other tick/lot sizes than :data:`hftpipe.sim.model.DEFAULT_INSTRUMENTS`,
   ``instruments = {"BTC/USDT": {"tick": "0.1", "lot": "0.01"}}``.
3. Implement:

   * ``setup_symbol(sym)`` - once per symbol: native name, formatters
     (:func:`fixed_formatter`), the first sequence id (keep it in ``sym.state``).
   * ``advance(sym, n_changes) -> Seq`` - called for EVERY event of the symbol, sent or not
     (faults drop events, unsubscribed symbols still trade): move the venue's sequence state
     on and return it; ``seq.last`` must be the id a client sees (ground truth records it).
   * ``encode_update(sym, seq, bids, asks, event_ms, corrupt_checksum=False) -> str`` - the
     venue's delta payload. ``bids``/``asks`` are dicts ``{price_ticks: size_lots}`` (0 =
     delete); ``sym.book`` is the model's book AFTER the event (checksums: compute from it;
     with ``corrupt_checksum`` send a wrong one). Sort the levels as the venue does.
   * ``on_connect(conn) -> list[str]`` - a new WebSocket connection (``conn.path``,
     ``conn.query``): subscribe what the URL asks for (``conn.subscribe(sym, tag)``) and return
     the frames to send first (often none). Raise :class:`Reject` to refuse it.
   * ``on_message(conn, text) -> list[str]`` - a client frame: subscribe/unsubscribe/ping;
     return the replies in order, e.g. ``[ack, snapshot]`` for venues whose WebSocket sends a
     snapshot after subscribing (``self.encode_snapshot(...)`` of your own, from
     ``sym.book`` and ``sym.state``); every frame you return is written before the next delta.
   * ``frame(conn, tag, payload) -> str`` - wrap a payload for one subscription (``tag`` is
     whatever you passed to ``conn.subscribe``: a channel name, a combined-stream name, None).
     Per-connection counters (Coinbase ``sequence_num``) live in ``conn.state``.
   * ``rest_routes() -> dict[path, RestRoute]`` - GET handlers ``handler(query) ->
     RestResponse``; mark book snapshots ``snapshot=True`` so the ``slow_snapshot`` fault
     delays them. Endpoints that need the method, headers or body (signed order endpoints)
     use ``RestRoute(handler, methods=("GET", "POST", "DELETE"), raw=True)``: ``handler``
     then gets a :class:`RestRequest` and may be ``async`` (see ``binance.py``).
   * optionally ``malformed(frame) -> str`` (default: the frame cut in half) and
     ``normalize_symbol`` (default strips ccxt's ``:SETTLE`` suffix).

4. Test it the way ``tests/sim/test_binance.py`` does: a client written in the test with plain
   ``websockets``/``aiohttp``/``json`` syncs from the wire by the venue's documented rule and
   must end with the model's book (``SimExchange.book``).

Rules: no I/O, no clock reads (use ``event_ms`` / ``self.ctx.now_ms()``: the frames must be
deterministic), never import ``hftpipe.feeds`` parsers (a venue's checksum function may be
reused). Keep ``encode_update`` and ``frame`` cheap: they run once per event (payload) and once
per subscriber (frame) at tens of thousands of events per second.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from hftpipe.sim.model import Book, InstrumentSpec


class Reject(Exception):  # noqa: N818 - it is a refusal, not an error of ours
    """Raised by ``on_connect`` to refuse a WebSocket handshake (HTTP ``status``)."""

    def __init__(self, status: int = 400, body: str = ""):
        super().__init__(body)
        self.status = status
        self.body = body


@dataclass(frozen=True)
class RestResponse:
    status: int
    body: str
    content_type: str = "application/json"
    headers: Mapping[str, str] | None = None


@dataclass(frozen=True)
class RestRequest:
    """What a ``RestRoute(..., raw=True)`` handler gets: the whole HTTP request."""

    method: str
    path: str
    query: Mapping[str, str]  # decoded query string
    raw_query: str  # the query string exactly as sent (signatures are computed over it)
    headers: Mapping[str, str]  # case-insensitive
    body: str  # the raw body ("" when none)


@dataclass(frozen=True)
class RestRoute:
    """An HTTP endpoint. By default a GET endpoint: ``handler(query) -> RestResponse``;
    ``snapshot`` marks book snapshots. With ``raw=True`` the handler gets a
    :class:`RestRequest` instead and may be a coroutine function (awaited on the simulator's
    loop, e.g. to answer late); ``methods`` lists the HTTP methods it serves (others: 405)."""

    handler: Callable[..., RestResponse | Awaitable[RestResponse]]
    snapshot: bool = False
    methods: tuple[str, ...] = ("GET", "HEAD")
    raw: bool = False


class SimSymbol:
    """One (venue, symbol) as the server sees it: the model book, its subscribers and the
    protocol's own per-symbol state (``state``: sequence ids, native name, formatters...)."""

    __slots__ = ("venue", "symbol", "spec", "book", "state", "subs", "native")

    def __init__(self, venue: str, symbol: str, spec: InstrumentSpec, book: Book):
        self.venue = venue
        self.symbol = symbol  # unified, without settle suffix: "BTC/USDT"
        self.spec = spec
        self.book = book  # the model's authoritative book (read-only for protocols)
        self.state: dict[str, Any] = {}
        self.subs: list[tuple[Any, Any]] = []  # (SimConnection, tag), maintained by the server
        self.native = ""  # set by the protocol's setup_symbol


class Connection(Protocol):
    """What a protocol may use of a server connection (see ``server.SimConnection``)."""

    path: str  # URL path of the handshake, without the query string
    query: Mapping[str, str]  # decoded query string
    raw_query: str
    state: dict[str, Any]  # the protocol's per-connection state

    def subscribe(self, sym: SimSymbol, tag: Any = None) -> bool: ...
    def unsubscribe(self, sym: SimSymbol, tag: Any = None) -> bool: ...
    def subscriptions(self) -> list[tuple[SimSymbol, Any]]: ...
    def send(self, text: str) -> None: ...


class VenueContext(Protocol):
    """What a protocol may use of the server."""

    def now_ms(self) -> int: ...  # sim clock as venue event time, ms since the epoch
    def symbol(self, unified: str) -> SimSymbol | None: ...
    def symbols(self) -> list[SimSymbol]: ...


class Seq(Protocol):
    """What ``advance`` returns (e.g. a NamedTuple): ``last`` is the id a client sees."""

    @property
    def last(self) -> int: ...


class SimVenueProtocol:
    """Base class of a venue's simulator protocol (see the module docstring)."""

    venue: str = ""  # ccxt id
    rest: bool = False  # True: the server runs an HTTP server for this venue
    supports_checksum: bool = False
    taker_fee_bps: float = 10.0
    instruments: Mapping[str, Mapping[str, Any]] = {}  # per-symbol InstrumentSpec overrides

    def __init__(self, ctx: VenueContext):
        self.ctx = ctx

    # -- symbols ---------------------------------------------------------------------------
    def normalize_symbol(self, symbol: str) -> str:
        """Unified symbol as the model keys it (``BTC/USDT:USDT`` -> ``BTC/USDT``)."""
        return symbol.split(":", 1)[0]

    def setup_symbol(self, sym: SimSymbol) -> None:
        raise NotImplementedError

    # -- market data -----------------------------------------------------------------------
    def advance(self, sym: SimSymbol, n_changes: int) -> Seq:
        raise NotImplementedError

    def encode_update(self, sym: SimSymbol, seq: Seq, bids: dict[int, int], asks: dict[int, int],
                      event_ms: int, corrupt_checksum: bool = False) -> str:
        raise NotImplementedError

    def frame(self, conn: Connection, tag: Any, payload: str) -> str:
        return payload

    def malformed(self, frame: str) -> str:
        """A broken version of ``frame`` (not valid JSON): by default its first half."""
        return frame[: max(1, len(frame) // 2)]

    # -- connections -----------------------------------------------------------------------
    def on_connect(self, conn: Connection) -> list[str]:
        return []

    def on_message(self, conn: Connection, text: str) -> list[str]:
        return []

    # -- REST ------------------------------------------------------------------------------
    def rest_routes(self) -> dict[str, RestRoute]:
        return {}


def fixed_formatter(step: str, decimals: int, cache_size: int = 50_000) -> Callable[[int], str]:
    """``f(n) -> str``: ``n * step`` written with exactly ``decimals`` decimals, e.g.
    ``fixed_formatter("0.01", 8)(6000001) == "60000.01000000"``. ``decimals`` must be at least
    the step's own decimals. Results are cached (prices repeat a lot)."""
    from decimal import Decimal

    d = Decimal(step)
    scaled = d * (Decimal(10) ** decimals)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{decimals} decimals cannot represent step {step}")
    mult = int(scaled)
    cache: dict[int, str] = {}

    if decimals == 0:
        def fmt0(n: int) -> str:
            return str(n * mult)
        return fmt0

    width = decimals + 1

    def fmt(n: int) -> str:
        s = cache.get(n)
        if s is None:
            v = n * mult
            neg = v < 0
            t = str(-v if neg else v).rjust(width, "0")
            s = ("-" if neg else "") + t[:-decimals] + "." + t[-decimals:]
            if len(cache) >= cache_size:
                cache.clear()
            cache[n] = s
        return s

    return fmt


# --------------------------------------------------------------------------------------------
# Registry

_REGISTRY: dict[str, type[SimVenueProtocol]] = {}
_DISCOVERED = False


def register(cls: type[SimVenueProtocol]) -> type[SimVenueProtocol]:
    """Register a protocol class explicitly (discovery does this for modules in this package)."""
    if not cls.venue:
        raise ValueError(f"{cls.__name__} has no venue id")
    _REGISTRY[cls.venue] = cls
    return cls


def _discover() -> None:
    global _DISCOVERED
    if _DISCOVERED:
        return
    _DISCOVERED = True
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for obj in vars(module).values():
            if (isinstance(obj, type) and issubclass(obj, SimVenueProtocol) and obj.venue
                    and obj.__module__ == module.__name__):
                _REGISTRY.setdefault(obj.venue, obj)


def available() -> list[str]:
    """Venue ids with a simulator protocol."""
    _discover()
    return sorted(_REGISTRY)


def get_protocol(venue: str) -> type[SimVenueProtocol]:
    _discover()
    try:
        return _REGISTRY[venue]
    except KeyError:
        raise ValueError(f"the simulator has no protocol for venue {venue!r} "
                         f"(available: {', '.join(sorted(_REGISTRY)) or 'none'})") from None
