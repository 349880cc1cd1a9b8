"""The disk cache of the "What it learned" grids: same weights, images, method and layer, same
file; anything damaged or foreign is ignored and replaced, never a crash."""

from __future__ import annotations

import os

import numpy as np
import pytest

import resources
from engine import feature_layers, features
from engine.feature_cache import FORMAT, FeatureCache, images_key
from engine.idx import read_idx
from engine.modelfile import load_model


@pytest.fixture(scope="module")
def source():
    model = load_model(resources.shipped_model_path())
    return model, read_idx(resources.mnist_dir() / "t10k-images-idx3-ubyte.gz")[:60]


def _grids(model, images, cache, method="patches", **options):
    return [
        g
        for g in feature_layers.every_layer(model, images, method, cache=cache, **options)
        if isinstance(g, feature_layers.LayerGrid)
    ]


def _conv1_key(cache, model, images) -> str:
    return cache.key(feature_layers.weights_key(model), images_key(images), "patches k=9", "conv1")


def test_a_second_run_reads_every_grid_from_disk(tmp_path, source):
    model, images = source
    cache = FeatureCache(tmp_path)
    first = _grids(model, images, cache)
    assert [(g.node, g.cached) for g in first] == [("conv1", False), ("conv2", False)]
    assert len(list(tmp_path.glob("*.npz"))) == 2
    again = _grids(model, images, FeatureCache(tmp_path))  # a new session, same folder
    assert [(g.node, g.cached) for g in again] == [("conv1", True), ("conv2", True)]
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a.image, b.image)


def test_other_images_weights_or_options_are_other_entries(tmp_path, source):
    model, images = source
    cache = FeatureCache(tmp_path)
    _grids(model, images, cache)
    assert not any(g.cached for g in _grids(model, images[:50], cache))
    assert not any(g.cached for g in _grids(model, images, cache, k=4))
    changed = model.clone()
    changed.layer("conv2").params["bias"][0] += 1.0
    assert [g.cached for g in _grids(changed, images, cache)] == [False, False]
    syn = _grids(model, images, cache, "synthesis", steps=2)
    assert [g.node for g in syn] == ["conv1", "conv2", "fc3"] and not any(g.cached for g in syn)
    assert all(g.cached for g in _grids(model, images[:7], cache, "synthesis", steps=2))
    assert not any(g.cached for g in _grids(model, images, cache, "synthesis", steps=3))


def _bad_files(key: str) -> dict[str, object]:
    """What may sit where a grid should: (name -> writer of that file)."""
    image = np.zeros((4, 4), np.uint8)
    return {
        "garbage": b"\x00not a zip at all" * 10,
        "truncated": None,  # filled in below from a good file
        "foreign key": {"format": np.array(FORMAT), "key": np.array("other"), "image": image},
        "old format": {"format": np.array("v0"), "key": np.array(key), "image": image},
        "pickled object": {
            "format": np.array(FORMAT),
            "key": np.array(key),
            "image": np.array([{"a": 1}], dtype=object),
        },
        "float image": {
            "format": np.array(FORMAT),
            "key": np.array(key),
            "image": np.zeros((4, 4)),
        },
        "extra member": {
            "format": np.array(FORMAT),
            "key": np.array(key),
            "image": image,
            "more": image,
        },
    }


@pytest.mark.parametrize("kind", list(_bad_files("k")))
def test_a_corrupt_or_foreign_file_is_ignored_and_replaced(tmp_path, source, kind):
    model, images = source
    cache = FeatureCache(tmp_path)
    key = _conv1_key(cache, model, images)
    good = _grids(model, images, cache)[0].image
    path = cache.path(key)
    what = _bad_files(key)[kind]
    if kind == "truncated":
        path.write_bytes(path.read_bytes()[:200])
    elif isinstance(what, bytes):
        path.write_bytes(what)
    else:
        with open(path, "wb") as f:
            np.savez(f, **what)
    assert cache.load(key) is None and not path.exists()  # ignored and removed
    path.write_bytes(b"junk")
    grids = _grids(model, images, cache)  # computed again, no exception
    assert [(g.node, g.cached) for g in grids] == [("conv1", False), ("conv2", True)]
    np.testing.assert_array_equal(grids[0].image, good)
    np.testing.assert_array_equal(cache.load(key), good)  # the file was written anew


def test_a_folder_in_the_way_or_an_unwritable_cache_never_stops_the_work(tmp_path, source):
    model, images = source
    cache = FeatureCache(tmp_path)
    cache.path(_conv1_key(cache, model, images)).mkdir()
    assert [g.cached for g in _grids(model, images, cache)] == [False, False]
    blocked = tmp_path / "a file"
    blocked.write_text("not a folder")
    assert FeatureCache(blocked / "features").store("k", np.zeros((2, 2), np.uint8)) is False
    grids = _grids(model, images, FeatureCache(blocked / "features"))
    assert [g.node for g in grids] == ["conv1", "conv2"]


def test_the_cache_keeps_under_its_size_and_clears(tmp_path):
    rng = np.random.default_rng(0)
    cache = FeatureCache(tmp_path, max_bytes=50_000)
    other = tmp_path / "notes.txt"
    other.write_text("not ours")
    for i in range(8):  # ~16 KB each, incompressible
        assert cache.store(f"k{i}", rng.integers(0, 256, (128, 128), dtype=np.uint8))
        os.utime(cache.path(f"k{i}"), (1e9 + i, 1e9 + i))  # used in this order, whatever the clock
        assert cache.size() <= 50_000
    assert cache.load("k7") is not None and cache.load("k0") is None  # oldest went first
    assert cache.clear() >= 1 and cache.size() == 0
    assert other.read_text() == "not ours"


def test_a_layer_found_on_disk_is_not_computed_again_and_keeps_its_place(tmp_path, source):
    model, images = source
    cache = FeatureCache(tmp_path)
    first = _grids(model, images, cache)
    cache.path(_conv1_key(cache, model, images)).unlink()
    again = _grids(model, images, FeatureCache(tmp_path))
    assert [(g.node, g.cached) for g in again] == [("conv1", False), ("conv2", True)]
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a.image, b.image)


def test_a_group_of_layers_computes_only_those_not_on_disk(tmp_path):
    # every_layer runs resnet8's convolutions in groups (1, 2, 4, 2 layers): a cached layer in
    # the middle of a group is read, its neighbours computed, and the order stays the network's
    from engine.model import build_model

    model = build_model({"name": "resnet8", "num_classes": 4, "input_shape": [3, 32, 32]})
    images = np.random.default_rng(3).integers(0, 256, (12, 3, 32, 32), dtype=np.uint8)
    first = _grids(model, images, FeatureCache(tmp_path))
    convs = features.conv_nodes(model)
    kept = {convs[2], convs[5]}
    for node in set(convs) - kept:
        weights = feature_layers.weights_key(model)
        key = FeatureCache.key(weights, images_key(images), "patches k=9", node)
        FeatureCache(tmp_path).path(key).unlink()
    again = _grids(model, images, FeatureCache(tmp_path))
    assert [(g.node, g.cached) for g in again] == [(n, n in kept) for n in convs]
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a.image, b.image)
