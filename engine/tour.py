"""The walk through the article: its stops as plain data, in the article's order.

Each :class:`Stop` names the tab it shows, says in two or three sentences what to look at,
and describes how that tab is set up: :class:`FiltersSetup` (image, kernels, ReLU, pooling,
page, zoom, the result pixel the inspector explains), :class:`ClassifySetup` (shipped model and
image) or :class:`TrainSetup` (architecture, view). The desktop applies a stop through the
tabs' public methods (``desktop/tour.py``); a test iterates :data:`STOPS`.

Images are named by a short source string (:func:`tour_image`): ``"figure5"`` and
``"figure10"`` (the article's examples, :data:`engine.filters.FIGURE_SAMPLES`, which bring
their own kernel and settings), ``"digit:8"`` (the first such digit of the
MNIST test set) and ``"sample:chelsea.png"`` (a bundled sample photo).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from engine.errors import EngineError
from engine.filters import FIGURE_SAMPLES, PRESETS, FigureSample, KernelSpec
from engine.idx import read_idx
from engine.imageio import load_image

__all__ = [
    "STOPS",
    "TABS",
    "ClassifySetup",
    "FiltersSetup",
    "Stop",
    "TrainSetup",
    "as_rgb",
    "kernel_specs",
    "mnist_digit",
    "mnist_test_images",
    "tour_image",
]

TABS = ("Filters", "Train", "Classify")
FILTER_PAGES = ("image", "maps", "step", "relu")
TRAIN_VIEWS = ("step", "features", "diagram")


@dataclass(frozen=True)
class FiltersSetup:
    """The Filters tab: ``image`` (a :func:`tour_image` source; one of the article's examples
    brings its own kernel and settings, the others take ``kernels``, preset names, and the
    stages after the convolution), the ``page`` shown (image, maps, step, relu), ``zoom``
    (screen pixels per image pixel, None: fit) around ``centre`` (row, col), and ``hover``:
    the result pixel (row, col) the inspector explains (and the ReLU page marks)."""

    image: str
    kernels: tuple[str, ...] = ("Identity",)
    border: str = "zero"
    relu: bool = False
    pool: str = "none"
    display: str = "clip"
    page: str = "image"
    zoom: float | None = None
    centre: tuple[int, int] | None = None
    hover: tuple[int, int] | None = None

    def example(self) -> FigureSample | None:
        """The article's example this stop opens (None for a photo or a digit)."""
        return FIGURE_SAMPLES.get(self.image)

    def settings(self) -> dict:
        """The keyword arguments of ``FilterSettings`` but the kernels (grey input)."""
        example = self.example()
        if example is not None:
            keys = ("border", "stride", "relu", "pool", "pool_size", "pool_stride")
            return {"color": "gray", **{k: getattr(example.settings, k) for k in keys}}
        return {
            "border": self.border,
            "stride": 1,
            "color": "gray",
            "relu": self.relu,
            "pool": self.pool,
            "pool_size": 2,
            "pool_stride": 2,
        }


@dataclass(frozen=True)
class ClassifySetup:
    """The Classify tab: a shipped ``model`` ("digits" or "photos") classifying ``image``;
    ``hover`` (layer, cell) is the cell of "Inside the network" shown as hovered."""

    model: str
    image: str
    hover: tuple[str, int] | None = None


@dataclass(frozen=True)
class TrainSetup:
    """The Train tab: ``view`` is "step" (one training step), "features" (what the shipped
    digit model learned) or "diagram" (``architecture`` drawn in the setup panel)."""

    view: str
    architecture: str | None = None


@dataclass(frozen=True)
class Stop:
    title: str
    where: str  # where in the article: "Figure 4", or a section
    text: str  # two or three sentences: what to look at
    tab: str  # one of TABS
    setup: FiltersSetup | ClassifySetup | TrainSetup


_EIGHT_ZOOM = 30.0  # cells wide enough for their value to be written in them (MIN_LABEL_CELL)

STOPS: tuple[Stop, ...] = (
    Stop(
        "An image is a grid of numbers",
        "Figure 4",
        "To the computer this handwritten 8 is a 28 by 28 grid of brightness values, from 0 "
        "(black) to 255 (white). Zoomed in this far, every cell shows its value; hover a cell "
        "to read it under the images. Everything the network does starts from these numbers.",
        "Filters",
        FiltersSetup("digit:8", zoom=_EIGHT_ZOOM, centre=(14, 14)),
    ),
    Stop(
        "A 3×3 filter slides over a 5×5 image",
        "Figures 5 and 6",
        "The article's small picture of zeros and ones meets the filter [[1,0,1],[0,1,0],"
        "[1,0,1]]. Press Step: at each position the nine products under the window are added "
        "up, and that sum fills one cell of the 3 by 3 feature map.",
        "Filters",
        FiltersSetup("figure5", (), page="step"),
    ),
    Stop(
        "The table of filters",
        "Figure 7",
        "One photo, seven filters from the article's table: identity, three edge detectors, "
        "sharpen and two blurs, one feature map each. Only the nine numbers of the filter "
        "differ between them; pick a kernel tab on the left to see and edit its weights.",
        "Filters",
        FiltersSetup(
            "sample:chelsea.png",
            (
                "Identity",
                "Edge detection 1",
                "Edge detection 2",
                "Edge detection 3",
                "Sharpen",
                "Box blur",
                "Gaussian blur 3x3",
            ),
            display="abs",
            page="maps",
        ),
    ),
    Stop(
        "Three filters give a depth of three",
        "Figure 7",
        "A convolution layer runs several filters over the same input. Three filters give "
        "three feature maps stacked together: the layer's output has a depth of three, as the "
        "caption above the maps says. Press + under Kernel to add a fourth.",
        "Filters",
        FiltersSetup(
            "sample:chelsea.png",
            ("Edge detection 3", "Sharpen", "Box blur"),
            display="abs",
            page="maps",
        ),
    ),
    Stop(
        "ReLU: negative values become zero",
        "Figures 8 and 9",
        "An edge filter gives negative sums as well as positive ones. ReLU keeps every "
        "positive value and replaces every negative one by zero: the curve between the map "
        "before and the map after (blue below zero, red above). The marked pixel's sum is "
        "negative, so it lands on the flat part at 0; hover the maps to mark others.",
        "Filters",
        FiltersSetup(
            "sample:chelsea.png", ("Edge detection 3",), relu=True, page="relu", hover=(101, 167)
        ),
    ),
    Stop(
        "Max pooling keeps the strongest",
        "Figures 10 to 12",
        "Pooling shrinks each feature map: every 2 by 2 window is replaced by its largest "
        "value, so a quarter of the pixels remain but the strongest responses survive. The "
        "inspector shows one pooled pixel's window and its winner, whose input patch is "
        "marked on the cat's eye; hover the result for others.",
        "Filters",
        FiltersSetup(
            "sample:chelsea.png", ("Edge detection 3",), relu=True, pool="max", hover=(51, 84)
        ),
    ),
    Stop(
        "Two stages: convolution, ReLU, pooling, twice",
        "the story so far",
        "A network stacks these steps. In LeNet the first stage turns the digit into 6 "
        "feature maps and pools them to 14 by 14; the second makes 16 maps from those and "
        "pools them to 5 by 5. Follow the rows of 'Inside the network' from the top.",
        "Classify",
        ClassifySetup("digits", "digit:2"),
    ),
    Stop(
        "Fully connected layers",
        "the fully connected layer",
        "After the second pooling the 16 maps of 5 by 5 are laid out as 400 numbers. A fully "
        "connected layer computes each of its outputs from all of its inputs, so it can "
        "combine features found anywhere in the image: the lines join the marked fc1 cell to "
        "the pooled pixels it weighs most and to the fc2 cells it feeds most (red positive, "
        "blue negative).",
        "Classify",
        ClassifySetup("digits", "digit:2", hover=("fc1", 53)),
    ),
    Stop(
        "Softmax turns scores into probabilities",
        "the fully connected layer",
        "The last layer gives one score per class. Softmax turns the scores into "
        "probabilities between 0 and 1 that add up to 100%: the bars in the middle. The "
        "tallest bar is the answer, and its height says how sure the network is.",
        "Classify",
        ClassifySetup("digits", "digit:2"),
    ),
    Stop(
        "Four classes of photos",
        "Figure 3",
        "The article's first example sorts photos into four classes. The shipped photo model "
        "knows bird, cat, dog and ship, and here it looks at a cat; the bars give its "
        "probability for each class. Drop a photo of your own on the left to try another.",
        "Classify",
        ClassifySetup("photos", "sample:chelsea.png"),
    ),
    Stop(
        "One training step",
        "Figure 15",
        "Training starts from random filters and weights. One step shows the network a batch "
        "of images, measures how far its outputs are from the right answers, and moves every "
        "weight a little against its gradient so that the error shrinks. Press Step: a window "
        "shows that step in numbers for the pinned image, from its target and outputs to one "
        "weight before and after.",
        "Train",
        TrainSetup("step"),
    ),
    Stop(
        "What the layers learned",
        "Figure 17",
        "Each filter of a trained network answers to a pattern. For every convolution of the "
        "shipped digit model this window shows the pieces of test digits that excite a filter "
        "most: short strokes and edges in conv1, larger parts of digits in conv2.",
        "Train",
        TrainSetup("features"),
    ),
    Stop(
        "LeNet reads an 8",
        "Figure 16",
        "The article's picture of LeNet reading an 8, live: the input, the six conv1 maps, "
        "the pooled maps, conv2 and the fully connected layers down to the ten outputs. "
        "Bright cells are strong activations; in the last row the 8 lights up.",
        "Classify",
        ClassifySetup("digits", "digit:8"),
    ),
    Stop(
        "The pooling window in numbers",
        "Figure 10",
        "The article's 4 by 4 example, with max pooling of 2 by 2 and stride 2: the result "
        "is [[6, 8], [3, 4]]. The inspector shows the top-right window and its winner, 8; "
        "hover the other result cells to see theirs.",
        "Filters",
        FiltersSetup("figure10", (), hover=(0, 1)),
    ),
    Stop(
        "The fully connected layers up close",
        "Figure 20",
        "The article draws the last layers as nodes joined by lines. The output cell of the "
        "8 is marked: its lines go to the fc2 cells whose weights into it are strongest, with "
        "the weights written on them. Hover any cell of fc1, fc2 or the output to see its own.",
        "Classify",
        ClassifySetup("digits", "digit:8", hover=("softmax", 8)),
    ),
    Stop(
        "A family of architectures",
        "other ConvNet architectures",
        "LeNet was the start. Later networks go deeper (AlexNet, VGG), add side branches "
        "(GoogLeNet), shortcuts (ResNet) or dense connections (DenseNet). Choose a network "
        "under '2 · Architecture': the diagram draws it with the shape of every layer.",
        "Train",
        TrainSetup("diagram", "resnet8"),
    ),
)


def kernel_specs(setup: FiltersSetup) -> list[KernelSpec]:
    """The kernels of a :class:`FiltersSetup`: its example's, or its presets by name."""
    example = setup.example()
    if example is not None:
        return [example.kernel]
    missing = [name for name in setup.kernels if name not in PRESETS]
    if missing or not setup.kernels:
        raise EngineError(f"tour kernels {missing or '()'}: use preset names")
    return [PRESETS[name].spec() for name in setup.kernels]


@lru_cache(maxsize=2)
def _mnist_test(folder: str) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(Path(folder) / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(Path(folder) / "t10k-labels-idx1-ubyte.gz")
    return images, labels


def mnist_test_images(mnist_dir: Path, count: int) -> np.ndarray:
    """The first ``count`` MNIST test images of ``mnist_dir``: uint8 (N, 28, 28), read once."""
    return _mnist_test(str(mnist_dir))[0][:count]


def mnist_digit(mnist_dir: Path, digit: int) -> np.ndarray:
    """The first test image of ``digit`` in the MNIST files of ``mnist_dir``: uint8 (28, 28)."""
    images, labels = _mnist_test(str(mnist_dir))
    found = np.flatnonzero(labels == digit)
    if not found.size:
        raise EngineError(f"no {digit} in the MNIST test set of {mnist_dir}")
    return np.array(images[found[0]])


def as_rgb(image: np.ndarray) -> np.ndarray:
    """A grey (H, W) image as (H, W, 3); colour images as they are."""
    return np.repeat(image[:, :, None], 3, axis=2) if image.ndim == 2 else image


def tour_image(source: str, *, mnist_dir: Path, samples_dir: Path) -> tuple[np.ndarray, str]:
    """``(uint8 image, its name)`` for a stop's image source: (H, W) grey or (H, W, 3) RGB."""
    kind, _, arg = source.partition(":")
    if source in FIGURE_SAMPLES:
        example = FIGURE_SAMPLES[source]
        return example.image.copy(), example.name
    if kind == "digit" and arg.isdigit():
        article = "an" if arg == "8" else "a"
        return mnist_digit(mnist_dir, int(arg)), f"{article} {arg} from MNIST"
    if kind == "sample":
        return load_image(samples_dir / arg, mode="RGB"), arg
    raise EngineError(f"tour image {source!r}: use figure5, figure10, digit:N or sample:NAME")
