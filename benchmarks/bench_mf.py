"""asv benchmarks for SGD matrix factorisation (fastla.MatrixFactorization).

Data: the synthetic MovieLens-1M-shaped set of ``fastla._benchcases.mf`` (6,040 users,
3,706 items, 1,000,000 ratings, long-tail popularity; 90 % trained on), Surprise's
defaults (k=100, 20 epochs, lr 0.005, reg 0.02). ``time_`` / ``peakmem_`` are per
backend and dtype; ``track_`` report updates per second and the speedups over the
naive loop (the python backend, per update) and over ``surprise.SVD`` (same data, same
parameters, measured in the same process). JIT compilation is warmed in ``setup``.
A backend or peer that cannot run here raises NotImplementedError (asv skips it).
"""

import time

import numpy as np

from fastla._benchcases import mf as cases

N_EPOCHS, K = 20, 100


def _available(backend):
    import fastla

    if backend not in fastla.available_backends("sgd_mf"):
        raise NotImplementedError(f"backend {backend} is not available here")


def _warm(backend, dtype):
    u, i, r = cases.synthetic_ratings(50, 40, 500, seed=1)
    cases.fastla_fit((u, i, r), backend, None, 1, 8, dtype)


def _fit_seconds(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


class MFFit:
    params = (["cython", "numba", "cuda"], ["float32", "float64"])
    param_names = ["backend", "dtype"]
    timeout = 300
    number = 1
    repeat = 3

    def setup_cache(self):
        u, i, r = cases.synthetic_ratings(**cases.ML1M)
        train, test = cases.split(u, i, r)
        return train, test

    def setup(self, data, backend, dtype):
        _available(backend)
        _warm(backend, np.dtype(dtype))

    def time_fit(self, data, backend, dtype):
        cases.fastla_fit(data[0], backend, None, N_EPOCHS, K, np.dtype(dtype))

    def peakmem_fit(self, data, backend, dtype):
        cases.fastla_fit(data[0], backend, None, N_EPOCHS, K, np.dtype(dtype))

    def track_updates_per_second(self, data, backend, dtype):
        m = cases.fastla_fit(data[0], backend, None, N_EPOCHS, K, np.dtype(dtype))
        t = _fit_seconds(lambda: cases.fastla_fit(data[0], backend, None, N_EPOCHS, K,
                                                  np.dtype(dtype)))
        del m
        return N_EPOCHS * len(data[0][2]) / t / 1e6

    track_updates_per_second.unit = "Mupdates/s"

    def track_test_rmse(self, data, backend, dtype):
        m = cases.fastla_fit(data[0], backend, None, N_EPOCHS, K, np.dtype(dtype))
        return m.score(data[1])

    track_test_rmse.unit = "RMSE"


class MFSpeedup:
    """Whole-fit throughput ratios measured side by side in one process (float32)."""

    params = ["cython", "numba", "cuda"]
    param_names = ["backend"]
    timeout = 600
    number = 1
    repeat = 1

    def setup_cache(self):
        u, i, r = cases.synthetic_ratings(**cases.ML1M)
        return cases.split(u, i, r)

    def setup(self, data, backend):
        _available(backend)
        _warm(backend, np.float32)

    def _fastla_rate(self, data, backend):
        train = data[0]
        t = _fit_seconds(lambda: cases.fastla_fit(train, backend, None, N_EPOCHS, K))
        return N_EPOCHS * len(train[2]) / t

    def track_speedup_over_naive(self, data, backend):
        u, i, r = (a[:5000] for a in data[0])
        t = _fit_seconds(lambda: cases.fastla_fit((u, i, r), "python", 1, 1, K))
        naive_rate = len(r) / t
        return self._fastla_rate(data, backend) / naive_rate

    track_speedup_over_naive.unit = "x"

    def track_speedup_over_surprise(self, data, backend):
        reason = cases.module_available("surprise")
        if reason is not None:
            raise NotImplementedError(reason)
        ts = cases.surprise_trainset(data[0])
        t = _fit_seconds(lambda: cases.surprise_fit(ts, N_EPOCHS, K))
        surprise_rate = N_EPOCHS * len(data[0][2]) / t
        return self._fastla_rate(data, backend) / surprise_rate

    track_speedup_over_surprise.unit = "x"

    def track_rmse_minus_surprise(self, data, backend):
        reason = cases.module_available("surprise")
        if reason is not None:
            raise NotImplementedError(reason)
        algo = cases.surprise_fit(cases.surprise_trainset(data[0]), N_EPOCHS, K)
        m = cases.fastla_fit(data[0], backend, None, N_EPOCHS, K)
        return m.score(data[1]) - cases.surprise_rmse(algo, data[1])

    track_rmse_minus_surprise.unit = "RMSE"


class SeedMatrixFactorization:
    """The seed's dense function: compiled kernels vs the naive loop (per update)."""

    params = ["cython", "numba"]
    param_names = ["backend"]
    timeout = 300

    def setup(self, backend):
        import fastla

        if backend not in fastla.available_backends("matrix_factorization"):
            raise NotImplementedError(f"backend {backend} is not available here")
        rng = np.random.default_rng(0)
        R = rng.integers(1, 6, (300, 200)).astype(np.float64)
        R[rng.random(R.shape) < 0.8] = 0
        self.R = R
        fastla.matrix_factorization(R[:5, :5], 4, 0.002, 1, backend=backend)

    def time_matrix_factorization(self, backend):
        import fastla

        fastla.matrix_factorization(self.R, 20, 0.002, 20, random_state=0, backend=backend)

    def track_speedup_over_naive(self, backend):
        import fastla

        R = self.R
        nnz = np.count_nonzero(R)
        t = _fit_seconds(lambda: fastla.matrix_factorization(R, 20, 0.002, 20,
                                                             random_state=0,
                                                             backend=backend))
        Rs = R[:40, :40]
        tn = _fit_seconds(lambda: fastla.matrix_factorization(Rs, 20, 0.002, 1,
                                                              random_state=0,
                                                              backend="python"))
        return (20 * nnz / t) / (np.count_nonzero(Rs) / tn)

    track_speedup_over_naive.unit = "x"
