"""``convscope convolve``: files written, the same numbers as the engine, bad args in one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from desktop.cli import main
from engine import filters as F


@pytest.fixture
def photo(tmp_path, rng):
    pixels = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    path = tmp_path / "photo.png"
    Image.fromarray(pixels).save(path)
    return path, pixels


def test_preset_writes_png_and_raw_equal_to_the_engine(photo, tmp_path, capsys):
    path, pixels = photo
    out, raw = tmp_path / "sharp.png", tmp_path / "sharp.npy"
    code = main(
        [
            "convolve",
            str(path),
            "--preset",
            "sharpen",
            "--rgb",
            "--border",
            "reflect",
            "--out",
            str(out),
            "--raw",
            str(raw),
            "--json",
        ]
    )
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    values = np.load(raw)
    expected = F.correlate(pixels, F.PRESETS["Sharpen"].spec().weights(), border="reflect")
    np.testing.assert_allclose(values, expected, atol=1e-4)
    picture = np.asarray(Image.open(out))
    assert np.array_equal(picture, F.display(expected, "clip"))
    assert doc["output_shape"] == [30, 40, 3]
    assert doc["min"] == pytest.approx(float(expected.min()), abs=1e-3)
    assert doc["out"] == str(out) and doc["raw"] == str(raw)


def test_kernel_text_stride_pool_and_stack_shapes(photo, tmp_path, capsys):
    path, _ = photo
    raw = tmp_path / "maps.npy"
    code = main(
        [
            "convolve",
            str(path),
            "--kernel",
            "1 0 -1; 0 0 0; -1 0 1",
            "--preset",
            "Sobel x",
            "--border",
            "valid",
            "--stride",
            "2",
            "--relu",
            "--pool",
            "max",
            "--display",
            "abs",
            "--out",
            str(tmp_path / "maps.png"),
            "--raw",
            str(raw),
            "--json",
        ]
    )
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    # gray 30x40 -> valid stride 2: 14x19 -> max pool 2: 7x9, two kernels
    assert [s["shape"] for s in doc["stages"]] == [
        [30, 40, 1],
        [2, 14, 19, 1],
        [2, 14, 19, 1],
        [2, 7, 9, 1],
    ]
    values = np.load(raw)
    assert values.shape == (2, 7, 9)
    assert values.min() >= 0  # ReLU ran
    assert (tmp_path / "maps.png").stat().st_size > 0


def test_divisor_offset_and_fractions(photo, tmp_path):
    path, pixels = photo
    raw = tmp_path / "box.npy"
    assert (
        main(
            [
                "convolve",
                str(path),
                "--kernel",
                "1/9 1/9 1/9; 1/9 1/9 1/9; 1/9 1/9 1/9",
                "--divisor",
                "2",
                "--offset",
                "10",
                "--raw",
                str(raw),
            ]
        )
        == 0
    )
    gray = F.to_gray(pixels)
    expected = F.correlate(gray, np.full((3, 3), 1 / 18), offset=10)
    np.testing.assert_allclose(np.load(raw), expected, atol=1e-3)


def test_list_presets(capsys):
    assert main(["convolve", "--list-presets"]) == 0
    out = capsys.readouterr().out
    assert "Gaussian blur 5x5" in out and "0 -1 0; -1 5 -1; 0 -1 0" in out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--preset", "nope", "--out", "x.png"], "unknown preset 'nope'"),
        (["--kernel", "1 2; 3 4", "--out", "x.png"], "3x3, 5x5 or 7x7"),
        (["--kernel", "1 a 0; 0 1 0; 0 0 1", "--out", "x.png"], "not a number"),
        (["--preset", "sharpen"], "nothing to write"),
        (["--out", "x.png"], "no kernel"),
        (["--preset", "sharpen", "--stride", "9", "--out", "x.png"], "stride 9"),
        (["--preset", "sharpen", "--raw", "x.txt"], "must end in .npy"),
    ],
)
def test_bad_arguments_end_in_one_line(photo, tmp_path, capsys, extra, message, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path, _ = photo
    assert main(["convolve", str(path), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1 and err.startswith("convscope convolve: error:")


def test_hostile_file_is_one_line(tmp_path, capsys):
    bad = tmp_path / "text.png"
    bad.write_text("this is not a picture")
    assert main(["convolve", str(bad), "--preset", "sharpen", "--out", "x.png"]) == 2
    err = capsys.readouterr().err.strip()
    assert "text.png" in err and len(err.splitlines()) == 1


def test_kernel_file_stack(photo, tmp_path, capsys):
    path, pixels = photo
    kernels = F.save_kernels(
        tmp_path / "k.json", [F.PRESETS["Sobel x"].spec(), F.PRESETS["Sobel y"].spec()]
    )
    raw = tmp_path / "k.npy"
    assert (
        main(["convolve", str(path), "--kernel-file", str(kernels), "--rgb", "--raw", str(raw)])
        == 0
    )
    values = np.load(raw)
    assert values.shape == (2, 30, 40, 3)
    np.testing.assert_allclose(
        values[1], F.correlate(pixels, F.PRESETS["Sobel y"].array()), atol=1e-3
    )


def _run_cli(args, tmp_path, encoding="ascii"):
    """``convscope ARGS`` in a child process whose terminal speaks only ``encoding``."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONIOENCODING": encoding, "PYTHONPATH": str(root)}
    code = "import sys; from desktop.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        cwd=tmp_path,
        timeout=60,
    )


def test_an_ascii_terminal_gets_plain_symbols_not_a_traceback(photo, tmp_path):
    path, _ = photo
    done = _run_cli(
        ["convolve", str(path), "--preset", "sharpen", "--pool", "max", "--out", "o.png"], tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "input 30x40x1 -> conv 30x40x1 -> max pool 15x20x1" in done.stdout
    listing = _run_cli(["convolve", "--list-presets"], tmp_path)
    assert listing.returncode == 0 and "(/9)" in listing.stdout


def test_safe_print_escapes_what_the_stream_cannot_encode():
    import io

    from desktop.cli.common import safe_print

    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="ascii")
    safe_print("3×3 → ÷ 🙂 \udcff.png", file=stream)
    assert raw.getvalue().decode("ascii") == "3x3 -> / \\U0001f642 \\udcff.png\n"
