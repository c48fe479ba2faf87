"""Distance engine, Numba backend.

GEMM-class metrics: each thread takes bands of output rows, fills them by its own BLAS
call (pinned to one thread) and finishes them in cache: norms, cancellation-safe
recomputation, clamp and sqrt/exp (a vectorised exp of its own).
Direct metrics use a prange over tiles of X rows against 256-row blocks of Y,
transposed once, so that the inner loop runs along Y rows, contiguous and free of
reductions (LLVM vectorises it). Nearest neighbours: each thread takes tiles of X
rows against tiles of Y (its own single-threaded BLAS calls), a top-k merge per row,
exact recomputation of the survivors.
"""

import math

import numba
import numpy as np
from numba import prange

from .._threads import blas_single_thread, numba_threads
from ._numba_common import jit

SQEUCLIDEAN, EUCLIDEAN, COSINE, MANHATTAN, CHEBYSHEV, MINKOWSKI, RBF = range(7)
TJ = 256  # Y rows per transposed block of the direct loops, at most (_block_width)
BLOCK_BYTES = 256 << 10  # and a block's size, at most
TILE_COLS = 512  # Y rows per nearest-neighbour tile (X rows: see nearest_neighbors)
KEY_CHUNK = 256  # columns per selection-key sweep


def uses_gemm(metric, d):
    if metric == COSINE:
        return True
    if metric in (SQEUCLIDEAN, EUCLIDEAN, RBF):
        return d > 16
    return False


@jit(parallel=True)
def _row_norms(A, cosine):
    m, d = A.shape
    out = np.empty(m, dtype=np.float64)
    for i in prange(m):
        s = 0.0
        for k in range(d):
            s += np.float64(A[i, k]) * np.float64(A[i, k])
        if cosine:
            out[i] = 1.0 / math.sqrt(s) if s > 0.0 else 0.0
        else:
            out[i] = s
    return out


@jit()
def _sqdist(x, y):
    s = 0.0
    for k in range(x.shape[0]):
        t = np.float64(x[k]) - np.float64(y[k])
        s += t * t
    return s


# the vector exponential of _exp_into (the constants of _vec.h's FASTLA_VEXP, double)
_LOG2E = 1.4426950408889634
_ROUND = 6755399441055744.0  # 1.5 * 2^52: x + _ROUND - _ROUND rounds x to an integer
_LN2_HI = 6.93145751953125E-1
_LN2_LO = 1.42860682030941723212E-6


@jit()
def _exp_into(x, out, i1, i2):
    """out[j] = exp(x[j]) (float64 arrays of one length, not overlapping), in loops that
    LLVM vectorises (math.exp is a scalar call without Intel's SVML): the reduction
    x = n ln2 + r and the polynomial of _vec.h's FASTLA_VEXP (within 1 ulp), then 2^n
    applied as two powers of two built as bit patterns in the int64 scratch arrays i1,
    i2 (so that subnormal results round once); x is clamped to [-746, 710]."""
    n = x.shape[0]
    for j in range(n):
        t = min(max(x[j], -746.0), 710.0)
        k = (t * _LOG2E + _ROUND) - _ROUND
        r = (t - k * _LN2_HI) - k * _LN2_LO
        q = 2.0914794765811025e-09
        q = q * r + 2.5105367959357917e-08
        q = q * r + 2.7557273383736125e-07
        q = q * r + 2.755725503699239e-06
        q = q * r + 2.4801587325752518e-05
        q = q * r + 0.00019841269875107384
        q = q * r + 0.001388888888888369
        q = q * r + 0.008333333333326053
        q = q * r + 0.04166666666666667
        q = q * r + 0.1666666666666667
        q = q * r + 0.5
        out[j] = (q * (r * r) + r) + 1.0
        h = (k * 0.5 + _ROUND) - _ROUND
        i1[j] = (np.int64(h) + 1023) << 52
        i2[j] = (np.int64(k - h) + 1023) << 52
    f1 = i1.view(np.float64)
    f2 = i2.view(np.float64)
    for j in range(n):
        out[j] = (out[j] * f1[j]) * f2[j]


@jit()
def _epilogue_row(row, X, Y, xx, yy, metric, gamma, recompute, same, gi, e, o, i1, i2):
    """In place: row[j] = x.y  ->  distance (or RBF value) for X row gi, in branch-free
    loops that vectorise: the squared distances into a float64 row with a count of the
    entries under the cancellation threshold, the exact recomputation of those entries
    only when there are any, then the square root or _exp_into's exponential and the
    cast (one loop with a branch per entry and a scalar exp took 2-4 times as long).
    e, o (float64) and i1, i2 (int64): the caller's scratch, at least row's length."""
    n = row.shape[0]
    xi = xx[gi]
    if metric == COSINE:
        for j in range(n):
            v = 1.0 - np.float64(row[j]) * xi * yy[j]
            row[j] = min(max(v, 0.0), 2.0)
    else:
        nbad = 0
        for j in range(n):
            s = xi + yy[j]
            v = s - 2.0 * np.float64(row[j])
            nbad += v < recompute * s
            e[j] = max(v, 0.0)
        if nbad:
            for j in range(n):
                s = xi + yy[j]
                if s - 2.0 * np.float64(row[j]) < recompute * s:
                    e[j] = max(_sqdist(X[gi], Y[j]), 0.0)
        if metric == EUCLIDEAN:
            for j in range(n):
                row[j] = math.sqrt(e[j])
        elif metric == RBF:
            for j in range(n):
                e[j] = -gamma * e[j]
            _exp_into(e[:n], o[:n], i1[:n], i2[:n])
            for j in range(n):
                row[j] = o[j]
        else:
            for j in range(n):
                row[j] = e[j]
    if same and gi < n:
        row[gi] = 1.0 if metric == RBF else 0.0


@jit(parallel=True)
def _gemm_matrix(Xc, Yc, X, Y, out, xx, yy, metric, gamma, recompute, same, tr):
    """out = the GEMM metric's matrix: each thread takes bands of ``tr`` output rows,
    fills them with its own BLAS call (pinned to one thread by the caller) and finishes
    them right after (_epilogue_row; in cache while tr rows of out fit in L2). BLAS on
    both cores outside the prange, in 838-row blocks, then a parallel epilogue pass,
    took 1.3-2.3x as long: the two libraries' idle threads spun against each other, and
    each block left the caches before its epilogue. A last band of one row joins the
    one before it (a one-row product may take BLAS's matrix-vector path)."""
    m = Xc.shape[0]
    n = Yc.shape[0]
    YcT = Yc.T
    nb = (m + tr - 1) // tr
    if nb > 1 and m - (nb - 1) * tr == 1:
        nb -= 1
    for b in prange(nb):
        i0 = b * tr
        i1 = m if b == nb - 1 else i0 + tr
        blk = out[i0:i1]
        np.dot(Xc[i0:i1], YcT, blk)
        e = np.empty(n)
        o = np.empty(n)
        j1 = np.empty(n, dtype=np.int64)
        j2 = np.empty(n, dtype=np.int64)
        for i in range(i1 - i0):
            _epilogue_row(blk[i], X, Y, xx, yy, metric, gamma, recompute, same, i0 + i,
                          e, o, j1, j2)


@jit()
def _finish(acc, metric, p, gamma):
    if metric == EUCLIDEAN:
        return math.sqrt(acc)
    if metric == RBF:
        return math.exp(-gamma * acc)
    if metric == MINKOWSKI:
        return acc ** (1.0 / p)
    return acc


def _block_width(n, d, itemsize):
    """Y rows per transposed block of the direct loops: TJ, fewer for a small Y (no work
    on padding past round_up(n, 16)) or wide rows (a block stays within 256 KiB, so it
    stays in L2 while a tile's X rows pass over it); a multiple of 16."""
    w = min(TJ, -(-max(n, 1) // 16) * 16, (BLOCK_BYTES // max(d * itemsize, 1)) // 16 * 16)
    return max(16, w)


@jit()
def _direct_row(x, Yt, metric, p, acc):
    """acc[jj] = the raw metric accumulation (in feature order) of the row x against the
    transposed Y block Yt (d, w). The loop over jj is the vector loop; w up to 256 keeps
    the updates of one acc[jj] by consecutive features far apart (16-wide blocks of
    several rows stalled on them: manhattan 5000 x 5000 x 64 took 282-299 ms, now
    105-122)."""
    d, w = Yt.shape
    for jj in range(w):
        acc[jj] = 0.0
    if metric == MANHATTAN:
        for k in range(d):
            xv = x[k]
            yk = Yt[k]
            for jj in range(w):
                acc[jj] += abs(xv - yk[jj])
    elif metric == CHEBYSHEV:
        for k in range(d):
            xv = x[k]
            yk = Yt[k]
            for jj in range(w):
                t = abs(xv - yk[jj])
                acc[jj] = acc[jj] if acc[jj] > t else t
    elif metric == MINKOWSKI:
        for k in range(d):
            xv = x[k]
            yk = Yt[k]
            for jj in range(w):
                acc[jj] += abs(xv - yk[jj]) ** p
    else:
        for k in range(d):
            xv = x[k]
            yk = Yt[k]
            for jj in range(w):
                t = xv - yk[jj]
                acc[jj] += t * t


@jit()
def _transpose_block(Y, j0, Yt):
    """Yt[k, jj] = Y[j0 + jj, k], zero past Y's last row."""
    n, d = Y.shape
    w = Yt.shape[1]
    for k in range(d):
        for jj in range(w):
            j = j0 + jj
            Yt[k, jj] = Y[j, k] if j < n else 0.0


@jit(parallel=True)
def _transposed_blocks(Y, w):
    """Y (n, d) as blocks (ceil(n / w), d, w), each by _transpose_block, made once for
    every row band of the matrix (the matrix is m x n: the copy is small next to it)."""
    n, d = Y.shape
    nbj = (n + w - 1) // w
    Yt = np.empty((nbj, d, w), dtype=Y.dtype)
    for b in prange(nbj):
        _transpose_block(Y, b * w, Yt[b])
    return Yt


@jit(parallel=True)
def _direct_matrix(X, Y, out, metric, p, gamma, same, w):
    m = X.shape[0]
    n = Y.shape[0]
    Yt = _transposed_blocks(Y, w)
    nbj = Yt.shape[0]
    BM = 64
    nbi = (m + BM - 1) // BM
    # tiles in row-band order: each thread takes a contiguous band of output rows
    for t in prange(nbi * nbj):
        i0 = (t // nbj) * BM
        bj = t % nbj
        j0 = bj * w
        nt = min(w, n - j0)
        acc = np.empty(w, dtype=X.dtype)
        for i in range(i0, min(i0 + BM, m)):
            _direct_row(X[i], Yt[bj], metric, p, acc)
            for jj in range(nt):
                v = _finish(np.float64(acc[jj]), metric, p, gamma)
                if same and i == j0 + jj:
                    v = 1.0 if metric == RBF else 0.0
                out[i, j0 + jj] = v


def _centred(X, Y, metric, same):
    """float32 GEMM-trick metrics: mean-centred copies (see _cy_distances._centred)."""
    if X.dtype != np.float32 or metric not in (SQEUCLIDEAN, EUCLIDEAN, RBF) \
            or X.shape[0] == 0 or Y.shape[0] == 0:
        return X, Y
    mu = X.mean(axis=0, dtype=np.float64)
    if not np.isfinite(mu).all():  # NaN or inf in X (check_finite=False): it stays
        return X, Y                # in its own rows, not in every centred row
    Xc = (X - mu).astype(np.float32)
    return Xc, (Xc if same else (Y - mu).astype(np.float32))


def pairwise_distances(X, Y, out, metric, p, gamma, same, recompute, n_threads):
    m, d = X.shape
    with numba_threads(n_threads):
        if uses_gemm(metric, d):
            cos = metric == COSINE
            Xc, Yc = _centred(X, Y, metric, same)
            xx = _row_norms(Xc, cos)
            yy = xx if same else _row_norms(Yc, cos)
            # bands of 64 rows (16, 32, 64 and 128 gave 55, 45, 38-40 and 39 ms for 5000 x
            # 5000 x 64 float32 sqeuclidean), at least eight bands where m allows; from m
            # alone, so that the values do not depend on the thread count
            tr = min(64, max(2, -(-m // 8)))
            with blas_single_thread():
                _gemm_matrix(Xc, Yc, X, Y, out, xx, yy, metric, gamma, recompute, same, tr)
        else:
            _direct_matrix(X, Y, out, metric, p, gamma, same,
                           _block_width(Y.shape[0], d, X.itemsize))
    return out


@jit()
def _better(da, ia, db, ib):
    return da < db or (da == db and ia < ib)


@jit()
def _push(dist, idx, k, dv, iv):
    if not _better(dv, iv, dist[k - 1], idx[k - 1]):
        return
    pos = k - 1
    while pos > 0 and _better(dv, iv, dist[pos - 1], idx[pos - 1]):
        dist[pos] = dist[pos - 1]
        idx[pos] = idx[pos - 1]
        pos -= 1
    dist[pos] = dv
    idx[pos] = iv


@jit()
def _push_window(dist, idx, k, dv, iv, ev, yy, cx, c2, lo, gi):
    """_push of a screening-window candidate (upper key dv, error bound ev): whichever
    candidate misses or leaves the full list lowers lo[gi] to its lower key (upper key
    less twice its bound cx + c2 yy[index]; see _knn_gemm)."""
    jl = idx[k - 1]
    dl = dist[k - 1]
    if not _better(dv, iv, dl, jl):
        low = dv - 2.0 * ev
    else:
        _push(dist, idx, k, dv, iv)
        if jl == np.iinfo(np.intp).max:
            return
        low = dl - 2.0 * (cx + c2 * yy[jl])
    if low < lo[gi]:
        lo[gi] = low


@jit()
def _key_bound(metric, cu, xv):
    """(cx, c2) of a row's key error bound cx + c2 yy[j] (xv: its norm term)."""
    if metric == COSINE:
        return cu, 0.0
    return cu * xv, 2.0 * cu


@jit(inline="always")
def _key_sweep(g, r, c0, c1, j0, xv, yy, metric, cx, c2, worst, keys):
    """keys[c] = the upper key kv + e of columns c0..c1 of row r of the tile g (j0: its
    first Y row); returns how many lower keys kv - e are at most ``worst``. Branch-free:
    it vectorises."""
    hit = 0
    if metric == COSINE:
        for c in range(c0, c1):
            kv = 1.0 - np.float64(g[r, c]) * xv * yy[j0 + c]
            keys[c] = kv + cx
            hit += kv - cx <= worst
    else:
        for c in range(c0, c1):
            kv = yy[j0 + c] - 2.0 * np.float64(g[r, c])
            e = cx + c2 * yy[j0 + c]
            keys[c] = kv + e
            hit += kv - e <= worst
    return hit


@jit()
def _exact(x, y, metric, xv, yv):
    """A GEMM metric's value from the original rows: the squared distance, or the cosine
    distance from an exact dot product and the inverse norms xv, yv (clamped to [0, 2]
    as _epilogue_row's)."""
    if metric != COSINE:
        return _sqdist(x, y)
    s = 0.0
    for q in range(x.shape[0]):
        s += np.float64(x[q]) * np.float64(y[q])
    return min(max(1.0 - s * xv * yv, 0.0), 2.0)


@jit(parallel=True)
def _knn_gemm(Xc, Yc, xx, yy, metric, same, tr, k, cu, bd, bi, lo):
    """The k-lists of the GEMM metrics: each thread takes tiles of ``tr`` X rows and walks
    Y in tiles of TILE_COLS rows, the middle term from BLAS (pinned to one thread by the
    caller) into the thread's own buffer. Per row and chunk of KEY_CHUNK columns, one
    branch-free sweep (it vectorises) computes the selection keys and counts those that
    can enter the list (at most its current k-th key); only chunks with some walk their
    keys into the list, and after the first few chunks of Y almost none have any.
    (BLAS outside the prange with every entry pushed took 27.7 s for 20,000 queries in
    100,000, d = 64; the same merge over the tile's whole width, 6.5 s: OpenBLAS's and
    numba's idle threads spun against each other, and most 4096-column rows had a hit.)
    The lists hold bd.shape[1] >= k entries ordered by upper keys kv + e and take every
    candidate whose lower key kv - e is at most the k-th upper key, e = cx + c2 |y|^2 the
    key's error bound from _key_bound: the exact screening window of _cy_distances._nn,
    whose lists hold the same keys less the row's constant cx (that form, two operations
    per candidate fewer, made this loop 15-20% slower here in A/B runs, for reasons not
    found). lo[i] ends as the least lower key of the candidates that missed or left row
    i's full list (inf if none)."""
    m = Xc.shape[0]
    n = Yc.shape[0]
    k2 = bd.shape[1]
    nb = (m + tr - 1) // tr
    for b in prange(nb):
        i0 = b * tr
        mt = min(tr, m - i0)
        xi = Xc[i0:i0 + mt]
        G = np.empty((mt, TILE_COLS), dtype=Xc.dtype)
        keys = np.empty(TILE_COLS)
        for j0 in range(0, n, TILE_COLS):
            nt = min(TILE_COLS, n - j0)
            if nt == TILE_COLS:
                np.dot(xi, Yc[j0:j0 + nt].T, G)
                g = G
            else:
                g = np.dot(xi, Yc[j0:j0 + nt].T)
            for r in range(mt):
                gi = i0 + r
                dist = bd[gi]
                ids = bi[gi]
                cx, c2 = _key_bound(metric, cu, xx[gi])
                for c0 in range(0, nt, KEY_CHUNK):
                    c1 = min(c0 + KEY_CHUNK, nt)
                    if _key_sweep(g, r, c0, c1, j0, xx[gi], yy, metric, cx, c2,
                                  dist[k - 1], keys) == 0:
                        continue
                    for c in range(c0, c1):
                        # the lower key against the k-th upper key
                        e = cx + c2 * yy[j0 + c]
                        if (same and gi == j0 + c) or keys[c] - 2.0 * e > dist[k - 1]:
                            continue
                        _push_window(dist, ids, k2, keys[c], j0 + c, e, yy, cx, c2, lo, gi)


@jit(parallel=True)
def _knn_redo(Xc, Yc, X, Y, xx, yy, metric, same, rows, thr, cu, bd, bi):
    """The second pass of the rows whose screening window overflowed (see
    _cy_distances._nn): every candidate of row rows[t] whose lower key is at most
    thr[t] (its first pass's k-th upper key) enters the row's emptied list by its exact
    value. Tiles of 64 listed rows against TILE_COLS Y rows, as _knn_gemm's."""
    n = Yc.shape[0]
    nr = rows.shape[0]
    BR = 64
    for b in prange((nr + BR - 1) // BR):
        t0 = b * BR
        mt = min(BR, nr - t0)
        xi = np.empty((mt, Xc.shape[1]), dtype=Xc.dtype)
        for r in range(mt):
            xi[r] = Xc[rows[t0 + r]]
        keys = np.empty(TILE_COLS)
        for j0 in range(0, n, TILE_COLS):
            nt = min(TILE_COLS, n - j0)
            g = np.dot(xi, Yc[j0:j0 + nt].T)
            for r in range(mt):
                gi = rows[t0 + r]
                cx, c2 = _key_bound(metric, cu, xx[gi])
                if _key_sweep(g, r, 0, nt, j0, xx[gi], yy, metric, cx, c2,
                              thr[t0 + r], keys) == 0:
                    continue
                for c in range(nt):
                    # not (lower <= thr): a NaN key (inf - inf) stays out, as in the
                    # first pass
                    if (same and gi == j0 + c) or \
                            not (keys[c] - 2.0 * (cx + c2 * yy[j0 + c]) <= thr[t0 + r]):
                        continue
                    _push(bd[gi], bi[gi], bd.shape[1],
                          _exact(X[gi], Y[j0 + c], metric, xx[gi], yy[j0 + c]), j0 + c)


@jit(parallel=True)
def _direct_topk(X, Y, metric, p, same, w, bd, bi):
    """The k-lists of the direct metrics: 64-row blocks of X, each against every Y block
    transposed into the thread's own (d, w) buffer (n d copies per 64 rows, 1/64 of the
    distance work; no copy of Y), which stays in cache for the block's rows."""
    m, d = X.shape
    n = Y.shape[0]
    k = bd.shape[1]
    BM = 64
    for b in prange((m + BM - 1) // BM):
        acc = np.empty(w, dtype=X.dtype)
        Yt = np.empty((d, w), dtype=X.dtype)
        for j0 in range(0, n, w):
            _transpose_block(Y, j0, Yt)
            for i in range(b * BM, min(b * BM + BM, m)):
                _direct_row(X[i], Yt, metric, p, acc)
                dist = bd[i]
                ids = bi[i]
                for jj in range(min(w, n - j0)):
                    if same and i == j0 + jj:
                        continue
                    v = np.float64(acc[jj])
                    if v <= dist[k - 1]:
                        _push(dist, ids, k, v, j0 + jj)


@jit()
def _fill_nan(dist, idx, k, own, empty):
    """Complete a sorted k-list whose places from some point on are empty (idx >=
    ``empty``: only where fewer than k candidates had a comparable value, NaN from
    check_finite=False) as NumPy's sort orders NaN: last, by index. The candidates left
    out all have NaN values, so the places go to the lowest indices not in the list and
    not ``own`` (the excluded point itself, or -1). The cuda backend compiles the same
    function for the device (_cuda_distances._merge)."""
    j = 0
    for q in range(k):
        if idx[q] < empty:
            continue
        while True:
            if j != own:
                t = 0
                while t < q and idx[t] != j:
                    t += 1
                if t == q:
                    break
            j += 1
        dist[q] = math.nan
        idx[q] = j
        j += 1


@jit(parallel=True)
def _finalize(X, Y, metric, p, redo, same, xx, yy, bd, bi, dist, idx):
    """Each row's survivors (bd.shape[1] of them at most) sorted with ties to the lower
    index, their exact values first computed for the rows where ``redo`` (the GEMM
    metrics' rows, less those the second pass filled exactly; xx, yy: their norm
    terms); the first dist.shape[1] are the result."""
    m, k = bd.shape
    for i in prange(m):
        for q in range(k if redo[i] else 0):
            if bi[i, q] != np.iinfo(np.intp).max:
                bd[i, q] = _exact(X[i], Y[bi[i, q]], metric, xx[i], yy[bi[i, q]])
        for q in range(1, k):
            dv = bd[i, q]
            iv = bi[i, q]
            jj = q
            while jj > 0 and _better(dv, iv, bd[i, jj - 1], bi[i, jj - 1]):
                bd[i, jj] = bd[i, jj - 1]
                bi[i, jj] = bi[i, jj - 1]
                jj -= 1
            bd[i, jj] = dv
            bi[i, jj] = iv
        _fill_nan(bd[i], bi[i], dist.shape[1], i if same else -1, np.iinfo(np.intp).max)
        for q in range(dist.shape[1]):
            dist[i, q] = _finish(bd[i, q], metric, p, 0.0)
            idx[i, q] = bi[i, q]


def nearest_neighbors(X, Y, k, metric, p, same, n_threads):
    m, d = X.shape
    n = Y.shape[0]
    gemm = uses_gemm(metric, d)
    # the GEMM metrics: k + extra entries per list, the exact screening window
    # (the public layer refused k > n - same)
    k2 = min(k + max(8, min(k, 32)), n - int(same)) if gemm else k
    bd = np.full((m, k2), np.inf)
    bi = np.full((m, k2), np.iinfo(np.intp).max, dtype=np.intp)
    dist = np.empty((m, k), dtype=X.dtype)
    idx = np.empty((m, k), dtype=np.intp)
    xx = yy = np.empty(0)
    redo = np.full(m, gemm)  # rows whose survivors' exact values _finalize computes
    with numba_threads(n_threads):
        if gemm:
            cos = metric == COSINE
            Xc, Yc = _centred(X, Y, metric, same)
            xx = _row_norms(Xc, cos)
            yy = xx if same else _row_norms(Yc, cos)
            # row tiles: up to 256 rows, at least four per thread where m allows
            tr = min(256, max(8, -(-m // (4 * numba.get_num_threads()))))
            # the keys' error bound, u = eps / 2: (d + 8) u (|x|^2 + 2 |y|^2) per
            # candidate, (2 d + 16) u for cosine (the window of _cy_distances._nn)
            cu = (d + 8) * float(np.finfo(X.dtype).eps) / (1 if cos else 2)
            lo = np.full(m, np.inf)
            with blas_single_thread():
                _knn_gemm(Xc, Yc, xx, yy, metric, same, tr, k, cu, bd, bi, lo)
                # rows whose window overflowed: a candidate they lost may still be among
                # the k nearest; a second pass fills their lists exactly
                thr = bd[:, k - 1].copy()
                rows = np.flatnonzero((lo < np.inf) & (lo <= thr))
                if rows.size:
                    bd[rows] = np.inf
                    bi[rows] = np.iinfo(np.intp).max
                    _knn_redo(Xc, Yc, X, Y, xx, yy, metric, same, rows, thr[rows], cu,
                              bd, bi)
                    redo[rows] = False
        else:
            _direct_topk(X, Y, metric, p, same, _block_width(n, d, X.itemsize), bd, bi)
        _finalize(X, Y, metric, p, redo, same, xx, yy, bd, bi, dist, idx)
    return dist, idx
