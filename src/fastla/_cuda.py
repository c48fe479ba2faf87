"""CUDA availability, imported lazily: ``import fastla`` never imports numba.cuda."""

import functools
import importlib.util
import os


def simulator_enabled():
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")


@functools.lru_cache(maxsize=1)
def availability():
    """(available, reason): whether the cuda backend can run here and why not."""
    if importlib.util.find_spec("numba") is None:
        return False, "numba is not installed"
    try:
        from numba import cuda
    except Exception as exc:  # pragma: no cover - broken installs
        return False, f"numba.cuda failed to import ({exc})"
    if simulator_enabled():
        return True, "simulator"
    if importlib.util.find_spec("numba_cuda") is None:
        return False, "numba-cuda is not installed (pip install 'fastla[cuda]')"
    try:
        ok = cuda.is_available()
    except Exception as exc:  # pragma: no cover
        return False, f"CUDA driver error ({exc})"
    if not ok:
        return False, "no CUDA driver or GPU found"
    return True, ""


def devices():
    """Descriptions of the CUDA devices, or the reason there are none."""
    ok, why = availability()
    if not ok:
        return [], why
    from numba import cuda

    if simulator_enabled():
        return ["CUDA simulator (NUMBA_ENABLE_CUDASIM=1)"], ""
    out = []
    for dev in cuda.list_devices():
        name = dev.name.decode() if isinstance(dev.name, bytes) else str(dev.name)
        out.append(f"{dev.id}: {name} (compute capability {dev.compute_capability})")
    return out, ""
