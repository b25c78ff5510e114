"""Offline exchange simulator: each venue's real wire protocol on loopback.

    from hftpipe.sim import SimConfig, SimExchange

    with SimExchange(SimConfig(venues=("binance",), symbols=("BTC/USDT",), rate=2000)) as sim:
        sim.urls()  # {"binance": {"ws": "ws://127.0.0.1:PORT", "rest": "http://127.0.0.1:PORT"}}

Parts: :mod:`~hftpipe.sim.model` (market model), :mod:`~hftpipe.sim.scenarios` (injected
opportunities + ground truth), :mod:`~hftpipe.sim.faults`, :mod:`~hftpipe.sim.server`
(``SimExchange``), :mod:`~hftpipe.sim.venues` (per-venue encoders; guide to adding one),
:mod:`~hftpipe.sim.cli` (``hftpipe sim``).
"""

from hftpipe.sim.faults import FaultSpec
from hftpipe.sim.model import InstrumentSpec, MarketModel, ModelParams
from hftpipe.sim.scenarios import SCENARIOS
from hftpipe.sim.server import SimConfig, SimExchange

__all__ = ["FaultSpec", "InstrumentSpec", "MarketModel", "ModelParams", "SCENARIOS", "SimConfig", "SimExchange"]
