"""``python -m fastla bench``: every operation on every backend, the naive loop and the
peer libraries, side by side in one process, as a table (and optionally JSON and a
bar chart of the speedups).

Throughput is work per second (GFLOP/s, Mpixel/s, Mupdates/s as the case says). The
speedup over the naive loop is a throughput ratio (the naive loop runs on a smaller
input it can finish). "vs best peer" is the best peer's time divided by fastla's best
backend time (> 1: fastla is faster). "% ceiling" compares the throughput with this
machine's measured GEMM rate or memory-copy rate.
"""

import importlib
import json
import sys
import time

import numpy as np

from ._benchcases import peer_threads


def add_parser(sub):
    p = sub.add_parser("bench", help="benchmark every operation against the naive loop "
                       "and the peer libraries")
    p.add_argument("--quick", action="store_true", help="smaller inputs, fewer repeats")
    p.add_argument("--ops", nargs="+", metavar="OP",
                   help="case modules to run (default: all), e.g. distances conv mf")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON")
    p.add_argument("--plot", metavar="FILE.png", help="bar chart of the speedups (log scale)")
    p.add_argument("--repeat", type=int, default=None, help="timed runs per measurement")
    p.add_argument("--n-threads", type=int, default=None, help="threads (default: all)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--simd", action="store_true",
                   help="only compare the ISA variants of the compiled kernels")
    p.add_argument("--rounds", type=int, default=None, metavar="N",
                   help="instead of the table: N interleaved rounds of fastla's fastest "
                   "backend and each peer on the cases whose title contains --match, "
                   "one ratio per round (how stable a ratio is on this machine)")
    p.add_argument("--match", default="", metavar="TEXT",
                   help="with --rounds: only the cases whose title contains TEXT")
    p.set_defaults(func=run_cli)


def best_time(fn, repeat, min_time=0.0):
    """Best wall time of ``repeat`` runs (after one warm-up run), in seconds."""
    fn()
    best = float("inf")
    start = time.perf_counter()
    n = 0
    while n < repeat or (time.perf_counter() - start < min_time and n < 50):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
        n += 1
    return best


def machine_ceilings(quick=False):
    """Measured GEMM rates (GFLOP/s, float32 and float64) and memory copy (GB/s)."""
    n = 1024 if quick else 2048
    out = {}
    for name, dt in (("gemm32", np.float32), ("gemm64", np.float64)):
        a = np.ones((n, n), dt)
        t = best_time(lambda: a @ a, 2 if quick else 3)
        out[name] = 2.0 * n ** 3 / t / 1e9
    src = np.ones(64 * 2**20 // 8)
    dst = np.empty_like(src)
    t = best_time(lambda: np.copyto(dst, src), 3)
    out["memcpy"] = 2 * src.nbytes / t / 1e9  # read + write, GB/s
    return out


def _progress(total, enabled):
    if not enabled:
        return None
    try:
        from tqdm import tqdm

        return tqdm(total=total, file=sys.stderr, desc="fastla bench", leave=False)
    except ImportError:
        class Bar:
            def __init__(self):
                self.n = 0

            def update(self, k=1):
                self.n += k
                w = 30
                done = int(w * self.n / max(total, 1))
                sys.stderr.write(f"\r[{'#' * done}{'.' * (w - done)}] {self.n}/{total}")
                sys.stderr.flush()

            def set_postfix_str(self, s):
                pass

            def close(self):
                sys.stderr.write("\r" + " " * 60 + "\r")

        return Bar()


def collect_cases(ops, quick):
    from . import _benchcases

    cases = []
    for name in ops or _benchcases.MODULES:
        if name not in _benchcases.MODULES:
            raise SystemExit(f"unknown op {name!r}; choose from {', '.join(_benchcases.MODULES)}")
        mod = importlib.import_module(f"fastla._benchcases.{name}")
        cases.extend(mod.cases(quick))
    return cases


def _backends(op):
    """fastla's compiled backends for op (the naive python loops are timed apart)."""
    import fastla

    return [b for b in fastla.available_backends(op) if b != "python"]


# Each contestant (a backend or a peer) starts on cores that the one before it has left.
# After a multi-threaded call, OpenBLAS's idle workers busy-wait for 2^28 TSC cycles
# (its OPENBLAS_THREAD_TIMEOUT default: 0.1 s on this 2.6 GHz machine) before they
# sleep, and whoever runs next shares the cores with them: fastla's two-thread
# euclidean 5000 x 5000 x 64 call took 98 ms right after `X @ Y.T` against 48 ms alone,
# and the warm-up run plus two timed runs of a 25 ms case all fell inside that window.
# OpenMP runtimes spin too, for less. Waiting this long before each contestant's runs
# times every one of them, fastla and peers alike, on quiet cores.
SETTLE_S = 0.2


def _time_backend(case, b, data, repeat, n_threads):
    time.sleep(SETTLE_S)
    return best_time(lambda: case.run(b, data, n_threads), repeat)


def _time_peer(peer, data, repeat, n_threads):
    time.sleep(SETTLE_S)
    with peer_threads(n_threads):  # the peer gets the same thread count
        return best_time(lambda: peer.run(data), repeat)


# A second pass over the backends, for those within this factor of the fastest first
# pass (a backend much slower than that cannot be the fastest; numba's kNN at 27 s a call
# would double the table's time).
SECOND_PASS_WITHIN = 10.0


def _time_backends(case, data, repeat, n_threads, tick=lambda s: None):
    """fastla's backends for one case, {backend: seconds}: a first pass, then a second
    pass over those within SECOND_PASS_WITHIN of the fastest, each keeping its best. On
    this VM a backend timed first after a pause could run its first several calls with
    fresh memory at several times its speed (the table's 3x3 f64: Cython 21.5 ms best of
    5, against 3.5 ms in the rounds), and the table then named numba the fastest."""
    times = {}
    for b in _backends(case.op):
        tick(f"{case.title}: {b}")
        times[b] = _time_backend(case, b, data, repeat, n_threads)
    if times:
        fastest = min(times.values())
        for b in [b for b, t in times.items() if t <= SECOND_PASS_WITHIN * fastest]:
            tick(f"{case.title}: {b} (second pass)")
            times[b] = min(times[b], _time_backend(case, b, data, repeat, n_threads))
    return times


def run_case(case, *, quick, repeat, n_threads, ceilings, tick=lambda s: None):
    """Measure one case; returns a dict row."""
    row = {"op": case.op, "title": case.title, "unit": case.unit, "backends": {},
           "peers": {}, "naive": None, "skipped": {}}
    data = case.setup()
    scale = 1e9 if case.unit.startswith("G") else 1e6
    for b, t in _time_backends(case, data, repeat, n_threads, tick).items():
        row["backends"][b] = {"time": t, "throughput": case.work / t / scale}
    for peer in case.peers:
        why = peer.available()
        if why:
            row["skipped"][peer.name] = why
            continue
        tick(f"{case.title}: {peer.name}")
        t = _time_peer(peer, data, repeat, n_threads)
        row["peers"][peer.name] = {"time": t, "throughput": case.work / t / scale}
    if case.naive_run is not None:
        tick(f"{case.title}: naive loop")
        nd = case.naive_setup()
        t0 = time.perf_counter()
        case.naive_run(nd)
        t = time.perf_counter() - t0
        row["naive"] = {"time": t, "throughput": case.naive_work / t / scale}
    if row["backends"]:
        best_b = min(row["backends"], key=lambda k: row["backends"][k]["time"])
        best = row["backends"][best_b]
        row["best_backend"] = best_b
        if row["naive"]:
            row["speedup_vs_naive"] = best["throughput"] / row["naive"]["throughput"]
        libs = [p.name for p in case.peers if not p.reference and p.name in row["peers"]]
        if libs:
            best_p = min(libs, key=lambda k: row["peers"][k]["time"])
            row["best_peer"] = best_p
            row["ratio_vs_best_peer"] = row["peers"][best_p]["time"] / best["time"]
        if case.ceiling in ("gemm32", "gemm64") and case.unit == "GFLOP/s":
            row["ceiling_fraction"] = best["throughput"] / ceilings[case.ceiling]
        elif case.ceiling == "memcpy" and case.bytes_moved:
            row["ceiling_fraction"] = (case.bytes_moved / best["time"] / 1e9) / ceilings["memcpy"]
    return row


def format_table(rows, ceilings):
    lines = []
    head = (f"{'case':<44} {'backend':<8} {'time':>10} {'throughput':>16} "
            f"{'x naive':>9} {'vs best peer':>22} {'% ceiling':>9}")
    lines.append(head)
    lines.append("-" * len(head))
    for r in rows:
        for b, m in r["backends"].items():
            star = b == r.get("best_backend")
            sp = f"{r['speedup_vs_naive']:.0f}x" if star and "speedup_vs_naive" in r else ""
            vp = (f"{r['ratio_vs_best_peer']:.2f}x ({r['best_peer']})"
                  if star and "ratio_vs_best_peer" in r else "")
            cf = f"{100 * r['ceiling_fraction']:.0f}%" if star and "ceiling_fraction" in r else ""
            lines.append(f"{r['title']:<44} {b + ('*' if star else ''):<8} "
                         f"{_ms(m['time']):>10} {m['throughput']:>10.2f} {r['unit']:<5} "
                         f"{sp:>9} {vp:>22} {cf:>9}")
        for p, m in r["peers"].items():
            lines.append(f"{'':<44} {p[:22]:<8} {_ms(m['time']):>10} "
                         f"{m['throughput']:>10.2f} {r['unit']:<5}")
        if r["naive"]:
            n = r["naive"]
            lines.append(f"{'':<44} {'naive':<8} {_ms(n['time']):>10} "
                         f"{n['throughput']:>10.4f} {r['unit']:<5}   (smaller input)")
        for p, why in r["skipped"].items():
            lines.append(f"{'':<44} {p}: skipped ({why})")
    lines.append("")
    lines.append(f"machine ceilings: float32 GEMM {ceilings['gemm32']:.0f} GFLOP/s, "
                 f"float64 GEMM {ceilings['gemm64']:.0f} GFLOP/s, "
                 f"memory copy {ceilings['memcpy']:.1f} GB/s; * = fastest backend")
    return "\n".join(lines)


def _ms(t):
    return f"{t * 1e3:.2f} ms" if t < 10 else f"{t:.1f} s"


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, naive, peer = [], [], []
    for r in rows:
        if "speedup_vs_naive" not in r and "ratio_vs_best_peer" not in r:
            continue
        labels.append(r["title"])
        naive.append(r.get("speedup_vs_naive", np.nan))
        peer.append(r.get("ratio_vs_best_peer", np.nan))
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(labels) + 1.8))
    y = np.arange(len(labels))
    ax.barh(y - 0.2, naive, height=0.4, label="speedup over the naive loop")
    ax.barh(y + 0.2, peer, height=0.4, label="speedup over the best peer library")
    ax.set_xscale("log")
    ax.axvline(1.0, color="k", lw=0.8)
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set_xlabel("speedup (log scale; > 1 means fastla is faster)")
    ax.set_title("fastla: speedup of the fastest backend")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def simd_comparison(n=2000, d=64, repeat=5, n_threads=None):
    """Time the same Cython kernel from each built ISA variant (baseline, AVX2, AVX-512).

    Returns a list of (level, metric, seconds); the dispatched level is the first one.
    """
    from . import _threads
    from ._kernels import _simd

    rng = np.random.default_rng(0)
    X = rng.random((n, d))
    Y = rng.random((n, d))
    out = np.empty((n, n))
    nt = _threads.effective_n_threads(n_threads)
    rows = []
    for level in _simd.supported_levels():
        try:
            mod = _simd.load("_cy_distances", level=level)
        except ImportError:
            continue
        for metric, code in (("manhattan", 3), ("chebyshev", 4)):
            t = best_time(lambda: mod.pairwise_distances(X, Y, out, code, 2.0, 0.0, False, 0.0,
                                                         nt), repeat)
            rows.append((level, metric, t))
    return rows


def _run_simd(args):
    from ._kernels import _simd

    rows = simd_comparison(repeat=args.repeat or 5, n_threads=args.n_threads)
    _simd.load("_cy_distances")
    print(f"SIMD variants of _cy_distances (dispatched here: {_simd.chosen['_cy_distances']}), "
          "pairwise 2000x2000x64 float64")
    base = {m: t for lv, m, t in rows if lv == "base"}
    for lv, m, t in rows:
        print(f"  {lv:<5} {m:<10} {t * 1e3:8.2f} ms   {base[m] / t:5.2f}x the baseline build")
    return 0


def run_rounds(case, rounds, repeat, n_threads):
    """Side-by-side rounds of one case: fastla's backends are timed (best of three) to
    pick the fastest, then each round times that backend and every available peer (same
    data, same thread count). Returns (that backend, [(round, fastla seconds, {peer:
    seconds})]). One timed run was too few to pick: a single slow run made a faster
    backend lose (5x5 separable picked numba at 2.9 ms over Cython's 2.1). Nor is one
    pass over the backends enough (3x3 f64: Cython's first five calls 35 ms, then 3.6 ms,
    made numba the pick): they are timed as the table times them (``_time_backends``).
    """
    data = case.setup()
    best_of = _time_backends(case, data, 3, n_threads)
    best = min(best_of, key=best_of.get)
    peers = [p for p in case.peers if p.available() is None]
    out = []
    for r in range(rounds):
        t = _time_backend(case, best, data, repeat, n_threads)
        tp = {peer.name: _time_peer(peer, data, repeat, n_threads) for peer in peers}
        out.append((r + 1, t, tp))
    return best, out


def _run_rounds_cli(args, repeat):
    cases = [c for c in collect_cases(args.ops, args.quick) if args.match in c.title]
    if not cases:
        print(f"no case title contains {args.match!r}", file=sys.stderr)
        return 2
    print(f"{args.rounds} rounds, {time.strftime('%Y-%m-%d %H:%M')}, "
          f"threads={args.n_threads or 'all'}; ratio = peer time / fastla time")
    for case in cases:
        backend, res = run_rounds(case, args.rounds, repeat, args.n_threads)
        print(f"{case.title} (fastla: {backend})")
        for r, t, tp in res:
            peers = "  ".join(f"{name} {_ms(tp[name]).strip()} ({tp[name] / t:.2f}x)"
                              for name in tp)
            print(f"  round {r}: fastla {_ms(t).strip()}  {peers}")
    return 0


def run_cli(args):
    import fastla

    if args.simd:
        return _run_simd(args)
    if args.rounds:
        return _run_rounds_cli(args, args.repeat or (2 if args.quick else 5))

    repeat = args.repeat or (2 if args.quick else 5)
    cases = collect_cases(args.ops, args.quick)
    fastla.warmup()
    bar = _progress(len(cases) + 1, not args.no_progress)
    tick = (lambda s: bar.set_postfix_str(s[:50])) if bar else (lambda s: None)
    tick("machine ceilings")
    ceilings = machine_ceilings(args.quick)
    if bar:
        bar.update()
    rows = []
    for case in cases:
        rows.append(run_case(case, quick=args.quick, repeat=repeat, n_threads=args.n_threads,
                             ceilings=ceilings, tick=tick))
        if bar:
            bar.update()
    if bar:
        bar.close()
    print(f"fastla {fastla.__version__} bench ({'quick' if args.quick else 'full'}), "
          f"{time.strftime('%Y-%m-%d %H:%M')}, threads={args.n_threads or 'all'}")
    print(format_table(rows, ceilings))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"ceilings": ceilings, "rows": rows}, f, indent=1)
    if args.plot:
        plot(rows, args.plot)
        print(f"plot written to {args.plot}")
    return 0
