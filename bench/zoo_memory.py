"""Peak training memory of every family member: the NumPy engine against PyTorch CPU.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /work/main/.venv/bin/python bench/zoo_memory.py

The set-up of ``bench/zoo_epoch.py`` (3x32x32 random images, batch 64, SGD momentum, the same
graph spec built as a ConvScope model and as a ``torch.nn.Module``), but each framework trains
``--images`` images in a process of its own, so neither is charged for the other's memory or
libraries. The figure is the same for both: the peak resident memory of the process during
training (VmHWM) minus its resident memory just before (model, optimiser and images built,
libraries loaded): what training itself adds (activations kept for backward, gradients,
work buffers, the optimiser's velocities). For the engine a second process reports the peak
of ``tracemalloc`` over the same training (the bytes NumPy allocated at its busiest), a
cross-check that does not depend on how the C allocator returns memory.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from train_epoch import peak_rss_mb, rss_mb  # noqa: E402
from zoo_epoch import CLASSES, NumpyRun, TorchRun, architectures  # noqa: E402


def run_part(part: str, name: str, images: int, threads: int) -> dict[str, float]:
    """Train ``images`` images of member ``name`` with one framework; its memory figures."""
    shape = architectures.input_shape_for(name, 3)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((images, *shape), dtype=np.float32)
    y = rng.integers(0, CLASSES, images)
    if part == "torch":
        spec = architectures.build_spec(name, shape, CLASSES)
        run = TorchRun(spec, x, y, threads)
        before = rss_mb()
        run.epoch(0)
        return {"peak_mb": peak_rss_mb() - before}
    from threadpoolctl import threadpool_limits

    npr = NumpyRun(name, x, y, threads)
    with threadpool_limits(NumpyRun.BLAS_THREADS, user_api="blas"):
        if part == "tracemalloc":
            tracemalloc.start()
            npr.epoch(0)
            return {"peak_mb": tracemalloc.get_traced_memory()[1] / 2**20}
        before = rss_mb()
        npr.epoch(0)
        return {"peak_mb": peak_rss_mb() - before}


def measure(part: str, name: str, images: int, threads: int) -> float:
    cmd = [sys.executable, __file__, "--part", part, "--members", name]
    cmd += ["--images", str(images), "--threads", str(threads)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        print(f"{part} {name} failed:\n{res.stderr}", file=sys.stderr)
        return float("nan")
    return float(json.loads(res.stdout.strip().splitlines()[-1])["peak_mb"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=128, help="images trained (128: 2 batches)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--members", nargs="*", default=architectures.names())
    ap.add_argument("--part", choices=("numpy", "tracemalloc", "torch"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.part:
        print(json.dumps(run_part(args.part, args.members[0], args.images, args.threads)))
        return
    print(
        f"peak memory added by training {args.images} images (batch 64, {args.threads} "
        "thread(s)), each framework in its own process, MB"
    )
    print("\n| member | ConvScope (RSS) | ConvScope (tracemalloc) | PyTorch (RSS) | ratio |")
    print("|---|---:|---:|---:|---:|")
    for name in args.members:
        n = measure("numpy", name, args.images, args.threads)
        tm = measure("tracemalloc", name, args.images, args.threads)
        t = measure("torch", name, args.images, args.threads)
        print(f"| {name} | {n:.1f} | {tm:.1f} | {t:.1f} | {n / t:.2f} |", flush=True)


if __name__ == "__main__":
    main()
