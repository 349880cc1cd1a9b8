"""How long "What it learned" (engine.features) takes on the shipped LeNet-5 and MNIST.

Top patches of conv1 and conv2 over 2,000 test images, and synthesis (128 steps) of every conv1
filter, every conv2 filter and the ten classes (each layer's filters in one batch); median of
several runs, seconds.

Run: ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/features.py [REPEAT]``
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import resources  # noqa: E402
from engine import features  # noqa: E402
from engine.idx import read_idx  # noqa: E402
from engine.modelfile import load_model  # noqa: E402


def _median(job, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        for _event in job():
            pass
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    repeat = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    model = load_model(resources.shipped_model_path())
    folder = resources.shipped_model_path().parent.parent / "datasets" / "mnist"
    images = read_idx(folder / "t10k-images-idx3-ubyte.gz")[:2000]
    for node in features.conv_nodes(model):
        s = _median(lambda n=node: features.top_patches(model, n, images), repeat)
        print(f"patches {node}: {s:.2f} s for {len(images):,} images")
    for node in [*features.conv_nodes(model), model.output]:
        count = model.output_shape(node)[0]
        s = _median(
            lambda n=node: features.synthesize_all(model, n, np.random.default_rng(0)), repeat
        )
        print(f"synthesis {node}: {s:.2f} s for {count} filters ({s / count:.2f} s each)")


if __name__ == "__main__":
    main()
