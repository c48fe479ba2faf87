"""Benchmark cases for ``python -m fastla bench`` and the asv suites.

One module per operation (``distances.py``, ``conv.py``, ...) exposing
``cases(quick: bool) -> list[Case]``. :mod:`fastla._bench` discovers them from
:data:`MODULES`, so adding an operation means adding its module name here.
"""

import contextlib
import dataclasses
from typing import Any, Callable, Optional

MODULES = ("distances", "conv", "mf", "kmeans")


@dataclasses.dataclass
class Peer:
    """A peer library's implementation of the same computation.

    ``run(data)`` must do the same work as ``Case.run`` (same inputs, same output);
    ``available()`` returns None when it can run here, else the reason it cannot
    (typically "faiss is not installed").
    """

    name: str
    run: Callable[[Any], Any]
    available: Callable[[], Optional[str]] = lambda: None
    # a reference computation (e.g. the bare GEMM), shown but not a "peer library"
    reference: bool = False


@dataclasses.dataclass
class Case:
    """One benchmark: a fixed input, fastla on each backend, the naive loop, the peers.

    Attributes
    ----------
    op : str
        Registered operation name; the backends run are ``available_backends(op)``.
    title : str
        What a table row says ("euclidean 5000x5000x64 f64").
    setup : callable () -> data
        Builds the input once (seeded).
    run : callable (backend, data, n_threads) -> result
        fastla on one backend.
    work : float
        Work units of one run (FLOPs, pixels or updates), for throughput.
    unit : str
        "GFLOP/s", "Mpixel/s" or "Mupdates/s": how throughput is shown.
    naive_setup : callable () -> data
        A smaller input the naive loop finishes in about a second.
    naive_run : callable (data) -> result
        The naive loop on ``naive_setup``'s data.
    naive_work : float
        Work units of the naive run; speedup over naive = throughput ratio.
    peers : list of Peer
    ceiling : {"gemm32", "gemm64", "memcpy", None}
        Which measured machine ceiling the throughput is compared with.
    bytes_moved : float
        For "memcpy" ceilings: bytes read + written by one run.
    """

    op: str
    title: str
    setup: Callable[[], Any]
    run: Callable[[str, Any, int], Any]
    work: float
    unit: str = "GFLOP/s"
    naive_setup: Optional[Callable[[], Any]] = None
    naive_run: Optional[Callable[[Any], Any]] = None
    naive_work: float = 0.0
    peers: list = dataclasses.field(default_factory=list)
    ceiling: Optional[str] = None
    bytes_moved: float = 0.0


def module_available(name):
    """None when ``import name`` works, else a short reason."""
    import importlib

    try:
        importlib.import_module(name)
        return None
    except Exception as exc:
        return f"{name} is not installed ({type(exc).__name__})"


@contextlib.contextmanager
def peer_threads(n_threads=None):
    """Run peer libraries on the thread count fastla uses (``n_threads`` resolved as
    fastla resolves it): BLAS and OpenMP pools through threadpoolctl (scikit-learn,
    SciPy, NumPy's GEMM, faiss's OpenMP), plus ``cv2.setNumThreads`` and
    ``faiss.omp_set_num_threads`` when those modules are loaded. Restores them after.
    """
    import sys

    from .._threads import effective_n_threads

    n = effective_n_threads(n_threads)
    cv2 = sys.modules.get("cv2")
    faiss = sys.modules.get("faiss")
    old_cv2 = cv2.getNumThreads() if cv2 is not None else None
    try:
        from threadpoolctl import threadpool_limits

        limiter = threadpool_limits(limits=n)
    except Exception:  # pragma: no cover - threadpoolctl is a dependency
        limiter = contextlib.nullcontext()
    with limiter:
        if cv2 is not None:
            cv2.setNumThreads(n)
        if faiss is not None:
            faiss.omp_set_num_threads(n)
        try:
            yield n
        finally:
            if cv2 is not None:
                cv2.setNumThreads(old_cv2)
