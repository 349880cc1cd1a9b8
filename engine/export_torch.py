"""Export a model to one self-contained PyTorch file (``convscope export MODEL --pytorch OUT.py``).

The generated file imports only torch, numpy, Pillow and the standard library. It holds:

* the network as data: the expanded graph (``model.graph_spec()``, see the graph contract in
  ``docs/ARCHITECTURE.md``), the class names, the input description and the model file's
  metadata;
* a generic interpreter of that graph as a ``torch.nn.Module`` whose ``state_dict()`` keys and
  shapes are the model file's arrays (a node ``layer1.0.conv1`` is the module at that path);
* the engine's own source of the image preparation that ``convscope classify`` applies (MNIST-style
  digits from :mod:`engine.preprocess`, photos from the classification policy), and of the
  dataset reading, model-file reading (:mod:`engine.modelzip`) and atomic writing used by its
  commands. These modules are copied verbatim (their ``engine.`` imports renamed to a private
  package the file serves from memory), so there is one home for the preparation: the engine.
  The file never imports ``engine``.

The body of the file is :mod:`engine.export_template` (a real, linted Python module, never
imported by the app: it imports torch) with its data block replaced. Modules are embedded
together with every ``engine`` module they import; an embedded module must import nothing else
at module level than the standard library, numpy and Pillow (checked here).
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.util
import inspect
import os
import pprint
import re
import sys
from pathlib import Path
from typing import Any

from engine import __version__
from engine.atomic import atomic_write
from engine.errors import EngineError

TEMPLATE = Path(__file__).with_name("export_template.py")
DATA_BEGIN = "# --- export data: begin ---"
DATA_END = "# --- export data: end ---"
TITLE = "ConvScope network exported to PyTorch (this line is replaced by the title)."

#: Top-level packages an embedded engine module may import at module level (besides stdlib).
ALLOWED_IMPORTS = frozenset({"numpy", "PIL"})
#: Engine modules whose functions the generated file calls directly (``engine.inference``, the
#: classification policy and preparation, where this engine has it).
ROOT_MODULES = (
    "engine.imageio",
    "engine.preprocess",
    "engine.datasets",
    "engine.atomic",
    "engine.modelzip",
)
OPTIONAL_ROOTS = ("engine.inference",)
#: Node types the generated interpreter runs.
SUPPORTED_NODES = frozenset(
    {
        "conv2d",
        "batchnorm2d",
        "relu",
        "tanh",
        "sigmoid",
        "maxpool2d",
        "avgpool2d",
        "globalavgpool",
        "flatten",
        "dense",
        "dropout",
        "add",
        "concat",
    }
)


class ExportError(EngineError):
    """The model cannot be exported (an operation the PyTorch file does not know, ...)."""


def graph_spec(model: Any) -> dict[str, Any]:
    """The expanded graph of ``model`` (the contract's ``{"name": "graph", ...}`` form).

    Uses ``model.graph_spec()``; a chain model without it gets each layer's ``config()`` with
    the previous layer as its input.
    """
    if hasattr(model, "graph_spec"):
        return dict(model.graph_spec())
    nodes, previous = [], "input"
    for layer in model.layers:
        node = dict(layer.config())
        node["inputs"] = [previous]
        nodes.append(node)
        previous = node["name"]
    return {
        "name": "graph",
        "input_shape": list(model.input_spec.shape),
        "nodes": nodes,
        "output": previous,
    }


def preparation(model: Any) -> str:
    """How ``convscope classify`` prepares an image for ``model``: ``"digit"`` or ``"photo"``."""
    try:
        inference = importlib.import_module("engine.inference")
    except ImportError:
        inference = None
    policy = getattr(inference, "preparation_for", None)
    if policy is not None:
        return str(policy(model))
    return "digit" if [str(c) for c in model.classes] == [str(k) for k in range(10)] else "photo"


def _imports(source: str) -> list[tuple[str, bool]]:
    """``(module, at_module_level)`` of every import in ``source``."""
    tree = ast.parse(source)
    top = set(map(id, tree.body))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, id(node) in top) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "engine":
                found += [(f"engine.{a.name}", id(node) in top) for a in node.names]
            else:
                found.append((node.module, id(node) in top))
    return found


def _module_source(name: str) -> str:
    module = importlib.import_module(name)
    return inspect.getsource(module)


def engine_sources(
    roots: tuple[str, ...] = ROOT_MODULES, given: dict[str, str] | None = None
) -> dict[str, str]:
    """``{"engine.x": source}`` of ``roots`` and every engine module they import.

    Raises :class:`ExportError` when an embedded module imports, at module level, anything but
    the standard library, numpy and Pillow (imports inside functions are left to fail only if
    that function runs: ``datasets`` reads the bundled MNIST through ``resources``).
    """
    sources: dict[str, str] = {}
    todo = [*roots, *(given or {})]
    while todo:
        name = todo.pop()
        if name in sources or name == "engine":
            continue
        sources[name] = (given or {}).get(name) or _module_source(name)
        for imported, top_level in _imports(sources[name]):
            head = imported.split(".")[0]
            if head == "engine":
                todo.append(imported)
            elif top_level and head not in ALLOWED_IMPORTS and head not in sys.stdlib_module_names:
                raise ExportError(
                    f"{name} imports {imported}; the exported file may only use the standard "
                    "library, numpy, Pillow and torch"
                )
    return dict(sorted(sources.items()))


_INPUT_SPEC_HEADER = """from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.errors import ShapeError


"""


def _input_spec_source() -> tuple[str, dict[str, str]]:
    """The module the generated file takes ``InputSpec`` from: its own module when that is small
    (not :mod:`engine.model`, which holds the whole engine network), else the class alone."""
    from engine.model import InputSpec

    if InputSpec.__module__ != "engine.model":
        return InputSpec.__module__, {}
    return "engine.inputspec", {
        "engine.inputspec": _INPUT_SPEC_HEADER + inspect.getsource(InputSpec)
    }


def _rename_engine(source: str, package: str) -> str:
    source = re.sub(r"\bfrom engine\.", f"from {package}.", source)
    source = re.sub(r"\bfrom engine import\b", f"from {package} import", source)
    return re.sub(r"^(\s*)import engine\.", rf"\1import {package}.", source, flags=re.M)


def _literal(value: Any) -> str:
    return pprint.pformat(value, width=96, sort_dicts=False)


def _source_literal(source: str) -> str:
    lines = source.splitlines(keepends=True)
    return "(\n" + "".join(f"    {line!r}\n" for line in lines) + ")"


def render(model: Any, *, source_name: str = "") -> str:
    """The text of the exported file for ``model`` (see the module docstring)."""
    from engine.modelfile import model_meta
    from engine.modelschema import MAX_META_CHARS

    graph = graph_spec(model)
    unknown = sorted({n.get("type") for n in graph["nodes"]} - SUPPORTED_NODES, key=str)
    if unknown:
        raise ExportError(
            f"the PyTorch export does not know the operation(s) {', '.join(map(str, unknown))}"
        )
    spec_module, given = _input_spec_source()
    optional = tuple(m for m in OPTIONAL_ROOTS if importlib.util.find_spec(m) is not None)
    sources = engine_sources((*ROOT_MODULES, *optional, spec_module), given)
    digest = hashlib.sha256("".join(sources.values()).encode()).hexdigest()[:10]
    package = f"_convscope_engine_{digest}"
    embedded = {n.removeprefix("engine."): _rename_engine(s, package) for n, s in sources.items()}
    # ConvScope's training history and evaluation describe the weights exported, not those a
    # PyTorch run writes back: left out (the file stays small)
    meta = {k: v for k, v in model_meta(model).items() if k not in ("history", "evaluation")}
    data = [
        DATA_BEGIN,
        f"GRAPH: dict[str, Any] = {_literal(graph)}",
        f"CLASSES: list[str] = {_literal(list(model.classes))}",
        f"INPUT: dict[str, Any] = {_literal(model.input_spec.to_json())}",
        f"PREPARATION = {preparation(model)!r}",
        f"META: dict[str, Any] = {_literal(meta)}",
        f"SOURCE_MODEL = {source_name!r}",
        f"ENGINE_VERSION = {__version__!r}",
        f"ENGINE_PACKAGE = {package!r}",
        f"INPUT_SPEC_MODULE = {spec_module.removeprefix('engine.')!r}",
        f"MAX_META_CHARS = {MAX_META_CHARS!r}",
        "ENGINE_SOURCES: dict[str, str] = {}",
    ]
    for name, text in embedded.items():
        data.append(f"ENGINE_SOURCES[{name!r}] = {_source_literal(text)}")
    data.append(DATA_END)
    name = meta["architecture"].get("name", "model")
    # a name from a folder in bytes that are not UTF-8 ("caf\udce9") or with a control
    # character is shown as its repr: the file is UTF-8 and the title one line
    classes = ", ".join(c if c.isprintable() else repr(c) for c in map(str, model.classes[:10]))
    if len(model.classes) > 10:
        classes += f" and {len(model.classes) - 10} more"
    title = (
        f"The network {'custom' if name == 'graph' else name!r} ({classes}), "
        f"exported from ConvScope {__version__}."
    )
    return _fill_template(TEMPLATE.read_text(encoding="utf-8"), "\n".join(data), title)


def _fill_template(template: str, data: str, title: str) -> str:
    begin, end = template.index(DATA_BEGIN), template.index(DATA_END) + len(DATA_END)
    # the title is the first line of a docstring: backslashes and quotes in class names escaped
    safe = title.replace("\\", "\\\\").replace('"', '\\"')
    return (template[:begin] + data + template[end:]).replace(TITLE, safe, 1)


def name_problem(out: str | os.PathLike[str], source: str | os.PathLike[str] | None) -> str | None:
    """Why ``out`` cannot be the exported file's name, in words, or None: it must end in
    ``.py``, must not be the model file it comes from (an export had replaced the model with
    Python source), and must not be called like a module the file or PyTorch imports
    (``torch.py``, ``glob.py`` next to it is imported instead, and the file cannot run)."""
    path = Path(out).expanduser()
    if path.suffix != ".py":
        return "the exported file is Python: give a name ending in .py"
    if source is not None and path.exists() and _same_file(path, Path(source)):
        return "is the model file itself; give another name for the .py file"
    if path.stem in _SHADOWED:
        return (
            f"a file called {path.name} hides the {path.stem!r} module it imports; "
            "give another name"
        )
    if path.stem in sys.stdlib_module_names and path.stem not in _STDLIB_UNUSED:
        return (
            f"a file called {path.name} hides the {path.stem!r} module of Python's standard "
            "library, which it or PyTorch may import; give another name"
        )
    return None


#: Packages the exported file or PyTorch imports (PyTorch's own dependencies among them),
#: besides the standard library, which this process cannot list: it does not import torch.
_SHADOWED = {
    "torch",
    "numpy",
    "PIL",
    "engine",
    "desktop",
    "typing_extensions",
    "sympy",
    "mpmath",
    "filelock",
    "fsspec",
    "jinja2",
    "markupsafe",
    "networkx",
    "torchgen",
}
#: Standard-library names nothing the file runs imports: ``test.py`` hides only Python's own
#: regression tests. Every other one is refused (``glob``, ``csv``, ``uuid``: PyTorch imports
#: them, which ``convscope export`` itself may not).
_STDLIB_UNUSED = {"test"}


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return False


def export_pytorch(
    model: Any, out: str | os.PathLike[str], *, source: str | os.PathLike[str] | None = None
) -> Path:
    """Write the PyTorch file for ``model`` to ``out`` atomically; returns the path.

    ``source`` is the model file it came from: the generated ``train``/``predict`` commands look
    for its weights there (or by its name beside the generated file) unless told ``--weights``.
    Raises :class:`ExportError` when ``out`` cannot be its name (:func:`name_problem`).
    """
    problem = name_problem(out, source)
    if problem:
        raise ExportError(f"{out}: {problem}")
    text = render(model, source_name=str(Path(source).resolve()) if source else "")
    return atomic_write(out, lambda f: f.write(text.encode("utf-8")))


def pytorch_training_summary(meta: dict[str, Any]) -> str:
    """What a model file says of its training in an exported file's ``train`` (its
    ``pytorch_training`` record), in a few words: ``"then 3 epochs in PyTorch on 1 GPU, test
    62.00%"``; "" when it has none. The record comes from a file, so anything odd in it is
    left out rather than trusted."""
    run = meta.get("pytorch_training")
    if not isinstance(run, dict):
        return ""
    epochs = run.get("epochs")
    if not isinstance(epochs, list) or not epochs:
        return ""
    processes = run.get("processes")
    n = 1
    if isinstance(processes, int) and not isinstance(processes, bool) and 0 < processes < 100_000:
        n = processes
    if run.get("device") == "cuda":
        where = f"{n} GPU" + ("s" if n > 1 else "")
    else:
        where = "the CPU" if n == 1 else f"{n} CPU processes"
    text = f"then {len(epochs)} epoch{'s' if len(epochs) > 1 else ''} in PyTorch on {where}"
    last = epochs[-1] if isinstance(epochs[-1], dict) else {}
    test = last.get("test_accuracy")
    if isinstance(test, int | float) and not isinstance(test, bool) and 0 <= test <= 1:
        text += f", test {float(test):.2%}"
    return text
