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


@jit(nogil=True, boundscheck=False, inline="always")
def _interior(rp, wrow, ox, jlo, jhi, o):
    """o[j] += sum_c wrow[c] * rp[j - ox + c], jlo <= j < jhi, on slices that start at
    0 (non-negative indices: no wrap-around checks, so LLVM vectorises)."""
    n = jhi - jlo
    if n <= 0:
        return
    kw = wrow.shape[0]
    d = o[jlo:jhi]
    base = jlo - ox
    if kw == 3:
        w0 = wrow[0]
        w1 = wrow[1]
        w2 = wrow[2]
        s0 = rp[base:base + n]
        s1 = rp[base + 1:base + 1 + n]
        s2 = rp[base + 2:base + 2 + n]
        for j in range(n):
            d[j] += w0 * s0[j] + w1 * s1[j] + w2 * s2[j]
    elif kw == 5:
        w0 = wrow[0]
        w1 = wrow[1]
        w2 = wrow[2]
        w3 = wrow[3]
        w4 = wrow[4]
        s0 = rp[base:base + n]
        s1 = rp[base + 1:base + 1 + n]
        s2 = rp[base + 2:base + 2 + n]
        s3 = rp[base + 3:base + 3 + n]
        s4 = rp[base + 4:base + 4 + n]
        for j in range(n):
            d[j] += w0 * s0[j] + w1 * s1[j] + w2 * s2[j] + w3 * s3[j] + w4 * s4[j]
    else:
        for c in range(kw):
            wv = wrow[c]
            sc = rp[base + c:base + c + n]
            for j in range(n):
                d[j] += wv * sc[j]


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
                _interior(rp, w[k, a], ox, jlo, jhi, o)
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
