"""Fault injection: what can go wrong on a venue's wire, and when.

Kinds (config aliases in brackets, as ``hft.simulator.faults`` spells them):

``disconnect``
    Close every WebSocket of the venue; for ``duration_s`` new handshakes get HTTP 503.
    ``mode``: ``"abort"`` (default: the TCP connection is dropped without a close frame, the
    client sees 1006) or ``"close"`` (close frame 1001 "going away").
``gap`` [``sequence_gap``]
    The next ``count`` events of the venue (optionally of one ``symbol``) are not sent: their
    update ids are skipped on the wire (Binance spot: ``U`` != previous ``u`` + 1; USD-M:
    ``pu`` != previous ``u``), and the model's book still contains them, so a client that does
    not detect the gap drifts from the real book.
``bad_checksum`` [``checksum_error``]
    The next ``count`` events carry a wrong checksum (venues with ``supports_checksum``; on
    others the fault is logged as unsupported and nothing is sent differently).
``malformed`` [``malformed_frame``]
    Before the next ``count`` events, every subscriber gets a broken copy of the frame (cut in
    half: not valid JSON). The real frame follows, so the sequence stays whole.
``burst``
    The venue's message rate is multiplied by ``multiplier`` for ``duration_s``.
``slow_snapshot``
    REST book snapshots are answered ``delay_ms`` late (their content is taken when the request
    arrives) during ``duration_s``, or, with ``duration_s == 0``, for the next ``count`` requests.

When: at each time of ``at`` (sim seconds since start) and/or, with ``every_s``, at
exponentially distributed intervals of that mean from ``start_s`` on. Times are drawn from the
simulator's seed, so a run's faults are reproducible.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields

import numpy as np

KINDS = ("disconnect", "gap", "bad_checksum", "malformed", "burst", "slow_snapshot")
ALIASES = {"sequence_gap": "gap", "checksum_error": "bad_checksum", "malformed_frame": "malformed"}


@dataclass(frozen=True)
class FaultSpec:
    kind: str
    venue: str | None = None  # None = every venue
    symbol: str | None = None  # gap / bad_checksum / malformed: only events of this symbol
    at: tuple[float, ...] = ()  # sim seconds since start
    every_s: float | None = None  # mean interval of repeated injections
    start_s: float = 0.0  # first repeated injection not before this
    duration_s: float = 0.0  # disconnect refusal window, burst, slow_snapshot window
    count: int = 1  # events (gap, bad_checksum, malformed) or requests (slow_snapshot)
    multiplier: float = 10.0  # burst
    delay_ms: float = 500.0  # slow_snapshot
    mode: str = "abort"  # disconnect: abort | close

    def __post_init__(self):
        kind = ALIASES.get(self.kind, self.kind)
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "at", tuple(float(t) for t in self.at))
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r} (known: {', '.join(KINDS)})")
        if self.every_s is not None and self.every_s <= 0:
            raise ValueError("fault every_s must be > 0")
        if self.mode not in ("abort", "close"):
            raise ValueError("disconnect mode must be 'abort' or 'close'")
        if self.count < 1 or self.multiplier <= 0 or self.delay_ms < 0 or self.duration_s < 0:
            raise ValueError(f"bad fault parameters: {self}")
        if not self.at and self.every_s is None:
            raise ValueError(f"fault {kind} needs 'at' times or 'every_s'")

    @classmethod
    def from_any(cls, obj: FaultSpec | Mapping) -> FaultSpec:
        """From a FaultSpec, a dict, or an ``hft.simulator.faults`` entry (attributes)."""
        if isinstance(obj, FaultSpec):
            return obj
        if not isinstance(obj, Mapping):
            obj = {f.name: getattr(obj, f.name) for f in fields(cls) if hasattr(obj, f.name)}
            if "kind" not in obj:
                raise ValueError(f"not a fault: {obj!r}")
            kind = getattr(obj["kind"], "value", obj["kind"])
            obj = dict(obj, kind=str(kind))
        known = {f.name for f in fields(cls)}
        unknown = set(obj) - known
        if unknown:
            raise ValueError(f"unknown fault setting(s) {sorted(unknown)}")
        return cls(**obj)


@dataclass
class FaultSchedule:
    """Next firing time of one fault spec (deterministic for its RNG)."""

    spec: FaultSpec
    rng: np.random.Generator
    pending_at: list[float] = field(default_factory=list)
    next_every: float = float("inf")

    def __post_init__(self):
        self.pending_at = sorted(self.spec.at)
        if self.spec.every_s is not None:
            self.next_every = self.spec.start_s + float(self.rng.exponential(self.spec.every_s))

    @property
    def next_t(self) -> float:
        return min(self.pending_at[0] if self.pending_at else float("inf"), self.next_every)

    def pop(self, t: float) -> bool:
        """Consume one firing due at ``t``; True if one was due."""
        if self.pending_at and self.pending_at[0] <= t:
            self.pending_at.pop(0)
            return True
        if self.next_every <= t:
            self.next_every += float(self.rng.exponential(self.spec.every_s))
            return True
        return False


def build_schedules(specs: Sequence[FaultSpec], seed: int) -> list[FaultSchedule]:
    ss = np.random.SeedSequence([seed, 0xFA17])
    return [FaultSchedule(s, np.random.default_rng(child)) for s, child in zip(specs, ss.spawn(len(specs)), strict=True)]
