"""Distance engine, CUDA backend (numba.cuda).

``_pair_kernel``: one thread per output entry; X and Y tiles of TB rows x TB features
are staged in shared memory and every metric is accumulated directly (so euclidean is
exact, with no GEMM-trick cancellation). ``_topk_kernel``: one thread per query keeps
its k best (distance, index) pairs sorted in local memory while it scans a distance
row chunk. Host arrays are copied in and results copied out; device arrays
(``__cuda_array_interface__``) stay on the device and device arrays are returned.
"""

import math

import numpy as np
from numba import cuda

from .. import _cuda
from . import _numba_common  # noqa: F401  (numba settings)

SQEUCLIDEAN, EUCLIDEAN, COSINE, MANHATTAN, CHEBYSHEV, MINKOWSKI, RBF = range(7)
# block edge: small under the simulator (one Python thread per CUDA thread)
TB = 4 if _cuda.simulator_enabled() else 16
MAX_K = 64
CHUNK_BYTES = 1 << 28  # distance rows staged per nearest-neighbour chunk


@cuda.jit
def _pair_kernel(X, Y, out, metric, p, gamma, same, row0):
    sx = cuda.shared.array((TB, TB), dtype=np.float64)
    sy = cuda.shared.array((TB, TB), dtype=np.float64)
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    i = cuda.blockIdx.y * TB + ty  # row within this chunk
    j = cuda.blockIdx.x * TB + tx
    m = out.shape[0]
    n = Y.shape[0]
    d = X.shape[1]
    acc = 0.0
    nx = 0.0
    ny = 0.0
    for k0 in range(0, d, TB):
        # stage X rows (this block's rows) and Y rows (this block's columns)
        gi = row0 + cuda.blockIdx.y * TB + ty
        if gi < row0 + m and k0 + tx < d:
            sx[ty, tx] = X[gi, k0 + tx]
        else:
            sx[ty, tx] = 0.0
        gj = cuda.blockIdx.x * TB + ty
        if gj < n and k0 + tx < d:
            sy[ty, tx] = Y[gj, k0 + tx]
        else:
            sy[ty, tx] = 0.0
        cuda.syncthreads()
        kmax = min(TB, d - k0)
        for kk in range(kmax):
            a = sx[ty, kk]
            b = sy[tx, kk]
            if metric == COSINE:
                acc += a * b
                nx += a * a
                ny += b * b
            elif metric == MANHATTAN:
                acc += abs(a - b)
            elif metric == CHEBYSHEV:
                t = abs(a - b)
                if t > acc:
                    acc = t
            elif metric == MINKOWSKI:
                acc += abs(a - b) ** p
            else:
                t = a - b
                acc += t * t
        cuda.syncthreads()
    if i < m and j < n:
        if metric == COSINE:
            if nx == 0.0 or ny == 0.0:
                v = 1.0
            else:
                v = 1.0 - acc / math.sqrt(nx * ny)
                v = min(max(v, 0.0), 2.0)
        elif metric == EUCLIDEAN:
            v = math.sqrt(acc)
        elif metric == RBF:
            v = math.exp(-gamma * acc)
        elif metric == MINKOWSKI:
            v = acc ** (1.0 / p)
        else:
            v = acc
        if same and row0 + i == j:
            v = 1.0 if metric == RBF else 0.0
        out[i, j] = v


@cuda.jit
def _topk_kernel(D, row0, same, k, out_d, out_i):
    r = cuda.grid(1)
    if r >= D.shape[0]:
        return
    bd = cuda.local.array(MAX_K, dtype=np.float64)
    bi = cuda.local.array(MAX_K, dtype=np.int64)
    for q in range(k):
        bd[q] = math.inf
        bi[q] = 9223372036854775807
    n = D.shape[1]
    for j in range(n):
        if same and row0 + r == j:
            continue
        dv = np.float64(D[r, j])
        if dv < bd[k - 1] or (dv == bd[k - 1] and j < bi[k - 1]):
            pos = k - 1
            while pos > 0 and (dv < bd[pos - 1] or (dv == bd[pos - 1] and j < bi[pos - 1])):
                bd[pos] = bd[pos - 1]
                bi[pos] = bi[pos - 1]
                pos -= 1
            bd[pos] = dv
            bi[pos] = j
    for q in range(k):
        out_d[row0 + r, q] = bd[q]
        out_i[row0 + r, q] = bi[q]


def _to_device(a):
    if hasattr(a, "copy_to_host"):  # numba device array (or the simulator's)
        return a, True
    if hasattr(a, "__cuda_array_interface__") and not isinstance(a, np.ndarray):
        return cuda.as_cuda_array(a), True
    return cuda.to_device(np.ascontiguousarray(a)), False


def _grid(m, n):
    return ((n + TB - 1) // TB, (m + TB - 1) // TB), (TB, TB)


def pairwise_distances(X, Y, out, metric, p, gamma, same, recompute, n_threads):
    dX, on_device = _to_device(X)
    dY = dX if same else _to_device(Y)[0]
    m, n = dX.shape[0], dY.shape[0]
    dout = cuda.device_array((m, n), dtype=dX.dtype)
    if m and n:
        blocks, threads = _grid(m, n)
        _pair_kernel[blocks, threads](dX, dY, dout, metric, p, gamma, same, 0)
    if on_device:
        return dout
    dout.copy_to_host(out)
    return out


def nearest_neighbors(X, Y, k, metric, p, same, n_threads):
    if k > MAX_K:
        raise ValueError(f"the cuda backend keeps at most k={MAX_K} neighbours; got k={k}")
    dX, on_device = _to_device(X)
    dY = dX if same else _to_device(Y)[0]
    m, n = dX.shape[0], dY.shape[0]
    dist = cuda.device_array((m, k), dtype=dX.dtype)
    idx = cuda.device_array((m, k), dtype=np.int64)
    rows = max(1, min(m, CHUNK_BYTES // max(1, n * dX.dtype.itemsize)))
    buf = cuda.device_array((rows, n), dtype=dX.dtype)
    for r0 in range(0, m, rows):
        mr = min(rows, m - r0)
        chunk = buf[:mr]
        blocks, threads = _grid(mr, n)
        _pair_kernel[blocks, threads](dX, dY, chunk, metric, p, 0.0, False, r0)
        tpb = 128 if not _cuda.simulator_enabled() else 8
        _topk_kernel[(mr + tpb - 1) // tpb, tpb](chunk, r0, same, k, dist, idx)
    if on_device:
        return dist, idx
    return dist.copy_to_host(), idx.copy_to_host().astype(np.intp, copy=False)
