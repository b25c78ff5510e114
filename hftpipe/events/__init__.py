"""Record dtypes and enums of the events every part shares (signals, orders, fills, risk, positions)."""

from hftpipe.events.records import (
    DTYPE_BY_KIND,
    FILL_DTYPE,
    JOURNALS,
    LEG_DTYPE,
    MAX_LEGS,
    ORDER_DTYPE,
    POSITION_DTYPE,
    RECORD_VERSION,
    RISK_DTYPE,
    SIGNAL_DTYPE,
    TERMINAL_STATUSES,
    EventKind,
    Liquidity,
    OrderStatus,
    OrderType,
    RiskAction,
    RiskRule,
    Side,
    decode_str,
    encode_str,
    new_record,
    new_signal,
)

__all__ = [
    "DTYPE_BY_KIND", "FILL_DTYPE", "JOURNALS", "LEG_DTYPE", "MAX_LEGS", "ORDER_DTYPE", "POSITION_DTYPE",
    "RECORD_VERSION", "RISK_DTYPE", "SIGNAL_DTYPE", "TERMINAL_STATUSES", "EventKind", "Liquidity",
    "OrderStatus", "OrderType", "RiskAction", "RiskRule", "Side", "decode_str", "encode_str",
    "new_record", "new_signal",
]
