"""``convscope download``: fetch an optional dataset (Fashion-MNIST, CIFAR-10) into the cache.

Every file is verified against its pinned size and checksums (MD5, and SHA-256 where
published) before it is kept; a failed, tampered or interrupted download keeps nothing
half-written; CIFAR-10's archive is then unpacked (its binary batches only). A progress bar on
stderr shows each file coming in. ConvScope never downloads anything unless asked.
"""

from __future__ import annotations

import argparse
import sys

from desktop.cli.common import json_text, safe_print
from desktop.cli.progress import Progress
from engine.download import REMOTE_DATASETS, DownloadProgress, dataset_cache_dir, download_dataset

HELP = (
    "download an optional dataset (Fashion-MNIST, CIFAR-10) into the per-user cache, "
    "checksum-verified"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", choices=sorted(REMOTE_DATASETS), help="the dataset to download")
    parser.add_argument(
        "--cache-dir",
        help="cache folder (default: $CONVSCOPE_CACHE, "
        "$XDG_CACHE_HOME/convscope or ~/.cache/convscope)",
    )
    parser.add_argument(
        "--mirror",
        metavar="URL",
        help="fetch the files from URL/<file name> instead of the official mirrors",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout")


def run(args: argparse.Namespace) -> int:
    remote = REMOTE_DATASETS[args.name]
    bar = Progress()
    started: set[int] = set()  # files whose transfer began
    drawn: set[int] = set()  # files whose bar was shown

    def progress(p: DownloadProgress) -> None:
        where = f"[{p.index + 1}/{p.count}] {p.file}"
        if p.skipped:
            bar.message(f"{where}: already in the cache")
        elif p.verified:
            if bar.tty and p.index in drawn:  # the bar on screen ends full, not at 97%
                bar.update(
                    1.0, f"{where}: {p.total / 1e6:.1f} of {p.total / 1e6:.1f} MB", force=True
                )
            unpacking = "; unpacking" if remote.unpack is not None else ""
            bar.message(f"{where}: {p.total / 1e6:.1f} MB, verified{unpacking}")
        elif p.total:
            first = p.index not in started  # shown at once, so a slow start is seen
            started.add(p.index)
            if bar.update(
                p.done / p.total,
                f"{where}: {p.done / 1e6:.1f} of {p.total / 1e6:.1f} MB",
                force=first and p.done < p.total,
            ):
                drawn.add(p.index)

    safe_print(
        f"Downloading {remote.title} (about {remote.approx_mb} MB, {remote.licence}) to "
        f"{dataset_cache_dir(args.name, args.cache_dir)}",
        file=sys.stderr,
    )
    try:
        folder = download_dataset(
            args.name, base_url=args.mirror, cache_dir=args.cache_dir, progress=progress
        )
    finally:
        bar.close()  # an error line starts on a line of its own
    if args.json:
        safe_print(json_text({"dataset": remote.key, "folder": str(folder)}))
    else:
        safe_print(f"{remote.title} is ready: convscope train --dataset {remote.key}")
    return 0
