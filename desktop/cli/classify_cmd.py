"""``convscope classify MODEL IMAGE...``: what each image shows, with every class's probability.

The model decides how an image is prepared (:func:`engine.inference.preparation_for`): a digit
model (classes 0-9, one channel) gets MNIST-style digit preparation (:mod:`engine.preprocess`:
polarity, lighting, crop to the ink, 20x20 box, centre of mass); every other model (a photo
model such as the bundled 'photos': bird, cat, dog, ship) gets photo preparation
(:mod:`engine.photo`: upright, alpha on white, RGB or gray, shorter side resized and centre
crop to the input). ``--preprocess`` forces one. All images go through the network in one
batch; a folder argument classifies every image file directly inside it, sorted by name.

Exit status: 0 every image classified; 1 some images could not be read or hold no digit (the
others are still reported; each failure is one line on stderr); 2 nothing classified (bad
model, no images at all, or every image failed).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from desktop.cli import CliError
from desktop.cli.common import (
    EXIT_ALL_FAILED,
    EXIT_SOME_FAILED,
    add_model_argument,
    expand_images,
    json_text,
    resolve_model_path,
    safe_print,
)

LISTED = 10  # classes on a result's line; a model of more lists its most probable ones

HELP = (
    "classify photos or handwritten digits in image files (or folders of them) with a saved model"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        f"{HELP}. With a digit model (classes 0-9) each image is prepared like MNIST (dark ink "
        "on light paper is inverted, the digit is cropped, fit into 20x20 and centred by its "
        "centre of mass); with a photo model (e.g. 'photos': bird, cat, dog, ship) the photo "
        "is turned upright, its shorter side resized to the model's input and the centre "
        "cropped."
    )
    parser.epilog = (
        "Examples: convscope classify shipped digit.png; convscope classify photos boat.jpg "
        "pets/cat/. Exit status: 0 all classified, 1 some files failed (reported on stderr), "
        "2 nothing classified."
    )
    add_model_argument(parser)
    parser.add_argument(
        "images",
        metavar="IMAGE",
        nargs="+",
        help="image files (PNG, JPEG, BMP, GIF, TIFF, WebP, ...) or folders of them",
    )
    parser.add_argument(
        "--no-invert",
        action="store_true",
        help="digits: do not detect dark-on-light images: take every image as white ink on black",
    )
    parser.add_argument(
        "--no-center",
        action="store_true",
        help="digits: do not crop to the digit and centre it: scale the whole picture to 28x28",
    )
    parser.add_argument(
        "--preprocess",
        choices=("auto", "digit", "photo", "plain"),
        default="auto",
        help="'digit': MNIST-style digit preparation (above); 'photo' (or 'plain'): the photo "
        "preparation (upright, shorter side resized, centre crop); 'auto' (default): 'digit' "
        "for a model whose classes are the digits 0-9, else 'photo'",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help='print a JSON list of {"file", "prediction", "classes", "probabilities", ...}',
    )


def run(args: argparse.Namespace) -> int:
    from engine.inference import classify_files, preparation_for
    from engine.modelfile import load_model

    model = load_model(resolve_model_path(args.model))
    files, problems = expand_images(args.images)
    kind = {"auto": None, "plain": "photo"}.get(args.preprocess, args.preprocess)
    kind = kind or preparation_for(model)
    results = classify_files(
        model, files, kind=kind, auto_invert=not args.no_invert, center=not args.no_center
    )
    problems += [(r.file, r.error) for r in results if r.error]
    classes = [str(c) for c in model.classes]
    for where, problem in problems:
        safe_print(f"convscope classify: {where}: {problem}", file=sys.stderr)
    classified = [r for r in results if not r.error]
    if args.json:
        safe_print(json_text([_to_json(r, classes, kind) for r in results]))
    else:
        for r in classified:
            safe_print(_format_line(r, classes))
    if not classified:
        if not files and not problems:
            raise CliError("no images given")
        return EXIT_ALL_FAILED
    return EXIT_SOME_FAILED if problems else 0


def _to_json(result: Any, classes: list[str], kind: str) -> dict[str, Any]:
    if result.error:
        return {
            "file": result.file,
            "error": result.error,
            "prediction": None,
            "classes": classes,
            "probabilities": None,
        }
    doc: dict[str, Any] = {
        "file": result.file,
        "prediction": result.prediction,
        "confidence": result.confidence,
        "classes": classes,
        "probabilities": [round(v, 6) for v in result.probabilities],
    }
    if kind == "digit":
        doc.update(inverted=result.inverted, bbox=list(result.bbox) if result.bbox else None)
    return doc


def _format_line(result: Any, classes: list[str]) -> str:
    """``digit.png: 7 (98.2%)   0 0.0%  1 0.1% ...``: every class in order; with more than
    LISTED classes, the LISTED most probable, most probable first (``--json`` has them all)."""
    from engine.inference import most_probable

    shown: list[int] = list(range(len(classes)))
    if len(classes) > LISTED:
        shown = most_probable(result.probabilities, LISTED)
    probs = "  ".join(f"{classes[i]} {result.probabilities[i]:5.1%}" for i in shown)
    more = f"  … {len(classes) - LISTED:,} more" if len(classes) > LISTED else ""
    return f"{result.file}: {result.prediction} ({result.confidence:.1%})   {probs}{more}"
