"""``convscope export MODEL --pytorch OUT.py``: the network as one self-contained PyTorch file.

The file (see :mod:`engine.export_torch`) needs only torch, numpy and Pillow; it loads the
model file's weights, prepares images as ``convscope classify`` does, and continues training in
PyTorch (one GPU or many under ``torchrun``), writing a ConvScope model file back.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from desktop.cli import CliError
from desktop.cli.common import add_model_argument, json_text, resolve_model_path, safe_print

HELP = "export a model as one self-contained PyTorch file (to train it further on a GPU)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "Then: python OUT.py predict --weights MODEL.npz IMAGE...;  "
        "python OUT.py train --weights MODEL.npz --data FOLDER --epochs N --out BIGGER.npz "
        "(or under torchrun --nproc_per_node GPUS); open BIGGER.npz in ConvScope."
    )
    add_model_argument(parser)
    parser.add_argument(
        "--pytorch",
        metavar="OUT.py",
        required=True,
        help="write a Python file defining the network as a torch.nn.Module, with load(), "
        "preprocess() and 'train'/'predict' commands",
    )
    parser.add_argument("--json", action="store_true", help='print {"model", "pytorch", ...}')


def run(args: argparse.Namespace) -> int:
    from engine.atomic import writable_problem
    from engine.export_torch import export_pytorch, preparation
    from engine.modelfile import load_model

    source = resolve_model_path(args.model)
    model = load_model(source)
    if not args.pytorch.strip():  # Path("") is the current folder
        raise CliError("--pytorch is empty; give the name of the .py file to write")
    out = Path(args.pytorch).expanduser()
    if out.is_dir():
        raise CliError(f"{args.pytorch}: is a folder; give the name of the .py file to write")
    problem = writable_problem(out)
    if problem:
        raise CliError(f"{args.pytorch}: {problem}")
    if out.is_file() and not out.stat().st_mode & 0o222:
        raise CliError(f"{args.pytorch}: the file is read-only; remove it or choose another name")
    try:
        path = export_pytorch(model, out, source=source)
    except OSError as exc:  # the disk full, the folder gone meanwhile
        raise CliError(f"{args.pytorch}: cannot write it ({exc.strerror or exc})") from None
    if args.json:
        info = {
            "model": str(source),
            "pytorch": str(path),
            "classes": list(model.classes),
            "preparation": preparation(model),
        }
        safe_print(json_text(info))
    else:
        safe_print(f"wrote {path}: python {path.name} predict|train --help")
    return 0
