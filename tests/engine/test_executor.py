"""The executor's memory savings change no number: in-place ReLU/Add only where no one else reads
or keeps the array, and the gradient sums it adds into stay its own."""

from __future__ import annotations

import numpy as np
import pytest
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
    assert marked(m._plan) == {"relu1", "layer1.0.add", "layer1.0.relu"}  # (bn1 feeds relu1)
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


def dense_spec(fork: bool) -> dict:
    """A DenseNet-like block: three BN-ReLU-conv layers, each concatenated to all before;
    ``fork``: a second concatenation also extends the first one (no shared buffer for it)."""
    nodes = [node("conv2d", "stem", ["input"], in_channels=3, out_channels=4, kernel_size=3,
                  padding=1, bias=False)]  # fmt: skip
    x, c = "stem", 4
    for i in range(3):
        nodes += [
            node("batchnorm2d", f"n{i}", [x], num_features=c),
            node("relu", f"r{i}", [f"n{i}"]),
            node("conv2d", f"c{i}", [f"r{i}"], in_channels=c, out_channels=2, kernel_size=3,
                 padding=1, bias=False),
            node("concat", f"cat{i}", [x, f"c{i}"]),
        ]  # fmt: skip
        x, c = f"cat{i}", c + 2
    if fork:
        nodes.append(node("concat", "fork", ["cat0", "c2"]))
        nodes.append(node("concat", "join", [x, "fork"]))
        x, c = "join", c + 8
    nodes += [
        node("globalavgpool", "gap", [x]),
        node("dense", "fc", ["gap"], in_features=c, out_features=3),
    ]
    return {"name": "graph", "input_shape": [3, 6, 6], "nodes": nodes, "output": "fc"}


def test_a_chain_of_concatenations_shares_one_buffer_and_changes_no_number(rng):
    m = build_model(dense_spec(fork=False), rng)
    reserve = {s.node: (s.inplace, s.reserve) for s in m._plan.steps if s.reserve}
    assert reserve == {"cat0": (False, 10), "cat1": (True, 10), "cat2": (True, 10)}
    forked = build_model(dense_spec(fork=True), rng)
    reserve = {s.node: (s.inplace, s.reserve) for s in forked._plan.steps if s.reserve}
    # cat0 is extended twice (cat1, fork): no chain through it; cat1 starts one
    assert reserve == {"cat1": (False, 18), "cat2": (True, 18), "join": (True, 18)}
    for model in (m, forked):
        model = model.astype(np.float64)
        x = rng.standard_normal((3, 3, 6, 6))
        y = np.array([0, 2, 1])
        plain = executor.make_plan(model.nodes, model.inputs, model.output, inplace=False)
        ref, got = run(model, plain, x, y), run(model, model._plan, x, y)
        for a, b in zip(got[:2], ref[:2], strict=True):
            np.testing.assert_array_equal(a, b)
        for key, g in ref[2].items():
            np.testing.assert_array_equal(got[2][key], g, err_msg=key)


def test_concat_appends_into_the_buffer_its_first_input_starts(rng):
    from engine.blocks import Concat

    a, b, c = (rng.standard_normal((2, k, 3, 3)) for k in (2, 3, 1))
    y1 = Concat().forward([a, b], reserve=6)
    y2 = Concat().forward([y1, c], inplace=True)
    assert np.shares_memory(y1, y2) and y2.shape == (2, 6, 3, 3)
    np.testing.assert_array_equal(y2, np.concatenate([a, b, c], axis=1))
    np.testing.assert_array_equal(y1, np.concatenate([a, b], axis=1))  # untouched
    y3 = Concat().forward([y2, c], inplace=True)  # no room left: a fresh array
    assert not np.shares_memory(y2, y3)
    np.testing.assert_array_equal(y3, np.concatenate([a, b, c, c], axis=1))


def test_few_channel_convolutions_hand_out_chwn_memory_only_to_cheap_readers(rng):
    """LeNet's convolutions feed pools (through ReLU), GoogLeNet's 5x5 branches a
    concatenation: samples innermost. VGG's and ResNet's first convolution feeds a rows-layout
    convolution or a sum (through BatchNorm and ReLU): not, though its shape suits the layout.
    Whichever way each convolution goes, the loss and the gradients are the same."""
    from engine import architectures, layers, pooling

    lenet = build_model(architectures.choose("lenet5", channels=1).architecture(10), rng)
    assert lenet.nodes["conv1"].batch_inner_ok and lenet.nodes["conv2"].batch_inner_ok
    x = rng.standard_normal((4, 1, 28, 28)).astype(np.float32)
    assert pooling.batch_inner(lenet.nodes["conv1"].forward(x, training=True))
    for name in ("vgg", "resnet8", "googlenet"):
        m = build_model(architectures.choose(name, channels=3).architecture(4), rng)
        convs = {n: c for n, c in m.nodes.items() if isinstance(c, layers.Conv2D)}
        marked = {n for n, c in convs.items() if c.batch_inner_ok and c.few_channels()}
        first = next(iter(convs))
        assert convs[first].few_channels()
        if name == "googlenet":
            assert {"conv1", "inception3a.branch3.2", "inception4a.branch3.2"} <= marked
        else:
            assert first not in marked
        x = rng.standard_normal((3, 3, 32, 32)).astype(np.float32)
        y = rng.integers(0, 4, 3)
        results = []
        for setting in (None, False, True):  # as marked, no CHWN anywhere, CHWN everywhere
            for n, c in convs.items():
                c.batch_inner_ok = (n in marked) if setting is None else setting
            m.rng = np.random.default_rng(5)  # the same dropout masks each time
            loss = m.train_step(x, y, softmax_cross_entropy)[0]
            results.append((loss, {k: v.copy() for k, v in m.gradients().items()}))
        assert convs[first]._inner  # the last run took the batch-inner path
        for loss, grads in results[1:]:
            assert loss == pytest.approx(results[0][0], rel=1e-5)
            for key, g in grads.items():
                np.testing.assert_allclose(g, results[0][1][key], rtol=1e-3, atol=1e-4)
    assert layers.INNER_ALL is None


@pytest.mark.parametrize("threads", [1, 2])
def test_an_evaluation_pass_keeps_nothing_for_a_backward_that_never_comes(threads):
    """Inference (evaluation, validation, classify) frees what each layer would keep for
    backward as soon as the layer has run: DenseNet's convolutions, BatchNorms and ReLUs kept
    157 MB for a block of 64 images, in each worker's replica. The logits are unchanged."""
    import tracemalloc

    from engine import architectures

    arch = architectures.choose("resnet8", channels=3).architecture(4)
    model = build_model(arch, np.random.default_rng(0))
    x = np.random.default_rng(1).random((64, 3, 32, 32), dtype=np.float32)
    model.threads = threads
    try:
        model.forward(x)  # work buffers made once: only what outlives a pass counts below
        tracemalloc.start()
        z = model.forward(x)
        held, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    finally:
        model.threads = 1
    assert held - z.nbytes < 1 << 20, f"{held / 2**20:.1f} MB kept after an evaluation pass"
    assert peak < 24 << 20, f"peak {peak / 2**20:.1f} MB"  # 16.5 MB measured; 27+ before
    np.testing.assert_allclose(z, model.forward(x), rtol=1e-5, atol=1e-6)
