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


def _extent(a):
    """[first, last) byte addresses a device array can touch, or None if unknown."""
    if hasattr(a, "_ary"):  # the simulator's FakeCUDAArray wraps a host array
        a = a._ary
        iface = a.__array_interface__
    else:
        iface = getattr(a, "__cuda_array_interface__", None)
    if iface is None:
        return None
    ptr = iface["data"][0]
    shape = iface["shape"]
    item = np.dtype(iface["typestr"]).itemsize
    strides = iface.get("strides")
    if strides is None:  # C order
        strides, step = [], item
        for n in reversed(shape):
            strides.append(step)
            step *= n
        strides.reverse()
    lo = hi = ptr
    for n, st in zip(shape, strides):
        if n == 0:
            return ptr, ptr
        if st < 0:
            lo += (n - 1) * st
        else:
            hi += (n - 1) * st
    return lo, hi + item


def _c_contiguous(a):
    """Whether the device array ``a`` is C-contiguous (by its interface's strides)."""
    if hasattr(a, "_ary"):  # the simulator's FakeCUDAArray wraps a host array
        return a._ary.flags.c_contiguous
    iface = a.__cuda_array_interface__
    strides = iface.get("strides")
    if strides is None:
        return True
    step = np.dtype(iface["typestr"]).itemsize
    for n, st in zip(reversed(iface["shape"]), reversed(strides)):
        if n > 1 and st != step:
            return False
        step *= n
    return True


def check_device_out(out, shape, dtype, inputs=(), c_contiguous=False):
    """``out`` for device input: a device array of exactly ``shape`` and ``dtype`` that
    shares no memory with ``inputs`` (and C-contiguous where ``c_contiguous``: a kernel
    that writes through a reshaped view)."""
    from . import _backend

    if not _backend.is_device_array(out):
        raise TypeError("out must be a device array when the inputs are device arrays, "
                        f"got {type(out).__name__}")
    if tuple(out.shape) != tuple(shape) or np.dtype(out.dtype) != np.dtype(dtype):
        raise ValueError(f"out must have shape {tuple(shape)} and dtype "
                         f"{np.dtype(dtype).name}, got {tuple(out.shape)} and "
                         f"{np.dtype(out.dtype).name}")
    if c_contiguous and not _c_contiguous(out):
        raise ValueError("out must be C-contiguous for this operation on device arrays")
    eo = _extent(out)
    for a in inputs:
        ea = _extent(a) if a is not None else None
        if eo and ea and eo[0] < ea[1] and ea[0] < eo[1]:
            raise ValueError("out must not share memory with the inputs")
