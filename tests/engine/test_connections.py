"""The strongest connections of a fully connected unit (Figure 20), checked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from engine import architectures
from engine.connections import every_connection, strongest_connections
from engine.errors import ShapeError
from engine.model import build_model


def _by_hand(weights: np.ndarray, k: int) -> list[tuple[int, float]]:
    """The k (index, weight) of largest |w|, the lower index first among equals."""
    pairs = sorted(enumerate(weights.tolist()), key=lambda p: (-abs(p[1]), p[0]))
    return pairs[:k]


def test_lenet_fc1_reads_positions_in_pool2s_maps() -> None:
    model = build_model("lenet5")
    w = model.layer("fc1").params["weight"]  # (120, 400): pool2's 16x5x5 flattened
    links = strongest_connections(model, "fc1", 7, k=5).incoming
    assert [link.node for link in links] == ["pool2"] * 5
    expected = [((i // 25, i % 25 // 5, i % 5), v) for i, v in _by_hand(w[7], 5)]
    assert [(link.unit, link.weight) for link in links] == expected


def test_every_incoming_link_of_a_unit_rebuilds_its_value() -> None:
    """Summing weight x the value at each named unit gives fc1's output: the units are named
    where the network reads them (flatten's C, H, W order)."""
    model = build_model("lenet5")
    x = np.random.default_rng(0).normal(size=(1, 1, 28, 28)).astype(np.float32)
    acts = {name: a[0] for name, a in model.activations(x)}
    links = strongest_connections(model, "fc1", 11, k=400).incoming
    total = sum(acts[link.node][link.unit] * link.weight for link in links)
    bias = model.layer("fc1").params["bias"][11]
    assert total + bias == pytest.approx(float(acts["fc1"][11]), rel=1e-4, abs=1e-5)


def test_outgoing_links_are_the_column_of_the_next_dense_layer() -> None:
    model = build_model("lenet5")
    w = model.layer("fc2").params["weight"]  # (84, 120); fc1 -> relu3 -> fc2
    w[:, 5] = 0.0
    w[10, 5], w[3, 5], w[7, 5] = 0.9, -2.0, 0.5
    links = strongest_connections(model, "fc1", 5, k=3).outgoing
    assert [(link.node, link.unit, link.weight) for link in links] == [
        ("fc2", (3,), -2.0),
        ("fc2", (10,), pytest.approx(0.9)),
        ("fc2", (7,), 0.5),
    ]
    last = strongest_connections(model, "fc3", 2)
    assert last.outgoing == [] and len(last.incoming) == 6
    assert {link.node for link in last.incoming} == {"fc2"}
    model.classes = [f"class {i}" for i in range(10)]
    into = strongest_connections(model, "fc2", 0).outgoing[0]
    assert into.label == f"fc3 unit {into.unit[0]} (class {into.unit[0]})"


def test_the_text_names_each_unit_where_the_views_draw_it() -> None:
    model = build_model("lenet5")
    w = model.layer("fc1").params["weight"]
    w[4] = 0.0
    w[4, 2 * 25 + 3 * 5 + 1] = -0.5  # pool2 map 3, row 3, column 1
    conn = strongest_connections(model, "fc1", 4, k=1)
    assert conn.incoming[0].label == "pool2 map 3 (x 1, y 3)"
    lines = conn.text().splitlines()
    assert lines[0] == "Strongest connections of fc1 unit 4 (red +, blue −):"
    assert lines[1] == "-0.500 from pool2 map 3 (x 1, y 3)"
    assert lines[2].startswith(("+", "-")) and " to fc2 unit " in lines[2]


@pytest.mark.parametrize("name", ["resnet8", "googlenet"])  # dense after global average pooling
def test_a_graph_models_head_reads_the_pooled_channels(name: str) -> None:
    model = build_model(architectures.build_spec(name, (3, 32, 32), 4))
    head = model.output
    w = model.layer(head).params["weight"]
    conn = strongest_connections(model, head, 2, k=4)
    assert conn.outgoing == []
    assert [link.node for link in conn.incoming] == ["avgpool"] * 4  # googlenet: past dropout
    expected = [((i,), v) for i, v in _by_hand(w[2], 4)]
    assert [(link.unit, link.weight) for link in conn.incoming] == expected


def test_bad_requests_say_what_to_choose() -> None:
    model = build_model("lenet5")
    with pytest.raises(ShapeError, match=r"not a fully connected node.*fc1"):
        strongest_connections(model, "conv1", 0)
    with pytest.raises(ShapeError, match=r"units 0\.\.83"):
        strongest_connections(model, "fc2", 84)


def test_every_connection_agrees_with_one_unit_at_a_time() -> None:
    model = build_model("lenet5")
    every = every_connection(model, k=4)
    assert {name: len(units) for name, units in every.items()} == {"fc1": 120, "fc2": 84, "fc3": 10}
    for node, unit in [("fc1", 0), ("fc1", 119), ("fc2", 40), ("fc3", 9)]:
        assert every[node][unit] == strongest_connections(model, node, unit, k=4)


def test_equal_weights_come_in_index_order() -> None:
    model = build_model("lenet5")
    w = model.layer("fc1").params["weight"]
    w[0] = 0.0
    w[0, 9], w[0, 2], w[0, 5], w[0, 7] = 0.3, -0.3, 0.3, 0.1
    links = strongest_connections(model, "fc1", 0, k=4).incoming
    assert [(link.unit, link.weight) for link in links] == [
        ((0, 0, 2), pytest.approx(-0.3)),
        ((0, 1, 0), pytest.approx(0.3)),
        ((0, 1, 4), pytest.approx(0.3)),
        ((0, 1, 2), pytest.approx(0.1)),
    ]


def test_lazy_connections_work_a_node_out_when_asked_and_equal_every_connection():
    """The live view's mapping: the dense nodes known at once, each node's links worked out
    on first access (from the weights of that moment), the same as every_connection's."""
    from engine.connections import LazyConnections
    from engine.model import lenet5

    model = lenet5(np.random.default_rng(4))
    lazy = LazyConnections(model)
    assert list(lazy) == ["fc1", "fc2", "fc3"] and len(lazy) == 3 and "conv1" not in lazy
    assert "fc1" in lazy and not lazy._done  # knowing the nodes works none of them out
    model.layer("fc2").params["weight"][...] *= -1  # after the mapping was made: still seen
    assert lazy == every_connection(model)
    assert lazy["fc2"][0].incoming[0].weight == every_connection(model)["fc2"][0].incoming[0].weight
    with pytest.raises(KeyError):
        lazy["conv1"]
