"""Benchmark cases for SGD matrix factorisation (``MatrixFactorization``,
``matrix_factorization``).

The main case is a synthetic set shaped like MovieLens-1M (6,040 users, 3,706 items,
1,000,000 ratings, long-tail item and user popularity, 1-5 stars from a biased low-rank
model plus noise), fitted with Surprise's defaults (k=100, 20 epochs, lr 0.005, reg
0.02) on 90 % of the ratings. Throughput is rating updates per second; the naive loop
(the python backend) runs one epoch on a 5,000-rating subset; the peer is
``surprise.SVD`` with the same parameters on the same training ratings.
"""

import numpy as np

from . import Case, Peer, module_available

ML1M = dict(n_users=6040, n_items=3706, n_ratings=1_000_000)
ML100K = dict(n_users=943, n_items=1682, n_ratings=100_000)
#: issue 6's GPU target: 20,000,000 ratings (MovieLens-20M's user and item counts)
ML20M = dict(n_users=138_493, n_items=26_744, n_ratings=20_000_000)


def synthetic_ratings(n_users, n_items, n_ratings, rank=10, noise=0.9, seed=0):
    """(users, items, ratings) int32/int32/float32, unique pairs, shuffled.

    Item popularity follows a Zipf-like law (long tail), user activity a milder one;
    ratings are ``3.6 + b_u + b_i + p_u.q_i + noise`` rounded and clipped to 1..5.
    """
    rng = np.random.default_rng(seed)
    wi = 1.0 / (np.arange(n_items) + 10.0) ** 1.0
    wu = 1.0 / (np.arange(n_users) + 50.0) ** 0.7
    wi /= wi.sum()
    wu /= wu.sum()
    m = int(n_ratings * 1.3)
    pairs = np.empty(0, np.int64)
    while len(pairs) < n_ratings:
        u = rng.choice(n_users, m, p=wu)
        i = rng.choice(n_items, m, p=wi)
        pairs = np.unique(np.concatenate([pairs, u.astype(np.int64) * n_items + i]))
    pairs = rng.permutation(pairs)[:n_ratings]
    u = (pairs // n_items).astype(np.int32)
    i = (pairs % n_items).astype(np.int32)
    # relabel so that popular ids are not the small ones
    u = rng.permutation(n_users).astype(np.int32)[u]
    i = rng.permutation(n_items).astype(np.int32)[i]
    P = rng.normal(0, 0.35, (n_users, rank))
    Q = rng.normal(0, 0.35, (n_items, rank))
    bu = rng.normal(0, 0.35, n_users)
    bi = rng.normal(0, 0.45, n_items)
    r = 3.6 + bu[u] + bi[i] + np.einsum("ij,ij->i", P[u], Q[i]) + rng.normal(0, noise, len(u))
    r = np.clip(np.round(r), 1, 5).astype(np.float32)
    return u, i, r


def split(u, i, r, test_fraction=0.1):
    n_test = int(len(r) * test_fraction)
    tr = slice(n_test, None)
    te = slice(0, n_test)
    return (u[tr], i[tr], r[tr]), (u[te], i[te], r[te])


def surprise_trainset(train):
    import pandas as pd
    import surprise

    df = pd.DataFrame({"u": train[0], "i": train[1], "r": train[2].astype(np.float64)})
    data = surprise.Dataset.load_from_df(df, surprise.Reader(rating_scale=(1, 5)))
    return data.build_full_trainset()


def surprise_fit(trainset, n_epochs=20, n_factors=100, seed=0):
    import surprise

    return surprise.SVD(n_factors=n_factors, n_epochs=n_epochs,
                        random_state=seed).fit(trainset)


def surprise_rmse(algo, test):
    pred = np.array([algo.predict(int(a), int(b)).est for a, b in zip(test[0], test[1])])
    return float(np.sqrt(np.mean((pred - test[2]) ** 2)))


def fastla_fit(train, backend, n_threads, n_epochs=20, n_factors=100, dtype=np.float32,
               **kw):
    from fastla import MatrixFactorization

    return MatrixFactorization(n_factors=n_factors, n_epochs=n_epochs, random_state=0,
                               rating_scale=(1, 5), dtype=dtype, backend=backend,
                               n_threads=n_threads, **kw).fit(train)


def _case(shape, title, quick, dtype=np.float32, peers=True, k=100, test_fraction=0.1):
    n_epochs = 20

    def setup():
        u, i, r = synthetic_ratings(**shape)
        train, test = split(u, i, r, test_fraction)
        data = {"train": train, "test": test}
        if peers and module_available("surprise") is None:
            data["surprise_trainset"] = surprise_trainset(train)
        return data

    def run(backend, data, n_threads):
        return fastla_fit(data["train"], backend, n_threads, n_epochs, k, dtype)

    def naive_setup():
        u, i, r = synthetic_ratings(**ML100K)
        return (u[:5000], i[:5000], r[:5000])

    def naive_run(data):
        return fastla_fit(data, "python", 1, 1, k, dtype)

    def surprise_run(data):
        return surprise_fit(data["surprise_trainset"], n_epochs, k)

    n_train = shape["n_ratings"] - int(shape["n_ratings"] * test_fraction)
    return Case(
        op="sgd_mf", title=title, setup=setup, run=run, work=float(n_epochs * n_train),
        unit="Mupdates/s", naive_setup=naive_setup, naive_run=naive_run,
        naive_work=5000.0,
        peers=[Peer("surprise.SVD", surprise_run, lambda: module_available("surprise"))]
        if peers else [],
    )


def _seed_case():
    n, m, k, iters = 300, 200, 20, 20

    def setup():
        rng = np.random.default_rng(0)
        R = rng.integers(1, 6, (n, m)).astype(np.float64)
        R[rng.random((n, m)) < 0.8] = 0
        return R

    def run(backend, R, n_threads):
        from fastla import matrix_factorization

        return matrix_factorization(R, k, 0.002, iters, random_state=0, backend=backend)

    def naive_setup():
        return setup()[:40, :40]

    def naive_run(R):
        from fastla import matrix_factorization

        return matrix_factorization(R, k, 0.002, 1, random_state=0, backend="python")

    def nnz(R):
        return float(np.count_nonzero(R > 0))

    return Case(op="matrix_factorization",
                title=f"seed matrix_factorization {n}x{m} k={k} {iters} it", setup=setup,
                run=run, work=iters * nnz(setup()), unit="Mupdates/s",
                naive_setup=naive_setup, naive_run=naive_run, naive_work=nnz(naive_setup()))


def cases(quick):
    """``quick``: the MovieLens-100k-shaped set only (f32), no Surprise peer. With a
    CUDA backend present the full run adds issue 6's GPU target (20,000,000 ratings,
    all trained on, k=128, 20 epochs; every backend runs it, no peer)."""
    if quick:
        return [_case(ML100K, "MF ml100k-like k=100 20ep f32", quick, peers=False),
                _seed_case()]
    out = [
        _case(ML1M, "MF ml1m-like k=100 20ep f32", quick),
        _case(ML1M, "MF ml1m-like k=100 20ep f64", quick, dtype=np.float64, peers=False),
        _case(ML100K, "MF ml100k-like k=100 20ep f32", quick),
        _seed_case(),
    ]
    import fastla

    if "cuda" in fastla.available_backends("sgd_mf"):
        out.append(_case(ML20M, "MF 20M synthetic k=128 20ep f32", quick, peers=False,
                         k=128, test_fraction=0.0))
    return out
