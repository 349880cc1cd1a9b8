"""ConvScope's faces: the Qt desktop application and the headless ``convscope`` CLI."""

from engine import __version__

__all__ = ["__version__"]
