"""2-D convolution and correlation with SciPy semantics.

Two families of public functions share one compiled primitive:

* :func:`convolve2d` / :func:`correlate2d`: ``scipy.signal`` semantics (``full``,
  ``same`` and ``valid`` output modes; ``fill``, ``wrap`` and ``symm`` boundaries).
* :func:`convolve` / :func:`correlate`: ``scipy.ndimage`` semantics over the last two
  axes (``reflect``, ``mirror``, ``nearest``, ``wrap``, ``constant``; ``origin``), so
  that a stack ``(..., H, W)`` is filtered in one call, and a kernel bank
  ``(K, kh, kw)`` gives K outputs from one read of each image.

Every case reduces to one correlation of an image stack with a kernel bank through two
index tables that map the virtual (extended) rows and columns to image rows and columns
for the boundary mode. The kernels never see a mode name; nothing is padded.
"""

import numbers

import numpy as np

from . import _backend, _threads, _validation

__all__ = ["convolve2d", "correlate2d", "convolve", "correlate"]

_OP = "correlate2d"
_SIGNAL_MODES = ("full", "same", "valid")
_SIGNAL_BOUNDARIES = {"fill": "constant", "pad": "constant", "wrap": "wrap",
                      "circular": "wrap", "symm": "reflect", "symmetric": "reflect"}
_NDIMAGE_MODES = {"reflect": "reflect", "grid-mirror": "reflect", "mirror": "mirror",
                  "nearest": "nearest", "wrap": "wrap", "grid-wrap": "wrap",
                  "constant": "constant", "grid-constant": "constant"}
_METHODS = ("auto", "direct", "separable", "fft")

# "auto" crossovers (kernel taps), fitted to fastla's own kernels on the 2-core
# development machine (2 threads, 2026-11-24, after the register fix of _conv_vec.h's
# FASTLA_VREG): rank-1 kernels run as fast or faster as the fused 1-D passes
# (correlate2d_sep) from 5x5 on (2048x2048 float32, 5x5: 1.60 against 1.64 ms direct;
# 7x7: 1.62 against 2.83 ms). The tiled overlap-save FFT costs about the same whatever
# the kernel (20-26 ms float32, 32-39 ms float64 at 2048x2048 up to 27x27) while the
# direct kernel grows with the taps: the FFT won from 21x21 on 2048x2048 (float32 and
# float64) and on 512x512 float64, from 23x23 on 512x512 float32 (21x21: 2.8 against
# 2.6 ms). SciPy's model is not used.
_AUTO_SEPARABLE_MIN_TAPS = 25      # rank-1 kernels of 5x5 and larger: two 1-D passes
_AUTO_FFT_MIN_TAPS = 21 * 21       # non-separable kernels this large go to the FFT
_AUTO_FFT_MIN_PIXELS = 128 * 128

_SUPPORTED_KINDS = "biufc"


# ---------------------------------------------------------------------------------------
# index tables


def _ext_index(n, start, length, mode):
    """Image index of virtual coordinates ``start .. start + length - 1`` (-1: outside,
    for ``constant``) on an axis of length ``n``."""
    x = np.arange(start, start + length, dtype=np.intp)
    if mode == "constant":
        return np.where((x >= 0) & (x < n), x, -1).astype(np.intp)
    if mode == "nearest":
        return np.clip(x, 0, n - 1).astype(np.intp)
    if mode == "wrap":
        return np.mod(x, n).astype(np.intp)
    if mode == "reflect":  # half-sample symmetric: d c b a | a b c d | d c b a
        m = np.mod(x, 2 * n)
        return np.where(m >= n, 2 * n - 1 - m, m).astype(np.intp)
    if mode == "mirror":  # whole-sample symmetric: d c b | a b c d | c b a
        if n == 1:
            return np.zeros_like(x)
        p = 2 * n - 2
        m = np.mod(x, p)
        return np.where(m >= n, p - m, m).astype(np.intp)
    raise AssertionError(mode)


# ---------------------------------------------------------------------------------------
# dtype helpers


def _real_dtype(dt):
    dt = np.dtype(dt)
    return np.dtype(dt.char.lower()) if dt.kind == "c" else dt


def _check_numeric(a, name):
    if a.dtype.kind not in _SUPPORTED_KINDS:
        raise TypeError(f"{name} has dtype {a.dtype}, which is not numeric")


def _acc_dtype(in_dtypes, out_dtype):
    """float32 when the inputs' real type is float32 and the output is no wider; else
    float64 (always for integer inputs: wide accumulation)."""
    real = np.result_type(*[_real_dtype(d) for d in in_dtypes])
    out_real = _real_dtype(out_dtype)
    if real == np.float32 and out_real != np.float64:
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def _check_dtype_arg(dtype):
    dt = np.dtype(dtype)
    if dt.kind not in "iufc":
        raise TypeError(f"dtype={dt} is not supported; use an integer, float or complex type")
    return dt


def _cast_out(res, out_dtype):
    """Cast the accumulated result to ``out_dtype``: integers are rounded to nearest
    and saturated at the type's range, never wrapped."""
    out_dtype = np.dtype(out_dtype)
    if out_dtype.kind in "iu":
        info = np.iinfo(out_dtype)
        r = np.rint(res.real if res.dtype.kind == "c" else res)
        np.clip(r, info.min, info.max, out=r)
        return r.astype(out_dtype)
    if out_dtype.kind == "f" and res.dtype.kind == "c":
        res = res.real
    return res.astype(out_dtype, copy=False)


# ---------------------------------------------------------------------------------------
# the engine


def _real_core(b, img, w, oy, ox, Ho, Wo, mode, cval, method, n_threads, dest=None,
               status=None):
    """Real correlation: img (B, H, W), w (K, kh, kw), both of the accumulation dtype.
    Returns (B, K, Ho, Wo)."""
    B, H, W = img.shape
    K, kh, kw = w.shape
    out = dest if dest is not None else _validation.empty_output(
        (B, K, Ho, Wo), img.dtype, apart_from=img)
    if out.size == 0:
        return out
    if method == "fft":
        return _fft_core(img, w, oy, ox, Ho, Wo, mode, cval, out, n_threads)
    if method == "separable":
        parts = [_separable_factors(w[k]) for k in range(K)]
        for k, factors in enumerate(parts):
            acc = None
            # a rank-1 kernel's vertical pass writes straight into its output plane
            dest_k = out[:, k:k + 1]
            direct_dest = len(factors) == 1 and dest_k.flags.c_contiguous
            if direct_dest and b.name == "cython":
                # both passes fused, no full-size intermediate
                col, row = factors[0]
                rowidx, colidx, oxk, jlo, jhi = _tables(H, W, kh, kw, oy, ox, Ho, Wo, mode)
                flag = _backend.entry(_OP, "cython", "correlate2d_sep")(
                    img, np.ascontiguousarray(col, dtype=img.dtype),
                    np.ascontiguousarray(row, dtype=img.dtype), rowidx, colidx, int(oxk),
                    int(jlo), int(jhi), float(cval), cval * float(np.sum(row)), dest_k,
                    n_threads)
                if status is not None:  # as _direct: the horizontal pass reads it all
                    status.append(bool(flag) or not _covers(rowidx, H)
                                  or not _covers(colidx, W))
                continue
            if status is not None:  # the two-pass path does not report: check
                status.append(True)
            for col, row in factors:
                t = _direct(b, img, row.reshape(1, 1, kw).astype(img.dtype), 0, ox, H, Wo,
                            mode, cval, n_threads, rows=np.arange(H, dtype=np.intp))
                cv = cval * float(np.sum(row))
                r = _direct(b, t.reshape(B, H, Wo), col.reshape(1, kh, 1).astype(img.dtype),
                            oy, 0, Ho, Wo, mode, cv, n_threads,
                            cols=np.arange(Wo, dtype=np.intp),
                            out=dest_k if direct_dest else None)
                acc = r if acc is None else acc + r
            if not direct_dest:
                out[:, k] = acc[:, 0]
        return out
    return _direct(b, img, w, oy, ox, Ho, Wo, mode, cval, n_threads, out=out, status=status)


def _covers(idx, n):
    """Whether the index table names every one of the n image rows (or columns)."""
    seen = np.zeros(n, dtype=bool)
    seen[idx[idx >= 0]] = True
    return bool(seen.all())


def _direct(b, img, w, oy, ox, Ho, Wo, mode, cval, n_threads, *, rows=None, cols=None,
            out=None, status=None):
    B, H, W = img.shape
    K, kh, kw = w.shape
    if out is None:
        out = _validation.empty_output((B, K, Ho, Wo), img.dtype, apart_from=img)
    rowidx, colidx, ox, jlo, jhi = _tables(H, W, kh, kw, oy, ox, Ho, Wo, mode, rows, cols)
    flag = b.kernel(img, w, rowidx, colidx, int(ox), int(jlo), int(jhi), float(cval), out,
                    n_threads)
    if status is not None:
        # the Cython kernel reports non-finite outputs; they prove the image finite only
        # if every image row and column is read by some output
        status.append(bool(flag) or not _covers(rowidx, H) or not _covers(colidx, W))
    return out


def _tables(H, W, kh, kw, oy, ox, Ho, Wo, mode, rows=None, cols=None):
    """The kernels' row and column tables and interior bounds: (rowidx, colidx, ox,
    jlo, jhi)."""
    rowidx = rows if rows is not None else _ext_index(H, -oy, Ho + kh - 1, mode)
    if cols is not None:
        return rowidx, cols, 0, 0, Wo
    colidx = _ext_index(W, -ox, Wo + kw - 1, mode)
    jlo = max(0, ox)
    jhi = min(Wo, W - kw + 1 + ox)
    if jhi <= jlo:
        jlo = jhi = 0
    return rowidx, colidx, ox, jlo, jhi


# uint8 -> uint8 runs in float32 where the float32 sums are close enough to the float64
# ones that only a few values (those within the bound of a half-integer, about 2 bound
# of them) need recomputing in float64: bound <= 2**-8 keeps that under 1%
_U8_SINGLE_MAX_BOUND = 2.0 ** -8


def _dyadic_exponent(v):
    """Smallest s >= 0 with every v * 2**s an integer, or None (non-finite v). From the
    float64 fields: |v| = m 2**(e - 53) with m a 53-bit integer, which is an integer
    times 2**(e - 53 + t) when m has t trailing zero bits."""
    v = np.asarray(v, dtype=np.float64).ravel()
    if not np.all(np.isfinite(v)):
        return None
    v = v[v != 0]
    if v.size == 0:
        return 0
    m, e = np.frexp(np.abs(v))                      # |v| = m 2**e, 1/2 <= m < 1
    mi = np.ldexp(m, 53).astype(np.int64)           # exact: a 53-bit integer
    t = np.log2((mi & -mi).astype(np.float64)).astype(np.int64)   # trailing zeros
    s = int(np.max(53 - e - t))
    return max(s, 0)


def _u8_bounds(w64, mode, cval):
    """Per kernel, a bound on |float32 sum - float64 sum| for a uint8 image: each of the
    n = kh kw products carries the rounding of its weight and of its product, and any
    summation order adds at most n - 1 roundings, so the error is at most
    (n + 2) u sum|w| max|x| (u = 2**-24) to first order; doubled for the higher-order
    terms and the float64 sum's own error. max|x| is 255, or |cval| where larger and
    the boundary reads it. 0 where the float32 sums are exact: dyadic weights (and
    cval) whose products lie on a grid of 2**-S and whose sums stay below 2**24 of it,
    in any order."""
    K, kh, kw = w64.shape
    constant = mode == "constant"
    xmax = max(255.0, abs(cval)) if constant else 255.0
    with np.errstate(over="ignore", invalid="ignore"):
        mag = np.abs(w64).reshape(K, -1).sum(axis=1) * xmax
        bound = mag * (kh * kw + 2) * 2.0 ** -23
    sc = _dyadic_exponent(cval) if constant else 0
    for k in range(K):
        sw = _dyadic_exponent(w64[k])
        if sw is not None and sc is not None and np.ldexp(mag[k], sw + sc) <= 2.0 ** 24:
            bound[k] = 0.0
    return np.where(np.isnan(bound), np.inf, bound)


def _direct_u8(img, w, oy, ox, Ho, Wo, mode, cval, n_threads, dest=None):
    """uint8 image to uint8 output with a real kernel, on the Cython entry that converts
    rows as it goes and rounds and saturates as it writes: each value is the float64 sum
    rounded, without a converted copy of the image or a float output. The sums run in
    float32 where ``_u8_bounds`` allows (values near a rounding tie recomputed in
    float64), else in float64."""
    B, H, W = img.shape
    K, kh, kw = w.shape
    out = dest if dest is not None else _validation.empty_output((B, K, Ho, Wo), np.uint8,
                                                                apart_from=img)
    if out.size == 0:
        return out
    w64 = np.ascontiguousarray(w, dtype=np.float64)
    bound = _u8_bounds(w64, mode, cval)
    single = bool(np.all(bound <= _U8_SINGLE_MAX_BOUND))
    rowidx, colidx, ox, jlo, jhi = _tables(H, W, kh, kw, oy, ox, Ho, Wo, mode)
    _backend.entry(_OP, "cython", "correlate2d_u8")(
        np.ascontiguousarray(img), w64, w64.astype(np.float32), bound, rowidx, colidx,
        int(ox), int(jlo), int(jhi), float(cval), out, single, n_threads)
    return out


def _separable_factors(k2):
    """Rank-r factors [(col, row)] with k2 ~= sum col[:, None] * row[None, :]."""
    u, s, vt = np.linalg.svd(k2.astype(np.float64))
    tol = s[0] * max(k2.shape) * np.finfo(k2.dtype).eps * 4 if s.size else 0.0
    r = int(np.sum(s > tol)) if s.size and s[0] > 0 else 1
    return [(u[:, i] * np.sqrt(s[i]), vt[i] * np.sqrt(s[i])) for i in range(max(r, 1))]


def _rank(k2):
    return len(_separable_factors(k2))


def _fft_core(img, w, oy, ox, Ho, Wo, mode, cval, out, n_threads):
    """Correlation by tiled overlap-save FFT (``_kernels._fft_conv``), into ``out``."""
    from ._kernels import _fft_conv

    B, H, W = img.shape
    K, kh, kw = w.shape
    rowidx = _ext_index(H, -oy, Ho + kh - 1, mode)
    colidx = _ext_index(W, -ox, Wo + kw - 1, mode)
    return _fft_conv.correlate_tiled(img, rowidx, colidx, w, cval, out,
                                     _threads.effective_n_threads(n_threads))


def _choose_method(method, w, img_shape, exact):
    if method != "auto":
        return method
    K, kh, kw = w.shape
    taps = kh * kw
    if exact:  # integer output compares exactly: direct only
        return "direct"
    if taps >= _AUTO_SEPARABLE_MIN_TAPS and all(_rank(w[k]) == 1 for k in range(K)):
        return "separable"
    if taps >= _AUTO_FFT_MIN_TAPS and img_shape[-1] * img_shape[-2] >= _AUTO_FFT_MIN_PIXELS:
        return "fft"
    return "direct"


def _engine(img, w, oy, ox, Ho, Wo, mode, cval, out_dtype, method, backend, n_threads,
            conj_weights=False, dest=None, check_image=None):
    """Correlate img (B, H, W) with w (K, kh, kw) of any numeric dtypes; returns
    (B, K, Ho, Wo) of ``out_dtype``. ``dest``: a C-contiguous (B, K, Ho, Wo) array of
    ``out_dtype`` not overlapping img (the user's ``out=``), written in place when the
    kernel's own dtype is ``out_dtype`` (no cast pass); otherwise ignored.
    ``check_image``: the image's finiteness check (raises ValueError), or None. It runs
    first, except on the direct and fused separable Cython paths for real data, where
    the kernel's own report of non-finite outputs decides whether it needs to run at all
    (saving a pass over the image)."""
    acc = _acc_dtype((img.dtype, w.dtype), out_dtype)
    b = _backend.resolve(_OP, backend, arrays=(img, w))
    if conj_weights and w.dtype.kind == "c":
        w = w.conj()
    method = _choose_method(method, w, img.shape, np.dtype(out_dtype).kind in "iu")
    if method == "fft" and b.name == "cuda":
        method = "direct"
    cval_c = complex(cval)

    # status: one entry per kernel call, True where the image still needs its check
    status = None
    if check_image is not None:
        if b.name == "cython" and method in ("direct", "separable") \
                and img.dtype.kind != "c" and w.dtype.kind != "c" and cval_c.imag == 0:
            status = []
        else:
            check_image()

    if b.name == "cython" and method == "direct" and img.dtype == np.uint8 \
            and np.dtype(out_dtype) == np.uint8 and w.dtype.kind != "c" and cval_c.imag == 0:
        return _direct_u8(img, w, oy, ox, Ho, Wo, mode, cval_c.real, n_threads, dest)

    def run(x, ww, cv, dest=None):
        x = np.ascontiguousarray(x, dtype=acc)
        ww = np.ascontiguousarray(ww, dtype=acc)
        return _real_core(b, x, ww, oy, ox, Ho, Wo, mode, cv, method, n_threads, dest,
                          status)

    if cval_c.imag != 0 and img.dtype.kind != "c":  # a complex fill makes the image complex
        img = img.astype(np.result_type(img.dtype, np.complex64))
    img_c = img.dtype.kind == "c"
    w_c = w.dtype.kind == "c"
    if not img_c and not w_c:
        res = run(img, w, cval_c.real, dest if np.dtype(acc) == np.dtype(out_dtype) else None)
    elif not img_c:  # real image, complex weights: one pass with the bank [re; im]
        K = w.shape[0]
        r = run(img, np.concatenate([w.real, w.imag]), cval_c.real)
        res = r[:, :K] + 1j * r[:, K:]
    elif not w_c:
        res = run(img.real, w, cval_c.real) + 1j * run(img.imag, w, cval_c.imag)
    else:
        K = w.shape[0]
        bank = np.concatenate([w.real, w.imag])
        a = run(img.real, bank, cval_c.real)
        c = run(img.imag, bank, cval_c.imag)
        res = (a[:, :K] - c[:, K:]) + 1j * (a[:, K:] + c[:, :K])
    if status is not None and (not status or any(status)):  # no kernel ran: check anyway
        check_image()
    return _cast_out(res, out_dtype)


# ---------------------------------------------------------------------------------------
# device (GPU) arrays: the cuda kernel reads and writes them in place, no host copies


def _device_run(x, w3, oy, ox, Ho, Wo, mode, cval, backend, out, oshape):
    """Correlate the device stack ``x[..., H, W]`` with host weights ``w3[K, kh, kw]``;
    returns a device array of shape ``oshape``."""
    name = "cuda" if backend in (None, "auto") else backend
    b = _backend.resolve(_OP, name)
    if b.name != "cuda":
        raise _backend.BackendError(f"device (GPU) arrays need backend='cuda', got {name!r}")
    dt = np.dtype(x.dtype)
    if dt not in (np.float32, np.float64):
        raise TypeError(f"device arrays must be float32 or float64, got {dt}")
    if isinstance(cval, complex):
        raise TypeError("a complex fill value needs host arrays")
    H, W = x.shape[-2:]
    n = int(np.prod(x.shape[:-2], dtype=np.int64))
    xi = x.reshape((n, H, W))
    w3 = np.ascontiguousarray(w3, dtype=dt)
    from numba import cuda

    if out is None:
        res = cuda.device_array((n, w3.shape[0], Ho, Wo), dtype=dt)
    else:
        from . import _cuda_validation

        # written through a 4-D reshape, which must be a view
        _cuda_validation.check_device_out(out, oshape, dt, inputs=(x,), c_contiguous=True)
        res = out.reshape((n, w3.shape[0], Ho, Wo))
    kh, kw = w3.shape[1:]
    rowidx = _ext_index(H, -oy, Ho + kh - 1, mode)
    colidx = _ext_index(W, -ox, Wo + kw - 1, mode)
    res = b.kernel(xi, w3, rowidx, colidx, ox, 0, 0, float(cval), res, 1)
    return res.reshape(tuple(oshape)) if out is None else out


def _host_weights(w, name):
    if _backend.is_device_array(w):
        w = w.copy_to_host()  # kernels are small
    return _as_array(w, name)


# ---------------------------------------------------------------------------------------
# validation


def _as_array(x, name):
    if x is None:
        raise TypeError(f"{name} must be an array, got None")
    if _backend.is_device_array(x):
        raise TypeError(f"{name} is a device (GPU) array; this function takes host arrays")
    a = np.asarray(x)
    if a.dtype == bool:
        a = a.astype(np.uint8)
    if a.dtype == object:
        try:
            a = a.astype(np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"{name} could not be converted to a numeric array") from None
    _check_numeric(a, name)
    return a


def _check_common(method, n_threads):
    _validation.check_choice(method, name="method", choices=_METHODS)
    return _threads.effective_n_threads(n_threads)


def _dest(out, shape, dtype, image, name="out"):
    """The user's ``out`` as a (B, K, Ho, Wo) view the kernels may write directly, or None
    (no out, or out overlapping the input: then the result is copied in at the end)."""
    if out is None:
        return None
    _validation.check_out(out, shape, dtype, name=name)
    if np.may_share_memory(out, image):
        return None
    return out


def _finish(res, out, name="out"):
    if out is None:
        return res
    _validation.check_out(out, res.shape, res.dtype, name=name)
    if res.ctypes.data == out.ctypes.data and res.strides == out.strides:
        return out  # the kernels wrote out in place
    np.copyto(out, res)
    return out


def _check_finite_arrays(*arrays):
    if _validation.finite_wanted(None):
        for a, name in arrays:
            _validation.assert_finite(a, name=name)


def _image_check(image, name):
    """The image's finiteness check, to be run by the engine (None when disabled)."""
    if not _validation.finite_wanted(None):
        return None
    return lambda: _validation.assert_finite(image, name=name)


# ---------------------------------------------------------------------------------------
# scipy.signal semantics


def _signal(in1, in2, mode, boundary, fillvalue, out, method, backend, n_threads, dtype,
            convolution):
    if _backend.is_device_array(in1):
        return _signal_device(in1, in2, mode, boundary, fillvalue, out, backend,
                              convolution)
    in1 = _as_array(in1, "in1")
    in2 = _as_array(in2, "in2")
    if in1.ndim != 2 or in2.ndim != 2:
        raise ValueError(f"in1 and in2 must both be 2-D arrays, got {in1.ndim}-D and "
                         f"{in2.ndim}-D")
    if in1.size == 0 or in2.size == 0:
        raise ValueError(f"in1 and in2 must not be empty, got shapes {in1.shape} and "
                         f"{in2.shape}")
    _validation.check_choice(mode, name="mode", choices=_SIGNAL_MODES)
    if boundary not in _SIGNAL_BOUNDARIES:
        raise ValueError(f"boundary={boundary!r} is not one of "
                         f"{', '.join(repr(c) for c in _SIGNAL_BOUNDARIES)}")
    if not isinstance(fillvalue, numbers.Number) or isinstance(fillvalue, bool):
        fv = np.asarray(fillvalue)
        if fv.size != 1:
            raise ValueError("fillvalue must be a scalar")
        fillvalue = fv.item()
    n_threads = _check_common(method, n_threads)
    out_dtype = np.result_type(in1.dtype, in2.dtype) if dtype is None else \
        _check_dtype_arg(dtype)
    bmode = _SIGNAL_BOUNDARIES[boundary]
    swapped = False
    if mode == "valid":
        ok1 = in1.shape[0] >= in2.shape[0] and in1.shape[1] >= in2.shape[1]
        ok2 = in2.shape[0] >= in1.shape[0] and in2.shape[1] >= in1.shape[1]
        if not (ok1 or ok2):
            raise ValueError("For 'valid' mode, one must be at least as large as the other "
                             f"in every dimension (got in1 {in1.shape}, in2 {in2.shape})")
        if not ok1:  # SciPy swaps the inputs
            in1, in2 = in2, in1
            swapped = True
    names = ("in2", "in1") if swapped else ("in1", "in2")
    _check_finite_arrays((in2, names[1]))  # the image (in1): checked by the engine
    H, W = in1.shape
    kh, kw = in2.shape
    if convolution:
        w = in2[::-1, ::-1]
        offs = {"full": (kh - 1, kw - 1), "same": (kh // 2, kw // 2), "valid": (0, 0)}
    else:
        w = in2
        offs = {"full": (kh - 1, kw - 1), "same": ((kh - 1) // 2, (kw - 1) // 2),
                "valid": (0, 0)}
    shapes = {"full": (H + kh - 1, W + kw - 1), "same": (H, W),
              "valid": (H - kh + 1, W - kw + 1)}
    oy, ox = offs[mode]
    Ho, Wo = shapes[mode]
    dest = None if swapped else _dest(out, (Ho, Wo), out_dtype, in1)
    res = _engine(in1[None], w[None], oy, ox, Ho, Wo, bmode, fillvalue, out_dtype, method,
                  backend, n_threads, conj_weights=not convolution,
                  dest=None if dest is None else dest.reshape(1, 1, Ho, Wo),
                  check_image=_image_check(in1, names[0]))[0, 0]
    if swapped and not convolution:
        res = res[::-1, ::-1].copy()
    return _finish(res, out)


def _signal_device(in1, in2, mode, boundary, fillvalue, out, backend, convolution):
    in2 = _host_weights(in2, "in2")
    if len(in1.shape) != 2 or in2.ndim != 2:
        raise ValueError("in1 and in2 must both be 2-D arrays")
    _validation.check_choice(mode, name="mode", choices=_SIGNAL_MODES)
    if boundary not in _SIGNAL_BOUNDARIES:
        raise ValueError(f"boundary={boundary!r} is not one of "
                         f"{', '.join(repr(c) for c in _SIGNAL_BOUNDARIES)}")
    H, W = in1.shape
    kh, kw = in2.shape
    if H * W == 0 or in2.size == 0:
        raise ValueError("in1 and in2 must not be empty")
    if mode == "valid" and (kh > H or kw > W):
        raise ValueError("For 'valid' mode on device arrays the kernel must not be larger "
                         "than the image in any dimension")
    if convolution:
        w = in2[::-1, ::-1]
        oy, ox = {"full": (kh - 1, kw - 1), "same": (kh // 2, kw // 2),
                  "valid": (0, 0)}[mode]
    else:
        w = in2.conj() if in2.dtype.kind == "c" else in2
        oy, ox = {"full": (kh - 1, kw - 1), "same": ((kh - 1) // 2, (kw - 1) // 2),
                  "valid": (0, 0)}[mode]
    if w.dtype.kind == "c":
        raise TypeError("complex kernels need host arrays")
    Ho, Wo = {"full": (H + kh - 1, W + kw - 1), "same": (H, W),
              "valid": (H - kh + 1, W - kw + 1)}[mode]
    return _device_run(in1, w[None], oy, ox, Ho, Wo, _SIGNAL_BOUNDARIES[boundary],
                       fillvalue, backend, out, (Ho, Wo))


_SIGNAL_DOC = """{what} two 2-D arrays, with ``scipy.signal.{name}`` semantics.

    Parameters
    ----------
    in1 : array_like, 2-D
        The image.
    in2 : array_like, 2-D
        The kernel.{conj}
    mode : {{"full", "same", "valid"}}
        Output size, as in SciPy. In ``"valid"`` mode one input must be at least as
        large as the other in every dimension (SciPy swaps them when ``in2`` is larger).
    boundary : {{"fill", "wrap", "symm"}}
        Boundary handling (aliases ``"pad"``, ``"circular"``, ``"symmetric"``).
    fillvalue : scalar
        Value outside the image for ``boundary="fill"``.
    out : numpy.ndarray, optional
        C-contiguous array of the output shape and dtype to write into.
    method : {{"auto", "direct", "separable", "fft"}}
        ``"direct"``: shape-specialised direct kernels; ``"separable"``: SVD rank
        decomposition into 1-D passes; ``"fft"``: tiled overlap-save through
        scipy.fft (float32 kept in single precision);
        ``"auto"``: chooses by kernel size and rank (integer outputs always direct).
    backend : {{"cython", "numba", "cuda", "python", "auto"}}, optional
    n_threads : int, optional
    dtype : dtype, optional
        Output dtype. Default: ``numpy.result_type(in1, in2)``, SciPy's result type.

    Returns
    -------
    numpy.ndarray

    Notes
    -----
    Differences from SciPy: sums are accumulated in float64 for integer inputs and
    written back rounded to nearest and saturated to the output type (SciPy accumulates
    in the integer type and wraps around). Floating-point sums may differ from SciPy's
    in the last bits (different summation order). Empty inputs raise ValueError.
    """


def convolve2d(in1, in2, mode="full", boundary="fill", fillvalue=0, *, out=None,
               method="auto", backend=None, n_threads=None, dtype=None):
    return _signal(in1, in2, mode, boundary, fillvalue, out, method, backend, n_threads,
                   dtype, True)


def correlate2d(in1, in2, mode="full", boundary="fill", fillvalue=0, *, out=None,
                method="auto", backend=None, n_threads=None, dtype=None):
    return _signal(in1, in2, mode, boundary, fillvalue, out, method, backend, n_threads,
                   dtype, False)


convolve2d.__doc__ = _SIGNAL_DOC.format(what="Convolve", name="convolve2d", conj="")
correlate2d.__doc__ = _SIGNAL_DOC.format(
    what="Cross-correlate", name="correlate2d",
    conj=" Complex kernels are conjugated, as in SciPy.")


# ---------------------------------------------------------------------------------------
# scipy.ndimage semantics


def _pair(v, name):
    if isinstance(v, numbers.Integral) and not isinstance(v, bool):
        return int(v), int(v)
    try:
        t = tuple(v)
    except TypeError:
        raise TypeError(f"{name} must be an int or a pair of ints, got {v!r}") from None
    if len(t) != 2 or not all(isinstance(x, numbers.Integral) and not isinstance(x, bool)
                              for x in t):
        raise TypeError(f"{name} must be an int or a pair of ints, got {v!r}")
    return int(t[0]), int(t[1])


def _ndimage(image, weights, mode, cval, origin, out, method, backend, n_threads, dtype,
             convolution):
    on_device = _backend.is_device_array(image)
    if on_device:
        weights = _host_weights(weights, "weights")
        image_dev, image = image, np.empty((0,) * len(image.shape), np.dtype(image.dtype))
    else:
        image = _as_array(image, "image")
        weights = _as_array(weights, "weights")
    if image.ndim < 2:
        raise ValueError(f"image must have at least 2 dimensions (..., H, W), got "
                         f"{image.ndim}-D")
    if weights.ndim not in (2, 3):
        raise ValueError(f"weights must be 2-D (kh, kw) or a 3-D bank (K, kh, kw), got "
                         f"{weights.ndim}-D")
    if weights.size == 0:
        raise ValueError(f"weights must not be empty, got shape {weights.shape}")
    if mode not in _NDIMAGE_MODES:
        raise ValueError(f"mode={mode!r} is not one of "
                         f"{', '.join(repr(c) for c in _NDIMAGE_MODES)}")
    if isinstance(cval, bool) or not isinstance(cval, numbers.Number):
        raise TypeError(f"cval must be a number, got {cval!r}")
    oy0, ox0 = _pair(origin, "origin")
    n_threads = _check_common(method, n_threads)
    _check_finite_arrays((weights, "weights"))  # the image: in the engine
    bank = weights.ndim == 3
    w = weights if bank else weights[None]
    K, kh, kw = w.shape
    origins = [oy0, ox0]
    if convolution:
        w = w[:, ::-1, ::-1]
        for d, n in enumerate((kh, kw)):
            origins[d] = -origins[d] - (0 if n & 1 else 1)
    for o, n in zip(origins, (kh, kw)):
        if o < -(n // 2) or o > (n - 1) // 2:
            raise ValueError(f"invalid origin {origin!r}: each origin must satisfy "
                             f"-(weights.shape[k] // 2) <= origin[k] <= "
                             f"(weights.shape[k] - 1) // 2 for weights {weights.shape}")
    if dtype is not None:
        out_dtype = _check_dtype_arg(dtype)
    elif weights.dtype.kind == "c" or image.dtype.kind == "c":
        single = image.dtype in (np.float32, np.complex64)
        out_dtype = np.dtype(np.complex64 if single else np.complex128)
    else:
        out_dtype = image.dtype
    if on_device:
        lead, (H, W) = tuple(image_dev.shape[:-2]), tuple(image_dev.shape[-2:])
        if weights.dtype.kind == "c":
            raise TypeError("complex weights need host arrays")
        oy, ox = kh // 2 + origins[0], kw // 2 + origins[1]
        oshape = lead + ((K,) if bank else ()) + (H, W)
        return _device_run(image_dev, w, oy, ox, H, W, _NDIMAGE_MODES[mode], cval,
                           backend, out, oshape)
    lead = image.shape[:-2]
    H, W = image.shape[-2:]
    oshape = lead + ((K,) if bank else ()) + (H, W)
    if image.size == 0:
        return _finish(np.empty(oshape, dtype=out_dtype), out)
    img = image.reshape((-1, H, W))
    # ndimage: out[i] = sum_a w[a] * in[i + a - (kh // 2 + origin)]
    oy, ox = kh // 2 + origins[0], kw // 2 + origins[1]
    dest = _dest(out, oshape, out_dtype, image)
    if dest is not None:
        dest = dest.reshape((img.shape[0], K, H, W))
    res = _engine(img, w, oy, ox, H, W, _NDIMAGE_MODES[mode], cval, out_dtype, method,
                  backend, n_threads, conj_weights=not convolution, dest=dest,
                  check_image=_image_check(image, "image"))
    return _finish(res.reshape(oshape), out)


_NDIMAGE_DOC = """{what} the last two axes of ``image`` with ``weights``, with
    ``scipy.ndimage.{name}`` semantics.

    Parameters
    ----------
    image : array_like, shape (..., H, W)
        An image or a stack of images; each 2-D slice is filtered.
    weights : array_like, shape (kh, kw) or (K, kh, kw)
        The kernel, or a bank of K kernels: the output then has shape (..., K, H, W),
        all K filters computed from one read of each image.{conj}
    mode : {{"reflect", "mirror", "nearest", "wrap", "constant"}}
        Boundary extension, as in ``scipy.ndimage`` (``"grid-mirror"``,
        ``"grid-wrap"``, ``"grid-constant"`` are accepted as aliases).
    cval : scalar
        Value outside the image for ``mode="constant"``.
    origin : int or (int, int)
        Shift of the kernel centre, as in SciPy.
    out : numpy.ndarray, optional
        C-contiguous array of the output shape and dtype to write into.
    method : {{"auto", "direct", "separable", "fft"}}
    backend : {{"cython", "numba", "cuda", "python", "auto"}}, optional
    n_threads : int, optional
    dtype : dtype, optional
        Output dtype; default: the image's dtype (complex when the weights are).

    Returns
    -------
    numpy.ndarray, shape (..., H, W) or (..., K, H, W)

    Notes
    -----
    float32 images are filtered in float32 (SciPy accumulates in float64). Integer
    outputs are rounded to nearest and saturated (SciPy truncates and wraps around).
    """


def convolve(image, weights, mode="reflect", cval=0.0, origin=0, *, out=None,
             method="auto", backend=None, n_threads=None, dtype=None):
    return _ndimage(image, weights, mode, cval, origin, out, method, backend, n_threads,
                    dtype, True)


def correlate(image, weights, mode="reflect", cval=0.0, origin=0, *, out=None,
              method="auto", backend=None, n_threads=None, dtype=None):
    return _ndimage(image, weights, mode, cval, origin, out, method, backend, n_threads,
                    dtype, False)


convolve.__doc__ = _NDIMAGE_DOC.format(what="Convolve", name="convolve", conj="")
correlate.__doc__ = _NDIMAGE_DOC.format(
    what="Cross-correlate", name="correlate",
    conj=" Complex weights are conjugated, as in SciPy.")


def _warmup(backend):
    x = np.ones((6, 7), dtype=np.float64)
    for dt in (np.float32, np.float64):
        correlate2d(x.astype(dt), np.ones((3, 3), dt), mode="same", backend=backend)


# One kernel entry (correlate2d in each kernel module) serves all four public functions;
# each public name is registered so that available_backends(name) lists its backends.
for _name in ("correlate2d", "convolve2d", "correlate", "convolve"):
    _backend.register_op(_name, "conv", backends=("cython", "numba", "cuda", "python"),
                         kernel="correlate2d", warmup=_warmup)
del _name
