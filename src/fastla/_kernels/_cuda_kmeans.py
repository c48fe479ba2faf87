"""K-means kernels, CUDA backend (numba.cuda): kmeans_assign, lloyd_iter, inertia.

Assignment: one thread per row; centres are staged in shared memory in tiles of CT
centres x FT features and each thread keeps CT dot products in registers, in the data's
dtype (the GEMM form ||c||^2 - 2 x.c, ties to the lower index, as on the CPU), then
recomputes the winner's squared distance exactly in float64 (the CPU kernels' four
partial sums). Lloyd: the sums and weights are accumulated with float64 atomics, so on
the GPU they are NOT bitwise reproducible from run to run (the order of the atomic
additions varies), unlike the CPU backends' n_groups layout, which is ignored here.
Inertia: per-row values, then per 256-row chunk sums in row order, then the chunk sums
in chunk order (deterministic).

Host arrays are copied in and the results copied back into the caller's outputs;
device arrays (``__cuda_array_interface__``) stay on the device, and the outputs must
then be device arrays too (written in place). Kernels do not validate.
"""

import functools

import numpy as np
from numba import cuda

from .. import _cuda
from . import _numba_common  # noqa: F401  (numba settings)
from . import _numba_kmeans
from ._cuda_distances import _to_device

CHUNK = 256  # rows per inertia chunk (part of the result's definition)
if _cuda.simulator_enabled():  # one Python thread per CUDA thread: keep blocks tiny
    TPB, CT, FT = 8, 4, 4
else:
    TPB, CT, FT = 128, 32, 32


# sum((X[i] - C[j])^2) in float64: the very Python function of the Numba CPU kernels,
# compiled as a device function, so both backends sum in the same order
_sqdist = cuda.jit(device=True)(_numba_kmeans._sqdist.py_func)


@cuda.jit
def _norms_kernel(C, cn):
    """cn[j] = ||c_j||^2 in C's dtype, summed in feature order."""
    j = cuda.grid(1)
    if j < C.shape[0]:
        s = C[j, 0] * C[j, 0]
        for f in range(1, C.shape[1]):
            s += C[j, f] * C[j, f]
        cn[j] = s


@functools.lru_cache(maxsize=None)
def _assign_kernel(dtype):
    """The assignment kernel for one float dtype (shared and local arrays need it)."""
    from numba import from_dtype

    dt = from_dtype(np.dtype(dtype))

    @cuda.jit
    def kernel(X, C, cn, labels, sq_dist, want_sq, changed, count):
        sc = cuda.shared.array((CT, FT), dtype=dt)
        nch = cuda.shared.array(1, dtype=np.int32)  # the block's changed labels
        acc = cuda.local.array(CT, dtype=dt)
        tid = cuda.threadIdx.x
        i = cuda.blockIdx.x * TPB + tid
        if tid == 0:
            nch[0] = 0
        cuda.syncthreads()
        n, d = X.shape
        k = C.shape[0]
        row = min(i, n - 1)  # threads past the end still help stage the tiles
        best = cn[0]
        lab = -1
        for c0 in range(0, k, CT):
            for cc in range(CT):
                acc[cc] = 0
            for f0 in range(0, d, FT):
                for e in range(tid, CT * FT, TPB):
                    cc = e // FT
                    ff = e - cc * FT
                    if c0 + cc < k and f0 + ff < d:
                        sc[cc, ff] = C[c0 + cc, f0 + ff]
                    else:
                        sc[cc, ff] = 0
                cuda.syncthreads()
                for ff in range(min(FT, d - f0)):
                    xv = X[row, f0 + ff]
                    for cc in range(CT):
                        acc[cc] += xv * sc[cc, ff]
                cuda.syncthreads()
            for cc in range(min(CT, k - c0)):
                v = cn[c0 + cc] - (acc[cc] + acc[cc])
                if lab < 0 or v < best:
                    best = v
                    lab = c0 + cc
        if i < n:
            if count and labels[i] != lab:
                cuda.atomic.add(nch, 0, 1)
            labels[i] = lab
            if want_sq:
                sq_dist[i] = _sqdist(X, i, C, lab)
        # one global atomic per block, not one per changed label (all on one address)
        cuda.syncthreads()
        if count and tid == 0 and nch[0] > 0:
            cuda.atomic.add(changed, 0, np.int64(nch[0]))

    return kernel


@cuda.jit
def _zero_kernel(sums, weights, counts):
    j, f = cuda.grid(2)
    if j < sums.shape[0] and f < sums.shape[1]:
        sums[j, f] = 0.0
        if f == 0:
            weights[j] = 0.0
            counts[j] = 0.0


@cuda.jit
def _accumulate_kernel(X, w, labels, sums, weights, counts):
    """sums[label_i] += w_i x_i, weights[label_i] += w_i, counts[label_i] += (w_i != 0)
    (float64 atomics)."""
    i, f = cuda.grid(2)
    if i < X.shape[0] and f < X.shape[1]:
        lab = np.int64(labels[i])
        wi = np.float64(w[i])
        cuda.atomic.add(sums, (lab, np.int64(f)), wi * np.float64(X[i, f]))
        if f == 0:
            cuda.atomic.add(weights, lab, wi)
            if wi != 0:
                cuda.atomic.add(counts, lab, 1.0)


@cuda.jit
def _row_inertia_kernel(X, w, C, labels, out):
    i = cuda.grid(1)
    if i < X.shape[0]:
        out[i] = np.float64(w[i]) * _sqdist(X, i, C, labels[i])


@cuda.jit
def _chunk_sum_kernel(vals, part):
    """part[c] = sum of vals over rows [256c, 256c + 256), in row order."""
    c = cuda.grid(1)
    if c < part.shape[0]:
        s = 0.0
        for i in range(c * CHUNK, min((c + 1) * CHUNK, vals.shape[0])):
            s = s + vals[i]
        part[c] = s


def _output(a):
    """(device array to write, host array to copy back into or None)."""
    if isinstance(a, np.ndarray):
        return cuda.device_array(a.shape, dtype=a.dtype), a
    return _to_device(a)[0], None


def _blocks(m, tpb):
    return max(1, (m + tpb - 1) // tpb)


def _assign(dX, dC, dlabels, dsq, want_sq, count=False):
    """Labels (and squared distances); with ``count``, returns how many labels changed
    (dlabels then holds the previous labels on entry)."""
    k = dC.shape[0]
    cn = cuda.device_array(k, dtype=dC.dtype)
    _norms_kernel[_blocks(k, TPB), TPB](dC, cn)
    kernel = _assign_kernel(np.dtype(dX.dtype).name)
    # (zeroed from the host only when counted; else an untouched slot, no transfer)
    changed = cuda.to_device(np.zeros(1, dtype=np.int64)) if count else \
        cuda.device_array(1, dtype=np.int64)
    kernel[_blocks(dX.shape[0], TPB), TPB](dX, dC, cn, dlabels, dsq, want_sq, changed,
                                           count)
    return int(changed.copy_to_host()[0]) if count else None


def kmeans_assign(X, centers, labels, sq_dist, n_threads):
    """labels[i] = nearest centre (GEMM form, ties to the lower index); sq_dist[i] = the
    exact squared distance to it (float64 accumulation, cast to X's dtype)."""
    dX = _to_device(X)[0]
    dC = _to_device(centers)[0]
    dlabels, hlabels = _output(labels)
    dsq, hsq = _output(sq_dist)
    _assign(dX, dC, dlabels, dsq, True)
    if hlabels is not None:
        dlabels.copy_to_host(hlabels)
    if hsq is not None:
        dsq.copy_to_host(hsq)


def lloyd_iter(X, sample_weight, centers, sums, weights, labels, n_groups, n_threads,
               counts=None, update=False):
    """Labels against ``centers``; sums[c] = sum w x, weights[c] = sum w and counts[c]
    = the number of rows with w != 0 (if given) over the rows labelled c (float64
    atomics: not bitwise reproducible; n_groups is ignored). ``update`` is accepted and
    the totals are made afresh, which is what an update must give. Returns how many
    labels changed."""
    dX = _to_device(X)[0]
    dw = _to_device(sample_weight)[0]
    dC = _to_device(centers)[0]
    if isinstance(labels, np.ndarray):  # (the old labels go in: the count needs them)
        dlabels, hlabels = cuda.to_device(labels), labels
    else:
        dlabels, hlabels = labels, None
    dsums, hsums = _output(sums)
    dweights, hweights = _output(weights)
    n, d = dX.shape
    k = dC.shape[0]
    dcounts, hcounts = (cuda.device_array(k), None) if counts is None else _output(counts)
    changed = _assign(dX, dC, dlabels, cuda.device_array(1, dtype=dX.dtype), False, True)
    tb = 4 if _cuda.simulator_enabled() else 16
    _zero_kernel[(_blocks(k, tb), _blocks(d, tb)), (tb, tb)](dsums, dweights, dcounts)
    _accumulate_kernel[(_blocks(n, tb), _blocks(d, tb)), (tb, tb)](dX, dw, dlabels, dsums,
                                                                    dweights, dcounts)
    for dev, host in ((dlabels, hlabels), (dsums, hsums), (dweights, hweights),
                      (dcounts, hcounts)):
        if host is not None:
            dev.copy_to_host(host)
    return changed


def inertia(X, sample_weight, centers, labels, n_threads):
    """sum_i w_i ||x_i - c_{labels_i}||^2 (float64; 256-row chunk partials in order)."""
    dX = _to_device(X)[0]
    dw = _to_device(sample_weight)[0]
    dC = _to_device(centers)[0]
    dlabels = _to_device(labels)[0]
    n = dX.shape[0]
    n_chunks = (n + CHUNK - 1) // CHUNK
    vals = cuda.device_array(n, dtype=np.float64)
    part = cuda.device_array(n_chunks, dtype=np.float64)
    _row_inertia_kernel[_blocks(n, TPB), TPB](dX, dw, dC, dlabels, vals)
    _chunk_sum_kernel[_blocks(n_chunks, TPB), TPB](vals, part)
    total = 0.0
    for v in part.copy_to_host():
        total += float(v)
    return total
