"""ControlBlock: per-process state, heartbeats, counters and latency histograms, plus the kill switch.

One segment per run, created by the supervisor. Each process owns one slot and is its only
writer, so counters need no read-modify-write atomics: a relaxed load plus a relaxed store of
the sum is exact, and a reader in another process sees some recent value of each word (8-byte
aligned words are never torn on x86-64 or ARM64). The kill switch is the one word several
processes may write (supervisor, executor, ``hftpipe kill``); it only ever goes 0 -> 1 until
the supervisor clears it, so a release store and acquire loads suffice.

Latency histograms use fixed log-linear bins: 4 sub-bins per power of two, i.e. at most 19%
relative bin width, from 1 ns to 2**48 ns, computed with one ``ctlz``; percentiles are read
from them outside the hot path.
"""

from __future__ import annotations

import enum
import os
import time

import numpy as np
from numba import njit

from hftpipe.shm.atomics import (
    count_leading_zeros,
    load_acquire,
    load_relaxed,
    store_relaxed,
    store_release,
)
from hftpipe.shm.segment import Segment, SegmentError

CTRL_MAGIC = 0x314C525443544648  # b"HFTCTRL1" little-endian
CTRL_VERSION = 1


class Counter(enum.IntEnum):
    """Per-process counters (a process uses the ones that concern it)."""

    MESSAGES = 0
    GAPS = 1
    RESYNCS = 2
    PARSE_ERRORS = 3
    RECONNECTS = 4
    ORDERS = 5
    REJECTS = 6
    SIGNALS = 7
    FILLS = 8
    SKIPPED = 9
    CHECKSUM_OK = 10
    CHECKSUM_BAD = 11
    CROSSED = 12
    STALE = 13
    LAPPED = 14
    TORN_RETRIES = 15
    PUBLISHES = 16
    RISK_BREACHES = 17
    EVENTS_IN = 18
    EVENTS_OUT = 19
    STORE_ERRORS = 20
    RESTARTS = 21
    BYTES_IN = 22
    UNKNOWN_MESSAGES = 23


N_COUNTERS = 32


class Stage(enum.IntEnum):
    """Pipeline stages measured into histograms (time from the previous stage)."""

    FRAME_TO_PARSED = 0
    PARSED_TO_APPLIED = 1
    APPLIED_TO_PUBLISHED = 2
    RECV_TO_PUBLISHED = 3
    PUBLISHED_TO_READ = 4
    READ_TO_SIGNAL = 5
    RECV_TO_SIGNAL = 6
    SIGNAL_TO_RISK = 7
    RISK_TO_ORDER = 8
    SIGNAL_TO_ORDER = 9
    ORDER_TO_ACK = 10
    EVENT_TO_GRAPH = 11


N_STAGES = 12


class ProcState(enum.IntEnum):
    """Lifecycle of a supervised process."""

    EMPTY = 0
    STARTING = 1
    RUNNING = 2
    DRAINING = 3
    STOPPED = 4
    FAILED = 5
    RESTARTING = 6


N_BINS = 192
NAME_BYTES = 48

# Header words.
H_MAGIC, H_VERSION, H_MAX_PROCS, H_PROC_WORDS, H_CREATED_NS, H_SUPERVISOR_PID = range(6)
KILL = 16  # kill switch flag, on its own 128-byte line
KILL_REASON = 17
KILL_NS = 18
PROCS = 32

# Slot words.
P_PID, P_STATE, P_HEARTBEAT_NS, P_STARTED_NS, P_RESTARTS, P_CPU_MASK = range(6)
P_NAME = 8  # NAME_BYTES of ASCII
P_COUNTERS = P_NAME + NAME_BYTES // 8
P_HIST = P_COUNTERS + N_COUNTERS
PROC_WORDS = -(-(P_HIST + N_STAGES * N_BINS) // 16) * 16


def control_bytes(max_procs: int) -> int:
    """Segment size of a control block."""
    return 8 * (PROCS + max_procs * PROC_WORDS)


@njit(cache=True, inline="always")
def latency_bin(ns):
    """Histogram bin of a duration: exact below 4 ns, then 4 log-linear bins per octave."""
    if ns < 4:
        return max(ns, 0)
    msb = 63 - count_leading_zeros(ns)
    b = msb * 4 + ((ns >> (msb - 2)) & 3)
    return min(b, N_BINS - 1)


def bin_bounds(b: int) -> tuple[float, float]:
    """[low, high) in ns covered by bin ``b``."""
    if b < 4:
        return float(b), float(b + 1)
    msb, sub = divmod(b, 4)
    return float((4 + sub) << (msb - 2)), float((5 + sub) << (msb - 2))


@njit(cache=True)
def ctl_count(words, proc, counter, n):
    """Add ``n`` to one of this process's counters."""
    i = PROCS + proc * PROC_WORDS + P_COUNTERS + counter
    store_relaxed(words, i, load_relaxed(words, i) + n)


@njit(cache=True)
def ctl_record_latency(words, proc, stage, ns):
    """Count one duration into this process's histogram for ``stage``."""
    i = PROCS + proc * PROC_WORDS + P_HIST + stage * N_BINS + latency_bin(ns)
    store_relaxed(words, i, load_relaxed(words, i) + 1)


@njit(cache=True)
def ctl_heartbeat(words, proc, ts_ns):
    """Store this process's heartbeat time."""
    store_release(words, PROCS + proc * PROC_WORDS + P_HEARTBEAT_NS, ts_ns)


@njit(cache=True)
def ctl_kill_switch(words):
    """Current kill-switch flag (acquire load: safe in any spin loop)."""
    return load_acquire(words, KILL)


@njit(cache=True)
def ctl_set_kill(words, reason, ts_ns):
    """Engage the kill switch."""
    store_relaxed(words, KILL_REASON, reason)
    store_relaxed(words, KILL_NS, ts_ns)
    store_release(words, KILL, 1)


def hist_percentile(counts: np.ndarray, q: float) -> float:
    """Value (ns) at quantile ``q`` in [0, 1] of a histogram, interpolated inside its bin; NaN if empty."""
    total = int(counts.sum())
    if total == 0:
        return float("nan")
    rank = q * total
    cum = np.cumsum(counts)
    b = int(np.searchsorted(cum, max(rank, 1e-9), side="left"))
    b = min(b, len(counts) - 1)
    lo, hi = bin_bounds(b)
    before = cum[b - 1] if b else 0
    inside = counts[b]
    frac = (rank - before) / inside if inside else 0.0
    return lo + (hi - lo) * min(max(frac, 0.0), 1.0)


class ControlBlock:
    """The run's control segment; ``create`` in the supervisor, ``attach`` elsewhere."""

    def __init__(self, segment: Segment):
        self.segment = segment
        self.words = segment.array(np.int64)
        if int(self.words[H_MAGIC]) != CTRL_MAGIC:
            self.words = None
            segment.close()
            raise SegmentError(f"segment {segment.name} is not a ControlBlock (bad magic)")
        self.max_procs = int(self.words[H_MAX_PROCS])

    @classmethod
    def create(cls, name: str, max_procs: int = 32) -> ControlBlock:
        """Create the control segment (supervisor only)."""
        seg = Segment.create(name, control_bytes(max_procs))
        w = seg.array(np.int64)
        w[H_MAX_PROCS] = max_procs
        w[H_PROC_WORDS] = PROC_WORDS
        w[H_CREATED_NS] = time.monotonic_ns()
        w[H_SUPERVISOR_PID] = os.getpid()
        w[H_VERSION] = CTRL_VERSION
        w[H_MAGIC] = CTRL_MAGIC
        del w
        return cls(seg)

    @classmethod
    def attach(cls, name: str, readonly: bool = False) -> ControlBlock:
        """Attach (read-only for operator tools)."""
        return cls(Segment.attach(name, readonly=readonly))

    def _base(self, proc: int) -> int:
        if not 0 <= proc < self.max_procs:
            raise IndexError(f"process slot {proc} out of range 0..{self.max_procs - 1}")
        return PROCS + proc * PROC_WORDS

    def register(self, proc: int, name: str, pid: int, cpu_mask: int = 0) -> None:
        """Claim a slot for a process (by the supervisor before spawn, or the process itself)."""
        b = self._base(proc)
        raw = name.encode("ascii", "replace")[:NAME_BYTES].ljust(NAME_BYTES, b"\0")
        self.words[b + P_NAME:b + P_NAME + NAME_BYTES // 8] = np.frombuffer(raw, dtype=np.int64)
        self.words[b + P_PID] = pid
        self.words[b + P_CPU_MASK] = cpu_mask
        self.words[b + P_STARTED_NS] = time.monotonic_ns()
        self.words[b + P_HEARTBEAT_NS] = time.monotonic_ns()
        self.words[b + P_STATE] = ProcState.STARTING

    def reset_stats(self, proc: int) -> None:
        """Zero a slot's counters and histograms (before reuse by a new process kind)."""
        b = self._base(proc)
        self.words[b + P_COUNTERS:b + PROC_WORDS] = 0

    def set_state(self, proc: int, state: ProcState) -> None:
        """Set a process's lifecycle state."""
        self.words[self._base(proc) + P_STATE] = int(state)

    def set_pid(self, proc: int, pid: int) -> None:
        """Record the pid running a slot."""
        self.words[self._base(proc) + P_PID] = pid

    def add_restart(self, proc: int) -> None:
        """Count a restart of a slot's process (supervisor only)."""
        self.words[self._base(proc) + P_RESTARTS] += 1

    def heartbeat(self, proc: int) -> None:
        """Heartbeat now (from Python loops)."""
        ctl_heartbeat(self.words, proc, time.monotonic_ns())

    def count(self, proc: int, counter: Counter, n: int = 1) -> None:
        """Add to a counter from Python (hot loops call ``ctl_count`` directly)."""
        ctl_count(self.words, proc, int(counter), n)

    def record_latency(self, proc: int, stage: Stage, ns: int) -> None:
        """Record a duration from Python."""
        ctl_record_latency(self.words, proc, int(stage), ns)

    @property
    def kill_switch(self) -> bool:
        return bool(ctl_kill_switch(self.words))

    def engage_kill_switch(self, reason: int = 1) -> None:
        """Stop all new orders; the executor cancels open ones."""
        ctl_set_kill(self.words, reason, time.monotonic_ns())

    def clear_kill_switch(self) -> None:
        """Re-arm trading (supervisor / operator decision)."""
        self.words[KILL_REASON] = 0
        self.words[KILL] = 0

    def kill_reason(self) -> int:
        return int(self.words[KILL_REASON])

    def proc_name(self, proc: int) -> str:
        b = self._base(proc)
        raw = self.words[b + P_NAME:b + P_NAME + NAME_BYTES // 8].tobytes()
        return raw.rstrip(b"\0").decode("ascii", "replace")

    def counters(self, proc: int) -> dict[str, int]:
        """All counters of a slot by name."""
        b = self._base(proc) + P_COUNTERS
        return {c.name.lower(): int(self.words[b + c]) for c in Counter}

    def histogram(self, proc: int, stage: Stage) -> np.ndarray:
        """A copy of one stage histogram of a slot."""
        b = self._base(proc) + P_HIST + int(stage) * N_BINS
        return self.words[b:b + N_BINS].copy()

    def proc_info(self, proc: int) -> dict:
        """Slot summary: name, pid, state, heartbeat age, restarts, counters."""
        b = self._base(proc)
        hb = int(self.words[b + P_HEARTBEAT_NS])
        return {
            "slot": proc,
            "name": self.proc_name(proc),
            "pid": int(self.words[b + P_PID]),
            "state": ProcState(int(self.words[b + P_STATE])).name.lower(),
            "heartbeat_age_ms": (time.monotonic_ns() - hb) / 1e6 if hb else None,
            "restarts": int(self.words[b + P_RESTARTS]),
            "counters": self.counters(proc),
        }

    def active_slots(self) -> list[int]:
        """Slots that have ever been registered."""
        return [p for p in range(self.max_procs)
                if int(self.words[PROCS + p * PROC_WORDS + P_STATE]) != ProcState.EMPTY]

    def close(self) -> None:
        """Drop our views, then unmap."""
        self.words = None
        self.segment.close()

    def unlink(self) -> None:
        """Remove the segment name (supervisor only)."""
        self.segment.unlink()
