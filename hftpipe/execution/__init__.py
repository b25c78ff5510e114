"""Execution engines, pure: pre-trade risk, paper fills, positions, the order lifecycle.

Imports only the ground (config, events, shm, book); the executor process is built on these.
"""

from hftpipe.execution.orders import (
    ALLOWED_TRANSITIONS,
    BINANCE_CLIENT_ID_RE,
    ClientOrderId,
    OrderReason,
    OrderStateError,
    SignalValidator,
    SignalVerdict,
    advance,
    client_order_id,
    fill_error,
    new_order,
    order_from_leg,
    parse_client_order_id,
    risk_reason,
    run_tag,
    transition_error,
)
from hftpipe.execution.paper import (
    CorrectiveOrder,
    LegOutcome,
    PaperResult,
    crossing_size,
    execute,
    execute_on_book,
    leg_failure_orders,
    match_resting,
    take_levels,
)
from hftpipe.execution.positions import Position, PositionTracker, read_journal, rebuild_from_journal
from hftpipe.execution.risk import (
    ACCEPTED,
    DEFAULT_CASH_ASSETS,
    RiskDecision,
    RiskManager,
    RiskState,
    check_order,
    portfolio_equity,
    portfolio_rule,
    risk_record,
)

__all__ = [
    "ACCEPTED", "ALLOWED_TRANSITIONS", "BINANCE_CLIENT_ID_RE", "DEFAULT_CASH_ASSETS", "ClientOrderId",
    "CorrectiveOrder", "LegOutcome", "OrderReason", "OrderStateError", "PaperResult", "Position",
    "PositionTracker", "RiskDecision", "RiskManager", "RiskState", "SignalValidator", "SignalVerdict", "advance",
    "check_order", "client_order_id", "crossing_size", "execute", "execute_on_book", "fill_error",
    "leg_failure_orders", "match_resting", "new_order", "order_from_leg", "parse_client_order_id",
    "portfolio_equity", "portfolio_rule", "read_journal", "rebuild_from_journal", "risk_reason", "risk_record",
    "run_tag", "take_levels", "transition_error",
]
