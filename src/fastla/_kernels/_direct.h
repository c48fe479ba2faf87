/* Direct (non-GEMM) distance blocks of the distance engine (_cy_distances.pyx).
 *
 * fastla_direct_<metric>_<f32|f64>(X, d, i0, mt, Yt, acc): for the X rows i0 .. i0 + mt
 * against one transposed block of FASTLA_TJ Y rows (Yt[k * FASTLA_TJ + jj] = Y[j0 + jj, k],
 * zero-padded), acc[r * FASTLA_TJ + jj] = the raw accumulation over the d features of
 *   l1:   |x - y|            (manhattan)
 *   linf: max |x - y|        (chebyshev)
 *   l2:   (x - y)^2          (squared euclidean, small d)
 * in feature order. Rows are taken four at a time; rows past mt repeat the last row and
 * land in acc's spare rows (acc holds round_up(mt, 4) rows).
 * With out != NULL the sums are final values for FASTLA_TJ full columns: row r goes to
 * out[r * ldo + 0 .. FASTLA_TJ) instead of acc (rows past mt are not written).
 *
 * Written with GCC/Clang vector extensions, one hardware register wide for the build's ISA
 * level (16 bytes on the baseline wheel, 32 on v3, 64 on v4), with the four rows' partial
 * sums held in local vector variables. The same loop written in Cython kept its
 * accumulators in stack arrays that GCC did not promote to registers (a load and a store
 * per accumulator per feature) and re-tested the metric inside the feature loop. Other
 * compilers get the scalar loops, with the same summation order.
 */
#ifndef FASTLA_DIRECT_H
#define FASTLA_DIRECT_H

#include <stddef.h>
#include <string.h>
#if defined(_MSC_VER) && !defined(__cplusplus) && !defined(inline)
#define inline __inline
#endif

#define FASTLA_TJ 16 /* Y rows per transposed block */
#define FASTLA_TM 4  /* X rows per register block */

/* row r of the block, clamped to the last valid one */
#define FASTLA_DROW(X, d, i0, r, mt) ((X) + ((i0) + ((r) < (mt) ? (r) : (mt) - 1)) * (d))

#if defined(__GNUC__) || defined(__clang__)

#if defined(__AVX512F__)
#define FASTLA_DBYTES 64
#elif defined(__AVX__)
#define FASTLA_DBYTES 32
#else
#define FASTLA_DBYTES 16
#endif

typedef float fastla_dvf32 __attribute__((vector_size(FASTLA_DBYTES)));
typedef int fastla_dvi32 __attribute__((vector_size(FASTLA_DBYTES)));
typedef double fastla_dvf64 __attribute__((vector_size(FASTLA_DBYTES)));
typedef long long fastla_dvi64 __attribute__((vector_size(FASTLA_DBYTES)));

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

/* STEP(a, t) folds the difference vector t into accumulator a. */
#define FASTLA_L1_STEP(VF, VI, a, t) ((a) += (VF)((VI)(t) & absmask))
#define FASTLA_L2_STEP(VF, VI, a, t) ((a) += (t) * (t))
#define FASTLA_LINF_STEP(VF, VI, a, t)                                               \
    do {                                                                             \
        VF u_ = (VF)((VI)(t) & absmask);                                             \
        VI gt_ = (VI)(u_ > (a));                                                     \
        (a) = (VF)(((VI)u_ & gt_) | ((VI)(a) & ~gt_));                               \
    } while (0)

/* NAME, scalar T, vector VF, its integer twin VI, STEP, SUB, MASK: T's sign-clearing bits */
#define FASTLA_DIRECT_VEC(NAME, T, VF, VI, STEP, SUB, MASK)                               \
    static inline void NAME(const T* X, ptrdiff_t d, ptrdiff_t i0, ptrdiff_t mt,     \
                            const T* Yt, T* acc, T* out, ptrdiff_t ldo)              \
    {                                                                                \
        enum { L = FASTLA_DBYTES / sizeof(T), NV = FASTLA_TJ / L };                  \
        const VI absmask = (VI){0} + (MASK);                                         \
        ptrdiff_t r, k;                                                              \
        int v;                                                                       \
        (void)absmask;                                                               \
        for (r = 0; r < mt; r += FASTLA_TM) {                                        \
            const T* x0 = FASTLA_DROW(X, d, i0, r, mt);                              \
            const T* x1 = FASTLA_DROW(X, d, i0, r + 1, mt);                          \
            const T* x2 = FASTLA_DROW(X, d, i0, r + 2, mt);                          \
            const T* x3 = FASTLA_DROW(X, d, i0, r + 3, mt);                          \
            VF a0[NV], a1[NV], a2[NV], a3[NV];                                       \
            for (v = 0; v < NV; v++)                                                 \
                a0[v] = a1[v] = a2[v] = a3[v] = (VF){0};                             \
            for (k = 0; k < d; k++) {                                                \
                /* y - x (x broadcast): exactly -(x - y), so |.| and (.)^2 are the   \
                 * same values as with x - y */                                      \
                const T b0 = x0[k], b1 = x1[k], b2 = x2[k], b3 = x3[k];              \
                _Pragma("GCC unroll 8") for (v = 0; v < NV; v++)                     \
                {                                                                    \
                    VF y, t;                                                         \
                    memcpy(&y, Yt + k * FASTLA_TJ + v * L, sizeof(VF));              \
                    t = SUB(VF, T, y, b0);                                                    \
                    STEP(VF, VI, a0[v], t);                                          \
                    t = SUB(VF, T, y, b1);                                                    \
                    STEP(VF, VI, a1[v], t);                                          \
                    t = SUB(VF, T, y, b2);                                                    \
                    STEP(VF, VI, a2[v], t);                                          \
                    t = SUB(VF, T, y, b3);                                                    \
                    STEP(VF, VI, a3[v], t);                                          \
                }                                                                    \
            }                                                                        \
            if (out) { /* final values: straight into the output rows */             \
                for (v = 0; v < NV; v++) {                                           \
                    memcpy(out + r * ldo + v * L, &a0[v], sizeof(VF));               \
                    if (r + 1 < mt)                                                  \
                        memcpy(out + (r + 1) * ldo + v * L, &a1[v], sizeof(VF));     \
                    if (r + 2 < mt)                                                  \
                        memcpy(out + (r + 2) * ldo + v * L, &a2[v], sizeof(VF));     \
                    if (r + 3 < mt)                                                  \
                        memcpy(out + (r + 3) * ldo + v * L, &a3[v], sizeof(VF));     \
                }                                                                    \
                continue;                                                            \
            }                                                                        \
            for (v = 0; v < NV; v++) {                                               \
                memcpy(acc + r * FASTLA_TJ + v * L, &a0[v], sizeof(VF));             \
                memcpy(acc + (r + 1) * FASTLA_TJ + v * L, &a1[v], sizeof(VF));       \
                memcpy(acc + (r + 2) * FASTLA_TJ + v * L, &a2[v], sizeof(VF));       \
                memcpy(acc + (r + 3) * FASTLA_TJ + v * L, &a3[v], sizeof(VF));       \
            }                                                                        \
        }                                                                            \
    }

#define FASTLA_ABS32 0x7fffffff
#define FASTLA_ABS64 0x7fffffffffffffffLL

FASTLA_DIRECT_VEC(fastla_direct_l1_f32, float, fastla_dvf32, fastla_dvi32, FASTLA_L1_STEP, FASTLA_FMA_SUB, FASTLA_ABS32)
FASTLA_DIRECT_VEC(fastla_direct_l1_f64, double, fastla_dvf64, fastla_dvi64, FASTLA_L1_STEP, FASTLA_FMA_SUB, FASTLA_ABS64)
FASTLA_DIRECT_VEC(fastla_direct_l2_f32, float, fastla_dvf32, fastla_dvi32, FASTLA_L2_STEP, FASTLA_PLAIN_SUB, FASTLA_ABS32)
FASTLA_DIRECT_VEC(fastla_direct_l2_f64, double, fastla_dvf64, fastla_dvi64, FASTLA_L2_STEP, FASTLA_PLAIN_SUB, FASTLA_ABS64)
FASTLA_DIRECT_VEC(fastla_direct_linf_f32, float, fastla_dvf32, fastla_dvi32, FASTLA_LINF_STEP, FASTLA_FMA_SUB, FASTLA_ABS32)
FASTLA_DIRECT_VEC(fastla_direct_linf_f64, double, fastla_dvf64, fastla_dvi64, FASTLA_LINF_STEP, FASTLA_FMA_SUB, FASTLA_ABS64)

#else /* other compilers: scalar loops, same order */

#include <math.h>

#define FASTLA_L1_SSTEP(a, t) ((a) += fabs(t))
#define FASTLA_L2_SSTEP(a, t) ((a) += (t) * (t))
#define FASTLA_LINF_SSTEP(a, t) ((a) = fabs(t) > (a) ? fabs(t) : (a))

#define FASTLA_DIRECT_SCALAR(NAME, T, STEP)                                          \
    static inline void NAME(const T* X, ptrdiff_t d, ptrdiff_t i0, ptrdiff_t mt,     \
                            const T* Yt, T* acc, T* out, ptrdiff_t ldo)              \
    {                                                                                \
        ptrdiff_t r, q, k;                                                           \
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

#endif

#endif /* FASTLA_DIRECT_H */
