"""ConvScope's CNN engine: pure NumPy (+ Pillow for image files), float32, NCHW.

Nothing here imports Qt, pyqtgraph or :mod:`desktop`; ``tests/test_boundaries.py`` checks it.
"""

__version__ = "0.1.0"
