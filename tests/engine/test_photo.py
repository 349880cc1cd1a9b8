"""THE photo preparation: orientation, alpha on white, colour or gray, shorter side + crop."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageOps

from engine.errors import ShapeError
from engine.imageio import load_image
from engine.model import InputSpec
from engine.photo import crop_box, prepare_photo, to_display

RED, BLUE, GREEN = (220, 20, 20), (20, 20, 220), (20, 200, 20)


def _bands(width: int, height: int) -> np.ndarray:
    """Left quarter red, right quarter green, the middle half blue."""
    a = np.zeros((height, width, 3), np.uint8)
    a[:, :] = BLUE
    a[:, : width // 4] = RED
    a[:, width - width // 4 :] = GREEN
    return a


def test_a_wide_photo_keeps_its_centre_resized_by_the_shorter_side():
    out = prepare_photo(_bands(80, 40), InputSpec((3, 16, 16)))
    assert out.shape == (3, 16, 16) and out.dtype == np.uint8
    # the centred square is x 20..60: blue (the red and green quarters are cropped away; the
    # bicubic filter reaches a little past the crop's edge, as Pillow's ImageOps.fit does)
    assert np.abs(out.transpose(1, 2, 0)[:, 2:-2].astype(int) - BLUE).max() <= 2


def test_a_tall_photo_and_a_non_square_input():
    tall = np.zeros((90, 30, 3), np.uint8)
    tall[:30], tall[30:60], tall[60:] = RED, BLUE, GREEN
    out = prepare_photo(tall, (3, 10, 10))  # the middle third only
    assert np.abs(out.transpose(1, 2, 0)[2:-2].astype(int) - BLUE).max() <= 2
    wide_input = prepare_photo(_bands(80, 40), (3, 8, 16))  # the whole picture fits 2:1
    assert wide_input.shape == (3, 8, 16)
    assert tuple(int(v) for v in wide_input[:, 4, 0]) == pytest.approx(RED, abs=3)
    assert tuple(int(v) for v in wide_input[:, 4, 15]) == pytest.approx(GREEN, abs=3)
    assert crop_box(80, 40, 16, 16) == (20.0, 0.0, 60.0, 40.0)


def test_every_aspect_gives_a_box_inside_the_picture():
    rng = np.random.default_rng(5)
    for _ in range(300):
        w, h = (int(v) for v in rng.integers(1, 400, 2))
        out_h, out_w = (int(v) for v in rng.integers(1, 64, 2))
        x0, y0, x1, y1 = crop_box(w, h, out_h, out_w)
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
        assert abs((x1 - x0) / (y1 - y0) - out_w / out_h) < 1e-6 * max(w, h)
    odd = np.zeros((107, 160, 3), np.uint8)  # 160x107 to 28x28 made a box offset of -7e-15
    assert prepare_photo(odd, (3, 28, 28)).shape == (3, 28, 28)


def test_gray_models_get_luma_and_transparency_is_white_paper():
    rgba = np.zeros((20, 20, 4), np.uint8)  # fully transparent
    out = prepare_photo(rgba, InputSpec((1, 10, 10)))
    assert out.shape == (1, 10, 10) and (out == 255).all()
    colour = prepare_photo(rgba, InputSpec((3, 10, 10)))
    assert (colour == 255).all()
    red = np.full((12, 12, 3), RED, np.uint8)
    assert int(prepare_photo(red, (1, 4, 4))[0, 0, 0]) == round(
        0.299 * 220 + 0.587 * 20 + 0.114 * 20
    )
    gray = np.full((12, 12), 77, np.uint8)
    assert (prepare_photo(gray, (3, 4, 4)) == 77).all()  # gray to RGB: three equal channels


def test_exif_orientation_is_applied_for_pillow_images_and_files(tmp_path):
    upright = _bands(40, 20)  # red left, green right
    stored = Image.fromarray(np.rot90(upright, k=1).copy())  # stored turned left: 20 x 40
    exif = stored.getexif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display"
    path = tmp_path / "phone.jpg"
    stored.save(path, exif=exif, quality=98)
    spec = InputSpec((3, 8, 16))
    from_file = prepare_photo(load_image(path), spec)
    with Image.open(path) as pil:
        from_pil = prepare_photo(pil, spec)
    for out in (from_file, from_pil):
        assert tuple(int(v) for v in out[:, 4, 0]) == pytest.approx(RED, abs=12)
        assert tuple(int(v) for v in out[:, 4, 15]) == pytest.approx(GREEN, abs=12)
    assert np.abs(from_file.astype(int) - from_pil).max() <= 1


def test_a_big_photo_is_reduced_first_yet_matches_the_exact_resize():
    yy, xx = np.mgrid[0:900, 0:1200]
    big = np.stack([xx * 255 // 1200, yy * 255 // 900, (xx + yy) * 255 // 2100], axis=2)
    big = big.astype(np.uint8)
    out = prepare_photo(big, (3, 30, 30))
    exact = ImageOps.fit(Image.fromarray(big), (30, 30), method=Image.Resampling.BICUBIC)
    diff = np.abs(out.transpose(1, 2, 0).astype(int) - np.asarray(exact))
    assert diff.max() <= 2


def test_display_and_refusals():
    out = prepare_photo(_bands(8, 8), (3, 4, 4))
    assert to_display(out).shape == (4, 4, 3)
    assert to_display(prepare_photo(_bands(8, 8), (1, 4, 4))).shape == (4, 4)
    with pytest.raises(ShapeError):
        prepare_photo(np.zeros((0, 5, 3), np.uint8), (3, 4, 4))
    with pytest.raises(ShapeError):
        prepare_photo(np.zeros((5, 5), np.float32), (3, 4, 4))
    with pytest.raises(ShapeError):
        prepare_photo(_bands(8, 8), (2, 4, 4))


def test_the_module_embeds_with_image_io_only():
    """The PyTorch export embeds this module with every engine module it imports (each may
    import only the standard library, numpy and Pillow): image I/O and the errors, no more."""
    from engine.export_torch import engine_sources

    assert set(engine_sources(("engine.photo",))) == {
        "engine.photo",
        "engine.imageio",
        "engine.errors",
        "engine.atomic",
    }
