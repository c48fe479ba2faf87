/* Vectorised row argmin for the k-means kernels.
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
#ifndef FASTLA_ARGMIN_H
#define FASTLA_ARGMIN_H

#include <string.h>

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
        mn = m[0];                                                                 \
        for (l = 1; l < FASTLA_LANES; l++)                                         \
            if (m[l] < mn)                                                         \
                mn = m[l];                                                         \
        best = k;                                                                  \
        for (l = 0; l < FASTLA_LANES; l++)                                         \
            if (m[l] == mn && (int)at[l] + l < best)                               \
                best = (int)at[l] + l;                                             \
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

#endif /* FASTLA_ARGMIN_H */
