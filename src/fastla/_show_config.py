"""``fastla.show_config()`` and ``python -m fastla info``: what this machine can run."""

import platform
import sys


def config_info():
    """Everything :func:`show_config` prints, as a dict."""
    import numpy as np

    from . import __version__, _backend, _cuda, _threads
    from ._kernels import _simd

    info = {
        "fastla": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "numpy": np.__version__,
    }
    try:
        from . import _build_info

        info["openmp_built"] = _build_info.OPENMP_BUILT
        info["simd_variants_built"] = list(_build_info.SIMD_VARIANTS_BUILT)
        info["compiler"] = _build_info.COMPILER
    except ImportError:
        info["openmp_built"] = None
        info["simd_variants_built"] = []
    try:
        from ._kernels import _openmp_helpers

        info["openmp_enabled"] = _openmp_helpers.openmp_enabled()
        info["openmp_max_threads"] = _openmp_helpers.omp_max_threads()
    except ImportError as exc:
        info["openmp_enabled"] = f"compiled helpers missing ({exc})"
    info["cpu_count"] = _threads.cpu_count()
    info["default_n_threads"] = _threads.effective_n_threads(None)
    feats = _simd.cpu_features()
    info["cpu_features"] = sorted(k for k, v in feats.items() if v)
    info["simd_supported"] = _simd.supported_levels()
    chosen = {}
    for op in _backend.operations():
        mod, _ = _backend._REGISTRY[op].get("cython", (None, None))
        if mod and _backend.backend_status(op)["cython"][0]:
            chosen[mod] = _simd.chosen.get(mod)
    info["simd_dispatched"] = chosen
    info["backends"] = {
        op: {b: (ok, why) for b, (ok, why) in _backend.backend_status(op).items()}
        for op in _backend.operations()
    }
    try:
        import numba

        info["numba"] = numba.__version__
        from ._kernels import _numba_common

        info["numba_threading_layer"] = _numba_common.threading_layer()
        info["numba_num_threads"] = numba.config.NUMBA_NUM_THREADS
        info["numba_cache"] = _numba_common.CACHE
    except ImportError as exc:
        info["numba"] = f"not installed ({exc})"
    info["blas"] = [
        {k: d.get(k) for k in ("internal_api", "version", "num_threads", "threading_layer",
                               "filepath")}
        for d in _threads.blas_info()
    ]
    devices, why = _cuda.devices()
    info["cuda_devices"] = devices or f"none ({why})"
    return info


def show_config(file=None):
    """Print fastla's build and run-time configuration.

    Shows the version, which backends run each operation here (and why the others
    do not), whether OpenMP was compiled in and the thread counts, the SIMD variant
    dispatched for each compiled kernel module, Numba's version and threading layer,
    the BLAS in use and the CUDA devices (or the reason there are none).

    Parameters
    ----------
    file : file-like, optional
        Where to print (default: sys.stdout).
    """
    file = file or sys.stdout
    info = config_info()
    p = lambda *a: print(*a, file=file)  # noqa: E731
    p(f"fastla {info['fastla']}  (Python {info['python']}, NumPy {info['numpy']})")
    p(f"platform:            {info['platform']}")
    p(f"OpenMP:              built={info['openmp_built']} enabled={info['openmp_enabled']} "
      f"max_threads={info.get('openmp_max_threads')}")
    p(f"threads:             cores={info['cpu_count']} default n_threads="
      f"{info['default_n_threads']}")
    p(f"CPU features:        {' '.join(info['cpu_features']) or 'unknown'}")
    p(f"SIMD:                built={','.join(info['simd_variants_built']) or '-'} "
      f"supported={','.join(info['simd_supported'])}")
    for mod, lv in info["simd_dispatched"].items():
        p(f"  {mod:<18} -> {lv}")
    p(f"Numba:               {info['numba']}")
    if "numba_threading_layer" in info:
        p(f"  threading layer:   {info['numba_threading_layer']}  "
          f"NUMBA_NUM_THREADS={info['numba_num_threads']}  on-disk cache={info['numba_cache']}")
    p("BLAS / OpenMP libraries (threadpoolctl):")
    for d in info["blas"]:
        p(f"  {d.get('internal_api')} {d.get('version')} threads={d.get('num_threads')} "
          f"({d.get('filepath')})")
    p(f"CUDA devices:        {info['cuda_devices']}")
    p("Backends per operation (* = available here):")
    for op, status in info["backends"].items():
        parts = []
        for b, (ok, why) in status.items():
            parts.append(f"*{b}" if ok else f"{b} [{why}]")
        p(f"  {op:<22} {'  '.join(parts)}")
