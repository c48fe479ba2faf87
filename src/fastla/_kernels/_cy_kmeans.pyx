# K-means kernels, Cython + OpenMP.
#
# Assignment: X is walked in chunks of CHUNK rows; each chunk's ||c||^2 - 2 x.c block
# (CHUNK x k) comes from one single-threaded BLAS call into a per-thread buffer (the form
# scikit-learn's Lloyd uses, in the data's dtype), then the argmin is taken while the
# block is in cache. Nothing of size n x k is ever allocated.
#
# Lloyd: the argmin of each row is followed at once by adding w x into the centroid sums
# of the row's *group* (fused assign + accumulate, one pass over X). Rows are cut into
# ``n_groups`` contiguous groups of whole CHUNK-row chunks (_group_start), their number
# chosen by the caller (from the shapes and the core count, never from n_threads); each
# group sums its rows in row order into its own float64 buffer (padded to a cache line)
# and the buffers are added in group order. The sums are therefore bitwise the same on
# any number of threads, while the groups still spread over the threads dynamically.
#
# Elkan: scikit-learn's bounds (upper per point, lower per point and centre), exact
# float64 distances, the same group accumulation. k-means++: every local trial of a
# step is evaluated in one pass over X (all trial distances of a row while it is in
# registers), with per-chunk partial potentials added in chunk order.
#
# Kernels do not validate: fastla.kmeans guarantees C-contiguous X (n, d) and centres
# (k, d) of one float dtype, sample weights of that dtype, outputs of the right shapes,
# 1 <= n_groups <= n, candidates inside [0, n), and for ``xpk`` the panels that
# pack_rows or center_pack made of that very X; with ``update``, counts and the totals
# of the labels on entry (lloyd_iter).

from cython.parallel cimport prange, parallel
from libc.math cimport sqrt
from libc.stdlib cimport malloc, calloc, free
from libc.string cimport memcpy, memset
from scipy.linalg.cython_blas cimport sgemm, dgemm

import numpy as np

from .._threads import blas_pinned
from .._validation import empty_output

ctypedef fused floating:
    float
    double

DEF CHUNK = 256   # rows per assignment block (scikit-learn's choice)
# With X's panels, the rows whose sums follow one labels call: up to this many bytes of X
# (the whole group at 100,000 x 32 float32). Longer runs of additions keep the group's
# sum buffer in L1 across more rows; past L2's size the rows would be gone before they
# are added. One-process A/B of the Lloyd pass, 256-row chunks against this: 100,000 x
# 32 k=100 f32 4.22 -> 4.04 ms (2 threads), 7.85 -> 7.50 ms (1); 200,000 x 64 k=256 with
# whole groups (800 KiB of X) instead 33.6 -> 34.5 ms, hence the cap (128 KiB and
# 512 KiB measured the same as 256 KiB on both shapes).
DEF SUMS_BYTES = 256 * 1024
DEF TT = 8        # k-means++ trials evaluated together (one AVX-512 register of doubles)
DEF PAD = 8       # doubles per cache line: group buffers start on their own line


include "_cdecl.pxi"
include "_gemm_tile.pxi"

# The chunks' GEMM: the distance engine's register-blocked tile kernel (_gemm_tile.h) on
# the AVX-512 build (centres packed once per pass), else single-threaded BLAS. Same
# scores either way (sums in feature order, then -2 s + ||c||^2 rounded once). A module
# global so that tests can run both paths.
OWN_GEMM = bool(FASTLA_GEMM_OWN)


cdef floating* _packed_centres(const floating* c, Py_ssize_t k, Py_ssize_t d) noexcept nogil:
    """The centres in the tile kernel's panels, on a cache line (NULL if out of memory:
    BLAS path); released with fastla_free64."""
    cdef floating* cpk = <floating*>fastla_malloc64((k + FASTLA_GEMM_PAD) * d
                                                    * sizeof(floating))
    if cpk != NULL:
        _pack(c, k, d, cpk)
    return cpk


def _panels(Py_ssize_t n, Py_ssize_t d, dtype):
    """An empty array for the panels of n rows of d values (``pack_rows``), or None where
    the own tile kernel is not used (OWN_GEMM false), n is 0, or the copy does not fit in
    memory (the Lloyd passes then run on score blocks). It starts on a cache line, as
    the centred copy does: the labels kernel's vector loads of a panel then never straddle
    two lines (NumPy puts large arrays 16 bytes into one). One-process A/B of the Lloyd
    pass, 100,000 x 32 f32, k = 100 (medians of 40): 4.29 -> 4.14 ms on 2 threads,
    7.64 -> 7.46 ms on one, the panels giving most of it."""
    if not OWN_GEMM or n == 0:
        return None
    try:
        return empty_output(((n + FASTLA_GEMM_PAD) * d,), dtype)
    except MemoryError:
        return None


cdef inline void _scores(const floating* x, const floating* c, const floating* cnorm,
                         floating* buf, int mt, int k, int d, const floating* cpk) noexcept nogil:
    """buf[mt, k] (row-major) = ||c_j||^2 - 2 x_i . c_j: the tile kernel on the packed
    centres cpk (cnorm zero-padded to k + FASTLA_GEMM_PAD), or single-threaded BLAS if NULL."""
    cdef char ta = b'T'
    cdef char tb = b'N'
    cdef float m2_f = -2.0, one_f = 1.0
    cdef double m2_d = -2.0, one_d = 1.0
    cdef int i
    if cpk != NULL:
        if floating is float:
            fastla_gemm_tile_f32_ex(x, mt, d, cpk, k, buf, k, -2.0, cnorm)
        else:
            fastla_gemm_tile_f64_ex(x, mt, d, cpk, k, buf, k, -2.0, cnorm)
        return
    for i in range(mt):
        memcpy(buf + <Py_ssize_t>i * k, cnorm, k * sizeof(floating))
    # column-major view: buf^T (k x mt) = -2 C (k x d) @ X^T (d x mt) + buf^T
    if floating is float:
        sgemm(&ta, &tb, &k, &mt, &d, &m2_f, <float*>c, &d, <float*>x, &d, &one_f,
              <float*>buf, &k)
    else:
        dgemm(&ta, &tb, &k, &mt, &d, &m2_d, <double*>c, &d, <double*>x, &d, &one_d,
              <double*>buf, &k)


cdef extern from "_kmeans_vec.h" nogil:
    int fastla_argmin_f32(const float* row, int k)
    int fastla_argmin_f64(const double* row, int k)
    void fastla_pp_rows_f32(const float* X, Py_ssize_t d, Py_ssize_t i0, Py_ssize_t i1, const double* ct,
                            double* acc, const Py_ssize_t* sel)
    void fastla_pp_rows_f64(const double* X, Py_ssize_t d, Py_ssize_t i0, Py_ssize_t i1, const double* ct,
                            double* acc, const Py_ssize_t* sel)
    Py_ssize_t fastla_pp_screen_f32(const float* X, Py_ssize_t d, Py_ssize_t i0,
                                    Py_ssize_t i1, const float* ctf, const double* closest,
                                    double margin, Py_ssize_t* sel)
    const int FASTLA_PP_F16
    int fastla_pp_f16_copy(const float* X, Py_ssize_t d, Py_ssize_t i0, Py_ssize_t i1,
                           unsigned short* x16, double* e)
    Py_ssize_t fastla_pp_screen_f16(const unsigned short* x16, const double* e,
                                    const float* X, Py_ssize_t d, Py_ssize_t i0, Py_ssize_t i1,
                                    const float* ctf, const double* closest, double margin,
                                    Py_ssize_t* sel)
    void fastla_pp_update_f32(const double* row, const float* w, double* closest,
                              double* cum, Py_ssize_t n)
    void fastla_pp_update_f64(const double* row, const double* w, double* closest,
                              double* cum, Py_ssize_t n)



cdef inline int _argmin(const floating* row, int k) noexcept nogil:
    """First index of the smallest entry, ties to the lower index (vectorised: _kmeans_vec.h)."""
    if floating is float:
        return fastla_argmin_f32(row, k)
    else:
        return fastla_argmin_f64(row, k)


cdef inline double _sqdist(const floating* x, const floating* y, Py_ssize_t d) noexcept nogil:
    """sum((x - y)^2) in float64, four independent partial sums."""
    cdef double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0, t
    cdef Py_ssize_t f = 0
    while f + 4 <= d:
        t = <double>x[f] - <double>y[f]
        s0 += t * t
        t = <double>x[f + 1] - <double>y[f + 1]
        s1 += t * t
        t = <double>x[f + 2] - <double>y[f + 2]
        s2 += t * t
        t = <double>x[f + 3] - <double>y[f + 3]
        s3 += t * t
        f += 4
    while f < d:
        t = <double>x[f] - <double>y[f]
        s0 += t * t
        f += 1
    return (s0 + s1) + (s2 + s3)


cdef void _center_norms(const floating* c, Py_ssize_t k, Py_ssize_t d,
                        floating* out) noexcept nogil:
    cdef Py_ssize_t j, f
    cdef floating s
    for j in range(k):
        s = 0
        for f in range(d):
            s += c[j * d + f] * c[j * d + f]
        out[j] = s


cdef inline void _accumulate(const floating* x, double w, Py_ssize_t d,
                             double* sums) noexcept nogil:
    cdef Py_ssize_t f
    for f in range(d):
        sums[f] += w * <double>x[f]


cdef inline Py_ssize_t _stride(Py_ssize_t k, Py_ssize_t d) noexcept nogil:
    """doubles per group buffer: k*d sums, k weights, then k counts (of the rows with
    a non-zero weight), rounded up to a cache line."""
    return ((k * d + 2 * k + PAD - 1) // PAD) * PAD


cdef inline Py_ssize_t _group_start(Py_ssize_t g, Py_ssize_t n,
                                    Py_ssize_t n_groups) noexcept nogil:
    """First row of group g (g = n_groups: n): the CHUNK-row chunks shared out evenly,
    so that groups start on whole panels of points. Edges inside a panel made the
    labels kernel do both groups' panel (64 groups of 100,000 x 32 f32: 2% more label
    work). One-process A/B of the Lloyd pass there, k = 100 (medians of 40): 3.84 ->
    3.77 ms on 2 threads, 7.75 -> 7.57 ms on one."""
    cdef Py_ssize_t n_chunks = (n + CHUNK - 1) // CHUNK
    return min(n, g * n_chunks // n_groups * CHUNK)


cdef void _merge_groups(const double* gbuf, Py_ssize_t n_groups, Py_ssize_t k,
                        Py_ssize_t d, double* sums, double* weights, double* counts,
                        bint update, int n_threads) noexcept nogil:
    """sums/weights/counts = the group buffers added in group order (parallel over
    centres), or with ``update`` those totals added to them; counts may be NULL (not
    kept). A centre that an update leaves without rows of non-zero weight gets exact
    zeros (its float sums would keep the rounding of every addition and removal)."""
    cdef Py_ssize_t stride = _stride(k, d)
    cdef Py_ssize_t j, g, f, g0
    cdef const double* b
    for j in prange(k, num_threads=n_threads, schedule='static'):
        g0 = 0
        if not update:
            for f in range(d):
                sums[j * d + f] = gbuf[j * d + f]
            weights[j] = gbuf[k * d + j]
            if counts != NULL:
                counts[j] = gbuf[k * d + k + j]
            g0 = 1
        for g in range(g0, n_groups):
            b = gbuf + g * stride
            for f in range(d):
                sums[j * d + f] += b[j * d + f]
            weights[j] += b[k * d + j]
            if counts != NULL:
                counts[j] += b[k * d + k + j]
        if counts != NULL and counts[j] == 0:
            weights[j] = 0
            for f in range(d):
                sums[j * d + f] = 0


cdef inline Py_ssize_t _labels(const floating* xpk, Py_ssize_t d, const floating* c,
                               const floating* cnorm, Py_ssize_t k, Py_ssize_t lo,
                               Py_ssize_t hi, int* labels,
                               const floating* xrows) noexcept nogil:
    """labels[lo:hi] from the panels; returns how many of them changed."""
    if floating is float:
        return fastla_gemm_labels_f32(xpk, d, c, cnorm, k, lo, hi, labels, xrows)
    else:
        return fastla_gemm_labels_f64(xpk, d, c, cnorm, k, lo, hi, labels, xrows)


cdef inline Py_ssize_t _span(Py_ssize_t d, Py_ssize_t itemsize) noexcept nogil:
    """Rows per labels call of _lloyd_group with X's panels: SUMS_BYTES of X, in whole
    CHUNKs."""
    return max(<Py_ssize_t>CHUNK, SUMS_BYTES // (d * itemsize) // CHUNK * CHUNK)


cdef inline void _move_row(const floating* x, Py_ssize_t step, double w, Py_ssize_t k,
                           Py_ssize_t d, int lab, double sign, double* gb) noexcept nogil:
    """A row of weight w (its d values step apart) into (sign 1) or out of (sign -1)
    centre lab's group sums, weight and count."""
    cdef Py_ssize_t f
    cdef double* s = gb + <Py_ssize_t>lab * d
    if step == 1:
        _accumulate(x, sign * w, d, s)
    else:
        for f in range(d):
            s[f] += (sign * w) * <double>x[f * step]
    gb[k * d + lab] += sign * w
    if w != 0:
        gb[k * d + k + lab] += sign


cdef Py_ssize_t _lloyd_group(const floating* X, const floating* w, const floating* C,
                             const floating* cnorm, Py_ssize_t r0, Py_ssize_t r1, int k,
                             int d, floating* buf, int* labels, int* prev, bint update,
                             double* gb, const floating* cpk,
                             const floating* xpk) noexcept nogil:
    """Rows [r0, r1): assign by chunks, then add w x into this group's buffer; returns
    how many of the rows' labels changed. The chunk's labels are all found before any
    row is added, so that the additions' addresses are known early instead of each
    waiting on its own argmin. With X packed (xpk), the labels come straight from
    fastla_gemm_labels (which brings the chunk's rows of X into the outer caches), on
    chunks of up to SUMS_BYTES of X that end on multiples of CHUNK (whole panels of
    points: groups start on whole chunks, _group_start). ``update``: only the rows whose
    label changed are moved, out of their old centre (none for -1) into the new one
    (``prev``: room for the labels of one such chunk)."""
    cdef Py_ssize_t i0, i, step, changed = 0
    cdef int mt, lab
    cdef Py_ssize_t span = _span(d, sizeof(floating))
    cdef Py_ssize_t nr = FASTLA_GEMM_NR_F32 if floating is float else FASTLA_GEMM_NR_F64
    cdef const floating* x
    i0 = r0
    while i0 < r1:
        if xpk != NULL:
            mt = <int>(min((i0 // span + 1) * span, r1) - i0)
            if update:
                memcpy(prev, labels + i0, mt * sizeof(int))
            changed += _labels(xpk, d, C, cnorm, k, i0, i0 + mt, labels,
                               NULL if update else X)
        else:
            mt = <int>min(<Py_ssize_t>CHUNK, r1 - i0)
            _scores(X + i0 * d, C, cnorm, buf, mt, k, d, cpk)
            for i in range(mt):
                lab = _argmin(buf + i * k, k)
                prev[i] = labels[i0 + i]
                changed += prev[i] != lab
                labels[i0 + i] = lab
        if not update:
            for i in range(mt):
                _move_row(X + (i0 + i) * d, 1, <double>w[i0 + i], k, d, labels[i0 + i],
                          1.0, gb)
        else:
            for i in range(mt):
                lab = labels[i0 + i]
                if lab == prev[i]:
                    continue
                # the row from the panel the labels kernel has just read (in cache),
                # else from X's chunk, just read by _scores
                if xpk != NULL:
                    x = xpk + ((i0 + i) // nr * d) * nr + (i0 + i) % nr
                    step = nr
                else:
                    x = X + (i0 + i) * d
                    step = 1
                _move_row(x, step, <double>w[i0 + i], k, d, lab, 1.0, gb)
                if prev[i] >= 0:
                    _move_row(x, step, <double>w[i0 + i], k, d, prev[i], -1.0, gb)
        i0 += mt
    return changed


def kmeans_assign(const floating[:, ::1] X, const floating[:, ::1] centers,
                  int[::1] labels, floating[::1] sq_dist, int n_threads):
    """labels[i] = nearest centre (GEMM form, ties to the lower index); sq_dist[i] = the
    exact squared distance to it (float64 accumulation)."""
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1], k = centers.shape[0]
    cdef Py_ssize_t n_chunks = (n + CHUNK - 1) // CHUNK
    cdef Py_ssize_t ch, i0, i
    cdef int mt, lab
    cdef floating* buf
    cdef floating* cnorm = <floating*>calloc(k + FASTLA_GEMM_PAD, sizeof(floating))
    cdef floating* cpk = NULL
    cdef const floating* xp = &X[0, 0]
    cdef const floating* cp = &centers[0, 0]
    if cnorm == NULL:
        raise MemoryError("k-means centre norms")
    if OWN_GEMM:
        cpk = _packed_centres(cp, k, d)
    try:
        with blas_pinned(cpk == NULL):
          with nogil:
            _center_norms(cp, k, d, cnorm)
            with parallel(num_threads=n_threads):
                buf = <floating*>malloc(CHUNK * k * sizeof(floating))
                for ch in prange(n_chunks, schedule='dynamic'):
                    i0 = ch * CHUNK
                    mt = <int>min(<Py_ssize_t>CHUNK, n - i0)
                    _scores(xp + i0 * d, cp, cnorm, buf, mt, <int>k, <int>d, cpk)
                    for i in range(mt):
                        lab = _argmin(buf + i * k, <int>k)
                        labels[i0 + i] = lab
                        sq_dist[i0 + i] = <floating>_sqdist(xp + (i0 + i) * d, cp + lab * d, d)
                free(buf)
    finally:
        free(cnorm)
        fastla_free64(cpk)


def pack_rows(const floating[:, ::1] X, int n_threads):
    """X in the tile kernel's panels, for ``lloyd_iter``'s ``xpk`` (one copy of X made
    once per fit), or None (see ``_panels``)."""
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1]
    cdef Py_ssize_t ch, i0
    out = _panels(n, d, np.float32 if floating is float else np.float64)
    if out is None:
        return None
    cdef floating[::1] o = out
    cdef const floating* xp = &X[0, 0]
    cdef floating* op = &o[0]
    with nogil:
        for ch in prange((n + CHUNK - 1) // CHUNK, num_threads=n_threads, schedule='static'):
            i0 = ch * CHUNK
            _pack(xp + i0 * d, min(<Py_ssize_t>CHUNK, n - i0), d, op + i0 * d)
    return out


def column_mean(const floating[:, ::1] X):
    """X.mean(axis=0), bitwise: NumPy sums an axis-0 reduction of a C-ordered array row
    after row in the input precision (each column its own sequential sum), then divides
    by n in that precision; here the columns of a row are added together in vector
    registers (100,000 x 32 float32: 0.74 against 1.56 ms, at about the rate X is read
    from memory)."""
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1], i, f
    out = np.zeros(d, dtype=np.float32 if floating is float else np.float64)
    cdef floating[::1] s = out
    cdef const floating* xp
    if n == 0 or d <= 1:  # NumPy's own result: empty input, or one contiguous column
        return np.asarray(X).mean(axis=0)  # (summed pairwise there)
    xp = &X[0, 0]
    with nogil:
        for i in range(n):
            for f in range(d):
                s[f] = s[f] + xp[i * d + f]
        for f in range(d):
            s[f] = s[f] / <floating>n
    return out


def center_pack(const floating[:, ::1] X, const floating[::1] mean, bint pack,
                int n_threads):
    """(X - mean, its panels) in one parallel pass over X: the centred copy (each value
    the same float subtraction as NumPy's ``X - mean``) and, if ``pack``, what
    ``pack_rows`` would make of it (else, or where ``_panels`` gives none, None)."""
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1]
    cdef Py_ssize_t ch, i0, i, f, m
    dt = np.float32 if floating is float else np.float64
    Xc = empty_output((n, d), dt)  # (on a cache line: the sums' loads of its rows)
    xpk = _panels(n, d, dt) if pack else None
    if n == 0:
        return Xc, xpk
    cdef floating[:, ::1] xc = Xc
    cdef floating[::1] pk
    cdef floating* pkp = NULL
    if xpk is not None:
        pk = xpk
        pkp = &pk[0]
    cdef const floating* xp = &X[0, 0]
    cdef const floating* mp = &mean[0]
    cdef floating* cp = &xc[0, 0]
    with nogil:
        for ch in prange((n + CHUNK - 1) // CHUNK, num_threads=n_threads, schedule='static'):
            i0 = ch * CHUNK
            m = min(<Py_ssize_t>CHUNK, n - i0)
            for i in range(i0, i0 + m):
                for f in range(d):
                    cp[i * d + f] = xp[i * d + f] - mp[f]
            if pkp != NULL:
                _pack(cp + i0 * d, m, d, pkp + i0 * d)
    return Xc, xpk


def assign_packed(const floating[:, ::1] X, const floating[:, ::1] centers, int[::1] labels,
                  xpk, int n_threads):
    """labels[i] = nearest centre (the Lloyd pass's scores and ties) from ``pack_rows(X)``:
    k-means' last assignment, which needs no distances."""
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1], k = centers.shape[0]
    cdef Py_ssize_t ch, i0
    cdef const floating[::1] xpv = xpk
    cdef floating* cnorm
    cdef const floating* cp = &centers[0, 0]
    if n == 0:
        return
    cnorm = <floating*>calloc(k + FASTLA_GEMM_PAD, sizeof(floating))
    if cnorm == NULL:
        raise MemoryError("k-means centre norms")
    try:
        with nogil:
            _center_norms(cp, k, d, cnorm)
            for ch in prange((n + CHUNK - 1) // CHUNK, num_threads=n_threads,
                             schedule='dynamic'):
                i0 = ch * CHUNK
                _labels(&xpv[0], d, cp, cnorm, k, i0, min(i0 + CHUNK, n), &labels[0], NULL)
    finally:
        free(cnorm)


def lloyd_iter(const floating[:, ::1] X, const floating[::1] sample_weight,
               const floating[:, ::1] centers, double[:, ::1] sums, double[::1] weights,
               int[::1] labels, int n_groups, int n_threads, xpk=None,
               double[::1] counts=None, bint update=False):
    """One fused Lloyd pass: labels against ``centers``; sums[c] = sum w x,
    weights[c] = sum w and counts[c] = the number of rows with w != 0 (if given) over
    the rows labelled c, bitwise independent of n_threads. With ``update``, sums,
    weights and counts hold those totals for the labels on entry, and only the rows
    whose label changes are moved (the sums then carry the rounding of the moves).
    ``xpk``: ``pack_rows(X)``, or None (the labels then come from chunk score blocks);
    the same labels and sums either way. Returns how many labels changed (none: the
    strict convergence of scikit-learn, found without a copy of the old labels)."""
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1], k = centers.shape[0]
    cdef Py_ssize_t stride = _stride(k, d)
    cdef Py_ssize_t g, changed = 0
    cdef floating* buf
    cdef int* prev
    cdef double* cntp = &counts[0] if counts is not None else NULL
    cdef floating* cnorm = <floating*>calloc(k + FASTLA_GEMM_PAD, sizeof(floating))
    # each group's buffer is zeroed by the thread that fills it, in parallel and into
    # that thread's cache, instead of by calloc in this thread (one-process A/B, 100,000
    # x 32 f32, k = 100: 4.40 -> 4.10 ms per pass on 2 threads, 7.65 -> 7.44 on one)
    cdef double* gbuf = <double*>malloc(n_groups * stride * sizeof(double))
    cdef floating* cpk = NULL
    if cnorm == NULL or gbuf == NULL:
        free(cnorm)
        free(gbuf)
        raise MemoryError("k-means group buffers")
    cdef const floating* xp = &X[0, 0]
    cdef const floating* cp = &centers[0, 0]
    cdef const floating* wp = &sample_weight[0]
    cdef const floating[::1] xpv
    cdef const floating* xpkp = NULL
    if xpk is not None and OWN_GEMM:
        xpv = xpk
        xpkp = &xpv[0]
    if OWN_GEMM and xpkp == NULL:  # (the labels kernel reads the centres' rows)
        cpk = _packed_centres(cp, k, d)
    try:
        with blas_pinned(cpk == NULL and xpkp == NULL):
          with nogil:
            _center_norms(cp, k, d, cnorm)
            with parallel(num_threads=n_threads):
                # score blocks only without the panels (256 x k: a fresh mapping of
                # 256 KiB per thread and pass at k = 256 otherwise)
                buf = <floating*>malloc(CHUNK * k * sizeof(floating)) if xpkp == NULL else NULL
                prev = <int*>malloc(_span(d, sizeof(floating)) * sizeof(int))
                for g in prange(n_groups, schedule='dynamic'):
                    memset(gbuf + g * stride, 0, stride * sizeof(double))
                    changed += _lloyd_group(xp, wp, cp, cnorm,
                                            _group_start(g, n, n_groups),
                                            _group_start(g + 1, n, n_groups), <int>k,
                                            <int>d, buf, &labels[0], prev, update,
                                            gbuf + g * stride, cpk, xpkp)
                free(buf)
                free(prev)
            _merge_groups(gbuf, n_groups, k, d, &sums[0, 0], &weights[0], cntp, update,
                          n_threads)
    finally:
        free(cnorm)
        free(gbuf)
        fastla_free64(cpk)
    return changed


def inertia(const floating[:, ::1] X, const floating[::1] sample_weight,
            const floating[:, ::1] centers, const int[::1] labels, int n_threads):
    """sum_i w_i ||x_i - c_{labels_i}||^2 (float64; chunk partials added in order)."""
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1]
    cdef Py_ssize_t n_chunks = (n + CHUNK - 1) // CHUNK
    cdef Py_ssize_t ch, i
    cdef double s
    cdef double[::1] part = np.zeros(n_chunks)
    cdef const floating* xp = &X[0, 0]
    cdef const floating* cp = &centers[0, 0]
    with nogil:
        for ch in prange(n_chunks, num_threads=n_threads, schedule='static'):
            s = 0.0
            for i in range(ch * CHUNK, min((ch + 1) * CHUNK, n)):
                s = s + <double>sample_weight[i] * _sqdist(xp + i * d, cp + labels[i] * d, d)
            part[ch] = s
        s = 0.0
        for ch in range(n_chunks):
            s += part[ch]
    return s


# ------------------------------------------------------------------------- Elkan
def elkan_init(const floating[:, ::1] X, const floating[:, ::1] centers,
               const double[:, ::1] center_half_distances, int[::1] labels,
               double[::1] upper, double[:, ::1] lower, int n_threads):
    """scikit-learn's _init_bounds_dense: exact distances, skipping centres that the
    triangle inequality already rules out; lower holds every distance computed."""
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1], k = centers.shape[0]
    cdef Py_ssize_t i, j, best
    cdef double dmin, dist
    cdef const floating* xp = &X[0, 0]
    cdef const floating* cp = &centers[0, 0]
    with nogil:
        for i in prange(n, num_threads=n_threads, schedule='static'):
            best = 0
            dmin = sqrt(_sqdist(xp + i * d, cp, d))
            lower[i, 0] = dmin
            for j in range(1, k):
                if dmin > center_half_distances[best, j]:
                    dist = sqrt(_sqdist(xp + i * d, cp + j * d, d))
                    lower[i, j] = dist
                    if dist < dmin:
                        dmin = dist
                        best = j
            labels[i] = <int>best
            upper[i] = dmin


cdef Py_ssize_t _elkan_group(const floating* X, const floating* w, const floating* C,
                             const double* chd, const double* dnext, Py_ssize_t r0,
                             Py_ssize_t r1, Py_ssize_t k, Py_ssize_t d, double* upper,
                             double* lower, int* labels, double* gb) noexcept nogil:
    """Rows [r0, r1); returns how many of their labels changed."""
    cdef Py_ssize_t i, j, changed = 0
    cdef int lab
    cdef double ub, dist
    cdef bint tight
    cdef double* lo
    for i in range(r0, r1):
        ub = upper[i]
        lab = labels[i]
        lo = lower + i * k
        if not (dnext[lab] >= ub):
            tight = False
            for j in range(k):
                if j != lab and ub > lo[j] and ub > chd[lab * k + j]:
                    if not tight:
                        ub = sqrt(_sqdist(X + i * d, C + lab * d, d))
                        lo[lab] = ub
                        tight = True
                    if ub > lo[j] or ub > chd[lab * k + j]:
                        dist = sqrt(_sqdist(X + i * d, C + j * d, d))
                        lo[j] = dist
                        if dist < ub:
                            lab = <int>j
                            ub = dist
            changed += labels[i] != lab
            labels[i] = lab
            upper[i] = ub
        _accumulate(X + i * d, <double>w[i], d, gb + lab * d)
        gb[k * d + lab] += <double>w[i]
    return changed


def elkan_iter(const floating[:, ::1] X, const floating[::1] sample_weight,
               const floating[:, ::1] centers, double[:, ::1] sums, double[::1] weights,
               const double[:, ::1] center_half_distances,
               const double[::1] distance_next_center, double[::1] upper,
               double[:, ::1] lower, int[::1] labels, int n_groups, int n_threads):
    """One Elkan pass (scikit-learn's elkan_iter_chunked_dense with update_centers),
    accumulating sums/weights exactly as lloyd_iter does; returns how many labels
    changed."""
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1], k = centers.shape[0]
    cdef Py_ssize_t stride = _stride(k, d)
    cdef Py_ssize_t g, changed = 0
    cdef double* gbuf = <double*>malloc(n_groups * stride * sizeof(double))
    if gbuf == NULL:
        raise MemoryError("k-means group buffers")
    try:
        with nogil:
            for g in prange(n_groups, num_threads=n_threads, schedule='dynamic'):
                memset(gbuf + g * stride, 0, stride * sizeof(double))  # as in lloyd_iter
                changed += _elkan_group(&X[0, 0], &sample_weight[0], &centers[0, 0],
                                        &center_half_distances[0, 0],
                                        &distance_next_center[0],
                                        _group_start(g, n, n_groups),
                                        _group_start(g + 1, n, n_groups), k, d, &upper[0],
                                        &lower[0, 0], &labels[0], gbuf + g * stride)
            _merge_groups(gbuf, n_groups, k, d, &sums[0, 0], &weights[0], NULL, False,
                          n_threads)
    finally:
        free(gbuf)
    return changed


# -------------------------------------------------------------------- k-means++
#: float32 data: screen the k-means++ trials in float32 and compute exact float64
#: distances only for the rows where a trial may beat the current closest distance
#: (the same values, bitwise: _kmeans_vec.h 2b); the tests switch it off to compare
PP_SCREEN = True


cdef void _pp_chunk(const floating* X, const double* ct, const float* ctf,
                    Py_ssize_t i0, Py_ssize_t i1, Py_ssize_t d, Py_ssize_t t0,
                    Py_ssize_t tn, Py_ssize_t n, const double* closest, const floating* w,
                    double* dist_out, double* pot, bint screen,
                    const unsigned short* x16, const double* e16) noexcept nogil:
    """Rows [i0, i1) (at most CHUNK) against trials t0..t0+tn (tn <= TT), candidates
    transposed in ct[f * TT + jj]: all trial distances of a row in one sweep of its
    features (_kmeans_vec.h, 8 rows at a time on AVX-512, else 4), then min with closest
    and the chunk's partial potentials in row order.

    ``screen`` (float32 data; ctf: the candidates in float32): only the rows the float32
    screen cannot rule out get exact distances; the others keep closest for every trial
    (min(closest, exact) there). margin = (d + 8) 2^-22: four times the float32 sums'
    error bound. With x16 (``plusplus_half``), the screen reads X's half-precision copy
    and its rows' rounding errors e16 instead (_kmeans_vec.h 2c)."""
    cdef double acc[CHUNK * TT]
    cdef double seg[TT * CHUNK]
    cdef Py_ssize_t sel[CHUNK]
    cdef double p[TT]
    cdef double dv, c, wi
    cdef const double* a
    cdef Py_ssize_t i, jj, ns = 0, r = 0
    if floating is float:
        if screen and x16 != NULL:
            ns = fastla_pp_screen_f16(x16, e16, X, d, i0, i1, ctf, closest,
                                      (d + 8) * 2.384185791015625e-07, sel)
            if ns:
                fastla_pp_rows_f32(X, d, 0, ns, ct, acc, sel)
        elif screen:
            ns = fastla_pp_screen_f32(X, d, i0, i1, ctf, closest,
                                      (d + 8) * 2.384185791015625e-07, sel)
            if ns:
                fastla_pp_rows_f32(X, d, 0, ns, ct, acc, sel)
        else:
            fastla_pp_rows_f32(X, d, i0, i1, ct, acc, NULL)
    else:
        fastla_pp_rows_f64(X, d, i0, i1, ct, acc, NULL)
    for jj in range(TT):
        p[jj] = 0.0
    # rows outer, trials inner: the trials' potential sums are independent chains that
    # overlap (one trial at a time would wait on each addition); each sum is still in
    # row order
    # (screened: acc holds the selected rows only, in order; the others keep closest)
    for i in range(i0, i1):
        c = closest[i]
        wi = <double>w[i]
        if floating is float and screen and not (r < ns and sel[r] == i):
            dv = wi * c
            for jj in range(tn):
                seg[jj * CHUNK + (i - i0)] = c
                p[jj] += dv
            continue
        a = acc + (r if floating is float and screen else i - i0) * TT
        r += 1
        for jj in range(tn):
            dv = a[jj] if a[jj] < c else c
            seg[jj * CHUNK + (i - i0)] = dv
            p[jj] += wi * dv
    for jj in range(tn):
        # each trial's segment of rows, streamed to dist_out (the caller fences once per
        # thread when its chunks are done)
        fastla_stream_copy_f64(dist_out + (t0 + jj) * n + i0, seg + jj * CHUNK, i1 - i0)
        pot[jj] = p[jj]


def plusplus_half(const float[:, ::1] X, int n_threads):
    """(x16, e): X in half precision (uint16 bits, (n, d)) and each row's rounding error
    bound e[i] >= ||x_i - x16_i|| (float64), for ``plusplus_trials``' screen; None where
    the build has no F16C, the screen is off, or a value has no finite half (|x| >=
    65520). One parallel pass over X, once per seeding."""
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1], ch
    cdef int bad = 0
    if not FASTLA_PP_F16 or not PP_SCREEN or n == 0:
        return None
    x16 = np.empty((n, d), dtype=np.uint16)
    e = np.empty(n)
    cdef unsigned short[:, ::1] hv = x16
    cdef double[::1] ev = e
    with nogil:
        for ch in prange((n + CHUNK - 1) // CHUNK, num_threads=n_threads, schedule='static'):
            bad += 1 - fastla_pp_f16_copy(&X[0, 0], d, ch * CHUNK, min(n, (ch + 1) * CHUNK),
                                          &hv[0, 0], &ev[0])
    return None if bad else (x16, e)


def plusplus_trials(const floating[:, ::1] X, const Py_ssize_t[::1] candidates,
                    const double[::1] closest, const floating[::1] sample_weight,
                    double[:, ::1] dist_out, int n_threads, half=None):
    """dist_out[j, i] = min(closest[i], ||x_i - X[candidates[j]]||^2); returns the
    potentials sum_i w_i dist_out[j, i] (chunk partials added in chunk order). ``half``:
    ``plusplus_half(X)`` for the float32 screen, or None; the same results either way."""
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1], t = candidates.shape[0]
    cdef Py_ssize_t n_chunks = (n + CHUNK - 1) // CHUNK
    cdef Py_ssize_t ch, t0, tn, f, jj, c
    cdef double[:, ::1] part = np.zeros((n_chunks, t))
    cdef double[::1] ct = np.zeros(d * TT)
    cdef float[::1] ctf = np.zeros(d * TT, dtype=np.float32)
    cdef bint screen = floating is float and PP_SCREEN
    cdef const unsigned short[:, ::1] hv
    cdef const double[::1] ev
    cdef const unsigned short* x16 = NULL
    cdef const double* e16 = NULL
    if screen and half is not None:
        hv, ev = half
        x16, e16 = &hv[0, 0], &ev[0]
    pots = np.zeros(t)
    cdef double[::1] pv = pots
    cdef const floating* xp = &X[0, 0]
    for t0 in range(0, t, TT):
        tn = min(<Py_ssize_t>TT, t - t0)
        for f in range(d):
            for jj in range(TT):
                # padded trials repeat the last candidate; their results are dropped
                c = candidates[t0 + min(jj, tn - 1)]
                ct[f * TT + jj] = <double>X[c, f]
                ctf[f * TT + jj] = <float>X[c, f]
        with nogil, parallel(num_threads=n_threads):
            for ch in prange(n_chunks, schedule='dynamic'):
                _pp_chunk(xp, &ct[0], &ctf[0], ch * CHUNK, min((ch + 1) * CHUNK, n), d,
                          t0, tn, n, &closest[0], &sample_weight[0], &dist_out[0, 0],
                          &part[ch, t0], screen, x16, e16)
            # this thread's streamed stores, ordered before anyone reads dist_out
            fastla_sfence()
    for ch in range(n_chunks):
        for jj in range(t):
            pv[jj] += part[ch, jj]
    return pots


def plusplus_update(const double[::1] row, const floating[::1] sample_weight,
                    double[::1] closest, double[::1] cum):
    """closest[:] = row; cum = cumsum(w * closest) (float64, sequential: bitwise NumPy's
    ``np.cumsum(w.astype(float64) * closest)``), in one pass."""
    cdef Py_ssize_t n = closest.shape[0]
    if n == 0:
        return
    with nogil:
        if floating is float:
            fastla_pp_update_f32(&row[0], &sample_weight[0], &closest[0], &cum[0], n)
        else:
            fastla_pp_update_f64(&row[0], &sample_weight[0], &closest[0], &cum[0], n)


def plusplus_update_blocks(const double[::1] row, const floating[::1] sample_weight,
                           double[::1] closest, double[::1] bsum, int n_threads):
    """closest[:] = row and bsum[b] = sum of w * closest over block b (CHUNK rows, summed
    in row order), blocks in parallel: with ``plusplus_sample`` it replaces
    ``plusplus_update``'s sequential cumulative sum over all n rows (a chain of n
    dependent additions each step) by one over the blocks."""
    cdef Py_ssize_t n = closest.shape[0]
    cdef Py_ssize_t b, i
    cdef double s
    with nogil:
        for b in prange((n + CHUNK - 1) // CHUNK, num_threads=n_threads, schedule='static'):
            s = 0.0
            for i in range(b * CHUNK, min(n, (b + 1) * CHUNK)):
                closest[i] = row[i]
                s = s + <double>sample_weight[i] * row[i]
            bsum[b] = s


def plusplus_sample(const double[::1] closest, const floating[::1] sample_weight,
                    const double[::1] cumb, const double[::1] r, Py_ssize_t[::1] out):
    """out[q] = the first row i whose cumulative weighted distance reaches r[q] (what
    ``np.searchsorted(np.cumsum(w * closest), r)`` returns, clipped to n - 1), from the
    blocks' cumulative sums ``cumb`` (np.cumsum of ``plusplus_update_blocks``' bsum):
    a binary search over the blocks, then a scan of one block's rows."""
    cdef Py_ssize_t n = closest.shape[0], nb = cumb.shape[0]
    cdef Py_ssize_t q, lo, hi, mid, i, b, end
    cdef double run, rq
    with nogil:
        for q in range(r.shape[0]):
            rq = r[q]
            lo = 0
            hi = nb
            while lo < hi:  # first block whose cumulative sum reaches rq
                mid = (lo + hi) // 2
                if cumb[mid] < rq:
                    lo = mid + 1
                else:
                    hi = mid
            b = lo
            if b >= nb:
                out[q] = n - 1
                continue
            run = cumb[b - 1] if b > 0 else 0.0
            end = min(n, (b + 1) * CHUNK)
            out[q] = end - 1  # the block's last row if rounding never reaches rq
            for i in range(b * CHUNK, end):
                run = run + <double>sample_weight[i] * closest[i]
                if run >= rq:
                    out[q] = i
                    break


# ------------------------------------------------------------------- mini-batch
def minibatch_update(const floating[:, ::1] X, const floating[::1] sample_weight,
                     const floating[:, ::1] centers_old, floating[:, ::1] centers_new,
                     floating[::1] weight_sums, const int[::1] labels, int n_threads):
    """scikit-learn's _minibatch_update_dense, parallel over centres, float64 inside."""
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1], k = centers_old.shape[0]
    cdef Py_ssize_t j, i, f
    cdef double wsum, total
    cdef double* acc
    with nogil, parallel(num_threads=n_threads):
        acc = <double*>malloc(d * sizeof(double))
        for j in prange(k, schedule='dynamic'):
            wsum = 0.0
            for f in range(d):
                acc[f] = 0.0
            for i in range(n):
                if labels[i] == j:
                    wsum = wsum + <double>sample_weight[i]
                    _accumulate(&X[i, 0], <double>sample_weight[i], d, acc)
            if wsum > 0.0:
                total = <double>weight_sums[j] + wsum
                for f in range(d):
                    centers_new[j, f] = <floating>(
                        (<double>centers_old[j, f] * <double>weight_sums[j] + acc[f]) / total)
                weight_sums[j] = <floating>total
            else:
                for f in range(d):
                    centers_new[j, f] = centers_old[j, f]
        free(acc)
