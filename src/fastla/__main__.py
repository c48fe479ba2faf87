"""Command line: ``python -m fastla info`` and ``python -m fastla bench``."""

import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fastla", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="what this machine can run (same as fastla.show_config())")
    try:
        from . import _bench
    except ImportError:  # pragma: no cover
        _bench = None
    if _bench is not None:
        _bench.add_parser(sub)
    args = parser.parse_args(argv)
    if args.command == "info":
        from . import show_config

        show_config()
        return 0
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
