"""Hostile kernel text, kernel files and filter jobs (issue 11): one clear line, never a
traceback, an OverflowError, a hang or Infinity in the output."""

from __future__ import annotations

import json
import os
import threading

import numpy as np
import pytest

from engine import filters as F
from engine.errors import EngineError
from engine.filters import memory


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("1/1e-320", "too large"),
        ("1e10000000/1", "too large"),
        ("9" * 5000, "too long"),
        ("1e39", "too large"),
        ("1/3/4", "one fraction a/b only"),
        ("1/0", "divides by 0"),
        ("inf", "not a number"),
        ("1_000", "not a number"),
        ("0x10", "not a number"),
    ],
)
def test_numbers_outside_the_grammar_are_refused_in_one_line(text, hint):
    with pytest.raises(F.KernelError, match=hint) as info:
        F.parse_number(text)
    assert "\n" not in str(info.value)


def test_the_grammar_accepts_decimals_exponents_and_one_fraction():
    assert F.parse_number("-1/16") == -1 / 16
    assert F.parse_number(" 2.5e-1 ") == 0.25
    assert F.parse_number(".5 / -2") == -0.25
    assert F.parse_number("3.4e38") == 3.4e38


def test_weights_whose_results_would_overflow_float32_are_refused():
    with pytest.raises(F.KernelError, match="too large"):
        F.KernelSpec(np.full((3, 3), 1e38))
    with pytest.raises(F.KernelError, match="too large"):
        F.KernelSpec(np.ones((3, 3)), divisor=1e-300)
    spec = F.KernelSpec(np.full((3, 3), 4e32))  # near the limit: 255 * 9 * 4e32 = 9.2e35
    img = np.full((8, 8), 255, np.uint8)
    settings = F.FilterSettings((spec,), pool="sum", pool_size=8, pool_stride=8)
    with np.errstate(all="raise"):  # no overflow anywhere, even summing 64 of them
        out = F.run_filter(img, settings).maps
    assert np.all(np.isfinite(out))


@pytest.mark.parametrize("size", [1, 3, 5, 7])
def test_every_odd_size_from_1_to_7_runs(size, tmp_path):
    spec = F.KernelSpec(np.ones((size, size)), normalize=True)
    path = F.save_kernels(tmp_path / "k.json", [spec])
    loaded = F.load_kernels(path)
    assert loaded[0].size == size
    img = np.arange(100, dtype=np.uint8).reshape(10, 10)
    maps = F.run_filter(img, F.FilterSettings(tuple(loaded), border="extend")).maps
    assert maps.shape == (1, 10, 10, 1)
    if size == 1:
        np.testing.assert_allclose(maps[0, :, :, 0], img)
    assert F.separable_factors(spec.kernel) is not None


@pytest.mark.parametrize("size", [9, 51, 101])
def test_kernel_files_larger_than_7x7_are_refused_like_kernel_text(size, tmp_path):
    path = tmp_path / "big.json"
    path.write_text(json.dumps({"kernels": [{"kernel": np.ones((size, size)).tolist()}]}))
    with pytest.raises(F.KernelError, match="odd side from 1 to 7"):
        F.load_kernels(path)
    with pytest.raises(F.KernelError, match="odd side from 1 to 7"):
        F.parse_kernel("; ".join(" ".join(["1"] * size) for _ in range(size)))


@pytest.mark.parametrize(
    ("content", "hint"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deeply|not a JSON"),
        ('{"kernel": [[1' + "0" * 5000 + "]]}", "not a JSON|square matrix"),
        ('{"kernel": [[1e400]]}', "float32|number"),
        ('{"kernel": [[1]], "divisor": 1e999}', "divisor"),
        ('{"kernel": "abc"}', "square"),
        ("[]", "kernel is 0|1 to 8 kernels"),
    ],
)
def test_hostile_kernel_files_give_one_kernel_error(content, hint, tmp_path):
    path = tmp_path / "evil.json"
    path.write_text(content)
    with pytest.raises(F.KernelError, match=hint) as info:
        F.load_kernels(path)
    assert str(path) in str(info.value)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "kernels.json"
    os.mkfifo(fifo)
    outcome: list[BaseException] = []

    def load() -> None:
        try:
            F.load_kernels(fifo)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    thread.join(timeout=20)
    if thread.is_alive():  # unblock the reader so the test process can end
        with open(fifo, "w"):
            pass
        pytest.fail("load_kernels blocked on a FIFO")
    assert isinstance(outcome[0], F.KernelError) and "not a regular file" in str(outcome[0])


def test_saving_kernels_into_a_missing_or_read_only_folder_names_the_users_path(tmp_path):
    spec = F.PRESETS["Sharpen"].spec()
    target = tmp_path / "missing" / "k.json"
    with pytest.raises(F.KernelError, match="cannot be saved") as info:
        F.save_kernels(target, [spec])
    assert str(target) in str(info.value) and ".tmp" not in str(info.value)
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "k.json").write_text("old")
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who can write anywhere")
        with pytest.raises(F.KernelError, match="cannot be saved"):
            F.save_kernels(locked / "k.json", [spec])
        assert (locked / "k.json").read_text() == "old"
    finally:
        locked.chmod(0o700)


def test_pooling_errors_speak_of_the_pooling_window():
    settings = F.FilterSettings((F.PRESETS["Identity"].spec(),), pool="max", pool_size=4)
    with pytest.raises(EngineError, match="pooling window") as info:
        settings.check_fits(3, 3)
    assert "kernel" not in str(info.value)
    with pytest.raises(EngineError, match="pooling window") as info:
        F.pool(np.zeros((2, 2), np.float32), "max", 3)
    assert "kernel" not in str(info.value)
    with pytest.raises(F.KernelError, match="pooling window stride 0"):
        F.FilterSettings((F.PRESETS["Identity"].spec(),), pool="max", pool_stride=0)


def test_memory_estimate_refuses_a_7000_square_image_with_8_kernels():
    specs = tuple(p.spec() for p in list(F.PRESETS.values())[:8])
    settings = F.FilterSettings(specs)
    needed = memory.whole_result_bytes(7000, 7000, settings)
    assert needed > 8 * 7000 * 7000 * 4  # at least the eight float maps
    streamed = memory.streamed_bytes(7000, 7000, settings, picture=False)
    assert streamed < needed / 4  # one map at a time
    with pytest.raises(memory.FilterMemoryError, match=r"needs about .* GB .* available"):
        memory.check_memory(needed, "this", available=1_000_000_000)
    memory.check_memory(streamed, "this", available=64_000_000_000)


def test_iter_maps_and_the_streamed_raw_file_equal_the_whole_result(tmp_path, rng):
    img = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    specs = (F.PRESETS["Sobel x"].spec(), F.PRESETS["Sharpen"].spec())
    settings = F.FilterSettings(specs, color="rgb", relu=True, pool="avg", pool_stride=1)
    whole = F.run_filter(img, settings)
    maps = list(F.iter_maps(img, settings))
    np.testing.assert_array_equal(np.stack(maps), whole.maps)
    assert F.stages(img.shape, settings) == whole.stages
    assert settings.output_shape(20, 30) == whole.maps.shape
    path = F.save_raw_stream(tmp_path / "r.npy", whole.raw().shape, iter(maps))
    np.testing.assert_array_equal(np.load(path), whole.raw())


def test_a_full_disk_while_saving_kernels_names_the_users_path(tmp_path, monkeypatch):
    import errno

    from engine import atomic

    target = tmp_path / "kernels.json"
    target.write_text("old")

    def full(f) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    real = atomic.atomic_write
    monkeypatch.setattr(
        "engine.filters.kernelfile.atomic_write", lambda path, write: real(path, full)
    )
    with pytest.raises(F.KernelError, match="No space left") as info:
        F.save_kernels(target, [F.PRESETS["Sharpen"].spec()])
    assert str(target) in str(info.value) and ".tmp" not in str(info.value)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["kernels.json"]  # no temporary file left
