"""Every convolution of a network, what it learned, layer by layer ("What it learned"'s work).

:func:`every_layer` runs :mod:`engine.features` over a network's convolutions (and, for
synthesis, its output), yielding each layer's grid as soon as it is made, reading and storing
grids in the disk cache (:class:`engine.feature_cache.FeatureCache`) keyed by
:func:`weights_key`. The Train tab's "What it learned" window shows what it yields.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from engine.feature_cache import FeatureCache, images_key
from engine.features import (
    PatchResult,
    conv_nodes,
    patch_grid,
    synthesis_grid,
    synthesize_all,
    top_patches_of,
)
from engine.progress import Cancellable, Progress


@dataclass(frozen=True)
class LayerGrid:
    """One layer's grid (``method`` "patches" or "synthesis"): ``node``, ``image`` uint8;
    ``cached`` when it was read from the disk cache rather than computed."""

    node: str
    method: str
    image: np.ndarray
    cached: bool = False


def weights_key(model) -> str:
    """A hash of the model's structure and state (a cache key: same weights, same key)."""
    h = hashlib.sha1(repr(model.graph_spec()).encode())
    for name, a in model.state_dict().items():
        h.update(name.encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def every_layer(
    model,
    images: np.ndarray,
    method: str,
    *,
    k: int = 9,
    steps: int = 128,
    seed: int = 0,
    control: Cancellable | None = None,
    cache: FeatureCache | None = None,
) -> Iterator[Progress | LayerGrid]:
    """Each convolution's grid in turn (and, for synthesis, the output classes last): yields
    ``Progress(stage, ...)`` events and one :class:`LayerGrid` per layer as soon as it is done.
    With a ``cache`` (:class:`engine.feature_cache.FeatureCache`) a grid found there is yielded
    at once and a computed one is stored.

    Top patches go through the dataset once per group of convolutions, the groups doubling
    in size (1, 2, 4, ... layers): the first layer is shown after a pass through one layer, and
    the whole network costs about two passes, where a pass per layer cost one for each layer's
    depth (resnet20's 21 convolutions on 2,000 images: 101 s of CPU before)."""
    nodes = conv_nodes(model) + ([model.output] if method == "synthesis" else [])
    found: dict[str, np.ndarray] = {}
    if cache is not None:
        weights = weights_key(model)
        seen = images_key(images) if method == "patches" else ""  # synthesis reads no images
        # "jitter/4": synthesis shifts by at most a quarter of a field since 2026-12-04 (the
        # grids kept before, shifted by 2 pixels everywhere, are not shown for it)
        climb = f"{method} {steps} seed={seed} jitter/4"
        options = f"{method} k={k}" if method == "patches" else climb
        keys = {node: cache.key(weights, seen, options, node) for node in nodes}
    groups = _doubling(nodes) if method == "patches" else [[node] for node in nodes]
    for group in groups:
        if cache is not None:
            found = {n: g for n in group if (g := cache.load(keys[n])) is not None}
        todo = [n for n in group if n not in found]
        if not todo:
            events: Iterator = iter(())
        elif method == "patches":
            events = top_patches_of(model, todo, images, k, control)
        else:
            events = synthesize_all(model, todo[0], np.random.default_rng(seed), steps=steps,
                                    control=control)  # fmt: skip
        made: dict[str, np.ndarray] = {}
        for item in events:
            if isinstance(item, Progress):
                yield item if method == "patches" else Progress(todo[0], item.done, item.total)
            else:
                node = item.node if isinstance(item, PatchResult) else todo[0]
                made[node] = (
                    patch_grid(item) if isinstance(item, PatchResult) else synthesis_grid(item)
                )
        if control is not None and control.cancelled:
            return
        for node in group:
            if node in found:
                yield LayerGrid(node, method, found[node], cached=True)
            else:
                if cache is not None:
                    cache.store(keys[node], made[node])
                yield LayerGrid(node, method, made[node])


def _doubling(nodes: Sequence[str]) -> list[list[str]]:
    """``nodes`` in runs of 1, 2, 4, 8... in order."""
    groups, start, size = [], 0, 1
    while start < len(nodes):
        groups.append(list(nodes[start : start + size]))
        start, size = start + size, 2 * size
    return groups
