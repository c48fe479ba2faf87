"""Choose the ISA variant of a compiled kernel module at import.

setup.py builds each hot Cython module several times: ``_cy_<op>`` (x86-64 baseline),
``_cy_<op>__v3`` (AVX2 + FMA) and ``_cy_<op>__v4`` (AVX-512). :func:`load` imports the
best one this CPU runs. ``FASTLA_SIMD=base|v3|v4`` caps the choice (to compare
variants, or to work around a bad one).
"""

import importlib
import os

# features each level needs, in the order tried (best first)
LEVELS = (
    ("v4", ("avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl", "avx2", "fma")),
    ("v3", ("avx2", "fma", "bmi2")),
    ("base", ()),
)
_ORDER = [name for name, _ in LEVELS]
_loaded = {}


def cpu_features():
    try:
        from . import _cpu_features
    except ImportError:  # not built: treat as baseline
        return {}
    return _cpu_features.cpu_features()


def supported_levels():
    """ISA levels this CPU can run, best first."""
    feats = cpu_features()
    return [name for name, need in LEVELS if all(feats.get(f, False) for f in need)]


def _cap():
    cap = os.environ.get("FASTLA_SIMD", "").strip().lower()
    if cap and cap not in _ORDER:
        raise ValueError(f"FASTLA_SIMD={cap!r}; expected one of {', '.join(_ORDER)}")
    return cap or None


def load(modname, level=None):
    """Import ``fastla._kernels.<modname>`` at the best level available.

    Parameters
    ----------
    modname : str
        Base module name, e.g. ``"_cy_distances"``.
    level : {"base", "v3", "v4"} or None
        Force a level (it must be built and supported); None picks the best.

    Returns
    -------
    module
        The module; its level is recorded in :data:`chosen`.
    """
    key = (modname, level, os.environ.get("FASTLA_SIMD"))
    if key in _loaded:
        return _loaded[key]
    levels = supported_levels()
    if level is not None:
        if level not in levels:
            raise ValueError(f"SIMD level {level!r} is not supported by this CPU ({levels})")
        levels = [level]
    else:
        cap = _cap()
        if cap is not None:
            levels = [lv for lv in levels if _ORDER.index(lv) >= _ORDER.index(cap)]
    last_error = None
    for lv in levels:
        name = modname if lv == "base" else f"{modname}__{lv}"
        try:
            mod = importlib.import_module(f"fastla._kernels.{name}")
        except ImportError as exc:  # variant not built (non-x86 wheel, old compiler)
            last_error = exc
            continue
        chosen[modname] = lv
        _loaded[key] = mod
        return mod
    raise ImportError(f"no build of fastla._kernels.{modname} could be imported") from last_error


chosen = {}
