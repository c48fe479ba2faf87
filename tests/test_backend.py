"""Dispatch: registry, resolution order, errors, availability."""

import numpy as np
import pytest

import fastla
from fastla import _backend
from fastla._backend import BackendError

OP = "_test_op"


@pytest.fixture(autouse=True)
def fake_op(monkeypatch):
    """A registered operation whose kernels are the naive module's test helpers."""
    reg = dict(_backend._REGISTRY)
    auto = dict(_backend._AUTO_ORDER)
    monkeypatch.setattr(_backend, "_REGISTRY", reg)
    monkeypatch.setattr(_backend, "_AUTO_ORDER", auto)
    monkeypatch.setattr(_backend, "_loaded", {})
    _backend.register_op(OP, "selftest", backends=("cython", "numba"), kernel="identity")
    _backend.register(OP, "python", "_selftest", "identity")
    # _cy_selftest is never built, so cython is "unavailable"; numba's entry is the
    # real _numba_selftest module.
    return OP


def test_unknown_backend_names_available_ones():
    with pytest.raises(BackendError, match=r"unknown backend 'fortran'.*python"):
        _backend.resolve(OP, "fortran")


def test_unknown_operation():
    with pytest.raises(BackendError, match="unknown operation"):
        _backend.resolve("no_such_op")


def test_backend_not_implemented_for_op():
    with pytest.raises(BackendError, match="does not implement"):
        _backend.resolve(OP, "cuda")


def test_unavailable_backend_says_why_and_lists_available():
    with pytest.raises(BackendError, match=r"not available.*not built.*Available here: .*python"):
        _backend.resolve(OP, "cython")


def test_auto_skips_unavailable_and_picks_next():
    b = _backend.resolve(OP)
    assert b.name == "numba"  # cython not built for the fake op


def test_resolution_order(monkeypatch):
    # 4. default is auto
    assert _backend.requested_backend() == ("auto", "default")
    # 3. environment
    monkeypatch.setenv("FASTLA_BACKEND", "python")
    assert _backend.resolve(OP).name == "python"
    # 2. config beats environment
    with fastla.config_context(backend="numba"):
        assert _backend.resolve(OP).name == "numba"
        # 1. argument beats config
        assert _backend.resolve(OP, "python").name == "python"
    assert _backend.resolve(OP).name == "python"


def test_env_backend_bad_value_is_reported(monkeypatch):
    monkeypatch.setenv("FASTLA_BACKEND", "gpu")
    with pytest.raises(BackendError, match="from FASTLA_BACKEND"):
        _backend.resolve(OP)


def test_set_config_backend_validated():
    with pytest.raises(ValueError, match="not a fastla backend"):
        fastla.set_config(backend="nope")


def test_config_context_restores_and_is_thread_local():
    import threading

    seen = {}
    with fastla.config_context(backend="python"):
        t = threading.Thread(target=lambda: seen.update(b=fastla.get_config()["backend"]))
        t.start()
        t.join()
        assert fastla.get_config()["backend"] == "python"
    assert fastla.get_config()["backend"] is None
    assert seen["b"] is None


def test_config_unknown_key():
    with pytest.raises(TypeError, match="unknown fastla config"):
        with fastla.config_context(bogus=1):
            pass


def test_available_backends_lists_what_runs():
    avail = fastla.available_backends(OP)
    assert "python" in avail and "cython" not in avail
    assert isinstance(fastla.available_backends(), dict)


class FakeDeviceArray:
    __cuda_array_interface__ = {"shape": (2,), "typestr": "<f8", "data": (0, False),
                                "version": 3}


def test_device_array_rejected_by_host_backend():
    with pytest.raises(BackendError, match="device"):
        _backend.resolve(OP, "python", arrays=(FakeDeviceArray(),))


def test_auto_on_device_arrays_needs_cuda():
    # the fake op has no cuda kernel: auto must not silently run a host backend
    with pytest.raises(BackendError, match="on device arrays"):
        _backend.resolve(OP, arrays=(FakeDeviceArray(),))


def test_auto_never_picks_cuda_for_host_arrays(monkeypatch):
    _backend.register(OP, "cuda", "_selftest", "identity")
    monkeypatch.setitem(_backend._availability, ("cuda", "_selftest"), (True, ""))
    assert _backend.resolve(OP, arrays=(np.zeros(2),)).name == "numba"
    with fastla.config_context(cuda_for_host_arrays=True):
        assert _backend.resolve(OP, arrays=(np.zeros(2),)).name == "cuda"
    assert _backend.resolve(OP, arrays=(FakeDeviceArray(),)).name == "cuda"


def test_resolved_kernels_run():
    x = np.arange(3.0)
    for name in ("numba", "python"):
        assert np.array_equal(_backend.resolve(OP, name).kernel(x), x)


def test_warmup_unknown_op():
    with pytest.raises(BackendError):
        fastla.warmup(["nope"])
