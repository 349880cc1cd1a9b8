"""The architecture diagram (Train tab) of every family member, driven like a user."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint

from desktop.widgets.architecture_view import ArchitectureView
from engine import architectures
from engine.graph_layout import describe


def _facts(name: str) -> list:
    shape = architectures.input_shape_for(name, 1 if name.startswith("lenet") else 3)
    return describe(architectures.build_spec(name, shape, 4))


@pytest.mark.parametrize("name", architectures.names())
def test_diagram_shows_every_node_and_hover_tells_its_shape(qtbot, name):
    view = ArchitectureView()
    qtbot.addWidget(view)
    view.resize(700, 500)
    view.show()
    facts = _facts(name)
    view.set_facts(facts)
    assert view.objectName() == "architectureView"
    assert view.node_names() == [f.name for f in facts]
    rects = [view.node_rect(n) for n in view.node_names()]
    assert not any(a.intersects(b) for i, a in enumerate(rects) for b in rects[i + 1 :])
    node = next(f for f in facts if f.kind == "conv2d")
    qtbot.mouseMove(view.canvas, QPoint(2, 2))  # off the nodes first
    with qtbot.waitSignal(view.hovered) as hovered:
        qtbot.mouseMove(view.canvas, view.node_rect(node.name).center().toPoint())
    assert f"output {node.shape_text()}" in hovered.args[0]
    assert f"{node.params:,} parameters" in hovered.args[0]
    assert "receptive field" in hovered.args[0]


def test_diagram_puts_inception_branches_side_by_side(qtbot):
    view = ArchitectureView()
    qtbot.addWidget(view)
    view.resize(1000, 600)
    view.set_facts(_facts("googlenet"))
    firsts = [view.node_rect(f"inception3a.branch{b}.0") for b in (1, 2, 3, 4)]
    assert len({round(r.top()) for r in firsts}) == 1  # one row
    lefts = [r.left() for r in firsts]
    assert lefts == sorted(lefts) and len(set(lefts)) == 4
    view.clear("Nothing to draw")
    assert view.node_names() == []


@pytest.mark.parametrize("width", [300, 900])
def test_box_labels_give_up_details_before_cutting_the_shape(qtbot, width):
    # In the Train tab's narrow panel ResNet-20's boxes showed "16×32×32 · ..." (the shape and
    # the parameters cut alike): what does not fit is left to the tooltip, the shape stays whole.
    view = ArchitectureView()
    qtbot.addWidget(view)
    view.resize(width, 500)
    view.show()
    facts = {f.name: f for f in _facts("resnet20")}
    view.set_facts(list(facts.values()))
    for name in view.node_names():
        top, bottom = view.node_label(name)
        assert "…" not in top + bottom and "..." not in top + bottom, (name, top, bottom)
        assert bottom.startswith(facts[name].shape_text())
    assert view.node_label("layer1.0.conv1")[0].startswith("conv1")
    if width == 900:  # room for everything
        assert view.node_label("layer1.0.conv1") == ("conv1 3×3", "16×32×32 · 2.3k")


def test_inception_fits_the_train_tabs_panel_at_1024_px(qtbot):
    """The Train tab's diagram is 283 px wide in a 1024x700 window: GoogLeNet's four branches
    fit it, shapes whole (the fourth had been cut behind a horizontal scroll bar)."""
    view = ArchitectureView()
    qtbot.addWidget(view)
    view.resize(283 + view.verticalScrollBar().sizeHint().width() + 2 * view.frameWidth(), 420)
    view.show()
    facts = {f.name: f for f in _facts("googlenet")}
    view.set_facts(list(facts.values()))
    qtbot.waitUntil(lambda: view.viewport().width() == 283)
    assert not view.horizontalScrollBar().isVisible()
    right = max(view.node_rect(n).right() for n in view.node_names())
    assert right <= view.viewport().width()
    for name in view.node_names():
        _, bottom = view.node_label(name)
        assert bottom == facts[name].shape_text(), (name, bottom)


def test_a_chain_is_centred_in_a_wide_window(qtbot):
    """DenseNet is one lane: in the Larger view's 960 px it had sat against the left edge, two
    thirds of the window empty beside it. It is centred, its block frame with it."""
    view = ArchitectureView()
    qtbot.addWidget(view)
    view.resize(960, 600)
    view.show()
    view.set_facts(_facts("densenet"))
    qtbot.waitUntil(lambda: view.viewport().width() > 900)
    rects = [view.node_rect(n) for n in view.node_names()]
    left = min(r.left() for r in rects)
    right = max(r.right() for r in rects)
    middle = view.viewport().width() / 2
    assert left > 0.25 * view.viewport().width()
    assert abs((left + right) / 2 - middle) < 60  # the gutter for block names is on its left
    assert view.canvas.left < left


def test_blocks_side_by_side_get_frames_and_names_of_their_own(qtbot):
    # A network file with two branches named 'left.conv' and 'right.conv': both blocks' frames
    # were drawn across the whole row, one over the other, their names written over each
    # other in the margin, and both boxes read 'conv 3×3'.
    spec = architectures.choose("conv 4 3, relu, flatten, dense 10", 1).architecture(10)
    conv, relu, flatten, dense = spec["nodes"]
    branches = []
    for name in ("left.conv", "right.conv"):
        branches.append(dict(conv, name=name, inputs=[relu["name"]], in_channels=4, padding=1))
    cat = {"name": "cat", "type": "concat", "inputs": ["left.conv", "right.conv"]}
    flatten = dict(flatten, inputs=["cat"])
    dense = dict(dense, in_features=8 * 28 * 28)
    spec["nodes"] = [conv, relu, *branches, cat, flatten, dense]
    view = ArchitectureView()
    qtbot.addWidget(view)
    view.resize(900, 500)
    view.show()
    view.set_facts(describe(spec))
    frames = view.block_frames()
    assert set(frames) == {"left", "right"}
    assert not frames["left"].intersects(frames["right"])
    for name in ("left.conv", "right.conv"):
        assert frames[name.split(".")[0]].contains(view.node_rect(name))
        assert view.node_label(name)[0].startswith(name)  # the block in the box: told apart
    assert view.node_label("conv1")[0] == "conv1 3×3"
