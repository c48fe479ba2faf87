"""fastla's cuda backend against PyTorch (and CuPy) on one GPU, side by side in one process.

Not an asv suite (asv imports this module and finds no benchmarks in it): run it by hand
on a machine with an NVIDIA GPU, numba-cuda and PyTorch::

    python benchmarks/gpu_compare.py [--quick] [--json out.json] [--only distances,knn,conv]
    python benchmarks/gpu_compare.py --only tune     # block shapes of the pair kernel

Every input lives on the GPU before the clock starts and every result stays there:
fastla is given numba device arrays (made once from the torch tensors, zero-copy) and
returns device arrays. Each timing is the median over 7 batches of (launch the call N
times, then synchronise the device) / N, after 3 warm-up calls, so the JIT compilation
and the allocators' first calls are not counted.

Before timing, each fastla result is checked against a float64 reference computed
directly (no GEMM form), and the script stops if one is off.
"""

import argparse
import json
import statistics
import sys
import time


def _sync():
    from numba import cuda
    cuda.synchronize()
    try:
        import torch
        torch.cuda.synchronize()
    except ImportError:
        pass


def timeit(fn, target_s=0.25, batches=7):
    """Median seconds per call of ``fn`` (device work included)."""
    for _ in range(3):
        fn()
    _sync()
    t0 = time.perf_counter()
    fn()
    _sync()
    one = max(time.perf_counter() - t0, 1e-6)
    n = max(1, min(200, int(target_s / batches / one)))
    res = []
    for _ in range(batches):
        _sync()
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        _sync()
        res.append((time.perf_counter() - t0) / n)
    return statistics.median(res)


def gpu_time(fn, n=20):
    """Seconds of GPU time per call: the calls are queued behind a ~50 ms spin kernel,
    so the host's launch overhead between them is hidden (an upper bound if queueing n
    calls takes longer than the spin, or if a call synchronises)."""
    import torch
    fn()
    _sync()
    e0 = torch.cuda.Event(enable_timing=True)
    e1 = torch.cuda.Event(enable_timing=True)
    res = []
    for _ in range(3):
        torch.cuda._sleep(100_000_000)
        e0.record()
        for _ in range(n):
            fn()
        e1.record()
        _sync()
        res.append(e0.elapsed_time(e1) / n / 1e3)
    return min(res)


def _ceilings(torch):
    a = torch.randn(8192, 8192, device="cuda")
    b = torch.randn(8192, 8192, device="cuda")
    torch.backends.cuda.matmul.allow_tf32 = False
    t = timeit(lambda: a @ b, target_s=0.5)
    x = torch.empty(1 << 28, device="cuda")  # 1 GiB
    y = torch.empty_like(x)
    tc = timeit(lambda: y.copy_(x), target_s=0.5)
    return {"fp32_gemm_tflops": 2 * 8192 ** 3 / t / 1e12,
            "copy_gbps_read_plus_write": 2 * x.numel() * 4 / tc / 1e9}


def _rel(a, ref):
    import numpy as np
    a = np.asarray(a, dtype=np.float64)
    return float(np.linalg.norm(a - ref) / max(np.linalg.norm(ref), 1e-300)), \
        float(np.max(np.abs(a - ref) / np.maximum(np.abs(ref), 1e-6)))


def bench_distances(torch, cuda, fastla, quick, rows):
    import numpy as np
    m = n = 1000 if quick else 5000
    d = 64
    g = torch.Generator(device="cuda").manual_seed(0)
    for dt, tdt in ((np.float32, torch.float32), (np.float64, torch.float64)):
        X = torch.rand(m, d, device="cuda", dtype=tdt, generator=g)
        Y = torch.rand(n, d, device="cuda", dtype=tdt, generator=g)
        dX, dY = cuda.as_cuda_array(X), cuda.as_cuda_array(Y)
        X64, Y64 = X.double(), Y.double()
        refs = {
            "euclidean": torch.cdist(X64, Y64, compute_mode="donot_use_mm_for_euclid_dist"),
            "manhattan": torch.cdist(X64, Y64, p=1),
        }
        refs["sqeuclidean"] = refs["euclidean"] ** 2
        refs["cosine"] = 1 - torch.nn.functional.normalize(X64) @ \
            torch.nn.functional.normalize(Y64).T
        refs = {k: v.cpu().numpy() for k, v in refs.items()}
        Xn = torch.nn.functional.normalize
        peers = {
            "euclidean": {"torch.cdist": lambda: torch.cdist(X, Y),
                          "torch.cdist(exact)": lambda: torch.cdist(
                              X, Y, compute_mode="donot_use_mm_for_euclid_dist")},
            "sqeuclidean": {"torch.cdist**2": lambda: torch.cdist(X, Y).square_()},
            "manhattan": {"torch.cdist(p=1)": lambda: torch.cdist(X, Y, p=1)},
            "cosine": {"torch(normalize@normalize.T)": lambda: 1 - Xn(X) @ Xn(Y).T},
        }
        torch.backends.cuda.matmul.allow_tf32 = False
        gemm = timeit(lambda: X @ Y.T)
        name = np.dtype(dt).name
        rows.append({"case": f"GEMM X@Y.T {m}x{n}x{d} {name} (cuBLAS, no TF32)",
                     "time_ms": gemm * 1e3})
        for metric, pe in peers.items():
            res = fastla.pairwise_distances(dX, dY, metric=metric, backend="cuda")
            rel, mx = _rel(res.copy_to_host(), refs[metric])
            tol = 1e-5 if dt == np.float32 else 1e-12
            if rel > tol:
                sys.exit(f"fastla {metric} {name}: relative error {rel:.2e} > {tol}")
            tf = timeit(lambda: fastla.pairwise_distances(dX, dY, metric=metric,
                                                          backend="cuda"))
            dout = cuda.device_array((m, n), dtype=dt)
            to = timeit(lambda: fastla.pairwise_distances(dX, dY, metric=metric,
                                                          backend="cuda", out=dout))
            tg = gpu_time(lambda: fastla.pairwise_distances(dX, dY, metric=metric,
                                                            backend="cuda", out=dout))
            row = {"case": f"{metric} {m}x{n}x{d} {name}", "fastla_ms": tf * 1e3,
                   "fastla_out=_ms": to * 1e3, "fastla_gpu_ms": tg * 1e3,
                   "rel_err": rel, "max_rel_err": mx, "gemm_ms": gemm * 1e3,
                   "vs_gemm": gemm / tf}
            for pn, fn in pe.items():
                tp = timeit(fn)
                row[pn + "_ms"] = tp * 1e3
                row[pn + "_gpu_ms"] = gpu_time(fn) * 1e3
                row["vs " + pn] = tp / tf
            rows.append(row)
        # rbf
        gamma = 1.0 / d
        ref = np.exp(-gamma * refs["sqeuclidean"])
        res = fastla.rbf_kernel(dX, dY, gamma=gamma, backend="cuda")
        rel, mx = _rel(res.copy_to_host(), ref)
        tf = timeit(lambda: fastla.rbf_kernel(dX, dY, gamma=gamma, backend="cuda"))
        tp = timeit(lambda: torch.exp(torch.cdist(X, Y).square_().mul_(-gamma)))
        rows.append({"case": f"rbf {m}x{n}x{d} {name}", "fastla_ms": tf * 1e3,
                     "rel_err": rel, "torch_ms": tp * 1e3, "vs torch": tp / tf})


TUNE = [(16, 16, 4, 4, 16, 8), (16, 16, 4, 4, 32, 16), (16, 16, 8, 8, 8, 4),
        (16, 8, 8, 8, 16, 8), (16, 16, 8, 8, 16, 8)]


def bench_tune(torch, cuda, fastla, quick, rows):
    """Block shapes of the pair kernel (TX, TY, RM, RN, BK f32, BK f64), one process."""
    import numpy as np
    from fastla._kernels import _cuda_distances as kc
    m = n = 1000 if quick else 5000
    d = 64
    g = torch.Generator(device="cuda").manual_seed(3)
    default = (kc.TX, kc.TY, kc.RM, kc.RN, kc.BKS[np.dtype(np.float32)],
               kc.BKS[np.dtype(np.float64)])
    for dt, tdt in ((np.float32, torch.float32), (np.float64, torch.float64)):
        X = torch.rand(m, d, device="cuda", dtype=tdt, generator=g)
        Y = torch.rand(n, d, device="cuda", dtype=tdt, generator=g)
        dX, dY = cuda.as_cuda_array(X), cuda.as_cuda_array(Y)
        ref = torch.cdist(X.double(), Y.double(),
                          compute_mode="donot_use_mm_for_euclid_dist").cpu().numpy()
        dout = cuda.device_array((m, n), dtype=dt)
        for cfg in TUNE:
            try:
                kc.configure(*cfg)
                for metric in ("euclidean", "manhattan"):
                    fastla.pairwise_distances(dX, dY, metric=metric, backend="cuda",
                                              out=dout)
                    if metric == "euclidean":
                        rel, _ = _rel(dout.copy_to_host(), ref)
                    t = gpu_time(lambda: fastla.pairwise_distances(
                        dX, dY, metric=metric, backend="cuda", out=dout))
                    rows.append({"case": f"tune {cfg} {metric} {np.dtype(dt).name}",
                                 "fastla_gpu_ms": t * 1e3,
                                 "rel_err": rel if metric == "euclidean" else -1.0})
            except Exception as exc:  # a shape that does not compile or fit
                rows.append({"case": f"tune {cfg} {np.dtype(dt).name}",
                             "error": str(exc)[:200]})
    kc.configure(*default)


def _torch_knn(torch, X, Y, k, metric, chunk):
    """torch's best plain route: chunked distance (GEMM form) then topk."""
    outd, outi = [], []
    if metric == "cosine":
        Yn = torch.nn.functional.normalize(Y)
    else:
        yy = (Y * Y).sum(1)
    for i in range(0, X.shape[0], chunk):
        x = X[i:i + chunk]
        if metric == "cosine":
            D = 1 - torch.nn.functional.normalize(x) @ Yn.T
        else:
            D = yy[None, :] - 2 * (x @ Y.T)  # + ||x||^2 does not change the order
        v, ix = torch.topk(D, k, dim=1, largest=False, sorted=True)
        outd.append(v)
        outi.append(ix)
    return torch.cat(outd), torch.cat(outi)


def bench_knn(torch, cuda, fastla, quick, rows):
    import numpy as np
    m, n, d, k = (2000, 10000, 64, 10) if quick else (20000, 100000, 64, 10)
    g = torch.Generator(device="cuda").manual_seed(1)
    X = torch.rand(m, d, device="cuda", generator=g)
    Y = torch.rand(n, d, device="cuda", generator=g)
    dX, dY = cuda.as_cuda_array(X), cuda.as_cuda_array(Y)
    torch.backends.cuda.matmul.allow_tf32 = False
    for metric in ("euclidean", "cosine", "manhattan"):
        dist, idx = fastla.nearest_neighbors(dX, dY, k=k, metric=metric, backend="cuda")
        idx = idx.copy_to_host()
        # reference on 200 queries, float64, direct
        q = torch.arange(0, m, max(1, m // 200), device="cuda")
        Xq, Y64 = X[q].double(), Y.double()
        if metric == "cosine":
            D = 1 - torch.nn.functional.normalize(Xq) @ torch.nn.functional.normalize(Y64).T
        else:
            D = torch.cdist(Xq, Y64, p=2.0 if metric == "euclidean" else 1.0,
                            compute_mode="donot_use_mm_for_euclid_dist")
        rv, _ = torch.topk(D, k, dim=1, largest=False, sorted=True)
        got = dist.copy_to_host()[q.cpu().numpy()]
        rel, mx = _rel(got, rv.cpu().numpy())
        if mx > 1e-4:
            sys.exit(f"fastla kNN {metric}: neighbour distances off by {mx:.2e}")
        tf = timeit(lambda: fastla.nearest_neighbors(dX, dY, k=k, metric=metric,
                                                     backend="cuda"), target_s=1.0)
        row = {"case": f"kNN k={k} {m} queries in {n}x{d} float32 {metric}",
               "fastla_ms": tf * 1e3, "max_rel_err_of_kth": mx}
        if metric != "manhattan":
            tp = timeit(lambda: _torch_knn(torch, X, Y, k, metric, 4096), target_s=1.0)
            row["torch(GEMM+topk)_ms"] = tp * 1e3
            row["vs torch(GEMM+topk)"] = tp / tf
        rows.append(row)


def bench_conv(torch, cuda, fastla, quick, rows):
    import numpy as np
    s = 1024 if quick else 4096
    g = torch.Generator(device="cuda").manual_seed(2)
    img = torch.rand(s, s, device="cuda", generator=g)
    w = torch.rand(3, 3, device="cuda", generator=g)
    dimg = cuda.as_cuda_array(img)
    wn = w.cpu().numpy()
    out = cuda.device_array((s, s), dtype=np.float32)
    res = fastla.correlate(dimg, wn, mode="reflect", out=out, backend="cuda")
    import scipy.ndimage as ndi
    ref = ndi.correlate(img.double().cpu().numpy(), wn.astype(np.float64), mode="reflect")
    rel, mx = _rel(out.copy_to_host(), ref)
    if rel > 1e-6:
        sys.exit(f"fastla correlate: relative error {rel:.2e}")
    del res
    tf = timeit(lambda: fastla.correlate(dimg, wn, mode="reflect", out=out, backend="cuda"))
    # the kernel alone, every argument already on the device
    from fastla._kernels import _cuda_conv as kconv
    from fastla.conv import _ext_index
    w3 = cuda.to_device(wn[None].astype(np.float32))
    rr = cuda.to_device(_ext_index(s, -1, s + 2, "reflect").astype(np.int64))
    out4 = out.reshape((1, 1, s, s))
    img3 = dimg.reshape((1, s, s))
    kern = kconv._kernel(3, 3, np.dtype(np.float32))
    grid = ((s + kconv.TX - 1) // kconv.TX, (s + kconv.TY * kconv.RPT - 1) //
            (kconv.TY * kconv.RPT), 1)
    cv = np.float32(0)
    tk = timeit(lambda: kern[grid, (kconv.TX, kconv.TY)](img3, w3, rr, rr, cv, out4))
    tg = gpu_time(lambda: kern[grid, (kconv.TX, kconv.TY)](img3, w3, rr, rr, cv, out4))
    row = {"case": f"correlate {s}x{s} float32 3x3 reflect (out= given)",
           "fastla_ms": tf * 1e3, "kernel_alone_ms": tk * 1e3,
           "kernel_gpu_ms": tg * 1e3, "rel_err": rel}
    wt = w[None, None]
    x4 = img[None, None]
    tp = timeit(lambda: torch.nn.functional.conv2d(
        torch.nn.functional.pad(x4, (1, 1, 1, 1), mode="reflect"), wt))
    row["torch(pad+conv2d)_ms"] = tp * 1e3
    row["torch_gpu_ms"] = gpu_time(lambda: torch.nn.functional.conv2d(
        torch.nn.functional.pad(x4, (1, 1, 1, 1), mode="reflect"), wt)) * 1e3
    row["vs torch"] = tp / tf
    try:
        import cupy
        import cupyx.scipy.ndimage as cndi
        ci = cupy.asarray(img)
        cw = cupy.asarray(w)
        co = cupy.empty_like(ci)
        tc = timeit(lambda: cndi.correlate(ci, cw, output=co, mode="reflect"))
        row["cupyx.ndimage_ms"] = tc * 1e3
        row["cupyx_gpu_ms"] = gpu_time(
            lambda: cndi.correlate(ci, cw, output=co, mode="reflect")) * 1e3
        row["vs cupyx"] = tc / tf
    except ImportError:
        pass
    rows.append(row)


def bench_overhead(torch, cuda, fastla, quick, rows):
    """Host time of one call on a tiny input (the GPU work is negligible), and where it
    goes (cProfile, top entries printed)."""
    import cProfile
    import pstats
    import numpy as np
    from fastla._kernels import _cuda_distances as kc
    X = cuda.to_device(np.random.default_rng(0).random((64, 64), dtype=np.float32))
    out = cuda.device_array((64, 64), np.float32)
    call = lambda: fastla.pairwise_distances(X, X, out=out, backend="cuda")  # noqa: E731
    t = timeit(call)
    kern = kc._kernel("pair", kc.EUCLIDEAN, np.dtype(np.float32))
    nx = kc._norms(kc.EUCLIDEAN, X, X, True)[0]
    launch = lambda: kern[(1, 1), (kc.TX, kc.TY)](X, X, out, 2.0, np.float32(0), True,  # noqa
                                                   0, nx, nx)
    tl = timeit(launch)

    @cuda.jit
    def empty(a, b):
        pass
    te = timeit(lambda: empty[1, 32](X, out))
    rows.append({"case": "host overhead 64x64 float32 euclidean, out= given",
                 "public_call_us": t * 1e6, "kernel_launch_us": tl * 1e6,
                 "empty_2arg_launch_us": te * 1e6})
    pr = cProfile.Profile()
    pr.enable()
    for _ in range(300):
        call()
    pr.disable()
    cuda.synchronize()
    pstats.Stats(pr).sort_stats("tottime").print_stats(18)


class _Rows(list):
    """Result rows, each printed (and the JSON file rewritten) as soon as it is added,
    so that a run cut short keeps what it measured."""

    def __init__(self, path):
        super().__init__()
        self.path, self.info = path, {}

    def append(self, r):
        super().append(r)
        print(" | ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                         for k, v in r.items()), flush=True)
        self.save()

    def save(self):
        if self.path:
            with open(self.path, "w") as f:
                json.dump({"info": self.info, "rows": list(self)}, f, indent=1)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json")
    ap.add_argument("--only", default="distances,knn,conv")
    a = ap.parse_args(argv)
    import numba
    import torch
    from numba import cuda

    import fastla
    info = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__,
            "numba": numba.__version__, "fastla": fastla.__version__}
    try:
        import importlib.metadata as md
        info["numba-cuda"] = md.version("numba-cuda")
    except Exception:
        pass
    info.update(_ceilings(torch))
    print(json.dumps(info))
    rows = _Rows(a.json)
    for part in a.only.split(","):
        t0 = time.perf_counter()
        {"distances": bench_distances, "knn": bench_knn, "conv": bench_conv,
         "tune": bench_tune, "overhead": bench_overhead}[part](
            torch, cuda, fastla, a.quick, rows)
        print(f"# {part}: {time.perf_counter() - t0:.1f} s", flush=True)
    rows.info = info
    rows.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
