"""What a network takes as input: the tensor shape and the pixel normalisation.

``x = (pixel * scale - mean) / std``. ``mean`` and ``std`` are numbers (MNIST's by default) or,
for colour photo models, one number per channel (``(0.49, 0.48, 0.45)``). Model files of format
version 1 hold numbers; both forms are read and written back in the form they came in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.errors import ShapeError

# The largest magnitude a normalised pixel may reach (|pixel*scale - mean| / std for pixels
# 0..255). Real normalisations stay below 10; 1e308 / 1e-308 would make every output NaN.
MAX_INPUT_MAGNITUDE = 1e4

Number = float | tuple[float, ...]


@dataclass(frozen=True)
class InputSpec:
    """What the network takes: ``shape (C, H, W)`` and the pixel normalisation
    ``x = (pixel * scale - mean) / std`` (MNIST's mean and std by default); ``mean`` and ``std``
    are numbers or tuples of one number per channel."""

    shape: tuple[int, int, int] = (1, 28, 28)
    scale: float = 1 / 255
    mean: Number = 0.1307
    std: Number = 0.3081

    def __post_init__(self) -> None:
        c = int(self.shape[0]) if len(self.shape) == 3 else 0
        for what in ("mean", "std"):
            v = getattr(self, what)
            if isinstance(v, (tuple, list)) and len(v) != c:
                raise ShapeError(
                    f"input {what} has {len(v)} values for {c} channel(s); give one per channel "
                    "or a single number"
                )

    def _affine(self) -> tuple[np.ndarray, np.ndarray]:
        """``(mul, add)``, float32 arrays of shape (C,): ``x = pixel * mul + add``."""
        c = int(self.shape[0])
        mean = np.broadcast_to(np.asarray(self.mean, dtype=np.float64), (c,))
        std = np.broadcast_to(np.asarray(self.std, dtype=np.float64), (c,))
        return (self.scale / std).astype(np.float32), (-mean / std).astype(np.float32)

    @property
    def per_channel(self) -> bool:
        return isinstance(self.mean, (tuple, list)) or isinstance(self.std, (tuple, list))

    @property
    def pad_values(self) -> np.ndarray:
        """What a pixel of 0 maps to, per channel ``(C,)`` float32: the value padding uses."""
        return self._affine()[1]

    @property
    def pad_value(self) -> float:
        """What a pixel of 0 maps to (channel 0's for per-channel normalisation)."""
        return float(self.pad_values[0])

    def to_tensor(self, images: np.ndarray) -> np.ndarray:
        """uint8 ``(N,H,W)``, ``(N,C,H,W)`` or one ``(H,W)`` image -> float32 ``(N,C,H,W)``.

        ``(pixel*scale - mean)/std``; images smaller than ``shape`` are zero-padded, centred
        (the pad value is what pixel 0 maps to, so padding looks like more background: MNIST's
        28x28 becomes the article's 32x32).
        """
        a = np.asarray(images)
        if a.ndim == 2:
            a = a[None, None]
        elif a.ndim == 3:
            a = a[:, None]
        elif a.ndim != 4:
            raise ShapeError(
                f"images must be (N,H,W) or (N,C,H,W), got an array of shape {a.shape}"
            )
        c, h, w = self.shape
        n, ac, ah, aw = a.shape
        if ac != c:
            raise ShapeError(
                f"images have {ac} channel(s) but the model takes {c}; convert them "
                f"({'to grayscale' if c == 1 else 'to RGB'}) first"
            )
        if ah > h or aw > w:
            raise ShapeError(f"images are {ah}x{aw} but the model takes {h}x{w}; resize them first")
        mul, add = self._affine()
        # x = pixel * (scale/std) - mean/std, in float32 (7x faster than a lookup-table gather)
        x = a.astype(np.float32)
        if self.per_channel:
            x *= mul[None, :, None, None]
            x += add[None, :, None, None]
        else:
            x *= mul[0]
            x += add[0]
        if (ah, aw) == (h, w):
            return np.ascontiguousarray(x, dtype=np.float32)
        out = np.empty((n, c, h, w), dtype=np.float32)
        out[...] = add[None, :, None, None]
        top, left = (h - ah) // 2, (w - aw) // 2
        out[:, :, top : top + ah, left : left + aw] = x
        return out

    def to_json(self) -> dict[str, Any]:
        def num(v: Number) -> float | list[float]:
            return [float(a) for a in v] if isinstance(v, (tuple, list)) else float(v)

        return {
            "shape": list(self.shape),
            "scale": float(self.scale),
            "mean": num(self.mean),
            "std": num(self.std),
        }

    @classmethod
    def from_json(cls, d: Any) -> InputSpec:
        """Read :meth:`to_json`'s form (numbers or per-channel lists); raises
        :class:`ShapeError` for anything else, non-finite values, a zero or negative std or
        scale, or a normalisation that maps pixels beyond ``MAX_INPUT_MAGNITUDE``."""
        if not isinstance(d, dict):
            raise ShapeError(f"bad input description {d!r}: not a JSON object")
        try:
            shape = tuple(_int(v) for v in d["shape"])
            if len(shape) != 3 or min(shape) < 1:
                raise ValueError(f"shape {shape}")
            spec = cls(
                shape=shape,  # type: ignore[arg-type]
                scale=_float(d.get("scale", 1 / 255)),
                mean=_number(d.get("mean", 0.1307)),
                std=_number(d.get("std", 0.3081)),
            )
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise ShapeError(f"bad input description {str(d)[:200]}: {exc}") from None
        spec.check()
        return spec

    def check(self) -> None:
        """Raise :class:`ShapeError` unless the normalisation is finite and sane."""
        mean = np.atleast_1d(np.asarray(self.mean, dtype=np.float64))
        std = np.atleast_1d(np.asarray(self.std, dtype=np.float64))
        vals = np.concatenate([[self.scale], mean, std])
        if not np.isfinite(vals).all() or (std <= 0).any() or not self.scale > 0:
            raise ShapeError(
                "bad input description: scale, mean and std must be finite, scale and std > 0"
            )
        with np.errstate(over="ignore"):
            top = np.abs(255 * self.scale / std) + np.abs(mean / std)
        if not np.all(top <= MAX_INPUT_MAGNITUDE):
            raise ShapeError(
                f"bad input description: scale {self.scale:g}, mean and std map pixels to values "
                f"up to {float(np.max(top)):.3g}, beyond the limit {MAX_INPUT_MAGNITUDE:g}"
            )


def fitted_to(images: np.ndarray, shape: tuple[int, int, int], chunk: int = 2048) -> InputSpec:
    """The normalisation of a colour photo model: each channel's mean and std over ``images``
    (uint8 ``(N, C, H, W)``, pixels scaled by 1/255), rounded to 4 decimals, for ``shape``.

    Counted in float64 over chunks of ``chunk`` images (no float copy of the whole set). A
    channel that never varies gets std 1 (its input is then just shifted to 0)."""
    a = np.asarray(images)
    if a.ndim != 4 or a.shape[1] != shape[0] or len(a) == 0:
        raise ShapeError(f"need (N, {shape[0]}, H, W) images, got an array of shape {a.shape}")
    c = a.shape[1]
    total, squares = np.zeros(c), np.zeros(c)
    for start in range(0, len(a), chunk):
        part = a[start : start + chunk].astype(np.float64) / 255.0
        total += part.sum(axis=(0, 2, 3))
        squares += np.square(part).sum(axis=(0, 2, 3))
    count = a.shape[0] * a.shape[2] * a.shape[3]
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean**2, 0.0))
    std = np.where(std < 1e-3, 1.0, std)
    return InputSpec(
        shape=(int(shape[0]), int(shape[1]), int(shape[2])),
        mean=tuple(round(float(m), 4) for m in mean),
        std=tuple(round(float(s), 4) for s in std),
    )


def _int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{v!r} is not a whole number")
    return int(v)


def _float(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.number)):
        raise TypeError(f"{v!r} is not a number")
    return float(v)


def _number(v: Any) -> Number:
    if isinstance(v, list):
        if len(v) == 1:  # one value for every channel
            return _float(v[0])
        return tuple(_float(a) for a in v)
    return _float(v)
