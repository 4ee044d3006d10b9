"""Numba settings shared by the blur kernels: flags, first compile, threads, stack arrays.

All kernels are compiled with ``cache=True``. Numba's on-disk cache ignores the vectoriser
flags, so the first compile of a kernel must already happen under the flags it needs; every
kernel is therefore compiled through :func:`compile_kernel` with one explicit signature and
then locked (``disable_compile``) so that a call with other argument types fails loudly
instead of silently compiling a slow variant. The flags are Numba's process-wide settings:
:func:`compile_kernel` sets them for that one compile and restores them afterwards.

Small helpers are inlined in one of Numba's two ways, whichever compiled faster for that
kernel (the output is the same bits either way; ``benchmarks/bench_render.py`` times the
cold compile): ``forceinline=True`` compiles the helper once and lets LLVM inline it (the
gather, disc and layered helpers: 1 s less for the gather kernel), ``inline="always"``
copies the helper's Numba IR into the caller before typing (the scatter's grouped-path
helpers: forceinline was 1 s slower there). Numba-level inlining copies the callee's IR
with everything already inlined into it, so nesting such helpers costs compile time: the
scatter kernel's run helpers nest once (``_separable_run`` calls ``_run_row``), which adds
about 0.4 s to its first compile and nothing to its run time.

Kernels are plain (not ``parallel=True``) functions that release the GIL and compute one
thread's share of the rows; :func:`run_threads` runs the shares on Python threads. Numba's
parallel passes cost as much compile time as a kernel itself and bought nothing here.
"""

from __future__ import annotations

import contextlib
import os
import threading

import numba
import numpy as np
from numba.core import config as _nb_config

__all__ = ["JIT_DISABLED", "JIT_OPTIONS", "SIMD_FLAGS", "STACK_ALIGN", "compile_kernel",
           "run_threads", "stack_array", "thread_count"]

JIT_DISABLED = bool(int(os.environ.get("NUMBA_DISABLE_JIT", "0") or 0))
# bytes: stack arrays start on a cache line, so 8-float vectors at multiples of 8 floats in
# them never straddle two lines (the scatter's grouped rows: see _scatter_kernels)
STACK_ALIGN = 64
# One place for the kernel flags: "contract" lets LLVM fuse to FMA (no approximate
# reciprocals, so sigma = 0 stays an exact copy); no bounds checks because the wrappers
# guarantee that every index is inside the padded buffers; NumPy's error model (no
# ZeroDivisionError checks, which keep divisions from vectorising) because every divisor
# in the kernels is a weight sum >= 1, a thread count, or guarded.
JIT_OPTIONS = {"cache": True, "fastmath": {"contract"}, "boundscheck": False, "nogil": True,
               "error_model": "numpy"}


# Numba's vectoriser flags (SLP_VECTORIZE, LOOP_VECTORIZE) for each kind of kernel body
SIMD_FLAGS = {
    # loops over a constant lane count (gather): the loop vectoriser packs the lanes
    "slp+loop": (1, 1),
    # short constant-length lane loops (scatter's grouped rows): SLP packs them; with the
    # loop vectoriser on too, the grouped scatter ran 9 % slower on the Motorcycle at sigma
    # max 8 (same output), and a source-by-source scatter loop 2x slower
    "slp": (1, 0),
}


@contextlib.contextmanager
def _vectoriser(simd: str | None):
    """Numba's vectoriser flags for one compile; restored afterwards, also on error."""
    old = (_nb_config.SLP_VECTORIZE, _nb_config.LOOP_VECTORIZE)
    if simd is not None:
        _nb_config.SLP_VECTORIZE, _nb_config.LOOP_VECTORIZE = SIMD_FLAGS[simd]
    try:
        yield
    finally:
        _nb_config.SLP_VECTORIZE, _nb_config.LOOP_VECTORIZE = old


def compile_kernel(kernel, signature: str, *, simd: str | None = None) -> None:
    """Compile (or load from cache) ``kernel`` for ``signature`` under the right flags, once.

    ``simd`` picks the vectoriser flags (:data:`SIMD_FLAGS`; Numba turns SLP off by
    default); None keeps Numba's flags.
    """
    if JIT_DISABLED or not hasattr(kernel, "compile"):
        return
    if kernel.signatures:
        return
    with _vectoriser(simd):
        kernel.compile(signature)
    kernel.disable_compile()


def thread_count(threads: int | None) -> int:
    """Threads to split a kernel's rows into: ``threads``, or Numba's current thread count.

    Capped at ``NUMBA_NUM_THREADS`` (1 inside a joblib/loky worker that limits it).
    """
    if JIT_DISABLED:
        return 1
    n = numba.get_num_threads() if threads is None else int(threads)
    return max(1, min(n, _nb_config.NUMBA_NUM_THREADS))


def run_threads(kernel, nthreads: int, *args) -> None:
    """Call ``kernel(t, nthreads, *args)`` for every ``t < nthreads``, concurrently.

    The kernels are compiled with ``nogil`` and write disjoint rows, so the shares run in
    parallel on plain threads; share 0 runs in the calling thread. The first error raised
    in any share is re-raised here.
    """
    if nthreads == 1:
        kernel(0, 1, *args)
        return
    errors: list[BaseException] = []

    def share(t):
        try:
            kernel(t, nthreads, *args)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller below
            errors.append(exc)

    workers = [threading.Thread(target=share, args=(t,)) for t in range(1, nthreads)]
    for w in workers:
        w.start()
    share(0)
    for w in workers:
        w.join()
    if errors:
        raise errors[0]


def _stack_array_python(n, dtype):  # the same contract without JIT (coverage runs)
    return np.empty(n, dtype)


if JIT_DISABLED:
    stack_array = _stack_array_python
else:
    from llvmlite import ir  # only where the intrinsic is built (Numba internals, at jit time)
    from numba import types
    from numba.extending import intrinsic
    from numba.np.arrayobj import make_array, populate_array

    @intrinsic
    def stack_array(typingctx, n, dtype):
        """``stack_array(N, np.float32)``: an uninitialised 1-D array of N items on the stack.

        ``N`` must be a compile-time constant (a module-level int). The array lives in the
        calling function's frame (an LLVM ``alloca`` in its entry block, aligned to
        :data:`STACK_ALIGN` bytes), so LLVM keeps small ones in registers and vectorises
        loops over them; it must not be returned or stored anywhere that outlives the call.
        """
        if not isinstance(n, types.IntegerLiteral):
            return None
        if isinstance(dtype, types.NumberClass):
            item = dtype.instance_type
        elif isinstance(dtype, types.DType):
            item = dtype.dtype
        else:
            return None
        count = n.literal_value
        arrty = types.Array(item, 1, "C")

        def codegen(context, builder, signature, args):
            lty = context.get_data_type(item)
            with builder.goto_entry_block():
                buf = builder.alloca(ir.ArrayType(lty, count))
                buf.align = STACK_ALIGN
            zero = ir.Constant(ir.IntType(32), 0)
            data = builder.gep(buf, [zero, zero], inbounds=True)
            intp = context.get_value_type(types.intp)
            size = context.get_abi_sizeof(lty)
            ary = make_array(arrty)(context, builder)
            populate_array(ary, data=data, shape=[ir.Constant(intp, count)],
                           strides=[ir.Constant(intp, size)], itemsize=ir.Constant(intp, size),
                           meminfo=None)
            return ary._getvalue()

        return arrty(n, dtype), codegen
