"""Pairwise distances, the RBF kernel and fused nearest-neighbour search.

Every function validates, picks a backend and calls one kernel of the tiled distance
engine (``fastla._kernels._cy_distances``, ``_numba_distances``, ``_cuda_distances``;
the naive loops in ``_naive``).
"""

import math

import numpy as np

from . import _backend, _threads
from . import _validation as _v

__all__ = ["pairwise_distances", "rbf_kernel", "nearest_neighbors", "euclidean_distance",
           "METRICS"]

# metric codes shared by every kernel
METRIC_CODES = {
    "sqeuclidean": 0,
    "euclidean": 1,
    "cosine": 2,
    "manhattan": 3,
    "cityblock": 3,
    "l1": 3,
    "chebyshev": 4,
    "minkowski": 5,
    "l2": 1,
}
RBF = 6
METRICS = tuple(sorted(METRIC_CODES))


def recompute_threshold(dtype, n_features):
    """Relative size under which a GEMM-trick squared distance is recomputed exactly.

    The term 2 x.y carries a rounding error of about ``2 sqrt(d) eps (|x|^2 + |y|^2)/2``,
    and the sum ``|x|^2 + |y|^2 - 2 x.y`` (finished in the input precision by the own
    tile kernel) up to ``2 eps (|x|^2 + |y|^2)`` more; entries with
    ``d^2 < T (|x|^2 + |y|^2)`` where that error could exceed 1e-5 of d^2 are recomputed
    as sum((x - y)^2) in float64.
    """
    eps = np.finfo(dtype).eps
    return min(1.0, (2.0 * math.sqrt(max(n_features, 1)) + 2.0) * eps / 1e-5)


def _metric(metric, metric_kwargs):
    if not isinstance(metric, str) or metric not in METRIC_CODES:
        raise ValueError(f"metric={metric!r} is not supported; choose from {', '.join(METRICS)}")
    code = METRIC_CODES[metric]
    allowed = {"p"} if code == 5 else set()
    extra = set(metric_kwargs) - allowed
    if extra:
        raise TypeError(f"metric {metric!r} takes no argument(s) {sorted(extra)}")
    p = 2.0
    if code == 5:
        p = metric_kwargs.get("p", 2.0)
        if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)):
            raise TypeError(f"p must be a number, got {p!r}")
        p = float(p)
        if not p > 0 or math.isnan(p):
            raise ValueError(f"p must be > 0 for minkowski, got {p}")
        # the special cases run the faster kernels with the same values
        if p == 1.0:
            code = 3
        elif p == 2.0:
            code = 1
        elif math.isinf(p):
            code = 4
    return code, p


def _host_array(x, name, check_finite):
    """check_array, whose finiteness check takes the minimum and maximum (they carry NaN
    and inf, as a sum does), which also give the largest magnitude (returned; 0.0 for an
    empty array, NaN where x holds NaN)."""
    x = _v.check_array(x, name=name, ndim=2, check_finite=False)
    if x.size == 0:
        return x, 0.0
    lo, hi = x.min(), x.max()
    if _v.finite_wanted(check_finite):
        _v.assert_finite(x, name=name, summary=np.array([lo, hi]))
    return x, max(abs(float(lo)), abs(float(hi)))


def _host_pair(X, Y, check_finite):
    """(X, Y, same, largest magnitude of either)."""
    X, mx = _host_array(X, "X", check_finite)
    if Y is None:
        return X, X, True, mx
    Y, my = _host_array(Y, "Y", check_finite)
    _v.check_same_columns(X, Y)
    dt = _v.result_dtype(X, Y)
    big = mx if mx != mx or mx >= my else my  # NaN from either side stays NaN
    return X.astype(dt, copy=False), Y.astype(dt, copy=False), False, big


# The metrics whose products and squared norms (the GEMM form's, or the direct squared
# sums) lose their low bits to subnormal numbers first, and, per dtype, the magnitude
# 2^-S below which data is scaled up.
_RANGED = (0, 1, 2, RBF)
_F32_MAX = float(np.finfo(np.float32).max)
_TINY_EXP = {np.dtype(np.float32): 30, np.dtype(np.float64): 250}


def _pow2_scale(X, Y, same, code, big):
    """(X, Y, e): where the largest magnitude ``big`` is below 2^-S (see _TINY_EXP), X
    and Y times 2^-e (e < 0: a scaling up, exact for every value), with e the binary
    exponent of ``big``, so that the largest magnitude lies in [0.5, 1); distances are
    then times 2^-e (squared, 2^-2e; cosine unchanged). Else the arrays themselves and
    e = 0. float32 data of 1e-22 otherwise lost the GEMM's products to subnormals
    (distances 1.4% off, true neighbours missed). Data too large is not scaled down:
    scaling down by the largest value would push the other values into subnormals, so
    one outlier would spoil every other pair (a review found float32 data with one
    3e38 value all zeros that way); data whose squared sums would overflow is refused
    with a clear error (float32 data of 1e20 gave inf and NaN)."""
    if code not in _RANGED or big is None:
        return X, Y, 0
    # too large: the squared sums (d (2 big)^2 at most) overflow the dtype
    top = (np.finfo(X.dtype).maxexp - 2 - math.log2(max(X.shape[1], 1))) / 2 - 1
    if math.inf > big > 2.0 ** top:
        raise ValueError(
            f"values of magnitude up to {big:.3g} make the {X.dtype} sums of products "
            f"overflow (at most 2^{math.floor(top)} for {X.shape[1]} features); "
            + ("convert X and Y to float64, or scale them" if X.dtype == np.float32
               else "scale X and Y down"))
    if not 0.0 < big < 2.0 ** -_TINY_EXP[X.dtype]:
        return X, Y, 0
    e = math.frexp(big)[1]
    X = np.ldexp(X, -e)  # (keeps the dtype)
    return X, (X if same else np.ldexp(Y, -e)), e


def _unscale(a, code, e):
    """Undo _pow2_scale on distances ``a`` (in place; one rounding each; a squared
    distance beyond the dtype's range becomes inf, as a cast of cdist's would)."""
    if e and code in (0, 1):
        with np.errstate(over="ignore", under="ignore"):
            np.ldexp(a, 2 * e if code == 0 else e, out=a)


def _device_pair(X, Y):
    from . import _cuda_validation as cv

    X = cv.check_device_array(X, name="X", ndim=2)
    if Y is None:
        return X, X, True
    Y = cv.check_device_array(Y, name="Y", ndim=2)
    _v.check_same_columns(X, Y)
    if X.dtype != Y.dtype:
        raise TypeError(f"device arrays X ({X.dtype}) and Y ({Y.dtype}) must share a dtype")
    return X, Y, False


def _prepare(op, X, Y, backend, n_threads, check_finite):
    b = _backend.resolve(op, backend, arrays=(X, Y))
    n_threads = _threads.effective_n_threads(n_threads)
    if _backend.is_device_array(X) or _backend.is_device_array(Y):
        X, Y, same = _device_pair(X, Y)
        big = None  # device arrays: not looked at on the host (no range handling)
    else:
        X, Y, same, big = _host_pair(X, Y, check_finite)
    return b, X, Y, same, n_threads, big


def _output(op, shape, dtype, out, device, hint, inputs):
    if device:
        if out is None:
            return None
        from . import _cuda_validation as cv

        cv.check_device_out(out, shape, dtype, inputs)
        return out
    if out is None:
        _v.check_alloc(shape, dtype, what=f"the {op} output", hint=hint)
        return _v.empty_output(shape, dtype)
    return _v.check_out(out, shape, dtype, inputs=inputs)


def _run_matrix(op, X, Y, code, p, gamma, out, backend, n_threads, check_finite):
    b, X, Y, same, n_threads, big = _prepare(op, X, Y, backend, n_threads, check_finite)
    m, n, d = X.shape[0], Y.shape[0], X.shape[1]
    device = b.name == "cuda" and _backend.is_device_array(X)
    out = _output(op, (m, n), X.dtype, out, device,
                  "use fastla.nearest_neighbors for the k nearest rows without the full "
                  "matrix, or process X in chunks", (X, Y))
    if d == 0 and not device:
        out.fill(1.0 if code in (RBF, 2) else 0.0)
        if same and code == 2:
            np.fill_diagonal(out, 0.0)
        return out
    X, Y, e = _pow2_scale(X, Y, same, code, big)
    gamma = math.ldexp(gamma, 2 * e)
    if code == RBF and X.dtype == np.float32 and gamma > _F32_MAX and not device:
        # the float32 kernels take gamma as a float32, where it would be inf (a clamp to
        # FLT_MAX gave exp(-3.4) for exp(-10)): run in float64, then round once
        _v.check_alloc((m, n), np.float64, what="the float64 rbf_kernel intermediate")
        X, Y = X.astype(np.float64), (None if same else Y.astype(np.float64))
        tmp = b.kernel(X, X if same else Y, _v.empty_output((m, n), np.float64), code, p,
                       gamma, same, recompute_threshold(X.dtype, d), n_threads)
        out[...] = tmp
        return out
    res = b.kernel(X, Y, out, code, p, gamma, same, recompute_threshold(X.dtype, d),
                   n_threads)
    if device and out is None:
        return res
    _unscale(out, code, e)
    return out


def pairwise_distances(X, Y=None, metric="euclidean", *, out=None, backend=None,
                       n_threads=None, check_finite=None, **metric_kwargs):
    """Distance matrix between the rows of X and the rows of Y.

    Values agree with :func:`scipy.spatial.distance.cdist` (within floating-point
    rounding); the output keeps the input precision (float32 in, float32 out).

    Parameters
    ----------
    X : array_like of shape (m, d)
        Integer and bool inputs are computed in float64.
    Y : array_like of shape (n, d), optional
        None compares X with itself; the diagonal is then exactly zero.
    metric : str, default "euclidean"
        "euclidean" (alias "l2"), "sqeuclidean", "cosine", "manhattan" (aliases
        "cityblock", "l1"), "chebyshev", "minkowski" (takes ``p``, default 2).
        Cosine distance involving an all-zero row is 1 (scikit-learn's convention;
        SciPy returns NaN there).
    out : ndarray of shape (m, n), optional
        Where to write the result: C-contiguous, of the result dtype. With device
        inputs, a device array (numba, CuPy, PyTorch) of that shape and dtype, any
        strides; it is filled and returned.
    backend : {"auto", "cython", "numba", "cuda", "python"}, optional
        None follows ``config_context``/FASTLA_BACKEND, then "auto". Device arrays
        (``__cuda_array_interface__``) run on "cuda" and return a device array.
    n_threads : int, optional
        Threads for the CPU backends (default: all cores).
    check_finite : bool, optional
        Refuse NaN/inf with a ValueError (default: the ``check_finite`` config, True).
    **metric_kwargs
        ``p`` for minkowski.

    Returns
    -------
    ndarray of shape (m, n)
        float32 when X and Y are float32, else float64.

    Raises
    ------
    ValueError
        Different numbers of columns, wrong ndim, NaN/inf, unknown metric.
    fastla.OutputTooLargeError
        When the (m, n) matrix cannot fit in memory; use :func:`nearest_neighbors`.

    See Also
    --------
    nearest_neighbors : the k nearest rows without building the matrix.
    rbf_kernel : exp(-gamma * ||x - y||^2) in the same pass.

    Notes
    -----
    Euclidean, squared euclidean and cosine run through BLAS on cache-sized tiles with
    the norms, clamping and square root fused into the same pass; entries where the
    ``||x||^2 + ||y||^2 - 2 x.y`` form could lose more than 1e-5 of their value to
    cancellation are recomputed exactly in float64, so float32 results stay within
    1e-5 relative of a float64 reference. Manhattan, Chebyshev, Minkowski and
    euclidean with few features use a direct register-blocked loop.

    Examples
    --------
    >>> import numpy as np, fastla
    >>> fastla.pairwise_distances(np.array([[0.0, 0.0], [3.0, 4.0]]))
    array([[0., 5.],
           [5., 0.]])
    """
    code, p = _metric(metric, metric_kwargs)
    return _run_matrix("pairwise_distances", X, Y, code, p, 0.0, out, backend, n_threads,
                       check_finite)


def rbf_kernel(X, Y=None, gamma=None, *, out=None, backend=None, n_threads=None,
               check_finite=None):
    """RBF (Gaussian) kernel ``exp(-gamma * ||x - y||^2)``, fused with the distances.

    Same semantics as :func:`sklearn.metrics.pairwise.rbf_kernel`; no separate distance
    matrix is built.

    Parameters
    ----------
    X : array_like of shape (m, d)
    Y : array_like of shape (n, d), optional
        None: X with itself (ones on the diagonal).
    gamma : float >= 0, optional
        Default ``1 / d`` (scikit-learn's default). Negative values are refused, as
        scikit-learn refuses them.
    out, backend, n_threads, check_finite
        As in :func:`pairwise_distances`.

    Returns
    -------
    ndarray of shape (m, n)
    """
    if gamma is not None:
        gamma = _v.check_scalar(gamma, name="gamma", minimum=0.0)
    Xs = np.shape(X)
    if gamma is None:
        gamma = 1.0 / Xs[1] if len(Xs) == 2 and Xs[1] > 0 else 1.0
    return _run_matrix("rbf_kernel", X, Y, RBF, 2.0, gamma, out, backend, n_threads,
                       check_finite)


def nearest_neighbors(X, Y=None, k=1, metric="euclidean", *, return_distance=True,
                      backend=None, n_threads=None, check_finite=None, **metric_kwargs):
    """The k nearest rows of Y for every row of X, without the distance matrix.

    Parameters
    ----------
    X : array_like of shape (m, d)
        Queries.
    Y : array_like of shape (n, d), optional
        Candidates. None searches X itself and excludes each point from its own list.
    k : int, default 1
        Neighbours per query, at most the number of candidates.
    metric : str
        Any metric of :func:`pairwise_distances`; all of them use the fused path.
    return_distance : bool, default True
        Return ``(distances, indices)``; False returns ``indices`` only.
    backend, n_threads, check_finite, **metric_kwargs
        As in :func:`pairwise_distances`.

    Returns
    -------
    distances : ndarray of shape (m, k)
        Sorted ascending, in the input precision; exact (recomputed directly, not from
        the GEMM form).
    indices : ndarray of shape (m, k), dtype intp
        Row indices into Y; equal distances are ordered by lower index.

    Notes
    -----
    Memory is the (m, k) result plus one tile per thread (cython 256 x 256, numba
    256 x 512), whatever m and n (cuda: plus at most 256 MiB of per-segment candidate
    lists).

    Ties: candidates at equal distances are ordered by lower index, the k-th place
    included. The CPU backends screen euclidean, sqeuclidean and cosine candidates by
    the GEMM form and keep every one within its error bound of the k-th (k + 8 to
    k + 32 list entries), then rank the survivors by their values recomputed in float64
    from the input rows; rows with more candidates than that within the bound get a
    second pass over Y (one more GEMM pass, plus the recomputed values of the candidates
    within the bound). The other metrics (and euclidean and sqeuclidean at 16 features
    or fewer) rank by their direct sums, in float32 for float32 input; the cuda backend
    by its direct sums. "Equal" means equal as computed: cosine distances that are equal
    only in exact arithmetic (parallel vectors of different lengths) can differ in the
    last bit, and their order with them, between backends and builds.

    NaN (possible with check_finite=False, and from device arrays, which are not
    checked): NaN distances come last, by index, as NumPy's sort orders them, on every
    backend.
    """
    code, p = _metric(metric, metric_kwargs)
    k = _v.check_int(k, name="k", minimum=1)
    b, X, Y, same, n_threads, big = _prepare("nearest_neighbors", X, Y, backend, n_threads,
                                             check_finite)
    m, n = X.shape[0], Y.shape[0]
    candidates = n - 1 if same else n
    if k > candidates:
        raise ValueError(
            f"k={k} is larger than the number of candidates ({candidates}"
            + (" when each point is excluded from its own neighbours)" if same else ")")
        )
    # a backend's own limits, where its kernel module declares them (cuda: its lists are
    # local arrays of MAX_K)
    max_k = _backend.optional_entry("nearest_neighbors", b.name, "MAX_K")
    if max_k is not None and k > max_k:
        raise ValueError(f"the {b.name} backend keeps at most k={max_k} neighbours; "
                         f"got k={k}")
    max_n = _backend.optional_entry("nearest_neighbors", b.name, "MAX_CANDIDATES")
    if max_n is not None and n > max_n:
        raise ValueError(f"the {b.name} backend searches at most {max_n} candidates; "
                         f"got {n}")
    device = b.name == "cuda" and _backend.is_device_array(X)
    if not device:
        _v.check_alloc((m, k), X.dtype, what="the distances")
        _v.check_alloc((m, k), np.intp, what="the indices")
    X, Y, e = _pow2_scale(X, Y, same, code, big)
    dist, idx = b.kernel(X, Y, k, code, p, same, n_threads)
    _unscale(dist, code, e)
    return (dist, idx) if return_distance else idx


def euclidean_distance(x1, x2):
    """Euclidean distance between two vectors (the seed function), as a Python float.

    Parameters
    ----------
    x1, x2 : array_like of shape (d,)

    Returns
    -------
    float
        ``sqrt(sum((x1 - x2) ** 2))`` accumulated in float64.
    """
    a = _v.check_array(x1, name="x1", ndim=1)
    b = _v.check_array(x2, name="x2", ndim=1)
    if a.shape != b.shape:
        raise ValueError(f"x1 has {a.shape[0]} elements but x2 has {b.shape[0]}")
    diff = a.astype(np.float64) - b.astype(np.float64)
    return float(math.sqrt(float(np.dot(diff, diff))))


def _warmup(backend):
    for dt in (np.float32, np.float64):
        X = np.arange(24, dtype=dt).reshape(6, 4)
        for metric in ("euclidean", "manhattan", "cosine"):
            pairwise_distances(X, metric=metric, backend=backend)
            nearest_neighbors(X, k=2, metric=metric, backend=backend)
        rbf_kernel(X, backend=backend)


_backend.register_op("pairwise_distances", "distances", warmup=_warmup)
_backend.register_op("rbf_kernel", "distances", kernel="pairwise_distances")
_backend.register_op("nearest_neighbors", "distances")
