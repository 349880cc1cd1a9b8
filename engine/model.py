"""Models: the input convention, a Sequential of named layers, and the builders.

A model walks a list of named layers. Parameters are reached by ``"<layer>.<param>"`` names that
match the ``state_dict`` keys of the equivalent ``torch.nn`` model (``conv1.weight``, ...,
``fc3.bias``), so weights move between the two without renaming. Branching blocks (residual
add, concatenation) can later be added as layer classes that hold sub-layers: the model only
relies on the layer interface (forward/backward/params/grads/output_shape/config).
"""

from __future__ import annotations

import copy
import itertools
import mmap
import multiprocessing
import sys
import weakref
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from engine.errors import ShapeError
from engine.layers import (
    AvgPool2D,
    Conv2D,
    Dense,
    Flatten,
    Layer,
    MaxPool2D,
    ReLU,
    Sigmoid,
    Tanh,
    layer_from_config,
)
from engine.losses import softmax, softmax_cross_entropy


@dataclass(frozen=True)
class InputSpec:
    """What the network takes: ``shape (C, H, W)`` and the pixel normalisation
    ``x = (pixel * scale - mean) / std`` (MNIST's mean and std by default)."""

    shape: tuple[int, int, int] = (1, 28, 28)
    scale: float = 1 / 255
    mean: float = 0.1307
    std: float = 0.3081

    @property
    def pad_value(self) -> float:
        """What a pixel of 0 maps to; the value used to pad smaller images."""
        return float(np.float32(-self.mean / self.std))

    def to_tensor(self, images: np.ndarray) -> np.ndarray:
        """uint8 ``(N,H,W)``, ``(N,C,H,W)`` or one ``(H,W)`` image -> float32 ``(N,C,H,W)``.

        ``(pixel*scale - mean)/std``; images smaller than ``shape`` are zero-padded, centred
        (the pad value is what pixel 0 maps to, so padding looks like more background: MNIST's
        28x28 becomes the article's 32x32).
        """
        a = np.asarray(images)
        if a.ndim == 2:
            a = a[None, None]
        elif a.ndim == 3:
            a = a[:, None]
        elif a.ndim != 4:
            raise ShapeError(
                f"images must be (N,H,W) or (N,C,H,W), got an array of shape {a.shape}"
            )
        c, h, w = self.shape
        n, ac, ah, aw = a.shape
        if ac != c:
            raise ShapeError(
                f"images have {ac} channel(s) but the model takes {c}; convert them "
                f"({'to grayscale' if c == 1 else 'to RGB'}) first"
            )
        if ah > h or aw > w:
            raise ShapeError(f"images are {ah}x{aw} but the model takes {h}x{w}; resize them first")
        # x = pixel * (scale/std) - mean/std, in float32 (7x faster than a lookup-table gather)
        x = a.astype(np.float32)
        x *= np.float32(self.scale / self.std)
        x += np.float32(-self.mean / self.std)
        if (ah, aw) == (h, w):
            return np.ascontiguousarray(x, dtype=np.float32)
        out = np.full((n, c, h, w), self.pad_value, dtype=np.float32)
        top, left = (h - ah) // 2, (w - aw) // 2
        out[:, :, top : top + ah, left : left + aw] = x
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "shape": list(self.shape),
            "scale": float(self.scale),
            "mean": float(self.mean),
            "std": float(self.std),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> InputSpec:
        try:
            shape = tuple(int(v) for v in d["shape"])
            if len(shape) != 3 or min(shape) < 1:
                raise ValueError(f"shape {shape}")
            spec = cls(
                shape=shape,  # type: ignore[arg-type]
                scale=float(d.get("scale", 1 / 255)),
                mean=float(d.get("mean", 0.1307)),
                std=float(d.get("std", 0.3081)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ShapeError(f"bad input description {d!r}: {exc}") from None
        if not np.isfinite([spec.scale, spec.mean, spec.std]).all() or spec.std == 0:
            raise ShapeError(
                f"bad input description {d!r}: scale, mean, std must be finite, std != 0"
            )
        return spec


@dataclass(frozen=True)
class LayerInfo:
    """One row of :meth:`Sequential.summary`: ``output_shape`` without N."""

    name: str
    kind: str
    output_shape: tuple[int, ...]
    n_params: int


INFERENCE_BLOCK = 64  # samples per thread in one inference block of Sequential.forward


class Sequential:
    """Layers applied in order. ``forward`` returns logits ``(N, K)``.

    ``architecture`` is a JSON-able dict that :func:`build_model` turns back into the same
    structure; ``meta`` is free JSON-able metadata (history, evaluation, dataset, ...).

    Layers keep state between ``forward`` and ``backward`` (and reuse buffers), so one thread
    at a time trains or evaluates a model; :meth:`activations` is the exception (it runs on its
    own replica of the layers). Use :meth:`clone` for an independent copy.
    """

    def __init__(
        self,
        layers: Sequence[Layer],
        input_spec: InputSpec,
        classes: Sequence[str] | None = None,
        architecture: dict[str, Any] | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        self.layers: list[Layer] = list(layers)
        self.input_spec = input_spec
        names = [layer.name for layer in self.layers]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ShapeError(f"layer names must be unique; repeated: {', '.join(dup)}")
        if any("." in n or not n for n in names):
            raise ShapeError("layer names must be non-empty and contain no '.'")
        self._shapes = self._infer_shapes()
        out = self._shapes[-1] if self._shapes else tuple(input_spec.shape)
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
        if architecture is None:
            architecture = {
                "name": "sequential",
                "input_shape": list(input_spec.shape),
                "layers": [layer.config() for layer in self.layers],
            }
        self.architecture: dict[str, Any] = architecture
        self.meta: dict[str, Any] = dict(meta) if meta else {}
        self._plan = _execution_plan(self.layers)
        self._threads = 1
        self.processes = False
        self._workers: _ShardWorkers | None = None
        self._replicas: list[list[Layer]] = []
        self._pool: ThreadPoolExecutor | None = None
        self._shards: list[tuple[int, int]] = []
        self._inspector: list[Layer] = []

    @property
    def threads(self) -> int:
        """Threads a batch is split over in :meth:`forward`/:meth:`backward` (default 1).

        With ``threads > 1`` each thread runs a contiguous shard of the batch through its own
        replica of the layers (sharing the parameter arrays) and the gradients are summed:
        the result equals the single-threaded one up to float rounding. NumPy releases the
        GIL inside its loops, so shards really run in parallel. Set BLAS to one thread then
        (``threadpoolctl.threadpool_limits(1)``), or the threads oversubscribe the cores.

        ``model.processes = True`` (Linux; default False) makes :meth:`train_step` run shards
        1.. in forked worker processes instead of threads: the same results bit for bit, but
        no GIL shared between the shards (about 1.85 busy cores on 2 instead of 1.6). The
        workers start at the first such step and stop when ``threads`` changes or the model is
        garbage-collected; fork before starting other threads you rely on in the children.
        """
        return self._threads

    @threads.setter
    def threads(self, n: int) -> None:
        n = max(1, int(n))
        if n != self._threads:
            self._threads = n
            self._replicas = []
            self._stop_workers()
            if self._pool is not None:
                self._pool.shutdown(wait=False)
                self._pool = None

    def _infer_shapes(self) -> list[tuple[int, ...]]:
        shape: tuple[int, ...] = tuple(self.input_spec.shape)
        shapes = []
        for layer in self.layers:
            shape = tuple(layer.output_shape(shape))
            if min(shape) < 1:
                raise ShapeError(
                    f"{layer.name}: output shape {shape} is empty; use a smaller kernel or stride"
                )
            shapes.append(shape)
        return shapes

    @property
    def num_classes(self) -> int:
        return len(self.classes)

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

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """``x (N, C, H, W)`` float tensor -> logits ``(N, K)``.

        Runs the layers in :func:`_execution_plan` order (an activation before a max-pool runs
        after it: same values, a quarter of the work), split over :attr:`threads`.
        """
        x = self._as_input(x)
        n = x.shape[0]
        block = INFERENCE_BLOCK * self._threads
        if not training and n > block:
            # big inference batches in blocks: the layers' buffers stay training-sized
            # (no 50 MB of patches for a batch of 500) and warm in cache
            return np.concatenate([self.forward(x[a : a + block]) for a in range(0, n, block)])
        if self._threads > 1 and n >= 8 * self._threads:
            return self._forward_parallel(x, training)
        self._shards = []
        return _forward(self.layers, self._plan, x, training)

    def backward(self, dlogits: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        """Backpropagate ``dlogits (N, K)``; fills every layer's grads; returns ``dx`` (N,C,H,W).

        ``input_grad=False`` skips the gradient w.r.t. the input image (returns None): training
        never needs it, and for the first convolution it costs as much as its weight gradient.
        """
        if self._shards:
            return self._backward_parallel(dlogits, input_grad)
        return _backward(self.layers, self._plan, dlogits, input_grad)

    def train_step(
        self, x: np.ndarray, labels: np.ndarray, loss_fn=softmax_cross_entropy
    ) -> tuple[float, np.ndarray]:
        """Forward, loss and backward of one training batch: fills the grads; returns
        ``(loss, logits (N, K))``. Same gradients as ``forward`` + ``loss_fn`` + ``backward``.

        ``loss_fn(z, labels, batch=N) -> (loss, dz)`` (see :mod:`engine.losses`). With
        :attr:`threads` > 1 each thread runs its shard through forward, the loss (normalised by
        the whole batch's ``N``, so its rows of ``dz`` are the whole batch's) and backward in one
        go: one hand-over between threads per batch instead of two, and the loss in parallel.
        """
        x = self._as_input(x)
        labels = np.asarray(labels)
        n = x.shape[0]
        if not (self._threads > 1 and n >= 8 * self._threads):
            z = self.forward(x, training=True)
            loss, dz = loss_fn(z, labels)
            self.backward(dz, input_grad=False)
            return float(loss), z
        self._ensure_replicas()
        t = self._threads
        bounds = [n * i // t for i in range(t + 1)]
        self._shards = list(itertools.pairwise(bounds))
        plan = self._plan
        if self.processes and _FORK_OK:
            return self._train_step_processes(x, labels, loss_fn)

        def shard(r: list[Layer], a: int, b: int) -> tuple[float, np.ndarray]:
            z = _forward(r, plan, x[a:b], True)
            loss, dz = loss_fn(z, labels[a:b], batch=n)
            _backward(r, plan, dz, False)
            return float(loss), z

        outs = self._run_shards(shard)
        self._sum_grads()
        return sum(loss for loss, _ in outs), np.concatenate([z for _, z in outs])

    def _train_step_processes(
        self, x: np.ndarray, labels: np.ndarray, loss_fn
    ) -> tuple[float, np.ndarray]:
        n = x.shape[0]
        params = tuple((k, p.shape, p.dtype) for k, p in self.parameters().items())
        key = (self._threads, params, loss_fn)  # the workers get the loss fn when forked
        need = max(b - a for a, b in self._shards[1:])
        if self._workers is None or self._workers.key != key or self._workers.cap < need:
            self._stop_workers()
            self._workers = _ShardWorkers(self, key, need, loss_fn)
        w = self._workers
        try:
            w.start(x, labels, self._shards[1:], n)
            a, b = self._shards[0]
            z0 = _forward(self._replicas[0], self._plan, x[a:b], True)
            loss, dz = loss_fn(z0, labels[a:b], batch=n)
            _backward(self._replicas[0], self._plan, dz, False)
            losses, zs = w.finish()
        except BaseException:
            self._stop_workers()  # an answer may be pending: never reuse these workers
            raise
        for i, layer in enumerate(self.layers):
            for key2, g in layer.grads.items():
                np.add(self._replicas[0][i].grads[key2], w.grads[0][i][key2], out=g)
                for more in w.grads[1:]:
                    g += more[i][key2]
        return float(loss) + sum(losses), np.concatenate([z0, *zs])

    def _stop_workers(self) -> None:
        if self._workers is not None:
            self._workers.stop()
            self._workers = None

    def _sum_grads(self) -> None:
        for i, layer in enumerate(self.layers):
            for key, g in layer.grads.items():
                np.add(self._replicas[0][i].grads[key], self._replicas[1][i].grads[key], out=g)
                for rep in self._replicas[2:]:
                    g += rep[i].grads[key]

    def _ensure_replicas(self) -> None:
        if len(self._replicas) != self._threads:
            self._replicas = [
                [layer.replica() for layer in self.layers] for _ in range(self._threads)
            ]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._threads - 1, thread_name_prefix="convscope")

    def _forward_parallel(self, x: np.ndarray, training: bool) -> np.ndarray:
        self._ensure_replicas()
        n, t = x.shape[0], self._threads
        bounds = [n * i // t for i in range(t + 1)]
        self._shards = list(itertools.pairwise(bounds))
        outs = self._run_shards(lambda r, a, b: _forward(r, self._plan, x[a:b], training))
        return np.concatenate(outs)

    def _backward_parallel(self, dlogits: np.ndarray, input_grad: bool) -> np.ndarray | None:
        outs = self._run_shards(lambda r, a, b: _backward(r, self._plan, dlogits[a:b], input_grad))
        self._sum_grads()
        return np.concatenate(outs) if input_grad else None

    def _run_shards(self, fn) -> list:
        assert self._pool is not None
        futures = [
            self._pool.submit(fn, rep, a, b)
            for rep, (a, b) in zip(self._replicas[1:], self._shards[1:], strict=True)
        ]
        a, b = self._shards[0]
        first = fn(self._replicas[0], a, b)  # shard 0 runs in the calling thread
        return [first, *(f.result() for f in futures)]

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Softmax probabilities ``(N, K)`` for a tensor (or uint8 images)."""
        return softmax(self.forward(x))

    def activations(self, x: np.ndarray) -> list[tuple[str, np.ndarray]]:
        """``[("input", x), (layer name, output), ..., ("softmax", probs)]``, contiguous copies.

        ``x`` is a float tensor or uint8 images (converted with ``input_spec``). Runs on a
        replica of the layers that shares the weights but none of the buffers, so a view may
        call it while another thread trains the model (it then sees the weights of the moment).
        """
        x = self._as_input(x)
        if len(self._inspector) != len(self.layers):
            self._inspector = [layer.replica() for layer in self.layers]
        out = [("input", np.array(x, dtype=np.float32))]
        for layer in self._inspector:
            x = layer.forward(x)
            out.append((layer.name, np.array(x, dtype=np.float32, order="C")))
        out.append(("softmax", softmax(np.array(x, dtype=np.float64)).astype(np.float32)))
        return out

    # -- parameters ----------------------------------------------------------------------

    def parameters(self) -> dict[str, np.ndarray]:
        """``{"conv1.weight": array, ...}``: the live arrays (optimisers update them in place)."""
        return {f"{l.name}.{k}": p for l in self.layers for k, p in l.params.items()}  # noqa: E741

    def gradients(self) -> dict[str, np.ndarray]:
        """Same keys as :meth:`parameters`: the live gradient arrays filled by :meth:`backward`."""
        return {f"{l.name}.{k}": g for l in self.layers for k, g in l.grads.items()}  # noqa: E741

    def get_weights(self) -> dict[str, np.ndarray]:
        """Copies of the parameters, by name."""
        return {k: p.copy() for k, p in self.parameters().items()}

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        """Copy ``weights`` into the live parameters (in place, so optimisers keep working).

        Raises :class:`ShapeError` naming every missing/unexpected name, wrong shape, non-float
        dtype or non-finite value; nothing is changed then.
        """
        params = self.parameters()
        missing = sorted(set(params) - set(weights))
        extra = sorted(set(weights) - set(params))
        problems = []
        if missing:
            problems.append(f"missing {', '.join(missing)}")
        if extra:
            problems.append(f"unexpected {', '.join(extra)}")
        for key in sorted(set(params) & set(weights)):
            v = np.asarray(weights[key])
            if v.shape != params[key].shape:
                problems.append(f"{key} has shape {v.shape}, expected {params[key].shape}")
            elif v.dtype.kind != "f":
                problems.append(f"{key} has dtype {v.dtype}, expected a float array")
            elif not np.isfinite(v).all():
                problems.append(f"{key} contains NaN or inf")
        if problems:
            raise ShapeError("weights do not fit this model: " + "; ".join(problems))
        for key, p in params.items():
            p[...] = weights[key]

    def astype(self, dtype: np.dtype | type) -> Sequential:
        """Convert every parameter to ``dtype`` (float64 for gradient checks); returns self."""
        for layer in self.layers:
            layer.astype(dtype)
        self._replicas = []
        self._inspector = []
        return self

    def clone(self) -> Sequential:
        """An independent copy: same architecture, weights, input spec, classes and meta."""
        m = build_model(self.architecture, classes=self.classes)
        m.input_spec = self.input_spec
        m.meta = copy.deepcopy(self.meta)
        m.set_weights(self.parameters())
        return m

    # -- introspection -------------------------------------------------------------------

    def summary(self) -> list[LayerInfo]:
        """One :class:`LayerInfo` per layer, in order."""
        return [
            LayerInfo(l.name, l.kind, tuple(s), l.n_params)
            for l, s in zip(self.layers, self._shapes, strict=False)  # noqa: E741
        ]

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ShapeError(
            f"no layer named {name!r}; layers: {', '.join(l.name for l in self.layers)}"  # noqa: E741
        )

    def conv_filters(self, layer_name: str) -> np.ndarray:
        """A copy of a convolution's weights ``(F, C, KH, KW)``."""
        layer = self.layer(layer_name)
        if not isinstance(layer, Conv2D):
            convs = [l.name for l in self.layers if isinstance(l, Conv2D)]  # noqa: E741
            raise ShapeError(
                f"{layer_name} is a {layer.kind} layer, not a convolution; "
                f"convolutions: {', '.join(convs) or 'none'}"
            )
        return layer.params["weight"].copy()

    def __repr__(self) -> str:
        return f"Sequential({self.architecture.get('name')}, {len(self.layers)} layers)"


_FORK_OK = sys.platform.startswith("linux")


def _shared(shape: tuple[int, ...], dtype: npt.DTypeLike) -> np.ndarray:
    """A zeroed array in anonymous shared memory (seen by processes forked afterwards)."""
    dtype = np.dtype(dtype)
    size = int(np.prod(shape)) * dtype.itemsize
    buf = mmap.mmap(-1, max(size, 1))
    return np.frombuffer(buf, dtype=dtype, count=int(np.prod(shape))).reshape(shape)


class _ShardWorkers:
    """Forked worker processes for :meth:`Sequential.train_step` with ``processes = True``.

    Worker ``i`` runs shard ``i + 1`` of each batch (the caller runs shard 0) on its own layer
    replicas, with no GIL shared with the caller. Parameters, the shard's images, its logits and
    its gradients travel through shared memory (the caller copies the current parameters in
    before each batch, so optimisers keep updating the model's own arrays); a pipe carries the
    labels, the loss function and the "done" answer. The arithmetic is the threaded mode's, so
    the results are the same bit for bit.
    """

    def __init__(self, model: Sequential, key: tuple, cap: int, loss_fn) -> None:
        self.key, self.cap = key, cap  # cap: the largest shard (samples) the buffers take
        t = model.threads
        spec = model.input_spec
        self.params = {k: _shared(p.shape, p.dtype) for k, p in model.parameters().items()}
        self.live = model.parameters()
        dtype = next(iter(self.params.values())).dtype if self.params else np.float32
        self.x = [_shared((cap, *spec.shape), dtype) for _ in range(t - 1)]
        self.z = [_shared((cap, model.num_classes), dtype) for _ in range(t - 1)]
        self.grads: list[list[dict[str, np.ndarray]]] = []
        self.conns = []
        self.procs = []
        ctx = multiprocessing.get_context("fork")
        for i in range(t - 1):
            layers = []
            for layer in model.layers:
                r = layer.replica()
                r.params = {k: self.params[f"{layer.name}.{k}"] for k in layer.params}
                r.grads = {k: _shared(g.shape, g.dtype) for k, g in layer.grads.items()}
                layers.append(r)
            self.grads.append([r.grads for r in layers])
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=_shard_worker,
                args=(child, layers, model._plan, self.x[i], self.z[i], loss_fn),
                daemon=True,
                name=f"convscope-shard{i + 1}",
            )
            proc.start()
            child.close()
            self.conns.append(parent)
            self.procs.append(proc)
        self._finalizer = weakref.finalize(self, _stop, self.conns, self.procs)
        self._sizes: list[int] = []

    def start(self, x: np.ndarray, labels: np.ndarray, shards, n: int) -> None:
        for k, p in self.live.items():
            np.copyto(self.params[k], p)
        self._sizes = []
        for i, (a, b) in enumerate(shards):
            self.x[i][: b - a] = x[a:b]
            self._sizes.append(b - a)
            self.conns[i].send((b - a, labels[a:b], n))

    def finish(self) -> tuple[list[float], list[np.ndarray]]:
        losses = []
        for conn in self.conns:
            try:
                answer = conn.recv()
            except (EOFError, OSError) as exc:
                raise RuntimeError(f"a training worker process died ({exc!r})") from None
            if isinstance(answer, BaseException):
                raise answer
            losses.append(answer)
        return losses, [z[:m].copy() for z, m in zip(self.z, self._sizes, strict=True)]

    def stop(self) -> None:
        self._finalizer()


def _stop(conns, procs) -> None:
    for conn in conns:
        try:
            conn.send(None)
        except OSError:
            pass
    for proc in procs:
        proc.join(timeout=2)
        if proc.is_alive():
            proc.terminate()


def _shard_worker(conn, layers, plan, xbuf: np.ndarray, zbuf: np.ndarray, loss_fn) -> None:
    """The loop of one :class:`_ShardWorkers` process."""
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        if msg is None:
            return
        m, labels, n = msg
        try:
            z = _forward(layers, plan, xbuf[:m], True)
            loss, dz = loss_fn(z, labels, batch=n)
            _backward(layers, plan, dz, False)
            zbuf[:m] = z
            conn.send(float(loss))
        except Exception as exc:  # handed to the caller, which raises it
            try:
                conn.send(exc)
            except Exception:  # not picklable: send its text
                conn.send(RuntimeError(f"training worker: {exc!r}"))


def _execution_plan(layers: Sequence[Layer]) -> list[int]:
    """Layer indices in the order forward runs them.

    An elementwise non-decreasing activation (ReLU, tanh, sigmoid) followed by a max-pool is run
    the other way round: ``f(max(window)) == max(f(window))``, so the output and the gradients
    are the same, and the activation then touches a quarter of the values. ``activations()``
    still walks the layers in their declared order.
    """
    order = list(range(len(layers)))
    i = 0
    while i < len(order) - 1:
        a, b = layers[order[i]], layers[order[i + 1]]
        if isinstance(a, (ReLU, Tanh, Sigmoid)) and isinstance(b, MaxPool2D):
            order[i], order[i + 1] = order[i + 1], order[i]
            i += 2
        else:
            i += 1
    return order


def _forward(layers: Sequence[Layer], plan: list[int], x: np.ndarray, training: bool):
    for i in plan:
        x = layers[i].forward(x, training)
    return x


def _backward(
    layers: Sequence[Layer], plan: list[int], d: np.ndarray, input_grad: bool
) -> np.ndarray | None:
    first = plan[0]
    g: np.ndarray | None = d
    for i in reversed(plan):
        assert g is not None  # only the first layer's backward may return None
        g = layers[i].backward(g, input_grad=input_grad or i != first)
    return g


# -- builders ----------------------------------------------------------------------------

_ACTIVATIONS = {"relu": ReLU, "tanh": Tanh, "sigmoid": Sigmoid}
_POOLS = {"max": MaxPool2D, "avg": AvgPool2D}


def lenet5(
    rng: np.random.Generator | None = None, num_classes: int = 10, in_channels: int = 1
) -> Sequential:
    """Classic LeNet-5 for 28x28 input (conv1 padded by 2), with ReLU and max-pooling.

    conv1 6@5x5 pad 2 -> relu1 -> pool1 2 -> conv2 16@5x5 -> relu2 -> pool2 2 -> flatten (400)
    -> fc1 120 -> relu3 -> fc2 84 -> relu4 -> fc3 K.
    """
    layers = _lenet_layers(rng, in_channels, conv1_padding=2, fc2=84, num_classes=num_classes)
    arch = {"name": "lenet5", "num_classes": int(num_classes), "in_channels": int(in_channels)}
    return Sequential(layers, InputSpec((in_channels, 28, 28)), architecture=arch)


def lenet_article(
    rng: np.random.Generator | None = None, num_classes: int = 10, in_channels: int = 1
) -> Sequential:
    """The article's network (its Figure 18): 32x32 input (MNIST padded by 2), conv 6@5x5,
    pool 2, conv 16@5x5, pool 2, FC 120, 100, K. Same layer names as :func:`lenet5`."""
    layers = _lenet_layers(rng, in_channels, conv1_padding=0, fc2=100, num_classes=num_classes)
    arch = {
        "name": "lenet-article",
        "num_classes": int(num_classes),
        "in_channels": int(in_channels),
    }
    return Sequential(layers, InputSpec((in_channels, 32, 32)), architecture=arch)


def _lenet_layers(rng, in_channels, conv1_padding, fc2, num_classes) -> list[Layer]:
    rng = rng if rng is not None else np.random.default_rng(0)
    return [
        Conv2D(in_channels, 6, 5, padding=conv1_padding, rng=rng, name="conv1"),
        ReLU(name="relu1"),
        MaxPool2D(2, name="pool1"),
        Conv2D(6, 16, 5, rng=rng, name="conv2"),
        ReLU(name="relu2"),
        MaxPool2D(2, name="pool2"),
        Flatten(name="flatten"),
        Dense(400, 120, rng=rng, name="fc1"),
        ReLU(name="relu3"),
        Dense(120, fc2, rng=rng, name="fc2"),
        ReLU(name="relu4"),
        Dense(fc2, num_classes, rng=rng, name="fc3"),
    ]


def custom(
    rng: np.random.Generator | None = None,
    *,
    input_shape: Sequence[int] = (1, 28, 28),
    conv_filters: Sequence[int] = (6, 16),
    kernel_size: int = 5,
    padding: int = 0,
    fc_widths: Sequence[int] = (120, 84),
    activation: str = "relu",
    pooling: str = "max",
    num_classes: int = 10,
) -> Sequential:
    """A LeNet-like network of your own: per conv layer ``conv{i}`` (``conv_filters[i-1]``
    filters, ``kernel_size``, ``padding``) -> activation -> 2x2 pooling (``"max"``, ``"avg"``
    or ``"none"``); then flatten and ``fc{i}`` layers of ``fc_widths`` with the activation, and a
    final ``fc`` of ``num_classes``. Activations are numbered like LeNet's (relu1, relu2, ...).

    Raises :class:`ShapeError` saying which layer does not fit, e.g. "conv2: a 5x5 kernel does
    not fit its 3x3 input; use a smaller kernel or fewer pooling layers".
    """
    if activation not in _ACTIVATIONS:
        raise ShapeError(f"unknown activation {activation!r}; use relu, tanh or sigmoid")
    if pooling not in (*_POOLS, "none"):
        raise ShapeError(f"unknown pooling {pooling!r}; use max, avg or none")
    conv_filters = [int(f) for f in conv_filters]
    fc_widths = [int(f) for f in fc_widths]
    if any(f < 1 for f in (*conv_filters, *fc_widths, num_classes)):
        raise ShapeError("filter counts, FC widths and num_classes must all be >= 1")
    shape = tuple(int(v) for v in input_shape)
    if len(shape) != 3:
        raise ShapeError(f"input_shape must be (C, H, W), got {tuple(input_shape)}")
    rng = rng if rng is not None else np.random.default_rng(0)
    init = "he" if activation == "relu" else "xavier"
    act = _ACTIVATIONS[activation]
    layers: list[Layer] = []
    cur: tuple[int, ...] = shape
    n_act = 0

    def add(layer: Layer) -> None:
        nonlocal cur
        cur = layer.output_shape(cur)  # raises ShapeError naming the layer
        layers.append(layer)

    for i, f in enumerate(conv_filters, start=1):
        add(Conv2D(cur[0], f, kernel_size, padding=padding, rng=rng, init=init, name=f"conv{i}"))
        n_act += 1
        add(act(name=f"{activation}{n_act}"))
        if pooling != "none":
            add(_POOLS[pooling](2, name=f"pool{i}"))
    add(Flatten(name="flatten"))
    widths = [*fc_widths, int(num_classes)]
    for i, width in enumerate(widths, start=1):
        add(
            Dense(cur[0], width, rng=rng, init=init if i < len(widths) else "xavier", name=f"fc{i}")
        )
        if i < len(widths):
            n_act += 1
            add(act(name=f"{activation}{n_act}"))
    arch = {
        "name": "custom",
        "input_shape": list(shape),
        "conv_filters": conv_filters,
        "kernel_size": int(kernel_size),
        "padding": int(padding),
        "fc_widths": fc_widths,
        "activation": activation,
        "pooling": pooling,
        "num_classes": int(num_classes),
    }
    return Sequential(layers, InputSpec(shape), architecture=arch)  # type: ignore[arg-type]


BUILDERS = ("lenet5", "lenet-article", "custom", "sequential")


def build_model(
    architecture: dict[str, Any] | str,
    rng: np.random.Generator | None = None,
    classes: Sequence[str] | None = None,
) -> Sequential:
    """Build ``"lenet5"``, ``"lenet-article"`` or an architecture dict (``model.architecture``:
    ``{"name": "custom", ...}`` or ``{"name": "sequential", "input_shape", "layers"}``) with
    fresh weights from ``rng``. ``classes`` names the outputs (and sets their number)."""
    arch: dict[str, Any] = (
        {"name": architecture} if isinstance(architecture, str) else dict(architecture)
    )
    name = arch.pop("name", None)
    if classes is not None:
        classes = [str(c) for c in classes]
        if "num_classes" in arch and int(arch["num_classes"]) != len(classes):
            raise ShapeError(
                f"{len(classes)} class names given for an architecture with "
                f"{arch['num_classes']} outputs"
            )
        if name != "sequential":
            arch["num_classes"] = len(classes)
    try:
        if name == "lenet5":
            model = lenet5(rng, **arch)
        elif name == "lenet-article":
            model = lenet_article(rng, **arch)
        elif name == "custom":
            model = custom(rng, **arch)
        elif name == "sequential":
            rng = rng if rng is not None else np.random.default_rng(0)
            layers = [layer_from_config(c, rng) for c in arch["layers"]]
            spec = InputSpec(tuple(int(v) for v in arch["input_shape"]))  # type: ignore[arg-type]
            model = Sequential(layers, spec, classes)
        else:
            raise ShapeError(f"unknown architecture {name!r}; use one of {', '.join(BUILDERS)}")
    except TypeError as exc:
        raise ShapeError(f"bad architecture {architecture!r}: {exc}") from None
    except KeyError as exc:
        raise ShapeError(f"bad architecture {architecture!r}: missing {exc}") from None
    if classes is not None:
        model.classes = list(classes)
    return model
