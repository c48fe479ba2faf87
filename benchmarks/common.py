"""Shared helpers of the asv suites.

FASTLA_BENCH_PROFILE=fast (default under ``asv run --quick``-style CI smoke runs) picks
small sizes; "regular" the sizes of docs/performance.md. A backend or peer that is
not installed raises NotImplementedError, which asv reports as skipped.
"""

import functools
import os
import time

import numpy as np

PROFILE = os.environ.get("FASTLA_BENCH_PROFILE", "fast")


def sizes(fast, regular):
    return fast if PROFILE == "fast" else regular


def require_backend(op, backend):
    import fastla

    if backend not in fastla.available_backends(op):
        raise NotImplementedError(f"{backend} not available for {op}")


def require_module(name):
    try:
        __import__(name)
    except Exception:
        raise NotImplementedError(f"{name} is not installed") from None


@functools.lru_cache(maxsize=16)
def data(m, n, d, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((m, d)).astype(dtype), rng.random((n, d)).astype(dtype)


# Pause before each timed function, as `python -m fastla bench` does (fastla._bench,
# SETTLE_S): OpenBLAS's idle workers busy-wait for about 0.1 s after a multi-threaded
# call, and a ratio benchmark that times fastla right after a BLAS peer would otherwise
# time it on cores shared with them.
SETTLE_S = 0.2


def best_time(fn, repeat=3):
    time.sleep(SETTLE_S)
    fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best
