"""Matrix factorisation of explicit ratings by SGD: Surprise's SVD model at compiled speed.

:class:`MatrixFactorization` fits ``r_ui ~ mu + b_u + b_i + q_i . p_u`` (or ``q_i . p_u``
with ``biased=False``) by stochastic gradient descent with Surprise's update rule and
parameter names. :func:`matrix_factorization` is the seed's dense, unbiased function.

Layout: ratings are held as int32 users, int32 items and ratings in the model dtype; user
and item ids are randomly permuted and the rating matrix is cut into a ``B x B`` grid of
blocks (B chosen so one block's factor rows fit in cache); inside a block ratings are
sorted by user. ``parallel="deterministic"`` runs an epoch as ``B`` strata of ``B``
blocks that share no user and no item (DSGD), so the blocks of a stratum run in
parallel and the result is bitwise the same on any thread count.
"""

import json
import numbers
import sys
import time

import numpy as np

from . import _backend, _threads, _validation

__all__ = ["MatrixFactorization", "matrix_factorization", "DivergenceError"]

_SCHEDULES = ("constant", "adagrad", "decay")
_PARALLEL = ("deterministic", "hogwild")
_BLOCK_BYTES = 512 * 1024  # factor rows of one block: about half of a 1 MB L2


class DivergenceError(FloatingPointError):
    """SGD diverged: the training loss or the factors became infinite or NaN."""


class NotFittedError(ValueError, AttributeError):
    """The model is used before ``fit``."""


# ---------------------------------------------------------------------------------------
# ingestion


def _is_dataframe(x):
    return hasattr(x, "columns") and hasattr(x, "iloc")


def _factorize(values, name):
    """(codes int32, uniques) without Python loops; order of first appearance."""
    import pandas as pd

    codes, uniques = pd.factorize(values, sort=False, use_na_sentinel=True)
    if (codes < 0).any():
        raise ValueError(f"{name} ids contain missing values (None/NaN)")
    return codes.astype(np.int32), np.asarray(uniques)


def _as_index(values, name):
    """Validate integer indices (ids that must be indices): non-negative integers."""
    a = np.asarray(values)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    if a.dtype.kind == "b" or a.dtype.kind not in "iuf":
        raise TypeError(f"{name} must hold integer indices, got dtype {a.dtype}")
    if a.dtype.kind == "f":
        if not np.isfinite(a).all() or (a != np.floor(a)).any():
            raise ValueError(f"{name} must hold integer indices; got non-integer values")
    if a.size and a.min() < 0:
        raise ValueError(f"{name} must hold non-negative indices; got {a.min()}")
    if a.size and a.max() > np.iinfo(np.int32).max - 1:
        raise ValueError(f"{name} indices must fit in int32")
    return a.astype(np.int32)


def _check_ratings_values(r, dtype):
    r = np.asarray(r)
    if r.dtype.kind not in "iufb":
        raise TypeError(f"ratings must be numeric, got dtype {r.dtype}")
    r = r.astype(dtype)
    if not _validation.all_finite(r):
        raise ValueError("ratings contain NaN or infinity; drop or fix those ratings")
    return r


def _ingest(ratings, dtype):
    """Convert any supported input to (u int32, i int32, r dtype, user_ids, item_ids).

    ``user_ids`` / ``item_ids`` are arrays of raw ids (index -> raw id), or an int (the
    number of users/items) when raw ids are the indices themselves.
    """
    if ratings is None:
        raise TypeError("ratings must be a DataFrame, a (users, items, ratings) tuple, a "
                        "scipy.sparse matrix or a dense 2-D array; got None")
    if _is_dataframe(ratings):
        if ratings.shape[1] < 3:
            raise ValueError("a ratings DataFrame needs three columns: user, item, rating "
                             f"(in that order); got {list(ratings.columns)}")
        u, uids = _factorize(ratings.iloc[:, 0].to_numpy(), "user")
        i, iids = _factorize(ratings.iloc[:, 1].to_numpy(), "item")
        r = _check_ratings_values(ratings.iloc[:, 2].to_numpy(), dtype)
        return u, i, r, uids, iids
    if isinstance(ratings, tuple) and len(ratings) == 3:
        users, items, r = ratings
        u = _as_index(users, "users")
        i = _as_index(items, "items")
        r = _check_ratings_values(r, dtype)
        if r.ndim != 1 or not (len(u) == len(i) == len(r)):
            raise ValueError(f"users, items and ratings must be 1-D of one length; got "
                             f"{len(u)}, {len(i)}, {np.shape(r)}")
        nu = int(u.max()) + 1 if u.size else 0
        ni = int(i.max()) + 1 if i.size else 0
        return u, i, r, nu, ni
    if hasattr(ratings, "tocoo") and hasattr(ratings, "nnz"):
        if ratings.ndim != 2:
            raise ValueError("a sparse ratings matrix must be 2-D")
        coo = ratings.tocoo()
        coo.sum_duplicates()
        r = _check_ratings_values(coo.data, dtype)
        return (coo.row.astype(np.int32), coo.col.astype(np.int32), r,
                int(coo.shape[0]), int(coo.shape[1]))
    if isinstance(ratings, (list, tuple)):
        raise TypeError("pass ratings as a (users, items, ratings) tuple of three arrays, a "
                        "DataFrame, a sparse matrix or a dense 2-D array")
    R = np.asarray(ratings)
    if R.ndim != 2:
        raise ValueError(f"a dense ratings matrix must be 2-D, got shape {R.shape}")
    if R.dtype.kind not in "iufb":
        raise TypeError(f"ratings must be numeric, got dtype {R.dtype}")
    if np.isinf(R).any() if R.dtype.kind == "f" else False:
        raise ValueError("ratings contain infinity; use 0 or NaN for missing entries")
    with np.errstate(invalid="ignore"):
        mask = (R != 0) & ~np.isnan(R) if R.dtype.kind == "f" else (R != 0)
    u, i = np.nonzero(mask)
    return (u.astype(np.int32), i.astype(np.int32), R[u, i].astype(dtype), int(R.shape[0]),
            int(R.shape[1]))


# ---------------------------------------------------------------------------------------
# gridding


def _n_blocks(n_users, n_items, k, itemsize, requested=None):
    if requested is not None:
        return _validation.check_int(requested, name="n_blocks", minimum=1)
    need = (n_users + n_items) * (k + 2) * itemsize
    b = int(np.ceil(need / _BLOCK_BYTES))
    b = max(b, 4)  # enough blocks per stratum for a few threads
    return int(min(b, 64, max(1, min(n_users, n_items))))


def _counting_order(keys, n_keys):
    """Positions of ``keys`` (ints in [0, n_keys)) by increasing key, equal keys in input
    order, and each key's run (ptr): the Cython counting sort, else a stable argsort."""
    keys = np.ascontiguousarray(keys, dtype=np.int64)
    if "cython" in _backend.available_backends("sgd_mf"):
        return _backend.entry("sgd_mf", "cython", "counting_order")(keys, int(n_keys))
    order = np.argsort(keys, kind="stable")
    ptr = np.zeros(n_keys + 1, dtype=np.int64)
    np.cumsum(np.bincount(keys, minlength=n_keys), out=ptr[1:])
    return order, ptr


def _grid(u, i, n_users, n_items, B, rs, n_threads=1):
    """Order of the ratings and the block offsets: by block, then by permuted user, then
    by permuted item (so each user's ratings of a block come in the items' random
    permutation, and the users of a block in theirs)."""
    perm_u = rs.permutation(n_users).astype(np.int64)
    perm_i = rs.permutation(n_items).astype(np.int64)
    if "cython" in _backend.available_backends("sgd_mf") and len(u):
        return _backend.entry("sgd_mf", "cython", "grid_order")(
            np.ascontiguousarray(u, dtype=np.int32), np.ascontiguousarray(i, dtype=np.int32),
            perm_u, perm_i, int(B), int(n_threads))
    return _grid_numpy(u, i, perm_u, perm_i, B)


def _grid_numpy(u, i, perm_u, perm_i, B):
    """``_grid``'s order with NumPy (the fallback, and the tests' reference for the
    kernel): three stable counting sorts, least significant key first."""
    n_users, n_items = len(perm_u), len(perm_i)
    pu = perm_u[u]
    pi = perm_i[i]
    block = (pu * B) // max(n_users, 1) * B + (pi * B) // max(n_items, 1)
    idx, _ = _counting_order(pi, n_items)
    by_user, _ = _counting_order(pu[idx], n_users)
    idx = idx[by_user]
    by_block, ptr = _counting_order(block[idx], B * B)
    return idx[by_block], ptr


def _strata(B, rs):
    """cols[s, b]: the column block of row block b in the s-th stratum of an epoch."""
    shifts = rs.permutation(B)
    return ((np.arange(B)[None, :] + shifts[:, None]) % B).astype(np.int32)


# ---------------------------------------------------------------------------------------
# the estimator


def _rmse(sse, n):
    return float(np.sqrt(sse / n)) if n else float("nan")


class MatrixFactorization:
    """Biased matrix factorisation of explicit ratings trained by SGD (Surprise's SVD).

    The prediction is ``mu + b_u + b_i + q_i . p_u`` (``q_i . p_u`` when
    ``biased=False``). Each epoch visits every rating once and applies Surprise's update::

        err = r - prediction
        b_u += lr_bu * (err - reg_bu * b_u);  b_i += lr_bi * (err - reg_bi * b_i)
        p_u += lr_pu * (err * q_i - reg_pu * p_u);  q_i += lr_qi * (err * p_u - reg_qi * q_i)

    Parameters
    ----------
    n_factors : int, default 100
        Number of latent factors k.
    n_epochs : int, default 20
        Passes over the training ratings.
    biased : bool, default True
        Learn the global mean and the user/item biases.
    init_mean, init_std_dev : float, default 0, 0.1
        Factors start from N(init_mean, init_std_dev); biases start at 0.
    lr_all, reg_all : float, default 0.005, 0.02
        Learning rate and regularisation of every term, unless the per-term value is set.
    lr_bu, lr_bi, lr_pu, lr_qi, reg_bu, reg_bi, reg_pu, reg_qi : float, optional
        Per-term learning rates and regularisations (Surprise's names).
    random_state : int, RandomState or None
        Seeds the initial factors, the id permutation, the order inside a block and the
        strata order. With ``parallel="deterministic"`` a fixed seed gives bitwise the
        same model on any thread count (for one backend and one build).
    schedule : {"constant", "adagrad", "decay"}, default "constant"
        ``constant``: Surprise's fixed rates. ``adagrad``: per-row AdaGrad steps
        ``lr / sqrt(G)`` (G starts at 1; use larger rates, e.g. ``lr_all=0.05``).
        ``decay``: ``lr / (1 + decay_rate * epoch ** 1.5)`` (cuMF_SGD's schedule).
    decay_rate : float, default 0.3
        The ``decay`` schedule's beta.
    parallel : {"deterministic", "hogwild"}, default "deterministic"
        ``deterministic``: stratified blocks (DSGD), reproducible on any thread count.
        ``hogwild``: every block in parallel, lock-free; faster to schedule but **not
        reproducible** with more than one thread.
    dtype : {numpy.float32, numpy.float64}, default float32
        Storage and arithmetic of the factors and ratings.
    early_stopping : bool, default False
        Stop when the validation RMSE (``fit(..., eval_set=...)``) has not improved by
        ``min_delta`` for ``patience`` epochs, and restore the best epoch's model.
    patience : int, default 3
    min_delta : float, default 0.0
    verbose : bool, default False
        Print a progress bar with the train/validation RMSE on stderr.
    n_blocks : int, optional
        Grid size B (default: from the data size and k so that a block's factor rows fit
        in cache; at least 4). Part of what ``random_state`` reproduces.
    rating_scale : (float, float), optional
        Predictions are clipped to it (default: the training ratings' min and max).
    backend : str, optional
        ``"cython"``, ``"numba"``, ``"cuda"``, ``"python"`` or ``"auto"``.
    n_threads : int, optional
        Threads (None: all cores).

    Attributes
    ----------
    pu_, qi_ : ndarray of shape (n_users, k), (n_items, k)
    bu_, bi_ : ndarray of shape (n_users,), (n_items,)
    global_mean_ : float
    history_ : dict
        ``train_rmse`` (measured during each epoch, before each update) and
        ``val_rmse`` (after each epoch, on ``eval_set``) lists, ``epochs``,
        ``best_epoch``, ``updates_per_second``.
    n_users_, n_items_ : int
    """

    def __init__(self, n_factors=100, n_epochs=20, biased=True, init_mean=0.0,
                 init_std_dev=0.1, lr_all=0.005, reg_all=0.02, lr_bu=None, lr_bi=None,
                 lr_pu=None, lr_qi=None, reg_bu=None, reg_bi=None, reg_pu=None,
                 reg_qi=None, random_state=None, schedule="constant", decay_rate=0.3,
                 parallel="deterministic", dtype=np.float32, early_stopping=False,
                 patience=3, min_delta=0.0, verbose=False, n_blocks=None,
                 rating_scale=None, backend=None, n_threads=None):
        self.n_factors = n_factors
        self.n_epochs = n_epochs
        self.biased = biased
        self.init_mean = init_mean
        self.init_std_dev = init_std_dev
        self.lr_all = lr_all
        self.reg_all = reg_all
        self.lr_bu, self.lr_bi, self.lr_pu, self.lr_qi = lr_bu, lr_bi, lr_pu, lr_qi
        self.reg_bu, self.reg_bi, self.reg_pu, self.reg_qi = reg_bu, reg_bi, reg_pu, reg_qi
        self.random_state = random_state
        self.schedule = schedule
        self.decay_rate = decay_rate
        self.parallel = parallel
        self.dtype = dtype
        self.early_stopping = early_stopping
        self.patience = patience
        self.min_delta = min_delta
        self.verbose = verbose
        self.n_blocks = n_blocks
        self.rating_scale = rating_scale
        self.backend = backend
        self.n_threads = n_threads

    _PARAMS = ("n_factors", "n_epochs", "biased", "init_mean", "init_std_dev", "lr_all",
               "reg_all", "lr_bu", "lr_bi", "lr_pu", "lr_qi", "reg_bu", "reg_bi", "reg_pu",
               "reg_qi", "random_state", "schedule", "decay_rate", "parallel", "dtype",
               "early_stopping", "patience", "min_delta", "verbose", "n_blocks",
               "rating_scale", "backend", "n_threads")

    def get_params(self, deep=True):
        return {p: getattr(self, p) for p in self._PARAMS}

    def set_params(self, **params):
        for k, v in params.items():
            if k not in self._PARAMS:
                raise ValueError(f"unknown parameter {k!r}")
            setattr(self, k, v)
        return self

    def __repr__(self):
        return f"MatrixFactorization(n_factors={self.n_factors}, n_epochs={self.n_epochs})"

    # -- validation -----------------------------------------------------------------

    def _rates(self):
        lr_all = _validation.check_scalar(self.lr_all, name="lr_all", minimum=0,
                                          include_min=False)
        reg_all = _validation.check_scalar(self.reg_all, name="reg_all", minimum=0)
        lrs, regs = [], []
        for t in ("bu", "bi", "pu", "qi"):
            v = getattr(self, "lr_" + t)
            lrs.append(lr_all if v is None else _validation.check_scalar(
                v, name="lr_" + t, minimum=0, include_min=False))
            v = getattr(self, "reg_" + t)
            regs.append(reg_all if v is None else _validation.check_scalar(
                v, name="reg_" + t, minimum=0))
        return np.array(lrs), np.array(regs)

    def _check_params(self):
        k = _validation.check_int(self.n_factors, name="n_factors", minimum=1)
        _validation.check_int(self.n_epochs, name="n_epochs", minimum=0)
        _validation.check_choice(self.schedule, name="schedule", choices=_SCHEDULES)
        _validation.check_choice(self.parallel, name="parallel", choices=_PARALLEL)
        _validation.check_scalar(self.init_mean, name="init_mean")
        _validation.check_scalar(self.init_std_dev, name="init_std_dev", minimum=0)
        _validation.check_scalar(self.decay_rate, name="decay_rate", minimum=0)
        _validation.check_int(self.patience, name="patience", minimum=1)
        _validation.check_scalar(self.min_delta, name="min_delta", minimum=0)
        dt = np.dtype(self.dtype)
        if dt not in (np.float32, np.float64):
            raise TypeError(f"dtype must be float32 or float64, got {dt}")
        return k, dt

    # -- fit --------------------------------------------------------------------------

    def fit(self, ratings, eval_set=None):
        """Train on ``ratings``.

        Parameters
        ----------
        ratings : DataFrame, tuple, scipy.sparse matrix or 2-D array
            A DataFrame whose first three columns are user, item, rating (raw ids of any
            hashable type); a ``(users, items, ratings)`` tuple of arrays (ids are
            non-negative integer indices); a sparse matrix (stored entries are the
            ratings); or a dense array where 0 and NaN mean missing.
        eval_set : same kinds, optional
            Validation ratings (same id convention); its RMSE is recorded each epoch and
            drives ``early_stopping``.

        Returns
        -------
        self
        """
        k, dt = self._check_params()
        lrs, regs = self._rates()
        u, i, r, uids, iids = _ingest(ratings, dt)
        if r.size == 0:
            raise ValueError("ratings is empty: at least one rating is needed to fit")
        n_threads = _threads.effective_n_threads(self.n_threads)
        b = _backend.resolve("sgd_mf", self.backend)
        self.backend_ = b.name
        self._set_ids(uids, iids)
        nu, ni = self.n_users_, self.n_items_
        rs = _validation.check_random_state(self.random_state)
        self.global_mean_ = float(np.mean(r, dtype=np.float64)) if self.biased else 0.0
        if self.rating_scale is None:
            self.rating_scale_ = (float(r.min()), float(r.max()))
        else:
            lo, hi = self.rating_scale
            self.rating_scale_ = (float(lo), float(hi))
        # Surprise's initialisation order: pu, then qi
        P = rs.normal(self.init_mean, self.init_std_dev, (nu, k)).astype(dt)
        Q = rs.normal(self.init_mean, self.init_std_dev, (ni, k)).astype(dt)
        bu = np.zeros(nu, dt)
        bi = np.zeros(ni, dt)
        ones = [np.ones(n, dt) for n in (nu, ni, nu, ni)]
        B = _n_blocks(nu, ni, k, dt.itemsize, self.n_blocks)
        self.n_blocks_ = B
        order, ptr = _grid(u, i, nu, ni, B, rs, n_threads)
        us = np.ascontiguousarray(u[order])
        its = np.ascontiguousarray(i[order])
        rr = np.ascontiguousarray(r[order])
        self._store_seen(u, i)
        ev = self._eval_data(eval_set, dt) if eval_set is not None else None
        if self.early_stopping and ev is None:
            raise ValueError("early_stopping=True needs fit(..., eval_set=...)")
        block_sse = np.zeros(B * B, np.float64)
        hogwild = self.parallel == "hogwild"
        adagrad = self.schedule == "adagrad"
        hist = {"train_rmse": [], "val_rmse": [], "epochs": 0, "best_epoch": None,
                "updates_per_second": None}
        best = (np.inf, None)
        since_best = 0
        n_epochs = int(self.n_epochs)
        self.pu_, self.qi_, self.bu_, self.bi_ = P, Q, bu, bi
        t_train = 0.0
        for epoch in range(n_epochs):
            if self.schedule == "decay":
                scale = 1.0 / (1.0 + self.decay_rate * epoch ** 1.5)
            else:
                scale = 1.0
            prm = np.concatenate([lrs * scale, regs]).astype(dt)
            cols = _strata(B, rs)
            t0 = time.perf_counter()
            sse = b.kernel(us, its, rr, ptr, cols, P, Q, bu, bi, *ones, self.global_mean_,
                           prm, int(bool(self.biased)), int(adagrad), int(hogwild), block_sse,
                           n_threads)
            t_train += time.perf_counter() - t0
            if not np.isfinite(sse):
                raise DivergenceError(
                    f"SGD diverged in epoch {epoch + 1}: the training loss became "
                    f"{sse}. Use a smaller learning rate (lr_all={self.lr_all}) or a "
                    "larger regularisation.")
            hist["train_rmse"].append(_rmse(sse, len(rr)))
            hist["epochs"] = epoch + 1
            if ev is not None:
                val = self._rmse_on(*ev)
                hist["val_rmse"].append(val)
                if val < best[0] - self.min_delta:
                    best = (val, epoch)
                    since_best = 0
                    if self.early_stopping:
                        saved = (P.copy(), Q.copy(), bu.copy(), bi.copy())
                else:
                    since_best += 1
            if self.verbose:
                self._progress(epoch, n_epochs, hist, len(rr), t_train)
            if self.early_stopping and since_best >= self.patience:
                break
        if self.verbose:
            print(file=sys.stderr)
        if self.early_stopping and best[1] is not None:
            P, Q, bu, bi = saved
            hist["best_epoch"] = best[1] + 1
        elif ev is not None and best[1] is not None:
            hist["best_epoch"] = best[1] + 1
        if not (_validation.all_finite(P) and _validation.all_finite(Q)
                and _validation.all_finite(bu) and _validation.all_finite(bi)):
            raise DivergenceError("SGD produced infinite or NaN factors; use a smaller "
                                  "learning rate or a larger regularisation.")
        if t_train > 0:
            hist["updates_per_second"] = hist["epochs"] * len(rr) / t_train
        self.pu_, self.qi_, self.bu_, self.bi_ = P, Q, bu, bi
        self.history_ = hist
        return self

    def _progress(self, epoch, n_epochs, hist, n, t):
        width = 20
        done = int(width * (epoch + 1) / max(n_epochs, 1))
        msg = (f"\r[{'#' * done}{'.' * (width - done)}] epoch {epoch + 1}/{n_epochs} "
               f"train {hist['train_rmse'][-1]:.4f}")
        if hist["val_rmse"]:
            msg += f" val {hist['val_rmse'][-1]:.4f}"
        if t > 0:
            msg += f" {(epoch + 1) * n / t / 1e6:.1f} Mupd/s"
        print(msg, end="", file=sys.stderr, flush=True)

    def _set_ids(self, uids, iids):
        if isinstance(uids, numbers.Integral):
            self.n_users_, self._user_ids = int(uids), None
        else:
            self.n_users_, self._user_ids = len(uids), uids
        if isinstance(iids, numbers.Integral):
            self.n_items_, self._item_ids = int(iids), None
        else:
            self.n_items_, self._item_ids = len(iids), iids
        self._uindex = self._iindex = None

    def _store_seen(self, u, i):
        # each user's items (in input order) as one array and per-user offsets
        order, self._seen_ptr = _counting_order(u, self.n_users_)
        self._seen_items = np.ascontiguousarray(i[order])

    @property
    def user_ids_(self):
        """Raw id of each internal user index."""
        self._check_fitted()
        return np.arange(self.n_users_) if self._user_ids is None else self._user_ids

    @property
    def item_ids_(self):
        self._check_fitted()
        return np.arange(self.n_items_) if self._item_ids is None else self._item_ids

    # -- id lookup ----------------------------------------------------------------------

    def _check_fitted(self):
        if not hasattr(self, "pu_"):
            raise NotFittedError("this MatrixFactorization is not fitted yet; call fit() "
                                 "first")

    def _lookup(self, raw, which):
        """Internal indices of raw ids; -1 for unknown ids."""
        ids = self._user_ids if which == "user" else self._item_ids
        n = self.n_users_ if which == "user" else self.n_items_
        raw = np.asarray(raw)
        if raw.ndim == 0:
            raw = raw.reshape(1)
        if ids is None:
            if raw.dtype.kind not in "iuf":
                return np.full(raw.shape, -1, np.int64)
            out = np.full(raw.shape, -1, np.int64)
            with np.errstate(invalid="ignore"):
                ok = np.isfinite(raw) & (raw >= 0) & (raw < n) & (raw == np.floor(raw))
            out[ok] = raw[ok].astype(np.int64)
            return out
        import pandas as pd

        attr = "_uindex" if which == "user" else "_iindex"
        index = getattr(self, attr, None)
        if index is None:
            index = pd.Index(ids)
            setattr(self, attr, index)
        return index.get_indexer(raw).astype(np.int64)

    def _eval_data(self, data, dt):
        u, i, r, uids, iids = _ingest(data, dt)
        if not isinstance(uids, numbers.Integral):
            u = self._lookup(np.asarray(uids)[u], "user")
            i = self._lookup(np.asarray(iids)[i], "item")
        else:
            u = np.where(u < self.n_users_, u, -1).astype(np.int64)
            i = np.where(i < self.n_items_, i, -1).astype(np.int64)
        return u, i, r.astype(np.float64)

    def _predict_idx(self, u, i):
        mu = self.global_mean_
        out = np.full(u.shape, mu, np.float64)
        ku = u >= 0
        ki = i >= 0
        if self.biased:
            out[ku] += self.bu_[u[ku]]
            out[ki] += self.bi_[i[ki]]
        both = ku & ki
        if both.any():
            dots = np.einsum("ij,ij->i", self.pu_[u[both]].astype(np.float64),
                             self.qi_[i[both]].astype(np.float64))
            if self.biased:
                out[both] += dots
            else:
                out[both] = dots
        return out

    def _rmse_on(self, u, i, r):
        pred = np.clip(self._predict_idx(u, i), *self.rating_scale_)
        return float(np.sqrt(np.mean((pred - r) ** 2))) if len(r) else float("nan")

    # -- public queries -------------------------------------------------------------

    def predict(self, users, items, clip=True):
        """Predicted ratings for the pairs ``(users[n], items[n])`` (raw ids).

        Unknown users or items fall back to the global mean plus the known bias (the
        global mean alone for ``biased=False``). Predictions are clipped to the rating
        scale unless ``clip=False``.

        Returns
        -------
        ndarray of float64
        """
        self._check_fitted()
        scalar = np.ndim(users) == 0 and np.ndim(items) == 0
        u = self._lookup(users, "user")
        i = self._lookup(items, "item")
        if u.shape != i.shape:
            raise ValueError(f"users and items must have the same shape, got {u.shape} and "
                             f"{i.shape}")
        out = self._predict_idx(u.ravel(), i.ravel()).reshape(u.shape)
        if clip:
            np.clip(out, *self.rating_scale_, out=out)
        return out[0] if scalar else out

    def score(self, ratings):
        """RMSE on ``ratings`` (any accepted input form)."""
        self._check_fitted()
        return self._rmse_on(*self._eval_data(ratings, np.float64))

    def recommend(self, users, n=10, exclude_seen=True, chunk_size=None):
        """Top-``n`` items for each user, in chunks (never a users x items matrix).

        Parameters
        ----------
        users : array_like of raw user ids
        n : int
        exclude_seen : bool
            Leave out the items the user rated in training.
        chunk_size : int, optional
            Users scored at once (default: about 32 MB of scores).

        Returns
        -------
        items : ndarray of shape (len(users), n)
            Raw item ids, best first (fewer real items than n are padded with the
            last ones and ``-inf`` scores).
        scores : ndarray of shape (len(users), n)
            Predicted ratings (unclipped); unknown users get mean + item bias.
        """
        self._check_fitted()
        n = _validation.check_int(n, name="n", minimum=1)
        users = np.asarray(users)
        if users.ndim == 0:
            users = users.reshape(1)
        u = self._lookup(users, "user")
        ni = self.n_items_
        n_eff = min(n, ni)
        if chunk_size is None:
            chunk_size = max(1, (32 << 20) // (8 * max(ni, 1)))
        top = np.empty((len(u), n_eff), np.int64)
        top_s = np.empty((len(u), n_eff), np.float64)
        Qt = self.qi_.T
        base_i = (self.bi_.astype(np.float64) if self.biased else np.zeros(ni))
        for s0 in range(0, len(u), chunk_size):
            uc = u[s0:s0 + chunk_size]
            known = uc >= 0
            sc = np.empty((len(uc), ni), np.float64)
            sc[:] = base_i + self.global_mean_ if self.biased else self.global_mean_
            if known.any():
                dots = (self.pu_[uc[known]] @ Qt).astype(np.float64)
                if self.biased:
                    sc[known] += dots + self.bu_[uc[known]][:, None]
                else:
                    sc[known] = dots
            if exclude_seen and known.any():
                rows_k = np.nonzero(known)[0]
                ku = uc[known]
                starts = self._seen_ptr[ku]
                cnt = self._seen_ptr[ku + 1] - starts
                tot = int(cnt.sum())
                if tot:
                    rows = np.repeat(rows_k, cnt)
                    offs = np.arange(tot) - np.repeat(np.cumsum(cnt) - cnt, cnt)
                    sc[rows, self._seen_items[np.repeat(starts, cnt) + offs]] = -np.inf
            if n_eff < ni:
                part = np.argpartition(-sc, n_eff - 1, axis=1)[:, :n_eff]
            else:
                part = np.broadcast_to(np.arange(ni), sc.shape).copy()
            ps = np.take_along_axis(sc, part, 1)
            o = np.argsort(-ps, axis=1, kind="stable")
            top[s0:s0 + len(uc)] = np.take_along_axis(part, o, 1)
            top_s[s0:s0 + len(uc)] = np.take_along_axis(ps, o, 1)
        return self.item_ids_[top], top_s

    def fold_in(self, items, ratings, user=None):
        """Factors of a new user from their ratings, by the closed-form ridge solve.

        Solves ``min sum_i (r_i - mu - b_i - b_u - q_i.p)^2 + n (reg_bu b_u^2 +
        reg_pu |p|^2)`` over the user's ``n`` ratings, with the item factors fixed (the
        objective SGD minimises, restricted to one user).

        Parameters
        ----------
        items : array_like of raw item ids
        ratings : array_like
        user : hashable, optional
            When given, the user is added to the model under this raw id (or replaces
            it), so ``predict`` and ``recommend`` know them.

        Returns
        -------
        bu : float
        pu : ndarray of shape (n_factors,)
        """
        self._check_fitted()
        r = _check_ratings_values(np.atleast_1d(ratings), np.float64)
        i = self._lookup(np.atleast_1d(items), "item")
        if len(i) != len(r):
            raise ValueError("items and ratings must have the same length")
        keep = i >= 0
        i, r = i[keep], r[keep]
        k = self.pu_.shape[1]
        lrs, regs = self._rates()
        if len(r) == 0:
            bu, pu = 0.0, np.zeros(k)
        else:
            Qs = self.qi_[i].astype(np.float64)
            nr = len(r)
            if self.biased:
                A = np.hstack([np.ones((nr, 1)), Qs])
                y = r - self.global_mean_ - self.bi_[i]
                lam = np.r_[regs[0], np.full(k, regs[2])] * nr
            else:
                A, y, lam = Qs, r, np.full(k, regs[2]) * nr
            G = A.T @ A + np.diag(lam)
            x = np.linalg.solve(G + 1e-12 * np.eye(len(G)), A.T @ y)
            bu, pu = (float(x[0]), x[1:]) if self.biased else (0.0, x)
        if user is not None:
            self._add_user(user, bu, pu)
        return bu, pu

    def _add_user(self, user, bu, pu):
        idx = self._lookup(np.array([user]), "user")[0]
        dt = self.pu_.dtype
        if idx < 0:
            if self._user_ids is None:
                if not (isinstance(user, numbers.Integral) and user == self.n_users_):
                    raise ValueError("this model's user ids are indices; add a new user "
                                     f"as user={self.n_users_}")
            else:
                self._user_ids = np.append(self._user_ids, np.array([user], dtype=object)
                                           if self._user_ids.dtype == object else user)
                self._uindex = None
            self.pu_ = np.vstack([self.pu_, np.asarray(pu, dt)[None]])
            self.bu_ = np.append(self.bu_, dt.type(bu))
            self._seen_ptr = np.append(self._seen_ptr, self._seen_ptr[-1])
            self.n_users_ += 1
        else:
            self.pu_[idx] = pu
            self.bu_[idx] = bu

    # -- persistence --------------------------------------------------------------------

    def save(self, path):
        """Write the fitted model to ``path`` (NumPy ``.npz``; no pickle for numeric or
        string ids)."""
        self._check_fitted()
        params = {p: getattr(self, p) for p in self._PARAMS}
        params["dtype"] = np.dtype(self.dtype).name
        if params["random_state"] is not None and not isinstance(params["random_state"],
                                                                 numbers.Integral):
            params["random_state"] = None
        meta = {"params": params, "global_mean_": self.global_mean_,
                "rating_scale_": list(self.rating_scale_), "n_users_": self.n_users_,
                "n_items_": self.n_items_, "history_": self.history_,
                "n_blocks_": self.n_blocks_, "backend_": self.backend_}
        arrays = {"pu_": self.pu_, "qi_": self.qi_, "bu_": self.bu_, "bi_": self.bi_,
                  "seen_ptr": self._seen_ptr, "seen_items": self._seen_items}
        for name, ids in (("user_ids", self._user_ids), ("item_ids", self._item_ids)):
            if ids is not None:
                a = np.asarray(ids)
                if a.dtype == object:
                    if all(isinstance(x, str) for x in a):
                        a = a.astype(str)
                    elif all(isinstance(x, numbers.Integral) for x in a):
                        a = a.astype(np.int64)
                arrays[name] = a
        np.savez(path, meta=np.array(json.dumps(meta, default=float)), **arrays)

    @classmethod
    def load(cls, path):
        """Read a model written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as z:
            try:
                meta = json.loads(str(z["meta"]))
            except ValueError as exc:
                raise ValueError(f"{path} is not a fastla MatrixFactorization file") from exc
            params = meta["params"]
            params["dtype"] = np.dtype(params["dtype"])
            if params.get("rating_scale") is not None:
                params["rating_scale"] = tuple(params["rating_scale"])
            m = cls(**params)
            m.pu_, m.qi_, m.bu_, m.bi_ = (np.array(z[k]) for k in ("pu_", "qi_", "bu_",
                                                                   "bi_"))
            m._seen_ptr = np.array(z["seen_ptr"])
            m._seen_items = np.array(z["seen_items"])
            uids = np.array(z["user_ids"]) if "user_ids" in z else meta["n_users_"]
            iids = np.array(z["item_ids"]) if "item_ids" in z else meta["n_items_"]
        m._set_ids(uids, iids)
        m.global_mean_ = meta["global_mean_"]
        m.rating_scale_ = tuple(meta["rating_scale_"])
        m.history_ = meta["history_"]
        m.n_blocks_ = meta["n_blocks_"]
        m.backend_ = meta["backend_"]
        return m


# ---------------------------------------------------------------------------------------
# the seed's function


def matrix_factorization(R, k, learning_rate=0.01, max_iter=1000, *, random_state=None,
                         backend=None, n_threads=None):
    """Factor a dense rating matrix as ``R ~ P @ Q.T`` by plain SGD (the seed's function).

    Positive entries are observed ratings; there are no biases and no regularisation.
    Each iteration visits the observed entries in row-major order and, with
    ``e = R[i, j] - P[i] . Q[j]``, updates ``P[i] += 2 lr e Q[j]``, then
    ``Q[j] += 2 lr e P[i]`` (with the updated ``P[i]``, as the seed does). The loop is
    sequential by definition, so every backend runs it on one thread.

    Parameters
    ----------
    R : array_like of shape (n_users, n_items)
    k : int
        Number of factors.
    learning_rate : float, default 0.01
    max_iter : int, default 1000
    random_state : int, RandomState or None
        P and Q start uniform in [0, 1).
    backend : str, optional
    n_threads : int, optional
        Accepted for uniformity; the loop runs on one thread.

    Returns
    -------
    P : ndarray of shape (n_users, k)
    Q : ndarray of shape (n_items, k)
        In R's float dtype (float64 for integer input).
    """
    R = _validation.check_array(R, name="R", ndim=2, check_finite=True)
    k = _validation.check_int(k, name="k", minimum=1)
    lr = _validation.check_scalar(learning_rate, name="learning_rate", minimum=0,
                                  include_min=False)
    max_iter = _validation.check_int(max_iter, name="max_iter", minimum=0)
    n_threads = _threads.effective_n_threads(n_threads)
    rs = _validation.check_random_state(random_state)
    n, m = R.shape
    P = rs.random_sample((n, k)).astype(R.dtype)
    Q = rs.random_sample((m, k)).astype(R.dtype)
    rows, cols = np.nonzero(R > 0)
    vals = np.ascontiguousarray(R[rows, cols])
    b = _backend.resolve("matrix_factorization", backend)
    b.kernel(rows.astype(np.int32), cols.astype(np.int32), vals, P, Q, lr, max_iter, 1)
    if not (_validation.all_finite(P) and _validation.all_finite(Q)):
        raise DivergenceError(f"matrix_factorization diverged (NaN or infinite factors); "
                              f"use a smaller learning_rate than {learning_rate}")
    return P, Q


# ---------------------------------------------------------------------------------------
# registration


def _warmup(backend):
    rng = np.random.RandomState(0)
    u = rng.randint(0, 8, 64)
    i = rng.randint(0, 8, 64)
    r = rng.randint(1, 6, 64).astype(float)
    for dt in (np.float32, np.float64):
        MatrixFactorization(n_factors=4, n_epochs=1, dtype=dt, backend=backend,
                            random_state=0).fit((u, i, r))


def _warmup_seed(backend):
    for dt in (np.float32, np.float64):
        matrix_factorization(np.eye(3, dtype=dt), 2, max_iter=1, backend=backend)


_backend.register_op("sgd_mf", "mf", backends=("cython", "numba", "cuda", "python"),
                     warmup=_warmup)
_backend.register_op("matrix_factorization", "mf", backends=("cython", "numba", "python"),
                     warmup=_warmup_seed)
