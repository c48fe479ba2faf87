"""Make the published asv dashboard self-contained (viewable with no internet access).

asv >= 0.6 writes pages that load jQuery, Flot, Bootstrap, blueimp-md5 and stupidtable
from public CDNs; on a machine that cannot reach them the dashboard shows only
"external (JavaScript) dependencies ... failed to load". asv 0.4.2 shipped the same
libraries (same major versions, all MIT-licensed) in its ``www/vendor`` folder. This
script takes them from that release's source archive on PyPI (``pip download``, cached
under ``.asv/vendor-cache``; or ``--from DIR`` holding the files), copies them to
``<html>/vendor/`` and points the pages at the copies (dropping the CDN's
subresource-integrity hashes, which name the CDN's builds).

Usage (after ``asv publish``)::

    python benchmarks/vendor_dashboard.py [--html .asv/html]

Idempotent: running it twice changes nothing more. Exits non-zero, naming the URL, if a
page loads a CDN file it does not know (a newer asv).
"""

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile

ASV_RELEASE = "0.4.2"

# CDN file name (last path component) -> file name in asv 0.4.2's www/vendor
VENDOR = {
    "jquery-3.3.1.min.js": "jquery-3.3.1.min.js",
    "jquery.flot.min.js": "jquery.flot-0.8.3.min.js",
    "jquery.flot.time.min.js": "jquery.flot-0.8.3.time.min.js",
    "jquery.flot.selection.min.js": "jquery.flot-0.8.3.selection.min.js",
    "jquery.flot.categories.min.js": "jquery.flot-0.8.3.categories.min.js",
    "jquery.flot.orderBars.js": "jquery.flot.orderBars.js",
    "stupidtable.min.js": "stupidtable.js",
    "md5.min.js": "md5.js",
    "bootstrap.min.js": "bootstrap-3.1.0.min.js",
    "bootstrap.min.css": "bootstrap-3.1.0.min.css",
}

# a <script src=...> or <link href=...> tag pointing at http(s)
TAG = re.compile(r"<(script|link)\b[^>]*?(?:src|href)=\"(https?://[^\"]+)\"[^>]*>")


def fetch_vendor(cache):
    """Return a folder holding asv 0.4.2's www/vendor files (downloaded once)."""
    vendor = os.path.join(cache, f"asv-{ASV_RELEASE}-vendor")
    if all(os.path.exists(os.path.join(vendor, f)) for f in VENDOR.values()):
        return vendor
    os.makedirs(cache, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                        "--no-binary", ":all:", "-d", tmp, f"asv=={ASV_RELEASE}"], check=True)
        (archive,) = glob.glob(os.path.join(tmp, "asv-*.tar.gz"))
        os.makedirs(vendor, exist_ok=True)
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                parts = member.name.split("/")
                if len(parts) == 5 and parts[1:4] == ["asv", "www", "vendor"] \
                        and parts[4] in VENDOR.values() and member.isfile():
                    with tar.extractfile(member) as src, \
                            open(os.path.join(vendor, parts[4]), "wb") as dst:
                        shutil.copyfileobj(src, dst)
    missing = [f for f in VENDOR.values() if not os.path.exists(os.path.join(vendor, f))]
    if missing:
        raise RuntimeError(f"asv {ASV_RELEASE}'s archive lacks {missing}")
    return vendor


def rewrite(page, unknown):
    """Point the CDN tags of one HTML page at vendor/; return the new text."""
    with open(page, encoding="utf-8") as f:
        text = f.read()

    def local(match):
        tag, url = match.group(0), match.group(2)
        name = url.rstrip("/").rsplit("/", 1)[-1]
        if name not in VENDOR:
            if "github.com" not in url:  # plain links (asv's home page) stay
                unknown.append(url)
            return tag
        tag = tag.replace(url, "vendor/" + VENDOR[name])
        return re.sub(r"\s(?:integrity|crossorigin|referrerpolicy)=\"[^\"]*\"", "", tag)

    return TAG.sub(local, text)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--html", default=".asv/html")
    ap.add_argument("--cache", default=".asv/vendor-cache")
    ap.add_argument("--from", dest="source", default=None,
                    help="folder already holding asv 0.4.2's www/vendor files")
    args = ap.parse_args(argv)
    pages = sorted(glob.glob(os.path.join(args.html, "*.html")))
    if not pages:
        print(f"no HTML pages in {args.html}: run asv publish first", file=sys.stderr)
        return 2
    vendor = args.source or fetch_vendor(args.cache)
    os.makedirs(os.path.join(args.html, "vendor"), exist_ok=True)
    for name in VENDOR.values():
        shutil.copyfile(os.path.join(vendor, name), os.path.join(args.html, "vendor", name))
    unknown = []
    for page in pages:
        new = rewrite(page, unknown)
        with open(page, "w", encoding="utf-8") as f:
            f.write(new)
    if unknown:
        print("these CDN files have no local copy (a newer asv?): " + ", ".join(unknown),
              file=sys.stderr)
        return 1
    print(f"{len(VENDOR)} libraries copied to {args.html}/vendor, {len(pages)} pages rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
