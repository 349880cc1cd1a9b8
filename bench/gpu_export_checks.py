"""Checks of exported PyTorch files on a GPU, called by ``bench/gpu_export.sh check``.

``parity DIR``: for each exported ``DIR/NAME.py`` and its model ``DIR/NAME.npz``, the largest
softmax difference from the engine's on real pictures (MNIST test digits for a digit model): the
exported network on the CPU, then on the GPU with TF32 off and on, and how often the top class
agrees. ``ddp SCRIPT TRAIN-ARGS...``: the exported ``train`` told it runs as 2 processes on a
one-rank NCCL group, so one GPU runs the several-process code (DistributedDataParallel with
device ids, DistributedSampler, SyncBatchNorm and back, NCCL reductions and barrier).
"""

from __future__ import annotations

import gzip
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _exported(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


def _pictures(digits: bool) -> list:
    import numpy as np
    from PIL import Image

    if digits:  # white on black in the file; ConvScope expects dark ink on light paper
        name = ROOT / "resources/datasets/mnist/t10k-images-idx3-ubyte.gz"
        raw = np.frombuffer(gzip.open(name).read(), np.uint8, offset=16).reshape(-1, 28, 28)
        return [Image.fromarray(255 - d) for d in raw[:48]]
    photos = sorted((ROOT / "resources/samples").iterdir())
    photos += sorted((ROOT / "resources/datasets/cifar4/test").glob("*/*"))[::40]
    return [Image.open(p) for p in photos]


def parity(folder: Path) -> None:
    import numpy as np
    import torch

    from engine.modelfile import load_model

    for script in sorted(folder.glob("*.py")):
        mod = _exported(script)
        weights = script.with_suffix(".npz")
        x = torch.cat([mod.preprocess(p) for p in _pictures(mod.input_spec().shape[0] == 1)])
        ours = load_model(weights).predict_proba(x.numpy())
        with torch.no_grad():
            cpu = mod.load(weights)(x).softmax(1).numpy()
            row = [f"{script.stem:14s} n={len(x)} cpu {np.abs(cpu - ours).max():.1e}"]
            for tf32 in (False, True):
                torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = tf32
                gpu = mod.load(weights, "cuda")(x.cuda()).softmax(1).cpu().numpy()
                agree = (gpu.argmax(1) == ours.argmax(1)).mean()
                row.append(f"cuda tf32={tf32} {np.abs(gpu - ours).max():.1e} top-1 {agree:.3f}")
        print("  ".join(row), flush=True)


def ddp(script: Path, argv: list[str]) -> int:
    import torch.distributed as dist

    mod = _exported(script)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT="29531")

    def two_processes(device_name: str):
        device = mod._device(device_name, 0, 1)
        dist.init_process_group("nccl", rank=0, world_size=1, device_id=device)
        return 2, 0, device

    mod._start_processes = two_processes
    return mod.main(["train", *argv])


if __name__ == "__main__":
    if sys.argv[1:2] == ["parity"]:
        parity(Path(sys.argv[2]))
    elif sys.argv[1:2] == ["ddp"]:
        raise SystemExit(ddp(Path(sys.argv[2]), sys.argv[3:]))
    else:
        raise SystemExit("usage: gpu_export_checks.py parity DIR | ddp SCRIPT TRAIN-ARGS...")
