"""The layers the ConvNet family adds to LeNet's: BatchNorm2d, Dropout, Add, Concat and global
average pooling. Forward beside backward, as in :mod:`engine.layers`; shapes without N.

Add and Concat read two or more nodes (``n_inputs = 0``): ``forward`` takes a list of arrays and
``backward`` returns one gradient per input. Per-channel work (BatchNorm) runs on the CNHW
memory a convolution leaves behind, seen as a ``(C, N*H*W)`` matrix, and hands CNHW memory on.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

import numpy as np

from engine.errors import ShapeError
from engine.layers import Layer, _chw
from engine.pooling import batch_inner, inverse_perm


class BatchNorm2D(Layer):
    """Batch normalisation over the channels of ``x (N, C, H, W)`` (as ``torch.nn.BatchNorm2d``).

    Training: ``mu_c, var_c`` = mean and (biased) variance of channel c over N, H, W;
    ``xhat = (x - mu) / sqrt(var + eps)``; ``y = weight * xhat + bias``. The running averages
    move by ``momentum``: ``running_mean = (1-m)*running_mean + m*mu`` and the same for
    ``running_var`` with the *unbiased* variance ``var * M/(M-1)`` (M = N*H*W), as PyTorch does;
    ``num_batches_tracked`` counts the batches. Evaluation uses the running statistics.

    Backward (training), with ``g = dout * weight`` and means over N, H, W::

        dx = (g - mean(g) - xhat * mean(g * xhat)) / sqrt(var + eps)
        dweight = sum(dout * xhat),  dbias = sum(dout)

    In evaluation mode it is an affine map: ``dx = dout * weight / sqrt(running_var + eps)``.
    The layer keeps its input (a view of the convolution's output, no copy) rather than ``xhat``,
    and both directions run block by block over the channels, each block read from memory once.
    params ``weight, bias (C,)``; buffers ``running_mean, running_var (C,)`` float32 and
    ``num_batches_tracked ()`` int64: the ``state_dict`` keys of ``BatchNorm2d``.
    """

    kind = "batchnorm2d"

    def __init__(
        self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, *, name: str = ""
    ) -> None:
        super().__init__(name)
        self.num_features = int(num_features)
        self.eps, self.momentum = float(eps), float(momentum)
        if self.num_features < 1:
            raise ShapeError(f"{self.name}: num_features must be >= 1")
        if not (self.eps > 0 and 0 <= self.momentum <= 1):
            raise ShapeError(f"{self.name}: eps must be > 0 and momentum within [0, 1]")
        c = self.num_features
        self.params = {"weight": np.ones(c, np.float32), "bias": np.zeros(c, np.float32)}
        self.grads = {key: np.zeros_like(p) for key, p in self.params.items()}
        self.buffers = {
            "running_mean": np.zeros(c, np.float32),
            "running_var": np.ones(c, np.float32),
            "num_batches_tracked": np.zeros((), np.int64),
        }
        self._x: np.ndarray | None = None  # the input, channels first (a view), for backward
        self._perm = (1, 0, 2, 3)  # how forward saw the input: CNHW or CHWN
        # (group, rank) while this layer runs one shard of a batch split over threads or
        # processes: the statistics are then the whole batch's, exchanged through the group
        # (BatchSync, or engine.shards' pipes between processes)
        self.sync: tuple[SumExchange, int] | None = None

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        c, h, w = _chw(input_shape, self.name)
        if c != self.num_features:
            raise ShapeError(
                f"{self.name}: expects {self.num_features} channel(s) but gets {c}; "
                f"set num_features={c}"
            )
        return (c, h, w)

    def config(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "name": self.name,
            "num_features": self.num_features,
            "eps": self.eps,
            "momentum": self.momentum,
        }

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self.output_shape(x.shape[1:])
        dtype = np.result_type(x.dtype, self.params["weight"].dtype)
        # channels first, as a convolution's memory has them: CNHW, or CHWN when the samples
        # are innermost (engine.conv_inner); the statistics need only each channel's values
        self._perm = (1, 2, 3, 0) if batch_inner(x) else (1, 0, 2, 3)
        x4 = x.astype(dtype, copy=False).transpose(self._perm)
        c, m = x4.shape[0], x4[0].size
        self._shape, self._training = x.shape, training
        if training and m < 2:
            raise ShapeError(
                f"{self.name}: batch normalisation needs more than one value per channel "
                f"in training (got a batch of {x.shape[0]} of {x.shape[2]}x{x.shape[3]} maps); "
                "train with a batch of 2 or more, or on larger maps (fewer poolings or strides "
                "before it)"
            )
        weight = self.params["weight"].astype(dtype, copy=False)
        bias = self.params["bias"].astype(dtype, copy=False)
        if training:
            mu, var = np.empty(c, dtype), np.empty(c, dtype)
        else:
            mu = self.buffers["running_mean"].astype(dtype)
            var = self.buffers["running_var"].astype(dtype)
        y4 = np.empty(x4.shape, dtype)
        y, inv = y4.reshape(c, m), np.empty(c, dtype)
        xm = _channel_major(x4, y4)  # (channels-innermost memory is copied into y4 first)
        synced = training and self.sync is not None
        for z in _blocks(c, m):  # a block of channels is read once from memory, then in cache
            yb = y[z]
            xb = _rows(xm[z], yb)  # (a convolution's wide rows are copied into yb first)
            if training:
                mu[z] = np.add.reduce(xb, axis=1) / m
            np.subtract(xb, mu[z, None], out=yb)
            if training:
                var[z] = np.einsum("ij,ij->i", yb, yb) / m
            if synced:
                continue  # the affine step waits for the whole batch's statistics
            inv[z] = 1.0 / np.sqrt(var[z] + self.eps)
            yb *= (weight[z] * inv[z])[:, None]
            yb += bias[z, None]
        if synced:
            mu, var, m = self._synced_affine(y, mu, var, m, weight, bias, inv)
        if training and (self.sync is None or self.sync[1] == 0):
            self._update_running(mu, var, m)
        # backward recomputes x - mu from the input, kept as it is: no normalised copy
        self._x, self._mu, self._inv, self._m = x4, mu, inv, m
        return y4.transpose(inverse_perm(self._perm))

    def _synced_affine(self, y, mu, var, m, weight, bias, inv) -> tuple[Any, Any, int]:
        """This shard's ``y = x - mu_shard`` (in place) normalised with the whole batch's
        statistics, combined from every shard's count, mean and variance in one exchange
        (in float64: ``M2 = sum(M2_i) + sum(m_i * mu_i**2) - M * mu**2``). Returns the batch's
        mean, variance and count."""
        assert self.sync is not None
        group, rank = self.sync
        mu64 = mu.astype(np.float64)
        local = np.stack([mu64 * m, var.astype(np.float64) * m, m * mu64 * mu64])
        sums = group.allsum(rank, np.concatenate([local.ravel(), [float(m)]]))
        total = round(float(sums[-1]))
        s_mu, s_m2, s_sq = sums[:-1].reshape(3, -1)
        mu_all = s_mu / total
        var_all = np.maximum(s_m2 + s_sq - total * mu_all * mu_all, 0.0) / total
        mu_all, var_all = mu_all.astype(mu.dtype), var_all.astype(var.dtype)
        inv[...] = 1.0 / np.sqrt(var_all + self.eps)
        scale = weight * inv
        shift = (mu - mu_all) * scale + bias  # y = (x - mu_shard + mu_shard - mu) * scale + bias
        for z in _blocks(y.shape[0], m):
            y[z] *= scale[z, None]
            y[z] += shift[z, None]
        return mu_all, var_all, total

    def _update_running(self, mu: np.ndarray, var: np.ndarray, m: int) -> None:
        b, mom = self.buffers, self.momentum
        rm, rv = b["running_mean"], b["running_var"]
        rm[...] = (1 - mom) * rm + mom * mu
        rv[...] = (1 - mom) * rv + mom * var * (m / (m - 1))
        b["num_batches_tracked"][...] += 1

    def backward(self, dout: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        g4 = dout.transpose(self._perm)
        x4, mu, inv = self._x, self._mu, self._inv
        assert x4 is not None, "backward follows a forward pass"
        c, m = g4.shape[0], g4[0].size
        dtype = np.result_type(g4.dtype, inv.dtype)
        scale = self.params["weight"].astype(dtype) * inv
        dx4 = np.empty(g4.shape, dtype) if input_grad else None
        blocks = _blocks(c, m)
        rows = max(z.stop - z.start for z in blocks)
        tmp, gbuf = np.empty(rows * m, dtype), np.empty(rows * m, g4.dtype)
        dw, db = self.grads["weight"], self.grads["bias"]
        synced = self._training and self.sync is not None
        x4, g4 = _channel_major(x4), _channel_major(g4)

        def block(z: slice) -> tuple[np.ndarray, np.ndarray]:
            xc = tmp[: (z.stop - z.start) * m].reshape(-1, m)
            np.subtract(x4[z], mu[z, None, None, None], out=xc.reshape(x4[z].shape))
            return xc, _rows(g4[z], gbuf[: xc.size].reshape(xc.shape))

        for z in blocks:  # one pass over x, dout and dx, block by block
            xc, gb = block(z)
            db[z] = np.add.reduce(gb, axis=1)
            dw[z] = np.einsum("ij,ij->i", gb, xc) * inv[z]  # sum(dout * xhat)
            if dx4 is not None and not synced:
                self._dx(dx4.reshape(c, m)[z], xc, gb, scale[z], inv[z], db[z], dw[z], self._m)
        if synced and dx4 is not None:  # the sums are the whole batch's: a second pass
            assert self.sync is not None
            group, rank = self.sync
            total = group.allsum(rank, np.stack([db, dw]))
            for z in blocks:
                xc, gb = block(z)
                dxb = dx4.reshape(c, m)[z]
                self._dx(dxb, xc, gb, scale[z], inv[z], total[0, z], total[1, z], self._m)
        return None if dx4 is None else dx4.transpose(inverse_perm(self._perm))

    def _dx(self, dxb, xc, gb, scale, inv, sum_g, dot, m: int) -> None:
        """One block of ``dx`` from ``xc = x - mu``, ``gb = dout`` and the batch's sums
        ``sum(dout)``, ``sum(dout * xhat)`` over ``m`` values per channel (``xc`` is spent)."""
        if self._training:  # scale * (g - mean(g) - xhat * mean(g * xhat))
            np.multiply(xc, (-scale * inv * dot / m)[:, None], out=dxb)
            dxb -= (scale * sum_g / m)[:, None]
            np.multiply(gb, scale[:, None], out=xc)
            dxb += xc
        else:  # an affine map
            np.multiply(gb, scale[:, None], out=dxb)

    def release(self) -> None:
        self._x = None


class SumExchange(Protocol):
    """How the shards of one batch add a per-channel array: ``allsum(rank, a)`` returns the
    sum of every shard's ``a``, added in rank order, the same in every shard."""

    def allsum(self, rank: int, a: np.ndarray) -> np.ndarray: ...


class BatchSync:
    """The shards of one batch, split over threads, adding per-channel arrays at a barrier:
    how a BatchNorm layer running one shard gets the whole batch's statistics and sums.

    ``allsum(rank, a)`` returns the sum of every shard's ``a``, added in rank order (the same
    in every shard), after ONE barrier: the parts go into two alternating slots, so a shard
    that runs ahead into the next exchange writes the other slot while a slower one is still
    reading this one (it can run two exchanges ahead only once the slow one has arrived at the
    next barrier, i.e. finished reading). :meth:`abort` breaks the barrier, so a shard that
    failed never leaves the others waiting (they raise ``threading.BrokenBarrierError``)."""

    def __init__(self, parties: int) -> None:
        self.slots: list[list[np.ndarray | None]] = [[None] * parties, [None] * parties]
        self.rounds = [0] * parties
        self.barrier = threading.Barrier(parties)

    def allsum(self, rank: int, a: np.ndarray) -> np.ndarray:
        slot = self.slots[self.rounds[rank] % 2]
        self.rounds[rank] += 1
        slot[rank] = a
        self.barrier.wait()  # every shard has written its part
        return np.sum([p for p in slot if p is not None], axis=0)

    def abort(self) -> None:
        self.barrier.abort()


def _blocks(c: int, m: int, size: int = 1 << 16) -> list[slice]:
    """Slices of the ``c`` channels in blocks of about ``size`` values (``m`` per channel)."""
    step = max(1, size // m)
    return [slice(a, min(a + step, c)) for a in range(0, c, step)]


def _channel_major(a4: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``a4 (C, N, H, W)`` itself, or, when the channels are its innermost axis (NHWC memory:
    the input gradient a strided rows-layout convolution hands back, an NHWC image), a
    channel-major copy (into ``out`` when given). One
    transposing copy costs about what one pass costs; blocks of channels read straight from
    channels-innermost memory would touch every cache line once per channel."""
    if a4.shape[0] == 1 or a4.strides[0] != a4.itemsize:
        return a4
    if out is None:
        out = np.empty(a4.shape, a4.dtype)
    for n in range(a4.shape[1]):  # sample by sample: each transpose stays in cache
        np.copyto(out[:, n], a4[:, n])
    return out


def _rows(a4: np.ndarray, buf: np.ndarray) -> np.ndarray:
    """``a4 (k, N, H, W)`` as a ``(k, N*H*W)`` matrix: a view when contiguous, else copied into
    ``buf`` (of that shape)."""
    if a4.flags.c_contiguous:
        return a4.reshape(buf.shape)
    np.copyto(buf.reshape(a4.shape), a4)
    return buf


class Dropout(Layer):
    """Inverted dropout: in training ``y = x * mask / (1 - p)`` with ``mask`` 0 for a fraction
    ``p`` of the values; in evaluation ``y = x``. ``dx = dout * mask / (1 - p)``.

    The mask is drawn for the whole batch by the network (:meth:`engine.graph.Network`, from its
    seeded ``rng``) and handed to the layer in ``mask`` before the forward pass, so a batch split
    over several workers drops exactly the values one worker would. A layer used on its own
    draws from its ``rng`` when no mask was handed over.
    """

    kind = "dropout"

    def __init__(self, p: float = 0.5, *, name: str = "") -> None:
        super().__init__(name)
        self.p = float(p)
        if not 0 <= self.p < 1:
            raise ShapeError(f"{self.name}: the dropout probability must be in [0, 1), got {p}")
        self.mask: np.ndarray | None = None  # bool, True = kept; set per batch by the network
        self.rng: np.random.Generator | None = None

    def config(self) -> dict[str, Any]:
        return {"type": self.kind, "name": self.name, "p": self.p}

    def draw_mask(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        """A bool mask of ``shape`` (N first) with each value kept with probability 1 - p."""
        return rng.random(shape, dtype=np.float32) >= np.float32(self.p)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self._keep = None
        if not training or self.p == 0:
            return x
        mask, self.mask = self.mask, None  # a handed-over mask serves one batch
        if mask is None or mask.shape != x.shape:
            if self.rng is None:
                self.rng = np.random.default_rng()
            mask = self.draw_mask(self.rng, x.shape)
        keep = mask * x.dtype.type(1.0 / (1.0 - self.p))
        self._keep = keep
        return x * keep

    def backward(self, dout: np.ndarray, input_grad: bool = True) -> np.ndarray:
        return dout if self._keep is None else dout * self._keep


class Add(Layer):
    """Elementwise sum of two or more inputs of the same shape (a residual connection):
    ``y = x1 + x2 + ...``; each input gets ``dout`` unchanged."""

    kind = "add"
    n_inputs = 0

    def output_shape(self, input_shape: Any) -> tuple[int, ...]:
        shapes = [tuple(s) for s in input_shape]
        if len(shapes) < 2 or any(s != shapes[0] for s in shapes):
            raise ShapeError(
                f"{self.name}: adds inputs of one shape, got {' + '.join(map(str, shapes))}; "
                "use a 1x1 convolution (a projection) to match the channels and stride"
            )
        return shapes[0]

    def forward(self, xs: Any, training: bool = False, inplace: bool = False) -> np.ndarray:
        """``inplace``: the sum goes into ``xs[0]`` (when its dtype holds the result); the
        executor asks for it only when no one else reads or keeps that array."""
        self.output_shape([x.shape[1:] for x in xs])
        self._n = len(xs)
        if inplace and np.result_type(*xs) == xs[0].dtype:
            y = xs[0]
            y += xs[1]
        else:
            y = xs[0] + xs[1]
        for x in xs[2:]:
            y += x
        return y

    def backward(self, dout: np.ndarray, input_grad: bool = True) -> Any:
        return [dout] * self._n


class Concat(Layer):
    """Concatenation of two or more ``(C_i, H, W)`` inputs along the channels (Inception,
    DenseNet): ``y (N, sum C_i, H, W)``; each input gets its channels' slice of ``dout``.
    The output is CNHW memory (each input's block one contiguous copy)."""

    kind = "concat"
    n_inputs = 0

    def output_shape(self, input_shape: Any) -> tuple[int, ...]:
        shapes = [_chw(s, self.name) for s in input_shape]
        if len(shapes) < 2 or any(s[1:] != shapes[0][1:] for s in shapes):
            raise ShapeError(
                f"{self.name}: concatenates channels of inputs with one height and width, got "
                f"{', '.join('x'.join(map(str, s)) for s in shapes)}; pad or pool them alike"
            )
        return (sum(s[0] for s in shapes), shapes[0][1], shapes[0][2])

    def forward(
        self, xs: Any, training: bool = False, inplace: bool = False, reserve: int = 0
    ) -> np.ndarray:
        """``reserve``: make the output buffer that many channels deep and return a view of its
        first ones (a later concatenation may append to it). ``inplace``: append into the
        buffer ``xs[0]`` is the start of, when it has room (the executor asks for it only when
        nothing else writes there)."""
        c, h, w = self.output_shape([x.shape[1:] for x in xs])
        n = xs[0].shape[0]
        dtype = np.result_type(*xs)
        first = xs[0].transpose(1, 0, 2, 3)
        buf, skip = first.base, 1
        if not (inplace and _extends(first, buf, c, dtype)):
            buf, skip = np.empty((max(c, reserve), n, h, w), dtype), 0
        assert isinstance(buf, np.ndarray)
        a = 0
        self._splits = []
        for i, x in enumerate(xs):
            b = a + x.shape[1]
            if i >= skip:
                buf[a:b] = x.transpose(1, 0, 2, 3)
            self._splits.append((a, b))
            a = b
        return buf[:c].transpose(1, 0, 2, 3)

    def backward(self, dout: np.ndarray, input_grad: bool = True) -> Any:
        return [dout[:, a:b] for a, b in self._splits]


def _extends(first: np.ndarray, buf: Any, c: int, dtype: np.dtype) -> bool:
    """Is CNHW ``first`` the leading channels of the 4-D buffer ``buf``, which has room for
    ``c`` channels of ``dtype``?"""
    return (
        isinstance(buf, np.ndarray)
        and buf.ndim == 4
        and buf.dtype == dtype
        and buf.shape[1:] == first.shape[1:]
        and buf.shape[0] >= c
        and first.flags.c_contiguous
        and first.ctypes.data == buf.ctypes.data
    )


class GlobalAvgPool2D(Layer):
    """Mean over each channel's whole map: ``x (N, C, H, W) -> y (N, C)``, ``y = mean_hw x``
    (``AdaptiveAvgPool2d(1)`` then ``flatten`` in PyTorch); ``dx = dout / (H*W)`` everywhere."""

    kind = "globalavgpool"

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        c, _, _ = _chw(input_shape, self.name)
        return (c,)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self.output_shape(x.shape[1:])
        self._shape = x.shape
        return x.mean(axis=(2, 3))

    def backward(self, dout: np.ndarray, input_grad: bool = True) -> np.ndarray:
        n, c, h, w = self._shape
        g = dout * dout.dtype.type(1.0 / (h * w))
        return np.broadcast_to(g[:, :, None, None], (n, c, h, w))


BLOCK_TYPES: dict[str, type[Layer]] = {
    cls.kind: cls for cls in (BatchNorm2D, Dropout, Add, Concat, GlobalAvgPool2D)
}
