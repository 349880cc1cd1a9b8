"""The engine's exceptions. Each message names the file or value at fault and how to fix it.

Front ends (CLI, GUI) catch :class:`EngineError` and show its message as one line.
"""


def short_repr(value: object) -> str:
    """``repr(value)`` cut to 40 characters, for quoting a bad value in a message."""
    try:
        text = repr(value)
    except ValueError:  # an integer of thousands of digits
        return "a huge number"
    return text if len(text) <= 40 else text[:37] + "..."


class EngineError(Exception):
    """Base class of every error the engine raises on bad input."""


class ImageLoadError(EngineError):
    """An image file is missing, unreadable, hostile (a decompression bomb) or not an image."""


class DatasetError(EngineError):
    """A dataset file or folder is missing, truncated, foreign or inconsistent."""


class ModelFileError(EngineError):
    """A model file is corrupt, truncated, foreign or does not match its architecture."""


class WorkerDied(EngineError):
    """A training shard's worker process ended in the middle of a batch (killed: by the user,
    or by the system when memory ran out)."""


class ShapeError(EngineError, ValueError):
    """A layer, kernel or architecture does not fit its input (a kernel larger than the image)."""
