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
    """All distances of each query, sorted by (distance, index), NaN last (as NumPy's
    sort orders it)."""
    m = X.shape[0]
    dist = np.empty((m, k), dtype=X.dtype)
    idx = np.empty((m, k), dtype=np.intp)
    for i in range(m):
        row = []
        for j in range(Y.shape[0]):
            if same and i == j:
                continue
            row.append((_pair_value(X[i], Y[j], metric, p, 0.0), j))
        row.sort(key=lambda t: (t[0] != t[0], t[0] if t[0] == t[0] else 0.0, t[1]))
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
# ---------------------------------------------------------------------------------------
# SGD matrix factorisation (fastla.mf)


def sgd_mf(users, items, ratings, block_ptr, cols, P, Q, bu, bi, Gp, Gq, Gbu, Gbi, mu, prm,
           biased, adagrad, hogwild, block_sse, n_threads):
    """One epoch of Surprise's SVD update, rating by rating, in the kernels' order.

    Deterministic order: stratum ``s`` in turn, its blocks ``(b, cols[s, b])`` for
    ``b = 0..B-1``, each block's ratings in stored order (``hogwild`` runs every block
    in grid order). Updates ``P, Q, bu, bi`` (and the AdaGrad accumulators) in place,
    fills ``block_sse`` and returns the epoch's squared error (errors before updates).
    """
    S, B = cols.shape
    k = P.shape[1]
    lr_bu, lr_bi, lr_pu, lr_qi, reg_bu, reg_bi, reg_pu, reg_qi = (float(x) for x in prm)
    if hogwild:
        order = list(range(B * B))
    else:
        order = [b * B + int(cols[s, b]) for s in range(S) for b in range(B)]
    for blk in order:
        sse = 0.0
        for n in range(int(block_ptr[blk]), int(block_ptr[blk + 1])):
            u, i, r = int(users[n]), int(items[n]), float(ratings[n])
            dot = 0.0
            for f in range(k):
                dot += float(P[u, f]) * float(Q[i, f])
            est = (mu + float(bu[u]) + float(bi[i]) + dot) if biased else dot
            err = r - est
            sse += err * err
            if adagrad:
                if biased:
                    g = err - reg_bu * float(bu[u])
                    bu[u] += lr_bu / math.sqrt(float(Gbu[u])) * g
                    Gbu[u] += g * g
                    g = err - reg_bi * float(bi[i])
                    bi[i] += lr_bi / math.sqrt(float(Gbi[i])) * g
                    Gbi[i] += g * g
                sp = lr_pu / math.sqrt(float(Gp[u]))
                sq = lr_qi / math.sqrt(float(Gq[i]))
                sgp = sgq = 0.0
                for f in range(k):
                    puf, qif = float(P[u, f]), float(Q[i, f])
                    gp = err * qif - reg_pu * puf
                    gq = err * puf - reg_qi * qif
                    P[u, f] = puf + sp * gp
                    Q[i, f] = qif + sq * gq
                    sgp += gp * gp
                    sgq += gq * gq
                Gp[u] += sgp / k
                Gq[i] += sgq / k
            else:
                if biased:
                    bu[u] += lr_bu * (err - reg_bu * float(bu[u]))
                    bi[i] += lr_bi * (err - reg_bi * float(bi[i]))
                for f in range(k):
                    puf, qif = float(P[u, f]), float(Q[i, f])
                    P[u, f] = puf + lr_pu * (err * qif - reg_pu * puf)
                    Q[i, f] = qif + lr_qi * (err * puf - reg_qi * qif)
        block_sse[blk] = sse
    return float(sum(float(x) for x in block_sse))


def matrix_factorization(rows, cols, vals, P, Q, learning_rate, max_iter, n_threads):
    """The seed's loop: every observed entry (row-major), ``e = R[i, j] - P[i].Q[j]``,
    ``P[i, f] += 2 lr e Q[j, f]`` then ``Q[j, f] += 2 lr e P[i, f]`` (with the new P)."""
    k = P.shape[1]
    for _ in range(max_iter):
        for n in range(len(rows)):
            i, j = int(rows[n]), int(cols[n])
            e = float(vals[n]) - sum(float(P[i, f]) * float(Q[j, f]) for f in range(k))
            for f in range(k):
                P[i, f] += 2 * learning_rate * e * Q[j, f]
                Q[j, f] += 2 * learning_rate * e * P[i, f]
    return None


# ---------------------------------------------------------------- k-means
def _nearest(x, centers):
    """Index of the nearest centre (first on ties) and its squared distance."""
    best, best_d = 0, math.inf
    for j, c in enumerate(centers):
        s = 0.0
        for a, b in zip(x, c):
            s += (float(a) - float(b)) ** 2
        if s < best_d:
            best, best_d = j, s
    return best, best_d


def kmeans_seed(X, centers, n_iter):
    """The seed's loop: assign each point to its nearest centroid (distance by distance),
    move each centroid to the mean of its points, ``n_iter`` times. A centroid that
    loses all its points stays where it is."""
    points = [list(map(float, x)) for x in X]
    centers = [list(map(float, c)) for c in centers]
    labels = [0] * len(points)
    for _ in range(n_iter):
        for i, x in enumerate(points):
            best, best_d = 0, math.inf
            for j, c in enumerate(centers):
                dist = euclidean_distance(x, c)
                if dist < best_d:
                    best, best_d = j, dist
            labels[i] = best
        for j in range(len(centers)):
            members = [points[i] for i in range(len(points)) if labels[i] == j]
            if members:
                centers[j] = [sum(col) / len(members) for col in zip(*members)]
    return np.array(centers), np.array(labels, dtype=np.int32)


def kmeans_assign(X, centers, labels, sq_dist, n_threads):
    for i in range(X.shape[0]):
        labels[i], sq_dist[i] = _nearest(X[i], centers)


def lloyd_iter(X, sample_weight, centers, sums, weights, labels, n_groups, n_threads,
               counts=None, update=False):
    """The totals for the new labels, made afresh (what an ``update`` must also give)."""
    sums[:] = 0.0
    weights[:] = 0.0
    if counts is not None:
        counts[:] = 0.0
    changed = 0
    for i in range(X.shape[0]):
        j, _ = _nearest(X[i], centers)
        changed += int(labels[i] != j)
        labels[i] = j
        w = float(sample_weight[i])
        for f in range(X.shape[1]):
            sums[j, f] += w * float(X[i, f])
        weights[j] += w
        if counts is not None and w != 0:
            counts[j] += 1
    return changed


def inertia(X, sample_weight, centers, labels, n_threads):
    total = 0.0
    for i in range(X.shape[0]):
        s = 0.0
        for a, b in zip(X[i], centers[labels[i]]):
            s += (float(a) - float(b)) ** 2
        total += float(sample_weight[i]) * s
    return total


def elkan_init(X, centers, center_half_distances, labels, upper, lower, n_threads):
    """Exact distances to every centre: the tightest possible bounds."""
    for i in range(X.shape[0]):
        for j in range(centers.shape[0]):
            lower[i, j] = euclidean_distance(X[i], centers[j])
        labels[i] = int(np.argmin(lower[i]))
        upper[i] = lower[i, labels[i]]


def elkan_iter(X, sample_weight, centers, sums, weights, center_half_distances,
               distance_next_center, upper, lower, labels, n_groups, n_threads):
    """The reference ignores the bounds: every distance is computed (then the bounds are
    exact) and the point goes to the nearest centre, as Lloyd's step does."""
    old = labels.copy()
    elkan_init(X, centers, center_half_distances, labels, upper, lower, n_threads)
    sums[:] = 0.0
    weights[:] = 0.0
    for i in range(X.shape[0]):
        w = float(sample_weight[i])
        for f in range(X.shape[1]):
            sums[labels[i], f] += w * float(X[i, f])
        weights[labels[i]] += w
    return int(np.count_nonzero(labels != old))


def plusplus_trials(X, candidates, closest, sample_weight, dist_out, n_threads):
    pots = np.zeros(len(candidates))
    for t, c in enumerate(candidates):
        for i in range(X.shape[0]):
            s = 0.0
            for a, b in zip(X[i], X[c]):
                s += (float(a) - float(b)) ** 2
            dist_out[t, i] = min(s, closest[i])
            pots[t] += float(sample_weight[i]) * dist_out[t, i]
    return pots


def plusplus_update(row, sample_weight, closest, cum):
    closest[:] = row
    np.cumsum(sample_weight.astype(np.float64) * closest, out=cum)


def minibatch_update(X, sample_weight, centers_old, centers_new, weight_sums, labels,
                     n_threads):
    for j in range(centers_old.shape[0]):
        wsum = 0.0
        acc = [0.0] * X.shape[1]
        for i in range(X.shape[0]):
            if labels[i] == j:
                w = float(sample_weight[i])
                wsum += w
                for f in range(X.shape[1]):
                    acc[f] += w * float(X[i, f])
        if wsum > 0:
            total = float(weight_sums[j]) + wsum
            for f in range(X.shape[1]):
                centers_new[j, f] = (float(centers_old[j, f]) * float(weight_sums[j])
                                     + acc[f]) / total
            weight_sums[j] = total
        else:
            centers_new[j] = centers_old[j]
