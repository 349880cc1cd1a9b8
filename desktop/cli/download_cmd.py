"""``convscope download``: fetch an optional dataset (Fashion-MNIST, CIFAR-10) into the cache.

Every file is verified against its pinned MD5 and SHA-256 before it is kept; a failed or
tampered download leaves nothing behind; CIFAR-10's archive is then unpacked (its binary
batches only). ConvScope never downloads anything unless asked.
"""

from __future__ import annotations

import argparse
import sys

from desktop.cli.common import json_text, safe_print
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

    def progress(p: DownloadProgress) -> None:
        if p.skipped:
            safe_print(f"[{p.index + 1}/{p.count}] {p.file}: already in the cache", file=sys.stderr)
        elif p.verified and remote.unpack is not None:
            safe_print(
                f"[{p.index + 1}/{p.count}] {p.file}: {p.total / 1e6:.1f} MB, verified; unpacking",
                file=sys.stderr,
            )
        elif p.verified:
            safe_print(
                f"[{p.index + 1}/{p.count}] {p.file}: {p.total / 1e6:.1f} MB, verified",
                file=sys.stderr,
            )

    safe_print(
        f"Downloading {remote.title} (about {remote.approx_mb} MB, {remote.licence}) to "
        f"{dataset_cache_dir(args.name, args.cache_dir)}",
        file=sys.stderr,
    )
    folder = download_dataset(
        args.name, base_url=args.mirror, cache_dir=args.cache_dir, progress=progress
    )
    if args.json:
        safe_print(json_text({"dataset": remote.key, "folder": str(folder)}))
    else:
        safe_print(f"{remote.title} is ready: convscope train --dataset {remote.key}")
    return 0
