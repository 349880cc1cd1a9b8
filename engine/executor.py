"""Running a graph of named nodes: the plan (which node runs when, what it reads) and the two
walks over it, forward in topological order and backward in reverse.

A plan is a list of :class:`Step`: run node ``node``'s layer on the values named ``inputs`` and
store the result under ``output``. Normally ``output == node``; the one exception is the
activation/max-pool swap below. Values are freed after their last reader, so a forward pass keeps
only what the layers themselves keep for backward. A ReLU or Add whose (first) input is a fresh
array no one else reads or keeps (made by one of ``FRESH``, read once) writes its result into
that input instead of a new array (``Step.inplace``). A chain of concatenations each
extending the previous one (DenseNet's block) writes into one buffer made by the first with room
for the last (``Step.reserve`` channels): each concatenation appends its new channels and hands
on a view, instead of copying everything before them again.

Backward walks the steps in reverse with a dict of pending gradients by value name: a value read
by two nodes (a residual shortcut, a DenseNet feature map) receives the SUM of both gradients
(``a + b`` into a new array, so no layer's returned gradient is ever modified; a third and later
gradient is added into that sum, which the executor owns).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from engine.blocks import Add, BatchNorm2D, Concat, Dropout
from engine.layers import Conv2D, Dense, Flatten, Layer, MaxPool2D, ReLU, Sigmoid, Tanh

INPUT = "input"  # the reserved name of the network's input
FRESH = (Conv2D, Dense, BatchNorm2D, Add)  # each output a new array the layer does not keep


@dataclass(frozen=True)
class Step:
    node: str  # whose layer runs
    inputs: tuple[str, ...]  # the values it reads
    output: str  # the value it writes
    inplace: bool = False  # the layer may write its output into its (first) input
    reserve: int = 0  # Concat: channels of the buffer to make (room for the rest of a chain)


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...]
    output: str
    frees: tuple[tuple[str, ...], ...]  # values dropped after each step (their last reader)
    wants: dict[bool, tuple[tuple[bool, ...], ...]]  # input_grad -> per step, per input


def make_plan(
    layers: Mapping[str, Layer],
    inputs: Mapping[str, Sequence[str]],
    output: str,
    *,
    swap: bool = True,
    inplace: bool = True,
    shapes: Mapping[str, Sequence[int]] | None = None,
) -> Plan:
    """The plan for ``layers`` (in topological order) reading ``inputs``.

    With ``swap``, an elementwise non-decreasing activation (ReLU, tanh, sigmoid) whose only
    reader is an unpadded max-pool runs after it instead: ``f(max(window)) == max(f(window))``,
    so the output and the gradients are the same and the activation touches a quarter of the
    values. The pool's step then writes under the activation's name and vice versa.
    With ``inplace``, steps that may overwrite their input are marked (see the module docstring),
    and with ``shapes`` (each node's output shape, no N) too the chains of concatenations.
    """
    names = list(layers)
    readers: dict[str, list[str]] = {n: [] for n in [INPUT, *names]}
    for n in names:
        for i in inputs[n]:
            readers[i].append(n)
    steps: list[Step] = []
    done: set[str] = set()
    for pos, n in enumerate(names):
        if n in done:
            continue
        layer = layers[n]
        nxt = names[pos + 1] if pos + 1 < len(names) else None
        if (
            swap
            and nxt is not None
            and isinstance(layer, (ReLU, Tanh, Sigmoid))
            and readers[n] == [nxt]
            and n != output
            and isinstance(layers[nxt], MaxPool2D)
            and getattr(layers[nxt], "padding", 0) == 0
        ):
            src = tuple(inputs[n])
            steps.append(Step(nxt, src, n))  # pool(x) stored as n
            steps.append(Step(n, (n,), nxt))  # act(pool(x)) stored as nxt
            done.add(nxt)
        else:
            steps.append(Step(n, tuple(inputs[n]), n))
    if inplace:
        steps = _mark_inplace(layers, steps, output)
        if shapes is not None:
            steps = _chain_concats(layers, steps, output, shapes)
    last: dict[str, int] = {}
    for k, s in enumerate(steps):
        for i in s.inputs:
            last[i] = k
    frees = tuple(
        tuple(i for i in dict.fromkeys(s.inputs) if last[i] == k and i != output)
        for k, s in enumerate(steps)
    )
    wants = {flag: _wants(layers, steps, flag) for flag in (True, False)}
    return Plan(tuple(steps), output, frees, wants)


KEEP_LAYOUT = (ReLU, Tanh, Sigmoid, BatchNorm2D, Dropout)  # hand on their input's memory order


def mark_batch_inner(layers: Mapping[str, Layer], inputs: Mapping[str, Sequence[str]]) -> None:
    """Let a few-channel convolution hand out CHWN memory (:mod:`engine.conv_inner`) only
    where every reader, through activations, BatchNorm and dropout (which keep the memory
    order), is a max pool, a flatten, a concatenation or another few-channel convolution:
    those read it as cheaply as their usual layout (a concatenation copies its inputs
    anyway), where a rows-layout convolution or a sum would first pay for a transposing copy
    of the whole feature map (measured: the first layers of VGG and ResNet 1.05-1.09x slower
    with it; GoogLeNet's 5x5 branches, read by a concatenation, 0.4-0.8x with it, the whole
    step 0.91x). Sets ``Conv2D.batch_inner_ok``."""
    readers: dict[str, list[str]] = {n: [] for n in [INPUT, *layers]}
    for n in layers:
        for i in inputs[n]:
            readers[i].append(n)

    def cheap(value: str) -> bool:
        for r in readers[value]:
            layer = layers[r]
            if isinstance(layer, KEEP_LAYOUT):
                if not cheap(r):
                    return False
            elif not (
                isinstance(layer, (MaxPool2D, Flatten, Concat))
                or (isinstance(layer, Conv2D) and layer.few_channels())
            ):
                return False
        return True

    for n, layer in layers.items():
        if isinstance(layer, Conv2D):
            layer.batch_inner_ok = cheap(n)


def _mark_inplace(layers: Mapping[str, Layer], steps: list[Step], output: str) -> list[Step]:
    """``steps`` with ReLU and Add marked ``inplace`` where their (first) input is read by them
    alone and was made fresh by a layer that keeps no reference to it (FRESH)."""
    reads: dict[str, int] = {}
    made_by: dict[str, Layer] = {s.output: layers[s.node] for s in steps}
    for s in steps:
        for i in s.inputs:
            reads[i] = reads.get(i, 0) + 1
    out = []
    for s in steps:
        v = s.inputs[0]
        ok = (
            isinstance(layers[s.node], (ReLU, Add))
            and v != output
            and reads[v] == 1
            and isinstance(made_by.get(v), FRESH)
            and made_by[v] is layers.get(v)  # not a swapped activation/pool pair
        )
        out.append(Step(s.node, s.inputs, s.output, True) if ok else s)
    return out


def _chain_concats(
    layers: Mapping[str, Layer],
    steps: list[Step],
    output: str,
    shapes: Mapping[str, Sequence[int]],
) -> list[Step]:
    """``steps`` with each chain of Concat steps whose first input is the previous one's output
    (and extended by it alone) marked: the first makes a buffer of the last one's channels
    (``reserve``), the others append into it (``inplace`` too)."""
    made_by = {s.output: layers[s.node] for s in steps}
    extenders: dict[str, list[int]] = {}
    for k, s in enumerate(steps):
        if isinstance(layers[s.node], Concat) and made_by[s.node] is layers[s.node]:
            extenders.setdefault(s.inputs[0], []).append(k)
    nxt = {
        v: ks[0]
        for v, ks in extenders.items()
        if len(ks) == 1 and v != output and isinstance(made_by.get(v), Concat)
    }
    followers = {steps[k].node for k in nxt.values()}
    out = list(steps)
    for k, s in enumerate(steps):
        if s.node in followers or s.node not in nxt:
            continue
        chain, v = [k], s.node
        while v in nxt:
            chain.append(nxt[v])
            v = steps[nxt[v]].node
        total = int(shapes[v][0])
        for i, j in enumerate(chain):
            t = steps[j]
            out[j] = Step(t.node, t.inputs, t.output, i > 0, total)
    return out


def _wants(
    layers: Mapping[str, Layer], steps: Sequence[Step], input_grad: bool
) -> tuple[tuple[bool, ...], ...]:
    """Per step, per input: is a gradient w.r.t. that input needed? (Only when something
    upstream has parameters, or it is the network input and ``input_grad`` asks for it.)"""
    needs = {INPUT: input_grad}
    out = []
    for s in steps:
        w = tuple(needs[i] for i in s.inputs)
        out.append(w)
        needs[s.output] = bool(layers[s.node].params) or any(w)
    return tuple(out)


def forward(
    layers: Mapping[str, Layer],
    plan: Plan,
    x: np.ndarray,
    training: bool,
    keep: list[tuple[str, np.ndarray]] | None = None,
    release: bool = False,
) -> np.ndarray:
    """Run the plan on ``x``; returns the output value. With ``keep``, every node's output is
    appended to it as ``(name, array)`` (and nothing is freed). ``release``: each layer drops
    what it kept for a backward pass as soon as it has run (inference, where none follows:
    DenseNet's convolutions, BatchNorms and ReLUs kept 157 MB for a block of 64 images, in
    each worker's replica)."""
    vals: dict[str, np.ndarray] = {INPUT: x}
    for s, free in zip(plan.steps, plan.frees, strict=True):
        layer = layers[s.node]
        xs = vals[s.inputs[0]] if layer.n_inputs == 1 else [vals[i] for i in s.inputs]
        if s.reserve and keep is None:
            y = layer.forward(xs, training, s.inplace, s.reserve)  # type: ignore[call-arg,arg-type]
        elif s.inplace and keep is None:  # (kept outputs must stay as they were)
            y = layer.forward(xs, training, inplace=True)  # type: ignore[call-arg,arg-type]
        else:
            y = layer.forward(xs, training)  # type: ignore[arg-type]
        vals[s.output] = y
        if keep is not None:
            keep.append((s.output, y))
        else:
            for i in free:
                del vals[i]
            if release:
                layer.release()
    return vals[plan.output]


def forward_eval(
    layers: Mapping[str, Layer],
    plan: Plan,
    x: np.ndarray,
    for_gradient: bool = False,
    seen: Callable[[str, np.ndarray], None] | None = None,
    release: bool = False,
) -> np.ndarray:
    """The plan's output in evaluation mode (on replicas, for views that look inside a model).
    ``for_gradient``: the layers keep what their backward needs (their ``training`` flag), except
    BatchNorm and Dropout, whose flag also changes what they compute (batch statistics, dropped
    units); :func:`backward` can follow. ``seen(name, value)`` is called with each step's output
    as it is made (a plan made with ``swap=False`` names every value after its node); a value
    is dropped after its last reader, so a deep network holds a few values at a time;
    ``release``: so do the layers' workspaces (a convolution's padded input), which
    otherwise stay for the next call."""
    vals: dict[str, np.ndarray] = {INPUT: x}
    for s, free in zip(plan.steps, plan.frees, strict=True):
        layer = layers[s.node]
        keep = for_gradient and not isinstance(layer, (BatchNorm2D, Dropout))
        if layer.n_inputs == 1:
            y = layer.forward(vals[s.inputs[0]], keep)
        else:
            y = layer.forward([vals[i] for i in s.inputs], keep)  # type: ignore[arg-type]
        vals[s.output] = y
        if seen is not None:
            seen(s.output, y)
        for i in free:
            del vals[i]
        if release:
            layer.release()
    return vals[plan.output]


def backward(
    layers: Mapping[str, Layer],
    plan: Plan,
    d: np.ndarray,
    input_grad: bool,
    release: bool = False,
) -> np.ndarray | None:
    """Backpropagate ``d`` (the gradient of the output) through the plan; fills each layer's
    grads; returns the gradient w.r.t. the input (None unless ``input_grad``). ``release``:
    each layer drops what it kept for backward once its backward has run (a training step,
    whose backward runs once), so the early layers' large gradients meet fewer kept arrays."""
    pending: dict[str, np.ndarray] = {plan.output: d}
    owned: set[str] = set()  # pending sums this function made (safe to add into)
    wants = plan.wants[input_grad]
    for s, want in zip(reversed(plan.steps), reversed(wants), strict=True):
        g = pending.pop(s.output, None)
        layer = layers[s.node]
        if g is None or not (layer.params or any(want)):
            continue
        dx = layer.backward(g, input_grad=any(want))
        if release:
            layer.release()
        if dx is None:
            continue
        dxs = [dx] if layer.n_inputs == 1 else dx
        for name, gi, w in zip(s.inputs, dxs, want, strict=True):
            if not w:
                continue
            prev = pending.get(name)
            if prev is None:
                pending[name] = gi
            elif name in owned and np.result_type(prev, gi) == prev.dtype:
                prev += gi
            else:
                pending[name] = prev + gi
                owned.add(name)
    return pending.get(INPUT) if input_grad else None
