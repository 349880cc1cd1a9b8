"""The text form of custom networks: parsing, node names, the final layer rule, and errors that
name the bad token and where it is."""

from __future__ import annotations

import pytest

from engine import architectures
from engine.archtext import GRAMMAR, LAYER_WORDS, ArchTextError, to_spec
from engine.errors import ShapeError
from engine.graphspec import spec_shapes

FIGURE16 = (
    "conv 16 3, relu, conv 16 3, relu, maxpool 2, conv 32 3, relu, maxpool 2, flatten, "
    "dense 64, relu, dropout 0.5, dense 10"
)


def test_the_articles_figure16_network():
    spec = to_spec(FIGURE16, (1, 28, 28), 10)
    shapes = spec_shapes(spec)
    names = [n["name"] for n in spec["nodes"]]
    assert names == [
        "conv1", "relu1", "conv2", "relu2", "pool1", "conv3", "relu3", "pool2",
        "flatten1", "fc1", "relu4", "drop1", "fc2",
    ]  # fmt: skip
    assert shapes["conv2"] == (16, 28, 28)  # "same" padding keeps the size
    assert shapes["pool2"] == (32, 7, 7)
    assert spec["nodes"][0]["padding"] == 1 and spec["nodes"][0]["in_channels"] == 1
    assert spec_shapes(spec)["fc1"] == (64,) and spec["nodes"][9]["in_features"] == 32 * 7 * 7
    assert spec["nodes"][11]["p"] == 0.5
    assert spec["output"] == "fc2" and shapes["fc2"] == (10,)


def test_every_layer_word_and_option():
    text = (
        "conv 8 5 valid, bn, tanh, conv 8 3 stride 2, batchnorm, sigmoid, avgpool 2 stride 1, "
        "conv 4 3 valid stride 1, maxpool 3 stride 2, relu, globalavgpool, dense 6, relu"
    )
    spec = to_spec(text, (3, 32, 32), 5)
    shapes = spec_shapes(spec)
    kinds = [n["type"] for n in spec["nodes"]]
    assert set(kinds) >= {"conv2d", "batchnorm2d", "tanh", "sigmoid", "avgpool2d", "maxpool2d"}
    assert shapes["conv1"] == (8, 28, 28)  # valid: 32 - 5 + 1
    assert shapes["conv2"] == (8, 14, 14)  # same, stride 2
    assert shapes["pool1"] == (8, 13, 13)  # 2x2 every pixel
    assert shapes["conv3"] == (4, 11, 11)
    assert shapes["pool2"] == (4, 5, 5)  # overlapping 3x3/2
    assert shapes["gap1"] == (4,)
    # the text ends with relu, so the classifier is added
    assert spec["nodes"][-1] == {
        "type": "dense",
        "name": "fc2",
        "inputs": ["relu2"],
        "in_features": 6,
        "out_features": 5,
        "init": "torch",
    }
    assert {w for w in LAYER_WORDS} <= set(GRAMMAR.split()) | {"batchnorm"}


def test_conv_options_come_in_either_order():
    a = to_spec("conv 8 5 valid stride 2", (1, 28, 28), 3)
    b = to_spec("conv 8 5 stride 2 valid", (1, 28, 28), 3)
    assert a == b and spec_shapes(b)["conv1"] == (8, 12, 12)  # (28 - 5) // 2 + 1


def test_the_classifier_is_added_after_a_flatten_when_the_text_ends_on_maps():
    spec = to_spec("conv 8 3, relu, maxpool 2", (3, 32, 32), 4)
    assert [n["name"] for n in spec["nodes"]][-2:] == ["flatten1", "fc1"]
    assert spec_shapes(spec)["fc1"] == (4,)
    assert spec["nodes"][-1]["in_features"] == 8 * 16 * 16


def test_a_final_dense_must_match_the_classes():
    with pytest.raises(ArchTextError) as err:
        to_spec(FIGURE16, (3, 32, 32), 4)
    msg = str(err.value)
    assert msg.startswith("item 13, column ")
    assert "'10' in 'dense 10'" in msg and "4 classes" in msg and "write 'dense 4'" in msg
    col = int(msg.split("column ")[1].split(":")[0])
    assert FIGURE16[col - 1 : col + 1] == "10"


@pytest.mark.parametrize(
    ("text", "item", "token", "why"),
    [
        ("conv 16 x", 1, "x", "kernel size must be a whole number"),
        ("conv 16", 1, "16", "kernel size is missing"),
        ("conv 0 3", 1, "0", "number of filters"),
        ("conv 16 3, relu, maxpool two", 3, "two", "pooling size"),
        ("conv 16 4", 1, "4", "odd kernel size"),
        ("conv 8 3, rleu", 2, "rleu", "unknown layer; use one of conv"),
        ("conv 8 3 same extra", 1, "extra", "unexpected; write 'conv OUT K"),
        ("conv 8 3 stride", 1, "stride", "stride is missing"),
        ("conv 8 3 valid same", 1, "same", "given twice"),
        ("conv 8 3 stride 2 valid stride 1", 1, "stride", "given twice"),
        ("conv 8 3, dropout 1.5", 2, "1.5", "in [0, 1)"),
        ("conv 8 3, dropout", 2, "dropout", "write 'dropout 0.5'"),
        ("conv 8 3, dense 10", 2, "dense", "add a flatten before it"),
        ("conv 8 3, flatten, conv 8 3", 3, "conv", "takes maps"),
        # a vector made by global average pooling: no flatten to remove
        ("conv 8 3, globalavgpool, bn", 3, "bn", "not after a flatten, globalavgpool"),
        (
            "conv 8 3, globalavgpool, dropout 0.5, maxpool 2",
            4,
            "maxpool",
            "not after a flatten, globalavgpool",
        ),
        ("maxpool 2, maxpool 2, maxpool 2, maxpool 2, maxpool 2", 5, "maxpool", "does not fit"),
        ("conv 8 3, dense", 2, "dense", "number of outputs is missing"),
    ],
)
def test_errors_name_the_token_and_its_position(text, item, token, why):
    with pytest.raises(ArchTextError) as err:
        to_spec(text, (1, 28, 28), 10)
    msg = str(err.value)
    assert isinstance(err.value, ShapeError)  # the CLI and the tab already report these
    assert msg.startswith(f"item {item}, column ")
    col = int(msg.split("column ")[1].split(":")[0])
    assert text[col - 1 : col - 1 + len(token)] == token
    # the same place for an editor to mark (the Train tab underlines the token)
    assert (err.value.column, err.value.length) == (col, len(token))
    assert f"{token!r} in " in msg and why in msg


@pytest.mark.parametrize(
    ("text", "shapes"),
    [
        ("conv 16 x", False),
        ("conv 8 3, rleu", False),
        ("conv 16 4", False),  # 'same' padding of an even kernel: the text asks for nothing
        ("conv 8 3, dense 10", True),
        ("conv 8 3, flatten, conv 8 3", True),
        ("maxpool 2, maxpool 2, maxpool 2, maxpool 2, maxpool 2", True),
        ("conv 8 3, flatten, dense 4", True),  # 10 classes
        (" , ,", False),
    ],
)
def test_errors_say_whether_the_text_reads_and_only_its_shapes_do_not_fit(text, shapes):
    # The Train tab's diagram asks to fix a text that does not read, and says that a text
    # that reads does not fit.
    with pytest.raises(ArchTextError) as err:
        to_spec(text, (1, 28, 28), 10)
    assert err.value.shapes is shapes


def test_absurd_numbers_and_huge_tokens_are_one_short_line():
    """A number of thousands of digits (which int() refuses to read), digits of other scripts
    and a pasted 200,000-character token: refused like any bad token, the message quoting it
    cut short while column and length still mark all of it."""
    for number in ("9" * 5000, "1" * 10, "１６", "٣"):
        with pytest.raises(ArchTextError, match="must be a whole number from 1 to") as err:
            to_spec(f"conv 8 3, flatten, dense {number}", (1, 28, 28), None)
        assert err.value.length == len(number) and len(str(err.value)) < 200
    token = "foo" * 70_000
    with pytest.raises(ArchTextError, match="unknown layer") as err:
        to_spec(f"conv 16 3, {token}", (1, 28, 28), 10)
    assert len(str(err.value)) < 300 and (err.value.column, err.value.length) == (12, len(token))
    with pytest.raises(ShapeError, match="unknown architecture") as err:
        architectures.choose("a" * 200_000)  # no layer word: taken for a mistyped name
    assert len(str(err.value)) < 400
    with pytest.raises(ArchTextError, match="the architecture text is empty"):
        architectures.choose("  ")  # the Train tab's emptied box ("unknown architecture ''")


def test_new_lines_separate_items_too_and_empty_text_is_refused():
    spec = to_spec("conv 4 3\nrelu\n\nflatten, dense 3", (1, 28, 28), 3)
    assert [n["name"] for n in spec["nodes"]] == ["conv1", "relu1", "flatten1", "fc1"]
    with pytest.raises(ArchTextError, match="empty"):
        to_spec(" , ,", (1, 28, 28), 3)


def test_more_layers_than_a_network_may_have_are_refused_at_the_first_one_too_many():
    """A pasted million layers was tokenised and built whole (ten seconds of a frozen Train
    tab) before engine.modelsize refused "5,002 layers" with no place in the text; the text
    is now refused at the item past the limit, having read no further."""
    from engine.modelsize import MAX_NODES

    text = ", ".join(["relu"] * 1_000_000)
    with pytest.raises(ArchTextError) as err:
        to_spec(text, (1, 28, 28), 10)
    msg = str(err.value)
    assert msg.startswith(f"item {MAX_NODES + 1}, column {1 + 6 * MAX_NODES}: 'relu'")
    assert f"at most {MAX_NODES:,} layers" in msg and err.value.column == 1 + 6 * MAX_NODES
    # exactly the limit, ending on maps: the flatten and dense added for the classes go over
    with pytest.raises(ArchTextError) as err:
        to_spec(", ".join(["relu"] * MAX_NODES), (1, 28, 28), 10)
    msg = str(err.value)
    assert f"the network has {MAX_NODES + 2:,} layers" in msg and "remove 2 of yours" in msg
    assert msg.startswith(f"item {MAX_NODES}, ")
    spec = to_spec(", ".join(["relu"] * (MAX_NODES - 2)), (1, 28, 28), 10)
    assert len(spec["nodes"]) == MAX_NODES


@pytest.mark.parametrize(
    ("text", "token", "char"),
    [
        ("conv 8 3, cоnv 16 3", "cоnv", "U+043E CYRILLIC SMALL LETTER O"),
        ("conv １６ 3", "１６", "U+FF11 FULLWIDTH DIGIT ONE"),
        ("conv 8 3，relu", "3，relu", "U+FF0C FULLWIDTH COMMA"),
        ("conv\u200b 8 3, relu", "conv\u200b", "U+200B ZERO WIDTH SPACE"),
    ],
)
def test_a_look_alike_character_is_named(text, token, char):
    """A pasted 'cоnv' (Cyrillic o) was refused as an unknown layer in a message that
    listed 'conv', the same word to the eye; the message names the character to retype."""
    with pytest.raises(ArchTextError) as err:
        to_spec(text, (1, 28, 28), 10)
    assert f"{token!r} in " in str(err.value)
    assert f"({char}) is not an ASCII character: retype it" in str(err.value)
    with pytest.raises(ShapeError, match="U\\+043E CYRILLIC SMALL LETTER O"):
        architectures.choose("cоnv 16 3")  # one item: taken for a mistyped name
    with pytest.raises(ArchTextError) as err:
        to_spec("conv 8 x", (1, 28, 28), 10)
    assert "ASCII" not in str(err.value)
