"""Every family member's convolution and dense shapes, forward + backward, engine vs PyTorch CPU.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /work/main/.venv/bin/python bench/conv_shapes.py

For each distinct Conv2D / Dense shape of the members (CIFAR input 3x32x32, batch 64) it times
one forward and one backward (weight, bias and input gradients; none for the input of a
network's first layer, as in training) of the engine's layer and of ``torch.nn.functional``'s
in the same process, CPU time on 1 thread, median of ``--repeats``, and prints both and their
ratio, with how often the shape occurs in each member (``x2``), so the share of an epoch each
shape costs can be read off. ``--members`` picks members.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine import architectures  # noqa: E402
from engine.graphspec import spec_shapes  # noqa: E402
from engine.layers import Conv2D, Dense  # noqa: E402

BATCH = 64


def shapes_of(name: str) -> list[tuple]:
    """``(kind, in, out, kernel, stride, padding, bias, H, W, first)`` per conv/dense node."""
    spec = architectures.build_spec(name, architectures.input_shape_for(name, 3), 10)
    shapes = spec_shapes(spec)
    out = []
    for node in spec["nodes"]:
        src = node["inputs"][0]
        first = src == "input"
        if node["type"] == "conv2d":
            _, h, w = shapes[src]
            k = tuple(node["kernel_size"])
            out.append(
                (
                    "conv",
                    node["in_channels"],
                    node["out_channels"],
                    k,
                    node["stride"],
                    node["padding"],
                    node.get("bias", True),
                    h,
                    w,
                    first,
                )
            )
        elif node["type"] == "dense":
            out.append(
                ("dense", node["in_features"], node["out_features"], None, 1, 0, True, 0, 0, first)
            )
    return out


def _median_cpu(fn: Any, repeats: int) -> float:
    fn()  # warm-up: buffers, caches
    times = []
    for _ in range(repeats):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return statistics.median(times)


def time_shape(s: tuple, repeats: int) -> tuple[float, float]:
    import torch
    import torch.nn.functional as F

    kind, c, f, k, stride, pad, bias, h, w, first = s
    rng = np.random.default_rng(0)
    if kind == "conv":
        layer: Any = Conv2D(c, f, k, stride, pad, bias=bias, rng=rng)
        x = rng.standard_normal((BATCH, c, h, w), dtype=np.float32)
    else:
        layer = Dense(c, f, rng=rng)
        x = rng.standard_normal((BATCH, c), dtype=np.float32)
    y = layer.forward(x, training=True)
    dout = rng.standard_normal(y.shape, dtype=np.float32)

    def engine() -> None:
        layer.forward(x, training=True)
        layer.backward(dout, input_grad=not first)

    tx = torch.from_numpy(x).requires_grad_(not first)
    tw = torch.from_numpy(layer.params["weight"].copy()).requires_grad_(True)
    tb = torch.from_numpy(layer.params["bias"].copy()).requires_grad_(True) if bias else None
    td = torch.from_numpy(dout)

    def reference() -> None:
        if kind == "conv":
            ty = F.conv2d(tx, tw, tb, stride, pad)
        else:
            ty = F.linear(tx, tw, tb)
        ty.backward(td)
        tw.grad = None
        if tb is not None:
            tb.grad = None
        tx.grad = None

    return _median_cpu(engine, repeats), _median_cpu(reference, repeats)


def label(s: tuple) -> str:
    kind, c, f, k, stride, pad, bias, h, w, first = s
    if kind == "dense":
        return f"dense {c}->{f}"
    tag = " first" if first else ""
    return f"conv {c}->{f} {k[0]}x{k[1]} s{stride} p{pad} @{h}x{w}{'' if bias else ' nobias'}{tag}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--members", nargs="*", default=architectures.names())
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    counts: dict[tuple, dict[str, int]] = {}
    for name in args.members:
        for s in shapes_of(name):
            counts.setdefault(s, {}).setdefault(name, 0)
            counts[s][name] += 1
    totals: dict[str, list[float]] = {name: [0.0, 0.0] for name in args.members}
    print(f"{'shape':<44} {'engine ms':>9} {'torch ms':>9} {'ratio':>6}  members")
    with threadpool_limits(1):
        for s, used in counts.items():
            te, tt = time_shape(s, args.repeats)
            for name, n in used.items():
                totals[name][0] += n * te
                totals[name][1] += n * tt
            who = ", ".join(f"{m} x{n}" if n > 1 else m for m, n in used.items())
            print(
                f"{label(s):<44} {te * 1e3:9.2f} {tt * 1e3:9.2f} {te / tt:6.2f}  {who}", flush=True
            )
    print("\nper member, one batch of 64 through every conv/dense layer:")
    for name, (te, tt) in totals.items():
        print(f"  {name:<14} {te * 1e3:8.1f} / {tt * 1e3:8.1f} ms  ratio {te / tt:5.2f}")


if __name__ == "__main__":
    main()
