"""SGD matrix factorisation kernels (Numba). Same layout and order as ``_cy_mf.pyx``:
gridded ratings, blocks sorted by user with p_u held in a local buffer, strata run in
the given order with their blocks in parallel (``prange``), or every block in
parallel for Hogwild."""

import numpy as np
from numba import prange

from .. import _threads
from ._numba_common import jit


@jit(error_model="numpy", fastmath={"reassoc", "contract", "arcp", "nsz"})
def _dot(a, B, j, k):
    """a . B[j] with eight partial sums (a fixed order; the Cython kernel keeps sixteen).
    B is indexed in place: a row view would cost reference counting (atomics) per
    rating."""
    a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = a[0] * 0
    k8 = k - k % 8
    for f in range(0, k8, 8):
        a0 += a[f] * B[j, f]
        a1 += a[f + 1] * B[j, f + 1]
        a2 += a[f + 2] * B[j, f + 2]
        a3 += a[f + 3] * B[j, f + 3]
        a4 += a[f + 4] * B[j, f + 4]
        a5 += a[f + 5] * B[j, f + 5]
        a6 += a[f + 6] * B[j, f + 6]
        a7 += a[f + 7] * B[j, f + 7]
    r = k - k8
    if r > 0:
        a0 += a[k8] * B[j, k8]
    if r > 1:
        a1 += a[k8 + 1] * B[j, k8 + 1]
    if r > 2:
        a2 += a[k8 + 2] * B[j, k8 + 2]
    if r > 3:
        a3 += a[k8 + 3] * B[j, k8 + 3]
    if r > 4:
        a4 += a[k8 + 4] * B[j, k8 + 4]
    if r > 5:
        a5 += a[k8 + 5] * B[j, k8 + 5]
    if r > 6:
        a6 += a[k8 + 6] * B[j, k8 + 6]
    return ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))


@jit(error_model="numpy", fastmath={"reassoc", "contract", "arcp", "nsz"})
def _block(users, items, ratings, start, end, P, Q, bu, bi, Gp, Gq, Gbu, Gbi, mu, prm,
           biased, adagrad, buf):
    k = P.shape[1]
    lr_bu, lr_bi, lr_pu, lr_qi = prm[0], prm[1], prm[2], prm[3]
    reg_bu, reg_bi, reg_pu, reg_qi = prm[4], prm[5], prm[6], prm[7]
    cur = -1
    bu_c = bu[0] * 0
    gp_c = bu_c
    gbu_c = bu_c
    sse = 0.0
    for n in range(start, end):
        u = users[n]
        if u != cur:
            if cur >= 0:
                for f in range(k):
                    P[cur, f] = buf[f]
                bu[cur] = bu_c
                Gp[cur] = gp_c
                Gbu[cur] = gbu_c
            cur = u
            for f in range(k):
                buf[f] = P[cur, f]
            bu_c = bu[cur]
            gp_c = Gp[cur]
            gbu_c = Gbu[cur]
        i = items[n]
        dot = _dot(buf, Q, i, k)
        if biased:
            est = mu + bu_c + bi[i] + dot
        else:
            est = dot
        err = ratings[n] - est
        sse += float(err) * float(err)
        if adagrad:
            if biased:
                gb = err - reg_bu * bu_c
                bu_c = bu_c + lr_bu / np.sqrt(gbu_c) * gb
                gbu_c = gbu_c + gb * gb
                gb = err - reg_bi * bi[i]
                bi[i] = bi[i] + lr_bi / np.sqrt(Gbi[i]) * gb
                Gbi[i] = Gbi[i] + gb * gb
            sp = lr_pu / np.sqrt(gp_c)
            sq = lr_qi / np.sqrt(Gq[i])
            sgp = bu_c * 0
            sgq = bu_c * 0
            for f in range(k):
                puf = buf[f]
                qif = Q[i, f]
                gp = err * qif - reg_pu * puf
                gq = err * puf - reg_qi * qif
                buf[f] = puf + sp * gp
                Q[i, f] = qif + sq * gq
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
                qif = Q[i, f]
                buf[f] = puf + lr_pu * (err * qif - reg_pu * puf)
                Q[i, f] = qif + lr_qi * (err * puf - reg_qi * qif)
    if cur >= 0:
        for f in range(k):
            P[cur, f] = buf[f]
        bu[cur] = bu_c
        Gp[cur] = gp_c
        Gbu[cur] = gbu_c
    return sse


@jit(parallel=True)
def _epoch(users, items, ratings, block_ptr, cols, P, Q, bu, bi, Gp, Gq, Gbu, Gbi, mu, prm,
           biased, adagrad, hogwild, block_sse):
    S, B = cols.shape
    k = P.shape[1]
    muf = mu[0]  # in the factors' dtype: no float64 promotion in the loop
    if hogwild:
        for blk in prange(B * B):
            buf = np.empty(k, P.dtype)
            block_sse[blk] = _block(users, items, ratings, block_ptr[blk], block_ptr[blk + 1],
                                    P, Q, bu, bi, Gp, Gq, Gbu, Gbi, muf, prm, biased,
                                    adagrad, buf)
    else:
        for s in range(S):
            for b in prange(B):
                blk = b * B + cols[s, b]
                buf = np.empty(k, P.dtype)
                block_sse[blk] = _block(users, items, ratings, block_ptr[blk],
                                        block_ptr[blk + 1], P, Q, bu, bi, Gp, Gq, Gbu, Gbi,
                                        muf, prm, biased, adagrad, buf)
    total = 0.0
    for j in range(B * B):
        total += block_sse[j]
    return total


def sgd_mf(users, items, ratings, block_ptr, cols, P, Q, bu, bi, Gp, Gq, Gbu, Gbi, mu, prm,
           biased, adagrad, hogwild, block_sse, n_threads):
    """One epoch (see ``_cy_mf.sgd_mf``)."""
    if P.shape[0] == 0 or Q.shape[0] == 0 or P.shape[1] == 0:
        return 0.0
    with _threads.numba_threads(n_threads):
        return _epoch(users, items, ratings, block_ptr, cols, P, Q, bu, bi, Gp, Gq, Gbu, Gbi,
                      np.array([mu], dtype=P.dtype), prm, bool(biased), bool(adagrad), bool(hogwild), block_sse)


@jit()
def _seed(rows, cols, vals, P, Q, lr2, max_iter):
    k = P.shape[1]
    for _ in range(max_iter):
        for n in range(rows.shape[0]):
            a = rows[n]
            b = cols[n]
            e = vals[n] - _dot(P[a], Q, b, k)
            for f in range(k):
                P[a, f] = P[a, f] + lr2 * e * Q[b, f]
                Q[b, f] = Q[b, f] + lr2 * e * P[a, f]


def matrix_factorization(rows, cols, vals, P, Q, learning_rate, max_iter, n_threads):
    """The seed's loop, sequential (see ``_cy_mf.matrix_factorization``)."""
    lr2 = P.dtype.type(2.0 * learning_rate)
    _seed(rows, cols, vals, P, Q, lr2, int(max_iter))
    return None
