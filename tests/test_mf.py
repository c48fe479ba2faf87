"""fastla.mf: SGD matrix factorisation (MatrixFactorization, matrix_factorization)."""

import numpy as np
import pytest
import scipy.sparse as sp

import fastla
from fastla import MatrixFactorization, matrix_factorization
from fastla.mf import DivergenceError, NotFittedError, _ingest

from fastla import _backend
from conftest import built_variants, op_backend


def low_rank(nu=60, ni=40, k=3, n=1500, noise=0.1, seed=0):
    rng = np.random.default_rng(seed)
    P = rng.normal(0, 0.7, (nu, k))
    Q = rng.normal(0, 0.7, (ni, k))
    bu = rng.normal(0, 0.3, nu)
    bi = rng.normal(0, 0.3, ni)
    pairs = rng.choice(nu * ni, size=min(n, nu * ni), replace=False)
    u, i = pairs // ni, pairs % ni
    r = 3.0 + bu[u] + bi[i] + (P[u] * Q[i]).sum(1) + rng.normal(0, noise, len(u))
    return u, i, r


def small(n=150, nu=13, ni=11, seed=1):
    rng = np.random.default_rng(seed)
    u = rng.integers(0, nu, n)
    i = rng.integers(0, ni, n)
    u[:nu] = np.arange(nu)
    i[:ni] = np.arange(ni)
    r = rng.integers(1, 6, n).astype(float)
    return u, i, r


def fit(data, **kw):
    kw.setdefault("random_state", 0)
    return MatrixFactorization(**kw).fit(data)


TOL = {np.float32: dict(rtol=2e-4, atol=2e-5), np.float64: dict(rtol=1e-9, atol=1e-11)}

# ---------------------------------------------------------------------------------------
# ingestion


def test_ingest_forms_agree():
    rng = np.random.default_rng(0)
    R = rng.integers(0, 6, (7, 5)).astype(float)
    R[R == 1] = np.nan  # NaN is missing as well as 0
    mask = np.isfinite(R) & (R != 0)
    u, i = np.nonzero(mask)
    r = R[u, i]
    forms = [R, sp.csr_matrix(np.nan_to_num(R)), sp.coo_matrix(np.nan_to_num(R)).tocsc(),
             (u, i, r)]
    for form in forms:
        gu, gi, gr, nu, ni = _ingest(form, np.float32)
        assert gu.dtype == np.int32 and gi.dtype == np.int32 and gr.dtype == np.float32
        np.testing.assert_array_equal(gu, u)
        np.testing.assert_array_equal(gi, i)
        np.testing.assert_array_equal(gr, r.astype(np.float32))
        assert (nu, ni) == (7, 5)


def test_dense_sparse_tuple_give_the_same_model():
    u, i, r = small()
    R = np.zeros((13, 11))
    R[u, i] = r  # duplicates: the last wins
    uu, ii = np.nonzero(R)
    models = [fit(x, n_factors=4, n_epochs=2, backend="cython")
              for x in (R, sp.csr_matrix(R), (uu, ii, R[uu, ii]))]
    for m in models[1:]:
        np.testing.assert_array_equal(m.pu_, models[0].pu_)
        np.testing.assert_array_equal(m.qi_, models[0].qi_)


def test_dataframe_raw_ids():
    pd = pytest.importorskip("pandas")
    u, i, r = small()
    df = pd.DataFrame({"user": np.array(["u%d" % x for x in u], dtype=object),
                       "item": i * 10 + 0.5, "rating": r})
    gu, gi, gr, uids, iids = _ingest(df, np.float64)
    np.testing.assert_array_equal(uids[gu], df.user.to_numpy())
    np.testing.assert_array_equal(iids[gi], df.item.to_numpy())
    m = fit(df, n_factors=4, n_epochs=3, backend="cython")
    assert set(m.user_ids_) == set(df.user)
    p = m.predict(df.user.to_numpy(), df.item.to_numpy())
    assert p.shape == (len(df),) and np.isfinite(p).all()
    # a raw id lookup is the same model row as its index
    j = 5
    uj = int(np.nonzero(m.user_ids_ == df.user[j])[0][0])
    ij = int(np.nonzero(m.item_ids_ == df.item[j])[0][0])
    want = m.global_mean_ + m.bu_[uj] + m.bi_[ij] + m.pu_[uj] @ m.qi_[ij]
    assert np.isclose(m.predict(df.user[j], df.item[j], clip=False), want, rtol=1e-5)


@pytest.mark.parametrize("bad, exc, match", [
    ((np.array([0, 1]), np.array([0, 1]), np.array([1.0, np.nan])), ValueError, "NaN"),
    ((np.array([0, 1]), np.array([0, 1]), np.array([1.0, np.inf])), ValueError, "NaN"),
    ((np.array([0, -1]), np.array([0, 1]), np.array([1.0, 2.0])), ValueError, "non-negative"),
    ((np.array([0, 1.5]), np.array([0, 1]), np.array([1.0, 2.0])), ValueError, "integer"),
    ((np.array(["a", "b"]), np.array([0, 1]), np.array([1.0, 2.0])), TypeError, "integer"),
    ((np.array([], int), np.array([], int), np.array([])), ValueError, "empty"),
    (np.zeros((3, 4)), ValueError, "empty"),
    (np.array([[1.0, np.inf]]), ValueError, "infinity"),
    (sp.csr_matrix(np.array([[1.0, np.nan]])), ValueError, "NaN"),
    (np.ones(5), ValueError, "2-D"),
    (None, TypeError, "None"),
    ((np.array([0, 1]), np.array([0]), np.array([1.0, 2.0])), ValueError, "one length"),
])
def test_bad_input(bad, exc, match):
    with pytest.raises(exc, match=match):
        MatrixFactorization(n_factors=2, n_epochs=1, backend="python").fit(bad)


@pytest.mark.parametrize("kw, exc", [
    (dict(n_factors=0), ValueError), (dict(n_factors=1.5), TypeError),
    (dict(lr_all=0), ValueError), (dict(lr_all=-0.1), ValueError),
    (dict(lr_pu=0.0), ValueError), (dict(reg_all=-1), ValueError),
    (dict(schedule="cosine"), ValueError), (dict(parallel="locks"), ValueError),
    (dict(dtype=np.int32), TypeError), (dict(n_epochs=-1), ValueError),
    (dict(backend="fortran"), fastla.BackendError),
])
def test_bad_params(kw, exc):
    with pytest.raises(exc):
        MatrixFactorization(**kw).fit(small())


def test_not_fitted():
    m = MatrixFactorization()
    for call in (lambda: m.predict([0], [0]), lambda: m.recommend([0]),
                 lambda: m.fold_in([0], [1.0]), lambda: m.save("x.npz")):
        with pytest.raises(NotFittedError, match="fit"):
            call()


# ---------------------------------------------------------------------------------------
# the epoch kernel against the sequential reference


CASES = [
    dict(),
    dict(biased=False),
    dict(schedule="adagrad", lr_all=0.05),
    dict(schedule="decay", lr_bu=0.01, reg_qi=0.05),
    dict(parallel="hogwild"),
]


# numba compiles one specialisation per dtype: f64 is checked on the default case only
KERNEL_CASES = [pytest.param(be, kw, dt, id=f"{be}-{name}-{np.dtype(dt).name}")
                for be in ("cython", "numba")
                for kw, name in zip(CASES, ["biased", "unbiased", "adagrad", "decay", "hogwild"])
                for dt in (np.float32, np.float64)
                if not (be == "numba" and dt == np.float64 and kw)]


@pytest.mark.parametrize("be, kw, dtype", KERNEL_CASES)
def test_kernel_matches_reference(be, kw, dtype):
    op_backend("sgd_mf", be)
    data = small()
    common = dict(n_factors=11, n_epochs=3, lr_all=0.02, dtype=dtype, n_blocks=3,
                  n_threads=1)
    common.update(kw)
    ref = fit(data, backend="python", **common)
    got = fit(data, backend=be, **common)
    assert got.pu_.dtype == dtype
    for a in ("pu_", "qi_", "bu_", "bi_"):
        np.testing.assert_allclose(getattr(got, a), getattr(ref, a), **TOL[dtype])
    np.testing.assert_allclose(got.history_["train_rmse"], ref.history_["train_rmse"],
                               rtol=1e-5)


@pytest.mark.parametrize("k", [1, 5, 16, 17, 100, 130, 257])
def test_register_kernel_matches_reference(monkeypatch, k, dtype):
    """The AVX-512 build runs the constant and decay schedules on _mf_vec.h's kernel
    (p_u in registers, masked last vector; k up to 16 registers, the generic loop
    beyond): both paths of every built variant against the reference epoch, k below,
    at and past a vector's lanes and past the register limit, biased and unbiased,
    runs of one user's ratings, several blocks and strata."""
    from fastla._kernels import _naive
    from fastla.mf import _grid, _strata

    rng = np.random.default_rng(k)
    nu, ni, n, B = 17, 13, 400, 3
    u = rng.integers(0, nu, n).astype(np.int32)
    i = rng.integers(0, ni, n).astype(np.int32)
    r = rng.integers(1, 6, n).astype(dtype)
    order, ptr = _grid(u, i, nu, ni, B, np.random.RandomState(0))
    u, i, r = u[order], i[order], r[order]
    cols = _strata(B, np.random.RandomState(1))
    P0 = rng.normal(0, 0.1, (nu, k)).astype(dtype)
    Q0 = rng.normal(0, 0.1, (ni, k)).astype(dtype)
    bu0 = rng.normal(0, 0.1, nu).astype(dtype)
    bi0 = rng.normal(0, 0.1, ni).astype(dtype)
    prm = np.array([0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08], dtype)
    ones = [np.ones(m, dtype) for m in (nu, ni, nu, ni)]
    tol = TOL[dtype]
    for biased in (1, 0):
        ref = [a.copy() for a in (P0, Q0, bu0, bi0)]
        sse_ref = 0.0
        for _ in range(2):
            sse_ref = _naive.sgd_mf(u, i, r, ptr, cols, *ref, *ones, 3.5, prm, biased, 0,
                                    0, np.zeros(B * B), 1)
        for mod in built_variants("_cy_mf"):
            for own in (True, False):
                monkeypatch.setattr(mod, "OWN_MF", own)
                got = [a.copy() for a in (P0, Q0, bu0, bi0)]
                for _ in range(2):
                    sse = mod.sgd_mf(u, i, r, ptr, cols, *got, *ones, 3.5, prm, biased, 0,
                                     0, np.zeros(B * B), 2)
                for a, b in zip(got, ref):
                    np.testing.assert_allclose(a, b, **tol)
                np.testing.assert_allclose(sse, sse_ref, rtol=1e-5)


def test_reference_is_surprise_rule_on_one_rating():
    # one rating, one epoch: the update written out by hand
    m = fit((np.array([0]), np.array([0]), np.array([4.0])), n_factors=3, n_epochs=1,
            lr_all=0.1, reg_all=0.5, backend="python", dtype=np.float64)
    rs = np.random.RandomState(0)
    p = rs.normal(0, 0.1, 3)
    q = rs.normal(0, 0.1, 3)
    err = 4.0 - (4.0 + 0 + 0 + p @ q)
    np.testing.assert_allclose(m.bu_, [0.1 * err])
    np.testing.assert_allclose(m.pu_[0], p + 0.1 * (err * q - 0.5 * p))
    np.testing.assert_allclose(m.qi_[0], q + 0.1 * (err * p - 0.5 * q))


@pytest.mark.parametrize("be", ["cython", "numba"])
def test_deterministic_across_thread_counts(be):
    op_backend("sgd_mf", be)
    data = low_rank(nu=200, ni=150, n=6000)
    kw = dict(n_factors=16, n_epochs=3, n_blocks=6, backend=be)
    ms = [fit(data, n_threads=t, **kw) for t in (1, 2, 3)]
    for m in ms[1:]:
        for a in ("pu_", "qi_", "bu_", "bi_"):
            np.testing.assert_array_equal(getattr(m, a), getattr(ms[0], a))
        assert m.history_["train_rmse"] == ms[0].history_["train_rmse"]
    other = fit(data, n_threads=2, **dict(kw, random_state=1))
    assert not np.array_equal(other.pu_, ms[0].pu_)


def test_hogwild_runs_and_learns():
    data = low_rank(nu=200, ni=150, n=8000)
    m = fit(data, n_factors=8, n_epochs=30, lr_all=0.02, parallel="hogwild", n_threads=2,
            backend="cython")
    assert m.history_["train_rmse"][-1] < 0.5 * m.history_["train_rmse"][0]


@pytest.mark.parametrize("be", ["cython", "numba"])
def test_reaches_noise_floor(be):
    op_backend("sgd_mf", be)
    noise = 0.1
    u, i, r = low_rank(nu=300, ni=200, k=3, n=30000, noise=noise, seed=3)
    tr, te = slice(0, 27000), slice(27000, None)
    m = fit((u[tr], i[tr], r[tr]), n_factors=3, n_epochs=60, lr_all=0.02, reg_all=0.005,
            backend=be, n_threads=2)
    rmse = m.score((u[te], i[te], r[te]))
    baseline = np.std(r[te])
    assert rmse < 1.3 * noise, (rmse, baseline)


@pytest.mark.parametrize("be", ["cython", "numba"])
def test_divergence_raises(be):
    op_backend("sgd_mf", be)
    u, i, r = low_rank()
    with pytest.raises(DivergenceError, match="smaller learning rate"):
        fit((u, i, r * 1e3), n_factors=20, lr_all=5.0, n_epochs=50, backend=be)


# ---------------------------------------------------------------------------------------
# estimator API


@pytest.fixture(scope="module")
def model_df():
    pd = pytest.importorskip("pandas")
    u, i, r = low_rank(nu=50, ni=30, n=900, seed=7)
    df = pd.DataFrame({"u": ["user%d" % x for x in u], "i": ["item%d" % x for x in i],
                       "r": np.clip(np.round(r), 1, 5)})
    return MatrixFactorization(n_factors=5, n_epochs=10, random_state=0,
                               backend="cython").fit(df), df


def test_predict_clip_and_unknown(model_df):
    m, df = model_df
    assert m.rating_scale_ == (1.0, 5.0)
    p = m.predict(df.u.to_numpy(), df.i.to_numpy())
    assert p.min() >= 1 and p.max() <= 5
    raw = m.predict(df.u.to_numpy(), df.i.to_numpy(), clip=False)
    np.testing.assert_array_equal(np.clip(raw, 1, 5), p)
    iu = list(m.user_ids_).index("user0")
    ii = list(m.item_ids_).index("item0")
    got = m.predict(["nobody", "user0", "nobody"], ["item0", "nothing", "nothing"],
                    clip=False)
    np.testing.assert_allclose(got, [m.global_mean_ + m.bi_[ii], m.global_mean_ + m.bu_[iu],
                                     m.global_mean_], rtol=1e-6)


def test_recommend_matches_brute_force(model_df):
    m, df = model_df
    users = ["user3", "user0", "nobody", "user7"]
    items, scores = m.recommend(users, n=6, chunk_size=3)
    all_items = m.item_ids_
    for row, user in enumerate(users):
        full = m.predict([user] * len(all_items), all_items, clip=False)
        if user != "nobody":
            seen = set(df.i[df.u == user])
            full = np.where(np.isin(all_items, list(seen)), -np.inf, full)
            assert not seen & set(items[row])
        best = np.sort(full)[::-1][:6]
        np.testing.assert_allclose(scores[row], best, rtol=1e-6)
        np.testing.assert_allclose(m.predict([user] * 6, items[row], clip=False),
                                   scores[row], rtol=1e-6)
    items2, _ = m.recommend(["user3"], n=6, exclude_seen=False)
    assert items2.shape == (1, 6)


def test_fold_in_solves_the_ridge_problem(model_df):
    m, df = model_df
    rows = df[df.u == "user5"]
    bu, pu = m.fold_in(rows.i.to_numpy(), rows.r.to_numpy())
    # stationarity of  sum (r - mu - bi - bu - q.p)^2 + n reg (bu^2 + |p|^2)
    idx = np.array([list(m.item_ids_).index(x) for x in rows.i])
    Qs = m.qi_[idx].astype(np.float64)
    err = rows.r.to_numpy() - m.global_mean_ - m.bi_[idx] - bu - Qs @ pu
    n = len(rows)
    np.testing.assert_allclose(err.sum(), n * 0.02 * bu, atol=1e-8)
    np.testing.assert_allclose(Qs.T @ err, n * 0.02 * pu, atol=1e-8)
    m2 = MatrixFactorization.load(_roundtrip(m))
    m2.fold_in(rows.i.to_numpy(), rows.r.to_numpy(), user="newbie")
    np.testing.assert_allclose(m2.predict("newbie", rows.i.iloc[0], clip=False),
                               m.global_mean_ + bu + m.bi_[idx[0]] + Qs[0] @ pu, rtol=1e-5)


_tmp = {}


def _roundtrip(m):
    import tempfile, os
    d = tempfile.mkdtemp()
    path = os.path.join(d, "m.npz")
    m.save(path)
    return path


def test_save_load(model_df):
    m, df = model_df
    m2 = MatrixFactorization.load(_roundtrip(m))
    np.testing.assert_array_equal(m2.predict(df.u.to_numpy(), df.i.to_numpy()),
                                  m.predict(df.u.to_numpy(), df.i.to_numpy()))
    np.testing.assert_array_equal(m2.recommend(["user1"])[0], m.recommend(["user1"])[0])
    assert m2.history_ == m.history_ and m2.n_factors == 5


def test_history_and_early_stopping(capsys):
    u, i, r = low_rank(nu=100, ni=80, n=4000, noise=0.3)
    tr, va = (u[:3000], i[:3000], r[:3000]), (u[3000:], i[3000:], r[3000:])
    m = MatrixFactorization(n_factors=30, n_epochs=200, lr_all=0.05, reg_all=0.0,
                            early_stopping=True, patience=3, random_state=0,
                            backend="cython", verbose=True).fit(tr, eval_set=va)
    h = m.history_
    assert len(h["train_rmse"]) == len(h["val_rmse"]) == h["epochs"] < 200
    assert h["best_epoch"] == int(np.argmin(h["val_rmse"])) + 1
    assert h["epochs"] - h["best_epoch"] == 3
    # the best epoch's model is restored
    assert np.isclose(m.score(va), min(h["val_rmse"]))
    assert "epoch" in capsys.readouterr().err
    with pytest.raises(ValueError, match="eval_set"):
        MatrixFactorization(early_stopping=True).fit(tr)


def test_schedules_learn():
    u, i, r = low_rank(nu=100, ni=80, n=4000)
    for kw in (dict(schedule="adagrad", lr_all=0.1), dict(schedule="decay", lr_all=0.1)):
        m = fit((u, i, r), n_factors=5, n_epochs=20, backend="cython", **kw)
        assert m.history_["train_rmse"][-1] < 0.6 * m.history_["train_rmse"][0], kw


def test_surprise_parity():
    surprise = pytest.importorskip("surprise")
    pd = pytest.importorskip("pandas")
    u, i, r = low_rank(nu=400, ni=250, k=5, n=30000, noise=0.5, seed=11)
    r = np.clip(np.round(r * 2) / 2, 1, 5)
    df = pd.DataFrame({"u": u, "i": i, "r": r})
    tr, te = df.iloc[:25000], df.iloc[25000:]
    data = surprise.Dataset.load_from_df(tr, surprise.Reader(rating_scale=(1, 5)))
    algo = surprise.SVD(random_state=0).fit(data.build_full_trainset())
    s_pred = np.array([algo.predict(a, b).est for a, b in zip(te.u, te.i)])
    s_rmse = np.sqrt(np.mean((s_pred - te.r) ** 2))
    m = MatrixFactorization(random_state=0, rating_scale=(1, 5), backend="cython").fit(tr)
    f_rmse = np.sqrt(np.mean((m.predict(te.u.to_numpy(), te.i.to_numpy()) - te.r) ** 2))
    print(f"fastla {f_rmse:.4f} surprise {s_rmse:.4f}")
    assert abs(f_rmse - s_rmse) < 0.005, (f_rmse, s_rmse)


# ---------------------------------------------------------------------------------------
# the seed's function


@pytest.mark.parametrize("be", ["cython", "numba"])
def test_matrix_factorization_matches_reference(be, dtype):
    op_backend("matrix_factorization", be)
    rng = np.random.default_rng(0)
    R = rng.integers(0, 6, (6, 5)).astype(dtype)
    P0, Q0 = matrix_factorization(R, 9, 0.01, 5, random_state=1, backend="python")
    P, Q = matrix_factorization(R, 9, 0.01, 5, random_state=1, backend=be)
    assert P.dtype == dtype and P.shape == (6, 9) and Q.shape == (5, 9)
    np.testing.assert_allclose(P, P0, **TOL[dtype])
    np.testing.assert_allclose(Q, Q0, **TOL[dtype])


@pytest.mark.parametrize("k", [1, 9, 16, 20, 130, 257])
def test_matrix_factorization_register_kernel(monkeypatch, k, dtype):
    """The seed's loop on _mf_vec.h's kernel (AVX-512 builds: the row's p in registers)
    and on the generic loop, every built variant, against the reference loop: k below,
    at and past a vector's lanes and past the register limit, several entries per row
    and per column, empty rows."""
    from fastla._kernels import _naive

    rng = np.random.default_rng(k)
    R = rng.integers(0, 6, (9, 7)).astype(dtype)
    R[3] = 0
    rows, cols = np.nonzero(R > 0)
    rows, cols = rows.astype(np.int32), cols.astype(np.int32)
    vals = np.ascontiguousarray(R[rows, cols])
    P0 = rng.random((9, k)).astype(dtype) / k
    Q0 = rng.random((7, k)).astype(dtype)
    P1, Q1 = P0.copy(), Q0.copy()
    _naive.matrix_factorization(rows, cols, vals, P1, Q1, 0.01, 3, 1)
    for mod in built_variants("_cy_mf"):
        for own in (True, False):
            monkeypatch.setattr(mod, "OWN_MF", own)
            P, Q = P0.copy(), Q0.copy()
            mod.matrix_factorization(rows, cols, vals, P, Q, 0.01, 3, 1)
            np.testing.assert_allclose(P, P1, **TOL[dtype])
            np.testing.assert_allclose(Q, Q1, **TOL[dtype])


def test_matrix_factorization_fits_observed_entries():
    rng = np.random.default_rng(1)
    R = rng.random((20, 15)) @ rng.random((15, 15)) * 0.3 + 0.5
    R[rng.random(R.shape) < 0.3] = 0
    P, Q = matrix_factorization(R, 15, 0.01, 500, random_state=0)
    obs = R > 0
    assert np.sqrt(np.mean((P @ Q.T - R)[obs] ** 2)) < 0.05


def test_matrix_factorization_bad_input():
    with pytest.raises(ValueError):
        matrix_factorization(np.ones((3, 3)), 0)
    with pytest.raises(ValueError):
        matrix_factorization(np.ones((3, 3)), 2, learning_rate=0)
    with pytest.raises(ValueError, match="NaN"):
        matrix_factorization(np.array([[1.0, np.nan]]), 2)
    with pytest.raises(DivergenceError, match="learning_rate"):
        matrix_factorization(np.full((4, 4), 100.0), 3, learning_rate=1.0, max_iter=50)


# ---------------------------------------------------------------------------------------
# CUDA (real GPU or NUMBA_ENABLE_CUDASIM=1; tiny data: the simulator is slow)


@pytest.mark.cuda
@pytest.mark.parametrize("kw", [dict(), dict(biased=False), dict(schedule="adagrad",
                                                                 lr_all=0.05)],
                         ids=["biased", "unbiased", "adagrad"])
def test_cuda_matches_reference(kw, dtype):
    op_backend("sgd_mf", "cuda")
    data = small(n=40, nu=6, ni=5)
    common = dict(n_factors=37, n_epochs=2, lr_all=0.02, dtype=dtype, n_blocks=2)
    common.update(kw)
    ref = fit(data, backend="python", **common)
    got = fit(data, backend="cuda", **common)
    for a in ("pu_", "qi_", "bu_", "bi_"):
        np.testing.assert_allclose(getattr(got, a), getattr(ref, a), **TOL[dtype])
    np.testing.assert_allclose(got.history_["train_rmse"], ref.history_["train_rmse"],
                               rtol=1e-5)


@pytest.mark.cuda
def test_cuda_hogwild_and_device_arrays():
    op_backend("sgd_mf", "cuda")
    from numba import cuda

    from fastla._kernels import _cuda_mf, _naive

    data = small(n=40, nu=6, ni=5)
    m = fit(data, backend="cuda", n_factors=3, n_epochs=3, parallel="hogwild", n_blocks=2)
    assert np.isfinite(m.pu_).all() and len(m.history_["train_rmse"]) == 3
    # device arrays are updated in place on the device
    rng = np.random.default_rng(0)
    u = np.array([0, 0, 1], np.int32)
    i = np.array([0, 1, 1], np.int32)
    r = np.array([4.0, 2.0, 5.0], np.float32)
    ptr = np.array([0, 3], np.int64)
    cols = np.zeros((1, 1), np.int32)
    P = rng.normal(0, .1, (2, 4)).astype(np.float32)
    Q = rng.normal(0, .1, (2, 4)).astype(np.float32)
    arrs = [P, Q] + [np.zeros(2, np.float32) for _ in range(2)] + \
        [np.ones(2, np.float32) for _ in range(4)]
    prm = np.array([0.01] * 4 + [0.02] * 4, np.float32)
    ref = [a.copy() for a in arrs]
    sse_ref = _naive.sgd_mf(u, i, r, ptr, cols, *ref, 3.5, prm, 1, 0, 0, np.zeros(1), 1)
    dev = [cuda.to_device(a) for a in arrs]
    sse = _cuda_mf.sgd_mf(*(cuda.to_device(a) for a in (u, i, r, ptr)), cols, *dev, 3.5,
                          prm, 1, 0, 0, cuda.to_device(np.zeros(1)), 1)
    np.testing.assert_allclose(sse, sse_ref, rtol=1e-5)
    np.testing.assert_allclose(dev[0].copy_to_host(), ref[0], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("n, n_keys", [(0, 3), (1, 1), (1000, 7), (5000, 4000)])
def test_counting_order_is_a_stable_sort(n, n_keys):
    from fastla.mf import _counting_order

    keys = np.random.default_rng(n).integers(0, n_keys, n)
    order, ptr = _counting_order(keys, n_keys)
    np.testing.assert_array_equal(order, np.argsort(keys, kind="stable"))
    np.testing.assert_array_equal(np.diff(ptr), np.bincount(keys, minlength=n_keys))
    assert ptr[0] == 0 and ptr[-1] == n


@pytest.mark.parametrize("nu, ni, n, B", [(1, 1, 1, 1), (17, 13, 400, 3), (300, 40, 5000, 8),
                                          (50, 900, 3000, 64)])
def test_grid_kernel_matches_numpy_passes(nu, ni, n, B):
    """The Cython grid (a pass by block, then two inside each block, blocks in parallel)
    gives the NumPy passes' order and block offsets exactly, on any thread count; both
    are the lexicographic order (block, permuted user, permuted item)."""
    op_backend("sgd_mf", "cython")
    from fastla.mf import _grid_numpy

    rng = np.random.default_rng(n)
    u = rng.integers(0, nu, n).astype(np.int32)
    i = rng.integers(0, ni, n).astype(np.int32)
    perm_u = rng.permutation(nu).astype(np.int64)
    perm_i = rng.permutation(ni).astype(np.int64)
    pu, pi = perm_u[u], perm_i[i]
    block = (pu * B) // nu * B + (pi * B) // ni
    lex = np.lexsort((pi, pu, block))
    ref_order, ref_ptr = _grid_numpy(u, i, perm_u, perm_i, B)
    np.testing.assert_array_equal(ref_order, lex)
    for nt in (1, 2, 3):
        order, ptr = _backend.entry("sgd_mf", "cython", "grid_order")(u, i, perm_u, perm_i,
                                                                      B, nt)
        np.testing.assert_array_equal(order, ref_order)
        np.testing.assert_array_equal(ptr, ref_ptr)
