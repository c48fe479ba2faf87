/* The 3x3 correlation's interior for two output rows (_cy_conv.pyx, _two_rows_3x3).
 *
 * fastla_conv3x3_<f32|f64>(p0, p1, p2, p3, w, jlo, jhi, o0, o1): for jlo <= j < jhi,
 *   o0[j] = ((0 + (w0 p0[j] + w1 p0[j+1] + w2 p0[j+2])) + (w3 p1[j] + ...)) + (w6 p2[j] + ...)
 *   o1[j] = the same with rows p1, p2, p3
 * (p0..p3: the four input rows, already offset by the kernel's column origin; w: the 9
 * taps row-major). The association is _two_rows' (a zeroed row plus one kernel row at a
 * time), so both paths give the same values; the compiler contracts a * x + b * y into
 * FMAs the same way in both. Returns 1 if any value written is NaN or infinite (x - x is
 * 0 exactly for finite x), else 0.
 *
 * Written with GCC/Clang vector extensions one register wide (_vec.h): each step loads
 * the 4 x 3 input vectors once and stores each output vector once, with the nine taps
 * and all inputs in registers. The same loop in Cython, inlined into the OpenMP region,
 * ran out of general registers for its twelve row pointers and spilled them (about 3x
 * slower). Other compilers: the scalar loop, same order.
 */
#ifndef FASTLA_CONV_VEC_H
#define FASTLA_CONV_VEC_H

#include <stddef.h>
#include <string.h>

#include "_vec.h"
#include "_stream.h"

#define FASTLA_CONV3_ROW(a0, a1, a2, p, j)                                           \
    ((a0) * (p)[(j)] + (a1) * (p)[(j) + 1] + (a2) * (p)[(j) + 2])

#define FASTLA_CONV3X3_SCALAR_STEP(T, j)                                             \
    do {                                                                             \
        T s0_ = (T)0 + FASTLA_CONV3_ROW(w[0], w[1], w[2], p0, j);                    \
        T s1_ = (T)0 + FASTLA_CONV3_ROW(w[0], w[1], w[2], p1, j);                    \
        s0_ = s0_ + FASTLA_CONV3_ROW(w[3], w[4], w[5], p1, j);                       \
        s1_ = s1_ + FASTLA_CONV3_ROW(w[3], w[4], w[5], p2, j);                       \
        s0_ = s0_ + FASTLA_CONV3_ROW(w[6], w[7], w[8], p2, j);                       \
        s1_ = s1_ + FASTLA_CONV3_ROW(w[6], w[7], w[8], p3, j);                       \
        o0[j] = s0_;                                                                 \
        o1[j] = s1_;                                                                 \
        bad |= ((s0_ - s0_) != 0) | ((s1_ - s1_) != 0);                              \
    } while (0)

#if defined(__GNUC__) || defined(__clang__)

/* VLOAD(v, p): v = the vector at p (any alignment) */
#define FASTLA_VLOAD(v, p) memcpy(&(v), (p), sizeof(v))

#define FASTLA_CONV3X3_VEC(NAME, T, VF)                                              \
    static inline int NAME(const T* p0, const T* p1, const T* p2, const T* p3,       \
                           const T* w, ptrdiff_t jlo, ptrdiff_t jhi, T* o0, T* o1,  \
                           int stream)                                               \
    {                                                                                \
        enum { L = FASTLA_VBYTES / sizeof(T) };                                      \
        const VF z = (VF){0};                                                        \
        const VF a0 = z + w[0], a1 = z + w[1], a2 = z + w[2], a3 = z + w[3],         \
                 a4 = z + w[4], a5 = z + w[5], a6 = z + w[6], a7 = z + w[7],         \
                 a8 = z + w[8];                                                      \
        VF chk = z;                                                                  \
        ptrdiff_t j = jlo;                                                           \
        int bad = 0, l, nt0 = 0, nt1 = 0;                                            \
        if (stream) {                                                                \
            /* scalar steps up to o0's first cache line, then whole lines streamed */  \
            for (; j < jhi && ((size_t)(o0 + j) & 63); j++)                          \
                FASTLA_CONV3X3_SCALAR_STEP(T, j);                                    \
            nt0 = 1;                                                                 \
            nt1 = (((size_t)(o1 + j)) & 63) == 0;                                    \
        }                                                                            \
        for (; j + L <= jhi; j += L) {                                               \
            VF x0, x1, x2, y0, y1, y2, u0, u1, u2, v0, v1, v2, s0, s1;               \
            FASTLA_VLOAD(x0, p0 + j);                                                \
            FASTLA_VLOAD(x1, p0 + j + 1);                                            \
            FASTLA_VLOAD(x2, p0 + j + 2);                                            \
            FASTLA_VLOAD(y0, p1 + j);                                                \
            FASTLA_VLOAD(y1, p1 + j + 1);                                            \
            FASTLA_VLOAD(y2, p1 + j + 2);                                            \
            FASTLA_VLOAD(u0, p2 + j);                                                \
            FASTLA_VLOAD(u1, p2 + j + 1);                                            \
            FASTLA_VLOAD(u2, p2 + j + 2);                                            \
            FASTLA_VLOAD(v0, p3 + j);                                                \
            FASTLA_VLOAD(v1, p3 + j + 1);                                            \
            FASTLA_VLOAD(v2, p3 + j + 2);                                            \
            s0 = z + (a0 * x0 + a1 * x1 + a2 * x2);                                  \
            s1 = z + (a0 * y0 + a1 * y1 + a2 * y2);                                  \
            s0 = s0 + (a3 * y0 + a4 * y1 + a5 * y2);                                 \
            s1 = s1 + (a3 * u0 + a4 * u1 + a5 * u2);                                 \
            s0 = s0 + (a6 * u0 + a7 * u1 + a8 * u2);                                 \
            s1 = s1 + (a6 * v0 + a7 * v1 + a8 * v2);                                 \
            if (nt0)                                                                 \
                fastla_stream_vec(o0 + j, s0, sizeof(VF));                           \
            else                                                                     \
                memcpy(o0 + j, &s0, sizeof(VF));                                     \
            if (nt1)                                                                 \
                fastla_stream_vec(o1 + j, s1, sizeof(VF));                           \
            else                                                                     \
                memcpy(o1 + j, &s1, sizeof(VF));                                     \
            chk = chk + ((s0 - s0) + (s1 - s1));                                     \
        }                                                                            \
        for (; j < jhi; j++)                                                         \
            FASTLA_CONV3X3_SCALAR_STEP(T, j);                                        \
        for (l = 0; l < L; l++)                                                      \
            bad |= chk[l] != 0; /* NaN != 0 */                                       \
        return bad;                                                                  \
    }

FASTLA_CONV3X3_VEC(fastla_conv3x3_f32, float, fastla_vf32)
FASTLA_CONV3X3_VEC(fastla_conv3x3_f64, double, fastla_vf64)

#else /* other compilers: the scalar loop */

#define FASTLA_CONV3X3_PLAIN(NAME, T)                                                \
    static inline int NAME(const T* p0, const T* p1, const T* p2, const T* p3,       \
                           const T* w, ptrdiff_t jlo, ptrdiff_t jhi, T* o0, T* o1,  \
                           int stream)                                               \
    {                                                                                \
        int bad = 0;                                                                 \
        ptrdiff_t j;                                                                 \
        (void)stream;                                                                \
        for (j = jlo; j < jhi; j++)                                                  \
            FASTLA_CONV3X3_SCALAR_STEP(T, j);                                        \
        return bad;                                                                  \
    }

FASTLA_CONV3X3_PLAIN(fastla_conv3x3_f32, float)
FASTLA_CONV3X3_PLAIN(fastla_conv3x3_f64, double)

#endif

#endif /* FASTLA_CONV_VEC_H */
