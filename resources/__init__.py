"""ConvScope's package data: the bundled MNIST and photos, sample photos and the shipped model.

Files are reached through :mod:`importlib.resources`, so they load from an installed
wheel as well as from a source checkout. See ``resources/ATTRIBUTION.md`` for licences.
"""

from __future__ import annotations

from importlib import resources as _res
from pathlib import Path

SAMPLE_SUFFIXES = (".png", ".jpg", ".jpeg")


def resource_path(*parts: str) -> Path:
    """Path of a file inside this package, e.g. ``resource_path("samples", "camera.png")``."""
    traversable = _res.files(__name__).joinpath(*parts)
    # Installed packages are plain directories (setuptools never zips them), so a
    # Traversable of this package is a real path on disk.
    return Path(str(traversable))


def sample_images() -> list[Path]:
    """The bundled sample photos, sorted by name."""
    folder = resource_path("samples")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in SAMPLE_SUFFIXES)


def mnist_dir() -> Path:
    """Folder holding the four official MNIST ``.gz`` files."""
    return resource_path("datasets", "mnist")


#: File name of the shipped four-class photo model (bird, cat, dog, ship) in ``models/``.
PHOTO_MODEL_FILE = "cifar4-photos.npz"


def photo_model_path() -> Path:
    """The four-class photo model ('photos' on the command line); it may not exist yet."""
    return resource_path("models", PHOTO_MODEL_FILE)


def cifar4_dir() -> Path:
    """Folder of the bundled four-class photo set (``train/`` and ``test/``, one subfolder per
    class: bird, cat, dog, ship)."""
    return resource_path("datasets", "cifar4")


def shipped_model_path() -> Path:
    """The LeNet-5 trained on MNIST that the app classifies with on first start."""
    return resource_path("models", "lenet5-mnist.npz")
