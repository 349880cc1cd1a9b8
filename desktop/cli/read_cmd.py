"""``convscope read MODEL IMAGE...``: read the number (several digits in a row) in each image.

Each image is split into digits (:mod:`engine.reading`: connected ink, broken strokes merged,
touching digits cut), each digit is prepared like MNIST and classified, and the digits are read
left to right. Text output is one line per image: ``file: 4075  (4 0 7 5: 99% 97% 88% 99%)``.
``--json`` prints a list of ``{"file", "text", "digits": [{"box", "prediction",
"confidence"}]}`` (``box`` is ``[x0, y0, x1, y1]`` in the image's pixels, x1/y1 exclusive);
an unreadable file gets ``{"file", "error"}``.

Exit status: 0 every image read; 1 some images could not be read or hold no digits (each is one
line on stderr); 2 nothing read (bad model, no images, every image failed).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from desktop.cli import CliError
from desktop.cli.common import (
    DIGIT_MODEL_HELP,
    EXIT_ALL_FAILED,
    EXIT_SOME_FAILED,
    add_model_argument,
    expand_images,
    json_text,
    resolve_model_path,
    safe_print,
    without_name,
)

HELP = "read numbers (several handwritten digits in a row) in image files with a saved model"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        f"{HELP}. Each image is split into digits (connected ink; broken strokes merged, "
        "touching digits cut), each digit is classified, and the number is read left to right."
    )
    parser.epilog = (
        "Exit status: 0 all read, 1 some files failed (reported on stderr), 2 nothing read."
    )
    add_model_argument(parser, DIGIT_MODEL_HELP)
    parser.add_argument("images", metavar="IMAGE", nargs="+", help="image files or folders of them")
    parser.add_argument(
        "--json",
        action="store_true",
        help='print a JSON list of {"file", "text", "digits": [{"box", '
        '"prediction", "confidence"}]}',
    )


def run(args: argparse.Namespace) -> int:
    from engine.errors import EngineError
    from engine.imageio import load_image
    from engine.inference import preparation_for
    from engine.modelfile import load_model
    from engine.reading import NO_DIGITS, read_digits

    model = load_model(resolve_model_path(args.model))
    if preparation_for(model) != "digit":
        raise CliError(
            f"{args.model}: reading numbers needs a digit model (classes 0-9, one channel); "
            "this one has classes "
            + ", ".join(str(c) for c in model.classes[:10])
            + ("…" if len(model.classes) > 10 else "")
            + "; use 'convscope classify' for photos"
        )
    files, problems = expand_images(args.images)
    if not files and not problems:
        raise CliError("no images given")
    results: list[dict[str, Any]] = []
    for path in files:
        try:
            reading = read_digits(model, load_image(path))
            if not reading.digits:
                raise EngineError(NO_DIGITS)
        except EngineError as exc:
            problem = without_name(str(exc), path)  # the line starts with the path already
            problems.append((str(path), problem))
            results.append({"file": str(path), "error": problem})
            continue
        number = reading.looks_like_a_number()  # the Classify tab shows only these as numbers
        results.append({"file": str(path), **reading.to_json(), "looks_like_a_number": number})
    for where, problem in problems:
        safe_print(f"convscope read: {where}: {problem}", file=sys.stderr)
    if args.json:
        safe_print(json_text(results))
    else:
        for r in results:
            if "text" in r:
                safe_print(_format_line(r))
    read = sum(1 for r in results if "text" in r)
    if read == 0:
        return EXIT_ALL_FAILED
    return EXIT_SOME_FAILED if problems else 0


def _format_line(result: dict[str, Any]) -> str:
    digits = result["digits"]
    each = " ".join(d["prediction"] for d in digits)
    sure = " ".join(f"{d['confidence']:.0%}" for d in digits)
    line = f"{result['file']}: {result['text']}  ({each}: {sure})"
    if len(digits) > 1 and not result["looks_like_a_number"]:  # the Classify tab hides these
        line += "  - doubtful: marks of unlike size or line, or read unsure (not a number?)"
    return line
