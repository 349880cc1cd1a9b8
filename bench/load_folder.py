"""Loading an image folder of 20,000 small JPEGs (the CIFAR four-class photos, 32x32).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /work/main/.venv/bin/python bench/load_folder.py

Alternates, in one process so that machine load hits both alike, ``--repeats`` times:

1. ``engine.datasets.load_dataset(FOLDER, image_size=(32, 32), channels=3)`` (the loader);
2. the reference: the previous loader's per-file work, ``load_image(path, mode="RGB",
   draft_size=...)`` then ``fit_image`` for every file (what loading cost before: about 10 s).

Prints the medians of the wall-clock time and of the CPU time (this process and its children:
the loader decodes half of a large folder in a forked process), and the ratios loader/reference.
On a busy shared machine the CPU times and the ratios are the reliable figures. Target: 3 s or
less for the loader.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.datasets import fit_image, load_dataset  # noqa: E402
from engine.imageio import load_image  # noqa: E402

DEFAULT = ROOT.parent.parent / "shared" / "data" / "cifar4" / "train"


def reference(files: list[Path]) -> np.ndarray:
    out = np.empty((len(files), 3, 32, 32), np.uint8)
    for i, f in enumerate(files):
        out[i] = fit_image(load_image(f, mode="RGB", draft_size=(32, 32)), (32, 32), 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=DEFAULT)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-reference", action="store_true")
    args = parser.parse_args()
    folder = args.folder if args.folder.is_dir() else Path("/work/shared/data/cifar4/train")
    files = sorted(folder.glob("*/*.jpg"))
    print(f"{folder}: {len(files):,} files")
    ours, ref, ours_cpu, ref_cpu = [], [], [], []
    for _ in range(args.repeats):
        t, c = time.perf_counter(), _cpu()
        ds = load_dataset(folder, image_size=(32, 32), channels=3)
        ours.append(time.perf_counter() - t)
        ours_cpu.append(_cpu() - c)
        line = f"  loader {ours[-1]:.2f} s (CPU {ours_cpu[-1]:.2f} s)"
        if not args.no_reference:
            t, c = time.perf_counter(), _cpu()
            reference(files)
            ref.append(time.perf_counter() - t)
            ref_cpu.append(_cpu() - c)
            line += f", reference {ref[-1]:.2f} s (CPU {ref_cpu[-1]:.2f} s)"
        print(line, flush=True)
    n = len(ds.train_labels) + len(ds.test_labels)
    med = statistics.median
    print(f"loader: median {med(ours):.2f} s, CPU {med(ours_cpu):.2f} s, for {n:,} images")
    if ref:
        ratios = [a / b for a, b in zip(ours, ref, strict=True)]
        cpu_ratios = [a / b for a, b in zip(ours_cpu, ref_cpu, strict=True)]
        print(
            f"reference: median {med(ref):.2f} s, CPU {med(ref_cpu):.2f} s; ratio loader/reference"
            f" {med(ratios):.2f} (CPU {med(cpu_ratios):.2f})"
        )


def _cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


if __name__ == "__main__":
    main()
