"""K-means kernels, Numba backend: the entries of ``_cy_kmeans.pyx`` with the same
arguments, arithmetic and reduction order.

Assignment: rows in blocks shared out to ``n_threads`` Python threads; per block, the
``x . c`` term from NumPy's BLAS pinned to one thread (the same ``gemm('T', 'N')`` the
Cython kernel calls; never from inside a prange), then a nogil Numba epilogue while the
block is in cache: argmin of ``||c||^2 - 2 x.c`` in the data's dtype (ties to the lower
index, vectorised as integer min-reductions) and the winner's exact squared distance
(float64, the Cython kernel's four partial sums). Python threads rather than a prange
epilogue between multi-threaded BLAS calls: the two pools' spin-waiting threads starve
each other on few cores (4-60x slower, measured on 2 cores).

Lloyd / Elkan accumulation: rows are cut into ``n_groups`` contiguous groups of whole
256-row chunks (the Cython kernel's edges); a prange
over groups sums each group's rows in row order into its own float64 buffer, and the
buffers are added in group order, so sums and weights are bitwise the same on any
number of threads. k-means++: one pass over X per call, all trials of a sub-block of
rows at once; per-chunk (256 rows) partial potentials added in chunk order. Kernels do
not validate.
"""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import get_num_threads, prange

from .._threads import blas_single_thread, numba_threads
from ._numba_common import jit

CHUNK = 256  # rows per inertia / k-means++ chunk (fixed: part of the result's definition)
BLOCK = 1 << 17  # GEMM block: at most this many rows x centres entries (in cache)
BLOCK_ROWS = 512
SUB = 64  # k-means++ rows per transposed sub-block
PAD = 8  # float64 per cache line: group buffers start on their own line


# ------------------------------------------------------------------------ helpers
@jit()
def _sqdist(X, i, C, j):
    """sum((X[i] - C[j])^2) in float64, four partial sums (the Cython order)."""
    d = X.shape[1]
    s0 = s1 = s2 = s3 = 0.0
    f = 0
    while f + 4 <= d:
        t = np.float64(X[i, f]) - np.float64(C[j, f])
        s0 += t * t
        t = np.float64(X[i, f + 1]) - np.float64(C[j, f + 1])
        s1 += t * t
        t = np.float64(X[i, f + 2]) - np.float64(C[j, f + 2])
        s2 += t * t
        t = np.float64(X[i, f + 3]) - np.float64(C[j, f + 3])
        s3 += t * t
        f += 4
    while f < d:
        t = np.float64(X[i, f]) - np.float64(C[j, f])
        s0 += t * t
        f += 1
    return (s0 + s1) + (s2 + s3)


@jit()
def _center_norms(C):
    """||c_j||^2 in C's dtype, summed in feature order (as the Cython kernel)."""
    k, d = C.shape
    out = np.empty(k, dtype=C.dtype)
    for j in range(k):
        s = C[j, 0] * C[j, 0]
        for f in range(1, d):
            s += C[j, f] * C[j, f]
        out[j] = s
    return out


@jit(nogil=True)
def _assign_rows(G, keys, cn, top, X, C, i0, labels, sq_dist, want_sq):
    """Rows i0.. of the GEMM block G (G[r, j] = x_{i0+r} . c_j, ``keys`` the same memory
    viewed as signed ints of the same width, ``top`` the largest such int): labels and,
    if asked, the exact squared distance to the winner. Returns how many labels changed.

    The scores ||c||^2 - 2 x.c are stored back into G. A float's bits, with the
    magnitude bits flipped when negative, order like the float (the scores are never
    NaN nor -0), so the minimum and then the first index reaching it are two integer
    min-reductions, which LLVM vectorises (float min-reductions it does not)."""
    mt, k = G.shape
    changed = 0
    for r in range(mt):
        for j in range(k):
            G[r, j] = cn[j] - (G[r, j] + G[r, j])
        m = top
        for j in range(k):
            b = keys[r, j]
            key = b ^ top if b < 0 else b
            m = key if key < m else m
        lab = k
        for j in range(k):
            b = keys[r, j]
            key = b ^ top if b < 0 else b
            c = j if key == m else k
            lab = c if c < lab else lab
        changed += labels[i0 + r] != lab
        labels[i0 + r] = lab
        if want_sq:
            sq_dist[i0 + r] = _sqdist(X, i0 + r, C, lab)
    return changed


@jit(nogil=True)
def _move_row(X, i, wi, lab, sign, gb, k):
    """Row i of weight wi into (sign 1) or out of (sign -1) centre lab's group sums,
    weight and count (of the rows with a non-zero weight): the Cython _move_row."""
    d = X.shape[1]
    kd = k * d
    base = lab * d
    for f in range(d):
        gb[base + f] += (sign * wi) * np.float64(X[i, f])
    gb[kd + lab] += sign * wi
    if wi != 0:
        gb[kd + k + lab] += sign


@jit(nogil=True)
def _accumulate_rows(X, w, labels, prev, update, r0, r1, gb, k):
    """gb[:k*d] += w x per centre, gb[k*d:k*d+k] += w and gb[k*d+k:k*d+2k] += (w != 0),
    rows r0..r1-1 in row order; with ``update``, only the rows whose label changed from
    prev, moved out of the old centre (none for -1) into the new one."""
    for i in range(r0, r1):
        lab = labels[i]
        wi = np.float64(w[i])
        if not update:
            _move_row(X, i, wi, lab, 1.0, gb, k)
        elif lab != prev[i]:
            _move_row(X, i, wi, lab, 1.0, gb, k)
            if prev[i] >= 0:
                _move_row(X, i, wi, prev[i], -1.0, gb, k)


def _assign(X, C, labels, sq_dist, want_sq, n_threads):
    """Labels (and sq_dist) by blocks of rows shared out to ``n_threads`` Python
    threads: per block a single-threaded BLAS call for x.c, then the nogil epilogue
    while the block is in cache (the Cython kernel's layout). BLAS and Numba never
    alternate their own thread pools: on few cores their spin-waiting threads starve
    each other (measured 4-60x slower than this on 2 cores). Returns how many labels
    changed."""
    n = X.shape[0]
    k = C.shape[0]
    cn = _center_norms(C)
    ktype = np.int32 if X.dtype == np.float32 else np.int64
    top = ktype(np.iinfo(ktype).max)
    step = max(16, min(BLOCK_ROWS, BLOCK // k))
    n_blocks = (n + step - 1) // step
    todo = iter(range(n_blocks))  # shared by the threads: each next() is atomic
    Ct = C.T

    def work():
        buf = np.empty(min(step, n) * k, dtype=X.dtype)
        changed = 0
        for b in todo:
            i0 = b * step
            mt = min(step, n - i0)
            G = buf[:mt * k].reshape(mt, k)
            np.dot(X[i0:i0 + mt], Ct, out=G)
            changed += _assign_rows(G, G.view(ktype), cn, top, X, C, i0, labels, sq_dist,
                                    want_sq)
        return changed

    nt = min(int(n_threads), n_blocks)
    with blas_single_thread():
        if nt <= 1:
            return work()
        with ThreadPoolExecutor(nt) as ex:
            return sum(f.result() for f in [ex.submit(work) for _ in range(nt)])


@jit()
def _group_start(g, n, n_groups):
    """First row of group g (g = n_groups: n): whole CHUNK-row chunks shared out evenly
    (the Cython kernel's group edges)."""
    n_chunks = (n + CHUNK - 1) // CHUNK
    return min(n, g * n_chunks // n_groups * CHUNK)


@jit(parallel=True)
def _accumulate(X, w, labels, prev, update, gbuf, k):
    """gbuf[g] = group g's sums of w x per centre (k*d), of w (k) and of w != 0 (k), in
    row order (with ``update``: of the moves, _accumulate_rows)."""
    n = X.shape[0]
    n_groups = gbuf.shape[0]
    for g in prange(n_groups):
        _accumulate_rows(X, w, labels, prev, update, _group_start(g, n, n_groups),
                         _group_start(g + 1, n, n_groups), gbuf[g], k)


@jit(parallel=True)
def _merge_groups(gbuf, sums, weights, counts, update):
    """sums/weights/counts = the group buffers added in group order (parallel over
    centres), or with ``update`` added to them in that order; a centre left without
    rows of non-zero weight gets exact zeros (the Cython _merge_groups)."""
    k, d = sums.shape
    n_groups = gbuf.shape[0]
    kd = k * d
    for j in prange(k):
        g0 = 0
        if not update:
            for f in range(d):
                sums[j, f] = gbuf[0, j * d + f]
            weights[j] = gbuf[0, kd + j]
            counts[j] = gbuf[0, kd + k + j]
            g0 = 1
        for g in range(g0, n_groups):
            for f in range(d):
                sums[j, f] += gbuf[g, j * d + f]
            weights[j] += gbuf[g, kd + j]
            counts[j] += gbuf[g, kd + k + j]
        if counts[j] == 0:
            weights[j] = 0.0
            for f in range(d):
                sums[j, f] = 0.0


def _sums(X, w, labels, sums, weights, n_groups, n_threads, counts=None, prev=None):
    """sums/weights (and counts) by the deterministic group layout (see the module
    doc); with ``prev`` (the labels before the pass), an update of them (lloyd_iter)."""
    k, d = sums.shape
    stride = ((k * d + 2 * k + PAD - 1) // PAD) * PAD
    gbuf = np.zeros((int(n_groups), stride))
    update = prev is not None
    counts = np.empty(k) if counts is None else counts
    with numba_threads(n_threads):
        _accumulate(X, w, labels, labels if prev is None else prev, update, gbuf, k)
        _merge_groups(gbuf, sums, weights, counts, update)


# ------------------------------------------------------------------ Lloyd entries
def kmeans_assign(X, centers, labels, sq_dist, n_threads):
    """labels[i] = nearest centre (GEMM form, ties to the lower index); sq_dist[i] = the
    exact squared distance to it (float64 accumulation, cast to X's dtype)."""
    _assign(X, centers, labels, sq_dist, True, n_threads)


def lloyd_iter(X, sample_weight, centers, sums, weights, labels, n_groups, n_threads,
               counts=None, update=False):
    """Labels against ``centers``; sums[c] = sum w x, weights[c] = sum w and counts[c]
    = the number of rows with w != 0 (if given) over the rows labelled c, bitwise
    independent of n_threads (group order, see the module doc). With ``update``, they
    hold those totals for the labels on entry and only the rows whose label changes
    are moved. Returns how many labels changed."""
    prev = labels.copy() if update else None
    changed = _assign(X, centers, labels, np.empty(0, dtype=X.dtype), False, n_threads)
    _sums(X, sample_weight, labels, sums, weights, n_groups, n_threads, counts, prev)
    return changed


@jit(parallel=True)
def _inertia(X, w, C, labels):
    n = X.shape[0]
    n_chunks = (n + CHUNK - 1) // CHUNK
    part = np.empty(n_chunks)
    for ch in prange(n_chunks):
        s = 0.0
        for i in range(ch * CHUNK, min((ch + 1) * CHUNK, n)):
            s = s + np.float64(w[i]) * _sqdist(X, i, C, labels[i])
        part[ch] = s
    total = 0.0
    for ch in range(n_chunks):
        total += part[ch]
    return total


def inertia(X, sample_weight, centers, labels, n_threads):
    """sum_i w_i ||x_i - c_{labels_i}||^2 (float64; 256-row chunk partials in order)."""
    with numba_threads(n_threads):
        return float(_inertia(X, sample_weight, centers, labels))


# -------------------------------------------------------------------------- Elkan
@jit(parallel=True)
def _elkan_init(X, C, chd, labels, upper, lower):
    n = X.shape[0]
    k = C.shape[0]
    for i in prange(n):
        best = 0
        dmin = np.sqrt(_sqdist(X, i, C, 0))
        lower[i, 0] = dmin
        for j in range(1, k):
            if dmin > chd[best, j]:
                dist = np.sqrt(_sqdist(X, i, C, j))
                lower[i, j] = dist
                if dist < dmin:
                    dmin = dist
                    best = j
        labels[i] = best
        upper[i] = dmin


def elkan_init(X, centers, center_half_distances, labels, upper, lower, n_threads):
    """scikit-learn's _init_bounds_dense: exact distances, skipping centres the triangle
    inequality rules out; lower[i, j] is written for every distance computed (only)."""
    with numba_threads(n_threads):
        _elkan_init(X, centers, center_half_distances, labels, upper, lower)


@jit(parallel=True)
def _elkan_bounds(X, C, chd, dnext, upper, lower, labels):
    n = X.shape[0]
    k = C.shape[0]
    changed = 0
    for i in prange(n):
        ub = upper[i]
        lab = labels[i]
        if not (dnext[lab] >= ub):
            tight = False
            for j in range(k):
                if j != lab and ub > lower[i, j] and ub > chd[lab, j]:
                    if not tight:
                        ub = np.sqrt(_sqdist(X, i, C, lab))
                        lower[i, lab] = ub
                        tight = True
                    if ub > lower[i, j] or ub > chd[lab, j]:
                        dist = np.sqrt(_sqdist(X, i, C, j))
                        lower[i, j] = dist
                        if dist < ub:
                            lab = j
                            ub = dist
            changed += labels[i] != lab
            labels[i] = lab
            upper[i] = ub
    return changed


def elkan_iter(X, sample_weight, centers, sums, weights, center_half_distances,
               distance_next_center, upper, lower, labels, n_groups, n_threads):
    """One Elkan pass (scikit-learn's elkan_iter_chunked_dense, update_centers=True);
    sums/weights accumulated exactly as lloyd_iter; returns how many labels changed."""
    with numba_threads(n_threads):
        changed = _elkan_bounds(X, centers, center_half_distances, distance_next_center,
                                upper, lower, labels)
    _sums(X, sample_weight, labels, sums, weights, n_groups, n_threads)
    return int(changed)


# ---------------------------------------------------------------------- k-means++
@jit(parallel=True)
def _pp(X, cand, closest, w, dist_out, part, n_workers):
    """Each of n_workers walks its 256-row chunks in sub-blocks of SUB rows, transposed to
    float64 (f, row) so that every trial's distances vectorise over the rows; every
    trial of a row is done while the sub-block is in L1 (one pass over X)."""
    n, d = X.shape
    t = cand.shape[0]
    n_chunks = part.shape[0]
    nw = min(n_workers, n_chunks)
    for wkr in prange(nw):
        xt = np.empty((d, SUB))
        acc = np.empty((t, SUB))
        p = np.empty(t)
        for ch in range(wkr, n_chunks, nw):
            p[:] = 0.0
            for r0 in range(ch * CHUNK, min((ch + 1) * CHUNK, n), SUB):
                m = min(SUB, n - r0)
                for i in range(m):
                    for f in range(d):
                        xt[f, i] = X[r0 + i, f]
                acc[:, :m] = 0.0
                for f in range(d):
                    for j in range(t):
                        cjf = cand[j, f]
                        for i in range(m):
                            dl = xt[f, i] - cjf
                            acc[j, i] += dl * dl
                for i in range(m):
                    ci = closest[r0 + i]
                    wi = np.float64(w[r0 + i])
                    for j in range(t):
                        dv = acc[j, i] if acc[j, i] < ci else ci
                        dist_out[j, r0 + i] = dv
                        p[j] += wi * dv
            for j in range(t):
                part[ch, j] = p[j]


@jit()
def _sum_parts(part):
    n_chunks, t = part.shape
    pots = np.zeros(t)
    for ch in range(n_chunks):
        for j in range(t):
            pots[j] += part[ch, j]
    return pots


def plusplus_trials(X, candidates, closest, sample_weight, dist_out, n_threads):
    """dist_out[j, i] = min(closest[i], ||x_i - X[candidates[j]]||^2) (exact, float64);
    returns pots[j] = sum_i w_i dist_out[j, i] (256-row chunk partials in chunk order)."""
    n = X.shape[0]
    cand = X[candidates].astype(np.float64)
    part = np.empty(((n + CHUNK - 1) // CHUNK, candidates.shape[0]))
    with numba_threads(n_threads):
        _pp(X, cand, closest, sample_weight, dist_out, part, get_num_threads())
    return _sum_parts(part)


@jit(nogil=True)
def _pp_update(row, w, closest, cum):
    s = 0.0
    for i in range(closest.shape[0]):
        v = row[i]
        closest[i] = v
        p = np.float64(w[i]) * v
        s = s + p if i else p
        cum[i] = s


def plusplus_update(row, sample_weight, closest, cum):
    """closest[:] = row; cum = cumsum(w * closest) in float64 (NumPy's order)."""
    _pp_update(row, sample_weight, closest, cum)


# --------------------------------------------------------------------- mini-batch
@jit()
def _by_label(labels, k):
    """Row indices grouped by label, in row order within a label (counting sort)."""
    n = labels.shape[0]
    start = np.zeros(k + 1, dtype=np.intp)
    for i in range(n):
        start[labels[i] + 1] += 1
    for j in range(k):
        start[j + 1] += start[j]
    pos = start[:k].copy()
    order = np.empty(n, dtype=np.intp)
    for i in range(n):
        order[pos[labels[i]]] = i
        pos[labels[i]] += 1
    return start, order


@jit(parallel=True)
def _minibatch(X, w, old, new, ws, labels):
    d = X.shape[1]
    k = old.shape[0]
    start, order = _by_label(labels, k)
    for j in prange(k):
        acc = np.zeros(d)
        wsum = 0.0
        for q in range(start[j], start[j + 1]):
            i = order[q]
            wi = np.float64(w[i])
            wsum = wsum + wi
            for f in range(d):
                acc[f] += wi * np.float64(X[i, f])
        if wsum > 0.0:
            ws_old = np.float64(ws[j])
            total = ws_old + wsum
            for f in range(d):
                new[j, f] = (np.float64(old[j, f]) * ws_old + acc[f]) / total
            ws[j] = total
        else:
            for f in range(d):
                new[j, f] = old[j, f]


def minibatch_update(X, sample_weight, centers_old, centers_new, weight_sums, labels,
                     n_threads):
    """scikit-learn's _minibatch_update_dense, parallel over centres, float64 inside
    (the Cython kernel's arithmetic: (old * ws + sum w x) / (ws + sum w))."""
    with numba_threads(n_threads):
        _minibatch(X, sample_weight, centers_old, centers_new, weight_sums, labels)
