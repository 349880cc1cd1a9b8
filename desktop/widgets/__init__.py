"""Reusable widgets: image view, kernel grid, charts, network view, draw canvas, ..."""
