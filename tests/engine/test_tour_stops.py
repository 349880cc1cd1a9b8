"""The tour's stops as data: enough of them, in the article's order, each one set up from
things that exist (images, kernels, architectures), each hovered pixel inside its result."""

from __future__ import annotations

import re

import numpy as np
import pytest

import resources
from engine import architectures, tour
from engine import filters as F
from engine.errors import EngineError

DIRS = {"mnist_dir": resources.mnist_dir(), "samples_dir": resources.resource_path("samples")}


def test_at_least_fifteen_stops_in_the_article_order():
    titles = [s.title for s in tour.STOPS]
    assert len(titles) >= 15 and len(set(titles)) == len(titles)
    order = [
        "grid of numbers",
        "5×5 image",
        "table of filters",
        "depth of three",
        "ReLU",
        "Max pooling",
        "Two stages",
        "Fully connected",
        "Softmax",
        "Four classes",
        "training step",
        "layers learned",
        "an 8",
        "pooling window",
        "fully connected layers up close",
        "family of architectures",
    ]
    found = [next(i for i, t in enumerate(titles) if part in t) for part in order]
    assert found == sorted(found)


@pytest.mark.parametrize("stop", tour.STOPS, ids=lambda s: s.title)
def test_each_stop_says_what_to_look_at_in_two_or_three_sentences(stop):
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", stop.text.strip()) if s]
    assert 2 <= len(sentences) <= 3, sentences
    assert stop.tab in tour.TABS and stop.where


@pytest.mark.parametrize(
    "stop", [s for s in tour.STOPS if not isinstance(s.setup, tour.TrainSetup)], ids=str
)
def test_each_image_loads(stop):
    image, name = tour.tour_image(stop.setup.image, **DIRS)
    assert image.dtype == np.uint8 and image.ndim in (2, 3) and name
    assert tour.as_rgb(image).shape == (*image.shape[:2], 3)


def test_the_digits_are_the_digits_they_say():
    from engine.inference import classify_image
    from engine.modelfile import load_model

    model = load_model(resources.shipped_model_path())
    for digit in (2, 8):
        image, name = tour.tour_image(f"digit:{digit}", **DIRS)
        assert image.shape == (28, 28) and str(digit) in name
        assert classify_image(model, image).prediction == str(digit)


FILTER_STOPS = [s for s in tour.STOPS if isinstance(s.setup, tour.FiltersSetup)]


@pytest.mark.parametrize("stop", FILTER_STOPS, ids=lambda s: s.title)
def test_filter_stops_compute_and_their_hovered_pixel_is_in_the_result(stop):
    setup = stop.setup
    image, _ = tour.tour_image(setup.image, **DIRS)
    settings = F.FilterSettings(tuple(tour.kernel_specs(setup)), **setup.settings())
    result = F.run_filter(tour.as_rgb(image), settings)
    assert result.maps.shape[0] == len(setup.kernels or (1,))
    assert setup.page in tour.FILTER_PAGES
    if setup.zoom is not None:
        assert setup.zoom >= F.MIN_LABEL_CELL  # zoomed enough for values in the cells
        assert 0 <= setup.centre[0] < image.shape[0] and 0 <= setup.centre[1] < image.shape[1]
    if setup.hover is not None:
        explained = F.explain_pixel(result, 0, *setup.hover, 0)
        assert explained is not None
        if setup.relu and setup.pool == "none":  # the ReLU stop shows a negative sum zeroed
            assert explained.inspection.value < 0 and explained.relu_value == 0


def test_the_pooling_window_stop_is_figure_10():
    stop = next(s for s in FILTER_STOPS if s.setup.image == "figure10")
    setup = stop.setup
    image, _ = tour.tour_image(setup.image, **DIRS)
    settings = F.FilterSettings(tuple(tour.kernel_specs(setup)), **setup.settings())
    result = F.run_filter(tour.as_rgb(image), settings)
    np.testing.assert_array_equal(result.maps[0][..., 0], [[6, 8], [3, 4]])
    assert "[[6, 8], [3, 4]]" in stop.text


def test_the_5x5_stop_uses_the_article_filter_and_a_3x3_output():
    stop = next(s for s in FILTER_STOPS if s.setup.image == "figure5")
    (spec,) = tour.kernel_specs(stop.setup)
    np.testing.assert_array_equal(spec.kernel, F.FIGURE5_KERNEL)
    assert stop.setup.settings()["border"] == "valid" and stop.setup.page == "step"
    image, _ = tour.tour_image("figure5", **DIRS)
    settings = F.FilterSettings((spec,), **stop.setup.settings())
    np.testing.assert_array_equal(
        F.run_filter(tour.as_rgb(image), settings).maps[0][..., 0],
        [[4, 3, 4], [2, 4, 3], [2, 3, 4]],
    )


def test_train_stops_name_known_views_and_architectures():
    train = [s.setup for s in tour.STOPS if isinstance(s.setup, tour.TrainSetup)]
    assert {t.view for t in train} == set(tour.TRAIN_VIEWS)
    for setup in train:
        assert setup.architecture is None or setup.architecture in architectures.names()


def test_bad_sources_and_kernels_say_so():
    with pytest.raises(EngineError, match="tour image"):
        tour.tour_image("drawing:1", **DIRS)
    with pytest.raises(EngineError, match="use preset names"):
        tour.kernel_specs(tour.FiltersSetup("sample:camera.png", ("No such kernel",)))


def test_an_image_page_stop_says_what_is_marked_there():
    """On the Image page the inspector's pixel is marked by its input patch only (the result
    view marks nothing): a stop there must not send the user looking for a 'marked pixel'."""
    for stop in FILTER_STOPS:
        if stop.setup.page == "image" and stop.setup.hover is not None:
            assert "marked pixel" not in stop.text, stop.title
