# Distance engine, Cython + OpenMP.
#
# One tiled engine for every metric: a tile of X rows against a tile of Y rows gets its
# middle term from a GEMM (sqeuclidean, euclidean, cosine, rbf: ``X_t @ Y_t.T`` by the
# tile kernel of _gemm_tile.h on the AVX-512 build, else by scipy's cython_blas, one BLAS
# thread per tile) or from a direct loop (manhattan, chebyshev,
# minkowski, and euclidean when few features: _direct.h), then a fused epilogue (norms, clamp,
# sqrt/exp, cast) and a reducer: write into ``out`` or keep the k best per row.
#
# Precision: the GEMM trick ||x||^2 + ||y||^2 - 2 x.y cancels when the distance is
# small next to the norms. Entries with d^2 < RECOMPUTE * (||x||^2 + ||y||^2) are
# recomputed directly as sum((x - y)^2) in float64; top-k survivors are always
# recomputed exactly before the final sort. Norms and epilogues run in float64.
#
# Kernels do not validate: the public layer (fastla.distances) guarantees C-contiguous
# X (m, d) and Y (n, d) of one dtype, out (m, n) C-contiguous of that dtype, k <= n.

from cython.parallel cimport prange, parallel, threadid
from libc.math cimport sqrt, fabs, exp, pow, INFINITY, NAN
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy, memset
from cpython.pyport cimport PY_SSIZE_T_MAX
from scipy.linalg.cython_blas cimport sgemm, dgemm

import numpy as np

from .._threads import blas_pinned

ctypedef fused floating:
    float
    double

# metric codes (must match fastla.distances.METRIC_CODES)
DEF SQEUCLIDEAN = 0
DEF EUCLIDEAN = 1
DEF COSINE = 2
DEF MANHATTAN = 3
DEF CHEBYSHEV = 4
DEF MINKOWSKI = 5
DEF RBF = 6

DEF TILE = 256    # rows per tile, both sides (256x256 doubles = 512 KiB: L2)

# direct-kernel outputs at least this large (beyond the last-level cache) are streamed
# to memory (the GEMM path's are not: see _pairwise)
STREAM_BYTES = 32 << 20


include "_cdecl.pxi"
include "_gemm_tile.pxi"

cdef extern from "_gemm_tile.h" nogil:
    int fastla_rbf_row_f32(const float* g, float* row, Py_ssize_t nt, float xi,
                           const float* yn, float thr, float gamma)
    int fastla_rbf_row_f64(const double* g, double* row, Py_ssize_t nt, double xi,
                           const double* yn, double thr, double gamma)

# The tiles' GEMM: fastla's own register-blocked kernel (_gemm_tile.h) on the AVX-512
# build, where it beats a BLAS call per tile (no packing of x, no call overhead; same
# feature-order sums), else single-threaded BLAS. A module global so that tests can run
# both paths.
OWN_GEMM = bool(FASTLA_GEMM_OWN)
# Rows per tile of the fused squared/plain euclidean path (at most TILE; the tiles stay
# TILE columns wide). The first tile of a row band touches that band's fresh output pages,
# which the OS zeroes 2 MiB at a time as they fault; 64 rows x 5000 float64 columns is
# about one such page, so the band's other tiles overwrite the zeroed lines while they
# are still in cache. 256-row bands spanned five pages: 5000 x 5000 x 64 into a fresh
# output 49.5 -> 46.4 ms float64, 22.6 -> 21.8 ms float32 sqeuclidean (medians,
# alternating), no change into out=; the values are the same bitwise (tested).
FUSED_ROWS = 64
# Euclidean's square roots in the fused tiles: taken by the next register block's feature
# loop (_gemm_tile.h's FASTLA_GEMM_SQRT_STEP) when True, right after each block's own
# products when False. The values are the same bitwise (tested).
DEFER_SQRT = True


cdef inline void _gemm(const floating* x, const floating* y, floating* c, int mt, int nt,
                       int d, int ldc, floating* ypk) noexcept nogil:
    """c[mt, nt] (row-major, ld ldc) = x[mt, d] @ y[nt, d].T: the own tile GEMM when a
    packing buffer ypk is given, else single-threaded BLAS."""
    cdef char ta = b'T'
    cdef char tb = b'N'
    cdef float one_f = 1.0, zero_f = 0.0
    cdef double one_d = 1.0, zero_d = 0.0
    if ypk != NULL:
        if floating is float:
            fastla_gemm_pack_f32(y, nt, d, ypk)
            fastla_gemm_tile_f32(x, mt, d, ypk, nt, c, ldc)
        else:
            fastla_gemm_pack_f64(y, nt, d, ypk)
            fastla_gemm_tile_f64(x, mt, d, ypk, nt, c, ldc)
        return
    # column-major view: C^T (nt x mt) = Y (nt x d) @ X^T (d x mt)
    if floating is float:
        sgemm(&ta, &tb, &nt, &mt, &d, &one_f, <float*>y, &d, <float*>x, &d, &zero_f,
              <float*>c, &ldc)
    else:
        dgemm(&ta, &tb, &nt, &mt, &d, &one_d, <double*>y, &d, <double*>x, &d, &zero_d,
              <double*>c, &ldc)


cdef inline void _gemm_dist(const floating* x, Py_ssize_t mt, Py_ssize_t d,
                            const floating* yp, Py_ssize_t nt, floating* c, Py_ssize_t ldc,
                            const floating* xn, const floating* yn, double thr, int root,
                            double gamma, unsigned char* low) noexcept nogil:
    if floating is float:
        fastla_gemm_tile_f32_dist(x, mt, d, yp, nt, c, ldc, xn, yn, <float>thr, root,
                                  <float>gamma, low)
    else:
        fastla_gemm_tile_f64_dist(x, mt, d, yp, nt, c, ldc, xn, yn, thr, root, gamma, low)


cdef inline double _sqdist_exact(const floating* x, const floating* y, Py_ssize_t d) noexcept nogil:
    cdef double s = 0.0, t
    cdef Py_ssize_t k
    for k in range(d):
        t = <double>x[k] - <double>y[k]
        s += t * t
    return s


cdef inline double _cos_exact(const floating* x, const floating* y, Py_ssize_t d, double xv,
                             double yv) noexcept nogil:
    """The cosine distance from an exact float64 dot product and the inverse norms xv,
    yv (0 for zero vectors: distance 1), clamped to [0, 2] as _epilogue's."""
    cdef double s = 0.0, v
    cdef Py_ssize_t k
    for k in range(d):
        s += <double>x[k] * <double>y[k]
    v = 1.0 - s * xv * yv
    return 0.0 if v < 0.0 else (2.0 if v > 2.0 else v)


cdef inline double _epilogue(double g, double xx, double yy, double recompute,
                             const floating* x, const floating* y, Py_ssize_t d, int metric,
                             double gamma) noexcept nogil:
    """Distance (or kernel value) from the GEMM term g = x.y and the norms."""
    cdef double d2
    if metric == COSINE:
        # xx, yy hold 1/||x||, 1/||y|| (0 for zero vectors: distance 1, as scikit-learn)
        d2 = 1.0 - g * xx * yy
        if d2 < 0.0:
            d2 = 0.0
        elif d2 > 2.0:
            d2 = 2.0
        return d2
    d2 = xx + yy - 2.0 * g
    if d2 < recompute * (xx + yy):
        d2 = _sqdist_exact(x, y, d)
    if d2 < 0.0:
        d2 = 0.0
    if metric == EUCLIDEAN:
        return sqrt(d2)
    if metric == RBF:
        return exp(-gamma * d2)
    return d2


cdef void _epilogue_row(const floating* g, floating* row, Py_ssize_t nt, double xi,
                        const double* yy, double thr, int metric, double gamma,
                        const floating* x, const floating* y, Py_ssize_t d,
                        floating xif, const floating* yf) noexcept nogil:
    """One tile row: the GEMM terms g[j] = x.y (in the thread's cache-resident tile) ->
    distances written once to ``row``. One branch-free sweep (it vectorises) computes
    the values and flags any entry under the cancellation threshold; only the entries
    under it in a flagged row are then redone by the scalar loop with the exact
    recomputation (the whole row was, before: with float32's threshold most rows of
    random data are flagged, and RBF's scalar exp on all their entries took twice the
    tile's time). RBF runs on xif, yf (the norms in the input's type; NULL otherwise)."""
    cdef Py_ssize_t j
    cdef int bad = 0
    cdef double d2
    if metric == COSINE:
        for j in range(nt):
            # clamps written so that a NaN (check_finite=False) passes through
            d2 = 1.0 - <double>g[j] * xi * yy[j]
            d2 = 0.0 if d2 < 0.0 else d2
            row[j] = <floating>(2.0 if d2 > 2.0 else d2)
        return
    if metric == EUCLIDEAN:
        for j in range(nt):
            d2 = xi + yy[j] - 2.0 * <double>g[j]
            bad |= d2 < thr * (xi + yy[j])
            row[j] = <floating>sqrt(0.0 if d2 < 0.0 else d2)
    elif metric == SQEUCLIDEAN:
        for j in range(nt):
            d2 = xi + yy[j] - 2.0 * <double>g[j]
            bad |= d2 < thr * (xi + yy[j])
            row[j] = <floating>(0.0 if d2 < 0.0 else d2)
    elif floating is float:  # RBF: the vector exp of _gemm_tile.h, on xif, yf: the norms
        bad = fastla_rbf_row_f32(g, row, nt, xif, yf, <float>thr, <float>gamma)
    else:
        bad = fastla_rbf_row_f64(g, row, nt, xif, yf, thr, gamma)
    if bad:
        for j in range(nt):
            if xi + yy[j] - 2.0 * <double>g[j] < thr * (xi + yy[j]):
                row[j] = <floating>_epilogue(g[j], xi, yy[j], thr, x, y + j * d, d,
                                             metric, gamma)


cdef void _redo_low(floating* row, Py_ssize_t nt, double xi, const double* yy, double thr,
                    int metric, double gamma, const floating* x, const floating* y,
                    Py_ssize_t d) noexcept nogil:
    """A row that fastla_gemm_tile_*_dist flagged: every entry whose squared distance
    lies under thr (|x|^2 + |y|^2), with a margin for the rounding of the stored value,
    is recomputed exactly from the original data. The RBF kernel stores v = exp(-gamma
    e), gamma >= 0 (the public layer's check), decreasing in e: every e <= t has v >=
    exp(-g t) (less the margin, 8 units in the last place of v below 1, for v's
    rounding). Entries with 1 - v > g t + margin are skipped first without an exp (1 -
    exp(-g t) <= g t), the rest by that test; the bound alone let every entry of a
    flagged row through once g t >= 1 (float32 at d >~ 400, or a large gamma). gamma = 0
    gives exactly 1 everywhere. (float32 gamma is at most FLT_MAX: the public layer runs
    larger ones in float64.)"""
    cdef Py_ssize_t j
    cdef double v, e, t
    cdef double ulp8 = 8.0 * (2.0 ** -24 if floating is float else 2.0 ** -53)
    if metric == RBF and gamma == 0.0:
        return
    for j in range(nt):
        v = <double>row[j]
        t = 1.001 * thr * (xi + yy[j])
        if metric == RBF:
            if 1.0 - v > gamma * t + ulp8 or v < exp(-gamma * t) - ulp8:
                continue
        elif (v * v if metric == EUCLIDEAN else v) > t:
            continue
        e = _sqdist_exact(x, y + j * d, d)
        row[j] = <floating>(sqrt(e) if metric == EUCLIDEAN else
                            (exp(-gamma * e) if metric == RBF else e))


cdef inline double _finish_direct(double acc, int metric, double p, double gamma) noexcept nogil:
    if metric == EUCLIDEAN:
        return sqrt(acc)
    if metric == RBF:
        return exp(-gamma * acc)
    if metric == MINKOWSKI:
        return pow(acc, 1.0 / p)
    return acc


# the direct kernels' block shape (Cython's range() needs a literal step): TJ Y rows per
# transposed block, at most TM X rows per step; the C compiler checks them against
# _direct.h's FASTLA_TJ / FASTLA_TM below
DEF TJ = 16
DEF TM = 8

cdef extern from *:
    """
    #include "_direct.h"
    typedef char fastla_direct_shape_matches[(FASTLA_TJ == 16 && FASTLA_TM == 8) ? 1 : -1];
    """

cdef extern from "_direct.h" nogil:
    ctypedef struct fastla_l1_aux:
        const double* s
        const double* t
        const double* sy
        const double* ty
    # kind: 0 squared differences, 1 manhattan, 2 chebyshev, 3 manhattan by the min
    # identity (float64; aux: the rows' sums and thresholds, see _l1_sums)
    void fastla_direct_f32(int kind, const float* X, Py_ssize_t d, Py_ssize_t i0,
                           Py_ssize_t mt, const float* Yt, float* acc, float* out,
                           Py_ssize_t ldo, int stream, const fastla_l1_aux* aux)
    void fastla_direct_f64(int kind, const double* X, Py_ssize_t d, Py_ssize_t i0,
                           Py_ssize_t mt, const double* Yt, double* acc, double* out,
                           Py_ssize_t ldo, int stream, const fastla_l1_aux* aux)


cdef void _minkowski_block(const floating* X, const floating* Yt, Py_ssize_t i0,
                           Py_ssize_t mt, Py_ssize_t d, double p, floating* acc) noexcept nogil:
    """acc[r * TJ + jj] = sum_k |x - y|^p (scalar pow: its cost dominates any blocking)."""
    cdef Py_ssize_t r, k, jj
    cdef floating xv
    cdef floating pp = <floating>p
    for r in range(0, mt):
        for jj in range(TJ):
            acc[r * TJ + jj] = 0
        for k in range(d):
            xv = X[(i0 + r) * d + k]
            for jj in range(TJ):
                acc[r * TJ + jj] += pow(fabs(xv - Yt[k * TJ + jj]), pp)


cdef bint _direct_block(const floating* X, const floating* Yt, Py_ssize_t i0, Py_ssize_t mt,
                        Py_ssize_t nt, Py_ssize_t d, int metric, double p, floating* acc,
                        floating* out, Py_ssize_t ldo, bint stream, const fastla_l1_aux* l1,
                        Py_ssize_t jb) noexcept nogil:
    """acc[mt, TJ] = raw metric accumulations of X rows i0.. against a transposed Y block.

    Yt is (d, TJ): column jj holds Y row j0 + jj (zero-padded past the end). The blocks
    are the vector kernels of _direct.h (up to TM X rows by TJ columns in registers), pow for
    minkowski. Manhattan and chebyshev sums are final: a full block (nt == TJ) is written
    straight to ``out`` (row r at out + r * ldo; NULL: never; with streaming stores
    where ``stream`` and the row's 16 values are 64-byte aligned) and True returned;
    otherwise the sums are in ``acc`` for the caller's finishing loop.
    l1 (NULL: unused): manhattan runs by the min identity (_direct.h, kind 3) with the
    rows' sums and thresholds of ``_l1_sums`` (the Y arrays from column 0; this block
    starts at column jb).
    """
    cdef floating* dst = out if nt == TJ and (metric == MANHATTAN or metric == CHEBYSHEV) \
        else NULL
    cdef int kind = 1 if metric == MANHATTAN else (2 if metric == CHEBYSHEV else 0)
    cdef fastla_l1_aux aux
    if l1 != NULL and metric == MANHATTAN:
        kind = 3
        aux.s = l1.s
        aux.t = l1.t
        aux.sy = l1.sy + jb
        aux.ty = l1.ty + jb
    if metric == MINKOWSKI:
        _minkowski_block(X, Yt, i0, mt, d, p, acc)
    elif floating is float:
        fastla_direct_f32(kind, X, d, i0, mt, Yt, acc, dst, ldo, stream, &aux)
    else:
        fastla_direct_f64(kind, X, d, i0, mt, Yt, acc, dst, ldo, stream, &aux)
    return dst != NULL


cdef void _transpose_block(const floating* Y, Py_ssize_t j0, Py_ssize_t nt, Py_ssize_t d,
                           floating* Yt) noexcept nogil:
    """Yt[k, jj] = Y[j0 + jj, k] for jj < nt, 0 for nt <= jj < TJ."""
    cdef Py_ssize_t k, jj
    for jj in range(TJ):
        if jj < nt:
            for k in range(d):
                Yt[k * TJ + jj] = Y[(j0 + jj) * d + k]
        else:
            for k in range(d):
                Yt[k * TJ + jj] = 0


cdef void _norms(const floating* A, Py_ssize_t m, Py_ssize_t d, int metric, double* out,
                 int n_threads) noexcept nogil:
    """Squared row norms in float64 (inverse norms for cosine)."""
    cdef Py_ssize_t i, k
    cdef double s
    for i in prange(m, num_threads=n_threads, schedule='static'):
        s = 0.0
        for k in range(d):
            s = s + <double>A[i * d + k] * <double>A[i * d + k]
        if metric == COSINE:
            out[i] = 1.0 / sqrt(s) if s > 0.0 else 0.0
        else:
            out[i] = s


# float64 manhattan runs by the min identity (_direct.h, kind 3) for up to this many
# features: its threshold factor K = (3 d + 2) 2^-13 1.01 is then at most 0.19, so a
# pair keeps the fast result unless its distance is below 0.19 (ax + ay) (random data:
# a third of it or more). A module global so that tests can run both paths.
L1_MIN_MAX_D = 512
L1_MIN = True


cdef const fastla_l1_aux* _l1_aux(const double[:, ::1] l1x, const double[:, ::1] l1y,
                                  fastla_l1_aux* l1):
    """Point ``l1`` at ``_l1_sums``' arrays; NULL when there are none."""
    if l1x is None:
        return NULL
    l1.s = &l1x[0, 0]
    l1.t = &l1x[1, 0]
    l1.sy = &l1y[0, 0]
    l1.ty = &l1y[1, 0]
    return l1


cdef void _abs_sums(const double* A, Py_ssize_t m, Py_ssize_t d, double K, double* s,
                    double* t, int n_threads) noexcept nogil:
    """s[i] = sum_k A[i, k], t[i] = K sum_k |A[i, k]|, each summed in feature order."""
    cdef Py_ssize_t i, k
    cdef double a, b
    for i in prange(m, num_threads=n_threads, schedule='static'):
        a = 0.0
        b = 0.0
        for k in range(d):
            a = a + A[i * d + k]
            b = b + fabs(A[i * d + k])
        s[i] = a
        t[i] = K * b


def _l1_sums(X, Y, int metric, bint same, int n_threads):
    """The min identity's inputs for float64 manhattan (else (None, None)): (2, m) with
    X's row sums and thresholds K sum |x|, and (2, n + TJ) the same for Y, zero-padded
    for the last partial column block (see fastla_l1_aux in _direct.h)."""
    cdef Py_ssize_t m = X.shape[0], n = Y.shape[0], d = X.shape[1]
    if not L1_MIN or metric != MANHATTAN or X.dtype != np.float64 \
            or not 0 < d <= L1_MIN_MAX_D or m == 0 or n == 0:
        return None, None
    cdef double K = (3 * d + 2) * 2.0 ** -13 * 1.01
    cdef const double[:, ::1] Xv = X
    cdef const double[:, ::1] Yv = Y
    cdef double[:, ::1] lx = np.empty((2, m))
    cdef double[:, ::1] ly = np.zeros((2, n + TJ))
    with nogil:
        _abs_sums(&Xv[0, 0], m, d, K, &lx[0, 0], &lx[1, 0], n_threads)
    if same:  # Y=None: the same rows, summed once
        ly.base[:, :n] = lx.base
    else:
        with nogil:
            _abs_sums(&Yv[0, 0], n, d, K, &ly[0, 0], &ly[1, 0], n_threads)
    return lx.base, ly.base


def uses_gemm(int metric, int d):
    """Whether the engine computes ``metric`` through GEMM for ``d`` features."""
    if metric == COSINE:
        return True
    if metric in (SQEUCLIDEAN, EUCLIDEAN, RBF):
        return d > 16
    return False


def _pairwise(const floating[:, ::1] X, const floating[:, ::1] Y, const floating[:, ::1] Xo,
              const floating[:, ::1] Yo, floating[:, ::1] out, int metric, double p, double gamma,
              bint same, double recompute, bint stream, bint own, const double[:, ::1] l1x,
              const double[:, ::1] l1y, int n_threads):
    """Fill ``out[i, j]`` with the distance (or RBF value) between X[i] and Y[j]. IN: X
    (m, d), Y (n, d); OUT: out (m, n). ``same``: Y is X (exact zeros on the diagonal).
    ``stream``: the direct kernels write whole aligned 16-value blocks with streaming
    stores (for outputs larger than the caches). The GEMM path always writes its
    finished rows with ordinary stores: in A/B runs on 5000 x 5000 outputs, streaming
    them from a per-thread row buffer was no faster into ``out=`` and 1-5% slower into
    fresh outputs (euclidean float64 53.1-54.0 against 50.5-50.9 ms), while the direct
    kernels gained from it (manhattan 56-57 against 60-63 ms). ``own``: the tiles' GEMM is
    _gemm_tile.h's (else BLAS, which the caller pins to one thread). ``l1x``, ``l1y``:
    ``_l1_sums`` of X and Y, or None."""
    cdef Py_ssize_t m = X.shape[0], n = Y.shape[0], d = X.shape[1]
    if m == 0 or n == 0:
        return
    cdef bint gemm = uses_gemm(metric, d)
    # squared and plain euclidean, and the RBF kernel, with the own tile kernel: the values
    # are finished in its registers (fastla_gemm_tile_*_dist) against a Y packed once for
    # all tiles
    cdef bint fused = gemm and own and (metric == SQEUCLIDEAN or metric == EUCLIDEAN
                                        or metric == RBF)
    cdef Py_ssize_t rows_i = min(max(<Py_ssize_t>FUSED_ROWS, 1), TILE) if fused else TILE
    # the tile kernel's root: 0 squared, 1 square roots at once, 2 pipelined, 3 exp(-gamma e)
    cdef int root = ((2 if DEFER_SQRT else 1) if metric == EUCLIDEAN else
                     (3 if metric == RBF else 0))
    cdef Py_ssize_t tiles_i = (m + rows_i - 1) // rows_i, tiles_j = (n + TILE - 1) // TILE
    cdef Py_ssize_t t, ti, tj, i0, j0, mt, nt, i, j, jb, r, jj
    cdef floating* ypall = NULL
    cdef floating* xn = NULL
    cdef floating* yn = NULL
    cdef unsigned char* low
    cdef double* xx = NULL
    cdef double* yy = NULL
    cdef floating* buf
    cdef floating* acc
    cdef floating* tile
    cdef floating* dst
    cdef const floating* xp = &X[0, 0]
    cdef const floating* yp = &Y[0, 0]
    cdef const floating* xo = &Xo[0, 0]
    cdef const floating* yo = &Yo[0, 0]
    cdef floating* op = &out[0, 0]
    cdef double diag = 1.0 if metric == RBF else 0.0
    cdef floating* ypk
    cdef fastla_l1_aux l1
    cdef const fastla_l1_aux* l1p = _l1_aux(l1x, l1y, &l1)
    if gemm:
        xx = <double*>malloc(m * sizeof(double))
        yy = <double*>malloc(n * sizeof(double))
        if xx == NULL or yy == NULL:
            free(xx); free(yy)
            raise MemoryError()
        with nogil:
            _norms(xp, m, d, metric, xx, n_threads)
            _norms(yp, n, d, metric, yy, n_threads)
    if fused or (gemm and metric == RBF):
        # the norms in the input's type: the fused tiles' and the RBF row epilogue's
        ypall = (<floating*>fastla_malloc64((n + FASTLA_GEMM_PAD) * d * sizeof(floating))
                 if fused else NULL)
        xn = <floating*>malloc(m * sizeof(floating))
        yn = <floating*>malloc((n + FASTLA_GEMM_PAD) * sizeof(floating))
        if (fused and ypall == NULL) or xn == NULL or yn == NULL:
            fastla_free64(ypall); free(xn); free(yn); free(xx); free(yy)
            raise MemoryError()
        with nogil:
            for i in range(m):
                xn[i] = <floating>xx[i]
            for j in range(n + FASTLA_GEMM_PAD):
                yn[j] = <floating>yy[j] if j < n else 0
    if fused:
        with nogil:
            for tj in prange(tiles_j, num_threads=n_threads, schedule='static'):
                j0 = tj * TILE
                _pack(yp + j0 * d, min(TILE, n - j0), d, ypall + j0 * d)
    try:
        with nogil, parallel(num_threads=n_threads):
            buf = <floating*>malloc(d * TJ * sizeof(floating))
            acc = <floating*>malloc((TILE + TM) * TJ * sizeof(floating))
            tile = <floating*>malloc(TILE * TILE * sizeof(floating)) if gemm and not fused else NULL
            ypk = (<floating*>fastla_malloc64((TILE + FASTLA_GEMM_PAD) * d * sizeof(floating))
                   if gemm and own and not fused else NULL)
            low = <unsigned char*>malloc(TILE) if fused else NULL
            # static: each thread takes a contiguous band of output rows, so two threads
            # do not fault the same fresh (huge) pages of a new output at the same time
            for t in prange(tiles_i * tiles_j, schedule='static'):
                ti = t // tiles_j
                tj = t % tiles_j
                i0 = ti * rows_i
                j0 = tj * TILE
                mt = min(rows_i, m - i0)
                nt = min(TILE, n - j0)
                if fused:
                    memset(low, 0, mt)
                    _gemm_dist(xp + i0 * d, mt, d, ypall + j0 * d, nt, op + i0 * n + j0, n,
                               xn + i0, yn + j0, recompute, root, gamma, low)
                    for i in range(i0, i0 + mt):
                        if low[i - i0]:
                            _redo_low(op + i * n + j0, nt, xx[i], yy + j0, recompute,
                                      metric, gamma, xo + i * d, yo + j0 * d, d)
                        if same and j0 <= i < j0 + nt:
                            op[i * n + i] = <floating>diag
                elif gemm:
                    # GEMM into the thread's tile (stays in L2), then one pass writes the
                    # finished values to the output: the output is written exactly once
                    _gemm(xp + i0 * d, yp + j0 * d, tile, mt, nt, d, TILE, ypk)
                    for i in range(i0, i0 + mt):
                        dst = op + i * n + j0
                        _epilogue_row(tile + (i - i0) * TILE, dst, nt, xx[i],
                                      yy + j0, recompute, metric, gamma, xo + i * d,
                                      yo + j0 * d, d, xn[i] if xn != NULL else 0,
                                      yn + j0 if yn != NULL else NULL)
                        if same and j0 <= i < j0 + nt:
                            dst[i - j0] = <floating>diag
                else:
                    for jb in range(j0, j0 + nt, TJ):
                        _transpose_block(yp, jb, min(TJ, j0 + nt - jb), d, buf)
                        if _direct_block(xp, buf, i0, mt, min(TJ, j0 + nt - jb), d, metric,
                                         p, acc, op + i0 * n + jb, n, stream, l1p, jb):
                            continue
                        for r in range(mt):
                            for jj in range(min(TJ, j0 + nt - jb)):
                                op[(i0 + r) * n + jb + jj] = <floating>_finish_direct(
                                    acc[r * TJ + jj], metric, p, gamma)
                if same and ti == tj and not gemm:
                    for i in range(i0, i0 + mt):
                        op[i * n + i] = <floating>diag
            if stream:
                fastla_sfence()
            free(buf)
            free(acc)
            free(tile)
            fastla_free64(ypk)
            free(low)
    finally:
        free(xx)
        free(yy)
        fastla_free64(ypall)
        free(xn)
        free(yn)


cdef inline bint _better(double da, Py_ssize_t ia, double db, Py_ssize_t ib) noexcept nogil:
    """(da, ia) sorts before (db, ib): smaller distance, then lower index."""
    return da < db or (da == db and ia < ib)


cdef inline void _push(double* dist, Py_ssize_t* idx, int k, double dv, Py_ssize_t iv) noexcept nogil:
    """Insert (dv, iv) into the sorted k-lists if it beats the current worst."""
    cdef int pos
    if not _better(dv, iv, dist[k - 1], idx[k - 1]):
        return
    pos = k - 1
    while pos > 0 and _better(dv, iv, dist[pos - 1], idx[pos - 1]):
        dist[pos] = dist[pos - 1]
        idx[pos] = idx[pos - 1]
        pos -= 1
    dist[pos] = dv
    idx[pos] = iv


cdef inline void _push_window(double* dist, Py_ssize_t* idx, int k, double sv,
                              Py_ssize_t iv, double tv, const double* ya, const double* yb,
                              double* lo) noexcept nogil:
    """_push of a screening-window candidate (keys sv, tv: see _nn): whichever candidate
    misses or leaves the full list lowers ``lo[0]`` to its key t, so that the caller can
    tell whether one it lost could still be among the k nearest."""
    cdef Py_ssize_t jl = idx[k - 1]
    cdef double dl = dist[k - 1], low
    if not _better(sv, iv, dl, jl):
        low = tv
    else:
        _push(dist, idx, k, sv, iv)
        if jl == PY_SSIZE_T_MAX:
            return
        low = dl - (ya[jl] - yb[jl])
    if low < lo[0]:
        lo[0] = low


cdef inline double _exact(const floating* x, const floating* y, Py_ssize_t d, int metric,
                          double xv, double yv) noexcept nogil:
    """A GEMM metric's value from the original rows (xv, yv: the norm terms, read for
    cosine only): the squared distance, or the cosine distance."""
    if metric == COSINE:
        return _cos_exact(x, y, d, xv, yv)
    return _sqdist_exact(x, y, d)


cdef inline void _fill_nan(double* dist, Py_ssize_t* idx, int k, Py_ssize_t own) noexcept nogil:
    """Complete a sorted k-list that has empty places (only where fewer than k candidates
    had a comparable value: NaN from check_finite=False) as NumPy's sort orders NaN:
    last, by index. The candidates left out all have NaN values, so the places go to the
    lowest indices not in the list (and not ``own``, the excluded point itself, or -1)."""
    cdef int q, t
    cdef Py_ssize_t j = 0
    for q in range(k):
        if idx[q] != PY_SSIZE_T_MAX:
            continue
        while True:
            if j != own:
                t = 0
                while t < q and idx[t] != j:
                    t = t + 1
                if t == q:
                    break
            j = j + 1
        dist[q] = NAN
        idx[q] = j
        j = j + 1


cdef inline double _bound2(bint cosine, double cu, double xv) noexcept nogil:
    """2 cx, twice the row's constant part of the screening keys' error bound (see _nn;
    xv: the row's squared norm, unread for cosine)."""
    return 2.0 * cu if cosine else cu * xv


cdef inline bint _keys(const floating* row, Py_ssize_t nt, double xi, const double* ya,
                       const double* yb, int metric, double worst, double* keys) noexcept nogil:
    """keys[c] = the key s of tile entry c (see _nn); True if any entry's key t is at
    most ``worst``: only those can enter the list. Branch-free: vectorises."""
    cdef Py_ssize_t c
    cdef double kv
    cdef int hit = 0
    if metric == COSINE:
        for c in range(nt):
            kv = 1.0 - <double>row[c] * xi * ya[c]
            keys[c] = kv
            hit |= kv <= worst
    else:
        for c in range(nt):
            keys[c] = ya[c] - 2.0 * <double>row[c]
            hit |= yb[c] - 2.0 * <double>row[c] <= worst
    return hit != 0


cdef inline double _low_key(const floating* row, Py_ssize_t c, const double* yb, int metric,
                            const double* keys) noexcept nogil:
    """Tile entry c's key t, as _keys computes it (2 g is exact, so contracting yb - 2 g
    into a fused multiply-add cannot change it)."""
    if metric == COSINE:
        return keys[c]
    return yb[c] - 2.0 * <double>row[c]


def _nn(const floating[:, ::1] X, const floating[:, ::1] Y, const floating[:, ::1] Xo,
        const floating[:, ::1] Yo,
        int k, int metric, double p, bint same, floating[:, ::1] out_dist, Py_ssize_t[:, ::1] out_idx,
        bint own, const double[:, ::1] l1x, const double[:, ::1] l1y, int n_threads):
    """For each X row, the k nearest Y rows (sorted; ties to the lower index), without
    the m x n matrix: per-thread tiles of TILE x TILE, then an exact re-computation of
    the survivors. ``same``: Y is X and each row's own index is excluded.

    The GEMM metrics screen candidates by a key from the GEMM form: kv = |y|^2 - 2 x.y
    for squared and plain euclidean, 1 - x.y / (|x| |y|) for cosine. Its error is at
    most about d u (|x|^2 + 2 |y|^2) for the first (u = eps / 2: the GEMM's sums in any
    order, and the norms' own rounding), and the float32 engine's centred copies move
    each squared distance by up to 4 u (|x|^2 + |y|^2) from the original data's; e =
    cx + c2 |y|^2 with cx = (d + 8) u |x|^2 and c2 = (d + 8) eps covers both, per
    candidate. For cosine (not centred) it is at most about (2 d + 5) u: e = cx = (d + 8)
    eps, c2 = 0. The lists hold k2 = k + extra entries ordered by the upper key kv + e,
    and take every candidate whose lower key kv - e is at most the list's k-th upper
    key U: k entries then certainly beat each candidate left out. (One bound for all
    candidates, from the largest |y|^2, let one far outlier open the window of every
    row: numba's kNN took 3.3x as long.) Per row, cx is a constant, so the lists hold
    s = kv + c2 |y|^2 = ya - 2 x.y (upper key less cx, ya = (1 + c2) |y|^2) and compare
    t = yb - 2 x.y (lower key plus cx, yb = (1 - c2) |y|^2) with s_k + 2 cx: two
    operations per candidate, ya and yb made once per call (cosine: s = t = kv).

    Unless the window overflowed, the exact values of the list's entries, sorted with
    ties to the lower index, are the exact answer. It overflowed where a candidate that
    missed or left the full list has its key t at most s_k + 2 cx at the end (more than
    ``extra`` candidates within the bound at once: many points at nearly the k-th
    distance). Those rows, copied together, take a second pass over Y through the GEMM
    tiles, in which every candidate with t at most that threshold (the true k nearest
    among them) enters the emptied list by its exact value. That costs at most the
    first pass again plus the exact values of the candidates within the bound (an exact
    pass over all of Y for those rows instead made 2,000 queries in 20,000 rows of 100
    distinct points 10x slower; a second pass of the whole 256-row tile for each
    overflowed row, with lists of k entries for cosine, 1.65x the time on random
    data)."""
    cdef Py_ssize_t m = X.shape[0], n = Y.shape[0], d = X.shape[1]
    if m == 0 or k == 0:
        return
    cdef bint gemm = uses_gemm(metric, d)
    cdef bint cosine = metric == COSINE
    cdef int k2 = k + max(8, min(k, 32)) if gemm else k
    cdef double eps = 2.0 ** -23 if floating is float else 2.0 ** -52
    cdef double cu = (d + 8) * eps  # the keys' error bound per unit (see the docstring)
    cdef double c2 = 0.0 if cosine else cu
    cdef double w2
    cdef Py_ssize_t tiles_i = (m + TILE - 1) // TILE
    cdef Py_ssize_t ti, i0, mt, j0, nt, r, c, jb, jj, q
    cdef Py_ssize_t nf, f
    cdef Py_ssize_t* fr
    cdef floating* xr
    cdef double* xx = NULL
    cdef double* yy = NULL
    cdef double* ya = NULL
    cdef double* yb = NULL
    cdef floating* tile
    cdef floating* ypk
    cdef floating* buf
    cdef floating* acc
    cdef double* bd
    cdef double* keys
    cdef double* lo
    cdef Py_ssize_t* bi
    cdef Py_ssize_t iv
    cdef double dv
    cdef fastla_l1_aux l1
    cdef const fastla_l1_aux* l1p = _l1_aux(l1x, l1y, &l1)
    cdef const floating* xp = &X[0, 0]
    cdef const floating* yp = &Y[0, 0]
    cdef const floating* xo = &Xo[0, 0]
    cdef const floating* yo = &Yo[0, 0]
    if k2 > n - same:  # (the public layer refused k > n - same)
        k2 = <int>(n - same)  # the list holds every candidate: nothing to certify
    xx = <double*>malloc(m * sizeof(double))
    yy = <double*>malloc(n * sizeof(double))
    if gemm and not cosine:
        ya = <double*>malloc(n * sizeof(double))
        yb = <double*>malloc(n * sizeof(double))
    else:
        ya = yb = yy
    if xx == NULL or yy == NULL or ya == NULL or yb == NULL:
        if ya != yy:
            free(ya)
        if yb != yy:
            free(yb)
        free(xx); free(yy)
        raise MemoryError()
    try:
        with nogil:
            if gemm:
                _norms(xp, m, d, metric, xx, n_threads)
                _norms(yp, n, d, metric, yy, n_threads)
                if not cosine:
                    for q in range(n):
                        ya[q] = (1.0 + c2) * yy[q]
                        yb[q] = (1.0 - c2) * yy[q]
        with nogil, parallel(num_threads=n_threads):
            tile = <floating*>malloc(TILE * TILE * sizeof(floating))
            ypk = (<floating*>fastla_malloc64((TILE + FASTLA_GEMM_PAD) * d * sizeof(floating))
                   if gemm and own else NULL)
            buf = <floating*>malloc(d * TJ * sizeof(floating))
            acc = <floating*>malloc((TILE + TM) * TJ * sizeof(floating))
            bd = <double*>malloc(TILE * k2 * sizeof(double))
            bi = <Py_ssize_t*>malloc(TILE * k2 * sizeof(Py_ssize_t))
            keys = <double*>malloc(TILE * sizeof(double))
            # the screening window's per-row least lost key, and the second pass's rows
            lo = <double*>malloc(TILE * sizeof(double)) if gemm else NULL
            fr = <Py_ssize_t*>malloc(TILE * sizeof(Py_ssize_t)) if gemm else NULL
            xr = <floating*>malloc(TILE * d * sizeof(floating)) if gemm else NULL
            for ti in prange(tiles_i, schedule='dynamic'):
                i0 = ti * TILE
                mt = min(TILE, m - i0)
                for q in range(mt * k2):
                    bd[q] = INFINITY
                    bi[q] = PY_SSIZE_T_MAX
                for r in range(mt if gemm else 0):
                    lo[r] = INFINITY
                for j0 in range(0, n, TILE):
                    nt = min(TILE, n - j0)
                    if gemm:
                        _gemm(xp + i0 * d, yp + j0 * d, tile, mt, nt, d, TILE, ypk)
                        for r in range(mt):
                            w2 = _bound2(cosine, cu, xx[i0 + r])
                            # keys in one vectorised sweep that also tells whether any can
                            # enter the row's list; most rows of most tiles have none
                            if _keys(tile + r * TILE, nt, xx[i0 + r], ya + j0, yb + j0,
                                     metric, bd[r * k2 + k - 1] + w2, keys):
                                for c in range(nt):
                                    if same and i0 + r == j0 + c:
                                        continue
                                    dv = _low_key(tile + r * TILE, c, yb + j0, metric, keys)
                                    if dv <= bd[r * k2 + k - 1] + w2:
                                        _push_window(bd + r * k2, bi + r * k2, k2, keys[c],
                                                     j0 + c, dv, ya, yb, lo + r)
                    else:
                        for jb in range(j0, j0 + nt, TJ):
                            _transpose_block(yp, jb, min(TJ, j0 + nt - jb), d, buf)
                            _direct_block(xp, buf, i0, mt, min(TJ, j0 + nt - jb), d, metric,
                                          p, acc, NULL, 0, False, l1p, jb)
                            for r in range(mt):
                                for jj in range(min(TJ, j0 + nt - jb)):
                                    if same and i0 + r == jb + jj:
                                        continue
                                    _push(bd + r * k2, bi + r * k2, k2, acc[r * TJ + jj],
                                          jb + jj)
                # rows whose window overflowed: lo[r] becomes their threshold s_k + 2 cx,
                # their lists restart, and a second pass over just those rows (copied
                # together into xr) fills them exactly; lo[r] = -inf marks them after it
                nf = 0
                for r in range(mt if gemm else 0):
                    w2 = _bound2(cosine, cu, xx[i0 + r])
                    if lo[r] < INFINITY and lo[r] <= bd[r * k2 + k - 1] + w2:
                        lo[r] = bd[r * k2 + k - 1] + w2
                        for q in range(k2):
                            bd[r * k2 + q] = INFINITY
                            bi[r * k2 + q] = PY_SSIZE_T_MAX
                        memcpy(xr + nf * d, xp + (i0 + r) * d, d * sizeof(floating))
                        fr[nf] = r
                        nf = nf + 1
                for j0 in range(0, n if nf else 0, TILE):
                    nt = min(TILE, n - j0)
                    _gemm(xr, yp + j0 * d, tile, nf, nt, d, TILE, ypk)
                    for f in range(nf):
                        r = fr[f]
                        if not _keys(tile + f * TILE, nt, xx[i0 + r], ya + j0, yb + j0,
                                     metric, lo[r], keys):
                            continue
                        for c in range(nt):
                            # not (t <= threshold): a NaN key (inf - inf from infinite
                            # input) stays out, as in the first pass
                            if (same and i0 + r == j0 + c) or not (_low_key(
                                    tile + f * TILE, c, yb + j0, metric, keys) <= lo[r]):
                                continue
                            _push(bd + r * k2, bi + r * k2, k2,
                                  _exact(xo + (i0 + r) * d, yo + (j0 + c) * d, d, metric,
                                         xx[i0 + r], yy[j0 + c]), j0 + c)
                for f in range(nf):
                    lo[fr[f]] = -INFINITY
                # exact values of the survivors (rows of the second pass hold them
                # already), then re-sorted by (value, index)
                for r in range(mt):
                    for q in range(k2 if gemm and lo[r] != -INFINITY else 0):
                        if bi[r * k2 + q] != PY_SSIZE_T_MAX:
                            bd[r * k2 + q] = _exact(xo + (i0 + r) * d,
                                                    yo + bi[r * k2 + q] * d, d, metric,
                                                    xx[i0 + r], yy[bi[r * k2 + q]])
                    for q in range(1, k2):
                        dv = bd[r * k2 + q]
                        iv = bi[r * k2 + q]
                        jj = q
                        while jj > 0 and _better(dv, iv, bd[r * k2 + jj - 1],
                                                 bi[r * k2 + jj - 1]):
                            bd[r * k2 + jj] = bd[r * k2 + jj - 1]
                            bi[r * k2 + jj] = bi[r * k2 + jj - 1]
                            jj = jj - 1
                        bd[r * k2 + jj] = dv
                        bi[r * k2 + jj] = iv
                    _fill_nan(bd + r * k2, bi + r * k2, k, i0 + r if same else -1)
                    for q in range(k):
                        out_dist[i0 + r, q] = <floating>_finish_direct(bd[r * k2 + q], metric,
                                                                        p, 0.0)
                        out_idx[i0 + r, q] = bi[r * k2 + q]
            free(tile)
            fastla_free64(ypk)
            free(buf)
            free(acc)
            free(bd)
            free(bi)
            free(keys)
            free(lo)
            free(fr)
            free(xr)
    finally:
        free(xx)
        free(yy)
        if ya != yy:
            free(ya)
            free(yb)


def _centred(X, Y, int metric, bint same, int n_threads):
    """float32 GEMM-trick metrics run on mean-centred copies: smaller norms, so far fewer
    entries need the exact recomputation (which still reads the original data). The
    values are bitwise NumPy's ``(X - X.mean(axis=0, dtype=np.float64)).astype(np.float32)``
    (the mean summed row after row, as NumPy reduces axis 0 of a C-ordered array), made
    in one parallel pass per array instead of three NumPy passes and two float64
    temporaries (5000 x 64 twice: 0.6 ms before)."""
    if X.dtype != np.float32 or metric not in (SQEUCLIDEAN, EUCLIDEAN, RBF) \
            or not uses_gemm(metric, X.shape[1]) or X.shape[0] == 0 or Y.shape[0] == 0:
        return X, Y
    cdef const float[:, ::1] xv = X
    cdef Py_ssize_t m = X.shape[0], d = X.shape[1], i, f
    cdef double[::1] mu = np.zeros(d)
    with nogil:
        for i in range(m):
            for f in range(d):
                mu[f] += xv[i, f]
        for f in range(d):
            mu[f] /= m
    if not np.isfinite(np.asarray(mu)).all():  # NaN or inf in X (check_finite=False):
        return X, Y  # it stays in its own rows, not in every centred row
    Xc = _minus(X, mu, n_threads)
    return Xc, (Xc if same else _minus(Y, mu, n_threads))


cdef _minus(A, const double[::1] mu, int n_threads):
    """float32(A - mu) row by row (A float32 (n, d), mu float64 (d,))."""
    cdef const float[:, ::1] av = A
    cdef Py_ssize_t n = A.shape[0], d = A.shape[1], i, f
    out = np.empty((n, d), dtype=np.float32)
    cdef float[:, ::1] ov = out
    with nogil:
        for i in prange(n, num_threads=n_threads, schedule='static'):
            for f in range(d):
                ov[i, f] = <float>(<double>av[i, f] - mu[f])
    return out


def pairwise_distances(X, Y, out, int metric, double p, double gamma, bint same,
                       double recompute, int n_threads):
    """Kernel entry: fills and returns ``out`` (m, n). The tiles' GEMM is the own tile
    kernel (OWN_GEMM) or BLAS pinned to one thread per tile. The direct kernels write
    outputs of STREAM_BYTES or more with streaming stores (see _pairwise)."""
    Xc, Yc = _centred(X, Y, metric, same, n_threads)
    own = OWN_GEMM
    with blas_pinned(not own):
        l1x, l1y = _l1_sums(X, Y, metric, same, n_threads)
        _pairwise(Xc, Yc, X, Y, out, metric, p, gamma, same, recompute,
                  out.nbytes >= STREAM_BYTES, own, l1x, l1y, n_threads)
    return out


def nearest_neighbors(X, Y, int k, int metric, double p, bint same, int n_threads):
    """Kernel entry: returns (distances (m, k), indices (m, k) intp)."""
    m = X.shape[0]
    dist = np.empty((m, k), dtype=X.dtype)
    idx = np.empty((m, k), dtype=np.intp)
    Xc, Yc = _centred(X, Y, metric, same, n_threads)
    own = OWN_GEMM
    with blas_pinned(not own):
        l1x, l1y = _l1_sums(X, Y, metric, same, n_threads)
        _nn(Xc, Yc, X, Y, k, metric, p, same, dist, idx, own, l1x, l1y, n_threads)
    return dist, idx
