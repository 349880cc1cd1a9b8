"""engine.filters against a slow, obviously correct loop convolution built on np.pad."""

from __future__ import annotations

import numpy as np
import pytest

from engine import filters as F
from engine.errors import EngineError, ShapeError
from engine.filters.correlate import Correlator
from engine.progress import CancelFlag, Progress

NP_MODES = {
    "zero": "constant",
    "extend": "edge",
    "reflect": "reflect",
    "symmetric": "symmetric",
    "wrap": "wrap",
}


def naive_correlate(image, weights, border, stride, offset=0.0):
    """Loops over output pixels of np.pad-ed float64 data: the oracle."""
    a = np.asarray(image, dtype=np.float64)
    squeeze = a.ndim == 2
    if squeeze:
        a = a[:, :, None]
    f = weights.shape[0]
    p = 0 if border == "valid" else f // 2
    if p:
        a = np.pad(a, ((p, p), (p, p), (0, 0)), mode=NP_MODES[border])
    oh = (a.shape[0] - f) // stride + 1
    ow = (a.shape[1] - f) // stride + 1
    out = np.zeros((oh, ow, a.shape[2]))
    for y in range(oh):
        for x in range(ow):
            window = a[y * stride : y * stride + f, x * stride : x * stride + f]
            for c in range(a.shape[2]):
                out[y, x, c] = np.sum(window[:, :, c] * weights) + offset
    return out[:, :, 0] if squeeze else out


def naive_pool(x, kind, size, stride):
    oh = (x.shape[0] - size) // stride + 1
    ow = (x.shape[1] - size) // stride + 1
    out = np.zeros((oh, ow, *x.shape[2:]))
    reduce = {"max": np.max, "avg": np.mean, "sum": np.sum}[kind]
    for y in range(oh):
        for xx in range(ow):
            win = x[y * stride : y * stride + size, xx * stride : xx * stride + size]
            out[y, xx] = reduce(win, axis=(0, 1))
    return out


# ----- presets and parsing -------------------------------------------------------------------


def test_presets_hold_the_articles_table():
    p = F.PRESETS
    assert np.array_equal(p["Identity"].array(), [[0, 0, 0], [0, 1, 0], [0, 0, 0]])
    assert np.array_equal(p["Edge detection 1"].array(), [[1, 0, -1], [0, 0, 0], [-1, 0, 1]])
    assert np.array_equal(p["Edge detection 2"].array(), [[0, 1, 0], [1, -4, 1], [0, 1, 0]])
    assert np.array_equal(p["Edge detection 3"].array(), [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]])
    assert np.array_equal(p["Sharpen"].array(), [[0, -1, 0], [-1, 5, -1], [0, -1, 0]])
    assert np.allclose(p["Box blur"].spec().weights(), np.full((3, 3), 1 / 9))
    assert np.allclose(
        p["Gaussian blur 3x3"].spec().weights() * 16, [[1, 2, 1], [2, 4, 2], [1, 2, 1]]
    )
    assert np.array_equal(p["Sobel x"].array(), [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    assert np.array_equal(p["Sobel y"].array(), p["Sobel x"].array().T)
    for name in ("Emboss", "Outline", "Gaussian blur 5x5", "Unsharp 5x5"):
        assert name in p
    # blurs and sharpeners keep the brightness: their weights sum to 1
    for name in ("Box blur", "Gaussian blur 3x3", "Gaussian blur 5x5", "Unsharp 5x5", "Sharpen"):
        assert p[name].spec().weights().sum() == pytest.approx(1.0)
    assert p["Gaussian blur 5x5"].array().shape == (5, 5)


def test_parse_kernel_accepts_fractions_commas_and_newlines():
    k = F.parse_kernel("1/9 1/9 1/9; 1/9, 1/9, 1/9\n -1/9 .5 1e-1")
    assert k.shape == (3, 3)
    assert k[0, 0] == pytest.approx(1 / 9)
    assert k[2, 0] == pytest.approx(-1 / 9)
    assert k[2, 1] == 0.5 and k[2, 2] == pytest.approx(0.1)
    assert F.parse_number("\u22122") == -2  # a typographic minus
    text = F.kernel_to_text(F.PRESETS["Sharpen"].array())
    assert text == "0 -1 0; -1 5 -1; 0 -1 0"
    assert np.array_equal(F.parse_kernel(text), F.PRESETS["Sharpen"].array())


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("1 2 3; 4 x 6; 7 8 9", "row 2"),
        ("1 2 3; 4 5; 7 8 9", "different lengths"),
        ("1 2; 3 4", "odd side from 1 to 7"),
        ("1 2 3; 4 1/0 6; 7 8 9", "divides by 0"),
        ("", "empty"),
        ("1 2 3; 4 nan 6; 7 8 9", "not a number"),
    ],
)
def test_bad_kernels_are_refused_with_a_hint(text, hint):
    with pytest.raises(F.KernelError, match=hint):
        F.parse_kernel(text)


def test_a_decimal_comma_in_a_cell_asks_for_a_point():
    with pytest.raises(F.KernelError, match="a point, not a comma"):
        F.parse_number("0,5")


def test_kernel_errors_are_engine_errors_and_divisor_zero_is_refused():
    with pytest.raises(EngineError, match="divisor"):
        F.KernelSpec(np.eye(3), divisor=0)
    with pytest.raises(F.KernelError, match="square"):
        F.KernelSpec(np.ones((3, 4)))


def test_kernel_json_round_trip_and_bad_files(tmp_path):
    specs = [
        F.PRESETS["Sobel x"].spec(),
        F.KernelSpec(np.eye(5) / 3, divisor=2, offset=128, normalize=True, name="mine"),
    ]
    path = F.save_kernels(tmp_path / "k.json", specs)
    back = F.load_kernels(path)
    assert [b.name for b in back] == ["Sobel x", "mine"]
    assert np.array_equal(back[1].kernel, specs[1].kernel)
    assert (back[1].divisor, back[1].offset, back[1].normalize) == (2, 128, True)
    (tmp_path / "bare.json").write_text("[[0,1,0],[1,-4,1],[0,1,0]]")
    assert F.load_kernels(tmp_path / "bare.json")[0].kernel[1, 1] == -4
    (tmp_path / "bad.json").write_text("not json")
    with pytest.raises(F.KernelError, match=r"bad\.json"):
        F.load_kernels(tmp_path / "bad.json")
    (tmp_path / "shape.json").write_text('{"kernel": [[1, 2], [3]]}')
    with pytest.raises(F.KernelError, match=r"shape\.json"):
        F.load_kernels(tmp_path / "shape.json")


def test_divisor_normalise_and_offset():
    k = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], dtype=float)
    assert F.KernelSpec(k, normalize=True).effective_divisor() == 16
    assert F.KernelSpec(k, divisor=4).effective_divisor() == 4
    lap = F.PRESETS["Edge detection 2"].array()  # sums to 0: normalise keeps the divisor
    assert F.KernelSpec(lap, divisor=2, normalize=True).effective_divisor() == 2
    img = np.full((6, 6), 10, np.uint8)
    out = F.correlate(img, F.KernelSpec(k, normalize=True).weights(), border="extend", offset=5)
    assert np.allclose(out, 15)


# ----- the fast correlation against the oracle -----------------------------------------------


@pytest.mark.parametrize("border", F.BORDERS)
@pytest.mark.parametrize("stride", [1, 2, 3])
def test_correlate_matches_np_pad_reference(border, stride, rng):
    img = rng.integers(0, 256, (23, 19, 3), dtype=np.uint8)
    for name in ("Sharpen", "Emboss", "Gaussian blur 3x3", "Unsharp 5x5", "Outline"):
        w = F.PRESETS[name].spec().weights()
        got = F.correlate(img, w, border=border, stride=stride, offset=-3)
        ref = naive_correlate(img, w, border, stride, offset=-3)
        assert got.dtype == np.float32
        assert got.shape == ref.shape
        np.testing.assert_allclose(got, ref, atol=2e-3)
    dense = rng.normal(size=(7, 7))
    gray = img[:, :, 1]
    np.testing.assert_allclose(
        F.correlate(gray, dense, border=border, stride=stride, parallel=False),
        naive_correlate(gray, dense, border, stride),
        atol=2e-3,
    )


def test_big_image_in_many_bands_and_threads_matches_reference(rng):
    img = rng.integers(0, 256, (300, 41, 3), dtype=np.uint8)  # narrow: many bands
    w = rng.normal(size=(3, 3))
    got = F.correlate(img, w, border="reflect", stride=1)
    np.testing.assert_allclose(got, naive_correlate(img, w, "reflect", 1), atol=2e-3)


def test_separable_kernels_are_found_and_the_fast_path_agrees(rng):
    col, row = F.separable_factors(F.PRESETS["Sobel x"].array())
    assert np.array_equal(col, [1, 2, 1]) and np.array_equal(row, [-1, 0, 1])
    col, row = F.separable_factors(F.PRESETS["Gaussian blur 5x5"].array())
    assert np.array_equal(col, [1, 4, 6, 4, 1]) and np.array_equal(row, [1, 4, 6, 4, 1])
    assert F.separable_factors(F.PRESETS["Sharpen"].array()) is None
    assert F.separable_factors(F.PRESETS["Edge detection 2"].array()) is None
    col, row = F.separable_factors(F.PRESETS["Edge detection 1"].array())  # a rank-1 diagonal
    assert np.array_equal(col, [1, 0, -1]) and np.array_equal(row, [1, 0, -1])
    assert F.separable_factors(np.zeros((3, 3))) is None
    # the engine runs rank-1 kernels as two 1-D passes: same numbers as the 2-D path
    img = rng.integers(0, 256, (37, 29, 3), dtype=np.uint8)
    w = np.outer(rng.normal(size=5), rng.normal(size=5))
    job = Correlator(img, w, "symmetric", 2, 0.0)
    assert job.sep is not None
    sep = F.correlate(img, w, border="symmetric", stride=2)
    job2d = Correlator(img, w, "symmetric", 2, 0.0)
    job2d.sep = None
    job2d.run(job2d.bands, parallel=False)
    np.testing.assert_allclose(sep, job2d.out, atol=1e-3)
    np.testing.assert_allclose(sep, naive_correlate(img, w, "symmetric", 2), atol=1e-3)
    # "a * identity + rank 1" (Outline, Unsharp) runs as two 1-D passes plus the centre
    w[2, 2] += 3.5
    job = Correlator(img, w, "wrap", 1, 0.0)
    assert job.sep is not None and job.delta == pytest.approx(3.5)
    np.testing.assert_allclose(
        F.correlate(img, w, border="wrap"), naive_correlate(img, w, "wrap", 1), atol=1e-3
    )


@pytest.mark.parametrize(
    ("n", "f", "border", "stride", "expected"),
    [
        (1920, 3, "zero", 1, 1920),
        (1920, 3, "valid", 1, 1918),
        (1920, 5, "valid", 2, 958),
        (1080, 7, "wrap", 4, 270),
        (5, 3, "valid", 1, 3),
        (5, 3, "valid", 2, 2),
    ],
)
def test_output_size_formula(n, f, border, stride, expected):
    p = F.padding_for(border, f)
    assert F.fitted_output_size(n, f, stride, p) == expected
    assert F.size_formula(n, f, stride, p).endswith(f"= {expected}")
    img = np.zeros((n if n < 100 else 9, n), np.uint8)
    assert F.correlate(img, np.ones((f, f)), border=border, stride=stride).shape[1] == expected


def test_formula_text_and_kernel_larger_than_image():
    assert F.size_formula(1920, 3, 1, 1) == "(1920 − 3 + 2·1)/1 + 1 = 1920"
    with pytest.raises(ShapeError, match="does not fit"):
        F.correlate(np.zeros((4, 4), np.uint8), np.ones((5, 5)), border="valid")
    with pytest.raises(F.KernelError, match="stride"):
        F.correlate(np.zeros((9, 9), np.uint8), np.ones((3, 3)), stride=5)
    with pytest.raises(F.KernelError, match="border"):
        F.correlate(np.zeros((9, 9), np.uint8), np.ones((3, 3)), border="mirror")


# ----- the article's Figure 5, inspector ----------------------------------------------------


def test_figure5_step_through():
    steps = F.conv_steps(F.FIGURE5_IMAGE, F.FIGURE5_KERNEL)
    assert np.array_equal(steps.output, [[4, 3, 4], [2, 4, 3], [2, 3, 4]])
    assert len(steps.steps) == 9
    first, second = steps.steps[0], steps.steps[1]
    assert (first.row0, first.col0, second.row0, second.col0) == (0, 0, 0, 1)
    assert np.array_equal(first.products, F.FIGURE5_IMAGE[:3, :3] * F.FIGURE5_KERNEL)
    assert first.total == 4
    strided = F.conv_steps(F.FIGURE5_IMAGE, F.FIGURE5_KERNEL, stride=2)
    assert np.array_equal(strided.output, [[4, 4], [2, 4]])
    padded = F.conv_steps(F.FIGURE5_IMAGE, F.FIGURE5_KERNEL, border="zero")
    assert padded.output.shape == (5, 5) and padded.pad == 1
    assert padded.output[1, 1] == 4  # the valid result sits inside


def test_inspector_patch_products_and_sum_match_the_result(rng):
    img = rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)
    spec = F.KernelSpec(rng.integers(-3, 4, (3, 3)).astype(float), divisor=2, offset=7)
    result = F.correlate(img, spec.weights(), border="zero", stride=1, offset=spec.offset)
    for row, col, ch in [(0, 0, 0), (5, 4, 2), (11, 9, 1)]:
        ins = F.inspect_pixel(img, spec, border="zero", stride=1, row=row, col=col, channel=ch)
        assert ins.value == pytest.approx(result[row, col, ch], abs=1e-3)
        assert ins.total == pytest.approx(ins.products.sum())
    corner = F.inspect_pixel(img, spec, border="zero", stride=1, row=0, col=0, channel=0)
    assert corner.patch[0].sum() == 0 and corner.patch[:, 0].sum() == 0  # zero padding
    assert corner.patch[1, 1] == img[0, 0, 0]
    wrap = F.inspect_pixel(img, spec, border="wrap", stride=1, row=0, col=0, channel=0)
    assert wrap.patch[0, 0] == img[-1, -1, 0]


# ----- display, histogram, ReLU, pooling, pipeline -----------------------------------------


def test_display_mappings():
    v = np.array([[-300.0, -10.4, 0.0], [10.6, 200.0, 400.0]], dtype=np.float32)
    clip = F.display(v, "clip")
    assert clip.shape == (2, 3, 3) and clip.dtype == np.uint8
    assert clip[:, :, 0].tolist() == [[0, 0, 0], [11, 200, 255]]
    assert F.display(v, "abs")[:, :, 1].tolist() == [[255, 10, 0], [11, 200, 255]]
    norm = F.display(v, "normalize")[:, :, 2]
    assert norm[0, 0] == 0 and norm[1, 2] == 255
    assert norm[0, 2] == round(300 * 255 / 700)
    assert F.display(np.full((2, 2), 7.0), "normalize").max() == 0  # flat: no division by 0
    div = F.display(v, "diverging")
    assert div[0, 0, 2] > div[0, 0, 0]  # most negative: blue
    assert div[1, 2, 0] > div[1, 2, 2]  # most positive: red
    assert div[0, 2].min() > 200  # zero: near white
    rgb = np.stack([v, -v, v * 0], axis=2)
    assert F.display(rgb, "clip")[1, 1].tolist() == [200, 0, 0]


def test_histogram_counts_every_sampled_value(rng):
    v = rng.normal(size=(100, 80)).astype(np.float32)
    counts, edges = F.histogram(v, bins=16)
    assert counts.sum() == v.size and len(edges) == 17
    assert edges[0] == pytest.approx(v.min()) and edges[-1] == pytest.approx(v.max())
    big = rng.normal(size=(2000, 1000)).astype(np.float32)
    counts, _ = F.histogram(big, max_samples=100_000)
    assert 25_000 <= counts.sum() <= 100_000


@pytest.mark.parametrize("kind", ["max", "avg", "sum"])
@pytest.mark.parametrize(("size", "stride"), [(2, 2), (3, 2), (2, 1)])
def test_pooling_matches_reference(kind, size, stride, rng):
    x = rng.normal(size=(11, 9, 3)).astype(np.float32)
    got = F.pool(x, kind, size, stride)
    np.testing.assert_allclose(got, naive_pool(x, kind, size, stride), rtol=1e-5, atol=1e-5)
    assert np.array_equal(F.relu(x), np.where(x > 0, x, 0))


@pytest.mark.parametrize("border", ["zero", "valid"])
def test_a_stack_of_kernels_is_written_in_place_not_stacked_by_a_copy(rng, border):
    # the maps of N kernels were made one by one, then stacked: twice the result's memory at
    # the end (1.7 GB for 3 RGB kernels on a 24 MP photo, whose result is 0.86 GB)
    import tracemalloc

    img = rng.integers(0, 256, (900, 700, 3), dtype=np.uint8)  # maps well above the scratch
    names = ("Sobel x", "Gaussian blur 3x3", "Sharpen")
    settings = F.FilterSettings(
        tuple(F.PRESETS[n].spec() for n in names), border=border, color="rgb", relu=True
    )
    run_filter = F.run_filter  # the first call's imports and thread pool are not measured
    run_filter(img[:20, :20], settings, parallel=False)
    tracemalloc.start()
    try:
        result = run_filter(img, settings, parallel=False)
        _held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1.4 * result.maps.nbytes, (peak, result.maps.nbytes)
    for i, name in enumerate(names):  # each map as that kernel alone gives it
        alone = F.correlate(img, F.PRESETS[name].spec().weights(), border=border)
        np.testing.assert_array_equal(result.maps[i], np.maximum(alone, 0))


def test_pooled_kernels_keep_one_convolution_at_a_time(rng):
    # with pooling, every kernel's full convolution was kept until all were done and pooled:
    # 4 RGB kernels on a 24 MP photo held 1.2 GB for a 0.3 GB pooled result
    import tracemalloc

    img = rng.integers(0, 256, (900, 700, 3), dtype=np.uint8)  # maps well above the scratch
    names = ("Sobel x", "Gaussian blur 3x3", "Sharpen", "Emboss")
    settings = F.FilterSettings(
        tuple(F.PRESETS[n].spec() for n in names), color="rgb", relu=True, pool="max"
    )
    F.run_filter(img[:20, :20], settings, parallel=False)  # imports are not measured
    tracemalloc.start()
    try:
        result = F.run_filter(img, settings, parallel=False)
        _held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    conv = 900 * 700 * 3 * 4
    assert peak < 4.5 * conv, peak / conv  # one convolution, the pooled maps, their stack
    assert result.stages[1] == ("conv", (4, 900, 700, 3))
    for i, name in enumerate(names):  # each map as that kernel alone gives it
        alone = F.correlate(img, F.PRESETS[name].spec().weights())
        np.testing.assert_array_equal(result.maps[i], F.pool(np.maximum(alone, 0), "max"))


def test_pipeline_stages_shapes_and_stack(rng):
    img = rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)
    kernels = (
        F.PRESETS["Sobel x"].spec(),
        F.PRESETS["Sobel y"].spec(),
        F.PRESETS["Identity"].spec(),
    )
    settings = F.FilterSettings(
        kernels,
        border="valid",
        stride=2,
        color="gray",
        relu=True,
        pool="max",
        pool_size=2,
        pool_stride=2,
    )
    result = F.run_filter(img, settings)
    assert result.maps.shape == (3, 9, 7, 1)
    assert result.stages == [
        ("input", (40, 30, 1)),
        ("conv", (3, 19, 14, 1)),
        ("ReLU", (3, 19, 14, 1)),
        ("max pool", (3, 9, 7, 1)),
    ]
    gray = F.to_gray(img)
    conv = naive_correlate(gray, kernels[1].weights(), "valid", 2)
    expected = naive_pool(np.maximum(conv, 0)[:, :, None], "max", 2, 2)
    np.testing.assert_allclose(result.maps[1], expected, atol=1e-3)
    rgb = F.run_filter(img, F.FilterSettings((kernels[0],), color="rgb"))
    assert rgb.maps.shape == (1, 40, 30, 3)
    mosaic = F.tile_maps([F.display(m) for m in result.maps], gap=2)
    assert mosaic.shape == (9 * 2 + 2, 7 * 2 + 2, 3)


@pytest.mark.parametrize(("side", "gap"), [(3, 1), (5, 1), (8, 2), (24, 6), (512, 6)])
def test_the_gap_between_feature_maps_never_dwarfs_the_maps(side, gap):
    # the article's 5x5 example gives 3x3 maps: 6-pixel gaps made a mostly dark mosaic
    maps = [np.full((side, side, 3), 200, np.uint8)] * 4
    assert F.tile_maps(maps).shape == (2 * side + gap, 2 * side + gap, 3)
    assert F.Mosaic(4, side, side).canvas.shape == (2 * side + gap, 2 * side + gap, 3)


def test_iter_filter_reports_progress_and_honours_cancel(rng):
    img = rng.integers(0, 256, (400, 64, 3), dtype=np.uint8)
    settings = F.FilterSettings((F.PRESETS["Sharpen"].spec(),), color="rgb")
    events = list(F.iter_filter(img, settings, rows_per_step=50))
    progress = [e for e in events if isinstance(e, Progress)]
    assert len(progress) >= 3
    assert [p.done for p in progress] == sorted(p.done for p in progress)
    assert isinstance(events[-1], F.FilterResult)
    np.testing.assert_allclose(
        events[-1].maps[0], F.correlate(img, settings.kernels[0].weights()), atol=1e-4
    )
    cancel = CancelFlag()
    gen = F.iter_filter(img, settings, cancel=cancel, rows_per_step=50)
    next(gen)
    cancel.cancel()
    assert not any(isinstance(e, F.FilterResult) for e in gen)


def test_settings_refuse_mixed_sizes_without_padding_and_pools_that_do_not_fit():
    k3, k5 = F.PRESETS["Sharpen"].spec(), F.PRESETS["Gaussian blur 5x5"].spec()
    with pytest.raises(F.KernelError, match="different sizes"):
        F.FilterSettings((k3, k5), border="valid")
    mixed = F.FilterSettings((k3, k5), border="reflect", stride=2)
    result = F.run_filter(np.zeros((9, 8), np.uint8), mixed)
    assert result.maps.shape == (2, 5, 4, 1)
    with pytest.raises(ShapeError, match="pooling window"):
        F.FilterSettings((k3,), pool="max", pool_size=4).check_fits(3, 30)
    F.FilterSettings((k3,), pool="max", pool_size=3).check_fits(3, 30)


@pytest.mark.parametrize(
    ("border", "stride", "step"), [("zero", 1, 3), ("valid", 2, 2), ("wrap", 1, 4)]
)
def test_subsampled_preview_is_exactly_every_kth_pixel(border, stride, step, rng):
    img = rng.integers(0, 256, (41, 37, 3), dtype=np.uint8)
    kernels = (F.PRESETS["Sobel x"].spec(), F.KernelSpec(rng.normal(size=(5, 5))))
    settings = F.FilterSettings(
        kernels,
        border=border if border != "valid" else "extend",
        stride=stride,
        color="rgb",
        relu=True,
    )
    full = F.run_filter(img, settings).maps
    quick = F.subsampled_maps(img, settings, step)
    np.testing.assert_allclose(quick, full[:, ::step, ::step], atol=1e-3)
    with pytest.raises(F.KernelError, match="no pooling"):
        F.subsampled_maps(img, F.FilterSettings(kernels, pool="max"), 2)
