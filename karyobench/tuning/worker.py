"""One search worker process: ``python -m karyobench.tuning.worker STUDY --storage URL``.

Runs Optuna trials of every pending tuned outer fold against the shared storage and
exits; it never refits or writes results (``karyobench tune`` does that afterwards).
Start as many as you like, on any machine that sees the data and the storage.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="karyobench.tuning.worker")
    parser.add_argument("study", type=Path)
    parser.add_argument("--storage", required=True)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--n-trials", type=int, default=None)
    parser.add_argument("--timeout", type=float, default=None)
    parser.add_argument("--lockboxes", type=Path, default=None)
    parser.add_argument("--cache-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    from karyobench.errors import KaryobenchError
    from karyobench.tuning.command import search_all

    try:
        search_all(args.study, args.storage, args.n_trials, args.timeout, args.out,
                   lockboxes=args.lockboxes, cache_dir=args.cache_dir)
    except KaryobenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
