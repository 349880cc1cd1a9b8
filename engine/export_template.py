"""ConvScope network exported to PyTorch (this line is replaced by the title).

Written by ``convscope export MODEL.npz --pytorch THIS.py``. Needs only torch, numpy and Pillow.

In Python::

    import THIS
    net = THIS.load("model.npz")                  # the torch.nn.Module, weights loaded, eval mode
    x = THIS.preprocess(PIL.Image.open("a.png"))  # (1, C, H, W), prepared as ConvScope does
    probs = net(x).softmax(1)

From a shell::

    python THIS.py predict --weights model.npz a.png b.jpg
    python THIS.py train --weights model.npz --data FOLDER --epochs 10 --out bigger.npz
    torchrun --nproc_per_node 4 THIS.py train --data FOLDER --epochs 10 --out bigger.npz

``train`` continues training the network (CPU, one GPU, or several GPUs or machines under
``torchrun`` with DistributedDataParallel) and writes a ConvScope model file, which the app
opens. FOLDER holds one subfolder of images per class (optionally under ``train/`` and
``test/``) or MNIST-style IDX files, read by ConvScope's own dataset code.

Below: the network as data, the engine's preparation code (embedded verbatim), the module, and
the commands. (In ConvScope's source tree this file is ``engine/export_template.py``, the
template the exported files are made from; its data block is empty there.)

Size: an exported file is one self-contained file a user copies, so the network, the
loading, the preparation, the training and the commands stay in this one module.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.abc
import importlib.util
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

# --- export data: begin ---
GRAPH: dict[str, Any] = {"name": "graph", "input_shape": [1, 1, 1], "nodes": [], "output": "input"}
CLASSES: list[str] = []
INPUT: dict[str, Any] = {}
PREPARATION = "digit"
META: dict[str, Any] = {}
SOURCE_MODEL = ""
ENGINE_VERSION = ""
ENGINE_PACKAGE = "_convscope_engine"
INPUT_SPEC_MODULE = "inputspec"
MAX_META_CHARS = 8_000_000
ENGINE_SOURCES: dict[str, str] = {}
# --- export data: end ---


# ---------------------------------------------------------------------------------------------
# The embedded engine modules, served from ENGINE_SOURCES as the package ENGINE_PACKAGE.


class _EngineSources(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        if fullname == ENGINE_PACKAGE:
            return importlib.util.spec_from_loader(fullname, self, is_package=True)
        package, _, name = fullname.partition(".")
        if package == ENGINE_PACKAGE and name in ENGINE_SOURCES:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module) -> None:
        name = module.__name__.partition(".")[2]
        if name:
            code = compile(ENGINE_SOURCES[name], f"<convscope engine/{name}.py>", "exec")
            exec(code, module.__dict__)


def engine(name: str) -> Any:
    """The embedded ConvScope module ``name`` (``"preprocess"``, ``"datasets"``, ...)."""
    if not any(isinstance(f, _EngineSources) for f in sys.meta_path):
        sys.meta_path.append(_EngineSources())
    return importlib.import_module(f"{ENGINE_PACKAGE}.{name}")


def input_spec() -> Any:
    """ConvScope's ``InputSpec``: shape (C, H, W) and ``x = (pixel * scale - mean) / std``."""
    return engine(INPUT_SPEC_MODULE).InputSpec.from_json(INPUT)


# ---------------------------------------------------------------------------------------------
# The network: an interpreter of GRAPH.


def _pair(v: Any) -> tuple[int, int]:
    return (int(v[0]), int(v[1])) if isinstance(v, (list, tuple)) else (int(v), int(v))


def _module_for(node: dict[str, Any]) -> nn.Module | None:
    """The torch module holding ``node``'s parameters and buffers (None: it has none)."""
    kind = node["type"]
    if kind == "conv2d":
        return nn.Conv2d(
            int(node["in_channels"]),
            int(node["out_channels"]),
            _pair(node["kernel_size"]),
            stride=_pair(node.get("stride", 1)),
            padding=_pair(node.get("padding", 0)),
            bias=bool(node.get("bias", True)),
        )
    if kind == "dense":
        return nn.Linear(
            int(node["in_features"]), int(node["out_features"]), bias=bool(node.get("bias", True))
        )
    if kind == "batchnorm2d":
        return nn.BatchNorm2d(
            int(node["num_features"]),
            eps=float(node.get("eps", 1e-5)),
            momentum=float(node.get("momentum", 0.1)),
        )
    if kind in _FUNCTIONS:
        return None
    raise ValueError(f"{node['name']}: unknown operation {kind!r}")


def _pool(node: dict[str, Any], x: torch.Tensor) -> torch.Tensor:
    size = _pair(node["size"])
    stride = _pair(node.get("stride") or node["size"])
    padding = _pair(node.get("padding", 0))
    if node["type"] == "maxpool2d":
        return F.max_pool2d(x, size, stride, padding)
    count_pad = bool(node.get("count_include_pad", True))
    return F.avg_pool2d(x, size, stride, padding, count_include_pad=count_pad)


_FUNCTIONS = {
    "relu": lambda node, xs, training: F.relu(xs[0]),
    "tanh": lambda node, xs, training: torch.tanh(xs[0]),
    "sigmoid": lambda node, xs, training: torch.sigmoid(xs[0]),
    "maxpool2d": lambda node, xs, training: _pool(node, xs[0]),
    "avgpool2d": lambda node, xs, training: _pool(node, xs[0]),
    "globalavgpool": lambda node, xs, training: xs[0].mean(dim=(2, 3)),
    "flatten": lambda node, xs, training: torch.flatten(xs[0], 1),
    "dropout": lambda node, xs, training: F.dropout(xs[0], float(node["p"]), training),
    "add": lambda node, xs, training: torch.stack(xs).sum(0) if len(xs) > 2 else xs[0] + xs[1],
    "concat": lambda node, xs, training: torch.cat(xs, dim=1),
}


class Network(nn.Module):
    """The ConvScope graph as a ``torch.nn.Module``: logits ``(N, K)`` of ``(N, C, H, W)``.

    Each node with parameters is the module at its dotted name (``layer1.0.conv1``), so
    ``state_dict()`` has exactly the model file's keys; the other nodes are functions.
    """

    def __init__(self, graph: dict[str, Any] | None = None, classes: list[str] | None = None):
        super().__init__()
        # its own attributes start with "_" (ConvScope's node names never do) or are named in
        # engine.graph.TORCH_ATTRIBUTES: a node "output" or "graph" is a module here
        self._graph = graph if graph is not None else GRAPH
        self.classes = list(classes if classes is not None else CLASSES)
        self._nodes = list(self._graph["nodes"])
        self._output = self._graph.get("output") or self._nodes[-1]["name"]
        made = {n["name"]: m for n in self._nodes if (m := _module_for(n)) is not None}
        for name in sorted(made, key=lambda n: n.count(".")):  # parents before children
            parent: nn.Module = self
            *path, leaf = name.split(".")
            for part in path:
                if not hasattr(parent, part):
                    parent.add_module(part, nn.Module())
                parent = getattr(parent, part)
            parent.add_module(leaf, made[name])
        self._made = set(made)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The logits. In eval mode on a GPU the convolutions run in full float32: TF32, PyTorch's
        default for them, moves the probabilities by up to about 5e-4 from ConvScope's (training
        keeps it, for speed; TF32 matrix products, off by default, stay as they are set)."""
        if not x.is_cuda or self.training or not torch.backends.cudnn.allow_tf32:
            return self._logits(x)
        torch.backends.cudnn.allow_tf32 = False
        try:
            return self._logits(x)
        finally:
            torch.backends.cudnn.allow_tf32 = True

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        values: dict[str, torch.Tensor] = {"input": x}
        for node in self._nodes:
            name = node["name"]
            xs = [values[i] for i in node["inputs"]]
            if name in self._made:
                values[name] = self.get_submodule(name)(xs[0])
            else:
                values[name] = _FUNCTIONS[node["type"]](node, xs, self.training)
        return values[self._output]


# ---------------------------------------------------------------------------------------------
# Model files: ConvScope's .npz (arrays named like the state_dict + JSON meta).


def read_model_file(
    path: str | os.PathLike[str], expected: dict[str, torch.Tensor] | None = None
) -> tuple[dict[str, np.ndarray], dict]:
    """The arrays and the metadata of a ConvScope model file, read with ConvScope's own checks
    (a regular file of a sane size, the zip directory, each array's header against
    ``expected`` before its data is inflated; nothing is unpickled). ``expected`` (default:
    this network's ``state_dict()``) gives the names, shapes and kinds of the arrays.

    Raises ValueError naming the file and the problem (missing, unexpected or misshapen
    arrays, NaN weights, a damaged or foreign file).
    """
    expected = Network().state_dict() if expected is None else expected
    modelzip = engine("modelzip")
    try:
        with modelzip.open_archive(path) as data:
            if "meta" not in data.names:
                raise ValueError(f"{path} is not a ConvScope model file (no 'meta' entry)")
            meta = _parse_meta(data.read_text("meta", MAX_META_CHARS), path)
            _check_names(path, set(expected), set(data.names) - {"meta"})
            arrays = {k: data.read_array(k, tuple(t.shape), _kinds(t)) for k, t in expected.items()}
        for key, a in arrays.items():
            modelzip.check_values(path, key, a)  # NaN, a negative variance: as ConvScope's
    except engine("errors").ModelFileError as exc:
        raise ValueError(str(exc)) from None
    return arrays, meta


def _parse_meta(text: str, path: str | os.PathLike[str]) -> dict[str, Any]:
    try:
        meta = json.loads(text, parse_constant=lambda name: float("nan"))
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"{path}: the metadata is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{path} is not a ConvScope model file (its metadata is not an object)")
    return meta


def _check_names(path: str | os.PathLike[str], expected: set[str], found: set[str]) -> None:
    def listed(names: set[str]) -> str:
        first = sorted(names)[:4]
        return ", ".join(first) + (f" and {len(names) - 4} more" if len(names) > 4 else "")

    parts = [f"missing {listed(expected - found)}"] if expected - found else []
    parts += [f"unexpected {listed(found - expected)}"] if found - expected else []
    if parts:
        raise ValueError(f"{path} does not hold this network's weights: {'; '.join(parts)}")


def _kinds(t: torch.Tensor) -> tuple[Any, ...]:
    """The dtypes a model file may store ``t`` in (floats as float32 or float64)."""
    return (np.float32, np.float64) if t.is_floating_point() else (t.numpy().dtype.type,)


def load(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> Network:
    """The network with the weights of the ConvScope model file ``path``, in eval mode.

    The file must be of this network: the same arrays, classes and input preparation (the
    file this was exported from, or one its ``train`` wrote). Raises ValueError naming the
    problem. On a GPU too its probabilities equal ConvScope's (see ``Network.forward``).
    """
    net = Network()
    arrays, meta = read_model_file(path, net.state_dict())
    _check_same_model(path, meta)
    net.load_state_dict({k: torch.from_numpy(a) for k, a in arrays.items()}, strict=True)
    return net.to(device).eval()


def _check_same_model(path: str | os.PathLike[str], meta: dict[str, Any]) -> None:
    """The file's classes and input are this network's (``preprocess`` and the class names
    of ``predict`` and ``train`` are the exported model's)."""
    again = f"; export that file instead: convscope export {Path(path).name} --pytorch OUT.py"
    classes = meta.get("classes")
    if not isinstance(classes, list) or [str(c) for c in classes] != [str(c) for c in CLASSES]:
        shown = ", ".join(map(_shown, classes[:6])) if isinstance(classes, list) else "none"
        raise ValueError(
            f"{path} is a model of the classes {shown}, not of {', '.join(CLASSES[:6])}{again}"
        )
    try:
        same = engine(INPUT_SPEC_MODULE).InputSpec.from_json(meta.get("input")) == input_spec()
    except (engine("errors").EngineError, TypeError, ValueError, KeyError, AttributeError):
        same = False
    if not same:
        raise ValueError(f"{path} prepares its input otherwise than this network{again}")


def _shown(name: object) -> str:
    """A class name from a file, for one line: quoted when it holds a new line or another
    unprintable character, cut to 40 characters."""
    text = str(name)
    text = text if text.isprintable() else repr(text)
    return text if len(text) <= 40 else text[:37] + "..."


def plain_batchnorm(module: nn.Module) -> nn.Module:
    """``module`` with each SyncBatchNorm (multi-GPU training) replaced by a BatchNorm2d holding
    its parameters and running statistics: ``state_dict()`` keys and values are unchanged, and
    the network runs again on one process or the CPU. Returns the module (changed in place
    unless ``module`` is itself a SyncBatchNorm)."""
    if isinstance(module, nn.SyncBatchNorm):
        plain = nn.BatchNorm2d(
            module.num_features, module.eps, module.momentum, module.affine,
            module.track_running_stats,
        )  # fmt: skip
        state = module.state_dict()
        first = next(iter(state.values()), None)
        if first is not None:
            plain.to(first.device)
        plain.load_state_dict(state)
        return plain.train(module.training)
    for name, child in list(module.named_children()):
        module.add_module(name, plain_batchnorm(child))
    return module


def save(net: nn.Module, path: str | os.PathLike[str], meta: dict[str, Any] | None = None):
    """Write ``net`` as a ConvScope model file (atomically, with ConvScope's own writer; when
    ``path`` fails, to a rescue file that the error names)."""
    net = getattr(net, "module", net)  # DistributedDataParallel wraps the network
    arrays = {k: v.detach().cpu().numpy() for k, v in net.state_dict().items()}
    for k, a in arrays.items():
        if a.dtype.kind == "f":
            arrays[k] = a.astype(np.float32)
    meta = dict(META if meta is None else meta)
    meta["classes"] = list(getattr(net, "classes", CLASSES))
    text = json.dumps(meta, allow_nan=False)
    atomic = engine("atomic")
    try:  # a full disk after hours of training: the network goes to a rescue file instead
        written, failure = atomic.write_or_rescue(
            path, lambda f: np.savez(f, meta=np.array(text), **arrays)
        )
    except OSError as exc:
        raise ValueError(atomic.not_saved(path, exc)) from None
    if failure is not None:
        raise ValueError(atomic.not_saved(path, failure, written))
    return written


# ---------------------------------------------------------------------------------------------
# Images: exactly the preparation `convscope classify` applies with this model.


class _Model:
    """What ConvScope's inference functions read of a model: its classes and input spec."""

    def __init__(self) -> None:
        self.classes = list(CLASSES)
        self.input_spec = input_spec()


def prepared_image(image: Image.Image) -> np.ndarray:
    """uint8 ``(C, H, W)`` or ``(H, W)``: the picture as ConvScope prepares it, before scaling.

    The steps of `convscope classify`: the image as ``load_image`` reads a file (EXIF
    orientation applied, the file's own mode), then the engine's preparation for this model.
    """
    imageio = engine("imageio")
    image.load()
    upright = imageio.exif_transposed(image)
    array = imageio.image_from_pil(upright, None)
    if "inference" in ENGINE_SOURCES:
        inference, model = engine("inference"), _Model()
        prepared = inference.prepare_input(model, array, kind=PREPARATION)
        return inference.to_batch(model, [prepared.network])[0]
    c, h, w = input_spec().shape
    if PREPARATION == "digit":
        digit = engine("preprocess").prepare_digit(array).image
        return np.repeat(digit[None], c, axis=0) if c != 1 else digit
    array = imageio.image_from_pil(upright, "L" if c == 1 else "RGB")
    return engine("datasets").fit_image(array, (h, w), c)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 images ``(N, H, W)`` or ``(N, C, H, W)`` -> the float32 input ``(N, C, H, W)``."""
    return torch.from_numpy(input_spec().to_tensor(np.asarray(images)))


def preprocess(image: Image.Image) -> torch.Tensor:
    """``(1, C, H, W)`` float32: what `convscope classify` feeds this network for ``image``."""
    a = prepared_image(image)
    return to_tensor(a[None] if a.ndim == 3 else a[None, None])


# ---------------------------------------------------------------------------------------------
# Training


def _find_weights(given: str | None) -> Path | None:
    if given is not None:
        if not given.strip():  # an unset shell variable: not the model exported, silently
            raise ValueError("--weights is empty; give a ConvScope model file (.npz)")
        return Path(given)
    if SOURCE_MODEL:
        here = Path(__file__).resolve().parent
        for p in (
            Path(SOURCE_MODEL),
            here / Path(SOURCE_MODEL).name,
            Path(Path(SOURCE_MODEL).name),
        ):
            if p.is_file():
                return p
    return None


def _starting_network(args: argparse.Namespace, device: torch.device) -> Network:
    if args.from_scratch:
        torch.manual_seed(args.seed)
        return Network().to(device)
    path = _find_weights(args.weights)
    if path is None:
        raise ValueError(
            "no weights to start from: pass --weights MODEL.npz (the file this was exported "
            f"from: {SOURCE_MODEL or 'unknown'}) or --from-scratch"
        )
    return load(path, device)


def _dataset(folder: str, seed: int, say) -> tuple[torch.Tensor, ...]:
    """(train x, train y, test x, test y) of FOLDER's classes that are the network's, labels in
    CLASSES order, read by ConvScope's own dataset code (so a folder of CIFAR-10 trains a
    four-class network on its four classes); unreadable files are skipped with a line each.
    An existing folder is read even when it is called like a dataset bundled with ConvScope
    (``photos/``, ``mnist/``): those are not here."""
    c, h, w = input_spec().shape
    # "" is no folder (Path("") is the current one): ConvScope says there is no such dataset
    where = str(Path(folder).expanduser().resolve()) if folder and Path(folder).is_dir() else folder
    try:
        ds = engine("datasets").load_dataset(
            where, image_size=(h, w), channels=c, seed=seed, classes=list(CLASSES)
        )
    except ImportError:  # a dataset bundled with the app, which is not here
        raise ValueError(
            f"{folder!r} is a dataset bundled with ConvScope, not with this file: pass the "
            "folder that holds the images (one subfolder per class) or the IDX files"
        ) from None
    for line in ds.skipped_lines():
        say(line)
    resized = ds.resized_line("the network")  # as `convscope train` says it
    if resized:
        say(resized)
    # the folder's names matched to the network's exactly, else ignoring case (a folder "Cat"
    # for the class "cat"): ConvScope's own matching
    order = np.array(engine("datasets").class_indices(CLASSES, ds.classes, folder), np.int64)

    def part(images: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return to_tensor(images), torch.from_numpy(order[np.asarray(labels, dtype=np.int64)])

    return (*part(ds.train_images, ds.train_labels), *part(ds.test_images, ds.test_labels))


def _device(name: str, local_rank: int, local_world: int) -> torch.device:
    """The device of this process: on GPUs, the one of its local rank (``cuda:N`` names one for
    a lone process). Too few GPUs for the processes torchrun starts is said by every process, so
    the first one of the machine, which speaks, says it too."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"--device {name}: not a device; use auto, cpu or cuda") from None
    if device.type not in ("cpu", "cuda"):  # meta, mps, xla...: not what this file runs on
        raise ValueError(f"--device {name}: train runs on cpu or cuda; use auto, cpu or cuda")
    if device.type == "cpu":
        return device
    if not torch.cuda.is_available():
        raise ValueError(f"--device {name}: PyTorch sees no GPU here; use --device cpu")
    count = torch.cuda.device_count()
    if device.index is not None and local_world > 1:
        raise ValueError(
            f"--device {name}: under torchrun each process takes the GPU of its local rank; "
            "use --device cuda"
        )
    if device.index is None and local_world > count:
        raise ValueError(
            f"--device {name}: {local_world} processes on this machine and PyTorch sees {count} "
            f"GPU(s) here; start one process per GPU (torchrun --nproc_per_node {count})"
        )
    index = local_rank if device.index is None else device.index
    if index >= count:
        raise ValueError(
            f"--device {name}: PyTorch sees {count} GPU(s) here, cuda:0 to cuda:{count - 1}"
        )
    torch.cuda.set_device(index)
    return torch.device("cuda", index)


def _accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor, device, rank: int, world: int):
    """Correct, total and outputs not finite (huge weights overflow) over this process's share
    of ``x`` (every world-th sample)."""
    net.eval()
    correct = total = broken = 0
    with torch.no_grad():
        idx = torch.arange(len(x))[rank::world]  # empty when there are fewer images
        for i in range(0, len(idx), 512):
            batch = idx[i : i + 512]
            logits = net(x[batch].to(device))
            pred = logits.argmax(1).cpu()
            correct += int((pred == y[batch]).sum())
            broken += int((~torch.isfinite(logits).all(1)).sum())
            total += len(batch)
    return correct, total, broken


def _start_processes(device_name: str) -> tuple[int, int, torch.device]:
    """``(world, rank, device)``; under torchrun, joins the process group."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = _device(device_name, local_rank, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    if world > 1:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return world, (dist.get_rank() if world > 1 else 0), device


def _batchnorm_across(net: Network, device: torch.device, world: int, say) -> Network:
    """BatchNorm under several processes: on GPUs SyncBatchNorm, so that the statistics cover
    the global batch; on CPUs (gloo, where SyncBatchNorm does not run) plain BatchNorm, each
    process normalising with its own share, which one line says."""
    if world < 2 or not any(isinstance(m, nn.BatchNorm2d) for m in net.modules()):
        return net
    if device.type == "cuda":
        say(f"BatchNorm: statistics over the global batch of {world} processes (SyncBatchNorm)")
        return nn.SyncBatchNorm.convert_sync_batchnorm(net)
    say(
        "BatchNorm: each CPU process normalises with the statistics of its own share of the "
        "batch (SyncBatchNorm needs GPUs); the running averages kept are rank 0's"
    )
    return net


def _summed(t: torch.Tensor, device: torch.device, world: int) -> torch.Tensor:
    """``t`` summed over the processes (NCCL reduces tensors on the GPU only)."""
    if world < 2:
        return t
    import torch.distributed as dist

    on_device = t.to(device)
    dist.all_reduce(on_device)
    return on_device.cpu()


def _epoch(model: nn.Module, loader, opt, device: torch.device) -> torch.Tensor:
    """One pass over ``loader``: ``[sum of losses, correct, samples]`` of this process, summed
    where the batches are (reading each step's loss back would hold the CPU until the GPU has
    finished it, every step)."""
    model.train()
    stats = torch.zeros(3, dtype=torch.float64, device=device)
    for xb, yb in loader:
        opt.zero_grad(set_to_none=True)
        logits = model(xb)
        loss = F.cross_entropy(logits, yb)
        loss.backward()
        opt.step()
        with torch.no_grad():
            stats[0] += loss.detach().double() * len(yb)
            stats[1] += (logits.argmax(1) == yb).sum()
            stats[2] += len(yb)
    return stats.cpu()


def train(args: argparse.Namespace) -> int:
    """``train``: continue training on FOLDER; rank 0 writes the ConvScope model file. Under
    ``torchrun`` every process leaves its group, also after an error (a peer still waiting in
    a collective then fails at once instead of waiting for the 30-minute timeout)."""
    import torch.distributed as dist

    if args.threads:
        torch.set_num_threads(args.threads)
    world, rank, device = _start_processes(args.device)
    try:
        return _train(args, world, rank, device)
    finally:
        if world > 1 and dist.is_initialized():
            dist.destroy_process_group()


def _train(args: argparse.Namespace, world: int, rank: int, device) -> int:
    """The training of ``train``. A loss or weights (BatchNorm statistics included) no longer
    finite stop it with the weights of the last finite epoch: a model file with NaN or
    infinite numbers opens nowhere. Ctrl+C keeps the epochs finished: they are saved."""
    import torch.distributed as dist

    say = _say if rank == 0 else (lambda *a, **k: None)
    if not args.out.strip():  # Path("") is the current folder
        raise ValueError("--out is empty; give the name of the model file (.npz) to write")
    problem = engine("atomic").writable_problem(args.out)  # before the data and the hours
    if problem or not args.out.lower().endswith(".npz"):
        raise ValueError(f"--out {args.out}: {problem or 'a model file name must end in .npz'}")
    torch.manual_seed(args.seed)
    net = _starting_network(args, device)
    xtr, ytr, xte, yte = _dataset(args.data, args.seed, say)
    say(f"{len(xtr)} training and {len(xte)} test images, classes {CLASSES}, {world} process(es)")
    net = _batchnorm_across(net, device, world, say)
    model, loader, sampler = _parallel(net, xtr, ytr, args, world, rank, device)
    opt = torch.optim.SGD(
        net.parameters(), lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay
    )
    epochs: list[dict[str, Any]] = []
    good = _copy(net)
    try:
        for epoch in range(1, args.epochs + 1):
            if sampler is not None:
                sampler.set_epoch(epoch)
            start = time.perf_counter()
            stats = _summed(_epoch(model, loader, opt, device), device, world)
            test = torch.tensor(_accuracy(net, xte, yte, device, rank, world), dtype=torch.float64)
            test = _summed(test, device, world)
            loss, accuracy = (stats[:2] / max(stats[2].item(), 1)).tolist()
            bad = _not_finite(loss, int(test[2]), net, device, world)
            if bad:
                net.load_state_dict(good)
                kept = f"the weights of epoch {epoch - 1} are kept" if epochs else "no file written"
                say(f"epoch {epoch}: {bad} (try a smaller --lr); stopping, {kept}")
                break
            good = _copy(net)
            test_accuracy = test[0].item() / test[1].item() if test[1] > 0 else None
            epochs.append(
                {
                    "epoch": epoch,
                    "loss": loss,
                    "accuracy": accuracy,
                    "test_accuracy": test_accuracy,
                    "seconds": round(time.perf_counter() - start, 3),
                }
            )
            test_text = "" if test_accuracy is None else f", test {test_accuracy:.2%}"
            say(f"epoch {epoch}: loss {loss:.4f}, train {accuracy:.2%}{test_text}")
    except KeyboardInterrupt:  # Ctrl+C: the epochs finished are kept, no traceback
        net.load_state_dict(good)
        return _interrupted(args, net, epochs, world, rank, device)
    plain_batchnorm(net)  # in place: the file holds plain BatchNorm (the same keys)
    trained = bool(epochs) or args.epochs == 0
    if rank == 0 and trained:
        say(f"saved {save(net, args.out, _trained_meta(args, epochs, world, device))}")
    if world > 1:
        dist.barrier(device_ids=[device.index] if device.type == "cuda" else None)  # file written
    return 0 if trained else 1


def _copy(net: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def _not_finite(loss: float, broken: int, net: nn.Module, device, world: int) -> str:
    """What is no longer a finite number after an epoch ("" when all is): the loss, the
    weights or statistics (decided alike by every process: on CPUs each one's BatchNorm
    statistics are its own), or the outputs of ``broken`` test images (all processes')."""
    if not math.isfinite(loss):
        return "the loss is not finite"
    floats = [v for v in net.state_dict().values() if v.is_floating_point()]
    bad = float(any(not bool(torch.isfinite(v).all()) for v in floats))
    if _summed(torch.tensor([bad], dtype=torch.float64), device, world)[0].item() > 0:
        return "the weights or BatchNorm statistics are no longer finite numbers"
    if broken > 0:
        return "the network's outputs are no longer finite numbers"
    return ""


def _interrupted(args, net: nn.Module, epochs: list, world: int, rank: int, device) -> int:
    """Ctrl+C: the weights of the last epoch finished saved (one line says where), exit 130."""
    if rank != 0:
        return 130
    plain_batchnorm(net)
    where = f"{Path(sys.argv[0]).name} train: interrupted in epoch {len(epochs) + 1}"
    if epochs:
        path = save(net, args.out, _trained_meta(args, epochs, world, device))
        print(f"{where}; saved the weights of epoch {len(epochs)} to {path}", file=sys.stderr)
    else:
        print(f"{where}; no epoch had finished, nothing saved", file=sys.stderr)
    return 130


def _parallel(net: Network, x, y, args, world: int, rank: int, device):
    """``(model to train, batches, sampler)``: under torchrun the network wrapped in
    DistributedDataParallel and a DistributedSampler giving each process its share."""
    from torch.nn.parallel import DistributedDataParallel
    from torch.utils.data import DistributedSampler, TensorDataset

    model: nn.Module = net
    sampler: DistributedSampler | None = None
    if world > 1:
        ids = [device.index] if device.type == "cuda" else None
        model = DistributedDataParallel(net, device_ids=ids)
        sampler = DistributedSampler(TensorDataset(y), world, rank, shuffle=True, seed=args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    return model, _Batches(x, y, args.batch_size, sampler, gen, device), sampler


class _Batches:
    """One epoch's batches of this process, cut from the whole tensors by index, shuffled (a
    DataLoader over a TensorDataset fetches and stacks them sample by sample, which on a GPU
    took most of a small network's step). On a GPU the images are moved to it once when they
    take at most a quarter of its free memory, else batch by batch."""

    def __init__(self, x, y, size: int, sampler, gen: torch.Generator, device: torch.device):
        self.size, self.sampler, self.gen, self.device = size, sampler, gen, device
        if device.type == "cuda" and x.nelement() * x.element_size() <= _free_bytes(device) // 4:
            x, y = x.to(device), y.to(device)
        self.x, self.y = x, y

    def __iter__(self):
        if self.sampler is not None:
            order = torch.tensor(list(self.sampler), dtype=torch.int64)
        else:
            order = torch.randperm(len(self.x), generator=self.gen)
        # a last batch of one sample: BatchNorm over 1x1 maps has no variance to use and
        # PyTorch stops the run; ConvScope adds it to the batch before, here it sits out
        if len(order) > 1 and len(order) % self.size == 1:
            order = order[:-1]
        order = order.to(self.x.device)
        for start in range(0, len(order), self.size):
            idx = order[start : start + self.size]
            xb, yb = self.x[idx], self.y[idx]
            yield xb.to(self.device, non_blocking=True), yb.to(self.device, non_blocking=True)


def _free_bytes(device: torch.device) -> int:
    try:
        return int(torch.cuda.mem_get_info(device)[0])
    except RuntimeError:  # not reported: move nothing ahead
        return 0


def _trained_meta(args: argparse.Namespace, epochs: list, world: int, device: torch.device):
    meta = dict(META)
    meta["history"] = None  # ConvScope's own training history no longer describes these weights
    meta["evaluation"] = None
    meta["pytorch_training"] = {
        "data": str(args.data),
        "epochs": epochs,
        "processes": world,
        "device": device.type,
        "batch_size_per_process": args.batch_size,
        "lr": args.lr,
        "momentum": args.momentum,
        "weight_decay": args.weight_decay,
        "seed": args.seed,
        "torch_version": torch.__version__,
        "started_from": "scratch" if args.from_scratch else str(_find_weights(args.weights)),
    }
    return meta


def predict(args: argparse.Namespace) -> int:
    """``predict``: the class probabilities of each image, as `convscope classify` gives them:
    files read with its checks (a file that is not an image, too large or truncated is one line
    on stderr and the others still run), folders expanded to the images inside."""
    path = _find_weights(args.weights)
    if path is None:
        raise ValueError("no weights: pass --weights MODEL.npz")
    net = load(path)
    inference, imageio = engine("inference"), engine("imageio")
    files, problems = inference.expand_paths(args.images)
    for given, problem in problems:
        print(f"{given}: {problem}", file=sys.stderr)
    failed = len(problems)
    for name in files:
        try:
            x = preprocess(imageio.load_pil_image(name))
        except Exception as exc:  # one line per unreadable image, the others still run
            print(f"{name}: {inference.without_name(str(exc), Path(name))}", file=sys.stderr)
            failed += 1
            continue
        with torch.no_grad():
            p = net(x).softmax(1)[0]
        k = int(p.argmax())
        rest = "  ".join(f"{c} {v:5.1%}" for c, v in zip(net.classes, p.tolist(), strict=True))
        _say(f"{name}: {net.classes[k]} ({p[k].item():.1%})   {rest}")
    # as `convscope classify`: 0 all classified, 1 some failed, 2 none (or no image at all)
    return 2 if failed == len(files) + len(problems) else 1 if failed else 0


def _say(text: str) -> None:
    """``print(text)``, with what standard output cannot encode (a class folder named in bytes
    that are not UTF-8, on a terminal writing UTF-8 strictly) as backslash escapes, as on
    standard error, instead of an error."""
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    try:
        print(text.encode(encoding, "backslashreplace").decode(encoding))
    except LookupError:  # an encoding Python does not know: as print does it
        print(text)


MAX_SEED = 2**64 - 1  # PyTorch's generators take seeds up to this
MAX_THREADS = 1024  # far more threads than cores: PyTorch could crash creating them


def _at_least(low: float, kind: type = int, high: float | None = None):
    """An argparse type: a finite number of ``kind`` that is at least ``low`` (and at most
    ``high``, when given)."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text[:40]!r}") from None
        if (isinstance(value, float) and not math.isfinite(value)) or value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, not {text[:40]}")
        cap = high if high is not None or kind is not int else 2**63 - 1  # a 400-digit --epochs
        if cap is not None and value > cap:
            raise argparse.ArgumentTypeError(f"must be at most {cap}, not {text[:40]}")
        return value

    return parse


def main(argv: list[str] | None = None) -> int:
    title = __doc__.splitlines()[0]  # argparse %-formats a description holding "%(prog)"
    parser = argparse.ArgumentParser(
        description=title.replace("%", "%%") if "%(prog)" in title else title,
        epilog="python %(prog)s predict a.png;  python %(prog)s train --data FOLDER --epochs 10 "
        "--out bigger.npz;  torchrun --nproc_per_node GPUS %(prog)s train ... (see each --help)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    source = Path(SOURCE_MODEL).name.replace("%", "%%")  # argparse %-formats every help
    weights = f"(default: {source or 'none'}, the model exported, found at its "
    weights += "path or beside this file)"
    p = sub.add_parser("predict", help="classify image files")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files or folders of them")
    p.add_argument("--weights", help=f"ConvScope model file {weights}")
    t = sub.add_parser("train", help="continue training; writes a ConvScope model file")
    t.add_argument(
        "--data",
        required=True,
        help="a folder with one subfolder of images per class (optionally under train/ and "
        "test/; else 20%% of each class is the test set), MNIST-style IDX files or CIFAR-10 "
        "binary batches; only the network's classes are used",
    )
    t.add_argument("--epochs", type=_at_least(0), default=1, help="passes (default %(default)s)")
    t.add_argument("--out", required=True, help="the ConvScope model file (.npz) to write")
    t.add_argument("--weights", help=f"start from this model file {weights}")
    t.add_argument("--from-scratch", action="store_true", help="start from random weights")
    number = {"type": _at_least(0.0, float), "metavar": "X"}
    t.add_argument("--batch-size", type=_at_least(1), default=64, metavar="N",
                   help="images per step and process (default %(default)s)")  # fmt: skip
    t.add_argument("--lr", default=0.01, help="SGD learning rate (default %(default)s)", **number)
    t.add_argument("--momentum", default=0.9, help="(default %(default)s)", **number)
    t.add_argument("--weight-decay", default=0.0, help="L2 penalty (default 0)", **number)
    t.add_argument("--seed", type=_at_least(0, high=MAX_SEED), default=0, metavar="N",
                   help="shuffling, test split, random weights (default 0)")  # fmt: skip
    t.add_argument("--device", default="auto",
                   help="auto (a GPU if there is one), cpu, cuda, "
                        "cuda:N (GPU N; one process)")  # fmt: skip
    t.add_argument("--threads", type=_at_least(1, high=MAX_THREADS), metavar="N",
                   help="CPU threads per process")  # fmt: skip
    if not _speaks():  # argparse's usage and error: the first process of the machine says it
        parser.print_usage = lambda file=None: None  # type: ignore[method-assign]
        for choice in sub.choices.values():
            choice.print_usage = parser.print_usage  # type: ignore[method-assign]
            choice.exit = _silent_exit  # type: ignore[method-assign]
    args = parser.parse_args(argv)
    try:
        return predict(args) if args.command == "predict" else train(args)
    except (engine("errors").EngineError, ValueError, OSError) as exc:
        # a bad folder, image or model file: one line, not a traceback
        if _speaks():
            print(f"{Path(sys.argv[0]).name} {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl+C outside the epochs (reading the data, saving)
        if _speaks():
            print(f"{Path(sys.argv[0]).name} {args.command}: interrupted", file=sys.stderr)
        return 130
    except (getattr(torch.cuda, "OutOfMemoryError", MemoryError), MemoryError) as exc:
        # said by the process it happened to, whichever it is
        what = "memory" if isinstance(exc, MemoryError) else "GPU memory"
        rank = os.environ.get("RANK")
        by = f" (process {rank})" if rank is not None and os.environ.get("WORLD_SIZE") else ""
        smaller = "; try a smaller --batch-size" if args.command == "train" else ""
        print(f"{Path(sys.argv[0]).name} {args.command}: error: out of {what}{by}{smaller}",
              file=sys.stderr)  # fmt: skip
        return 2


def _speaks() -> bool:
    """False in torchrun's second and later processes on a machine (LOCAL_RANK 1, 2...): a bad
    argument or folder fails them all alike, and the first one's line says it once."""
    return os.environ.get("LOCAL_RANK", "0") == "0"


def _silent_exit(status: int = 0, message: str | None = None):
    sys.exit(status)


if __name__ == "__main__":
    sys.exit(main())
