"""``convscope describe NETWORK``: a network's anatomy, node by node, without training it.

The same description the Train tab's diagram and both "inside the network" views draw
(:func:`engine.graph_layout.describe_model`): each node's kind, inputs, window, output shape,
parameters, multiply-adds and receptive field, then the totals. ``NETWORK`` is anything
``convscope train --arch`` takes (a family member's name, the text form, an architecture
FILE.json) or a model file (``MODEL.npz``, ``shipped``, ``photos``).
"""

from __future__ import annotations

import argparse
from typing import Any

from desktop.cli import CliError

HELP = "print a network's nodes: kind, inputs, output shape, parameters, multiply-adds, field"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "network",
        metavar="NETWORK",
        help="a family member's name, a network in the text form, an architecture FILE.json, "
        "or a model file (MODEL.npz, 'shipped', 'photos')",
    )
    parser.add_argument(
        "--channels",
        type=int,
        choices=(1, 3),
        default=None,
        help="input colour of a network that is not a model file: 1 grey (default), 3 colour",
    )
    parser.add_argument(
        "--classes",
        type=int,
        default=10,
        metavar="K",
        help="outputs of a network that is not a model file (default 10)",
    )
    parser.add_argument("--json", action="store_true", help="print the nodes as JSON")


def run(args: argparse.Namespace) -> int:
    from desktop.cli.common import json_text, pad, safe_print, text_width
    from engine.graph_layout import describe_model
    from engine.graphspec import spec_stats

    model, what = _model(args)
    facts = describe_model(model)
    params, macs = spec_stats(model.graph_spec())
    if args.json:
        nodes = [_node_json(f) for f in facts]
        safe_print(json_text({"network": what, "parameters": params, "macs": macs, "nodes": nodes}))
        return 0
    rows = [("node", "kind", "window", "output", "params", "mult-adds", "field", "reads")]
    for f in facts:
        rows.append(
            (
                f.name,
                f.kind,
                f.geometry(),
                f.shape_text(),
                f"{f.params:,}" if f.params else "",
                f"{f.macs:,}" if f.macs else "",
                _field(f),
                ", ".join(f.inputs) if f.inputs != _previous(facts, f) else "",
            )
        )
    widths = [max(text_width(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    safe_print(what)
    for row in rows:
        cells = [
            pad(c, w, right=i in (4, 5))
            for i, (c, w) in enumerate(zip(row[:-1], widths, strict=True))
        ]
        safe_print("  ".join([*cells, row[-1]]).rstrip())
    safe_print(f"{params:,} trainable parameters · {macs:,} multiply-adds per image")
    return 0


def _model(args: argparse.Namespace) -> tuple[Any, str]:
    """The network to describe and a line saying what it is."""
    from desktop.cli.common import resolve_model_path
    from engine import architectures
    from engine.model import build_model
    from engine.modelfile import load_model

    text = args.network.strip()
    if text in ("shipped", "photos") or text.lower().endswith(".npz"):
        if args.channels is not None:
            raise CliError("a model file fixes its own input; leave out --channels")
        path = resolve_model_path(text)
        model = load_model(path)
        shape = "×".join(str(s) for s in model.input_spec.shape)
        return model, f"{path.name}: {len(model.classes)} classes, input {shape}"
    if not 2 <= args.classes <= 100_000:
        raise CliError(f"--classes must be 2 to 100,000, got {args.classes}")
    choice = architectures.choose(text, args.channels)
    model = build_model(choice.architecture(args.classes))
    shape = "×".join(str(s) for s in model.input_spec.shape)
    return model, f"{choice.label}: {args.classes} classes, input {shape}"


def _previous(facts: list, f: Any) -> tuple[str, ...]:
    """The node before ``f`` (what a chain reads, not worth a column of its own)."""
    i = facts.index(f)
    return (facts[i - 1].name,) if i > 0 else ()


def _field(f: Any) -> str:
    if f.kind == "input":
        return ""
    return f"{f.field.size}×{f.field.size}" if f.field is not None else "whole image"


def _node_json(f: Any) -> dict[str, Any]:
    return {
        "name": f.name,
        "kind": f.kind,
        "inputs": list(f.inputs),
        "kernel": f.kernel or None,
        "stride": f.stride or None,
        "padding": f.padding if f.kernel else None,
        "output_shape": list(f.shape),
        "parameters": f.params,
        "macs": f.macs,
        "receptive_field": f.field.size if f.field is not None else None,
    }
