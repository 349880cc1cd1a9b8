"""One training epoch of LeNet-5 on MNIST: the NumPy engine against PyTorch, side by side.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /work/venv/bin/python bench/train_epoch.py

Batch 64, SGD with momentum 0.9, float32, 2 threads, the bundled 60,000 MNIST training images
(converted to float32 once, up front, so the epoch measures the engine, not the conversion).
The two frameworks alternate epoch by epoch in this one process, so machine load hits both alike;
the NumPy/PyTorch ratio of the medians is the figure that counts. Peak memory (max RSS) of each
is measured in its own subprocess, so neither is charged for the other's memory.
Also: single-image inference latency (median) of both. ``--help`` for options.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.idx import read_idx  # noqa: E402
from engine.losses import softmax_cross_entropy  # noqa: E402
from engine.model import lenet5  # noqa: E402
from engine.optim import make_optimizer  # noqa: E402

MNIST = ROOT / "resources" / "datasets" / "mnist"
LR, MOMENTUM, BATCH = 0.01, 0.9, 64


def load_data(limit: int) -> tuple[np.ndarray, np.ndarray, str]:
    """float32 ``(N,1,28,28)`` normalised images and int64 labels; synthetic if MNIST is absent."""
    img_path = MNIST / "train-images-idx3-ubyte.gz"
    if img_path.exists():
        images = read_idx(img_path)[:limit]
        labels = read_idx(MNIST / "train-labels-idx1-ubyte.gz")[:limit].astype(np.int64)
        source = "bundled MNIST"
    else:
        rng = np.random.default_rng(0)
        images = rng.integers(0, 256, (limit, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, limit)
        source = "synthetic (MNIST not found)"
    x = lenet5().input_spec.to_tensor(images)
    return x, labels, source


# -- NumPy engine ------------------------------------------------------------------------


class NumpyRun:
    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        threads: int = 1,
        fused: bool = True,
        processes: bool = False,
    ) -> None:
        self.x, self.y, self.fused = x, y, fused
        self.model = lenet5(np.random.default_rng(0))
        self.model.threads = threads  # batch shards in parallel (BLAS single-threaded)
        self.model.processes = processes  # shards 1.. in forked worker processes (no shared GIL)
        self.opt = make_optimizer("momentum", self.model.parameters(), LR, momentum=MOMENTUM)

    def epoch(self, seed: int) -> tuple[float, float, float]:
        m, opt, x, y = self.model, self.opt, self.x, self.y
        order = np.random.default_rng(seed).permutation(len(x))
        c0, t0 = self.cpu_time(), time.perf_counter()
        loss = 0.0
        for i in range(0, len(x), BATCH):
            idx = order[i : i + BATCH]
            if self.fused:  # forward, loss and backward per shard in one go
                loss, _ = m.train_step(x[idx], y[idx], softmax_cross_entropy)
            else:
                logits = m.forward(x[idx], training=True)
                loss, dz = softmax_cross_entropy(logits, y[idx])
                m.backward(dz, input_grad=False)
            opt.step(m.gradients())
        return time.perf_counter() - t0, self.cpu_time() - c0, loss

    def cpu_time(self) -> float:
        """CPU seconds of this process plus the model's shard worker processes (Linux /proc)."""
        total = time.process_time()
        workers = self.model._shards._workers  # None with threads
        for proc in workers.procs if workers is not None else []:
            try:
                fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            except (OSError, IndexError, ValueError):
                pass
        return total

    def latency_us(self, n: int) -> float:
        x1 = self.x[:1].copy()
        self.model.forward(x1)
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            self.model.forward(x1)
            times.append(time.perf_counter() - t0)
        return statistics.median(times) * 1e6

    def accuracy(self, n: int = 10000) -> float:
        n = min(n, len(self.x))
        p = self.model.forward(self.x[:n])
        return float((p.argmax(1) == self.y[:n]).mean())


# -- PyTorch -------------------------------------------------------------------------------


class TorchRun:
    def __init__(self, x: np.ndarray, y: np.ndarray, threads: int) -> None:
        import torch
        import torch.nn.functional as F

        torch.set_num_threads(threads)
        self.torch, self.F = torch, F

        class LeNet5(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.conv1 = torch.nn.Conv2d(1, 6, 5, padding=2)
                self.conv2 = torch.nn.Conv2d(6, 16, 5)
                self.fc1 = torch.nn.Linear(400, 120)
                self.fc2 = torch.nn.Linear(120, 84)
                self.fc3 = torch.nn.Linear(84, 10)

            def forward(self, t):
                t = F.max_pool2d(F.relu(self.conv1(t)), 2)
                t = F.max_pool2d(F.relu(self.conv2(t)), 2)
                t = torch.flatten(t, 1)
                return self.fc3(F.relu(self.fc2(F.relu(self.fc1(t)))))

        torch.manual_seed(0)
        self.model = LeNet5()
        self.opt = torch.optim.SGD(self.model.parameters(), lr=LR, momentum=MOMENTUM)
        self.x, self.y = torch.from_numpy(x), torch.from_numpy(y)

    def epoch(self, seed: int) -> tuple[float, float, float]:
        torch, F, m, opt = self.torch, self.F, self.model, self.opt
        order = torch.from_numpy(np.random.default_rng(seed).permutation(len(self.x)))
        m.train()
        c0, t0 = time.process_time(), time.perf_counter()
        loss = None
        for i in range(0, len(self.x), BATCH):
            idx = order[i : i + BATCH]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(m(self.x[idx]), self.y[idx])
            loss.backward()
            opt.step()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        return wall, cpu, float(loss.item()) if loss is not None else 0.0

    def latency_us(self, n: int) -> float:
        torch = self.torch
        x1 = self.x[:1].clone()
        self.model.eval()
        times = []
        with torch.inference_mode():
            self.model(x1)
            for _ in range(n):
                t0 = time.perf_counter()
                self.model(x1)
                times.append(time.perf_counter() - t0)
        return statistics.median(times) * 1e6


# -- driver --------------------------------------------------------------------------------


def blas_info() -> list[str]:
    from threadpoolctl import threadpool_info

    return [
        f"{i.get('internal_api')} {i.get('version')} kernel={i.get('architecture')} "
        f"threads={i.get('num_threads')} ({Path(i.get('filepath', '')).name})"
        for i in threadpool_info()
    ]


def peak_rss_mb() -> float:
    """Peak resident memory of this process: VmHWM (Linux; ru_maxrss would include the parent's
    RSS at fork time, as it survives exec), else ru_maxrss."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def rss_mb() -> float:
    """Current resident memory (Linux VmRSS), 0 where unknown."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def run_part(part: str, args: argparse.Namespace) -> dict:
    """One framework alone (used in a subprocess to attribute peak memory)."""
    x, y, _ = load_data(args.limit)
    data_mb = rss_mb()
    run = (
        NumpyRun(x, y, args.np_threads, processes=args.parallel == "processes")
        if part == "numpy"
        else TorchRun(x, y, args.threads)
    )
    seconds, _, _ = run.epoch(0)
    return {"part": part, "seconds": seconds, "peak_rss_mb": peak_rss_mb(), "data_mb": data_mb}


def measure_memory(args: argparse.Namespace) -> dict[str, float]:
    out = {}
    for part in ("numpy", "torch") if args.torch else ("numpy",):
        cmd = [sys.executable, __file__, "--part", part, "--limit", str(args.limit)]
        cmd += ["--threads", str(args.threads), "--parallel", args.parallel]
        cmd += ["--numpy-blas"] if args.numpy_blas else []
        res = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if res.returncode != 0:
            print(f"memory subprocess for {part} failed:\n{res.stderr}", file=sys.stderr)
            continue
        doc = json.loads(res.stdout.strip().splitlines()[-1])
        out[part] = (doc["peak_rss_mb"], doc["data_mb"])
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5, help="timed epochs per framework (median)")
    ap.add_argument("--limit", type=int, default=60000, help="training images per epoch")
    ap.add_argument("--threads", type=int, default=2, help="threads for each framework")
    ap.add_argument(
        "--numpy-blas",
        action="store_true",
        help="NumPy: give the threads to OpenBLAS instead of splitting the batch over threads",
    )
    ap.add_argument(
        "--parallel",
        choices=("processes", "threads"),
        default="processes",
        help="NumPy: run the batch shards in worker processes (default) or Python threads",
    )
    ap.add_argument("--no-torch", dest="torch", action="store_false", help="skip PyTorch")
    ap.add_argument("--no-memory", dest="memory", action="store_false", help="skip peak RSS runs")
    ap.add_argument("--latency-n", type=int, default=2000, help="single-image calls (median)")
    ap.add_argument("--part", choices=("numpy", "torch"), help=argparse.SUPPRESS)
    args = ap.parse_args()

    from threadpoolctl import threadpool_limits

    # The engine splits a batch over `threads` Python threads, each calling single-threaded
    # BLAS; --numpy-blas instead runs the engine in one thread and lets OpenBLAS use them.
    np_threads = 1 if args.numpy_blas else args.threads
    threadpool_limits(args.threads if args.numpy_blas else 1, user_api="blas")
    args.np_threads = np_threads
    if args.torch and args.part != "numpy":
        try:
            import torch  # noqa: F401
        except ImportError:
            print("PyTorch not installed: measuring the NumPy engine alone")
            args.torch = False
    if args.part:
        print(json.dumps(run_part(args.part, args)))
        return 0

    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if var in os.environ:
            print(f"warning: {var}={os.environ[var]} is set; it slows OpenBLAS (unset it)")
    x, y, source = load_data(args.limit)
    print(f"data: {len(x)} images, {source}; batch {BATCH}, SGD lr {LR} momentum {MOMENTUM}")
    npr = NumpyRun(x, y, np_threads, processes=args.parallel == "processes")
    tr = TorchRun(x, y, args.threads) if args.torch else None
    mode = (
        "OpenBLAS threads"
        if args.numpy_blas
        else f"batch shards in {args.parallel}, BLAS 1 thread each"
    )
    print(f"numpy engine: {args.threads} threads ({mode})")
    print("BLAS:", *blas_info(), sep="\n  ")
    if tr is not None:
        print(f"torch {tr.torch.__version__}, {tr.torch.get_num_threads()} threads")
    np_times, t_times, np_cpu, t_cpu = [], [], [], []
    for r in range(args.repeats):
        s, cpu, loss = npr.epoch(r)
        np_times.append(s)
        np_cpu.append(cpu)
        line = f"epoch {r + 1}: numpy {s:.3f} s (cpu {cpu:.2f} s, loss {loss:.3f})"
        if tr is not None:
            s, cpu, loss = tr.epoch(r)
            t_times.append(s)
            t_cpu.append(cpu)
            line += f"  torch {s:.3f} s (cpu {cpu:.2f} s, loss {loss:.3f})"
            line += f"  ratio {np_times[-1] / s:.2f}"
        print(line, flush=True)
    np_med = statistics.median(np_times)
    print(
        f"\nnumpy epoch median {np_med:.3f} s over {args.repeats} "
        f"({args.limit / np_med:,.0f} images/s); train accuracy {npr.accuracy():.3f}"
    )
    np_lat = npr.latency_us(args.latency_n)
    if tr is not None:
        t_med = statistics.median(t_times)
        print(f"torch epoch median {t_med:.3f} s")
        print(f"ratio numpy/torch {np_med / t_med:.2f} (of the medians)")
        pair = statistics.median(a / b for a, b in zip(np_times, t_times, strict=True))
        print(f"median of the per-epoch ratios {pair:.2f}")
        cpu_ratio = statistics.median(np_cpu) / statistics.median(t_cpu)
        print(
            f"CPU time (all threads) per epoch, medians: numpy {statistics.median(np_cpu):.2f} s, "
            f"torch {statistics.median(t_cpu):.2f} s, ratio {cpu_ratio:.2f}"
        )
        t_lat = tr.latency_us(args.latency_n)
        print(f"single image: numpy {np_lat:.0f} us, torch {t_lat:.0f} us (median)")
    else:
        print(f"single image: numpy {np_lat:.0f} us (median)")
    if args.memory:
        mem = measure_memory(args)
        print(
            "peak memory (max RSS, one epoch in its own process): "
            + ", ".join(
                f"{k} {v:.0f} MB (resident before the epoch, interpreter + data: {d:.0f} MB)"
                for k, (v, d) in mem.items()
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
