"""Kernels, one module per operation and backend (no validation here).

``_cy_<op>``    Cython + OpenMP (compiled; per-ISA variants picked by ``_simd``)
``_numba_<op>`` Numba ``@njit(parallel=True)`` (imported lazily: importing numba is slow)
``_cuda_<op>``  ``numba.cuda`` kernels (imported lazily, only for the cuda backend)
``_naive``      the textbook Python loops: the correctness oracle and the asv baseline
"""
