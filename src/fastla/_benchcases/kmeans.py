"""Benchmark cases for k-means (``kmeans``, ``kmeans_plusplus``, ``kmeans_assign``).

Sizes are issue 4's targets (full) or small ones (``quick``):

- Lloyd, 100,000 x 32 float32, k=100, 20 iterations from the same initial centres,
  tol=0; peers ``sklearn.cluster.KMeans(algorithm="lloyd", init=centers, n_init=1,
  max_iter=20, tol=0)`` and ``faiss.Kmeans(d, k, niter=20,
  max_points_per_centroid=10**9)`` trained from the same ``init_centroids`` (so faiss
  neither subsamples nor seeds its own centres).
- the same at 200,000 x 64, k=256.
- ``kmeans_plusplus``, k=256 on 200,000 x 64 float32; peer
  ``sklearn.cluster.kmeans_plusplus`` (same default number of local trials).
- ``kmeans_assign``, 200,000 x 64 against 256 centres float32; reference the bare GEMM
  ``X @ C.T`` of the same shapes (it does less work: no norms, no argmin).
- with a CUDA backend present: 1,000,000 x 100, k=1000 Lloyd (issue 4's GPU goal).

Work is counted in nominal FLOPs of the distance part (2*n*k*d per assignment pass;
per k-means++ step, 2*n*d per candidate), so throughput compares with the GEMM
ceiling. The data are an overlapping Gaussian mixture: Lloyd does not converge in 20
iterations, so every implementation runs all of them (sklearn stops early on strict
convergence even with tol=0). sklearn and fastla do one more assignment pass after the
last update (labels consistent with the returned centres); faiss does not.

The naive baseline is the seed's loop (``_naive.kmeans_seed``), exactly ``n_iter``
iterations on a small input it finishes in about a second; the speedup over it is a
throughput ratio.
"""

import math

import numpy as np

from . import Case, Peer, module_available

#: issue 4's targets: name -> (n, d, k, iterations)
FULL = {"lloyd_a": (100_000, 32, 100, 20), "lloyd_b": (200_000, 64, 256, 20),
        "plusplus": (200_000, 64, 256, 0), "assign": (200_000, 64, 256, 1)}
QUICK = {"lloyd_a": (20_000, 32, 100, 20), "lloyd_b": (20_000, 64, 128, 20),
         "plusplus": (20_000, 64, 64, 0), "assign": (20_000, 64, 256, 1)}
GPU = (1_000_000, 100, 1000, 10)
#: the seed loop's input at dimension d: (64000 // d) points, k=20, 4 iterations,
#: about a second of pure Python (one iteration for the assignment case)
NAIVE_K, NAIVE_ITER = 20, 4


def naive_shape(d):
    return 64000 // d, d, NAIVE_K


def mixture(n, d, n_blobs=None, dtype=np.float32, seed=0):
    """``n`` points in ``d`` dimensions from an overlapping mixture of 16 Gaussians
    (fewer blobs than centres: Lloyd keeps moving for well over 20 iterations)."""
    rng = np.random.default_rng(seed)
    n_blobs = n_blobs or 16
    centers = rng.normal(0.0, 1.0, (n_blobs, d))
    labels = rng.integers(0, n_blobs, n)
    X = centers[labels] + rng.normal(0.0, 0.8, (n, d))
    return X.astype(dtype)


def initial_centers(X, k, seed=1):
    """``k`` distinct rows of ``X`` (the same initial centres for every implementation)."""
    rng = np.random.default_rng(seed)
    return np.ascontiguousarray(X[np.sort(rng.choice(X.shape[0], k, replace=False))])


def kmeans_data(n, d, k, dtype=np.float32):
    X = mixture(n, d, dtype=dtype)
    return X, initial_centers(X, k)


def n_local_trials(k):
    """scikit-learn's default number of local trials of greedy k-means++."""
    return 2 + int(math.log(k))


def plusplus_flops(n, d, k):
    """Nominal FLOPs of greedy k-means++: every step scores its trials against all points."""
    return 2.0 * n * d * (1 + (k - 1) * n_local_trials(k))


# -------------------------------------------------------------------- fastla calls
def fastla_lloyd(X, C, n_iter, backend=None, n_threads=None, algorithm="lloyd"):
    from fastla.kmeans import kmeans

    return kmeans(X, C.shape[0], init=C, n_init=1, max_iter=n_iter, tol=0.0,
                  algorithm=algorithm, backend=backend, n_threads=n_threads)


def fastla_plusplus(X, k, seed=0, backend=None, n_threads=None):
    from fastla.kmeans import kmeans_plusplus

    return kmeans_plusplus(X, k, random_state=seed, backend=backend, n_threads=n_threads)


def fastla_assign(X, C, backend=None, n_threads=None):
    from fastla.kmeans import kmeans_assign

    return kmeans_assign(X, C, backend=backend, n_threads=n_threads)


# --------------------------------------------------------------------------- peers
def sklearn_lloyd(X, C, n_iter):
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=C.shape[0], init=C, n_init=1, max_iter=n_iter, tol=0.0,
                  algorithm="lloyd").fit(X)


def faiss_lloyd(X, C, n_iter, n_threads=None):
    import faiss

    if n_threads is not None:
        faiss.omp_set_num_threads(int(n_threads))
    km = faiss.Kmeans(X.shape[1], C.shape[0], niter=n_iter, max_points_per_centroid=10**9,
                      seed=0, verbose=False)
    km.train(X, init_centroids=C)
    return km


def sklearn_plusplus(X, k, seed=0):
    from sklearn.cluster import kmeans_plusplus

    return kmeans_plusplus(X, k, random_state=seed)


def naive_setup(d):
    """The seed loop's small input at dimension ``d`` (same data law, float64)."""
    return lambda: kmeans_data(*naive_shape(d), np.float64)


def naive_run(data, n_iter=NAIVE_ITER):
    from .._kernels import _naive

    X, C = data
    return _naive.kmeans_seed(X, C.copy(), n_iter)


def naive_work(d, n_iter=NAIVE_ITER):
    n, d, k = naive_shape(d)
    return 2.0 * n * d * k * n_iter


def _lloyd_case(n, d, k, n_iter, peers=True):
    def setup():
        return kmeans_data(n, d, k)

    def run(backend, data, n_threads):
        return fastla_lloyd(data[0], data[1], n_iter, backend, n_threads)

    sk_ok = lambda: module_available("sklearn")  # noqa: E731
    faiss_ok = lambda: module_available("faiss")  # noqa: E731
    return Case(
        op="kmeans", title=f"kmeans lloyd {n}x{d} k={k} {n_iter} it f32",
        setup=setup, run=run, work=2.0 * n * d * k * n_iter, unit="GFLOP/s",
        naive_setup=naive_setup(d), naive_run=naive_run, naive_work=naive_work(d),
        peers=[Peer("sklearn KMeans lloyd", lambda dt: sklearn_lloyd(dt[0], dt[1], n_iter),
                    sk_ok),
               Peer("faiss.Kmeans", lambda dt: faiss_lloyd(dt[0], dt[1], n_iter), faiss_ok)]
        if peers else [],
        ceiling="gemm32")


def _plusplus_case(n, d, k):
    def setup():
        return mixture(n, d)

    def run(backend, X, n_threads):
        return fastla_plusplus(X, k, 0, backend, n_threads)

    return Case(
        op="kmeans_plusplus", title=f"kmeans_plusplus {n}x{d} k={k} f32",
        setup=setup, run=run, work=plusplus_flops(n, d, k), unit="GFLOP/s",
        peers=[Peer("sklearn kmeans_plusplus", lambda X: sklearn_plusplus(X, k),
                    lambda: module_available("sklearn"))],
        ceiling="gemm32")


def _assign_case(n, d, k):
    def setup():
        return kmeans_data(n, d, k)

    def run(backend, data, n_threads):
        return fastla_assign(data[0], data[1], backend, n_threads)

    return Case(
        op="kmeans_assign", title=f"kmeans_assign {n}x{d} vs {k} centers f32",
        setup=setup, run=run, work=2.0 * n * d * k, unit="GFLOP/s",
        # one seed iteration = one assignment pass (plus the mean update, negligible)
        naive_setup=naive_setup(d), naive_run=lambda dt: naive_run(dt, 1),
        naive_work=naive_work(d, 1),
        peers=[Peer("X @ C.T (bare GEMM)", lambda dt: dt[0] @ dt[1].T, reference=True)],
        ceiling="gemm32")


def _registered():
    from .. import _backend

    ops = set(_backend.operations())
    return all(op in ops for op in ("kmeans", "kmeans_plusplus", "kmeans_assign"))


def cases(quick):
    """The k-means cases; ``quick`` runs the same four at small sizes."""
    import fastla  # noqa: F401  (registers the operations)

    if not _registered():
        import warnings

        warnings.warn("fastla.kmeans is not built here; no k-means cases", stacklevel=2)
        return []
    s = QUICK if quick else FULL
    out = [
        _lloyd_case(*s["lloyd_a"]),
        _lloyd_case(*s["lloyd_b"]),
        _plusplus_case(*s["plusplus"][:3]),
        _assign_case(*s["assign"][:3]),
    ]
    if not quick and "cuda" in fastla.available_backends("kmeans"):
        out.append(_lloyd_case(*GPU, peers=False))
    return out
