"""``convscope convolve IMAGE``: the Filters tab headless, with the same engine functions.

Examples::

    convscope convolve photo.jpg --preset sharpen --out sharp.png
    convscope convolve photo.jpg --kernel "1 0 -1; 0 0 0; -1 0 1" --display abs --out edges.png
    convscope convolve photo.jpg --preset "sobel x" --preset "sobel y" --relu --pool max \\
        --out maps.png --raw maps.npy --json

Several ``--kernel``/``--preset`` make a stack (depth-N feature maps): the PNG shows them in a
grid and ``--raw`` holds ``(N, H', W'[, 3])``. ``--json`` prints
``{"input", "input_shape", "kernels", "stages", "output_shape", "min", "max", "out", "raw"}``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import deque
from pathlib import Path

from desktop.cli import CliError
from desktop.cli.common import safe_print
from engine import filters as F
from engine.atomic import writable_problem
from engine.errors import short_repr
from engine.filters.memory import check_memory, image_size, streamed_bytes
from engine.imageio import SAVE_SUFFIXES

HELP = "convolve an image with kernels (+ ReLU, pooling), as the Filters tab does"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", metavar="IMAGE", nargs="?", help="the image file to filter")
    kernels = parser.add_argument_group("kernels (one or more, in order; up to 8)")
    kernels.add_argument(
        "--kernel",
        action="append",
        default=[],
        metavar="ROWS",
        help='a kernel as rows, e.g. "0 -1 0; -1 5 -1; 0 -1 0" (fractions like 1/9 allowed)',
    )
    kernels.add_argument(
        "--preset", action="append", default=[], metavar="NAME", help="a preset (--list-presets)"
    )
    kernels.add_argument(
        "--kernel-file", action="append", default=[], metavar="JSON", help="kernels saved as JSON"
    )
    kernels.add_argument("--list-presets", action="store_true", help="list the presets and exit")
    maths = parser.add_argument_group("convolution")
    maths.add_argument("--border", choices=F.BORDERS, default="zero", help="(default zero)")
    maths.add_argument("--stride", type=int, default=1, help="1 to 4 (default 1)")
    maths.add_argument(
        "--divisor", type=float, default=None, help="divide the sum by this (default: preset's)"
    )
    maths.add_argument(
        "--normalize", action="store_true", help="divide by the kernel's sum when it is not 0"
    )
    maths.add_argument("--offset", type=float, default=None, help="add this after dividing")
    colour = maths.add_mutually_exclusive_group()
    colour.add_argument(
        "--gray", dest="color", action="store_const", const="gray", help="grayscale (default)"
    )
    colour.add_argument(
        "--rgb", dest="color", action="store_const", const="rgb", help="each RGB channel separately"
    )
    parser.set_defaults(color="gray")
    stages = parser.add_argument_group("next stages")
    stages.add_argument("--relu", action="store_true", help="ReLU: max(x, 0)")
    stages.add_argument("--pool", choices=("max", "avg", "sum"), default=None)
    stages.add_argument(
        "--pool-size", type=int, default=2, help="the pooling window's side, 1 to 8 (default 2)"
    )
    stages.add_argument(
        "--pool-stride", type=int, default=None, help="1 to 8 (default: the pool size)"
    )
    out = parser.add_argument_group("output")
    out.add_argument("--out", metavar="OUT.png", help="the result as a picture")
    out.add_argument(
        "--display",
        choices=F.DISPLAYS,
        default="clip",
        help="how signed values become pixels (default clip)",
    )
    out.add_argument("--raw", metavar="OUT.npy", help="the float values before display mapping")
    out.add_argument("--json", action="store_true", help="print shapes, min/max and paths as JSON")
    out.add_argument(
        "--overwrite", action="store_true", help="allow --out or --raw to replace the input image"
    )


def find_preset(name: str) -> F.Preset:
    """A preset by name, ignoring case, ``-`` and ``_`` (``gaussian-blur-3x3``)."""

    def key(s: str) -> str:
        return " ".join(s.lower().replace("-", " ").replace("_", " ").split())

    for preset in F.PRESETS.values():
        if key(preset.name) == key(name):
            return preset
    raise CliError(f"unknown preset {name!r}; see convscope convolve --list-presets")


def _kernel_specs(args: argparse.Namespace) -> list[F.KernelSpec]:
    specs = [F.KernelSpec(F.parse_kernel(text), name="kernel") for text in args.kernel]
    specs += [find_preset(name).spec() for name in args.preset]
    for path in args.kernel_file:
        specs += F.load_kernels(path)
    if not specs:
        raise CliError("no kernel: give --kernel ROWS, --preset NAME or --kernel-file JSON")
    if len(specs) > F.MAX_KERNELS:
        raise CliError(f"{len(specs)} kernels: use at most {F.MAX_KERNELS}")
    out = []
    for s in specs:
        out.append(
            F.KernelSpec(
                s.kernel,
                divisor=s.divisor if args.divisor is None else args.divisor,
                normalize=s.normalize or args.normalize,
                offset=s.offset if args.offset is None else args.offset,
                name=s.name,
            )
        )
    return out


def _list_presets() -> int:
    for p in F.PRESETS.values():
        div = "" if p.divisor == 1 else f" (÷{F.format_number(p.divisor)})"
        safe_print(f"{p.name:20} {F.kernel_to_text(p.array())}{div}")
    return 0


def _check_outputs(args: argparse.Namespace) -> None:
    """Something to write, names of the right kinds, paths that can be written: before any
    work (a picture's wrong suffix was found after the values were written)."""
    if not (args.out or args.raw or args.json):
        raise CliError("nothing to write: give --out OUT.png and/or --raw OUT.npy (or --json)")
    if args.raw and not args.raw.lower().endswith(".npy"):
        raise CliError(f"--raw {args.raw}: the file name must end in .npy")
    if args.out and Path(args.out).suffix.lower() not in SAVE_SUFFIXES:
        hint = "; the float values go to --raw" if args.out.lower().endswith(".npy") else ""
        raise CliError(
            f"--out {args.out}: a picture's name ends in {', '.join(SAVE_SUFFIXES)}{hint}"
        )
    for flag, path in (("--out", args.out), ("--raw", args.raw)):
        if path is not None:
            _check_output(path, flag, args.image, args.overwrite)


def _check_output(path: str, flag: str, image: str, overwrite: bool) -> None:
    """Refuse, before any work, an output path that cannot be written: a folder, a missing
    folder, a name longer than the system allows, the input image itself, or a folder where
    no file can be created."""
    if path == "":
        raise CliError(f"{flag} is an empty string; give a file name")
    p = Path(path).expanduser()
    folder = p.parent if str(p.parent) else Path(".")
    try:
        limit = os.pathconf(folder if folder.is_dir() else ".", "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        limit = 255
    # the atomic writer's temporary name adds about 14 characters to the file name
    if len(os.fsencode(p.name)) + 14 > limit:
        raise CliError(
            f"{flag} {path}: the file name is longer than the system allows "
            f"({limit} bytes, less room for a temporary name); use a shorter name"
        )
    try:
        if p.is_dir():
            raise CliError(f"{flag} {path}: is a folder; give a file name inside it")
        if not folder.is_dir():
            raise CliError(f"{flag} {path}: the folder {folder} does not exist")
        same = p.exists() and Path(image).exists() and os.path.samefile(p, image)
    except OSError as exc:
        raise CliError(f"{flag} {path}: cannot be used ({exc.strerror or exc})") from None
    if same and not overwrite:
        raise CliError(
            f"{flag} {path} is the input image; give another name (or --overwrite to replace it)"
        )
    problem = writable_problem(p)  # /proc, a read-only folder: found now, not after the work
    if problem is not None:
        raise CliError(f"{flag} {path}: {problem}")


def _settings(args: argparse.Namespace, specs: list[F.KernelSpec]) -> F.FilterSettings:
    for flag, value in (("--pool-size", args.pool_size), ("--pool-stride", args.pool_stride)):
        if value is not None and not 1 <= value <= F.MAX_POOL:
            raise CliError(
                f"{flag} {short_repr(value)}: the pooling window takes a whole number from 1 to "
                f"{F.MAX_POOL}"
            )
    return F.FilterSettings(
        tuple(specs),
        border=args.border,
        stride=args.stride,
        color=args.color,
        relu=args.relu,
        pool=args.pool or "none",
        pool_size=args.pool_size,
        pool_stride=args.pool_size if args.pool_stride is None else args.pool_stride,
    )


def _check_memory(settings: F.FilterSettings, height: int, width: int, picture: bool) -> None:
    needed = streamed_bytes(height, width, settings, picture=picture)
    n = len(settings.kernels)
    what = f"convolving this {width}x{height} image with {n} kernel{'s' if n > 1 else ''}"
    check_memory(needed, what)


def run(args: argparse.Namespace) -> int:
    if args.list_presets:
        return _list_presets()
    if args.image is None:
        raise CliError("give an IMAGE to filter (or --list-presets)")
    if args.image == "":
        raise CliError("the IMAGE argument is an empty string; give an image file")
    _check_outputs(args)
    specs = _kernel_specs(args)
    settings = _settings(args, specs)
    header = image_size(args.image)
    if header is not None:  # refuse before decoding what could not be filtered anyway
        settings.check_fits(*header)
        _check_memory(settings, *header, picture=bool(args.out))
    from engine.imageio import load_image, save_image

    image = load_image(args.image)
    h, w = image.shape[:2]
    settings.check_fits(h, w)
    _check_memory(settings, h, w, picture=bool(args.out))
    n, oh, ow, c = settings.output_shape(h, w)
    raw_shape = (*((n,) if n > 1 else ()), oh, ow, *((c,) if c > 1 else ()))
    mosaic = F.Mosaic(n, oh, ow, pillow=True) if args.out else None  # saved as it is
    extremes: list[float] = []

    def maps():  # one kernel's map at a time: the memory follows the work
        i = 0  # (enumerate would hold each map until the next one is made)
        for m in F.iter_maps(image, settings):
            extremes.extend((float(m.min()), float(m.max())))
            if mosaic is not None:
                mosaic.place(i, F.display(m, args.display))
            i += 1
            yield m
            del m  # one map at a time: let go of it before the next one is made

    written = {}
    if args.raw:
        written["raw"] = str(F.save_raw_stream(args.raw, raw_shape, maps()))
    else:
        deque(maps(), maxlen=0)  # run them, holding none
    if mosaic is not None:
        assert mosaic.picture is not None
        written["out"] = str(save_image(mosaic.picture, args.out))
    stages = F.stages(image.shape, settings)
    summary = {
        "input": str(args.image),
        "input_shape": list(image.shape),
        "kernels": [
            {
                "name": s.name,
                "kernel": s.kernel.tolist(),
                "divisor": s.effective_divisor(),
                "offset": s.offset,
            }
            for s in specs
        ],
        "stages": [{"name": name, "shape": list(shape)} for name, shape in stages],
        "output_shape": list(raw_shape),
        "min": min(extremes),
        "max": max(extremes),
        "out": written.get("out"),
        "raw": written.get("raw"),
    }
    if args.json:
        # strict JSON: the kernel limits keep every value finite, so this never fails
        safe_print(json.dumps(summary, indent=2, allow_nan=False))
    else:
        flow = " → ".join(f"{n} {'×'.join(map(str, s))}" for n, s in stages)
        safe_print(flow)
        safe_print(f"values {summary['min']:.4g} .. {summary['max']:.4g}")
        for key in ("out", "raw"):
            if key in written:
                safe_print(f"wrote {written[key]}", file=sys.stderr)
    return 0
