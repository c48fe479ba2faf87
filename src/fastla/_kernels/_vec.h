/* Vector types shared by the kernels' C headers (_kmeans_vec.h, _direct.h, _gemm_tile.h;
 * _stream.h includes it for the MSVC inline spelling only).
 *
 * GCC/Clang vector extensions, one hardware register wide for the build's ISA level:
 * 16 bytes on the baseline wheel (SSE2), 32 on v3 (AVX2), 64 on v4 (AVX-512). Wider
 * generic vectors would be lowered to scalar code, so each ISA build gets its own width.
 * FASTLA_VBYTES is the width; fastla_vf32 / fastla_vf64 hold values, fastla_vi32 /
 * fastla_vi64 the comparison masks of the same lane width. Other compilers define
 * nothing here and the headers use their scalar loops.
 */
#ifndef FASTLA_VEC_H
#define FASTLA_VEC_H

/* C89-era MSVC spells C's inline __inline; every header includes this one first */
#if defined(_MSC_VER) && !defined(__cplusplus) && !defined(inline)
#define inline __inline
#endif

#if defined(__GNUC__) || defined(__clang__)

#if defined(__AVX512F__)
#define FASTLA_VBYTES 64
#elif defined(__AVX__)
#define FASTLA_VBYTES 32
#else
#define FASTLA_VBYTES 16
#endif

typedef float fastla_vf32 __attribute__((vector_size(FASTLA_VBYTES)));
typedef int fastla_vi32 __attribute__((vector_size(FASTLA_VBYTES)));
typedef double fastla_vf64 __attribute__((vector_size(FASTLA_VBYTES)));
typedef long long fastla_vi64 __attribute__((vector_size(FASTLA_VBYTES)));

/* FASTLA_VFMA(T, a, b, c): a b + c on one register of T (float or double), fused where
 * the build has FMA (GCC's own contraction of a * b + c may fuse either product of a
 * sum of products, so kernels that need one rounding pattern spell it out);
 * FASTLA_VSET1(T, VF, x): x in every lane. Both one register wide for the build. */
#if (defined(__GNUC__) || defined(__clang__)) && defined(__AVX512F__)
#include <immintrin.h>
#define FASTLA_VFMA(T, a, b, c)                                                      \
    (sizeof(T) == 4 ? (__typeof__(c))_mm512_fmadd_ps((__m512)(a), (__m512)(b), (__m512)(c)) \
                    : (__typeof__(c))_mm512_fmadd_pd((__m512d)(a), (__m512d)(b), (__m512d)(c)))
#elif (defined(__GNUC__) || defined(__clang__)) && defined(__FMA__)
#include <immintrin.h>
#define FASTLA_VFMA(T, a, b, c)                                                      \
    (sizeof(T) == 4 ? (__typeof__(c))_mm256_fmadd_ps((__m256)(a), (__m256)(b), (__m256)(c)) \
                    : (__typeof__(c))_mm256_fmadd_pd((__m256d)(a), (__m256d)(b), (__m256d)(c)))
#else
#define FASTLA_VFMA(T, a, b, c) ((a) * (b) + (c))
#endif

/* FASTLA_VSET1(T, VF, x): x in every lane (z + x would add 0.0 first: -0.0 + 0.0) */
#if (defined(__GNUC__) || defined(__clang__)) && defined(__AVX512F__)
#define FASTLA_VSET1(T, VF, x)                                                       \
    (sizeof(T) == 4 ? (VF)_mm512_set1_ps((float)(x)) : (VF)_mm512_set1_pd((double)(x)))
#elif (defined(__GNUC__) || defined(__clang__)) && defined(__AVX__)
#define FASTLA_VSET1(T, VF, x)                                                       \
    (sizeof(T) == 4 ? (VF)_mm256_set1_ps((float)(x)) : (VF)_mm256_set1_pd((double)(x)))
#elif (defined(__GNUC__) || defined(__clang__)) && defined(__SSE2__)
#include <emmintrin.h>
#define FASTLA_VSET1(T, VF, x)                                                       \
    (sizeof(T) == 4 ? (VF)_mm_set1_ps((float)(x)) : (VF)_mm_set1_pd((double)(x)))
#else
#define FASTLA_VSET1(T, VF, x) ((VF){0} + (T)(x)) /* GCC/Clang refuse a narrowing scalar */
#endif

/* FASTLA_VMAX(VF, a, u) / FASTLA_VMIN(VF, a, u): the larger / smaller of a and u per lane,
 * float or double by the lane size. Where a lane of a or u is NaN, the instructions and
 * the generic select both return u's lane, so a NaN in u passes through (callers put the
 * bound in a and the value in u); a NaN in a does not. */
#if defined(__AVX512F__)
#define FASTLA_VMAX(VF, a, u)                                                        \
    (sizeof((a)[0]) == 8 ? (VF)_mm512_max_pd((__m512d)(a), (__m512d)(u))               \
                         : (VF)_mm512_max_ps((__m512)(a), (__m512)(u)))
#define FASTLA_VMIN(VF, a, u)                                                        \
    (sizeof((a)[0]) == 8 ? (VF)_mm512_min_pd((__m512d)(a), (__m512d)(u))               \
                         : (VF)_mm512_min_ps((__m512)(a), (__m512)(u)))
#elif defined(__AVX__)
#include <immintrin.h>
#define FASTLA_VMAX(VF, a, u)                                                        \
    (sizeof((a)[0]) == 8 ? (VF)_mm256_max_pd((__m256d)(a), (__m256d)(u))               \
                         : (VF)_mm256_max_ps((__m256)(a), (__m256)(u)))
#define FASTLA_VMIN(VF, a, u)                                                        \
    (sizeof((a)[0]) == 8 ? (VF)_mm256_min_pd((__m256d)(a), (__m256d)(u))               \
                         : (VF)_mm256_min_ps((__m256)(a), (__m256)(u)))
#elif defined(__SSE2__)
#include <emmintrin.h>
#define FASTLA_VMAX(VF, a, u)                                                        \
    (sizeof((a)[0]) == 8 ? (VF)_mm_max_pd((__m128d)(a), (__m128d)(u))                  \
                         : (VF)_mm_max_ps((__m128)(a), (__m128)(u)))
#define FASTLA_VMIN(VF, a, u)                                                        \
    (sizeof((a)[0]) == 8 ? (VF)_mm_min_pd((__m128d)(a), (__m128d)(u))                  \
                         : (VF)_mm_min_ps((__m128)(a), (__m128)(u)))
#else /* a select on the comparison mask (its integer vector type, of the lane width) */
#define FASTLA_VSEL_(VF, m, a, u)                                                    \
    ((VF)(((__typeof__(m))(a) & (m)) | ((__typeof__(m))(u) & ~(m))))
#define FASTLA_VMAX(VF, a, u) FASTLA_VSEL_(VF, ((a) > (u)), a, u)
#define FASTLA_VMIN(VF, a, u) FASTLA_VSEL_(VF, ((a) < (u)), a, u)
#endif


/* FASTLA_VANY(m): nonzero if any lane of the comparison mask m (of fastla_vi32 or
 * fastla_vi64) is set; FASTLA_VSQRT(VF, a): the square root of each lane, float or
 * double by the lane size */
#if defined(__AVX512F__)
#define FASTLA_VANY(m) (_mm512_test_epi32_mask((__m512i)(m), (__m512i)(m)) != 0)
#define FASTLA_VSQRT(VF, a)                                                          \
    (sizeof((a)[0]) == 8 ? (VF)_mm512_sqrt_pd((__m512d)(a)) : (VF)_mm512_sqrt_ps((__m512)(a)))
#elif defined(__AVX2__)
#define FASTLA_VANY(m) (!_mm256_testz_si256((__m256i)(m), (__m256i)(m)))
#define FASTLA_VSQRT(VF, a)                                                          \
    (sizeof((a)[0]) == 8 ? (VF)_mm256_sqrt_pd((__m256d)(a)) : (VF)_mm256_sqrt_ps((__m256)(a)))
#elif defined(__SSE2__) && !defined(__AVX__)
#define FASTLA_VANY(m) (_mm_movemask_epi8((__m128i)(m)) != 0)
#define FASTLA_VSQRT(VF, a)                                                          \
    (sizeof((a)[0]) == 8 ? (VF)_mm_sqrt_pd((__m128d)(a)) : (VF)_mm_sqrt_ps((__m128)(a)))
#else /* lane by lane */
#define FASTLA_VANY(m)                                                               \
    __extension__({                                                                  \
        int any_ = 0;                                                                \
        for (unsigned l_ = 0; l_ < sizeof(m) / sizeof((m)[0]); l_++)                 \
            any_ |= (m)[l_] != 0;                                                    \
        any_;                                                                        \
    })
#define FASTLA_VSQRT(VF, a)                                                          \
    __extension__({                                                                  \
        VF r_ = (a);                                                                 \
        for (unsigned l_ = 0; l_ < sizeof(r_) / sizeof(r_[0]); l_++)                 \
            r_[l_] = sizeof(r_[0]) == 8 ? __builtin_sqrt(r_[l_]) : __builtin_sqrtf(r_[l_]); \
        r_;                                                                          \
    })
#endif

/* FASTLA_VEXP(T, VF, VI, x): e^x in every lane of x (VF of T, float or double; VI the
 * matching integer vector), branch-free generic vector code for every ISA build.
 * Cody-Waite: x = n ln2 + r with |r| <= ln2/2 (ln2 in two parts, Cephes' exp and expf
 * constants, so that n C1 is exact without FMA too); e^r = 1 + r + r^2 q(r), q a
 * Chebyshev fit on [-0.3471, 0.3471] (degree 4 for float: 1.3e-7 of q; degree 10 for
 * double: 2.8e-18), so q's error is under a tenth of a unit in the last place of e^r;
 * then 2^n as two powers of two (n/2 rounded, and the rest), so that a subnormal result
 * is rounded once. x is first clamped to [-746, 710] (double) or [-104, 89] (float):
 * 0 below the range, inf above it; NaN gives 0 (the kernels' inputs are finite).
 * Measured against NumPy's exp (tests/test_distances.py): within 2 units in the last
 * place. */
#define FASTLA_VEXP(T, VF, VI, x)                                                    \
    __extension__({                                                                  \
        const int f64_ = sizeof(T) == 8;                                             \
        const VF magic_ = FASTLA_VSET1(T, VF, f64_ ? 6755399441055744.0 : 12582912.0); \
        VF t_ = FASTLA_VMIN(VF, FASTLA_VSET1(T, VF, f64_ ? 710.0 : 89.0),            \
                            FASTLA_VMAX(VF, FASTLA_VSET1(T, VF, f64_ ? -746.0 : -104.0), (x))); \
        /* n = round(x / ln2), by the 1.5 2^(mantissa bits) rounding constant */     \
        VF n_ = FASTLA_VFMA(T, t_, FASTLA_VSET1(T, VF, 1.4426950408889634), magic_) - magic_; \
        VF r_ = FASTLA_VFMA(T, n_, FASTLA_VSET1(T, VF, f64_ ? -6.93145751953125E-1 : -0.693359375), t_); \
        VF q_, h_, s1_, s2_;                                                         \
        r_ = FASTLA_VFMA(T, n_, FASTLA_VSET1(T, VF, f64_ ? -1.42860682030941723212E-6 : 2.12194440E-4), r_); \
        if (f64_) {                                                                  \
            q_ = FASTLA_VSET1(T, VF, 2.0914794765811025e-09);                        \
            q_ = FASTLA_VFMA(T, q_, r_, FASTLA_VSET1(T, VF, 2.5105367959357917e-08)); \
            q_ = FASTLA_VFMA(T, q_, r_, FASTLA_VSET1(T, VF, 2.7557273383736125e-07)); \
            q_ = FASTLA_VFMA(T, q_, r_, FASTLA_VSET1(T, VF, 2.755725503699239e-06)); \
            q_ = FASTLA_VFMA(T, q_, r_, FASTLA_VSET1(T, VF, 2.4801587325752518e-05)); \
            q_ = FASTLA_VFMA(T, q_, r_, FASTLA_VSET1(T, VF, 0.00019841269875107384)); \
            q_ = FASTLA_VFMA(T, q_, r_, FASTLA_VSET1(T, VF, 0.001388888888888369));  \
            q_ = FASTLA_VFMA(T, q_, r_, FASTLA_VSET1(T, VF, 0.008333333333326053));  \
        } else {                                                                     \
            q_ = FASTLA_VSET1(T, VF, 0.0013926289628716497);                         \
            q_ = FASTLA_VFMA(T, q_, r_, FASTLA_VSET1(T, VF, 0.00836326394221902));   \
        }                                                                            \
        q_ = FASTLA_VFMA(T, q_, r_, FASTLA_VSET1(T, VF, f64_ ? 0.04166666666666667 : 0.0416665539794329)); \
        q_ = FASTLA_VFMA(T, q_, r_, FASTLA_VSET1(T, VF, f64_ ? 0.1666666666666667 : 0.16666576479161754)); \
        q_ = FASTLA_VFMA(T, q_, r_, FASTLA_VSET1(T, VF, 0.5));                       \
        q_ = FASTLA_VFMA(T, q_, r_ * r_, r_) + FASTLA_VSET1(T, VF, 1.0);             \
        /* 2^n = 2^n1 2^(n - n1), n1 = round(n / 2): each a normal number */         \
        h_ = (n_ * FASTLA_VSET1(T, VF, 0.5) + magic_) - magic_;                      \
        s1_ = (VF)((((VI)(h_ + magic_) - (VI)magic_) + (f64_ ? 1023 : 127)) << (f64_ ? 52 : 23)); \
        s2_ = (VF)((((VI)((n_ - h_) + magic_) - (VI)magic_) + (f64_ ? 1023 : 127)) << (f64_ ? 52 : 23)); \
        (q_ * s1_) * s2_;                                                            \
    })

#endif /* GNU C vector extensions */

#endif /* FASTLA_VEC_H */
