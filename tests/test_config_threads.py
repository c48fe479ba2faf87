"""Configuration, thread counts, Numba threading layer, show_config and the CLI."""

import io
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import fastla
from fastla import _threads


def test_effective_n_threads(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    n = _threads.cpu_count()
    assert _threads.effective_n_threads(None) == n
    assert _threads.effective_n_threads(3) == 3
    assert _threads.effective_n_threads(-1) == n
    assert _threads.effective_n_threads(-(n + 5)) == 1
    with pytest.raises(ValueError):
        _threads.effective_n_threads(0)
    with pytest.raises(TypeError):
        _threads.effective_n_threads(1.5)
    with fastla.config_context(n_threads=1):
        assert _threads.effective_n_threads(None) == 1


def test_omp_num_threads_caps_default(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert _threads.cpu_count() == 1


def test_blas_single_thread_limits_blas():
    from threadpoolctl import threadpool_info

    with _threads.blas_single_thread():
        blas = [d for d in threadpool_info() if d["user_api"] == "blas"]
        assert all(d["num_threads"] == 1 for d in blas)


def test_numba_threads_guard_restores():
    numba = pytest.importorskip("numba")
    before = numba.get_num_threads()
    with _threads.numba_threads(1):
        assert numba.get_num_threads() == 1
    assert numba.get_num_threads() == before


def test_numba_concurrent_calls_do_not_abort():
    """Parallel kernels called from several Python threads at once (numba #8563)."""
    pytest.importorskip("numba")
    from fastla._kernels import _numba_common, _numba_selftest

    x = np.random.default_rng(0).random((2000, 50))
    expect = x.sum(axis=1)
    _numba_selftest.parallel_row_sums(x)
    errors = []

    def work():
        try:
            for _ in range(20):
                np.testing.assert_allclose(_numba_selftest.parallel_row_sums(x), expect)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert _numba_common.threading_layer() in ("tbb", "omp")


def test_show_config_prints_sections():
    buf = io.StringIO()
    fastla.show_config(file=buf)
    text = buf.getvalue()
    for key in ("fastla", "OpenMP", "SIMD", "Numba", "BLAS", "CUDA devices", "Backends"):
        assert key in text


def test_openmp_compiled_in():
    """Release builds must have OpenMP (set FASTLA_SKIP_OPENMP_TEST=1 to build without)."""
    if os.environ.get("FASTLA_SKIP_OPENMP_TEST"):
        pytest.skip("FASTLA_SKIP_OPENMP_TEST is set")
    from fastla._kernels import _openmp_helpers

    assert _openmp_helpers.openmp_enabled()


def test_simd_dispatch_picks_supported_level(monkeypatch):
    from fastla._kernels import _simd

    levels = _simd.supported_levels()
    assert levels[-1] == "base"
    monkeypatch.setenv("FASTLA_SIMD", "bogus")
    with pytest.raises(ValueError, match="FASTLA_SIMD"):
        _simd.load("_openmp_helpers")
    monkeypatch.setenv("FASTLA_SIMD", "base")
    assert _simd.load("_openmp_helpers").openmp_enabled() in (True, False)
    assert _simd.chosen["_openmp_helpers"] == "base"


def _run(code, env=None):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=e, check=True).stdout


def test_import_is_lazy():
    """Importing fastla imports neither numba nor numba.cuda and compiles nothing."""
    out = _run("import sys, fastla; print('numba' in sys.modules, 'numba.cuda' in sys.modules)")
    assert out.split() == ["False", "False"]


def test_cli_info():
    out = subprocess.run([sys.executable, "-m", "fastla", "info"], capture_output=True,
                         text=True, check=True).stdout
    assert "Backends per operation" in out
