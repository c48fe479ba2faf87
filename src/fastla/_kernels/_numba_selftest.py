"""Tiny Numba kernels used to check the numba backend itself (threading layer,
thread counts, concurrent calls). Not a public operation."""

import numpy as np
from numba import prange

from ._numba_common import jit


@jit(parallel=True)
def parallel_row_sums(x):
    out = np.empty(x.shape[0], dtype=x.dtype)
    for i in prange(x.shape[0]):
        s = 0.0
        for j in range(x.shape[1]):
            s += x[i, j]
        out[i] = s
    return out


def identity(x):
    return parallel_row_sums(x.reshape(-1, 1)).reshape(x.shape)
