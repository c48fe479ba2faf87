"""SGD matrix factorisation kernels (``numba.cuda``).

One CUDA block of 32 threads (a warp) performs one rating update at a time: thread t
owns the factors ``t, t + 32, ...``; the dot product (and AdaGrad's gradient norms) is a
fixed shared-memory tree, so every thread holds the same value and the result does not
depend on scheduling. Each CUDA block walks one grid block of ratings in stored order.

* deterministic: one launch per stratum, the stratum's blocks (disjoint in users and
  items) in parallel: bitwise reproducible;
* hogwild: one launch over every block of the grid (batch-Hogwild!: each warp walks a
  contiguous run of ratings; concurrent warps race on shared rows), not reproducible.

Arrays may be host (NumPy) or device arrays. Host factor arrays are copied to the device
and back on every call (one epoch); the ratings of the last call stay on the device so
that an epoch loop does not copy them again.
"""

import math

import numpy as np
from numba import cuda

WARP = 32

_kernels = {}
_ratings_cache = {"key": None, "dev": None}


def _make(dtype):
    nb_dtype = {np.dtype(np.float32): "float32", np.dtype(np.float64): "float64"}[dtype]
    from numba import types

    shdt = getattr(types, nb_dtype)

    @cuda.jit
    def blocks_kernel(block_ids, users, items, ratings, ptr, P, Q, bu, bi, Gp, Gq, Gbu,
                      Gbi, mu, prm, biased, adagrad, block_sse):
        sh = cuda.shared.array(WARP, shdt)
        sh2 = cuda.shared.array(WARP, shdt)
        t = cuda.threadIdx.x
        k = P.shape[1]
        lr_bu, lr_bi, lr_pu, lr_qi = prm[0], prm[1], prm[2], prm[3]
        reg_bu, reg_bi, reg_pu, reg_qi = prm[4], prm[5], prm[6], prm[7]
        g = cuda.blockIdx.x
        while g < block_ids.shape[0]:
            blk = block_ids[g]
            sse = 0.0
            for n in range(ptr[blk], ptr[blk + 1]):
                u = users[n]
                i = items[n]
                part = P[u, 0] * 0
                f = t
                while f < k:
                    part += P[u, f] * Q[i, f]
                    f += WARP
                sh[t] = part
                cuda.syncthreads()
                s = WARP // 2
                while s > 0:
                    if t < s:
                        sh[t] += sh[t + s]
                    cuda.syncthreads()
                    s //= 2
                dot = sh[0]
                bu_o = bu[u]
                bi_o = bi[i]
                gp_o = Gp[u]
                gq_o = Gq[i]
                gbu_o = Gbu[u]
                gbi_o = Gbi[i]
                if biased:
                    est = mu + bu_o + bi_o + dot
                else:
                    est = dot
                err = ratings[n] - est
                cuda.syncthreads()  # every thread has read sh[0] and the row scalars
                if adagrad:
                    sp = lr_pu / math.sqrt(gp_o)
                    sq = lr_qi / math.sqrt(gq_o)
                    a = err * 0
                    b = err * 0
                    f = t
                    while f < k:
                        puf = P[u, f]
                        qif = Q[i, f]
                        gpf = err * qif - reg_pu * puf
                        gqf = err * puf - reg_qi * qif
                        P[u, f] = puf + sp * gpf
                        Q[i, f] = qif + sq * gqf
                        a += gpf * gpf
                        b += gqf * gqf
                        f += WARP
                    sh[t] = a
                    sh2[t] = b
                    cuda.syncthreads()
                    s = WARP // 2
                    while s > 0:
                        if t < s:
                            sh[t] += sh[t + s]
                            sh2[t] += sh2[t + s]
                        cuda.syncthreads()
                        s //= 2
                    if t == 0:
                        if biased:
                            gb = err - reg_bu * bu_o
                            bu[u] = bu_o + lr_bu / math.sqrt(gbu_o) * gb
                            Gbu[u] = gbu_o + gb * gb
                            gb = err - reg_bi * bi_o
                            bi[i] = bi_o + lr_bi / math.sqrt(gbi_o) * gb
                            Gbi[i] = gbi_o + gb * gb
                        Gp[u] = gp_o + sh[0] / k
                        Gq[i] = gq_o + sh2[0] / k
                else:
                    f = t
                    while f < k:
                        puf = P[u, f]
                        qif = Q[i, f]
                        P[u, f] = puf + lr_pu * (err * qif - reg_pu * puf)
                        Q[i, f] = qif + lr_qi * (err * puf - reg_qi * qif)
                        f += WARP
                    if t == 0 and biased:
                        bu[u] = bu_o + lr_bu * (err - reg_bu * bu_o)
                        bi[i] = bi_o + lr_bi * (err - reg_bi * bi_o)
                if t == 0:
                    sse += err * err
                cuda.syncthreads()  # the writes are seen by the next update
            if t == 0:
                block_sse[blk] = sse
            g += cuda.gridDim.x

    return blocks_kernel


def _kernel(dtype):
    dtype = np.dtype(dtype)
    if dtype not in _kernels:
        _kernels[dtype] = _make(dtype)
    return _kernels[dtype]


def _is_dev(a):
    # the simulator's FakeCUDAArray has copy_to_host but no __cuda_array_interface__
    return not isinstance(a, np.ndarray) and (hasattr(a, "__cuda_array_interface__")
                                              or hasattr(a, "copy_to_host"))


def _dev(a):
    if _is_dev(a):
        return a if hasattr(a, "copy_to_host") else cuda.as_cuda_array(a)
    return cuda.to_device(np.ascontiguousarray(a))


def _ratings_on_device(users, items, ratings, block_ptr):
    if all(_is_dev(a) for a in (users, items, ratings, block_ptr)):
        return tuple(_dev(a) for a in (users, items, ratings, block_ptr))
    key = _ratings_cache["key"]
    if key is not None and all(x is y for x, y in zip(key, (users, items, ratings,
                                                           block_ptr))):
        return _ratings_cache["dev"]
    dev = tuple(_dev(a) for a in (users, items, ratings, block_ptr))
    _ratings_cache["key"] = (users, items, ratings, block_ptr)  # keeps them alive
    _ratings_cache["dev"] = dev
    return dev


def sgd_mf(users, items, ratings, block_ptr, cols, P, Q, bu, bi, Gp, Gq, Gbu, Gbi, mu, prm,
           biased, adagrad, hogwild, block_sse, n_threads):
    """One epoch (see ``_cy_mf.sgd_mf``); updates host or device factor arrays in place."""
    cols = np.asarray(cols.copy_to_host() if _is_dev(cols) else cols)
    S, B = cols.shape
    if P.shape[0] == 0 or Q.shape[0] == 0 or P.shape[1] == 0:
        return 0.0
    dt = np.dtype(P.dtype)
    d_u, d_i, d_r, d_ptr = _ratings_on_device(users, items, ratings, block_ptr)
    host = [a for a in (P, Q, bu, bi, Gp, Gq, Gbu, Gbi, block_sse)]
    dev = [_dev(a) for a in host]
    d_prm = _dev(np.asarray(prm, dtype=dt))
    kern = _kernel(dt)
    mu_ = dt.type(mu)
    if hogwild:
        lists = [np.arange(B * B, dtype=np.int64)]
    else:
        lists = [(np.arange(B) * B + cols[s]).astype(np.int64) for s in range(S)]
    for ids in lists:
        grid = max(1, min(len(ids), 65535))
        kern[grid, WARP](cuda.to_device(ids), d_u, d_i, d_r, d_ptr, *dev[:8], mu_, d_prm,
                         int(biased), int(adagrad), dev[8])
    for h, d in zip(host, dev):
        if not _is_dev(h):
            d.copy_to_host(h)
    sse = dev[8].copy_to_host() if _is_dev(block_sse) else block_sse
    total = 0.0
    for x in np.asarray(sse):
        total += float(x)
    return total
