"""Figure 17's computations: top dataset patches and synthesised inputs per filter."""

from __future__ import annotations

import numpy as np
import pytest

import resources
from engine import feature_layers, features
from engine.errors import ModelFileError, ShapeError
from engine.idx import read_idx
from engine.modelfile import load_model
from engine.progress import CancelFlag, Progress


@pytest.fixture(scope="module")
def model():
    return load_model(resources.shipped_model_path())


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    folder = resources.shipped_model_path().parent.parent / "datasets" / "mnist"
    return read_idx(folder / "t10k-images-idx3-ubyte.gz")[:300]


def _result(events):
    items = list(events)
    assert all(isinstance(e, Progress) for e in items[:-1])
    return items[-1]


def _edge_model(model):
    """The shipped LeNet with conv1's filter 0 replaced by a vertical-edge detector
    (dark on the left, bright on the right) and no bias."""
    m = model.clone()
    w = m.parameters()["conv1.weight"]
    w[0] = 0.0
    w[0, 0, :, :2] = -1.0
    w[0, 0, :, 3:] = 1.0
    m.parameters()["conv1.bias"][0] = 0.0
    return m


def test_an_edge_detector_picks_edge_patches(model, rng):
    m = _edge_model(model)
    images = np.zeros((60, 28, 28), dtype=np.uint8)
    for i in range(60):
        if i % 3 == 0:  # a vertical step edge, dark to bright, at a random column
            images[i, :, rng.integers(6, 22) :] = 255
        else:  # flat grey or noise: nothing for the detector
            images[i] = rng.integers(0, 256) if i % 3 == 1 else rng.integers(0, 80, (28, 28))
    result = _result(features.top_patches(m, "conv1", images, k=9, batch_size=16))
    patches = result.filters[0]
    assert len(patches) == 9
    assert {p.image % 3 for p in patches} == {0}
    for p in patches:
        crop = p.crop[0].astype(int)
        assert crop[:, :2].mean() < 10 and crop[:, 3:].mean() > 245
        # the activation is the filter applied to the crop: the crop is what the unit saw
        spec = m.input_spec
        x = (p.crop[0] * spec.scale - spec.mean) / spec.std
        assert np.isclose(float((x * m.parameters()["conv1.weight"][0, 0]).sum()), p.activation,
                          rtol=1e-4)  # fmt: skip


def test_patches_are_receptive_field_crops_strongest_first(model, digits):
    # LeNet-5: conv1 5x5 sees 5 pixels; pool 2 then conv 5 gives 5 + 1 + 4*2 = 14
    for node, size in (("conv1", 5), ("conv2", 14)):
        result = _result(features.top_patches(model, node, digits, k=4))
        assert result.field.size == size and result.count == len(digits)
        assert len(result.filters) == model.output_shape(node)[0]
        for patches in result.filters:
            acts = [p.activation for p in patches]
            assert acts == sorted(acts, reverse=True)
            assert len({p.image for p in patches}) == 4
            for p in patches:
                assert p.crop.shape == (1, size, size) and p.crop.dtype == np.uint8
    # the best patch is the best response over all images and positions
    act = dict(model.activations(model.input_spec.to_tensor(digits)))["conv2"]
    best = result.filters[3][0]
    assert act[:, 3].max() == pytest.approx(best.activation, rel=1e-5)
    assert act[best.image, 3, best.row, best.col] == pytest.approx(best.activation, rel=1e-5)


def test_patches_cancel_and_refuse_vectors(model, digits):
    flag = CancelFlag()
    events = []
    for e in features.top_patches(model, "conv1", digits, batch_size=50, control=flag):
        events.append(e)
        flag.cancel()
    assert all(isinstance(e, Progress) for e in events) and len(events) <= 2
    with pytest.raises(ShapeError, match="vector"):
        list(features.top_patches(model, "fc1", digits))
    with pytest.raises(ShapeError, match="no node"):
        list(features.top_patches(model, "conv9", digits))
    with pytest.raises(ShapeError, match="1 to 100, got 101"):  # a grid no viewer opens
        list(features.top_patches(model, "conv1", digits, k=features.MAX_PATCHES + 1))


def test_synthesis_refuses_steps_beyond_its_limit_before_any_work(model):
    rng = np.random.default_rng(0)
    too_many = features.MAX_SYNTHESIS_STEPS + 1
    with pytest.raises(ShapeError, match=f"synthesis steps must be 1 to 10,000, got {too_many:,}"):
        next(features.synthesize_all(model, "conv1", rng, steps=too_many))


@pytest.mark.filterwarnings("error")  # no RuntimeWarning on stderr either
def test_weights_that_overflow_are_a_model_file_error_not_infinite_patches(model, digits):
    """Finite weights of 1e38 load, and once made conv1's maps Infinity: the patches ranked
    them, synthesis returned noise and ``features --json`` printed ``Infinity``."""
    huge = model.clone()
    huge.parameters()["conv1.weight"][...] = 1e38
    with pytest.raises(ModelFileError, match=r"conv2's outputs are not finite .*images 1 to 50"):
        list(features.top_patches(huge, "conv2", digits[:80], batch_size=50))
    with pytest.raises(ModelFileError, match="conv1's outputs are not finite"):
        list(features.synthesize_all(huge, "conv1", np.random.default_rng(0), steps=2))
    grids = feature_layers.every_layer(huge, digits[:20], "synthesis", steps=2)
    with pytest.raises(ModelFileError, match="weights overflow float32"):
        list(grids)


def test_a_wide_node_is_synthesised_a_batch_at_a_time_with_the_same_images(model, monkeypatch):
    """Every unit of a node was one image of a single batch: a flatten of 65,536 units asked
    for 17 GB. Batches of SYNTHESIS_BATCH give each channel the image it had in one batch."""
    whole = features.synthesize_all(model, "pool2", np.random.default_rng(5), steps=6)
    expected = _result(whole)
    monkeypatch.setattr(features, "SYNTHESIS_BATCH", 5)
    sizes = []
    forward = features._Probe.forward
    monkeypatch.setattr(
        features._Probe,
        "forward",
        lambda self, x, *a, **k: sizes.append(len(x)) or forward(self, x, *a, **k),
    )
    events = list(features.synthesize_all(model, "pool2", np.random.default_rng(5), steps=6))
    assert max(sizes) == 5 and events[-2] == Progress("synthesis", 6 * 4, 6 * 4)  # 16 channels
    for a, b in zip(events[-1], expected, strict=True):
        assert a.channel == b.channel and (a.image == b.image).all()
        assert a.activation == pytest.approx(b.activation, rel=1e-5)


def test_synthesis_excites_its_filter_and_is_seeded(model):
    a = features.synthesize(model, "conv2", 5, np.random.default_rng(3), steps=40)
    assert a.image.shape == (1, 28, 28) and a.image.dtype == np.uint8
    spec = model.input_spec

    _, h, w = model.output_shape("conv2")
    assert a.window == ((h // 2) * 2 - 2, (w // 2) * 2 - 2, 14)  # the centre unit's field

    def response(img: np.ndarray) -> float:  # recomputed here through the whole network
        return float(
            dict(model.activations(spec.to_tensor(img[None])))["conv2"][0, 5, h // 2, w // 2]
        )

    assert response(a.image) == pytest.approx(a.activation, rel=1e-4)
    assert response(a.image) > response(a.start) + 1.0
    b = features.synthesize(model, "conv2", 5, np.random.default_rng(3), steps=40)
    assert np.array_equal(a.image, b.image)


def test_every_filter_of_a_small_field_is_excited(monkeypatch):
    """A 3x3 first layer: a random shift of 2 pixels before each step moved the pattern out of
    the unit's field, and some filters ended below their start (densenet's conv1: one of 24,
    others +0.2 where a still image climbs +3 to +4.5). The jitter is a quarter of the field
    at most: none for 3x3."""
    from engine.archtext import to_spec
    from engine.model import build_model

    net = build_model(to_spec("conv 8 3, relu, conv 8 3, relu, flatten, dense 4", (3, 16, 16), 4))
    done = list(features.synthesize_all(net, "conv1", np.random.default_rng(0), steps=8))[-1]
    gains = np.array([s.activation - s.start_activation for s in done])
    assert (gains > 0).all() and gains.mean() > 1.0, gains  # jitter 2: -0.31 to +0.40 on average


def test_class_synthesis_raises_its_score_and_cancels(model):
    flag = CancelFlag()
    made = _result(features.synthesize_all(model, "fc3", np.random.default_rng(0), [2, 7],
                                           steps=30))  # fmt: skip
    assert [s.channel for s in made] == [2, 7]
    for s in made:
        logits = model.forward(model.input_spec.to_tensor(s.image[None]))[0]
        assert logits[s.channel] == pytest.approx(s.activation, rel=1e-4)
        assert s.activation > s.start_activation + 5
    flag.cancel()
    events = list(features.synthesize_all(model, "fc3", np.random.default_rng(0), control=flag))
    assert all(isinstance(e, Progress) for e in events)


def test_grids_hold_every_patch(model, digits):
    result = _result(features.top_patches(model, "conv1", digits[:40], k=3))
    grid = features.patch_grid(result, least=30)
    # 6 rows of 3 crops of 5 px enlarged x6 = 30 px, with 2 px between them
    assert grid.shape == (6 * 32 - 2, 3 * 32 - 2)
    assert np.array_equal(grid[:30, :30], result.filters[0][0].crop[0].repeat(6, 0).repeat(6, 1))


def test_a_colour_batchnorm_graph_works_and_keeps_its_statistics():
    from engine.model import build_model

    m = build_model({"name": "resnet8", "num_classes": 4, "input_shape": [3, 32, 32]},
                    np.random.default_rng(0))  # fmt: skip
    before = {k: v.copy() for k, v in m.buffers().items()}
    images = np.random.default_rng(1).integers(0, 256, (24, 3, 32, 32), dtype=np.uint8)
    node = "layer2.0.conv2"
    result = _result(features.top_patches(m, node, images, k=2))
    size = result.field.size
    assert all(p.crop.shape == (3, size, size) for ps in result.filters for p in ps)
    act = dict(m.activations(m.input_spec.to_tensor(images)))[node]
    assert act[:, 0].max() == pytest.approx(result.filters[0][0].activation, rel=1e-5)
    s = features.synthesize(m, node, 0, np.random.default_rng(0), steps=8)
    assert s.image.shape == (3, 32, 32) and s.activation > s.start_activation
    assert all(np.array_equal(before[k], v) for k, v in m.buffers().items())


def test_every_layer_runs_the_dataset_once_per_doubling_group_with_the_same_grids(monkeypatch):
    # a pass per layer cost each layer's depth (resnet20: 101 s of CPU on 2,000 images); now
    # resnet8's 9 convolutions are 4 passes (groups of 1, 2, 4 and 2 layers)
    from engine.layers import Conv2D
    from engine.model import build_model

    m = build_model({"name": "resnet8", "num_classes": 4, "input_shape": [3, 32, 32]},
                    np.random.default_rng(0))  # fmt: skip
    images = np.random.default_rng(2).integers(0, 256, (30, 3, 32, 32), dtype=np.uint8)
    convs = features.conv_nodes(m)
    expected = [features.patch_grid(_result(features.top_patches(m, n, images))) for n in convs]
    stem_runs = []
    forward = Conv2D.forward

    def counted(self, x, *args, **kwargs):
        stem_runs.append(x.shape[1] == 3)  # the stem is the one convolution of 3 channels
        return forward(self, x, *args, **kwargs)

    monkeypatch.setattr(Conv2D, "forward", counted)
    events = list(feature_layers.every_layer(m, images, "patches"))
    grids = [e for e in events if isinstance(e, feature_layers.LayerGrid)]
    assert [g.node for g in grids] == convs and len(convs) == 9
    for g, want in zip(grids, expected, strict=True):
        np.testing.assert_array_equal(g.image, want)
    assert sum(stem_runs) == 4
    stages = list(dict.fromkeys(e.stage for e in events if isinstance(e, Progress)))
    assert stages[:2] == [convs[0], f"{convs[1]} to {convs[2]}"] and len(stages) == 4
