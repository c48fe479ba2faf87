"""Validation helpers shared by every public function."""

import numpy as np
import pytest

import fastla
from fastla import _validation as v


@pytest.mark.parametrize(
    "dt, expected",
    [(np.float32, np.float32), (np.float64, np.float64), (np.int32, np.float64),
     (np.int64, np.float64), (np.uint8, np.float64), (np.bool_, np.float64),
     (np.float16, np.float64)],
)
def test_dtype_policy(dt, expected):
    x = np.ones((3, 2), dtype=dt)
    assert v.check_array(x).dtype == expected


def test_float_inputs_not_copied_when_contiguous():
    x = np.ones((4, 3), dtype=np.float32)
    assert v.check_array(x) is x


def test_noncontiguous_copied_for_C_and_kept_for_any():
    x = np.ones((6, 8))[::2, ::3]
    c = v.check_array(x)
    assert c.flags.c_contiguous and np.array_equal(c, x)
    kept = v.check_array(x, order="any")
    assert kept.strides == x.strides


def test_fortran_order():
    x = np.ones((3, 4))
    assert v.check_array(x, order="F").flags.f_contiguous


def test_complex_refused_unless_allowed():
    z = np.ones((2, 2), dtype=np.complex64)
    with pytest.raises(TypeError, match="complex"):
        v.check_array(z)
    assert v.check_array(z, allow_complex=True).dtype == np.complex64


def test_strings_refused():
    with pytest.raises(TypeError):
        v.check_array(np.array([["a", "b"]]))
    with pytest.raises(TypeError, match="converted"):
        v.check_array(np.array([[object()]], dtype=object))


def test_ndim_message_has_reshape_hint():
    with pytest.raises(ValueError, match=r"must be 2-D.*reshape"):
        v.check_array(np.ones(3))
    assert v.check_array(np.ones(3), ndim=(1, 2)).ndim == 1


def test_none_and_sparse_refused():
    with pytest.raises(TypeError, match="None"):
        v.check_array(None)
    sp = pytest.importorskip("scipy.sparse")
    with pytest.raises(TypeError, match="sparse"):
        v.check_array(sp.csr_matrix(np.eye(2)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_finite_check(bad):
    x = np.ones((3, 3))
    x[1, 2] = bad
    with pytest.raises(ValueError, match="NaN or infinity"):
        v.check_array(x)
    assert v.check_array(x, check_finite=False) is x
    with fastla.config_context(check_finite=False):
        assert v.check_array(x) is x


def test_finite_check_handles_overflowing_sum():
    x = np.full((4, 4), np.finfo(np.float32).max, dtype=np.float32)
    assert v.all_finite(x)


def test_empty():
    e = np.empty((0, 3))
    assert v.check_array(e).shape == (0, 3)
    with pytest.raises(ValueError, match="empty"):
        v.check_array(e, allow_empty=False)


def test_copy_flag():
    x = np.ones((2, 2))
    assert v.check_array(x, copy=True) is not x


def test_result_dtype():
    a32, a64 = np.ones(1, np.float32), np.ones(1)
    assert v.result_dtype(a32, a32) == np.float32
    assert v.result_dtype(a32, a64) == np.float64


def test_same_columns():
    with pytest.raises(ValueError, match="3 features but Y has 4"):
        v.check_same_columns(np.ones((2, 3)), np.ones((2, 4)))


def test_check_int_and_scalar():
    assert v.check_int(3, name="k", minimum=1) == 3
    with pytest.raises(ValueError, match=">= 1"):
        v.check_int(0, name="k", minimum=1)
    with pytest.raises(TypeError):
        v.check_int(2.5, name="k")
    with pytest.raises(TypeError):
        v.check_int(True, name="k")
    assert v.check_scalar(0.5, name="lr", minimum=0, include_min=False) == 0.5
    with pytest.raises(ValueError, match="> 0"):
        v.check_scalar(0.0, name="lr", minimum=0, include_min=False)
    with pytest.raises(ValueError, match="finite"):
        v.check_scalar(np.nan, name="lr")
    with pytest.raises(ValueError, match="one of"):
        v.check_choice("x", name="mode", choices=("a", "b"))


def test_check_alloc_predicts_and_refuses():
    assert v.check_alloc((10, 10), np.float32) == 400
    with pytest.raises(fastla.OutputTooLargeError, match=r"needs .* GiB.*use the tiled"):
        v.check_alloc((10**7, 10**7), np.float64, hint="use the tiled path")
    with fastla.config_context(max_memory_bytes=1000):
        with pytest.raises(MemoryError):
            v.check_alloc((100, 100), np.float64)
    assert issubclass(fastla.OutputTooLargeError, ValueError)


def test_available_memory_is_sane():
    m = v.available_memory()
    assert m is None or m > 0


def test_check_out():
    out = np.empty((2, 3), np.float32)
    assert v.check_out(out, (2, 3), np.float32) is out
    with pytest.raises(ValueError, match="shape"):
        v.check_out(out, (3, 2), np.float32)
    with pytest.raises(ValueError, match="dtype"):
        v.check_out(out, (2, 3), np.float64)
    with pytest.raises(ValueError, match="C-contiguous"):
        v.check_out(np.empty((3, 2), np.float32).T, (2, 3), np.float32)
    ro = np.empty((2, 3), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        v.check_out(ro, (2, 3), np.float32)
    with pytest.raises(TypeError):
        v.check_out([[0.0]], (1, 1), np.float64)


def test_check_random_state():
    a = v.check_random_state(0).rand()
    b = v.check_random_state(0).rand()
    assert a == b
    rs = np.random.RandomState(1)
    assert v.check_random_state(rs) is rs
    with pytest.raises(ValueError):
        v.check_random_state("seed")


def _owner(a):
    """The array that owns a view's memory (its whole buffer)."""
    while a.base is not None:
        a = a.base
    return a


@pytest.mark.parametrize("shape,dtype", [((3, 5), np.float64), ((1000, 333), np.float32),
                                         ((7,), np.uint8), ((2, 0), np.float64)])
def test_empty_output_placement(shape, dtype):
    """Fresh outputs start on a cache line, or 2 KiB from a given array modulo 4 KiB,
    and lie wholly inside their buffer (a write to every element must not fault)."""
    out = v.empty_output(shape, dtype)
    assert out.shape == shape and out.dtype == dtype and out.flags.c_contiguous
    if out.size:
        assert out.ctypes.data % 64 == 0
        base = _owner(out)
        assert out.ctypes.data + out.nbytes <= base.ctypes.data + base.nbytes
        out[...] = 1
    img = np.empty((64, 64), np.float32)
    near = v.empty_output(shape, dtype, apart_from=img)
    if near.size:
        assert (near.ctypes.data - (img.ctypes.data & ~63)) % 4096 == 2048
        near[...] = 1


@pytest.mark.parametrize("shape,dtype", [((2048, 2048), np.float64), ((2901, 3001), np.float32)])
def test_empty_output_starts_huge_outputs_on_a_huge_page(shape, dtype):
    """From 32 MiB a fresh output starts on a 2 MiB boundary (apart from an array: 4 KiB
    before one, at the 2 KiB offset), inside its buffer, with the rest of its last 2 MiB
    page inside the buffer too (Linux backs only whole 2 MiB ranges with huge pages).
    Below 32 MiB it gets no such padding, which would push a buffer that glibc recycles
    from its heap past the size it maps afresh on every call."""
    huge = 1 << 21
    small = v.empty_output((2800, 2800), np.float32)
    assert _owner(small).nbytes - small.nbytes < 4096
    img = np.empty((64, 64), np.float32)
    for near in (None, img):
        out = v.empty_output(shape, dtype, apart_from=near)
        assert out.shape == shape and out.dtype == dtype and out.flags.c_contiguous
        base = _owner(out)
        lo, hi = base.ctypes.data, base.ctypes.data + base.nbytes
        start, end = out.ctypes.data, out.ctypes.data + out.nbytes
        if near is None:
            assert start % huge == 0
        else:
            assert (start - start % 4096 + 4096) % huge == 0  # its 4 KiB page ends on one
            assert (start - (img.ctypes.data & ~63)) % 4096 == 2048
        assert lo <= start and end <= hi
        assert -(-end // huge) * huge <= hi  # the last huge page lies in the buffer
        out[...] = 1


def test_finiteness_through_a_summary():
    """assert_finite(x, summary=s) trusts finite values computed from all of x (they
    carry its NaN and inf) and scans x only otherwise: an overflowed summary of finite
    data still passes, a non-finite x is refused whatever summary it comes with."""
    x = np.arange(12.0).reshape(3, 4)
    v.assert_finite(x, summary=x.mean(axis=0))
    v.assert_finite(x, summary=np.array([np.inf, 1.0]))  # overflowed: the scan decides
    y = x.copy()
    y[1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity"):
        v.assert_finite(y, summary=y.mean(axis=0))
    with pytest.raises(ValueError, match="NaN or infinity"):
        v.assert_finite(y)


def test_device_extent_from_the_cuda_array_interface():
    """The byte range used by the device ``out=`` overlap check, from a CUDA array
    interface: C order (strides None), explicit and negative strides, empty arrays."""
    from fastla._cuda_validation import _extent

    class Dev:
        def __init__(self, ptr, shape, strides=None, typestr="<f4"):
            self.__cuda_array_interface__ = {"data": (ptr, False), "shape": shape,
                                             "strides": strides, "typestr": typestr,
                                             "version": 3}

    assert _extent(Dev(1000, (3, 4))) == (1000, 1048)
    assert _extent(Dev(1000, (3, 4), typestr="<f8")) == (1000, 1096)
    assert _extent(Dev(1000, (3, 4), strides=(4, 12))) == (1000, 1048)      # F order
    assert _extent(Dev(1000, (3, 2), strides=(32, 8), typestr="<f8")) == (1000, 1080)
    assert _extent(Dev(1064, (3,), strides=(-32,))) == (1000, 1068)         # reversed
    assert _extent(Dev(1000, (0, 4))) == (1000, 1000)
    assert _extent(object()) is None


def test_device_c_contiguity_from_the_cuda_array_interface():
    """conv's device out= must be C-contiguous (it is written through a reshape): C order
    by None or by explicit strides, any stride on a length-1 axis; F order, row steps
    and reversed rows are not."""
    from fastla._cuda_validation import _c_contiguous

    class Dev:
        def __init__(self, shape, strides=None, typestr="<f4"):
            self.__cuda_array_interface__ = {"data": (1000, False), "shape": shape,
                                             "strides": strides, "typestr": typestr,
                                             "version": 3}

    assert _c_contiguous(Dev((3, 4)))
    assert _c_contiguous(Dev((3, 4), strides=(16, 4)))
    assert _c_contiguous(Dev((1, 4), strides=(999, 4)))
    assert _c_contiguous(Dev((3, 2), strides=(16, 8), typestr="<f8"))
    assert not _c_contiguous(Dev((3, 4), strides=(4, 12)))     # F order
    assert not _c_contiguous(Dev((3, 4), strides=(32, 4)))     # every other row
    assert not _c_contiguous(Dev((3,), strides=(-4,)))         # reversed
