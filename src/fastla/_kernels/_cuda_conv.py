"""numba.cuda kernel for 2-D correlation (fastla.conv).

Same contract as the Cython kernel: ``out[b, k, i, j] = sum_{a, c} w[k, a, c] *
X[b, rowidx[i + a], colidx[j + c]]`` with -1 in a table meaning ``cval``.

* One launch per call; grid ``(ceil(Wo / TX), ceil(Ho / (TY * RPT)), B * K)``: the batch
  and the kernel bank are in the grid.
* Each block loads its input tile plus the ``kh - 1`` / ``kw - 1`` halo into shared
  memory once, applying the boundary while loading (through the index tables), so the
  compute loop has no branches and nothing is padded.
* Each thread computes RPT outputs down a column (register blocking).
* Kernels are generated per (kh, kw, dtype) so that the tile size is a compile-time
  constant and the tap loops unroll; they are cached.

Host arrays are copied to the device and the result back into ``out``; device arrays
(``__cuda_array_interface__``) stay on the device.
"""

import numpy as np
from numba import cuda

from .._backend import is_device_array as _on_device

TX, TY, RPT = 32, 8, 4
SHARED_LIMIT = 48 * 1024
_kernels = {}


def _make(kh, kw, dtype):
    sh, sw = TY * RPT + kh - 1, TX + kw - 1
    nbt = {np.dtype(np.float32): "float32", np.dtype(np.float64): "float64"}[dtype]
    import numba

    ntype = getattr(numba, nbt)
    zero = dtype.type(0)

    @cuda.jit
    def corr(img, w, rowidx, colidx, cval, out):
        tile = cuda.shared.array((sh, sw), dtype=ntype)
        K = w.shape[0]
        z = cuda.blockIdx.z
        b = z // K
        kk = z - b * K
        Ho = out.shape[2]
        Wo = out.shape[3]
        j0 = cuda.blockIdx.x * TX
        i0 = cuda.blockIdx.y * (TY * RPT)
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        nr = rowidx.shape[0]
        nc = colidx.shape[0]
        for r in range(ty, sh, TY):
            gi = i0 + r
            rr = rowidx[gi] if gi < nr else -1
            for c in range(tx, sw, TX):
                gj = j0 + c
                cc = colidx[gj] if gj < nc else -1
                if rr >= 0 and cc >= 0:
                    tile[r, c] = img[b, rr, cc]
                else:
                    tile[r, c] = cval
        cuda.syncthreads()
        j = j0 + tx
        for q in range(RPT):
            li = ty + q * TY
            i = i0 + li
            if i < Ho and j < Wo:
                s = zero
                for a in range(kh):
                    for c in range(kw):
                        s += w[kk, a, c] * tile[li + a, tx + c]
                out[b, kk, i, j] = s

    return corr


def _kernel(kh, kw, dtype):
    key = (kh, kw, np.dtype(dtype))
    if key not in _kernels:
        _kernels[key] = _make(kh, kw, np.dtype(dtype))
    return _kernels[key]


def tile_fits(kh, kw, dtype):
    """Whether the shared-memory tile of a (kh, kw) kernel fits in 48 KiB."""
    return (TY * RPT + kh - 1) * (TX + kw - 1) * np.dtype(dtype).itemsize <= SHARED_LIMIT


def correlate2d(img, w, rowidx, colidx, ox, jlo, jhi, cval, out, n_threads=None):
    """Correlate ``img[B, H, W]`` with ``w[K, kh, kw]`` into ``out[B, K, Ho, Wo]``.

    ``img`` and ``out`` may be host or device arrays; ``out`` is returned (the device
    array for device input). ``ox``, ``jlo``, ``jhi`` and ``n_threads`` are part of the
    common kernel signature and not needed here (the tables carry the geometry).
    """
    dtype = np.dtype(img.dtype)
    K, kh, kw = w.shape
    B = img.shape[0]
    Ho, Wo = out.shape[2], out.shape[3]
    if not tile_fits(kh, kw, dtype):
        raise ValueError(f"kernel {kh}x{kw} is too large for the CUDA tile "
                         f"({SHARED_LIMIT // 1024} KiB of shared memory); use "
                         "method='fft' on the host")
    if B * K * Ho * Wo == 0:
        return out
    host_out = not _on_device(out)
    d_img = img if _on_device(img) else cuda.to_device(np.ascontiguousarray(img))
    d_w = w if _on_device(w) else cuda.to_device(np.ascontiguousarray(w, dtype))
    d_out = cuda.device_array(out.shape, dtype) if host_out else out
    d_r = cuda.to_device(np.ascontiguousarray(rowidx, np.int64))
    d_c = cuda.to_device(np.ascontiguousarray(colidx, np.int64))
    grid = ((Wo + TX - 1) // TX, (Ho + TY * RPT - 1) // (TY * RPT), B * K)
    _kernel(kh, kw, dtype)[grid, (TX, TY)](d_img, d_w, d_r, d_c, dtype.type(cval), d_out)
    if host_out:
        d_out.copy_to_host(out)
        return out
    return d_out
