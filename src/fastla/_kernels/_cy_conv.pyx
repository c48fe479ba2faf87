# cython: language_level=3
"""Cython + OpenMP kernels for 2-D correlation (fastla.conv).

One primitive serves every public function: the correlation of a stack of images
``img[B, H, W]`` with a bank of kernels ``w[K, kh, kw]`` into ``out[B, K, Ho, Wo]``::

    out[b, k, i, j] = sum_{a, c} w[k, a, c] * X[b, rowidx[i + a], colidx[j + c]]

where ``rowidx``/``colidx`` map the extended (virtual, padded) coordinates to image rows
and columns for the boundary mode (-1: outside, the value is ``cval``). The public layer
builds the two index tables, so the kernels never see a mode name. Convolution is
correlation with the flipped kernel; SciPy's output modes and ndimage's origin are
offsets into the tables.

Interior columns ``jlo <= j < jhi`` read the image rows directly, branch-free, in the
register kernels of _conv_vec.h: two output rows per call, each input vector loaded
once and fed to both rows, the sums held in vector registers across all kernel rows and
stored once (3x3 has its own kernel with the nine taps in registers). Only the ``kw - 1``
border columns on each side go through the column table. Rows are resolved once per
(output row, kernel row) through the row table, so border rows cost no more than
interior ones and nothing is padded. Outputs of STREAM_RANGE[0] to STREAM_RANGE[1]
bytes are written with streaming stores.

Parallelism: ``prange`` over (image, row-pair) work items with a static schedule, so
each thread owns contiguous strips of rows.
"""

cimport cython
from cython.parallel cimport prange, parallel
from libc.stdlib cimport malloc, free
from libc.math cimport nearbyint, nearbyintf, fabsf

ctypedef fused real:
    float
    double


@cython.boundscheck(False)
@cython.wraparound(False)
cdef inline void _border_cols(const real* rp, const real* wrow, Py_ssize_t kw,
                              const Py_ssize_t* colidx, Py_ssize_t j0, Py_ssize_t j1,
                              real cval, real* o) noexcept nogil:
    """Border columns j0 <= j < j1 of one kernel row, through the column table."""
    cdef Py_ssize_t j, c, col
    cdef real s
    for j in range(j0, j1):
        s = 0
        for c in range(kw):
            col = colidx[j + c]
            if col >= 0:
                s = s + wrow[c] * rp[col]
            else:
                s = s + wrow[c] * cval
        o[j] = o[j] + s


@cython.boundscheck(False)
@cython.wraparound(False)
cdef inline int _row_nonfinite(const real* o, Py_ssize_t Wo) noexcept nogil:
    """1 if any of o[0..Wo) is NaN or infinite (x - x is 0 exactly for finite x),
    read while the row is still in L1; branch-free, vectorises."""
    cdef Py_ssize_t j
    cdef int bad = 0
    for j in range(Wo):
        bad |= (o[j] - o[j]) != 0
    return bad


cdef inline const real* _rowp(const real* img, Py_ssize_t W, const Py_ssize_t* rowidx,
                              const real* cvalrow, Py_ssize_t r) noexcept nogil:
    """Extended row r: an image row, or the cval row outside the image."""
    cdef Py_ssize_t q = rowidx[r]
    return cvalrow if q < 0 else img + q * W


@cython.boundscheck(False)
@cython.wraparound(False)
cdef int _border(const real* img, Py_ssize_t W, const real* w, Py_ssize_t kh,
                 Py_ssize_t kw, const Py_ssize_t* rowidx, const Py_ssize_t* colidx,
                 Py_ssize_t i, Py_ssize_t jlo, Py_ssize_t jhi, Py_ssize_t Wo, real cval,
                 const real* cvalrow, real* o) noexcept nogil:
    """The border columns (j < jlo, j >= jhi) of output row i, through the column table,
    kernel row by kernel row; returns 1 if one of them is NaN or infinite."""
    cdef Py_ssize_t j, a
    cdef const real* rp
    for j in range(jlo):
        o[j] = 0
    for j in range(jhi, Wo):
        o[j] = 0
    for a in range(kh):
        rp = _rowp(img, W, rowidx, cvalrow, i + a)
        _border_cols(rp, w + a * kw, kw, colidx, 0, jlo, cval, o)
        _border_cols(rp, w + a * kw, kw, colidx, jhi, Wo, cval, o)
    return _row_nonfinite(o, jlo) | _row_nonfinite(o + jhi, Wo - jhi)


@cython.boundscheck(False)
@cython.wraparound(False)
cdef int _rows(const real* img, Py_ssize_t W, const real* w, Py_ssize_t kh, Py_ssize_t kw,
               const Py_ssize_t* rowidx, const Py_ssize_t* colidx, Py_ssize_t i,
               Py_ssize_t ox, Py_ssize_t jlo, Py_ssize_t jhi, Py_ssize_t Wo, real cval,
               const real* cvalrow, real* o0, real* o1, bint stream) noexcept nogil:
    """Output rows i and i + 1 (o1 NULL: row i only), any kernel shape: the interior by
    _conv_vec.h's register kernel (each input vector loaded once for both rows, the
    sums in registers across the kernel rows), the borders through the column table.
    Returns 1 if an output value is NaN or infinite."""
    cdef int bad
    if real is float:
        bad = fastla_conv_rows_f32(img, W, rowidx + i, cvalrow, ox, w, kh, kw, jlo, jhi,
                                   o0, o1, stream)
    else:
        bad = fastla_conv_rows_f64(img, W, rowidx + i, cvalrow, ox, w, kh, kw, jlo, jhi,
                                   o0, o1, stream)
    bad |= _border(img, W, w, kh, kw, rowidx, colidx, i, jlo, jhi, Wo, cval, cvalrow, o0)
    if o1 != NULL:
        bad |= _border(img, W, w, kh, kw, rowidx, colidx, i + 1, jlo, jhi, Wo, cval,
                       cvalrow, o1)
    return bad


cdef extern from "_stream.h" nogil:
    void fastla_sfence()

cdef extern from "_conv_vec.h" nogil:
    int fastla_conv3x3_f32(const float* p0, const float* p1, const float* p2,
                           const float* p3, const float* w, Py_ssize_t jlo, Py_ssize_t jhi,
                           float* o0, float* o1, int stream)
    int fastla_conv3x3_f64(const double* p0, const double* p1, const double* p2,
                           const double* p3, const double* w, Py_ssize_t jlo,
                           Py_ssize_t jhi, double* o0, double* o1, int stream)
    int fastla_conv_rows_f32(const float* img, Py_ssize_t W, const Py_ssize_t* ridx,
                             const float* cvalrow, Py_ssize_t ox, const float* w, int kh,
                             int kw, Py_ssize_t jlo, Py_ssize_t jhi, float* o0, float* o1,
                             int stream)
    int fastla_conv3x3_u8(const unsigned char* p0, const unsigned char* p1,
                          const unsigned char* p2, const unsigned char* p3, const float* w,
                          Py_ssize_t jlo, Py_ssize_t jhi, float* o0, float* o1,
                          unsigned char* u0, unsigned char* u1, float thr,
                          Py_ssize_t* hits)
    int FASTLA_U8_LANES
    int fastla_conv_rows_f64(const double* img, Py_ssize_t W, const Py_ssize_t* ridx,
                             const double* cvalrow, Py_ssize_t ox, const double* w,
                             int kh, int kw, Py_ssize_t jlo, Py_ssize_t jhi, double* o0,
                             double* o1, int stream)


@cython.boundscheck(False)
@cython.wraparound(False)
cdef int _two_rows_3x3(const real* img, Py_ssize_t W, const real* w,
                       const Py_ssize_t* rowidx, const Py_ssize_t* colidx, Py_ssize_t i,
                       Py_ssize_t ox, Py_ssize_t jlo, Py_ssize_t jhi, Py_ssize_t Wo,
                       real cval, const real* cvalrow, real* o0, real* o1,
                       bint stream) noexcept nogil:
    """3x3 kernel, output rows i and i + 1 finished in registers (_conv_vec.h, with the
    nine taps held in registers; the values are those of the any-shape kernel of _rows:
    each kernel row's three taps summed, then added in kernel-row order). Returns 1 if
    an output value is NaN or infinite."""
    cdef Py_ssize_t a
    cdef const real* q[4]
    cdef int bad
    for a in range(4):
        q[a] = _rowp(img, W, rowidx, cvalrow, i + a) - ox
    if real is float:
        bad = fastla_conv3x3_f32(q[0], q[1], q[2], q[3], w, jlo, jhi, o0, o1, stream)
    else:
        bad = fastla_conv3x3_f64(q[0], q[1], q[2], q[3], w, jlo, jhi, o0, o1, stream)
    bad |= _border(img, W, w, 3, 3, rowidx, colidx, i, jlo, jhi, Wo, cval, cvalrow, o0)
    bad |= _border(img, W, w, 3, 3, rowidx, colidx, i + 1, jlo, jhi, Wo, cval, cvalrow, o1)
    return bad


# Outputs of this many bytes, from the first bound up to the second, are written
# with streaming stores (whole cache lines, not read first). Outputs beyond the caches
# but below 32 MiB come back from the C allocator's recycled heap, where that saves the
# read of every line (2048^2 float32: 0.99 -> 0.83 ms); from 32 MiB (glibc's largest
# heap allocation) each call maps fresh pages that the kernel zeroes through the cache,
# and there cached stores were faster (2048^2 float64: 4.65 against 5.15 ms).
STREAM_RANGE = (4 << 20, 32 << 20)


@cython.boundscheck(False)
@cython.wraparound(False)
def correlate2d(const real[:, :, ::1] img, const real[:, :, ::1] w,
                const Py_ssize_t[::1] rowidx, const Py_ssize_t[::1] colidx,
                Py_ssize_t ox, Py_ssize_t jlo, Py_ssize_t jhi, double cval,
                real[:, :, :, ::1] out, int n_threads):
    """Correlate ``img[B, H, W]`` with ``w[K, kh, kw]`` into ``out[B, K, Ho, Wo]``;
    returns 1 if an output value is NaN or infinite, else 0 (a NaN/inf input pixel that
    any output reads makes that output non-finite: the public layer's finiteness check
    of the image then only runs when this says so, instead of as a pass of its own).

    ``rowidx`` (length Ho + kh - 1) and ``colidx`` (length Wo + kw - 1) map extended
    coordinates to image rows/columns (-1: ``cval``); columns ``jlo <= j < jhi`` are
    interior (``colidx[j + c] == j - ox + c`` for every tap). Arguments are validated by
    fastla.conv; nothing is checked here.
    """
    cdef Py_ssize_t B = img.shape[0], H = img.shape[1], W = img.shape[2]
    cdef Py_ssize_t K = w.shape[0], kh = w.shape[1], kw = w.shape[2]
    cdef Py_ssize_t Ho = out.shape[2], Wo = out.shape[3]
    cdef Py_ssize_t npair = (Ho + 1) // 2, t, b, i, k
    cdef real cv = <real>cval
    cdef real[::1] cvalrow
    if B == 0 or K == 0 or Ho == 0 or Wo == 0:
        return 0
    import numpy as np
    cvalrow = np.full(max(W, 1), cval, dtype=np.float32 if real is float else np.float64)
    cdef const real* ip = &img[0, 0, 0]
    cdef const real* wp = &w[0, 0, 0]
    cdef const Py_ssize_t* rp = &rowidx[0]
    cdef const Py_ssize_t* cp = &colidx[0]
    cdef real* op = &out[0, 0, 0, 0]
    cdef const real* cvp = &cvalrow[0]
    cdef Py_ssize_t HW = H * W, HoWo = Ho * Wo, khkw = kh * kw
    cdef int bad = 0
    cdef real* o0
    cdef Py_ssize_t nbytes = B * K * Ho * Wo * sizeof(real)
    cdef bint stream = STREAM_RANGE[0] <= nbytes < STREAM_RANGE[1]
    with nogil, parallel(num_threads=n_threads):
        for t in prange(B * npair, schedule="static"):
            b = t // npair
            i = 2 * (t % npair)
            for k in range(K):
                o0 = op + (b * K + k) * HoWo + i * Wo
                if i + 1 < Ho and kh == 3 and kw == 3:
                    bad |= _two_rows_3x3(ip + b * HW, W, wp + k * khkw, rp, cp, i, ox, jlo,
                                         jhi, Wo, cv, cvp, o0, o0 + Wo, stream)
                else:
                    bad |= _rows(ip + b * HW, W, wp + k * khkw, kh, kw, rp, cp, i, ox, jlo,
                                 jhi, Wo, cv, cvp, o0, o0 + Wo if i + 1 < Ho else NULL,
                                 stream)
        if stream:
            fastla_sfence()  # this thread's streamed rows, before the join
    return bad


cdef inline Py_ssize_t _ring_slot(const Py_ssize_t* rowidx, Py_ssize_t e, Py_ssize_t R,
                                  Py_ssize_t key, Py_ssize_t* tag, bint* fill) noexcept nogil:
    """The ring slot of extended row e (e % R; -1: outside the image, the cval row), and
    in ``fill`` whether it must be (re)filled: it held another (image, row) ``key``."""
    cdef Py_ssize_t slot
    if rowidx[e] < 0:
        fill[0] = False
        return -1
    slot = e % R
    fill[0] = tag[slot] != key
    tag[slot] = key
    return slot


@cython.boundscheck(False)
@cython.wraparound(False)
cdef inline real _point_u8(const unsigned char* img, Py_ssize_t W, const real* w,
                           Py_ssize_t kh, Py_ssize_t kw, const Py_ssize_t* rowidx,
                           const Py_ssize_t* colidx, Py_ssize_t i, Py_ssize_t j,
                           real cval) noexcept nogil:
    """One output value, summed in ``real`` (float32 for the border columns of the
    float32 pass, float64 for its recheck), taps in row-major order, through both
    tables."""
    cdef Py_ssize_t a, c, r, col
    cdef real s = 0, x
    for a in range(kh):
        r = rowidx[i + a]
        for c in range(kw):
            col = colidx[j + c]
            x = <real>img[r * W + col] if r >= 0 and col >= 0 else cval
            s = s + w[a * kw + c] * x
    return s


@cython.boundscheck(False)
@cython.wraparound(False)
cdef inline unsigned char _u8(double v) noexcept nogil:
    """v rounded to nearest, ties to even (as np.rint), saturated to 0..255."""
    v = nearbyint(v)
    v = v if v > 0.0 else 0.0      # max and min: they vectorise
    v = v if v < 255.0 else 255.0
    return <unsigned char>v


@cython.boundscheck(False)
@cython.wraparound(False)
cdef inline Py_ssize_t _finish_u8(const float* o, unsigned char* u, Py_ssize_t j0,
                                  Py_ssize_t j1, float thr, Py_ssize_t* hits) noexcept nogil:
    """u[j] = o[j] rounded to nearest (ties to even) and saturated, j0 <= j < j1, in
    blocks of 64 columns (the inner loop is branch-free and vectorises); the first
    column of each block holding a value with |o[j] - rint(o[j])| >= thr goes to hits[]
    (at most (j1 - j0) / 64 + 1 entries). Returns their count."""
    cdef Py_ssize_t j, jb, je, nh = 0
    cdef int flag  # 32-bit: vectorises without widening
    cdef float f, g
    for jb in range(j0, j1, 64):
        je = min(jb + 64, j1)
        flag = 0
        for j in range(jb, je):
            f = o[j]
            g = nearbyintf(f)
            flag = flag | (fabsf(f - g) >= thr)
            g = g if g > 0.0 else 0.0
            g = g if g < 255.0 else 255.0
            u[j] = <unsigned char>g
        if flag:
            hits[nh] = jb
            nh = nh + 1
    return nh


@cython.boundscheck(False)
@cython.wraparound(False)
cdef void _recheck_u8(const float* o, unsigned char* u, Py_ssize_t j0, Py_ssize_t j1,
                      float thr, const unsigned char* img, Py_ssize_t W, const double* w,
                      Py_ssize_t kh, Py_ssize_t kw, const Py_ssize_t* rowidx,
                      const Py_ssize_t* colidx, Py_ssize_t i, double cval) noexcept nogil:
    """Columns j0 <= j < j1 of output row i whose float32 sum o[j] lies near a
    half-integer (|o[j] - rint(o[j])| >= thr: every value that fastla_conv3x3_u8 or
    _finish_u8 flagged, and a few more beyond the clamp range) get the rounding of
    their float64 sum."""
    cdef Py_ssize_t j
    cdef float f
    for j in range(j0, j1):
        f = o[j]
        if fabsf(f - nearbyintf(f)) >= thr:
            u[j] = _u8(_point_u8(img, W, w, kh, kw, rowidx, colidx, i, j, cval))


@cython.boundscheck(False)
@cython.wraparound(False)
def correlate2d_u8(const unsigned char[:, :, ::1] img, const double[:, :, ::1] w,
                   const float[:, :, ::1] w32, const double[::1] bound,
                   const Py_ssize_t[::1] rowidx, const Py_ssize_t[::1] colidx,
                   Py_ssize_t ox, Py_ssize_t jlo, Py_ssize_t jhi, double cval,
                   unsigned char[:, :, :, ::1] out, bint single, int n_threads):
    """``correlate2d`` for a uint8 image into uint8 output: each value is the float64
    sum rounded to nearest (ties to even, as ``np.rint``) and saturated to 0..255.
    Each thread converts the input rows of its row pair into a small ring of rows
    (reused by the next pair), runs the register kernels on it and rounds as it writes:
    no converted copy of the image and no float output.

    ``single`` (float32 sums, twice the lanes): the float32 sum of kernel k is within
    ``bound[k]`` of the float64 one (the caller's rounding-error bound), so it rounds
    the same way wherever it lies further than that from a half-integer; the values
    that do not (about 2 bound of them) are recomputed in float64 from the image
    (``_point_u8``). ``bound[k] == 0``: the float32 sums are exact (dyadic weights).
    ``w32``: w in float32. A 3x3 kernel on a row pair whose four input rows are all
    image rows skips the ring: fastla_conv3x3_u8 reads the uint8 rows, converts in
    registers and rounds in the same pass, reporting the vector steps with a value near
    a tie. Otherwise (``single`` false) the kernels run in float64.
    Other arguments as correlate2d."""
    cdef Py_ssize_t B = img.shape[0], H = img.shape[1], W = img.shape[2]
    cdef Py_ssize_t K = w.shape[0], kh = w.shape[1], kw = w.shape[2]
    cdef Py_ssize_t Ho = out.shape[2], Wo = out.shape[3]
    cdef Py_ssize_t npair = (Ho + 1) // 2, t, b, i, k, a, r, q, j, jj, nq
    cdef Py_ssize_t nh, h
    cdef Py_ssize_t* hits
    cdef Py_ssize_t HW = H * W, HoWo = Ho * Wo, khkw = kh * kw
    cdef const unsigned char* ip
    cdef const double* wp
    cdef const float* wp32
    cdef const Py_ssize_t* cp
    cdef unsigned char* op
    cdef double* rows
    cdef double* cvrow
    cdef double* ob
    cdef float* rows32
    cdef float* cvrow32
    cdef float* ob32
    cdef Py_ssize_t* lidx
    cdef Py_ssize_t* tag
    cdef Py_ssize_t R = kh + 2, e, slot
    cdef bint fill, fused
    cdef float thr
    cdef unsigned char* orow
    if B == 0 or K == 0 or Ho == 0 or Wo == 0:
        return
    ip = &img[0, 0, 0]
    wp = &w[0, 0, 0]
    wp32 = &w32[0, 0, 0]
    cp = &colidx[0]
    op = &out[0, 0, 0, 0]
    with nogil, parallel(num_threads=n_threads):
        # a ring of R = kh + 2 rows (float64, or float32 when ``single``): extended row e
        # of image b sits in slot e % R (tag: which (b, e) a slot holds), so consecutive
        # pairs of a thread's strip convert only their two new rows
        rows = <double*>malloc(R * max(W, 1) * sizeof(double))
        cvrow = <double*>malloc(max(W, 1) * sizeof(double))
        ob = <double*>malloc(2 * Wo * sizeof(double))
        rows32 = <float*>rows
        cvrow32 = <float*>cvrow
        ob32 = <float*>ob
        lidx = <Py_ssize_t*>malloc((kh + 1) * sizeof(Py_ssize_t))
        tag = <Py_ssize_t*>malloc(R * sizeof(Py_ssize_t))
        hits = <Py_ssize_t*>malloc((Wo + 8) * sizeof(Py_ssize_t))
        if rows != NULL and cvrow != NULL and ob != NULL and lidx != NULL and tag != NULL \
                and hits != NULL:
            for jj in range(W):
                if single:
                    cvrow32[jj] = <float>cval
                else:
                    cvrow[jj] = cval
            for jj in range(R):
                tag[jj] = -1
            for t in prange(B * npair, schedule="static"):
                b = t // npair
                i = 2 * (t % npair)
                nq = 2 if i + 1 < Ho else 1
                # 3x3 on a pair of rows whose inputs are all image rows: uint8 read and
                # finished in one pass (fastla_conv3x3_u8), no ring
                fused = single and nq == 2 and kh == 3 and kw == 3 and rowidx[i] >= 0 \
                    and rowidx[i + 1] >= 0 and rowidx[i + 2] >= 0 and rowidx[i + 3] >= 0
                # otherwise the pair's input rows as ring slots (-1: the cval row)
                for a in range(0 if fused else kh + nq - 1):
                    e = i + a
                    slot = _ring_slot(&rowidx[0], e, R, b * (Ho + kh) + e, tag, &fill)
                    lidx[a] = slot
                    if fill:
                        r = rowidx[e]
                        if single:
                            for j in range(W):
                                rows32[slot * W + j] = ip[b * HW + r * W + j]
                        else:
                            for j in range(W):
                                rows[slot * W + j] = ip[b * HW + r * W + j]
                for k in range(K):
                    if single:
                        # flag |f - rint(f)| >= 1/2 - bound (within bound of a
                        # half-integer); bound 0: the float32 sums are exact
                        thr = <float>(0.5 - bound[k]) if bound[k] > 0 else 1.0
                        orow = op + (b * K + k) * HoWo + i * Wo
                        if fused:
                            nh = fastla_conv3x3_u8(
                                ip + b * HW + rowidx[i] * W - ox,
                                ip + b * HW + rowidx[i + 1] * W - ox,
                                ip + b * HW + rowidx[i + 2] * W - ox,
                                ip + b * HW + rowidx[i + 3] * W - ox,
                                wp32 + k * khkw, jlo, jhi, ob32, ob32 + Wo, orow,
                                orow + Wo, thr, hits)
                            for h in range(nh):
                                for q in range(2):
                                    _recheck_u8(ob32 + q * Wo, orow + q * Wo, hits[h],
                                                min(hits[h] + FASTLA_U8_LANES, jhi), thr,
                                                ip + b * HW, W, wp + k * khkw, 3, 3,
                                                &rowidx[0], cp, i + q, cval)
                            for q in range(2):  # the border columns
                                for j in range(jlo):
                                    ob32[q * Wo + j] = _point_u8(
                                        ip + b * HW, W, wp32 + k * khkw, 3, 3, &rowidx[0],
                                        cp, i + q, j, <float>cval)
                                for j in range(jhi, Wo):
                                    ob32[q * Wo + j] = _point_u8(
                                        ip + b * HW, W, wp32 + k * khkw, 3, 3, &rowidx[0],
                                        cp, i + q, j, <float>cval)
                                if _finish_u8(ob32 + q * Wo, orow + q * Wo, 0, jlo, thr,
                                              hits):
                                    _recheck_u8(ob32 + q * Wo, orow + q * Wo, 0, jlo, thr,
                                                ip + b * HW, W, wp + k * khkw, 3, 3,
                                                &rowidx[0], cp, i + q, cval)
                                if _finish_u8(ob32 + q * Wo, orow + q * Wo, jhi, Wo, thr,
                                              hits):
                                    _recheck_u8(ob32 + q * Wo, orow + q * Wo, jhi, Wo, thr,
                                                ip + b * HW, W, wp + k * khkw, 3, 3,
                                                &rowidx[0], cp, i + q, cval)
                        else:
                            if nq == 2 and kh == 3 and kw == 3:
                                _two_rows_3x3(rows32, W, wp32 + k * khkw, lidx, cp, 0, ox,
                                              jlo, jhi, Wo, <float>cval, cvrow32, ob32,
                                              ob32 + Wo, False)
                            else:
                                _rows(rows32, W, wp32 + k * khkw, kh, kw, lidx, cp, 0, ox,
                                      jlo, jhi, Wo, <float>cval, cvrow32, ob32,
                                      ob32 + Wo if nq == 2 else NULL, False)
                            for q in range(nq):
                                nh = _finish_u8(ob32 + q * Wo, orow + q * Wo, 0, Wo, thr,
                                                hits)
                                for h in range(nh):  # blocks near a tie: float64 decides
                                    _recheck_u8(ob32 + q * Wo, orow + q * Wo, hits[h],
                                                min(hits[h] + 64, Wo), thr, ip + b * HW, W,
                                                wp + k * khkw, kh, kw, &rowidx[0], cp,
                                                i + q, cval)
                    else:
                        if nq == 2 and kh == 3 and kw == 3:
                            _two_rows_3x3(rows, W, wp + k * khkw, lidx, cp, 0, ox, jlo, jhi,
                                          Wo, cval, cvrow, ob, ob + Wo, False)
                        else:
                            _rows(rows, W, wp + k * khkw, kh, kw, lidx, cp, 0, ox, jlo, jhi,
                                  Wo, cval, cvrow, ob, ob + Wo if nq == 2 else NULL, False)
                        for q in range(nq):
                            orow = op + (b * K + k) * HoWo + (i + q) * Wo
                            for j in range(Wo):
                                orow[j] = _u8(ob[q * Wo + j])
        free(rows)
        free(cvrow)
        free(ob)
        free(lidx)
        free(tag)
        free(hits)


@cython.boundscheck(False)
@cython.wraparound(False)
def correlate2d_sep(const real[:, :, ::1] img, const real[::1] col, const real[::1] row,
                    const Py_ssize_t[::1] rowidx, const Py_ssize_t[::1] colidx,
                    Py_ssize_t ox, Py_ssize_t jlo, Py_ssize_t jhi, double cval,
                    double cval_row, real[:, :, :, ::1] out, int n_threads):
    """Correlation with the rank-1 kernel ``col[:, None] * row[None, :]`` into
    ``out[B, 1, Ho, Wo]``, both 1-D passes fused: each thread keeps a ring of kh + 2
    horizontally filtered rows (the same kernel as correlate2d with the 1 x kw kernel
    ``row``; rows outside the image hold ``cval_row`` = cval * sum(row)) and runs the
    vertical pass (kh x 1, ``col``) over it, two output rows at a time. Consecutive row
    pairs of a thread's strip filter only their two new rows. The values are those of
    the two separate passes, without their full-size intermediate. Arguments as
    correlate2d (``rowidx``/``colidx`` for the kh x kw kernel)."""
    cdef Py_ssize_t B = img.shape[0], H = img.shape[1], W = img.shape[2]
    cdef Py_ssize_t kh = col.shape[0], kw = row.shape[0]
    cdef Py_ssize_t Ho = out.shape[2], Wo = out.shape[3]
    cdef Py_ssize_t npair = (Ho + 1) // 2, t, b, i, a, e, r, slot, nq, jj
    cdef Py_ssize_t R = kh + 2, HW = H * W, HoWo = Ho * Wo
    cdef bint fill
    cdef const real* ip
    cdef const real* cp
    cdef const real* rp
    cdef const Py_ssize_t* xp
    cdef real* op
    cdef real* ring
    cdef real* cvrow
    cdef real* cvh
    cdef Py_ssize_t* lidx
    cdef Py_ssize_t* tag
    cdef Py_ssize_t one[1]
    cdef real* o0
    cdef int bad = 0
    cdef bint stream = STREAM_RANGE[0] <= B * HoWo * <Py_ssize_t>sizeof(real) < STREAM_RANGE[1]
    if B == 0 or Ho == 0 or Wo == 0:
        return 0
    ip = &img[0, 0, 0]
    cp = &col[0]
    rp = &row[0]
    xp = &colidx[0]
    op = &out[0, 0, 0, 0]
    one[0] = 0  # the horizontal pass's row table: its one row, as given
    with nogil, parallel(num_threads=n_threads):
        ring = <real*>malloc(R * Wo * sizeof(real))
        cvrow = <real*>malloc(max(W, 1) * sizeof(real))
        cvh = <real*>malloc(Wo * sizeof(real))
        lidx = <Py_ssize_t*>malloc((kh + 1) * sizeof(Py_ssize_t))
        tag = <Py_ssize_t*>malloc(R * sizeof(Py_ssize_t))
        if ring != NULL and cvrow != NULL and cvh != NULL and lidx != NULL and tag != NULL:
            for jj in range(max(W, 1)):
                cvrow[jj] = <real>cval
            for jj in range(Wo):
                cvh[jj] = <real>cval_row
            for jj in range(R):
                tag[jj] = -1
            for t in prange(B * npair, schedule="static"):
                b = t // npair
                i = 2 * (t % npair)
                nq = 2 if i + 1 < Ho else 1
                # the pair's horizontally filtered rows, in ring slots (-1: outside)
                for a in range(kh + nq - 1):
                    e = i + a
                    slot = _ring_slot(&rowidx[0], e, R, b * (Ho + kh) + e, tag, &fill)
                    lidx[a] = slot
                    if fill:
                        r = rowidx[e]
                        bad |= _rows(ip + b * HW + r * W, W, rp, 1, kw, one, xp, 0, ox,
                                     jlo, jhi, Wo, <real>cval, cvrow, ring + slot * Wo,
                                     NULL, False)
                o0 = op + b * HoWo + i * Wo
                bad |= _rows(ring, Wo, cp, kh, 1, lidx, xp, 0, 0, 0, Wo, Wo,
                             <real>cval_row, cvh, o0, o0 + Wo if nq == 2 else NULL, stream)
            if stream:
                fastla_sfence()
        free(ring)
        free(cvrow)
        free(cvh)
        free(lidx)
        free(tag)
    return bad
