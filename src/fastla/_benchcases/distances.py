"""Benchmark cases of the distance engine (sizes from the issue's targets)."""

import numpy as np

from . import Case, Peer, module_available


def _data(m, n, d, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((m, d)).astype(dtype), rng.random((n, d)).astype(dtype)


def _naive_pairs(metric_code, m=40, n=40, d=64):
    from .._kernels import _naive

    def setup():
        return _data(m, n, d, np.float64, 1)

    def run(data):
        X, Y = data
        out = np.empty((X.shape[0], Y.shape[0]))
        _naive.pairwise_distances(X, Y, out, metric_code, 2.0, 1.0 / d, False, 0.0, 1)

    return setup, run, 2.0 * m * n * d


def _faiss_pairwise(data):
    import faiss

    X, Y = data
    return faiss.pairwise_distances(X, Y)


def _faiss_knn(k, cosine=False):
    def run(data):
        import faiss

        X, Y = data
        if cosine:
            Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
            Yn = Y / np.linalg.norm(Y, axis=1, keepdims=True)
            index = faiss.IndexFlatIP(Y.shape[1])
            index.add(Yn)
            return index.search(Xn, k)
        index = faiss.IndexFlatL2(Y.shape[1])
        index.add(Y)
        return index.search(X, k)

    return run


def cases(quick):
    import fastla

    faiss_ok = lambda: module_available("faiss")  # noqa: E731
    sk_ok = lambda: module_available("sklearn")  # noqa: E731
    n = 1500 if quick else 5000
    out = []

    ns, nr, nw = _naive_pairs(1)
    out.append(Case(
        op="pairwise_distances", title=f"euclidean {n}x{n}x64 f64",
        setup=lambda: _data(n, n, 64, np.float64),
        run=lambda b, dt, t: fastla.pairwise_distances(dt[0], dt[1], backend=b, n_threads=t),
        work=2.0 * n * n * 64, unit="GFLOP/s", naive_setup=ns, naive_run=nr, naive_work=nw,
        peers=[
            Peer("X @ Y.T (bare GEMM)", lambda dt: dt[0] @ dt[1].T, reference=True),
            Peer("sklearn", lambda dt: __import__("sklearn.metrics.pairwise", fromlist=["x"])
                 .euclidean_distances(dt[0], dt[1]), sk_ok),
        ],
        ceiling="gemm64"))
    # the same with the output given on both sides (out=): the kernels without the
    # fresh 200 MB output's page faults, which on this VM are now and then several
    # times slower (the host backing the guest's freed memory again)
    out.append(Case(
        op="pairwise_distances", title=f"euclidean {n}x{n}x64 f64 out=",
        setup=lambda: _data(n, n, 64, np.float64) + (np.empty((n, n)), np.empty((n, n))),
        run=lambda b, dt, t: fastla.pairwise_distances(dt[0], dt[1], out=dt[2], backend=b,
                                                       n_threads=t),
        work=2.0 * n * n * 64, unit="GFLOP/s", naive_setup=ns, naive_run=nr, naive_work=nw,
        peers=[Peer("np.dot(X, Y.T, out=) (bare GEMM)",
                    lambda dt: np.dot(dt[0], dt[1].T, out=dt[3]), reference=True)],
        ceiling="gemm64"))
    ns, nr, nw = _naive_pairs(0)
    out.append(Case(
        op="pairwise_distances", title=f"sqeuclidean {n}x{n}x64 f32",
        setup=lambda: _data(n, n, 64, np.float32),
        run=lambda b, dt, t: fastla.pairwise_distances(dt[0], dt[1], metric="sqeuclidean",
                                                       backend=b, n_threads=t),
        work=2.0 * n * n * 64, naive_setup=ns, naive_run=nr, naive_work=nw,
        peers=[Peer("faiss", _faiss_pairwise, faiss_ok),
               Peer("X @ Y.T (bare GEMM)", lambda dt: dt[0] @ dt[1].T, reference=True)],
        ceiling="gemm32"))
    ns, nr, nw = _naive_pairs(3)
    out.append(Case(
        op="pairwise_distances", title=f"manhattan {n}x{n}x64 f64",
        setup=lambda: _data(n, n, 64, np.float64),
        run=lambda b, dt, t: fastla.pairwise_distances(dt[0], dt[1], metric="manhattan",
                                                       backend=b, n_threads=t),
        work=2.0 * n * n * 64, naive_setup=ns, naive_run=nr, naive_work=nw,
        peers=[Peer("scipy cdist", lambda dt: __import__("scipy.spatial.distance",
                                                          fromlist=["x"]).cdist(
            dt[0], dt[1], "cityblock"))]))
    ns, nr, nw = _naive_pairs(6)
    out.append(Case(
        op="rbf_kernel", title=f"rbf_kernel {n}x{n}x64 f32",
        setup=lambda: _data(n, n, 64, np.float32),
        run=lambda b, dt, t: fastla.rbf_kernel(dt[0], dt[1], backend=b, n_threads=t),
        work=2.0 * n * n * 64, naive_setup=ns, naive_run=nr, naive_work=nw,
        peers=[Peer("sklearn", lambda dt: __import__("sklearn.metrics.pairwise",
                                                      fromlist=["x"]).rbf_kernel(dt[0], dt[1]),
                    sk_ok)],
        ceiling="gemm32"))

    q, base = (2000, 20000) if quick else (20000, 100000)

    def naive_knn_setup():
        return _data(10, 400, 64, np.float32, 2)

    def naive_knn(data):
        from .._kernels import _naive

        _naive.nearest_neighbors(data[0], data[1], 10, 1, 2.0, False, 1)

    for metric, cos in (("euclidean", False), ("cosine", True)):
        out.append(Case(
            op="nearest_neighbors", title=f"kNN k=10 {metric} {q}x{base}x64 f32",
            setup=lambda: _data(q, base, 64, np.float32, 3),
            run=(lambda mt: lambda b, dt, t: fastla.nearest_neighbors(
                dt[0], dt[1], k=10, metric=mt, backend=b, n_threads=t))(metric),
            work=2.0 * q * base * 64, naive_setup=naive_knn_setup, naive_run=naive_knn,
            naive_work=2.0 * 10 * 400 * 64,
            peers=[Peer("faiss IndexFlat" + ("IP" if cos else "L2"), _faiss_knn(10, cos),
                        faiss_ok)],
            ceiling="gemm32"))
    return out
