"""asv suites of k-means: time, peak memory and speedups (unit "x").

Sizes are issue 4's targets under FASTLA_BENCH_PROFILE=regular, small ones under the
default "fast" profile; the data and the peers' calls are those of
``fastla._benchcases.kmeans`` (an overlapping Gaussian mixture; Lloyd runs a fixed number
of iterations from the same initial centres with tol=0). Speedups are measured side by
side in one process with the peers (scikit-learn, faiss, the bare GEMM) limited to the
thread count fastla uses. Kernels are JIT-warmed in ``setup``; a backend or peer that
cannot run here raises NotImplementedError there (asv skips it).
"""

import time

import numpy as np

import fastla
from fastla._benchcases import kmeans as kc
from fastla._benchcases import peer_threads

from .common import best_time, require_backend, require_module, sizes

BACKENDS = ["cython", "numba", "cuda"]
# "n x d k=k, iterations" -> (n, d, k, n_iter)
LLOYD = sizes({"20000x32 k=100": (20_000, 32, 100, 20)},
              {"100000x32 k=100": (100_000, 32, 100, 20),
               "200000x64 k=256": (200_000, 64, 256, 20)})
PLUSPLUS = sizes((20_000, 64, 64), (200_000, 64, 256))
ASSIGN = sizes((20_000, 64, 256), (200_000, 64, 256))

_DATA = {}


def _data(n, d, k, dtype="float32"):
    key = (n, d, k, dtype)
    if key not in _DATA:
        _DATA.clear()  # one data set at a time: regular sizes are ~50 MB each
        _DATA[key] = kc.kmeans_data(n, d, k, np.dtype(dtype))
    return _DATA[key]


def _warm(op, backend, dtype="float32"):
    """Compile / load the kernels outside the timings."""
    X, C = kc.kmeans_data(200, 8, 5, np.dtype(dtype))
    if op == "kmeans":
        kc.fastla_lloyd(X, C, 2, backend)
        kc.fastla_lloyd(X, C, 2, backend, algorithm="elkan")
    elif op == "kmeans_plusplus":
        kc.fastla_plusplus(X, 5, 0, backend)
    else:
        kc.fastla_assign(X, C, backend)


def _threads():
    return fastla._threads.effective_n_threads(None)


def _naive_seconds_per_unit(d, n_iter=kc.NAIVE_ITER):
    """Seconds per (point x centre x iteration) of the seed loop on its small input."""
    n, d, k = kc.naive_shape(d)
    data = kc.naive_setup(d)()
    t0 = time.perf_counter()
    kc.naive_run(data, n_iter)
    return (time.perf_counter() - t0) / (n * k * n_iter)


def _inertia(X, C):
    """Sum of squared distances to the nearest centre (float64, chunked)."""
    C = C.astype(np.float64)
    cn = (C ** 2).sum(1)
    total = 0.0
    for s in range(0, X.shape[0], 8192):
        x = X[s:s + 8192].astype(np.float64)
        d2 = (x ** 2).sum(1)[:, None] - 2.0 * x @ C.T + cn[None, :]
        total += float(np.maximum(d2.min(1), 0.0).sum())
    return total


class KMeansLloyd:
    """A fixed number of Lloyd (or Elkan) iterations from the same initial centres."""

    params = (BACKENDS, list(LLOYD), ["float32", "float64"], ["lloyd", "elkan"])
    param_names = ["backend", "size", "dtype", "algorithm"]
    timeout = 600

    def setup(self, backend, size, dtype, algorithm):
        require_backend("kmeans", backend)
        n, d, k, self.n_iter = LLOYD[size]
        self.X, self.C = _data(n, d, k, dtype)
        _warm("kmeans", backend, dtype)

    def _run(self, backend, algorithm):
        return kc.fastla_lloyd(self.X, self.C, self.n_iter, backend, algorithm=algorithm)

    def time_kmeans(self, backend, size, dtype, algorithm):
        self._run(backend, algorithm)

    def peakmem_kmeans(self, backend, size, dtype, algorithm):
        self._run(backend, algorithm)


class KMeansSpeedup:
    """float32 Lloyd against the seed loop, scikit-learn and faiss, side by side."""

    params = (BACKENDS, list(LLOYD))
    param_names = ["backend", "size"]
    timeout = 900

    def setup(self, backend, size):
        require_backend("kmeans", backend)
        n, d, k, self.n_iter = LLOYD[size]
        self.X, self.C = _data(n, d, k)
        self.threads = _threads()
        _warm("kmeans", backend)
        self.fast = lambda: kc.fastla_lloyd(self.X, self.C, self.n_iter, backend,
                                            self.threads)

    def track_speedup_vs_naive(self, backend, size):
        n, k = self.X.shape[0], self.C.shape[0]
        per_unit = best_time(self.fast, 2) / (n * k * self.n_iter)
        return _naive_seconds_per_unit(self.X.shape[1]) / per_unit

    track_speedup_vs_naive.unit = "x"

    def track_speedup_vs_sklearn(self, backend, size):
        require_module("sklearn")
        with peer_threads(self.threads):
            t_peer = best_time(lambda: kc.sklearn_lloyd(self.X, self.C, self.n_iter), 2)
        return t_peer / best_time(self.fast, 2)

    track_speedup_vs_sklearn.unit = "x"

    def track_speedup_vs_faiss(self, backend, size):
        require_module("faiss")
        with peer_threads(self.threads):
            t_peer = best_time(lambda: kc.faiss_lloyd(self.X, self.C, self.n_iter,
                                                      self.threads), 2)
        return t_peer / best_time(self.fast, 2)

    track_speedup_vs_faiss.unit = "x"


class KMeansPlusPlus:
    """Greedy k-means++ seeding: time, memory, speed and seeding quality vs scikit-learn."""

    params = (BACKENDS, ["float32", "float64"])
    param_names = ["backend", "dtype"]
    timeout = 600

    def setup(self, backend, dtype):
        require_backend("kmeans_plusplus", backend)
        n, d, self.k = PLUSPLUS
        self.X = _data(n, d, self.k, dtype)[0]
        self.threads = _threads()
        _warm("kmeans_plusplus", backend, dtype)
        self.fast = lambda seed=0: kc.fastla_plusplus(self.X, self.k, seed, backend,
                                                      self.threads)

    def time_kmeans_plusplus(self, backend, dtype):
        self.fast()

    def peakmem_kmeans_plusplus(self, backend, dtype):
        self.fast()

    def track_speedup_vs_sklearn(self, backend, dtype):
        require_module("sklearn")
        with peer_threads(self.threads):
            t_peer = best_time(lambda: kc.sklearn_plusplus(self.X, self.k), 2)
        return t_peer / best_time(self.fast, 2)

    track_speedup_vs_sklearn.unit = "x"

    def track_inertia_ratio_vs_sklearn(self, backend, dtype):
        """Mean seeding inertia over 5 seeds, fastla / scikit-learn (about 1 is right)."""
        require_module("sklearn")
        seeds = range(5)
        ours = np.mean([_inertia(self.X, self.fast(s)[0]) for s in seeds])
        with peer_threads(self.threads):
            theirs = np.mean([_inertia(self.X, kc.sklearn_plusplus(self.X, self.k, s)[0])
                              for s in seeds])
        return float(ours / theirs)

    track_inertia_ratio_vs_sklearn.unit = "ratio"


class KMeansAssign:
    """The fused assignment pass (distance tile + argmin) against the bare GEMM."""

    params = (BACKENDS, ["float32", "float64"])
    param_names = ["backend", "dtype"]
    timeout = 300

    def setup(self, backend, dtype):
        require_backend("kmeans_assign", backend)
        self.X, self.C = _data(*ASSIGN, dtype)
        self.threads = _threads()
        _warm("kmeans_assign", backend, dtype)
        self.fast = lambda: kc.fastla_assign(self.X, self.C, backend, self.threads)

    def time_kmeans_assign(self, backend, dtype):
        self.fast()

    def peakmem_kmeans_assign(self, backend, dtype):
        self.fast()

    def track_speedup_vs_gemm(self, backend, dtype):
        """Time of ``X @ C.T`` / fastla's time (issue 4's goal: at least 1 / 1.2)."""
        X, C = self.X, self.C
        with peer_threads(self.threads):
            t_gemm = best_time(lambda: X @ C.T)
        return t_gemm / best_time(self.fast)

    track_speedup_vs_gemm.unit = "x"

    def track_speedup_vs_naive(self, backend, dtype):
        n, k = self.X.shape[0], self.C.shape[0]
        t_naive = _naive_seconds_per_unit(self.X.shape[1], 1)
        return t_naive / (best_time(self.fast) / (n * k))

    track_speedup_vs_naive.unit = "x"
