/* Vectorised helpers of the k-means kernels (_cy_kmeans.pyx), written with GCC/Clang vector
 * extensions so that each ISA build (baseline, v3, v4) gets its own vector code; other
 * compilers get plain scalar loops with the same results.
 *
 * 1. Row argmin.
 *
 * fastla_argmin_f32 / _f64 (row, k): the first index of the smallest of row[0..k), ties to
 * the lower index: exactly what a scalar scan with a strict "<" returns. The rows are
 * finite (the public layer rejects NaN and inf).
 *
 * A scalar scan has a data-dependent branch per entry and costs about as much as the GEMM
 * block whose rows it reduces, and GCC does not vectorise it (nor an if-converted version)
 * without -ffast-math. Here one register's worth of independent lanes keep their own
 * minimum and the block offset where it first appeared (strict "<", so each lane keeps its
 * first occurrence); the answer is the smallest "offset + lane" among the lanes holding the
 * overall minimum. GCC and Clang vector extensions, one register wide for the build's ISA
 * level (16 bytes on the baseline wheel, 32 on v3, 64 on v4: wider generic vectors are
 * lowered to scalar code); other compilers get the scalar scan.
 */
#ifndef FASTLA_KMEANS_VEC_H
#define FASTLA_KMEANS_VEC_H

#include <stddef.h>
#include <string.h>

#include "_vec.h"
#include "_stream.h" /* fastla_prefetch_rows */

#define FASTLA_ARGMIN_SCALAR(NAME, T)                                  \
    static inline int NAME(const T* row, int k)                        \
    {                                                                  \
        int j, best = 0;                                               \
        T v = row[0];                                                  \
        for (j = 1; j < k; j++) {                                      \
            if (row[j] < v) {                                          \
                v = row[j];                                            \
                best = j;                                              \
            }                                                          \
        }                                                              \
        return best;                                                   \
    }

FASTLA_ARGMIN_SCALAR(fastla_argmin_scalar_f32, float)
FASTLA_ARGMIN_SCALAR(fastla_argmin_scalar_f64, double)

#if defined(__GNUC__) || defined(__clang__)

/* The lanes' (minimum, first index) -> the row's: mn = the smallest lane value, best =
 * the smallest "offset + lane" among the lanes holding it. AVX-512 has reductions and
 * masks for it (a few shuffle steps instead of two scalar passes over 16 lanes). */
#if defined(__AVX512F__)
#include <immintrin.h>
#define FASTLA_ARGMIN_LANES(T, m, at, mn, best, l)                                 \
    do {                                                                           \
        (void)(l);                                                                 \
        if (sizeof(T) == 4) {                                                      \
            __m512 mv_ = (__m512)(m);                                              \
            float mf_ = _mm512_reduce_min_ps(mv_);                                 \
            __mmask16 eq_ = _mm512_cmpeq_ps_mask(mv_, _mm512_set1_ps(mf_));        \
            __m512i key_ = _mm512_add_epi32((__m512i)(at), _mm512_setr_epi32(      \
                0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));            \
            (mn) = (T)mf_;                                                         \
            (best) = _mm512_mask_reduce_min_epi32(eq_, key_);                      \
        } else {                                                                   \
            __m512d mv_ = (__m512d)(m);                                            \
            double md_ = _mm512_reduce_min_pd(mv_);                                \
            __mmask8 eq_ = _mm512_cmpeq_pd_mask(mv_, _mm512_set1_pd(md_));         \
            __m512i key_ = _mm512_add_epi64((__m512i)(at),                         \
                                            _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7)); \
            (mn) = (T)md_;                                                         \
            (best) = (int)_mm512_mask_reduce_min_epi64(eq_, key_);                 \
        }                                                                          \
    } while (0)
#else
#define FASTLA_ARGMIN_LANES(T, m, at, mn, best, l)                                 \
    do {                                                                           \
        (mn) = (m)[0];                                                             \
        for ((l) = 1; (l) < FASTLA_LANES; (l)++)                                   \
            if ((m)[l] < (mn))                                                     \
                (mn) = (m)[l];                                                     \
        (best) = k;                                                                \
        for ((l) = 0; (l) < FASTLA_LANES; (l)++)                                   \
            if ((m)[l] == (mn) && (int)(at)[l] + (l) < (best))                     \
                (best) = (int)(at)[l] + (l);                                       \
    } while (0)
#endif

/* VF: value vector, VI: integer vector of the same lane width (comparison masks). */
#define FASTLA_ARGMIN_VEC(NAME, SCALAR, T, VF, VI)                                 \
    static inline int NAME(const T* row, int k)                                    \
    {                                                                              \
        enum { FASTLA_LANES = FASTLA_VBYTES / sizeof(T) };                         \
        int kb = k - k % FASTLA_LANES, j0, l, best;                                \
        VF m, v;                                                                   \
        VI at, lt;                                                                 \
        T mn;                                                                      \
        if (kb == 0)                                                               \
            return SCALAR(row, k);                                                 \
        memcpy(&m, row, sizeof(VF));                                               \
        at = (VI){0};                                                              \
        for (j0 = FASTLA_LANES; j0 < kb; j0 += FASTLA_LANES) {                     \
            memcpy(&v, row + j0, sizeof(VF));                                      \
            lt = (VI)(v < m);                                                      \
            m = (VF)(((VI)v & lt) | ((VI)m & ~lt));                                \
            at = (((VI){0} + j0) & lt) | (at & ~lt);                               \
        }                                                                          \
        FASTLA_ARGMIN_LANES(T, m, at, mn, best, l);                                \
        for (j0 = kb; j0 < k; j0++) /* the tail: later indices, strict "<" */      \
            if (row[j0] < mn) {                                                    \
                mn = row[j0];                                                      \
                best = j0;                                                         \
            }                                                                      \
        return best;                                                               \
    }

FASTLA_ARGMIN_VEC(fastla_argmin_f32, fastla_argmin_scalar_f32, float, fastla_vf32, fastla_vi32)
FASTLA_ARGMIN_VEC(fastla_argmin_f64, fastla_argmin_scalar_f64, double, fastla_vf64, fastla_vi64)

#else

#define fastla_argmin_f32 fastla_argmin_scalar_f32
#define fastla_argmin_f64 fastla_argmin_scalar_f64

#endif

/* 2. k-means++ trial distances.
 *
 * fastla_pp_rows_f32 / _f64 (X, d, i0, i1, ct, acc, sel): for rows i0..i1-1 of X (n x d,
 * row major; rows sel[i0..i1-1] when sel is given) and 8 trial centres stored
 * transposed (ct[f * 8 + t], float64),
 * acc[(i - i0) * 8 + t] = sum over f, in feature order, of (x_if - ct[f * 8 + t])^2 in
 * float64. The order of each sum is that of a scalar loop over f; what the vectors add is
 * independence: the 8 trials of a row sit in one register (AVX-512) or two, and eight or
 * four rows are walked together so that eight accumulation chains run at once instead of
 * one row's (the scalar loop was bound by the latency of its additions).
 */
#define FASTLA_PP_FB 64 /* features per converted block */

#if defined(__GNUC__) || defined(__clang__)

#if defined(__AVX512F__)

/* AVX-512: a row's 8 trials fill one register; eight rows are walked together. */
typedef double fastla_v8d __attribute__((vector_size(64)));
#define FASTLA_PP_R 8
#define FASTLA_PP_DECL                                                             \
    fastla_v8d a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, a4 = {0}, a5 = {0},         \
               a6 = {0}, a7 = {0}, c, t
#define FASTLA_PP_BODY                                                             \
    for (j = 0; j < fb; j++) {                                                     \
        memcpy(&c, ct + (f0 + j) * 8, sizeof c);                                   \
        t = c - xd[j]; a0 += t * t;                                                \
        t = c - xd[FASTLA_PP_FB + j]; a1 += t * t;                                 \
        t = c - xd[2 * FASTLA_PP_FB + j]; a2 += t * t;                             \
        t = c - xd[3 * FASTLA_PP_FB + j]; a3 += t * t;                             \
        t = c - xd[4 * FASTLA_PP_FB + j]; a4 += t * t;                             \
        t = c - xd[5 * FASTLA_PP_FB + j]; a5 += t * t;                             \
        t = c - xd[6 * FASTLA_PP_FB + j]; a6 += t * t;                             \
        t = c - xd[7 * FASTLA_PP_FB + j]; a7 += t * t;                             \
    }
#define FASTLA_PP_STORE                                                            \
    memcpy(o, &a0, 64); memcpy(o + 8, &a1, 64); memcpy(o + 16, &a2, 64);           \
    memcpy(o + 24, &a3, 64); memcpy(o + 32, &a4, 64); memcpy(o + 40, &a5, 64);     \
    memcpy(o + 48, &a6, 64); memcpy(o + 56, &a7, 64)

#else

/* SSE2 / AVX2: a row's 8 trials in two 4-double vectors; four rows walked together. */
typedef double fastla_v4d __attribute__((vector_size(32)));
#define FASTLA_PP_R 4
#define FASTLA_PP_DECL                                                             \
    fastla_v4d a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, b0 = {0}, b1 = {0},         \
               b2 = {0}, b3 = {0}, c, h, t
#define FASTLA_PP_BODY                                                             \
    for (j = 0; j < fb; j++) {                                                     \
        memcpy(&c, ct + (f0 + j) * 8, sizeof c);                                   \
        memcpy(&h, ct + (f0 + j) * 8 + 4, sizeof h);                               \
        t = c - xd[j]; a0 += t * t;                                                \
        t = h - xd[j]; b0 += t * t;                                                \
        t = c - xd[FASTLA_PP_FB + j]; a1 += t * t;                                 \
        t = h - xd[FASTLA_PP_FB + j]; b1 += t * t;                                 \
        t = c - xd[2 * FASTLA_PP_FB + j]; a2 += t * t;                             \
        t = h - xd[2 * FASTLA_PP_FB + j]; b2 += t * t;                             \
        t = c - xd[3 * FASTLA_PP_FB + j]; a3 += t * t;                             \
        t = h - xd[3 * FASTLA_PP_FB + j]; b3 += t * t;                             \
    }
#define FASTLA_PP_STORE                                                            \
    memcpy(o, &a0, 32); memcpy(o + 4, &b0, 32); memcpy(o + 8, &a1, 32);            \
    memcpy(o + 12, &b1, 32); memcpy(o + 16, &a2, 32); memcpy(o + 20, &b2, 32);     \
    memcpy(o + 24, &a3, 32); memcpy(o + 28, &b3, 32)

#endif

/* Rows are taken FASTLA_PP_R at a time (a short last group repeats its last row; the
 * repeats are computed, not stored). Each group's features are converted to float64
 * FASTLA_PP_FB at a time into a small buffer that the inner loop broadcasts from L1;
 * (c - x)^2 == (x - c)^2 exactly. */
#define FASTLA_PP_ROWS(NAME, T)                                                    \
    static inline void NAME(const T* X, ptrdiff_t d, ptrdiff_t i0, ptrdiff_t i1, const double* ct, \
                            double* acc, const ptrdiff_t* sel)                      \
    {                                                                              \
        double xd[FASTLA_PP_R * FASTLA_PP_FB];                                     \
        double tmp[FASTLA_PP_R * 8];                                               \
        ptrdiff_t i, f0, row;                                                           \
        int r, j, fb, nr;                                                          \
        for (i = i0; i < i1; i += FASTLA_PP_R) {                                   \
            FASTLA_PP_DECL;                                                        \
            nr = (i + FASTLA_PP_R <= i1) ? FASTLA_PP_R : (int)(i1 - i);            \
            double* o = (nr == FASTLA_PP_R) ? acc + (i - i0) * 8 : tmp;            \
            for (f0 = 0; f0 < d; f0 += FASTLA_PP_FB) {                             \
                fb = (d - f0 < FASTLA_PP_FB) ? (int)(d - f0) : FASTLA_PP_FB;       \
                for (r = 0; r < FASTLA_PP_R; r++) {                                \
                    row = i + (r < nr ? r : nr - 1);                               \
                    if (sel)                                                       \
                        row = sel[row];                                            \
                    for (j = 0; j < fb; j++)                                       \
                        xd[r * FASTLA_PP_FB + j] = (double)X[row * d + f0 + j];    \
                }                                                                  \
                FASTLA_PP_BODY                                                     \
            }                                                                      \
            FASTLA_PP_STORE;                                                       \
            if (o == tmp)                                                          \
                memcpy(acc + (i - i0) * 8, tmp, (size_t)nr * 8 * sizeof(double));  \
        }                                                                          \
    }

#else

#define FASTLA_PP_ROWS(NAME, T)                                                    \
    static inline void NAME(const T* X, ptrdiff_t d, ptrdiff_t i0, ptrdiff_t i1, const double* ct, \
                            double* acc, const ptrdiff_t* sel)                      \
    {                                                                              \
        ptrdiff_t i, f, row;                                                       \
        int t;                                                                     \
        double v;                                                                  \
        for (i = i0; i < i1; i++) {                                                \
            double* o = acc + (i - i0) * 8;                                        \
            row = sel ? sel[i] : i;                                                \
            for (t = 0; t < 8; t++)                                                \
                o[t] = 0.0;                                                        \
            for (f = 0; f < d; f++)                                                \
                for (t = 0; t < 8; t++) {                                          \
                    v = (double)X[row * d + f] - ct[f * 8 + t];                    \
                    o[t] += v * v;                                                 \
                }                                                                  \
        }                                                                          \
    }

#endif

FASTLA_PP_ROWS(fastla_pp_rows_f32, float)
FASTLA_PP_ROWS(fastla_pp_rows_f64, double)

/* 2b. k-means++ float32 screen (float32 data).
 *
 * fastla_pp_screen_f32 (X, d, i0, i1, ctf, closest, margin, sel) -> ns: the rows of
 * [i0, i1) whose trial distances need computing exactly, listed in sel[0..ns). Each
 * row's 8 trials (transposed in ctf[f * 8 + t], float32) are first summed in float32:
 * every term is a float32 difference of two float32 values, so the sum is within
 * (d + 3) u of the exact distance (u = 2^-24; relative, while no term underflows and
 * the sum stays finite). A row whose sums all exceed closest[i] (1 + margin), with
 * margin four times that bound, can gain nothing from any trial: min(closest, exact)
 * is closest there, bitwise. Only the other rows (on the benchmark data 5% of them on
 * average over a k=256 seeding, 14% in the first quarter of the steps) go through the
 * exact float64 pass (2.). The screen is half the work of the exact pass per row:
 * float32 lanes, no conversion to float64; 8 rows walked together.
 */
#if defined(__GNUC__) || defined(__clang__)
typedef float fastla_v8f __attribute__((vector_size(32)));
typedef int fastla_v8i __attribute__((vector_size(32)));
#if defined(__AVX__)
#include <immintrin.h>
#endif

/* 1 if any of the 8 sums is not safely above thr. NaN-safe (a NaN compares unsafe).
 * Sums below 1e-30 are unsafe: their terms may have underflowed, where the error is
 * absolute, not relative. An overflowed sum (inf) would be safe already (the exact
 * distance is then at least FLT_MAX (1 - (d + 3) u), above any thr that converts to a
 * finite float32); the upper check only makes that explicit. */
static inline int fastla_pp_needs_exact(fastla_v8f a, double thr)
{
    /* thr rounded up to float32 (a > thr32 implies a > thr); inf when out of range */
    const float t32 = (float)(thr * (1.0 + 9.5367431640625e-07));
    const fastla_v8i safe = (a > t32) & (a >= 1e-30f) & (a <= 3.0e38f);
#if defined(__AVX__)
    /* one sign-bit mask of the 8 lanes (the loop below compiles to 8 extractions) */
    return _mm256_movemask_ps((__m256)safe) != 0xff;
#else
    int m = -1, t;
    for (t = 0; t < 8; t++)
        m &= safe[t];
    return m == 0;
#endif
}

/* a[r] += (c - ROWS[r * S + J])^2 for the 8 rows r of a group: the screens' step */
#define FASTLA_PP_SCREEN8(a, c, ROWS, S, J)                                        \
    do {                                                                           \
        fastla_v8f t_;                                                             \
        t_ = (c) - (ROWS)[(J)]; (a)[0] += t_ * t_;                                 \
        t_ = (c) - (ROWS)[(S) + (J)]; (a)[1] += t_ * t_;                           \
        t_ = (c) - (ROWS)[2 * (S) + (J)]; (a)[2] += t_ * t_;                       \
        t_ = (c) - (ROWS)[3 * (S) + (J)]; (a)[3] += t_ * t_;                       \
        t_ = (c) - (ROWS)[4 * (S) + (J)]; (a)[4] += t_ * t_;                       \
        t_ = (c) - (ROWS)[5 * (S) + (J)]; (a)[5] += t_ * t_;                       \
        t_ = (c) - (ROWS)[6 * (S) + (J)]; (a)[6] += t_ * t_;                       \
        t_ = (c) - (ROWS)[7 * (S) + (J)]; (a)[7] += t_ * t_;                       \
    } while (0)

static inline ptrdiff_t fastla_pp_screen_f32(const float* X, ptrdiff_t d, ptrdiff_t i0,
                                             ptrdiff_t i1, const float* ctf,
                                             const double* closest, double margin,
                                             ptrdiff_t* sel)
{
    ptrdiff_t i, f, r, ns = 0;
    const double scale = 1.0 + margin;
    fastla_v8f c, t;
    for (i = i0; i + 8 <= i1; i += 8) {
        const float* x = X + i * d;
        fastla_v8f a[8] = {{0}};
        /* the group four ahead: the rows stream from memory */
        fastla_prefetch_rows(x + 32 * d, 8 * d * (ptrdiff_t)sizeof(float));
        for (f = 0; f < d; f++) {
            memcpy(&c, ctf + f * 8, sizeof c);
            FASTLA_PP_SCREEN8(a, c, x, d, f);
        }
        for (r = 0; r < 8; r++)
            if (fastla_pp_needs_exact(a[r], closest[i + r] * scale))
                sel[ns++] = i + r;
    }
    for (; i < i1; i++) {
        const float* x = X + i * d;
        fastla_v8f a = {0};
        for (f = 0; f < d; f++) {
            memcpy(&c, ctf + f * 8, sizeof c);
            t = c - x[f]; a += t * t;
        }
        if (fastla_pp_needs_exact(a, closest[i] * scale)) sel[ns++] = i;
    }
    return ns;
}
#else
/* other compilers: no screen, every row is computed exactly */
static inline ptrdiff_t fastla_pp_screen_f32(const float* X, ptrdiff_t d, ptrdiff_t i0,
                                             ptrdiff_t i1, const float* ctf,
                                             const double* closest, double margin,
                                             ptrdiff_t* sel)
{
    ptrdiff_t i, ns = 0;
    (void)X; (void)d; (void)ctf; (void)closest; (void)margin;
    for (i = i0; i < i1; i++)
        sel[ns++] = i;
    return ns;
}
#endif

/* 2c. k-means++ half-precision screen (float32 data, builds with F16C: v3 and v4).
 *
 * The float32 screen (2b) reads all of X every step: at 200,000 x 64 that is 51 MB a
 * step from memory, and the step takes 17 ns a row against 12-13 ns when X is in the
 * caches. Here it reads a half-precision copy instead (fastla_pp_f16_copy, made once per
 * seeding: half the bytes, 25.6 MB there, which the last-level cache can mostly hold).
 *
 * fastla_pp_f16_copy(X, d, i0, i1, x16, e) -> 1 if all of rows [i0, i1) converted to
 *   finite halves (round to nearest), else 0 (|x| >= 65520: the caller keeps 2b), and
 *   e[i] >= ||x_i - x16_i||, the row's rounding error: its float64 sum of squares
 *   (every difference of a float and its half is exact in float64) rounded up by
 *   (d + 2) 2^-52 for the additions and the square root.
 * fastla_pp_screen_f16(x16, e, X, d, i0, i1, ctf, closest, margin, sel) -> ns: as 2b, with
 *   each row's 8 trial sums s~ of (c - x16)^2 taken in float32 from the halves (within
 *   (d + 3) u of ||c - x16||^2, as in 2b), and a row ruled out when every sum exceeds
 *   (sqrt(closest) + e)^2 (1 + margin): then ||c - x16|| > sqrt(closest) + e, so
 *   ||c - x|| >= ||c - x16|| - e > sqrt(closest) by the same relative margin as in 2b,
 *   and min(closest, exact) is closest, bitwise. Rows with e = 0 (data exact in half
 *   precision, such as small integers) get 2b's very test. The float32 rows of X that
 *   the screen keeps are prefetched for the exact pass (2.), which reads them next.
 */
#if (defined(__GNUC__) || defined(__clang__)) && defined(__F16C__)
#include <immintrin.h>
#include <math.h>
#define FASTLA_PP_F16 1

static inline int fastla_pp_f16_copy(const float* X, ptrdiff_t d, ptrdiff_t i0,
                                     ptrdiff_t i1, unsigned short* x16, double* e)
{
    ptrdiff_t i, f;
    int ok = 1;
    for (i = i0; i < i1; i++) {
        const float* x = X + i * d;
        unsigned short* h = x16 + i * d;
        double s = 0.0;
        for (f = 0; f + 8 <= d; f += 8) {
            __m256 v = _mm256_loadu_ps(x + f);
            __m128i q = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT);
            _mm_storeu_si128((__m128i*)(h + f), q);
        }
        for (; f < d; f++)
            h[f] = (unsigned short)_cvtss_sh(x[f], _MM_FROUND_TO_NEAREST_INT);
        for (f = 0; f < d; f++) {
            const float b = _cvtsh_ss(h[f]);
            const double t = (double)x[f] - (double)b;
            if ((h[f] & 0x7c00) == 0x7c00)
                ok = 0;
            s += t * t;
        }
        e[i] = sqrt(s) * (1.0 + (double)(d + 2) * 2.220446049250313e-16);
    }
    return ok;
}

/* halves of 8 rows, features f0 .. f0 + fb - 1, into xb[r * FASTLA_PP_FB + j] */
static inline void fastla_pp_f16_block(const unsigned short* h, ptrdiff_t d, ptrdiff_t f0,
                                       ptrdiff_t fb, ptrdiff_t nrows, float* xb)
{
    ptrdiff_t r, j;
    for (r = 0; r < nrows; r++) {
        const unsigned short* q = h + r * d + f0;
        float* o = xb + r * FASTLA_PP_FB;
        for (j = 0; j + 8 <= fb; j += 8)
            _mm256_storeu_ps(o + j, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(q + j))));
        for (; j < fb; j++)
            o[j] = _cvtsh_ss(q[j]);
    }
}

static inline double fastla_pp_f16_thr(double closest, double e, double scale)
{
    const double r = sqrt(closest) + e;
    return r * r * scale;
}

static inline ptrdiff_t fastla_pp_screen_f16(const unsigned short* x16, const double* e,
                                             const float* X, ptrdiff_t d, ptrdiff_t i0,
                                             ptrdiff_t i1, const float* ctf,
                                             const double* closest, double margin,
                                             ptrdiff_t* sel)
{
    ptrdiff_t i, j, f0, fb, r, ns = 0;
    const double scale = 1.0 + margin;
    float xb[8 * FASTLA_PP_FB];
    fastla_v8f c, t;
    for (i = i0; i < i1; i += 8) {
        const ptrdiff_t nr = i1 - i < 8 ? i1 - i : 8;
        fastla_v8f a[8] = {{0}};
        if (i + 40 <= i1)
            fastla_prefetch_rows(x16 + (i + 32) * d, 8 * d * (ptrdiff_t)sizeof(unsigned short));
        for (f0 = 0; f0 < d; f0 += FASTLA_PP_FB) {
            fb = d - f0 < FASTLA_PP_FB ? d - f0 : FASTLA_PP_FB;
            fastla_pp_f16_block(x16 + i * d, d, f0, fb, nr, xb);
            if (nr == 8) {
                for (j = 0; j < fb; j++) {
                    memcpy(&c, ctf + (f0 + j) * 8, sizeof c);
                    FASTLA_PP_SCREEN8(a, c, xb, FASTLA_PP_FB, j);
                }
            } else {
                for (r = 0; r < nr; r++)
                    for (j = 0; j < fb; j++) {
                        memcpy(&c, ctf + (f0 + j) * 8, sizeof c);
                        t = c - xb[r * FASTLA_PP_FB + j]; a[r] += t * t;
                    }
            }
        }
        for (r = 0; r < nr; r++)
            if (fastla_pp_needs_exact(a[r], fastla_pp_f16_thr(closest[i + r], e[i + r], scale))) {
                /* the exact pass reads this row of X next: ask for it now */
                fastla_prefetch_rows(X + (i + r) * d, d * (ptrdiff_t)sizeof(float));
                sel[ns++] = i + r;
            }
    }
    return ns;
}
#else
#define FASTLA_PP_F16 0
static inline int fastla_pp_f16_copy(const float* X, ptrdiff_t d, ptrdiff_t i0,
                                     ptrdiff_t i1, unsigned short* x16, double* e)
{
    (void)X; (void)d; (void)i0; (void)i1; (void)x16; (void)e;
    return 0;
}
static inline ptrdiff_t fastla_pp_screen_f16(const unsigned short* x16, const double* e,
                                             const float* X, ptrdiff_t d, ptrdiff_t i0,
                                             ptrdiff_t i1, const float* ctf,
                                             const double* closest, double margin,
                                             ptrdiff_t* sel)
{
    ptrdiff_t i, ns = 0;
    (void)x16; (void)e; (void)X; (void)d; (void)ctf; (void)closest; (void)margin;
    for (i = i0; i < i1; i++)
        sel[ns++] = i;
    return ns;
}
#endif

/* 3. k-means++ step update: closest[i] = row[i] and cum = the running sum of
 * w[i] * closest[i], in one pass; bitwise what NumPy's cumsum(w64 * closest) gives (a
 * rounded product, then a sequential addition): the multiply-add must not be fused. */
#if defined(__GNUC__) && !defined(__clang__)
#define FASTLA_NO_CONTRACT __attribute__((optimize("fp-contract=off")))
#else
#define FASTLA_NO_CONTRACT
#endif

#define FASTLA_PP_UPDATE(NAME, T)                                                  \
    FASTLA_NO_CONTRACT static void NAME(const double* row, const T* w,             \
                                        double* closest, double* cum, ptrdiff_t n)      \
    {                                                                              \
        FASTLA_CLANG_NO_CONTRACT                                                   \
        ptrdiff_t i;                                                                    \
        double s = 0.0, v, p;                                                      \
        for (i = 0; i < n; i++) {                                                  \
            v = row[i];                                                            \
            closest[i] = v;                                                        \
            p = (double)w[i] * v;                                                  \
            s = i ? s + p : p;                                                     \
            cum[i] = s;                                                            \
        }                                                                          \
    }

#if defined(__clang__)
#define FASTLA_CLANG_NO_CONTRACT _Pragma("clang fp contract(off)")
#else
#define FASTLA_CLANG_NO_CONTRACT
#endif

FASTLA_PP_UPDATE(fastla_pp_update_f32, float)
FASTLA_PP_UPDATE(fastla_pp_update_f64, double)

#endif /* FASTLA_KMEANS_VEC_H */
