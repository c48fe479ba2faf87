"""Global and thread-local configuration: ``get_config``, ``set_config``, ``config_context``.

Modelled on ``sklearn.get_config``: a process-wide default that each thread copies on
first use, so that a ``config_context`` block in one thread does not leak into another.
"""

import contextlib
import os
import threading

_DEFAULTS = {
    # backend name forced for every operation (None: FASTLA_BACKEND, then "auto")
    "backend": None,
    # default thread count when an operation gets n_threads=None (None: all cores)
    "n_threads": None,
    # let "auto" pick "cuda" for host (NumPy) inputs when a GPU is present
    "cuda_for_host_arrays": False,
    # bytes an output may take before fastla refuses to allocate it (None: measured)
    "max_memory_bytes": None,
    # check inputs for NaN/inf where an operation does not allow them
    "check_finite": True,
}
_global = dict(_DEFAULTS)
_local = threading.local()


def _thread_config():
    if not hasattr(_local, "config"):
        _local.config = dict(_global)
    return _local.config


def get_config():
    """Return a copy of the current configuration.

    Returns
    -------
    dict
        Keys: ``backend``, ``n_threads``, ``cuda_for_host_arrays``,
        ``max_memory_bytes``, ``check_finite``.

    See Also
    --------
    set_config, config_context
    """
    return dict(_thread_config())


def _check_keys(kwargs):
    unknown = set(kwargs) - set(_DEFAULTS)
    if unknown:
        raise TypeError(
            f"unknown fastla config option(s) {sorted(unknown)}; "
            f"known: {sorted(_DEFAULTS)}"
        )


def _check_values(kwargs):
    if kwargs.get("backend") is not None:
        from ._backend import BACKENDS

        name = kwargs["backend"]
        if not isinstance(name, str) or name not in BACKENDS + ("auto",):
            raise ValueError(
                f"backend={name!r} is not a fastla backend; choose from "
                f"{', '.join(BACKENDS + ('auto',))}"
            )
    if kwargs.get("n_threads") is not None:
        from ._threads import effective_n_threads

        effective_n_threads(kwargs["n_threads"])  # raises on bad values


def set_config(**kwargs):
    """Set configuration options for this thread (and later threads' defaults).

    Parameters
    ----------
    **kwargs
        Any of the keys listed in :func:`get_config`.
    """
    _check_keys(kwargs)
    _check_values(kwargs)
    _thread_config().update(kwargs)
    _global.update(kwargs)


@contextlib.contextmanager
def config_context(**kwargs):
    """Temporarily change the configuration in this thread.

    Examples
    --------
    >>> import fastla
    >>> with fastla.config_context(backend="numba"):
    ...     fastla.get_config()["backend"]
    'numba'
    """
    _check_keys(kwargs)
    _check_values(kwargs)
    cfg = _thread_config()
    old = dict(cfg)
    cfg.update(kwargs)
    try:
        yield
    finally:
        cfg.clear()
        cfg.update(old)


def _reset():
    """Back to defaults (tests)."""
    _global.clear()
    _global.update(_DEFAULTS)
    if hasattr(_local, "config"):
        del _local.config


def env_backend():
    """The FASTLA_BACKEND environment variable, or None when unset or empty."""
    value = os.environ.get("FASTLA_BACKEND", "").strip()
    return value or None
