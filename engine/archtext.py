"""The text form of a custom network, the same in the Train tab and ``convscope train --arch``.

Layers are written in order, separated by commas (or new lines)::

    conv 16 3, relu, conv 16 3, relu, maxpool 2, conv 32 3, relu, maxpool 2,
    flatten, dense 64, relu, dropout 0.5, dense 10

See :data:`GRAMMAR` for every layer. The last layer gives the class scores: if the text ends
with ``dense N``, N must equal the number of classes; if it ends with anything else, a final
``dense`` with one output per class (after a ``flatten`` when needed) is added for you. An error
names the bad token, its item number and its column, e.g.
``item 3, column 18: 'x' in 'conv 16 x': the kernel size must be a whole number >= 1``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from engine.errors import ShapeError, short_repr
from engine.graphspec import SpecBuilder
from engine.modelsize import MAX_NODES

GRAMMAR = """\
conv OUT K             OUT filters of KxK, "same" padding (odd K), stride 1
conv OUT K valid       no padding: the map shrinks by K-1
conv OUT K stride S    stride S (combine with valid in either order: conv OUT K valid stride S)
batchnorm              BatchNorm over each channel (also: bn)
relu | tanh | sigmoid  activation
maxpool N [stride S]   NxN max pooling, stride N unless given
avgpool N [stride S]   NxN average pooling
globalavgpool          average of each map: (C, H, W) -> (C,)
flatten                maps -> one vector (C*H*W)
dropout P              drop a fraction P (0 <= P < 1) of the values while training
dense N                fully connected layer with N outputs
The last layer gives the class scores: end with 'dense K' (K = number of classes) or leave it
out and a final dense layer (after a flatten if needed) is added."""

LAYER_WORDS = (
    "conv",
    "batchnorm",
    "relu",
    "tanh",
    "sigmoid",
    "maxpool",
    "avgpool",
    "globalavgpool",
    "flatten",
    "dropout",
    "dense",
)
MAX_WIDTH = 4096  # channels or features of one layer
MAX_KERNEL = 31


class ArchTextError(ShapeError):
    """A custom network's text that does not parse or does not fit its input; ``column``
    (1-based, in the whole text) and ``length`` locate the token at fault (0 when none), so
    an editor can mark it. ``shapes`` is True when the text reads as layers and it is their
    shapes that do not fit (the input, each other or the classes): a diagram can say so,
    where for a text that does not read it can only ask to fix the text."""

    def __init__(
        self, message: str, column: int = 0, length: int = 0, *, shapes: bool = False
    ) -> None:
        super().__init__(message)
        self.column = column
        self.length = length
        self.shapes = shapes


@dataclass(frozen=True)
class Token:
    text: str
    item: int  # 1-based item number
    column: int  # 1-based column in the whole text


def _items(text: str) -> Iterator[list[Token]]:
    """Split into items (by commas and new lines) of tokens (by spaces), keeping positions;
    one at a time, so that a pasted million items is refused at the first one too many."""
    count = 0
    for m in re.finditer(r"[^,\n]+", text):
        toks = [
            Token(t.group(), count + 1, m.start() + t.start() + 1)
            for t in re.finditer(r"\S+", m.group())
        ]
        if toks:
            count += 1
            yield toks


def _fail(tok: Token, item: list[Token], why: str, *, shapes: bool = False) -> ArchTextError:
    """The error at ``tok`` (quoted cut short: a pasted 200,000-character token stays one
    readable line; ``column`` and ``length`` still mark all of it)."""
    whole = short_repr(" ".join(t.text for t in item))
    return ArchTextError(
        f"item {tok.item}, column {tok.column}: {short_repr(tok.text)} in {whole}: {why}"
        + non_ascii_note(tok.text),
        tok.column,
        len(tok.text),
        shapes=shapes,
    )


def _int(item: list[Token], i: int, what: str, hi: int) -> int:
    if i >= len(item):
        raise _fail(item[-1], item, f"{what} is missing")
    tok = item[i]
    # ASCII digits, few enough for int() (Python refuses to convert over 4,300 of them)
    if not re.fullmatch(r"[0-9]{1,9}", tok.text) or not 1 <= int(tok.text) <= hi:
        raise _fail(tok, item, f"{what} must be a whole number from 1 to {hi}")
    return int(tok.text)


def _stride(item: list[Token], i: int) -> tuple[int | None, int]:
    """An optional ``stride S`` at ``item[i]``; returns (S or None, the index after it)."""
    if i < len(item) and item[i].text.lower() == "stride":
        return _int(item, i + 1, "the stride", 64), i + 2
    return None, i


def _conv_options(item: list[Token], usage: str) -> tuple[int | None, int | None]:
    """``valid``/``same`` and ``stride S`` after ``conv OUT K``, in either order, each once:
    returns (padding: 0 for valid, None for same; stride or None)."""
    padding: int | None = None
    stride: int | None = None
    seen: set[str] = set()
    i = 3
    while i < len(item):
        word = item[i].text.lower()
        key = "padding" if word in ("valid", "same") else word
        if key in seen:
            raise _fail(item[i], item, f"given twice; write {usage!r}")
        if word in ("valid", "same"):
            padding, i = (0 if word == "valid" else None), i + 1
        elif word == "stride":
            stride, i = _stride(item, i)
        else:
            _end(item, i, usage)
        seen.add(key)
    return padding, stride


def _end(item: list[Token], i: int, usage: str) -> None:
    if i < len(item):
        raise _fail(item[i], item, f"unexpected; write {usage!r}")


def non_ascii_note(text: str) -> str:
    """``"; 'о' (U+043E CYRILLIC SMALL LETTER O) is not an ASCII character: retype it"`` for
    the first character of ``text`` outside ASCII, else ``""``: a pasted look-alike ('cоnv',
    '１６', a zero-width space) reads as the right word in a message that refuses it."""
    found = re.search(r"[^\x00-\x7f]", text)
    if found is None:
        return ""
    ch = found.group()
    name = unicodedata.name(ch, "")
    return (
        f"; {ch!r} (U+{ord(ch):04X}{' ' + name if name else ''}) is not an ASCII character: "
        "retype it"
    )


class _Namer:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def __call__(self, prefix: str) -> str:
        self.counts[prefix] = self.counts.get(prefix, 0) + 1
        return f"{prefix}{self.counts[prefix]}"


def _add(b: SpecBuilder, x: str, item: list[Token], name: _Namer) -> str:
    """Append the node(s) of one item; returns the new output node."""
    word = item[0].text.lower()
    if word == "conv":
        usage = "conv OUT K [valid] [stride S]"
        out = _int(item, 1, "the number of filters", MAX_WIDTH)
        k = _int(item, 2, "the kernel size", MAX_KERNEL)
        padding, stride = _conv_options(item, usage)
        if padding is None and k % 2 == 0:
            raise _fail(item[2], item, "'same' padding needs an odd kernel size; add 'valid'")
        return b.conv(name("conv"), x, out, k, stride or 1, padding)
    if word in ("batchnorm", "bn"):
        _end(item, 1, "batchnorm")
        return b.bn(name("bn"), x)
    if word in ("relu", "tanh", "sigmoid"):
        _end(item, 1, word)
        return b.act(name(word), x, word)
    if word in ("maxpool", "avgpool"):
        size = _int(item, 1, "the pooling size", 64)
        stride, i = _stride(item, 2)
        _end(item, i, f"{word} N [stride S]")
        return b.pool(name("pool"), x, size, stride, kind=word[:3])
    if word == "globalavgpool":
        _end(item, 1, word)
        return b.gap(name("gap"), x)
    if word == "flatten":
        _end(item, 1, word)
        return b.flatten(name("flatten"), x)
    if word == "dropout":
        if len(item) < 2:
            raise _fail(item[0], item, "the fraction to drop is missing; write 'dropout 0.5'")
        try:
            p = float(item[1].text)
        except ValueError:
            p = -1.0
        if not 0.0 <= p < 1.0:
            raise _fail(item[1], item, "the fraction to drop must be a number in [0, 1)")
        _end(item, 2, "dropout P")
        return b.dropout(name("drop"), x, p)
    if word == "dense":
        n = _int(item, 1, "the number of outputs", MAX_WIDTH)
        _end(item, 2, "dense N")
        return b.dense(name("fc"), x, n)
    raise _fail(item[0], item, f"unknown layer; use one of {', '.join(LAYER_WORDS)}")


def to_spec(text: str, input_shape: Sequence[int], num_classes: int | None) -> dict[str, Any]:
    """The graph spec of ``text`` for ``input_shape (C, H, W)`` and ``num_classes`` outputs
    (``None``: only check the text and its shapes, before the classes are known; no classifier
    is added then).

    Node names follow the layer kinds: ``conv1, conv2, ...``, ``bn1``, ``relu1``, ``pool1``,
    ``gap1``, ``flatten1``, ``drop1``, ``fc1, fc2, ...`` (the names of the PyTorch module's
    attributes and of the model file's arrays).
    """
    items: list[list[Token]] = []
    for item in _items(text):  # each item is one node: the limit of engine.modelsize
        if len(items) == MAX_NODES:
            raise _fail(item[0], item, f"a network has at most {MAX_NODES:,} layers")
        items.append(item)
    if not items:
        raise ArchTextError(
            "the architecture text is empty; write layers separated by commas, e.g. "
            "'conv 16 3, relu, maxpool 2, flatten, dense 10'"
        )
    b = SpecBuilder(input_shape)
    name = _Namer()
    x = "input"
    for item in items:
        try:
            x = _add(b, x, item, name)
        except ArchTextError:
            raise
        except ShapeError as exc:  # the shapes do not fit: say which item
            raise _fail(item[0], item, str(exc), shapes=True) from None
    last = items[-1]
    if last[0].text.lower() == "dense":
        got = b.shape(x)[0]
        if num_classes is not None and got != num_classes:
            raise _fail(
                last[1],
                last,
                f"the last layer gives {got} outputs but there are {num_classes} classes; "
                f"write 'dense {num_classes}' or leave the last dense layer out (it is added)",
                shapes=True,
            )
        return b.spec(x)
    if num_classes is None:
        return b.spec(x)
    if len(b.shape(x)) != 1:
        x = b.flatten(name("flatten"), x)
    spec = b.spec(b.dense(name("fc"), x, num_classes))
    if len(spec["nodes"]) > MAX_NODES:
        raise _fail(
            last[0],
            last,
            f"with the final dense layer added for the classes the network has "
            f"{len(spec['nodes']):,} layers, more than {MAX_NODES:,}; remove "
            f"{len(spec['nodes']) - MAX_NODES} of yours",
        )
    return spec
