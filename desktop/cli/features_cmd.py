"""``convscope features MODEL``: what a layer learned, as a grid image (the article's Figure 17).

``--method patches``: one row per filter, the dataset patches (receptive-field crops of test
images) that excite it most, strongest first. ``--method synthesis``: for each filter (or each
class, when ``--layer`` names the output) an image grown by gradient ascent to excite it.
``--json`` prints ``{"model", "layer", "method", "out", "filters": [...]}``, with ``"dataset"``,
``"images"`` and ``"field"`` for patches (strict JSON: a non-finite number would be null); each
filter lists its patches' source images (``index`` into the test split, ``file`` for image
folders), positions and activations, or its synthesis' activation before and after.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from desktop.cli import CliError
from desktop.cli.common import add_model_argument, json_text, safe_print

HELP = "what a layer learned: top dataset patches or synthesised images per filter, as a grid"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_argument(parser)
    parser.add_argument(
        "--layer", default=None, metavar="NAME", help="the node (default: the first convolution)"
    )
    parser.add_argument(
        "--method",
        choices=("patches", "synthesis"),
        default="patches",
        help="'patches': the dataset patches that excite each filter most; 'synthesis': "
        "inputs synthesised to excite it (default patches)",
    )
    parser.add_argument(
        "--dataset",
        default=None,
        help="the images patches come from (test split): 'mnist' (default for digit models), "
        "'cifar4' (default for colour models), or a dataset folder",
    )
    parser.add_argument(
        "--limit", type=int, default=2000, metavar="N", help="first N test images (default 2000)"
    )
    parser.add_argument("--k", type=int, default=9, help="patches per filter, 1 to 100 (default 9)")
    parser.add_argument(
        "--steps", type=int, default=128, help="synthesis steps, 1 to 10,000 (default 128)"
    )
    parser.add_argument("--seed", type=int, default=0, help="synthesis seed (default 0)")
    parser.add_argument("--out", required=True, metavar="GRID.png", help="the grid image to write")
    parser.add_argument("--json", action="store_true", help="print the result as JSON on stdout")


def _check(args: argparse.Namespace) -> None:
    from engine.features import MAX_PATCHES, MAX_SYNTHESIS_STEPS

    for name in ("limit", "k", "steps"):
        if getattr(args, name) < 1:
            raise CliError(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.k > MAX_PATCHES:
        raise CliError(f"--k: at most {MAX_PATCHES} patches per filter, got {args.k:,}")
    if args.steps > MAX_SYNTHESIS_STEPS:
        raise CliError(f"--steps: at most {MAX_SYNTHESIS_STEPS:,}, got {args.steps:,}")
    if args.seed < 0:  # NumPy's generators take whole numbers >= 0
        raise CliError(f"--seed must be >= 0, got {args.seed}")
    from engine.imageio import SAVE_SUFFIXES

    out = Path(args.out).expanduser()
    if out.suffix.lower() not in SAVE_SUFFIXES:
        raise CliError(f"{args.out}: give an image name ending in {', '.join(SAVE_SUFFIXES)}")
    if out.is_dir():
        raise CliError(f"{args.out}: is a folder; give an image file name")
    if not (out.parent if str(out.parent) else Path(".")).is_dir():
        raise CliError(f"{args.out}: the folder {out.parent} does not exist")
    from engine.atomic import writable_problem

    problem = writable_problem(out)  # a read-only folder, /proc: before the work, not after
    if problem:
        raise CliError(f"{args.out}: {problem}")


def _layer(model: Any, name: str | None, method: str) -> str:
    from engine.features import conv_nodes, map_nodes

    if name is None:
        convs = conv_nodes(model)
        if convs:
            return convs[0]
        maps = map_nodes(model) if method == "patches" else list(model.nodes)
        if maps:
            raise CliError(f"the model has no convolution; give --layer: one of {', '.join(maps)}")
        raise CliError(
            "the model has no convolution and no layer of maps, so no patches; "
            f"'--method synthesis --layer {model.output}' shows what its classes look like"
        )
    if name not in model.nodes:
        from difflib import get_close_matches

        close = get_close_matches(name, list(model.nodes), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise CliError(f"no layer {name!r}{hint}; choose one of {', '.join(model.nodes)}")
    return name


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from desktop.cli.common import resolve_model_path
    from desktop.cli.progress import Progress as Bar
    from engine import features
    from engine.imageio import save_image
    from engine.modelfile import load_model
    from engine.progress import run_through

    _check(args)
    path = resolve_model_path(args.model)
    model = load_model(path)
    layer = _layer(model, args.layer, args.method)
    bar = Bar()
    doc: dict[str, Any] = {"model": str(path), "layer": layer, "method": args.method}
    if args.method == "patches":
        field = features.receptive_field(model, layer)  # a clear error before the dataset loads
        images, files, name = _images(args, model, bar)
        result = run_through(
            features.top_patches(model, layer, images, k=args.k),
            lambda p: bar.update(p.fraction, f"{layer}: {p.done:,}/{p.total:,} images"),
        )
        assert result is not None
        grid = features.patch_grid(result)
        doc |= {
            "dataset": name,
            "images": len(images),
            "field": {"size": field.size, "jump": field.jump, "offset": field.offset},
            "filters": [_patches_json(c, ps, files) for c, ps in enumerate(result.filters)],
        }
    else:
        rng = np.random.default_rng(args.seed)
        made = run_through(
            features.synthesize_all(model, layer, rng, steps=args.steps),
            lambda p: bar.update(p.fraction, f"{layer}: step {p.done}/{p.total}"),
        )
        assert made is not None
        grid = features.synthesis_grid(made)
        doc["filters"] = [
            {
                "channel": s.channel,
                "activation": s.activation,
                "start_activation": s.start_activation,
            }
            for s in made
        ]
    bar.close()
    written = save_image(grid, args.out)
    doc["out"] = str(written)
    if args.json:
        safe_print(json_text(doc))
    else:
        safe_print(f"{layer} ({args.method}, {len(doc['filters'])} filters) -> {written}")
    return 0


def _images(args: argparse.Namespace, model: Any, bar: Any) -> tuple[Any, list[str] | None, str]:
    from desktop.cli.common import load_dataset_for

    spec = args.dataset or ("mnist" if model.input_spec.shape[0] == 1 else "cifar4")
    ds = load_dataset_for(spec, tuple(model.input_spec.shape), 1, bar, test_fraction=1.0)
    images = ds.test_images[: args.limit]
    if len(images) == 0:
        raise CliError(f"{ds.name}: no test images")
    files = ds.test_files[: args.limit] if ds.test_files else None
    return images, files, ds.name


def _patches_json(channel: int, patches: list[Any], files: list[str] | None) -> dict[str, Any]:
    return {
        "channel": channel,
        "patches": [
            {
                "index": p.image,
                **({"file": files[p.image]} if files else {}),
                "row": p.row,
                "col": p.col,
                "top": p.top,
                "left": p.left,
                "activation": p.activation,
            }
            for p in patches
        ],
    }
