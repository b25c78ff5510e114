"""Explicit memory ordering for numba code that shares memory across processes.

numba compiles plain array loads and stores as ordinary LLVM memory operations, which the
optimiser may hoist out of a loop or reorder: a spin loop over a shared word never sees another
process's store (see FIELD-NOTES, "Plain loads are not re-read"). Every word that crosses a
process boundary is therefore read with ``load_acquire``/``load_relaxed`` and written with
``store_release``/``store_relaxed``, and the seqlocks order their payload with ``fence_*``.

Why this is correct on both targets:
- x86-64 (TSO): aligned 8-byte loads and stores are single-copy atomic, loads are not reordered
  with loads, stores not with stores. Acquire/release therefore compile to plain ``mov``; what
  they buy is that LLVM may no longer move, merge or hoist the accesses. Only ``seq_cst``
  emits an ``mfence``/locked instruction.
- ARM64 (weakly ordered): acquire loads become ``ldar``, release stores ``stlr``, fences
  ``dmb ish``/``dmb ishld``. Without them the CPU itself reorders the payload and the sequence
  words and a reader could accept a torn snapshot.

All functions take a one-dimensional C-contiguous array and a flat element index; the element
type decides the LLVM type (int64, uint64, float64 or int32).
"""

from __future__ import annotations

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic


def _element_pointer(context, builder, arrty, arr, idx):
    ary = context.make_array(arrty)(context, builder, arr)
    return builder.gep(ary.data, [idx])


def _check_array(arrty):
    if not isinstance(arrty, types.Array) or arrty.ndim != 1:
        raise TypeError("atomics need a one-dimensional array")
    if arrty.dtype not in (types.int64, types.uint64, types.float64, types.int32, types.uint32):
        raise TypeError(f"atomics do not support dtype {arrty.dtype}")


def _make_load(ordering):
    @intrinsic
    def _load(typingctx, arr, idx):
        _check_array(arr)
        sig = arr.dtype(arr, types.intp)

        def codegen(context, builder, signature, args):
            arrval, idxval = args
            idxval = context.cast(builder, idxval, signature.args[1], types.intp)
            ptr = _element_pointer(context, builder, signature.args[0], arrval, idxval)
            align = signature.args[0].dtype.bitwidth // 8
            return builder.load_atomic(ptr, ordering=ordering, align=align)

        return sig, codegen

    return _load


def _make_store(ordering):
    @intrinsic
    def _store(typingctx, arr, idx, val):
        _check_array(arr)
        sig = types.void(arr, types.intp, arr.dtype)

        def codegen(context, builder, signature, args):
            arrval, idxval, value = args
            idxval = context.cast(builder, idxval, signature.args[1], types.intp)
            value = context.cast(builder, value, signature.args[2], signature.args[0].dtype)
            ptr = _element_pointer(context, builder, signature.args[0], arrval, idxval)
            align = signature.args[0].dtype.bitwidth // 8
            builder.store_atomic(value, ptr, ordering=ordering, align=align)
            return context.get_dummy_value()

        return sig, codegen

    return _store


def _make_fence(ordering):
    @intrinsic
    def _fence(typingctx):
        sig = types.void()

        def codegen(context, builder, signature, args):
            builder.fence(ordering)
            return context.get_dummy_value()

        return sig, codegen

    return _fence


load_acquire = _make_load("acquire")
load_relaxed = _make_load("monotonic")
store_release = _make_store("release")
store_relaxed = _make_store("monotonic")
fence_acquire = _make_fence("acquire")
fence_release = _make_fence("release")
fence_seq_cst = _make_fence("seq_cst")


@intrinsic
def fetch_add(typingctx, arr, idx, val):
    """Atomic read-modify-write add (seq_cst); returns the previous value. Integer arrays only."""
    _check_array(arr)
    if not isinstance(arr.dtype, types.Integer):
        raise TypeError("fetch_add needs an integer array")
    sig = arr.dtype(arr, types.intp, arr.dtype)

    def codegen(context, builder, signature, args):
        arrval, idxval, value = args
        idxval = context.cast(builder, idxval, signature.args[1], types.intp)
        value = context.cast(builder, value, signature.args[2], signature.args[0].dtype)
        ptr = _element_pointer(context, builder, signature.args[0], arrval, idxval)
        return builder.atomic_rmw("add", ptr, value, "seq_cst")

    return sig, codegen


def _declare_libc(builder, name, fnty):
    return cgutils.get_or_insert_function(builder.module, fnty, name)


@intrinsic
def cpu_relax(typingctx):
    """Tell the CPU we are spinning (x86 ``pause``); a no-op elsewhere. Also a compiler barrier."""
    sig = types.void()

    def codegen(context, builder, signature, args):
        import platform

        if platform.machine() in ("x86_64", "AMD64", "i686"):
            fnty = ir.FunctionType(ir.VoidType(), [])
            pause = builder.module.declare_intrinsic("llvm.x86.sse2.pause", fnty=fnty)
            builder.call(pause, [])
        else:
            builder.fence("acquire")
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def sched_yield(typingctx):
    """Call libc ``sched_yield()``; resolved by symbol name so cached code stays valid."""
    sig = types.int32()

    def codegen(context, builder, signature, args):
        fnty = ir.FunctionType(ir.IntType(32), [])
        fn = _declare_libc(builder, "sched_yield", fnty)
        return builder.call(fn, [])

    return sig, codegen


@intrinsic
def sleep_us(typingctx, micros):
    """Call libc ``usleep(micros)``: the ``sleep`` wait strategy's back-off, from inside numba."""
    sig = types.int32(types.uint32)

    def codegen(context, builder, signature, args):
        fnty = ir.FunctionType(ir.IntType(32), [ir.IntType(32)])
        fn = _declare_libc(builder, "usleep", fnty)
        return builder.call(fn, [args[0]])

    return sig, codegen


@intrinsic
def count_leading_zeros(typingctx, value):
    """``ctlz`` of a 64-bit integer (64 for zero): the histogram bin of a latency in one instruction."""
    sig = types.int64(types.int64)

    def codegen(context, builder, signature, args):
        i64 = ir.IntType(64)
        fnty = ir.FunctionType(i64, [i64, ir.IntType(1)])
        ctlz = builder.module.declare_intrinsic("llvm.ctlz", [i64], fnty)
        return builder.call(ctlz, [args[0], ir.Constant(ir.IntType(1), 0)])

    return sig, codegen


# CLOCK_MONOTONIC on Linux: the same clock as time.monotonic_ns(), shared by all processes.
_CLOCK_MONOTONIC = 1


@intrinsic
def _clock_gettime_ns(typingctx, clock_id):
    sig = types.int64(types.int32)

    def codegen(context, builder, signature, args):
        (clk,) = args
        i64 = ir.IntType(64)
        ts_t = ir.LiteralStructType([i64, i64])
        ts = cgutils.alloca_once(builder, ts_t)
        fnty = ir.FunctionType(ir.IntType(32), [ir.IntType(32), ts_t.as_pointer()])
        fn = _declare_libc(builder, "clock_gettime", fnty)
        builder.call(fn, [clk, ts])
        sec = builder.load(builder.gep(ts, [ir.Constant(ir.IntType(32), 0), ir.Constant(ir.IntType(32), 0)]))
        nsec = builder.load(builder.gep(ts, [ir.Constant(ir.IntType(32), 0), ir.Constant(ir.IntType(32), 1)]))
        return builder.add(builder.mul(sec, ir.Constant(i64, 1_000_000_000)), nsec)

    return sig, codegen


@njit(cache=True, inline="always")
def now_ns():
    """Monotonic nanoseconds, identical to ``time.monotonic_ns()`` and comparable across processes."""
    return _clock_gettime_ns(_CLOCK_MONOTONIC)
