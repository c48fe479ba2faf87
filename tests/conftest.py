"""Shared fixtures.

``backend`` is parametrised over every fastla backend. A backend that cannot run on
this machine is skipped with the reason (``cuda`` without a GPU: the CI job runs the
cuda-marked tests a second time under ``NUMBA_ENABLE_CUDASIM=1``). Tests that need an
operation's backend list use :func:`op_backend`.
"""

import numpy as np
import pytest

import fastla
from fastla import _backend, _config

ALL_BACKENDS = ("cython", "numba", "cuda", "python")


def _global_status(name):
    if name == "python":
        return True, ""
    if name == "cuda":
        from fastla import _cuda

        return _cuda.availability()
    if name == "numba":
        import importlib.util

        return (importlib.util.find_spec("numba") is not None), "numba is not installed"
    try:
        from fastla._kernels import _openmp_helpers  # noqa: F401

        return True, ""
    except ImportError as exc:
        return False, f"compiled extensions not built ({exc})"


@pytest.fixture(
    params=[pytest.param(b, marks=[pytest.mark.cuda] if b == "cuda" else []) for b in
            ALL_BACKENDS]
)
def backend(request):
    ok, why = _global_status(request.param)
    if not ok:
        pytest.skip(f"backend {request.param} not available here: {why}")
    return request.param


def op_backend(op, backend):
    """Skip when ``op`` has no ``backend`` implementation registered; return the name."""
    if backend not in _backend._REGISTRY.get(op, {}):
        pytest.skip(f"{op} has no {backend} kernel")
    ok, why = _backend.backend_status(op)[backend]
    if not ok:
        pytest.skip(f"{backend} unavailable for {op}: {why}")
    return backend


@pytest.fixture(params=[np.float32, np.float64], ids=["f32", "f64"])
def dtype(request):
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(20261122)


@pytest.fixture(autouse=True)
def _clean_config(monkeypatch):
    monkeypatch.delenv("FASTLA_BACKEND", raising=False)
    _config._reset()
    yield
    _config._reset()


def pytest_collection_modifyitems(config, items):
    import os

    if os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0"):
        return
    # without the simulator the cuda params skip themselves in the fixture


def pytest_report_header(config):
    info = []
    for b in ALL_BACKENDS:
        ok, why = _global_status(b)
        info.append(f"{b}={'yes' if ok else 'no'}")
    return [f"fastla {fastla.__version__} backends: " + " ".join(info)]


def built_variants(name):
    """The Cython kernel module ``name`` for every ISA level this machine runs and this
    build has (the dispatched variant and the lower ones), for tests that check each."""
    from fastla._kernels import _simd

    for level in _simd.supported_levels():
        try:
            yield _simd.load(name, level=level)
        except ImportError:
            continue  # variant not built by this compiler
