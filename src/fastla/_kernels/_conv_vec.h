/* The correlation's interior columns for two output rows at a time (_cy_conv.pyx).
 *
 * fastla_conv3x3_<f32|f64>(p0, p1, p2, p3, w, jlo, jhi, o0, o1, stream): for
 * jlo <= j < jhi,
 *   o0[j] = ((0 + (w0 p0[j] + w1 p0[j+1] + w2 p0[j+2])) + (w3 p1[j] + ...)) + (w6 p2[j] + ...)
 *   o1[j] = the same with rows p1, p2, p3
 * (p0..p3: the four input rows, already offset by the kernel's column origin; w: the 9
 * taps row-major): the association of the any-shape kernel below for width 3, so both
 * give the same values. fastla_conv_rows_<f32|f64> (below): any kernel shape.
 * Both return 1 if any value written is NaN or infinite (x - x is 0 exactly for finite
 * x), else 0. Every multiply-add is an explicit FMA (FASTLA_VFMA, fastla_fma_<T>) where
 * the build has them, so that the scalar columns agree with the vector ones bitwise.
 *
 * Written with GCC/Clang vector extensions one register wide (_vec.h): each step loads
 * every input vector once for both output rows and stores each output vector once.
 * The 3x3 loop in Cython, inlined into the OpenMP region, ran out of general registers
 * for its twelve row pointers and spilled them (about 1.6x slower); the other shapes
 * read and wrote the output once per kernel row or per tap. Other compilers: the scalar
 * loops, same order.
 */
#ifndef FASTLA_CONV_VEC_H
#define FASTLA_CONV_VEC_H

#include <stddef.h>
#include <string.h>

#include "_vec.h"
#include "_stream.h"

/* fastla_fma_<float|double>(a, b, c): a b + c, fused exactly where the vector code's
 * a * b + c is contracted into an FMA (builds with FMA), so that the scalar steps (the
 * first and last columns) give the vectors' values bitwise; GCC otherwise leaves some
 * scalar products unfused (it multiplies several at once, then adds them one by one). */
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__FMA__) || defined(__AVX512F__))
static inline float fastla_fma_float(float a, float b, float c) { return __builtin_fmaf(a, b, c); }
static inline double fastla_fma_double(double a, double b, double c) { return __builtin_fma(a, b, c); }
#else
static inline float fastla_fma_float(float a, float b, float c) { return a * b + c; }
static inline double fastla_fma_double(double a, double b, double c) { return a * b + c; }
#endif

#define FASTLA_CONV3_ROW_T(T, a0, a1, a2, p, j)                                      \
    fastla_fma_##T((a2), (p)[(j) + 2], fastla_fma_##T((a1), (p)[(j) + 1], (a0) * (p)[(j)]))

#define FASTLA_CONV3X3_SCALAR_STEP(T, j)                                             \
    do {                                                                             \
        T s0_ = (T)0 + FASTLA_CONV3_ROW_T(T, w[0], w[1], w[2], p0, j);                    \
        T s1_ = (T)0 + FASTLA_CONV3_ROW_T(T, w[0], w[1], w[2], p1, j);                    \
        s0_ = s0_ + FASTLA_CONV3_ROW_T(T, w[3], w[4], w[5], p1, j);                       \
        s1_ = s1_ + FASTLA_CONV3_ROW_T(T, w[3], w[4], w[5], p2, j);                       \
        s0_ = s0_ + FASTLA_CONV3_ROW_T(T, w[6], w[7], w[8], p2, j);                       \
        s1_ = s1_ + FASTLA_CONV3_ROW_T(T, w[6], w[7], w[8], p3, j);                       \
        o0[j] = s0_;                                                                 \
        o1[j] = s1_;                                                                 \
        bad |= ((s0_ - s0_) != 0) | ((s1_ - s1_) != 0);                              \
    } while (0)

#if defined(__GNUC__) || defined(__clang__)

/* one kernel row of 3 taps: a0 x0 + a1 x1 + a2 x2, fused as the scalar steps */
#define FASTLA_V3(T, a0, a1, a2, x0, x1, x2)                                         \
    FASTLA_VFMA(T, a2, x2, FASTLA_VFMA(T, a1, x1, (a0) * (x0)))

/* FASTLA_VREG(v): v is kept in a register. An input vector that feeds two output rows'
 * FMAs is otherwise folded by GCC into both as a memory operand, so it is loaded twice,
 * and the kernels become bound by loads (2048² float32, 11x11: 8.6-9.8 -> 6.1-7.5 ms
 * with it). The empty asm changes no arithmetic. */
#if defined(__x86_64__) || defined(__i386__)
#define FASTLA_VREG(v) __asm__("" : "+v"(v))
#else
#define FASTLA_VREG(v) ((void)0)
#endif

/* VLOAD(v, p): v = the vector at p (any alignment) */
#define FASTLA_VLOAD(v, p) memcpy(&(v), (p), sizeof(v))
/* the three vectors at p, p + 1, p + 2 (a 3-tap row's inputs) */
#define FASTLA_VLOAD3(a, b, c, p)                                                    \
    do {                                                                             \
        FASTLA_VLOAD(a, (p));                                                        \
        FASTLA_VLOAD(b, (p) + 1);                                                    \
        FASTLA_VLOAD(c, (p) + 2);                                                    \
    } while (0)

/* store the vector v at o + j: streamed (nt) or cached */
#define FASTLA_CONV_STORE(VF, o, j, v, nt)                                           \
    do {                                                                             \
        if (nt)                                                                      \
            fastla_stream_vec((o) + (j), v, sizeof(VF));                             \
        else                                                                         \
            memcpy((o) + (j), &(v), sizeof(VF));                                     \
    } while (0)

/* one vector of columns from j of both rows, stored (streamed where nt0 / nt1) */
#define FASTLA_CONV3X3_STEP(T, VF)                                                   \
    do {                                                                             \
        VF x0, x1, x2, y0, y1, y2, u0, u1, u2, v0, v1, v2, s0, s1;                   \
        FASTLA_VLOAD3(x0, x1, x2, p0 + j);                                           \
        FASTLA_VLOAD3(y0, y1, y2, p1 + j);                                           \
        FASTLA_VLOAD3(u0, u1, u2, p2 + j);                                           \
        FASTLA_VREG(y0); FASTLA_VREG(y1); FASTLA_VREG(y2);  /* each feeds both rows */ \
        FASTLA_VREG(u0); FASTLA_VREG(u1); FASTLA_VREG(u2);                           \
        FASTLA_VLOAD3(v0, v1, v2, p3 + j);                                           \
        s0 = z + FASTLA_V3(T, a0, a1, a2, x0, x1, x2);                               \
        s1 = z + FASTLA_V3(T, a0, a1, a2, y0, y1, y2);                               \
        s0 = s0 + FASTLA_V3(T, a3, a4, a5, y0, y1, y2);                              \
        s1 = s1 + FASTLA_V3(T, a3, a4, a5, u0, u1, u2);                              \
        s0 = s0 + FASTLA_V3(T, a6, a7, a8, u0, u1, u2);                              \
        s1 = s1 + FASTLA_V3(T, a6, a7, a8, v0, v1, v2);                              \
        FASTLA_CONV_STORE(VF, o0, j, s0, nt0);                                       \
        FASTLA_CONV_STORE(VF, o1, j, s1, nt1);                                       \
        chk = chk + ((s0 - s0) + (s1 - s1));                                         \
    } while (0)

/* the column loop shared by the kernels: vector steps (STEP, one vector; MSTEP, MW
 * columns) over [jlo, jhi). With ``stream``: cached vectors up to and including o0's
 * first whole cache line, then whole lines streamed, and the last line or two cached
 * again; a streamed line is never also written by a cached store (that would flush
 * the write-combining buffer early). The last columns are one vector ending at jhi,
 * overlapping cached ones (same values). Rows narrower than a vector: POINT. */
#define FASTLA_CONV_COLUMNS(T, L, STEP, MSTEP, MW, POINT)                            \
    if (jhi - jlo >= L) {                                                            \
        ptrdiff_t jend = jhi;                                                        \
        if (stream) {                                                                \
            const ptrdiff_t ja =                                                     \
                j + (ptrdiff_t)(((64 - ((size_t)(o0 + j) & 63)) & 63) / sizeof(T));  \
            if (ja + 3 * L <= jhi) {                                                 \
                for (; j < ja; j += L)                                               \
                    STEP;                                                            \
                j = ja;                                                              \
                STEP;                                                                \
                j += L;                                                              \
                nt0 = 1;                                                             \
                nt1 = o1 && (((size_t)(o1 + j)) & 63) == 0;                          \
                jend = jhi - L;                                                      \
            }                                                                        \
        }                                                                            \
        for (; j + (MW) <= jend; j += (MW))                                          \
            MSTEP;                                                                   \
        for (; j + L <= jend; j += L)                                                \
            STEP;                                                                    \
        nt0 = nt1 = 0;                                                               \
        for (; j + L <= jhi; j += L)                                                 \
            STEP;                                                                    \
        if (j < jhi) {                                                               \
            j = jhi - L;                                                             \
            STEP;                                                                    \
        }                                                                            \
    } else {                                                                         \
        for (; j < jhi; j++)                                                         \
            POINT;                                                                   \
    }

#define FASTLA_CONV3X3_VEC(NAME, T, VF)                                              \
    static inline int NAME(const T* p0, const T* p1, const T* p2, const T* p3,       \
                           const T* w, ptrdiff_t jlo, ptrdiff_t jhi, T* o0, T* o1,  \
                           int stream)                                               \
    {                                                                                \
        enum { L = FASTLA_VBYTES / sizeof(T) };                                      \
        const VF z = (VF){0};                                                        \
        const VF a0 = FASTLA_VSET1(T, VF, w[0]), a1 = FASTLA_VSET1(T, VF, w[1]),     \
                 a2 = FASTLA_VSET1(T, VF, w[2]), a3 = FASTLA_VSET1(T, VF, w[3]),     \
                 a4 = FASTLA_VSET1(T, VF, w[4]), a5 = FASTLA_VSET1(T, VF, w[5]),     \
                 a6 = FASTLA_VSET1(T, VF, w[6]), a7 = FASTLA_VSET1(T, VF, w[7]),     \
                 a8 = FASTLA_VSET1(T, VF, w[8]);                                     \
        VF chk = z;                                                                  \
        ptrdiff_t j = jlo;                                                           \
        int bad = 0, l, nt0 = 0, nt1 = 0;                                            \
        FASTLA_CONV_COLUMNS(T, L, FASTLA_CONV3X3_STEP(T, VF), FASTLA_CONV3X3_STEP(T, VF), \
                            L, FASTLA_CONV3X3_SCALAR_STEP(T, j))                     \
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

/* Any kernel shape: fastla_conv_rows_<f32|f64>(img, W, ridx, cvalrow, ox, w, kh, kw, jlo,
 * jhi, o0, o1, stream): the interior columns of output rows i (o0) and i + 1 (o1; NULL:
 * row i only) of the correlation with the kh x kw kernel w (row-major), reading image
 * rows ridx[0 .. kh] (ridx = rowidx + i; -1: the cval row) shifted by the column origin
 * ox. Each step loads every input vector once and feeds both output rows from it; the
 * two sums stay in registers across all kh kernel rows and are stored once. The sums
 * are associated per kernel row in order: a row's taps summed first and then added
 * (s + (w0 x0 + w1 x1 + ...)) for widths 3, 5 and 7, tap by tap (s + w_c x_c) for the
 * others (the association of the Cython loops these replaced). Streaming stores and the
 * return value as for 3x3.
 */
#define FASTLA_CONV_ROWP(T, a) (ridx[a] < 0 ? cvalrow : img + ridx[a] * W) - ox

/* the vector loop's kernel-height limit (its row pointers live on the stack); taller
 * kernels take the scalar loop for every column */
#define FASTLA_CONV_MAXKH 255

#if defined(__GNUC__) || defined(__clang__)

/* NJ vectors of one output row (or of two) per step: a kernel row's weight is
 * broadcast once for NJ input vectors. ACC(q, w, x): for lane group q, accumulate w x.
 * Grouped rows (widths 3, 5, 7) sum their taps into t first, then s += t. */
#define FASTLA_CONV_NJ (FASTLA_VBYTES == 64 ? 4 : 2)

/* one kernel row wr of one output: s[q] += row sum (grouped) or tap by tap */
#define FASTLA_CONV_ROW1(T, VF, NV, s, wr, p)                                            \
    do {                                                                             \
        VF x_[FASTLA_CONV_NJ], t_[FASTLA_CONV_NJ], w_;                               \
        int c_, q_;                                                                  \
        w_ = FASTLA_VSET1(T, VF, (wr)[0]);                                           \
        _Pragma("GCC unroll 4") for (q_ = 0; q_ < (NV); q_++) {            \
            FASTLA_VLOAD(x_[q_], (p) + q_ * L);                                      \
            if (grouped)                                                             \
                t_[q_] = w_ * x_[q_];                                                \
            else                                                                     \
                s[q_] = FASTLA_VFMA(T, w_, x_[q_], s[q_]);                           \
        }                                                                            \
        for (c_ = 1; c_ < kw; c_++) {                                                \
            w_ = FASTLA_VSET1(T, VF, (wr)[c_]);                                      \
            _Pragma("GCC unroll 4") for (q_ = 0; q_ < (NV); q_++) {        \
                FASTLA_VLOAD(x_[q_], (p) + c_ + q_ * L);                             \
                if (grouped)                                                         \
                    t_[q_] = FASTLA_VFMA(T, w_, x_[q_], t_[q_]);                     \
                else                                                                 \
                    s[q_] = FASTLA_VFMA(T, w_, x_[q_], s[q_]);                       \
            }                                                                        \
        }                                                                            \
        if (grouped)                                                                 \
            _Pragma("GCC unroll 4") for (q_ = 0; q_ < (NV); q_++)          \
                s[q_] = s[q_] + t_[q_];                                              \
    } while (0)

/* one input row p feeding kernel row w0r of output 0 and w1r of output 1 */
#define FASTLA_CONV_ROW2(T, VF, NV, s0, s1, w0r, w1r, p)                                 \
    do {                                                                             \
        VF x_[FASTLA_CONV_NJ], t0_[FASTLA_CONV_NJ], t1_[FASTLA_CONV_NJ], u_, v_;     \
        int c_, q_;                                                                  \
        u_ = FASTLA_VSET1(T, VF, (w0r)[0]);                                          \
        v_ = FASTLA_VSET1(T, VF, (w1r)[0]);                                          \
        _Pragma("GCC unroll 4") for (q_ = 0; q_ < (NV); q_++) {            \
            FASTLA_VLOAD(x_[q_], (p) + q_ * L);                                      \
            FASTLA_VREG(x_[q_]);                                                     \
            if (grouped) {                                                           \
                t0_[q_] = u_ * x_[q_];                                               \
                t1_[q_] = v_ * x_[q_];                                               \
            } else {                                                                 \
                s0[q_] = FASTLA_VFMA(T, u_, x_[q_], s0[q_]);                         \
                s1[q_] = FASTLA_VFMA(T, v_, x_[q_], s1[q_]);                         \
            }                                                                        \
        }                                                                            \
        for (c_ = 1; c_ < kw; c_++) {                                                \
            u_ = FASTLA_VSET1(T, VF, (w0r)[c_]);                                     \
            v_ = FASTLA_VSET1(T, VF, (w1r)[c_]);                                     \
            _Pragma("GCC unroll 4") for (q_ = 0; q_ < (NV); q_++) {        \
                FASTLA_VLOAD(x_[q_], (p) + c_ + q_ * L);                             \
                FASTLA_VREG(x_[q_]);                                                 \
                if (grouped) {                                                       \
                    t0_[q_] = FASTLA_VFMA(T, u_, x_[q_], t0_[q_]);                   \
                    t1_[q_] = FASTLA_VFMA(T, v_, x_[q_], t1_[q_]);                   \
                } else {                                                             \
                    s0[q_] = FASTLA_VFMA(T, u_, x_[q_], s0[q_]);                     \
                    s1[q_] = FASTLA_VFMA(T, v_, x_[q_], s1[q_]);                     \
                }                                                                    \
            }                                                                        \
        }                                                                            \
        if (grouped)                                                                 \
            _Pragma("GCC unroll 4") for (q_ = 0; q_ < (NV); q_++) {        \
                s0[q_] = s0[q_] + t0_[q_];                                           \
                s1[q_] = s1[q_] + t1_[q_];                                           \
            }                                                                        \
    } while (0)

/* NV vectors of columns from j, both rows (or o0 alone), stored and checked */
#define FASTLA_CONV_STEP(T, VF, NV)                                                  \
    do {                                                                             \
        VF s0[FASTLA_CONV_NJ], s1[FASTLA_CONV_NJ];                                   \
        int q;                                                                       \
        _Pragma("GCC unroll 4") for (q = 0; q < (NV); q++)                           \
            s0[q] = s1[q] = z;                                                       \
        if (o1) {                                                                    \
            FASTLA_CONV_ROW1(T, VF, NV, s0, w, rp[0] + j);                           \
            for (a = 1; a < kh; a++)                                                 \
                FASTLA_CONV_ROW2(T, VF, NV, s0, s1, w + a * kw, w + (a - 1) * kw,    \
                                 rp[a] + j);                                         \
            FASTLA_CONV_ROW1(T, VF, NV, s1, w + (kh - 1) * kw, rp[kh] + j);          \
            _Pragma("GCC unroll 4") for (q = 0; q < (NV); q++) {                     \
                FASTLA_CONV_STORE(VF, o1, j + q * L, s1[q], nt1);                    \
                chk = chk + (s1[q] - s1[q]);                                         \
            }                                                                        \
        } else {                                                                     \
            for (a = 0; a < kh; a++)                                                 \
                FASTLA_CONV_ROW1(T, VF, NV, s0, w + a * kw, rp[a] + j);              \
        }                                                                            \
        _Pragma("GCC unroll 4") for (q = 0; q < (NV); q++) {                         \
            FASTLA_CONV_STORE(VF, o0, j + q * L, s0[q], nt0);                        \
            chk = chk + (s0[q] - s0[q]);                                             \
        }                                                                            \
    } while (0)

#define FASTLA_CONV_ROWS_VEC(NAME, T, VF)                                            \
    static inline int NAME(const T* img, ptrdiff_t W, const ptrdiff_t* ridx,         \
                           const T* cvalrow, ptrdiff_t ox, const T* w, int kh, int kw, \
                           ptrdiff_t jlo, ptrdiff_t jhi, T* o0, T* o1, int stream)   \
    {                                                                                \
        enum { L = FASTLA_VBYTES / sizeof(T) };                                      \
        const VF z = (VF){0};                                                        \
        const int grouped = kw == 3 || kw == 5 || kw == 7;                           \
        VF chk = z;                                                                  \
        ptrdiff_t j = jlo;                                                           \
        int a, l, bad = 0, nt0 = 0, nt1 = 0;                                         \
        const T* rp[FASTLA_CONV_MAXKH + 1];                                          \
        for (a = 0; a <= kh && a <= FASTLA_CONV_MAXKH; a++)                          \
            rp[a] = FASTLA_CONV_ROWP(T, a);                                          \
        if (kh <= FASTLA_CONV_MAXKH) {                                               \
            FASTLA_CONV_COLUMNS(T, L, FASTLA_CONV_STEP(T, VF, 1),                    \
                                FASTLA_CONV_STEP(T, VF, FASTLA_CONV_NJ),             \
                                FASTLA_CONV_NJ * L,                                  \
                                bad |= fastla_conv_point_##T(img, W, ridx, cvalrow, ox, \
                                                             w, kh, kw, j, o0, o1))  \
        } else {                                                                     \
            for (; j < jhi; j++)                                                     \
                bad |= fastla_conv_point_##T(img, W, ridx, cvalrow, ox, w, kh, kw,   \
                                             j, o0, o1);                             \
        }                                                                            \
        for (l = 0; l < L; l++)                                                      \
            bad |= chk[l] != 0; /* NaN != 0 */                                       \
        return bad;                                                                  \
    }

#endif

/* one column j of both rows, scalar, in the same order as the vectors */
#define FASTLA_CONV_POINT(T)                                                         \
    static inline int fastla_conv_point_##T(const T* img, ptrdiff_t W,               \
                                            const ptrdiff_t* ridx, const T* cvalrow, \
                                            ptrdiff_t ox, const T* w, int kh, int kw, \
                                            ptrdiff_t j, T* o0, T* o1)               \
    {                                                                                \
        const int grouped = kw == 3 || kw == 5 || kw == 7;                           \
        int a, c, bad;                                                               \
        T s, t;                                                                      \
        int q;                                                                       \
        bad = 0;                                                                     \
        for (q = 0; q < (o1 ? 2 : 1); q++) {                                         \
            s = 0;                                                                   \
            for (a = 0; a < kh; a++) {                                               \
                const T* p = FASTLA_CONV_ROWP(T, a + q) + j;                         \
                const T* wr = w + a * kw;                                            \
                if (grouped) {                                                       \
                    t = wr[0] * p[0];                                                \
                    for (c = 1; c < kw; c++)                                         \
                        t = fastla_fma_##T(wr[c], p[c], t);                          \
                    s = s + t;                                                       \
                } else {                                                             \
                    for (c = 0; c < kw; c++)                                         \
                        s = fastla_fma_##T(wr[c], p[c], s);                          \
                }                                                                    \
            }                                                                        \
            (q ? o1 : o0)[j] = s;                                                    \
            bad |= (s - s) != 0;                                                     \
        }                                                                            \
        return bad;                                                                  \
    }

FASTLA_CONV_POINT(float)
FASTLA_CONV_POINT(double)

#if defined(__GNUC__) || defined(__clang__)
FASTLA_CONV_ROWS_VEC(fastla_conv_rows_f32, float, fastla_vf32)
FASTLA_CONV_ROWS_VEC(fastla_conv_rows_f64, double, fastla_vf64)
#else
#define FASTLA_CONV_ROWS_PLAIN(NAME, T)                                              \
    static inline int NAME(const T* img, ptrdiff_t W, const ptrdiff_t* ridx,         \
                           const T* cvalrow, ptrdiff_t ox, const T* w, int kh, int kw, \
                           ptrdiff_t jlo, ptrdiff_t jhi, T* o0, T* o1, int stream)   \
    {                                                                                \
        ptrdiff_t j;                                                                 \
        int bad = 0;                                                                 \
        (void)stream;                                                                \
        for (j = jlo; j < jhi; j++)                                                  \
            bad |= fastla_conv_point_##T(img, W, ridx, cvalrow, ox, w, kh, kw, j, o0, o1); \
        return bad;                                                                  \
    }
FASTLA_CONV_ROWS_PLAIN(fastla_conv_rows_f32, float)
FASTLA_CONV_ROWS_PLAIN(fastla_conv_rows_f64, double)
#endif


/* fastla_conv3x3_u8(p0, p1, p2, p3, w, jlo, jhi, o0, o1, u0, u1, thr, hits): the 3x3
 * kernel on uint8 rows p0..p3 (offset by the column origin, as fastla_conv3x3_<T>),
 * summed in float32 (w: the nine float32 taps) and finished in the same pass: for
 * jlo <= j < jhi, o0[j] / o1[j] = the float32 sums (kept for the caller's recheck) and
 * u0[j] / u1[j] = those sums rounded to nearest, ties to even, saturated to 0..255.
 * A sum c (clamped to [-1, 256]) with |c - rint(c)| >= thr lies within 1/2 - thr of a
 * half-integer, where the caller's float64 sum must decide (thr > 1/2: never): the
 * first column of each vector step holding one goes to hits[] (at most
 * (jhi - jlo) + 1 entries), and the count is returned; the caller tests the
 * FASTLA_U8_LANES columns from each. The input is converted in registers, so no float
 * copy of the rows is written. Rounding: vrndscaleps / vroundps, or on SSE2 and in the
 * scalar loop (c + 1.5 2**23) - 1.5 2**23, exact for |c| <= 2**22. Vector code for the
 * three ISA levels the wheel builds (SSE2, AVX2, AVX-512); other targets (an AVX build
 * without AVX2, other compilers) run the scalar loop. */
#if (defined(__GNUC__) || defined(__clang__)) && \
    (defined(__AVX512F__) || defined(__AVX2__) || (defined(__SSE2__) && !defined(__AVX__)))
#define FASTLA_U8_VEC 1
#define FASTLA_U8_LANES (FASTLA_VBYTES / 4)
#else
#define FASTLA_U8_LANES 1
#endif

/* one output column j from rows r0, r1, r2, summed in float32 with the vector steps'
 * association: the sum into o[j], rounded and saturated into u[j], and j appended to
 * hits[] (unless it is the last entry) when near a tie; returns the new count */
static inline ptrdiff_t fastla_u8_point(const unsigned char* r0, const unsigned char* r1,
                                        const unsigned char* r2, const float* w,
                                        ptrdiff_t j, float* o, unsigned char* u,
                                        float thr, ptrdiff_t* hits, ptrdiff_t nh)
{
    float s = (0.0f + FASTLA_CONV3_ROW_T(float, w[0], w[1], w[2], r0, j))
              + FASTLA_CONV3_ROW_T(float, w[3], w[4], w[5], r1, j);
    float c, r, d;
    s = s + FASTLA_CONV3_ROW_T(float, w[6], w[7], w[8], r2, j);
    o[j] = s;
    c = s > -1.0f ? s : -1.0f;  /* finite: the inputs are uint8 and the bound finite */
    c = c < 256.0f ? c : 256.0f;
    r = (c + 12582912.0f) - 12582912.0f;  /* rint, exact for |c| <= 2**22 */
    d = c - r;
    if ((d >= thr || d <= -thr) && (nh == 0 || hits[nh - 1] != j))
        hits[nh++] = j;
    r = r > 0.0f ? r : 0.0f;
    r = r < 255.0f ? r : 255.0f;
    u[j] = (unsigned char)r;
    return nh;
}

#ifdef FASTLA_U8_VEC

/* L uint8 at p as L floats, and L floats holding integers 0..255 stored as L uint8
 * (intrinsics: GCC 12 lowers __builtin_convertvector between uint8 and float vectors
 * to one scalar conversion per lane) */
#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif
#if defined(__AVX512F__)
static inline fastla_vf32 fastla_u8_load(const unsigned char* p)
{
    return (fastla_vf32)_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)p)));
}
static inline void fastla_u8_store(unsigned char* u, fastla_vf32 r)
{
    _mm_storeu_si128((__m128i*)u, _mm512_cvtepi32_epi8(_mm512_cvttps_epi32((__m512)r)));
}
#elif defined(__AVX2__)
static inline fastla_vf32 fastla_u8_load(const unsigned char* p)
{
    return (fastla_vf32)_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)p)));
}
static inline void fastla_u8_store(unsigned char* u, fastla_vf32 r)
{
    __m256i i = _mm256_cvttps_epi32((__m256)r);
    __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(i), _mm256_extracti128_si256(i, 1));
    _mm_storel_epi64((__m128i*)u, _mm_packus_epi16(w, w));
}
#else /* SSE2 */
#include <emmintrin.h>
static inline fastla_vf32 fastla_u8_load(const unsigned char* p)
{
    int v;
    __m128i z = _mm_setzero_si128(), b;
    memcpy(&v, p, 4);
    b = _mm_unpacklo_epi16(_mm_unpacklo_epi8(_mm_cvtsi32_si128(v), z), z);
    return (fastla_vf32)_mm_cvtepi32_ps(b);
}
static inline void fastla_u8_store(unsigned char* u, fastla_vf32 r)
{
    __m128i i = _mm_cvttps_epi32((__m128)r), w;
    int v;
    w = _mm_packs_epi32(i, i);
    v = _mm_cvtsi128_si32(_mm_packus_epi16(w, w));
    memcpy(u, &v, 4);
}
#endif

/* round to nearest even of float lanes */
#if defined(__AVX512F__)
#define FASTLA_VRINTF(a)                                                             \
    ((fastla_vf32)_mm512_roundscale_ps((__m512)(a), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC))
#elif defined(__AVX2__)
#define FASTLA_VRINTF(a)                                                             \
    ((fastla_vf32)_mm256_round_ps((__m256)(a), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC))
#else /* SSE2: rint by adding and subtracting 1.5 2**23, exact for |a| <= 2**22 */
#define FASTLA_VRINTF(a) (((a) + big) - big)
#endif

/* the finish of one vector of sums s at column j: kept in o, rounded and saturated
 * into u; m gets the lanes within the bound of a tie (|c - rint(c)| >= thr, as
 * (c - rint(c))^2 >= thr^2: rounding is monotone, so no such lane is missed) */
#define FASTLA_U8_VFINISH(s, o, u)                                                   \
    do {                                                                             \
        fastla_vf32 c_ = FASTLA_VMIN(fastla_vf32, FASTLA_VMAX(fastla_vf32, s, lo), hi), r_, d_;              \
        memcpy((o) + j, &(s), sizeof(s));                                            \
        r_ = FASTLA_VRINTF(c_);                                                      \
        d_ = c_ - r_;                                                                \
        m = m | (d_ * d_ >= thr2);                                                   \
        fastla_u8_store((u) + j,                                                     \
                        FASTLA_VMIN(fastla_vf32, FASTLA_VMAX(fastla_vf32, r_, z), top));            \
    } while (0)

#endif /* FASTLA_U8_VEC */

static inline int fastla_conv3x3_u8(const unsigned char* p0, const unsigned char* p1,
                                    const unsigned char* p2, const unsigned char* p3,
                                    const float* w, ptrdiff_t jlo, ptrdiff_t jhi,
                                    float* o0, float* o1, unsigned char* u0,
                                    unsigned char* u1, float thr, ptrdiff_t* hits)
{
    ptrdiff_t j = jlo, nh = 0;
#ifdef FASTLA_U8_VEC
    enum { L = FASTLA_VBYTES / sizeof(float) };
    const fastla_vf32 z = (fastla_vf32){0};
    const fastla_vf32 a0 = FASTLA_VSET1(float, fastla_vf32, w[0]),
                      a1 = FASTLA_VSET1(float, fastla_vf32, w[1]),
                      a2 = FASTLA_VSET1(float, fastla_vf32, w[2]),
                      a3 = FASTLA_VSET1(float, fastla_vf32, w[3]),
                      a4 = FASTLA_VSET1(float, fastla_vf32, w[4]),
                      a5 = FASTLA_VSET1(float, fastla_vf32, w[5]),
                      a6 = FASTLA_VSET1(float, fastla_vf32, w[6]),
                      a7 = FASTLA_VSET1(float, fastla_vf32, w[7]),
                      a8 = FASTLA_VSET1(float, fastla_vf32, w[8]);
    const fastla_vf32 lo = FASTLA_VSET1(float, fastla_vf32, -1.0f),
                      hi = FASTLA_VSET1(float, fastla_vf32, 256.0f),
                      top = FASTLA_VSET1(float, fastla_vf32, 255.0f),
                      big = FASTLA_VSET1(float, fastla_vf32, 12582912.0f),
                      thr2 = FASTLA_VSET1(float, fastla_vf32, thr * thr);
    (void)big;  /* used by the SSE2 rint only */
    if (jhi - jlo >= L) {
        for (;;) {
            fastla_vf32 x0, x1, x2, y0, y1, y2, v0, v1, v2, t0, t1, t2, s0, s1;
            x0 = fastla_u8_load(p0 + j); x1 = fastla_u8_load(p0 + j + 1); x2 = fastla_u8_load(p0 + j + 2);
            y0 = fastla_u8_load(p1 + j); y1 = fastla_u8_load(p1 + j + 1); y2 = fastla_u8_load(p1 + j + 2);
            v0 = fastla_u8_load(p2 + j); v1 = fastla_u8_load(p2 + j + 1); v2 = fastla_u8_load(p2 + j + 2);
            t0 = fastla_u8_load(p3 + j); t1 = fastla_u8_load(p3 + j + 1); t2 = fastla_u8_load(p3 + j + 2);
            s0 = z + FASTLA_V3(float, a0, a1, a2, x0, x1, x2);
            s1 = z + FASTLA_V3(float, a0, a1, a2, y0, y1, y2);
            s0 = s0 + FASTLA_V3(float, a3, a4, a5, y0, y1, y2);
            s1 = s1 + FASTLA_V3(float, a3, a4, a5, v0, v1, v2);
            s0 = s0 + FASTLA_V3(float, a6, a7, a8, v0, v1, v2);
            s1 = s1 + FASTLA_V3(float, a6, a7, a8, t0, t1, t2);
            {
                fastla_vi32 m = (fastla_vi32){0};
                FASTLA_U8_VFINISH(s0, o0, u0);
                FASTLA_U8_VFINISH(s1, o1, u1);
                if (FASTLA_VANY(m))  /* rare: a value within the bound of a tie */
                    hits[nh++] = j;
            }
            if (j + L >= jhi)
                break;
            j = j + 2 * L <= jhi ? j + L : jhi - L;  /* the last vector ends at jhi */
        }
        return (int)nh;
    }
#endif
    for (; j < jhi; j++) {  /* rows narrower than a vector, or no vector code */
        nh = fastla_u8_point(p0, p1, p2, w, j, o0, u0, thr, hits, nh);
        nh = fastla_u8_point(p1, p2, p3, w, j, o1, u1, thr, hits, nh);
    }
    return (int)nh;
}

#endif /* FASTLA_CONV_VEC_H */
