"""Hostile kernel text and kernel files, generated from a seed: whatever the input, the engine
answers a valid float64 kernel of an accepted size with finite, float32-safe results, or one
KernelError line; never OverflowError, RecursionError, a hang or Infinity."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine import filters as F

ATOMS = [
    "0", "1", "-1", "2.5", ".5", "1e3", "1e-320", "1e38", "1e39", "1e10000000", "9" * 40,
    "1/3", "1/3/4", "1/0", "0/0", "-1/16", "nan", "inf", "-inf", "1_0", "0x1f", "\u22122",
    "1e", "e5", "--1", "+.", "/", "1 /2", "½", "٣", "1e308/1e-308", "",
]  # fmt: skip
SEPARATORS = [" ", ",", ";", "\n", "  ", "; ", "\t"]


def kernel_texts(rng: np.random.Generator, count: int):
    for _ in range(count):
        size = int(rng.choice([1, 2, 3, 5, 7, 8, 9]))
        rows = []
        for _ in range(size):
            cells = [ATOMS[int(i)] for i in rng.integers(0, len(ATOMS), size)]
            if rng.random() < 0.7:  # mostly plain numbers, so some texts are valid
                cells = [c if rng.random() < 0.8 else "1" for c in cells]
            rows.append(str(rng.choice(SEPARATORS[:2])).join(cells))
        yield str(rng.choice(SEPARATORS[2:])).join(rows)


def test_seeded_kernel_texts_give_a_safe_kernel_or_one_line():
    rng = np.random.default_rng(11)
    accepted = refused = 0
    image = np.full((9, 9), 255, np.uint8)
    for text in kernel_texts(rng, 400):
        try:
            kernel = F.parse_kernel(text)
            spec = F.KernelSpec(kernel)
        except F.KernelError as exc:
            assert "\n" not in str(exc) and str(exc)
            refused += 1
            continue
        assert kernel.dtype == np.float64 and kernel.shape[0] in F.KERNEL_SIZES
        with np.errstate(all="raise"):
            maps = F.run_filter(image, F.FilterSettings((spec,), pool="sum")).maps
        assert np.all(np.isfinite(maps))
        accepted += 1
    assert accepted > 20 and refused > 100  # both sides of the grammar were exercised


def _documents(rng: np.random.Generator):
    good = {"kernel": [[1, 2, 1], [2, 4, 2], [1, 2, 1]], "divisor": 16}
    yield "[" * 50_000 + "]" * 50_000
    yield json.dumps({"kernels": [good] * 9})
    yield '{"kernel": [[1e999]]}'
    yield '{"kernel": [[' + "9" * 5000 + "]]}"
    for _ in range(60):
        doc = json.loads(json.dumps(good))
        key = str(rng.choice(["kernel", "divisor", "offset", "normalize", "name"]))
        doc[key] = [
            None, "x", [], [[]], {}, True, -0.0, 1e300, 2**70, [[1, 2], [3]],
            np.ones((int(rng.integers(1, 12)),) * 2).tolist(), "1/9", [[[1]]],
        ][int(rng.integers(0, 13))]  # fmt: skip
        yield json.dumps(doc)


def test_seeded_kernel_files_give_kernels_or_one_kernel_error(tmp_path):
    rng = np.random.default_rng(12)
    path = tmp_path / "k.json"
    for text in _documents(rng):
        path.write_text(text)
        try:
            specs = F.load_kernels(path)
        except F.KernelError as exc:
            assert "\n" not in str(exc) and str(path) in str(exc)
            continue
        for spec in specs:
            assert spec.size in F.KERNEL_SIZES and spec.output_bound() <= 1e36


@pytest.mark.parametrize("text", ["1/1e-320", "1e10000000/1", "9" * 400, "1/3/4", "1e38"])
def test_the_campaigns_cases_are_one_line_on_the_command_line(text, tmp_path, capsys):
    from PIL import Image

    from desktop.cli import main

    image = tmp_path / "g.png"
    Image.new("L", (8, 8)).save(image)
    code = main(["convolve", str(image), "--kernel", f"{text} 0 0; 0 0 0; 0 0 0", "--json"])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == "" and len(captured.err.strip().splitlines()) == 1
