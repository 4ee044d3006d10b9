"""Numba settings shared by the blur kernels: flags, first compile, thread count.

All kernels are compiled with ``cache=True``. Numba's on-disk cache ignores the vectoriser
flags, so the first compile of a kernel must already happen under the flags it needs; every
kernel is therefore compiled through :func:`compile_kernel` with one explicit signature and
then locked (``disable_compile``) so that a call with other argument types fails loudly
instead of silently compiling a slow variant.
"""

from __future__ import annotations

import contextlib
import os

import numba
from numba.core import config as _nb_config

__all__ = ["JIT_DISABLED", "JIT_OPTIONS", "compile_kernel", "numba_threads"]

JIT_DISABLED = bool(int(os.environ.get("NUMBA_DISABLE_JIT", "0") or 0))
# One place for the kernel flags: "contract" lets LLVM fuse to FMA (no approximate
# reciprocals, so sigma = 0 stays an exact copy); no bounds checks
# because the wrappers guarantee that every index is inside the padded buffers.
JIT_OPTIONS = {"cache": True, "fastmath": {"contract"}, "boundscheck": False, "nogil": True}


@contextlib.contextmanager
def _vectoriser(slp: bool):
    old = (_nb_config.SLP_VECTORIZE, _nb_config.LOOP_VECTORIZE)
    if slp:  # lanes written as scalars: SLP packs them, the loop vectoriser only gets in the way
        _nb_config.SLP_VECTORIZE, _nb_config.LOOP_VECTORIZE = 1, 0
    try:
        yield
    finally:
        _nb_config.SLP_VECTORIZE, _nb_config.LOOP_VECTORIZE = old


def compile_kernel(kernel, signature: str, *, slp: bool) -> None:
    """Compile (or load from cache) ``kernel`` for ``signature`` under the right flags, once."""
    if JIT_DISABLED or not hasattr(kernel, "compile"):
        return
    if kernel.signatures:
        return
    with _vectoriser(slp):
        kernel.compile(signature)
    kernel.disable_compile()


@contextlib.contextmanager
def numba_threads(threads: int | None):
    """Run the body with ``threads`` Numba threads (None: leave Numba's default).

    Yields the thread count the kernels should split their work into.
    """
    if JIT_DISABLED:
        yield 1
        return
    old = numba.get_num_threads()
    if threads is None:
        yield old
        return
    n = max(1, min(int(threads), _nb_config.NUMBA_NUM_THREADS))
    numba.set_num_threads(n)
    try:
        yield n
    finally:
        numba.set_num_threads(old)
