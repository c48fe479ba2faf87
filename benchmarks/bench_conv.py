"""asv benchmarks for fastla.conv: "same" correlation with the reflecting boundary.

``time_``/``peakmem_`` are parametrised by backend, image size, dtype and kernel size;
``track_`` report speedups (unit "x") over the naive loop (per pixel) and over
``cv2.filter2D`` measured side by side in the same process with the same thread count.
A backend or peer that cannot run here raises NotImplementedError (asv skips it).
"""

import timeit

import numpy as np

from .common import sizes

BACKENDS = ["cython", "numba", "cuda"]
# the fast profile (asv run --quick) keeps one image size and two kernel sizes
SIZES = sizes([512], [512, 2048])
DTYPES = ["float32", "float64", "uint8"]
KSIZES = sizes([3, 7], [3, 5, 7, 11, 31])  # 31: the FFT method (auto from 21x21)
SPEEDUP_KSIZES = sizes([3], [3, 5, 7])


def _data(n, dtype, k):
    rng = np.random.default_rng(0)
    if dtype == "uint8":
        x = rng.integers(0, 256, (n, n)).astype(np.uint8)
        kern = np.abs(rng.standard_normal((k, k))).astype(np.float32)
        kern /= kern.sum()
    else:
        x = rng.standard_normal((n, n)).astype(dtype)
        kern = rng.standard_normal((k, k)).astype(dtype)
    return x, kern


def _require(backend):
    import fastla

    if backend not in fastla.available_backends("correlate"):
        raise NotImplementedError(f"backend {backend} is not available here")


def _best(fn, number=3, repeat=5):
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number


class Correlate:
    params = [BACKENDS, SIZES, DTYPES, KSIZES]
    param_names = ["backend", "size", "dtype", "ksize"]
    timeout = 300

    def setup(self, backend, size, dtype, ksize):
        _require(backend)
        import fastla

        self.fastla = fastla
        self.backend = backend
        self.x, self.k = _data(size, dtype, ksize)
        self.threads = fastla._threads.effective_n_threads(None)
        self.run()  # JIT compile / warm caches outside the timing

    def run(self):
        return self.fastla.correlate(self.x, self.k, mode="reflect", backend=self.backend,
                                     n_threads=self.threads)

    def time_correlate(self, backend, size, dtype, ksize):
        self.run()

    def peakmem_correlate(self, backend, size, dtype, ksize):
        self.run()


class Speedups:
    """Throughput ratios measured side by side in one process."""

    params = [BACKENDS, [2048], DTYPES, SPEEDUP_KSIZES]
    param_names = ["backend", "size", "dtype", "ksize"]
    unit = "x"
    timeout = 600

    def setup(self, backend, size, dtype, ksize):
        _require(backend)
        import fastla

        self.fastla = fastla
        self.backend = backend
        self.threads = fastla._threads.effective_n_threads(None)
        self.x, self.k = _data(size, dtype, ksize)
        self.fast = lambda: fastla.correlate(self.x, self.k, mode="reflect", backend=backend,
                                             n_threads=self.threads)
        self.fast()  # warm the JIT

    def track_speedup_over_naive(self, backend, size, dtype, ksize):
        n = 64
        xs = self.x[:n, :n].copy()
        t_naive = _best(lambda: self.fastla.correlate(xs, self.k, mode="reflect",
                                                      method="direct", backend="python"),
                        number=1, repeat=1) / (n * n)
        t_fast = _best(self.fast) / self.x.size
        return t_naive / t_fast

    track_speedup_over_naive.unit = "x"

    def track_speedup_over_cv2(self, backend, size, dtype, ksize):
        try:
            import cv2
        except ImportError:
            raise NotImplementedError("cv2 is not installed") from None
        cv2.setNumThreads(self.threads)
        kcv = self.k.astype(np.float64 if self.x.dtype == np.float64 else np.float32)
        t_cv = _best(lambda: cv2.filter2D(self.x, -1, kcv, borderType=cv2.BORDER_REFLECT))
        t_fast = _best(self.fast)
        return t_cv / t_fast

    track_speedup_over_cv2.unit = "x"
