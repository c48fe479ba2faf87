"""Numba kernels for 2-D correlation (fastla.conv); see ``_cy_conv.pyx`` for the scheme.

``out[b, k, i, j] = sum_{a, c} w[k, a, c] * X[b, rowidx[i + a], colidx[j + c]]`` with
``-1`` in a table meaning ``cval``. Interior columns ``jlo <= j < jhi`` read the image
row directly in loops over contiguous x (LLVM vectorises them); the ``kw - 1`` border
columns on each side go through the column table. ``prange`` runs over (image, row)
work items.
"""

import numpy as np
from numba import prange

from .._threads import numba_threads
from ._numba_common import jit


@jit(parallel=True, nogil=True, boundscheck=False)
def _correlate2d(img, w, rowidx, colidx, ox, jlo, jhi, cvalrow, out):
    B = img.shape[0]
    K, kh, kw = w.shape
    Ho = out.shape[2]
    Wo = out.shape[3]
    cval = cvalrow[0]
    for t in prange(B * Ho):
        b = t // Ho
        i = t - b * Ho
        for k in range(K):
            o = out[b, k, i]
            for j in range(Wo):
                o[j] = 0
            for a in range(kh):
                r = rowidx[i + a]
                if r < 0:
                    rp = cvalrow
                else:
                    rp = img[b, r]
                for c in range(kw):
                    wv = w[k, a, c]
                    off = c - ox
                    for j in range(jlo, jhi):
                        o[j] += wv * rp[j + off]
                for j in range(0, jlo):
                    s = o[j] * 0
                    for c in range(kw):
                        col = colidx[j + c]
                        s += w[k, a, c] * (rp[col] if col >= 0 else cval)
                    o[j] += s
                for j in range(jhi, Wo):
                    s = o[j] * 0
                    for c in range(kw):
                        col = colidx[j + c]
                        s += w[k, a, c] * (rp[col] if col >= 0 else cval)
                    o[j] += s


def correlate2d(img, w, rowidx, colidx, ox, jlo, jhi, cval, out, n_threads):
    """Correlate ``img[B, H, W]`` with ``w[K, kh, kw]`` into ``out[B, K, Ho, Wo]``
    (arguments as the Cython kernel's; validated by fastla.conv)."""
    cvalrow = np.full(max(img.shape[2], 1), cval, dtype=img.dtype)
    with numba_threads(n_threads):
        _correlate2d(img, w, rowidx, colidx, ox, jlo, jhi, cvalrow, out)
    return out
