/* SGD matrix factorisation: one block of the constant-schedule update with p_u in
 * registers (AVX-512 builds).
 *
 * fastla_mf_block_f32 / _f64 run the same update as _cy_mf.pyx's _block with
 * adagrad = 0 (Surprise's SVD rule) over ratings [start, end) of a block sorted by user:
 *
 *     est = mu + b_u + b_i + p_u . q_i        err = r - est
 *     b_u += lr_bu (err - reg_bu b_u)         b_i += lr_bi (err - reg_bi b_i)
 *     p_u += lr_pu (err q_i - reg_pu p_u)     q_i += lr_qi (err p_u - reg_qi q_i)
 *
 * and return the block's sum of squared errors (before each update). p_u lives in NV
 * registers across a user's run of ratings (NV = k / lanes rounded up; the last vector
 * is masked, so P and Q keep their row stride k), q_i is loaded once per rating, and the
 * dot product runs on two accumulators, then one reduction. Against the generic loop
 * this removes the scalar tails (k = 100 is 6 vectors and 4 floats), the stores and
 * reloads of p_u per rating and half of the dot product's dependent additions: the
 * update's latency chain (dot, error, p_u) is what bounds the throughput.
 *
 * Summation order: the lanes' partial sums (two registers added lane by lane, then
 * _mm512_reduce_add) differ from the generic loop's sixteen sums, so values agree to
 * rounding, not bitwise; the order is fixed, so the result does not depend on the
 * thread count.
 *
 * FASTLA_MF_OWN is 1 where this kernel exists (x86-64-v4 builds with GCC or Clang)
 * and k fits FASTLA_MF_MAX_NV registers; elsewhere the entries are never called.
 */
#ifndef FASTLA_MF_VEC_H
#define FASTLA_MF_VEC_H

#include <stddef.h>

#define FASTLA_MF_MAX_NV 16

#if (defined(__GNUC__) || defined(__clang__)) && defined(__AVX512F__)
#include <immintrin.h>

#define FASTLA_MF_OWN 1

/* MF_REP(X): X(0) .. X(15), one per register of a row; with NV a constant after inlining
 * the branches on j fold away and p0..p{NV-1} stay in registers (an array of vectors
 * indexed in loops was kept on the stack by GCC: a store and a reload per rating). */
#define MF_REP(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12)   \
    X(13) X(14) X(15)
#define MF_DECL(j) MF_V p##j = MF_SET1(0), q##j = MF_SET1(0);
#define MF_DECLX(j) MF_V x##j = MF_SET1(0);
#define MF_LOADROW(j, dst, src)                                                         \
    if ((j) < NV - 1)                                                                    \
        dst##j = MF_LOADU((src) + (j) * MF_W);                                           \
    else if ((j) == NV - 1)                                                              \
        dst##j = MF_MLOADU(last, (src) + (j) * MF_W);
#define MF_STOREROW(j, src, dst)                                                        \
    if ((j) < NV - 1)                                                                    \
        MF_STOREU((dst) + (j) * MF_W, src##j);                                           \
    else if ((j) == NV - 1)                                                              \
        MF_MSTOREU((dst) + (j) * MF_W, last, src##j);
#define MF_LDP(j) MF_LOADROW(j, p, pr)
#define MF_LDQ(j) MF_LOADROW(j, q, qr)
#define MF_LDX(j) MF_LOADROW(j, x, xr)
#define MF_TAKEX(j)                                                                     \
    if ((j) < NV)                                                                        \
        q##j = x##j;
#define MF_STP(j) MF_STOREROW(j, p, pr)
#define MF_STQ(j) MF_STOREROW(j, q, qr)
/* p of row cur back to P (none before the first row); then p of row u from P */
#define MF_FLUSH()                                                                      \
    if (cur >= 0) {                                                                      \
        MF_T* pr = P + cur * k;                                                          \
        MF_REP(MF_STP)                                                                   \
    }
#define MF_SWITCH(u)                                                                    \
    MF_FLUSH()                                                                           \
    cur = (u);                                                                           \
    {                                                                                    \
        const MF_T* pr = P + cur * k;                                                    \
        MF_REP(MF_LDP)                                                                   \
    }
/* the dot product on two accumulators: even registers into acc0, odd into acc1 */
#define MF_DOT(j)                                                                       \
    if ((j) < NV) {                                                                      \
        if ((j) & 1)                                                                     \
            acc1 = MF_FMADD(p##j, q##j, acc1);                                           \
        else                                                                             \
            acc0 = MF_FMADD(p##j, q##j, acc0);                                           \
    }
/* the next entry's two dot products, p.x and q.x (x: the next column's row of Q) */
#define MF_DOT2(j)                                                                      \
    if ((j) < NV) {                                                                      \
        if ((j) & 1) {                                                                   \
            acc1 = MF_FMADD(p##j, x##j, acc1);                                           \
            bcc1 = MF_FMADD(q##j, x##j, bcc1);                                           \
        } else {                                                                         \
            acc0 = MF_FMADD(p##j, x##j, acc0);                                           \
            bcc0 = MF_FMADD(q##j, x##j, bcc0);                                           \
        }                                                                                \
    }
/* p += lr_pu (err q - reg_pu p) and q += lr_qi (err p - reg_qi q), factored as
 * p (1 - lr_pu reg_pu) + (lr_pu err) q: two operations per register instead of three
 * (the same update; roundings differ from the textbook form by an ulp or so) */
#define MF_UPD(j)                                                                       \
    if ((j) < NV) {                                                                      \
        const MF_V pv = p##j, qv = q##j;                                                 \
        p##j = MF_FMADD(cp, qv, MF_MUL(vdp, pv));                                        \
        q##j = MF_FMADD(cq, pv, MF_MUL(vdq, qv));                                        \
    }

/* NAME_nv: the block with NV (a constant after inlining) registers of MF_W lanes per
 * row; MF_T, MF_V, MF_M and the MF_ intrinsics are defined before each instantiation. */
#define FASTLA_MF_BLOCK(NAME)                                                           \
    static inline __attribute__((always_inline)) double NAME##_nv(                      \
        const int* users, const int* items, const MF_T* ratings, ptrdiff_t start,       \
        ptrdiff_t end, MF_T* P, MF_T* Q, MF_T* bu, MF_T* bi, ptrdiff_t k, MF_T mu,      \
        const MF_T* prm, int biased, const int NV)                                       \
    {                                                                                    \
        const MF_T lr_bu = prm[0], lr_bi = prm[1], lr_pu = prm[2], lr_qi = prm[3];       \
        const MF_T reg_bu = prm[4], reg_bi = prm[5];                                     \
        const MF_V vdp = MF_SET1(1 - prm[2] * prm[6]), vdq = MF_SET1(1 - prm[3] * prm[7]); \
        const ptrdiff_t rem = k - (ptrdiff_t)(NV - 1) * MF_W;                            \
        const MF_M last = (MF_M)(rem >= MF_W ? (MF_M)~(MF_M)0                            \
                                             : (MF_M)(((MF_M)1 << rem) - 1));            \
        MF_REP(MF_DECL)                                                                  \
        ptrdiff_t n, cur = -1;                                                           \
        MF_T bu_c = 0;                                                                   \
        double sse = 0;                                                                  \
        for (n = start; n < end; n++) {                                                  \
            const ptrdiff_t u = users[n], i = items[n];                                  \
            MF_T* qr = Q + i * k;                                                        \
            MF_V acc0 = MF_SET1(0), acc1 = MF_SET1(0);                                   \
            MF_T dot, err;                                                               \
            if (u != cur) {                                                              \
                if (cur >= 0)                                                            \
                    bu[cur] = bu_c;                                                      \
                MF_SWITCH(u)                                                             \
                bu_c = bu[cur];                                                          \
            }                                                                            \
            if (n + 1 < end) {                                                           \
                const char* nx = (const char*)(Q + (ptrdiff_t)items[n + 1] * k);         \
                ptrdiff_t o;                                                             \
                for (o = 0; o < k * (ptrdiff_t)sizeof(MF_T); o += 64)                    \
                    _mm_prefetch(nx + o, _MM_HINT_T0);                                   \
            }                                                                            \
            MF_REP(MF_LDQ)                                                               \
            MF_REP(MF_DOT)                                                               \
            dot = MF_REDUCE(MF_ADD(acc0, acc1));                                         \
            if (biased) {                                                                \
                const MF_T bi_c = bi[i];                                                 \
                err = ratings[n] - (mu + bu_c + bi_c + dot);                             \
                bu_c = bu_c + lr_bu * (err - reg_bu * bu_c);                             \
                bi[i] = bi_c + lr_bi * (err - reg_bi * bi_c);                            \
            } else {                                                                     \
                err = ratings[n] - dot;                                                  \
            }                                                                            \
            sse += (double)err * (double)err;                                            \
            {                                                                            \
                const MF_V cp = MF_SET1(lr_pu * err), cq = MF_SET1(lr_qi * err);         \
                MF_REP(MF_UPD)                                                           \
            }                                                                            \
            MF_REP(MF_STQ)                                                               \
        }                                                                                \
        if (cur >= 0)                                                                    \
            bu[cur] = bu_c;                                                              \
        MF_FLUSH()                                                                       \
        return sse;                                                                      \
    }

/* NAME_nv: the seed's loop (fastla.matrix_factorization): max_iter passes over the
 * observed entries in row-major order, e = r - p.q, p += lr2 e q, then q += lr2 e p
 * with the new p (as the seed does). Rows arrive sorted, so p stays in registers over
 * its row's entries, and the update (lr2 e computed once, one fused multiply-add per
 * element) rounds as the generic loop does.
 *
 * At small k the loop is bound by its latency chain (dot product, reduction, error,
 * p), so the next entry's dot product is computed ahead when it has the same row:
 * with p' = p + c q (c = lr2 e), p'.x = p.x + c (q.x), and p.x and q.x (x the next
 * column's row of Q) do not wait for this entry's error. The same dot product, rounded
 * differently (two sums instead of one). */
#define FASTLA_MF_SEED(NAME)                                                            \
    static inline __attribute__((always_inline)) void NAME##_nv(                        \
        const int* rows, const int* cols, const MF_T* vals, ptrdiff_t nnz, MF_T* P,     \
        MF_T* Q, ptrdiff_t k, MF_T lr2, ptrdiff_t max_iter, const int NV)                \
    {                                                                                    \
        const ptrdiff_t rem = k - (ptrdiff_t)(NV - 1) * MF_W;                            \
        const MF_M last = (MF_M)(rem >= MF_W ? (MF_M)~(MF_M)0                            \
                                             : (MF_M)(((MF_M)1 << rem) - 1));            \
        MF_REP(MF_DECL)                                                                  \
        MF_REP(MF_DECLX)                                                                 \
        ptrdiff_t it, n;                                                                 \
        for (it = 0; it < max_iter; it++) {                                              \
            ptrdiff_t cur = -1;                                                          \
            int ahead = 0;                                                               \
            MF_T d1 = 0, d2 = 0, cprev = 0, dot, c;                                      \
            for (n = 0; n < nnz; n++) {                                                  \
                const ptrdiff_t u = rows[n];                                             \
                MF_T* qr = Q + (ptrdiff_t)cols[n] * k;                                   \
                MF_V cp;                                                                 \
                if (u != cur) {                                                          \
                    MF_SWITCH(u)                                                         \
                }                                                                        \
                if (ahead) {                                                             \
                    MF_REP(MF_TAKEX)                                                     \
                    dot = d1 + cprev * d2;                                               \
                } else {                                                                 \
                    MF_V acc0 = MF_SET1(0), acc1 = MF_SET1(0);                           \
                    MF_REP(MF_LDQ)                                                       \
                    MF_REP(MF_DOT)                                                       \
                    dot = MF_REDUCE(MF_ADD(acc0, acc1));                                 \
                }                                                                        \
                ahead = n + 1 < nnz && rows[n + 1] == u && cols[n + 1] != cols[n];       \
                if (ahead) {                                                             \
                    const MF_T* xr = Q + (ptrdiff_t)cols[n + 1] * k;                     \
                    MF_V acc0 = MF_SET1(0), acc1 = MF_SET1(0);                           \
                    MF_V bcc0 = MF_SET1(0), bcc1 = MF_SET1(0);                           \
                    MF_REP(MF_LDX)                                                       \
                    MF_REP(MF_DOT2)                                                      \
                    d1 = MF_REDUCE(MF_ADD(acc0, acc1));                                  \
                    d2 = MF_REDUCE(MF_ADD(bcc0, bcc1));                                  \
                }                                                                        \
                c = lr2 * (vals[n] - dot);                                               \
                cprev = c;                                                               \
                cp = MF_SET1(c);                                                         \
                MF_REP(MF_SEEDUPD)                                                       \
                MF_REP(MF_STQ)                                                           \
            }                                                                            \
            MF_FLUSH()                                                                   \
        }                                                                                \
    }
#define MF_SEEDUPD(j)                                                                   \
    if ((j) < NV) {                                                                      \
        p##j = MF_FMADD(cp, q##j, p##j);                                                 \
        q##j = MF_FMADD(cp, p##j, q##j);                                                 \
    }

#define MF_T float
#define MF_V __m512
#define MF_M __mmask16
#define MF_W 16
#define MF_SET1 _mm512_set1_ps
#define MF_LOADU _mm512_loadu_ps
#define MF_MLOADU _mm512_maskz_loadu_ps
#define MF_STOREU _mm512_storeu_ps
#define MF_MSTOREU _mm512_mask_storeu_ps
#define MF_FMADD _mm512_fmadd_ps
#define MF_MUL _mm512_mul_ps
#define MF_ADD _mm512_add_ps
#define MF_REDUCE _mm512_reduce_add_ps
FASTLA_MF_BLOCK(fastla_mf_block_f32)
FASTLA_MF_SEED(fastla_mf_seed_f32)
#undef MF_T
#undef MF_V
#undef MF_M
#undef MF_W
#undef MF_SET1
#undef MF_LOADU
#undef MF_MLOADU
#undef MF_STOREU
#undef MF_MSTOREU
#undef MF_FMADD
#undef MF_MUL
#undef MF_ADD
#undef MF_REDUCE
#define MF_T double
#define MF_V __m512d
#define MF_M __mmask8
#define MF_W 8
#define MF_SET1 _mm512_set1_pd
#define MF_LOADU _mm512_loadu_pd
#define MF_MLOADU _mm512_maskz_loadu_pd
#define MF_STOREU _mm512_storeu_pd
#define MF_MSTOREU _mm512_mask_storeu_pd
#define MF_FMADD _mm512_fmadd_pd
#define MF_MUL _mm512_mul_pd
#define MF_ADD _mm512_add_pd
#define MF_REDUCE _mm512_reduce_add_pd
FASTLA_MF_BLOCK(fastla_mf_block_f64)
FASTLA_MF_SEED(fastla_mf_seed_f64)

/* the entries: one instantiation per register count (1..FASTLA_MF_MAX_NV) */
#define FASTLA_MF_CASES(CASE, NAME)                                                     \
    CASE(NAME, 1) CASE(NAME, 2) CASE(NAME, 3) CASE(NAME, 4) CASE(NAME, 5) CASE(NAME, 6)  \
    CASE(NAME, 7) CASE(NAME, 8) CASE(NAME, 9) CASE(NAME, 10) CASE(NAME, 11)              \
    CASE(NAME, 12) CASE(NAME, 13) CASE(NAME, 14) CASE(NAME, 15) CASE(NAME, 16)
#define FASTLA_MF_BLOCK_CASE(NAME, N)                                                   \
    case N:                                                                              \
        return NAME##_nv(users, items, ratings, start, end, P, Q, bu, bi, k, mu, prm,    \
                         biased, N);
#define FASTLA_MF_SEED_CASE(NAME, N)                                                    \
    case N:                                                                              \
        NAME##_nv(rows, cols, vals, nnz, P, Q, k, lr2, max_iter, N);                     \
        return;
#define FASTLA_MF_ENTRY(NAME, T, W)                                                     \
    static double NAME(const int* users, const int* items, const T* ratings,             \
                       ptrdiff_t start, ptrdiff_t end, T* P, T* Q, T* bu, T* bi,          \
                       ptrdiff_t k, T mu, const T* prm, int biased)                       \
    {                                                                                    \
        switch ((k + (W) - 1) / (W)) {                                                   \
            FASTLA_MF_CASES(FASTLA_MF_BLOCK_CASE, NAME)                                  \
        default:                                                                         \
            return 0.0;                                                                  \
        }                                                                                \
    }
#define FASTLA_MF_SEED_ENTRY(NAME, T, W)                                                \
    static void NAME(const int* rows, const int* cols, const T* vals, ptrdiff_t nnz,      \
                     T* P, T* Q, ptrdiff_t k, T lr2, ptrdiff_t max_iter)                  \
    {                                                                                    \
        switch ((k + (W) - 1) / (W)) {                                                   \
            FASTLA_MF_CASES(FASTLA_MF_SEED_CASE, NAME)                                   \
        default:                                                                         \
            return;                                                                      \
        }                                                                                \
    }

FASTLA_MF_ENTRY(fastla_mf_block_f32, float, 16)
FASTLA_MF_ENTRY(fastla_mf_block_f64, double, 8)
FASTLA_MF_SEED_ENTRY(fastla_mf_seed_f32, float, 16)
FASTLA_MF_SEED_ENTRY(fastla_mf_seed_f64, double, 8)

/* the largest k the register kernel takes for an element size of ITEMSIZE bytes */
static inline ptrdiff_t fastla_mf_max_k(ptrdiff_t itemsize)
{
    return FASTLA_MF_MAX_NV * (64 / itemsize);
}

#else

#define FASTLA_MF_OWN 0

/* never called where FASTLA_MF_OWN is 0; defined so that the callers compile */
#define fastla_mf_block_f32(...) 0.0
#define fastla_mf_block_f64(...) 0.0
#define fastla_mf_seed_f32(...) ((void)0)
#define fastla_mf_seed_f64(...) ((void)0)
#define fastla_mf_max_k(itemsize) ((ptrdiff_t)0)

#endif

#endif /* FASTLA_MF_VEC_H */
