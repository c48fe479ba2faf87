"""Tiled overlap-save correlation through scipy.fft (the "fft" method of fastla.conv).

The extended image is cut into overlapping tiles of ``ny x nx`` samples whose valid parts
(``ny - kh + 1`` by ``nx - kw + 1`` outputs) tile the output. Each tile's spectrum is
multiplied by the kernel's and transformed back; the tiles are never a full-size
intermediate: work runs one horizontal stripe of tiles at a time, so a stripe's samples,
spectra and results stay in cache, and the stripes run on a thread pool (scipy.fft and
NumPy's copies and products release the GIL). float32 stays float32 (pocketfft single
precision).

Backend-neutral: the same host code serves every backend's "fft" method. No validation
here; fastla.conv hands over consistent shapes and index tables.
"""

from concurrent.futures import ThreadPoolExecutor
import math

import numpy as np

_MAX_TILE = 1024  # longest tile per axis (longer kernels get tiles of 2 k)


def _smooth_lengths(lo, hi):
    """The lengths lo <= n <= hi whose only prime factors are 2, 3 and 5 (pocketfft's
    fastest), ascending."""
    out = []
    p2 = 1
    while p2 <= hi:
        p3 = p2
        while p3 <= hi:
            p5 = p3
            while p5 <= hi:
                if p5 >= lo:
                    out.append(p5)
                p5 *= 5
            p3 *= 3
        p2 *= 2
    return sorted(out)


def _cost(n, k, length):
    """Model cost of one axis with tiles of n samples: the tiles it takes times one
    tile's transform length n log n. Powers of two from 256 ran slower than their
    neighbours in a microbenchmark of the transforms alone (256 and 512: 1.5-2x the time
    of 240 and 480 per output; likely cache-set conflicts of the column passes), so
    they are penalised."""
    tiles = -(-length // (n - k + 1))
    penalty = 1.7 if n >= 256 and n & (n - 1) == 0 else 1.0
    return tiles * n * math.log2(n) * penalty


def tile_length(k, length):
    """Tile length along an axis for a kernel of ``k`` taps and ``length`` outputs: the
    smooth length with the lowest modelled cost, from ``2 k`` (or the whole extended
    axis, when shorter) up to one tile for the whole axis or ``_MAX_TILE``."""
    whole = length + k - 1
    lo = max(k, min(2 * k, whole))
    hi = max(lo, min(_MAX_TILE, whole))
    cands = _smooth_lengths(lo, hi) or _smooth_lengths(lo, 2 * lo)
    return min(cands, key=lambda n: _cost(n, k, length))


def correlate_tiled(img, rowidx, colidx, w, cval, out, n_threads):
    """out[b, k] = correlation of the extended image with w[k] (valid part).

    img: (B, H, W) real; rowidx (Ho + kh - 1), colidx (Wo + kw - 1): image index of each
    extended row/column, -1 for the constant ``cval``; w: (K, kh, kw) real of img's
    dtype; out: (B, K, Ho, Wo) of img's dtype, written in place.
    """
    from scipy import fft as sfft

    B = img.shape[0]
    K, kh, kw = w.shape
    Ho, Wo = out.shape[2], out.shape[3]
    ny, nx = tile_length(kh, Ho), tile_length(kw, Wo)
    vy, vx = ny - kh + 1, nx - kw + 1
    ty, tx = -(-Ho // vy), -(-Wo // vx)
    # extended columns, padded to whole tiles; padding feeds discarded outputs only
    cols = np.zeros(tx * vx + kw - 1, np.intp)
    cols[:colidx.size] = np.maximum(colidx, 0)
    col_cval = np.flatnonzero(colidx < 0)
    rows_all = np.zeros(ty * vy + kh - 1, np.intp)
    rows_all[:rowidx.size] = rowidx
    # correlation: irfft(X * conj(W)) gives sum_a x[p + a] w[a] at p = 0 .. n - k
    spec = np.conj(sfft.rfft2(w, s=(ny, nx), axes=(-2, -1)))[:, None]  # (K, 1, ny, nx//2+1)
    dt = img.dtype
    itemsize = dt.itemsize

    def stripe(job):
        b, t = divmod(job, ty)
        r = rows_all[t * vy:t * vy + ny]
        s = img[b].take(np.maximum(r, 0), axis=0).take(cols, axis=1)
        if col_cval.size:
            s[:, col_cval] = cval
        neg = r < 0  # constant rows (the padding rows are index 0, never -1)
        if neg.any():
            s[neg] = cval
        # (tx, ny, nx) overlapping views of the stripe, vx columns apart
        tiles = np.lib.stride_tricks.as_strided(
            s, (tx, ny, nx), (vx * itemsize, s.strides[0], itemsize), writeable=False)
        f = sfft.rfft2(tiles, axes=(-2, -1), workers=1)
        f = f[None] * spec                                   # (K, tx, ny, nx//2+1)
        res = sfft.irfft2(f, s=(ny, nx), axes=(-2, -1), workers=1)
        h = min(vy, Ho - t * vy)
        blk = res[:, :, :h, :vx].transpose(0, 2, 1, 3).reshape(K, h, tx * vx)
        out[b, :, t * vy:t * vy + h, :] = blk[:, :, :Wo]

    jobs = B * ty
    nthr = max(1, min(int(n_threads), jobs))
    if nthr == 1:
        for j in range(jobs):
            stripe(j)
    else:
        with ThreadPoolExecutor(nthr) as pool:
            list(pool.map(stripe, range(jobs)))
    return out
