"""The naive reference loops: the textbook Python versions fastla replaces.

They are the correctness oracle in the tests and the baseline the benchmarks measure
speedups against. They are deliberately plain Python (pair by pair, pixel by pixel,
rating by rating) and are registered as the ``python`` backend of each operation.
"""

import math

import numpy as np


def correlate2d(img, w, rowidx, colidx, ox, jlo, jhi, cval, out, n_threads=1):
    """The seed's loop, generalised: for every output pixel, gather the kernel-sized
    patch of the (virtually) extended image and sum ``patch * kernel``.

    Same arguments as the compiled ``correlate2d`` kernels (``img[B, H, W]``,
    ``w[K, kh, kw]``, index tables with -1 for ``cval``, ``out[B, K, Ho, Wo]``);
    ``ox``, ``jlo``, ``jhi`` and ``n_threads`` are not needed by the plain loop.
    """
    B, H, W = img.shape
    K, kh, kw = w.shape
    Ho, Wo = out.shape[2], out.shape[3]
    for b in range(B):
        for k in range(K):
            kern = w[k]
            for i in range(Ho):
                for j in range(Wo):
                    patch = np.empty((kh, kw), dtype=img.dtype)
                    for a in range(kh):
                        r = rowidx[i + a]
                        for c in range(kw):
                            col = colidx[j + c]
                            patch[a, c] = cval if (r < 0 or col < 0) else img[b, r, col]
                    out[b, k, i, j] = np.sum(patch * kern)
    return out
