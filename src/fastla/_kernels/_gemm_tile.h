/* Tile GEMM of the distance engine (_cy_distances.pyx) and of the k-means assignment
 * (_cy_kmeans.pyx): c = x @ y.T for one tile.
 *
 * fastla_gemm_pack_<f32|f64>(y, nt, d, yp): the nt rows of y (nt, d) into column panels
 *   of NR rows each (FASTLA_GEMM_NV vectors of T), feature-major: yp[(p * d + k) * NR + jj] =
 *   y[p * NR + jj, k], zero past nt. yp holds round_up(nt, NR) * d values, at most
 *   (nt + FASTLA_GEMM_PAD) * d.
 * fastla_gemm_tile_<f32|f64>(x, mt, d, yp, nt, c, ldc): c[i * ldc + j] = x[i] . y[j]
 *   for i < mt, j < nt (x row-major (mt, d)), summed in feature order per entry.
 * fastla_gemm_tile_<f32|f64>_ex(..., alpha, bias): with bias != NULL,
 *   c[i * ldc + j] = alpha * (x[i] . y[j]) + bias[j] (bias holds round_up(nt, NR) values;
 *   alpha a power of two, so that the product is exact and the sum rounds once, as in
 *   BLAS's alpha * A B + beta C with beta = 1).
 * fastla_gemm_tile_<f32|f64>_dist(x, mt, d, yp, nt, c, ldc, xn, yn, thr, root, gamma,
 *   low_rows):
 *   squared euclidean distances from the squared norms xn (mt values) and yn (round_up(nt,
 *   NR) values): e = fma(-2, x[i] . y[j], xn[i] + yn[j]), clamped at zero, square-rooted
 *   if root is 1 or 2 (1: each register block its own at once, 2: pipelined where the rows
 *   allow, FASTLA_GEMM_SQRT_STEP; the same values), the RBF kernel exp(-gamma e) if root
 *   is 3 (FASTLA_VEXP), written to c; low_rows[i] = 1 (never reset to
 *   0) for each row i where some e fell under thr (xn[i] + yn[j]) before the clamp (and
 *   possibly for the other rows of its register block), so that the caller can recompute
 *   those cancelled entries exactly.
 *   The finished distances leave the registers once: no tile buffer, no second pass.
 *   Each register block first asks for the output lines of the next one (a read
 *   prefetch: a plain store waits on its line's read, and the next block's reads then
 *   overlap this block's arithmetic). In one-process A/B runs on 5000 x 5000 x 64
 *   (docs/performance.md, ninth series), euclidean float64 went 48.3 -> 47.5 ms into fresh
 *   outputs and 43.4 -> 42.5 ms into out=, squared float32 25.2 -> 24.0 and 22.7 -> 21.9 ms.
 *
 * fastla_gemm_labels_<f32|f64>(xp, d, c, cb, k, lo, hi, labels, xrows): k-means labels of rows
 *   lo..hi-1 of an X (n, d) packed whole by fastla_gemm_pack (xp: round_up(n, NR) rows):
 *   labels[i] = the first j minimising cb[j] - 2 x_i . c_j over the k centres c (k, d)
 *   and their squared norms cb; returns how many labels differ from what labels held
 *   before (a Lloyd pass's strict convergence test). The roles of the tile kernel
 *   swapped: a panel of NR points is the vector operand, MR centres are broadcast, and
 *   the scores never leave the registers; each point's running minimum and its index
 *   are kept per lane. The scores are bitwise those of fastla_gemm_tile_*_ex(x, ..., -2,
 *   cb) (each product summed in feature order, one rounding for -2 s + cb) and ties go
 *   to the lowest j, so the labels are those of that kernel followed by a first-minimum
 *   argmin. xrows (X
 *   itself, or NULL): each panel's rows of X are prefetched into the outer caches, a few
 *   lines per centre block, for a caller that reads them next (k-means' centroid sums:
 *   20 Lloyd passes of 100,000 x 32, k = 100, 82-84 -> 80-81 ms in A/B runs).
 * Register blocking: MR rows of x by NV = 2 vectors of y per step (AVX-512: 8 x 16 doubles
 * or 8 x 32 floats, 16 accumulators; narrower ISAs: 4 rows), x broadcast from its rows, the
 * y panel (d x NR) resident in L1 while every row block of the tile passes over it.
 * One call per tile, no packing of x, no library call, no thread pool of its own.
 * GCC/Clang vector extensions; other compilers get the scalar loop.
 */
#ifndef FASTLA_GEMM_TILE_H
#define FASTLA_GEMM_TILE_H

#include <stddef.h>
#include <math.h>
#include <string.h>

#include "_vec.h"

#if defined(__GNUC__) || defined(__clang__)

/* rows per register block: 8 x NV accumulators of AVX-512's 32 registers, 4 x NV of 16 */
#if defined(__AVX512F__)
#define FASTLA_GEMM_MR 8
#else
#define FASTLA_GEMM_MR 4
#endif

/* 1 where this kernel beats a BLAS call per tile (measured: the AVX-512 build, about
 * 10% on 256x256x64 tiles); elsewhere the engine keeps BLAS, whose own kernels use the
 * widest ISA the CPU has even inside a baseline build. */
#if defined(__AVX512F__)
#define FASTLA_GEMM_OWN 1
#else
#define FASTLA_GEMM_OWN 0
#endif

/* columns per panel: two vectors; FASTLA_GEMM_PAD: the widest panel (float's), the
 * spare rows a packed buffer and a bias (norms) array need past nt */
#define FASTLA_GEMM_NV 2
/* NR, the points of a panel, per type */
#define FASTLA_GEMM_NR_F32 (FASTLA_GEMM_NV * FASTLA_VBYTES / 4)
#define FASTLA_GEMM_NR_F64 (FASTLA_GEMM_NV * FASTLA_VBYTES / 8)
#define FASTLA_GEMM_PAD FASTLA_GEMM_NR_F32

/* a[r][v] (declared by the caller: VF a[MRR][NVV]) = sum over f < d, in feature order,
 * of panel[f * NR + v * L ...] * rows[(R0 + r) * d + f]: MRR broadcast rows (past NROWS the
 * last row again) against NVV vectors of a packed panel. Both tile kernels' inner loop:
 * rows of x against a panel of y (FASTLA_GEMM_ROWS), centres against a panel of points
 * (FASTLA_GEMM_LABELS_BLOCK). Uses the caller's r, v and ff, and L, NR and d. */
#define FASTLA_GEMM_ACC(T, VF, MRR, NVV, a, ROWS, R0, NROWS, PANEL)                     \
    FASTLA_GEMM_ACC_HOOK(T, VF, MRR, NVV, a, ROWS, R0, NROWS, PANEL, (void)0)
/* the same, running the statement HOOK before every 4th feature (ff = 0, 4, 8, ...) */
#define FASTLA_GEMM_ACC_HOOK(T, VF, MRR, NVV, a, ROWS, R0, NROWS, PANEL, HOOK)           \
    {                                                                                    \
        const T* br_[MRR];                                                               \
        _Pragma("GCC unroll 16") for (r = 0; r < MRR; r++)                               \
        {                                                                                \
            br_[r] = (ROWS) + ((R0) + r < (NROWS) ? (R0) + r : (NROWS) - 1) * d;         \
            _Pragma("GCC unroll 4") for (v = 0; v < NVV; v++)                             \
                a[r][v] = (VF){0};                                                       \
        }                                                                                \
        for (ff = 0; ff < d; ff++) {                                                     \
            VF pv_[NVV];                                                                 \
            if ((ff & 3) == 0)                                                           \
                HOOK;                                                                    \
            _Pragma("GCC unroll 4") for (v = 0; v < NVV; v++)                             \
                memcpy(&pv_[v], (PANEL) + ff * NR + v * L, sizeof(VF));                  \
            _Pragma("GCC unroll 16") for (r = 0; r < MRR; r++)                           \
            {                                                                            \
                const T b_ = br_[r][ff];                                                 \
                _Pragma("GCC unroll 4") for (v = 0; v < NVV; v++)                         \
                    a[r][v] += pv_[v] * b_;                                              \
            }                                                                            \
        }                                                                                \
    }

/* The square roots of euclidean distances, pipelined: a full register block stores its
 * clamped squared distances, and the next block's feature loop takes their square roots
 * in place, one vector before every 4th feature (the last ones after that loop when d is
 * under 4 MR NV, the tile's last block's at the end of the tile). The divider then works
 * beside the FMA units instead of after them. Only blocks whose rows start on cache lines
 * are deferred: into an out= from np.empty (16 bytes into a line) every vector read back
 * and stored again straddles two lines, and the deferral was 3% slower there (euclidean
 * 5000 x 5000 x 64 float64: 42.3 -> 43.5 ms) where it is 7% faster on aligned rows (38.9
 * -> 36.2 ms); such blocks take their square roots at once. FASTLA_GEMM_SQRT_STEP: the
 * next pending vector of block pq (MR rows of NV vectors, row stride ldc); pq = NULL once
 * all are done. */
#define FASTLA_GEMM_SQRT_STEP(T, VF)                                                     \
    do {                                                                                 \
        T* q_ = pq + (pk / FASTLA_GEMM_NV) * ldc + (pk % FASTLA_GEMM_NV) * L;            \
        VF w_;                                                                           \
        memcpy(&w_, q_, sizeof(VF));                                                     \
        w_ = FASTLA_VSQRT(VF, w_);                                                       \
        memcpy(q_, &w_, sizeof(VF));                                                     \
        if (++pk == MR * FASTLA_GEMM_NV)                                                 \
            pq = NULL;                                                                   \
    } while (0)

/* One column panel against every row block of the tile, NVV vectors wide (NV, or 1 for a
 * last panel of at most one vector's columns: no work on the padding). Expanded inside
 * FASTLA_GEMM_TILE's function, whose locals it uses. */
#define FASTLA_GEMM_ROWS(T, VF, VI, NVV)                                                   \
            for (i = 0; i < mt; i += MR) {                                               \
                VF a[MR][NVV];                                                            \
                /* the next block's output lines, ahead of its stores: every line of    \
                 * each row's NR values, three where they start inside a line (float32 \
                 * rows of 5000 values, every other one; the middle line was missed)    \
                 */                                                                      \
                if (rown)                                                                \
                    _Pragma("GCC unroll 16") for (r = 0; r < MR; r++)                     \
                    {                                                                    \
                        const char* q_ = (const char*)(c + (i + MR + r < mt ? i + MR + r : mt - 1) * ldc \
                                                       + p * NR);                        \
                        __builtin_prefetch(q_);                                          \
                        if (NR * sizeof(T) > 64)                                         \
                            __builtin_prefetch(q_ + 64);                                 \
                        __builtin_prefetch(q_ + NR * sizeof(T) - 1);                     \
                    }                                                                    \
                FASTLA_GEMM_ACC_HOOK(T, VF, MR, NVV, a, x, i, mt, yb,                     \
                                     if (pq) FASTLA_GEMM_SQRT_STEP(T, VF))               \
                while (pq) /* d under 4 MR NV: the last block's rest */                  \
                    FASTLA_GEMM_SQRT_STEP(T, VF);                                        \
                /* full blocks leave their square roots to the next block's loop */      \
                dfr = root == 2 && algn && NVV == NV && ncol == NR && i + MR <= mt       \
                      && ((size_t)(c + i * ldc + p * NR) & 63) == 0;                     \
                if (rown) { /* distances: see NAME##_dist */                           \
                    VF vthr = FASTLA_VSET1(T, VF, thr), valpha = FASTLA_VSET1(T, VF, alpha); \
                    VF vmg = FASTLA_VSET1(T, VF, -gamma);                                \
                    VI low = (VI){0};                                                    \
                    _Pragma("GCC unroll 4") for (v = 0; v < NVV; v++)                     \
                    {                                                                    \
                        VF bv;                                                           \
                        memcpy(&bv, bias + p * NR + v * L, sizeof(VF));                  \
                        _Pragma("GCC unroll 16") for (r = 0; r < MR; r++)                \
                        {                                                                \
                            VF sv = bv + FASTLA_VSET1(T, VF, rown[i + r < mt ? i + r : mt - 1]); \
                            VF d2 = FASTLA_VFMA(T, a[r][v], valpha, sv);                 \
                            low |= (VI)(d2 < sv * vthr);                                 \
                            d2 = FASTLA_VMAX(VF, (VF){0}, d2);                           \
                            a[r][v] = root == 3 ? FASTLA_VEXP(T, VF, VI, d2 * vmg)       \
                                      : root && !dfr ? FASTLA_VSQRT(VF, d2) : d2;        \
                        }                                                                \
                    }                                                                    \
                    if (FASTLA_VANY(low))                                                \
                        for (r = 0; r < MR && i + r < mt; r++)                           \
                            low_rows[i + r] = 1;                                         \
                } else if (bias) { /* a = alpha a + bias[j]: one rounding (alpha = +-2^e) */ \
                    _Pragma("GCC unroll 4") for (v = 0; v < NVV; v++)                     \
                    {                                                                    \
                        VF bv;                                                           \
                        memcpy(&bv, bias + p * NR + v * L, sizeof(VF));                  \
                        _Pragma("GCC unroll 16") for (r = 0; r < MR; r++)                \
                            a[r][v] = a[r][v] * alpha + bv;                              \
                    }                                                                    \
                }                                                                        \
                _Pragma("GCC unroll 16") for (r = 0; r < MR; r++)                        \
                {                                                                        \
                    T* dst = c + (i + r) * ldc + p * NR;                                 \
                    if (i + r >= mt)                                                     \
                        break;                                                           \
                    if (ncol == NR) {                                                    \
                        _Pragma("GCC unroll 4") for (v = 0; v < NVV; v++)                 \
                            memcpy(dst + v * L, &a[r][v], sizeof(VF));                   \
                    } else {                                                             \
                        T tmp[NR];                                                       \
                        _Pragma("GCC unroll 4") for (v = 0; v < NVV; v++)                 \
                            memcpy(tmp + v * L, &a[r][v], sizeof(VF));                   \
                        memcpy(dst, tmp, (size_t)ncol * sizeof(T));                      \
                    }                                                                    \
                }                                                                        \
                if (dfr) {                                                               \
                    pq = c + i * ldc + p * NR;                                           \
                    pk = 0;                                                              \
                }                                                                        \
            }

#define FASTLA_GEMM_TILE(NAME, PACK, T, VF, VI)                                            \
    static inline void PACK(const T* y, ptrdiff_t nt, ptrdiff_t d, T* yp)                \
    {                                                                                    \
        enum { NR = FASTLA_GEMM_NV * FASTLA_VBYTES / sizeof(T) };                        \
        ptrdiff_t p, k, jj;                                                              \
        for (p = 0; p * NR < nt; p++)                                                    \
            for (jj = 0; jj < NR; jj++) {                                                \
                ptrdiff_t j = p * NR + jj;                                               \
                T* dst = yp + p * d * NR + jj;                                           \
                if (j < nt)                                                              \
                    for (k = 0; k < d; k++)                                              \
                        dst[k * NR] = y[j * d + k];                                      \
                else                                                                     \
                    for (k = 0; k < d; k++)                                              \
                        dst[k * NR] = 0;                                                 \
            }                                                                            \
    }                                                                                    \
    static inline void NAME##_epi(const T* x, ptrdiff_t mt, ptrdiff_t d, const T* yp,    \
                                  ptrdiff_t nt, T* c, ptrdiff_t ldc, T alpha,            \
                                  const T* bias, const T* rown, T thr, int root,         \
                                  T gamma, unsigned char* low_rows)                      \
    {                                                                                    \
        enum { L = FASTLA_VBYTES / sizeof(T), NV = FASTLA_GEMM_NV, NR = NV * L,          \
               MR = FASTLA_GEMM_MR };                                                    \
        ptrdiff_t p, i, ff;                                                              \
        int r, v, dfr, pk = 0;                                                           \
        T* pq = NULL; /* a stored block awaiting its square roots, pk vectors done */    \
        /* rows on whole cache lines (see FASTLA_GEMM_SQRT_STEP) */                       \
        const int algn = rown && ((size_t)ldc * sizeof(T)) % 64 == 0;                   \
        for (p = 0; p * NR < nt; p++) {                                                  \
            const T* yb = yp + p * d * NR;                                               \
            ptrdiff_t ncol = nt - p * NR < NR ? nt - p * NR : NR;                        \
            if (ncol <= L)                                                               \
                FASTLA_GEMM_ROWS(T, VF, VI, 1)                                               \
            else                                                                         \
                FASTLA_GEMM_ROWS(T, VF, VI, NV)                                              \
        }                                                                                \
        while (pq)                                                                       \
            FASTLA_GEMM_SQRT_STEP(T, VF);                                                \
    }                                                                                    \
    static inline void NAME##_dist(const T* x, ptrdiff_t mt, ptrdiff_t d, const T* yp,   \
                                   ptrdiff_t nt, T* c, ptrdiff_t ldc, const T* xn,       \
                                   const T* yn, T thr, int root, T gamma,                \
                                   unsigned char* low_rows)                              \
    {                                                                                    \
        NAME##_epi(x, mt, d, yp, nt, c, ldc, -2, yn, xn, thr, root, gamma, low_rows);    \
    }

FASTLA_GEMM_TILE(fastla_gemm_tile_f32, fastla_gemm_pack_f32, float, fastla_vf32, fastla_vi32)
FASTLA_GEMM_TILE(fastla_gemm_tile_f64, fastla_gemm_pack_f64, double, fastla_vf64, fastla_vi64)

/* One block of MRR centres from j0 against the point panel xb, folded into each lane's
 * running minimum: expanded inside FASTLA_GEMM_LABELS's function, whose locals it uses. */
#define FASTLA_GEMM_LABELS_BLOCK(T, VF, VI, MRR)                                         \
    {                                                                                    \
        VF a[MRR][NV];                                                                   \
        FASTLA_GEMM_ACC(T, VF, MRR, NV, a, c, j0, k, xb)                                 \
        _Pragma("GCC unroll 16") for (r = 0; r < MRR; r++)                               \
        {                                                                                \
            VF bv;                                                                       \
            VI jv;                                                                       \
            if (j0 + r >= k)                                                             \
                break;                                                                   \
            bv = FASTLA_VSET1(T, VF, cb[j0 + r]);                                        \
            jv = (VI){0} + (int)(j0 + r);                                                \
            _Pragma("GCC unroll 4") for (v = 0; v < NV; v++)                              \
            {                                                                            \
                VF sc = FASTLA_VFMA(T, a[r][v], m2, bv);                                 \
                VI lt = (VI)(sc < best[v]);                                              \
                best[v] = (VF)(((VI)sc & lt) | ((VI)best[v] & ~lt));                     \
                at[v] = (jv & lt) | (at[v] & ~lt);                                       \
            }                                                                            \
        }                                                                                \
    }

/* blocks of MR centres; a last one of at most MR / 2 takes a half block (k = 100 on
 * AVX-512: 12 blocks of 8 and one of 4, no centre computed twice) */
#define FASTLA_GEMM_LABELS(NAME, T, VF, VI)                                              \
    static inline ptrdiff_t NAME(const T* xp, ptrdiff_t d, const T* c, const T* cb,      \
                                 ptrdiff_t k, ptrdiff_t lo, ptrdiff_t hi, int* labels,   \
                                 const T* xrows)                                         \
    {                                                                                    \
        enum { L = FASTLA_VBYTES / sizeof(T), NV = FASTLA_GEMM_NV, NR = NV * L,          \
               MR = FASTLA_GEMM_MR };                                                    \
        const VF m2 = FASTLA_VSET1(T, VF, -2), inf = FASTLA_VSET1(T, VF, __builtin_inf()); \
        /* prefetch: the panel's rows of X spread over its centre blocks */              \
        const ptrdiff_t pf_bytes = NR * d * (ptrdiff_t)sizeof(T);                        \
        const ptrdiff_t pf_step = ((pf_bytes + 63) / 64 + (k + MR - 1) / MR - 1)         \
                                  / ((k + MR - 1) / MR) * 64;                            \
        ptrdiff_t p, j0, ff, i, pf_at, changed = 0;                                      \
        int r, v, l;                                                                     \
        for (p = lo / NR; p * NR < hi; p++) {                                            \
            const T* xb = xp + p * d * NR;                                               \
            const char* pf = xrows ? (const char*)(xrows + p * NR * d) : NULL;           \
            ptrdiff_t pf_end = pf ? (hi - p * NR < NR ? (hi - p * NR) * d * (ptrdiff_t)sizeof(T) \
                                                      : pf_bytes) : 0;                   \
            pf_at = 0;                                                                   \
            VF best[NV];                                                                 \
            VI at[NV];                                                                   \
            _Pragma("GCC unroll 4") for (v = 0; v < NV; v++)                              \
            {                                                                            \
                best[v] = inf;                                                           \
                at[v] = (VI){0};                                                         \
            }                                                                            \
            for (j0 = 0; j0 < k; j0 += MR) {                                             \
                for (; pf_at < pf_end && pf_at < (j0 / MR + 1) * pf_step; pf_at += 64)   \
                    __builtin_prefetch(pf + pf_at, 0, 1);                                \
                if (k - j0 > MR / 2)                                                     \
                    FASTLA_GEMM_LABELS_BLOCK(T, VF, VI, MR)                              \
                else                                                                     \
                    FASTLA_GEMM_LABELS_BLOCK(T, VF, VI, MR / 2)                          \
            }                                                                            \
            for (v = 0; v < NV; v++)                                                     \
                for (l = 0; l < L; l++) {                                                \
                    i = p * NR + v * L + l;                                              \
                    if (i >= lo && i < hi) {                                             \
                        changed += labels[i] != (int)at[v][l];                           \
                        labels[i] = (int)at[v][l];                                       \
                    }                                                                    \
                }                                                                        \
        }                                                                                \
        return changed;                                                                  \
    }

FASTLA_GEMM_LABELS(fastla_gemm_labels_f32, float, fastla_vf32, fastla_vi32)
FASTLA_GEMM_LABELS(fastla_gemm_labels_f64, double, fastla_vf64, fastla_vi64)

#else /* other compilers: scalar loops */

#define FASTLA_GEMM_OWN 0
#define FASTLA_GEMM_NR_F32 8
#define FASTLA_GEMM_NR_F64 8
#define FASTLA_GEMM_PAD FASTLA_GEMM_NR_F32

#define FASTLA_GEMM_TILE_SCALAR(NAME, PACK, T)                                           \
    static inline void PACK(const T* y, ptrdiff_t nt, ptrdiff_t d, T* yp)                \
    {                                                                                    \
        ptrdiff_t p, k, jj;                                                              \
        for (p = 0; p * 8 < nt; p++)                                                     \
            for (jj = 0; jj < 8; jj++)                                                   \
                for (k = 0; k < d; k++)                                                  \
                    yp[(p * d + k) * 8 + jj] = p * 8 + jj < nt ? y[(p * 8 + jj) * d + k] : 0; \
    }                                                                                    \
    static inline void NAME##_epi(const T* x, ptrdiff_t mt, ptrdiff_t d, const T* yp,    \
                                  ptrdiff_t nt, T* c, ptrdiff_t ldc, T alpha,            \
                                  const T* bias, const T* rown, T thr, int root,         \
                                  T gamma, unsigned char* low_rows)                      \
    {                                                                                    \
        ptrdiff_t i, j, k;                                                               \
        for (i = 0; i < mt; i++)                                                         \
            for (j = 0; j < nt; j++) {                                                   \
                T s = 0;                                                                 \
                for (k = 0; k < d; k++)                                                  \
                    s += x[i * d + k] * yp[((j / 8) * d + k) * 8 + j % 8];               \
                c[i * ldc + j] = bias ? s * alpha + bias[j] : s;                         \
            }                                                                            \
    }                                                                                    \
    static inline void NAME##_dist(const T* x, ptrdiff_t mt, ptrdiff_t d, const T* yp,   \
                                   ptrdiff_t nt, T* c, ptrdiff_t ldc, const T* xn,       \
                                   const T* yn, T thr, int root, T gamma,                \
                                   unsigned char* low_rows)                              \
    {                                                                                    \
        ptrdiff_t i, j;                                                                  \
        NAME##_epi(x, mt, d, yp, nt, c, ldc, -2, yn, NULL, 0, 0, 0, NULL);              \
        for (i = 0; i < mt; i++)                                                         \
            for (j = 0; j < nt; j++) {                                                   \
                T* e = c + i * ldc + j;                                                  \
                *e += xn[i];                                                             \
                if (*e < thr * (xn[i] + yn[j]))                                          \
                    low_rows[i] = 1;                                                     \
                *e = *e > 0 ? *e : 0;                                                    \
                *e = root == 3 ? (T)exp(-gamma * *e) : (root ? (T)sqrt(*e) : *e);        \
            }                                                                            \
    }

FASTLA_GEMM_TILE_SCALAR(fastla_gemm_tile_f32, fastla_gemm_pack_f32, float)
FASTLA_GEMM_TILE_SCALAR(fastla_gemm_tile_f64, fastla_gemm_pack_f64, double)

#define FASTLA_GEMM_LABELS_SCALAR(NAME, T)                                               \
    static inline ptrdiff_t NAME(const T* xp, ptrdiff_t d, const T* c, const T* cb,      \
                                 ptrdiff_t k, ptrdiff_t lo, ptrdiff_t hi, int* labels,   \
                                 const T* xrows)                                         \
    {                                                                                    \
        ptrdiff_t i, j, f, changed = 0;                                                  \
        (void)xrows;                                                                     \
        for (i = lo; i < hi; i++) {                                                      \
            T best = 0;                                                                  \
            int at = 0;                                                                  \
            for (j = 0; j < k; j++) {                                                    \
                T s = 0, sc;                                                             \
                for (f = 0; f < d; f++)                                                  \
                    s += xp[((i / 8) * d + f) * 8 + i % 8] * c[j * d + f];               \
                sc = s * -2 + cb[j];                                                     \
                if (j == 0 || sc < best) {                                               \
                    best = sc;                                                           \
                    at = (int)j;                                                         \
                }                                                                        \
            }                                                                            \
            changed += labels[i] != at;                                                  \
            labels[i] = at;                                                              \
        }                                                                                \
        return changed;                                                                  \
    }

FASTLA_GEMM_LABELS_SCALAR(fastla_gemm_labels_f32, float)
FASTLA_GEMM_LABELS_SCALAR(fastla_gemm_labels_f64, double)

#endif

/* c = alpha (x . y) + bias (see the top), on either branch's NAME##_epi */
#define FASTLA_GEMM_EX(NAME, T)                                                          \
    static inline void NAME##_ex(const T* x, ptrdiff_t mt, ptrdiff_t d, const T* yp,     \
                                 ptrdiff_t nt, T* c, ptrdiff_t ldc, T alpha,             \
                                 const T* bias)                                          \
    {                                                                                    \
        NAME##_epi(x, mt, d, yp, nt, c, ldc, alpha, bias, NULL, 0, 0, 0, NULL);          \
    }

FASTLA_GEMM_EX(fastla_gemm_tile_f32, float)
FASTLA_GEMM_EX(fastla_gemm_tile_f64, double)

/* the plain tile GEMM: alpha 1, no bias */
#define FASTLA_GEMM_PLAIN(NAME, T)                                                       \
    static inline void NAME(const T* x, ptrdiff_t mt, ptrdiff_t d, const T* yp,          \
                            ptrdiff_t nt, T* c, ptrdiff_t ldc)                           \
    {                                                                                    \
        NAME##_ex(x, mt, d, yp, nt, c, ldc, 1, NULL);                                    \
    }

FASTLA_GEMM_PLAIN(fastla_gemm_tile_f32, float)
FASTLA_GEMM_PLAIN(fastla_gemm_tile_f64, double)

/* fastla_rbf_row_<f32|f64>(g, row, nt, xi, yn, thr, gamma): the RBF epilogue of one row
 * of a BLAS tile (the builds without the fused tiles), in the row's type as in the fused
 * tiles: row[j] = exp(-gamma max(e, 0)), e = fma(-2, g[j], xi + yn[j]), by FASTLA_VEXP;
 * returns nonzero if some e fell under thr (xi + yn[j]), for the caller to redo the row's
 * cancelled entries exactly. The last partial vector runs on zero-padded lanes (e = xi
 * there, never flagged: thr <= 1). */
#if defined(__GNUC__) || defined(__clang__)
#define FASTLA_RBF_ROW(NAME, T, VF, VI)                                                  \
    static inline int NAME(const T* g, T* row, ptrdiff_t nt, T xi, const T* yn, T thr,   \
                           T gamma)                                                      \
    {                                                                                    \
        enum { L = FASTLA_VBYTES / sizeof(T) };                                          \
        const VF vx = FASTLA_VSET1(T, VF, xi), vt = FASTLA_VSET1(T, VF, thr),            \
                 vmg = FASTLA_VSET1(T, VF, -gamma), m2 = FASTLA_VSET1(T, VF, -2);        \
        VI bad = (VI){0};                                                                \
        ptrdiff_t j, l;                                                                  \
        for (j = 0; j < nt; j += L) {                                                    \
            VF gv, yv, e, s;                                                             \
            if (nt - j >= L) {                                                           \
                memcpy(&gv, g + j, sizeof(VF));                                          \
                memcpy(&yv, yn + j, sizeof(VF));                                         \
            } else {                                                                     \
                T gt[L], yt[L];                                                          \
                for (l = 0; l < L; l++) {                                                \
                    gt[l] = j + l < nt ? g[j + l] : 0;                                   \
                    yt[l] = j + l < nt ? yn[j + l] : 0;                                  \
                }                                                                        \
                memcpy(&gv, gt, sizeof(VF));                                             \
                memcpy(&yv, yt, sizeof(VF));                                             \
            }                                                                            \
            s = vx + yv;                                                                 \
            e = FASTLA_VFMA(T, gv, m2, s);                                               \
            bad |= (VI)(e < s * vt);                                                     \
            e = FASTLA_VEXP(T, VF, VI, FASTLA_VMAX(VF, (VF){0}, e) * vmg);               \
            if (nt - j >= L)                                                             \
                memcpy(row + j, &e, sizeof(VF));                                         \
            else                                                                         \
                for (l = 0; j + l < nt; l++)                                             \
                    row[j + l] = e[l];                                                   \
        }                                                                                \
        return FASTLA_VANY(bad);                                                         \
    }
FASTLA_RBF_ROW(fastla_rbf_row_f32, float, fastla_vf32, fastla_vi32)
FASTLA_RBF_ROW(fastla_rbf_row_f64, double, fastla_vf64, fastla_vi64)
#else
#define FASTLA_RBF_ROW(NAME, T)                                                          \
    static inline int NAME(const T* g, T* row, ptrdiff_t nt, T xi, const T* yn, T thr,   \
                           T gamma)                                                      \
    {                                                                                    \
        ptrdiff_t j;                                                                     \
        int bad = 0;                                                                     \
        for (j = 0; j < nt; j++) {                                                       \
            T e = xi + yn[j] - 2 * g[j];                                                 \
            bad |= e < thr * (xi + yn[j]);                                               \
            row[j] = (T)exp(-gamma * (e > 0 ? e : 0));                                   \
        }                                                                                \
        return bad;                                                                      \
    }
FASTLA_RBF_ROW(fastla_rbf_row_f32, float)
FASTLA_RBF_ROW(fastla_rbf_row_f64, double)
#endif

#endif /* FASTLA_GEMM_TILE_H */
