"""Slow, obviously-correct convolution and pooling: explicit loops over every output pixel.

This is the oracle the tests compare :mod:`engine.im2col` against. Never use it for real work.
Shapes: ``x (N,C,H,W)``, ``weight (F,C,KH,KW)``, ``bias (F,)``, output ``(N,F,H',W')`` with
``H' = 1 + (H + 2*pad - KH) // stride``.
"""

from __future__ import annotations

import numpy as np


def conv2d(
    x: np.ndarray, weight: np.ndarray, bias: np.ndarray, stride: int = 1, padding: int = 0
) -> np.ndarray:
    """Cross-correlation (as every CNN library calls "convolution") with zero padding."""
    n, _c, h, w = x.shape
    f, _, kh, kw = weight.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    ho = 1 + (h + 2 * padding - kh) // stride
    wo = 1 + (w + 2 * padding - kw) // stride
    out = np.zeros((n, f, ho, wo), dtype=np.result_type(x, weight))
    for i in range(n):
        for k in range(f):
            for y in range(ho):
                for z in range(wo):
                    patch = xp[i, :, y * stride : y * stride + kh, z * stride : z * stride + kw]
                    out[i, k, y, z] = np.sum(patch * weight[k]) + bias[k]
    return out


def conv2d_backward(
    x: np.ndarray, weight: np.ndarray, dout: np.ndarray, stride: int = 1, padding: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients ``(dx, dweight, dbias)`` of :func:`conv2d` for an upstream gradient ``dout``."""
    n, _c, h, w = x.shape
    f, _, kh, kw = weight.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(weight)
    db = np.zeros(f, dtype=weight.dtype)
    ho, wo = dout.shape[2:]
    for i in range(n):
        for k in range(f):
            for y in range(ho):
                for z in range(wo):
                    g = dout[i, k, y, z]
                    ys, zs = y * stride, z * stride
                    dw[k] += g * xp[i, :, ys : ys + kh, zs : zs + kw]
                    dxp[i, :, ys : ys + kh, zs : zs + kw] += g * weight[k]
                    db[k] += g
    dx = dxp[:, :, padding : padding + h, padding : padding + w]
    return dx, dw, db


def pool2d(x: np.ndarray, size: int, stride: int, mode: str = "max") -> np.ndarray:
    """Max or average pooling (no padding, floor mode): one window at a time."""
    n, c, h, w = x.shape
    ho = 1 + (h - size) // stride
    wo = 1 + (w - size) // stride
    out = np.zeros((n, c, ho, wo), dtype=x.dtype)
    for i in range(n):
        for k in range(c):
            for y in range(ho):
                for z in range(wo):
                    win = x[i, k, y * stride : y * stride + size, z * stride : z * stride + size]
                    out[i, k, y, z] = win.max() if mode == "max" else win.mean()
    return out


def pool2d_backward(
    x: np.ndarray, dout: np.ndarray, size: int, stride: int, mode: str = "max"
) -> np.ndarray:
    """Gradient of :func:`pool2d`: max sends each gradient to the first maximum of its window."""
    n, c, _, _ = x.shape
    dx = np.zeros_like(x)
    ho, wo = dout.shape[2:]
    for i in range(n):
        for k in range(c):
            for y in range(ho):
                for z in range(wo):
                    ys, zs = y * stride, z * stride
                    g = dout[i, k, y, z]
                    if mode == "max":
                        win = x[i, k, ys : ys + size, zs : zs + size]
                        a, b = np.unravel_index(np.argmax(win), win.shape)
                        dx[i, k, ys + a, zs + b] += g
                    else:
                        dx[i, k, ys : ys + size, zs : zs + size] += g / (size * size)
    return dx
