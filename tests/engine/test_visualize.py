"""engine.visualize: the display maths of the Train tab (counts, smoothing, scaling, grids)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine import architectures
from engine import visualize as vz
from engine.colormap import blue_white_red
from engine.graph_layout import describe, describe_model
from engine.losses import softmax_cross_entropy
from engine.model import build_model


def test_class_counts_counts_each_label_and_rejects_out_of_range():
    labels = np.array([0, 2, 2, 1, 2, 0])
    assert vz.class_counts(labels, 4).tolist() == [2, 1, 3, 0]
    with pytest.raises(ValueError, match=r"0\.\.2"):
        vz.class_counts(np.array([0, 3]), 3)


def test_sample_indices_takes_the_first_of_each_class_and_marks_missing():
    labels = np.array([1, 0, 1, 1, 0])
    out = vz.sample_indices(labels, 3, 2)
    assert out.tolist() == [[1, 4], [0, 2], [-1, -1]]


def test_image_grid_places_images_row_major_with_padding():
    images = np.stack([np.full((2, 3), v, np.uint8) for v in (10, 20, 30)])
    grid = vz.image_grid(images, cols=2, pad=1, pad_value=0)
    assert grid.shape == (2 * 3 - 1, 2 * 4 - 1)
    assert grid[0, 0] == 10 and grid[0, 4] == 20 and grid[3, 0] == 30
    assert grid[2, 0] == 0 and grid[3, 4] == 0  # padding row, empty cell


def test_ema_is_debiased_and_follows_a_step():
    # A constant series stays constant (no pull towards 0 at the start).
    assert np.allclose(vz.ema([3.0] * 5, 0.9), 3.0)
    s = vz.ema([0.0] * 20 + [1.0] * 200, 0.9)
    assert s[19] == 0.0 and 0.05 < s[20] < 0.15 and s[-1] == pytest.approx(1.0, abs=1e-6)
    # Hand computation for two values: (0.1*1 + 0.09*... ) / (1 - 0.81)
    a, b = vz.ema([1.0, 2.0], 0.9)
    assert a == pytest.approx(1.0)
    assert b == pytest.approx((0.9 * 0.1 * 1.0 + 0.1 * 2.0) / (1 - 0.81))


def test_ema_skips_non_finite_values():
    smoother = vz.EmaSmoother(0.5)
    assert math.isnan(smoother.update(float("nan")))
    assert smoother.update(2.0) == pytest.approx(2.0)
    assert smoother.update(float("inf")) == pytest.approx(2.0)
    with pytest.raises(ValueError):
        vz.EmaSmoother(1.0)


def test_epoch_position_and_duration_format():
    assert vz.epoch_position(0, 50, 100) == 0.5
    assert vz.epoch_position(1, 100, 100) == 2.0
    assert vz.format_duration(7.4) == "0:07"
    assert vz.format_duration(750) == "12:30"
    assert vz.format_duration(3723) == "1:02:03"
    assert vz.format_duration(math.inf) == "–" and vz.format_duration(None) == "–"


def test_maps_to_uint8_uses_one_scale_per_layer():
    maps = np.array([[[0.0, 1.0]], [[2.0, 4.0]]], dtype=np.float32)
    images, low, high = vz.maps_to_uint8(maps)
    assert images.dtype == np.uint8
    assert images[0, 0, 0] == 0 and images[1, 0, 1] == 255
    assert images[0, 0, 1] == round(255 / 4)  # 1.0 on the layer's 0..4 scale
    assert low.tolist() == [0.0, 2.0] and high.tolist() == [1.0, 4.0]


def test_display_layers_for_lenet5_folds_activations_and_ends_with_softmax(rng):
    model = build_model("lenet5", rng)
    x = rng.integers(0, 256, (1, 28, 28), dtype=np.uint8)
    views = vz.display_layers(model.activations(x), describe_model(model))
    names = [v.name for v in views]
    assert names == ["input", "conv1", "pool1", "conv2", "pool2", "fc1", "fc2", "fc3", "softmax"]
    by_name = {v.name: v for v in views}
    assert by_name["conv1"].label == "conv1 + relu1" and by_name["conv1"].images.shape == (
        6,
        28,
        28,
    )
    assert by_name["conv1"].values.min() >= 0  # the rectified map
    assert by_name["fc3"].label == "fc3 (logits)" and by_name["fc3"].kind == "bars"
    assert by_name["softmax"].values.sum() == pytest.approx(1.0, abs=1e-5)
    assert by_name["pool2"].images.shape == (16, 5, 5)


def test_diverging_rgb_maps_sign_to_colour():
    rgb = blue_white_red(np.array([-2.0, 0.0, 2.0, 1.0]))
    assert rgb[0].tolist() == [0, 0, 255]  # most negative: blue
    assert rgb[1].tolist() == [255, 255, 255]  # zero: white
    assert rgb[2].tolist() == [255, 0, 0]  # most positive: red
    assert rgb[3].tolist() == [255, 128, 128]


def test_kernel_images_share_one_symmetric_scale():
    w = np.zeros((2, 1, 3, 3))
    w[0, 0, 0, 0] = 0.5
    w[1, 0, 1, 1] = -0.25
    images, limit = vz.kernel_images(w)
    assert images.shape == (2, 1, 3, 3, 3) and limit == 0.5
    assert images[0, 0, 0, 0].tolist() == [255, 0, 0]
    assert images[1, 0, 1, 1].tolist() == [128, 128, 255]  # half the scale: light blue


def test_confusion_cell_and_row_fractions():
    labels = np.array([0, 0, 1, 1, 1])
    predicted = np.array([0, 1, 1, 0, 1])
    assert vz.confusion_cell(labels, predicted, 1, 0).tolist() == [3]
    assert vz.confusion_cell(labels, predicted, 1, 1).tolist() == [2, 4]
    fractions = vz.row_fractions(np.array([[1, 1], [1, 3], [0, 0]]))
    assert fractions.tolist() == [[0.5, 0.5], [0.25, 0.75], [0.0, 0.0]]


def test_confusion_colours_green_diagonal_red_mistakes_over_light_grey():
    fractions = vz.row_fractions(np.array([[4, 0, 0], [1, 3, 0], [1, 0, 7]]))
    colours = vz.confusion_colours(fractions)
    assert colours.shape == (3, 3, 3) and colours.dtype == np.uint8
    assert colours[0, 0].tolist() == [46, 160, 67]  # a perfect class: full green
    assert colours[0, 1].tolist() == [246, 246, 246]  # no images: the background
    assert colours[1, 0].tolist() == [214, 39, 40]  # a quarter of a row wrong: full red
    # an eighth wrong: half-way to red; seven eighths right: seven eighths of the way to green
    assert colours[2, 0].tolist() == [230, 143, 143]
    expected = np.floor(246 + 7 / 8 * (np.array([46, 160, 67]) - 246) + 0.5).tolist()
    assert colours[2, 2].tolist() == expected
    shades = vz.confusion_shades(fractions)
    assert shades[1, 0] == 1.0 and shades[2, 0] == 0.5 and shades[1, 1] == 0.75
    with pytest.raises(ValueError, match="square"):
        vz.confusion_colours(np.zeros((2, 3)))


def test_confusion_colours_shrunk_keep_the_strongest_cell_of_each_block():
    # 1,000 classes drawn in 250 pixels: four rows and columns per pixel. A class that is all
    # wrong must still show; a plain shrink would keep one row and column in four.
    k = 1000
    confusion = np.eye(k, dtype=np.int64) * 9
    confusion[601, 601], confusion[601, 2] = 0, 9  # class 601 always taken for class 2
    colours = vz.confusion_colours(vz.row_fractions(confusion), side=250)
    assert colours.shape == (250, 250, 3)
    assert colours[601 // 4, 2 // 4].tolist() == [214, 39, 40]  # the lone mistake: red
    assert colours[601 // 4, 601 // 4].tolist() == [46, 160, 67]  # the others of its block
    assert colours[10, 11].tolist() == [246, 246, 246]
    np.testing.assert_array_equal(np.diagonal(colours[..., 1]), 160)  # the diagonal, whole
    small = vz.row_fractions(np.array([[4, 0], [1, 3]]))
    np.testing.assert_array_equal(vz.confusion_colours(small, side=5), vz.confusion_colours(small))


def test_probe_loss_is_the_mean_loss_without_training(rng):
    model = build_model("lenet5", rng)
    images = rng.integers(0, 256, (8, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 8)
    before = model.get_weights()
    loss = vz.probe_loss(model, images, labels)
    expected, _ = softmax_cross_entropy(model.forward(model.input_spec.to_tensor(images)), labels)
    assert loss == pytest.approx(float(expected), rel=1e-6)
    after = model.get_weights()
    assert all(np.array_equal(before[k], after[k]) for k in before)
    assert vz.probe_loss(model, images, labels, "total_error") < loss


@pytest.mark.parametrize("name", architectures.names())
def test_display_layers_for_every_member(rng, name):
    channels = 1 if name == "lenet5" else 3
    shape = architectures.input_shape_for(name, channels)
    model = build_model({"name": "graph", **architectures.build_spec(name, shape, 4)}, rng)
    x = rng.integers(0, 256, (1, *shape[1:]) if channels == 1 else (1, *shape), dtype=np.uint8)
    views = vz.display_layers(model.activations(x), describe_model(model))
    assert views[0].name == "input" and views[-1].name == "softmax"
    assert views[-2].label.endswith("(logits)") and views[-2].values.shape == (4,)
    shown = [v.name for v in views]
    order = [n for n in model.nodes if n in shown]
    assert shown[1:-1] == order  # topological order, every shown node once
    bands = vz.arrange(views)
    assert sorted(i for b in bands for col in b.columns for i in col) == list(range(len(views)))


def test_shown_nodes_fold_bn_and_relu_and_put_branches_side_by_side():
    spec = architectures.build_spec("googlenet", (3, 32, 32), 4)
    rows = vz.shown_nodes(describe(spec))
    by = {r.name: r for r in rows}
    assert by["conv1"].chain == ("conv1", "relu1") and by["conv1"].label == "conv1 + relu1"
    assert by["inception3a.branch2.2"].label == "branch2.2 + branch2.3"
    assert by["inception3a.branch2.2"].source == "inception3a.branch2.0"
    assert by["inception3a.branch1.0"].source == "pool1"
    bands = vz.arrange(rows)
    inception = [b for b in bands if b.block == "inception3a" and len(b.columns) > 1]
    assert len(inception) == 1 and len(inception[0].columns) == 4
    names = [[rows[i].name for i in col] for col in inception[0].columns]
    assert names[1] == ["inception3a.branch2.0", "inception3a.branch2.2"]
    assert names[3] == ["inception3a.branch4.0", "inception3a.branch4.1"]
    resnet = vz.shown_nodes(describe(architectures.build_spec("resnet8", (3, 32, 32), 4)))
    by = {r.name: r for r in resnet}
    assert by["conv1"].chain == ("conv1", "bn1", "relu")
    assert by["layer1.0.add"].label == "add + relu2"
    side = [b for b in vz.arrange(resnet) if b.block == "layer2.0" and len(b.columns) > 1]
    assert [[resnet[i].name for i in c] for c in side[0].columns] == [
        ["layer2.0.conv1", "layer2.0.conv2"],
        ["layer2.0.downsample.0"],
    ]


def test_shown_nodes_fold_within_a_block_only():
    rows = vz.shown_nodes(describe(architectures.build_spec("densenet", (3, 32, 32), 4)))
    by = {r.name: r for r in rows}
    assert by["block1.layer4.cat"].chain == ("block1.layer4.cat",)
    assert by["trans1.conv"].source == ""  # reads trans1.relu, which no row shows
    assert by["block1.layer1.conv"].facts.field.size == 5


def test_a_colour_input_is_one_rgb_tile(rng):
    model = build_model({"name": "resnet8", "num_classes": 4, "input_shape": [3, 8, 8]}, rng)
    x = np.zeros((1, 3, 8, 8), dtype=np.uint8)
    x[0, 0] = 255  # pure red
    views = vz.display_layers(model.activations(x), describe_model(model))
    first = views[0]
    assert first.images.shape == (1, 8, 8, 3) and first.values.shape == (3, 8, 8)
    assert first.images[0, 0, 0].tolist() == [255, 0, 0]


def test_a_big_network_starts_with_all_but_its_first_block_folded():
    # The Train tab's live view and the Classify tab's network view start alike.
    big = vz.shown_nodes(describe(architectures.build_spec("resnet20", (3, 32, 32), 4)))
    blocks = list(dict.fromkeys(r.block for r in big if r.block))
    assert len(big) > vz.FOLD_ABOVE and blocks[0] == "layer1.0"
    assert vz.folded_at_first(big) == set(blocks[1:])
    assert vz.folded_at_first(big[: vz.FOLD_ABOVE]) == set()  # a small network: all open
    lenet = vz.shown_nodes(describe(build_model("lenet5").graph_spec()))
    assert vz.folded_at_first(lenet) == set()


def test_a_folded_block_shows_its_output_row_under_its_header():
    # One rule for both views: a folded block keeps its last row, the block's output (the
    # add of a ResNet block, the concatenation of an Inception module), nothing else of it.
    rows = vz.shown_nodes(describe(architectures.build_spec("googlenet", (3, 32, 32), 4)))
    names = [r.name for r in rows]
    shown = [names[i] for i in vz.unfolded(rows, {"inception3a", "inception4a"})]
    assert [n for n in shown if n.startswith("inception3a.")] == ["inception3a.cat"]
    assert [n for n in shown if n.startswith("inception4a.")] == ["inception4a.cat"]
    assert [n for n in names if n not in shown] == [
        n for n in names if n.startswith(("inception3a.b", "inception4a.b"))
    ]
    assert [names[i] for i in vz.unfolded(rows, set())] == names
    assert vz.block_header("inception3a", True).startswith("▸ inception3a ")
    assert "folded to its output" in vz.block_header("inception3a", True)
    assert "click to fold" in vz.block_header("inception3a", False)


def test_the_probe_is_256_images_but_one_batch_on_a_heavy_network():
    from engine.archtext import to_spec
    from engine.visualize import PROBE_IMAGES, PROBE_MACS, probe_count

    light = build_model("lenet5")
    assert probe_count(light, 64, 10_000) == PROBE_IMAGES == 256
    assert probe_count(light, 64, 120) == 120  # a small validation part: all of it
    deep = build_model(to_spec(", ".join(["conv 8 3, relu"] * 300) + ", flatten, dense 10",
                               (1, 28, 28), 10))  # fmt: skip
    macs = 300 * 8 * 8 * 9 * 28 * 28  # about 135 M multiply-adds an image
    assert PROBE_MACS // macs < 64
    assert probe_count(deep, 64, 10_000) == 64  # one batch: at most the step's own cost
    assert probe_count(deep, 500, 10_000) == 256  # never more than PROBE_IMAGES


@pytest.mark.parametrize("diverging", [False, True])
def test_ramp_table_matches_the_anchors_interpolated_and_survives_nan(diverging):
    """The network view's activation colours come from a table (a 512-channel layer's maps in
    a few ms): each colour within one step of the exact interpolation between the five
    anchors, each anchor exact, and NaN or infinite values coloured instead of raising."""
    from engine.colormap import _DIVERGING_DARK, _SEQUENTIAL, ramp

    anchors = _DIVERGING_DARK if diverging else _SEQUENTIAL
    vmax = 2.5
    low = -vmax if diverging else 0.0
    values = np.random.default_rng(0).uniform(low - 0.5, vmax + 0.5, (64, 9, 9))
    t = np.clip((values / vmax + 1) / 2 if diverging else values / vmax, 0, 1) * 4
    exact = np.stack([np.interp(t, np.arange(5), anchors[:, c]) for c in range(3)], axis=-1)
    assert np.abs(ramp(values, vmax, diverging).astype(float) - exact).max() <= 1.0
    at = np.linspace(low, vmax, 5)
    np.testing.assert_array_equal(ramp(at, vmax, diverging), anchors.astype(np.uint8))
    odd = ramp(np.array([np.nan, np.inf, -np.inf]), float("nan"), diverging)
    zero = ramp(np.array([0.0]), 1.0, diverging)[0]
    np.testing.assert_array_equal(odd[0], zero)
    np.testing.assert_array_equal(odd[1], anchors[-1].astype(np.uint8))
    np.testing.assert_array_equal(odd[2], anchors[0].astype(np.uint8))
