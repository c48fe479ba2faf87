"""Input validation shared by every public function.

Kernels never validate and Cython kernels run without bounds checks, so these helpers
are what makes a kernel impossible to misuse: after them an array has a supported
dtype, the right number of dimensions, no NaN/inf where they are not allowed, and an
output size that fits in memory.

Dtype policy: float32 stays float32, float64 stays float64; integers and bools become
float64 (unless an operation says otherwise); complex, object and strings are refused
unless an operation allows them.
"""

import numbers
import os

import numpy as np

FLOAT_DTYPES = (np.float32, np.float64)


class OutputTooLargeError(MemoryError, ValueError):
    """An output would need more memory than this machine can give."""


def _describe(x):
    return f"array of shape {np.shape(x)} and dtype {getattr(x, 'dtype', type(x).__name__)}"


def float_dtype(x, *, name="X", allow_complex=False):
    """The floating dtype ``x`` is computed in, by the policy above."""
    dt = np.asarray(x).dtype if not hasattr(x, "dtype") else np.dtype(x.dtype)
    if dt == np.float32 or dt == np.float64:
        return dt
    if dt.kind in "biu":
        return np.dtype(np.float64)
    if dt.kind == "f":  # float16, longdouble
        return np.dtype(np.float64)
    if dt.kind == "c":
        if allow_complex:
            return np.dtype(np.complex64) if dt == np.complex64 else np.dtype(np.complex128)
        raise TypeError(f"{name} has complex dtype {dt}; this operation takes real numbers")
    raise TypeError(f"{name} has dtype {dt}, which is not numeric")


def result_dtype(*arrays):
    """float32 when every input is float32, else float64 (NumPy's promotion of the policy)."""
    dts = [np.dtype(a.dtype) for a in arrays if a is not None]
    return np.result_type(*dts) if dts else np.dtype(np.float64)


def all_finite(x, summary=None):
    """True when ``x`` holds no NaN or inf (one pass, no temporary for finite data).

    NaN and inf carry through sums, so finite sums of ``x`` prove it finite; only
    otherwise (NaN, inf, or a sum that overflowed on finite data) is every value
    looked at. ``summary``: values that a caller already computed from *all* of ``x``
    and that carry its NaN and inf the same way (k-means' column means, its exact
    distances), used instead of the sum: no pass over ``x`` when they are finite.
    """
    if x.size == 0 or x.dtype.kind not in "fc":
        return True
    if summary is None:
        with np.errstate(over="ignore", invalid="ignore"):
            summary = np.sum(x, dtype=x.dtype)
    if np.isfinite(summary).all():
        return True
    return bool(np.isfinite(x).all())  # the sums may have overflowed on finite data


def assert_finite(x, *, name="X", summary=None):
    """Raise ValueError when ``x`` holds NaN or infinity (``summary``: see all_finite)."""
    if not all_finite(x, summary):
        raise ValueError(
            f"{name} contains NaN or infinity; clean the input or pass check_finite=False "
            "where the operation allows it"
        )


def check_array(
    x,
    *,
    name="X",
    ndim=2,
    dtype=None,
    allow_complex=False,
    order="C",
    check_finite=None,
    allow_empty=True,
    copy=False,
):
    """Validate and convert an array input.

    Parameters
    ----------
    x : array_like
        The input.
    name : str
        Its name in error messages.
    ndim : int or tuple of int or None
        Allowed numbers of dimensions (None: any).
    dtype : dtype, optional
        Force this dtype; default: the policy in :func:`float_dtype`.
    allow_complex : bool
        Keep complex inputs complex instead of refusing them.
    order : {"C", "F", "any"}
        "C"/"F": return a contiguous array (copying only when needed); "any": keep
        the strides (the kernel handles them).
    check_finite : bool or None
        Refuse NaN/inf. None: the ``check_finite`` configuration (default True).
    allow_empty : bool
        Accept arrays with a zero-length dimension.
    copy : bool
        Always return a new array.

    Returns
    -------
    numpy.ndarray
    """
    if x is None:
        raise TypeError(f"{name} must be an array, got None")
    from ._backend import is_device_array

    if is_device_array(x):
        raise TypeError(f"{name} is a device (GPU) array; this path takes host arrays")
    if hasattr(x, "toarray") and hasattr(x, "nnz"):
        raise TypeError(f"{name} is a sparse matrix; pass a dense array (x.toarray())")
    arr = np.asarray(x)
    if arr.dtype == object:
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"{name} could not be converted to a numeric array") from None
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            want = " or ".join(f"{n}-D" for n in allowed)
            hint = ""
            if arr.ndim == 1 and 2 in allowed:
                hint = (" Reshape with x.reshape(-1, 1) for one feature or "
                        "x.reshape(1, -1) for one sample.")
            raise ValueError(f"{name} must be {want}, got {_describe(arr)}.{hint}")
    target = np.dtype(dtype) if dtype is not None else float_dtype(
        arr, name=name, allow_complex=allow_complex)
    if not allow_empty and arr.size == 0:
        raise ValueError(f"{name} is empty ({_describe(arr)}); at least one element is needed")
    if order == "C":
        out = np.ascontiguousarray(arr, dtype=target)
    elif order == "F":
        out = np.asfortranarray(arr, dtype=target)
    else:
        out = arr.astype(target, copy=False)
    if copy and out is arr:
        out = out.copy(order="K" if order == "any" else order)
    if finite_wanted(check_finite):
        assert_finite(out, name=name)
    return out


def finite_wanted(check_finite):
    """``check_finite`` resolved: None means the ``check_finite`` configuration."""
    if check_finite is None:
        from ._config import get_config

        return bool(get_config()["check_finite"])
    return bool(check_finite)


def check_same_columns(X, Y, *, names=("X", "Y")):
    # (indexed from the front: the CUDA simulator's device arrays take no -1)
    fx, fy = X.shape[len(X.shape) - 1], Y.shape[len(Y.shape) - 1]
    if fx != fy:
        raise ValueError(
            f"{names[0]} has {fx} features but {names[1]} has {fy}; "
            "they must have the same number of columns"
        )


def check_int(value, *, name, minimum=None, maximum=None):
    """An integer in [minimum, maximum] (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_scalar(value, *, name, minimum=None, maximum=None, include_min=True,
                 include_max=True):
    """A finite real number in the given interval."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if minimum is not None and (value < minimum or (not include_min and value == minimum)):
        op = ">=" if include_min else ">"
        raise ValueError(f"{name} must be {op} {minimum}, got {value}")
    if maximum is not None and (value > maximum or (not include_max and value == maximum)):
        op = "<=" if include_max else "<"
        raise ValueError(f"{name} must be {op} {maximum}, got {value}")
    return value


def check_choice(value, *, name, choices):
    if value not in choices:
        raise ValueError(
            f"{name}={value!r} is not one of {', '.join(repr(c) for c in choices)}"
        )
    return value


def available_memory():
    """Bytes of memory available to new allocations, or None when unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def memory_limit():
    """The byte budget for one output: the config's ``max_memory_bytes`` or what is free."""
    from ._config import get_config

    limit = get_config()["max_memory_bytes"]
    return available_memory() if limit is None else int(limit)


def check_alloc(shape, dtype, *, what="the output", hint=""):
    """Raise :class:`OutputTooLargeError` before allocating an array that cannot fit.

    Parameters
    ----------
    shape : tuple of int
    dtype : dtype
    what : str
        Name of the array in the message.
    hint : str
        What to do instead (e.g. "use fastla.nearest_neighbors").

    Returns
    -------
    int
        The bytes the array needs.
    """
    nbytes = int(np.prod([int(s) for s in shape], dtype=object)) * np.dtype(dtype).itemsize
    limit = memory_limit()
    if limit is not None and nbytes > limit:
        gib = nbytes / 2**30
        msg = (f"{what} of shape {tuple(shape)} and dtype {np.dtype(dtype)} needs "
               f"{gib:.2f} GiB but only {limit / 2**30:.2f} GiB is available")
        if hint:
            msg += f"; {hint}"
        raise OutputTooLargeError(msg)
    return nbytes


_HUGE_PAGE = 1 << 21  # the 2 MiB pages that Linux backs large anonymous memory with (THP)
# glibc's largest heap allocation (DEFAULT_MMAP_THRESHOLD_MAX on 64-bit): smaller buffers
# come back from its heap already faulted after their first use, larger ones are fresh
# mappings on every call. Padding a smaller output past it would turn a recycled buffer
# into a fresh one (2800 x 2800 float32 3x3 correlation: 1.87 -> 3.37 ms with the
# padding applied from 4 MiB).
_HUGE_MIN = 32 << 20


def empty_output(shape, dtype, *, apart_from=None):
    """``np.empty(shape, dtype)`` placed for the kernels' stores.

    It starts on a 64-byte cache line (the kernels stream whole lines; NumPy aligns large
    arrays to 16 bytes only), and, given ``apart_from`` (the array a kernel reads while it
    writes this one), 2 KiB away from it modulo 4 KiB. Rows whose length is a multiple of
    4 KiB would otherwise put every output line at the same 4 KiB offset as the input
    lines read with it, and the CPU's store-to-load address check (4K aliasing) stalls
    those loads: a 2048 x 2048 float32 3x3 correlation took 1.1 ms instead of 0.75 ms.

    From 32 MiB, where every call gets a fresh mapping (and NumPy asks Linux for 2 MiB
    pages), it also starts on a 2 MiB boundary (less one 4 KiB page when placed apart from
    an array) with room for a whole last huge page. A fresh mapping from ``malloc`` starts
    anywhere in a 2 MiB page, and Linux backs its partial huge pages at both ends with
    4 KiB pages, each a fault of its own: a
    5000 x 5000 float64 output took 795 faults instead of 97, and a 2048 x 2048 float64 one
    528 instead of 18 (3.82 -> 3.45 ms for its 3x3 correlation). Pages never touched cost
    no memory; the last huge page may hold up to 2 MiB past the end.

    The result is a view into a slightly larger buffer.
    """
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if nbytes == 0:  # nothing to place (and NumPy's own strides for empty arrays)
        return np.empty(shape, dtype=dtype)
    huge = nbytes >= _HUGE_MIN
    # room for the shift to the chosen offset: under 4 KiB, or under one cache line; for
    # huge outputs under 2 MiB, and the rest of the last huge page
    pad = 2 * _HUGE_PAGE if huge else (4096 if apart_from is not None else 64)
    raw = np.empty(nbytes + pad, dtype=np.uint8)
    addr = raw.ctypes.data
    if apart_from is not None:
        target = ((apart_from.ctypes.data & ~63) + 2048) % 4096
        if huge:  # the 4 KiB page before a 2 MiB boundary, at the target offset
            start = ((-addr) % _HUGE_PAGE - 4096 + target) % _HUGE_PAGE
        else:
            start = (target - addr) % 4096
    else:
        start = (-addr) % (_HUGE_PAGE if huge else 64)
    return raw[start:start + nbytes].view(dtype).reshape(shape)


def check_out(out, shape, dtype, *, name="out", inputs=()):
    """Validate a user-supplied output array: exact shape and dtype, writeable, C order,
    and no memory shared with any of ``inputs`` (kernels read them while writing)."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(out).__name__}")
    if out.shape != tuple(shape):
        raise ValueError(f"{name} has shape {out.shape}; expected {tuple(shape)}")
    if out.dtype != np.dtype(dtype):
        raise ValueError(f"{name} has dtype {out.dtype}; expected {np.dtype(dtype)}")
    if not out.flags.writeable:
        raise ValueError(f"{name} is read-only")
    if not out.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous")
    if any(a is not None and np.may_share_memory(out, a) for a in inputs):
        raise ValueError(f"{name} must not share memory with the inputs")
    return out


def check_random_state(seed):
    """A ``numpy.random.RandomState`` from None, an int or an existing instance
    (scikit-learn's semantics, so that seeds give the same streams)."""
    if seed is None or seed is np.random:
        return np.random.mtrand._rand
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        return np.random.RandomState(int(seed))
    if isinstance(seed, np.random.RandomState):
        return seed
    raise ValueError(f"random_state={seed!r} cannot seed a numpy.random.RandomState")
