"""Benchmark cases for 2-D convolution (``python -m fastla bench``, asv).

Every case is a "same"-size correlation with the reflecting boundary (ndimage
``reflect`` = OpenCV ``BORDER_REFLECT``), borders included, so fastla and the peers do
identical work. Peers: ``cv2.filter2D`` (and ``cv2.sepFilter2D`` for separable
kernels), ``scipy.ndimage.correlate`` and ``scipy.signal.correlate2d`` (symm boundary:
the same numbers).
"""

import numpy as np

from . import Case, Peer, module_available

NAIVE_SIZE = 96  # the plain loop finishes in about a second at 3x3


def _image(n, dtype, seed=0):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype) == np.uint8:
        return rng.integers(0, 256, (n, n)).astype(np.uint8)
    return rng.standard_normal((n, n)).astype(dtype)


def _kernel(k, dtype, separable, seed=1):
    rng = np.random.default_rng(seed)
    if separable:
        col, row = rng.standard_normal(k), rng.standard_normal(k)
        return np.outer(col, row).astype(dtype), col.astype(dtype), row.astype(dtype)
    return rng.standard_normal((k, k)).astype(dtype), None, None


def _cv2_peers(kernel_dtype_is_u8, separable):
    def avail():
        return module_available("cv2")

    def filter2d(d):
        import cv2

        return cv2.filter2D(d["x"], -1, d["kcv"], borderType=cv2.BORDER_REFLECT)

    peers = [Peer("cv2.filter2D", filter2d, avail)]
    if separable:
        def sep(d):
            import cv2

            return cv2.sepFilter2D(d["x"], -1, d["row"], d["col"],
                                   borderType=cv2.BORDER_REFLECT)

        peers.append(Peer("cv2.sepFilter2D", sep, avail))
    return peers


def _scipy_peers(with_signal):
    def avail():
        return module_available("scipy.ndimage")

    def nd(d):
        from scipy import ndimage

        return ndimage.correlate(d["x"], d["k"], mode="reflect")

    peers = [Peer("scipy.ndimage.correlate", nd, avail)]
    if with_signal:
        def signal(d):
            from scipy import signal

            return signal.correlate2d(d["x"], d["k"], mode="same", boundary="symm")

        peers.append(Peer("scipy.signal.correlate2d", signal, avail))
    return peers


def _case(n, k, dtype, *, separable=False, method="auto", with_signal=False):
    dt = np.dtype(dtype)
    name = {"float32": "f32", "float64": "f64", "uint8": "u8"}[dt.name]
    kdt = np.float32 if dt == np.uint8 else dt

    def setup():
        x = _image(n, dt)
        kern, col, row = _kernel(k, kdt, separable)
        if dt == np.uint8:  # a smoothing kernel so that u8 outputs are meaningful
            kern = np.abs(kern) / np.abs(kern).sum()
        kcv = kern.astype(np.float64 if dt == np.float64 else np.float32)
        return {"x": x, "k": kern, "kcv": kcv, "col": col, "row": row}

    def run(backend, d, n_threads):
        from fastla import correlate

        return correlate(d["x"], d["k"], mode="reflect", method=method, backend=backend,
                         n_threads=n_threads)

    nn = max(16, NAIVE_SIZE * 3 // k)  # the loop's cost grows with the taps

    def naive_setup():
        return {"x": _image(nn, dt), "k": _kernel(k, kdt, separable)[0]}

    def naive_run(d):
        from fastla import correlate

        return correlate(d["x"], d["k"], mode="reflect", method="direct", backend="python")

    peers = _cv2_peers(dt == np.uint8, separable) + _scipy_peers(with_signal)
    title = f"correlate {n}x{n} {k}x{k}{' separable' if separable else ''} {name} same reflect"
    return Case(op="correlate", title=title, setup=setup, run=run, work=float(n * n),
                unit="Mpixel/s", naive_setup=naive_setup, naive_run=naive_run,
                naive_work=float(nn * nn),
                peers=peers, ceiling="memcpy", bytes_moved=2.0 * n * n * dt.itemsize)


def cases(quick):
    """The conv benchmark cases; ``quick`` keeps the 3x3 headline cases only."""
    out = [
        _case(2048, 3, np.float32, with_signal=True),
        _case(2048, 3, np.float64),
        _case(2048, 3, np.uint8),
    ]
    if quick:
        return out
    out += [
        _case(2048, 5, np.float32),
        _case(2048, 7, np.float32),
        _case(2048, 5, np.float32, separable=True),
        _case(2048, 7, np.float32, separable=True),
        _case(2048, 11, np.float32),
        _case(2048, 15, np.float32),
        _case(2048, 31, np.float32),
        _case(4096, 3, np.float32),
    ]
    return out
