"""Accuracy of every family member on the four-class photos after the same short recipe.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /work/main/.venv/bin/python bench/zoo_accuracy.py

Data: ``../shared/data/cifar4/train`` (bird, cat, dog, ship; 32x32 colour), read once. Our own
split, seeded and stratified: ``--train`` images per class to train on and ``--val`` other
images per class to measure. Recipe (the same for every member): Adam, lr 0.001, batch 32,
``--epochs`` epochs, seed 0, no augmentation, one BLAS thread. Prints the validation accuracy
of each member and its training time. ``--help`` for options.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine import architectures  # noqa: E402
from engine.datasets import load_dataset  # noqa: E402
from engine.model import build_model  # noqa: E402
from engine.training import EpochEnd, TrainConfig, train  # noqa: E402

# ../shared/data beside the checkout (a worktree sits one folder deeper)
DATA = next(
    (
        p / "shared/data/cifar4/train"
        for p in (ROOT.parent, ROOT.parent.parent)
        if (p / "shared").is_dir()
    ),
    ROOT.parent / "shared/data/cifar4/train",
)


def split(y: np.ndarray, n_train: int, n_val: int, rng: np.random.Generator):
    """Stratified indices: ``n_train`` and ``n_val`` per class, disjoint."""
    tr, va = [], []
    for k in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == k))
        tr.append(idx[:n_train])
        va.append(idx[n_train : n_train + n_val])
    return rng.permutation(np.concatenate(tr)), np.concatenate(va)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--train", type=int, default=500, help="training images per class (500)")
    ap.add_argument("--val", type=int, default=250, help="validation images per class (250)")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--members", nargs="*", default=architectures.names())
    args = ap.parse_args()

    from threadpoolctl import threadpool_limits

    t0 = time.perf_counter()
    ds = load_dataset(args.data, image_size=(32, 32), channels=3)
    x = np.concatenate([ds.train_images, ds.test_images])
    y = np.concatenate([ds.train_labels, ds.test_labels])
    tr, va = split(y, args.train, args.val, np.random.default_rng(0))
    print(
        f"{args.data}: {len(x):,} images read in {time.perf_counter() - t0:.0f} s; training on "
        f"{len(tr):,}, validating on {len(va):,} ({', '.join(ds.classes)}); Adam lr 0.001, "
        f"batch 32, {args.epochs} epochs",
        flush=True,
    )
    config = TrainConfig(epochs=args.epochs, batch_size=32, lr=0.001, optimizer="adam", seed=0)
    rows = []
    for name in args.members:
        choice = architectures.choose(name, channels=3)
        model = build_model(
            choice.architecture(len(ds.classes)), np.random.default_rng(0), classes=ds.classes
        )
        h, w = choice.input_shape[1:]
        xs = x if (h, w) == (32, 32) else _centre_crop(x, h, w)
        t = time.perf_counter()
        last = None
        with threadpool_limits(1, user_api="blas"):
            for event in train(model, xs[tr], y[tr], config, val_images=xs[va], val_labels=y[va]):
                if isinstance(event, EpochEnd):
                    last = event
                    print(f"  {name} epoch {event.epoch}: val {event.val_accuracy:.1%}", flush=True)
        secs = time.perf_counter() - t
        acc = last.val_accuracy if last is not None else float("nan")
        rows.append((name, acc, secs))
        print(f"{name:14s} val accuracy {acc:.1%}  ({secs:.0f} s)", flush=True)
    print("\n| member | validation accuracy | training time |")
    print("|---|---:|---:|")
    for name, acc, secs in rows:
        print(f"| {name} | {acc:.1%} | {secs:.0f} s |")


def _centre_crop(x: np.ndarray, h: int, w: int) -> np.ndarray:
    top, left = (x.shape[2] - h) // 2, (x.shape[3] - w) // 2
    return np.ascontiguousarray(x[:, :, top : top + h, left : left + w])


if __name__ == "__main__":
    main()
