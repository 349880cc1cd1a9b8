"""How close the engine can get to PyTorch CPU: the time of its matrix products alone.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /work/main/.venv/bin/python bench/gemm_floor.py

For every family member, one training pass over ``--images`` images (batch 64, 3x32x32, 1
thread) needs, per convolution, three matrix products, timed here in the rows layout the
engine's larger convolutions use (``patches (P, K) @ weights (K, F)`` forward, ``patches.T @
dout`` for the weights, the input gradient's ``(P_in, F*KH*KW) @ (F*KH*KW, C)``; the wide and
direct paths of LeNet's and the 1x1 convolutions multiply the same numbers in other
orientations), and, per Dense layer, three more. This times
exactly those products with NumPy's BLAS on one thread (CPU time, best of ``--repeats``), with
nothing else: no patch copies, pooling, BatchNorm or activations. PyTorch's whole training pass
(``bench/zoo_epoch.py``'s, same process) is the reference: a floor above 1.0x means the engine
cannot reach PyTorch's time with this BLAS, whatever the rest costs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from zoo_epoch import BATCH, CLASSES, TorchRun, architectures


def products(name: str) -> list[tuple[int, int, int]]:
    """``(M, K, N)`` of every matrix product one batch's training step needs."""
    from engine.layers import Conv2D, Dense
    from engine.model import build_model

    model = build_model(architectures.choose(name, channels=3).architecture(CLASSES))
    shapes = []
    for info in model.summary():
        layer = model.layer(info.name)
        if isinstance(layer, Conv2D):
            kh, kw = layer.kernel_size
            c, f = layer.in_channels, layer.out_channels
            p = BATCH * info.output_shape[1] * info.output_shape[2]
            k = c * kh * kw
            shapes += [(p, k, f), (k, p, f)]  # forward, weight gradient
            if info.inputs != ("input",):  # the first layer needs no input gradient
                shape = model._shapes[info.inputs[0]]
                shapes.append((BATCH * shape[1] * shape[2], f * kh * kw, c))
        elif isinstance(layer, Dense):
            i, o = layer.params["weight"].shape[1], layer.params["weight"].shape[0]
            shapes += [(BATCH, i, o), (o, BATCH, i), (BATCH, o, i)]
    return shapes


def floor_seconds(shapes: list[tuple[int, int, int]], repeats: int) -> float:
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    total = 0.0
    with threadpool_limits(1, user_api="blas"):
        for m, k, n in shapes:
            a = rng.standard_normal((m, k), dtype=np.float32)
            b = rng.standard_normal((k, n), dtype=np.float32)
            best = float("inf")
            for _ in range(repeats):
                t0 = time.process_time()
                a @ b
                best = min(best, time.process_time() - t0)
            total += best
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--members", nargs="*", default=architectures.names())
    args = ap.parse_args()
    print("| member | products only, s/pass | PyTorch whole pass, s | floor ratio |")
    print("|---|---:|---:|---:|")
    for name in args.members:
        batches = -(-args.images // BATCH)
        floor = floor_seconds(products(name), args.repeats) * batches
        shape = architectures.input_shape_for(name, 3)
        rng = np.random.default_rng(0)
        x = rng.standard_normal((args.images, *shape), dtype=np.float32)
        y = rng.integers(0, CLASSES, args.images)
        tr = TorchRun(architectures.build_spec(name, shape, CLASSES), x, y, 1)
        tr.epoch(0)
        torch_s = min(_cpu(tr.epoch, seed) for seed in range(args.repeats))
        print(f"| {name} | {floor:.3f} | {torch_s:.3f} | {floor / torch_s:.2f} |", flush=True)


def _cpu(fn, seed: int) -> float:
    t0 = time.process_time()
    fn(seed)
    return time.process_time() - t0


if __name__ == "__main__":
    main()
