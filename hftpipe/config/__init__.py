"""hftpipe configuration: one YAML file → frozen, typed dataclasses.

Ground layer: imports no other part of hftpipe.

    from hftpipe.config import load_config, api_credentials
    cfg = load_config("config/demo.yaml")          # raises ConfigError listing every problem
    cfg.market_data.exchanges["binance"].symbols   # ('BTC/USDT', 'ETH/USDT')
    cfg.enabled_venues()                           # ('binance', 'okx', ...)

``default.yaml`` (shipped in this package; ``config/default.yaml`` in the repo is a copy)
holds and documents every default; the user's file is merged over it. Secrets never come from
the file: see :func:`api_credentials` and :func:`neo4j_password`.
"""

from .errors import ConfigError, ConfigIssue
from .loader import (
    CHECKS,
    check_config,
    check_config_text,
    default_config,
    default_config_path,
    has_triangle,
    load_config,
    load_config_dict,
    load_config_text,
    merge,
)
from .schema import (
    EXECUTION_MODES,
    FAULT_KINDS,
    GRAPH_STORES,
    LEG_FAILURE_POLICIES,
    LOG_LEVELS,
    VENUES,
    WAIT_STRATEGIES,
    Config,
    CorrelationConfig,
    CrossExchangeArbitrageConfig,
    ExchangeConfig,
    ExecutionConfig,
    FaultConfig,
    FrozenDict,
    GraphConfig,
    JournalsConfig,
    MarketDataConfig,
    MetricsConfig,
    Neo4jConfig,
    RiskConfig,
    RunConfig,
    SimulatorConfig,
    StatisticalArbitrageConfig,
    StrategiesConfig,
    SupervisorConfig,
    TriangularArbitrageConfig,
    usable_cpus,
)
from .secrets import (
    NEO4J_PASSWORD_ENV,
    Credentials,
    api_credentials,
    credential_env_vars,
    neo4j_password,
)

__all__ = [
    "CHECKS",
    "EXECUTION_MODES",
    "FAULT_KINDS",
    "GRAPH_STORES",
    "LEG_FAILURE_POLICIES",
    "LOG_LEVELS",
    "NEO4J_PASSWORD_ENV",
    "VENUES",
    "WAIT_STRATEGIES",
    "Config",
    "ConfigError",
    "ConfigIssue",
    "CorrelationConfig",
    "Credentials",
    "CrossExchangeArbitrageConfig",
    "ExchangeConfig",
    "ExecutionConfig",
    "FaultConfig",
    "FrozenDict",
    "GraphConfig",
    "JournalsConfig",
    "MarketDataConfig",
    "MetricsConfig",
    "Neo4jConfig",
    "RiskConfig",
    "RunConfig",
    "SimulatorConfig",
    "StatisticalArbitrageConfig",
    "StrategiesConfig",
    "SupervisorConfig",
    "TriangularArbitrageConfig",
    "api_credentials",
    "check_config",
    "check_config_text",
    "credential_env_vars",
    "default_config",
    "default_config_path",
    "has_triangle",
    "load_config",
    "load_config_dict",
    "load_config_text",
    "merge",
    "neo4j_password",
    "usable_cpus",
]
