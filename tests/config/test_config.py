import dataclasses
import logging
import math
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import hftpipe.config as hc
from hftpipe.config import (
    Config,
    ConfigError,
    Credentials,
    api_credentials,
    check_config,
    check_config_text,
    default_config,
    default_config_path,
    load_config,
    load_config_dict,
    load_config_text,
    neo4j_password,
)
from hftpipe.config.schema import FaultConfig

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "config" / "demo.yaml"

SEED = """\
hft:
  enabled: true
  market_data:
    exchanges:
      binance: {enabled: true, symbols: ["BTC/USDT", "ETH/USDT"]}
  strategies:
    statistical_arbitrage: {enabled: true, lookback_period: 100}
    cross_exchange_arbitrage: {enabled: true, min_profit_bps: 5}
  risk: {max_position_size: 1.0, max_exposure: 10000}
"""

TWO_VENUES = {
    "binance": {"enabled": True, "symbols": ["BTC/USDT", "ETH/USDT"]},
    "okx": {"enabled": True, "symbols": ["BTC/USDT"]},
}


def doc(**hft):
    """A document with two enabled venues plus the given hft settings (deep-merged)."""
    return hc.merge({"hft": {"market_data": {"exchanges": TWO_VENUES}}}, {"hft": hft})


def errors_of(data):
    with pytest.raises(ConfigError) as info:
        if isinstance(data, str):
            check_config_text(data, "test.yaml")
        else:
            load_config_dict(data)
    return info.value.errors


def find(errors, path):
    found = [e for e in errors if e.path == path]
    assert found, f"no error at {path}; got: {[str(e) for e in errors]}"
    return found[0].message


# ------------------------------------------------------------------------------------------
# Good configs


def test_seed_block_loads_with_defaults_filled_in():
    cfg, warnings = check_config_text(SEED)
    assert isinstance(cfg, Config)
    assert cfg.enabled is True
    binance = cfg.market_data.exchanges["binance"]
    assert binance.enabled and binance.symbols == ("BTC/USDT", "ETH/USDT")
    assert (binance.taker_fee_bps, binance.maker_fee_bps) == (10.0, 10.0)
    assert binance.ws_url is None and binance.cpu is None
    assert cfg.enabled_venues() == ("binance",)
    assert cfg.market_data.exchanges["coinbase"].taker_fee_bps == 60.0
    assert not cfg.market_data.exchanges["okx"].enabled
    assert (cfg.market_data.depth, cfg.market_data.book_capacity, cfg.market_data.ring_slots) == (20, 5000, 64)
    st = cfg.strategies
    assert st.statistical_arbitrage.enabled and st.statistical_arbitrage.lookback_period == 100
    # null venue/pairs resolve to the first enabled venue and its first two symbols
    assert st.statistical_arbitrage.venue == "binance"
    assert st.statistical_arbitrage.pairs == (("BTC/USDT", "ETH/USDT"),)
    assert st.cross_exchange_arbitrage.min_profit_bps == 5.0
    assert isinstance(st.cross_exchange_arbitrage.min_profit_bps, float)
    assert st.cross_exchange_arbitrage.symbols == ()  # only one venue enabled
    assert st.triangular_arbitrage.enabled is False
    assert all(s.wait_strategy == "spin_yield" for _, s in st.items())
    assert cfg.risk.max_exposure == 10000.0 and cfg.risk.max_position_size == 1.0
    assert cfg.risk.self_trade_guard is True
    assert cfg.execution.mode == "paper" and cfg.execution.order_latency_ms["kraken"] == 1.0
    assert cfg.graph.store == "falkordb"
    assert cfg.journals.roll_bytes == 64 * 1024 * 1024
    assert cfg.metrics.host == "127.0.0.1"
    assert cfg.run.data_dir == "./data" and cfg.run.run_name == "hftpipe"
    assert cfg.run.data_path == Path.cwd() / "data"
    # the single venue makes cross-exchange arbitrage useless: a warning, not an error
    assert [w.path for w in warnings] == ["hft.strategies.cross_exchange_arbitrage"]


def test_demo_loads_cleanly():
    cfg, warnings = check_config(DEMO)
    assert warnings == ()
    assert cfg.enabled_venues() == ("binance", "binanceusdm", "okx")
    assert cfg.execution.mode == "paper"
    assert cfg.simulator.enabled and len(cfg.simulator.faults) == 3
    assert all(isinstance(f, FaultConfig) for f in cfg.simulator.faults)
    st = cfg.strategies
    assert st.cross_exchange_arbitrage.enabled and st.triangular_arbitrage.enabled
    assert st.statistical_arbitrage.enabled
    assert set(st.cross_exchange_arbitrage.symbols) == {"BTC/USDT", "ETH/USDT", "SOL/USDT"}
    assert st.triangular_arbitrage.venue == "binance"
    for ex in cfg.market_data.exchanges.values():
        assert ex.cpu is None  # the demo runs on any machine


def test_default_yaml_copy_is_identical():
    packaged = default_config_path()
    assert packaged.parent == Path(hc.__file__).parent
    assert (REPO / "config" / "default.yaml").read_bytes() == packaged.read_bytes()


def test_default_yaml_is_packaged():
    text = (REPO / "pyproject.toml").read_text()
    assert '"config/*.yaml"' in text


def _schema_paths(cls, prefix):
    hints = hc.loader._hints(cls)
    for f in dataclasses.fields(cls):
        path = f"{prefix}.{f.name}"
        yield path
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            yield from _schema_paths(tp, path)


def test_default_yaml_sets_every_key():
    raw = yaml.safe_load(default_config_path().read_text())
    for path in _schema_paths(Config, "hft"):
        node = raw
        for part in path.split("."):
            assert isinstance(node, dict) and part in node, f"default.yaml lacks {path}"
            node = node[part]
    assert set(raw["hft"]["market_data"]["exchanges"]) == set(hc.VENUES)


def test_default_config_loads():
    cfg = default_config()
    assert cfg.enabled_venues() == ()
    assert cfg.wait_strategy == "spin_yield"


def test_null_section_keeps_defaults_and_user_venue_order_is_kept():
    cfg = load_config_text(
        "hft:\n  risk:\n  market_data:\n    exchanges:\n"
        "      okx: {enabled: true, symbols: [BTC/USDT, ETH/USDT]}\n"
        "      binance: {enabled: true, symbols: [BTC/USDT]}\n"
    )
    assert cfg.risk == default_config().risk
    assert cfg.enabled_venues() == ("okx", "binance")
    assert cfg.strategies.statistical_arbitrage.venue == "okx"


def test_exponent_floats_and_ints_are_numbers():
    cfg = load_config_text("hft:\n  risk: {max_exposure: 1e6, max_daily_loss: 250}\n")
    assert cfg.risk.max_exposure == 1e6
    assert cfg.risk.max_daily_loss == 250.0 and isinstance(cfg.risk.max_daily_loss, float)


def test_effective_config_round_trips():
    cfg = load_config(DEMO)
    again = load_config_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    assert again == cfg


def test_existing_cpu_is_accepted():
    cpu = min(os.sched_getaffinity(0))
    cfg = load_config_dict(doc(execution={"cpu": cpu}, market_data={"exchanges": {"okx": {"cpu": cpu}}}))
    assert cfg.execution.cpu == cpu and cfg.market_data.exchanges["okx"].cpu == cpu


# ------------------------------------------------------------------------------------------
# Immutability


def test_config_is_frozen_and_picklable():
    cfg = load_config(DEMO)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.risk.max_exposure = 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.enabled = False
    with pytest.raises(TypeError):
        cfg.market_data.exchanges["kraken"] = cfg.market_data.exchanges["okx"]
    with pytest.raises(TypeError):
        cfg.execution.order_latency_ms.update(okx=5.0)
    assert isinstance(cfg.market_data.exchanges["binance"].symbols, tuple)
    assert pickle.loads(pickle.dumps(cfg)) == cfg
    assert hash(cfg) == hash(pickle.loads(pickle.dumps(cfg)))
    changed = dataclasses.replace(cfg, risk=dataclasses.replace(cfg.risk, max_exposure=5.0))
    assert changed.risk.max_exposure == 5.0 and cfg.risk.max_exposure == 10000.0


# ------------------------------------------------------------------------------------------
# Bad configs: each names the full key path and what is expected


def test_unknown_keys_everywhere_with_suggestions():
    errors = errors_of(doc(
        risk={"max_exposur": 5},
        market_data={"exchanges": {"binance": {"symbol": ["BTC/USDT"]}}},
        graph={"correlation": {"window_s": [60]}},
        wait_strategyy="spin",
    ))
    assert "did you mean 'max_exposure'?" in find(errors, "hft.risk.max_exposur")
    assert "did you mean 'symbols'?" in find(errors, "hft.market_data.exchanges.binance.symbol")
    assert "did you mean 'windows_s'?" in find(errors, "hft.graph.correlation.window_s")
    assert "did you mean 'wait_strategy'?" in find(errors, "hft.wait_strategyy")
    msg = find(errors, "hft.risk.max_exposur")
    assert "unknown key" in msg and "max_position_size" in msg  # lists the valid keys


def test_unknown_top_level_key():
    errors = errors_of({"hft": {}, "hfx": {}})
    assert "did you mean 'hft'?" in find(errors, "hfx")


@pytest.mark.parametrize("section,key,value,expected", [
    ("risk", "max_exposure", "10000", "expected a number > 0, got the string '10000'"),
    ("risk", "max_exposure", True, "expected a number > 0, got true (a boolean)"),
    ("risk", "max_open_orders", 2.5, "expected an integer >= 1, got 2.5"),
    ("risk", "max_open_orders", False, "expected an integer >= 1, got false (a boolean)"),
    ("risk", "self_trade_guard", "yes please", "expected true or false"),
    ("risk", "max_position_size", 0, "expected a number > 0, got 0"),
    ("risk", "max_exposure", -1, "expected a number > 0, got -1"),
    ("risk", "max_daily_loss", -0.5, "expected a number > 0, got -0.5"),
    ("risk", "max_open_orders", 0, "expected an integer >= 1, got 0"),
    ("risk", "max_orders_per_s", 0, "expected a number > 0"),
    ("journals", "roll_bytes", 0, "expected an integer >= 65536, got 0"),
    ("market_data", "ring_slots", 100, "expected a power of two (such as 64 or 128), got 100"),
    ("market_data", "depth", 0, "expected an integer >= 1"),
    ("risk", "max_exposure", math.nan, "expected a finite number > 0, got nan"),
    ("risk", "max_exposure", math.inf, "expected a finite number > 0, got inf"),
    ("execution", "order_timeout_s", -math.inf, "expected a finite number > 0, got -inf"),
    ("metrics", "host", "0.0.0.0", "'0.0.0.0' is not a loopback address"),
    ("metrics", "port", 70000, "expected an integer >= 0 and <= 65535, got 70000"),
    ("run", "run_name", "my run!", "not a valid run name"),
    ("execution", "mode", "real", "unknown executor mode 'real'; expected one of: paper, live"),
    ("execution", "mode", "Live", "unknown executor mode 'Live' (did you mean 'live'?)"),
    ("execution", "leg_failure_policy", "retry", "unknown leg failure policy 'retry'"),
    ("graph", "store", "neo5j", "unknown graph store 'neo5j' (did you mean 'neo4j'?); expected one of: falkordb, neo4j, none"),
    ("run", "log_level", "info", "unknown log level 'info' (did you mean 'INFO'?)"),
    ("risk", "price_band_bps", None, "expected a number > 0 and <= 10000, got null"),
])
def test_bad_values(section, key, value, expected):
    errors = errors_of(doc(**{section: {key: value}}))
    assert expected in find(errors, f"hft.{section}.{key}")
    assert len(errors) == 1


def test_nan_in_yaml_text():
    errors = errors_of("hft:\n  risk:\n    max_exposure: .nan\n    max_drawdown: .inf\n")
    assert "finite" in find(errors, "hft.risk.max_exposure")
    assert "finite" in find(errors, "hft.risk.max_drawdown")


def test_enabled_exchange_needs_symbols():
    errors = errors_of({"hft": {"market_data": {"exchanges": {"binance": {"enabled": True}}}}})
    assert find(errors, "hft.market_data.exchanges.binance.symbols") == "an enabled exchange needs at least one symbol"
    # a disabled one may have none
    load_config_dict({"hft": {"market_data": {"exchanges": {"kraken": {"enabled": False}}}}})


def test_symbol_not_base_quote():
    errors = errors_of(doc(market_data={"exchanges": {"okx": {"symbols": ["BTCUSDT", "btc-usdt", "BTC/USDT"]}}}))
    assert "'BTCUSDT' is not a symbol in BASE/QUOTE form" in find(errors, "hft.market_data.exchanges.okx.symbols[0]")
    assert "did you mean 'BTC/USDT'?" in find(errors, "hft.market_data.exchanges.okx.symbols[1]")


def test_symbols_must_be_a_list_and_distinct():
    errors = errors_of(doc(market_data={"exchanges": {"okx": {"symbols": "BTC/USDT"}}}))
    assert "expected a list, got the string 'BTC/USDT'" in find(errors, "hft.market_data.exchanges.okx.symbols")
    errors = errors_of(doc(market_data={"exchanges": {"okx": {"symbols": ["BTC/USDT", "BTC/USDT"]}}}))
    assert "duplicate" in find(errors, "hft.market_data.exchanges.okx.symbols[1]")


def test_unknown_venue():
    errors = errors_of(doc(market_data={"exchanges": {"binanse": {"enabled": True, "symbols": ["BTC/USDT"]}}},
                           execution={"order_latency_ms": {"huobi": 1.0}},
                           strategies={"triangular_arbitrage": {"venue": "ftx"}}))
    msg = find(errors, "hft.market_data.exchanges.binanse")
    assert msg.startswith("unknown venue 'binanse' (did you mean 'binance'?)")
    assert "binanceusdm, okx, bybit, coinbase, kraken" in msg
    assert "unknown venue 'huobi'" in find(errors, "hft.execution.order_latency_ms.huobi")
    assert "unknown venue 'ftx'" in find(errors, "hft.strategies.triangular_arbitrage.venue")


def test_cpu_that_does_not_exist():
    cpu = max(os.sched_getaffinity(0)) + 1000
    errors = errors_of(doc(execution={"cpu": cpu},
                           market_data={"exchanges": {"okx": {"cpu": cpu}}},
                           strategies={"statistical_arbitrage": {"cpu": -1}}))
    for path in ("hft.execution.cpu", "hft.market_data.exchanges.okx.cpu"):
        assert f"cpu {cpu} does not exist on this machine" in find(errors, path)
    assert "cpu -1 does not exist" in find(errors, "hft.strategies.statistical_arbitrage.cpu")


def test_unknown_wait_strategy():
    errors = errors_of(doc(wait_strategy="busy", strategies={"cross_exchange_arbitrage": {"wait_strategy": "spinn"}}))
    assert "unknown wait strategy 'busy'; expected one of: spin, spin_yield, sleep" == find(errors, "hft.wait_strategy")
    assert "unknown wait strategy 'spinn' (did you mean 'spin'?)" in find(
        errors, "hft.strategies.cross_exchange_arbitrage.wait_strategy")


def test_strategy_wait_strategy_defaults_to_global():
    cfg = load_config_dict(doc(wait_strategy="sleep", strategies={"triangular_arbitrage": {"wait_strategy": "spin"}}))
    st = cfg.strategies
    assert st.triangular_arbitrage.wait_strategy == "spin"
    assert st.cross_exchange_arbitrage.wait_strategy == "sleep"


@pytest.mark.parametrize("where,key,env", [
    (("market_data", "exchanges", "binance"), "api_key", "HFTPIPE_BINANCE_API_KEY"),
    (("market_data", "exchanges", "binanceusdm"), "secret", "HFTPIPE_BINANCEUSDM_API_SECRET"),
    (("market_data", "exchanges", "okx"), "passphrase", "HFTPIPE_OKX_API_PASSPHRASE"),
    (("market_data", "exchanges", "okx"), "password", "HFTPIPE_OKX_API_PASSPHRASE"),
    (("graph", "neo4j"), "password", "HFTPIPE_NEO4J_PASSWORD"),
])
def test_secret_in_file(where, key, env):
    hft: dict = {}
    node = hft
    for part in where:
        node = node.setdefault(part, {})
    node[key] = "hunter2-very-secret"
    errors = errors_of({"hft": hft})
    assert len(errors) == 1
    path = "hft." + ".".join(where) + "." + key
    msg = find(errors, path)
    assert "secrets must not be written in the config file" in msg and env in msg
    assert "hunter2" not in str(ConfigError(errors))


def test_secret_anywhere_names_the_variables():
    errors = errors_of({"hft": {"api_secret": "x"}, "token": "y"})
    assert "HFTPIPE_<VENUE>_API_KEY" in find(errors, "hft.api_secret")
    assert "secrets must not" in find(errors, "token")


def test_empty_file():
    for text in ("", "# only a comment\n", "---\n"):
        errors = errors_of(text)
        assert errors[0].path == "" and "the file is empty" in errors[0].message


def test_yaml_syntax_error_names_the_line():
    errors = errors_of("hft:\n  risk:\n    max_exposure: [1, 2\n  metrics: {}\n")
    assert errors[0].path == ""
    assert errors[0].message.startswith("YAML syntax error at line 4")
    assert errors[0].render("test.yaml").startswith("test.yaml: YAML syntax error at line 4")
    errors = errors_of("hft:\n\tenabled: true\n")
    assert "line 2" in errors[0].message


def test_top_level_not_a_mapping():
    errors = errors_of("- hft\n- risk\n")
    assert "the top level must be a mapping with an 'hft:' key, got a list" in errors[0].message
    errors = errors_of("just a string\n")
    assert "got the string" in errors[0].message


def test_missing_hft():
    errors = errors_of("risk: {max_exposure: 5}\n")
    assert "missing required top-level key 'hft:'" in find(errors, "hft")
    assert "unknown key 'risk'" in find(errors, "risk")


def test_hft_not_a_mapping():
    assert "expected a mapping of settings, got a list" in find(errors_of("hft: [1]\n"), "hft")


def test_duplicate_key():
    errors = errors_of("hft:\n  risk: {max_exposure: 5}\n  risk: {max_exposure: 6}\n")
    assert find(errors, "hft.risk") == "duplicate key (first defined on line 2)"


def test_multiple_errors_reported_together_in_file_order_with_lines():
    text = """\
hft:
  market_data:
    ring_slots: 3
    exchanges:
      binance: {enabled: true, symbols: []}
      okx: {enabled: true, symbols: [BTCUSDT], api_key: abc}
  risk:
    max_exposure: -5
    max_exposur: 1
  execution: {mode: real}
  graph: {store: neo5j}
  wait_strategy: busy
"""
    with pytest.raises(ConfigError) as info:
        check_config_text(text, "many.yaml")
    err = info.value
    assert err.paths == (
        "hft.market_data.ring_slots",
        "hft.market_data.exchanges.binance.symbols",
        "hft.market_data.exchanges.okx.api_key",  # same line: secrets are found first
        "hft.market_data.exchanges.okx.symbols[0]",
        "hft.risk.max_exposure",
        "hft.risk.max_exposur",
        "hft.execution.mode",
        "hft.graph.store",
        "hft.wait_strategy",
    )
    assert [e.line for e in err.errors] == [3, 5, 6, 6, 8, 9, 10, 11, 12]
    assert str(err).startswith("9 configuration errors in many.yaml:\n")
    assert "  hft.risk.max_exposure: expected a number > 0, got -5 (line 8)" in str(err)
    assert isinstance(err, ValueError)


def test_cross_field_checks():
    errors = errors_of(doc(
        market_data={"depth": 50, "book_capacity": 10, "reconnect_backoff_min_s": 5, "reconnect_backoff_max_s": 1},
        strategies={"statistical_arbitrage": {"entry_z": 2, "exit_z": 2, "stop_z": 1.5,
                                              "pairs": [["BTC/USDT", "BTC/USDT"]]}},
        supervisor={"heartbeat_interval_ms": 500, "heartbeat_timeout_ms": 100},
    ))
    assert "expected at most book_capacity (10)" in find(errors, "hft.market_data.depth")
    assert "expected at least reconnect_backoff_min_s (5)" in find(errors, "hft.market_data.reconnect_backoff_max_s")
    assert "expected less than entry_z (2)" in find(errors, "hft.strategies.statistical_arbitrage.exit_z")
    assert "expected more than entry_z (2)" in find(errors, "hft.strategies.statistical_arbitrage.stop_z")
    assert "two different symbols" in find(errors, "hft.strategies.statistical_arbitrage.pairs[0]")
    assert "expected more than heartbeat_interval_ms (500)" in find(errors, "hft.supervisor.heartbeat_timeout_ms")


def test_strategy_venue_and_symbol_references():
    errors = errors_of(doc(strategies={
        "cross_exchange_arbitrage": {"enabled": True, "symbols": ["BTC/USDT", "ETH/USDT"]},
        "triangular_arbitrage": {"enabled": True, "venue": "binance"},
        "statistical_arbitrage": {"enabled": True, "venue": "kraken"},
    }))
    assert "listed on: binance" in find(errors, "hft.strategies.cross_exchange_arbitrage.symbols[1]")
    assert "no three markets forming a cycle" in find(errors, "hft.strategies.triangular_arbitrage.venue")
    assert "exchange 'kraken' is not enabled" in find(errors, "hft.strategies.statistical_arbitrage.venue")
    errors = errors_of(doc(strategies={"statistical_arbitrage": {
        "enabled": True, "venue": "okx", "pairs": [["BTC/USDT", "ETH/USDT"]]}}))
    assert "ETH/USDT is not among the symbols of okx" in find(
        errors, "hft.strategies.statistical_arbitrage.pairs[0][1]")
    errors = errors_of(doc(strategies={"statistical_arbitrage": {"enabled": True, "pairs": [["BTC/USDT"]]}}))
    assert "exactly 2 items" in find(errors, "hft.strategies.statistical_arbitrage.pairs[0]")


def test_triangular_venue_resolves_to_one_with_a_cycle():
    cfg = load_config_dict(doc(
        market_data={"exchanges": {"kraken": {"enabled": True, "symbols": ["ETH/BTC", "BTC/EUR", "ETH/EUR"]}}},
        strategies={"triangular_arbitrage": {"enabled": True}}))
    assert cfg.strategies.triangular_arbitrage.venue == "kraken"


def test_faults_list_items_get_defaults_and_are_validated():
    cfg = load_config_dict(doc(simulator={"faults": [{"kind": "burst", "venue": "okx"}]}))
    assert cfg.simulator.faults == (FaultConfig(kind="burst", venue="okx", every_s=30.0),)
    errors = errors_of(doc(simulator={"faults": [{"kind": "earthquake"}, {"venue": "okx", "every_s": 0}]}))
    assert "unknown fault kind 'earthquake'" in find(errors, "hft.simulator.faults[0].kind")
    assert "missing required key" in find(errors, "hft.simulator.faults[1].kind")
    assert "expected a number > 0, got 0" in find(errors, "hft.simulator.faults[1].every_s")


def test_url_checks():
    errors = errors_of(doc(market_data={"exchanges": {"okx": {"ws_url": "http://x", "rest_url": "ws://x"}}}))
    assert "ws:// or wss://" in find(errors, "hft.market_data.exchanges.okx.ws_url")
    assert "http:// or https://" in find(errors, "hft.market_data.exchanges.okx.rest_url")


def test_load_config_logs_warnings(caplog, tmp_path):
    path = tmp_path / "seed.yaml"
    path.write_text(SEED)
    with caplog.at_level(logging.WARNING, logger="hftpipe.config"):
        cfg = load_config(path)
    assert cfg.enabled_venues() == ("binance",)
    assert "fewer than two exchanges" in caplog.text


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.yaml")
    assert info.value.errors[0].message == "no such file"
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert "directory" in info.value.errors[0].message


def test_live_mode_warns_about_missing_credentials(monkeypatch):
    for var in [k for k in os.environ if k.startswith("HFTPIPE_")]:
        monkeypatch.delenv(var)
    _, warnings = check_config_text(yaml.safe_dump(doc(execution={"mode": "live"}, graph={"store": "neo4j"})))
    messages = " | ".join(w.message for w in warnings)
    assert "HFTPIPE_BINANCE_API_KEY" in messages and "HFTPIPE_OKX_API_KEY" in messages
    assert "HFTPIPE_NEO4J_PASSWORD" in messages


# ------------------------------------------------------------------------------------------
# Secrets from the environment


def test_credentials_from_env_never_in_repr():
    env = {"HFTPIPE_BINANCE_API_KEY": "KEY-abc123", "HFTPIPE_BINANCE_API_SECRET": "SEC-xyz789"}
    creds = api_credentials("binance", env)
    assert creds == Credentials(venue="binance", api_key="KEY-abc123", secret="SEC-xyz789")
    assert creds.ccxt_params() == {"apiKey": "KEY-abc123", "secret": "SEC-xyz789"}
    for text in (repr(creds), str(creds), f"{creds}", f"{creds!r}", repr([creds])):
        assert "abc123" not in text and "xyz789" not in text and "binance" in text


def test_credentials_okx_passphrase():
    env = {"HFTPIPE_OKX_API_KEY": "k", "HFTPIPE_OKX_API_SECRET": "s", "HFTPIPE_OKX_API_PASSPHRASE": "pp-secret"}
    creds = api_credentials("okx", env)
    assert creds.passphrase == "pp-secret" and creds.ccxt_params()["password"] == "pp-secret"
    assert "pp-secret" not in repr(creds)
    with pytest.raises(ConfigError) as info:
        api_credentials("okx", {"HFTPIPE_OKX_API_KEY": "k", "HFTPIPE_OKX_API_SECRET": "s"})
    assert info.value.paths == ("HFTPIPE_OKX_API_PASSPHRASE",)


def test_credentials_absent_partial_and_unknown(monkeypatch):
    assert api_credentials("kraken", {}) is None
    assert api_credentials("kraken", {"HFTPIPE_KRAKEN_API_KEY": ""}) is None
    with pytest.raises(ConfigError) as info:
        api_credentials("bybit", {"HFTPIPE_BYBIT_API_KEY": "k"})
    assert info.value.paths == ("HFTPIPE_BYBIT_API_SECRET",)
    with pytest.raises(ValueError, match="unknown venue"):
        api_credentials("ftx", {})
    monkeypatch.setenv("HFTPIPE_BINANCEUSDM_API_KEY", "k2")
    monkeypatch.setenv("HFTPIPE_BINANCEUSDM_API_SECRET", "s2")
    assert api_credentials("binanceusdm").api_key == "k2"


def test_neo4j_password(monkeypatch):
    assert neo4j_password({"HFTPIPE_NEO4J_PASSWORD": "pw"}) == "pw"
    assert neo4j_password({}) is None
    monkeypatch.setenv("HFTPIPE_NEO4J_PASSWORD", "pw2")
    assert neo4j_password() == "pw2"


# ------------------------------------------------------------------------------------------
# Layering


def test_config_imports_no_other_part_of_hftpipe():
    code = ("import sys, hftpipe.config; "
            "print(sorted(m for m in sys.modules if m.startswith('hftpipe')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    modules = eval(out)
    assert all(m == "hftpipe" or m.startswith("hftpipe.config") for m in modules), modules
