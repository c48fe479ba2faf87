"""Numba settings shared by every ``_numba_*`` and ``_cuda_*`` kernel module.

Importing this module imports numba, so only kernel modules import it (lazily, on
first use of the numba or cuda backend).

* Threading layer: a thread-safe one (tbb, else omp), so that fastla called from
  several Python threads at once does not abort as the ``workqueue`` layer does
  (numba #8563). A user's NUMBA_THREADING_LAYER is respected.
* On-disk cache: on (``cache=True``) unless FASTLA_NUMBA_CACHE=0, and only where numba
  finds a writable cache location; otherwise kernels compile in memory.
"""

import os

import numba

_user_layer = "NUMBA_THREADING_LAYER" in os.environ


def _layer_importable(name):
    try:
        if name == "tbb":
            from numba.np.ufunc import tbbpool  # noqa: F401
        elif name == "omp":
            from numba.np.ufunc import omppool  # noqa: F401
        return True
    except Exception:
        return False


if not _user_layer:
    if _layer_importable("tbb") or _layer_importable("omp"):
        numba.config.THREADING_LAYER = "threadsafe"

CACHE = os.environ.get("FASTLA_NUMBA_CACHE", "1").strip().lower() not in ("0", "false", "no",
                                                                           "off")


def jit(parallel=False, **kwargs):
    """``numba.njit`` with fastla's defaults; falls back to no cache where none can be kept."""

    def deco(fn):
        if CACHE:
            try:
                return numba.njit(parallel=parallel, cache=True, **kwargs)(fn)
            except RuntimeError:  # "cannot cache function ...: no locator available"
                pass
        return numba.njit(parallel=parallel, cache=False, **kwargs)(fn)

    return deco


def threading_layer():
    """The layer in use, or the configured choice before any parallel kernel ran."""
    try:
        return numba.threading_layer()
    except ValueError:
        return f"{numba.config.THREADING_LAYER} (not yet started)"
