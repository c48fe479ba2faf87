"""Validation of device (GPU) arrays, imported only when one is passed in."""

import numpy as np


def check_device_array(x, *, name="X", ndim=2, dtypes=(np.float32, np.float64)):
    """A numba device array view of ``x`` (zero-copy), with its ndim and dtype checked.

    Device arrays are not checked for NaN/inf (that would need a device reduction and
    a synchronisation); the docstrings say so.
    """
    from numba import cuda

    # numba device arrays (and the simulator's) are used as they are
    arr = x if hasattr(x, "copy_to_host") else cuda.as_cuda_array(x)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got a device array of shape {arr.shape}")
    if np.dtype(arr.dtype) not in [np.dtype(d) for d in dtypes]:
        raise TypeError(
            f"device array {name} has dtype {arr.dtype}; the cuda backend takes "
            + " or ".join(np.dtype(d).name for d in dtypes)
        )
    return arr
