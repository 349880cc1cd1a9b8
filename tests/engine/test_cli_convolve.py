"""``convscope convolve``: files written, the same numbers as the engine, bad args in one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from desktop.cli import main
from engine import filters as F
from engine.imageio import load_image


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
        (["--kernel", "1 2; 3 4", "--out", "x.png"], "odd side from 1 to 7"),
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


@pytest.mark.parametrize(
    ("out", "hint"),
    [("maps.gif", ".png, .jpg"), ("maps.npy", "--raw"), ("/proc/maps.png", "cannot write in")],
)
def test_an_out_name_no_picture_can_have_is_refused_before_any_file_is_written(
    photo, tmp_path, capsys, out, hint
):
    path, _ = photo
    raw = tmp_path / "maps-values.npy"
    args = ["convolve", str(path), "--preset", "sharpen", "--raw", str(raw)]
    assert main([*args, "--out", str(tmp_path / out)]) == 2
    err = capsys.readouterr().err.strip()
    assert hint in err and len(err.splitlines()) == 1
    assert not raw.exists()  # refused before the work, not after writing the values


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


@pytest.mark.parametrize(
    ("where", "hint"),
    [
        ("folder", "is a folder"),
        ("missing/raw.npy", "does not exist"),
        ("x" * 300 + ".npy", "longer than the system allows"),
    ],
)
def test_raw_paths_that_cannot_be_written_exit_2_naming_the_users_path(
    photo, tmp_path, capsys, where, hint
):
    path, _ = photo
    (tmp_path / "folder.npy").mkdir()
    target = str(tmp_path / (where + ".npy" if where == "folder" else where))
    code = main(["convolve", str(path), "--preset", "sharpen", "--raw", target])
    err = capsys.readouterr().err
    assert code == 2 and hint in err and target in err
    assert ".tmp" not in err and len(err.strip().splitlines()) == 1


def test_out_equal_to_the_input_is_refused_unless_overwrite(photo, capsys):
    path, pixels = photo
    code = main(["convolve", str(path), "--preset", "sharpen", "--out", str(path)])
    assert code == 2 and "is the input image" in capsys.readouterr().err
    assert np.array_equal(np.asarray(Image.open(path)), pixels)  # untouched
    code = main(["convolve", str(path), "--preset", "identity", "--out", str(path), "--overwrite"])
    assert code == 0


@pytest.mark.parametrize(
    ("extra", "hint"),
    [
        (["--pool", "max", "--pool-stride", "0", "--preset", "sharpen"], "--pool-stride 0"),
        (["--pool", "max", "--pool-size", "0", "--preset", "sharpen"], "--pool-size 0"),
        (
            [
                "--pool",
                "max",
                "--pool-size",
                "8",
                "--stride",
                "4",
                "--border",
                "valid",
                "--preset",
                "sharpen",
            ],
            "pooling window",
        ),
        (["--kernel", "1e38 0 0; 0 0 0; 0 0 0"], "too large"),
        (["--kernel", "1/1e-320"], "too large"),
        (["--kernel", "1/3/4"], "one fraction"),
        (["--preset", "sharpen", "--divisor", "1e-300"], "too large"),
    ],
)
def test_pooling_and_overflow_mistakes_exit_2_in_one_line(photo, tmp_path, capsys, extra, hint):
    path, _ = photo
    code = main(["convolve", str(path), *extra, "--json"])
    captured = capsys.readouterr()
    assert code == 2 and hint in captured.err and captured.out == ""
    assert "kernel does not fit" not in captured.err


def test_json_is_strict_and_a_1x1_kernel_file_works(photo, tmp_path, capsys):
    path, pixels = photo
    kfile = tmp_path / "one.json"
    kfile.write_text('{"kernel": [[2]]}')
    code = main(["convolve", str(path), "--kernel-file", str(kfile), "--json"])
    text = capsys.readouterr().out
    assert code == 0 and "Infinity" not in text and "NaN" not in text
    doc = json.loads(text)
    assert doc["max"] == pytest.approx(2 * float(F.to_gray(pixels).max()), abs=1)


def test_a_job_that_would_not_fit_in_memory_is_refused_before_decoding(
    photo, tmp_path, capsys, monkeypatch
):
    from engine.filters import memory

    big = tmp_path / "big.png"
    Image.new("L", (3000, 2000)).save(big)
    monkeypatch.setattr(memory, "available_memory", lambda: 50_000_000)
    decoded = []
    import engine.imageio

    real = engine.imageio.load_image
    monkeypatch.setattr(
        engine.imageio, "load_image", lambda *a, **k: decoded.append(1) or real(*a, **k)
    )
    presets = ["sobel x", "sobel y", "sharpen", "emboss"]
    args = ["convolve", str(big), *[a for p in presets for a in ("--preset", p)], "--out", "m.png"]
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2 and "needs about" in err and "available" in err
    assert decoded == []


@pytest.mark.parametrize("color", ["--gray", "--rgb"])
def test_a_transparent_png_is_filtered_as_the_filters_tab_opens_it(tmp_path, rng, color):
    # transparent pixels are white paper in the tab (load_image mode RGB); the colour stored
    # under them must not leak into the CLI's numbers
    pixels = rng.integers(0, 256, (12, 16, 4), dtype=np.uint8)
    pixels[:4, :, 3] = 0
    pixels[4:8, :, 3] = 128
    path = tmp_path / "clear.png"
    Image.fromarray(pixels, "RGBA").save(path)
    raw = tmp_path / "clear.npy"
    assert main(["convolve", str(path), "--preset", "sharpen", color, "--raw", str(raw)]) == 0
    settings = F.FilterSettings((F.PRESETS["Sharpen"].spec(),), color=color[2:])
    in_the_tab = F.run_filter(load_image(path, mode="RGB"), settings).raw()
    assert np.array_equal(np.load(raw), in_the_tab)


@pytest.mark.parametrize("raw", [False, True])
def test_a_stack_is_written_one_map_at_a_time_without_copies_of_the_whole(tmp_path, rng, raw):
    # 8 RGB kernels on a 50 MP photo took 3.3 GB: the previous map was still held while the
    # next was computed, each map was copied (tobytes) to be written to the .npy file, and
    # the picture of the maps was laid out in an array, then copied whole to be encoded
    import tracemalloc

    photo = tmp_path / "photo.png"
    Image.fromarray(rng.integers(0, 256, (1200, 800, 3), dtype=np.uint8)).save(photo)
    names = ["Sharpen", "Emboss", "Outline", "Identity"]
    args = [str(photo), "--rgb", "--out", str(tmp_path / "maps.png"), "--overwrite"]
    args += ["--raw", str(tmp_path / "maps.npy")] if raw else []
    for name in names:
        args += ["--preset", name]
    assert main(["convolve", *args[:4], "--preset", "Sharpen"]) == 0  # imports, threads
    tracemalloc.start()
    try:
        assert main(["convolve", *args]) == 0
        _held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    one_map = 1200 * 800 * 3 * 4  # now: the source, one map, its picture, band buffers
    assert peak < 2.5 * one_map, peak / one_map  # it was 3.8
    image = load_image(photo)
    settings = F.FilterSettings(tuple(F.PRESETS[n].spec() for n in names), color="rgb")
    result = F.run_filter(image, settings)
    if raw:
        np.testing.assert_array_equal(np.load(tmp_path / "maps.npy"), result.raw())
    pictures = [F.display(m, "clip") for m in result.maps]
    np.testing.assert_array_equal(load_image(tmp_path / "maps.png"), F.tile_maps(pictures))
