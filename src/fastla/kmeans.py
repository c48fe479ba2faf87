"""K-means: fused assignment, Lloyd and Elkan, greedy k-means++, mini-batch steps.

The functions follow scikit-learn's ``KMeans`` semantics (data centred before fitting,
``tol`` relative to the mean feature variance, strict convergence on unchanged labels,
empty clusters moved to the points farthest from their centres, ``n_init`` keeping the
lowest inertia) on fastla's kernels (``fastla._kernels._cy_kmeans``, ``_numba_kmeans``,
``_cuda_kmeans``; the seed's loop and the reference loops in ``_naive``).

Every reduction is laid out from the shapes and the machine's core count (``n_groups``),
never from the threads used, so a fit gives bitwise the same result for a given
``random_state`` on any ``n_threads``.
The estimators :class:`fastla.KMeans` and :class:`fastla.MiniBatchKMeans` (which need
scikit-learn) are built on these functions.
"""

import collections
import numbers

import numpy as np

from . import _backend, _threads
from . import _validation as _v

__all__ = ["kmeans", "kmeans_assign", "kmeans_plusplus", "KMeansResult"]

CHUNK = 256  # rows per assignment block in the kernels
_GROUP_BYTES = 64 << 20  # cap on the per-group centroid-sum buffers of one Lloyd pass
#: Lloyd passes whose centroid sums are made afresh: every _REFRESH-th, from the first.
#: The others move only the rows whose label changed (1-10% of them per pass on the
#: benchmark's 100,000 x 32, k = 100, where it saves 0.25 ms of a 3.7 ms pass); the
#: fresh ones bound the rounding the moves leave in the float64 sums.
_REFRESH = 10
#: float32 X of at least this many bytes gets the half-precision k-means++ screen; a
#: smaller X stays in the caches, where the copy and the conversions cost more than the
#: bytes they save (seedings of 64 features, medians of 6: 20,000 rows, k=64, 28.4
#: against 25.1 ms; 50,000, k=128, 111 against 103 ms; 100,000, k=256, 419 against
#: 446 ms; 200,000, k=256, 949 against 1175 ms)
_HALF_MIN_BYTES = 16 << 20

KMeansResult = collections.namedtuple("KMeansResult", "centers labels inertia n_iter")
KMeansResult.__doc__ = """Result of :func:`kmeans`.

Attributes
----------
centers : ndarray of shape (n_clusters, n_features)
labels : ndarray of shape (n_samples,), int32
inertia : float
    Sum of the (weighted) squared distances of the samples to their centre.
n_iter : int
    Lloyd/Elkan iterations run by the best initialisation.
"""


# --------------------------------------------------------------------------- helpers
def _check_X(X, check_finite, name="X"):
    X = _v.check_array(X, name=name, ndim=2, check_finite=check_finite)
    if X.shape[1] == 0:
        raise ValueError(f"{name} has 0 features ({X.shape}); at least one is needed")
    return X


def _check_weights(sample_weight, n, dtype):
    """scikit-learn's _check_sample_weight plus the checks it leaves out."""
    if sample_weight is None:
        return np.ones(n, dtype=dtype)
    if isinstance(sample_weight, numbers.Number):
        if not np.isfinite(sample_weight):
            raise ValueError("sample_weight contains NaN or infinity")
        w = np.full(n, sample_weight, dtype=dtype)
    else:
        w = _v.check_array(sample_weight, name="sample_weight", ndim=1, dtype=dtype,
                           check_finite=True)
        if w.shape[0] != n:
            raise ValueError(f"sample_weight has {w.shape[0]} elements but X has {n} rows; "
                             "they must match")
    if np.any(w < 0):
        raise ValueError("sample_weight must be non-negative; negative weights found")
    if n and not np.any(w > 0):
        raise ValueError("sample_weight is zero everywhere; at least one sample must count")
    return np.ascontiguousarray(w)


def _tolerance(X, tol):
    """scikit-learn's data-dependent tolerance: ``tol`` times the mean feature variance."""
    return float(np.mean(np.var(X, axis=0))) * tol if tol else 0.0


def n_groups(n, k, d):
    """Groups of rows whose centroid sums are reduced separately: 8 per CPU core of the
    machine (not per thread used, so the result does not depend on ``n_threads``), of
    4+ chunks each, with all the group buffers together within 64 MiB.

    The groups are also the passes' units of parallel work, hence several per core for
    a balanced dynamic schedule; each one costs a (k, d) float64 buffer zeroed, filled
    and merged every pass, hence no more than that. On 2 cores, Lloyd pass at 100,000 x
    32, k = 100, medians of 40: 64 groups 3.91 ms, 16 groups 3.70 ms."""
    per_group = 8 * (k * d + 2 * k + 8)
    most = 8 * _threads.cpu_count()
    return int(max(1, min(most, n // (4 * CHUNK), _GROUP_BYTES // per_group)))


def _resolve(op, backend, arrays):
    return _backend.resolve(op, backend, arrays=arrays)


def _cpu_backend(op, name):
    """The same backend for a host-only part of ``op``, or the automatic CPU choice."""
    if name in _backend.available_backends(op):
        return _backend.resolve(op, name)
    return _backend.resolve(op, "auto")


# ---------------------------------------------------------------------- assignment
def kmeans_assign(X, centers, *, sample_weight=None, backend=None, n_threads=None,
                  check_finite=None):
    """Nearest centre of every sample, in one fused pass (no n x k matrix in memory).

    Parameters
    ----------
    X : array_like of shape (n_samples, n_features)
        Integer and bool inputs are computed in float64; float32 stays float32.
    centers : array_like of shape (n_clusters, n_features)
    sample_weight : array_like of shape (n_samples,), optional
        Multiplies the returned squared distances (so their sum is the inertia).
    backend : {"auto", "cython", "numba", "cuda", "python"}, optional
        None follows ``config_context``/FASTLA_BACKEND, then "auto". Device arrays
        run on "cuda" and give device arrays back.
    n_threads : int, optional
        Threads for the CPU backends (default: all cores).
    check_finite : bool, optional
        Refuse NaN/inf (default: the ``check_finite`` config, True).

    Returns
    -------
    labels : ndarray of shape (n_samples,), int32
        Index of the nearest centre; ties go to the lower index.
    sq_distances : ndarray of shape (n_samples,)
        Squared euclidean distance to that centre, recomputed exactly (float64
        accumulation) in the input dtype, times ``sample_weight`` when given.

    Notes
    -----
    The argmin uses ``||c||^2 - 2 x.c`` from BLAS on blocks of 256 rows, as
    scikit-learn's Lloyd step does, so labels agree with ``KMeans.predict``.
    """
    b = _resolve("kmeans_assign", backend, (X, centers))
    n_threads = _threads.effective_n_threads(n_threads)
    if b.name == "cuda" and _backend.is_device_array(X):
        return _assign_device(b, X, centers, sample_weight, n_threads)
    finite = _v.finite_wanted(check_finite)
    X = _check_X(X, False)  # (finite: checked through the distances below)
    C = _check_X(centers, check_finite, name="centers")
    _v.check_same_columns(X, C, names=("X", "centers"))
    if C.shape[0] == 0:
        raise ValueError("centers is empty; at least one centre is needed")
    dt = _v.result_dtype(X, C)
    X = X.astype(dt, copy=False)
    C = np.ascontiguousarray(C, dtype=dt)
    n = X.shape[0]
    w = None if sample_weight is None else _check_weights(sample_weight, n, dt)
    _v.check_alloc((n,), np.float64, what="the distances")
    labels = np.empty(n, dtype=np.int32)
    sq = np.empty(n, dtype=dt)
    if n:
        b.kernel(X, C, labels, sq, n_threads)
    # each row's exact distance to its (finite) centre carries any NaN or inf of the row:
    # finite distances stand for a scan of X (200,000 x 64 float32: about 2 ms, 5% of the
    # call), and a refused X's labels never leave
    if finite and n:
        _v.assert_finite(X, name="X", summary=sq)
    if w is not None:
        sq *= w
    return labels, sq


def _assign_device(b, X, centers, sample_weight, n_threads):
    from . import _cuda_validation as cv
    from numba import cuda

    X = cv.check_device_array(X, name="X", ndim=2)
    C = cv.check_device_array(centers, name="centers", ndim=2)
    _v.check_same_columns(X, C, names=("X", "centers"))
    if X.dtype != C.dtype:
        raise TypeError(f"device arrays X ({X.dtype}) and centers ({C.dtype}) must share a "
                        "dtype")
    if sample_weight is not None:
        raise ValueError("sample_weight is not supported with device arrays")
    labels = cuda.device_array(X.shape[0], dtype=np.int32)
    sq = cuda.device_array(X.shape[0], dtype=X.dtype)
    if X.shape[0]:
        b.kernel(X, C, labels, sq, n_threads)
    return labels, sq


# ---------------------------------------------------------------------- k-means++
def kmeans_plusplus(X, n_clusters, *, sample_weight=None, random_state=None,
                    n_local_trials=None, backend=None, n_threads=None, check_finite=None):
    """Greedy k-means++ seeding, scikit-learn's algorithm with every step fused.

    Each step draws ``n_local_trials`` candidates with probability proportional to
    ``w * D(x)^2`` and keeps the one that lowers the potential most; all candidates of a
    step are evaluated in one parallel pass over X. The random draws are those of
    :func:`sklearn.cluster.kmeans_plusplus` for the same ``random_state``.

    Parameters
    ----------
    X : array_like of shape (n_samples, n_features)
    n_clusters : int
    sample_weight : array_like of shape (n_samples,), optional
    random_state : int, RandomState instance or None
    n_local_trials : int, optional
        Candidates per step; default ``2 + int(log(n_clusters))``.
    backend, n_threads, check_finite
        As in :func:`kmeans_assign` (CPU backends).

    Returns
    -------
    centers : ndarray of shape (n_clusters, n_features)
    indices : ndarray of shape (n_clusters,)
        Row of X each centre was taken from.

    Raises
    ------
    ValueError
        ``n_clusters`` outside [1, n_samples], or X with fewer distinct points than
        ``n_clusters``.
    """
    return _kmeans_plusplus(X, n_clusters, sample_weight, random_state, n_local_trials,
                            backend, n_threads, check_finite)


def _kmeans_plusplus(X, n_clusters, sample_weight=None, random_state=None,
                     n_local_trials=None, backend=None, n_threads=None, check_finite=None,
                     strict=True):
    """:func:`kmeans_plusplus`; ``strict=False`` seeds past the point where every
    sample coincides with a centre (scikit-learn's behaviour, for seeding on a
    subsample whose duplicates say nothing about the full data)."""
    X = _check_X(X, check_finite)
    k = _check_n_clusters(n_clusters, X.shape[0])
    w = _check_weights(sample_weight, X.shape[0], X.dtype)
    if n_local_trials is not None:
        n_local_trials = _v.check_int(n_local_trials, name="n_local_trials", minimum=1)
    b = _resolve("kmeans_plusplus", backend, (X,))
    rs = _v.check_random_state(random_state)
    return _plusplus(X, k, w, rs, n_local_trials, b, _threads.effective_n_threads(n_threads),
                     strict)


def _check_n_clusters(n_clusters, n):
    k = _v.check_int(n_clusters, name="n_clusters", minimum=1)
    if n < k:
        raise ValueError(f"n_samples={n} should be >= n_clusters={k}.")
    return k


def _plusplus_half(X, b, n_threads):
    """X's half-precision copy for the k-means++ screen (the backend's ``plusplus_half``:
    the same results, half the bytes a step), or None: no such entry, not float32, under
    _HALF_MIN_BYTES, no room for it, or a value without a finite half."""
    half = _backend.optional_entry("kmeans_plusplus", b.name, "plusplus_half")
    if half is None or X.dtype != np.float32 or X.nbytes < _HALF_MIN_BYTES:
        return None
    try:  # (n, d) halves and n float64 error bounds
        _v.check_alloc((X.shape[0], X.shape[1] + 4), np.float16, what="X in half precision")
        return half(X, n_threads)
    except (_v.OutputTooLargeError, MemoryError):
        return None


def _plusplus(X, k, w, rs, n_local_trials, b, n_threads, strict=True):
    n = X.shape[0]
    t = n_local_trials or 2 + int(np.log(k))
    _v.check_alloc((t, n), np.float64, what="the k-means++ trial distances")
    dist = np.empty((t, n))
    closest = np.full(n, np.inf)
    centers = np.empty((k, X.shape[1]), dtype=X.dtype)
    indices = np.full(k, -1, dtype=np.intp)
    first = rs.choice(n, p=w / w.sum())
    # update(row): closest[:] = row and the cumulative sums of w * closest that the
    # candidates are drawn from: over all rows (cum, one sequential pass), or where the
    # backend has the blocked form, over blocks of rows (sums in parallel) with the
    # draw finishing inside one block (the same draws up to the rounding of the sums)
    upd_blocks = _backend.optional_entry("kmeans_plusplus", b.name, "plusplus_update_blocks")
    if upd_blocks is not None:
        sample = _backend.entry("kmeans_plusplus", b.name, "plusplus_sample")
        bsum = np.empty(-(-n // CHUNK))  # the kernels' blocks: CHUNK rows
    else:
        update = _backend.entry("kmeans_plusplus", b.name, "plusplus_update")
        cum = np.empty(n)

    def update_from(row):
        if upd_blocks is None:
            update(row, w, closest, cum)
            return None
        upd_blocks(row, w, closest, bsum, n_threads)
        return np.cumsum(bsum)

    hx = _plusplus_half(X, b, n_threads)
    extra = {"half": hx} if hx is not None else {}

    def trials(cand):
        return b.kernel(X, cand, closest, w, dist, n_threads, **extra)

    pot = trials(np.array([first], dtype=np.intp))[0]
    cumb = update_from(dist[0])
    centers[0] = X[first]
    indices[0] = first
    cand = np.empty(t, dtype=np.intp)
    for c in range(1, k):
        if strict and not pot > 0.0:
            raise ValueError(
                f"X has only {c} distinct points (with non-zero weight), fewer than "
                f"n_clusters={k}; lower n_clusters")
        rand_vals = rs.uniform(size=t) * pot
        if upd_blocks is None:
            cand[:] = np.minimum(np.searchsorted(cum, rand_vals), n - 1)
        else:
            sample(closest, w, cumb, rand_vals, cand)
        pots = trials(cand)
        best = int(np.argmin(pots))
        pot = pots[best]
        cumb = update_from(dist[best])
        centers[c] = X[cand[best]]
        indices[c] = cand[best]
    return centers, indices


# ------------------------------------------------------------------------ k-means
def kmeans(X, n_clusters, *, init="k-means++", n_init="auto", max_iter=300, tol=1e-4,
           algorithm="lloyd", sample_weight=None, random_state=None, verbose=False,
           copy_x=True, backend=None, n_threads=None, check_finite=None):
    """K-means clustering with scikit-learn's ``KMeans.fit`` semantics.

    Parameters
    ----------
    X : array_like of shape (n_samples, n_features)
        float32 stays float32 (centroid sums are accumulated in float64).
    n_clusters : int
        At least 1, at most the number of distinct points.
    init : {"k-means++", "random"}, callable or array_like of shape (n_clusters, n_features)
        As in scikit-learn; a callable is called as ``init(X, n_clusters, random_state)``.
    n_init : "auto" or int
        Initialisations run; the lowest inertia wins. "auto": 1 for "k-means++" and
        arrays, 10 for "random" and callables.
    max_iter : int, default 300
    tol : float, default 1e-4
        Relative to the mean feature variance: stop when the summed squared centre
        shift is at most ``tol * mean(var(X, axis=0))``. 0 runs ``max_iter`` iterations
        unless the labels stop changing.
    algorithm : {"lloyd", "elkan", "auto"}
        "lloyd": the fused GEMM pass (fastest on most data). "elkan": triangle-inequality
        bounds, exact distances, an (n_samples, n_clusters) bound matrix in memory;
        same result as Lloyd. "auto" picks "lloyd".
    sample_weight : array_like of shape (n_samples,), optional
        Non-negative weights (used by the initialisation too).
    random_state : int, RandomState instance or None
    verbose : bool
        Print the inertia of every iteration and why the run stopped.
    copy_x : bool, default True
        False centres X in place (and restores it), saving one copy.
    backend : {"auto", "cython", "numba", "cuda", "python"}, optional
        "cuda" runs the Lloyd passes on the GPU (the seeding on the CPU).
    n_threads : int, optional
    check_finite : bool, optional

    Returns
    -------
    KMeansResult
        ``(centers, labels, inertia, n_iter)``.

    Raises
    ------
    ValueError
        1-D X, NaN/inf, ``n_clusters`` < 1 or above the number of (distinct) samples,
        negative or mis-sized ``sample_weight``, an ``init`` array of the wrong shape.

    Notes
    -----
    Results are deterministic for a given ``random_state`` whatever ``n_threads``:
    every reduction is ordered by the data's shape and the machine's core count (the
    number of accumulation groups), never by the threads used; machines with other
    core counts or instruction sets may differ in the last bits.
    """
    finite = _v.finite_wanted(check_finite)
    X = _check_X(X, False)  # (finite: checked with the column means below)
    n, d = X.shape
    k = _check_n_clusters(n_clusters, n)
    max_iter = _v.check_int(max_iter, name="max_iter", minimum=1)
    tol = _v.check_scalar(tol, name="tol", minimum=0.0)
    algorithm = _v.check_choice(algorithm, name="algorithm", choices=("lloyd", "elkan", "auto"))
    if algorithm == "auto" or k == 1:
        algorithm = "lloyd"
    init_array = None
    if isinstance(init, str):
        _v.check_choice(init, name="init", choices=("k-means++", "random"))
    elif not callable(init):
        init_array = _check_X(init, check_finite, name="init").astype(X.dtype, copy=False)
        if init_array.shape != (k, d):
            raise ValueError(f"init has shape {init_array.shape}; expected ({k}, {d}) "
                             "(n_clusters, n_features)")
    if isinstance(n_init, str):
        _v.check_choice(n_init, name="n_init", choices=("auto",))
        n_init = 1 if (init_array is not None or init == "k-means++") else 10
    n_init = _v.check_int(n_init, name="n_init", minimum=1)
    if init_array is not None:
        n_init = 1
    w = _check_weights(sample_weight, n, X.dtype)
    b = _resolve("kmeans", backend, (X,))
    if algorithm == "elkan" and b.name == "cuda":
        raise _backend.BackendError("algorithm='elkan' has no cuda kernel; use 'lloyd'")
    n_threads = _threads.effective_n_threads(n_threads)
    rs = _v.check_random_state(random_state)

    column_mean = _backend.optional_entry("kmeans", b.name, "column_mean")
    mean = column_mean(X) if column_mean is not None else X.mean(axis=0)
    # the column means stand for a scan of X (100,000 x 32 float32: about 0.5 ms)
    if finite:
        _v.assert_finite(X, name="X", summary=mean)
    tol = _tolerance(X, tol)
    # the backend's centring with, for Lloyd, X's tile-kernel panels (xpk) where it has
    # them: the passes then find the labels without a score block
    center_pack = _backend.optional_entry("kmeans", b.name, "center_pack")
    pack_rows = _backend.optional_entry("kmeans", b.name, "pack_rows")
    lloyd = algorithm == "lloyd"
    xpk = None
    if (copy_x or not X.flags.writeable) and center_pack is not None:
        Xc, xpk = center_pack(X, mean, lloyd, n_threads)
    elif copy_x or not X.flags.writeable:
        Xc = X - mean
    else:  # centre in place (X may be the caller's array) and restore it afterwards
        Xc = X
        Xc -= mean
    if xpk is None and lloyd and pack_rows is not None:
        xpk = pack_rows(Xc, n_threads)
    try:
        best = None
        for run in range(n_init):
            centers0 = _init_centroids(Xc, k, init, init_array, mean, w, rs, b.name,
                                       n_threads)
            if verbose:
                print(f"Initialization complete (run {run + 1} of {n_init})")
            res = _single(algorithm, Xc, w, centers0, max_iter, tol, verbose, b, n_threads,
                          xpk)
            if best is None or (res[1] < best[1] and not _same_clustering(res[0], best[0])):
                best = res
    finally:
        if Xc is X:
            X += mean
    labels, inertia, centers, n_iter = best
    centers = (centers + mean).astype(X.dtype, copy=False)
    if np.count_nonzero(np.bincount(labels, minlength=k)) < k:
        _check_distinct(X, k)
    return KMeansResult(centers, labels, float(inertia), int(n_iter))


def _check_distinct(X, k):
    """Fewer clusters came out than asked for: say why when the data is the cause."""
    distinct = np.unique(X, axis=0).shape[0]
    if distinct < k:
        raise ValueError(f"X has only {distinct} distinct points, fewer than n_clusters={k}; "
                         "lower n_clusters")


def _init_centroids(Xc, k, init, init_array, mean, w, rs, name, n_threads):
    n = Xc.shape[0]
    if init_array is not None:
        return np.ascontiguousarray(init_array - mean, dtype=Xc.dtype)
    if callable(init):
        C = _check_X(init(Xc, k, random_state=rs), True, name="init(X)")
        if C.shape != (k, Xc.shape[1]):
            raise ValueError(f"init callable returned shape {C.shape}; expected "
                             f"({k}, {Xc.shape[1]})")
        return np.ascontiguousarray(C, dtype=Xc.dtype)
    if init == "random":
        p = w / w.sum()
        if np.count_nonzero(p) < k:
            raise ValueError(f"only {np.count_nonzero(p)} samples have non-zero weight, "
                             f"fewer than n_clusters={k}")
        seeds = rs.choice(n, size=k, replace=False, p=p)
        return np.ascontiguousarray(Xc[seeds])
    b = _cpu_backend("kmeans_plusplus", name)
    return _plusplus(Xc, k, w, rs, None, b, n_threads)[0]


def _same_clustering(a, b):
    """scikit-learn's _is_same_clustering: a is b up to a relabelling."""
    pairs = np.unique(a.astype(np.int64) * (int(b.max()) + 1) + b)
    return pairs.size == np.unique(a).size


def _new_centers(X, w, centers, sums, weights, labels):
    """Relocate empty clusters (scikit-learn's rule), then average the sums; ``sums`` and
    ``weights`` are left as they are (the Lloyd update passes carry them on)."""
    sums = sums.copy()
    empty = np.flatnonzero(weights == 0)
    if empty.size:
        weights = weights.copy()
        dist = ((X - centers[labels]) ** 2).sum(axis=1)
        far = np.argpartition(dist, -empty.size)[:-empty.size - 1:-1]
        for new, i in zip(empty, far):  # one step per empty cluster, not per sample
            wi = float(w[i])
            old = labels[i]
            sums[old] -= X[i] * wi
            sums[new] = X[i] * wi
            weights[new] = wi
            weights[old] -= wi
    nz = weights > 0
    sums[nz] /= weights[nz, None]
    return sums.astype(X.dtype, copy=False)


def _single(algorithm, X, w, centers, max_iter, tol, verbose, b, n_threads, xpk=None):
    n, d = X.shape
    k = centers.shape[0]
    kern = _Kernels(b, X, w, n_threads, xpk)
    labels = np.full(n, -1, dtype=np.int32)
    sums = np.empty((k, d))
    weights = np.empty(k)
    counts = np.empty(k)  # (rows of non-zero weight per centre: the Lloyd updates' state)
    groups = n_groups(n, k, d)
    if algorithm == "elkan":
        _v.check_alloc((n, k), np.float64, what="Elkan's lower bounds",
                       hint="use algorithm='lloyd', which needs no (n, k) matrix")
        upper = np.zeros(n)
        lower = np.zeros((n, k))
        chd, dnext = _center_half_distances(centers)
        kern.entry("elkan_init")(X, centers, chd, labels, upper, lower, n_threads)
    strict = False
    for it in range(max_iter):
        # (each pass returns how many labels it changed: no copy of the old ones)
        if algorithm == "elkan":
            changed = kern.entry("elkan_iter")(X, w, centers, sums, weights, chd, dnext,
                                               upper, lower, labels, groups, n_threads)
        else:
            changed = kern.lloyd(centers, sums, weights, counts, labels, groups,
                                 it % _REFRESH != 0)
        new = _new_centers(X, w, centers, sums, weights, labels)
        shift = np.sqrt(((new.astype(np.float64) - centers) ** 2).sum(axis=1))
        if verbose:
            print(f"Iteration {it}, inertia {kern.inertia(centers, labels):.6g}.")
        if algorithm == "elkan":
            upper += shift[labels]
            lower -= shift
            np.maximum(lower, 0.0, out=lower)
            chd, dnext = _center_half_distances(new)
        centers = new
        # scikit-learn's first pass compares with -1s, never equal; here Elkan's first
        # counts against elkan_init's labels
        if changed == 0 and it > 0:
            strict = True
            if verbose:
                print(f"Converged at iteration {it}: strict convergence.")
            break
        total = float((shift ** 2).sum())
        if total <= tol:
            if verbose:
                print(f"Converged at iteration {it}: center shift {total:.6g} within "
                      f"tolerance {tol:.6g}.")
            break
    if not strict:
        kern.assign(centers, labels)
    return labels, kern.inertia(centers, labels), centers, it + 1


def _center_half_distances(centers):
    c = centers.astype(np.float64)
    sq = (c * c).sum(axis=1)
    # one BLAS thread: a multi-threaded OpenBLAS call leaves its idle workers busy-waiting
    # for about 0.1 s, and the Elkan pass that follows would share the cores with them
    # (200,000 x 64, k=256, 20 passes on 2 cores: 3.8 -> 3.05 s); at (k, k, d) one thread
    # is no slower
    with _threads.blas_single_thread():
        g = c @ c.T
    d2 = sq[:, None] + sq[None, :] - 2.0 * g
    chd = 0.5 * np.sqrt(np.maximum(d2, 0.0))
    np.fill_diagonal(chd, 0.0)
    dnext = np.partition(chd, kth=1, axis=0)[1] if c.shape[0] > 1 else np.full(1, np.inf)
    return np.ascontiguousarray(chd), np.ascontiguousarray(dnext)


class _Kernels:
    """The kernel entries of one backend for one fit (the CUDA one keeps X on the GPU)."""

    def __init__(self, b, X, w, n_threads, xpk=None):
        """``xpk``: X's panels for the Lloyd passes and the last labels (``pack_rows``,
        made once per fit by ``kmeans``), or None."""
        self.b, self.X, self.w, self.n_threads = b, X, w, n_threads
        self.device = b.name == "cuda"
        self.xpk = xpk
        if self.device:
            from numba import cuda

            self.dX = cuda.to_device(X)
            self.dw = cuda.to_device(w)
            self.dl = None  # the labels on the device, from the first pass on

    def entry(self, attr):
        return _backend.entry("kmeans", self.b.name, attr)

    def lloyd(self, centers, sums, weights, counts, labels, groups, update):
        """One Lloyd pass into labels, sums, weights and counts (``update``: moving only
        the rows whose label changed, see lloyd_iter); returns how many labels changed.
        On the GPU the totals are made afresh every pass."""
        if self.device:
            from numba import cuda

            if self.dl is None:
                self.dl = cuda.to_device(labels)
            ds = cuda.device_array(sums.shape)
            dwt = cuda.device_array(weights.shape)
            changed = self.b.kernel(self.dX, self.dw, cuda.to_device(centers), ds, dwt,
                                    self.dl, groups, self.n_threads)
            self.dl.copy_to_host(labels)
            ds.copy_to_host(sums)
            dwt.copy_to_host(weights)
            return changed
        extra = {"xpk": self.xpk} if self.xpk is not None else {}
        return self.b.kernel(self.X, self.w, centers, sums, weights, labels, groups,
                             self.n_threads, counts=counts, update=update, **extra)

    def assign(self, centers, labels):
        if self.device:
            from numba import cuda

            dl = cuda.device_array(labels.shape[0], dtype=np.int32)
            dsq = cuda.device_array(labels.shape[0], dtype=self.X.dtype)
            self.entry("kmeans_assign")(self.dX, cuda.to_device(centers), dl, dsq,
                                        self.n_threads)
            dl.copy_to_host(labels)
        elif self.xpk is not None:
            self.entry("assign_packed")(self.X, centers, labels, self.xpk, self.n_threads)
        else:
            sq = np.empty(labels.shape[0], dtype=self.X.dtype)
            self.entry("kmeans_assign")(self.X, centers, labels, sq, self.n_threads)

    def inertia(self, centers, labels):
        if self.device:
            from numba import cuda

            return float(self.entry("inertia")(self.dX, self.dw, cuda.to_device(centers),
                                               cuda.to_device(labels), self.n_threads))
        return float(self.entry("inertia")(self.X, self.w, centers, labels, self.n_threads))


# ---------------------------------------------------------------------- mini-batch
def _minibatch_step(X, sample_weight, centers, centers_new, weight_sums, *, backend=None,
                    n_threads=None):
    """One scikit-learn mini-batch step without the random reassignment.

    Assigns the batch ``X`` (validated, C-contiguous) to ``centers``, writes the moved
    centres into ``centers_new`` and updates ``weight_sums`` in place. Returns
    ``(labels, inertia)``: the batch's labels and its weighted inertia against the old
    centres.
    """
    b = _resolve("minibatch_kmeans", backend, (X,))
    n_threads = _threads.effective_n_threads(n_threads)
    n = X.shape[0]
    labels = np.empty(n, dtype=np.int32)
    sq = np.empty(n, dtype=X.dtype)
    _backend.entry("minibatch_kmeans", b.name, "kmeans_assign")(X, centers, labels, sq,
                                                                n_threads)
    inertia = float(np.dot(sq.astype(np.float64), sample_weight))
    b.kernel(X, sample_weight, centers, centers_new, weight_sums, labels, n_threads)
    return labels, inertia


# ---------------------------------------------------------------------- registry
def _warmup(backend):
    rng = np.random.default_rng(0)
    for dt in (np.float32, np.float64):
        X = rng.random((40, 3)).astype(dt)
        kmeans_assign(X, X[:4], backend=backend)
        if backend in _backend.available_backends("kmeans_plusplus"):
            kmeans_plusplus(X, 4, random_state=0, backend=backend)
        for algorithm in ("lloyd", "elkan") if backend != "cuda" else ("lloyd",):
            kmeans(X, 4, init=X[:4], max_iter=2, algorithm=algorithm, backend=backend)
        if backend in _backend.available_backends("minibatch_kmeans"):
            w = np.ones(40, dtype=dt)
            _minibatch_step(X, w, X[:4].copy(), np.empty((4, 3), dt), np.zeros(4, dt),
                            backend=backend)


_CPU = ("cython", "numba", "python")
_backend.register_op("kmeans_assign", "kmeans", warmup=_warmup)
_backend.register_op("kmeans_plusplus", "kmeans", backends=_CPU, kernel="plusplus_trials")
_backend.register_op("kmeans", "kmeans", kernel="lloyd_iter")
_backend.register_op("minibatch_kmeans", "kmeans", backends=_CPU, kernel="minibatch_update")
