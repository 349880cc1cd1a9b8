"""``convscope classify MODEL IMAGE...``: the digit in each image, with every class's probability.

Each image is prepared the way MNIST was made (:mod:`engine.preprocess`: polarity, lighting,
crop to the ink, 20x20 box, centre of mass), then all of them go through the network in one
batch. A folder argument classifies every image file directly inside it, sorted by name.
A model whose classes are not the digits 0-9 (trained on an image folder, Fashion-MNIST...)
gets the whole picture resized to its input instead (``--preprocess plain``), as its training
images were made.

Exit status: 0 every image classified; 1 some images could not be read or hold no digit (the
others are still reported; each failure is one line on stderr); 2 nothing classified (bad
model, no images at all, or every image failed).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from desktop.cli import CliError
from desktop.cli.common import (
    EXIT_ALL_FAILED,
    EXIT_SOME_FAILED,
    add_model_argument,
    expand_images,
    resolve_model_path,
    without_name,
)

HELP = "classify handwritten digits in image files (or folders of them) with a saved model"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        f"{HELP}. Each image is preprocessed like MNIST (dark ink on light paper is inverted, "
        "the digit is cropped, fit into 20x20 and centred by its centre of mass) and classified."
    )
    parser.epilog = (
        "Exit status: 0 all classified, 1 some files failed (reported on stderr), "
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
        help="do not detect dark-on-light images: take every image as white ink on black",
    )
    parser.add_argument(
        "--no-center",
        action="store_true",
        help="do not crop to the digit and centre it: scale the whole picture to 28x28",
    )
    parser.add_argument(
        "--preprocess",
        choices=("auto", "digit", "plain"),
        default="auto",
        help="'digit': MNIST-style digit preparation (above); 'plain': the whole picture "
        "resized to the model's input, as image-folder datasets are; 'auto' (default): "
        "'digit' for a model whose classes are the digits 0-9, else 'plain'",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help='print a JSON list of {"file", "prediction", "classes", "probabilities", ...}',
    )


def is_digit_model(model: Any) -> bool:
    """A model whose classes are the ten digits gets MNIST-style digit preprocessing."""
    return [str(c) for c in model.classes] == [str(k) for k in range(10)]


def run(args: argparse.Namespace) -> int:
    from engine.errors import EngineError
    from engine.modelfile import load_model

    model = load_model(resolve_model_path(args.model))
    files, problems = expand_images(args.images)
    digits = args.preprocess == "digit" or (args.preprocess == "auto" and is_digit_model(model))
    prepare = _prepare_digit if digits else _prepare_plain
    prepared = []
    results: list[dict[str, Any]] = []
    for path in files:
        try:
            item = prepare(path, model, args)
        except EngineError as exc:
            problem = without_name(str(exc), path)
            problems.append((str(path), problem))
            results.append({"file": str(path), "error": problem})
            continue
        prepared.append((len(results), item))
        results.append({"file": str(path)})

    if prepared:
        if digits:
            from engine.preprocess import classify_images

            probs = classify_images(model, [d.image for _, d in prepared])
        else:
            batch = np.stack([image for _, image in prepared])
            probs = model.predict_proba(model.input_spec.to_tensor(batch))
        classes = [str(c) for c in model.classes]
        for (slot, item), p in zip(prepared, probs, strict=True):
            k = int(p.argmax())
            results[slot].update(
                prediction=classes[k],
                confidence=float(p[k]),
                classes=classes,
                probabilities=[round(float(v), 6) for v in p],
            )
            if digits:
                results[slot].update(
                    inverted=item.inverted,
                    bbox=list(item.bbox) if item.bbox is not None else None,
                )

    for where, problem in problems:
        print(f"convscope classify: {where}: {problem}", file=sys.stderr)
    if args.json:
        for r in results:
            r.setdefault("prediction", None)
            r.setdefault("classes", [str(c) for c in model.classes])
            r.setdefault("probabilities", None)
        print(json.dumps(results))
    else:
        for r in results:
            if "prediction" in r:
                print(_format_line(r))
    if not prepared:
        if not files and not problems:
            raise CliError("no images given")
        return EXIT_ALL_FAILED
    return EXIT_SOME_FAILED if problems else 0


def _prepare_digit(path: Path, model: Any, args: argparse.Namespace) -> Any:
    from engine.preprocess import prepare_digit_file

    return prepare_digit_file(path, auto_invert=not args.no_invert, center=not args.no_center)


def _prepare_plain(path: Path, model: Any, args: argparse.Namespace) -> np.ndarray:
    """The whole picture, centre-cropped to the model's aspect and resized, as the image-folder
    datasets were made (``engine.datasets.fit_image``)."""
    from engine.datasets import fit_image
    from engine.imageio import load_image

    channels, height, width = model.input_spec.shape
    image = load_image(path, mode="L" if channels == 1 else "RGB")
    return fit_image(image, (height, width), channels)


def _format_line(result: dict[str, Any]) -> str:
    """``digit.png: 7 (98.2%)   0 0.0%  1 0.1% ...``"""
    probs = "  ".join(
        f"{c} {p:5.1%}" for c, p in zip(result["classes"], result["probabilities"], strict=True)
    )
    return f"{result['file']}: {result['prediction']} ({result['confidence']:.1%})   {probs}"
