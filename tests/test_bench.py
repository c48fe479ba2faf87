"""The bench command's side-by-side rounds (structure only: no timing asserts)."""

import numpy as np

import fastla
from fastla import _bench
from fastla._benchcases import Case, Peer


def test_rounds_time_the_fastest_backend_and_every_available_peer():
    calls = []
    case = Case(op="pairwise_distances", title="tiny euclidean",
                setup=lambda: np.random.default_rng(0).random((30, 4)),
                run=lambda b, X, t: calls.append(b) or fastla.pairwise_distances(
                    X, backend=b, n_threads=t),
                work=1.0,
                peers=[Peer("numpy", lambda X: ((X[:, None] - X[None]) ** 2).sum(-1)),
                       Peer("missing", lambda X: None, available=lambda: "not installed")])
    backend, res = _bench.run_rounds(case, rounds=2, repeat=1, n_threads=1)
    assert backend in fastla.available_backends("pairwise_distances")
    assert backend != "python" and backend in calls
    assert [r for r, _, _ in res] == [1, 2]
    for _, t, peers in res:
        assert t > 0 and set(peers) == {"numpy"} and peers["numpy"] > 0
