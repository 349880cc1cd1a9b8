"""Classifying images and files: the one home of inference for the CLI and the Classify tab.

- :func:`preparation_for` is THE policy: a digit model (ten classes "0".."9", one input channel)
  gets MNIST-style digit preparation (:mod:`engine.preprocess`), every other model gets photo
  preparation (:mod:`engine.photo`).
- :func:`prepare_input` turns one picture into what the network sees, by that policy (or a
  forced one); :func:`classify_inputs` runs prepared inputs through the network in one batch;
  :func:`classify_image` does both for one picture and keeps the activations for the views.
- :func:`image_files_in` is THE folder listing (image files directly inside, sorted by name,
  dot files skipped); :func:`expand_paths` expands files and folders given by a user.
- :func:`classify_files_steps` prepares and classifies files, yielding progress; a file that
  cannot be read or holds no digit gets a :class:`FileResult` with the reason, never an
  exception.
- Logits that are not finite numbers (finite weights can overflow float32: 3e38 times a pixel)
  are a :class:`ModelFileError` (:data:`NOT_FINITE`), never NaN percentages; NumPy's warnings
  about them are silenced (:func:`network_probabilities`; :mod:`engine.evaluation` too).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from engine.dataset_size import is_digit_data
from engine.errors import EngineError, ModelFileError, ShapeError
from engine.losses import softmax
from engine.progress import Progress, run_through

__all__ = [
    "NOT_FINITE",
    "ClassifiedImage",
    "FileResult",
    "Prepared",
    "ViewStep",
    "classify_files",
    "classify_files_steps",
    "classify_image",
    "classify_inputs",
    "expand_paths",
    "fit_digit",
    "image_files_in",
    "image_pixels",
    "is_digit_model",
    "network_probabilities",
    "not_finite",
    "open_photo",
    "preparation_for",
    "prepare_file",
    "prepare_input",
    "preview_of",
    "view_steps",
]

Preparation = Literal["digit", "photo"]


def is_digit_model(model: Any) -> bool:
    """Ten classes named "0".."9" and one input channel: a handwritten-digit model."""
    return is_digit_data(getattr(model, "classes", []), int(model.input_spec.shape[0]))


def preparation_for(model: Any) -> Preparation:
    """``"digit"`` for a digit model (:func:`is_digit_model`), ``"photo"`` for every other."""
    return "digit" if is_digit_model(model) else "photo"


@dataclass(frozen=True)
class Prepared:
    """One picture ready for the network.

    network: uint8, what the network sees before normalisation: ``(28, 28)`` for a digit
        (``input_spec.to_tensor`` pads it to the model's size; a model taking less gets it
        resized to its size), ``(C, H, W)`` for a photo.
    display: the same as a picture: ``(H, W)`` gray or ``(H, W, 3)`` colour (a digit: the
        28x28 MNIST-style picture).
    kind: ``"digit"`` or ``"photo"``.
    inverted, bbox: digits only (see :class:`engine.preprocess.PreparedDigit`).
    """

    network: np.ndarray
    display: np.ndarray
    kind: Preparation
    inverted: bool = False
    bbox: tuple[int, int, int, int] | None = None

    def gray(self) -> np.ndarray:
        """uint8 ``(H, W)``: the input as one gray picture (mean of the channels)."""
        if self.network.ndim == 2:
            return self.network
        return np.rint(self.network.mean(axis=0)).astype(np.uint8)


def prepare_input(
    model: Any,
    image: np.ndarray,
    *,
    kind: Preparation | None = None,
    auto_invert: bool = True,
    center: bool = True,
) -> Prepared:
    """Prepare ``image`` (uint8 (H, W), (H, W, 3) or (H, W, 4), upright) for ``model``.

    ``kind`` forces a preparation (default: :func:`preparation_for`); ``auto_invert`` and
    ``center`` are the digit preparation's switches (ignored for photos).

    Raises:
        EngineError: a digit image without ink; ShapeError: not an image.
    """
    kind = kind or preparation_for(model)
    if kind == "digit":
        from engine.preprocess import prepare_digit

        digit = prepare_digit(image, auto_invert=auto_invert, center=center)
        network = fit_digit(model, digit.image)
        return Prepared(network, digit.image, "digit", digit.inverted, digit.bbox)
    from engine.photo import prepare_photo, to_display

    photo = prepare_photo(image, model.input_spec)
    return Prepared(photo, to_display(photo), "photo")


def fit_digit(model: Any, digits: np.ndarray) -> np.ndarray:
    """Prepared MNIST-style digits (uint8 ``(28, 28)`` or ``(N, 28, 28)``) as ``model`` takes
    them: as they are (a larger input pads them, see ``InputSpec.to_tensor``), or resized to
    a smaller input (no model yet: as they are)."""
    if model is None:
        return digits
    _, h, w = model.input_spec.shape
    if digits.ndim < 2 or (h >= digits.shape[-2] and w >= digits.shape[-1]):
        return digits
    from engine.imagefolder import fit_image

    flat = digits.reshape(-1, *digits.shape[-2:])
    fitted = np.array([fit_image(d, (h, w)) for d in flat], dtype=np.uint8)
    return fitted.reshape(*digits.shape[:-2], h, w)


def prepare_file(
    model: Any,
    path: str | os.PathLike[str],
    *,
    kind: Preparation | None = None,
    auto_invert: bool = True,
    center: bool = True,
) -> Prepared:
    """:func:`engine.imageio.load_image` then :func:`prepare_input`; errors name the file."""
    from engine.imageio import load_image

    image = load_image(path)
    try:
        return prepare_input(model, image, kind=kind, auto_invert=auto_invert, center=center)
    except EngineError as exc:
        raise type(exc)(f"{Path(path).name}: {exc}") from None


def open_photo(path: str | os.PathLike[str], model: Any) -> Any:
    """The upright Pillow image of a photo file decoded quickly for a first look: at
    :func:`engine.photo.draft_size` for ``model`` (a JPEG at 1/2, 1/4 or 1/8 scale when that is
    still large enough; other formats in full). Close to, not exactly, what the network sees
    from the full decoding (:func:`prepare_file`)."""
    from engine.imageio import load_pil_image
    from engine.photo import draft_size

    return load_pil_image(path, draft_size=draft_size(model.input_spec))


def to_batch(model: Any, inputs: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    """uint8 ``(N, C, H, W)`` of prepared inputs: digits ``(H, W)`` get a channel axis (repeated
    when the model takes several channels), photos ``(C, H, W)`` are stacked as they are."""
    batch = np.asarray(inputs) if not isinstance(inputs, list) else np.stack(inputs)
    if batch.dtype != np.uint8 or batch.ndim not in (3, 4):
        raise ShapeError(
            f"expected prepared uint8 inputs (N, H, W) or (N, C, H, W), got {batch.dtype} "
            f"{batch.shape}; use prepare_input"
        )
    if batch.ndim == 3:
        batch = np.repeat(batch[:, None], int(model.input_spec.shape[0]), axis=1)
    return batch


#: Why an input has no probabilities: the network's outputs for it are not finite numbers.
NOT_FINITE = (
    "{whose} outputs are not finite numbers for {what} (the weights overflow float32); "
    "the model file is damaged or was not trained by ConvScope"
)


def not_finite(what: str = "this image", whose: str = "the model's") -> ModelFileError:
    """The one-line error of :data:`NOT_FINITE` for ``what`` ("this image", "image 3 of 50"),
    of the outputs of ``whose`` ("the model's", a node's: "conv2's")."""
    return ModelFileError(NOT_FINITE.format(what=what, whose=whose))


def network_probabilities(
    model: Any, inputs: Sequence[np.ndarray] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """float64 ``(N, K)`` probabilities of prepared inputs and bool ``(N,)``: whether each
    row's logits are finite numbers (the others' are NaN). No NumPy warnings (in the threads
    of a split batch neither, see :mod:`engine.shards`): the caller reports the rows."""
    x = model.input_spec.to_tensor(to_batch(model, inputs))
    with np.errstate(all="ignore"):
        z = np.asarray(model.forward(x), dtype=np.float64)
    finite = np.all(np.isfinite(z), axis=1)
    probs: np.ndarray = np.full(z.shape, np.nan)
    probs[finite] = softmax(z[finite])
    return probs, finite


def classify_inputs(model: Any, inputs: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    """float64 ``(N, K)`` class probabilities of prepared inputs, in one batch; raises
    :class:`ModelFileError` (:data:`NOT_FINITE`) when the logits of one are not numbers."""
    probs, finite = network_probabilities(model, inputs)
    if not finite.all():
        n = len(finite)
        raise not_finite("this image" if n == 1 else f"{n - int(finite.sum()):,} of {n:,} images")
    return probs


@dataclass(frozen=True)
class ClassifiedImage:
    """One picture through the network: its input, the probabilities and every activation."""

    prepared: Prepared
    probabilities: np.ndarray  # float64 (K,)
    classes: list[str]
    activations: list[tuple[str, np.ndarray]]  # model.activations of the one input

    @property
    def index(self) -> int:
        return int(np.argmax(self.probabilities))

    @property
    def prediction(self) -> str:
        return self.classes[self.index]

    @property
    def confidence(self) -> float:
        return float(self.probabilities[self.index])


def most_probable(probabilities: np.ndarray, n: int) -> list[int]:
    """The indices of the ``n`` most probable classes, most probable first (equal ones in class
    order): what the front ends list when a model has too many classes to list them all."""
    probs = np.asarray(probabilities, dtype=np.float64).ravel()
    order = np.argsort(-probs, kind="stable")
    return [int(i) for i in order[: max(0, n)]]


def classify_prepared(model: Any, prepared: Prepared) -> ClassifiedImage:
    """One forward pass of ``prepared``, keeping the activations (for the network view).
    Raises :class:`ModelFileError` (:data:`NOT_FINITE`) as :func:`classify_inputs` does."""
    x = model.input_spec.to_tensor(to_batch(model, [prepared.network]))
    with np.errstate(all="ignore"):  # the logits are checked instead
        acts = model.activations(x)
    if not np.isfinite(dict(acts)[model.output]).all():
        raise not_finite()
    probs = np.asarray(acts[-1][1][0], dtype=np.float64)
    return ClassifiedImage(prepared, probs, [str(c) for c in model.classes], acts)


def classify_image(model: Any, image: np.ndarray, **options: Any) -> ClassifiedImage:
    """:func:`prepare_input` (same options) then :func:`classify_prepared`."""
    return classify_prepared(model, prepare_input(model, image, **options))


# ----- one image for the views ---------------------------------------------------------------
#: Longest side of the preview of a large image (what the app shows beside the network input).
PREVIEW_SIDE = 1024


def image_pixels(path: str | os.PathLike[str]) -> int | None:
    """Width x height from the file's header (nothing decoded), or None if it cannot be read."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            return int(img.width) * int(img.height)
    except Exception:  # unreadable: decoding will say why
        return None


def preview_of(image: Any, side: int = PREVIEW_SIDE) -> np.ndarray:
    """``image`` (an array or a Pillow image) box-reduced by an integer factor to at most
    ``side`` pixels a side: a 12-megapixel photo is not drawn at full size."""
    from PIL import Image

    pil = image if isinstance(image, Image.Image) else None
    factor = -(-max(pil.size if pil is not None else image.shape[:2]) // side)
    if factor <= 1:
        return np.asarray(pil) if pil is not None else image
    if pil is None:
        pil = Image.fromarray(np.ascontiguousarray(image))
    return np.asarray(pil.reduce(factor))


@dataclass(frozen=True)
class ViewStep:
    """One step of :func:`view_steps`.

    image: the full-resolution upright picture (None in the quick first step of a photo, or
        when the file is not a readable image); preview: at most :data:`PREVIEW_SIDE` a side;
    prepared: what the network sees (None when the picture holds no digit, or without model);
    error: why not; decoded_at: ``time.perf_counter()`` when the decoding ended.
    """

    image: np.ndarray | None
    preview: np.ndarray | None
    prepared: Prepared | None
    error: str
    decoded_at: float


def view_steps(
    source: str | os.PathLike[str] | np.ndarray,
    model: Any,
    *,
    name: str = "",
    kind: Preparation | None = None,
    auto_invert: bool = True,
    center: bool = True,
) -> Iterator[ViewStep]:
    """Decode (a path) and prepare one picture for the app's views; never raises
    :class:`EngineError`. Runs off the GUI thread for large pictures.

    A photo file for a photo model yields twice: first a quick network input alone, from the
    file decoded at reduced size (:func:`open_photo`: the bars can follow at once), then the
    full picture, its preview and the exact network input (the same as :func:`prepare_file`,
    what the CLI sees). Every other case yields once, everything together.
    """
    import time

    from engine.imageio import load_image, load_pil_image
    from engine.photo import prepare_photo, to_display

    kind = kind or (preparation_for(model) if model is not None else "digit")
    quick = None
    if isinstance(source, np.ndarray):
        image = source
        decoded_at = time.perf_counter()
    else:
        try:
            if kind == "photo" and model is not None:
                small = open_photo(source, model)  # what the network needs, decoded quickly
                decoded_at = time.perf_counter()
                photo = prepare_photo(small, model.input_spec)
                quick = Prepared(photo, to_display(photo), "photo")
                yield ViewStep(None, None, quick, "", decoded_at)
                pil = load_pil_image(source)  # the full picture, for the views
                image, preview = np.asarray(pil), preview_of(pil)
                exact = prepare_photo(pil, model.input_spec)  # as the CLI prepares the file
            else:
                image = load_image(source)
                decoded_at = time.perf_counter()
        except EngineError as exc:
            yield ViewStep(None, None, None, str(exc), time.perf_counter())
            return
    if quick is not None:
        yield ViewStep(image, preview, Prepared(exact, to_display(exact), "photo"), "", decoded_at)
        return
    preview = preview_of(image)
    if model is None and kind != "digit":
        yield ViewStep(image, preview, None, "", decoded_at)
        return
    try:
        prepared = prepare_input(model, image, kind=kind, auto_invert=auto_invert, center=center)
    except EngineError as exc:
        yield ViewStep(image, preview, None, f"{name}: {exc}" if name else str(exc), decoded_at)
        return
    yield ViewStep(image, preview, prepared, "", decoded_at)


# ----- files ----------------------------------------------------------------------------------
def image_files_in(folder: str | os.PathLike[str]) -> list[Path]:
    """The image files directly inside ``folder``, sorted by name; dot files are skipped
    (hidden files, editors' and macOS's ``._`` companions)."""
    from engine.imageio import SUPPORTED_SUFFIXES

    files = []
    for p in Path(folder).iterdir():
        if p.name.startswith(".") or p.suffix.lower() not in SUPPORTED_SUFFIXES:
            continue
        try:
            if p.is_file():
                files.append(p)
        except OSError:  # a broken entry: not an image we can read
            continue
    return sorted(files)


def expand_paths(
    paths: Sequence[str | os.PathLike[str]],
) -> tuple[list[Path], list[tuple[str, str]]]:
    """Files to classify, in order (folders expanded by :func:`image_files_in`; a missing file
    stays: reading it gives the reason), and ``(path, problem)`` pairs for folders that cannot
    be listed or hold no images (naming their subfolders, which are not searched).
    """
    files: list[Path] = []
    problems: list[tuple[str, str]] = []
    for given in paths:
        path = Path(given).expanduser()
        if not _is_dir(path):
            files.append(path)
            continue
        try:
            inside = image_files_in(path)
            subs = [] if inside else [p for p in sorted(path.iterdir()) if _is_dir(p)]
        except OSError as exc:
            problems.append((str(given), f"the folder cannot be listed ({exc.strerror or exc})"))
            continue
        if not inside:
            named = " ".join([str(p) for p in subs if not p.name.startswith(".")][:2])
            hint = f"; its subfolders are not searched: name them, e.g. {named}" if named else ""
            problems.append((str(given), f"the folder holds no image files{hint}"))
        files.extend(inside)
    return files, problems


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # a name too long, a loop of links...: reading it will say what is wrong
        return False


@dataclass(frozen=True)
class FileResult:
    """One file's classification, or why it has none (``error``)."""

    file: str
    prediction: str = ""  # class name; "" when the file could not be classified
    confidence: float = float("nan")  # probability of the prediction; NaN with an error
    probabilities: tuple[float, ...] = ()
    error: str = ""
    inverted: bool | None = None  # digits only
    bbox: tuple[int, int, int, int] | None = None  # digits only


def classify_files_steps(
    model: Any,
    paths: Sequence[str | os.PathLike[str]],
    *,
    kind: Preparation | None = None,
    auto_invert: bool = True,
    center: bool = True,
) -> Iterator[Progress | list[FileResult]]:
    """Prepare each file (yielding ``Progress("prepare", files done, files)`` after each),
    then classify all of them in one batch and yield the results, one per file, in the order given.

    A file that cannot be read, a digit image without ink, or one for which the network's
    outputs are not finite numbers (:data:`NOT_FINITE`), gets a result with its ``error`` (the
    reason, without the file's name). Runs in a worker thread with its own model copy.
    """
    results: list[FileResult | None] = []
    inputs: list[Prepared] = []
    where: list[int] = []
    for path in paths:
        try:
            inputs.append(
                prepare_file(model, path, kind=kind, auto_invert=auto_invert, center=center)
            )
            where.append(len(results))
            results.append(None)
        except EngineError as exc:
            results.append(FileResult(str(path), error=without_name(str(exc), Path(path))))
        yield Progress("prepare", len(results), len(paths))
    if inputs:
        probs, finite = network_probabilities(model, [p.network for p in inputs])
        classes = [str(c) for c in model.classes]
        for i, prepared, p, ok in zip(where, inputs, probs, finite, strict=True):
            if not ok:
                results[i] = FileResult(str(paths[i]), error=str(not_finite()))
                continue
            k = int(np.argmax(p))
            results[i] = FileResult(
                str(paths[i]),
                classes[k],
                float(p[k]),
                tuple(float(v) for v in p),
                inverted=prepared.inverted if prepared.kind == "digit" else None,
                bbox=prepared.bbox,
            )
    yield [r for r in results if r is not None]


def classify_files(model: Any, paths: Sequence[str | os.PathLike[str]], **options: Any):
    """:func:`classify_files_steps` run to the end: the list of :class:`FileResult`."""
    return run_through(classify_files_steps(model, paths, **options))


def without_name(message: str, path: Path) -> str:
    """An engine message starts with the file's path or name; the caller names it already."""
    for prefix in (f"{path}: ", f"{path.name}: "):
        if message.startswith(prefix):
            return message[len(prefix) :]
    return message
