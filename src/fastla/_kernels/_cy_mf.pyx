# cython: language_level=3
"""SGD matrix factorisation kernels (Cython + OpenMP).

Ratings arrive gridded by the public layer (``fastla.mf``): ``block_ptr[b * B + c]``
is the first rating of block (row bin b, column bin c); inside a block the ratings are
sorted by user, so that p_u is held in a thread-local buffer across a run of the same
user and written back once (the same arithmetic as updating it in place).

Deterministic mode runs the ``B`` strata of an epoch in the order given by ``cols``
(stratum ``s`` holds the blocks ``(b, cols[s, b])``, disjoint in users and items); the
blocks of a stratum run in parallel. The result does not depend on the thread count.
Hogwild mode runs every block of the grid in parallel, lock-free.

The update is Surprise's SVD rule; ``adagrad`` switches to per-row AdaGrad steps (one
accumulator per factor row and per bias). On the AVX-512 build the constant and decay
schedules run on ``_mf_vec.h``'s kernel (p_u in registers, k up to 256 float32 / 128
float64 factors); ``_block`` below is the generic loop for every other case.
"""

cimport cython
from cython cimport floating
from cython.parallel cimport parallel, prange, threadid
from libc.math cimport sqrt
from libc.stdlib cimport free, malloc

import numpy as np


include "_cdecl.pxi"

cdef extern from "_mf_vec.h" nogil:
    int FASTLA_MF_OWN
    double fastla_mf_block_f32(const int* users, const int* items, const float* ratings,
                               Py_ssize_t start, Py_ssize_t end, float* P, float* Q,
                               float* bu, float* bi, Py_ssize_t k, float mu,
                               const float* prm, int biased)
    double fastla_mf_block_f64(const int* users, const int* items, const double* ratings,
                               Py_ssize_t start, Py_ssize_t end, double* P, double* Q,
                               double* bu, double* bi, Py_ssize_t k, double mu,
                               const double* prm, int biased)
    void fastla_mf_seed_f32(const int* rows, const int* cols, const float* vals,
                            Py_ssize_t nnz, float* P, float* Q, Py_ssize_t k, float lr2,
                            Py_ssize_t max_iter)
    void fastla_mf_seed_f64(const int* rows, const int* cols, const double* vals,
                            Py_ssize_t nnz, double* P, double* Q, Py_ssize_t k, double lr2,
                            Py_ssize_t max_iter)
    Py_ssize_t fastla_mf_max_k(Py_ssize_t itemsize)

#: the register kernel of _mf_vec.h for the constant and decay schedules where the build
#: has it (AVX-512) and k fits its registers; the tests switch it off to compare both.
OWN_MF = True


cdef inline bint _own(Py_ssize_t k, Py_ssize_t itemsize):
    """Whether the register kernels run here (k factors of itemsize bytes)."""
    return OWN_MF and FASTLA_MF_OWN and k <= fastla_mf_max_k(itemsize)

cdef inline floating _dot(const floating* a, const floating* b, Py_ssize_t k) noexcept nogil:
    # sixteen partial sums: vectorisable without -ffast-math (one AVX-512 register of
    # floats), a fixed order, and half the dependent additions of eight sums (the dot
    # product's latency is on every update's critical path)
    cdef floating acc[16]
    cdef Py_ssize_t f, j, k16 = k - k % 16
    for j in range(16):
        acc[j] = 0
    for f in range(0, k16, 16):
        for j in range(16):
            acc[j] += a[f + j] * b[f + j]
    for f in range(k16, k):
        acc[f - k16] += a[f] * b[f]
    for j in range(8):
        acc[j] += acc[j + 8]
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))


cdef double _block(const int* users, const int* items, const floating* ratings,
                   Py_ssize_t start, Py_ssize_t end,
                   floating* P, floating* Q, floating* bu, floating* bi,
                   floating* Gp, floating* Gq, floating* Gbu, floating* Gbi,
                   Py_ssize_t k, floating mu, const floating* prm, int biased, int adagrad,
                   floating* buf) noexcept nogil:
    cdef floating lr_bu = prm[0], lr_bi = prm[1], lr_pu = prm[2], lr_qi = prm[3]
    cdef floating reg_bu = prm[4], reg_bi = prm[5], reg_pu = prm[6], reg_qi = prm[7]
    cdef Py_ssize_t n, f, cur = -1, i
    cdef floating bu_c = 0, gp_c = 0, gbu_c = 0
    cdef floating dot, est, err, puf, qif, gp, gq, gb, sp, sq, sgp, sgq
    cdef floating* q
    cdef floating* p
    cdef double sse = 0
    for n in range(start, end):
        if users[n] != cur:
            if cur >= 0:
                p = P + cur * k
                for f in range(k):
                    p[f] = buf[f]
                bu[cur] = bu_c
                Gp[cur] = gp_c
                Gbu[cur] = gbu_c
            cur = users[n]
            p = P + cur * k
            for f in range(k):
                buf[f] = p[f]
            bu_c = bu[cur]
            gp_c = Gp[cur]
            gbu_c = Gbu[cur]
        i = items[n]
        q = Q + i * k
        if n + 1 < end:
            # the next rating's item row: L2 -> L1 while this update runs
            fastla_prefetch_rows(Q + items[n + 1] * k, k * sizeof(floating))
        dot = _dot(buf, q, k)
        if biased:
            est = mu + bu_c + bi[i] + dot
        else:
            est = dot
        err = ratings[n] - est
        sse += <double>err * <double>err
        if adagrad:
            if biased:
                gb = err - reg_bu * bu_c
                bu_c = bu_c + lr_bu / sqrt(gbu_c) * gb
                gbu_c = gbu_c + gb * gb
                gb = err - reg_bi * bi[i]
                bi[i] = bi[i] + lr_bi / sqrt(Gbi[i]) * gb
                Gbi[i] = Gbi[i] + gb * gb
            sp = lr_pu / sqrt(gp_c)
            sq = lr_qi / sqrt(Gq[i])
            sgp = 0
            sgq = 0
            for f in range(k):
                puf = buf[f]
                qif = q[f]
                gp = err * qif - reg_pu * puf
                gq = err * puf - reg_qi * qif
                buf[f] = puf + sp * gp
                q[f] = qif + sq * gq
                sgp = sgp + gp * gp
                sgq = sgq + gq * gq
            gp_c = gp_c + sgp / k
            Gq[i] = Gq[i] + sgq / k
        else:
            if biased:
                bu_c = bu_c + lr_bu * (err - reg_bu * bu_c)
                bi[i] = bi[i] + lr_bi * (err - reg_bi * bi[i])
            for f in range(k):
                puf = buf[f]
                qif = q[f]
                buf[f] = puf + lr_pu * (err * qif - reg_pu * puf)
                q[f] = qif + lr_qi * (err * puf - reg_qi * qif)
    if cur >= 0:
        p = P + cur * k
        for f in range(k):
            p[f] = buf[f]
        bu[cur] = bu_c
        Gp[cur] = gp_c
        Gbu[cur] = gbu_c
    return sse


cdef inline double _run_block(const int* users, const int* items, const floating* ratings,
                              Py_ssize_t start, Py_ssize_t end,
                              floating* P, floating* Q, floating* bu, floating* bi,
                              floating* Gp, floating* Gq, floating* Gbu, floating* Gbi,
                              Py_ssize_t k, floating mu, const floating* prm, int biased,
                              int adagrad, floating* buf, int own) noexcept nogil:
    if own:
        if floating is float:
            return fastla_mf_block_f32(users, items, ratings, start, end, P, Q, bu, bi,
                                       k, mu, prm, biased)
        else:
            return fastla_mf_block_f64(users, items, ratings, start, end, P, Q, bu, bi,
                                       k, mu, prm, biased)
    return _block(users, items, ratings, start, end, P, Q, bu, bi, Gp, Gq, Gbu, Gbi,
                  k, mu, prm, biased, adagrad, buf)


@cython.boundscheck(False)
@cython.wraparound(False)
def sgd_mf(const int[::1] users, const int[::1] items, const floating[::1] ratings,
           const long long[::1] block_ptr, const int[:, ::1] cols,
           floating[:, ::1] P, floating[:, ::1] Q, floating[::1] bu, floating[::1] bi,
           floating[::1] Gp, floating[::1] Gq, floating[::1] Gbu, floating[::1] Gbi,
           double mu, const floating[::1] prm, int biased, int adagrad, int hogwild,
           double[::1] block_sse, int n_threads):
    """One epoch of SGD over the gridded ratings; fills ``block_sse`` (squared
    error of each block, before each update) and returns the total in block order."""
    cdef Py_ssize_t B = cols.shape[1], S = cols.shape[0], k = P.shape[1]
    cdef Py_ssize_t s, b, blk, j
    cdef floating* buf = NULL
    cdef floating mu_ = <floating>mu
    cdef int nt = max(1, n_threads)
    cdef double total = 0
    cdef int own = not adagrad and _own(k, sizeof(floating))
    if P.shape[0] == 0 or Q.shape[0] == 0 or k == 0:
        return 0.0
    if hogwild:
        with nogil, parallel(num_threads=nt):
            buf = <floating*>malloc(k * sizeof(floating))
            for blk in prange(B * B, schedule="dynamic"):
                block_sse[blk] = _run_block(&users[0], &items[0], &ratings[0],
                                            block_ptr[blk], block_ptr[blk + 1],
                                            &P[0, 0], &Q[0, 0], &bu[0], &bi[0],
                                            &Gp[0], &Gq[0], &Gbu[0], &Gbi[0],
                                            k, mu_, &prm[0], biased, adagrad, buf, own)
            free(buf)
    else:
        for s in range(S):
            with nogil, parallel(num_threads=nt):
                buf = <floating*>malloc(k * sizeof(floating))
                for b in prange(B, schedule="dynamic"):
                    blk = b * B + cols[s, b]
                    block_sse[blk] = _run_block(&users[0], &items[0], &ratings[0],
                                                block_ptr[blk], block_ptr[blk + 1],
                                                &P[0, 0], &Q[0, 0], &bu[0], &bi[0],
                                                &Gp[0], &Gq[0], &Gbu[0], &Gbi[0],
                                                k, mu_, &prm[0], biased, adagrad, buf, own)
                free(buf)
    for j in range(B * B):
        total += block_sse[j]
    return total


@cython.boundscheck(False)
@cython.wraparound(False)
def matrix_factorization(const int[::1] rows, const int[::1] cols, const floating[::1] vals,
                         floating[:, ::1] P, floating[:, ::1] Q, double learning_rate,
                         Py_ssize_t max_iter, int n_threads):
    """The seed's loop on the observed entries in row-major order, sequential: P and Q
    updated in place (P first, then Q with the new P, as the seed does). The AVX-512
    build runs it on ``_mf_vec.h`` (the row's p in registers)."""
    cdef Py_ssize_t it, n, f, k = P.shape[1], nnz = rows.shape[0]
    cdef floating lr2 = <floating>(2.0 * learning_rate), e
    cdef floating* p
    cdef floating* q
    if nnz == 0 or k == 0:
        return None
    if _own(k, sizeof(floating)):
        with nogil:
            if floating is float:
                fastla_mf_seed_f32(&rows[0], &cols[0], &vals[0], nnz, &P[0, 0], &Q[0, 0],
                                   k, lr2, max_iter)
            else:
                fastla_mf_seed_f64(&rows[0], &cols[0], &vals[0], nnz, &P[0, 0], &Q[0, 0],
                                   k, lr2, max_iter)
        return None
    with nogil:
        for it in range(max_iter):
            for n in range(nnz):
                p = &P[rows[n], 0]
                q = &Q[cols[n], 0]
                e = vals[n] - _dot(p, q, k)
                for f in range(k):
                    p[f] = p[f] + lr2 * e * q[f]
                    q[f] = q[f] + lr2 * e * p[f]
    return None


@cython.boundscheck(False)
@cython.wraparound(False)
def counting_order(const long long[::1] keys, Py_ssize_t n_keys):
    """Stable counting sort: ``order`` (int64) lists the positions of ``keys`` by
    increasing key, equal keys in their input order; ``ptr`` (n_keys + 1, int64) gives
    each key's run in ``order``. Keys are in [0, n_keys) (the caller's guarantee).
    O(n + n_keys), against O(n log n) for a comparison sort: the rating grid and the
    seen-items lists are built with it."""
    cdef Py_ssize_t n = keys.shape[0], j, c
    ptr = np.zeros(n_keys + 1, dtype=np.int64)
    order = np.empty(n, dtype=np.int64)
    cdef long long[::1] pv = ptr
    cdef long long[::1] ov = order
    cdef long long[::1] nxt
    with nogil:
        for j in range(n):
            pv[keys[j] + 1] += 1
        for c in range(n_keys):
            pv[c + 1] += pv[c]
    nxt = ptr[:n_keys].copy()
    with nogil:
        for j in range(n):
            c = keys[j]
            ov[nxt[c]] = j
            nxt[c] += 1
    return order, ptr


cdef void _counting_pass(const long long* src, long long* dst, Py_ssize_t n,
                         const int* ids, const long long* perm, long long lo,
                         long long* cnt) noexcept nogil:
    """dst = src stably sorted by perm[ids[src[t]]] - lo (in [0, m); cnt zeroed and
    m + 1 long; left zeroed again)."""
    cdef Py_ssize_t t, c, m = 0
    cdef long long s = 0, x
    for t in range(n):
        c = perm[ids[src[t]]] - lo
        cnt[c] += 1
        if c + 1 > m:
            m = c + 1
    for c in range(m):
        x = cnt[c]
        cnt[c] = s
        s += x
    for t in range(n):
        c = perm[ids[src[t]]] - lo
        dst[cnt[c]] = src[t]
        cnt[c] += 1
    for c in range(m):
        cnt[c] = 0


@cython.boundscheck(False)
@cython.wraparound(False)
@cython.cdivision(True)
def grid_order(const int[::1] u, const int[::1] i, const long long[::1] perm_u,
               const long long[::1] perm_i, Py_ssize_t B, int n_threads=1):
    """The rating grid's order: ratings sorted by block ``(ub, ib)``, then permuted user
    ``pu = perm_u[u]``, then permuted item ``pi = perm_i[i]``, where
    ``ub = pu * B // n_users`` and ``ib = pi * B // n_items`` (``np.lexsort((pi, pu,
    block))``). One counting pass by block over all ratings, then two inside each block
    (by pi, then stably by pu) on keys rebased to the block's bins: each block's
    passes run in cache, the blocks in parallel. Returns ``order`` (int64) and the
    blocks' offsets ``ptr`` (B * B + 1, int64). Ids are in range (the caller's
    guarantee)."""
    cdef Py_ssize_t n = u.shape[0], nu = perm_u.shape[0], ni = perm_i.shape[0]
    cdef Py_ssize_t nb = B * B, j, c, blk, s0, s1, nt = max(1, n_threads)
    cdef long long lo_u, lo_i
    order = np.empty(n, dtype=np.int64)
    tmp = np.empty(n, dtype=np.int64)
    ptr = np.zeros(nb + 1, dtype=np.int64)
    # block = row_of[u] + col_of[i]: the divisions once per id, not per rating
    row_of = (np.asarray(perm_u) * B) // nu * B
    col_of = (np.asarray(perm_i) * B) // ni
    cdef long long[::1] rv = row_of
    cdef long long[::1] cv = col_of
    cdef long long[::1] ov = order
    cdef long long[::1] tv = tmp
    cdef long long[::1] pv = ptr
    cdef long long* cnt
    # one zeroed count array per thread (the passes leave them zeroed again)
    cdef long long[:, ::1] cntv = np.zeros((nt, max(nu, ni) + 1), dtype=np.int64)
    with nogil:
        for j in range(n):
            pv[rv[u[j]] + cv[i[j]] + 1] += 1
        for c in range(nb):
            pv[c + 1] += pv[c]
    cur = ptr[:nb].copy()
    cdef long long[::1] curv = cur
    with nogil:
        for j in range(n):
            c = rv[u[j]] + cv[i[j]]
            ov[curv[c]] = j
            curv[c] += 1
        with parallel(num_threads=nt):
            cnt = &cntv[threadid(), 0]
            for blk in prange(nb, schedule="dynamic"):
                s0 = pv[blk]
                s1 = pv[blk + 1]
                if s1 - s0 < 2:
                    continue
                # the smallest permuted ids of the block's row and column bins:
                # pu * B // nu == b  <=>  pu >= ceil(b * nu / B)
                lo_u = ((blk // B) * nu + B - 1) // B
                lo_i = ((blk % B) * ni + B - 1) // B
                _counting_pass(&ov[s0], &tv[s0], s1 - s0, &i[0], &perm_i[0], lo_i, cnt)
                _counting_pass(&tv[s0], &ov[s0], s1 - s0, &u[0], &perm_u[0], lo_u, cnt)
    return order, ptr
