"""fastla.conv against scipy.signal / scipy.ndimage, on every backend.

Images are small with odd sizes (the python backend is the plain loop, and CUDA tests
run under the simulator). Float tolerances scale with the kernel size, the magnitudes
and the dtype's epsilon; integer outputs compare exactly with SciPy's float64 result
rounded and saturated.
"""

import numpy as np
import pytest
import scipy.ndimage as ndi
import scipy.signal as sig

import fastla
from fastla import _backend, conv
from conftest import built_variants

SIGNAL_MODES = ("full", "same", "valid")
BOUNDARIES = ("fill", "wrap", "symm")
ND_MODES = ("reflect", "mirror", "nearest", "wrap", "constant")
# (image shape, kernel shape): odd, even, mixed, kernel larger than the image, 1-wide
SHAPES = [((7, 9), (3, 3)), ((9, 8), (2, 4)), ((5, 6), (4, 3)), ((3, 4), (5, 6)),
          ((6, 11), (5, 5)), ((1, 5), (1, 3))]


def tol(dtype, k, x=1.0, kmax=1.0):
    eps = np.finfo(np.dtype(dtype).char.lower() if np.dtype(dtype).kind == "c"
                   else dtype).eps
    return 8 * eps * np.size(k) * x * kmax + 1e-300


def assert_close(got, ref, dtype, k, xmax=4.0):
    """|got - ref| <= 8 eps * taps * max|x| * max|k| (the rounding bound of a sum)."""
    assert got.shape == ref.shape
    scale = max(1.0, float(np.max(np.abs(k))))
    np.testing.assert_allclose(got, ref, rtol=0, atol=tol(dtype, k, xmax, scale))


def combos(backend, seq, salt=0, step=3):
    """All of ``seq`` on host backends. The CUDA simulator runs one Python thread per
    GPU thread, so cuda tests take a rotating 1/step of the combinations (the kernel does
    not depend on the mode: modes live in the index tables, tested on every backend);
    ``salt`` rotates which share, so that together the parametrised cases cover all."""
    seq = list(seq)
    if backend != "cuda":
        return seq
    return [c for n, c in enumerate(seq) if (n + salt) % step == 0]


@pytest.fixture
def conv_backend(backend):
    """The conftest ``backend`` fixture, skipped where conv has no such kernel here."""
    ok, why = _backend.backend_status("correlate2d")[backend]
    if not ok:
        pytest.skip(f"{backend} unavailable for conv: {why}")
    return backend


# ----------------------------------------------------------------------------------
# scipy.signal semantics


@pytest.mark.parametrize("shapes", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_signal_matches_scipy(conv_backend, dtype, shapes, rng):
    (H, W), (kh, kw) = shapes
    x = rng.standard_normal((H, W)).astype(dtype)
    k = rng.standard_normal((kh, kw)).astype(dtype)
    salt = SHAPES.index(shapes) + (dtype == np.float64)
    grid = [(m, bd) for m in SIGNAL_MODES for bd in BOUNDARIES]
    for mode, boundary in combos(conv_backend, grid, salt):
        if True:
            for ours, theirs in ((fastla.convolve2d, sig.convolve2d),
                                 (fastla.correlate2d, sig.correlate2d)):
                try:
                    ref = theirs(x, k, mode, boundary, fillvalue=0.5)
                except ValueError:
                    with pytest.raises(ValueError, match="valid"):
                        ours(x, k, mode, boundary, 0.5, backend=conv_backend)
                    continue
                got = ours(x, k, mode, boundary, 0.5, backend=conv_backend)
                assert got.dtype == ref.dtype, (mode, boundary)
                assert_close(got, ref, dtype, k)


def test_signal_noncontiguous_and_methods(conv_backend, rng):
    x = rng.standard_normal((15, 22))[::2, 1::2]  # strided view, 8x11
    k = np.outer(rng.standard_normal(5), rng.standard_normal(5)).T  # F-ordered, rank 1
    for method in combos(conv_backend, ("direct", "separable", "fft", "auto")):
        got = fastla.convolve2d(x, k, "same", "symm", method=method, backend=conv_backend)
        assert_close(got, sig.convolve2d(x, k, "same", "symm"), np.float64, k)
    k2 = rng.standard_normal((4, 3))  # rank 3: separable runs 3 rank-1 passes
    got = fastla.correlate2d(x, k2, "full", "wrap", method="separable", backend=conv_backend)
    assert_close(got, sig.correlate2d(x, k2, "full", "wrap"), np.float64, k2)


def test_signal_complex(conv_backend, rng):
    x = rng.standard_normal((6, 7)) + 1j * rng.standard_normal((6, 7))
    k = rng.standard_normal((3, 2)) + 1j * rng.standard_normal((3, 2))
    kr = rng.standard_normal((3, 2))
    for a, b in ((x, k), (x, kr), (x.real.copy(), k), (x.astype(np.complex64),
                                                      k.astype(np.complex64))):
        for ours, theirs in ((fastla.convolve2d, sig.convolve2d),
                             (fastla.correlate2d, sig.correlate2d)):
            ref = theirs(a, b, "same", "fill", fillvalue=1 - 2j)
            got = ours(a, b, "same", "fill", fillvalue=1 - 2j, backend=conv_backend)
            assert got.dtype == ref.dtype
            assert_close(got, ref, ref.dtype, b)


def test_signal_integers_saturate(conv_backend, rng):
    x = rng.integers(0, 256, (7, 9)).astype(np.uint8)
    k = np.ones((3, 3), np.uint8)
    ref = sig.convolve2d(x.astype(np.float64), k.astype(np.float64), "same", "symm")
    want = np.clip(np.rint(ref), 0, 255).astype(np.uint8)
    got = fastla.convolve2d(x, k, "same", "symm", backend=conv_backend)
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, want)
    assert got.max() == 255  # SciPy would wrap around here
    xi = rng.integers(-3000, 3000, (7, 9)).astype(np.int16)
    ki = rng.integers(-9, 9, (2, 4)).astype(np.int16)
    ref = sig.correlate2d(xi.astype(np.float64), ki.astype(np.float64), "full", "wrap")
    got = fastla.correlate2d(xi, ki, "full", "wrap", backend=conv_backend)
    np.testing.assert_array_equal(got, np.clip(ref, -32768, 32767).astype(np.int16))
    # float kernel on uint8 image: SciPy's result type (float64) unless dtype= asks
    kf = rng.standard_normal((3, 3))
    ref = sig.convolve2d(x.astype(np.float64), kf, "valid")
    assert_close(fastla.convolve2d(x, kf, "valid", backend=conv_backend), ref,
                 np.float64, kf, 255)
    got8 = fastla.convolve2d(x, kf, "valid", backend=conv_backend, dtype=np.uint8)
    np.testing.assert_array_equal(got8, np.clip(np.rint(ref), 0, 255).astype(np.uint8))


# ----------------------------------------------------------------------------------
# scipy.ndimage semantics


@pytest.mark.parametrize("kshape", [(3, 3), (2, 4), (5, 2)], ids=str)
def test_ndimage_matches_scipy(conv_backend, dtype, kshape, rng):
    x = rng.standard_normal((7, 9)).astype(dtype)
    k = rng.standard_normal(kshape).astype(dtype)
    kh, kw = kshape
    origins = [(oy, ox) for oy in (-(kh // 2), 0, (kh - 1) // 2)
               for ox in (-(kw // 2), (kw - 1) // 2)]
    salt = 2 * [(3, 3), (2, 4), (5, 2)].index(kshape) + (dtype == np.float64)
    for mode, origin in combos(conv_backend, [(m, o) for m in ND_MODES for o in origins],
                               salt, step=5):
        if True:
            for ours, theirs in ((fastla.convolve, ndi.convolve),
                                 (fastla.correlate, ndi.correlate)):
                ref = theirs(x, k, mode=mode, cval=0.25, origin=origin)
                got = ours(x, k, mode=mode, cval=0.25, origin=origin, backend=conv_backend)
                assert got.dtype == x.dtype
                assert_close(got, ref, dtype, k)


def test_ndimage_stack_bank_views(conv_backend, rng):
    x = rng.standard_normal((2, 3, 9, 14))[:, :, ::-1, ::2]  # stack of reversed views
    bank = rng.standard_normal((3, 3, 4))
    got = fastla.correlate(x, bank, mode="mirror", backend=conv_backend)
    assert got.shape == (2, 3, 3, 9, 7)
    for idx in np.ndindex(2, 3):
        for k in range(3):
            assert_close(got[idx + (k,)], ndi.correlate(x[idx], bank[k], mode="mirror"),
                         np.float64, bank[k])
    got = fastla.convolve(x, bank[1], mode="wrap", origin=(1, -1), backend=conv_backend)
    for idx in np.ndindex(2, 3):
        assert_close(got[idx], ndi.convolve(x[idx], bank[1], mode="wrap", origin=(1, -1)),
                     np.float64, bank[1])


def test_ndimage_integer_and_complex(conv_backend, rng):
    x = rng.integers(0, 256, (2, 7, 9)).astype(np.uint8)
    k = rng.standard_normal((3, 3)) * 3
    got = fastla.correlate(x, k, mode="nearest", backend=conv_backend)
    assert got.dtype == np.uint8
    for s in range(2):
        ref = ndi.correlate(x[s].astype(np.float64), k, mode="nearest")
        np.testing.assert_array_equal(got[s], np.clip(np.rint(ref), 0, 255).astype(np.uint8))
    xi = rng.integers(-2000, 2000, (7, 9)).astype(np.int16)
    got = fastla.convolve(xi, k, mode="constant", cval=7, backend=conv_backend,
                          dtype=np.float64)
    assert_close(got, ndi.convolve(xi.astype(np.float64), k, mode="constant", cval=7),
                 np.float64, k, 2000)
    xc = (rng.standard_normal((7, 9)) + 1j * rng.standard_normal((7, 9))).astype(np.complex64)
    kc = rng.standard_normal((2, 3)) + 1j * rng.standard_normal((2, 3))
    for ours, theirs in ((fastla.convolve, ndi.convolve), (fastla.correlate, ndi.correlate)):
        got = ours(xc, kc, mode="reflect", backend=conv_backend)
        assert got.dtype == np.complex64
        assert_close(got, theirs(xc.astype(np.complex128), kc, mode="reflect"),
                     np.float32, kc)


def test_float32_stays_float32_and_out(conv_backend, rng):
    x = rng.standard_normal((9, 7)).astype(np.float32)
    k = rng.standard_normal((3, 3)).astype(np.float32)
    out = np.empty((9, 7), np.float32)
    res = fastla.correlate(x, k, out=out, backend=conv_backend)
    assert res is out and out.dtype == np.float32
    assert_close(out, ndi.correlate(x, k), np.float32, k)
    out2 = np.empty((11, 9), np.float32)
    res = fastla.convolve2d(x, k, out=out2, backend=conv_backend)
    assert res is out2
    assert_close(out2, sig.convolve2d(x, k), np.float32, k)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint8])
def test_out_written_in_place_or_safely_when_aliased(conv_backend, rng, dtype):
    """out= gives the same values as a fresh result: written by the kernels directly when
    it can be, copied in when it overlaps the input (out=image) or needs a cast."""
    x = (rng.standard_normal((3, 13, 11)) * 40 + 100).astype(dtype)
    k = rng.standard_normal((3, 3)).astype(np.float32)
    ref = fastla.correlate(x, k, mode="mirror", backend=conv_backend)
    out = np.full(x.shape, 7, dtype)
    assert fastla.correlate(x, k, mode="mirror", out=out, backend=conv_backend) is out
    np.testing.assert_array_equal(out, ref)
    y = x.copy()
    assert fastla.correlate(y, k, mode="mirror", out=y, backend=conv_backend) is y
    np.testing.assert_array_equal(y, ref)
    ref2 = fastla.convolve2d(x[0], k, mode="same", boundary="symm", backend=conv_backend)
    out2 = np.zeros_like(ref2)
    fastla.convolve2d(x[0], k, mode="same", boundary="symm", out=out2, backend=conv_backend)
    np.testing.assert_array_equal(out2, ref2)


# ----------------------------------------------------------------------------------
# methods, registry, bad input (host only, cython or the first available backend)


def test_methods_agree_large_kernel(rng):
    x = rng.standard_normal((40, 37))
    for k in (rng.standard_normal((19, 17)), np.outer(np.hanning(9), np.hanning(7))):
        ref = ndi.correlate(x, k, mode="reflect")
        for method in ("direct", "separable", "fft", "auto"):
            got = fastla.correlate(x, k, mode="reflect", method=method)
            assert_close(got, ref, np.float64, k)
    assert conv._choose_method("auto", np.ones((1, 3, 3)), (512, 512), False) == "direct"
    assert conv._choose_method("auto", np.ones((1, 5, 5)), (512, 512), False) == "separable"
    assert conv._choose_method("auto", np.ones((1, 11, 11)), (512, 512), True) == "direct"
    assert conv._choose_method("auto", np.eye(19)[None], (512, 512), False) == "direct"
    assert conv._choose_method("auto", np.eye(21)[None], (512, 512), False) == "fft"
    assert conv._choose_method("auto", np.eye(3)[None], (512, 512), False) == "direct"


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_fft_tiled_overlap_save(dtype, rng):
    """method="fft" cuts the image into overlap-save tiles: many tiles per axis, a
    ragged last tile, every boundary mode, origins, a stack, a kernel bank and out=."""
    from fastla._kernels import _fft_conv

    x = rng.standard_normal((2, 150, 171)).astype(dtype)
    bank = rng.standard_normal((2, 9, 8)).astype(dtype)
    assert _fft_conv.tile_length(9, 150) < 150 and _fft_conv.tile_length(8, 171) < 171
    for mode in ND_MODES:
        for origin in ((0, 0), (3, -4)):
            got = fastla.correlate(x, bank, mode=mode, cval=0.5, origin=origin,
                                   method="fft")
            assert got.dtype == x.dtype and got.shape == (2, 2, 150, 171)
            for b in range(2):
                for k in range(2):
                    ref = ndi.correlate(x[b].astype(np.float64), bank[k].astype(np.float64),
                                        mode=mode, cval=0.5, origin=origin)
                    assert_close(got[b, k], ref, dtype, bank[k])
    out = np.full((150, 171), np.nan, dtype)
    res = fastla.convolve(x[1], bank[0], mode="wrap", method="fft", out=out)
    assert res is out
    assert_close(out, ndi.convolve(x[1], bank[0], mode="wrap"), dtype, bank[0])
    for mode, boundary in (("full", "fill"), ("valid", "symm"), ("same", "wrap")):
        got = fastla.correlate2d(x[0], bank[1], mode, boundary, 0.25, method="fft")
        ref = sig.correlate2d(x[0].astype(np.float64), bank[1].astype(np.float64), mode,
                              boundary, 0.25)
        assert_close(got, ref, dtype, bank[1])


def test_available_backends_lists_ops():
    for op in ("convolve2d", "correlate2d", "convolve", "correlate"):
        b = fastla.available_backends(op)
        assert "python" in b and "numba" in b


@pytest.mark.parametrize("call, match", [
    (lambda: fastla.convolve2d(np.ones((3, 4)), np.ones((4, 3)), "valid"), "valid"),
    (lambda: fastla.convolve2d(np.ones((0, 4)), np.ones((2, 2))), "empty"),
    (lambda: fastla.convolve2d(np.ones((3, 4)), np.ones((0, 2))), "empty"),
    (lambda: fastla.convolve2d(np.ones((3, 4)), np.ones((2, 2)), "middle"), "mode"),
    (lambda: fastla.convolve2d(np.ones((3, 4)), np.ones((2, 2)), boundary="zero"),
     "boundary"),
    (lambda: fastla.correlate2d(np.ones(4), np.ones((2, 2))), "2-D"),
    (lambda: fastla.correlate2d(np.ones((3, 4)), np.ones((2, 2, 2))), "2-D"),
    (lambda: fastla.correlate(np.ones(4), np.ones((2, 2))), "at least 2"),
    (lambda: fastla.correlate(np.ones((4, 4)), np.ones(2)), "weights"),
    (lambda: fastla.correlate(np.ones((4, 4)), np.ones((3, 3)), mode="symm"), "mode"),
    (lambda: fastla.correlate(np.ones((4, 4)), np.ones((3, 3)), origin=2), "origin"),
    (lambda: fastla.convolve(np.ones((4, 4)), np.ones((2, 2)), origin=1), "origin"),
    (lambda: fastla.correlate(np.ones((4, 4)), np.ones((3, 3)), method="winograd"),
     "method"),
    (lambda: fastla.correlate(np.ones((4, 4)), np.ones((3, 3)), out=np.empty((4, 3))),
     "shape"),
    (lambda: fastla.correlate(np.ones((4, 4)), np.ones((3, 3)),
                              out=np.empty((4, 4), np.float32)), "dtype"),
    (lambda: fastla.correlate(np.full((4, 4), np.nan), np.ones((3, 3))), "NaN"),
])
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", [(0, 0), (12, 16), (6, 9)])
def test_one_nonfinite_pixel_anywhere_raises(conv_backend, rng, value, where):
    """The image's finiteness check (fused into the Cython kernel's output scan) must see
    a single NaN/inf wherever it is, corners included, in every mode and even under zero
    weights; an overflow from finite input is not an input error."""
    x = rng.standard_normal((13, 17)).astype(np.float32)
    x[where] = value
    k = rng.standard_normal((3, 3)).astype(np.float32)
    calls = [lambda: fastla.correlate(x, k, mode="reflect", backend=conv_backend),
             lambda: fastla.correlate(x, np.zeros_like(k), mode="wrap", backend=conv_backend),
             lambda: fastla.convolve2d(x, k, "valid", backend=conv_backend),
             lambda: fastla.convolve2d(k, x, "valid", backend=conv_backend),
             lambda: fastla.correlate2d(x, k[:2], "same", "symm", backend=conv_backend)]
    # rank-1 kernels by the fused separable path (its own non-finite report), with a
    # zero tap in each factor, and by the two-pass path (a kernel bank, not fused)
    sep = np.outer([1.0, 0.0, -2.0, 0.5, 1.0], [0.0, 1.0, 3.0, -1.0, 2.0]).astype(np.float32)
    calls += [lambda: fastla.correlate(x, sep, mode=m, method="separable",
                                       backend=conv_backend)
              for m in ("reflect", "constant", "wrap")]
    calls += [lambda: fastla.correlate(x, np.stack([sep, -sep]), method="separable",
                                       backend=conv_backend),
              lambda: fastla.convolve2d(x, sep, "valid", method="separable",
                                        backend=conv_backend)]
    for call in calls:
        with pytest.raises(ValueError, match="NaN|inf"):
            call()
    with fastla.config_context(check_finite=False), np.errstate(all="ignore"):
        assert not np.isfinite(fastla.correlate(x, k, backend=conv_backend)).all()
    big = np.full((5, 6), 3e38, np.float32)  # outputs overflow: not an error
    with np.errstate(all="ignore"):
        res = fastla.correlate(big, np.ones((3, 3), np.float32), backend=conv_backend)
        assert res.shape == (5, 6)
        res = fastla.correlate(big, np.ones((5, 5), np.float32), method="separable",
                               backend=conv_backend)
    assert res.shape == (5, 6)


def test_bad_types():
    with pytest.raises(TypeError):
        fastla.correlate(np.array([["a", "b"], ["c", "d"]]), np.ones((1, 1)))
    with pytest.raises(TypeError, match="origin"):
        fastla.correlate(np.ones((4, 4)), np.ones((3, 3)), origin=0.5)
    with pytest.raises(TypeError, match="dtype"):
        fastla.correlate(np.ones((4, 4)), np.ones((3, 3)), dtype="U3")


def test_empty_stack_returns_empty():
    got = fastla.correlate(np.ones((0, 5, 6)), np.ones((3, 3)))
    assert got.shape == (0, 5, 6)


# ----------------------------------------------------------------------------------
# device arrays (numba.cuda; the simulator under NUMBA_ENABLE_CUDASIM=1)


@pytest.mark.cuda
def test_device_arrays_stay_on_device(rng):
    ok, why = _backend.backend_status("correlate2d")["cuda"]
    if not ok:
        pytest.skip(f"cuda unavailable: {why}")
    from numba import cuda

    x = rng.standard_normal((2, 9, 11)).astype(np.float32)
    k = rng.standard_normal((2, 3, 2)).astype(np.float32)
    d = cuda.to_device(x)
    got = fastla.correlate(d, k, mode="wrap", origin=(0, -1))
    assert not isinstance(got, np.ndarray) and got.shape == (2, 2, 9, 11)
    host = got.copy_to_host()
    for s in range(2):
        for j in range(2):
            assert_close(host[s, j], ndi.correlate(x[s], k[j], mode="wrap", origin=(0, -1)),
                         np.float32, k[j])
    dout = cuda.device_array((11, 12), np.float32)
    res = fastla.convolve2d(cuda.to_device(x[0]), k[0], "full", "symm", out=dout)
    assert res is dout
    assert_close(dout.copy_to_host(), sig.convolve2d(x[0], k[0], "full", "symm"),
                 np.float32, k[0])
    with pytest.raises(TypeError, match="float32 or float64"):
        fastla.correlate(cuda.to_device(np.ones((4, 4), np.int16)), np.ones((3, 3)))
    with pytest.raises(ValueError, match="out"):
        fastla.correlate(d, k[0], out=cuda.device_array((2, 9, 10), np.float32))
    with pytest.raises(ValueError, match="share memory"):      # would read what it writes
        fastla.correlate(d, k[0], out=d)
    with pytest.raises(TypeError, match="device array"):
        fastla.correlate(d, k[0], out=np.empty((2, 9, 11), np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):  # written through a reshape
        fastla.correlate(d, k[0], out=cuda.device_array((2, 18, 11), np.float32)[:, ::2])


@pytest.mark.parametrize("kshape", [(3, 3), (5, 5), (7, 7), (2, 4), (4, 11), (1, 2)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rows_kernels_every_variant(monkeypatch, dtype, kshape):
    """The two-row register kernels (_conv_vec.h: 3x3's own, any shape's) on every ISA
    variant: against SciPy, with odd widths (scalar steps to the first cache line,
    vectors, scalar tail) and an odd row count (the last row alone), cached and streaming
    stores giving the same values bitwise (the scalar steps match the vectors' fused
    multiply-adds), and the non-finite flag raised by one NaN in the vector part or the
    tail and only then."""
    import types


    rng = np.random.default_rng(4)
    kh, kw = kshape
    for H, W in ((9, 83), (6, 40), (5, 3)):
        x = rng.standard_normal((2, H, W)).astype(dtype)
        w = rng.standard_normal((1, kh, kw)).astype(dtype)
        ref = np.stack([ndi.correlate(x[b].astype(np.float64), w[0].astype(np.float64),
                                      mode="reflect") for b in range(2)])
        for mod in built_variants("_cy_conv"):
            b = types.SimpleNamespace(kernel=mod.correlate2d)
            got = {}
            for bounds in ((0, 1 << 62), (1 << 62, 1 << 62)):  # streamed, cached
                monkeypatch.setattr(mod, "STREAM_RANGE", bounds)
                st = []
                got[bounds] = conv._direct(b, x, w, kh // 2, kw // 2, H, W, "reflect", 0.0,
                                           2, status=st)
                assert st == [False]
                assert_close(got[bounds][:, 0], ref, dtype, w[0])
            np.testing.assert_array_equal(*got.values())
            for j in {W // 2, W - 2}:
                y = x.copy()
                y[1, H // 2, j] = np.nan
                st = []
                with np.errstate(invalid="ignore"):
                    conv._direct(b, y, w, kh // 2, kw // 2, H, W, "reflect", 0.0, 2,
                                 status=st)
                assert st == [True]


@pytest.mark.parametrize("mode", ["reflect", "constant", "wrap"])
@pytest.mark.parametrize("kshape", [(3, 3), (4, 5), (1, 3)])
def test_uint8_fused_path_is_exact(mode, kshape):
    """uint8 in, uint8 out on Cython (correlate2d_u8: rows converted in a per-thread
    ring reused by consecutive row pairs, rounding and saturation in the kernel): SciPy's
    float64 result rounded and saturated (``assert_u8_rounds``), on a stack with an odd
    row count, border rows from the cval row, and the default and an explicit backend."""
    rng = np.random.default_rng(8)
    x = rng.integers(0, 256, (3, 37, 29)).astype(np.uint8)
    w = (rng.standard_normal(kshape) * 0.6).astype(np.float32)
    for backend in (None, "cython"):
        got = fastla.correlate(x, w, mode=mode, cval=7.0, dtype=np.uint8, backend=backend)
        assert got.dtype == np.uint8
        assert assert_u8_rounds(got, x, w, mode, 7.0) <= 2
    out = np.zeros_like(x)
    assert fastla.correlate(x, w, mode=mode, cval=7.0, dtype=np.uint8, out=out) is out
    assert_u8_rounds(out, x, w, mode, 7.0)


def assert_u8_rounds(got, x, w, mode, cval, origin=0, exact=False):
    """``got`` (uint8) is SciPy's float64 result rounded to nearest (ties to even) and
    saturated, except where that result lies within float64 summation error of a
    half-integer: there two float64 sums in different orders may round apart (one such
    case, exact value 84.5 + 8.7e-15, SciPy 84.5 -> 84, fastla 85), so either neighbour
    is accepted. ``exact``: the float64 sums are exact (dyadic weights), so ties are
    ties and there is no window. Returns how many values were in the window."""
    ref = np.stack([ndi.correlate(x[b].astype(np.float64), w.astype(np.float64), mode=mode,
                                  cval=cval, origin=origin) for b in range(x.shape[0])])
    tol = 2 * (w.size + 2) * 2.0 ** -53 * float(np.abs(w).sum()) * max(255.0, abs(cval))
    amb = (np.abs(ref - np.floor(ref) - 0.5) <= tol) & (not exact)

    def sat(v):
        return np.clip(v, 0, 255).astype(np.uint8)

    np.testing.assert_array_equal(got[~amb], sat(np.rint(ref))[~amb])
    assert np.all((got[amb] == sat(np.floor(ref))[amb]) | (got[amb] == sat(np.ceil(ref))[amb]))
    return int(amb.sum())


def _u8_random_kernel(rng, shape):
    w = np.abs(rng.standard_normal(shape))
    return w / w.sum() * 1.3


# kernels for the float32 pass of uint8 -> uint8: (name, weights(rng, shape))
_U8_KERNELS = [
    # random weights: rare values near a tie
    ("random", _u8_random_kernel),
    # dyadic weights: float32 sums exact (bound 0), many exact ties (ties to even)
    ("dyadic", lambda rng, s: rng.integers(-3, 9, s) / 16.0),
    # 0.05 + 1e-10: one value in 20 lies 1e-10 sum(x) above a tie, below float32's
    # resolution (float32(0.05) alone is 7e-10 off), so float32 sums fall on either
    # side; inside the bound (recomputed in float64), far outside float64's error
    ("near-ties", lambda rng, s: np.full(s, 0.05 + 1e-10)),
]


@pytest.mark.parametrize("mode", ["reflect", "constant", "wrap", "nearest"])
@pytest.mark.parametrize("kshape", [(3, 3), (5, 5), (2, 4)], ids=str)
def test_uint8_single_precision_pass_is_exact(monkeypatch, mode, kshape):
    """uint8 -> uint8 sums in float32 (the 3x3 kernel reads uint8 and rounds in one
    pass; other shapes through a float32 ring) and recomputes in float64 every value
    within the float32 error bound of a half-integer: on every ISA variant the output
    is exactly SciPy's float64 result rounded (ties to even) and saturated, for kernels
    with rare, exact and many near ties, rows wider and narrower than a vector, origins,
    a stack and out-of-image rows; a cval too large for the bound runs in float64."""
    rng = np.random.default_rng(11)
    x = rng.integers(0, 256, (2, 21, 70)).astype(np.uint8)
    narrow = x[:, :9, :6].copy()
    for name, make in _U8_KERNELS:
        w = make(rng, kshape)
        w64 = np.ascontiguousarray(w[None], dtype=np.float64)
        assert np.all(conv._u8_bounds(w64, mode, 7.0) <= conv._U8_SINGLE_MAX_BOUND), name
        if name == "dyadic":
            assert np.all(conv._u8_bounds(w64, mode, 7.0) == 0)
        for mod in built_variants("_cy_conv"):
            monkeypatch.setattr(conv._backend, "entry", lambda op, be, attr, m=mod:
                                getattr(m, attr))
            for img in (x, narrow):
                for origin in ((0, 0), (-(kshape[0] // 2), (kshape[1] - 1) // 2)):
                    got = fastla.correlate(img, w, mode=mode, cval=7.0, origin=origin,
                                           dtype=np.uint8, backend="cython")
                    n_amb = assert_u8_rounds(got, img, w, mode, 7.0, origin,
                                             exact=name == "dyadic")
                    # only float64's own rounding may be ambiguous: never for the exact
                    # and the near-tie kernels, rarely for random weights
                    assert n_amb <= (2 if name == "random" else 0), (name, n_amb)
    if mode == "constant":  # |cval| too large for the float32 bound: float64 sums
        w = _U8_KERNELS[0][1](rng, kshape)
        assert conv._u8_bounds(np.asarray(w[None], np.float64), mode, 1e9)[0] > \
            conv._U8_SINGLE_MAX_BOUND
        got = fastla.correlate(x, w, mode=mode, cval=1e9, dtype=np.uint8)
        assert assert_u8_rounds(got, x, w, mode, 1e9) <= 2


def test_uint8_bounds_and_dyadic_exponent():
    assert conv._dyadic_exponent([1 / 16, 2 / 16, -4 / 16]) == 4
    assert conv._dyadic_exponent([3.0, 0.0, -5.0]) == 0
    assert conv._dyadic_exponent([2.0 ** -40]) == 40
    assert conv._dyadic_exponent([np.nan]) is None
    assert conv._dyadic_exponent(0.0) == 0
    assert conv._dyadic_exponent([5e-324]) == 1074
    # 1/9 is not dyadic at any scale that keeps 255 * sum below 2**24: bounded
    w = np.full((1, 3, 3), 1 / 9)
    b = conv._u8_bounds(w, "reflect", 0.0)[0]
    assert b == pytest.approx(255 * 11 * 2.0 ** -23)
    # dyadic weights but a non-dyadic cval that the boundary reads: bounded
    g = np.array([[[1, 2, 1], [2, 4, 2], [1, 2, 1]]]) / 16
    assert conv._u8_bounds(g, "reflect", 0.1)[0] == 0
    assert conv._u8_bounds(g, "constant", 0.1)[0] > 0
    assert conv._u8_bounds(g, "constant", 0.5)[0] == 0
    # sums beyond float32's integers: bounded (and above the single-precision limit)
    assert conv._u8_bounds(g * 2.0 ** 20, "reflect", 0.0)[0] > conv._U8_SINGLE_MAX_BOUND
    assert np.isinf(conv._u8_bounds(g, "constant", np.inf)[0])


@pytest.mark.parametrize("mode", ["reflect", "constant", "wrap"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_separable_is_the_two_passes(monkeypatch, mode, dtype):
    """correlate2d_sep (both 1-D passes of a rank-1 kernel fused through a per-thread
    ring of filtered rows) gives the values of the separate horizontal and vertical
    passes bitwise, on every variant, streamed or not, on a stack with an odd row count
    and out-of-image rows (cval * sum(row))."""
    import types

    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 23, 45)).astype(dtype)
    col = rng.standard_normal(5).astype(dtype)
    row = rng.standard_normal(7).astype(dtype)
    kh, kw = col.size, row.size
    oy, ox, H, W = kh // 2, kw // 2, 23, 45
    for mod in built_variants("_cy_conv"):
        b = types.SimpleNamespace(kernel=mod.correlate2d)
        t = conv._direct(b, x, row.reshape(1, 1, kw), 0, ox, H, W, mode, 1.5, 2,
                         rows=np.arange(H, dtype=np.intp))
        want = conv._direct(b, t.reshape(2, H, W), col.reshape(1, kh, 1), oy, 0, H, W, mode,
                            1.5 * float(np.sum(row)), 2, cols=np.arange(W, dtype=np.intp))
        rowidx, colidx, oxk, jlo, jhi = conv._tables(H, W, kh, kw, oy, ox, H, W, mode)
        for bounds in ((0, 1 << 62), (1 << 62, 1 << 62)):  # streamed, cached
            monkeypatch.setattr(mod, "STREAM_RANGE", bounds)
            got = np.full((2, 1, H, W), -3.0, dtype)
            mod.correlate2d_sep(x, col, row, rowidx, colidx, oxk, jlo, jhi, 1.5,
                                1.5 * float(np.sum(row)), got, 2)
            np.testing.assert_array_equal(got, want)
