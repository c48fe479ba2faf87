"""Check the published asv dashboard in a real headless browser.

Usage (after ``asv run ... --set-commit-hash``, ``asv publish`` and, on a machine that
cannot reach the CDNs asv's pages load their libraries from, ``python
benchmarks/vendor_dashboard.py``)::

    python benchmarks/check_dashboard.py [--html .asv/html] [--browser chromium]

Serves the HTML on 127.0.0.1, loads the index page and one benchmark's graph page in
headless Chromium (JavaScript executed), and checks that the benchmark list and a
rendered plot are in the page. Exits non-zero with the reason when they are not.
"""

import argparse
import contextlib
import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading


def dump_dom(browser, url, budget_ms=15000):
    with tempfile.TemporaryDirectory() as profile:
        cmd = [browser, "--headless=new", "--no-sandbox", "--disable-gpu",
               "--disable-dev-shm-usage", f"--user-data-dir={profile}",
               f"--virtual-time-budget={budget_ms}", "--dump-dom", url]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    return res.stdout


@contextlib.contextmanager
def serve(directory):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def handle(self):
            try:
                super().handle()
            except (BrokenPipeError, ConnectionResetError):
                pass

    handler = functools.partial(Quiet, directory=directory)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--html", default=".asv/html")
    ap.add_argument("--browser", default=None)
    args = ap.parse_args(argv)
    browser = args.browser or next(
        (b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
    if browser is None:
        print("no Chromium found (apt-get install chromium)", file=sys.stderr)
        return 2
    index = os.path.join(args.html, "index.json")
    if not os.path.exists(index):
        print(f"{index} missing: run asv publish first", file=sys.stderr)
        return 2
    with open(index) as f:
        benchmarks = sorted(json.load(f)["benchmarks"])
    if not benchmarks:
        print("the dashboard lists no benchmarks", file=sys.stderr)
        return 1
    target = next((b for b in benchmarks if b.startswith("bench_distances.PairwiseDistances")),
                  benchmarks[0])
    with serve(args.html) as base:
        home = dump_dom(browser, base + "/")
        listed = [b for b in benchmarks if b.split(".")[-1] in home]
        graph = dump_dom(browser, f"{base}/#{target}")
    if "external (JavaScript) dependencies" in home:
        print("asv's page could not load its JavaScript libraries (jQuery, Flot, ...), which it "
              "takes from public CDNs this machine cannot reach: run "
              "`python benchmarks/vendor_dashboard.py` after `asv publish` to serve local "
              "copies", file=sys.stderr)
        return 3
    print(f"index page: {len(home)} bytes, {len(listed)}/{len(benchmarks)} benchmarks named")
    has_plot = "<canvas" in graph and "flot" in graph.lower()
    print(f"graph page for {target}: {'plot rendered (canvas)' if has_plot else 'NO PLOT'}")
    if not listed or not has_plot:
        return 1
    print("dashboard OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
