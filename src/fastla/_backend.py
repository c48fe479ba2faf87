"""Backend registry and dispatch.

The registry maps ``{operation: {backend: kernel}}``. Kernels are registered by
module and attribute name and imported on first use, so that importing fastla imports
neither numba nor CUDA. By convention an operation ``op`` implemented in kernel files
``_cy_<mod>.pyx``, ``_numba_<mod>.py``, ``_cuda_<mod>.py`` and ``_naive.py`` is
registered with :func:`register_op` and each file holds a function of the same name.

Resolution order for the backend of a call (highest first):

1. the ``backend=`` argument;
2. ``fastla.config_context(backend=...)`` / ``fastla.set_config(backend=...)``;
3. the ``FASTLA_BACKEND`` environment variable;
4. ``"auto"``: ``cuda`` for device arrays, else the operation's order (by default
   cython, numba, python); ``cuda`` for host arrays only with
   ``config_context(cuda_for_host_arrays=True)``.
"""

import importlib
import importlib.util
from collections import namedtuple

import numpy as np

from . import _config

BACKENDS = ("cython", "numba", "cuda", "python")
DEFAULT_AUTO_ORDER = ("cython", "numba", "python")

Backend = namedtuple("Backend", ["name", "kernel"])


class BackendError(ValueError):
    """A backend that is unknown, not implemented for an operation, or not available."""


# op -> {backend: (module_name, attr)}
_REGISTRY = {}
# op -> tuple of backend names for "auto" on host arrays
_AUTO_ORDER = {}
# op -> callable(backend) that runs the op once on tiny inputs (warmup)
_WARMUP = {}
_loaded = {}
_availability = {}


def register(op, backend, module, attr=None):
    """Register ``fastla._kernels.<module>.<attr>`` as ``op``'s ``backend`` kernel."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}")
    _REGISTRY.setdefault(op, {})[backend] = (module, attr or op)


def register_op(op, module, backends=BACKENDS, *, kernel=None, auto_order=None, warmup=None):
    """Register an operation whose kernels follow the naming convention.

    Parameters
    ----------
    op : str
        Public operation name (``"pairwise_distances"``).
    module : str
        Operation suffix of the kernel files (``"distances"``).
    backends : sequence of str
        Backends that implement it.
    kernel : str, optional
        Function name inside each kernel module (default: ``op``).
    auto_order : sequence of str, optional
        Preference of ``"auto"`` for host arrays.
    warmup : callable, optional
        ``warmup(backend)`` runs the operation once on tiny inputs.
    """
    files = {"cython": f"_cy_{module}", "numba": f"_numba_{module}",
             "cuda": f"_cuda_{module}", "python": "_naive"}
    for b in backends:
        register(op, b, files[b], kernel or op)
    _AUTO_ORDER[op] = tuple(auto_order or DEFAULT_AUTO_ORDER)
    if warmup is not None:
        _WARMUP[op] = warmup


def operations():
    """Names of the registered operations."""
    return sorted(_REGISTRY)


def _module_available(backend, module):
    """(ok, reason) for a kernel module, without importing numba unless needed."""
    key = (backend, module)
    if key in _availability:
        return _availability[key]
    if backend == "python":
        result = (True, "")
    elif backend == "cython":
        try:
            from ._kernels import _simd

            _simd.load(module)
            result = (True, "")
        except ImportError as exc:
            result = (False, f"the compiled module {module} is not built ({exc})")
    elif backend == "numba":
        if importlib.util.find_spec("numba") is None:
            result = (False, "numba is not installed")
        else:
            result = (True, "")
    else:  # cuda
        from . import _cuda

        result = _cuda.availability()
    _availability[key] = result
    return result


def backend_status(op):
    """Dict backend -> (available, reason) for every backend registered for ``op``."""
    _check_op(op)
    return {b: _module_available(b, mod) for b, (mod, _) in _REGISTRY[op].items()}


def available_backends(op=None):
    """Backends that run here.

    Parameters
    ----------
    op : str, optional
        An operation name. None gives a dict for every operation.

    Returns
    -------
    list of str, or dict of str to list of str
    """
    if op is None:
        return {o: available_backends(o) for o in operations()}
    return [b for b in BACKENDS if backend_status(op).get(b, (False, ""))[0]]


def _check_op(op):
    if op not in _REGISTRY:
        raise BackendError(f"unknown operation {op!r}; known: {', '.join(operations())}")


def is_device_array(a):
    """True for arrays in GPU memory (numba, CuPy, PyTorch): ``__cuda_array_interface__``."""
    try:
        if isinstance(a, np.ndarray):
            return False
        # numba's simulator arrays (NUMBA_ENABLE_CUDASIM=1) have no interface attribute
        return hasattr(a, "__cuda_array_interface__") or type(a).__name__ == "FakeCUDAArray"
    except Exception:
        return False


def _load(op, backend, attr=None):
    key = (op, backend, attr)
    if key not in _loaded:
        module, default = _REGISTRY[op][backend]
        if backend == "cython":
            from ._kernels import _simd

            mod = _simd.load(module)
        else:
            mod = importlib.import_module(f"fastla._kernels.{module}")
        _loaded[key] = getattr(mod, attr or default)
    return _loaded[key]


def entry(op, backend, attr):
    """Another entry point of the kernel module behind ``op`` on ``backend``.

    Operations made of several kernels (k-means: assign, Lloyd pass, Elkan pass,
    inertia) register one entry and reach the others of the same module through this,
    after :func:`resolve` has chosen and checked the backend.
    """
    return _load(op, backend, attr)


def optional_entry(op, backend, attr):
    """:func:`entry`, or None where that backend's kernel module has no such entry (a
    faster form that only some backends provide; the caller keeps its general path)."""
    try:
        return _load(op, backend, attr)
    except AttributeError:
        return None


def _unavailable(op, name, reason):
    avail = available_backends(op)
    return BackendError(
        f"backend {name!r} is not available for {op}: {reason}. "
        f"Available here: {', '.join(avail) or 'none'}"
    )


def requested_backend(backend=None):
    """(name, where it came from) after the argument, config and environment steps."""
    if backend is not None:
        return backend, "argument"
    cfg = _config.get_config()["backend"]
    if cfg is not None:
        return cfg, "config"
    env = _config.env_backend()
    if env is not None:
        return env, "FASTLA_BACKEND"
    return "auto", "default"


def resolve(op, backend=None, *, arrays=()):
    """Choose the backend for one call of ``op``.

    Parameters
    ----------
    op : str
        Operation name.
    backend : str or None
        The caller's ``backend=`` argument.
    arrays : sequence
        The call's array inputs (host or device); device arrays steer "auto" to cuda.

    Returns
    -------
    Backend
        ``(name, kernel)``; ``kernel`` is the registered callable.

    Raises
    ------
    BackendError
        Unknown backend, backend not implemented for ``op``, or not available here.
    """
    _check_op(op)
    name, source = requested_backend(backend)
    where = "" if source == "argument" else f" (from {source})"
    if not isinstance(name, str) or name not in BACKENDS + ("auto",):
        raise BackendError(
            f"unknown backend {name!r}{where}; choose from "
            f"{', '.join(BACKENDS + ('auto',))}. Available for {op} here: "
            f"{', '.join(available_backends(op))}"
        )
    registered = _REGISTRY[op]
    on_device = any(is_device_array(a) for a in arrays if a is not None)
    if name == "auto":
        if on_device:
            order = ("cuda",)
        else:
            order = _AUTO_ORDER.get(op, DEFAULT_AUTO_ORDER)
            if _config.get_config()["cuda_for_host_arrays"]:
                order = ("cuda",) + tuple(b for b in order if b != "cuda")
        reasons = []
        for b in order:
            if b in registered:
                ok, why = _module_available(b, registered[b][0])
                if ok:
                    return Backend(b, _load(op, b))
                reasons.append(f"{b}: {why}")
        raise BackendError(
            f"no backend available for {op}"
            + (" on device arrays" if on_device else "")
            + ("; " + "; ".join(reasons) if reasons else "")
        )
    if name not in registered:
        raise BackendError(
            f"backend {name!r}{where} does not implement {op}; "
            f"available for {op} here: {', '.join(available_backends(op))}"
        )
    if on_device and name != "cuda":
        raise BackendError(
            f"{op} got a device (GPU) array but backend {name!r}{where} runs on the host; "
            "use backend='cuda' or copy the array to the host"
        )
    ok, why = _module_available(name, registered[name][0])
    if not ok:
        raise _unavailable(op, name, why)
    return Backend(name, _load(op, name))


def warmup(ops=None, backends=("numba",)):
    """Compile JIT kernels ahead of their first real call.

    Parameters
    ----------
    ops : sequence of str, optional
        Operations to warm (default: all).
    backends : sequence of str
        JIT backends to compile for; unavailable ones are skipped. The Cython
        backend is compiled at install time and needs no warm-up.

    Returns
    -------
    dict
        ``{op: [backends warmed]}``.
    """
    ops = operations() if ops is None else list(ops)
    done = {}
    for op in ops:
        _check_op(op)
        fn = _WARMUP.get(op)
        done[op] = []
        if fn is None:
            continue
        for b in backends:
            if b in available_backends(op):
                fn(b)
                done[op].append(b)
    return done
