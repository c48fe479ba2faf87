"""Distance engine: every backend against SciPy / the naive loop, precision, bad input."""

import numpy as np
import pytest
from scipy.spatial.distance import cdist

import fastla
from fastla import _backend
from fastla.distances import METRIC_CODES
from conftest import built_variants, op_backend

SCIPY = {"euclidean": "euclidean", "sqeuclidean": "sqeuclidean", "cosine": "cosine",
         "manhattan": "cityblock", "chebyshev": "chebyshev", "minkowski": "minkowski"}


def _sizes(backend):
    # the python and cuda-simulator backends are slow: keep their inputs tiny
    return (9, 7) if backend in ("python", "cuda") else (67, 45)


def _tol(dtype):
    return dict(rtol=2e-5, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("metric", sorted(SCIPY))
@pytest.mark.parametrize("d", [3, 37])
def test_pairwise_matches_cdist(backend, dtype, metric, d, rng):
    op_backend("pairwise_distances", backend)
    m, n = _sizes(backend)
    X = rng.standard_normal((m, d)).astype(dtype)
    Y = rng.standard_normal((n, d)).astype(dtype)
    kw = {"p": 3.0} if metric == "minkowski" else {}
    D = fastla.pairwise_distances(X, Y, metric=metric, backend=backend, **kw)
    assert D.dtype == dtype and D.shape == (m, n)
    ref = cdist(X.astype(np.float64), Y.astype(np.float64), SCIPY[metric], **kw)
    np.testing.assert_allclose(D, ref, **_tol(dtype))


def test_pairwise_self_has_exact_zero_diagonal(backend, dtype, rng):
    op_backend("pairwise_distances", backend)
    m, _ = _sizes(backend)
    X = (rng.standard_normal((m, 40)) * 100 + 1000).astype(dtype)
    for metric in ("euclidean", "sqeuclidean", "cosine", "manhattan"):
        D = fastla.pairwise_distances(X, metric=metric, backend=backend)
        assert np.all(np.diag(D) == 0)
        assert np.all(D >= 0) and np.all(np.isfinite(D))


def test_noncontiguous_and_mixed_inputs(backend, rng):
    op_backend("pairwise_distances", backend)
    m, n = _sizes(backend)
    X = rng.standard_normal((2 * m, 30))[::2, ::3]          # strided view
    Y = np.asfortranarray(rng.standard_normal((n, 10))).astype(np.float32)
    D = fastla.pairwise_distances(X, Y, backend=backend)
    assert D.dtype == np.float64                          # float64 with float32 -> float64
    np.testing.assert_allclose(D, cdist(X, Y.astype(np.float64)), rtol=1e-6)
    Xi = rng.integers(0, 5, (m, 4))
    Di = fastla.pairwise_distances(Xi, metric="manhattan", backend=backend)
    assert Di.dtype == np.float64
    np.testing.assert_allclose(Di, cdist(Xi, Xi, "cityblock"))


def test_float32_euclidean_no_cancellation(rng):
    """Clustered data far from the origin with tiny distances: the GEMM trick alone would
    lose everything; fastla must stay within 1e-5 relative (1e-6 absolute near zero)."""
    for backend in fastla.available_backends("pairwise_distances"):
        if backend in ("python", "cuda"):
            continue
        centers = rng.standard_normal((4, 64)) * 50 + 300
        X = np.repeat(centers, 60, axis=0) + rng.standard_normal((240, 64)) * 1e-3
        X32 = X.astype(np.float32)
        ref = cdist(X32.astype(np.float64), X32.astype(np.float64))
        for Y in (None, X32[::-1].copy()):
            D = fastla.pairwise_distances(X32, Y, backend=backend)
            r = ref if Y is None else ref[:, ::-1]
            err = np.abs(D.astype(np.float64) - r)
            assert np.all((err <= 1e-5 * r) | (err <= 1e-6)), (backend, err.max())
            assert np.all(D >= 0) and not np.isnan(D).any()


def test_rbf_kernel_matches_sklearn(backend, dtype, rng):
    op_backend("rbf_kernel", backend)
    from sklearn.metrics.pairwise import rbf_kernel as sk_rbf

    m, n = _sizes(backend)
    X = rng.standard_normal((m, 20)).astype(dtype)
    Y = rng.standard_normal((n, 20)).astype(dtype)
    K = fastla.rbf_kernel(X, Y, backend=backend)
    assert K.dtype == dtype
    np.testing.assert_allclose(K, sk_rbf(X.astype(np.float64), Y.astype(np.float64)),
                               **_tol(dtype))
    K2 = fastla.rbf_kernel(X, gamma=0.3, backend=backend)
    assert np.all(np.diag(K2) == 1)
    np.testing.assert_allclose(K2, sk_rbf(X.astype(np.float64), gamma=0.3), **_tol(dtype))


def _ref_knn(X, Y, k, metric, same, **kw):
    D = cdist(X.astype(np.float64), Y.astype(np.float64), SCIPY[metric], **kw)
    idx = np.argsort(D, axis=1, kind="stable")  # stable: ties to the lower index, NaN last
    if same:  # each point left out (an inf diagonal would sort before NaN)
        idx = idx[idx != np.arange(len(D))[:, None]].reshape(len(D), -1)
    idx = idx[:, :k]
    return np.take_along_axis(D, idx, 1), idx


@pytest.mark.parametrize("metric", sorted(SCIPY))
def test_nearest_neighbors_matches_bruteforce(backend, dtype, metric, rng):
    op_backend("nearest_neighbors", backend)
    m, n = _sizes(backend)
    n = 3 * n
    X = rng.standard_normal((m, 24)).astype(dtype)
    Y = rng.standard_normal((n, 24)).astype(dtype)
    kw = {"p": 1.5} if metric == "minkowski" else {}
    k = 5
    dist, idx = fastla.nearest_neighbors(X, Y, k=k, metric=metric, backend=backend, **kw)
    rd, ri = _ref_knn(X, Y, k, metric, False, **kw)
    assert dist.dtype == dtype and idx.shape == (m, k)
    np.testing.assert_array_equal(idx, ri)
    np.testing.assert_allclose(dist, rd, **_tol(dtype))
    # Y=None excludes each point itself
    i2 = fastla.nearest_neighbors(X, k=3, metric=metric, backend=backend,
                                  return_distance=False, **kw)
    np.testing.assert_array_equal(i2, _ref_knn(X, X, 3, metric, True, **kw)[1])


def test_nearest_neighbors_ties_and_duplicates(backend):
    op_backend("nearest_neighbors", backend)
    X = np.array([[0.0, 0.0]])
    Y = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    for metric in ("euclidean", "manhattan", "chebyshev"):
        d, i = fastla.nearest_neighbors(X, Y, k=5, metric=metric, backend=backend)
        np.testing.assert_array_equal(i[0], [3, 4, 0, 1, 2])
        np.testing.assert_allclose(d[0], [0, 0, 1, 1, 1])


def test_nearest_neighbors_spans_many_tiles(rng):
    """More rows and candidates than one tile, odd sizes (CPU backends)."""
    X = rng.standard_normal((301, 33)).astype(np.float32)
    Y = rng.standard_normal((1029, 33)).astype(np.float32)
    for backend in ("cython", "numba"):
        if backend not in fastla.available_backends("nearest_neighbors"):
            continue
        for metric in ("euclidean", "cosine", "manhattan"):
            d, i = fastla.nearest_neighbors(X, Y, k=7, metric=metric, backend=backend)
            rd, ri = _ref_knn(X, Y, 7, metric, False)
            np.testing.assert_array_equal(i, ri)
            np.testing.assert_allclose(d, rd, rtol=2e-5, atol=2e-6)
        # Y against itself (1029 rows: numba's 512-row column tiles, full and partial):
        # each point left out, across tiles and selection-key chunks
        d, i = fastla.nearest_neighbors(Y, k=7, backend=backend)
        rd, ri = _ref_knn(Y, Y, 7, "euclidean", True)
        np.testing.assert_array_equal(i, ri)
        np.testing.assert_allclose(d, rd, rtol=2e-5, atol=2e-6)
        # small integers: distinct points at exactly equal distances everywhere, which
        # the GEMM form's rounding tells apart; the screening window keeps them all, so
        # the k-th place goes to the lower index (126 of 301 rows went wrong without it)
        Xi = rng.integers(0, 3, (301, 33)).astype(np.float32)
        for metric, k in (("euclidean", 7), ("sqeuclidean", 7), ("manhattan", 7),
                          ("euclidean", 20), ("euclidean", 40)):
            d, i = fastla.nearest_neighbors(Xi, k=k, metric=metric, backend=backend)
            rd, ri = _ref_knn(Xi, Xi, k, metric, True)
            np.testing.assert_array_equal(i, ri)
            np.testing.assert_allclose(d, rd, rtol=2e-5, atol=2e-6)
        # many exact duplicates (30 copies of 20 points, d > 16): more candidates at the
        # k-th distance than the window's extra entries; identical rows have identical
        # keys, so the screening still orders them by index
        Xd = np.repeat(rng.integers(0, 4, (20, 24)).astype(np.float32), 30, axis=0)
        Xd = Xd[rng.permutation(600)]
        for B in (None, Xd[::-1].copy()):
            d, i = fastla.nearest_neighbors(Xd, B, k=3, backend=backend)
            rd, ri = _ref_knn(Xd, Xd if B is None else B, 3, "euclidean", B is None)
            np.testing.assert_array_equal(i, ri)
            np.testing.assert_allclose(d, rd, rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_knn_ties_on_every_cython_path(monkeypatch, dtype):
    """The kNN screening window on every built variant, with the own tile GEMM and with
    BLAS tiles: small-integer points against themselves and against others, ties at the
    k-th place to the lower index."""
    rng = np.random.default_rng(9)
    X = rng.integers(0, 3, (301, 33)).astype(dtype)
    Y = rng.integers(0, 3, (530, 33)).astype(dtype)
    Y[100] *= 1000  # one far outlier: its error bound must not widen the other rows'
    for mod in built_variants("_cy_distances"):
        for own in (True, False):
            monkeypatch.setattr(mod, "OWN_GEMM", own)
            for B, same in ((X, True), (Y, False)):
                d, i = mod.nearest_neighbors(X, B, 7, 1, 2.0, same, 2)
                rd, ri = _ref_knn(X, B, 7, "euclidean", same)
                np.testing.assert_array_equal(i, ri, err_msg=f"{mod.__name__} own={own}")
                np.testing.assert_allclose(d, rd, rtol=2e-5, atol=2e-6)


def _two_hot(d, rng):
    """Every vector with two ones among d features, shuffled: from one of them, 2 (d - 2)
    others lie at exactly the same distance (a squared distance of 2)."""
    pairs = [(a, b) for a in range(d) for b in range(a + 1, d)]
    Y = np.zeros((len(pairs), d))
    for r, (a, b) in enumerate(pairs):
        Y[r, a] = Y[r, b] = 1.0
    return Y[rng.permutation(len(Y))]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_knn_window_overflow_takes_the_exact_pass(monkeypatch, dtype):
    """More candidates at exactly the k-th distance than the screening list's extra
    entries, told apart by the GEMM form's rounding (float32 centring, an offset): the
    rows whose window overflowed take the second, exact pass, so the k-th place still
    goes to the lower index (every float32 row went wrong without it), on every Cython
    variant and GEMM path and on numba."""
    rng = np.random.default_rng(3)
    Y = _two_hot(33, rng)
    # queries of both kinds in one tile: two-hot rows (their windows overflow) among
    # random rows (theirs do not), so the second pass takes some rows of a tile
    mixed = np.concatenate([Y[:60], 3 * rng.standard_normal((60, 33))])[rng.permutation(120)]
    numba_ok = "numba" in fastla.available_backends("nearest_neighbors")
    for off in (0.0, 0.37, 1000.0):
        Yo = (Y + off).astype(dtype)
        for A, same in ((Yo[:40].copy(), False), ((mixed + off).astype(dtype), False),
                        (Yo, True)):
            for k in (7, 20):
                rd, ri = _ref_knn(A, Yo, k, "euclidean", same)
                got = []
                for mod in built_variants("_cy_distances"):
                    for own in (True, False):
                        monkeypatch.setattr(mod, "OWN_GEMM", own)
                        got.append((f"{mod.__name__} own={own}",
                                    mod.nearest_neighbors(A, A if same else Yo, k, 1, 2.0,
                                                          same, 2)))
                if numba_ok:
                    got.append(("numba", fastla.nearest_neighbors(
                        A, None if same else Yo, k=k, backend="numba")))
                for name, (d, i) in got:
                    msg = f"{name} offset={off} k={k} same={same}"
                    np.testing.assert_array_equal(i, ri, err_msg=msg)
                    np.testing.assert_allclose(d, rd, rtol=2e-5, atol=2e-6, err_msg=msg)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_knn_cosine_ties_go_to_the_lower_index(dtype):
    """Cosine distances that are exactly equal (features on a 2^-10 grid: exact float64
    sums; each Y row permuted within the blocks where the query is constant), which the
    float32 GEMM's rounding tells apart: 20 ties per group, more than the screening
    list's extra entries for k = 5, so the window and its second pass both run there;
    k = 25 has room for them (CPU backends)."""
    rng = np.random.default_rng(5)
    d = 32
    base = rng.integers(1, 4096, (30, d)) / 1024.0
    Y = np.concatenate([np.concatenate([b[rng.permutation(16)], b[16 + rng.permutation(16)]])
                        [None] for b in base for _ in range(20)])
    Y = Y[rng.permutation(len(Y))].astype(dtype)
    X = np.repeat(rng.integers(1, 4096, (25, 2)) / 1024.0, 16, axis=1).astype(dtype)
    for backend in ("cython", "numba"):
        if backend not in fastla.available_backends("nearest_neighbors"):
            continue
        for k in (5, 25):
            d_, i = fastla.nearest_neighbors(X, Y, k=k, metric="cosine", backend=backend)
            rd, ri = _ref_knn(X, Y, k, "cosine", False)
            np.testing.assert_array_equal(i, ri, err_msg=f"{backend} k={k}")
            np.testing.assert_allclose(d_, rd, rtol=1e-6, atol=1e-7)


def test_nearest_neighbors_k_near_the_candidate_count(rng):
    """k close to the number of candidates: the screening lists' extra entries are capped
    at the candidates there are (every candidate kept), for X against Y and against
    itself, with ties on small integers (CPU backends, GEMM and direct metrics)."""
    X = rng.integers(0, 3, (60, 20)).astype(np.float32)
    Y = rng.integers(0, 3, (50, 20)).astype(np.float32)
    for backend in ("cython", "numba"):
        if backend not in fastla.available_backends("nearest_neighbors"):
            continue
        for metric in ("euclidean", "sqeuclidean", "manhattan"):
            for B, k in ((Y, 50), (Y, 45), (None, 59), (None, 52)):
                d, i = fastla.nearest_neighbors(X, B, k=k, metric=metric, backend=backend)
                rd, ri = _ref_knn(X, X if B is None else B, k, metric, B is None)
                np.testing.assert_array_equal(i, ri)
                np.testing.assert_allclose(d, rd, rtol=2e-5, atol=2e-6)


def test_direct_metrics_span_many_blocks(rng):
    """The direct loops (manhattan, chebyshev, minkowski, and euclidean at d <= 16) on
    more rows than one Y block (numba's are 256 rows, cython's 16), partial blocks, X
    against Y and against itself (exact zeros on the diagonal), and kNN over them (CPU
    backends)."""
    X = rng.standard_normal((301, 9))
    Y = rng.standard_normal((530, 9))
    for backend in ("cython", "numba"):
        if backend not in fastla.available_backends("pairwise_distances"):
            continue
        for metric, kw in (("manhattan", {}), ("chebyshev", {}), ("minkowski", {"p": 3.0}),
                           ("euclidean", {}), ("sqeuclidean", {})):
            D = fastla.pairwise_distances(X, Y, metric=metric, backend=backend, **kw)
            np.testing.assert_allclose(D, cdist(X, Y, SCIPY[metric], **kw), rtol=1e-12)
            S = fastla.pairwise_distances(Y, metric=metric, backend=backend, **kw)
            np.testing.assert_allclose(S, cdist(Y, Y, SCIPY[metric], **kw), rtol=1e-12,
                                       atol=1e-12)
            assert np.all(np.diag(S) == 0)
            d, i = fastla.nearest_neighbors(X, Y, k=5, metric=metric, backend=backend, **kw)
            rd, ri = _ref_knn(X, Y, 5, metric, False, **kw)
            np.testing.assert_array_equal(i, ri)
            np.testing.assert_allclose(d, rd, rtol=1e-12)


def test_results_equal_across_thread_counts(rng):
    X = rng.standard_normal((530, 40))
    for backend in ("cython", "numba"):
        if backend not in fastla.available_backends("pairwise_distances"):
            continue
        for metric in ("euclidean", "manhattan"):
            a = fastla.pairwise_distances(X, metric=metric, backend=backend, n_threads=1)
            b = fastla.pairwise_distances(X, metric=metric, backend=backend, n_threads=2)
            np.testing.assert_array_equal(a, b)
        # 257 rows: bands that a thread-count-dependent height would end in a single row
        for f in (fastla.pairwise_distances, fastla.rbf_kernel):
            a = f(X[:257], X[:300], backend=backend, n_threads=1)
            np.testing.assert_array_equal(a, f(X[:257], X[:300], backend=backend, n_threads=2))
        i1 = fastla.nearest_neighbors(X, k=4, backend=backend, n_threads=1)[1]
        i2 = fastla.nearest_neighbors(X, k=4, backend=backend, n_threads=2)[1]
        np.testing.assert_array_equal(i1, i2)


def test_out_parameter(rng):
    X = rng.standard_normal((20, 5))
    out = np.empty((20, 20))
    res = fastla.pairwise_distances(X, out=out)
    assert res is out
    np.testing.assert_allclose(out, cdist(X, X), atol=1e-12)
    with pytest.raises(ValueError, match="dtype"):
        fastla.pairwise_distances(X, out=np.empty((20, 20), np.float32))


def test_euclidean_distance_seed_function(rng):
    from fastla._kernels import _naive

    a, b = rng.standard_normal(17), rng.standard_normal(17)
    assert fastla.euclidean_distance(a, b) == pytest.approx(_naive.euclidean_distance(a, b))
    assert fastla.euclidean_distance([0, 0], [3, 4]) == 5.0
    with pytest.raises(ValueError, match="elements"):
        fastla.euclidean_distance([1, 2], [1, 2, 3])


def test_empty_inputs(backend):
    op_backend("pairwise_distances", backend)
    assert fastla.pairwise_distances(np.empty((0, 3)), np.ones((4, 3)),
                                     backend=backend).shape == (0, 4)
    assert fastla.pairwise_distances(np.ones((2, 3)), np.empty((0, 3)),
                                     backend=backend).shape == (2, 0)
    d, i = fastla.nearest_neighbors(np.empty((0, 3)), np.ones((4, 3)), k=2, backend=backend)
    assert d.shape == (0, 2) and i.shape == (0, 2)


def test_zero_features():
    D = fastla.pairwise_distances(np.empty((3, 0)), np.empty((2, 0)))
    assert D.shape == (3, 2) and np.all(D == 0)


@pytest.mark.parametrize("d", [9, 40])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_with_check_finite_false_stays_in_its_rows(dtype, d):
    """With check_finite=False a NaN reaches the kernels: it gives NaN exactly where
    cdist gives NaN (it was lost to the zero clamps, 0.0, and float32's centring spread
    one NaN row into every row), and kNN orders NaN distances as NumPy's sort does, last
    and by index (an out-of-range index was returned before).
    CPU backends and the naive reference (whose Python sort had put NaN anywhere);
    chebyshev is left out (cdist drops a NaN there, by its max loop)."""
    rng = np.random.default_rng(4)
    X = rng.random((6, d)).astype(dtype)
    Y = rng.random((9, d)).astype(dtype)
    X[1, 3] = np.nan
    Y[2, 0] = np.nan
    for backend in ("cython", "numba", "python"):
        if backend not in fastla.available_backends("pairwise_distances"):
            continue
        for metric in ("euclidean", "sqeuclidean", "cosine", "manhattan", "minkowski"):
            D = fastla.pairwise_distances(X, Y, metric=metric, backend=backend,
                                          check_finite=False)
            R = cdist(X.astype(np.float64), Y.astype(np.float64), SCIPY[metric])
            np.testing.assert_array_equal(np.isnan(D), np.isnan(R), err_msg=metric)
            np.testing.assert_allclose(D, R, **_tol(dtype), err_msg=metric)
        K = fastla.rbf_kernel(X, Y, backend=backend, check_finite=False)
        np.testing.assert_array_equal(np.isnan(K), np.isnan(R))
        for metric in ("euclidean", "cosine", "manhattan"):
            for B, k in ((Y, 9), (Y, 3), (None, 5)):
                got = fastla.nearest_neighbors(X, B, k=k, metric=metric, backend=backend,
                                               check_finite=False)
                rd, ri = _ref_knn(X, X if B is None else B, k, metric, B is None)
                np.testing.assert_array_equal(got[1], ri, err_msg=f"{metric} {k}")
                np.testing.assert_allclose(got[0], rd, **_tol(dtype))


@pytest.mark.parametrize("dtype,scale", [(np.float32, 1e-22), (np.float32, 3e-41),
                                         (np.float64, 1e-170)])
def test_tiny_magnitudes_keep_their_accuracy(dtype, scale):
    """Finite data far below 1: the GEMM form's products would underflow into
    subnormals (float32 1e-22: distances 1.4% off, true neighbours missed); the data
    is scaled up by a power of two first, exactly. Values agree with cdist to 1e-5
    (squared distances below the dtype's range flush as cdist's cast does), kNN finds
    the true neighbours with their distances, for X against Y and against itself, the
    RBF kernel with a gamma on the data's scale, and the inputs are left as they were
    (CPU backends)."""
    rng = np.random.default_rng(6)
    X = (rng.standard_normal((40, 33)) * scale).astype(dtype)
    Y = (rng.standard_normal((300, 33)) * scale).astype(dtype)
    X0, Y0 = X.copy(), Y.copy()
    # the reference on data of order 1 (cdist itself underflows at float64's bottom),
    # scaled back in float64 and cast to the dtype
    X1, Y1 = X.astype(np.float64) / scale, Y.astype(np.float64) / scale
    for backend in ("cython", "numba"):
        if backend not in fastla.available_backends("pairwise_distances"):
            continue
        for metric, power in (("euclidean", 1), ("sqeuclidean", 2), ("cosine", 0)):
            D = fastla.pairwise_distances(X, Y, metric=metric, backend=backend)
            R = cdist(X1, Y1, SCIPY[metric])
            with np.errstate(under="ignore"):
                for _ in range(power):
                    R = R * scale
                R = R.astype(dtype)
            if metric != "sqeuclidean" or dtype == np.float32 and scale > 1e-30:
                assert np.all(R > 0), "the reference must not flush to zero here"
            np.testing.assert_allclose(D, R, rtol=1e-5, atol=0, err_msg=metric)
            for B, same in ((Y, False), (None, True)):
                d_, i = fastla.nearest_neighbors(X, B, k=5, metric=metric, backend=backend)
                rd, ri = _ref_knn(X1, X1 if same else Y1, 5, metric, same)
                np.testing.assert_array_equal(i, ri, err_msg=metric)
                with np.errstate(under="ignore"):
                    for _ in range(power):
                        rd = rd * scale
                np.testing.assert_allclose(d_, rd.astype(dtype), rtol=1e-5, atol=0,
                                           err_msg=metric)
        if dtype == np.float32:
            g = 1.0 / (33 * scale * scale)  # gamma on the data's scale: values of order 1
            K = fastla.rbf_kernel(X, Y, gamma=g, backend=backend)
            np.testing.assert_allclose(K, np.exp(-cdist(X1, Y1, "sqeuclidean") / 33),
                                       rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(Y, Y0)


def test_rbf_float32_gamma_beyond_float32():
    """A float32 rbf_kernel whose gamma exceeds FLT_MAX (it would be inf as a float32;
    Cython clamped it to FLT_MAX and gave exp(-3.4) for exp(-10)) runs in float64 and
    rounds once; the result stays float32 (CPU backends)."""
    X = np.zeros((3, 20), np.float32)
    X[:, 0] = 1
    X[0, 1] = np.float32(1e-19)
    X[2, 2] = np.float32(3e-19)
    X64 = X.astype(np.float64)
    for backend in ("cython", "numba", "python"):
        if backend not in fastla.available_backends("rbf_kernel"):
            continue
        for g in (1e38, 1e39):
            K = fastla.rbf_kernel(X, gamma=g, backend=backend)
            assert K.dtype == np.float32
            np.testing.assert_allclose(K, np.exp(-g * cdist(X64, X64, "sqeuclidean")),
                                       rtol=1e-5, atol=1e-30, err_msg=f"{backend} {g}")


def test_too_large_magnitudes_are_refused():
    """Data whose squared sums would overflow the dtype (float32 of 1e20: inf and NaN
    before) is refused with a clear error, for the metrics that multiply values; the
    others take it, and so does data one power of two below the limit."""
    X = np.ones((3, 64), np.float32)
    X[1, 5] = 1e20
    for f in (lambda: fastla.pairwise_distances(X),
              lambda: fastla.pairwise_distances(X, metric="cosine"),
              lambda: fastla.rbf_kernel(X),
              lambda: fastla.nearest_neighbors(X, k=1)):
        with pytest.raises(ValueError, match="overflow.*float64"):
            f()
    assert np.isfinite(fastla.pairwise_distances(X, metric="manhattan")).all()
    X[1, 5] = 2.0 ** 58  # within the limit for 64 features (2^59)
    D = fastla.pairwise_distances(X)
    np.testing.assert_allclose(D, cdist(X.astype(np.float64), X.astype(np.float64)),
                               rtol=1e-5)
    with pytest.raises(ValueError, match="overflow.*scale X and Y down"):
        fastla.pairwise_distances(np.full((2, 4), 1e300))


def test_bad_input():
    X = np.ones((4, 3))
    with pytest.raises(ValueError, match="3 features but Y has 2"):
        fastla.pairwise_distances(X, np.ones((4, 2)))
    with pytest.raises(ValueError, match="2-D"):
        fastla.pairwise_distances(np.ones(3))
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fastla.pairwise_distances(bad)
    with pytest.raises(ValueError, match="NaN"):
        fastla.nearest_neighbors(X, bad)
    assert np.isnan(fastla.pairwise_distances(bad, check_finite=False, backend="python")
                    ).any()
    with pytest.raises(ValueError, match="metric"):
        fastla.pairwise_distances(X, metric="hamming")
    with pytest.raises(TypeError, match="takes no argument"):
        fastla.pairwise_distances(X, metric="euclidean", p=3)
    with pytest.raises(ValueError, match="p must be > 0"):
        fastla.pairwise_distances(X, metric="minkowski", p=0)
    with pytest.raises(ValueError, match="larger than the number of candidates"):
        fastla.nearest_neighbors(X, k=4)
    with pytest.raises(ValueError, match="larger than"):
        fastla.nearest_neighbors(X, np.ones((2, 3)), k=3)
    with pytest.raises(ValueError, match=">= 1"):
        fastla.nearest_neighbors(X, k=0)
    with pytest.raises(fastla.OutputTooLargeError, match="nearest_neighbors"):
        with fastla.config_context(max_memory_bytes=1000):
            fastla.pairwise_distances(np.ones((100, 2)))
    with pytest.raises(ValueError, match="gamma must be >= 0"):  # as scikit-learn
        fastla.rbf_kernel(X, gamma=-0.5)


def test_minkowski_special_p_values(rng):
    X = rng.standard_normal((10, 4))
    for p, name in ((1, "cityblock"), (2, "euclidean"), (np.inf, "chebyshev")):
        np.testing.assert_allclose(fastla.pairwise_distances(X, metric="minkowski", p=p),
                                   cdist(X, X, name), atol=1e-12)


def test_simd_variants_agree(rng, monkeypatch):
    """Each built ISA variant of the Cython module gives the same distances."""
    X = rng.standard_normal((70, 19))
    ref = cdist(X, X, "cityblock")
    for mod in built_variants("_cy_distances"):
        out = np.empty((70, 70))
        mod.pairwise_distances(X, X, out, 3, 2.0, 0.0, True, 0.0, 2)
        np.testing.assert_allclose(out, ref, atol=1e-12)


def _cuda_or_skip():
    if "cuda" not in fastla.available_backends("pairwise_distances"):
        pytest.skip("cuda backend not available here")
    from numba import cuda

    return cuda


@pytest.mark.cuda
def test_cuda_device_arrays_in_and_out(rng):
    """Device arrays go in and come out without host round trips."""
    cuda = _cuda_or_skip()

    X = rng.standard_normal((6, 5)).astype(np.float32)
    dX = cuda.to_device(X)
    D = fastla.pairwise_distances(dX)               # auto -> cuda for device arrays
    assert hasattr(D, "copy_to_host")
    np.testing.assert_allclose(D.copy_to_host(), cdist(X, X), rtol=1e-5, atol=1e-5)
    d, i = fastla.nearest_neighbors(dX, k=2)
    np.testing.assert_array_equal(i.copy_to_host(), _ref_knn(X, X, 2, "euclidean", True)[1])


@pytest.mark.cuda
def test_cuda_strided_device_views_and_limits(dtype, rng):
    """Non-contiguous device views (row steps, F order) read through their strides; the
    kNN limit of the cuda kernel is refused by the public layer with a clear error."""
    cuda = _cuda_or_skip()
    A = rng.standard_normal((22, 7)).astype(dtype)
    B = rng.standard_normal((9, 7)).astype(dtype)
    dA = cuda.to_device(A)[::2]                      # every other row
    dB = cuda.to_device(np.asfortranarray(B))        # column-major
    for metric in ("euclidean", "manhattan", "cosine"):
        D = fastla.pairwise_distances(dA, dB, metric=metric).copy_to_host()
        np.testing.assert_allclose(D, cdist(A[::2].astype(np.float64), B.astype(np.float64),
                                            SCIPY[metric]), **_tol(dtype))
    _, idx = fastla.nearest_neighbors(dA, dB, k=3)
    np.testing.assert_array_equal(idx.copy_to_host(), _ref_knn(A[::2], B, 3, "euclidean",
                                                               False)[1])
    from fastla._kernels._cuda_distances import MAX_K

    big = rng.standard_normal((MAX_K + 2, 3)).astype(dtype)
    with pytest.raises(ValueError, match=f"at most k={MAX_K}"):
        fastla.nearest_neighbors(big, k=MAX_K + 1, backend="cuda")


@pytest.mark.cuda
def test_cuda_device_out(rng):
    """A device ``out=`` is filled and returned as it is; a wrong one is refused."""
    cuda = _cuda_or_skip()
    X = rng.standard_normal((11, 6)).astype(np.float32)
    Y = rng.standard_normal((5, 6)).astype(np.float32)
    dX, dY = cuda.to_device(X), cuda.to_device(Y)
    out = cuda.to_device(np.full((11, 5), np.nan, np.float32))
    res = fastla.pairwise_distances(dX, dY, metric="manhattan", out=out)
    assert res is out
    np.testing.assert_allclose(out.copy_to_host(), cdist(X, Y, "cityblock"), rtol=1e-5)
    with pytest.raises(ValueError, match="shape"):
        fastla.pairwise_distances(dX, dY, out=cuda.device_array((5, 11), np.float32))
    with pytest.raises(ValueError, match="dtype"):
        fastla.pairwise_distances(dX, dY, out=cuda.device_array((11, 5), np.float64))
    with pytest.raises(TypeError, match="device array"):
        fastla.pairwise_distances(dX, dY, out=np.empty((11, 5), np.float32))
    sq = cuda.to_device(rng.standard_normal((6, 6)).astype(np.float32))
    with pytest.raises(ValueError, match="share memory"):
        fastla.pairwise_distances(sq, out=sq)              # would read what it overwrites
    with pytest.raises(ValueError, match="share memory"):
        fastla.pairwise_distances(dX[:6], sq, out=sq)


@pytest.mark.cuda
def test_cuda_knn_nan_goes_last_by_index(rng):
    """Device arrays are not checked for NaN: NaN distances come last, by index, as on
    the CPU backends (a query with only NaN distances got index -1 before), for X
    against Y and against itself."""
    cuda = _cuda_or_skip()
    X = rng.standard_normal((5, 4))
    Y = rng.standard_normal((12, 4))
    X[2, 1] = np.nan
    Y[3, 0] = np.nan
    for B, k in ((Y, 3), (Y, 12), (None, 4)):
        dist, idx = fastla.nearest_neighbors(cuda.to_device(X),
                                             None if B is None else cuda.to_device(B), k=k)
        dist, idx = dist.copy_to_host(), idx.copy_to_host()
        rd, ri = _ref_knn(X, X if B is None else B, k, "euclidean", B is None)
        np.testing.assert_array_equal(idx, ri)
        np.testing.assert_allclose(dist, rd, rtol=1e-12)


def test_out_sharing_memory_with_an_input_is_refused(backend, rng):
    op_backend("pairwise_distances", backend)
    X = rng.standard_normal((6, 6))
    with pytest.raises(ValueError, match="share memory"):
        fastla.pairwise_distances(X, out=X, backend=backend)
    Y = rng.standard_normal((6, 6))
    with pytest.raises(ValueError, match="share memory"):
        fastla.rbf_kernel(X, Y, out=Y, backend=backend)


@pytest.mark.cuda
def test_cuda_float32_euclidean_no_cancellation(rng):
    """Clustered float32 data far from the origin: the direct GPU sums stay within 1e-5
    relative (1e-6 absolute near zero) of a float64 reference, over several feature
    chunks (d=70) and tiles."""
    _cuda_or_skip()
    centers = rng.standard_normal((3, 70)) * 50 + 300
    X = (np.repeat(centers, 6, axis=0) + rng.standard_normal((18, 70)) * 1e-3)
    X32 = X.astype(np.float32)
    ref = cdist(X32.astype(np.float64), X32.astype(np.float64))
    D = fastla.pairwise_distances(X32, backend="cuda")
    err = np.abs(D.astype(np.float64) - ref)
    assert np.all((err <= 1e-5 * ref) | (err <= 1e-6)), err.max()
    assert np.all(np.diag(D) == 0) and np.all(D >= 0)


@pytest.mark.cuda
@pytest.mark.parametrize("plan", ["default", "one_segment", "row_chunks"])
def test_cuda_knn_segments_chunks_and_ties(monkeypatch, dtype, plan, rng):
    """The kNN search split into column segments, one segment, or several query chunks
    (row0 > 0) gives the brute-force answer, with ties (integer data) to the lower index."""
    _cuda_or_skip()
    from fastla._kernels import _cuda_distances as kc

    if plan == "one_segment":
        monkeypatch.setattr(kc, "TARGET_BLOCKS", 1)
    elif plan == "row_chunks":
        monkeypatch.setattr(kc, "SCRATCH_BYTES", 1)
    X = rng.integers(0, 3, (19, 3)).astype(dtype)
    Y = rng.integers(0, 3, (37, 3)).astype(dtype)
    for metric in ("euclidean", "cosine", "manhattan"):
        dist, idx = fastla.nearest_neighbors(X, Y, k=4, metric=metric, backend="cuda")
        rd, ri = _ref_knn(X, Y, 4, metric, False)
        if metric != "cosine":  # cosine's equal values can differ in the last bit
            np.testing.assert_array_equal(idx, ri)
        np.testing.assert_allclose(dist, rd, **_tol(dtype))
    dist, idx = fastla.nearest_neighbors(Y, k=5, backend="cuda")
    rd, ri = _ref_knn(Y, Y, 5, "euclidean", True)
    np.testing.assert_array_equal(idx, ri)
    np.testing.assert_allclose(dist, rd, **_tol(dtype))


def test_read_only_inputs(backend):
    op_backend("pairwise_distances", backend)
    X = np.random.default_rng(1).random((9, 5))
    X.setflags(write=False)
    D = fastla.pairwise_distances(X, X, backend=backend)
    np.testing.assert_allclose(D, cdist(X, X), atol=1e-12)
    _, idx = fastla.nearest_neighbors(X, k=2, backend=backend)
    assert idx.shape == (9, 2)


@pytest.mark.parametrize("metric,d", [("euclidean", 13), ("sqeuclidean", 16),
                                      ("manhattan", 37), ("chebyshev", 37)])
def test_streamed_output_is_bitwise_the_cached_one(monkeypatch, dtype, metric, d):
    """Outputs of STREAM_BYTES or more are written with streaming stores by the direct
    kernels (aligned 16-value blocks, from registers; the GEMM path never streams):
    force that path on small, odd shapes (unaligned rows, partial tiles, the diagonal of
    Y=None) and compare with the ordinary stores. Each case is on the direct path."""
    import sys

    op_backend("pairwise_distances", "cython")
    fn = _backend.entry("pairwise_distances", "cython", "pairwise_distances")
    mod = sys.modules[fn.__module__]
    assert not mod.uses_gemm(METRIC_CODES[metric], d)
    rng = np.random.default_rng(3)
    X = rng.standard_normal((301, d)).astype(dtype)
    Y = rng.standard_normal((263, d)).astype(dtype)
    ref = [fastla.pairwise_distances(X, Y, metric, backend="cython"),
           fastla.pairwise_distances(X, None, metric, backend="cython")]
    monkeypatch.setattr(mod, "STREAM_BYTES", 0)
    got = [fastla.pairwise_distances(X, Y, metric, backend="cython"),
           fastla.pairwise_distances(X, None, metric, backend="cython")]
    for a, b in zip(got, ref):
        np.testing.assert_array_equal(a, b)
    assert (np.diag(got[1]) == 0).all()


@pytest.mark.parametrize("offset", [0.0, 1e6, "mixed"])
def test_manhattan_min_identity_matches_exact_sums(monkeypatch, offset):
    """float64 manhattan runs as sx + sy - 2 sum min(x, y) (_direct.h kind 3), kept only
    where the bound on its cancellation allows 1e-12 relative; other register blocks are
    recomputed exactly. Every ISA variant, pairwise and kNN, against exact sums: data
    around 0 (the identity's results kept), far from the origin with distances small
    next to sum |x| (every block recomputed) and a mix of both by row groups."""
    rng = np.random.default_rng(11)
    m, n, d = 203, 70, 37
    X = rng.standard_normal((m, d))
    Y = rng.standard_normal((n, d))
    if offset == "mixed":
        X[(np.arange(m) // 8) % 3 == 1] += 1e6
        Y[(np.arange(n) // 16) % 2 == 1] += 1e6
    else:
        X += offset
        Y += offset
    ref = np.abs(X[:, None, :] - Y[None, :, :]).sum(-1)
    ref_idx = np.argsort(ref, axis=1, kind="stable")[:, :5]
    for mod in built_variants("_cy_distances"):
        got = {}
        for on in (True, False):
            monkeypatch.setattr(mod, "L1_MIN", on)
            D = mod.pairwise_distances(X, Y, np.empty((m, n)), 3, 1.0, 0.0, False, 0.0, 2)
            np.testing.assert_allclose(D, ref, rtol=1e-12, atol=0)
            dist, idx = mod.nearest_neighbors(X, Y, 5, 3, 1.0, False, 2)
            np.testing.assert_allclose(dist, np.take_along_axis(ref, ref_idx, 1),
                                       rtol=1e-12, atol=0)
            assert (idx == ref_idx).all()
            got[on] = D
        if offset == 1e6:  # every block recomputed: bitwise the exact kernel's sums
            np.testing.assert_array_equal(got[True], got[False])


@pytest.mark.parametrize("metric", ["manhattan", "chebyshev"])
def test_direct_blocks_write_only_their_rows(dtype, metric):
    """Manhattan and chebyshev write full 16-column blocks straight from registers into
    the output: every ISA variant, partial row groups (m % 4 != 0, a last tile of 3 rows)
    and partial column blocks, rows past the output untouched, Y=None's zero diagonal."""
    rng = np.random.default_rng(5)
    m, n, d = 259, 35, 13
    X = rng.standard_normal((m, d)).astype(dtype)
    Y = rng.standard_normal((n, d)).astype(dtype)
    code = {"manhattan": 3, "chebyshev": 4}[metric]
    for mod in built_variants("_cy_distances"):
        for A, B, same in ((X, Y, False), (X, X, True)):
            big = np.full((A.shape[0] + 4, B.shape[0]), -7.0, dtype=dtype)
            out = big[:A.shape[0]]
            mod.pairwise_distances(A, B, out, code, 1.0, 0.0, same, 0.0, 2)
            ref = cdist(A.astype(np.float64), B.astype(np.float64), SCIPY[metric])
            np.testing.assert_allclose(out, ref, **_tol(dtype))
            assert (big[A.shape[0]:] == -7.0).all()
            if same:
                assert (np.diag(out) == 0).all()


def _fused_kernel(mod, X, B, out, metric, same=False):
    """The kernel entry of one built variant with the public layer's arguments for plain
    or squared euclidean (p = 2, the cancellation threshold for X's dtype and width, two
    threads): fills and returns ``out``."""
    from fastla.distances import recompute_threshold

    code = {"euclidean": 1, "sqeuclidean": 0}[metric]
    thr = recompute_threshold(X.dtype, X.shape[1])
    return mod.pairwise_distances(X, B, out, code, 2.0, 0.0, same, thr, 2)


@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "cosine"])
def test_own_tile_gemm_matches_blas(monkeypatch, dtype, metric):
    """The GEMM-trick tiles run on fastla's register-blocked kernel (_gemm_tile.h) in the
    AVX-512 build and on BLAS elsewhere: both paths, on every built variant, on odd
    shapes (partial row blocks and column panels, several tiles), give the same distances
    and the same neighbours."""
    rng = np.random.default_rng(11)
    X = rng.standard_normal((301, 37)).astype(dtype)
    Y = rng.standard_normal((263, 37)).astype(dtype)
    code = {"euclidean": 1, "sqeuclidean": 0, "cosine": 2}[metric]
    thr = 1e-3 if dtype == np.float32 else 1e-9
    ref = cdist(X.astype(np.float64), Y.astype(np.float64), SCIPY[metric])
    for mod in built_variants("_cy_distances"):
        got = {}
        for own in (True, False):
            monkeypatch.setattr(mod, "OWN_GEMM", own)
            out = np.empty((301, 263), dtype=dtype)
            mod.pairwise_distances(X, Y, out, code, 2.0, 0.0, False, thr, 2)
            np.testing.assert_allclose(out, ref, **_tol(dtype))
            got[own] = (out, mod.nearest_neighbors(X, Y, 5, code, 2.0, False, 2))
        np.testing.assert_allclose(got[True][0], got[False][0], **_tol(dtype))
        np.testing.assert_array_equal(got[True][1][1], got[False][1][1])


@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean"])
def test_fused_tile_height_leaves_the_values_alone(monkeypatch, dtype, metric):
    """The fused euclidean tiles' height (FUSED_ROWS, chosen for how fresh output pages
    fault) only regroups the same register blocks: every height, down to one row, gives
    bitwise the values of 256-row tiles, near-duplicates (recomputed rows) and the
    diagonal of X against itself included."""
    rng = np.random.default_rng(3)
    X = (rng.random((613, 37)) + 100).astype(dtype)
    Y = np.concatenate([X[:50] + dtype(1e-4), (rng.random((300, 37)) + 100).astype(dtype)])
    for mod in built_variants("_cy_distances"):
        got = {}
        for rows in (256, 64, 7, 1):
            monkeypatch.setattr(mod, "FUSED_ROWS", rows)
            got[rows] = []
            for B, same in ((Y, False), (X, True)):
                out = np.empty((X.shape[0], B.shape[0]), dtype=dtype)
                got[rows].append(_fused_kernel(mod, X, B, out, metric, same))
        for rows in (64, 7, 1):
            for a, b in zip(got[256], got[rows]):
                np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("d", [3, 37, 64, 130])
def test_pipelined_square_roots_leave_the_values_alone(monkeypatch, dtype, d):
    """The fused euclidean tiles take a register block's square roots inside the next
    block's feature loop (DEFER_SQRT), after that loop when d is short, and at the tile's
    end for its last block: every entry gets its square root once, bitwise as when each
    block takes its own at once. Odd sizes leave partial blocks and panels (square-rooted
    at once), and 7-row tiles put fewer rows than a register block in some tiles. Only
    blocks on whole cache lines are deferred: 320 columns start every row on a line in an
    output from empty_output (64-byte aligned), and 16 bytes into one in an offset view."""
    from fastla._validation import empty_output

    rng = np.random.default_rng(11)
    X = (rng.random((301, d)) + 10).astype(dtype)
    Y = np.concatenate([X[:20] + dtype(1e-3), (rng.random((300, d)) + 10).astype(dtype)])
    ref = cdist(X.astype(np.float64), Y.astype(np.float64))
    shape = (X.shape[0], Y.shape[0])
    for mod in built_variants("_cy_distances"):
        for rows in (64, 7):
            monkeypatch.setattr(mod, "FUSED_ROWS", rows)
            for offset in (0, 16):
                got = []
                for defer in (False, True):
                    monkeypatch.setattr(mod, "DEFER_SQRT", defer)
                    raw = empty_output((shape[0] * shape[1] * X.itemsize + 64,), np.uint8)
                    out = raw[offset:offset + shape[0] * shape[1] * X.itemsize].view(dtype)
                    out = out.reshape(shape)
                    out[...] = -1
                    got.append(_fused_kernel(mod, X, Y, out, "euclidean"))
                np.testing.assert_array_equal(got[0], got[1])
                # recompute_threshold's bound (1e-5 of d^2) holds for both types
                np.testing.assert_allclose(got[1], ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("n_threads", [1, 2])
def test_centred_copies_are_numpys(n_threads):
    """The float32 engine's centred copies: bitwise (X - X.mean(axis=0, float64)) in float32,
    for X and for Y, whatever the thread count (and Y itself when it is X)."""
    rng = np.random.default_rng(5)
    X = (rng.standard_normal((1003, 41)) * 3 + 7).astype(np.float32)
    Y = (rng.standard_normal((517, 41)) * 2 - 1).astype(np.float32)
    mu = X.mean(axis=0, dtype=np.float64)
    for mod in built_variants("_cy_distances"):
        Xc, Yc = mod._centred(X, Y, 0, False, n_threads)
        np.testing.assert_array_equal(Xc, (X - mu).astype(np.float32))
        np.testing.assert_array_equal(Yc, (Y - mu).astype(np.float32))
        Xs, Ys = mod._centred(X, X, 1, True, n_threads)
        assert Ys is Xs
        np.testing.assert_array_equal(Xs, (X - mu).astype(np.float32))


def _near_duplicates(dtype, seed):
    """535 points in five tight clusters far from the origin (X), every other one of
    them reversed (Y), and the clusters' spread: GEMM-form distances within a cluster
    are rounding noise."""
    rng = np.random.default_rng(seed)
    noise = 1e-3 if dtype == np.float32 else 1e-7
    centers = rng.standard_normal((5, 24)) * 50 + 300
    X = (np.repeat(centers, 107, axis=0)
         + rng.standard_normal((535, 24)) * noise).astype(dtype)
    return X, X[::-2].copy(), noise


@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean"])
def test_cancelled_entries_recomputed_every_path(monkeypatch, dtype, metric):
    """Near-duplicate points far from the origin: their GEMM-trick distances are pure
    rounding noise, so they must come from the exact recomputation. On every built ISA
    variant, with the own tile kernel (the distances finished in its registers, flagged
    rows redone) and with BLAS tiles, across several tiles, for X against Y and X
    against itself: within 1e-5 relative (1e-6 absolute near zero) of exact sums, never
    negative, exact zeros on the diagonal."""
    X, Y, _ = _near_duplicates(dtype, 5)
    X64, Y64 = X.astype(np.float64), Y.astype(np.float64)
    for mod in built_variants("_cy_distances"):
        for own in (True, False):
            monkeypatch.setattr(mod, "OWN_GEMM", own)
            for B, B64, same in ((Y, Y64, False), (X, X64, True)):
                ref = cdist(X64, B64, SCIPY[metric])
                out = _fused_kernel(mod, X, B, np.empty((X.shape[0], B.shape[0]), dtype=dtype),
                                    metric, same)
                err = np.abs(out.astype(np.float64) - ref)
                assert np.all((err <= 1e-5 * ref) | (err <= 1e-6)), \
                    (mod.__name__, own, same, err.max())
                assert np.all(out >= 0)
                if same:
                    assert np.all(np.diag(out) == 0)


def _rbf_kernel(mod, X, B, out, gamma, same=False):
    """The kernel entry of one built variant with the public layer's RBF arguments."""
    from fastla.distances import recompute_threshold

    thr = recompute_threshold(X.dtype, X.shape[1])
    return mod.pairwise_distances(X, B, out, 6, 2.0, gamma, same, thr, 2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rbf_vector_exp_within_two_ulps(monkeypatch, dtype):
    """The RBF epilogue's vector exp (_vec.h's FASTLA_VEXP, in the fused tiles of the
    AVX-512 build and in the BLAS tiles' row epilogue of every build), on every built
    variant and both tile paths: on 0/1 data the squared distances are exact, and so is
    -gamma e for these gammas, so each value must be within 2 units in the last place of
    NumPy's exp of the same argument, across the range: exp(0) = 1 on the diagonal,
    subnormal results, and 0 past the type's range."""
    rng = np.random.default_rng(8)
    # 256 rows: the float32 engine's centred copies (X's column means) stay exact
    X = rng.integers(0, 2, (256, 64)).astype(dtype)
    Y = np.concatenate([X[:9], rng.integers(0, 2, (100, 64)).astype(dtype)])
    d2 = cdist(X.astype(np.float64), Y.astype(np.float64), "sqeuclidean")
    low = np.finfo(dtype).smallest_subnormal
    # squared distances of random rows are about 32: 3.0 and 23.0 put them among the
    # subnormal results, 16 and 40 past the range
    gammas = (1 / 64, 0.75, 1.5, 3.0, 16.0) if dtype == np.float32 else (1 / 64, 1.5, 23.0, 40.0)
    reached = set()
    for mod in built_variants("_cy_distances"):
        for own in (True, False):
            monkeypatch.setattr(mod, "OWN_GEMM", own)
            for gamma in gammas:
                x = d2.astype(dtype) * dtype(-gamma)
                ref = np.exp(x)
                got = _rbf_kernel(mod, X, Y, np.empty(d2.shape, dtype=dtype), gamma)
                ulps = np.abs(got - ref) / np.maximum(np.spacing(ref), low)
                assert ulps.max() <= 2, (mod.__name__, own, gamma, ulps.max())
                assert (got[:, :9][np.eye(256, 9, dtype=bool)] == 1).all()
                reached.add("zero" if (ref == 0).any() else None)
                reached.add("subnormal" if ((ref > 0) & (ref < np.finfo(dtype).tiny)).any()
                            else None)
    assert {"zero", "subnormal"} <= reached


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rbf_kernel_every_path_near_duplicates(monkeypatch, dtype):
    """rbf_kernel on every built variant and both tile paths (fused tiles, BLAS tiles with
    the row epilogue), on near-duplicates far from the origin whose distances need the
    exact recomputation, X against Y and against itself, several tiles: every value
    within the distance contract's error (1e-5 of d^2, so |gamma d^2| 1e-5 relative) of
    exp(-gamma d^2) from exact sums, ones on the diagonal."""
    X, Y, noise = _near_duplicates(dtype, 6)
    for mod in built_variants("_cy_distances"):
        for own in (True, False):
            monkeypatch.setattr(mod, "OWN_GEMM", own)
            for B, same in ((Y, False), (X, True)):
                d2 = cdist(X.astype(np.float64), B.astype(np.float64), "sqeuclidean")
                # 2e-5: gamma times the float32 recompute window is about 0.3 here, so
                # flagged rows have entries both redone and kept
                for gamma in (1 / 24, 2e-5, 1 / (24 * noise ** 2)):
                    ref = np.exp(-gamma * d2)
                    out = _rbf_kernel(mod, X, B, np.empty(d2.shape, dtype=dtype), gamma, same)
                    err = np.abs(out - ref)
                    bound = (gamma * d2 * 1e-5 + 4 * np.finfo(dtype).eps) * ref + 1e-30
                    assert np.all(err <= bound), (mod.__name__, own, same, gamma,
                                                  (err / bound).max())
                    if same:
                        assert np.all(np.diag(out) == 1)
    if "numba" in fastla.available_backends("rbf_kernel"):
        for B in (Y, None):
            d2 = cdist(X.astype(np.float64), (X if B is None else B).astype(np.float64),
                       "sqeuclidean")
            for gamma in (1 / 24, 1 / (24 * noise ** 2)):
                ref = np.exp(-gamma * d2)
                out = fastla.rbf_kernel(X, B, gamma=gamma, backend="numba")
                bound = (gamma * d2 * 1e-5 + 4 * np.finfo(dtype).eps) * ref + 1e-30
                assert np.all(np.abs(out - ref) <= bound), ("numba", gamma)
                if B is None:
                    assert np.all(np.diag(out) == 1)


def test_numba_vector_exp_within_one_ulp():
    """The numba backend's vectorisable exponential (_numba_distances._exp_into) against
    NumPy's exp, across the whole range: subnormal results, 0 below it, inf above it."""
    pytest.importorskip("numba")
    from fastla._kernels import _numba_distances as nd

    x = np.concatenate([-np.linspace(0, 800, 40001), np.linspace(0, 720, 4001),
                        [-1e300, 1e300, -np.inf, np.inf]])
    out = np.empty_like(x)
    nd._exp_into(x, out, np.empty(x.size, np.int64), np.empty(x.size, np.int64))
    with np.errstate(over="ignore"):
        ref = np.exp(x)
    fin = np.isfinite(ref)
    assert np.all(out[~fin] == ref[~fin])
    ulps = np.abs(out[fin] - ref[fin]) / np.maximum(np.spacing(ref[fin]),
                                                    np.finfo(float).smallest_subnormal)
    assert np.all(ulps <= 1), ulps.max()
    assert (ref == 0).any() and ((out > 0) & (out < np.finfo(float).tiny)).any()
