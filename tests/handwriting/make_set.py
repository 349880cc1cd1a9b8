"""Make the non-MNIST digit test set in this folder: ``python tests/handwriting/make_set.py``.

Real handwriting the shipped model has never seen, of the kinds a user drags in:

* ``font``: typed digits, every TrueType font installed (``fc-list``) plus Pillow's default
  font, black on white at any size and place on a large canvas;
* ``drawn``: digits drawn as pen strokes (one or more handwriting styles per digit, jittered,
  slanted, any pen width), dark or coloured ink on white, anywhere on a 300x300..1000x700 canvas;
* ``transparent``: drawn digits on a fully transparent RGBA canvas (PNG);
* ``inverted``: white ink on black (drawn or typed);
* ``rotated``: drawn or typed, rotated by 8..20 degrees either way;
* ``photo``: "phone photos" of a digit on paper: grey, tinted paper under a lighting gradient,
  pencil-grey ink, blur, sensor noise, JPEG quality 40..70.

Labels go to ``labels.csv`` (file, label, category). The set is generated once with a fixed
seed; it is not tuned to any model. Run it again to reproduce the files exactly (on a machine
with the same fonts).
"""

from __future__ import annotations

import csv
import io
import math
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

HERE = Path(__file__).resolve().parent
SEED = 20261126
PER_DIGIT = {"font": 6, "drawn": 6, "transparent": 3, "inverted": 3, "rotated": 4, "photo": 8}
CANVASES = [(400, 400), (1000, 700), (640, 480), (300, 300), (800, 600), (700, 1000)]
SS = 4  # supersampling of drawn strokes (Pillow's lines are not anti-aliased)


# ---------------------------------------------------------------------------------------------
# Stroke templates: each digit has styles; a style is a list of strokes; a stroke is points
# (x, y) in a unit box, y downwards.


def _arc(cx, cy, rx, ry, a0, a1, n=40):
    t = np.deg2rad(np.linspace(a0, a1, n))
    return [(cx + rx * math.cos(v), cy + ry * math.sin(v)) for v in t]


def _eight():
    t = np.linspace(0.0, 2 * math.pi, 90)
    return [(0.5 + 0.32 * math.sin(2 * v) * 0.9, 0.5 - 0.45 * math.cos(v)) for v in t]


STYLES: dict[int, list[list[list[tuple[float, float]]]]] = {
    0: [
        [_arc(0.5, 0.5, 0.34, 0.46, -95, 275)],
        [_arc(0.5, 0.5, 0.3, 0.46, -80, 290)],
    ],
    1: [
        [[(0.5, 0.04), (0.48, 0.96)]],
        [[(0.28, 0.28), (0.56, 0.04), (0.54, 0.96)]],
        [[(0.3, 0.24), (0.55, 0.04), (0.55, 0.95)], [(0.3, 0.96), (0.8, 0.96)]],
    ],
    2: [
        [[*_arc(0.5, 0.3, 0.32, 0.26, 200, 380), (0.12, 0.95), (0.9, 0.95)]],
        [[*_arc(0.48, 0.28, 0.3, 0.24, 190, 400), (0.3, 0.75), (0.12, 0.94), (0.9, 0.92)]],
    ],
    3: [
        [_arc(0.48, 0.27, 0.3, 0.22, 205, 450) + _arc(0.48, 0.72, 0.34, 0.23, 270, 515)],
        [[(0.15, 0.05), (0.82, 0.05), (0.42, 0.42), *_arc(0.48, 0.7, 0.34, 0.26, 280, 510)]],
    ],
    4: [
        [[(0.62, 0.04), (0.12, 0.66), (0.9, 0.66)], [(0.66, 0.3), (0.66, 0.97)]],
        [[(0.2, 0.04), (0.14, 0.6), (0.86, 0.6)], [(0.7, 0.08), (0.7, 0.97)]],
    ],
    5: [
        [[(0.82, 0.05), (0.26, 0.05), (0.22, 0.45), *_arc(0.48, 0.68, 0.33, 0.27, 230, 500)]],
        [
            [(0.24, 0.05), (0.2, 0.45), *_arc(0.48, 0.68, 0.33, 0.27, 230, 500)],
            [(0.24, 0.05), (0.84, 0.06)],
        ],
    ],
    6: [
        [
            [
                (0.74, 0.04),
                (0.5, 0.14),
                (0.32, 0.32),
                (0.22, 0.55),
                *_arc(0.5, 0.7, 0.28, 0.25, 180, 530),
            ]
        ],
        [_arc(0.9, 0.62, 0.66, 0.58, 250, 180) + _arc(0.52, 0.72, 0.28, 0.23, 180, 540)],
    ],
    7: [
        [[(0.1, 0.06), (0.88, 0.06), (0.38, 0.96)]],
        [[(0.1, 0.12), (0.88, 0.06), (0.42, 0.96)], [(0.32, 0.5), (0.78, 0.48)]],
        [[(0.12, 0.2), (0.14, 0.06), (0.88, 0.06), (0.6, 0.5), (0.5, 0.96)]],
    ],
    8: [
        [_eight()],
        [_arc(0.5, 0.26, 0.26, 0.22, 0, 362), _arc(0.5, 0.72, 0.32, 0.24, 0, 362)],
    ],
    9: [
        [[*_arc(0.48, 0.3, 0.3, 0.25, 0, 362), (0.78, 0.3), (0.72, 0.96)]],
        [[*_arc(0.5, 0.28, 0.3, 0.24, 20, 382), (0.78, 0.42), (0.62, 0.75), (0.4, 0.96)]],
    ],
}


def _drawn_strokes(digit: int, rng: np.random.Generator) -> list[np.ndarray]:
    """One style of the digit, jittered, slanted, squeezed: strokes as (k, 2) arrays."""
    style = STYLES[digit][int(rng.integers(len(STYLES[digit])))]
    slant = rng.uniform(-0.3, 0.3)
    width = rng.uniform(0.55, 0.95)
    strokes = []
    # A smooth wobble over the whole digit plus a little per-point jitter: a hand, not a plotter.
    wob = rng.normal(0, 0.025, (2, 3))
    for stroke in style:
        p = np.asarray(stroke, dtype=np.float64)
        p = p + rng.normal(0, 0.008, p.shape)
        for k in range(3):
            p[:, 0] += wob[0, k] * np.sin((k + 1) * math.pi * p[:, 1])
            p[:, 1] += wob[1, k] * np.sin((k + 1) * math.pi * p[:, 0])
        p[:, 0] = 0.5 + (p[:, 0] - 0.5) * width + slant * (0.5 - p[:, 1])
        strokes.append(p)
    return strokes


def _stroke_patch(digit: int, height: int, rng: np.random.Generator) -> Image.Image:
    """An 'L' patch, ink = 255 on 0, of a drawn digit about ``height`` pixels tall."""
    pen = max(1.0, height * rng.uniform(0.03, 0.15))
    strokes = _drawn_strokes(digit, rng)
    pad = pen + 2
    allp = np.concatenate(strokes)
    lo, hi = allp.min(axis=0), allp.max(axis=0)
    w = int((hi[0] - lo[0]) * height + 2 * pad) + 1
    h = int((hi[1] - lo[1]) * height + 2 * pad) + 1
    img = Image.new("L", (w * SS, h * SS), 0)
    draw = ImageDraw.Draw(img)
    r = pen * SS / 2
    for s in strokes:
        pts = [
            ((x - lo[0]) * height * SS + pad * SS, (y - lo[1]) * height * SS + pad * SS)
            for x, y in s
        ]
        draw.line(pts, fill=255, width=max(1, round(pen * SS)), joint="curve")
        for x, y in (pts[0], pts[-1]):
            draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
    return img.reduce(SS)


# ---------------------------------------------------------------------------------------------
# Typed digits


def _font_paths() -> list[str]:
    try:
        out = subprocess.run(
            ["fc-list", ":fontformat=TrueType", "file"], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        out = ""
    paths = sorted({line.split(":")[0].strip() for line in out.splitlines() if line.strip()})
    return [p for p in paths if p.lower().endswith((".ttf", ".otf"))]


def _font_patch(digit: int, height: int, font: str | None, rng: np.random.Generator) -> Image.Image:
    """An 'L' patch, ink = 255 on 0, of a typed digit, tightly cropped."""
    size = max(8, height)
    f = ImageFont.load_default(size=size) if font is None else ImageFont.truetype(font, size=size)
    img = Image.new("L", (size * 2, size * 2), 0)
    ImageDraw.Draw(img).text((size, size), str(digit), fill=255, font=f, anchor="mm")
    box = img.getbbox() or (0, 0, 1, 1)
    pad = max(2, size // 10)
    return img.crop((box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad))


# ---------------------------------------------------------------------------------------------
# Composition


def _place(canvas_size, patch: Image.Image, rng) -> tuple[int, int]:
    cw, ch = canvas_size
    pw, ph = patch.size
    return int(rng.integers(0, max(1, cw - pw))), int(rng.integers(0, max(1, ch - ph)))


def _fit_patch(patch: Image.Image, canvas_size) -> Image.Image:
    cw, ch = canvas_size
    pw, ph = patch.size
    s = min(1.0, 0.95 * cw / pw, 0.95 * ch / ph)
    if s < 1.0:
        patch = patch.resize((max(1, int(pw * s)), max(1, int(ph * s))), Image.Resampling.LANCZOS)
    return patch


def _digit_patch(digit, canvas_size, rng, fonts, typed: bool, rel=(0.15, 0.7)):
    height = int(min(canvas_size) * rng.uniform(*rel))
    if typed:
        font = fonts[int(rng.integers(len(fonts)))]
        patch = _font_patch(digit, height, font, rng)
        name = "default" if font is None else Path(font).stem
    else:
        patch = _stroke_patch(digit, height, rng)
        name = "pen"
    return _fit_patch(patch, canvas_size), name


def _ink_colour(rng) -> tuple[int, int, int]:
    choice = rng.random()
    if choice < 0.6:
        g = int(rng.integers(0, 50))
        return g, g, g
    if choice < 0.85:
        return int(rng.integers(0, 40)), int(rng.integers(20, 70)), int(rng.integers(120, 200))
    return int(rng.integers(140, 200)), int(rng.integers(0, 40)), int(rng.integers(0, 40))


def _on_paper(patch, canvas_size, ink, paper, rng) -> Image.Image:
    canvas = Image.new("RGB", canvas_size, paper)
    solid = Image.new("RGB", patch.size, ink)
    canvas.paste(solid, _place(canvas_size, patch, rng), mask=patch)
    return canvas


def make_font(digit, rng, fonts):
    size = CANVASES[int(rng.integers(len(CANVASES)))]
    patch, name = _digit_patch(digit, size, rng, fonts, typed=True)
    return _on_paper(patch, size, (0, 0, 0), (255, 255, 255), rng), name, "png"


def make_drawn(digit, rng, fonts):
    size = CANVASES[int(rng.integers(len(CANVASES)))]
    patch, name = _digit_patch(digit, size, rng, fonts, typed=False)
    return _on_paper(patch, size, _ink_colour(rng), (255, 255, 255), rng), name, "png"


def make_transparent(digit, rng, fonts):
    size = CANVASES[int(rng.integers(len(CANVASES)))]
    patch, name = _digit_patch(digit, size, rng, fonts, typed=False)
    canvas = Image.new("RGBA", size, (0, 0, 0, 0))
    ink = Image.new("RGBA", patch.size, (*_ink_colour(rng), 255))
    layer = Image.new("RGBA", size, (0, 0, 0, 0))
    layer.paste(ink, _place(size, patch, rng), mask=patch)
    return Image.alpha_composite(canvas, layer), name, "png"


def make_inverted(digit, rng, fonts):
    size = CANVASES[int(rng.integers(len(CANVASES)))]
    patch, name = _digit_patch(digit, size, rng, fonts, typed=rng.random() < 0.4)
    g = int(rng.integers(200, 256))
    return _on_paper(patch, size, (g, g, g), (0, 0, 0), rng), name, "png"


def make_rotated(digit, rng, fonts):
    size = CANVASES[int(rng.integers(len(CANVASES)))]
    patch, name = _digit_patch(digit, size, rng, fonts, typed=rng.random() < 0.4)
    angle = rng.uniform(8, 20) * (1 if rng.random() < 0.5 else -1)
    patch = _fit_patch(patch.rotate(angle, Image.Resampling.BICUBIC, expand=True), size)
    return _on_paper(patch, size, (0, 0, 0), (255, 255, 255), rng), f"{name}-rot{angle:+.0f}", "png"


def make_photo(digit, rng, fonts):
    """A phone-style photo: tinted grey paper, lighting gradient, pencil ink, blur, noise, JPEG."""
    w, h = [(240, 180), (320, 240), (180, 240), (260, 260)][int(rng.integers(4))]
    typed = rng.random() < 0.3
    patch, name = _digit_patch(digit, (w, h), rng, fonts, typed=typed, rel=(0.3, 0.75))
    if rng.random() < 0.4:
        patch = _fit_patch(
            patch.rotate(rng.uniform(-8, 8), Image.Resampling.BICUBIC, expand=True), (w, h)
        )
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    theta = rng.uniform(0, 2 * math.pi)
    ramp = np.cos(theta) * (xx / w - 0.5) + np.sin(theta) * (yy / h - 0.5)
    base = rng.uniform(150, 215)
    amp = rng.uniform(30, 90)
    vignette = ((xx / w - 0.5) ** 2 + (yy / h - 0.5) ** 2) * rng.uniform(0, 80)
    paper = base + amp * ramp - vignette
    tint = np.array([1.0, rng.uniform(0.95, 1.0), rng.uniform(0.85, 1.0)], np.float32)
    ink_level = rng.uniform(15, 80)
    x0, y0 = _place((w, h), patch, rng)
    alpha = np.zeros((h, w), np.float32)
    a = np.asarray(patch, np.float32) / 255.0 * rng.uniform(0.75, 1.0)
    alpha[y0 : y0 + a.shape[0], x0 : x0 + a.shape[1]] = a[: h - y0, : w - x0]
    gray = paper * (1 - alpha) + ink_level * alpha
    rgb = gray[:, :, None] * tint[None, None]
    img = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")
    img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.4, 1.5)))
    noisy = np.asarray(img, np.float32) + rng.normal(0, rng.uniform(2, 7), (h, w, 1))
    img = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB")
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=int(rng.integers(40, 71)))
    return buf.getvalue(), name, "jpg"


MAKERS = {
    "font": make_font,
    "drawn": make_drawn,
    "transparent": make_transparent,
    "inverted": make_inverted,
    "rotated": make_rotated,
    "photo": make_photo,
}


def main() -> None:
    rng = np.random.default_rng(SEED)
    fonts: list[str | None] = [*_font_paths(), None]
    out = HERE / "images"
    out.mkdir(exist_ok=True)
    for old in out.iterdir():
        old.unlink()
    rows = []
    for category, count in PER_DIGIT.items():
        for digit in range(10):
            for k in range(count):
                img, name, ext = MAKERS[category](digit, rng, fonts)
                fname = f"{category}-{digit}-{k}.{ext}"
                if isinstance(img, bytes):  # already encoded (JPEG)
                    (out / fname).write_bytes(img)
                else:
                    _compact(img).save(out / fname, optimize=True)
                rows.append((fname, digit, category, name))
    with open(HERE / "labels.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "label", "category", "source"])
        writer.writerows(rows)
    total = sum(p.stat().st_size for p in out.iterdir())
    print(f"{len(rows)} images, {total / 1024:.0f} KB in {out}")


def _compact(img: Image.Image) -> Image.Image:
    """Keep the folder small: gray pictures as 8-bit gray PNG, colour ones as a 32-colour
    palette (with transparency for RGBA), as paint programs often save them."""
    if img.mode == "RGB":
        a = np.asarray(img)
        if np.array_equal(a[:, :, 0], a[:, :, 1]) and np.array_equal(a[:, :, 1], a[:, :, 2]):
            return img.convert("L")
        return img.quantize(32, method=Image.Quantize.MEDIANCUT)
    if img.mode == "RGBA":
        return img.quantize(32, method=Image.Quantize.FASTOCTREE)
    return img


if __name__ == "__main__":
    main()
