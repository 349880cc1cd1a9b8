"""The views' description and layout of every family member (engine.graph_layout)."""

from __future__ import annotations

import pytest

from engine import architectures
from engine.graph_layout import Field, block_of, describe, layout
from engine.graphspec import spec_stats


def _spec(name: str, channels: int = 3) -> dict:
    return architectures.build_spec(name, architectures.input_shape_for(name, channels), 4)


@pytest.mark.parametrize("name", architectures.names())
@pytest.mark.parametrize("channels", [1, 3])
def test_every_node_placed_once_and_edges_go_forward(name: str, channels: int) -> None:
    spec = _spec(name, channels)
    facts = describe(spec)
    assert [f.name for f in facts] == ["input"] + [n["name"] for n in spec["nodes"]]
    lay = layout(facts)
    names = [p.name for p in lay.nodes]
    assert sorted(names) == sorted(f.name for f in facts)
    cells = [(p.row, p.lane) for p in lay.nodes]
    assert len(set(cells)) == len(cells)  # no two nodes drawn on top of each other
    rows = {p.name: p.row for p in lay.nodes}
    assert len(lay.edges) == sum(len(n["inputs"]) for n in spec["nodes"])
    assert all(rows[a] < rows[b] for a, b in lay.edges)
    assert lay.rows == max(rows.values()) + 1
    params, macs = spec_stats(spec)
    assert sum(f.params for f in facts) == params
    assert sum(f.macs for f in facts) == macs


def test_inception_branches_in_distinct_lanes() -> None:
    lay = layout(describe(_spec("googlenet")))
    lanes = {p.name: p.lane for p in lay.nodes}
    for module in ("inception3a", "inception3b", "inception4a"):
        firsts = [lanes[f"{module}.branch{b}.0"] for b in (1, 2, 3, 4)]
        assert len(set(firsts)) == 4
        # a branch stays in its lane to the end; the concatenation returns to the leftmost
        assert lanes[f"{module}.branch2.3"] == lanes[f"{module}.branch2.0"]
        assert lanes[f"{module}.cat"] == min(firsts)
    assert lay.lanes == 4


def test_resnet_identity_shortcut_is_an_arc_projection_a_lane() -> None:
    lay = layout(describe(_spec("resnet8")))
    pos = {p.name: p for p in lay.nodes}
    # identity: the add reads relu (same lane, several rows up) -> drawn as an arc
    assert pos["layer1.0.add"].lane == pos["relu"].lane == pos["layer1.0.bn2"].lane
    assert pos["layer1.0.add"].row - pos["relu"].row > 1
    # projection: the 1x1 conv + BN beside the main path
    assert pos["layer2.0.downsample.0"].lane != pos["layer2.0.conv1"].lane
    assert pos["layer2.0.downsample.1"].lane == pos["layer2.0.downsample.0"].lane


def test_receptive_field_through_all_paths() -> None:
    facts = {f.name: f for f in describe(_spec("googlenet"))}
    # conv1 3x3 -> 3; pool1 3x3/2 -> 5, jump 2; branch3's 5x5 widens it most: 5 + 4*2 = 13
    assert facts["conv1"].field == Field(3, 1, -1)
    assert facts["pool1"].field == Field(5, 2, -2)
    assert facts["inception3a.branch3.2"].field.size == 13
    assert facts["inception3a.branch1.0"].field.size == 5
    assert facts["inception3a.cat"].field.size == 13  # the union of the four branches
    assert facts["avgpool"].field is None
    assert facts["conv1"].field.window(0, 32) == (0, 2)  # clipped at the border
    resnet = {f.name: f for f in describe(_spec("resnet8"))}
    # the add sees the union of the two 3x3 convs' path and the shortcut
    assert resnet["layer1.0.add"].field.size == 7
    assert "receptive field 7×7" in resnet["layer1.0.add"].details()


def test_details_and_blocks() -> None:
    facts = {f.name: f for f in describe(_spec("resnet8"))}
    conv = facts["layer2.0.conv1"]
    assert conv.geometry() == "3×3 stride 2 pad 1"
    assert conv.shape == (32, 16, 16)
    assert conv.macs == 16 * 16 * 32 * 16 * 9
    text = conv.details()
    assert "conv2d" in text and "32×16×16" in text and "4,608 parameters" in text
    assert block_of("layer1.0.conv1") == "layer1.0"
    assert block_of("inception3a.branch2.0") == "inception3a"
    assert block_of("block1.layer2.conv") == "block1"
    assert block_of("conv1") == ""
