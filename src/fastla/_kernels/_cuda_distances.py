"""Distance engine, CUDA backend (numba.cuda).

Every metric is computed directly (differences, not the ``|x|^2 + |y|^2 - 2 x.y`` form),
so euclidean has no GEMM-trick cancellation on the GPU either.

* ``pair`` kernels (one per metric and dtype, generated and cached): a block of
  TY x TX threads computes a BM x BN tile of the output, each thread an RM x RN register
  block (rows ``ty + TY*r``, columns ``tx + TX*c``). X and Y tiles of BK features are
  staged transposed in shared memory (padded rows: no bank conflicts on the transposed
  stores, broadcasts on the reads). float32 sums are kept per BK-feature chunk and then
  added to the total (two-level summation: rounding error grows with BK + d/BK, not d).
  The feature loop is unrolled in the generated source, so every shared-memory read has
  a constant offset. Cosine accumulates only the dot products; the reciprocal row norms
  come from ``_inverse_norms`` (0 for an all-zero row, whose distance is then 1). The
  epilogue (square root, exp, cosine normalisation, the exact zero diagonal) runs on the
  registers and each entry is written once, into a fresh device array or a given
  device ``out``.
* ``knn`` kernels: the same tile computation; each tile's keys (squared distances for
  euclidean) go to shared memory, where NT / BM threads per query row scan their share of
  the columns against their current k-th best (held in a register) and insert the rare
  winner into a sorted list in local memory. The columns of Y are split into segments
  (grid x) so that small query sets still fill the GPU; each (row, segment, lane) list is
  written to a scratch array, and ``_merge`` keeps the best k per row, breaking ties by
  the lower index. Memory: the (m, k) result plus a scratch of at most SCRATCH_BYTES.

Host arrays are copied in and results copied out; device arrays
(``__cuda_array_interface__``) stay on the device and device arrays are returned.
"""

import functools
import linecache
import math

import numpy as np
from numba import cuda

from .. import _cuda
from . import _numba_common  # noqa: F401  (numba settings)
from . import _numba_distances

SQEUCLIDEAN, EUCLIDEAN, COSINE, MANHATTAN, CHEBYSHEV, MINKOWSKI, RBF = range(7)
MAX_K = 128
MAX_CANDIDATES = 2 ** 31 - 2  # int32 indices in the per-segment lists; 2^31 - 1 marks none
SCRATCH_BYTES = 1 << 28  # per-segment candidate lists of one query chunk
TARGET_BLOCKS = 1056      # enough blocks for several waves on a 132-SM GPU
SDPAD = 4  # kNN key tile row stride BN + 4: the scan's lanes fall on distinct banks
INT32_MAX = np.int32(2 ** 31 - 1)


def configure(tx, ty, rm, rn, bk32, bk64):
    """Set the block shape (TX x TY threads, RM x RN outputs each, BK features staged).

    For tuning runs (``benchmarks/gpu_compare.py --only tune``); kernels made before are
    dropped.
    """
    global TX, TY, RM, RN, BKS, NT, BM, BN, LPR
    TX, TY, RM, RN = tx, ty, rm, rn
    BKS = {np.dtype(np.float32): bk32, np.dtype(np.float64): bk64}
    NT = TX * TY
    BM, BN = TY * RM, TX * RN
    LPR = NT // BM  # threads scanning one query row of a kNN tile
    if LPR * BM != NT:
        raise ValueError("the threads of a block must split evenly over its BM rows")
    if "_kernel" in globals():
        _kernel.cache_clear()


if _cuda.simulator_enabled():  # one Python thread per CUDA thread: keep blocks small
    configure(4, 4, 2, 2, 4, 4)
else:
    # float64 kNN: sd (64 x 68 x 8 B) + the two staged tiles must fit in 48 KiB
    configure(16, 16, 4, 4, 16, 8)


def _update(metric, x, y, q):
    if metric in (SQEUCLIDEAN, EUCLIDEAN, RBF):
        return f"t = {x} - {y}\n{q} += t * t"
    if metric == COSINE:
        return f"{q} += {x} * {y}"
    if metric == MANHATTAN:
        return f"{q} += abs({x} - {y})"
    if metric == CHEBYSHEV:
        return f"{q} = max({q}, abs({x} - {y}))"
    return f"{q} += abs({x} - {y}) ** p"  # MINKOWSKI


def _key(metric, s, gi, j):
    """Lines that set ``v`` from the accumulated ``s`` (before the final transform)."""
    if metric == COSINE:  # nx, ny: reciprocal norms, 0 for a zero row (distance 1)
        return f"v = min(max(ONE - {s} * (nx[{gi}] * ny[{j}]), ZERO), TWO)"
    return f"v = {s}"


def _final(metric, v):
    """The public value from a key ``v`` (euclidean: the square root)."""
    return {EUCLIDEAN: f"math.sqrt({v})", MINKOWSKI: f"{v} ** (1.0 / p)",
            RBF: f"math.exp(g * {v})"}.get(metric, v)


def _indent(text, n):
    pad = " " * n
    return "\n".join(pad + line for line in text.splitlines())


# Measured on an H100 (docs/performance.md, "CUDA backend on an H100"): unrolling the
# feature loop made the pair kernels faster, and the euclidean and manhattan kNN kernels
# 28% slower (48.7 -> 62.7 ms), but the cosine kNN kernel 15% faster (45.4 -> 38.7 ms).
_UNROLLED_KNN = (COSINE,)


def _tile_source(metric, two_level, bk, unroll):
    """The shared tile loop: leaves the RM x RN sums in a{r}_{c}.

    Uses names: X, Y, tx, ty, tid, i0 (first row of the tile within the chunk), xr0
    (X row of chunk row 0), m (chunk rows), j0 (first column), jend (columns < jend are
    real), d.
    """
    lines = []
    regs = [(r, c) for r in range(RM) for c in range(RN)]
    for r, c in regs:
        lines.append(f"a{r}_{c} = ZERO")
        if two_level:
            lines.append(f"q{r}_{c} = ZERO")
    lines.append("for k0 in range(0, d, BK):")
    body = []
    # stage the X rows (tile rows i0.., valid below m) and the Y rows (tile columns
    # j0.., valid below jend), BK features each, transposed, zeros past the edges
    for sh, arr, rows, first, valid in (("sx", "X", "BM", "xr0 + i0", "i0 + rr < m"),
                                        ("sy", "Y", "BN", "j0", "j0 + rr < jend")):
        body += [f"for e in range(tid, {rows} * BK, NT):",
                 "    rr = e // BK",
                 "    kk = e - rr * BK",
                 "    lv = ZERO",
                 f"    if {valid} and k0 + kk < d:",
                 f"        lv = {arr}[{first} + rr, k0 + kk]",
                 f"    {sh}[kk, rr] = lv"]
    body.append("cuda.syncthreads()")
    # the feature loop unrolled in the source (constant shared-memory offsets) or kept
    # as a loop: see _UNROLLED_KNN
    steps = [str(kk) for kk in range(bk)] if unroll else ["kk"]
    if not unroll:
        body.append("for kk in range(BK):")
    pad = "" if unroll else "    "
    for kk in steps:
        step = [f"x{r} = sx[{kk}, ty + {TY * r}]" for r in range(RM)]
        step += [f"y{c} = sy[{kk}, tx + {TX * c}]" for c in range(RN)]
        for r, c in regs:
            step += _update(metric, f"x{r}", f"y{c}", f"q{r}_{c}" if two_level
                            else f"a{r}_{c}").splitlines()
        body += [pad + line for line in step]
    if two_level:
        for r, c in regs:
            body.append(f"a{r}_{c} += q{r}_{c}")
            body.append(f"q{r}_{c} = ZERO")
    body.append("cuda.syncthreads()")
    lines.append(_indent("\n".join(body), 4))
    return "\n".join(lines)


# the first lines of both kernels: staged tiles, thread and tile coordinates
_PREAMBLE = """\
    sx = cuda.shared.array(SX_SHAPE, T)
    sy = cuda.shared.array(SY_SHAPE, T)
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    tid = ty * TX + tx
    i0 = cuda.blockIdx.y * BM
    xr0 = row0
"""


def _pair_source(metric, two_level, bk):
    head = "def kernel(X, Y, out, p, g, same, row0, nx, ny):\n" + _PREAMBLE + """\
    j0 = cuda.blockIdx.x * BN
    m = out.shape[0]
    jend = Y.shape[0]
    d = X.shape[1]
"""
    src = head + _indent(_tile_source(metric, two_level, bk, True), 4) + "\n"
    for r in range(RM):
        for c in range(RN):
            epi = [f"i = i0 + ty + {TY * r}", f"j = j0 + tx + {TX * c}",
                   "if i < m and j < jend:",
                   _indent(_key(metric, f"a{r}_{c}", "row0 + i", "j"), 4),
                   f"    v = {_final(metric, 'v')}",
                   "    if same and row0 + i == j:",
                   f"        v = {'1.0' if metric == RBF else '0.0'}",
                   "    out[i, j] = v"]
            src += _indent("\n".join(epi), 4) + "\n"
    return src


def _knn_source(metric, two_level, bk):
    head = "def kernel(X, Y, p, same, row0, nx, ny, cper, k, scr_d, scr_i):\n" + \
        _PREAMBLE + """\
    sd = cuda.shared.array(SD_SHAPE, T)
    bd = cuda.local.array(MAX_K, T)
    bi = cuda.local.array(MAX_K, I32)
    seg = cuda.blockIdx.x
    m = scr_d.shape[0]
    d = X.shape[1]
    cbeg = seg * cper
    jend = min(Y.shape[0], cbeg + cper)
    qr = tid // LPR
    lane = tid - qr * LPR
    gq = row0 + i0 + qr
    live = i0 + qr < m
    for t in range(k):
        bd[t] = INF
        bi[t] = INT32_MAX
    thr = INF
    for j0 in range(cbeg, jend, BN):
"""
    tile = _tile_source(metric, two_level, bk, metric in _UNROLLED_KNN)
    keys = []
    for r in range(RM):
        for c in range(RN):
            keys += [_key(metric, f"a{r}_{c}", f"row0 + min(i0 + ty + {TY * r}, m - 1)",
                          f"min(j0 + tx + {TX * c}, jend - 1)"),
                     f"sd[ty + {TY * r}, tx + {TX * c}] = v"]
    scan = """\
cuda.syncthreads()
if live:
    for cc in range(lane, BN, LPR):
        j = j0 + cc
        w = sd[qr, cc]
        if j < jend and (w < thr or (w == thr and j < bi[k - 1])):
            if not (same and j == gq):
                _insert(bd, bi, k, w, j)
                thr = bd[k - 1]
cuda.syncthreads()"""
    tail = """\
    if live:
        slot = seg * LPR + lane
        for t in range(k):
            scr_d[i0 + qr, slot, t] = bd[t]
            scr_i[i0 + qr, slot, t] = bi[t]
"""
    return head + _indent(tile + "\n" + "\n".join(keys) + "\n" + scan, 8) + "\n" + tail


def _inlined(fn):
    """A device function inlined into its callers (NVVM level) where numba-cuda offers
    it; the simulator's ``cuda.jit`` does not take the option."""
    try:
        return cuda.jit(device=True, forceinline=True)(fn)
    except TypeError:
        return cuda.jit(device=True)(fn)


@_inlined
def _insert(bd, bi, k, v, j):
    """Insert (v, j) into the sorted lists ``bd[:k]``, ``bi[:k]`` (by value, then lower
    index), dropping the last entry; the caller has checked that (v, j) beats it."""
    pos = k - 1
    while pos > 0 and (v < bd[pos - 1] or (v == bd[pos - 1] and j < bi[pos - 1])):
        bd[pos] = bd[pos - 1]
        bi[pos] = bi[pos - 1]
        pos -= 1
    bd[pos] = v
    bi[pos] = j


@functools.lru_cache(maxsize=None)
def _kernel(kind, metric, dtype):
    dtype = np.dtype(dtype)
    two_level = dtype == np.float32 and metric != CHEBYSHEV
    src = (_pair_source if kind == "pair" else _knn_source)(metric, two_level, BKS[dtype])
    ns = {"cuda": cuda, "math": math, "_insert": _insert, "T": dtype.type, "I32": np.int32,
          "ZERO": dtype.type(0), "ONE": dtype.type(1), "TWO": dtype.type(2),
          "INF": dtype.type(np.inf), "INT32_MAX": INT32_MAX,
          "BK": BKS[dtype], "BM": BM, "BN": BN, "NT": NT, "TX": TX, "TY": TY,
          "LPR": LPR, "MAX_K": MAX_K,
          # shapes as global tuples: numba needs them as compile-time constants
          "SX_SHAPE": (BKS[dtype], BM + 1), "SY_SHAPE": (BKS[dtype], BN + 1),
          "SD_SHAPE": (BM, BN + SDPAD)}
    name = f"<fastla cuda {kind} metric={metric} {dtype.name}>"
    linecache.cache[name] = (len(src), None, src.splitlines(True), name)
    exec(compile(src, name, "exec"), ns)
    return cuda.jit(ns["kernel"])


@cuda.jit
def _inverse_norms(X, out):
    """1 / ||x|| of each row (summed in float64), 0 for an all-zero row."""
    i = cuda.grid(1)
    if i < X.shape[0]:
        s = 0.0
        for k in range(X.shape[1]):
            v = np.float64(X[i, k])
            s += v * v
        out[i] = 1.0 / math.sqrt(s) if s > 0.0 else 0.0


# the CPU backend's list completion, compiled for the device: one source
_fill_nan = _inlined(_numba_distances._fill_nan.py_func)


@cuda.jit
def _merge(scr_d, scr_i, k, row0, same, metric, p, out_d, out_i):
    """Best k of each row's (segment, lane) lists, ties to the lower index; places no
    candidate filled (their values NaN) as the CPU backends fill them."""
    r = cuda.grid(1)
    if r >= scr_d.shape[0]:
        return
    bd = cuda.local.array(MAX_K, dtype=np.float64)
    bi = cuda.local.array(MAX_K, dtype=np.int64)
    for t in range(k):
        bd[t] = math.inf
        bi[t] = 9223372036854775807
    for s in range(scr_d.shape[1]):
        for t in range(k):
            v = np.float64(scr_d[r, s, t])
            j = np.int64(scr_i[r, s, t])
            if not (v < bd[k - 1] or (v == bd[k - 1] and j < bi[k - 1])):
                break  # each list is sorted: the rest of it is no better
            _insert(bd, bi, k, v, j)
    # places no candidate took (only when values are NaN: device input is not checked
    # for finiteness): NaN and the lowest free indices, as NumPy's sort orders NaN
    _fill_nan(bd, bi, k, row0 + r if same else -1, INT32_MAX)
    for t in range(k):
        v = bd[t]
        if metric == EUCLIDEAN:
            v = math.sqrt(v)
        elif metric == MINKOWSKI:
            v = v ** (1.0 / p)
        out_d[row0 + r, t] = v
        out_i[row0 + r, t] = bi[t]


def _to_device(a):
    if hasattr(a, "copy_to_host"):  # numba device array (or the simulator's)
        return a, True
    if hasattr(a, "__cuda_array_interface__") and not isinstance(a, np.ndarray):
        return cuda.as_cuda_array(a), True
    return cuda.to_device(np.ascontiguousarray(a)), False


def _norms(metric, dX, dY, same):
    """Reciprocal row norms (in the input dtype) for cosine. The other metrics' kernels
    never read their nx, ny arguments (_key), so they get X and Y themselves: no
    allocation and no cache of placeholders."""
    dtype = np.dtype(dX.dtype)
    if metric != COSINE:
        return dX, dY
    out = []
    for a in (dX,) if same else (dX, dY):
        nrm = cuda.device_array(max(a.shape[0], 1), dtype=dtype)
        if a.shape[0]:
            _inverse_norms[(a.shape[0] + 127) // 128, 128](a, nrm)
        out.append(nrm)
    return out[0], out[-1]


def pairwise_distances(X, Y, out, metric, p, gamma, same, recompute, n_threads):
    """``out`` may be a host array (filled and returned), a device array (filled and
    returned) or None for device input (a new device array is returned)."""
    dX = _to_device(X)[0]
    dY = dX if same else _to_device(Y)[0]
    m, n = dX.shape[0], dY.shape[0]
    dtype = np.dtype(dX.dtype)
    if out is not None and not isinstance(out, np.ndarray):  # a device out=
        dout, out = _to_device(out)[0], None
    else:
        dout = cuda.device_array((m, n), dtype=dtype)
    if m and n:
        nx, ny = _norms(metric, dX, dY, same)
        grid = ((n + BN - 1) // BN, (m + BM - 1) // BM)
        _kernel("pair", metric, dtype)[grid, (TX, TY)](dX, dY, dout, p, dtype.type(-gamma),
                                                       same, 0, nx, ny)
    if out is None:
        return dout
    dout.copy_to_host(out)
    return out


def _plan(m, n, k, itemsize):
    """(segments, columns per segment, query rows per launch) for a kNN search."""
    tiles = (n + BN - 1) // BN
    row_blocks = (m + BM - 1) // BM
    nseg = max(1, min(tiles, -(-TARGET_BLOCKS // row_blocks)))
    cper = -(-tiles // nseg) * BN
    nseg = -(-n // cper)
    per_row = nseg * LPR * k * (itemsize + 4)
    rows = max(BM, (SCRATCH_BYTES // per_row) // BM * BM)
    return nseg, cper, min(rows, m)


def nearest_neighbors(X, Y, k, metric, p, same, n_threads):
    """k <= MAX_K and at most MAX_CANDIDATES rows of Y (checked by the public layer)."""
    dX, on_device = _to_device(X)
    dY = dX if same else _to_device(Y)[0]
    m, n = dX.shape[0], dY.shape[0]
    dtype = np.dtype(dX.dtype)
    dist = cuda.device_array((m, k), dtype=dtype)
    idx = cuda.device_array((m, k), dtype=np.int64)
    if m:
        nseg, cper, rows = _plan(m, n, k, dtype.itemsize)
        nx, ny = _norms(metric, dX, dY, same)
        scr_d = cuda.device_array((rows, nseg * LPR, k), dtype=dtype)
        scr_i = cuda.device_array((rows, nseg * LPR, k), dtype=np.int32)
        kern = _kernel("knn", metric, dtype)
        tpb = 8 if _cuda.simulator_enabled() else 128  # the merge's threads per block
        for r0 in range(0, m, rows):
            mr = min(rows, m - r0)
            sd, si = scr_d[:mr], scr_i[:mr]
            kern[(nseg, (mr + BM - 1) // BM), (TX, TY)](dX, dY, p, same, r0, nx, ny, cper,
                                                        k, sd, si)
            _merge[(mr + tpb - 1) // tpb, tpb](sd, si, k, r0, same, metric, p, dist, idx)
    if on_device:
        return dist, idx
    return dist.copy_to_host(), idx.copy_to_host().astype(np.intp, copy=False)
