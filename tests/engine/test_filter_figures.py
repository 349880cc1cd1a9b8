"""Figures 4 and 10 in numbers: pooling windows, the pooled-pixel inspector, cell labels."""

from __future__ import annotations

import numpy as np
import pytest

from engine import filters as F
from engine.errors import EngineError


def test_figure10_max_pooling_windows_winners_and_result():
    windows, out = F.pool_windows(F.FIGURE10_MAP, "max", 2, 2)
    assert np.array_equal(out, [[6, 8], [3, 4]])
    assert [(w.out_row, w.out_col, w.row0, w.col0) for w in windows] == [
        (0, 0, 0, 0),
        (0, 1, 0, 2),
        (1, 0, 2, 0),
        (1, 1, 2, 2),
    ]
    assert np.array_equal(windows[0].values, [[1, 1], [5, 6]])
    assert np.array_equal(windows[1].values, [[2, 4], [7, 8]])
    assert np.array_equal(windows[2].values, [[3, 2], [1, 2]])
    assert np.array_equal(windows[3].values, [[1, 0], [3, 4]])
    assert [w.winner for w in windows] == [(1, 1), (1, 1), (0, 0), (1, 1)]
    assert [w.result for w in windows] == [6, 8, 3, 4]
    # the same numbers as the pipeline's pooling
    assert np.array_equal(F.pool(F.FIGURE10_MAP, "max", 2, 2), out)


@pytest.mark.parametrize("kind", ["avg", "sum"])
def test_average_and_sum_windows_have_no_winner(kind):
    windows, out = F.pool_windows(F.FIGURE10_MAP, kind, 2, 2)
    assert all(w.winner is None for w in windows)
    expected = [[13, 21], [8, 8]] if kind == "sum" else [[3.25, 5.25], [2, 2]]
    assert np.allclose(out, expected)
    np.testing.assert_allclose(F.pool(F.FIGURE10_MAP, kind, 2, 2), out)


def test_pool_windows_refuse_bad_input():
    with pytest.raises(EngineError):
        F.pool_windows(F.FIGURE10_MAP, "median")
    with pytest.raises(EngineError):
        F.pool_windows(np.ones((1, 1)), "max", 2, 2)


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_inspect_pool_matches_the_pooled_result(rng, relu, kind):
    img = rng.integers(0, 256, (14, 12), dtype=np.uint8)
    spec = F.PRESETS["Sobel x"].spec()
    settings = F.FilterSettings(
        (spec,), border="zero", stride=1, relu=relu, pool=kind, pool_size=3, pool_stride=2
    )
    result = F.run_filter(img, settings)
    conv = F.run_filter(img, F.FilterSettings((spec,), border="zero", relu=relu)).maps[0, :, :, 0]
    for row, col in [(0, 0), (2, 3), (5, 4)]:
        ins = F.inspect_pool(result, 0, row, col)
        assert ins is not None and ins.relu == relu and ins.kind == kind
        np.testing.assert_allclose(
            ins.window.values, conv[row * 2 : row * 2 + 3, col * 2 : col * 2 + 3], atol=1e-3
        )
        assert ins.window.result == pytest.approx(result.maps[0, row, col, 0], abs=1e-3)
        if kind == "max":
            wr, wc = ins.window.winner
            assert ins.window.values[wr, wc] == ins.window.values.max()
            assert ins.conv_rc == (row * 2 + wr, col * 2 + wc)
        else:
            assert ins.window.winner is None and ins.conv_rc == (row * 2, col * 2)
    if relu:  # Sobel x on noise has negative responses: ReLU must have removed them
        assert conv.min() == 0 and F.inspect_pool(result, 0, 1, 1).window.values.min() >= 0
    assert F.inspect_pool(result, 0, 99, 0) is None
    unpooled = F.run_filter(img, F.FilterSettings((spec,)))
    assert F.inspect_pool(unpooled, 0, 0, 0) is None


def test_cell_labels_gray_colour_and_zoom_threshold():
    gray = np.arange(20, dtype=np.uint8).reshape(4, 5) * 12
    labels = F.cell_labels(gray, (1, 3), (0, 9), 40.0, shade=gray)
    assert [(lab.row, lab.col) for lab in labels] == [(r, c) for r in (1, 2) for c in range(5)]
    assert labels[0].text == str(int(gray[1, 0])) and labels[0].dark is False
    assert labels[-1].text == str(int(gray[2, 4])) and labels[-1].dark is True
    assert F.cell_labels(gray, (0, 4), (0, 5), F.MIN_LABEL_CELL - 1) == []
    rgb = np.zeros((2, 2, 3), dtype=np.uint8)
    rgb[1, 1] = (255, 128, 7)
    (one,) = F.cell_labels(rgb, (1, 2), (1, 2), 60.0)
    assert one.text == "R 255\nG 128\nB 7"
    assert F.cell_labels(rgb, (0, 2), (0, 2), F.MIN_COLOUR_CELL - 1) == []  # 3 lines need room
    floats = F.cell_labels(np.array([[-1.5, 0.125]]), (0, 1), (0, 2), 30.0)
    assert [lab.text for lab in floats] == ["-1.5", "0.125"]
    assert F.cell_labels(np.zeros((100, 100)), (0, 100), (0, 100), 30.0, max_cells=50) == []


def test_explain_pixel_follows_conv_relu_and_the_pool_winner(rng):
    img = rng.integers(0, 256, (10, 10, 3), dtype=np.uint8)
    spec = F.PRESETS["Sobel y"].spec()
    plain = F.run_filter(img, F.FilterSettings((spec,), color="rgb"))
    ex = F.explain_pixel(plain, 0, 4, 5, channel=2)
    assert ex.pool is None and ex.relu_value is None and ex.conv_rc == (4, 5)
    assert ex.inspection.value == pytest.approx(plain.maps[0, 4, 5, 2], abs=1e-3)
    relu = F.run_filter(img, F.FilterSettings((spec,), color="rgb", relu=True))
    values = [F.explain_pixel(relu, 0, r, c, 0) for r in range(10) for c in range(10)]
    assert any(v.inspection.value < 0 for v in values)  # something for ReLU to do
    for v in values:
        assert v.relu_value == max(v.inspection.value, 0.0)
        assert v.relu_value == pytest.approx(relu.maps[0, v.conv_rc[0], v.conv_rc[1], 0], abs=1e-3)
    pooled = F.run_filter(img, F.FilterSettings((spec,), color="rgb", relu=True, pool="max"))
    ex = F.explain_pixel(pooled, 0, 2, 3, 1)
    assert ex.pool is not None and ex.conv_rc == ex.pool.conv_rc
    assert ex.relu_value == pytest.approx(pooled.maps[0, 2, 3, 1], abs=1e-3)
    assert F.explain_pixel(pooled, 0, 50, 50) is None
