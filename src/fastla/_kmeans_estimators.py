"""scikit-learn compatible k-means estimators on fastla's kernels.

:class:`KMeans` and :class:`MiniBatchKMeans` take scikit-learn's constructor parameters
(same names, same defaults) plus fastla's ``backend`` and ``n_threads``, set the same
fitted attributes and run the same algorithms as :class:`sklearn.cluster.KMeans` and
:class:`sklearn.cluster.MiniBatchKMeans` on dense input; the work is done by
:mod:`fastla.kmeans` (assignment, Lloyd/Elkan iterations, k-means++, mini-batch updates)
and :func:`fastla.pairwise_distances` (``transform``).

scikit-learn is needed here (the base classes and the input validation come from it) but
is not a dependency of fastla: ``fastla.KMeans`` and ``fastla.MiniBatchKMeans`` import
this module on first access.
"""

import numbers
import warnings

import numpy as np

try:
    from sklearn.base import (
        BaseEstimator,
        ClassNamePrefixFeaturesOutMixin,
        ClusterMixin,
        TransformerMixin,
    )
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.utils import check_array, check_random_state
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "fastla.KMeans needs scikit-learn: pip install scikit-learn"
    ) from exc
try:
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError as exc:  # pragma: no cover - scikit-learn < 1.6
    raise ImportError(
        "fastla.KMeans needs scikit-learn >= 1.6: pip install -U scikit-learn"
    ) from exc

from . import _backend
# ``fastla.kmeans`` the attribute is the function; the module is reached by name
from .kmeans import (_check_weights, _kmeans_plusplus, _minibatch_step, _tolerance, kmeans,
                     kmeans_assign)
from .distances import pairwise_distances

__all__ = ["KMeans", "MiniBatchKMeans"]

_FLOAT_DTYPES = [np.float64, np.float32]


# ---------------------------------------------------------------------------------------
# helpers


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_arraylike_not_scalar(x):
    return (hasattr(x, "__len__") or hasattr(x, "shape") or hasattr(x, "__array__")) and \
        not np.isscalar(x)


def _check_sample_weight(sample_weight, X):
    """``sample_weight`` as a C-contiguous (n_samples,) array of X's dtype (fastla's rule:
    finite, non-negative, not all zero)."""
    return _check_weights(sample_weight, X.shape[0], X.dtype)


class _BaseKMeans(
    ClassNamePrefixFeaturesOutMixin, TransformerMixin, ClusterMixin, BaseEstimator
):
    """Shared parameter checks, initialisation and the predict/transform/score methods."""

    _default_n_init = 10

    def _raise(self, name, value, what):
        raise ValueError(
            f"The '{name}' parameter of {type(self).__name__} must be {what}. "
            f"Got {value!r} instead."
        )

    def _check_common_params(self):
        if not _is_int(self.n_clusters) or self.n_clusters < 1:
            self._raise("n_clusters", self.n_clusters, "an int in the range [1, inf)")
        init = self.init
        if isinstance(init, str):
            if init not in ("k-means++", "random"):
                self._raise("init", init, "a str among {'k-means++', 'random'}, a "
                            "callable or an array-like")
        elif not (callable(init) or _is_arraylike_not_scalar(init)):
            self._raise("init", init, "a str among {'k-means++', 'random'}, a callable "
                        "or an array-like")
        n_init = self.n_init
        if not ((isinstance(n_init, str) and n_init == "auto")
                or (_is_int(n_init) and n_init >= 1)):
            self._raise("n_init", n_init, "a str among {'auto'} or an int in the range "
                        "[1, inf)")
        if not _is_int(self.max_iter) or self.max_iter < 1:
            self._raise("max_iter", self.max_iter, "an int in the range [1, inf)")
        if not _is_real(self.tol) or not self.tol >= 0 or not np.isfinite(self.tol):
            self._raise("tol", self.tol, "a float in the range [0, inf)")
        if not (_is_int(self.verbose) or isinstance(self.verbose, (bool, np.bool_))):
            self._raise("verbose", self.verbose, "an int or a bool")
        if self.n_threads is not None and not _is_int(self.n_threads):
            self._raise("n_threads", self.n_threads, "an int or None")

    def _resolve_n_init(self):
        """scikit-learn's ``n_init="auto"`` rule, and one run for an explicit init array."""
        init = self.init
        if self.n_init == "auto":
            if isinstance(init, str) and init == "k-means++":
                n_init = 1
            elif isinstance(init, str) or callable(init):
                n_init = self._default_n_init
            else:
                n_init = 1
        else:
            n_init = int(self.n_init)
        if _is_arraylike_not_scalar(init) and not isinstance(init, str) and n_init != 1:
            warnings.warn(
                "Explicit initial center position passed: performing only one init in "
                f"{type(self).__name__} instead of n_init={n_init}.",
                RuntimeWarning,
                stacklevel=3,
            )
            n_init = 1
        return n_init

    def _check_n_samples(self, X):
        if X.shape[0] < self.n_clusters:
            raise ValueError(
                f"n_samples={X.shape[0]} should be >= n_clusters={self.n_clusters}."
            )

    def _validate_center_shape(self, X, centers):
        if centers.ndim != 2 or centers.shape[0] != self.n_clusters:
            raise ValueError(
                f"The shape of the initial centers {centers.shape} does not match the "
                f"number of clusters {self.n_clusters}."
            )
        if centers.shape[1] != X.shape[1]:
            raise ValueError(
                f"The shape of the initial centers {centers.shape} does not match the "
                f"number of features of the data {X.shape[1]}."
            )

    def _check_init_array(self, X):
        """The ``init`` array as a C-contiguous copy of X's dtype, shape checked."""
        init = check_array(self.init, dtype=X.dtype, copy=True, order="C",
                           input_name="init")
        self._validate_center_shape(X, init)
        return init

    def _init_centroids(self, X, init, random_state, sample_weight, init_size=None):
        """Initial centers, scikit-learn's ``_BaseKMeans._init_centroids`` (the same
        random stream for the same ``random_state``)."""
        n_samples = X.shape[0]
        k = self.n_clusters
        subsampled = init_size is not None and init_size < n_samples
        if subsampled:
            init_indices = random_state.randint(0, n_samples, init_size)
            X = X[init_indices]
            sample_weight = sample_weight[init_indices]
            n_samples = X.shape[0]
        if isinstance(init, str) and init == "k-means++":
            # on an init_size subsample, duplicates say nothing about the full data
            centers, _ = _kmeans_plusplus(
                X, k, sample_weight=sample_weight, random_state=random_state,
                backend=self._host_backend("kmeans_plusplus"), n_threads=self.n_threads,
                strict=not subsampled,
            )
        elif isinstance(init, str) and init == "random":
            seeds = random_state.choice(n_samples, size=k, replace=False,
                                        p=sample_weight / sample_weight.sum())
            centers = X[seeds]
        elif callable(init):
            centers = init(X, k, random_state=random_state)
            centers = check_array(centers, dtype=X.dtype, copy=False, order="C")
            self._validate_center_shape(X, centers)
        else:
            centers = init
        return np.ascontiguousarray(centers, dtype=X.dtype)

    def _host_backend(self, op):
        """The backend for a step that runs on the CPU only (k-means++ and the
        mini-batch update): the requested one, or "auto" when it is "cuda"."""
        name = _backend.requested_backend(self.backend)[0]
        if name == "cuda" and name not in _backend._REGISTRY.get(op, {}):
            return "auto"
        return self.backend

    def _check_test_data(self, X):
        return validate_data(self, X, reset=False, dtype=_FLOAT_DTYPES, order="C")

    def _centers_for(self, X):
        """X and the centers in a common dtype (float32 only when both are float32)."""
        centers = self.cluster_centers_
        dt = np.result_type(X.dtype, centers.dtype)
        return (np.ascontiguousarray(X, dtype=dt),
                np.ascontiguousarray(centers, dtype=dt))

    def _labels_inertia(self, X, sample_weight=None):
        """(labels, inertia) of X against the fitted centers."""
        Xc, centers = self._centers_for(X)
        if sample_weight is not None:
            sample_weight = np.ascontiguousarray(sample_weight, dtype=Xc.dtype)
        labels, sq = kmeans_assign(Xc, centers, sample_weight=sample_weight,
                                       backend=self.backend, n_threads=self.n_threads)
        return labels, float(np.sum(sq, dtype=np.float64))

    def _warn_distinct(self, labels):
        distinct = int(np.count_nonzero(np.bincount(labels, minlength=self.n_clusters)))
        if distinct < self.n_clusters:
            warnings.warn(
                f"Number of distinct clusters ({distinct}) found smaller than n_clusters "
                f"({self.n_clusters}). Possibly due to duplicate points in X.",
                ConvergenceWarning,
                stacklevel=3,
            )

    # -- public methods shared by both estimators ---------------------------------------

    def fit_predict(self, X, y=None, sample_weight=None):
        """Compute cluster centers and predict the cluster index of each sample.

        Equivalent to ``fit(X).labels_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training instances to cluster.
        y : Ignored
            Not used, present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            The weights for each observation in X (None: equal weights).

        Returns
        -------
        labels : ndarray of shape (n_samples,), dtype int32
            Index of the cluster each sample belongs to.
        """
        return self.fit(X, sample_weight=sample_weight).labels_

    def predict(self, X):
        """Predict the closest cluster each sample in X belongs to.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            New data to predict.

        Returns
        -------
        labels : ndarray of shape (n_samples,), dtype int32
            Index of the closest center (ties: the lowest index).
        """
        check_is_fitted(self)
        X = self._check_test_data(X)
        return self._labels_inertia(X)[0]

    def fit_transform(self, X, y=None, sample_weight=None):
        """Compute the clustering and transform X to cluster-distance space.

        Equivalent to ``fit(X).transform(X)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training instances to cluster.
        y : Ignored
            Not used, present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            The weights for each observation in X (None: equal weights).

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_clusters)
            Euclidean distance of each sample to each center.
        """
        self.fit(X, sample_weight=sample_weight)
        return self._transform(self._check_test_data(X))

    def transform(self, X):
        """Transform X to cluster-distance space.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            New data to transform.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_clusters)
            Euclidean distance of each sample to each center (float32 when X and the
            centers are float32), computed by :func:`fastla.pairwise_distances`.
        """
        check_is_fitted(self)
        return self._transform(self._check_test_data(X))

    def _transform(self, X):
        Xc, centers = self._centers_for(X)
        return pairwise_distances(Xc, centers, backend=self.backend,
                                  n_threads=self.n_threads)

    def score(self, X, y=None, sample_weight=None):
        """Opposite of the value of X on the k-means objective.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            New data.
        y : Ignored
            Not used, present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            The weights for each observation in X (None: equal weights).

        Returns
        -------
        score : float
            ``-sum_i w_i * ||x_i - c_{label_i}||^2`` (minus the inertia of X).
        """
        check_is_fitted(self)
        X = self._check_test_data(X)
        sample_weight = _check_sample_weight(sample_weight, X)
        return -self._labels_inertia(X, sample_weight)[1]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


# ---------------------------------------------------------------------------------------
# KMeans


class KMeans(_BaseKMeans):
    """K-means clustering (scikit-learn's :class:`~sklearn.cluster.KMeans` on fastla).

    Same parameters, attributes and results as scikit-learn's estimator on dense input:
    the data are centered before the iterations, ``n_init`` runs keep the lowest inertia,
    empty clusters are relocated to the farthest points, ``tol`` is scaled by the mean
    feature variance and the iterations stop on strict convergence (labels unchanged) or
    when the squared center shift is at most the scaled ``tol``. float32 input is fitted
    in float32. The work runs in :func:`fastla.kmeans.kmeans`.

    Parameters
    ----------
    n_clusters : int, default=8
        The number of clusters (centers) to form.
    init : {"k-means++", "random"}, callable or array-like of shape \
            (n_clusters, n_features), default="k-means++"
        ``"k-means++"``: greedy k-means++ seeding; ``"random"``: ``n_clusters`` rows of X
        drawn without replacement with probability proportional to ``sample_weight``;
        a callable ``init(X, n_clusters, random_state=...)`` returning the centers; an
        array: the initial centers.
    n_init : "auto" or int, default="auto"
        Number of runs with different seeds; the run with the lowest inertia is kept.
        ``"auto"``: 1 for ``"k-means++"`` and an array, 10 for ``"random"`` and a callable.
    max_iter : int, default=300
        Maximum number of iterations of a single run.
    tol : float, default=1e-4
        Convergence tolerance on the squared change of the centers, relative to the mean
        feature variance of X.
    verbose : int, default=0
        Print progress.
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation (scikit-learn's random streams: the same seed gives the
        same initial centers as scikit-learn).
    copy_x : bool, default=True
        False: center X in place and add the mean back at the end (X may then differ from
        the input by rounding).
    algorithm : {"lloyd", "elkan"}, default="lloyd"
        Lloyd's iterations, or Elkan's with triangle-inequality bounds.
    backend : {"auto", "cython", "numba", "cuda", "python"}, optional
        fastla backend (None: ``config_context``/``FASTLA_BACKEND``, then "auto").
    n_threads : int, optional
        Threads for the CPU backends (None: all cores).

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters, n_features)
        Coordinates of the cluster centers (X's dtype).
    labels_ : ndarray of shape (n_samples,), dtype int32
        Label of each training point.
    inertia_ : float
        Sum of squared distances of the samples to their closest center, weighted by
        ``sample_weight``.
    n_iter_ : int
        Number of iterations of the kept run.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features seen during fit (only when X has string column names).

    See Also
    --------
    MiniBatchKMeans : the mini-batch variant, for large data.
    fastla.kmeans.kmeans : the functional form.

    Examples
    --------
    >>> import numpy as np
    >>> from fastla import KMeans
    >>> X = np.array([[1, 2], [1, 4], [1, 0], [10, 2], [10, 4], [10, 0]])
    >>> km = KMeans(n_clusters=2, random_state=0).fit(X)
    >>> sorted(km.cluster_centers_.tolist())
    [[1.0, 2.0], [10.0, 2.0]]
    """

    _default_n_init = 10

    def __init__(
        self,
        n_clusters=8,
        *,
        init="k-means++",
        n_init="auto",
        max_iter=300,
        tol=1e-4,
        verbose=0,
        random_state=None,
        copy_x=True,
        algorithm="lloyd",
        backend=None,
        n_threads=None,
    ):
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.verbose = verbose
        self.random_state = random_state
        self.copy_x = copy_x
        self.algorithm = algorithm
        self.backend = backend
        self.n_threads = n_threads

    def _check_params(self):
        self._check_common_params()
        if not isinstance(self.copy_x, (bool, np.bool_)):
            self._raise("copy_x", self.copy_x, "an instance of 'bool'")
        if self.algorithm not in ("lloyd", "elkan"):
            self._raise("algorithm", self.algorithm, "a str among {'lloyd', 'elkan'}")

    def fit(self, X, y=None, sample_weight=None):
        """Compute k-means clustering.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training instances to cluster (converted to C order; integers to float64).
        y : Ignored
            Not used, present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            The weights for each observation in X (None: equal weights). Not used by the
            initialisation when ``init`` is a callable or an array.

        Returns
        -------
        self : KMeans
            Fitted estimator.
        """
        self._check_params()
        X = validate_data(self, X, dtype=_FLOAT_DTYPES, order="C")
        self._check_n_samples(X)
        sample_weight = _check_sample_weight(sample_weight, X)
        init = self.init
        if _is_arraylike_not_scalar(init) and not isinstance(init, str):
            init = self._check_init_array(X)
        n_init = self._resolve_n_init()
        algorithm = self.algorithm
        if algorithm == "elkan" and self.n_clusters == 1:
            warnings.warn("algorithm='elkan' doesn't make sense for a single cluster. "
                          "Using 'lloyd' instead.", RuntimeWarning, stacklevel=2)
            algorithm = "lloyd"
        res = kmeans(
            X,
            self.n_clusters,
            init=init,
            n_init=n_init,
            max_iter=self.max_iter,
            tol=self.tol,
            algorithm=algorithm,
            sample_weight=sample_weight,
            random_state=self.random_state,
            verbose=bool(self.verbose),
            copy_x=self.copy_x,
            backend=self.backend,
            n_threads=self.n_threads,
        )
        self._warn_distinct(res.labels)
        self.cluster_centers_ = res.centers
        self._n_features_out = self.cluster_centers_.shape[0]
        self.labels_ = res.labels
        self.inertia_ = float(res.inertia)
        self.n_iter_ = int(res.n_iter)
        return self


# ---------------------------------------------------------------------------------------
# MiniBatchKMeans


class MiniBatchKMeans(_BaseKMeans):
    """Mini-batch k-means (scikit-learn's :class:`~sklearn.cluster.MiniBatchKMeans` on
    fastla).

    scikit-learn's algorithm: the centers are initialised on a random subsample of
    ``init_size`` rows (the best of ``n_init`` initialisations on a validation subsample);
    then each step draws ``batch_size`` rows with probability proportional to
    ``sample_weight``, assigns them to the nearest center and moves each center to the
    running weighted mean of the points it has received
    (:func:`fastla.kmeans._minibatch_step`); centers whose accumulated weight falls below
    ``reassignment_ratio`` times the largest are moved to random batch points. Fitting
    stops after ``max_iter * n_samples // batch_size`` steps, when the squared center
    change is at most the scaled ``tol``, or when the exponentially weighted average of
    the batch inertia has not improved for ``max_no_improvement`` steps.

    Parameters
    ----------
    n_clusters : int, default=8
        The number of clusters (centers) to form.
    init : {"k-means++", "random"}, callable or array-like of shape \
            (n_clusters, n_features), default="k-means++"
        As in :class:`KMeans` (computed on the ``init_size`` subsample).
    max_iter : int, default=100
        Maximum number of passes over the data (in samples: ``max_iter * n_samples``
        rows drawn).
    batch_size : int, default=1024
        Rows per mini-batch (at most n_samples).
    verbose : int, default=0
        Print progress.
    compute_labels : bool, default=True
        Compute ``labels_`` and ``inertia_`` on the full data at the end of fit (and on
        the batch after each ``partial_fit``).
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation, the batches and the reassignments (scikit-learn's
        random streams).
    tol : float, default=0.0
        Stop when the squared change of the centers in a step is at most ``tol`` times
        the mean feature variance (0: off).
    max_no_improvement : int or None, default=10
        Stop after this many steps without improvement of the smoothed batch inertia
        (None: off).
    init_size : int, optional
        Rows used by the initialisation (default ``3 * batch_size``, at least
        ``3 * n_clusters``, at most n_samples).
    n_init : "auto" or int, default="auto"
        Number of initialisations tried (the best on the validation subsample is kept);
        ``"auto"``: 1 for ``"k-means++"`` and an array, 3 otherwise.
    reassignment_ratio : float, default=0.01
        Fraction of the largest center weight below which a center is reassigned.
    backend : {"auto", "cython", "numba", "cuda", "python"}, optional
        fastla backend (None: ``config_context``/``FASTLA_BACKEND``, then "auto").
    n_threads : int, optional
        Threads for the CPU backends (None: all cores).

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters, n_features)
        Coordinates of the cluster centers (X's dtype).
    labels_ : ndarray of shape (n_samples,), dtype int32
        Label of each point (when ``compute_labels=True``).
    inertia_ : float
        Weighted sum of squared distances to the closest center (on the full data when
        ``compute_labels=True``, else the smoothed batch inertia scaled to the data).
    n_iter_ : int
        Number of passes over the data.
    n_steps_ : int
        Number of mini-batches processed.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features seen during fit (only when X has string column names).

    See Also
    --------
    KMeans : the full-batch algorithm.

    Examples
    --------
    >>> import numpy as np
    >>> from fastla import MiniBatchKMeans
    >>> X = np.array([[1, 2], [1, 4], [1, 0], [4, 2], [4, 0], [4, 4],
    ...               [4, 5], [0, 1], [2, 2], [3, 2], [5, 5], [1, -1]])
    >>> mbk = MiniBatchKMeans(n_clusters=2, random_state=0, batch_size=6, n_init=3)
    >>> mbk = mbk.partial_fit(X[:6]).partial_fit(X[6:12])
    >>> mbk.cluster_centers_.shape
    (2, 2)
    """

    _default_n_init = 3

    def __init__(
        self,
        n_clusters=8,
        *,
        init="k-means++",
        max_iter=100,
        batch_size=1024,
        verbose=0,
        compute_labels=True,
        random_state=None,
        tol=0.0,
        max_no_improvement=10,
        init_size=None,
        n_init="auto",
        reassignment_ratio=0.01,
        backend=None,
        n_threads=None,
    ):
        self.n_clusters = n_clusters
        self.init = init
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.verbose = verbose
        self.compute_labels = compute_labels
        self.random_state = random_state
        self.tol = tol
        self.max_no_improvement = max_no_improvement
        self.init_size = init_size
        self.n_init = n_init
        self.reassignment_ratio = reassignment_ratio
        self.backend = backend
        self.n_threads = n_threads

    def _check_params(self):
        self._check_common_params()
        if not _is_int(self.batch_size) or self.batch_size < 1:
            self._raise("batch_size", self.batch_size, "an int in the range [1, inf)")
        if not isinstance(self.compute_labels, (bool, np.bool_)):
            self._raise("compute_labels", self.compute_labels, "an instance of 'bool'")
        if self.max_no_improvement is not None and (
                not _is_int(self.max_no_improvement) or self.max_no_improvement < 0):
            self._raise("max_no_improvement", self.max_no_improvement,
                        "an int in the range [0, inf) or None")
        if self.init_size is not None and (
                not _is_int(self.init_size) or self.init_size < 1):
            self._raise("init_size", self.init_size, "an int in the range [1, inf) or None")
        r = self.reassignment_ratio
        if not _is_real(r) or not r >= 0 or not np.isfinite(r):
            self._raise("reassignment_ratio", r, "a float in the range [0, inf)")

    def _check_params_vs_input(self, X):
        """scikit-learn's derived settings: tol, n_init, batch and init sizes."""
        self._check_n_samples(X)
        self._tol = _tolerance(X, self.tol)
        self._n_init = self._resolve_n_init()
        self._batch_size = min(self.batch_size, X.shape[0])
        init_size = self.init_size
        if init_size is None:
            init_size = 3 * self._batch_size
            if init_size < self.n_clusters:
                init_size = 3 * self.n_clusters
        elif init_size < self.n_clusters:
            warnings.warn(
                f"init_size={init_size} should be larger than n_clusters="
                f"{self.n_clusters}. Setting it to min(3*n_clusters, n_samples)",
                RuntimeWarning,
                stacklevel=3,
            )
            init_size = 3 * self.n_clusters
        self._init_size = min(init_size, X.shape[0])

    def _random_reassign(self):
        """Whether this step reassigns low-weight centers: every ``10 * n_clusters``
        samples, and whenever a center has received no weight yet."""
        self._n_since_last_reassign += self._batch_size
        if (self._counts == 0).any() or self._n_since_last_reassign >= 10 * self.n_clusters:
            self._n_since_last_reassign = 0
            return True
        return False

    def _step(self, X, sample_weight, centers, centers_new, random_state, reassign):
        """One scikit-learn ``_mini_batch_step``: the fastla update, then the random
        reassignment of low-weight centers (vector operations on k entries)."""
        _, inertia = _minibatch_step(X, sample_weight, centers, centers_new,
                                         self._counts,
                                         backend=self._host_backend("minibatch_kmeans"),
                                         n_threads=self.n_threads)
        weight_sums = self._counts
        if reassign and self.reassignment_ratio > 0:
            to_reassign = weight_sums < self.reassignment_ratio * weight_sums.max()
            # pick at most .5 * batch_size samples as new centers
            if to_reassign.sum() > 0.5 * X.shape[0]:
                indices_dont_reassign = np.argsort(weight_sums)[int(0.5 * X.shape[0]):]
                to_reassign[indices_dont_reassign] = False
            n_reassigns = int(to_reassign.sum())
            if n_reassigns:
                new_centers = random_state.choice(X.shape[0], replace=False,
                                                  size=n_reassigns)
                if self.verbose:
                    print(f"[MiniBatchKMeans] Reassigning {n_reassigns} cluster centers.")
                centers_new[to_reassign] = X[new_centers]
            # reset the weights of the reassigned centers, not too small to avoid an
            # instant reassignment (scikit-learn's rule)
            if (~to_reassign).any():
                weight_sums[to_reassign] = np.min(weight_sums[~to_reassign])
        return float(inertia)

    def _mini_batch_convergence(self, step, n_steps, n_samples, centers_squared_diff,
                                batch_inertia):
        """scikit-learn's early stopping: small center change or no improvement of the
        exponentially weighted average of the mean batch inertia."""
        batch_inertia /= self._batch_size
        step = step + 1
        if step == 1:  # inertia of the initialisation
            if self.verbose:
                print(f"Minibatch step {step}/{n_steps}: mean batch inertia: "
                      f"{batch_inertia}")
            return False
        if self._ewa_inertia is None:
            self._ewa_inertia = batch_inertia
        else:
            alpha = min(self._batch_size * 2.0 / (n_samples + 1), 1)
            self._ewa_inertia = self._ewa_inertia * (1 - alpha) + batch_inertia * alpha
        if self.verbose:
            print(f"Minibatch step {step}/{n_steps}: mean batch inertia: "
                  f"{batch_inertia}, ewa inertia: {self._ewa_inertia}")
        if self._tol > 0.0 and centers_squared_diff <= self._tol:
            if self.verbose:
                print(f"Converged (small centers change) at step {step}/{n_steps}")
            return True
        if self._ewa_inertia_min is None or self._ewa_inertia < self._ewa_inertia_min:
            self._no_improvement = 0
            self._ewa_inertia_min = self._ewa_inertia
        else:
            self._no_improvement += 1
        if (self.max_no_improvement is not None
                and self._no_improvement >= self.max_no_improvement):
            if self.verbose:
                print(f"Converged (lack of improvement in inertia) at step "
                      f"{step}/{n_steps}")
            return True
        return False

    def fit(self, X, y=None, sample_weight=None):
        """Compute the centroids on X by chunking it into mini-batches.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training instances to cluster (converted to C order; integers to float64).
        y : Ignored
            Not used, present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            The weights for each observation in X (None: equal weights). Batches are
            drawn with probability proportional to them. Not used by the initialisation
            when ``init`` is a callable or an array.

        Returns
        -------
        self : MiniBatchKMeans
            Fitted estimator.
        """
        self._check_params()
        X = validate_data(self, X, dtype=_FLOAT_DTYPES, order="C")
        self._check_params_vs_input(X)
        random_state = check_random_state(self.random_state)
        sample_weight = _check_sample_weight(sample_weight, X)
        n_samples = X.shape[0]

        init = self.init
        if _is_arraylike_not_scalar(init) and not isinstance(init, str):
            init = self._check_init_array(X)

        # validation subsample for choosing among the initialisations
        validation_indices = random_state.randint(0, n_samples, self._init_size)
        X_valid = X[validation_indices]
        sample_weight_valid = sample_weight[validation_indices]

        best_inertia = None
        for init_idx in range(self._n_init):
            if self.verbose:
                print(f"Init {init_idx + 1}/{self._n_init} with method {self.init}")
            centers = self._init_centroids(X, init, random_state, sample_weight,
                                           init_size=self._init_size)
            _, sq = kmeans_assign(X_valid, centers, sample_weight=sample_weight_valid,
                                      backend=self.backend, n_threads=self.n_threads)
            inertia = float(np.sum(sq, dtype=np.float64))
            if self.verbose:
                print(f"Inertia for init {init_idx + 1}/{self._n_init}: {inertia}")
            if best_inertia is None or inertia < best_inertia:
                init_centers = centers
                best_inertia = inertia

        centers = np.array(init_centers, dtype=X.dtype, order="C", copy=True)
        centers_new = np.empty_like(centers)
        self._counts = np.zeros(self.n_clusters, dtype=X.dtype)
        self._ewa_inertia = None
        self._ewa_inertia_min = None
        self._no_improvement = 0
        self._n_since_last_reassign = 0

        sum_of_weights = float(np.sum(sample_weight, dtype=np.float64))
        n_steps = (self.max_iter * n_samples) // self._batch_size
        # random_state.choice(n, size, p=w/sum(w), replace=True), with the cumulative
        # distribution computed once: the same draws from the same stream
        cdf = np.cumsum(sample_weight / sum_of_weights, dtype=np.float64)
        cdf /= cdf[-1]
        unit_sample_weight = np.ones(self._batch_size, dtype=X.dtype)

        batch_inertia = 0.0
        i = 0
        for i in range(n_steps):
            u = random_state.random_sample(self._batch_size)
            minibatch_indices = cdf.searchsorted(u, side="right")
            X_batch = X[minibatch_indices]
            batch_inertia = self._step(X_batch, unit_sample_weight, centers, centers_new,
                                       random_state, self._random_reassign())
            if self._tol > 0.0:
                centers_squared_diff = float(np.sum((centers_new - centers) ** 2))
            else:
                centers_squared_diff = 0.0
            centers, centers_new = centers_new, centers
            if self._mini_batch_convergence(i, n_steps, n_samples, centers_squared_diff,
                                            batch_inertia):
                break

        self.cluster_centers_ = centers
        self._n_features_out = self.cluster_centers_.shape[0]
        self.n_steps_ = i + 1
        self.n_iter_ = int(np.ceil(((i + 1) * self._batch_size) / n_samples))
        if self.compute_labels:
            self.labels_, self.inertia_ = self._labels_inertia(X, sample_weight)
        else:
            ewa = (self._ewa_inertia if self._ewa_inertia is not None
                   else batch_inertia / self._batch_size)
            self.inertia_ = float(ewa * sum_of_weights)
        return self

    def partial_fit(self, X, y=None, sample_weight=None):
        """Update the k-means estimate on a single mini-batch X.

        The first call (on an unfitted estimator) initialises the centers on X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            One mini-batch (converted to the fitted centers' dtype after the first call).
        y : Ignored
            Not used, present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            The weights for each observation in X (None: equal weights).

        Returns
        -------
        self : MiniBatchKMeans
            Updated estimator.
        """
        has_centers = hasattr(self, "cluster_centers_")
        if not has_centers:
            self._check_params()
        X = validate_data(self, X, dtype=_FLOAT_DTYPES, order="C", reset=not has_centers)
        if has_centers:
            X = np.ascontiguousarray(X, dtype=self.cluster_centers_.dtype)
        self._random_state = getattr(self, "_random_state",
                                     check_random_state(self.random_state))
        sample_weight = _check_sample_weight(sample_weight, X)
        self.n_steps_ = getattr(self, "n_steps_", 0)

        if not has_centers:
            self._check_params_vs_input(X)
            init = self.init
            if _is_arraylike_not_scalar(init) and not isinstance(init, str):
                init = self._check_init_array(X)
            self.cluster_centers_ = self._init_centroids(
                X, init, self._random_state, sample_weight, init_size=self._init_size)
            self._counts = np.zeros(self.n_clusters, dtype=X.dtype)
            self._n_since_last_reassign = 0

        centers_new = np.empty_like(self.cluster_centers_)
        self._step(X, sample_weight, self.cluster_centers_, centers_new,
                   self._random_state, self._random_reassign())
        self.cluster_centers_ = centers_new

        if self.compute_labels:
            self.labels_, self.inertia_ = self._labels_inertia(X, sample_weight)
        self.n_steps_ += 1
        self._n_features_out = self.cluster_centers_.shape[0]
        return self
