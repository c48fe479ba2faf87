"""K-means: every backend against the naive loops and scikit-learn, determinism, bad input."""

import numpy as np
import pytest

import fastla
from conftest import built_variants, op_backend
from fastla import _backend
from fastla._kernels import _naive
from fastla.kmeans import _center_half_distances, _minibatch_step

sklearn_cluster = pytest.importorskip("sklearn.cluster")


def _blobs(n, d, k, dtype, seed=0, spread=0.6):
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-10, 10, size=(k, d))
    X = centres[rng.integers(0, k, n)] + spread * rng.standard_normal((n, d))
    return X.astype(dtype)


def _size(backend):
    # the python loops and the CUDA simulator are slow: tiny inputs there
    return (61, 5, 4) if backend in ("python", "cuda") else (1037, 13, 7)


def _tol(dtype):
    return dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-9, atol=1e-9)


# ------------------------------------------------------------------- assignment
@pytest.mark.parametrize("layout", ["C", "F", "strided"])
def test_assign_matches_naive(backend, dtype, layout):
    op_backend("kmeans_assign", backend)
    n, d, k = _size(backend)
    base = _blobs(n, 2 * d, k, dtype)
    X = {"C": np.ascontiguousarray(base[:, :d]), "F": np.asfortranarray(base[:, :d]),
         "strided": base[:, ::2]}[layout]
    C = X[:: max(1, n // k)][:k] + 0.25
    labels, sq = fastla.kmeans_assign(X, C, backend=backend)
    assert labels.dtype == np.int32 and sq.dtype == dtype and labels.shape == (n,)
    ref_l = np.empty(n, np.int32)
    ref_d = np.empty(n)
    _naive.kmeans_assign(np.asarray(X, np.float64), np.asarray(C, np.float64), ref_l, ref_d, 1)
    np.testing.assert_array_equal(labels, ref_l)
    np.testing.assert_allclose(sq, ref_d, **_tol(dtype))
    assert (sq >= 0).all()


@pytest.mark.parametrize("k", [16, 37, 100])
def test_assign_exact_ties_go_to_the_lower_index(backend, dtype, k):
    """Integer points and duplicated integer centres: ||c||^2 - 2 x.c is exact, so many
    rows tie exactly; each must take the first of its nearest centres (as a scalar scan
    does) whatever the kernel's vector width (k from one register of lanes up)."""
    op_backend("kmeans_assign", backend)
    rng = np.random.default_rng(k)
    n = 61 if backend in ("python", "cuda") else 2003
    grid = rng.integers(-3, 4, size=(k // 3 + 1, 3))
    C = grid[rng.integers(0, len(grid), k)].astype(dtype)
    X = rng.integers(-3, 4, size=(n, 3)).astype(dtype)
    labels, sq = fastla.kmeans_assign(X, C, backend=backend)
    d2 = ((X[:, None, :].astype(np.float64) - C[None, :, :]) ** 2).sum(-1)
    np.testing.assert_array_equal(labels, d2.argmin(axis=1))
    np.testing.assert_array_equal(sq, d2.min(axis=1).astype(dtype))
    assert (d2 == d2.min(axis=1, keepdims=True)).sum(axis=1).max() > 1  # ties do occur


def test_assign_weighted_and_empty(backend, dtype):
    op_backend("kmeans_assign", backend)
    n, d, k = _size(backend)
    X = _blobs(n, d, k, dtype)
    w = np.linspace(0.5, 2.0, n)
    _, sq = fastla.kmeans_assign(X, X[:k], backend=backend)
    _, sqw = fastla.kmeans_assign(X, X[:k], sample_weight=w, backend=backend)
    np.testing.assert_allclose(sqw, sq * w.astype(dtype), **_tol(dtype))
    lab, dist = fastla.kmeans_assign(np.empty((0, d), dtype), X[:k], backend=backend)
    assert lab.shape == (0,) and dist.shape == (0,)


def test_assign_matches_sklearn_predict(dtype):
    X = _blobs(5003, 32, 20, dtype, seed=3)
    km = sklearn_cluster.KMeans(20, n_init=1, random_state=0, max_iter=5).fit(X)
    labels, _ = fastla.kmeans_assign(X, km.cluster_centers_.astype(dtype))
    np.testing.assert_array_equal(labels, km.predict(X))


# --------------------------------------------------------------- kernel level
def _kernels(backend):
    return lambda attr: _backend.entry("kmeans", backend, attr)


def test_lloyd_iter_sums_match_naive(backend, dtype):
    op_backend("kmeans", backend)
    n, d, k = _size(backend)
    X = _blobs(n, d, k, dtype, seed=1)
    w = np.random.default_rng(1).uniform(0.1, 2, n).astype(dtype)
    C = np.ascontiguousarray(X[:k])
    sums, weights, labels = np.empty((k, d)), np.empty(k), np.empty(n, np.int32)
    _kernels(backend)("lloyd_iter")(X, w, C, sums, weights, labels, 3, 2)
    rs, rw, rl = np.empty((k, d)), np.empty(k), np.empty(n, np.int32)
    _naive.lloyd_iter(X.astype(np.float64), w.astype(np.float64), C.astype(np.float64), rs,
                      rw, rl, 1, 1)
    np.testing.assert_array_equal(labels, rl)
    np.testing.assert_allclose(sums, rs, rtol=1e-6 if dtype == np.float32 else 1e-12,
                               atol=1e-6)
    np.testing.assert_allclose(weights, rw, rtol=1e-6)


def test_lloyd_update_gives_the_fresh_totals(backend, dtype):
    """lloyd_iter(update=True) moves only the rows whose label changed, and ends with
    the totals a fresh pass makes: a centre that loses every row gets exact zeros (not
    the rounding left by the removals), rows of zero weight are not counted."""
    op_backend("kmeans", backend)
    n, d, k = _size(backend)
    X = _blobs(n, d, k, dtype, seed=5)
    w = np.random.default_rng(5).uniform(0.1, 2, n).astype(dtype)
    w[::5] = 0
    C1 = np.ascontiguousarray(X[:k])
    C2 = C1 + np.asarray(0.3, dtype)
    C2[1] = 1e4  # its rows all leave
    kern = _kernels(backend)("lloyd_iter")
    sums, weights, counts = np.empty((k, d)), np.empty(k), np.empty(k)
    labels = np.full(n, -1, np.int32)
    kern(X, w, C1, sums, weights, labels, 3, 2, counts=counts)
    assert weights[1] > 0 and counts.sum() == np.count_nonzero(w)
    ref = [np.empty((k, d)), np.empty(k), np.empty(k), labels.copy()]
    fresh = kern(X, w, C2, ref[0], ref[1], ref[3], 3, 2, counts=ref[2])
    moved = kern(X, w, C2, sums, weights, labels, 3, 2, counts=counts, update=True)
    assert moved == fresh > 0
    np.testing.assert_array_equal(labels, ref[3])
    np.testing.assert_array_equal(counts, ref[2])
    np.testing.assert_array_equal(counts, np.bincount(labels[w != 0], minlength=k))
    np.testing.assert_allclose(sums, ref[0], rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(weights, ref[1], rtol=1e-12, atol=1e-9)
    assert weights[1] == 0 and not sums[1].any()


def test_passes_count_changed_labels(backend, dtype):
    """lloyd_iter and elkan_iter return how many labels they changed (kmeans' strict
    convergence test, in place of comparing with a copy of the old labels)."""
    op_backend("kmeans", backend)
    n, d, k = _size(backend)
    X = _blobs(n, d, k, dtype, seed=3)
    w = np.ones(n, dtype)
    C = np.ascontiguousarray(X[:k])
    kern = _kernels(backend)
    sums, weights = np.empty((k, d)), np.empty(k)
    ref = np.empty(n, np.int32)
    _naive.lloyd_iter(X.astype(np.float64), w.astype(np.float64), C.astype(np.float64),
                      sums, weights, ref, 1, 1)
    old = ref.copy()
    old[::3] = (old[::3] + 1) % k
    old[1::7] = -1
    labels = old.copy()
    changed = kern("lloyd_iter")(X, w, C, sums, weights, labels, 3, 2)
    np.testing.assert_array_equal(labels, ref)
    assert changed == np.count_nonzero(ref != old) > 0
    assert kern("lloyd_iter")(X, w, C, sums, weights, labels, 3, 2) == 0
    if backend == "cuda":
        return
    # Elkan: bounds from the first centres, one pass against moved ones
    chd, dnext = _center_half_distances(C)
    upper, lower, lab = np.zeros(n), np.zeros((n, k)), np.full(n, -1, np.int32)
    kern("elkan_init")(X, C, chd, lab, upper, lower, 2)
    C2 = (C + 0.3 * (X[k:2 * k] - C)).astype(dtype)
    shift = np.sqrt(((C2.astype(np.float64) - C) ** 2).sum(axis=1))
    upper += shift[lab]
    lower = np.maximum(lower - shift, 0.0)
    chd, dnext = _center_half_distances(C2)
    before = lab.copy()
    changed = kern("elkan_iter")(X, w, C2, sums, weights, chd, dnext, upper, lower, lab, 3, 2)
    assert changed == np.count_nonzero(lab != before)


@pytest.mark.parametrize("t", [1, 7, 11])
def test_plusplus_trials_match_naive(backend, dtype, t):
    op_backend("kmeans_plusplus", backend)
    n, d, k = _size(backend)
    X = _blobs(n, d, k, dtype, seed=2)
    w = np.ones(n, dtype)
    rng = np.random.default_rng(t)
    cand = rng.integers(0, n, t).astype(np.intp)
    closest = rng.uniform(0, 50, n)
    dist, ref = np.empty((t, n)), np.empty((t, n))
    pots = _backend.entry("kmeans_plusplus", backend, "plusplus_trials")(
        X, cand, closest, w, dist, 2)
    rp = _naive.plusplus_trials(X, cand, closest, w, ref, 1)
    np.testing.assert_allclose(dist, ref, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(pots, rp, rtol=1e-10)


@pytest.mark.parametrize("d", [13, 70])
@pytest.mark.parametrize("scale", [1.0, 3e3, 1e5, 1e18, 1e-6, 1e-18, 1e-21, "int"])
def test_plusplus_screen_is_bitwise_the_exact_pass(monkeypatch, scale, d):
    """float32 data: the screened k-means++ pass (float32 sums first, exact float64
    distances only for rows a trial may improve) gives the exact pass's distances and
    potentials bitwise, on every built variant, and so does the screen of X's
    half-precision copy (plusplus_half, on the F16C builds): closest near the distances
    (just above, just below, equal), 0, inf and far below; values whose float32 squares
    overflow or underflow, whose halves overflow (no copy then), are subnormal or zero,
    or are exact (integers: no rounding error); row counts that leave partial groups of
    8 and partial chunks; d past one converted block of 64 features."""
    rng = np.random.default_rng(3)
    n = 1037
    X = _blobs(n, d, 5, np.float64, seed=3)
    X = np.round(X * 10) if scale == "int" else X * scale
    X = X.astype(np.float32)
    w = rng.uniform(0.1, 2, n).astype(np.float32)
    cand = rng.integers(0, n, 7).astype(np.intp)
    exact = ((X[None, :, :].astype(np.float64) - X[cand][:, None, :]) ** 2).sum(-1).min(0)
    closest = exact * rng.choice([0.5, 1 - 1e-7, 1.0, 1 + 1e-7, 1 + 1e-4, 3.0], n)
    closest[:5] = 0.0
    closest[5:10] = np.inf
    for mod in built_variants("_cy_kmeans"):
        got = {}
        for screen in (True, False):
            monkeypatch.setattr(mod, "PP_SCREEN", screen)
            dist = np.empty((7, n))
            pots = mod.plusplus_trials(X, cand, closest, w, dist, 2)
            got[screen] = (dist, pots)
        np.testing.assert_array_equal(got[True][0], got[False][0])
        np.testing.assert_array_equal(got[True][1], got[False][1])
        half = mod.plusplus_half(X, 2)  # (PP_SCREEN is off here: no copy)
        assert half is None
        monkeypatch.setattr(mod, "PP_SCREEN", True)
        half = mod.plusplus_half(X, 2)
        f16c = mod.__name__.rsplit("__", 1)[-1] in ("v3", "v4")
        assert (half is not None) == (f16c and np.abs(X).max() < 65504), mod.__name__
        if half is None:
            continue
        x16, e = half
        err = np.sqrt(((X.astype(np.float64) - x16.view(np.float16)) ** 2).sum(1))
        assert (e >= err).all() and (e <= err * (1 + 1e-12) + 1e-300).all()
        dist = np.empty((7, n))
        pots = mod.plusplus_trials(X, cand, closest, w, dist, 2, half)
        np.testing.assert_array_equal(dist, got[False][0])
        np.testing.assert_array_equal(pots, got[False][1])


def test_minibatch_update_matches_naive(backend, dtype):
    op_backend("minibatch_kmeans", backend)
    n, d, k = _size(backend)
    X = _blobs(n, d, k, dtype, seed=4)
    w = np.random.default_rng(4).uniform(0.1, 2, n).astype(dtype)
    C = np.ascontiguousarray(X[:k] + 1)
    C[-1] = 1e6  # a centre that gets no sample this batch
    ws = np.arange(1, k + 1, dtype=dtype)
    new, ws1 = np.empty_like(C), ws.copy()
    labels, inertia = _minibatch_step(X, w, C, new, ws1, backend=backend)
    ref, ws2 = np.empty((k, d)), ws.astype(np.float64)
    _naive.minibatch_update(X, w, C, ref, ws2, labels, 1)
    np.testing.assert_allclose(new, ref, **_tol(dtype))
    np.testing.assert_allclose(ws1, ws2, **_tol(dtype))
    assert new.dtype == dtype
    np.testing.assert_array_equal(new[-1], C[-1])
    _, sq = fastla.kmeans_assign(X, C, sample_weight=w)
    assert inertia == pytest.approx(float(sq.astype(np.float64).sum()), rel=1e-5)


# ------------------------------------------------------------ full algorithm
@pytest.mark.parametrize("weighted", [False, True])
def test_kmeans_matches_sklearn(backend, dtype, weighted):
    op_backend("kmeans", backend)
    n, d, k = _size(backend)
    X = _blobs(n, d, k, dtype, seed=5, spread=2.0)
    w = np.random.default_rng(5).uniform(0.2, 3, n) if weighted else None
    init = np.ascontiguousarray(X[:k])
    res = fastla.kmeans(X, k, init=init, sample_weight=w, backend=backend)
    sk = sklearn_cluster.KMeans(k, init=init, n_init=1).fit(X, sample_weight=w)
    assert res.centers.dtype == dtype and res.labels.dtype == np.int32
    np.testing.assert_array_equal(res.labels, sk.labels_)
    np.testing.assert_allclose(res.centers, sk.cluster_centers_,
                               **(dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else
                                  dict(rtol=1e-10, atol=1e-10)))
    assert res.inertia == pytest.approx(sk.inertia_, rel=1e-4 if dtype == np.float32 else 1e-10)
    assert res.n_iter == sk.n_iter_


def test_kmeans_matches_seed_loop(backend):
    op_backend("kmeans", backend)
    X = _blobs(40, 3, 3, np.float64, seed=6, spread=1.5)
    init = X[:3].copy()
    ref_c, ref_l = _naive.kmeans_seed(X, init, 30)
    res = fastla.kmeans(X, 3, init=init, tol=0.0, max_iter=30, backend=backend)
    np.testing.assert_array_equal(res.labels, ref_l)
    np.testing.assert_allclose(res.centers, ref_c, rtol=1e-12, atol=1e-12)


def test_elkan_equals_lloyd(backend, dtype):
    op_backend("kmeans", backend)
    if backend == "cuda":
        pytest.skip("elkan has no cuda kernel (checked in test_bad_input)")
    n, d, k = _size(backend)
    X = _blobs(n, d, k + 3, dtype, seed=7, spread=3.0)
    w = np.random.default_rng(7).uniform(0.5, 1.5, n)
    a = fastla.kmeans(X, k, sample_weight=w, random_state=1, algorithm="lloyd", backend=backend)
    b = fastla.kmeans(X, k, sample_weight=w, random_state=1, algorithm="elkan", backend=backend)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_allclose(a.centers, b.centers, **_tol(dtype))
    assert a.n_iter == b.n_iter


@pytest.mark.parametrize("algorithm", ["lloyd", "elkan"])
def test_deterministic_whatever_the_thread_count(backend, algorithm):
    op_backend("kmeans", backend)
    if backend in ("python", "cuda"):
        pytest.skip("single-threaded reference / GPU atomics (documented as not bitwise)")
    X = _blobs(20011, 9, 12, np.float32, seed=8, spread=4.0)
    w = np.random.default_rng(8).uniform(0.5, 1.5, X.shape[0])
    runs = [fastla.kmeans(X, 12, sample_weight=w, random_state=3, n_init=2, tol=0,
                          max_iter=15, algorithm=algorithm, backend=backend, n_threads=t)
            for t in (1, 2, 3)]
    for r in runs[1:]:
        np.testing.assert_array_equal(r.labels, runs[0].labels)
        assert r.centers.tobytes() == runs[0].centers.tobytes()
        assert r.inertia == runs[0].inertia


def test_backends_agree_on_a_full_fit(dtype):
    X = _blobs(3001, 6, 5, dtype, seed=9, spread=2.5)
    results = {b: fastla.kmeans(X, 5, random_state=0, backend=b)
               for b in fastla.available_backends("kmeans") if b in ("cython", "numba")}
    first = next(iter(results.values()))
    for r in results.values():
        np.testing.assert_array_equal(r.labels, first.labels)
        np.testing.assert_allclose(r.centers, first.centers, **_tol(dtype))


def test_plusplus_draws_as_sklearn(backend, dtype):
    op_backend("kmeans_plusplus", backend)
    n, d, k = _size(backend)
    X = _blobs(n, d, k, dtype, seed=10, spread=3.0)
    w = np.random.default_rng(10).uniform(0.5, 1.5, n).astype(dtype)
    centers, idx = fastla.kmeans_plusplus(X, k, sample_weight=w, random_state=42,
                                          backend=backend)
    sk_c, sk_idx = sklearn_cluster.kmeans_plusplus(X, k, sample_weight=w, random_state=42)
    np.testing.assert_array_equal(idx, sk_idx)
    np.testing.assert_array_equal(centers, X[idx])
    assert centers.dtype == dtype


@pytest.mark.parametrize("half_min", [None, 0])
def test_plusplus_half_copy_from_its_size_on(monkeypatch, half_min):
    """kmeans_plusplus hands the screen X's half-precision copy from _HALF_MIN_BYTES of
    float32 X on (where the backend has plusplus_half), and draws the same seeds with or
    without it."""
    kmod = __import__("fastla.kmeans", fromlist=["_HALF_MIN_BYTES"])
    op_backend("kmeans_plusplus", "cython")
    X = _blobs(3001, 19, 9, np.float32, seed=16, spread=2.0)
    half = _backend.optional_entry("kmeans_plusplus", "cython", "plusplus_half")
    calls = []
    real = _backend.optional_entry
    def spy(op, name, attr):
        f = real(op, name, attr)
        if attr != "plusplus_half" or f is None:
            return f
        return lambda *a: calls.append(f(*a)) or calls[-1]
    monkeypatch.setattr(_backend, "optional_entry", spy)
    if half_min is not None:
        monkeypatch.setattr(kmod, "_HALF_MIN_BYTES", half_min)
    got = fastla.kmeans_plusplus(X, 9, random_state=3, backend="cython")
    assert len(calls) == (0 if half_min is None or half is None else 1)
    monkeypatch.setattr(_backend, "optional_entry", lambda op, name, attr:
                        None if attr == "plusplus_half" else real(op, name, attr))
    ref = fastla.kmeans_plusplus(X, 9, random_state=3, backend="cython")
    np.testing.assert_array_equal(got[1], ref[1])
    np.testing.assert_array_equal(got[0], ref[0])


def test_random_init_and_n_init(dtype):
    X = _blobs(2000, 4, 6, dtype, seed=11, spread=1.0)
    res = fastla.kmeans(X, 6, init="random", random_state=0)
    sk = sklearn_cluster.KMeans(6, init="random", n_init=10, random_state=0).fit(X)
    assert res.inertia == pytest.approx(sk.inertia_, rel=1e-3)
    res1 = fastla.kmeans(X, 6, init=lambda X, k, random_state: X[:k], n_init=1)
    assert np.unique(res1.labels).size == 6


def test_empty_cluster_relocated_as_sklearn(dtype):
    X = _blobs(500, 3, 4, dtype, seed=12)
    init = np.ascontiguousarray(np.vstack([X[:3], np.full((1, 3), 1e4)]).astype(dtype))
    res = fastla.kmeans(X, 4, init=init)
    sk = sklearn_cluster.KMeans(4, init=init, n_init=1).fit(X)
    np.testing.assert_array_equal(res.labels, sk.labels_)
    np.testing.assert_allclose(res.centers, sk.cluster_centers_, **_tol(dtype))
    assert np.unique(res.labels).size == 4


@pytest.mark.parametrize("weighted", [False, True])
def test_update_passes_fit_as_fresh_passes(monkeypatch, backend, dtype, weighted):
    """kmeans' Lloyd passes that move only the relabelled rows (fresh totals every
    _REFRESH-th pass) end where passes that all make fresh totals end: the same labels
    and iterations, centres and inertia to the sums' rounding."""
    op_backend("kmeans", backend)
    if backend == "cuda":
        pytest.skip("the CUDA passes make fresh totals every pass: nothing to compare")
    kmod = __import__("fastla.kmeans", fromlist=["_REFRESH"])
    n, d, k = _size(backend)
    X = _blobs(n, d, k, dtype, seed=21, spread=3.0)
    w = np.random.default_rng(21).uniform(0, 2, n).astype(dtype) if weighted else None
    init = np.ascontiguousarray(X[:k])
    fits = []
    for refresh in (kmod._REFRESH, 1):
        monkeypatch.setattr(kmod, "_REFRESH", refresh)
        fits.append(fastla.kmeans(X, k, init=init, max_iter=25, tol=0.0, sample_weight=w,
                                  backend=backend))
    a, b = fits
    assert a.n_iter == b.n_iter
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_allclose(a.centers, b.centers, rtol=1e-6 if dtype == np.float32
                               else 1e-12, atol=1e-12)
    assert a.inertia == pytest.approx(b.inertia, rel=1e-6 if dtype == np.float32 else 1e-12)


def test_tol_stops_like_sklearn():
    X = _blobs(3000, 8, 10, np.float64, seed=13, spread=5.0)
    init = X[:10].copy()
    res = fastla.kmeans(X, 10, init=init, tol=1e-2)
    sk = sklearn_cluster.KMeans(10, init=init, n_init=1, tol=1e-2).fit(X)
    assert res.n_iter == sk.n_iter_
    np.testing.assert_array_equal(res.labels, sk.labels_)


def test_verbose_prints_progress(capsys):
    X = _blobs(300, 2, 3, np.float64, seed=14)
    fastla.kmeans(X, 3, random_state=0, verbose=True)
    out = capsys.readouterr().out
    assert "Iteration 0, inertia" in out and "Converged at iteration" in out


def test_copy_x_false_restores_input():
    X = _blobs(300, 3, 3, np.float64, seed=15)
    before = X.copy()
    a = fastla.kmeans(X, 3, random_state=0, copy_x=False)
    b = fastla.kmeans(before, 3, random_state=0)
    np.testing.assert_allclose(X, before, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(a.labels, b.labels)


def test_duplicates_and_constant_data():
    X = np.repeat(np.array([[0.0, 1.0], [5.0, 5.0], [9.0, -1.0]]), 50, axis=0)
    res = fastla.kmeans(X, 3, random_state=0)
    # (X is centred before fitting, so the centres carry rounding of about 1e-15)
    assert res.inertia < 1e-20 and np.unique(res.labels).size == 3
    const = np.ones((100, 4), np.float32)
    res = fastla.kmeans(const, 1)
    assert res.inertia == 0.0
    np.testing.assert_array_equal(res.centers, const[:1])
    for algorithm in ("lloyd", "elkan"):
        res = fastla.kmeans(X, 2, random_state=0, algorithm=algorithm)
        assert np.unique(res.labels).size == 2


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("call, exc, match", [
    (lambda X: fastla.kmeans(X[:, 0], 3), ValueError, "2-D"),
    (lambda X: fastla.kmeans(X, 0), ValueError, "n_clusters must be >= 1"),
    (lambda X: fastla.kmeans(X, 51), ValueError, "n_samples=50 should be >= n_clusters=51"),
    (lambda X: fastla.kmeans(X, 2.5), TypeError, "n_clusters must be an int"),
    (lambda X: fastla.kmeans(X, 3, sample_weight=-np.ones(50)), ValueError, "non-negative"),
    (lambda X: fastla.kmeans(X, 3, sample_weight=np.ones(49)), ValueError, "49 elements"),
    (lambda X: fastla.kmeans(X, 3, sample_weight=np.zeros(50)), ValueError, "zero everywhere"),
    (lambda X: fastla.kmeans(X, 3, init=np.ones((2, 4))), ValueError, r"expected \(3, 4\)"),
    (lambda X: fastla.kmeans(X, 3, init="kmeans++"), ValueError, "init="),
    (lambda X: fastla.kmeans(X, 3, algorithm="full"), ValueError, "algorithm="),
    (lambda X: fastla.kmeans(X, 3, max_iter=0), ValueError, "max_iter"),
    (lambda X: fastla.kmeans(X, 3, tol=-1.0), ValueError, "tol"),
    (lambda X: fastla.kmeans(X, 3, n_init=0), ValueError, "n_init"),
    (lambda X: fastla.kmeans(np.where(X > 0.9, np.nan, X), 3), ValueError, "NaN"),
    (lambda X: fastla.kmeans(np.where(X > 0.9, np.inf, X), 3), ValueError, "inf"),
    (lambda X: fastla.kmeans(np.where(X > 0.9, -np.inf, X), 3, backend="python"),
     ValueError, "inf"),
    (lambda X: fastla.kmeans(np.empty((0, 4)), 3), ValueError, "n_samples=0"),
    (lambda X: fastla.kmeans(np.empty((5, 0)), 1), ValueError, "0 features"),
    (lambda X: fastla.kmeans_assign(X, np.ones((3, 5))), ValueError, "features"),
    (lambda X: fastla.kmeans_assign(np.where(X > 0.9, np.nan, X), X[:3]), ValueError, "NaN"),
    (lambda X: fastla.kmeans_assign(np.where(X > 0.9, -np.inf, X), X[:3]), ValueError,
     "inf"),
    (lambda X: fastla.kmeans_assign(X, np.where(X[:3] > 0.5, np.inf, X[:3])), ValueError,
     "centers contains"),
    (lambda X: fastla.kmeans_assign(X, np.empty((0, 4))), ValueError, "empty"),
    (lambda X: fastla.kmeans_plusplus(X, 51), ValueError, "n_clusters=51"),
    (lambda X: fastla.kmeans_plusplus(X, 3, n_local_trials=0), ValueError, "n_local_trials"),
    (lambda X: fastla.kmeans(X, 3, backend="nope"), fastla.BackendError, "unknown backend"),
])
def test_bad_input(call, exc, match):
    X = np.random.default_rng(0).random((50, 4))
    with pytest.raises(exc, match=match):
        call(X)


def test_group_count_follows_the_cores_not_the_threads(monkeypatch):
    """8 accumulation groups per core of the machine, at least 4 chunks each."""
    from fastla import _threads
    from fastla.kmeans import n_groups

    for cores, n, want in ((2, 100_000, 16), (16, 100_000, 97), (16, 1_000_000, 128),
                           (2, 3000, 2), (2, 500, 1)):
        monkeypatch.setattr(_threads, "cpu_count", lambda c=cores: c)
        assert n_groups(n, 100, 32) == want


def test_kmeans_assign_checks_x_through_the_distances(backend, dtype):
    """kmeans_assign reads X's finiteness from the exact distances it returns: a NaN or
    inf anywhere in a row is refused on every backend, while finite data whose distances
    overflow the dtype is let through (as the full scan would)."""
    op_backend("kmeans_assign", backend)
    rng = np.random.default_rng(4)
    X = rng.random((301, 5)).astype(dtype)
    C = np.ascontiguousarray(X[:4])
    for bad in (np.nan, np.inf, -np.inf):
        Y = X.copy()
        Y[123, 4] = bad
        with pytest.raises(ValueError, match="NaN or infinity"):
            fastla.kmeans_assign(Y, C, backend=backend)
    if backend == "cuda":
        return
    Z = (X * 1e30).astype(np.float32)
    with np.errstate(over="ignore"):  # (the float64 distances cast to float32)
        labels, sq = fastla.kmeans_assign(Z, Z[:4], backend=backend)
    assert np.isinf(sq).any() and labels.min() >= 0


def test_finite_data_with_overflowing_column_sums_is_not_refused():
    """kmeans checks X through its column means; a mean that overflowed on finite data
    sends it to the full scan, which lets the data through."""
    X = np.random.default_rng(0).standard_normal((50, 3)).astype(np.float32)
    X[:10, 0] = 1e38
    with np.errstate(all="ignore"):
        assert not np.isfinite(X.mean(axis=0)[0])
        fastla.kmeans(X, 2, max_iter=2, random_state=0)


@pytest.mark.parametrize("init", ["k-means++", "random", "array"])
def test_fewer_distinct_points_than_clusters(init):
    X = np.repeat(np.eye(3), 10, axis=0)
    kw = {"init": np.eye(4, 3) if init == "array" else init, "random_state": 0}
    with pytest.raises(ValueError, match="only 3 distinct points"):
        fastla.kmeans(X, 4, **kw)


def test_elkan_needs_no_cuda():
    if "cuda" not in fastla.available_backends("kmeans"):
        pytest.skip("cuda backend not available here")
    with pytest.raises(fastla.BackendError, match="elkan"):
        fastla.kmeans(np.random.rand(20, 2), 2, algorithm="elkan", backend="cuda")


@pytest.mark.cuda
def test_cuda_assign_device_arrays_in_and_out(dtype):
    op_backend("kmeans_assign", "cuda")
    from numba import cuda

    X = _blobs(61, 5, 4, dtype, seed=16)
    C = np.ascontiguousarray(X[:4])
    labels, sq = fastla.kmeans_assign(cuda.to_device(X), cuda.to_device(C))
    assert hasattr(labels, "copy_to_host") and hasattr(sq, "copy_to_host")
    ref_l, ref_d = fastla.kmeans_assign(X, C, backend="cython")
    np.testing.assert_array_equal(labels.copy_to_host(), ref_l)
    np.testing.assert_allclose(sq.copy_to_host(), ref_d, **_tol(dtype))


def test_plusplus_update_is_numpys_cumsum_bitwise(backend, dtype):
    """The fused k-means++ step update gives exactly np.cumsum(w * closest): the sampled
    candidates (searchsorted on it) are then scikit-learn's."""
    op_backend("kmeans_plusplus", backend)
    rng = np.random.default_rng(7)
    n = 50 if backend == "python" else 100_003
    row = rng.random(n) * 3
    w = rng.random(n).astype(dtype)
    closest, cum = np.empty(n), np.empty(n)
    _backend.entry("kmeans_plusplus", backend, "plusplus_update")(row, w, closest, cum)
    np.testing.assert_array_equal(closest, row)
    np.testing.assert_array_equal(cum, np.cumsum(w.astype(np.float64) * row))


@pytest.mark.parametrize("k,d", [(3, 19), (5, 19), (12, 19), (37, 19), (100, 19), (12, 300)])
def test_own_tile_gemm_and_blas_give_the_same_scores(monkeypatch, dtype, k, d):
    """The assignment's chunk GEMM is the tile kernel (_gemm_tile.h, centres packed once)
    on the AVX-512 build and BLAS elsewhere, and the Lloyd pass on a packed X
    (pack_rows) takes its labels from fastla_gemm_labels: on every built variant all
    give the same labels, distances and Lloyd sums (odd n and d, groups that start
    inside a panel of points, k under one panel and over several, centre blocks whole,
    half and clamped; at d = 300 the packed pass labels each group in two runs of rows,
    SUMS_BYTES apart)."""
    rng = np.random.default_rng(k)
    X = rng.standard_normal((1037, d)).astype(dtype)
    C = np.ascontiguousarray(X[rng.choice(len(X), k, replace=False)])
    w = rng.uniform(0.5, 2.0, len(X)).astype(dtype)
    d2 = ((X[:, None, :].astype(np.float64) - C[None, :, :]) ** 2).sum(-1)
    for mod in built_variants("_cy_kmeans"):
        got = []
        for own in (True, False):
            monkeypatch.setattr(mod, "OWN_GEMM", own)
            labels, sq = np.empty(len(X), np.int32), np.empty(len(X), dtype)
            mod.kmeans_assign(X, C, labels, sq, 2)
            sums, weights, lab2 = np.empty((k, X.shape[1])), np.empty(k), np.empty_like(labels)
            mod.lloyd_iter(X, w, C, sums, weights, lab2, 3, 2)
            np.testing.assert_array_equal(labels, lab2)
            got.append((labels, sq, sums, weights))
            xpk = mod.pack_rows(X, 2)
            assert (xpk is None) == (not own)
            if own:
                s3, w3, lab3 = np.empty_like(sums), np.empty_like(weights), labels.copy()
                lab3[::5] = -1
                changed = mod.lloyd_iter(X, w, C, s3, w3, lab3, 3, 2, xpk)
                assert changed == len(lab3[::5])  # (the changed-label count)
                np.testing.assert_array_equal(lab3, labels)
                np.testing.assert_array_equal(s3, sums)
                np.testing.assert_array_equal(w3, weights)
                lab4 = np.full_like(labels, -1)
                mod.assign_packed(X, C, lab4, xpk, 2)
                np.testing.assert_array_equal(lab4, labels)
                # an update from another pass's totals reads the moved rows from the
                # panels: bitwise what it reads from X's rows
                upd = []
                for pk in (xpk, None):
                    st = (np.empty_like(sums), np.empty_like(weights), np.empty(k),
                          np.empty_like(labels))
                    mod.lloyd_iter(X, w, C + 0.5, st[0], st[1], st[3], 3, 2, pk, st[2])
                    mod.lloyd_iter(X, w, C, st[0], st[1], st[3], 3, 2, pk, st[2], True)
                    np.testing.assert_array_equal(st[3], labels)
                    np.testing.assert_allclose(st[0], sums, rtol=1e-12, atol=1e-9)
                    upd.append(st[0])
                np.testing.assert_array_equal(upd[0], upd[1])
            mean = X.mean(axis=0)
            Xc, xpk_c = mod.center_pack(X, mean, True, 2)
            np.testing.assert_array_equal(Xc, X - mean)
            assert (xpk_c is None) == (not own)
            Xc2, none = mod.center_pack(X, mean, False, 2)
            np.testing.assert_array_equal(Xc2, Xc)
            assert none is None
            if own:
                full = len(X) // 32 * 32 * X.shape[1]   # whole panels (the rest: padding)
                np.testing.assert_array_equal(xpk_c[:full], mod.pack_rows(Xc, 2)[:full])
                # on cache lines: the kernels' vector loads never straddle two
                assert xpk_c.ctypes.data % 64 == 0 and Xc.ctypes.data % 64 == 0
        np.testing.assert_array_equal(got[0][0], got[1][0])
        np.testing.assert_array_equal(got[0][0], d2.argmin(axis=1))
        for a, b in zip(got[0][1:], got[1][1:]):
            np.testing.assert_array_equal(a, b)


def test_plusplus_blocked_draws_match_searchsorted(dtype):
    """The Cython k-means++ draws from per-block sums (plusplus_update_blocks, then
    plusplus_sample on their cumulative sums): the candidates are those of
    np.searchsorted on the full cumulative sum (clipped to n - 1), on every built
    variant, for draws anywhere in [0, total], at block edges, past the total and on
    rows of zero weight."""
    rng = np.random.default_rng(3)
    n = 256 * 9 + 37                   # a short last block
    row = rng.random(n) * 3
    row[100:400] = 0.0                  # rows already chosen: nothing to draw there
    w = rng.uniform(0.5, 1.5, n).astype(dtype)
    w[1000:1100] = 0                    # zero weights
    cum = np.cumsum(w.astype(np.float64) * row)
    for mod in built_variants("_cy_kmeans"):
        closest = np.empty(n)
        bsum = np.empty(-(-n // 256))
        mod.plusplus_update_blocks(row, w, closest, bsum, 2)
        np.testing.assert_array_equal(closest, row)
        ref_b = np.add.reduceat(w.astype(np.float64) * row, np.arange(0, n, 256))
        np.testing.assert_allclose(bsum, ref_b, rtol=1e-12)
        cumb = np.cumsum(bsum)
        edges = cum[[0, 255, 256, 511, 999, 1100, n - 1]]
        r = np.concatenate([rng.uniform(0, cum[-1], 2000), edges * (1 - 1e-7),
                            edges * (1 + 1e-7), [0.0, cum[-1] * 1.5]])
        # draws within rounding of a row's cumulative sum may land on either row
        r = r[np.abs(cum[np.minimum(np.searchsorted(cum, r), n - 1)] - r) > 1e-9 * cum[-1]]
        assert r.shape[0] > 2000
        out = np.empty(r.shape[0], dtype=np.intp)
        mod.plusplus_sample(closest, w, cumb, r, out)
        np.testing.assert_array_equal(out, np.minimum(np.searchsorted(cum, r), n - 1))


def test_column_mean_is_numpys_bitwise(dtype):
    """The Cython column mean that centres X for the Lloyd passes is X.mean(axis=0)
    bitwise (scikit-learn centres with it), on every built variant."""
    rng = np.random.default_rng(4)
    for shape in ((100_003, 32), (1037, 19), (100_003, 2), (100_003, 1), (5, 1)):
        X = (rng.standard_normal(shape) * 10 + 3).astype(dtype)
        for mod in built_variants("_cy_kmeans"):
            m = mod.column_mean(X)
            assert m.dtype == dtype
            np.testing.assert_array_equal(m, X.mean(axis=0))
