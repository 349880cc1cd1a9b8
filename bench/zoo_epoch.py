"""Training speed of every family member: the NumPy engine against PyTorch CPU, side by side.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /work/main/.venv/bin/python bench/zoo_epoch.py

CIFAR-sized colour input (3x32x32; a member's own size where it has one: lenet5 3x28x28),
10 classes, batch 64, SGD with momentum 0.9 (lr 0.01), float32,
2 threads (the engine splits each batch over 2 shards with single-threaded BLAS, as
``convscope train --workers 2`` does: forked processes, whose BatchNorm layers exchange their
sums so its statistics are the whole batch's; ``--cpu-time`` keeps every network on threads,
whose CPU time is this process's). Each
member is built from its graph spec in the registry twice: as a ConvScope model
(``build_model``) and as a ``torch.nn.Module`` made by a tiny interpreter of the same spec
(below), with the same node names, so ``state_dict`` keys match the model file's. The two
alternate pass by pass in this one process (machine load hits both alike): the ratio of the
medians is the figure that counts. The images are random (speed does not depend on content);
``--images`` sets how many make one timed pass (a CIFAR epoch is 50,000; the default is short
because the machine is shared). ``--help`` for options.
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
from engine.graphspec import spec_stats  # noqa: E402

LR, MOMENTUM, BATCH, CLASSES = 0.01, 0.9, 64, 10
# wall clock by default; --cpu-time: the process's CPU seconds (all its threads), which other
# processes on a loaded machine hardly disturb (waiting for a core is not counted)
CLOCK = [time.perf_counter]


# -- PyTorch: a tiny interpreter of the graph spec -------------------------------------------


def torch_module(spec: dict[str, Any]) -> Any:
    """A ``torch.nn.Module`` running ``spec``: one submodule per node with parameters, at the
    node's dotted path (``layer1.0.conv1``), so ``state_dict()`` keys are the model file's."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    def make(node: dict[str, Any]) -> nn.Module | None:
        t = node["type"]
        if t == "conv2d":
            return nn.Conv2d(
                node["in_channels"],
                node["out_channels"],
                tuple(node["kernel_size"]),
                node["stride"],
                node["padding"],
                bias=node.get("bias", True),
            )
        if t == "batchnorm2d":
            return nn.BatchNorm2d(node["num_features"], node["eps"], node["momentum"])
        if t == "dense":
            return nn.Linear(node["in_features"], node["out_features"])
        return None

    class Graph(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.spec_nodes = spec["nodes"]
            self.output = spec["output"]
            for node in self.spec_nodes:
                module = make(node)
                if module is None:
                    continue
                *parents, leaf = node["name"].split(".")
                owner: nn.Module = self
                for part in parents:
                    if not hasattr(owner, part):
                        owner.add_module(part, nn.Module())
                    owner = getattr(owner, part)
                owner.add_module(leaf, module)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            v: dict[str, torch.Tensor] = {"input": x}
            for node in self.spec_nodes:
                t, ins = node["type"], [v[i] for i in node["inputs"]]
                a = ins[0]
                if t in ("conv2d", "batchnorm2d", "dense"):
                    y = self.get_submodule(node["name"])(a)
                elif t == "relu":
                    y = F.relu(a)
                elif t == "tanh":
                    y = torch.tanh(a)
                elif t == "sigmoid":
                    y = torch.sigmoid(a)
                elif t == "maxpool2d":
                    y = F.max_pool2d(a, node["size"], node["stride"], node.get("padding", 0))
                elif t == "avgpool2d":
                    y = F.avg_pool2d(a, node["size"], node["stride"], node.get("padding", 0))
                elif t == "globalavgpool":
                    y = a.mean(dim=(2, 3))
                elif t == "flatten":
                    y = torch.flatten(a, 1)
                elif t == "dropout":
                    y = F.dropout(a, node["p"], self.training)
                elif t == "add":
                    y = ins[0] + ins[1]
                elif t == "concat":
                    y = torch.cat(ins, dim=1)
                else:
                    raise ValueError(f"unknown node type {t}")
                v[node["name"]] = y
            return v[self.output]

    return Graph()


class TorchRun:
    def __init__(self, spec: dict[str, Any], x: np.ndarray, y: np.ndarray, threads: int) -> None:
        import torch

        torch.set_num_threads(threads)
        torch.manual_seed(0)
        self.torch = torch
        self.model = torch_module(spec)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=LR, momentum=MOMENTUM)
        self.x, self.y = torch.from_numpy(x), torch.from_numpy(y)

    def n_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def epoch(self, seed: int) -> float:
        torch, m, opt = self.torch, self.model, self.opt
        order = torch.from_numpy(np.random.default_rng(seed).permutation(len(self.x)))
        m.train()
        t0 = CLOCK[0]()
        for i in range(0, len(self.x), BATCH):
            idx = order[i : i + BATCH]
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(m(self.x[idx]), self.y[idx])
            loss.backward()
            opt.step()
        return CLOCK[0]() - t0


# -- the NumPy engine ------------------------------------------------------------------------


class NumpyRun:
    BLAS_THREADS = 1  # the shards are the parallelism

    def __init__(
        self, name: str, x: np.ndarray, y: np.ndarray, threads: int, processes: bool = False
    ) -> None:
        from engine.losses import softmax_cross_entropy
        from engine.model import build_model
        from engine.optim import make_optimizer

        arch = architectures.choose(name, channels=3).architecture(CLASSES)
        self.model = build_model(arch, np.random.default_rng(0))
        # batch shards in parallel threads, each with single-threaded BLAS (BLAS_THREADS);
        # BatchNorm's shards share the whole batch's statistics, see engine.shards
        self.model.threads = threads
        # as 'convscope train --workers N' trains: forked processes
        self.model.processes = processes
        self.opt = make_optimizer("momentum", self.model.parameters(), LR, momentum=MOMENTUM)
        self.loss_fn = softmax_cross_entropy
        self.x, self.y = x, y

    def mode(self) -> str:
        if self.model.threads == 1:
            return "1 thread"
        return "processes" if self.model.processes else "threads"

    def n_params(self) -> int:
        return sum(p.size for p in self.model.parameters().values())

    def epoch(self, seed: int) -> float:
        m, opt, x, y = self.model, self.opt, self.x, self.y
        order = np.random.default_rng(seed).permutation(len(x))
        t0 = CLOCK[0]()
        for i in range(0, len(x), BATCH):
            idx = order[i : i + BATCH]
            m.train_step(x[idx], y[idx], self.loss_fn)
            opt.step(m.gradients())
        return CLOCK[0]() - t0


# -- driver --------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=640, help="images per timed pass (640)")
    ap.add_argument("--repeats", type=int, default=3, help="timed passes per framework (3)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--members", nargs="*", default=architectures.names())
    ap.add_argument("--no-numpy", action="store_true", help="PyTorch only (spec check)")
    ap.add_argument(
        "--cpu-time", action="store_true", help="time CPU seconds, not wall (loaded machine)"
    )
    args = ap.parse_args()
    if args.cpu_time:
        CLOCK[0] = time.process_time

    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    rows = []
    print(
        f"{args.images} random colour images per pass (3x32x32, lenet5 3x28x28), batch {BATCH}, "
        "SGD momentum, "
        f"{args.threads} threads, {args.repeats} passes each, alternating, "
        + ("CPU seconds" if args.cpu_time else "wall seconds")
    )
    for name in args.members:
        shape = architectures.input_shape_for(name, 3)
        spec = architectures.build_spec(name, shape, CLASSES)
        params, macs = spec_stats(spec)
        x = rng.standard_normal((args.images, *shape), dtype=np.float32)
        y = rng.integers(0, CLASSES, args.images)
        tr = TorchRun(spec, x, y, args.threads)
        assert tr.n_params() == params, (name, tr.n_params(), params)
        runs: dict[str, tuple[Any, list[float]]] = {"torch": (tr, [])}
        if not args.no_numpy:
            # process shards' CPU time is not this process's: --cpu-time keeps them threads
            npr = NumpyRun(name, x, y, args.threads, processes=not args.cpu_time)
            assert npr.n_params() == params, (name, npr.n_params(), params)
            runs["numpy"] = (npr, [])
        for r in range(args.repeats + 1):  # the first pass of each warms up, untimed
            for key, (run, times) in runs.items():
                if key == "numpy":
                    with threadpool_limits(NumpyRun.BLAS_THREADS, user_api="blas"):
                        t = run.epoch(r)
                else:
                    t = run.epoch(r)
                if r:
                    times.append(t)
        med = {k: statistics.median(t) for k, (_, t) in runs.items()}
        ratio = med["numpy"] / med["torch"] if "numpy" in med else float("nan")
        mode = "" if args.no_numpy else runs["numpy"][0].mode()
        rows.append((name, params, macs, med.get("numpy"), med["torch"], ratio, mode))
        print(
            f"{name:14s} {params:>9,} params {macs / 1e6:7.1f} M MACs  numpy "
            f"{_fmt(med.get('numpy'))} ({mode})  torch {_fmt(med['torch'])}  ratio {ratio:.2f}",
            flush=True,
        )
    print(
        "\n| member | parameters | M multiply-adds | NumPy s/pass (threads) | PyTorch s/pass "
        "| ratio |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for name, params, macs, n, t, ratio, mode in rows:
        cells = f"{params:,} | {macs / 1e6:.1f} | {_fmt(n)} ({mode}) | {_fmt(t)} | {ratio:.2f}"
        print(f"| {name} | {cells} |")


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


if __name__ == "__main__":
    main()
