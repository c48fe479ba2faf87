"""fastla: fast drop-in replacements for the slow loops of machine learning.

Every operation takes NumPy arrays and returns NumPy arrays. Each has a Cython +
OpenMP kernel compiled into the wheel, a Numba kernel (``@njit(parallel=True)``), a
CUDA kernel (``numba.cuda``) where it makes sense, and the naive Python loop it
replaces. ``backend=`` picks one; ``"auto"`` picks the fastest available.

Importing fastla imports neither numba nor CUDA and compiles nothing.
"""

__version__ = "0.1.0.dev0"

from ._backend import BackendError, available_backends, warmup
from ._config import config_context, get_config, set_config
from ._show_config import show_config
from ._validation import OutputTooLargeError
from .distances import euclidean_distance, nearest_neighbors, pairwise_distances, rbf_kernel
from .conv import convolve, convolve2d, correlate, correlate2d
from .mf import DivergenceError, MatrixFactorization, matrix_factorization
from .kmeans import KMeansResult, kmeans, kmeans_assign, kmeans_plusplus

__all__ = [
    "__version__",
    "BackendError",
    "DivergenceError",
    "MatrixFactorization",
    "OutputTooLargeError",
    "available_backends",
    "config_context",
    "convolve",
    "convolve2d",
    "correlate",
    "correlate2d",
    "get_config",
    "set_config",
    "show_config",
    "matrix_factorization",
    "warmup",
    "pairwise_distances",
    "rbf_kernel",
    "nearest_neighbors",
    "euclidean_distance",
    "KMeansResult",
    "kmeans",
    "kmeans_assign",
    "kmeans_plusplus",
]


def __getattr__(name):
    # scikit-learn estimators, imported on first access (scikit-learn is optional)
    if name in ("KMeans", "MiniBatchKMeans"):
        from . import _kmeans_estimators

        return getattr(_kmeans_estimators, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
