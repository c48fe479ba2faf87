/* Direct (non-GEMM) distance blocks of the distance engine (_cy_distances.pyx).
 *
 * fastla_direct_<f32|f64>(kind, X, d, i0, mt, Yt, acc, out, ldo, stream, aux), kind 0 = l2,
 * 1 = l1, 2 = linf, 3 = l1 through the min identity (float64 only, below; float32 takes
 * kind 1), calls fastla_direct_<metric>_<f32|f64>(X, d, i0, mt, Yt, acc, out, ldo, stream,
 * aux): for
 * the X rows i0 .. i0 + mt
 * against one transposed block of FASTLA_TJ Y rows (Yt[k * FASTLA_TJ + jj] = Y[j0 + jj, k],
 * zero-padded), acc[r * FASTLA_TJ + jj] = the raw accumulation over the d features of
 *   l1:   |x - y|            (manhattan)
 *   linf: max |x - y|        (chebyshev)
 *   l2:   (x - y)^2          (squared euclidean, small d)
 * in feature order. Rows are taken R at a time (R <= FASTLA_TM, sized to the ISA's
 * registers); rows past mt repeat the last row and land in acc's spare rows (acc holds
 * mt + FASTLA_TM rows).
 * With out != NULL the sums are final values for FASTLA_TJ full columns: row r goes to
 * out[r * ldo + 0 .. FASTLA_TJ) instead of acc (rows past mt are not written), with
 * streaming stores where ``stream`` is set and the row's 16 values are 64-byte aligned
 * (whole cache lines: no read of the lines first; the caller fences).
 *
 * Written with GCC/Clang vector extensions, one hardware register wide for the build's ISA
 * level (_vec.h), with the R rows' partial sums held in local vector variables. The same loop written in Cython kept its
 * accumulators in stack arrays that GCC did not promote to registers (a load and a store
 * per accumulator per feature) and re-tested the metric inside the feature loop. Other
 * compilers get the scalar loops, with the same summation order.
 */
#ifndef FASTLA_DIRECT_H
#define FASTLA_DIRECT_H

#include <stddef.h>
#include <string.h>

#include "_vec.h"
#include "_stream.h"

#define FASTLA_TJ 16 /* Y rows per transposed block */
#define FASTLA_TM 8  /* X rows per register block */

/* Manhattan by the min identity (kind 3): |x - y| = x + y - 2 min(x, y), so
 *   D = sum_k |x_k - y_k| = sx + sy - 2 sum_k min(x_k, y_k)
 * with sx, sy the rows' plain sums: two vector operations per pair and feature (min, and
 * the add, issued as an FMA by 1 so that the two run on different units) instead of three
 * (subtract, clear the sign, add): 1.5 -> 1.1 cycles per 8-lane step on Zen 4. The
 * identity cancels when D is small next to ax + ay (the rows' sums of |.|); its error is
 * at most (3 d + 2) u (ax + ay) (u = 2^-53; the three sums' recursive-summation bounds,
 * sum |min(x, y)| <= ax + ay, and the last two roundings). The caller passes t = K ax
 * and ty = K ay with K that bound times 2^40 (times 1.01 for the roundings of t), and a
 * result is kept only where D >= t[i] + ty[j]: there it is within 2^-40 (under 1e-12)
 * relative of the exact sum. A register block with any result below its threshold (or
 * NaN) is recomputed by the exact kernel (kind 1), as are all blocks of other compilers.
 * s, t: per X row (absolute row index); sy, ty: this Y block's FASTLA_TJ columns. */
typedef struct {
    const double* s;
    const double* t;
    const double* sy;
    const double* ty;
} fastla_l1_aux;

/* row r of the block, clamped to the last valid one */
#define FASTLA_DROW(X, d, i0, r, mt) ((X) + ((i0) + ((r) < (mt) ? (r) : (mt) - 1)) * (d))

#if defined(__GNUC__) || defined(__clang__)

/* SUB(y, b): y - b (b a scalar, broadcast). For l1 and linf the subtraction runs as a
 * fused multiply-subtract y * 1 - b where the ISA has one: the same value (one rounding of
 * the exact y - b), computed on the FMA units, which these metrics leave idle, instead of
 * competing with the accumulation for the adder units. */
#define FASTLA_PLAIN_SUB(VF, T, y, b) ((y) - (b))
#if defined(__AVX512F__)
#include <immintrin.h>
#define FASTLA_FMA_SUB(VF, T, y, b)                                                  \
    (sizeof(T) == 8 ? (VF)_mm512_fmsub_pd((__m512d)(y), _mm512_set1_pd(1.0),          \
                                          _mm512_set1_pd((double)(b)))              \
                    : (VF)_mm512_fmsub_ps((__m512)(y), _mm512_set1_ps(1.0f),          \
                                          _mm512_set1_ps((float)(b))))
#elif defined(__FMA__)
#include <immintrin.h>
#define FASTLA_FMA_SUB(VF, T, y, b)                                                  \
    (sizeof(T) == 8 ? (VF)_mm256_fmsub_pd((__m256d)(y), _mm256_set1_pd(1.0),          \
                                          _mm256_set1_pd((double)(b)))              \
                    : (VF)_mm256_fmsub_ps((__m256)(y), _mm256_set1_ps(1.0f),          \
                                          _mm256_set1_ps((float)(b))))
#else
#define FASTLA_FMA_SUB FASTLA_PLAIN_SUB
#endif

/* FASTLA_VMIN_SUB(VF, T, y, b): min(y, b) per lane (b a scalar, broadcast; finite inputs);
 * FASTLA_FMA_STEP: a += t as the FMA t * 1 + a (the same value; on the FMA units, while
 * the min runs on the adders; a plain add where the build has no FMA) */
#define FASTLA_VMIN_SUB(VF, T, y, b) FASTLA_VMIN(VF, y, FASTLA_VSET1(T, VF, b))
#define FASTLA_FMA_STEP(VF, VI, a, t)                                                \
    ((a) = FASTLA_VFMA(double, t, FASTLA_VSET1(double, VF, 1.0), a))

/* STEP(a, t) folds the difference vector t into accumulator a. */
#define FASTLA_L1_STEP(VF, VI, a, t) ((a) += (VF)((VI)(t) & absmask))
#define FASTLA_L2_STEP(VF, VI, a, t) ((a) += (t) * (t))
#define FASTLA_LINF_STEP(VF, VI, a, t)                                               \
    do {                                                                             \
        VF u_ = (VF)((VI)(t) & absmask);                                             \
        (a) = FASTLA_VMAX(VF, a, u_);                                                \
    } while (0)

/* NAME, scalar T, vector VF, its integer twin VI, STEP, SUB, MASK: T's sign-clearing
 * bits, FIN(VF, VI): a statement run on the sums a[R][NV] of rows r .. r + R before they are
 * stored (it may `continue` to skip the store), AUX: the type of the last argument */
#define FASTLA_DIRECT_VEC(NAME, T, VF, VI, STEP, SUB, MASK, FIN, AUX)                    \
    static inline void NAME(const T* X, ptrdiff_t d, ptrdiff_t i0, ptrdiff_t mt,     \
                            const T* Yt, T* acc, T* out, ptrdiff_t ldo, int stream,  \
                            AUX aux)                                                 \
    {                                                                                \
        /* R rows per step: 16 accumulators with AVX-512's 32 registers, 8 with the \
         * 16 of AVX2 and SSE2 (more would spill); at most FASTLA_TM */             \
        enum { L = FASTLA_VBYTES / sizeof(T), NV = FASTLA_TJ / L,                    \
               RA = (FASTLA_VBYTES == 64 ? 16 : 8) / NV,                             \
               R = RA < 1 ? 1 : RA > FASTLA_TM ? FASTLA_TM : RA };                   \
        const VI absmask = (VI){0} + (MASK);                                         \
        ptrdiff_t r, k;                                                              \
        int v, q;                                                                    \
        (void)absmask;                                                               \
        (void)aux;                                                                   \
        for (r = 0; r < mt; r += R) {                                                \
            const T* xr[R];                                                          \
            VF a[R][NV];                                                             \
            _Pragma("GCC unroll 8") for (q = 0; q < R; q++)                          \
            {                                                                        \
                xr[q] = FASTLA_DROW(X, d, i0, r + q, mt);                            \
                _Pragma("GCC unroll 8") for (v = 0; v < NV; v++)                     \
                    a[q][v] = (VF){0};                                               \
            }                                                                        \
            for (k = 0; k < d; k++) {                                                \
                /* y - x (x broadcast): exactly -(x - y), so |.| and (.)^2 are the   \
                 * same values as with x - y */                                      \
                _Pragma("GCC unroll 8") for (v = 0; v < NV; v++)                     \
                {                                                                    \
                    VF y;                                                            \
                    memcpy(&y, Yt + k * FASTLA_TJ + v * L, sizeof(VF));              \
                    _Pragma("GCC unroll 8") for (q = 0; q < R; q++)                  \
                    {                                                                \
                        VF t = SUB(VF, T, y, xr[q][k]);                              \
                        STEP(VF, VI, a[q][v], t);                                    \
                    }                                                                \
                }                                                                    \
            }                                                                        \
            FIN(VF, VI);                                                             \
            _Pragma("GCC unroll 8") for (q = 0; q < R; q++)                          \
            {                                                                        \
                /* final values straight into the output rows (none past mt), or    \
                 * the sums into acc (its spare rows included) */                    \
                T* dst = out ? out + (r + q) * ldo : acc + (r + q) * FASTLA_TJ;      \
                if (out && r + q >= mt)                                              \
                    break;                                                           \
                if (out && stream && ((size_t)dst & 63) == 0) {                      \
                    _Pragma("GCC unroll 8") for (v = 0; v < NV; v++)                 \
                        fastla_stream_vec(dst + v * L, a[q][v], sizeof(VF));         \
                } else {                                                             \
                    _Pragma("GCC unroll 8") for (v = 0; v < NV; v++)                 \
                        memcpy(dst + v * L, &a[q][v], sizeof(VF));                   \
                }                                                                    \
            }                                                                        \
        }                                                                            \
    }

#define FASTLA_ABS32 0x7fffffff
#define FASTLA_ABS64 0x7fffffffffffffffLL

/* kind 3's finish (see fastla_l1_aux): D = (s + sy) - 2 a into a, kept if every lane of
 * the R-row block passes D >= t + ty, else the block is recomputed by the exact kernel */
#define FASTLA_L1MIN_FIN(VF, VI)                                                     \
    {                                                                                \
        VI bad_ = (VI){0};                                                           \
        int any_ = 0;                                                                \
        _Pragma("GCC unroll 8") for (q = 0; q < R; q++)                              \
        {                                                                            \
            const ptrdiff_t row_ = i0 + (r + q < mt ? r + q : mt - 1);               \
            _Pragma("GCC unroll 8") for (v = 0; v < NV; v++)                         \
            {                                                                        \
                VF sy_, ty_;                                                         \
                memcpy(&sy_, aux->sy + v * L, sizeof(VF));                           \
                memcpy(&ty_, aux->ty + v * L, sizeof(VF));                           \
                a[q][v] = (aux->s[row_] + sy_) - (a[q][v] + a[q][v]);                \
                bad_ |= ~(VI)(a[q][v] >= aux->t[row_] + ty_);                        \
            }                                                                        \
        }                                                                            \
        for (v = 0; v < L; v++)                                                      \
            any_ |= bad_[v] != 0;                                                    \
        if (any_) {                                                                  \
            fastla_direct_l1_f64(X, d, i0 + r, mt - r < R ? mt - r : R, Yt,          \
                                 acc + r * FASTLA_TJ, out ? out + r * ldo : NULL, ldo, \
                                 stream, NULL);                                      \
            continue;                                                                \
        }                                                                            \
    }

#define FASTLA_DIRECT_VEC_PLAIN(NAME, T, VF, VI, STEP, SUB, MASK)                   \
    FASTLA_DIRECT_VEC(NAME, T, VF, VI, STEP, SUB, MASK, FASTLA_NO_FIN, const void*)
#define FASTLA_NO_FIN(VF, VI) (void)0

FASTLA_DIRECT_VEC_PLAIN(fastla_direct_l1_f32, float, fastla_vf32, fastla_vi32, FASTLA_L1_STEP, FASTLA_FMA_SUB, FASTLA_ABS32)
FASTLA_DIRECT_VEC_PLAIN(fastla_direct_l1_f64, double, fastla_vf64, fastla_vi64, FASTLA_L1_STEP, FASTLA_FMA_SUB, FASTLA_ABS64)
FASTLA_DIRECT_VEC_PLAIN(fastla_direct_l2_f32, float, fastla_vf32, fastla_vi32, FASTLA_L2_STEP, FASTLA_PLAIN_SUB, FASTLA_ABS32)
FASTLA_DIRECT_VEC_PLAIN(fastla_direct_l2_f64, double, fastla_vf64, fastla_vi64, FASTLA_L2_STEP, FASTLA_PLAIN_SUB, FASTLA_ABS64)
FASTLA_DIRECT_VEC_PLAIN(fastla_direct_linf_f32, float, fastla_vf32, fastla_vi32, FASTLA_LINF_STEP, FASTLA_FMA_SUB, FASTLA_ABS32)
FASTLA_DIRECT_VEC_PLAIN(fastla_direct_linf_f64, double, fastla_vf64, fastla_vi64, FASTLA_LINF_STEP, FASTLA_FMA_SUB, FASTLA_ABS64)
FASTLA_DIRECT_VEC(fastla_direct_l1min_f64, double, fastla_vf64, fastla_vi64, FASTLA_FMA_STEP, FASTLA_VMIN_SUB, FASTLA_ABS64, FASTLA_L1MIN_FIN, const fastla_l1_aux*)

#else /* other compilers: scalar loops, same order */

#include <math.h>

#define FASTLA_L1_SSTEP(a, t) ((a) += fabs(t))
#define FASTLA_L2_SSTEP(a, t) ((a) += (t) * (t))
#define FASTLA_LINF_SSTEP(a, t) ((a) = fabs(t) > (a) ? fabs(t) : (a))

#define FASTLA_DIRECT_SCALAR(NAME, T, STEP)                                          \
    static inline void NAME(const T* X, ptrdiff_t d, ptrdiff_t i0, ptrdiff_t mt,     \
                            const T* Yt, T* acc, T* out, ptrdiff_t ldo, int stream,  \
                            const void* aux)                                         \
    {                                                                                \
        ptrdiff_t r, q, k;                                                           \
        (void)aux;                                                                   \
        (void)stream;                                                                \
        int jj;                                                                      \
        for (r = 0; r < mt; r += FASTLA_TM) {                                        \
            for (q = 0; q < FASTLA_TM; q++) {                                        \
                const T* x = FASTLA_DROW(X, d, i0, r + q, mt);                       \
                T a[FASTLA_TJ];                                                      \
                for (jj = 0; jj < FASTLA_TJ; jj++)                                   \
                    a[jj] = 0;                                                       \
                for (k = 0; k < d; k++)                                              \
                    for (jj = 0; jj < FASTLA_TJ; jj++) {                             \
                        T t = x[k] - Yt[k * FASTLA_TJ + jj];                         \
                        STEP(a[jj], t);                                              \
                    }                                                                \
                for (jj = 0; jj < FASTLA_TJ; jj++) {                                 \
                    if (!out)                                                        \
                        acc[(r + q) * FASTLA_TJ + jj] = a[jj];                       \
                    else if (r + q < mt)                                             \
                        out[(r + q) * ldo + jj] = a[jj];                             \
                }                                                                    \
            }                                                                        \
        }                                                                            \
    }

FASTLA_DIRECT_SCALAR(fastla_direct_l1_f32, float, FASTLA_L1_SSTEP)
FASTLA_DIRECT_SCALAR(fastla_direct_l1_f64, double, FASTLA_L1_SSTEP)
FASTLA_DIRECT_SCALAR(fastla_direct_l2_f32, float, FASTLA_L2_SSTEP)
FASTLA_DIRECT_SCALAR(fastla_direct_l2_f64, double, FASTLA_L2_SSTEP)
FASTLA_DIRECT_SCALAR(fastla_direct_linf_f32, float, FASTLA_LINF_SSTEP)
FASTLA_DIRECT_SCALAR(fastla_direct_linf_f64, double, FASTLA_LINF_SSTEP)
#define fastla_direct_l1min_f64 fastla_direct_l1_f64 /* the exact kernel */

#endif

/* one entry per type: kind 0 = l2 (squared differences), 1 = l1, 2 = linf, 3 = l1 by the
 * min identity (aux; float64, else kind 1) */
#define FASTLA_DIRECT_ENTRY(NAME, T, L2, L1, LINF, L1MIN)                            \
    static inline void NAME(int kind, const T* X, ptrdiff_t d, ptrdiff_t i0,         \
                            ptrdiff_t mt, const T* Yt, T* acc, T* out, ptrdiff_t ldo, \
                            int stream, const fastla_l1_aux* aux)                    \
    {                                                                                \
        if (kind == 3)                                                               \
            L1MIN(X, d, i0, mt, Yt, acc, out, ldo, stream, aux);                     \
        else if (kind == 1)                                                          \
            L1(X, d, i0, mt, Yt, acc, out, ldo, stream, NULL);                       \
        else if (kind == 2)                                                          \
            LINF(X, d, i0, mt, Yt, acc, out, ldo, stream, NULL);                     \
        else                                                                         \
            L2(X, d, i0, mt, Yt, acc, out, ldo, stream, NULL);                       \
    }

#define FASTLA_DIRECT_L1_ANY_F32(X, d, i0, mt, Yt, acc, out, ldo, stream, aux)       \
    fastla_direct_l1_f32(X, d, i0, mt, Yt, acc, out, ldo, stream, NULL)
FASTLA_DIRECT_ENTRY(fastla_direct_f32, float, fastla_direct_l2_f32, fastla_direct_l1_f32,
                    fastla_direct_linf_f32, FASTLA_DIRECT_L1_ANY_F32)
/* kind 3 pays where the add can go to the FMA units (AVX2 with FMA, AVX-512: 1.3x
 * faster); on SSE2 the min and the add compete for the adders, so it runs kind 1 */
#if defined(__FMA__) || defined(__AVX512F__)
#define FASTLA_DIRECT_L1MIN_F64 fastla_direct_l1min_f64
#else
#define FASTLA_DIRECT_L1MIN_F64(X, d, i0, mt, Yt, acc, out, ldo, stream, aux)        \
    fastla_direct_l1_f64(X, d, i0, mt, Yt, acc, out, ldo, stream, NULL)
#endif
FASTLA_DIRECT_ENTRY(fastla_direct_f64, double, fastla_direct_l2_f64, fastla_direct_l1_f64,
                    fastla_direct_linf_f64, FASTLA_DIRECT_L1MIN_F64)

#endif /* FASTLA_DIRECT_H */
