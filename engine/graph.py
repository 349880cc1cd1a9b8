"""A network: a directed acyclic graph of named nodes, with the model API the app uses.

Each node is a layer (:mod:`engine.layers`, :mod:`engine.blocks`) plus the names of the values
it reads: ``"input"`` or earlier nodes. Node names are PyTorch module paths (dots allowed,
``layer1.0.conv1``); a parameter or buffer is reached by ``"<node>.<key>"``, exactly the
``state_dict()`` key of the equivalent ``torch.nn`` module. A chain (LeNet) is the simple case,
built by :class:`engine.model.Sequential`.

:meth:`Network.graph_spec` writes the graph as JSON (``{"name": "graph", "input_shape", "nodes",
"output"}``, see docs/ARCHITECTURE.md) and ``engine.model.build_model`` rebuilds it.
The executor is :mod:`engine.executor`; batch sharding over threads or processes is
:mod:`engine.shards`.
"""

from __future__ import annotations

import copy
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine import executor, shards
from engine.blocks import Dropout
from engine.errors import ShapeError
from engine.executor import INPUT
from engine.inputspec import InputSpec
from engine.layers import Conv2D, Layer
from engine.losses import softmax, softmax_cross_entropy

# A node name: PyTorch module path segments (letters, digits, _) joined by dots.
NAME_RE = re.compile(r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$")
RESERVED = (INPUT, "softmax")
#: Segments a node name cannot have: the exported ``torch.nn.Module`` (and each container on a
#: dotted path) already has these attributes, so ``add_module`` refuses them ("attribute
#: 'forward' already exists"); names starting with "_" are its private ones (``__class__``,
#: ``_modules``). ``nn.Module``'s public attributes (torch 2.x; a test checks the installed
#: torch) and the exported network's ``classes``.
TORCH_ATTRIBUTES = frozenset(
    (
        "T_destination add_module apply bfloat16 buffers call_super_init children compile cpu "
        "cuda double dump_patches eval extra_repr float forward get_buffer get_extra_state "
        "get_parameter get_submodule half ipu load_state_dict modules mtia named_buffers "
        "named_children named_modules named_parameters parameters register_backward_hook "
        "register_buffer register_forward_hook register_forward_pre_hook "
        "register_full_backward_hook register_full_backward_pre_hook "
        "register_load_state_dict_post_hook register_load_state_dict_pre_hook register_module "
        "register_parameter register_state_dict_post_hook register_state_dict_pre_hook "
        "requires_grad_ set_extra_state set_submodule share_memory state_dict to to_empty "
        "train training type xpu zero_grad classes"
    ).split()
)

INFERENCE_BLOCK = 64  # samples per thread in one inference block of Network.forward


@dataclass(frozen=True)
class LayerInfo:
    """One row of :meth:`Network.summary`: ``output_shape`` without N; ``inputs`` the names of
    the values the node reads (``"input"`` for the network's input)."""

    name: str
    kind: str
    output_shape: tuple[int, ...]
    n_params: int
    inputs: tuple[str, ...] = ()


class Network:
    """A graph of named nodes; ``forward`` returns logits ``(N, K)``.

    ``nodes``: ``(layer, inputs)`` pairs in topological order (each input is ``"input"`` or an
    earlier node's name); ``output`` names the node giving the class scores (default: the last).
    ``architecture`` is a JSON-able dict that ``build_model`` turns back into the same structure
    (default: :meth:`graph_spec`); ``meta`` is free JSON-able metadata (history, evaluation, ...).

    Layers keep state between ``forward`` and ``backward`` (and reuse buffers), so one thread at
    a time trains or evaluates a model; :meth:`activations` is the exception (it runs on its own
    replica of the layers). Use :meth:`clone` for an independent copy.
    """

    def __init__(
        self,
        nodes: Sequence[tuple[Layer, Sequence[str]]],
        input_spec: InputSpec,
        classes: Sequence[str] | None = None,
        architecture: dict[str, Any] | None = None,
        meta: dict[str, Any] | None = None,
        output: str | None = None,
    ) -> None:
        self.input_spec = input_spec
        self.nodes: dict[str, Layer] = {}
        self.inputs: dict[str, tuple[str, ...]] = {}
        for layer, ins in nodes:
            self._add(layer, ins)
        if not self.nodes:
            raise ShapeError("a network needs at least one node")
        self.output = output if output is not None else list(self.nodes)[-1]
        if self.output not in self.nodes:
            raise ShapeError(f"the output {self.output!r} is not a node of the network")
        self._check_all_used()
        self._check_keys()
        self._shapes = self._infer_shapes()
        out = self._shapes[self.output]
        if len(out) != 1:
            raise ShapeError(
                f"the last layer must output class scores (K,), but outputs {out}; "
                "end with Flatten and a Dense layer"
            )
        k = out[0]
        self.classes: list[str] = (
            list(classes) if classes is not None else [str(i) for i in range(k)]
        )
        if len(self.classes) != k:
            raise ShapeError(f"{len(self.classes)} class names given for a model with {k} outputs")
        self.architecture: dict[str, Any] = (
            architecture if architecture is not None else self.graph_spec()
        )
        self.meta: dict[str, Any] = dict(meta) if meta else {}
        self.rng = np.random.default_rng(0)  # dropout masks; training sets the run's generator
        executor.mark_batch_inner(self.nodes, self.inputs)
        self._plan = executor.make_plan(self.nodes, self.inputs, self.output, shapes=self._shapes)
        self._plain = executor.make_plan(self.nodes, self.inputs, self.output, swap=False)
        self._inspector: dict[str, Layer] = {}
        self._shards = shards.Shards(self)

    # -- structure -----------------------------------------------------------------------

    def _add(self, layer: Layer, ins: Sequence[str]) -> None:
        name = layer.name
        if not isinstance(name, str) or not NAME_RE.match(name) or name in RESERVED:
            raise ShapeError(
                f"bad node name {name!r}: use letters, digits and _ in dot-separated parts "
                f"(like layer1.0.conv1), not {' or '.join(RESERVED)}"
            )
        for part in name.split("."):
            if part.startswith("_") or part in TORCH_ATTRIBUTES:
                why = (
                    "starts with _, which PyTorch keeps for its modules' own attributes"
                    if part.startswith("_")
                    else "is an attribute of every PyTorch module"
                )
                raise ShapeError(
                    f"bad node name {name!r}: {part!r} {why} (the exported network could not "
                    "have it); rename the node"
                )
        if name in self.nodes:
            raise ShapeError(f"node names must be unique; repeated: {name}")
        ins = tuple(ins)
        for i in ins:
            if i != INPUT and i not in self.nodes:
                raise ShapeError(
                    f"{name} reads {i!r}, which is not 'input' or a node defined before it; "
                    "list the nodes in topological order"
                )
        if layer.n_inputs == 1 and len(ins) != 1:
            raise ShapeError(f"{name}: a {layer.kind} node reads exactly one input, got {ins}")
        if layer.n_inputs == 0 and len(ins) < 2:
            raise ShapeError(f"{name}: a {layer.kind} node reads two or more inputs, got {ins}")
        self.nodes[name] = layer
        self.inputs[name] = ins

    def _check_all_used(self) -> None:
        used = {self.output}
        for name in reversed(list(self.nodes)):
            if name in used:
                used.update(self.inputs[name])
        unused = [n for n in self.nodes if n not in used]
        if unused:
            raise ShapeError(
                f"node(s) {', '.join(unused[:5])} do not lead to the output {self.output!r}; "
                "remove them or connect them"
            )

    def _check_keys(self) -> None:
        counts = Counter(k for _, k, _ in self._named(("params", "buffers")))
        dup = sorted({k for k, n in counts.items() if n > 1} | (counts.keys() & self.nodes.keys()))
        if dup:
            raise ShapeError(f"parameter names collide with other names: {', '.join(dup)}")

    def _infer_shapes(self) -> dict[str, tuple[int, ...]]:
        shapes: dict[str, tuple[int, ...]] = {INPUT: tuple(self.input_spec.shape)}
        for name, layer in self.nodes.items():
            ins = [shapes[i] for i in self.inputs[name]]
            shape = tuple(layer.output_shape(ins[0] if layer.n_inputs == 1 else ins))  # type: ignore[arg-type]
            if min(shape) < 1:
                raise ShapeError(
                    f"{name}: output shape {shape} is empty; use a smaller kernel or stride"
                )
            shapes[name] = shape
        return shapes

    @property
    def layers(self) -> list[Layer]:
        """The layers in topological order."""
        return list(self.nodes.values())

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def output_shape(self, name: str) -> tuple[int, ...]:
        """The shape (without N) of a node's output, or of ``"input"``."""
        if name != INPUT:
            self.layer(name)  # a ShapeError naming the nodes for an unknown name
        return self._shapes[name]

    def graph_spec(self) -> dict[str, Any]:
        """The expanded graph as JSON: ``{"name": "graph", "input_shape": [C, H, W], "nodes":
        [{**layer.config(), "inputs": [...]}, ...], "output": name}``; ``build_model`` of it
        rebuilds this network (with fresh weights)."""
        return {
            "name": "graph",
            "input_shape": [int(v) for v in self.input_spec.shape],
            "nodes": [
                {**layer.config(), "inputs": list(self.inputs[name])}
                for name, layer in self.nodes.items()
            ],
            "output": self.output,
        }

    # -- threads and processes -------------------------------------------------------------

    @property
    def threads(self) -> int:
        """Threads a batch is split over in :meth:`forward`/:meth:`backward`/:meth:`train_step`
        (default 1); see :mod:`engine.shards`. ``model.processes = True`` (Linux) runs training
        shards 1.. in forked worker processes instead of threads."""
        return self._shards.threads

    @threads.setter
    def threads(self, n: int) -> None:
        self._shards.set_threads(n)

    @property
    def processes(self) -> bool:
        return self._shards.processes

    @processes.setter
    def processes(self, flag: bool) -> None:
        self._shards.processes = bool(flag)

    # -- compute -------------------------------------------------------------------------

    def _as_input(self, x: np.ndarray) -> np.ndarray:
        if x.dtype == np.uint8:
            return self.input_spec.to_tensor(x)
        if x.ndim != 4 or tuple(x.shape[1:]) != tuple(self.input_spec.shape):
            raise ShapeError(
                f"the model takes (N, {', '.join(map(str, self.input_spec.shape))}) tensors, got "
                f"{x.shape}; convert images with model.input_spec.to_tensor"
            )
        return x

    def _masks(self, n: int) -> dict[str, np.ndarray]:
        """Dropout masks for a whole training batch of ``n``, drawn from :attr:`rng` in node
        order (so they do not depend on how the batch is split)."""
        return {
            name: layer.draw_mask(self.rng, (n, *self._shapes[name]))
            for name, layer in self.nodes.items()
            if isinstance(layer, Dropout) and layer.p > 0
        }

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """``x (N, C, H, W)`` float tensor (or uint8 images) -> logits ``(N, K)``.

        Runs the nodes in plan order (see :func:`engine.executor.make_plan`), split over
        :attr:`threads`. ``training`` selects batch statistics (BatchNorm) and dropout; only a
        training pass keeps what :meth:`backward` needs (evaluation of a batch frees it layer by
        layer).
        """
        x = self._as_input(x)
        n = x.shape[0]
        block = INFERENCE_BLOCK * self.threads
        if not training and n > block:
            # big inference batches in blocks: the layers' buffers stay training-sized
            # (no 50 MB of patches for a batch of 500) and warm in cache
            return np.concatenate([self.forward(x[a : a + block]) for a in range(0, n, block)])
        masks = self._masks(n) if training else {}
        if self._shards.split(n):
            return self._shards.forward(x, training, masks)
        self._shards.clear()
        for name, m in masks.items():
            self.nodes[name].mask = m  # type: ignore[attr-defined]
        # an evaluation pass keeps nothing for a backward that never comes, except for one
        # image (a classify stroke), whose few kept arrays are small and reused: releasing
        # them made LeNet-5's single-image pass ~10% slower (buffers made anew each call)
        release = not training and n > 1
        return executor.forward(self.nodes, self._plan, x, training, release=release)

    def backward(self, dlogits: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        """Backpropagate ``dlogits (N, K)``; fills every layer's grads; returns ``dx`` (N,C,H,W).

        ``input_grad=False`` skips the gradient w.r.t. the input image (returns None): training
        never needs it, and for the first convolution it costs as much as its weight gradient.
        """
        if self._shards.active:
            return self._shards.backward(dlogits, input_grad)
        return executor.backward(self.nodes, self._plan, dlogits, input_grad)

    def train_step(
        self, x: np.ndarray, labels: np.ndarray, loss_fn=softmax_cross_entropy
    ) -> tuple[float, np.ndarray]:
        """Forward, loss and backward of one training batch: fills the grads; returns
        ``(loss, logits (N, K))``. Same gradients as ``forward`` + ``loss_fn`` + ``backward``.

        ``loss_fn(z, labels, batch=N) -> (loss, dz)`` (see :mod:`engine.losses`). With
        :attr:`threads` > 1 each shard runs forward, the loss (normalised by the whole batch's
        ``N``) and backward in one go: one hand-over between threads per batch instead of two.
        """
        x = self._as_input(x)
        labels = np.asarray(labels)
        n = x.shape[0]
        if not self._shards.split(n):
            z = self.forward(x, training=True)
            loss, dz = loss_fn(z, labels)
            executor.backward(self.nodes, self._plan, dz, False, release=True)
            return float(loss), z
        return self._shards.train_step(x, labels, loss_fn, self._masks(n))

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Softmax probabilities ``(N, K)`` for a tensor (or uint8 images)."""
        return softmax(self.forward(x))

    def activations(self, x: np.ndarray) -> list[tuple[str, np.ndarray]]:
        """``[("input", x), (node name, output), ..., ("softmax", probs)]``: every node in
        topological order, as contiguous float32 copies (evaluation mode).

        ``x`` is a float tensor or uint8 images (converted with ``input_spec``). Runs on a
        replica of the layers that shares the weights but none of the work buffers, so a view
        may call it while another thread trains the model (it then sees the weights of the
        moment).
        """
        x = self._as_input(x)
        if set(self._inspector) != set(self.nodes):
            self._inspector = {n: layer.replica() for n, layer in self.nodes.items()}
        kept: list[tuple[str, np.ndarray]] = []
        z = executor.forward(self._inspector, self._plain, x, False, keep=kept)
        out = [(INPUT, np.array(x, dtype=np.float32))]
        out += [(n, np.array(a, dtype=np.float32, order="C")) for n, a in kept]
        out.append(("softmax", softmax(np.array(z, dtype=np.float64)).astype(np.float32)))
        return out

    # -- parameters and buffers ---------------------------------------------------------------

    def _named(self, what: Sequence[str]):
        for name, layer in self.nodes.items():
            for attr in what:
                for key, a in getattr(layer, attr).items():
                    yield attr, f"{name}.{key}", a

    def parameters(self) -> dict[str, np.ndarray]:
        """``{"conv1.weight": array, ...}``: the live arrays (optimisers update them in place)."""
        return {k: a for _, k, a in self._named(("params",))}

    def gradients(self) -> dict[str, np.ndarray]:
        """Same keys as :meth:`parameters`: the live gradient arrays filled by :meth:`backward`."""
        return {k: a for _, k, a in self._named(("grads",))}

    def buffers(self) -> dict[str, np.ndarray]:
        """State that is not trained, by name (``bn1.running_mean``, ``bn1.running_var``,
        ``bn1.num_batches_tracked``): the live arrays."""
        return {k: a for _, k, a in self._named(("buffers",))}

    def state_dict(self) -> dict[str, np.ndarray]:
        """Parameters and buffers, node by node, named and ordered as the equivalent
        ``torch.nn`` module's ``state_dict()``: the live arrays."""
        return {k: a for _, k, a in self._named(("params", "buffers"))}

    def get_weights(self) -> dict[str, np.ndarray]:
        """Copies of the parameters, by name."""
        return {k: p.copy() for k, p in self.parameters().items()}

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        """Copy ``weights`` into the live parameters (in place, so optimisers keep working).

        ``weights`` holds every parameter and may hold buffers (a :meth:`state_dict`): those
        are copied too. Raises :class:`ShapeError` naming every missing/unexpected name, wrong
        shape, wrong dtype or non-finite value; nothing is changed then.
        """
        params, bufs = self.parameters(), self.buffers()
        missing = sorted(set(params) - set(weights))
        extra = sorted(set(weights) - set(params) - set(bufs))
        problems = []
        if missing:
            problems.append(f"missing {', '.join(missing)}")
        if extra:
            problems.append(f"unexpected {', '.join(extra)}")
        live = {**params, **bufs}
        for key in sorted(set(live) & set(weights)):
            v, p = np.asarray(weights[key]), live[key]
            if v.shape != p.shape:
                problems.append(f"{key} has shape {v.shape}, expected {p.shape}")
            elif p.dtype.kind == "f" and v.dtype.kind != "f":
                problems.append(f"{key} has dtype {v.dtype}, expected a float array")
            elif p.dtype.kind in "iu" and v.dtype.kind not in "iu":
                problems.append(f"{key} has dtype {v.dtype}, expected an integer array")
            elif not np.isfinite(v).all():
                problems.append(f"{key} contains NaN or inf")
        if problems:
            raise ShapeError("weights do not fit this model: " + "; ".join(problems))
        for key in set(live) & set(weights):
            live[key][...] = weights[key]

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Like :meth:`set_weights`, but every buffer must be given too."""
        missing = sorted(set(self.buffers()) - set(state))
        if missing:
            raise ShapeError(f"weights do not fit this model: missing {', '.join(missing)}")
        self.set_weights(state)

    def astype(self, dtype: np.dtype | type) -> Network:
        """Convert every parameter (and float buffer) to ``dtype`` (float64 for gradient
        checks); returns self."""
        for layer in self.nodes.values():
            layer.astype(dtype)
        self._shards.reset()
        self._inspector = {}
        return self

    def clone(self) -> Network:
        """An independent copy: same architecture, weights, buffers, input spec, classes, meta."""
        from engine.model import build_model

        m = build_model(self.architecture, classes=self.classes)
        m.input_spec = self.input_spec
        m.meta = copy.deepcopy(self.meta)
        m.load_state_dict(self.state_dict())
        return m

    # -- introspection -------------------------------------------------------------------

    def summary(self) -> list[LayerInfo]:
        """One :class:`LayerInfo` per node, in topological order."""
        return [
            LayerInfo(n, layer.kind, self._shapes[n], layer.n_params, self.inputs[n])
            for n, layer in self.nodes.items()
        ]

    def layer(self, name: str) -> Layer:
        try:
            return self.nodes[name]
        except KeyError:
            raise ShapeError(f"no layer named {name!r}; layers: {', '.join(self.nodes)}") from None

    def conv_filters(self, layer_name: str) -> np.ndarray:
        """A copy of a convolution's weights ``(F, C, KH, KW)``."""
        layer = self.layer(layer_name)
        if not isinstance(layer, Conv2D):
            convs = [n for n, lay in self.nodes.items() if isinstance(lay, Conv2D)]
            raise ShapeError(
                f"{layer_name} is a {layer.kind} layer, not a convolution; "
                f"convolutions: {', '.join(convs) or 'none'}"
            )
        return layer.params["weight"].copy()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.architecture.get('name')}, {len(self.nodes)} nodes)"
