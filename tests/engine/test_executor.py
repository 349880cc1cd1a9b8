"""The executor's memory savings change no number: in-place ReLU/Add only where no one else reads
or keeps the array, and the gradient sums it adds into stay its own."""

from __future__ import annotations

import numpy as np
from test_graph import node, small_spec

from engine import executor
from engine.losses import softmax_cross_entropy
from engine.model import build_model


def twice_read_spec() -> dict:
    """``small_spec`` with bn1 read twice (relu1 and a second residual add): relu1 must not
    overwrite bn1's output, which the add still reads."""
    spec = small_spec(dropout=0.0)
    nodes = spec["nodes"]
    at = [n["name"] for n in nodes].index("layer1.0.relu")
    nodes.insert(at + 1, node("add", "again", ["layer1.0.relu", "bn1"]))
    nodes[[n["name"] for n in nodes].index("cat")]["inputs"][0] = "again"
    return spec


def marked(plan: executor.Plan) -> set[str]:
    return {s.node for s in plan.steps if s.inplace}


def run(m, plan, x, y):
    z = executor.forward(m.nodes, plan, x, True)
    _, dz = softmax_cross_entropy(z, y)
    dx = executor.backward(m.nodes, plan, dz, True)
    return z, dx, {k: g.copy() for k, g in m.gradients().items()}


def test_inplace_steps_only_where_the_input_is_fresh_and_read_once(rng):
    m = build_model(small_spec(dropout=0.0), rng)
    assert marked(m._plan) == {"relu1", "layer1.0.add", "layer1.0.relu"}
    m2 = build_model(twice_read_spec(), rng)
    # bn1 is read twice now; relu1 and "again" leave it alone; layer1.0.relu (read by "again"
    # alone, made by an add) still may
    assert marked(m2._plan) == {"layer1.0.add", "layer1.0.relu"}


def test_inplace_and_freeing_plans_give_the_same_numbers(rng):
    for spec in (small_spec(dropout=0.0), twice_read_spec()):
        m = build_model(spec, rng).astype(np.float64)
        x = rng.standard_normal((4, 3, 8, 8))
        y = np.array([0, 3, 1, 2])
        plain = executor.make_plan(m.nodes, m.inputs, m.output, inplace=False)
        fast = executor.make_plan(m.nodes, m.inputs, m.output)
        x0 = x.copy()
        ref, got = run(m, plain, x, y), run(m, fast, x, y)
        assert np.array_equal(x, x0)
        np.testing.assert_array_equal(got[0], ref[0])
        np.testing.assert_array_equal(got[1], ref[1])
        for key, g in ref[2].items():
            np.testing.assert_array_equal(got[2][key], g, err_msg=key)


def test_a_value_read_three_times_sums_into_its_own_buffer(rng):
    """relu1 is read by three nodes: the third gradient goes into the executor's sum, and no
    layer's returned gradient changes (each layer's dx is compared with its own copy)."""
    m = build_model(small_spec(dropout=0.0), rng).astype(np.float64)
    x = rng.standard_normal((2, 3, 8, 8))
    _, dz = softmax_cross_entropy(m.forward(x, training=True), np.array([1, 2]))
    returned: list[tuple[np.ndarray, np.ndarray]] = []
    for layer in m.nodes.values():
        orig = layer.backward

        def spy(d, input_grad=True, _orig=orig):
            dx = _orig(d, input_grad)
            for a in [dx] if isinstance(dx, np.ndarray) else dx or []:
                returned.append((a, a.copy()))
            return dx

        layer.backward = spy
    total = executor.backward(m.nodes, m._plan, dz, True)
    assert total is not None and len(returned) > 5
    for a, copy in returned:
        np.testing.assert_array_equal(a, copy)


def test_a_training_step_frees_what_backward_used_and_gives_the_same_gradients(rng):
    """train_step releases each layer's kept arrays as its backward ends (BatchNorm's input,
    ReLU's mask); the gradients equal forward + backward without freeing."""
    m = build_model(small_spec(dropout=0.0), rng).astype(np.float64)
    x = rng.standard_normal((4, 3, 8, 8))
    y = np.array([0, 3, 1, 2])
    _, dz = softmax_cross_entropy(m.forward(x, training=True), y)
    m.backward(dz, input_grad=False)
    ref = {k: g.copy() for k, g in m.gradients().items()}
    assert m.nodes["bn1"]._x is not None and m.nodes["relu1"]._mask is not None
    m.train_step(x, y)
    assert m.nodes["bn1"]._x is None and m.nodes["relu1"]._mask is None
    for key, g in m.gradients().items():
        np.testing.assert_array_equal(g, ref[key], err_msg=key)
