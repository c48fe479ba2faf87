"""fastla.KMeans and fastla.MiniBatchKMeans: scikit-learn's estimator API on fastla."""

import subprocess
import sys
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn.cluster import KMeans as SkKMeans  # noqa: E402
from sklearn.cluster import MiniBatchKMeans as SkMiniBatchKMeans  # noqa: E402
from sklearn.datasets import make_blobs  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.metrics.pairwise import euclidean_distances  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import fastla  # noqa: E402
from fastla import _backend  # noqa: E402
from fastla._kmeans_estimators import KMeans, MiniBatchKMeans  # noqa: E402

from conftest import op_backend  # noqa: E402

CPU_BACKENDS = ("cython", "numba")
OPS = ("kmeans", "kmeans_assign", "kmeans_plusplus", "minibatch_kmeans",
       "pairwise_distances")


def _available(b):
    return all(b in _backend._REGISTRY.get(op, {}) and _backend.backend_status(op)[b][0]
               for op in OPS)


@pytest.fixture(params=CPU_BACKENDS)
def cpu_backend(request):
    for op in OPS:
        op_backend(op, request.param)
    return request.param


def blobs(dtype=np.float64, n=600, d=4, k=5, seed=0):
    X, y = make_blobs(n_samples=n, n_features=d, centers=k, cluster_std=1.2,
                      random_state=seed)
    return X.astype(dtype), y


def weights(n, seed=1):
    return np.random.default_rng(seed).uniform(0.2, 3.0, n)


TOL = {np.float32: dict(rtol=1e-4, atol=1e-4), np.float64: dict(rtol=1e-9, atol=1e-9)}

# ---------------------------------------------------------------------------------------
# scikit-learn's estimator checks

# scikit-learn marks the same check as an expected failure for its own KMeans and
# MiniBatchKMeans (sklearn.utils._test_common.instance_generator): the random
# initialisation (k-means++ draws, mini-batch sampling) consumes a different random
# stream with weights than with repeated rows, so the two fits need not agree.
_XFAIL = {
    "check_sample_weight_equivalence_on_dense_data": (
        "sample_weight is not equivalent to removing/repeating samples (random init "
        "and batch sampling differ; scikit-learn xfails it for KMeans too)."
    ),
}


def _expected_failed(estimator):
    return _XFAIL


# scikit-learn's own test parameters for these estimators (fast, small data)
_CHECKED = [
    est
    for b in CPU_BACKENDS if _available(b)
    for est in (
        KMeans(n_clusters=2, n_init=2, max_iter=5, backend=b),
        MiniBatchKMeans(n_clusters=2, n_init=2, max_iter=5, batch_size=10, backend=b),
    )
]


@parametrize_with_checks(_CHECKED, expected_failed_checks=_expected_failed)
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        check(estimator)


# ---------------------------------------------------------------------------------------
# KMeans against scikit-learn


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_kmeans_matches_sklearn_init_array(cpu_backend, dtype, weighted):
    X, _ = blobs(dtype)
    sw = weights(X.shape[0]).astype(dtype) if weighted else None
    init = X[np.random.default_rng(3).choice(X.shape[0], 5, replace=False)]
    ours = KMeans(5, init=init, backend=cpu_backend).fit(X, sample_weight=sw)
    ref = SkKMeans(5, init=init).fit(X, sample_weight=sw)
    np.testing.assert_array_equal(ours.labels_, ref.labels_)
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, **TOL[dtype])
    np.testing.assert_allclose(ours.inertia_, ref.inertia_, rtol=TOL[dtype]["rtol"])
    assert ours.n_iter_ == ref.n_iter_
    assert ours.cluster_centers_.dtype == dtype
    assert ours.labels_.dtype == np.int32


@pytest.mark.parametrize("init,algorithm", [("k-means++", "lloyd"), ("random", "elkan")])
def test_kmeans_matches_sklearn_seeded(cpu_backend, init, algorithm):
    # same random_state, same random streams: the same initial centers and result
    X, _ = blobs(np.float64, n=400, k=4, seed=5)
    kw = dict(init=init, n_init=3, random_state=7, algorithm=algorithm, max_iter=50)
    ours = KMeans(4, backend=cpu_backend, **kw).fit(X)
    ref = SkKMeans(4, **kw).fit(X)
    np.testing.assert_array_equal(ours.labels_, ref.labels_)
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, rtol=1e-9)
    np.testing.assert_allclose(ours.inertia_, ref.inertia_, rtol=1e-9)


def test_kmeans_predict_transform_score(cpu_backend, dtype):
    X, _ = blobs(dtype)
    Xnew = (X[:50] + 0.3).astype(dtype)
    km = KMeans(5, random_state=0, backend=cpu_backend).fit(X)
    np.testing.assert_array_equal(km.predict(X), km.labels_)
    np.testing.assert_array_equal(km.fit_predict(X), km.labels_)
    D = km.transform(Xnew)
    assert D.shape == (50, 5) and D.dtype == dtype
    ref = euclidean_distances(Xnew.astype(np.float64),
                              km.cluster_centers_.astype(np.float64))
    np.testing.assert_allclose(D, ref, rtol=1e-5 if dtype == np.float32 else 1e-10,
                               atol=1e-5)
    np.testing.assert_array_equal(km.predict(Xnew), D.argmin(axis=1))
    np.testing.assert_allclose(km.score(X), -km.inertia_, rtol=1e-5)
    dmin = D.min(axis=1).astype(np.float64)
    np.testing.assert_allclose(-km.score(Xnew), (dmin ** 2).sum(), rtol=1e-4)
    sw = weights(50)
    sq = ((Xnew.astype(np.float64) - km.cluster_centers_[km.predict(Xnew)]) ** 2).sum(1)
    np.testing.assert_allclose(-km.score(Xnew, sample_weight=sw), (sw * sq).sum(),
                               rtol=1e-4)
    Dt = KMeans(5, random_state=0, backend=cpu_backend).fit_transform(X)
    np.testing.assert_allclose(Dt, km.transform(X), rtol=1e-6)


def test_kmeans_copy_x_false_restores_x(cpu_backend):
    X, _ = blobs(np.float64)
    X0 = X.copy()
    km = KMeans(5, random_state=0, copy_x=False, backend=cpu_backend).fit(X)
    np.testing.assert_allclose(X, X0, rtol=1e-12, atol=1e-12)
    ref = KMeans(5, random_state=0, backend=cpu_backend).fit(X0)
    np.testing.assert_array_equal(km.labels_, ref.labels_)


def test_kmeans_errors():
    X, _ = blobs(np.float64, n=20)
    with pytest.raises(ValueError, match="n_samples=20 should be >= n_clusters=30"):
        KMeans(30).fit(X)
    with pytest.raises(ValueError, match="algorithm"):
        KMeans(2, algorithm="full").fit(X)
    with pytest.raises(ValueError, match="n_clusters"):
        KMeans(0).fit(X)
    with pytest.raises(ValueError, match="n_init"):
        KMeans(2, n_init=0).fit(X)
    with pytest.raises(ValueError, match="shape of the initial centers"):
        KMeans(2, init=X[:3]).fit(X)
    with pytest.raises(ValueError, match="sample_weight"):
        KMeans(2).fit(X, sample_weight=np.ones(5))
    with pytest.raises(NotFittedError):
        KMeans(2).predict(X)
    with pytest.warns(RuntimeWarning, match="Explicit initial center"):
        KMeans(2, init=X[:2], n_init=3).fit(X)
    with pytest.warns(RuntimeWarning, match="single cluster"):
        KMeans(1, algorithm="elkan").fit(X)


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
def test_feature_names_and_dtype_promotion():
    pd = pytest.importorskip("pandas")
    X, _ = blobs(np.float32, n=100, k=3)
    df = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    km = KMeans(3, random_state=0).fit(df)
    assert list(km.feature_names_in_) == ["a", "b", "c", "d"]
    assert list(km.get_feature_names_out()) == ["kmeans0", "kmeans1", "kmeans2"]
    assert km.n_features_in_ == 4
    # float64 data on a float32 model: computed in float64 (scikit-learn raises here)
    assert km.transform(X.astype(np.float64)).dtype == np.float64
    np.testing.assert_array_equal(km.predict(X.astype(np.float64)), km.labels_)


# ---------------------------------------------------------------------------------------
# MiniBatchKMeans


def test_minibatch_close_to_kmeans(cpu_backend, dtype):
    X, _ = blobs(dtype, n=3000, d=5, k=6, seed=2)
    full = KMeans(6, random_state=0, n_init=3, backend=cpu_backend).fit(X)
    mb = MiniBatchKMeans(6, random_state=0, batch_size=256, n_init=3,
                         backend=cpu_backend).fit(X)
    assert mb.inertia_ <= 1.03 * full.inertia_
    assert mb.cluster_centers_.dtype == dtype
    assert mb.labels_.dtype == np.int32 and mb.labels_.shape == (3000,)
    assert mb.transform(X[:10]).dtype == dtype
    np.testing.assert_array_equal(mb.predict(X), mb.labels_)
    assert mb.n_steps_ >= 1 and mb.n_iter_ == int(np.ceil(mb.n_steps_ * 256 / 3000))


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_minibatch_matches_sklearn(cpu_backend, weighted):
    # the same random streams (init subsample, batches, reassignments): the same fit
    X, _ = blobs(np.float64, n=1000, d=3, k=8, seed=4)
    sw = weights(1000) if weighted else None
    kw = dict(random_state=3, batch_size=100, max_iter=20, n_init=2, tol=1e-4,
              reassignment_ratio=0.05)
    ours = MiniBatchKMeans(8, backend=cpu_backend, **kw).fit(X, sample_weight=sw)
    ref = SkMiniBatchKMeans(8, **kw).fit(X, sample_weight=sw)
    assert ours.n_steps_ == ref.n_steps_ and ours.n_iter_ == ref.n_iter_
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, rtol=1e-8,
                               atol=1e-8)
    np.testing.assert_array_equal(ours.labels_, ref.labels_)
    np.testing.assert_allclose(ours.inertia_, ref.inertia_, rtol=1e-8)


def test_minibatch_compute_labels_false(cpu_backend):
    X, _ = blobs(np.float64, n=500)
    mb = MiniBatchKMeans(5, random_state=0, batch_size=50, compute_labels=False,
                         backend=cpu_backend).fit(X)
    assert not hasattr(mb, "labels_")
    assert np.isfinite(mb.inertia_) and mb.inertia_ > 0


def test_partial_fit(cpu_backend, dtype):
    X, _ = blobs(dtype, n=1200, k=5, seed=6)
    ours = MiniBatchKMeans(5, random_state=0, backend=cpu_backend)
    ref = SkMiniBatchKMeans(5, random_state=0)
    for chunk in np.array_split(X, 6):
        ours.partial_fit(chunk)
        ref.partial_fit(chunk)
    assert ours.n_steps_ == 6
    assert ours.cluster_centers_.dtype == dtype
    assert ours.labels_.shape == (200,)
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_,
                               **TOL[dtype])
    np.testing.assert_allclose(ours.inertia_, ref.inertia_, rtol=TOL[dtype]["rtol"])
    # a later batch in another dtype is computed in the model's dtype
    ours.partial_fit(X[:100].astype(np.float64))
    assert ours.cluster_centers_.dtype == dtype
    with pytest.raises(ValueError, match="features"):
        ours.partial_fit(X[:10, :3])
    full = KMeans(5, random_state=0, backend=cpu_backend).fit(X)
    assert -ours.score(X) <= 1.05 * full.inertia_


def test_minibatch_errors():
    X, _ = blobs(np.float64, n=30)
    with pytest.raises(ValueError, match="batch_size"):
        MiniBatchKMeans(2, batch_size=0).fit(X)
    with pytest.raises(ValueError, match="reassignment_ratio"):
        MiniBatchKMeans(2, reassignment_ratio=-1.0).fit(X)
    with pytest.raises(ValueError, match="n_samples=30 should be >= n_clusters=40"):
        MiniBatchKMeans(40).partial_fit(X)
    with pytest.warns(RuntimeWarning, match="init_size"):
        MiniBatchKMeans(5, init_size=2, random_state=0).fit(X)


# ---------------------------------------------------------------------------------------
# lazy import


def test_lazy_attribute():
    assert fastla.KMeans is KMeans
    assert fastla.MiniBatchKMeans is MiniBatchKMeans
    with pytest.raises(AttributeError):
        fastla.NoSuchThing  # noqa: B018


def _run(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=None, timeout=120)


def test_import_fastla_does_not_import_sklearn():
    r = _run("import sys, fastla; print('sklearn' in sys.modules)")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


def test_clear_error_without_sklearn():
    r = _run(
        "import sys\n"
        "sys.modules['sklearn'] = None\n"
        "import fastla\n"
        "try:\n"
        "    fastla.KMeans\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    assert r.returncode == 0, r.stderr
    assert "fastla.KMeans needs scikit-learn: pip install scikit-learn" in r.stdout
