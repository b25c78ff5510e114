"""YAML → :class:`~hftpipe.config.schema.Config`, with validation that reports every problem.

Steps: parse the user's file (recording each key's line and rejecting duplicate keys) → reject
secrets → merge it over ``default.yaml`` (mappings key by key, the user's key order first; lists
and scalars replace; a null section keeps the defaults) → convert generically along the schema's
type hints and field constraints → run the cross-field checks in :data:`CHECKS` → resolve the
"null = derive it" settings. All errors are collected and raised together as one
:class:`ConfigError`.
"""

import copy
import dataclasses
import difflib
import functools
import logging
import math
import re
import types
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import yaml

from .errors import ConfigError, ConfigIssue
from .schema import (
    CHOICE_NAMES,
    VENUES,
    Config,
    CrossExchangeArbitrageConfig,
    FrozenDict,
    StatisticalArbitrageConfig,
    TriangularArbitrageConfig,
)
from .secrets import NEO4J_PASSWORD_ENV, api_credentials, credential_env_vars, neo4j_password

log = logging.getLogger("hftpipe.config")

DEFAULT_CONFIG_RESOURCE = "default.yaml"


def default_config_path() -> Path:
    """Path of the packaged default.yaml (``config/default.yaml`` in the repo is a copy)."""
    return Path(str(resources.files(__package__).joinpath(DEFAULT_CONFIG_RESOURCE)))


# --------------------------------------------------------------------------------------------
# YAML


class _YamlLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Safe loader that also reads ``1e6``-style floats (YAML 1.1 wants ``1.0e+6``)."""


_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _walk_nodes(node: yaml.Node, path: str, lines: dict[str, int], issues: list[ConfigIssue],
                depth: int = 0) -> None:
    """Record the line of every key path; report duplicate keys."""
    if depth > 64:
        return
    if isinstance(node, yaml.MappingNode):
        first_seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = key_node.value
            sub = f"{path}.{key}" if path else key
            line = key_node.start_mark.line + 1
            if key in first_seen:
                issues.append(ConfigIssue(sub, f"duplicate key (first defined on line {first_seen[key]})", line))
            else:
                first_seen[key] = line
                lines.setdefault(sub, line)
            _walk_nodes(value_node, sub, lines, issues, depth + 1)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            sub = f"{path}[{i}]"
            lines.setdefault(sub, item.start_mark.line + 1)
            _walk_nodes(item, sub, lines, issues, depth + 1)


def parse_yaml(text: str) -> tuple[Any, dict[str, int], list[ConfigIssue]]:
    """Parse one YAML document → (data, line of each key path, problems)."""
    lines: dict[str, int] = {}
    issues: list[ConfigIssue] = []
    loader = _YamlLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, lines, issues
        _walk_nodes(node, "", lines, issues)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        issues.append(ConfigIssue("", f"YAML syntax error{where}: {problem}"))
        return None, lines, issues
    except yaml.YAMLError as exc:
        issues.append(ConfigIssue("", f"YAML error: {exc}"))
        return None, lines, issues
    finally:
        loader.dispose()
    return data, lines, issues


# --------------------------------------------------------------------------------------------
# Conversion context


class _Invalid:
    """Stands in for a value that failed validation, so every other check can still run."""

    _instance = None

    def __new__(cls) -> "_Invalid":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<invalid>"

    def __bool__(self) -> bool:
        return False


INVALID: Any = _Invalid()


def _ok(*values: Any) -> bool:
    return all(v is not INVALID for v in values)


class _Ctx:
    def __init__(self, lines: Mapping[str, int] | None = None) -> None:
        self.lines = dict(lines or {})
        self.errors: list[ConfigIssue] = []
        self.warnings: list[ConfigIssue] = []

    def error(self, path: str, message: str) -> None:
        self.errors.append(ConfigIssue(path, message, self.lines.get(path)))

    def warn(self, path: str, message: str) -> None:
        self.warnings.append(ConfigIssue(path, message, self.lines.get(path)))


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _suggest(word: str, choices: Iterable[str]) -> str:
    choices = list(choices)
    for c in choices:
        if c.lower() == word.lower():
            return f" (did you mean {c!r}?)"
    lowered = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return f" (did you mean {lowered[close[0]]!r}?)" if close else ""


def _got(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, str):
        text = value if len(value) <= 60 else value[:57] + "..."
        return f"the string {text!r}"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return f"a {type(value).__name__}"


def _fmt_num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


_LEAF_KEYS = ("gt", "ge", "lt", "le", "pow2", "check")


def _leaf(meta: Mapping[str, Any]) -> dict[str, Any]:
    return {k: meta[k] for k in _LEAF_KEYS if k in meta}


def _bounds(meta: Mapping[str, Any]) -> str:
    ops = (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="))
    return " and ".join(f"{op} {_fmt_num(meta[k])}" for k, op in ops if k in meta)


def _describe(tp: Any, meta: Mapping[str, Any]) -> str:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        inner = [a for a in get_args(tp) if a is not type(None)]
        return f"{_describe(inner[0], meta)} or null"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    if origin is Literal:
        return "one of: " + ", ".join(get_args(tp))
    if origin is tuple:
        return "a list"
    if origin is Mapping:
        return "a mapping"
    if tp is bool:
        return "true or false"
    if tp is str:
        return "a string"
    if tp in (int, float):
        noun = "an integer" if tp is int else "a number"
        bounds = _bounds(meta)
        return f"{noun} {bounds}" if bounds else noun
    return getattr(tp, "__name__", str(tp))


# --------------------------------------------------------------------------------------------
# Generic conversion along the schema


def _convert(tp: Any, value: Any, path: str, meta: Mapping[str, Any], ctx: _Ctx) -> Any:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        if value is None:
            return None
        inner = [a for a in get_args(tp) if a is not type(None)]
        if len(inner) != 1:  # pragma: no cover - schema bug
            raise TypeError(f"unsupported union {tp}")
        result = _convert(inner[0], value, path, meta, ctx)
        return result
    if value is None:
        ctx.error(path, f"expected {_describe(tp, meta)}, got null")
        return INVALID
    if dataclasses.is_dataclass(tp):
        return _convert_dataclass(tp, value, path, ctx)
    if origin is Literal:
        return _convert_choice(tp, value, path, ctx)
    if origin is tuple:
        return _convert_tuple(tp, value, path, meta, ctx)
    if origin is Mapping:
        return _convert_mapping(tp, value, path, meta, ctx)
    if tp is bool:
        if isinstance(value, bool):
            return value
        ctx.error(path, f"expected true or false, got {_got(value)}")
        return INVALID
    if tp in (int, float):
        return _convert_number(tp, value, path, meta, ctx)
    if tp is str:
        if not isinstance(value, str):
            ctx.error(path, f"expected a string, got {_got(value)}")
            return INVALID
        return _run_check(value, path, meta, ctx)
    raise TypeError(f"unsupported schema type {tp!r} at {path}")  # pragma: no cover - schema bug


def _run_check(value: Any, path: str, meta: Mapping[str, Any], ctx: _Ctx) -> Any:
    check: Callable[[Any], str | None] | None = meta.get("check")
    if check is not None:
        problem = check(value)
        if problem:
            ctx.error(path, problem)
            return INVALID
    return value


def _convert_number(tp: type, value: Any, path: str, meta: Mapping[str, Any], ctx: _Ctx) -> Any:
    integer = tp is int
    accepted = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, accepted):
        ctx.error(path, f"expected {_describe(tp, meta)}, got {_got(value)}")
        return INVALID
    if not integer:
        value = float(value)
        if not math.isfinite(value):
            ctx.error(path, f"expected a finite number{' ' + _bounds(meta) if _bounds(meta) else ''}, got {value!r}")
            return INVALID
    ok = True
    if "gt" in meta and not value > meta["gt"]:
        ok = False
    if "ge" in meta and not value >= meta["ge"]:
        ok = False
    if "lt" in meta and not value < meta["lt"]:
        ok = False
    if "le" in meta and not value <= meta["le"]:
        ok = False
    if not ok:
        ctx.error(path, f"expected {_describe(tp, meta)}, got {_fmt_num(value)}")
        return INVALID
    if meta.get("pow2") and (value <= 0 or value & (value - 1)):
        lower = 1 << max(value.bit_length() - 1, 0)
        ctx.error(path, f"expected a power of two (such as {lower} or {lower * 2}), got {value}")
        return INVALID
    return _run_check(value, path, meta, ctx)


def _convert_choice(tp: Any, value: Any, path: str, ctx: _Ctx) -> Any:
    choices: tuple[str, ...] = get_args(tp)
    if isinstance(value, str) and value in choices:
        return value
    name = CHOICE_NAMES.get(tp, "value")
    expected = ", ".join(choices)
    if isinstance(value, str):
        ctx.error(path, f"unknown {name} {value!r}{_suggest(value, choices)}; expected one of: {expected}")
    else:
        ctx.error(path, f"expected a {name}, one of: {expected}; got {_got(value)}")
    return INVALID


def _convert_tuple(tp: Any, value: Any, path: str, meta: Mapping[str, Any], ctx: _Ctx) -> Any:
    if not isinstance(value, (list, tuple)):
        ctx.error(path, f"expected a list, got {_got(value)}")
        return INVALID
    args = get_args(tp)
    leaf = _leaf(meta)
    if len(args) == 2 and args[1] is Ellipsis:
        item_types = [args[0]] * len(value)
    else:
        if len(value) != len(args):
            ctx.error(path, f"expected a list of exactly {len(args)} items, got {len(value)}")
            return INVALID
        item_types = list(args)
    items = tuple(_convert(t, v, f"{path}[{i}]", leaf, ctx) for i, (t, v) in enumerate(zip(item_types, value, strict=True)))
    bad = INVALID in items
    if "min_len" in meta and len(items) < meta["min_len"]:
        n = meta["min_len"]
        ctx.error(path, f"expected at least {n} item{'s' if n != 1 else ''}, got {len(items)}")
        bad = True
    if meta.get("unique"):
        first: dict[Any, int] = {}
        for i, item in enumerate(items):
            if item is INVALID:
                continue
            if item in first:
                ctx.error(f"{path}[{i}]", f"duplicate of item [{first[item]}]; items must be distinct")
                bad = True
            else:
                first[item] = i
    return INVALID if bad else items


def _convert_mapping(tp: Any, value: Any, path: str, meta: Mapping[str, Any], ctx: _Ctx) -> Any:
    if not isinstance(value, Mapping):
        ctx.error(path, f"expected a mapping, got {_got(value)}")
        return INVALID
    _, value_type = get_args(tp)
    allowed: tuple[str, ...] | None = meta.get("keys")
    key_name = meta.get("key_name", "key")
    leaf = _leaf(meta)
    # Bad entries are dropped or kept as INVALID (not the whole mapping), so that the
    # cross-field checks still see the good ones; a config with errors is never returned.
    out: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            ctx.error(path, f"keys must be strings, got {_got(key)}")
            continue
        sub = _join(path, key)
        if allowed is not None and key not in allowed:
            ctx.error(sub, f"unknown {key_name} {key!r}{_suggest(key, allowed)}; expected one of: {', '.join(allowed)}")
            continue
        out[key] = _convert(value_type, item, sub, leaf, ctx)
    if "min_len" in meta and len(out) < meta["min_len"]:
        ctx.error(path, f"expected at least {meta['min_len']} entries, got {len(out)}")
    return FrozenDict(out)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def _convert_dataclass(cls: type, value: Any, path: str, ctx: _Ctx) -> Any:
    if not isinstance(value, Mapping):
        ctx.error(path, f"expected a mapping of settings, got {_got(value)}")
        return INVALID
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in value:
        if not isinstance(key, str):
            ctx.error(path, f"keys must be strings, got {_got(key)}")
        elif key not in fields:
            ctx.error(_join(path, key), f"unknown key {key!r}{_suggest(key, fields)}; valid keys here: {', '.join(fields)}")
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        sub = _join(path, name)
        if name in value:
            kwargs[name] = _convert(hints[name], value[name], sub, f.metadata, ctx)
        elif f.default is not dataclasses.MISSING:
            kwargs[name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            kwargs[name] = f.default_factory()
        else:
            ctx.error(sub, f"missing required key; expected {_describe(hints[name], f.metadata)}")
            kwargs[name] = INVALID
    return cls(**kwargs)


# --------------------------------------------------------------------------------------------
# Secrets

_SECRET_WORDS = ("secret", "password", "passwd", "passphrase", "api_key", "apikey", "private_key",
                 "privatekey", "token", "credential")


def is_secret_key(key: Any) -> bool:
    k = str(key).lower().replace("-", "_")
    return any(w in k for w in _SECRET_WORDS)


def _secret_env_var(parts: list[str], key: str) -> str | None:
    k = key.lower()
    venue = next((p for p in reversed(parts) if p in VENUES), None)
    if venue is not None:
        key_var, secret_var, pass_var = credential_env_vars(venue)
        if "phrase" in k or "passw" in k:
            return pass_var
        if "secret" in k or "private" in k:
            return secret_var
        return key_var
    if "neo4j" in parts or "graph" in parts:
        return NEO4J_PASSWORD_ENV
    return None


def _strip_secrets(value: Any, parts: list[str], ctx: _Ctx) -> Any:
    """A copy of the document without secret-looking keys; each one found is an error."""
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            path = _join(".".join(parts), key)
            if is_secret_key(key):
                var = _secret_env_var(parts, str(key))
                if var is not None:
                    how = f"delete this key and set the environment variable {var} instead"
                else:
                    how = ("delete this key; venue keys come from HFTPIPE_<VENUE>_API_KEY, _API_SECRET and"
                           f" _API_PASSPHRASE, the Neo4j password from {NEO4J_PASSWORD_ENV}")
                ctx.error(path, f"secrets must not be written in the config file; {how}")
                continue
            out[key] = _strip_secrets(item, [*parts, str(key)], ctx)
        return out
    if isinstance(value, list):
        result = []
        for i, item in enumerate(value):
            sub = [*parts[:-1], f"{parts[-1]}[{i}]"] if parts else [f"[{i}]"]
            result.append(_strip_secrets(item, sub, ctx))
        return result
    return value


# --------------------------------------------------------------------------------------------
# Merging


def merge(base: Any, over: Any) -> Any:
    """``over`` merged over ``base``: mappings key by key (``over``'s keys first, so its order
    wins), everything else replaced; a null where ``base`` has a mapping keeps ``base``."""
    if isinstance(base, Mapping) and isinstance(over, Mapping):
        out = {k: (merge(base[k], v) if k in base else v) for k, v in over.items()}
        for k, v in base.items():
            if k not in out:
                out[k] = v
        return out
    if over is None and isinstance(base, Mapping):
        return base
    return over


# --------------------------------------------------------------------------------------------
# Cross-field checks: each takes the (possibly partly INVALID) Config and the context.

_XARB = "hft.strategies.cross_exchange_arbitrage"
_TRI = "hft.strategies.triangular_arbitrage"
_STAT = "hft.strategies.statistical_arbitrage"


def _enabled_symbols(cfg: Config) -> dict[str, tuple[str, ...]] | None:
    """Symbols of each enabled exchange, or None if that part of the config is invalid."""
    md = cfg.market_data
    if md is INVALID or md.exchanges is INVALID:
        return None
    out = {}
    for venue, ex in md.exchanges.items():
        if ex is INVALID or not _ok(ex.enabled, ex.symbols):
            return None
        if ex.enabled:
            out[venue] = ex.symbols
    return out


def has_triangle(symbols: Iterable[str]) -> bool:
    """Whether three of the ``BASE/QUOTE`` markets form a cycle over three currencies."""
    adj: dict[str, set[str]] = defaultdict(set)
    for s in symbols:
        base, _, quote = s.partition("/")
        if base != quote:
            adj[base].add(quote)
            adj[quote].add(base)
    return any(adj[a] & adj[b] - {a, b} for a in adj for b in adj[a])


def _check_market_data(cfg: Config, ctx: _Ctx) -> None:
    md = cfg.market_data
    if md is INVALID:
        return
    if _ok(md.depth, md.book_capacity) and md.depth > md.book_capacity:
        ctx.error("hft.market_data.depth",
                  f"expected at most book_capacity ({md.book_capacity}) published levels, got {md.depth}")
    lo, hi = md.reconnect_backoff_min_s, md.reconnect_backoff_max_s
    if _ok(lo, hi) and lo > hi:
        ctx.error("hft.market_data.reconnect_backoff_max_s",
                  f"expected at least reconnect_backoff_min_s ({_fmt_num(lo)}), got {_fmt_num(hi)}")
    if md.exchanges is INVALID:
        return
    for venue, ex in md.exchanges.items():
        if ex is not INVALID and ex.enabled is True and ex.symbols == ():
            ctx.error(f"hft.market_data.exchanges.{venue}.symbols", "an enabled exchange needs at least one symbol")
    if not any(ex is not INVALID and ex.enabled is True for ex in md.exchanges.values()):
        ctx.warn("hft.market_data.exchanges", "no exchange is enabled; nothing will run")


def _check_cross_exchange(cfg: Config, ctx: _Ctx) -> None:
    s = cfg.strategies.cross_exchange_arbitrage if cfg.strategies is not INVALID else INVALID
    venues = _enabled_symbols(cfg)
    if s is INVALID or venues is None or s.enabled is not True:
        return
    if len(venues) < 2:
        ctx.warn(_XARB, "enabled, but fewer than two exchanges are enabled: it will never signal")
        return
    if s.symbols is None:
        if not _cross_symbols(venues):
            ctx.warn(_XARB, "enabled, but no symbol is listed on two or more enabled exchanges")
        return
    if s.symbols is INVALID:
        return
    for i, sym in enumerate(s.symbols):
        on = [v for v, syms in venues.items() if sym in syms]
        if len(on) < 2:
            listed = ", ".join(on) if on else "none"
            ctx.error(f"{_XARB}.symbols[{i}]",
                      f"{sym} must be listed on at least two enabled exchanges to arbitrage it (listed on: {listed})")


def _cross_symbols(venues: Mapping[str, tuple[str, ...]]) -> tuple[str, ...]:
    counts: dict[str, int] = {}
    for syms in venues.values():
        for sym in syms:
            counts[sym] = counts.get(sym, 0) + 1
    return tuple(sym for sym, n in counts.items() if n >= 2)


def _not_enabled(venue: str) -> str:
    return f"exchange {venue!r} is not enabled; enable it under hft.market_data.exchanges.{venue} or pick another venue"


def _check_triangular(cfg: Config, ctx: _Ctx) -> None:
    s = cfg.strategies.triangular_arbitrage if cfg.strategies is not INVALID else INVALID
    venues = _enabled_symbols(cfg)
    if s is INVALID or venues is None or s.enabled is not True or s.venue is INVALID:
        return
    example = "(e.g. BTC/USDT, ETH/BTC, ETH/USDT)"
    if s.venue is None:
        if not any(has_triangle(syms) for syms in venues.values()):
            ctx.error(f"{_TRI}.venue",
                      f"no enabled exchange lists three symbols that form a cycle {example}; list them or disable the strategy")
    elif s.venue not in venues:
        ctx.error(f"{_TRI}.venue", _not_enabled(s.venue))
    elif not has_triangle(venues[s.venue]):
        ctx.error(f"{_TRI}.venue",
                  f"the symbols of {s.venue} contain no three markets forming a cycle {example}")


def _check_stat_arb(cfg: Config, ctx: _Ctx) -> None:
    s = cfg.strategies.statistical_arbitrage if cfg.strategies is not INVALID else INVALID
    if s is INVALID:
        return
    if _ok(s.entry_z, s.exit_z) and s.exit_z >= s.entry_z:
        ctx.error(f"{_STAT}.exit_z", f"expected less than entry_z ({_fmt_num(s.entry_z)}), got {_fmt_num(s.exit_z)}")
    if _ok(s.entry_z, s.stop_z) and s.stop_z <= s.entry_z:
        ctx.error(f"{_STAT}.stop_z", f"expected more than entry_z ({_fmt_num(s.entry_z)}), got {_fmt_num(s.stop_z)}")
    if s.pairs is not INVALID and s.pairs is not None:
        for i, (a, b) in enumerate(s.pairs):
            if _ok(a, b) and a == b:
                ctx.error(f"{_STAT}.pairs[{i}]", f"a pair needs two different symbols, got {a} twice")
    venues = _enabled_symbols(cfg)
    if venues is None or s.enabled is not True or not _ok(s.venue, s.pairs):
        return
    if s.venue is not None and s.venue not in venues:
        ctx.error(f"{_STAT}.venue", _not_enabled(s.venue))
        return
    venue = s.venue or _stat_arb_venue(venues, s.pairs)
    if venue is None:
        if s.pairs is None:
            ctx.error(f"{_STAT}.venue", "no enabled exchange lists two symbols to pair; list them or set pairs")
        else:
            ctx.error(f"{_STAT}.pairs", "no enabled exchange lists every symbol of these pairs; set venue")
        return
    if s.pairs is None:
        if len(venues[venue]) < 2:
            ctx.error(f"{_STAT}.pairs", f"null pairs means the first two symbols of {venue}, which lists fewer than two")
        return
    for i, pair in enumerate(s.pairs):
        for j, sym in enumerate(pair):
            if sym not in venues[venue]:
                ctx.error(f"{_STAT}.pairs[{i}][{j}]", f"{sym} is not among the symbols of {venue}")


def _stat_arb_venue(venues: Mapping[str, tuple[str, ...]],
                    pairs: tuple[tuple[str, str], ...] | None) -> str | None:
    for venue, syms in venues.items():
        if pairs is None and len(syms) >= 2:
            return venue
        if pairs is not None and all(sym in syms for pair in pairs for sym in pair):
            return venue
    return None


def _check_risk(cfg: Config, ctx: _Ctx) -> None:
    r = cfg.risk
    if r is not INVALID and _ok(r.max_order_notional, r.max_exposure) and r.max_order_notional > r.max_exposure:
        ctx.warn("hft.risk.max_order_notional",
                 f"is larger than max_exposure ({_fmt_num(r.max_exposure)}); the exposure limit will bind first")


def _check_supervisor(cfg: Config, ctx: _Ctx) -> None:
    s = cfg.supervisor
    if s is not INVALID and _ok(s.heartbeat_interval_ms, s.heartbeat_timeout_ms) \
            and s.heartbeat_timeout_ms <= s.heartbeat_interval_ms:
        ctx.error("hft.supervisor.heartbeat_timeout_ms",
                  f"expected more than heartbeat_interval_ms ({_fmt_num(s.heartbeat_interval_ms)}),"
                  f" got {_fmt_num(s.heartbeat_timeout_ms)}")


def _check_environment(cfg: Config, ctx: _Ctx) -> None:
    """Warnings only: what a run would miss from the environment."""
    venues = _enabled_symbols(cfg)
    if cfg.execution is not INVALID and cfg.execution.mode == "live" and venues:
        for venue in venues:
            try:
                creds = api_credentials(venue)
            except ConfigError as exc:
                for issue in exc.errors:
                    ctx.warn("hft.execution.mode", f"live mode, but {issue.path} {issue.message}")
                continue
            if creds is None:
                key_var, secret_var, _ = credential_env_vars(venue)
                ctx.warn("hft.execution.mode",
                         f"live mode, but no {venue} credentials in the environment ({key_var}, {secret_var})")
    if cfg.graph is not INVALID and cfg.graph.store == "neo4j" and neo4j_password() is None:
        ctx.warn("hft.graph.store", f"neo4j store, but {NEO4J_PASSWORD_ENV} is not set")


#: The cross-field checks, run in this order after conversion. Later parts append here.
CHECKS: list[Callable[[Config, _Ctx], None]] = [
    _check_market_data,
    _check_cross_exchange,
    _check_triangular,
    _check_stat_arb,
    _check_risk,
    _check_supervisor,
    _check_environment,
]


# --------------------------------------------------------------------------------------------
# Resolution of "null = derive it" settings (only on a config without errors)


def _resolve(cfg: Config) -> Config:
    venues = _enabled_symbols(cfg) or {}
    st = cfg.strategies
    wait = cfg.wait_strategy

    x: CrossExchangeArbitrageConfig = st.cross_exchange_arbitrage
    x = dataclasses.replace(
        x,
        symbols=_cross_symbols(venues) if x.symbols is None else x.symbols,
        wait_strategy=x.wait_strategy or wait,
    )

    t: TriangularArbitrageConfig = st.triangular_arbitrage
    tri_venue = t.venue
    if tri_venue is None:
        tri_venue = next((v for v, syms in venues.items() if has_triangle(syms)), None)
    t = dataclasses.replace(t, venue=tri_venue, wait_strategy=t.wait_strategy or wait)

    s: StatisticalArbitrageConfig = st.statistical_arbitrage
    stat_venue = s.venue or _stat_arb_venue(venues, s.pairs)
    pairs = s.pairs
    if pairs is None and stat_venue is not None and len(venues.get(stat_venue, ())) >= 2:
        a, b = venues[stat_venue][:2]
        pairs = ((a, b),)
    s = dataclasses.replace(s, venue=stat_venue, pairs=pairs, wait_strategy=s.wait_strategy or wait)

    strategies = dataclasses.replace(st, cross_exchange_arbitrage=x, triangular_arbitrage=t,
                                     statistical_arbitrage=s)
    return dataclasses.replace(cfg, strategies=strategies)


# --------------------------------------------------------------------------------------------
# Entry points


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Document:
    hft: Config


@functools.cache
def _default_document() -> Any:
    text = default_config_path().read_text(encoding="utf-8")
    data, _, issues = parse_yaml(text)
    if issues or not isinstance(data, dict):  # pragma: no cover - packaging bug
        raise ConfigError(issues or [ConfigIssue("", "default.yaml is not a mapping")], source="default.yaml")
    return data


def _build(user: Any, lines: Mapping[str, int], source: str,
           issues: Iterable[ConfigIssue] = ()) -> tuple[Config, tuple[ConfigIssue, ...]]:
    ctx = _Ctx(lines)
    ctx.errors.extend(issues)
    if ctx.errors:
        raise ConfigError(ctx.errors, source)
    if user is None:
        ctx.error("", "the file is empty; expected a mapping with a top-level 'hft:' key")
        raise ConfigError(ctx.errors, source)
    if not isinstance(user, Mapping):
        ctx.error("", f"the top level must be a mapping with an 'hft:' key, got {_got(user)}")
        raise ConfigError(ctx.errors, source)
    if "hft" not in user:
        ctx.error("hft", "missing required top-level key 'hft:'; every setting lives under it")
    user = _strip_secrets(user, [], ctx)
    doc = _convert_dataclass(_Document, merge(copy.deepcopy(_default_document()), user), "", ctx)
    cfg = doc.hft if doc is not INVALID else INVALID
    if cfg is not INVALID:
        for check in CHECKS:
            check(cfg, ctx)
    if ctx.errors:
        raise ConfigError(_in_file_order(ctx.errors), source)
    return _resolve(cfg), tuple(_in_file_order(ctx.warnings))


def _in_file_order(issues: list[ConfigIssue]) -> list[ConfigIssue]:
    """Issues with a line sorted by line (stable), then those without one, in found order."""
    with_line = sorted((i for i in issues if i.line is not None), key=lambda i: i.line or 0)
    return with_line + [i for i in issues if i.line is None]


def check_config_text(text: str, source: str = "<string>") -> tuple[Config, tuple[ConfigIssue, ...]]:
    """Load YAML text → (Config, warnings). Raises ConfigError listing every problem."""
    data, lines, issues = parse_yaml(text)
    return _build(data, lines, source, issues)


def check_config(path: str | Path) -> tuple[Config, tuple[ConfigIssue, ...]]:
    """Load a YAML file → (Config, warnings). Raises ConfigError listing every problem."""
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([ConfigIssue("", "no such file")], source) from None
    except IsADirectoryError:
        raise ConfigError([ConfigIssue("", "is a directory, not a config file")], source) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([ConfigIssue("", f"not UTF-8 text ({exc.reason} at byte {exc.start})")], source) from None
    except OSError as exc:
        raise ConfigError([ConfigIssue("", f"cannot read: {exc.strerror}")], source) from None
    return check_config_text(text, source)


def _log_warnings(warnings: Iterable[ConfigIssue], source: str) -> None:
    for w in warnings:
        log.warning("config %s: %s", source, w.render(source))


def load_config(path: str | Path) -> Config:
    """Load and validate a config file; warnings go to the ``hftpipe.config`` logger."""
    cfg, warnings = check_config(path)
    _log_warnings(warnings, str(path))
    return cfg


def load_config_text(text: str, source: str = "<string>") -> Config:
    """Like :func:`load_config`, from YAML text."""
    cfg, warnings = check_config_text(text, source)
    _log_warnings(warnings, source)
    return cfg


def load_config_dict(data: Mapping[str, Any], source: str = "<dict>") -> Config:
    """Like :func:`load_config`, from an already parsed document (``{"hft": {...}}``)."""
    cfg, warnings = _build(copy.deepcopy(data), {}, source)
    _log_warnings(warnings, source)
    return cfg


def default_config() -> Config:
    """The configuration default.yaml describes (no exchange enabled); logs nothing."""
    return _build({"hft": {}}, {}, "default.yaml")[0]
