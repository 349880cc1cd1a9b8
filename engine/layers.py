"""The layers: each keeps its forward maths beside its backward maths.

Every layer has ``name``, ``params`` and ``grads`` (dicts with the same keys), ``buffers``
(state that is not trained, e.g. BatchNorm's running statistics; empty for most layers),
``forward(x, training=False) -> y`` (keeps what backward needs), ``backward(dout) -> dx``
(overwrites ``grads`` in place, never mutates ``dout``), ``output_shape(input_shape)`` (shapes
without N; raises :class:`~engine.errors.ShapeError` when the input does not fit) and ``config()``
(JSON-able constructor arguments, so a model can be rebuilt from its architecture).

A layer with ``n_inputs == 0`` (Add, Concat in :mod:`engine.blocks`) reads two or more nodes:
its ``forward`` takes a list of arrays, ``output_shape`` a list of shapes, and ``backward``
returns a list with one gradient per input.

Tensors are NCHW. Layers compute in the dtype of their input and parameters: float32 normally,
float64 for the gradient checks (see :meth:`Layer.astype`). Arrays a layer returns may be
*views* with non-C-contiguous strides (a convolution returns CNHW memory seen as NCHW); call
``np.ascontiguousarray`` if you need contiguous memory.

Size: one class per layer, each with its forward maths beside its backward maths and its
shape checks; Conv2D alone is a third of the file. Splitting would part a layer from the base
class and the config helpers (``layer_from_config``) every layer shares.
"""

from __future__ import annotations

import copy
import inspect
import math
from typing import Any, ClassVar

import numpy as np

from engine import conv, pooling
from engine import conv_inner as inner
from engine import conv_rows as rows
from engine import im2col as k
from engine.errors import ShapeError, short_repr


def _pair(v: int | tuple[int, int] | list[int], what: str) -> tuple[int, int]:
    if isinstance(v, (int, np.integer)):
        v = (int(v), int(v))
    if len(v) != 2 or any(int(a) < 1 for a in v):
        raise ShapeError(f"{what} must be a positive int or a pair of them, got {v!r}")
    return int(v[0]), int(v[1])


class Layer:
    """Base class. Subclasses set ``kind`` and override forward/backward/output_shape/config."""

    kind: ClassVar[str] = "layer"
    n_inputs: ClassVar[int] = 1  # 0: two or more (forward takes a list)

    def __init__(self, name: str = "") -> None:
        self.name = name or self.kind
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dout: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        """Gradient w.r.t. the input; ``input_grad=False`` may skip it (returns None) when the
        caller only needs the parameter gradients (the first layer of a network)."""
        raise NotImplementedError

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(input_shape)

    def config(self) -> dict[str, Any]:
        return {"type": self.kind, "name": self.name}

    @property
    def n_params(self) -> int:
        return int(sum(p.size for p in self.params.values()))

    def replica(self) -> Layer:
        """A copy sharing this layer's parameter and buffer arrays, with its own grads and
        private work buffers.

        Used to run shards of a batch in parallel threads; the owner sums the replicas' grads.
        """
        r = copy.copy(self)
        r.__dict__ = {a: v for a, v in self.__dict__.items() if not a.startswith("_")}
        r.params = self.params
        r.buffers = self.buffers
        r.grads = {key: np.zeros_like(g) for key, g in self.grads.items()}
        r._reset_buffers()
        return r

    def _reset_buffers(self) -> None:
        """(Re)create the private buffers a layer reuses between calls."""

    def release(self) -> None:
        """Drop the arrays forward kept for backward (after a training step's only backward,
        so they are freed while backward goes on); reused work buffers stay."""

    def astype(self, dtype: np.dtype | type) -> Layer:
        """Convert parameters, gradients and floating-point buffers to ``dtype`` in place
        (float64 for gradient checks; integer buffers such as counters keep their dtype)."""
        for key in self.params:
            self.params[key] = self.params[key].astype(dtype)
            self.grads[key] = np.zeros_like(self.params[key])
        for key, b in self.buffers.items():
            if b.dtype.kind == "f":
                self.buffers[key] = b.astype(dtype)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{a}={v!r}" for a, v in self.config().items() if a != "type")
        return f"{type(self).__name__}({args})"


class Conv2D(Layer):
    """2-D convolution (cross-correlation) with zero padding.

    x ``(N, C, H, W)`` -> y ``(N, F, H', W')``, ``H' = 1 + (H + 2*pad - KH) // stride``.
    params ``weight (F, C, KH, KW)``, ``bias (F,)`` (no bias with ``bias=False``, as before a
    BatchNorm); ``y[n,f] = sum_c x[n,c] * weight[f,c] + bias[f]`` (``*`` = cross-correlation).
    "Same" padding for an odd K at stride 1 is ``padding = K // 2``; a 1x1 conv mixes channels.

    The whole batch is one matrix multiply ``[weight | bias] (F, C*KH*KW+1) @ [cols; 1]``
    (see :mod:`engine.im2col`); the row of ones in the reused ``cols`` buffer folds the bias add
    into the matmul and gives the bias gradient in the same product in backward. Stride 1 uses
    "wide" patch rows (long contiguous copies); when one sample's matmul is small (few
    channels, like LeNet's conv1) the batch is multiplied in cache-sized blocks of samples.
    The output is CNHW memory seen as NCHW (a transposed view), which the next layers read
    without copying. Buffers are kept between calls, so a layer serves one thread at a time.
    """

    kind = "conv2d"

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int = 1,
        padding: int = 0,
        *,
        bias: bool = True,
        rng: np.random.Generator | None = None,
        init: str = "torch",
        name: str = "",
    ) -> None:
        super().__init__(name)
        if in_channels < 1 or out_channels < 1:
            raise ShapeError(
                f"{self.name}: channel counts must be >= 1, got {in_channels}, {out_channels}"
            )
        if int(stride) < 1 or int(padding) < 0:
            raise ShapeError(f"{self.name}: stride must be >= 1 and padding >= 0")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = _pair(kernel_size, f"{self.name}: kernel_size")
        self.stride, self.padding, self.init = int(stride), int(padding), init
        kh, kw = self.kernel_size
        fan_in = self.in_channels * kh * kw
        fan_out = self.out_channels * kh * kw
        shape = (self.out_channels, self.in_channels, kh, kw)
        self.bias = bool(bias)
        rng = rng if rng is not None else np.random.default_rng()
        self.params = {"weight": init_weight(shape, fan_in, fan_out, init, rng)}
        if self.bias:
            self.params["bias"] = init_bias(self.out_channels, fan_in, init, rng)
        self.grads = {key: np.zeros_like(p) for key, p in self.params.items()}
        # whether the output may be CHWN memory (engine.conv_inner): a graph clears it where
        # a reader would pay for the transposing copy (engine.executor.mark_batch_inner)
        self.batch_inner_ok = True
        self._reset_buffers()

    def few_channels(self) -> bool:
        """Whether this convolution's shape suits the batch-inner layout (see :func:`_inner`)."""
        kh, kw = self.kernel_size
        return _inner(self.stride, kh, kw, self.in_channels, self.out_channels)

    def _reset_buffers(self) -> None:
        self._pad_buf: np.ndarray | None = None
        self._xbuf: np.ndarray | None = None
        self._cols: np.ndarray | None = None
        self._wb: np.ndarray | None = None
        self._dwide: np.ndarray | None = None
        self._dtap: np.ndarray | None = None
        self._chunks: list = []
        self._cols_dtype: np.dtype | None = None
        self._chunks_key: tuple = ()
        self._x_shape: tuple[int, ...] = ()
        self._padded_shape: tuple[int, int, int, int] = (0, 0, 0, 0)
        self._width = 0
        self._wide = False
        self._direct = False
        self._rows = False
        self._inner = False

    def release(self) -> None:
        """Drop the padded input and the patch matrix (remade by the next forward): between
        a training step's backward and the next forward they would only add to the peak."""
        self._pad_buf = self._xbuf = self._cols = self._dwide = self._dtap = None
        self._chunks, self._chunks_key = [], ()

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        c, h, w = _chw(input_shape, self.name)
        if c != self.in_channels:
            raise ShapeError(
                f"{self.name}: expects {self.in_channels} input channel(s) but gets {c}; "
                f"set in_channels={c} or change the previous layer"
            )
        kh, kw = self.kernel_size
        p = self.padding
        if h + 2 * p < kh or w + 2 * p < kw:
            raise ShapeError(
                f"{self.name}: a {kh}x{kw} kernel does not fit its {h}x{w} input"
                + (f" (padding {p})" if p else "")
                + "; use a smaller kernel or fewer pooling layers"
            )
        ho = k.output_size(h, kh, self.stride, p)
        wo = k.output_size(w, kw, self.stride, p)
        return (self.out_channels, ho, wo)

    def config(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "name": self.name,
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "kernel_size": list(self.kernel_size),
            "stride": self.stride,
            "padding": self.padding,
            "bias": self.bias,
            "init": self.init,
        }

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        n = x.shape[0]
        c_out, ho, wo = self.output_shape(x.shape[1:])
        kh, kw = self.kernel_size
        p = self.padding
        dtype = np.result_type(x.dtype, self.params["weight"].dtype)
        if n == 0:  # an empty batch gives an empty output
            self._x_shape = x.shape
            return np.zeros((0, c_out, ho, wo), dtype=dtype)
        if x.dtype != dtype:
            x = x.astype(dtype)
        self._rows = _rows(kh, kw, self.in_channels)
        if self._rows:
            self._direct = False
            return self._forward_rows(x, dtype, (ho, wo))
        self._inner = self.few_channels() and (self.batch_inner_ok or INNER_ALL is not None)
        if self._inner:
            self._direct = False
            return self._forward_inner(x, dtype, (ho, wo))
        self._direct = _direct(self.stride, kh, kw, p, c_out, self.in_channels, x.shape)
        if self._direct:
            return self._forward_direct(x, dtype)
        ckk = self.in_channels * kh * kw
        wide = _wide(self.stride, kh, kw, self.in_channels, c_out)
        if wide:  # rows of the padded width: long contiguous runs (see im2col.wide_chunks)
            self._xbuf, xc = k.padded_flat(x, p, kw - 1, self._xbuf)
            width = xc.shape[3]
        else:
            if p:
                self._pad_buf = k.pad_to_cnhw(x, p, self._pad_buf)
                xc = self._pad_buf
            else:
                xc = k.as_cnhw(x)
            width = wo
        fresh = self._cols is None or self._cols.shape != (ckk + 1, n * ho * width)
        cols = self._buffer("_cols", (ckk + 1, n * ho * width), dtype)
        if fresh or cols.dtype != self._cols_dtype:
            cols[ckk] = 1  # the bias row; im2col only ever writes the rows above it
            self._cols_dtype = cols.dtype
        wb = self._weights_with_bias(dtype)
        chunk = _chunk(n, c_out * (ckk + 1) * ho * width) if wide else n
        if chunk < n:
            # Cache blocking: build a block of samples' patches and multiply it while it is
            # still in cache; a few small matmuls beat one large one that streams from memory.
            out = np.empty((c_out, n * ho * width), dtype=dtype)
            key = (id(self._xbuf), id(cols), xc.shape, chunk)
            if self._chunks_key != key:  # the views depend only on the buffers: keep them
                assert self._xbuf is not None  # chunk < n only when wide: set above
                self._chunks = list(k.wide_chunks(self._xbuf, xc.shape, kh, kw, cols, chunk))
                self._chunks_key = key
            for src, dst, cs in self._chunks:
                np.copyto(dst, src)
                np.matmul(wb, cols[:, cs], out=out[:, cs])
        else:
            if wide:
                key = (id(self._xbuf), id(cols), xc.shape, 0)
                if self._chunks_key != key:
                    assert self._xbuf is not None  # set by padded_flat above
                    src = k.wide_chunks(self._xbuf, xc.shape, kh, kw, cols, n)
                    self._chunks, self._chunks_key = list(src), key
                np.copyto(self._chunks[0][1], self._chunks[0][0])
            else:
                k.im2col(xc, kh, kw, self.stride, out=cols[:ckk])
            out = wb @ cols  # (F, N*H'*width): CNHW memory
        self._x_shape = x.shape
        self._padded_shape = xc.shape
        self._width, self._wide = width, wide
        out = out.reshape(c_out, n, ho, width)
        if width != wo:
            out = out[:, :, :, :wo]
        return out.transpose(1, 0, 2, 3)

    def _forward_rows(self, x: np.ndarray, dtype: np.dtype, out_hw: tuple[int, int]) -> np.ndarray:
        """Patches as rows, block by block, none kept (see :mod:`engine.conv_rows`);
        backward needs only the padded NHWC input kept in ``_xbuf``."""
        n = x.shape[0]
        kh, kw = self.kernel_size
        p, f = self.padding, self.out_channels
        ho, wo = out_hw
        self._xbuf = rows.pad_nhwc(x, p, p, self._xbuf)
        wt = self._row_weights(dtype)
        bias = self.params["bias"].astype(dtype, copy=False) if self.bias else None
        out = rows.forward(self._xbuf, wt, bias, kh, kw, self.stride, (ho, wo))
        self._x_shape = x.shape
        return out.reshape(f, n, ho, wo).transpose(1, 0, 2, 3)

    def _forward_inner(self, x: np.ndarray, dtype: np.dtype, out_hw: tuple[int, int]) -> np.ndarray:
        """Samples innermost (see :mod:`engine.conv_inner`); backward needs the padded
        CHWN input in ``_xbuf`` and the patch matrix in ``_cols``."""
        n, c = x.shape[0], self.in_channels
        kh, kw = self.kernel_size
        f = self.out_channels
        ho, wo = out_hw
        self._xbuf = inner.pad_chwn(x, self.padding, self._xbuf)
        self._cols = inner.patch_matrix((c, kh, kw), out_hw, n, dtype, self._cols)
        wb = self._weights_with_bias(dtype)
        out = inner.forward(self._xbuf, wb, kh, kw, self.stride, out_hw, self._cols)
        self._x_shape = x.shape
        return out.reshape(f, ho, wo, n).transpose(3, 0, 1, 2)

    def _backward_inner(self, dout: np.ndarray, input_grad: bool) -> np.ndarray | None:
        """The input gradient is CHWN memory, a view of the padded gradient when padded."""
        assert self._xbuf is not None and self._cols is not None and self._wb is not None
        f = self.out_channels
        kh, kw = self.kernel_size
        ckk = self.in_channels * kh * kw
        d = np.ascontiguousarray(dout.transpose(1, 2, 3, 0), dtype=self._cols.dtype)
        d2 = d.reshape(f, -1)  # a view when dout is CHWN memory, as this layer's output is
        out_hw = (d.shape[1], d.shape[2])
        self._grads_from(inner.weight_grad(self._cols, d2, ckk + 1, out_hw))
        if not input_grad:
            return None
        wt = np.ascontiguousarray(self._wb[:, :ckk].T)
        dxp = inner.input_grad(d2, wt, self._xbuf.shape, kh, kw, self.stride, out_hw)
        p, (h, w) = self.padding, self._x_shape[2:]
        return dxp[:, p : p + h, p : p + w, :].transpose(3, 0, 1, 2)

    def _weights_with_bias(self, dtype: np.dtype) -> np.ndarray:
        """``[weight | bias] (F, C*KH*KW + 1)`` in ``_wb`` (a zero column without a bias):
        times a patch matrix whose last row is ones, the output with its bias added."""
        f = self.out_channels
        wb = self._buffer("_wb", (f, self.params["weight"][0].size + 1), dtype)
        wb[:, :-1] = self.params["weight"].reshape(f, -1)
        wb[:, -1] = self.params["bias"] if self.bias else 0
        return wb

    def _grads_from(self, dwb: np.ndarray) -> None:
        """The weight and bias gradients from ``dwb (C*KH*KW + 1, F)``, the product of a patch
        matrix (its last row ones) with ``dout``."""
        self.grads["weight"][...] = dwb[:-1].T.reshape(self.grads["weight"].shape)
        if self.bias:
            self.grads["bias"][...] = dwb[-1]

    def _row_weights(self, dtype: np.dtype) -> np.ndarray:
        """The weights as ``(KH*KW*C, F)``, rows ordered like a patch row ``(i, j, c)``."""
        f = self.out_channels
        wt = self._buffer(
            "_wb", (self.kernel_size[0], self.kernel_size[1], self.in_channels, f), dtype
        )
        source = self.params["weight"].transpose(2, 3, 1, 0)
        for c0 in range(0, self.in_channels, 64):  # by channel blocks: the reads stay in cache
            wt[:, :, c0 : c0 + 64] = source[:, :, c0 : c0 + 64]  # (512 x 512 x 3x3: 34 -> 8 ms)
        return wt.reshape(-1, f)

    def _backward_rows(self, dout: np.ndarray, input_grad: bool) -> np.ndarray | None:
        assert self._xbuf is not None and self._wb is not None  # set by forward
        f = self.out_channels
        kh, kw = self.kernel_size
        d = np.ascontiguousarray(dout.transpose(0, 2, 3, 1), dtype=self._xbuf.dtype)
        d2 = d.reshape(-1, f)  # (N*H'*W', F): a view when dout is NHWC memory
        out_hw = (d.shape[1], d.shape[2])
        dw = rows.weight_grad(self._xbuf, d2, kh, kw, self.stride, out_hw)
        self.grads["weight"][...] = dw.reshape(kh, kw, self.in_channels, f).transpose(3, 2, 0, 1)
        if self.bias:
            self.grads["bias"][...] = d2.sum(axis=0)
        if not input_grad:
            return None
        weight = self.params["weight"].astype(d.dtype, copy=False)
        wt = self._wb.reshape(-1, f)
        return rows.input_grad(d, weight, wt, self._x_shape, self.stride, self.padding)

    def _forward_direct(self, x: np.ndarray, dtype: np.dtype) -> np.ndarray:
        """Stride 1 with ``F <= C``: no patch matrix (see :func:`engine.im2col.direct_conv`);
        backward needs only the padded input kept in ``_xbuf``."""
        n, _, _, w = x.shape
        kh, kw = self.kernel_size
        p, f = self.padding, self.out_channels
        slack = k.direct_slack(kh, kw, w + 2 * p)
        self._xbuf, xc = k.padded_flat(x, p, slack, self._xbuf)
        weight = self.params["weight"].astype(dtype, copy=False)
        self._weights_with_bias(dtype)  # in _wb: the input gradient's weights
        taps = np.ascontiguousarray(weight.transpose(2, 3, 0, 1))  # (KH, KW, F, C)
        bias = self.params["bias"].astype(dtype, copy=False) if self.bias else None
        out = k.direct_conv(self._xbuf, xc.shape, taps, bias)
        self._x_shape, self._padded_shape = x.shape, xc.shape
        hp, wp = xc.shape[2], xc.shape[3]
        out4 = out.reshape(f, n, hp, wp)[:, :, : hp - kh + 1, : wp - kw + 1]
        return out4.transpose(1, 0, 2, 3)

    def _backward_direct(self, dout: np.ndarray, input_grad: bool) -> np.ndarray | None:
        f = self.out_channels
        n, c, h, w = self._x_shape
        kh, kw = self.kernel_size
        shape = self._padded_shape
        assert self._xbuf is not None  # set by forward
        ho, wo = dout.shape[2], dout.shape[3]
        size = f * n * shape[2] * shape[3]
        d4 = k.workspace(size, self._xbuf.dtype, _PADDED).reshape(f, n, shape[2], shape[3])
        d4[:, :, :ho, :wo] = dout.transpose(1, 0, 2, 3)
        d4[:, :, ho:] = 0  # the junk outputs
        d4[:, :, :ho, wo:] = 0
        d2 = d4.reshape(f, -1)
        dw = k.direct_weight_grad(self._xbuf, shape, d2, kh, kw)
        self.grads["weight"][...] = dw.transpose(3, 2, 0, 1)
        if self.bias:
            self.grads["bias"][...] = d2.sum(axis=1)
        if not input_grad:
            return None
        return self._input_grad_wide(dout, n, c, h, w).transpose(1, 0, 2, 3)

    def _buffer(self, attr: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """A buffer kept between calls, remade when the shape or dtype changes (zeroed)."""
        buf = getattr(self, attr, None)
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            buf = np.zeros(shape, dtype=dtype)
            setattr(self, attr, buf)
        return buf

    def backward(self, dout: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        if self._direct and self._x_shape:
            return self._backward_direct(dout, input_grad)
        if self._rows and self._x_shape:
            return self._backward_rows(dout, input_grad)
        if self._inner and self._x_shape:
            return self._backward_inner(dout, input_grad)
        f = self.out_channels
        cols = self._cols
        if cols is None:
            raise RuntimeError(f"{self.name}: backward() called before forward()")
        n, c, h, w = self._x_shape
        ho, wo = dout.shape[2], dout.shape[3]
        if self._width != wo:
            # dout into the wide layout; the junk columns of the buffer stay zero
            d4 = self._buffer("_dwide", (f, n, ho, self._width), cols.dtype)
            d4[:, :, :, :wo] = dout.transpose(1, 0, 2, 3)
            d2 = d4.reshape(f, -1)
        else:
            d2 = dout.transpose(1, 0, 2, 3).reshape(f, -1)  # a view when dout is CNHW memory
        # (C*KH*KW + 1, F): weight and bias gradients in one product (cols @ d2.T runs
        # about twice as fast in OpenBLAS as d2 @ cols.T for these long, thin shapes)
        wide = self._wide
        chunk = _chunk(n, f * cols.shape[0] * ho * self._width) if wide else n
        if chunk < n:  # cache blocking, as in forward
            step = chunk * ho * self._width
            dwb = np.zeros((cols.shape[0], f), dtype=cols.dtype)
            tmp = np.empty_like(dwb)
            for a in range(0, cols.shape[1], step):
                np.matmul(cols[:, a : a + step], d2[:, a : a + step].T, out=tmp)
                dwb += tmp
        else:
            dwb = cols @ d2.T
        ckk = cols.shape[0] - 1
        self._grads_from(dwb)
        if not input_grad:
            return None
        p = self.padding
        kh, kw = self.kernel_size
        assert self._wb is not None  # set by forward
        if _input_grad_as_conv(self.stride, kh, kw, p, f, c):
            return self._input_grad_wide(dout, n, c, h, w).transpose(1, 0, 2, 3)
        if not wide:  # the patch gradients block by block of samples (see engine.conv)
            dx = conv.input_grad(d2, self._wb[:, :ckk], self._x_shape, kh, kw, self.stride, p)
            return dx.transpose(1, 0, 2, 3)
        # dx = sum over kernel offsets (i, j) of weight[:, :, i, j].T @ dout, shifted by
        # (i, j): one small matmul per offset whose (C, N*H'*Wp) result is still in cache
        # when it is added, instead of a (C*KH*KW, N*H'*Wp) matrix of patch gradients
        # written to memory and read back by col2im.
        flat = np.zeros(int(np.prod(self._padded_shape)) + kw - 1, dtype=d2.dtype)
        taps = np.ascontiguousarray(
            self._wb[:, :ckk].reshape(f, c, kh, kw).transpose(2, 3, 1, 0)
        )  # (KH, KW, C, F)
        tmp = self._buffer("_dtap", (c, d2.shape[1]), d2.dtype)
        for i in range(kh):
            for j in range(kw):
                np.matmul(taps[i, j], d2, out=tmp)
                k.shifted_view(flat, self._padded_shape, kh, i, j)[...] += tmp.reshape(c, n, -1)
        dxp = flat[: flat.size - kw + 1].reshape(self._padded_shape)
        return dxp[:, :, p : p + h, p : p + w].transpose(1, 0, 2, 3)

    def _input_grad_wide(self, dout: np.ndarray, n: int, c: int, h: int, w: int) -> np.ndarray:
        """``dx`` of a stride-1 convolution, as CNHW memory ``(C, N, H, W)``: itself a stride-1
        convolution, of ``dout`` zero-padded by ``K-1-padding`` with the kernel flipped in both
        axes and its channel axes swapped. One wide im2col and one matmul with ``F*K*K`` inner
        products (like forward), instead of ``K*K`` thin matmuls added into shifted windows.
        The patches go into the forward's ``cols`` buffer when it is large enough (its columns
        are no longer needed once the weight gradient is taken), else into the thread's
        workspace (:func:`engine.im2col.workspace`), as does the padded ``dout``."""
        f = self.out_channels
        kh, kw = self.kernel_size
        assert self._wb is not None  # set by forward
        if dout.dtype != self._wb.dtype:
            dout = dout.astype(self._wb.dtype)
        if _input_grad_direct(f, c):
            return self._input_grad_direct(dout, n, c, h, w)
        pad = kh - 1 - self.padding
        size = f * n * (h + kh - 1) * (w + kw - 1) + kw - 1
        dpad = k.workspace(size, self._wb.dtype, _PADDED)  # its border is zeroed, then the interior
        dpad[...] = 0
        dpad, dc = k.padded_flat(dout, pad, kw - 1, dpad)
        wq = dc.shape[3]  # W + KW - 1: the wide rows of dx
        shape = (f * kh * kw, n * h * wq)
        size = shape[0] * shape[1]
        reuse = (
            self._cols is not None and self._cols.size >= size and self._cols.dtype == dout.dtype
        )
        if reuse:
            assert self._cols is not None
            cols = self._cols.reshape(-1)[:size].reshape(shape)
        else:
            cols = k.workspace(size, dout.dtype, _PATCHES).reshape(shape)
        wt = self._wb[:, : c * kh * kw].reshape(f, c, kh, kw)[:, :, ::-1, ::-1]
        wmat = np.ascontiguousarray(wt.transpose(1, 0, 2, 3)).reshape(c, shape[0])
        chunk = _chunk(n, c * shape[0] * h * wq)
        out = k.wide_matmul(dpad, dc.shape, kh, kw, cols, wmat, chunk)
        if reuse:
            assert self._cols is not None
            self._cols[-1] = 1  # the bias row forward relies on (it may have been overwritten)
        return out.reshape(c, n, h, wq)[:, :, :, :w]

    def _input_grad_direct(self, dout: np.ndarray, n: int, c: int, h: int, w: int) -> np.ndarray:
        """:meth:`_input_grad_wide`'s convolution (``dout`` padded by ``K-1-padding``, kernel
        flipped, channel axes swapped) without patches: :func:`engine.im2col.direct_conv`
        over the padded ``dout`` in the thread's workspace. Same result as CNHW ``(C, N, H,
        W)`` memory."""
        f = self.out_channels
        kh, kw = self.kernel_size
        assert self._wb is not None  # set by forward
        pad = kh - 1 - self.padding
        hp, wp = h + kh - 1, w + kw - 1
        slack = k.direct_slack(kh, kw, wp)
        dpad = k.workspace(f * n * hp * wp + slack, self._wb.dtype, _PADDED)
        dpad[...] = 0  # the border and slack must read zero: zeroed, then the interior written
        dpad, dc = k.padded_flat(dout, pad, slack, dpad)
        wt = self._wb[:, : c * kh * kw].reshape(f, c, kh, kw)[:, :, ::-1, ::-1]
        taps = np.ascontiguousarray(wt.transpose(2, 3, 1, 0))  # (KH, KW, C, F)
        out = k.direct_conv(dpad, dc.shape, taps, None)
        return out.reshape(c, n, hp, wp)[:, :, :h, :w]


class ReLU(Layer):
    """``y = max(x, 0)``; ``dx = dout * (x > 0)``."""

    kind = "relu"

    def forward(self, x: np.ndarray, training: bool = False, inplace: bool = False) -> np.ndarray:
        """``inplace``: the result overwrites ``x`` (the executor asks for it only when no one
        else reads or keeps ``x``)."""
        # x * (x > 0) rather than np.maximum(x, 0): the mask is needed for backward anyway,
        # and a bool multiply is faster than maximum against a scalar
        self._mask = np.greater(x, 0)
        return np.multiply(x, self._mask, out=x if inplace else None)

    def backward(self, dout: np.ndarray, input_grad: bool = True) -> np.ndarray:
        return np.multiply(dout, self._mask)

    def release(self) -> None:
        self._mask = None


class Tanh(Layer):
    """``y = tanh(x)``; ``dx = dout * (1 - y**2)``."""

    kind = "tanh"

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self._y = np.tanh(x)
        return self._y

    def backward(self, dout: np.ndarray, input_grad: bool = True) -> np.ndarray:
        y = self._y
        dx = np.multiply(y, y)
        np.subtract(1, dx, out=dx)
        dx *= dout
        return dx

    def release(self) -> None:
        self._y = None


class Sigmoid(Layer):
    """``y = 1 / (1 + exp(-x))`` (computed as ``(1 + tanh(x/2)) / 2``, which never overflows);
    ``dx = dout * y * (1 - y)``."""

    kind = "sigmoid"

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        half = x.dtype.type(0.5) if x.dtype.kind == "f" else 0.5
        y = np.tanh(x * half)
        y += 1
        y *= half
        self._y = y
        return y

    def backward(self, dout: np.ndarray, input_grad: bool = True) -> np.ndarray:
        y = self._y
        dx = np.subtract(1, y)
        dx *= y
        dx *= dout
        return dx

    def release(self) -> None:
        self._y = None


class _Pool2D(Layer):
    """Pooling windows of ``size x size`` every ``stride`` pixels over an input padded by
    ``padding`` on each side (at most ``size // 2``, as PyTorch requires), floor mode::

        H' = 1 + (H + 2*padding - size) // stride

    Windows overlap when ``stride < size`` (AlexNet's 3x3 stride 2)."""

    def __init__(
        self, size: int, stride: int | None = None, padding: int = 0, *, name: str = ""
    ) -> None:
        super().__init__(name)
        self.size = int(size)
        self.stride = int(stride) if stride is not None else self.size
        self.padding = int(padding)
        if self.size < 1 or self.stride < 1:
            raise ShapeError(f"{self.name}: pooling size and stride must be >= 1")
        if not 0 <= self.padding <= self.size // 2:
            raise ShapeError(
                f"{self.name}: pooling padding must be between 0 and half the window "
                f"({self.size // 2}), got {self.padding}"
            )
        self._x_shape: tuple[int, ...] = ()

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        c, h, w = _chw(input_shape, self.name)
        s, p = self.size, self.padding
        if h + 2 * p < s or w + 2 * p < s:
            raise ShapeError(
                f"{self.name}: a {s}x{s} pooling window does not fit its {h}x{w} input; "
                "use fewer pooling layers, padding or a larger input"
            )
        return (c, k.output_size(h, s, self.stride, p), k.output_size(w, s, self.stride, p))

    def config(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "name": self.name,
            "size": self.size,
            "stride": self.stride,
            "padding": self.padding,
        }

    def _padded(self, x: np.ndarray, fill: float) -> np.ndarray:
        p = self.padding
        if not p:
            return x
        n, c, h, w = x.shape
        xp = np.full((n, c, h + 2 * p, w + 2 * p), fill, dtype=x.dtype)
        xp[:, :, p : p + h, p : p + w] = x
        return xp

    def _crop(self, dxp: np.ndarray) -> np.ndarray:
        p = self.padding
        if not p:
            return dxp
        _, _, h, w = self._x_shape
        return dxp[:, :, p : p + h, p : p + w]


class MaxPool2D(_Pool2D):
    """Max over each ``size x size`` window (floor mode; padding counts as ``-inf``, as in
    PyTorch, so it never wins).

    x ``(N,C,H,W)`` -> ``(N,C,H',W')``, ``H' = 1 + (H + 2*padding - size) // stride``. Backward
    sends each gradient to the first maximum of its window (as PyTorch does).
    """

    kind = "maxpool2d"
    _state: tuple  # maxpool2x2_forward's or maxpool_forward's

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self.output_shape(x.shape[1:])
        self._x_shape = x.shape
        fast = self.size == self.stride == 2 and not self.padding
        if fast and x.shape[2] % 2 == 0 and x.shape[3] % 2 == 0:
            y, self._state = pooling.maxpool2x2_forward(x, training)  # the common case: reshaping
            self._fast = True
            return y
        y, self._state = pooling.maxpool_forward(x, self.size, self.stride, self.padding, training)
        self._fast = False
        return y

    def backward(self, dout: np.ndarray, input_grad: bool = True) -> np.ndarray:
        if self._fast:
            assert isinstance(self._state, tuple)
            return pooling.maxpool2x2_backward(dout, self._state)
        assert isinstance(self._state, tuple)
        return pooling.maxpool_backward(dout, self._state)


class AvgPool2D(_Pool2D):
    """Mean over each ``size x size`` window (floor mode); padding counts as zeros in the mean
    (PyTorch's default ``count_include_pad=True``); gradient ``dout/size**2`` to every input of
    the window."""

    kind = "avgpool2d"

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self.output_shape(x.shape[1:])
        self._x_shape = x.shape
        xp = self._padded(x, 0.0)
        self._xp_shape = xp.shape
        return k.avgpool_forward(xp, self.size, self.stride)

    def backward(self, dout: np.ndarray, input_grad: bool = True) -> np.ndarray:
        return self._crop(k.avgpool_backward(dout, self._xp_shape, self.size, self.stride))


class Flatten(Layer):
    """``(N, C, H, W) -> (N, C*H*W)`` in C, H, W order (as ``torch.flatten(x, 1)``)."""

    kind = "flatten"

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (int(np.prod(input_shape)),)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self._x_shape = x.shape
        return x.reshape(x.shape[0], math.prod(x.shape[1:]))  # (math: no array made)

    def backward(self, dout: np.ndarray, input_grad: bool = True) -> np.ndarray:
        return dout.reshape(self._x_shape)


class Dense(Layer):
    """Fully connected: x ``(N, in)`` -> ``y = x @ weight.T + bias`` ``(N, out)``.

    params ``weight (out, in)`` (like ``torch.nn.Linear``), ``bias (out,)``.
    Backward: ``dweight = dout.T @ x``, ``dbias = sum_n dout``, ``dx = dout @ weight``.
    """

    kind = "dense"

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        rng: np.random.Generator | None = None,
        init: str = "torch",
        name: str = "",
    ) -> None:
        super().__init__(name)
        if in_features < 1 or out_features < 1:
            raise ShapeError(f"{self.name}: feature counts must be >= 1")
        self.in_features, self.out_features, self.init = int(in_features), int(out_features), init
        rng = rng if rng is not None else np.random.default_rng()
        shape = (self.out_features, self.in_features)
        self.params = {
            "weight": init_weight(shape, self.in_features, self.out_features, init, rng),
            "bias": init_bias(self.out_features, self.in_features, init, rng),
        }
        self.grads = {key: np.zeros_like(p) for key, p in self.params.items()}

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(input_shape) != 1:
            raise ShapeError(
                f"{self.name}: a dense layer needs flat input (features,), "
                f"got {tuple(input_shape)}; "
                "put a Flatten layer before it"
            )
        if input_shape[0] != self.in_features:
            raise ShapeError(
                f"{self.name}: expects {self.in_features} input features "
                f"but gets {input_shape[0]}; "
                f"set in_features={input_shape[0]}"
            )
        return (self.out_features,)

    def config(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "name": self.name,
            "in_features": self.in_features,
            "out_features": self.out_features,
            "init": self.init,
        }

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self.output_shape(x.shape[1:])
        self._x = x
        y = x @ self.params["weight"].T
        y += self.params["bias"]
        return y

    def backward(self, dout: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        np.matmul(dout.T, self._x, out=self.grads["weight"])
        np.sum(dout, axis=0, out=self.grads["bias"])
        if not input_grad:
            return None
        return dout @ self.params["weight"]


# Cache blocking of a convolution's matmul over the batch: blocks of samples whose
# matmul has at most this many multiply-adds (about 0.5-1 MB of patches) run one after the
# other; below 4 samples per block the Python overhead eats the gain, so it is not used.
BLOCK_MACS = 700_000


def _input_grad_as_conv(stride: int, kh: int, kw: int, padding: int, f: int, c: int) -> bool:
    """Whether :meth:`Conv2D._input_grad_wide` serves this convolution (see there). Its
    patches of ``dout`` have ``F*K*K`` rows: measured (1 thread, batch 64) it takes 0.4-0.8x
    the time of the per-offset path when ``F <= C`` (3x3 and 1x1), about 1.0x at ``F = 1.5C``
    and 2-3x at ``F = 2C`` with 5x5 kernels (LeNet's conv2), so it serves ``F <= C`` only."""
    return stride == 1 and kh == kw and padding <= kh - 1 and f <= c


def _input_grad_direct(f: int, c: int) -> bool:
    """Whether :meth:`Conv2D._input_grad_wide`'s convolution runs without patches
    (:meth:`Conv2D._input_grad_direct`): when ``4F >= 3C``. Its tap products ``(C, F) @ (F,
    block)`` then have enough inner products; measured (1 thread, batch 64, input gradient
    alone, direct/wide time): 16->16 at 32 px 0.69, 32->32 at 16 px 0.77, 64->64 at 8 px
    0.88, 24->12 at 32 px 1.04, 60->12 at 32 px 1.8."""
    return 4 * f >= 3 * c


def _direct(
    stride: int, kh: int, kw: int, padding: int, f: int, c: int, x_shape: tuple[int, ...]
) -> bool:
    """Whether a convolution runs without a patch matrix (:meth:`Conv2D._forward_direct`):
    stride 1 with ``F <= C`` (its input gradient is then a convolution too, which needs no
    patches kept either), and the padded grid it computes over at most 1.3 times the output
    (3x3 at 16 px and up; at 8 px half its products would be junk). Measured (1 thread,
    batch 64, forward + backward): densenet's 60->12 at 32 px 0.75x the im2col path's time,
    16->16 and 1x1 convolutions about 1.0x, 32->32 at 16 px 1.1x; the patch matrices no
    longer kept are most of a residual network's training memory."""
    if not _input_grad_as_conv(stride, kh, kw, padding, f, c):
        return False
    hp, wp = x_shape[2] + 2 * padding, x_shape[3] + 2 * padding
    return hp * wp <= 1.3 * (hp - kh + 1) * (wp - kw + 1)


def _rows(kh: int, kw: int, c: int) -> bool:
    """Whether a convolution runs in rows layout (:meth:`Conv2D._forward_rows`): a kernel
    larger than 1x1 on at least :data:`ROWS_MIN_CHANNELS` input channels with at least
    :data:`ROWS_MIN` patch entries. Measured (1 thread, batch 64, forward + backward, CPU
    time, best of 9, rows / the path it replaced): against the patch matrix kept whole,
    0.55-0.70 on AlexNet's and ZF Net's 3x3 and 5x5 convolutions, 0.68-0.85 on ResNet's and
    VGG's 3x3 ones at 8-16 px, 0.81-0.85 at stride 2; against the wide patch rows 0.83-0.86
    (16->32 3x3 at 16 px); against the direct products 0.76-0.91 (3x3 at 16-32 px, 16 to 60
    channels). It loses where a patch row is short: 1.25 for LeNet's 6->16 5x5 at 14 px,
    1.2-1.7 for 3-channel first layers, 4.4 for a 1-channel one; and on 1x1 convolutions
    (1.04-1.40), which all keep their paths."""
    if ROWS_ALL is not None:
        return ROWS_ALL
    return _rows_shape(kh, kw, c)


def _rows_shape(kh: int, kw: int, c: int) -> bool:
    """:func:`_rows` by the shape alone (what the batch-inner layout leaves to rows)."""
    return kh * kw > 1 and c >= ROWS_MIN_CHANNELS and c * kh * kw >= ROWS_MIN


def _inner(stride: int, kh: int, kw: int, c: int, f: int) -> bool:
    """Whether a convolution runs with the samples innermost (:mod:`engine.conv_inner`):
    a kernel larger than 1x1 that the rows layout does not take (few channels: a patch row
    is short in the other layouts), unless stride 1 with ``F <= C`` (the direct products
    need no patch matrix). Measured (1 thread, batch 64, forward + backward, CPU
    time, median of 25 alternating, inner / the path it replaced): LeNet's 6->16 5x5 at
    14 px 0.68-0.73, colour first layers 0.76-0.96 (3->16..32, 3x3 to 7x7, stride 1 and 2),
    8->16..32 3x3 at 16 px 0.66-0.72, one sample 0.69-0.85; LeNet's 1->6 5x5 at 28 px
    1.02-1.09 alone but 0.82-0.90 in a LeNet-5 step, where the pool that follows reads its
    CHWN output in place; 12->12 3x3 (direct) 1.12, excluded."""
    if INNER_ALL is not None:
        return INNER_ALL
    return kh * kw > 1 and not _rows_shape(kh, kw, c) and (f > c or stride > 1)


INNER_ALL: bool | None = None  # tests force the batch-inner path on (True) or off (False)


# workspace slots (engine.im2col.workspace) of a convolution's backward pass: patches of dout,
# and the padded dout (or, on the direct path, dout laid over the padded grid)
_PATCHES, _PADDED = "conv2d.patches", "conv2d.padded"

ROWS_MIN, ROWS_MIN_CHANNELS = 144, 16  # where the rows layout pays (see _rows)
ROWS_ALL: bool | None = None  # tests force the rows path on (True) or off (False)


def _wide(stride: int, kh: int, kw: int, c: int, f: int) -> bool:
    """Whether a convolution that keeps a patch matrix builds it in the "wide" layout (see
    :func:`engine.im2col.wide_chunks`): stride 1 with few outputs or few patch rows. The wide
    rows make the copies long and contiguous, which pays when copying dominates (``F`` or
    ``C*KH*KW`` small: LeNet, densenet's 12-output convolutions); with many outputs and rows
    the product dominates and its ``Wp/W'`` junk columns cost more than the copies save.
    Measured (1 thread, batch 64, forward + backward, plain/wide time): 32->64 5x5 at 16 px
    0.85, 64->96 and 96->64 3x3 at 8 px 0.80-0.83, 24->48 3x3 at 16 px 0.89; 8->16 5x5 at
    8 px 1.11, 42->12 3x3 at 8 px 1.08."""
    return stride == 1 and (f < WIDE_F or c * kh * kw < WIDE_ROWS)


WIDE_F, WIDE_ROWS = 32, 200  # outputs and patch rows below which the wide layout pays


def _chunk(n: int, macs_per_sample: int) -> int:
    c = BLOCK_MACS // max(1, macs_per_sample)
    return c if 4 <= c < n else n


def _chw(input_shape: tuple[int, ...], name: str) -> tuple[int, int, int]:
    if len(input_shape) != 3:
        raise ShapeError(
            f"{name}: expects image-shaped input (C, H, W), got {tuple(input_shape)}; "
            "put convolution and pooling layers before Flatten"
        )
    c, h, w = (int(v) for v in input_shape)
    return c, h, w


INITS = ("torch", "he", "xavier")

INIT_NOTE = (
    "LeNet starts with He initialisation (weights drawn from N(0, 2/fan_in), biases 0), "
    "made for ReLU networks: in the short runs a laptop allows it learns faster than "
    "PyTorch's default (uniform ±1/√fan_in). The price is a first loss of 3 to 6 "
    "instead of ln K (2.30 for 10 classes, a uniform guess): the random network's scores "
    "are already confident, and wrong. Layers with init 'torch' (the default of a graph "
    "node) start near ln K."
)


def init_weight(
    shape: tuple[int, ...],
    fan_in: int,
    fan_out: int,
    init: str,
    rng: np.random.Generator | None,
) -> np.ndarray:
    """Initial weights, float32:

    - ``"torch"``: PyTorch's default for ``Conv2d``/``Linear`` (``kaiming_uniform_`` with
      ``a=sqrt(5)``): ``uniform(+-1/sqrt(fan_in))``. An untrained network then starts near the
      loss of a uniform guess (ln K).
    - ``"he"``: ``normal(0, sqrt(2/fan_in))`` (for ReLU);
    - ``"xavier"``: Glorot ``uniform(+-sqrt(6/(fan_in+fan_out)))`` (for tanh/sigmoid).

    ``rng=None`` draws fresh entropy, so two layers built without a generator differ; the model
    builders always pass one (seed 0 by default), so a build is repeatable.
    """
    rng = rng if rng is not None else np.random.default_rng()
    if init == "torch":
        lim = 1.0 / np.sqrt(fan_in)
        w = rng.uniform(-lim, lim, size=shape).astype(np.float32)
    elif init == "he":
        w = rng.standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt(2.0 / fan_in))
    elif init == "xavier":
        lim = np.sqrt(6.0 / (fan_in + fan_out))
        w = rng.uniform(-lim, lim, size=shape).astype(np.float32)
    else:
        raise ShapeError(f"unknown init {init!r}; use one of {', '.join(INITS)}")
    return w


def init_bias(size: int, fan_in: int, init: str, rng: np.random.Generator) -> np.ndarray:
    """Initial biases, float32: ``uniform(+-1/sqrt(fan_in))`` for ``"torch"`` (PyTorch's
    default), zeros for ``"he"`` and ``"xavier"``."""
    if init == "torch":
        lim = 1.0 / np.sqrt(fan_in)
        return rng.uniform(-lim, lim, size=size).astype(np.float32)
    return np.zeros(size, dtype=np.float32)


LAYER_TYPES: dict[str, type[Layer]] = {
    cls.kind: cls for cls in (Conv2D, ReLU, Tanh, Sigmoid, MaxPool2D, AvgPool2D, Flatten, Dense)
}


def layer_types() -> dict[str, type[Layer]]:
    """Every layer kind by its config ``type``: these and :mod:`engine.blocks`'s."""
    from engine.blocks import BLOCK_TYPES  # imports this module: imported on first use

    return {**LAYER_TYPES, **BLOCK_TYPES}


def layer_from_config(cfg: dict[str, Any], rng: np.random.Generator | None = None) -> Layer:
    """Rebuild a layer from :meth:`Layer.config` (fresh random weights from ``rng``)."""
    if not isinstance(cfg, dict):
        raise ShapeError(f"a layer must be described by a JSON object, got {str(cfg)[:80]}")
    cfg = dict(cfg)
    kind = cfg.pop("type", None)
    types = layer_types()
    cls = types.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ShapeError(f"unknown layer type {kind!r}; known: {', '.join(types)}")
    if cls in (Conv2D, Dense):
        cfg["rng"] = rng
    _check_fields(cls, kind, cfg)
    try:
        return cls(**cfg)
    except TypeError as exc:
        raise ShapeError(
            f"bad arguments for a {kind} layer {cfg.get('name', '')!r}: {exc}"
        ) from None


def _check_fields(cls: type[Layer], kind: str, cfg: dict[str, Any]) -> None:
    """Name a field the layer does not take, or one it needs and lacks, in the words of the
    config (Python's "Conv2D.__init__() got an unexpected keyword argument" named a class)."""
    params = inspect.signature(cls).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    where = f"{kind} layer {short_repr(cfg.get('name', ''))}"
    fields = [n for n in params if n != "rng"]
    unknown = [k for k in cfg if k not in params]
    if unknown:
        raise ShapeError(
            f"{where}: unknown field {short_repr(unknown[0])}; its fields are {', '.join(fields)}"
        )
    missing = [n for n, p in params.items() if p.default is p.empty and n not in cfg]
    if missing:
        raise ShapeError(f"{where}: the field {missing[0]!r} is missing")
