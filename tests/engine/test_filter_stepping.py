"""The step-through through ReLU and pooling, the ReLU figure (Figure 8) and the article's
small examples as samples (Figures 5-6 and 10): exact numbers."""

from __future__ import annotations

import numpy as np
import pytest

from engine import filters as F
from engine.errors import EngineError

LAPLACE = np.array([[0, -1, 0], [-1, 4, -1], [0, -1, 0]], dtype=np.float64)


def test_figure10_sequence_pools_to_the_articles_numbers():
    seq = F.step_sequence(F.FIGURE10_MAP, np.ones((1, 1)), relu=True, pool="max")
    assert seq.stages() == ["conv", "relu", "pool"]
    assert (len(seq.conv.steps), len(seq.relu), len(seq.pool)) == (16, 16, 4)
    assert seq.total == 36
    assert np.array_equal(seq.pooled, [[6, 8], [3, 4]])
    assert [w.winner for w in seq.pool] == [(1, 1), (1, 1), (0, 0), (1, 1)]
    assert [(w.row0, w.col0) for w in seq.pool] == [(0, 0), (0, 2), (2, 0), (2, 2)]
    assert not any(s.zeroed for s in seq.relu)  # no negatives in Figure 10
    # positions: 0 before anything, then each stage in turn
    assert seq.at(0) == ("conv", -1)
    assert seq.at(16) == ("conv", 15) and seq.at(17) == ("relu", 0)
    assert seq.at(32) == ("relu", 15) and seq.at(33) == ("pool", 0)
    assert seq.at(36) == ("pool", 3) and seq.at(99) == ("pool", 3)
    assert [seq.stage_start(s) for s in F.STAGES] == [0, 16, 32]
    assert seq.conv_step(3).total == 2 and seq.conv_step(20) is None


def test_relu_zeroes_exactly_the_negative_cells_then_3x3_stride2_pooling():
    seq = F.step_sequence(
        F.FIGURE5_IMAGE,
        LAPLACE,
        border="zero",
        relu=True,
        pool="max",
        pool_size=3,
        pool_stride=2,
    )
    expected = [
        [3, 1, 2, -2, 0],
        [-2, 2, 0, 2, -2],
        [0, -2, 1, 0, 3],
        [0, -2, 1, 2, -2],
        [-1, 3, 2, -2, 0],
    ]
    assert np.array_equal(seq.conv.output, expected)
    zeroed = [(s.row, s.col) for s in seq.relu if s.zeroed]
    assert zeroed == [(0, 3), (1, 0), (1, 4), (2, 1), (3, 1), (3, 4), (4, 0), (4, 3)]
    assert all(s.after == max(s.before, 0) for s in seq.relu)
    assert [(s.row, s.col) for s in seq.relu] == [(r, c) for r in range(5) for c in range(5)]
    assert np.array_equal(seq.rectified, np.maximum(expected, 0))
    assert np.array_equal(seq.pooled, [[3, 3], [3, 3]])
    assert [(w.row0, w.col0) for w in seq.pool] == [(0, 0), (0, 2), (2, 0), (2, 2)]
    assert seq.pool[0].values.shape == (3, 3) and seq.pool[0].winner == (0, 0)
    assert seq.pool[3].winner == (0, 2)  # the 3 at (2, 4): the window starts at (2, 2)


def test_stages_that_are_off_or_do_not_fit_are_left_out():
    conv_only = F.figure5_sequence()
    assert conv_only.stages() == ["conv"] and conv_only.total == 9
    assert np.array_equal(conv_only.rectified, conv_only.conv.output)
    assert conv_only.pooled is None and conv_only.note == ""
    settings = F.FilterSettings((F.PRESETS["Identity"].spec(),), pool="max", pool_size=4)
    too_big = F.figure5_sequence(settings)
    assert too_big.stages() == ["conv"] and too_big.pooled is None
    assert "4×4 pooling window does not fit the 3×3 map" in too_big.note
    with pytest.raises(EngineError, match="stage 'softmax'"):
        too_big.stage_start("softmax")
    with pytest.raises(EngineError, match="pooling 'min'"):
        F.step_sequence(F.FIGURE5_IMAGE, LAPLACE, pool="min")


def test_step_through_of_a_result_matches_the_pipeline_on_the_crop(rng):
    image = rng.integers(0, 256, size=(20, 24), dtype=np.uint8)
    spec = F.KernelSpec(LAPLACE)
    settings = F.FilterSettings((spec,), border="zero", relu=True, pool="max")
    result = F.run_filter(image, settings)
    seq = F.step_through(result, 0, None, crop=8)
    crop = image[6:14, 8:16]  # 8x8 around the centre (10, 12)
    np.testing.assert_array_equal(seq.conv.matrix[1:-1, 1:-1], crop)
    on_crop = F.run_filter(crop, settings).maps[0, :, :, 0]
    np.testing.assert_allclose(seq.pooled, on_crop, atol=1e-4)
    assert seq.stages() == ["conv", "relu", "pool"] and len(seq.pool) == 16


def test_relu_figure_is_the_convolution_before_and_after_relu(rng):
    image = rng.integers(0, 256, size=(30, 40), dtype=np.uint8)
    sobel = F.PRESETS["Sobel x"].spec()
    # the tab's ReLU and pooling do not matter: Figure 8 is conv -> ReLU
    settings = F.FilterSettings((F.PRESETS["Identity"].spec(), sobel), relu=True, pool="max")
    fig = F.relu_figure(image, settings, 1)
    conv = F.run_filter(image, F.FilterSettings((sobel,))).maps[0, :, :, 0]
    assert fig.step == 1
    np.testing.assert_allclose(fig.before, conv, atol=1e-4)
    np.testing.assert_allclose(fig.after, np.maximum(conv, 0), atol=1e-4)
    assert fig.zeroed == int(np.count_nonzero(conv < 0)) > 0
    assert fig.limit == pytest.approx(float(np.abs(conv).max()))
    assert np.array_equal(fig.curve, [[-fig.limit, 0], [0, 0], [fig.limit, fig.limit]])
    assert fig.before_picture.shape == (30, 40, 3) and fig.after_picture.dtype == np.uint8
    r, c = np.argwhere(conv < 0)[0]
    assert fig.value_at(r, c) == (pytest.approx(conv[r, c], abs=1e-4), 0.0)
    assert fig.value_at(30, 0) is None and fig.value_at(0, -1) is None
    # negative cells are blue before and the colour of 0 after, on the same scale
    zero = F.display(np.zeros((1, 1)), "diverging", value_range=(-1, 1))[0, 0]
    before_px, after_px = fig.before_picture[r, c], fig.after_picture[r, c]
    assert before_px[2] > before_px[0] + 30 and np.array_equal(after_px, zero)


def test_relu_figure_of_a_big_image_is_every_step_th_pixel(rng):
    image = rng.integers(0, 256, size=(100, 70, 3), dtype=np.uint8)
    settings = F.FilterSettings((F.PRESETS["Sobel y"].spec(),), color="rgb", stride=2)
    fig = F.relu_figure(image, settings, 0, channel=2, max_side=20)
    conv = F.run_filter(image, settings).maps[0, :, :, 2]  # 50 x 35
    assert fig.step == 3 and fig.before.shape == (17, 12)
    assert fig.pixel_of(30, 9) == (10, 3) and fig.pixel_of(49, 34) == (16, 11)
    np.testing.assert_allclose(fig.before, conv[::3, ::3], atol=1e-3)


@pytest.mark.parametrize("key", ["figure5", "figure10"])
def test_figure_samples_reproduce_the_articles_results(key):
    sample = F.figure_sample(key)
    result = F.run_filter(sample.image, sample.settings)
    np.testing.assert_array_equal(result.maps[0, :, :, 0], sample.expected)
    assert sample.image.dtype == np.uint8 and sample.label.startswith("Figure")


def test_figure10_sample_is_the_articles_map_and_unknown_samples_are_refused():
    sample = F.figure_sample("figure10")
    assert sample.image.tolist() == [[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]]
    assert list(F.FIGURE_SAMPLES) == ["figure5", "figure10"]
    with pytest.raises(EngineError, match="use one of figure5, figure10"):
        F.figure_sample("figure99")


def test_sample_picture_tells_small_numbers_apart():
    pic = F.sample_picture(F.FIGURE10_MAP)
    assert pic.shape == (4, 4, 3) and pic.dtype == np.uint8
    assert pic[2, 3, 0] == 70 and pic[1, 3, 0] == 235  # 0 and 8
    assert len(np.unique(pic[..., 0])) == len(np.unique(F.FIGURE10_MAP))
    assert np.all(F.sample_picture(np.ones((2, 2))) == 152)  # flat: mid-gray
