"""The naive reference loops: the textbook Python versions fastla replaces.

They are the correctness oracle in the tests and the baseline the benchmarks measure
speedups against. They are deliberately plain Python (pair by pair, pixel by pixel,
rating by rating) and are registered as the ``python`` backend of each operation.
"""

import math

import numpy as np


# ---------------------------------------------------------------- distances
def euclidean_distance(x1, x2):
    """The seed's function: distance between two vectors, element by element."""
    total = 0.0
    for a, b in zip(x1, x2):
        total += (float(a) - float(b)) ** 2
    return math.sqrt(total)


def _pair_value(x, y, metric, p, gamma):
    if metric in (0, 1, 6):
        s = 0.0
        for a, b in zip(x, y):
            s += (float(a) - float(b)) ** 2
        if metric == 1:
            return math.sqrt(s)
        if metric == 6:
            return math.exp(-gamma * s)
        return s
    if metric == 2:
        dot = nx = ny = 0.0
        for a, b in zip(x, y):
            dot += float(a) * float(b)
            nx += float(a) ** 2
            ny += float(b) ** 2
        if nx == 0.0 or ny == 0.0:
            return 1.0
        return min(max(1.0 - dot / math.sqrt(nx * ny), 0.0), 2.0)
    if metric == 3:
        return sum(abs(float(a) - float(b)) for a, b in zip(x, y))
    if metric == 4:
        return max((abs(float(a) - float(b)) for a, b in zip(x, y)), default=0.0)
    return sum(abs(float(a) - float(b)) ** p for a, b in zip(x, y)) ** (1.0 / p)


def pairwise_distances(X, Y, out, metric, p, gamma, same, recompute, n_threads):
    """The seed's pair-by-pair loop, one Python call per pair."""
    for i in range(X.shape[0]):
        for j in range(Y.shape[0]):
            if same and i == j:
                out[i, j] = 1.0 if metric == 6 else 0.0
            else:
                out[i, j] = _pair_value(X[i], Y[j], metric, p, gamma)
    return out


def nearest_neighbors(X, Y, k, metric, p, same, n_threads):
    """All distances of each query, sorted by (distance, index)."""
    m = X.shape[0]
    dist = np.empty((m, k), dtype=X.dtype)
    idx = np.empty((m, k), dtype=np.intp)
    for i in range(m):
        row = []
        for j in range(Y.shape[0]):
            if same and i == j:
                continue
            row.append((_pair_value(X[i], Y[j], metric, p, 0.0), j))
        row.sort()
        for q in range(k):
            dist[i, q] = row[q][0]
            idx[i, q] = row[q][1]
    return dist, idx
def correlate2d(img, w, rowidx, colidx, ox, jlo, jhi, cval, out, n_threads=1):
    """The seed's loop, generalised: for every output pixel, gather the kernel-sized
    patch of the (virtually) extended image and sum ``patch * kernel``.

    Same arguments as the compiled ``correlate2d`` kernels (``img[B, H, W]``,
    ``w[K, kh, kw]``, index tables with -1 for ``cval``, ``out[B, K, Ho, Wo]``);
    ``ox``, ``jlo``, ``jhi`` and ``n_threads`` are not needed by the plain loop.
    """
    B, H, W = img.shape
    K, kh, kw = w.shape
    Ho, Wo = out.shape[2], out.shape[3]
    for b in range(B):
        for k in range(K):
            kern = w[k]
            for i in range(Ho):
                for j in range(Wo):
                    patch = np.empty((kh, kw), dtype=img.dtype)
                    for a in range(kh):
                        r = rowidx[i + a]
                        for c in range(kw):
                            col = colidx[j + c]
                            patch[a, c] = cval if (r < 0 or col < 0) else img[b, r, col]
                    out[b, k, i, j] = np.sum(patch * kern)
    return out
