"""`convscope train` on the full MNIST (60,000 images, 1 epoch, batch 64) against the pure engine.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /work/venv/bin/python bench/cli_train.py

Three measurements, medians of ``--repeats`` runs:

1. pure engine: the loop of ``bench/train_epoch.py`` (LeNet-5, SGD momentum 0.01/0.9, batch 64)
   over float32 tensors converted once up front: forward, loss, backward, step, nothing else.
2. ``engine.training.train()``: the same epoch through the generator, which gathers each batch
   from the uint8 images, converts it with ``input_spec.to_tensor``, checks the loss, keeps the
   good-weights copy and yields an event per batch. 1 and 2 alternate in this one process, so
   machine load hits both alike; their ratio is the data pipeline's overhead (target <= 1.10).
3. the ``convscope train --epochs 1 --val-fraction 0`` process (start-up, loading MNIST, training,
   evaluating the 10,000 test images, saving), timed from outside, with its own phase timings.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.datasets import load_dataset  # noqa: E402
from engine.losses import softmax_cross_entropy  # noqa: E402
from engine.model import lenet5  # noqa: E402
from engine.optim import make_optimizer  # noqa: E402
from engine.training import BatchEnd, TrainConfig, train  # noqa: E402

LR, MOMENTUM, BATCH = 0.01, 0.9, 64


def pure_epoch(x: np.ndarray, y: np.ndarray, seed: int) -> float:
    model = lenet5(np.random.default_rng(0))
    opt = make_optimizer("momentum", model.parameters(), LR, momentum=MOMENTUM)
    order = np.random.default_rng(seed).permutation(len(x))
    t0 = time.perf_counter()
    for i in range(0, len(x), BATCH):
        idx = order[i : i + BATCH]
        logits = model.forward(x[idx], training=True)
        _, dz = softmax_cross_entropy(logits, y[idx])
        model.backward(dz, input_grad=False)
        opt.step(model.gradients())
    return time.perf_counter() - t0


def generator_epoch(images: np.ndarray, labels: np.ndarray, seed: int) -> tuple[float, float]:
    model = lenet5(np.random.default_rng(0))
    config = TrainConfig(epochs=1, batch_size=BATCH, lr=LR, momentum=MOMENTUM, seed=seed)
    t0 = time.perf_counter()
    acc = 0.0
    for event in train(model, images, labels, config):
        if isinstance(event, BatchEnd):
            acc = event.running_accuracy
    return time.perf_counter() - t0, acc


def pipeline_only(images: np.ndarray, labels: np.ndarray, seed: int) -> float:
    """The generator's per-batch data work alone (gather, to_tensor, labels, accuracy count,
    loss check, the event), no forward/backward: the pipeline's cost with no noise from BLAS."""
    spec = lenet5().input_spec
    order = np.random.default_rng(seed).permutation(len(images))
    logits = np.zeros((BATCH, 10), np.float32)
    t0 = time.perf_counter()
    for b, i in enumerate(range(0, len(images), BATCH)):
        idx = order[i : i + BATCH]
        x = spec.to_tensor(images[idx])
        y = labels[idx]
        correct = int(np.count_nonzero(logits[: len(idx)].argmax(axis=1) == y))
        loss = float(np.float32(0.5))
        BatchEnd(1, b, 938, loss, correct / len(x), 1.0, i, len(images), 1.0, loss)
    return time.perf_counter() - t0


def cli_run(workdir: Path, seed: int, threads: int) -> dict:
    out = workdir / f"bench-{seed}.npz"
    code = "import sys; from desktop.cli import main; sys.exit(main(sys.argv[1:]))"
    argv = ["train", "--epochs", "1", "--batch-size", str(BATCH), "--val-fraction", "0"]
    argv += ["--seed", str(seed), "--out", str(out), "--json"]
    t0 = time.perf_counter()
    res = subprocess.run(
        [sys.executable, "-c", code, *argv],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "OPENBLAS_NUM_THREADS": str(threads)},
    )
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"convscope train failed ({res.returncode}):\n{res.stderr}")
    doc = json.loads(res.stdout)
    doc["wall"] = wall
    return doc


def blas() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed"
    return "; ".join(
        f"{i.get('internal_api')} {i.get('version')} kernel={i.get('architecture')} "
        f"threads={i.get('num_threads')}"
        for i in threadpool_info()
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-cli", action="store_true", help="skip the subprocess runs")
    parser.add_argument("--threads", type=int, default=2, help="BLAS threads (default 2)")
    args = parser.parse_args()
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)
    except ImportError:
        print("threadpoolctl not installed: BLAS threads not limited")

    print(f"BLAS: {blas()}")
    ds = load_dataset("mnist")
    images, labels = ds.train_images, ds.train_labels
    x = lenet5().input_spec.to_tensor(images)  # the pure loop's up-front float copy
    print(f"data: {ds.summary()}")

    pure, gen = [], []
    pure_epoch(x[:2048], labels[:2048], 0)  # warm-up
    for r in range(args.repeats):
        pure.append(pure_epoch(x, labels, r))
        t, acc = generator_epoch(images, labels, r)
        gen.append(t)
        print(f"  run {r + 1}: pure engine {pure[-1]:.2f} s, train() {t:.2f} s (acc {acc:.3f})")
    p, g = statistics.median(pure), statistics.median(gen)
    d = statistics.median(pipeline_only(images, labels, r) for r in range(args.repeats))
    print(f"pure engine epoch   median {p:.2f} s")
    print(f"train() generator   median {g:.2f} s   ratio {g / p:.3f} (target <= 1.10)")
    print(f"data pipeline alone median {d:.3f} s = {d / p:.1%} of the pure epoch")
    del x

    if args.no_cli:
        return
    with tempfile.TemporaryDirectory() as tmp:
        runs = [cli_run(Path(tmp), r, args.threads) for r in range(args.repeats)]
    for r, doc in enumerate(runs, 1):
        t = doc["timings"]
        print(
            f"  cli run {r}: wall {doc['wall']:.2f} s (load {t['load']:.2f}, train "
            f"{t['train']:.2f}, evaluate {t['evaluate']:.2f}, save {t['save']:.2f}); "
            f"test accuracy {doc['test_accuracy']:.4f}"
        )

    def med(key: str) -> float:
        return statistics.median(doc["timings"][key] for doc in runs)

    wall = statistics.median(doc["wall"] for doc in runs)
    print(f"convscope train     median wall {wall:.2f} s = {wall / p:.2f} x the pure epoch")
    print(
        f"  of which train    median {med('train'):.2f} s = {med('train') / p:.3f} x the pure "
        f"epoch; load {med('load'):.2f} s, evaluate {med('evaluate'):.2f} s, save "
        f"{med('save'):.2f} s, start-up {wall - med('total'):.2f} s"
    )


if __name__ == "__main__":
    main()
