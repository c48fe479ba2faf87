"""Thread counts, BLAS pinning inside fastla's own parallel regions, Numba thread guards."""

import contextlib
import functools
import numbers
import os


def cpu_count():
    """Cores this process may run on (affinity mask), capped by OMP_NUM_THREADS if set."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    omp = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if omp.isdigit() and int(omp) > 0:
        n = min(n, int(omp))
    return max(n, 1)


def effective_n_threads(n_threads=None):
    """Resolve ``n_threads`` as scikit-learn resolves ``n_jobs``.

    Parameters
    ----------
    n_threads : int or None
        None: the configured default, else all cores. A positive value is used as
        given. A negative value counts back from the core count (-1: all cores,
        -2: all but one), never below 1.

    Returns
    -------
    int
        At least 1.
    """
    if n_threads is None:
        from ._config import get_config

        n_threads = get_config()["n_threads"]
        if n_threads is None:
            return cpu_count()
    if isinstance(n_threads, bool) or not isinstance(n_threads, numbers.Integral):
        raise TypeError(f"n_threads must be an int or None, got {n_threads!r}")
    n_threads = int(n_threads)
    if n_threads == 0:
        raise ValueError("n_threads=0 is not allowed; use None, a positive or a negative int")
    if n_threads < 0:
        return max(cpu_count() + 1 + n_threads, 1)
    return n_threads


@functools.lru_cache(maxsize=1)
def _controller():
    # SciPy's BLAS (its own OpenBLAS, which numba's np.dot and the Cython kernels' BLAS
    # tiles call) is loaded first, or the cached controller would never see it
    import scipy.linalg.cython_blas  # noqa: F401
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@contextlib.contextmanager
def blas_single_thread():
    """Pin BLAS to one thread while fastla's own threads run (no oversubscription)."""
    with _controller().limit(limits=1, user_api="blas"):
        yield


def blas_pinned(pin):
    """``blas_single_thread()`` when a kernel's threads call BLAS (``pin``), else a no-op
    context (kernels on their own tile GEMM need no pinning)."""
    return blas_single_thread() if pin else contextlib.nullcontext()


def blas_info():
    """threadpoolctl's view of the BLAS and OpenMP libraries loaded in this process."""
    try:
        return _controller().info()
    except Exception as exc:  # pragma: no cover - diagnostic only
        return [{"error": repr(exc)}]


@contextlib.contextmanager
def numba_threads(n_threads):
    """Run Numba parallel kernels on ``n_threads`` threads, restoring the old count.

    ``numba.set_num_threads`` is thread-local and capped by NUMBA_NUM_THREADS (fixed
    when numba is imported), so the value is clipped to that cap.
    """
    import numba

    old = numba.get_num_threads()
    numba.set_num_threads(max(1, min(int(n_threads), numba.config.NUMBA_NUM_THREADS)))
    try:
        yield
    finally:
        numba.set_num_threads(old)
