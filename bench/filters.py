"""Benchmark of the Filters tab's convolution against same-run references.

Run: ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /work/venv/bin/python bench/filters.py``

Measures, on a 1920x1080 RGB photo (a bundled sample resized), the median of many runs of

* ``engine.filters.correlate`` (the preview's maths) and ``correlate + display`` (what the tab
  computes per edit: float result and its uint8 picture), for a few kernels;
* the references, timed in the same loop (interleaved, so machine load hits all alike):
  Pillow ``ImageFilter.Kernel`` (3x3 and 5x5; Pillow flips the kernel, which does not matter
  for timing), NumPy's nine shifted multiply-adds on a padded float32 copy, and
  ``scipy.ndimage.correlate`` when SciPy is importable (OpenCV is not installed: skipped);
* a 12-megapixel photo at full resolution through ``iter_filter`` (the worker's generator).

Prints medians in ms and the ratio reference / ours (> 1: we are faster).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageFilter

import resources
from engine import filters as F


def photo(width: int, height: int) -> np.ndarray:
    path = next(p for p in resources.sample_images() if p.name == "astronaut.png")
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB").resize((width, height), Image.Resampling.BILINEAR))


def numpy_shifted(img: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The plain way: pad a float32 copy, then one multiply-add per tap on shifted views."""
    f = w.shape[0]
    p = f // 2
    h, wd = img.shape[:2]
    x = np.pad(img.astype(np.float32), ((p, p), (p, p), (0, 0)))
    out = np.zeros((h, wd, img.shape[2]), np.float32)
    for i in range(f):
        for j in range(f):
            out += np.float32(w[i, j]) * x[i : i + h, j : j + wd]
    return out


def interleaved(cases: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median ms of each case, timed in rotation so load changes hit every case alike."""
    times: dict[str, list[float]] = {k: [] for k in cases}
    for fn in cases.values():  # warm up (thread pool, caches, page faults)
        fn()
    for _ in range(repeats):
        for name, fn in cases.items():
            t = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t) * 1e3)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--big-repeats", type=int, default=7)
    args = parser.parse_args()

    try:
        from scipy import ndimage  # optional reference
    except ImportError:
        ndimage = None

    img = photo(1920, 1080)
    pil = Image.fromarray(img)
    rng = np.random.default_rng(0)
    dense = np.round(rng.uniform(-2, 2, (3, 3)), 2)
    kernels = {
        "sharpen 3x3": F.PRESETS["Sharpen"].spec(),
        "dense 3x3 (9 distinct)": F.KernelSpec(dense),
        "gaussian 3x3 (separable)": F.PRESETS["Gaussian blur 3x3"].spec(),
        "gaussian 5x5 (separable)": F.PRESETS["Gaussian blur 5x5"].spec(),
        "edge detection 3 (9I-box)": F.PRESETS["Edge detection 3"].spec(),
        "unsharp 5x5 (2I-gauss)": F.PRESETS["Unsharp 5x5"].spec(),
    }
    print(f"1920x1080 RGB, median of {args.repeats} interleaved runs (ms)")
    header = f"{'kernel':26} {'ours':>6} {'+disp':>6} {'pillow':>7} {'numpy':>6}"
    header += f" {'scipy':>6}" if ndimage else ""
    print(header + "   ratios ref/ours (pillow, numpy)")
    for label, spec in kernels.items():
        w = spec.weights()
        f = w.shape[0]
        cases: dict[str, Callable[[], object]] = {
            "ours": lambda w=w: F.correlate(img, w),
            "ours+display": lambda w=w: F.display(F.correlate(img, w), "clip"),
            "pillow": lambda w=w, f=f: pil.filter(
                ImageFilter.Kernel((f, f), w.ravel().tolist(), scale=1)
            ),
            "numpy": lambda w=w: numpy_shifted(img, w),
        }
        if ndimage is not None:
            w3 = w[:, :, None]
            cases["scipy"] = lambda w3=w3: ndimage.correlate(
                img.astype(np.float32), w3, mode="constant"
            )
        m = interleaved(cases, args.repeats)
        row = f"{label:26} {m['ours']:6.2f} {m['ours+display']:6.2f} {m['pillow']:7.2f}"
        row += f" {m['numpy']:6.2f}" + (f" {m['scipy']:6.2f}" if ndimage else "")
        row += f"   x{m['pillow'] / m['ours']:.1f}, x{m['numpy'] / m['ours']:.1f}"
        print(row, flush=True)

    big = photo(4000, 3000)
    print(f"\n12 MP (4000x3000 RGB) full resolution via iter_filter, median of {args.big_repeats}")
    for label in ("sharpen 3x3", "dense 3x3 (9 distinct)", "gaussian 5x5 (separable)"):
        settings = F.FilterSettings((kernels[label],), color="rgb")

        def full(settings: F.FilterSettings = settings) -> None:
            for _event in F.iter_filter(big, settings):
                pass

        m = interleaved(
            {"ours": full, "pillow": lambda: Image.fromarray(big).filter(ImageFilter.SHARPEN)},
            args.big_repeats,
        )
        print(f"{label:26} {m['ours']:7.1f} ms   (pillow 3x3 SHARPEN {m['pillow']:.1f} ms)")
    print("\nscipy.ndimage:", "measured" if ndimage else "not importable, skipped")
    print("OpenCV: not installed, skipped")


if __name__ == "__main__":
    main()
