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
import sys

from desktop.cli import CliError
from desktop.cli.common import safe_print
from engine import filters as F

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
    stages.add_argument("--pool-size", type=int, default=2, help="(default 2)")
    stages.add_argument("--pool-stride", type=int, default=None, help="(default: the pool size)")
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


def run(args: argparse.Namespace) -> int:
    if args.list_presets:
        return _list_presets()
    if args.image is None:
        raise CliError("give an IMAGE to filter (or --list-presets)")
    if not (args.out or args.raw or args.json):
        raise CliError("nothing to write: give --out OUT.png and/or --raw OUT.npy (or --json)")
    if args.raw and not args.raw.lower().endswith(".npy"):
        raise CliError(f"--raw {args.raw}: the file name must end in .npy")
    specs = _kernel_specs(args)
    settings = F.FilterSettings(
        tuple(specs),
        border=args.border,
        stride=args.stride,
        color=args.color,
        relu=args.relu,
        pool=args.pool or "none",
        pool_size=args.pool_size,
        pool_stride=args.pool_stride or args.pool_size,
    )
    from engine.imageio import load_image, save_image

    image = load_image(args.image)
    result = F.run_filter(image, settings)
    maps = result.maps  # (N, H', W', C)
    raw = result.raw()
    written = {}
    if args.out:
        pictures = [F.display(m, args.display) for m in maps]
        picture = pictures[0] if len(pictures) == 1 else F.tile_maps(pictures)
        written["out"] = str(save_image(picture, args.out))
    if args.raw:
        written["raw"] = str(F.save_raw(result, args.raw))
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
        "stages": [{"name": name, "shape": list(shape)} for name, shape in result.stages],
        "output_shape": list(raw.shape),
        "min": float(maps.min()),
        "max": float(maps.max()),
        "out": written.get("out"),
        "raw": written.get("raw"),
    }
    if args.json:
        safe_print(json.dumps(summary, indent=2))
    else:
        flow = " → ".join(f"{n} {'×'.join(map(str, s))}" for n, s in result.stages)
        safe_print(flow)
        safe_print(f"values {summary['min']:.4g} .. {summary['max']:.4g}")
        for key in ("out", "raw"):
            if key in written:
                safe_print(f"wrote {written[key]}", file=sys.stderr)
    return 0
