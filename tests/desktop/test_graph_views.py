"""The graph views driven like a user: the Train tab's live view and the Classify tab's network
view for branching networks, the Train tab's diagram following the chosen network."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QLabel, QPushButton

from desktop.app_state import AppState
from desktop.classify_tab import ClassifyTab
from desktop.widgets.architecture_view import ArchitectureView
from desktop.widgets.live_panel import LivePanel
from desktop.widgets.network_view import NetworkView, view_layers
from desktop.widgets.run_setup import RunSetup
from engine import architectures
from engine.graphspec import spec_stats
from engine.model import build_model
from engine.modelfile import save_model

SMALL = (3, 16, 16)  # every member builds for it except the LeNets, and runs fast


def _model(name: str, shape=SMALL):
    return build_model(
        {"name": name, "num_classes": 4, "input_shape": list(shape)},
        np.random.default_rng(0),
        classes=["bird", "cat", "dog", "ship"],
    )


def _live_panel(qtbot, model, image: np.ndarray, what: str) -> LivePanel:
    """The Train tab's live panel, 1000x700, showing ``model`` on ``image`` pinned as ``what``."""
    panel = LivePanel()
    qtbot.addWidget(panel)
    panel.resize(1000, 700)
    panel.show()
    panel.set_model(model)
    panel.pin(image, what)
    return panel


def _network_view(qtbot, model, images: np.ndarray) -> NetworkView:
    """The Classify tab's network view, 900x700, showing ``model`` on ``images`` (1, C, H, W)."""
    view = NetworkView()
    qtbot.addWidget(view)
    view.resize(900, 700)
    view.show()
    view.set_layers(view_layers(model, model.activations(images)))
    return view


def _both_views(qtbot, name: str) -> tuple[LivePanel, NetworkView]:
    """The Train tab's live panel and the Classify tab's network view (900x700) showing the
    member ``name`` on one noise image."""
    model = _model(name)
    image = np.random.default_rng(3).integers(0, 256, SMALL, dtype=np.uint8)
    panel = _live_panel(qtbot, model, image, "noise")
    view = _network_view(qtbot, model, image[None])
    return panel, view


def _mnist_setup(qtbot, images: int) -> RunSetup:
    """The Train tab's setup panel, 360 px wide, with ``images`` MNIST digits loaded."""
    setup = RunSetup()
    qtbot.addWidget(setup)
    setup.resize(360, 900)
    setup.show()
    setup.set_source("mnist", images)
    qtbot.waitUntil(lambda: not setup.is_loading() and setup.dataset is not None, timeout=30_000)
    return setup


@pytest.mark.parametrize("name", ["resnet8", "googlenet"])
def test_live_view_runs_for_branching_networks_and_folds_blocks(qtbot, name):
    image = np.random.default_rng(1).integers(0, 256, SMALL, dtype=np.uint8)
    panel = _live_panel(qtbot, _model(name), image, "noise")
    view = panel.activation_view
    names = view.layer_names()
    assert names[0] == "input" and names[-1] == "softmax"
    block = "layer2.0" if name == "resnet8" else "inception3b"
    assert block in view.blocks()
    *inside, output = [n for n in names if n.startswith(block + ".")]
    shown = view.shown_names()  # a big network: folded to the block's output
    assert inside and output in shown and not any(n in shown for n in inside)
    header = view.header_rect(block).center().toPoint()
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=header)
    assert all(n in view.shown_names() for n in inside)
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=header)
    assert not any(n in view.shown_names() for n in inside)
    # hovering a map of a block row reports it, with the receptive field in the tooltip text
    rect = view.hit_rects()[1]
    qtbot.mouseMove(view, QPoint(1, 1))
    with qtbot.waitSignal(view.hovered):
        qtbot.mouseMove(view, rect.center().toPoint())
    assert "receptive field" in view.text_at(rect.center())


def test_live_view_shows_branches_side_by_side(qtbot):
    panel = _live_panel(qtbot, _model("googlenet"), np.zeros(SMALL, dtype=np.uint8), "black")
    view = panel.activation_view
    tops = {}
    for hit_text, rect in ((view.text_at(r.center()), r) for r in view.hit_rects()):
        label = hit_text.split(" · ")[0]
        tops.setdefault(label, rect)
    firsts = [tops[f"branch{b}.0" + ("" if b == 4 else f" + branch{b}.1")] for b in (1, 2, 3, 4)]
    assert len({round(r.top()) for r in firsts}) == 1
    assert len({round(r.left()) for r in firsts}) == 4


@pytest.mark.parametrize("name", ["resnet8", "googlenet", "densenet"])
def test_both_network_views_start_with_only_the_first_block_open(qtbot, name):
    # The Train tab's live view started with every block open (ResNet-20 or DenseNet were a
    # long scroll at 1024x700), the Classify tab's with every block folded.
    panel, view = _both_views(qtbot, name)
    live = panel.activation_view
    blocks = live.blocks()
    assert len(blocks) > 2
    shown = live.shown_names()
    open_live = [b for b in blocks if sum(n.startswith(b + ".") for n in shown) > 1]
    open_classify = [b for b in blocks if b not in view.collapsed()]
    assert open_live == open_classify == blocks[:1]
    assert live.headers() == view.headers()
    assert [h.split()[:2] for h in view.headers()] == [["▾", blocks[0]]] + [
        ["▸", b] for b in blocks[1:]
    ]


@pytest.mark.parametrize("name", ["resnet8", "densenet"])
def test_a_folded_block_looks_the_same_in_both_views(qtbot, name):
    # The Train tab's live view folded a block to a header alone; the Classify tab's to the
    # block's output under "▸ layer1.0": a user who folded a block in one saw another
    # convention in the other. Both: a header saying it is folded, over the block's output.
    panel, view = _both_views(qtbot, name)
    live = panel.activation_view
    block = live.blocks()[0]  # open at first in both
    qtbot.mouseClick(
        live, Qt.MouseButton.LeftButton, pos=live.header_rect(block).center().toPoint()
    )
    first = next(a.name for a in view.layers() if a.block == block)
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=view.title_rect(first).center().toPoint())
    output = [n for n in live.layer_names() if n.startswith(block + ".")][-1]
    assert [n for n in live.shown_names() if n.startswith(block + ".")] == [output]
    assert [a.name for a in view.layers() if a.block == block] == [output]
    assert live.headers() == view.headers()
    assert f"▸ {block}   (folded to its output; click to open)" in view.headers()


@pytest.mark.parametrize("name", ["resnet8", "googlenet"])
def test_network_view_runs_for_branching_networks(qtbot, name):
    model = _model(name)
    image = np.random.default_rng(2).integers(0, 256, (1, *SMALL), dtype=np.uint8)
    view = _network_view(qtbot, model, image)
    shown = [layer.name for layer in view.layers()]
    assert shown[0] == "input" and shown[-1] == "softmax"
    assert view.collapsed()  # many rows: the blocks start folded (but the first)
    block = "layer2.0" if name == "resnet8" else "inception3b"
    qtbot.mouseClick(
        view,
        Qt.MouseButton.LeftButton,
        pos=view.title_rect(next(n for n in shown if n.startswith(block))).center().toPoint(),
    )
    assert block not in view.collapsed()
    first = "layer2.0.conv1" if name == "resnet8" else "inception3b.branch3.2"
    assert first in [layer.name for layer in view.layers()]
    qtbot.mouseMove(view, view.cell_center(first, 0, 2, 2))
    assert "through all paths it sees" in view.hover_text
    marks = {n: w for n, _c, w in view.highlights()}
    field = next(v for v in view.layers() if v.name == first).field
    (y0, y1), (x0, x1) = field.window(2, SMALL[1]), field.window(2, SMALL[2])
    assert marks["input"] == (y0, x0, y1, x1)  # the field through every path, clipped
    assert f"sees {y1 - y0}×{x1 - x0} input pixels" in view.hover_text


def test_maps_shrunk_to_fit_the_height_wrap_into_the_width(qtbot):
    # Shrunk to fit the view's height, a row's maps kept the lines of their full size: a
    # third of the view stayed empty at the right. Now they take the fewest lines they fit in
    # at the size they shrank to (the lines kept even: 12 + 12, not 22 + 2).
    import math

    from desktop.widgets.network_view import LABEL_WIDTH, MAP_GAP

    model = _model("densenet")
    image = np.random.default_rng(2).integers(0, 256, (1, *SMALL), dtype=np.uint8)
    view = _network_view(qtbot, model, image)
    view.set_collapsed("block1", False)
    right = view.width() - 12.0
    checked = 0
    for row in view._rows:
        rects = row.rects
        if row.layer.values.ndim != 3 or len({r.top() for r in rects}) < 2:
            continue
        assert rects[0].left() == LABEL_WIDTH  # a chain: every title beside its maps
        per_line = math.floor((right - LABEL_WIDTH + MAP_GAP) / (rects[0].width() + MAP_GAP))
        lines = len({round(r.top(), 3) for r in rects})
        assert lines == math.ceil(len(rects) / per_line), row.layer.name
        checked += 1
    assert checked >= 3 and view.height() > 700  # the maps did have to shrink and wrap


def test_a_densenet_convolutions_hover_text_reads_as_a_sentence(qtbot):
    # Its input is the stack of every map before it, no one row: the text had read "a 3×3
    # kernel over all maps of the maps before it".
    model = _model("densenet")
    image = np.random.default_rng(2).integers(0, 256, (1, *SMALL), dtype=np.uint8)
    view = _network_view(qtbot, model, image)
    view.set_collapsed("block1", False)
    conv = "block1.layer2.conv"
    assert conv in [v.name for v in view.layers()]
    qtbot.mouseMove(view, view.cell_center(conv, 0, 2, 2))
    assert ": a 3×3 kernel over all the maps it reads;" in view.hover_text
    assert "of the maps before it" not in view.hover_text


def test_run_setup_draws_the_chosen_architecture(qtbot):
    setup = _mnist_setup(qtbot, 500)
    view = setup.findChild(ArchitectureView, "architectureView")
    qtbot.waitUntil(lambda: "conv1" in view.node_names(), timeout=5000)
    assert view.node_names()[-1] == "fc3"
    setup.arch_combo.setCurrentText("custom")
    setup.filters_edit.setText("4")
    qtbot.waitUntil(lambda: setup.architecture_ok(), timeout=5000)
    convs = [n for n in view.node_names() if "conv" in n]
    assert len(convs) == 1  # the diagram follows the custom network
    setup.filters_edit.setText("4, 8, 16, 32, 64, 128")  # too many poolings for 28x28
    qtbot.waitUntil(lambda: bool(setup.arch_error.text()), timeout=5000)
    assert view.node_names() == []
    assert setup.arch_error.text().startswith("This network does not fit")
    setup.filters_edit.setText("4, 8")
    qtbot.waitUntil(lambda: setup.architecture_ok(), timeout=5000)
    setup.fc_edit.setText("120, eighty")  # a typo in a number: the field and the word, no Python
    qtbot.waitUntil(lambda: bool(setup.arch_error.text()), timeout=5000)
    error = setup.arch_error.text()
    assert error.startswith("FC widths: 'eighty' is not a whole number")
    assert "invalid literal" not in error and "does not fit" not in error
    assert view.node_names() == [] and "Fix the numbers" in view.message()
    setup.fc_edit.setText("120, 8²")  # a digit that is no number: the field's own message
    qtbot.waitUntil(lambda: "'8²'" in setup.arch_error.text(), timeout=5000)
    assert setup.arch_error.text().startswith("FC widths: '8²' is not a whole number")


def test_architecture_box_lists_the_family_and_the_text_form(qtbot):
    setup = _mnist_setup(qtbot, 500)
    box = setup.arch_combo
    items = [box.itemText(i) for i in range(box.count())]
    assert items[: len(architectures.names())] == architectures.names()
    view = setup.architecture_view
    box.setCurrentText("googlenet")
    qtbot.waitUntil(lambda: "inception3a.cat" in view.node_names(), timeout=10_000)
    assert setup.architecture_ok() and not setup.arch_error.text()
    assert setup.build(seed=0).input_spec.shape == (1, 28, 28)  # the digits' size, grey
    box.setCurrentText("text")
    assert setup.arch_text.isVisible()
    setup.arch_text.setText("conv 8 3, relu, maxpool 2, flatten, dense 10")
    qtbot.waitUntil(lambda: setup.architecture_ok() and "conv1" in view.node_names(), timeout=5000)
    assert setup.build(seed=0).output_shape(setup.build(seed=0).output) == (10,)
    setup.arch_text.setText("conv 8 3, wobble 2")
    qtbot.waitUntil(lambda: "wobble" in setup.arch_error.text(), timeout=5000)


def test_classify_tab_puts_inception_branches_side_by_side_and_shows_a_colour_input(
    qtbot, tmp_path
):
    path = tmp_path / "googlenet.npz"
    save_model(_model("googlenet"), path)
    tab = ClassifyTab(AppState())
    qtbot.addWidget(tab)
    tab.resize(1400, 900)
    tab.show()
    with qtbot.waitSignal(tab.model_load_finished, timeout=20_000) as opened:
        tab.open_model_file(path)
    assert opened.args == [True] and tab.model_box.currentText() == "googlenet.npz (opened)"
    photo = np.zeros((40, 40, 3), np.uint8)
    photo[:, :20] = (220, 30, 30)  # red left, blue right
    photo[:, 20:] = (30, 30, 220)
    Image.fromarray(photo).save(tmp_path / "halves.png")
    view = tab.network_view
    tab.open_image_file(tmp_path / "halves.png")
    qtbot.waitUntil(lambda: bool(view.layers()), timeout=20_000)
    qtbot.waitUntil(lambda: not tab.background_busy(), timeout=20_000)
    # the input is one colour picture, as the user sees it: red at the left, blue at the right
    picture = view.grab().toImage()
    left, right = (picture.pixelColor(view.cell_center("input", 0, 8, x)) for x in (2, 13))
    assert left.red() > left.blue() + 100 and right.blue() > right.red() + 100
    assert view.layers()[0].tiles == 1
    # a click on the folded Inception module opens it: its four branches side by side
    qtbot.mouseClick(
        view, Qt.MouseButton.LeftButton, pos=view.title_rect("inception3b.cat").center().toPoint()
    )
    heads = [f"inception3b.branch{b}.0" for b in (1, 2, 3, 4)]
    firsts = [view.cell_center(name, 0) for name in heads]
    assert len({p.y() for p in firsts}) == 1  # one row
    assert [p.x() for p in firsts] == sorted({p.x() for p in firsts})  # four columns, in order
    second = view.cell_center("inception3b.branch2.2", 0)
    assert second.x() == firsts[1].x() and second.y() > firsts[1].y()  # under its own branch
    # the receptive field on hover goes through all paths
    tab.show_network_view(("inception3b.branch2.2", 0))  # scrolled into sight
    qtbot.mouseMove(view, view.cell_center("inception3b.branch2.2", 0, 3, 3))
    field = next(v for v in view.layers() if v.name == "inception3b.branch2.2").field
    (y0, y1), (x0, x1) = field.window(3, SMALL[1]), field.window(3, SMALL[2])
    assert ("input", None, (y0, x0, y1, x1)) in view.highlights()
    assert f"sees {y1 - y0}×{x1 - x0} input pixels" in view.hover_text
    # the block's header folds it again
    qtbot.mouseClick(
        view, Qt.MouseButton.LeftButton, pos=view.title_rect(heads[0]).center().toPoint()
    )
    assert "inception3b" in view.collapsed()
    assert not any(v.name in heads for v in view.layers())


def test_a_hovered_cell_survives_a_new_network_only_where_it_still_is(qtbot):
    # A cell hovered on one network, then another network (or nothing) shown: the view paints
    # without error (it raised IndexError) and keeps no hover on a cell that is not there.
    image = np.random.default_rng(2).integers(0, 256, (1, *SMALL), dtype=np.uint8)
    four = _model("resnet8")
    two = build_model(
        {"name": "resnet8", "num_classes": 2, "input_shape": list(SMALL)},
        np.random.default_rng(0),
        classes=["cat", "dog"],
    )
    view = _network_view(qtbot, four, image)
    assert view.hover_cell("softmax", 3)
    assert "ship" in view.hover_text
    view.set_layers(view_layers(two, two.activations(image)))  # same rows, softmax of 2
    view.grab()
    assert view.hover_text == ""
    assert view.hover_cell("softmax", 1)
    view.clear()
    view.grab()
    assert view.hover_text == ""


def test_the_chosen_member_shows_its_idea_size_and_work_for_the_data(qtbot):
    # The paragraph on the member's idea, its parameters and multiply-adds are on screen and
    # follow the choice and the data (grey 28x28 and 10 classes, colour 32x32 and 4 classes).
    setup = _mnist_setup(qtbot, 300)
    setup.arch_combo.setCurrentText("resnet8")
    idea = setup.findChild(QLabel, "architectureIdea")
    assert idea.isVisible() and architectures.get("resnet8").title in idea.text()
    assert architectures.describe("resnet8")[:40] in idea.text()
    grey = spec_stats(architectures.build_spec("resnet8", (1, 28, 28), 10))
    assert f"{grey[0]:,} trainable parameters" in setup.params_label.text()
    assert f"{grey[1]:,} multiply-adds" in setup.params_label.text()
    setup.arch_combo.setCurrentText("densenet")
    assert architectures.get("densenet").title in idea.text()
    setup.arch_combo.setCurrentText("resnet8")
    setup.set_source("cifar4", 200)
    qtbot.waitUntil(
        lambda: not setup.is_loading() and setup.dataset.input_shape[0] == 3, timeout=30_000
    )
    colour = spec_stats(architectures.build_spec("resnet8", (3, 32, 32), 4))
    assert colour != grey
    assert f"{colour[1]:,} multiply-adds" in setup.params_label.text()
    assert f"{colour[0]:,} trainable parameters" in setup.params_label.text()
    assert setup.minimumSizeHint().width() <= 360  # the longer texts wrap: the panel stays


def test_the_diagram_opens_larger_in_its_own_window_and_follows_the_choice(qtbot):
    # In the narrow setup panel GoogLeNet's diagram has no room for the modules' names or
    # the boxes' windows and parameters: "Larger view…" shows it whole in a window.
    setup = _mnist_setup(qtbot, 300)
    setup.arch_combo.setCurrentText("googlenet")
    small = setup.architecture_view
    assert not small.shows_block_names()
    button = setup.findChild(QPushButton, "architectureLarger")
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    window = setup.architecture_window
    qtbot.waitUntil(window.isVisible)
    large = window.findChild(ArchitectureView, "architectureWindowView")
    assert large.node_names() == small.node_names()
    assert large.shows_block_names()
    assert large.node_label("inception3a.branch2.2") == ("branch2.2 3×3", "32×14×14 · 4.6k")
    setup.arch_combo.setCurrentText("resnet8")  # it follows the choice
    assert "layer2.0.downsample.0" in large.node_names()
    setup.arch_combo.setCurrentText("custom")
    setup.filters_edit.setText("4, 8, 16, 32, 64, 128")  # does not fit 28x28
    qtbot.waitUntil(lambda: bool(setup.arch_error.text()), timeout=5000)
    assert large.node_names() == []


def test_the_classify_tab_says_what_a_hovered_cell_sees_where_the_user_looks(qtbot, tmp_path):
    # ResNet-20's view is taller than its scroll area: the explanation was painted at the
    # bottom of the whole view, out of sight while the user hovers a cell near the top.
    path = tmp_path / "resnet20.npz"
    save_model(_model("resnet20"), path)
    tab = ClassifyTab(AppState())
    qtbot.addWidget(tab)
    tab.resize(1024, 700)
    tab.show()
    with qtbot.waitSignal(tab.model_load_finished, timeout=20_000):
        tab.open_model_file(path)
    Image.fromarray(np.full((40, 40, 3), 90, np.uint8)).save(tmp_path / "grey.png")
    view = tab.network_view
    tab.open_image_file(tmp_path / "grey.png")
    qtbot.waitUntil(lambda: bool(view.layers()), timeout=20_000)
    qtbot.waitUntil(lambda: not tab.background_busy(), timeout=20_000)
    assert "layer1.0" not in view.collapsed()  # the first block starts open
    assert view.height() > tab.network_scroll.viewport().height()
    tab.show_network_view(("layer1.0.conv2", 0))
    hover = tab.findChild(QLabel, "networkHover")
    with qtbot.waitSignal(view.cell_hovered):
        qtbot.mouseMove(view, view.cell_center("layer1.0.conv2", 1, 3, 3))
    assert "layer1.0.conv2 map 2" in hover.text() and "through all paths it sees" in hover.text()
    assert hover.isVisible() and hover.text() == view.hover_text
    shown = hover.mapTo(tab, hover.rect().bottomRight())
    assert tab.rect().contains(shown)  # in the window, not below the view's end
    qtbot.mouseMove(view, QPoint(view.width() - 2, 2))  # off the cells: the hint again
    qtbot.waitUntil(lambda: hover.text().startswith("Hover a cell"))


def test_live_view_branch_titles_take_two_lines_rather_than_being_cut(qtbot):
    # Inception's branch columns are narrow: "branch2.0 + branch2.1" read "branch2.0 + branch…"
    panel = _live_panel(qtbot, _model("googlenet"), np.zeros(SMALL, dtype=np.uint8), "black")
    view = panel.activation_view
    for b in (1, 2, 3):
        lines = view.title_lines(f"inception3a.branch{b}.0")
        assert " ".join(lines) == f"branch{b}.0 + branch{b}.1", lines
    assert view.title_lines("inception3a.branch4.0") == ["branch4.0"]
    assert view.title_lines("conv1") == ["conv1 + relu1"]  # a row with its title beside


def test_the_text_form_reads_whole_and_its_bad_token_is_named_and_underlined(qtbot):
    # The one-line box showed the tail of a network; an error said "item 6, column 44" and
    # the user had to count. The box wraps, and the token at fault is underlined.
    setup = _mnist_setup(qtbot, 300)
    setup.arch_combo.setCurrentText("text")
    box = setup.arch_text
    text = (
        "conv 16 3, relu, conv 16 3, relu, maxpool 2, cnov 32 3, relu, maxpool 2, flatten, dense 10"
    )
    box.setText(text)
    qtbot.waitUntil(lambda: "cnov" in setup.arch_error.text(), timeout=5000)
    assert "item 6, column 46: 'cnov'" in setup.arch_error.text()
    assert box.marked() == "cnov" and not setup.architecture_ok()
    assert setup.arch_error.isVisible()  # and hidden when there is nothing to say (below)
    assert box.horizontalScrollBar().maximum() == 0  # wrapped, nothing off to the side
    assert box.verticalScrollBar().maximum() == 0  # and all of it in sight
    box.setText(text.replace("cnov", "conv"))
    qtbot.waitUntil(setup.architecture_ok, timeout=5000)
    assert box.marked() == "" and "conv6" not in setup.arch_error.text()
    assert not setup.arch_error.isVisible()  # no empty band between the text and the diagram
    box.setText(text.replace("cnov 32 3", "conv 32 3\nmaxpool 9"))  # a new line is an item
    qtbot.waitUntil(lambda: "maxpool" in setup.arch_error.text(), timeout=5000)
    assert box.marked() == "maxpool" and "does not fit" in setup.arch_error.text()


def test_the_bad_tokens_mark_covers_it_whole_after_characters_beyond_the_bmp(qtbot):
    # The engine counts code points, the box UTF-16 units: a pasted emoji or a mathematical
    # look-alike letter (𝐜, U+1D41C) is two of them, and the underline fell short or covered
    # half a character.
    setup = RunSetup()
    qtbot.addWidget(setup)
    setup.arch_combo.setCurrentText("text")
    box = setup.arch_text
    for text, token in (
        ("conv 8 3, 🙂", "🙂"),
        ("conv 8 3, 🙂🙂x, relu", "🙂🙂x"),
        ("conv 𝟏𝟔 3", "𝟏𝟔"),
        ("𝐜onv 8 3, relu", "𝐜onv"),
    ):
        box.setText(text)
        qtbot.waitUntil(lambda t=token: repr(t) in setup.arch_error.text(), timeout=5000)
        marks = box.extraSelections()  # what the box underlines
        assert marks[0].cursor.selectedText() == token == box.marked()


def test_a_bad_token_below_the_boxs_lines_is_scrolled_into_sight(qtbot):
    # A long network set in the box, its error on the fifth line: the underline was cut in
    # half at the box's bottom edge.
    from PySide6.QtGui import QTextCursor

    setup = _mnist_setup(qtbot, 300)
    setup.arch_combo.setCurrentText("text")
    box = setup.arch_text
    text = ", ".join(["conv 8 3, relu"] * 24 + ["banana"])
    box.setText(text)
    qtbot.waitUntil(lambda: "banana" in setup.arch_error.text(), timeout=5000)
    assert box.marked() == "banana" and box.verticalScrollBar().value() > 0
    for at in (len(text) - len("banana"), len(text)):
        cursor = QTextCursor(box.document())
        cursor.setPosition(at)
        assert box.viewport().rect().contains(box.cursorRect(cursor))


def test_the_diagram_of_a_text_that_does_not_read_asks_to_fix_it(qtbot):
    # A misspelt layer left the diagram saying "This network does not fit": it says what to
    # do, here and in the larger view; a text that reads but does not fit still says that.
    setup = RunSetup()
    qtbot.addWidget(setup)
    setup.resize(360, 900)
    setup.show()
    setup.arch_combo.setCurrentText("text")
    view = setup.architecture_view
    qtbot.waitUntil(lambda: bool(view.node_names()), timeout=5000)
    qtbot.mouseClick(setup.larger_button, Qt.MouseButton.LeftButton)
    larger = setup.architecture_window.view
    setup.arch_text.setText("conv 16 3, relu, cnov 32 3, flatten")
    qtbot.waitUntil(lambda: "cnov" in setup.arch_error.text(), timeout=5000)
    assert view.message() == "Fix the network's text to see its diagram" and not view.node_names()
    assert larger.message() == view.message()
    setup.arch_text.setText("conv 16 3, relu, maxpool 2, maxpool 2, maxpool 2, maxpool 9")
    qtbot.waitUntil(lambda: "a 9x9 window" in setup.arch_error.text(), timeout=5000)
    assert view.message() == larger.message() == "This network does not fit"
    setup.architecture_window.close()


def test_a_block_title_says_that_a_click_opens_or_folds_it(qtbot):
    # Folded rows read "▸ layer1.0" with nothing saying they open; the hover text says so.
    model = _model("resnet8")
    image = np.random.default_rng(2).integers(0, 256, (1, *SMALL), dtype=np.uint8)
    view = _network_view(qtbot, model, image)
    assert "layer2.0" in view.collapsed()
    title = view.title_rect("layer2.0.add").center().toPoint()
    with qtbot.waitSignal(view.cell_hovered) as said:
        qtbot.mouseMove(view, title)
    rows = sum(
        1 for layer in view_layers(model, model.activations(image)) if layer.block == "layer2.0"
    )
    assert said.args == [f"layer2.0: click to show its {rows} rows"]
    assert view.cursor().shape() == Qt.CursorShape.PointingHandCursor
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=title)
    assert "layer2.0" not in view.collapsed()
    assert view.hover_text == "layer2.0: click to fold it to its output"


@pytest.mark.parametrize("count", [10, 1000])
def test_the_softmax_row_names_the_top_class_whole_and_others_only_where_they_fit(qtbot, count):
    # 1,000 class names under the softmax row were a black smear that hid the top class
    classes = [str(k) for k in range(10)] if count == 10 else [f"class {k}" for k in range(count)]
    model = build_model("lenet5", np.random.default_rng(0), classes=classes)
    image = np.zeros((28, 28), np.uint8)
    image[5:23, 12:16] = 255
    panel = _live_panel(qtbot, model, image, "a stroke")
    names = panel.activation_view.softmax_names()
    probabilities = model.predict_proba(model.input_spec.to_tensor(image[None]))[0]
    best = int(np.argmax(probabilities))
    assert names[-1] == f"{classes[best]} {probabilities[best] * 100:.0f}%"
    if count == 10:
        assert sorted(names[:-1]) == sorted(c for c in classes if c != classes[best])
    else:
        assert names == [names[-1]]  # slots under a pixel wide: only the top class


def test_a_deep_network_view_shows_in_its_scrolled_window_what_the_whole_view_shows(qtbot):
    """A 100-convolution network: the view paints only the rows in sight, made as they come
    into sight; scrolled to the middle and to the end, every map and cell in the window has
    the colour a whole view of the same activations paints there (painted, up to date)."""
    from PySide6.QtWidgets import QScrollArea

    from engine.archtext import to_spec

    text = ", ".join(["conv 4 3, tanh"] * 100) + ", flatten, dense 3"
    spec = to_spec(text, (1, 12, 12), 3)
    area, view = QScrollArea(), NetworkView()
    qtbot.addWidget(area)
    area.setWidget(view)
    area.setWidgetResizable(True)
    area.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)  # a steady width
    area.resize(500, 600)
    area.show()
    rng, before = np.random.default_rng(1), {}
    for image in range(2):  # the same network with other weights: its layout, new maps
        model = build_model(spec, np.random.default_rng(image))
        x = rng.standard_normal((1, 1, 12, 12)).astype(np.float32)
        layers = view_layers(model, model.activations(x))
        view.set_layers(layers)
        bar = area.verticalScrollBar()
        assert bar.maximum() > 5 * area.viewport().height()
        whole_view = NetworkView()  # the whole view of this image, painted at once
        qtbot.addWidget(whole_view)
        whole_view.set_layers(layers)
        whole_view.resize(view.size())  # laid out for the same size
        whole, changed = whole_view.grab().toImage(), 0
        for where in (bar.maximum() // 2, bar.maximum()):
            bar.setValue(where)
            shown, checked = area.viewport().grab().toImage(), 0
            for layer in view.layers():
                spatial = layer.values.ndim == 3
                for index in range(layer.tiles):  # the middle of each map, or each cell
                    at = view.cell_center(layer.name, index, *((6, 6) if spatial else ()))
                    if where <= at.y() < where + shown.height():
                        seen = shown.pixelColor(at.x(), at.y() - where)
                        assert seen == whole.pixelColor(at), (layer.name, index)
                        checked += 1
                        changed += image and seen != before[layer.name, index, where]
                        before[layer.name, index, where] = seen
            assert checked > 20
        assert not image or changed > 20  # the second network's maps are not the first's


def test_a_model_shown_before_any_image_is_pinned_says_to_pin_one(qtbot):
    """A model loaded into the Train tab before a dataset: the live page said "Train or load a
    model", beside that model's filters; it now says how to pin an image."""
    panel = LivePanel()
    qtbot.addWidget(panel)
    panel.resize(1000, 700)
    panel.show()
    panel.set_model(_model("resnet8"))
    caption = panel.activation_view._caption
    assert caption.startswith("No image pinned yet") and "load a model" not in caption
    assert panel.filter_view.tiles()  # the model's filters show meanwhile


def test_the_layers_tab_tells_every_layer_apart_in_the_narrow_panel(qtbot):
    # GoogLeNet's Layers tab in the setup panel (1024x700 window) read 'inception3a....
    # (conv2d)' row after row: names cut at their end, where the branches differ, and no
    # tooltip had them. One line a layer, its name whole; the kind is in the tooltip.
    setup = _mnist_setup(qtbot, 300)
    setup.arch_combo.setCurrentText("googlenet")
    table = setup.layer_table
    setup.arch_tabs.setCurrentWidget(table)
    qtbot.waitUntil(lambda: table.rowCount() > 40 and table.isVisible(), timeout=10_000)
    metrics = table.fontMetrics()
    width = table.columnWidth(0) - 12  # less the cell's margins
    names = [table.item(r, 0).text() for r in range(table.rowCount())]
    shown = [metrics.elidedText(n, table.textElideMode(), width) for n in names]
    assert not table.wordWrap()  # one line a layer
    assert len(set(shown)) == len(names), shown
    assert table.item(4, 0).toolTip() == f"{names[4]} (conv2d)"  # whole, and its kind
