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


def check_device_out(out, shape, dtype):
    """``out`` for device input: a device array of exactly ``shape`` and ``dtype``."""
    from . import _backend

    if not _backend.is_device_array(out) or isinstance(out, np.ndarray):
        raise TypeError("out must be a device array when the inputs are device arrays, "
                        f"got {type(out).__name__}")
    if tuple(out.shape) != tuple(shape) or np.dtype(out.dtype) != np.dtype(dtype):
        raise ValueError(f"out must have shape {tuple(shape)} and dtype "
                         f"{np.dtype(dtype).name}, got {tuple(out.shape)} and "
                         f"{np.dtype(out.dtype).name}")
