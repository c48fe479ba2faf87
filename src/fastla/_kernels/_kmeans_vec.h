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
    int m = -1, t;
    for (t = 0; t < 8; t++)
        m &= safe[t];
    return m == 0;
}

static inline ptrdiff_t fastla_pp_screen_f32(const float* X, ptrdiff_t d, ptrdiff_t i0,
                                             ptrdiff_t i1, const float* ctf,
                                             const double* closest, double margin,
                                             ptrdiff_t* sel)
{
    ptrdiff_t i, f, ns = 0;
    const double scale = 1.0 + margin;
    fastla_v8f c, t;
    for (i = i0; i + 8 <= i1; i += 8) {
        const float* x = X + i * d;
        fastla_v8f a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, a4 = {0}, a5 = {0}, a6 = {0},
                   a7 = {0};
        {
            /* the group four ahead (the rows stream from memory) */
            const char* pf = (const char*)(x + 32 * d);
            ptrdiff_t o;
            for (o = 0; o < 8 * d * (ptrdiff_t)sizeof(float); o += 64)
                __builtin_prefetch(pf + o);
        }
        for (f = 0; f < d; f++) {
            memcpy(&c, ctf + f * 8, sizeof c);
            t = c - x[f]; a0 += t * t;
            t = c - x[d + f]; a1 += t * t;
            t = c - x[2 * d + f]; a2 += t * t;
            t = c - x[3 * d + f]; a3 += t * t;
            t = c - x[4 * d + f]; a4 += t * t;
            t = c - x[5 * d + f]; a5 += t * t;
            t = c - x[6 * d + f]; a6 += t * t;
            t = c - x[7 * d + f]; a7 += t * t;
        }
        if (fastla_pp_needs_exact(a0, closest[i] * scale)) sel[ns++] = i;
        if (fastla_pp_needs_exact(a1, closest[i + 1] * scale)) sel[ns++] = i + 1;
        if (fastla_pp_needs_exact(a2, closest[i + 2] * scale)) sel[ns++] = i + 2;
        if (fastla_pp_needs_exact(a3, closest[i + 3] * scale)) sel[ns++] = i + 3;
        if (fastla_pp_needs_exact(a4, closest[i + 4] * scale)) sel[ns++] = i + 4;
        if (fastla_pp_needs_exact(a5, closest[i + 5] * scale)) sel[ns++] = i + 5;
        if (fastla_pp_needs_exact(a6, closest[i + 6] * scale)) sel[ns++] = i + 6;
        if (fastla_pp_needs_exact(a7, closest[i + 7] * scale)) sel[ns++] = i + 7;
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
