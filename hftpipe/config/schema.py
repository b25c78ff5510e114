"""The configuration schema: frozen, typed dataclasses.

The schema is declarative. Each field's type says what the loader accepts and each field's
``metadata`` (built with :func:`spec`) holds its constraints; the loader
(:mod:`hftpipe.config.loader`) walks these dataclasses generically, so adding a key means adding
one field here and one documented line to ``default.yaml`` (the single source of the defaults).

Container types: YAML lists become tuples, YAML mappings with free keys become
:class:`FrozenDict`, so a loaded :class:`Config` is immutable all the way down and pickles (it is
handed to spawned child processes).

Constraint keys understood by the loader (see :func:`spec`):

- ``gt``, ``ge``, ``lt``, ``le``: numeric bounds, applied to every number in the field (also the
  items of a tuple and the values of a mapping).
- ``pow2``: the integer must be a power of two.
- ``check``: a callable ``value -> str | None`` run on every scalar (None = fine, a string = the
  error message, phrased as "expected ...").
- ``min_len``: minimum number of items of a tuple or mapping.
- ``unique``: the items of a tuple must be distinct.
- ``keys``: the allowed keys of a mapping; ``key_name`` names them in errors ("venue").
"""

import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Literal, get_args

# --------------------------------------------------------------------------------------------
# Enumerations

Venue = Literal["binance", "binanceusdm", "okx", "bybit", "coinbase", "kraken"]
WaitStrategy = Literal["spin", "spin_yield", "sleep"]
ExecutionMode = Literal["paper", "live"]
LegFailurePolicy = Literal["unwind", "hedge"]
GraphStore = Literal["falkordb", "neo4j", "none"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
FaultKind = Literal["disconnect", "sequence_gap", "checksum_error", "malformed_frame", "burst"]

#: ccxt exchange ids of the supported venues, in canonical order.
VENUES: tuple[str, ...] = get_args(Venue)
WAIT_STRATEGIES: tuple[str, ...] = get_args(WaitStrategy)
EXECUTION_MODES: tuple[str, ...] = get_args(ExecutionMode)
LEG_FAILURE_POLICIES: tuple[str, ...] = get_args(LegFailurePolicy)
GRAPH_STORES: tuple[str, ...] = get_args(GraphStore)
LOG_LEVELS: tuple[str, ...] = get_args(LogLevel)
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)

#: What a value of each enumeration is called in error messages ("unknown wait strategy ...").
CHOICE_NAMES: dict[Any, str] = {
    Venue: "venue",
    WaitStrategy: "wait strategy",
    ExecutionMode: "executor mode",
    LegFailurePolicy: "leg failure policy",
    GraphStore: "graph store",
    LogLevel: "log level",
    FaultKind: "fault kind",
}

# --------------------------------------------------------------------------------------------
# Read-only mapping


class FrozenDict(dict):
    """A dict that refuses mutation, hashes, and pickles (unlike ``types.MappingProxyType``)."""

    __slots__ = ()

    def _readonly(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("configuration mappings are read-only")

    __setitem__ = __delitem__ = _readonly  # type: ignore[assignment]
    clear = pop = popitem = setdefault = update = _readonly  # type: ignore[assignment]
    __ior__ = _readonly  # type: ignore[assignment]

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(frozenset(self.items()))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (dict(self),))

    def __repr__(self) -> str:
        return f"FrozenDict({dict.__repr__(self)})"


# --------------------------------------------------------------------------------------------
# Field constraints


def spec(
    *,
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    le: float | None = None,
    pow2: bool = False,
    check: Callable[[Any], str | None] | None = None,
    min_len: int | None = None,
    unique: bool = False,
    keys: tuple[str, ...] | None = None,
    key_name: str = "key",
) -> dict[str, Any]:
    """Field metadata for the loader; only the constraints given are stored."""
    meta: dict[str, Any] = {
        "gt": gt, "ge": ge, "lt": lt, "le": le, "check": check, "min_len": min_len, "keys": keys,
    }
    meta = {k: v for k, v in meta.items() if v is not None}
    if pow2:
        meta["pow2"] = True
    if unique:
        meta["unique"] = True
    if keys is not None:
        meta["key_name"] = key_name
    return meta


def setting(**constraints: Any) -> Any:
    """A required dataclass field (its default lives in default.yaml) with constraints."""
    return field(metadata=spec(**constraints))


SYMBOL_RE = re.compile(r"^[A-Z0-9]+/[A-Z0-9]+$")
_RUN_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")

# Check functions: ``value -> None`` when fine, else the whole error message (which names the
# value and says what is expected). The loader has already checked the value's type.


def check_symbol(value: Any) -> str | None:
    if SYMBOL_RE.match(value):
        return None
    hint = ""
    cleaned = value.strip().upper().replace("-", "/").replace("_", "/")
    if SYMBOL_RE.match(cleaned):
        hint = f" (did you mean {cleaned!r}?)"
    return f"{value!r} is not a symbol in BASE/QUOTE form; expected upper case like 'BTC/USDT'{hint}"


def usable_cpus() -> frozenset[int]:
    """CPUs this process may run on (``os.sched_getaffinity(0)`` where available)."""
    try:
        return frozenset(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return frozenset(range(os.cpu_count() or 1))


def _cpu_ranges(cpus: frozenset[int]) -> str:
    runs: list[list[int]] = []
    for c in sorted(cpus):
        if runs and runs[-1][1] == c - 1:
            runs[-1][1] = c
        else:
            runs.append([c, c])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def check_cpu(value: Any) -> str | None:
    cpus = usable_cpus()
    if value in cpus:
        return None
    return (
        f"cpu {value} does not exist on this machine; expected one of the usable cpus"
        f" ({_cpu_ranges(cpus)}) or null for unpinned"
    )


def check_loopback(value: Any) -> str | None:
    if value == "localhost":
        return None
    try:
        if ipaddress.ip_address(value).is_loopback:
            return None
    except ValueError:
        pass
    return f"{value!r} is not a loopback address; expected 127.0.0.1, ::1 or localhost"


def check_nonempty(value: Any) -> str | None:
    return None if value.strip() else "expected a non-empty string"


def check_run_name(value: Any) -> str | None:
    if _RUN_NAME_RE.match(value):
        return None
    return (
        f"{value!r} is not a valid run name; expected 1-32 characters of A-Z a-z 0-9 _ -"
        " starting with a letter (it prefixes shared-memory segment names)"
    )


def _url_check(schemes: tuple[str, ...]) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        scheme, sep, rest = value.partition("://")
        if sep and scheme in schemes and rest:
            return None
        expected = " or ".join(s + "://" for s in schemes)
        return f"{value!r} is not a valid URL here; expected one starting with {expected}"

    return check


check_ws_url = _url_check(("ws", "wss"))
check_http_url = _url_check(("http", "https"))
check_bolt_url = _url_check(("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc"))

# --------------------------------------------------------------------------------------------
# Sections. No field has a Python default: default.yaml supplies every default (FaultConfig,
# whose items live in a list, is the exception).

_CPU = {"check": check_cpu}


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    data_dir: str = setting(check=check_nonempty)
    run_name: str = setting(check=check_run_name)
    log_level: LogLevel = setting()

    @property
    def data_path(self) -> Path:
        """``data_dir`` made absolute against the current working directory."""
        return Path(self.data_dir).expanduser().absolute()


@dataclass(frozen=True, kw_only=True)
class ExchangeConfig:
    enabled: bool = setting()
    symbols: tuple[str, ...] = setting(check=check_symbol, unique=True)
    taker_fee_bps: float = setting(ge=0, le=1000)
    maker_fee_bps: float = setting(ge=-100, le=1000)
    ws_url: str | None = setting(check=check_ws_url)
    rest_url: str | None = setting(check=check_http_url)
    cpu: int | None = setting(**_CPU)


@dataclass(frozen=True, kw_only=True)
class MarketDataConfig:
    depth: int = setting(ge=1, le=1000)
    book_capacity: int = setting(ge=1, le=1_000_000)
    ring_slots: int = setting(ge=2, le=1 << 20, pow2=True)
    stale_after_s: float = setting(gt=0)
    reconnect_backoff_min_s: float = setting(gt=0)
    reconnect_backoff_max_s: float = setting(gt=0)
    exchanges: Mapping[str, ExchangeConfig] = setting(keys=VENUES, key_name="venue")


@dataclass(frozen=True, kw_only=True)
class CrossExchangeArbitrageConfig:
    enabled: bool = setting()
    min_profit_bps: float = setting(ge=0, le=10_000)
    symbols: tuple[str, ...] | None = setting(check=check_symbol, unique=True)
    max_order_size: float = setting(gt=0)
    transfer_cost_bps: float = setting(ge=0, le=10_000)
    max_book_age_ms: float = setting(gt=0)
    cooldown_ms: float = setting(ge=0)
    cpu: int | None = setting(**_CPU)
    wait_strategy: WaitStrategy | None = setting()


@dataclass(frozen=True, kw_only=True)
class TriangularArbitrageConfig:
    enabled: bool = setting()
    venue: Venue | None = setting()
    min_profit_bps: float = setting(ge=0, le=10_000)
    max_order_notional: float = setting(gt=0)
    max_book_age_ms: float = setting(gt=0)
    cooldown_ms: float = setting(ge=0)
    cpu: int | None = setting(**_CPU)
    wait_strategy: WaitStrategy | None = setting()


@dataclass(frozen=True, kw_only=True)
class StatisticalArbitrageConfig:
    enabled: bool = setting()
    lookback_period: int = setting(ge=2, le=10_000_000)
    sample_interval_ms: float = setting(gt=0)
    pairs: tuple[tuple[str, str], ...] | None = setting(check=check_symbol, unique=True, min_len=1)
    venue: Venue | None = setting()
    entry_z: float = setting(gt=0)
    exit_z: float = setting(ge=0)
    stop_z: float = setting(gt=0)
    max_holding_s: float = setting(gt=0)
    order_size: float = setting(gt=0)
    max_book_age_ms: float = setting(gt=0)
    cpu: int | None = setting(**_CPU)
    wait_strategy: WaitStrategy | None = setting()


@dataclass(frozen=True, kw_only=True)
class StrategiesConfig:
    cross_exchange_arbitrage: CrossExchangeArbitrageConfig = setting()
    triangular_arbitrage: TriangularArbitrageConfig = setting()
    statistical_arbitrage: StatisticalArbitrageConfig = setting()

    def items(self) -> tuple[tuple[str, Any], ...]:
        """``(name, strategy config)`` for every strategy, in schema order."""
        return tuple((f.name, getattr(self, f.name)) for f in fields(self))


@dataclass(frozen=True, kw_only=True)
class RiskConfig:
    max_position_size: float = setting(gt=0)
    max_exposure: float = setting(gt=0)
    max_order_notional: float = setting(gt=0)
    max_open_orders: int = setting(ge=1)
    max_orders_per_s: float = setting(gt=0)
    max_daily_loss: float = setting(gt=0)
    max_drawdown: float = setting(gt=0)
    stale_book_ms: float = setting(gt=0)
    price_band_bps: float = setting(gt=0, le=10_000)
    self_trade_guard: bool = setting()


@dataclass(frozen=True, kw_only=True)
class ExecutionConfig:
    mode: ExecutionMode = setting()
    order_latency_ms: Mapping[str, float] = setting(ge=0, keys=VENUES, key_name="venue")
    leg_failure_policy: LegFailurePolicy = setting()
    order_timeout_s: float = setting(gt=0)
    max_retries: int = setting(ge=0, le=100)
    cpu: int | None = setting(**_CPU)


@dataclass(frozen=True, kw_only=True)
class Neo4jConfig:
    uri: str = setting(check=check_bolt_url)
    user: str = setting(check=check_nonempty)
    database: str = setting(check=check_nonempty)


@dataclass(frozen=True, kw_only=True)
class CorrelationConfig:
    windows_s: tuple[float, ...] = setting(gt=0, min_len=1, unique=True)
    interval_s: float = setting(gt=0)
    max_lag_ms: float = setting(ge=0)


@dataclass(frozen=True, kw_only=True)
class GraphConfig:
    store: GraphStore = setting()
    batch_size: int = setting(ge=1, le=1_000_000)
    batch_interval_ms: float = setting(gt=0)
    neo4j: Neo4jConfig = setting()
    correlation: CorrelationConfig = setting()
    cpu: int | None = setting(**_CPU)


@dataclass(frozen=True, kw_only=True)
class JournalsConfig:
    roll_bytes: int = setting(ge=65536)


@dataclass(frozen=True, kw_only=True)
class MetricsConfig:
    enabled: bool = setting()
    host: str = setting(check=check_loopback)
    port: int = setting(ge=0, le=65535)


@dataclass(frozen=True, kw_only=True)
class SupervisorConfig:
    heartbeat_interval_ms: float = setting(gt=0)
    heartbeat_timeout_ms: float = setting(gt=0)
    restart_budget: int = setting(ge=0)
    restart_window_s: float = setting(gt=0)
    restart_backoff_s: float = setting(ge=0)


@dataclass(frozen=True, kw_only=True)
class FaultConfig:
    kind: FaultKind = setting()
    venue: Venue | None = field(default=None)
    every_s: float = field(default=30.0, metadata=spec(gt=0))
    start_s: float = field(default=0.0, metadata=spec(ge=0))
    duration_s: float = field(default=0.0, metadata=spec(ge=0))


@dataclass(frozen=True, kw_only=True)
class SimulatorConfig:
    enabled: bool = setting()
    host: str = setting(check=check_loopback)
    port: int = setting(ge=0, le=65535)
    seed: int = setting(ge=0)
    message_rate_per_s: float = setting(gt=0)
    latency_ms: Mapping[str, float] = setting(ge=0, keys=VENUES, key_name="venue")
    scenario: str = setting(check=check_nonempty)
    faults: tuple[FaultConfig, ...] = setting()


@dataclass(frozen=True, kw_only=True)
class Config:
    """The ``hft:`` block of a config file, with every default filled in and resolved."""

    enabled: bool = setting()
    run: RunConfig = setting()
    market_data: MarketDataConfig = setting()
    strategies: StrategiesConfig = setting()
    wait_strategy: WaitStrategy = setting()
    risk: RiskConfig = setting()
    execution: ExecutionConfig = setting()
    graph: GraphConfig = setting()
    journals: JournalsConfig = setting()
    metrics: MetricsConfig = setting()
    supervisor: SupervisorConfig = setting()
    simulator: SimulatorConfig = setting()

    def enabled_venues(self) -> tuple[str, ...]:
        """Ids of the enabled exchanges, in the order the config lists them."""
        return tuple(v for v, ex in self.market_data.exchanges.items() if ex.enabled)

    def to_dict(self) -> dict[str, Any]:
        """Plain dicts/lists/scalars (``{"hft": {...}}``), ready for ``yaml.safe_dump``."""
        return {"hft": to_plain(self)}


def to_plain(value: Any) -> Any:
    """Dataclasses → dicts, tuples → lists, FrozenDict → dict, recursively."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [to_plain(v) for v in value]
    return value
