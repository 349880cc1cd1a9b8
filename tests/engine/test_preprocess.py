"""engine.preprocess: a user's picture -> MNIST's 28x28 white-on-black, centred by mass."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from engine.errors import EngineError, ImageLoadError, ShapeError
from engine.model import lenet5, lenet_article
from engine.preprocess import (
    BOX,
    SIZE,
    classify_images,
    ink_gray,
    prepare_digit,
    prepare_digit_file,
)


def _seven(size=(300, 240), box=(90, 60, 170, 180), ink=0, paper=255, width=12, mode="L"):
    """A '7' drawn as two thick strokes inside ``box`` (x0, y0, x1, y1) of a canvas."""
    img = Image.new(mode, size, paper)
    x0, y0, x1, y1 = box
    ImageDraw.Draw(img).line(
        [(x0, y0), (x1, y0), (x0 + (x1 - x0) // 3, y1)], fill=ink, width=width, joint="curve"
    )
    return np.asarray(img)


def _ink_bbox(a: np.ndarray, level: int = 40) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(a > level)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def _centre_of_mass(a: np.ndarray) -> tuple[float, float]:
    w = a.astype(np.float64)
    ys, xs = np.mgrid[0 : a.shape[0], 0 : a.shape[1]]
    return float((w * ys).sum() / w.sum()), float((w * xs).sum() / w.sum())


def _iou(a: np.ndarray, b: np.ndarray, level: int = 80) -> float:
    ma, mb = a > level, b > level
    return float((ma & mb).sum() / max(1, (ma | mb).sum()))


def test_dark_on_light_becomes_white_on_black():
    d = prepare_digit(_seven())
    assert d.inverted is True
    assert d.image.shape == (SIZE, SIZE) and d.image.dtype == np.uint8
    assert d.image.max() == 255
    # the paper is black: the field's border is (nearly all) background
    border = np.concatenate([d.image[0], d.image[-1], d.image[:, 0], d.image[:, -1]])
    assert (border > 0).mean() < 0.1
    assert d.image[:2, :2].max() == 0 and d.image[:2, -2:].max() == 0
    assert 0.04 < (d.image > 128).mean() < 0.4


def test_white_on_black_is_kept_and_matches_the_inverted_case():
    light = prepare_digit(_seven())
    dark = prepare_digit(_seven(ink=255, paper=0))
    assert dark.inverted is False
    assert _iou(light.image, dark.image) > 0.9


def test_off_centre_ink_is_centred_by_mass_and_fit_in_20x20():
    corner = prepare_digit(_seven(size=(600, 500), box=(20, 15, 110, 140)))
    cy, cx = _centre_of_mass(corner.image)
    assert abs(cy - 14.0) <= 0.75 and abs(cx - 14.0) <= 0.75
    x0, y0, x1, y1 = _ink_bbox(corner.image, level=0)
    assert max(x1 - x0, y1 - y0) in (BOX, BOX + 1)  # anti-aliasing may add a faint row
    # the bbox reported is where the ink is in the original picture
    bx0, by0, bx1, by1 = corner.bbox
    assert bx0 <= 20 and by0 <= 15 and 100 <= bx1 <= 130 and 130 <= by1 <= 160


def test_the_same_digit_anywhere_gives_the_same_input():
    a = prepare_digit(_seven(size=(600, 500), box=(20, 15, 110, 140))).image
    b = prepare_digit(_seven(size=(600, 500), box=(450, 330, 540, 455))).image
    # equal up to the sub-pixel phase of the low-resolution grid
    assert np.abs(a.astype(int) - b.astype(int)).mean() < 8
    assert _iou(a, b) > 0.75


@pytest.mark.parametrize("shape", ["tall", "wide"])
def test_aspect_ratio_is_kept(shape):
    img = np.full((300, 300), 255, np.uint8)
    if shape == "tall":
        img[50:250, 140:160] = 0  # 200 x 20: a '1'
    else:
        img[140:160, 50:250] = 0  # a '-'
    d = prepare_digit(img)
    x0, y0, x1, y1 = _ink_bbox(d.image, level=60)
    long_side, short_side = (y1 - y0, x1 - x0) if shape == "tall" else (x1 - x0, y1 - y0)
    assert long_side == BOX
    assert 1 <= short_side <= 4  # 20 * 20/200 = 2 pixels, plus anti-aliasing


def test_rgba_with_transparent_background_is_ink_on_white():
    seven = _seven()
    rgba = np.zeros((*seven.shape, 4), np.uint8)  # transparent black everywhere
    rgba[..., 3] = 255 - seven  # the strokes are opaque black
    d = prepare_digit(rgba)
    assert d.inverted is True
    assert d.original.min() < 20 and np.median(d.original) == 255  # composited onto white
    assert _iou(d.image, prepare_digit(seven).image) > 0.9


def test_white_strokes_on_transparent_background_use_the_alpha():
    seven = _seven()
    rgba = np.full((*seven.shape, 4), 255, np.uint8)  # white everywhere...
    rgba[..., 3] = 255 - seven  # ...but only the strokes are opaque
    d = prepare_digit(rgba)
    assert _iou(d.image, prepare_digit(seven).image) > 0.9


def test_colour_ink_works():
    seven = _seven()
    rgb = np.stack(
        [
            np.where(seven < 128, 20, 250),
            np.where(seven < 128, 40, 250),
            np.where(seven < 128, 180, 250),
        ],
        axis=-1,
    ).astype(np.uint8)  # blue pen
    assert _iou(prepare_digit(rgb).image, prepare_digit(seven).image) > 0.9


def test_uneven_lighting_is_flattened():
    """A photo of paper: bright on the left, dark in the right corner, grey pencil ink."""
    h, w = 240, 320
    yy, xx = np.mgrid[0:h, 0:w]
    paper = 210 - 110 * (xx / w) - 40 * ((yy / h - 0.5) ** 2 + (xx / w - 0.5) ** 2)
    seven = _seven(size=(w, h), box=(120, 50, 190, 190)).astype(np.float64) / 255
    photo = paper * seven + 60 * (1 - seven)
    noise = np.random.default_rng(0).normal(0, 3, photo.shape)
    d = prepare_digit(np.clip(photo + noise, 0, 255).astype(np.uint8))
    assert d.inverted is True
    ref = prepare_digit(_seven(size=(w, h), box=(120, 50, 190, 190))).image
    assert _iou(d.image, ref) > 0.8
    # no gradient, corner or noise leaks in: away from the strokes the paper is black
    near = np.asarray(Image.fromarray(ref).filter(ImageFilter.MaxFilter(5))) > 0
    assert d.image[~near].max() < 30


def test_a_speck_of_dust_does_not_move_the_crop():
    clean = _seven(size=(400, 400), box=(150, 120, 230, 260))
    dusty = clean.copy()
    dusty[380:382, 10:12] = 0  # a 2x2 speck far away
    a, b = prepare_digit(clean), prepare_digit(dusty)
    assert a.bbox == b.bbox
    np.testing.assert_array_equal(a.image, b.image)


def test_large_images_give_the_same_result_as_small_ones():
    small = _seven(size=(250, 250), box=(80, 60, 160, 190), width=10)
    big = np.asarray(Image.fromarray(small).resize((1000, 1000), Image.Resampling.BICUBIC))
    a, b = prepare_digit(small).image, prepare_digit(big).image
    assert _iou(a, b) > 0.85
    assert np.abs(a.astype(int) - b.astype(int)).mean() < 12


def test_a_small_digit_on_a_big_canvas_is_taken_at_full_resolution():
    """A 60 px digit on a 1000x700 canvas is only 15 px in the low-resolution copy."""
    big = _seven(size=(1000, 700), box=(700, 500, 740, 560), width=4)
    ref = _seven(size=(250, 250), box=(80, 60, 160, 180), width=8)
    assert _iou(prepare_digit(big).image, prepare_digit(ref).image) > 0.6


def test_a_long_thin_picture_does_not_collapse():
    """A '1' on a 1000x12 strip: reducing the long side to 256 would leave 3 pixels across."""
    strip = np.full((1000, 12), 255, np.uint8)
    strip[100:900, 5:7] = 0
    d = prepare_digit(strip)
    assert d.bbox is not None and d.bbox[0] >= 3 and d.bbox[2] <= 9
    x0, y0, x1, y1 = _ink_bbox(d.image, level=60)
    assert y1 - y0 == BOX and x1 - x0 <= 3


@pytest.mark.parametrize(
    "image",
    [
        np.full((100, 80), 255, np.uint8),
        np.zeros((50, 50), np.uint8),
        np.full((300, 300, 4), 0, np.uint8),  # fully transparent
        np.full((64, 64), 128, np.uint8)
        + np.random.default_rng(0).integers(0, 6, (64, 64)).astype(np.uint8),  # faint grain only
    ],
    ids=["white", "black", "transparent", "grain"],
)
def test_blank_images_say_no_ink_found(image):
    with pytest.raises(EngineError, match="no ink found"):
        prepare_digit(image)


def test_a_busy_photo_is_told_apart_from_a_blank_image():
    """A photo of a scene on a digit model: its texture is as strong as any stroke, so no ink is
    found, and the message says the picture is busy rather than blank."""
    rng = np.random.default_rng(1)
    scene = np.asarray(
        Image.fromarray(rng.integers(0, 256, (60, 80), dtype=np.uint8)).resize((240, 320))
    )
    with pytest.raises(EngineError, match="no ink found: the picture is busy all over"):
        prepare_digit(scene)
    with pytest.raises(EngineError, match="blank, uniform or only faint noise"):
        prepare_digit(np.full((64, 64), 200, np.uint8))


def test_auto_invert_off_shows_why_it_matters():
    d = prepare_digit(_seven(), auto_invert=False)
    assert d.inverted is False
    assert d.image.mean() > 80  # the white paper is taken as ink: a bright square


def test_center_off_shows_why_it_matters():
    picture = _seven(size=(1000, 700), box=(700, 500, 780, 620), width=10)
    on = prepare_digit(picture)
    off = prepare_digit(picture, center=False)
    x0, y0, x1, y1 = _ink_bbox(off.image, level=10)
    assert max(x1 - x0, y1 - y0) < 6  # a speck in the corner
    assert _centre_of_mass(off.image)[1] > 17
    assert off.bbox == on.bbox


def test_ink_gray_accepts_common_layouts_and_refuses_others():
    g = np.arange(12, dtype=np.uint8).reshape(3, 4)
    np.testing.assert_array_equal(ink_gray(g[..., None]), g)
    np.testing.assert_array_equal(ink_gray(np.stack([g, g, g], -1)), g)
    assert ink_gray(np.ones((3, 4), bool)).max() == 255
    with pytest.raises(ShapeError, match="uint8"):
        ink_gray(np.zeros((3, 4), np.float32))
    with pytest.raises(ShapeError, match="shape"):
        ink_gray(np.zeros((3, 4, 2), np.uint8))
    with pytest.raises(ShapeError, match="empty"):
        ink_gray(np.zeros((0, 4), np.uint8))


def test_prepare_digit_file_reads_16_bit_and_palette_files(tmp_path):
    seven = _seven()
    Image.fromarray(seven).save(tmp_path / "eight_bit.png")
    Image.fromarray(seven.astype(np.uint16) * 257).save(tmp_path / "sixteen.png")
    Image.fromarray(seven).convert("P").save(tmp_path / "palette.gif")
    ref = prepare_digit_file(tmp_path / "eight_bit.png").image
    for name in ("sixteen.png", "palette.gif"):
        np.testing.assert_array_equal(prepare_digit_file(tmp_path / name).image, ref)


def test_prepare_digit_file_errors_name_the_file(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageLoadError, match=r"empty\.png"):
        prepare_digit_file(tmp_path / "empty.png")
    Image.new("L", (40, 40), 255).save(tmp_path / "blank.png")
    with pytest.raises(EngineError, match=r"blank\.png: no ink found"):
        prepare_digit_file(tmp_path / "blank.png")


def test_classify_images_gives_probabilities_for_28_and_32_pixel_models():
    digits = [prepare_digit(_seven()).image, prepare_digit(_seven(ink=255, paper=0)).image]
    for model in (lenet5(np.random.default_rng(0)), lenet_article(np.random.default_rng(0))):
        p = classify_images(model, digits)
        assert p.shape == (2, 10)
        np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    with pytest.raises(ShapeError):
        classify_images(lenet5(), np.zeros((2, 28, 28), np.float32))


def _on_a_desk(sheet: np.ndarray, desk: int = 70, margin: tuple[int, int] = (90, 60)):
    """A phone photo of ``sheet`` (gray) lying on a darker desk, slightly turned: the desk
    shows all round, wider at the top and left."""
    h, w = sheet.shape
    mx, my = margin
    photo = Image.new("L", (w + mx + 30, h + my + 20), desk)
    photo.paste(Image.fromarray(sheet), (mx, my))
    photo = photo.rotate(4, resample=Image.Resampling.BICUBIC, fillcolor=desk)
    noise = np.random.default_rng(3).normal(0, 4, (photo.height, photo.width))
    return np.clip(np.asarray(photo, np.float64) + noise, 0, 255).astype(np.uint8)


def test_a_sheet_on_a_darker_desk_is_read_as_paper():
    """The desk around the sheet once made the whole sheet "ink" (no ink found, or a blob)."""
    from engine.paper import fill_surround

    h, w = 300, 260
    yy = np.mgrid[0:h, 0:w][0]
    paper = 235 - 30 * (yy / h)  # a little darker towards the bottom
    seven = _seven(size=(w, h), box=(90, 80, 170, 220)).astype(np.float64) / 255
    sheet = np.clip(paper * seven + 40 * (1 - seven), 0, 255).astype(np.uint8)
    photo = _on_a_desk(sheet)
    d = prepare_digit(photo)
    assert d.inverted is True
    assert d.original is photo or np.array_equal(d.original, photo)  # shown as it is
    ref = prepare_digit(_on_a_desk(sheet, desk=235)).image  # the same photo, a white desk
    assert _iou(d.image, ref) > 0.9
    # the desk became paper: the same level as the sheet beside it, nothing darker
    filled = fill_surround(photo)
    assert filled[:20].min() > 180 and filled[:, :20].min() > 180


@pytest.mark.parametrize(
    "picture",
    [
        "white_on_black",
        "touching_the_edge",
        "vignetting",
    ],
)
def test_pictures_without_a_desk_are_left_alone(picture):
    """A white-on-black drawing's background, ink running off the edge and dark corners of a
    photo are not a desk."""
    from engine.paper import fill_surround

    if picture == "white_on_black":
        gray = _seven(size=(280, 280), box=(40, 30, 250, 260), ink=255, paper=0, width=48)
    elif picture == "touching_the_edge":
        gray = _seven(size=(240, 240), box=(0, 0, 200, 239), width=30)
    else:
        h, w = 240, 320
        yy, xx = np.mgrid[0:h, 0:w]
        shade = 230 - 160 * ((yy / h - 0.5) ** 2 + (xx / w - 0.5) ** 2) * 2
        seven = _seven(size=(w, h), box=(40, 60, 120, 220)).astype(np.float64) / 255
        gray = np.clip(shade * seven + 50 * (1 - seven), 0, 255).astype(np.uint8)
        assert gray[-1, 0] < 150  # the corners are darker than Otsu's split
    assert fill_surround(gray) is gray


def test_a_bold_white_digit_cropped_tight_is_no_sheet_on_a_desk():
    """Its black corners touch the edge and its hole lies apart: a "sheet" in a dark frame,
    but the hole is a blob, not strokes of ink, so nothing is painted over."""
    from engine.paper import fill_surround

    img = Image.new("L", (200, 240), 0)
    draw = ImageDraw.Draw(img)
    draw.ellipse((4, 4, 196, 236), fill=255)
    draw.ellipse((80, 70, 120, 170), fill=0)  # a bold 0
    gray = np.asarray(img)
    assert fill_surround(gray) is gray


def test_a_digit_cropped_tight_with_its_strokes_touching_every_edge():
    """A user crops the photo to the digit: half the picture or more is ink. The grain was
    measured over all pixels (then the ink's contrast) and the answer was "no ink found"
    for every one of these. (A "1" cropped to a bar of ink shows no paper: still refused.)"""
    from engine.datasets import load_dataset

    mnist = load_dataset("mnist", limit=200)
    rng = np.random.default_rng(5)
    cases = same = 0
    for digit in mnist.test_images[:200]:
        big = Image.fromarray(digit).resize((280, 280), Image.Resampling.BICUBIC)
        bold = np.asarray(big.filter(ImageFilter.MaxFilter(9)))
        ys, xs = np.nonzero(bold > 60)
        crop = 255 - bold[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].astype(np.float64)
        if (crop < 128).mean() < 0.5:
            continue  # the cases of half ink or more
        photo = np.clip(crop * 0.85 + 20 + rng.normal(0, 3, crop.shape), 0, 255).astype(np.uint8)
        margin = np.pad(photo, 40, constant_values=int(np.median(photo[photo > 128])))
        cases += 1
        try:
            tight = prepare_digit(photo)
        except EngineError:
            continue
        same += tight.inverted and _iou(tight.image, prepare_digit(margin).image) > 0.8
    assert cases >= 30
    assert same >= 0.6 * cases, f"{same} of {cases}"  # none before


@pytest.mark.parametrize("paper", ["ruled", "squared"])
def test_pencil_on_ruled_or_squared_paper_loses_the_lines(paper):
    """Light pencil lines of a notebook are nearly as dark as a pencil digit: they were taken
    for ink, and the digit became a speck in a picture of lines."""
    h, w = 400, 400
    seven = _seven(size=(w, h), box=(140, 110, 260, 290), width=10).astype(np.float64) / 255
    page = np.full((h, w), 232.0)
    for k in range(18, h, 36):
        page[k : k + 2] = 190  # the rules, 36 px apart
        if paper == "squared":
            page[:, k : k + 2] = 190
    photo = np.minimum(page, 232 * seven + 150 * (1 - seven))  # grey pencil over the rules
    photo += np.random.default_rng(6).normal(0, 3, photo.shape)
    photo = np.asarray(
        Image.fromarray(np.clip(photo, 0, 255).astype(np.uint8)).filter(
            ImageFilter.GaussianBlur(0.8)
        )
    )
    d = prepare_digit(photo)
    ref = prepare_digit(_seven(size=(w, h), box=(140, 110, 260, 290), width=10))
    assert d.bbox is not None and d.bbox[2] - d.bbox[0] < 200  # the digit, not the page
    assert _iou(d.image, ref.image) > 0.9
