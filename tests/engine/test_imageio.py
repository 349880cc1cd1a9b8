"""engine.imageio: odd files open correctly, hostile files fail fast with a clear message."""

from __future__ import annotations

import os
import time
import warnings

import numpy as np
import pytest
from hostile import make_hostile_files, make_odd_files, png_bytes
from PIL import Image

from engine.errors import EngineError, ImageLoadError
from engine.imageio import (
    SUPPORTED_SUFFIXES,
    ImageSaveError,
    convert_array,
    image_from_bytes,
    image_from_pil,
    load_image,
    save_image,
)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    return make_hostile_files(tmp_path_factory.mktemp("hostile"))


@pytest.fixture(scope="module")
def odd(tmp_path_factory):
    return make_odd_files(tmp_path_factory.mktemp("odd"))


# --- hostile files ---------------------------------------------------------------------------

HOSTILE_REASONS = {
    "empty.png": "empty",
    "text.png": "not a readable image",
    "truncated.png": "truncated",
    "truncated.jpg": "truncated",
    "bad_crc.png": "header is damaged",
    "header_only.png": "",
    "bomb_20000.png": "decompression bomb",
    "bomb_60mp.png": "megapixels",
}


@pytest.mark.parametrize("name", sorted(HOSTILE_REASONS))
def test_hostile_file_is_refused_fast_with_its_name(hostile, name):
    start = time.process_time()  # CPU seconds: a loaded machine does not change them
    with pytest.raises(ImageLoadError) as info:
        load_image(hostile[name])
    assert time.process_time() - start < 1.0
    message = str(info.value)
    assert name in message
    assert HOSTILE_REASONS[name] in message
    assert "\n" not in message


@pytest.mark.parametrize("name", sorted(HOSTILE_REASONS))
def test_hostile_bytes_are_refused_too(hostile, name):
    with pytest.raises(ImageLoadError, match="pasted"):
        image_from_bytes(hostile[name].read_bytes(), name="pasted")


def test_bomb_check_happens_before_decoding(hostile):
    # the 60 MP bomb opens fine with a higher limit, proving the refusal came from our own check
    start = time.process_time()  # CPU seconds: decoding 60 MP would take far more
    with pytest.raises(ImageLoadError, match="10000x6000"):
        load_image(hostile["bomb_60mp.png"], max_pixels=50_000_000)
    assert time.process_time() - start < 0.5
    with pytest.raises(ImageLoadError, match="limit of 1"):
        load_image(hostile["bomb_60mp.png"], max_pixels=1_000_000)


def test_small_limit_refuses_an_ordinary_image(odd):
    with pytest.raises(ImageLoadError, match="megapixels"):
        load_image(odd["photo.png"], max_pixels=100)
    assert load_image(odd["photo.png"], max_pixels=64 * 48).shape == (48, 64, 3)


def test_pillow_global_limits_are_untouched(hostile):
    import PIL.ImageFile

    before = Image.MAX_IMAGE_PIXELS
    with pytest.raises(ImageLoadError):
        load_image(hostile["bomb_20000.png"], max_pixels=None)
    assert Image.MAX_IMAGE_PIXELS == before
    assert PIL.ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_missing_path_and_folder(tmp_path):
    with pytest.raises(ImageLoadError, match="no such file"):
        load_image(tmp_path / "nothing-here.png")
    with pytest.raises(ImageLoadError, match="is a folder"):
        load_image(tmp_path)


def test_errors_are_engine_errors(tmp_path):
    assert issubclass(ImageLoadError, EngineError)
    with pytest.raises(EngineError):
        image_from_bytes(b"")


def test_bad_mode_is_a_programming_error(odd):
    with pytest.raises(ValueError, match="mode"):
        load_image(odd["photo.png"], mode="CMYK")


# --- odd but valid files ---------------------------------------------------------------------


def test_sixteen_bit_png_is_scaled_not_clipped(odd):
    a = load_image(odd["gray16.png"])
    assert a.dtype == np.uint8 and a.shape == (4, 256)
    # the file holds v*257 for v = 0..255, which must come back as exactly v
    np.testing.assert_array_equal(a[0], np.arange(256))
    assert a[0, 128] == 128  # clipping would give 255 here


def test_sixteen_bit_rgb_png(odd):
    a = load_image(odd["rgb16.png"])
    assert a.shape == (2, 4, 3)
    assert a[0, 0].tolist() == [0, 128, 255] and a[1, 3].tolist() == [255, 0, 0]


def test_palette_with_transparency_keeps_alpha(odd):
    a = load_image(odd["palette_transparent.png"])
    assert a.shape == (4, 8, 4)
    assert a[0, 0, 3] == 0  # the transparent index
    assert tuple(a[0, 1]) == (0, 255, 0, 255)
    assert tuple(a[3, 7]) == (255, 0, 0, 255)
    rgb = load_image(odd["palette_transparent.png"], mode="RGB")
    assert tuple(rgb[0, 0]) == (255, 255, 255)  # transparent -> white background
    assert tuple(rgb[0, 1]) == (0, 255, 0)


def test_gray_palette_comes_back_gray(odd):
    a = load_image(odd["palette_gray.png"])
    assert a.shape == (2, 6)
    assert a[1, 5] == 200 and a[0, 0] == 0


def test_cmyk_jpeg_becomes_rgb(odd):
    a = load_image(odd["cmyk.jpg"])
    assert a.shape == (8, 16, 3)
    r, g, b = a[4, 8].astype(int)
    assert r > 200 and g < 60 and b < 60  # C=0, M=Y=255 is red


def test_la_and_one_bit(odd):
    la = load_image(odd["la.png"])
    assert la.shape == (4, 4, 4)
    assert tuple(la[0, 0]) == (0, 0, 0, 255) and la[3, 3, 3] == 0
    gray = load_image(odd["la.png"], mode="L")
    assert gray[0, 0] == 0 and gray[3, 3] == 255  # transparent -> white
    one = load_image(odd["onebit.png"])
    assert one.shape == (3, 9) and one[2, 8] == 255 and one[0, 0] == 0


def test_int32_and_float_tiff(odd):
    i = load_image(odd["int32.tif"])
    np.testing.assert_array_equal(i, [[0, 4], [156, 255]])  # 16-bit range scaled by 255/65535
    f = load_image(odd["float.tif"])
    np.testing.assert_array_equal(f, [[0, 128], [64, 255]])  # 0..1 scaled by 255


def test_animated_gif_gives_first_frame(odd):
    a = load_image(odd["animated.gif"])
    assert a.shape == (10, 10, 3)
    assert tuple(a[5, 5]) == (255, 0, 0)


def test_exif_orientation_is_applied(odd):
    a = load_image(odd["exif_rotated.jpg"])
    assert a.shape == (40, 20)  # stored 40 wide x 20 high, rotated 90 degrees clockwise
    assert a[:5, -5:].mean() > 200  # the mark is now top-right
    assert a[:5, :5].mean() < 50 and a[-5:, :5].mean() < 50 and a[-5:, -5:].mean() < 50


def test_modes_and_shapes(odd):
    path = odd["photo.png"]
    assert load_image(path).shape == (48, 64, 3)
    assert load_image(path, mode="L").shape == (48, 64)
    rgba = load_image(path, mode="RGBA")
    assert rgba.shape == (48, 64, 4) and (rgba[..., 3] == 255).all()
    rgb = load_image(path, mode="RGB")
    assert rgb.flags.writeable and rgb.flags.c_contiguous
    # luma weights 0.299, 0.587, 0.114
    expected = np.rint(rgb.astype(float) @ [0.299, 0.587, 0.114])
    assert np.abs(load_image(path, mode="L").astype(float) - expected).max() <= 1


@pytest.mark.parametrize("name", ["photo.jpg", "photo.bmp", "photo.webp"])
def test_common_formats(odd, name):
    a = load_image(odd[name])
    reference = load_image(odd["photo.png"])
    assert a.shape == reference.shape
    assert np.abs(a.astype(int) - reference).mean() < 3


def test_transparent_drawing_becomes_dark_on_white(odd):
    a = load_image(odd["drawing_rgba.png"], mode="L")
    assert a[0, 0] == 255 and a[2, 2] == 0


def test_image_from_bytes_and_pil(odd):
    data = odd["gray16.png"].read_bytes()
    np.testing.assert_array_equal(image_from_bytes(data), load_image(odd["gray16.png"]))
    with Image.open(odd["palette_transparent.png"]) as img:
        img.load()
        assert image_from_pil(img, "RGBA").shape == (4, 8, 4)
    rgb = image_from_bytes(png_bytes(Image.new("RGB", (3, 2), (10, 20, 30))), mode="RGB")
    assert rgb.shape == (2, 3, 3) and tuple(rgb[1, 2]) == (10, 20, 30)


def test_convert_array():
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)
    rgb = convert_array(rgba, "RGB")
    assert tuple(rgb[0, 0]) == (255, 0, 0) and tuple(rgb[1, 1]) == (255, 255, 255)
    assert convert_array(rgb, "L").shape == (2, 2)
    assert convert_array(rgb[..., 0], "RGB").shape == (2, 2, 3)


def test_supported_suffixes_are_lower_case_and_dotted():
    assert ".png" in SUPPORTED_SUFFIXES and ".jpg" in SUPPORTED_SUFFIXES
    assert all(s.startswith(".") and s == s.lower() for s in SUPPORTED_SUFFIXES)


# --- saving ----------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif"])
@pytest.mark.parametrize("channels", [0, 3, 4])
def test_save_and_load_round_trip_lossless(tmp_path, rng, suffix, channels):
    if suffix == ".bmp" and channels == 4:
        pytest.skip("BMP keeps no alpha; see test_save_without_alpha_composites_on_white")
    shape = (5, 7) if channels == 0 else (5, 7, channels)
    image = rng.integers(0, 256, size=shape, dtype=np.uint8)
    path = save_image(image, tmp_path / f"out{suffix}")
    back = load_image(path)
    np.testing.assert_array_equal(back, image)
    assert [p.name for p in tmp_path.iterdir()] == [f"out{suffix}"]  # no temp file left


@pytest.mark.parametrize("suffix", [".jpg", ".bmp"])
def test_save_without_alpha_composites_on_white(tmp_path, suffix):
    image = np.zeros((16, 16, 4), dtype=np.uint8)  # fully transparent...
    image[:8, :, 3] = 255  # ...except the top half, opaque black
    back = load_image(save_image(image, tmp_path / f"out{suffix}"))
    assert back.shape == (16, 16, 3)
    assert back[12:].min() > 240 and back[:6].max() < 15


def test_save_replaces_existing_file(tmp_path):
    path = tmp_path / "out.png"
    save_image(np.zeros((2, 2), np.uint8), path)
    save_image(np.full((3, 3), 9, np.uint8), path)
    np.testing.assert_array_equal(load_image(path), np.full((3, 3), 9))


@pytest.mark.parametrize(
    ("array", "name", "match"),
    [
        (np.zeros((2, 2), np.uint8), "out.xyz", "suffix"),
        (np.zeros((2, 2), np.float32), "out.png", "uint8"),
        (np.zeros((2, 2, 2), np.uint8), "out.png", "shape"),
        (np.zeros((0, 2), np.uint8), "out.png", "empty"),
    ],
)
def test_save_refuses_bad_input(tmp_path, array, name, match):
    with pytest.raises(ImageSaveError, match=match):
        save_image(array, tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_save_into_missing_folder(tmp_path):
    with pytest.raises(ImageSaveError, match="does not exist"):
        save_image(np.zeros((2, 2), np.uint8), tmp_path / "no" / "out.png")


def test_broken_exif_is_ignored(tmp_path):
    path = tmp_path / "broken_exif.jpg"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow itself warns while writing the broken block
        Image.new("RGB", (8, 6), (0, 128, 255)).save(
            path, exif=b"Exif\x00\x00II*\x00\xff\xff\xff\xff"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and loading it warns about nothing
        assert load_image(path).shape == (6, 8, 3)


def test_draft_size_decodes_a_big_jpeg_smaller_but_not_below_the_size(tmp_path, odd):
    path = tmp_path / "big.jpg"
    Image.new("RGB", (1600, 1200), (200, 100, 50)).save(path, quality=90)
    small = load_image(path, draft_size=(100, 100))
    assert small.shape[:2] == (150, 200)  # 1/8 scale: the largest reduction keeping >= 100
    assert load_image(path).shape[:2] == (1200, 1600)  # full resolution by default
    assert load_image(odd["photo.png"], draft_size=(8, 8)).shape == (48, 64, 3)  # PNG: no draft


def test_special_files_and_unsupported_formats(tmp_path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this platform")
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(ImageLoadError, match="not a regular file"):
        load_image(fifo)  # opening a FIFO would block forever: the test would hang
    heic = tmp_path / "IMG_0001.HEIC"
    heic.write_bytes(b"\x00\x00\x00\x18ftypheic" + b"\x00" * 64)
    with pytest.raises(ImageLoadError, match="export the photo as JPEG"):
        load_image(heic)


def test_concurrent_loads_leave_warning_filters_intact(odd, hostile):
    from concurrent.futures import ThreadPoolExecutor

    before = list(warnings.filters)
    paths = [
        odd["photo.jpg"],
        odd["exif_rotated.jpg"],
        hostile["bomb_20000.png"],
        odd["gray16.png"],
    ] * 10

    def load(path):
        try:
            return load_image(path).shape
        except ImageLoadError:
            return None

    with ThreadPoolExecutor(4) as pool:
        shapes = list(pool.map(load, paths))
    assert shapes[:4] == [(48, 64, 3), (40, 20), None, (4, 256)] and shapes[4:8] == shapes[:4]
    assert warnings.filters == before


def test_an_image_just_over_the_limit_says_by_how_much(tmp_path):
    # a 50 MP camera's 8688x5792 photo read "50 megapixels, more than the limit of 50"
    path = tmp_path / "camera.png"
    Image.new("L", (1010, 1000)).save(path)
    with pytest.raises(ImageLoadError) as info:
        load_image(path, max_pixels=1_000_000)
    assert "1010x1000 is 1.01 megapixels, more than the limit of 1.00;" in str(info.value)
    Image.new("L", (1100, 1000)).save(path)
    with pytest.raises(ImageLoadError, match=r"is 1\.1 megapixels, more than the limit of 1\.0;"):
        load_image(path, max_pixels=1_000_000)


def test_an_image_beyond_pillows_own_limit_is_refused_in_the_same_words(hostile):
    """400 megapixels (Pillow refuses it itself) reads like our own check, not Pillow's
    "Image size (400000000 pixels) exceeds limit of 178956970 pixels, could be decompression
    bomb DOS attack."."""
    with pytest.raises(ImageLoadError) as info:
        load_image(hostile["bomb_20000.png"])
    assert str(info.value) == (
        "bomb_20000.png: 400 megapixels, more than the limit of 50; refusing to decode it "
        "(it may be a decompression bomb). Scale the image down first."
    )
    with pytest.raises(ImageLoadError, match=r"400 megapixels, more than the limit of 179;"):
        load_image(hostile["bomb_20000.png"], max_pixels=None)
