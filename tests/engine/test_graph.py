"""The graph of named nodes: structure checks, the JSON form, fan-out gradients, shards by name,
BatchNorm buffers in model files, and a residual + concat + BatchNorm network against PyTorch."""

from __future__ import annotations

import json
import signal
import sys

import numpy as np
import pytest
from test_gradients import numeric_grad

from engine.errors import ShapeError
from engine.graph import Network
from engine.inputspec import InputSpec
from engine.layers import Dense, Flatten, ReLU
from engine.losses import softmax_cross_entropy
from engine.model import build_model, lenet5
from engine.modelfile import load_model, save_model


def node(type_: str, name: str, inputs: list[str], **cfg) -> dict:
    return {"type": type_, "name": name, "inputs": inputs, **cfg}


def small_spec(bn: bool = True, dropout: float = 0.5) -> dict:
    """conv-bn-relu, a residual block (layer1.0), a 1x1 side branch concatenated with it,
    overlapping padded pools, global average pooling, dropout and a classifier."""
    norm = (lambda name, inp, c: node("batchnorm2d", name, [inp], num_features=c)) if bn else None
    nodes = [
        node("conv2d", "conv1", ["input"], in_channels=3, out_channels=6, kernel_size=3,
             padding=1, bias=not bn),
        *([norm("bn1", "conv1", 6)] if norm else []),
        node("relu", "relu1", ["bn1" if bn else "conv1"]),
        node("conv2d", "layer1.0.conv1", ["relu1"], in_channels=6, out_channels=6,
             kernel_size=3, padding=1, bias=not bn),
        *([norm("layer1.0.bn1", "layer1.0.conv1", 6)] if norm else []),
        node("add", "layer1.0.add", ["layer1.0.bn1" if bn else "layer1.0.conv1", "relu1"]),
        node("relu", "layer1.0.relu", ["layer1.0.add"]),
        node("conv2d", "side.conv", ["relu1"], in_channels=6, out_channels=3, kernel_size=1),
        node("concat", "cat", ["layer1.0.relu", "side.conv"]),
        node("maxpool2d", "pool", ["cat"], size=3, stride=2, padding=1),
        node("avgpool2d", "avg", ["pool"], size=3, stride=2, padding=1),
        node("globalavgpool", "gap", ["avg"]),
        node("dropout", "drop", ["gap"], p=dropout),
        node("dense", "fc", ["drop"], in_features=9, out_features=4),
    ]  # fmt: skip
    return {"name": "graph", "input_shape": [3, 8, 8], "nodes": nodes, "output": "fc"}


def test_graph_spec_round_trips_through_json(rng):
    m = build_model(small_spec(), rng)
    spec = json.loads(json.dumps(m.graph_spec()))
    assert spec["nodes"][0]["inputs"] == ["input"] and spec["output"] == "fc"
    again = build_model(spec, rng)
    assert again.summary() == m.summary() and again.graph_spec() == spec
    info = {i.name: i for i in m.summary()}
    assert info["cat"].output_shape == (9, 8, 8) and info["cat"].inputs == (
        "layer1.0.relu",
        "side.conv",
    )
    assert info["pool"].output_shape == (9, 4, 4) and info["avg"].output_shape == (9, 2, 2)
    keys = list(m.state_dict())
    assert keys[:5] == [
        "conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var"
    ]  # fmt: skip
    assert "layer1.0.bn1.num_batches_tracked" in m.buffers()
    assert set(m.parameters()) | set(m.buffers()) == set(keys)


def test_activations_list_every_node_in_topological_order(rng):
    m = build_model(small_spec(), rng)
    acts = m.activations(rng.standard_normal((2, 3, 8, 8)).astype(np.float32))
    assert [n for n, _ in acts] == ["input", *m.nodes, "softmax"]
    assert dict(acts)["cat"].shape == (2, 9, 8, 8) and all(a.flags.c_contiguous for _, a in acts)


def _rename(spec: dict, old: str, new: str) -> None:
    for n in spec["nodes"]:
        n["name"] = new if n["name"] == old else n["name"]
        n["inputs"] = [new if i == old else i for i in n["inputs"]]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s["nodes"].reverse(), "earlier node"),
        (lambda s: s["nodes"][2].update(inputs=["nowhere"]), "nowhere"),
        (lambda s: s["nodes"][2].update(name="bad name"), "bad name|not an earlier"),
        (lambda s: s["nodes"][2].update(name="input"), "name"),
        (lambda s: s["nodes"][5].update(inputs=["relu1"]), "two or more"),
        (lambda s: s["nodes"].insert(3, node("relu", "dead", ["relu1"])), "do not lead"),
        (lambda s: s.update(nodes=s["nodes"][:9], output="cat"), "class scores"),
        (lambda s: s["nodes"][3].update(out_channels=5), "expects 6"),
        (lambda s: s.update(nodes="x"), "must be a list"),
        (lambda s: _rename(s, "relu1", "conv1.weight"), "collide.*conv1.weight"),
    ],
)
def test_bad_graphs_are_refused_with_a_reason(change, message):
    spec = small_spec()
    change(spec)
    with pytest.raises(ShapeError, match=message):
        build_model(spec)


def test_a_value_read_twice_gets_both_gradients(rng, one_blas_thread):
    """relu1 feeds the residual add, layer1.0.conv1 and the side branch: float64 central
    differences through the whole graph (BatchNorm in training mode, a fixed dropout mask)."""
    m = build_model(small_spec(dropout=0.3), rng).astype(np.float64)
    x = rng.standard_normal((3, 3, 8, 8))
    y = np.array([0, 3, 1])

    def loss() -> float:
        m.rng = np.random.default_rng(5)  # the same dropout mask every time
        return softmax_cross_entropy(m.forward(x, training=True), y)[0]

    m.rng = np.random.default_rng(5)
    _, dz = softmax_cross_entropy(m.forward(x, training=True), y)
    dx = m.backward(dz)
    grads = {k: g.copy() for k, g in m.gradients().items()}
    for key in (
        "conv1.weight",
        "bn1.weight",
        "layer1.0.conv1.weight",
        "side.conv.bias",
        "fc.weight",
    ):
        p = m.parameters()[key]
        np.testing.assert_allclose(grads[key], numeric_grad(loss, p), rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(dx[:1], numeric_grad(loss, x)[:1], rtol=1e-5, atol=1e-8)


def test_network_built_in_code_with_dotted_names(rng):
    nodes = [
        (Flatten(name="features.flat"), ["input"]),
        (Dense(12, 5, rng=rng, name="features.0"), ["features.flat"]),
        (ReLU(name="features.1"), ["features.0"]),
        (Dense(5, 2, rng=rng, name="head"), ["features.1"]),
    ]
    m = Network(nodes, InputSpec((3, 2, 2)))
    assert list(m.parameters()) == [
        "features.0.weight",
        "features.0.bias",
        "head.weight",
        "head.bias",
    ]
    assert m.forward(np.zeros((1, 3, 2, 2), np.float32)).shape == (1, 2)
    assert build_model(m.graph_spec()).summary() == m.summary()
    for bad in ("a b", "input", "x..y", ".x"):
        with pytest.raises(ShapeError, match="bad node name"):
            Network(
                [(Flatten(name=bad), ["input"]), (Dense(12, 2, name="fc"), [bad])], m.input_spec
            )


# -- shards by name ------------------------------------------------------------------------------


def _step(threads: int, processes: bool = False, seed: int = 3):
    m = build_model(small_spec(bn=False), np.random.default_rng(seed))
    m.threads, m.processes = threads, processes
    m.rng = np.random.default_rng(9)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((48, 3, 8, 8)).astype(np.float32)
    y = rng.integers(0, 4, 48)
    try:
        loss, z = m.train_step(x, y, softmax_cross_entropy)
        return loss, z, {k: g.copy() for k, g in m.gradients().items()}
    finally:
        m.threads = 1


def test_dropout_and_shards_do_not_depend_on_the_number_of_workers(one_blas_thread):
    loss1, z1, g1 = _step(1)
    for threads in (2, 3):
        loss, z, g = _step(threads)
        assert loss == pytest.approx(loss1, rel=1e-5)
        np.testing.assert_allclose(z, z1, rtol=1e-5, atol=1e-6)
        for k in g1:
            np.testing.assert_allclose(g[k], g1[k], rtol=1e-4, atol=1e-6, err_msg=k)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process shards need fork")
def test_process_shards_equal_threads_for_a_graph_and_ignore_ctrl_c(one_blas_thread):
    loss_t, _, g_t = _step(2)
    m = build_model(small_spec(bn=False), np.random.default_rng(3))
    m.threads, m.processes = 2, True
    m.rng = np.random.default_rng(9)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((48, 3, 8, 8)).astype(np.float32)
    y = rng.integers(0, 4, 48)
    try:
        loss_p, _ = m.train_step(x, y, softmax_cross_entropy)
        assert loss_p == loss_t
        for k, g in m.gradients().items():
            np.testing.assert_array_equal(g, g_t[k], err_msg=k)
        # Ctrl+C reaches the whole process group: the shard worker must shrug it off
        workers = m._shards._workers
        assert workers is not None
        for proc in workers.procs:
            proc_pid = proc.pid
            assert proc_pid is not None
            import os

            os.kill(proc_pid, signal.SIGINT)
        m.train_step(x, y, softmax_cross_entropy)  # the same workers still answer
        assert all(p.is_alive() for p in workers.procs) and m._shards._workers is workers
    finally:
        m.threads = 1


_SPLITS = [(2, 32, False), (3, 31, False), (2, 32, True), (3, 31, True)]


@pytest.mark.parametrize(("threads", "n", "processes"), _SPLITS)
def test_batchnorm_trains_split_with_the_whole_batch_statistics(threads, n, processes, rng):
    """Worker threads or processes: every BatchNorm normalises with the whole batch's mean
    and variance (the shards exchange their sums), so the loss, the logits, the gradients and
    the running statistics equal one worker's, uneven shards included; in float64 to the
    last digits."""
    if processes and not sys.platform.startswith("linux"):
        pytest.skip("process shards need fork")
    x = rng.standard_normal((n, 3, 8, 8)) * 3 + 1
    y = rng.integers(0, 4, n)
    one = build_model(small_spec(), np.random.default_rng(0)).astype(np.float64)
    split = build_model(small_spec(), np.random.default_rng(0)).astype(np.float64)
    split.threads, split.processes = threads, processes
    for step in range(2):
        one.rng, split.rng = np.random.default_rng(step), np.random.default_rng(step)
        la, za = one.train_step(x, y)
        lb, zb = split.train_step(x, y)
        assert split._shards.replicas  # really split
        assert (split._shards._workers is not None) == processes
        np.testing.assert_allclose(lb, la, rtol=1e-12)
        np.testing.assert_allclose(zb, za, rtol=1e-10, atol=1e-12)
        for key, g in one.gradients().items():
            np.testing.assert_allclose(split.gradients()[key], g, rtol=1e-9, atol=1e-12)
    for key, b in one.buffers().items():
        np.testing.assert_allclose(split.buffers()[key], b, rtol=1e-12, err_msg=key)
    assert int(split.buffers()["bn1.num_batches_tracked"]) == 2  # counted once per batch
    split.threads = 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process shards need fork")
def test_batchnorm_process_shards_equal_thread_shards_bit_for_bit(rng):
    x = rng.standard_normal((40, 3, 8, 8)).astype(np.float32)
    y = rng.integers(0, 4, 40)
    results = []
    for processes in (False, True):
        m = build_model(small_spec(), np.random.default_rng(0))
        m.threads, m.processes = 2, processes
        m.rng = np.random.default_rng(5)
        try:
            loss, z = m.train_step(x, y)
            results.append((loss, z, m.gradients(), m.buffers()))
        finally:
            m.threads = 1
    (lt, zt, gt, bt), (lp, zp, gp, bp) = results
    assert lp == lt
    np.testing.assert_array_equal(zp, zt)
    for key in gt:
        np.testing.assert_array_equal(gp[key], gt[key], err_msg=key)
    for key in bt:
        np.testing.assert_array_equal(bp[key], bt[key], err_msg=key)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process shards need fork")
@pytest.mark.parametrize(("failing", "when"), [(17, "forward"), (16, "forward"), (17, "backward")])
def test_a_failing_process_shard_leaves_no_shard_waiting_at_a_batchnorm(
    failing, when, rng, monkeypatch
):
    """Between BatchNorm exchanges a worker process (17 of 33 samples) or the caller (16)
    raises: the step raises that error instead of waiting forever, and the next step trains."""
    m = build_model(small_spec(), rng)
    layer = m.nodes["layer1.0.conv1"]  # after bn1's exchange, before layer1.0.bn1's
    original = getattr(type(layer), when)

    def failing_sometimes(self, a, *args, **kwargs):
        if self.name == "layer1.0.conv1" and a.shape[0] == failing:
            raise ValueError(f"shard of {failing} failed")
        return original(self, a, *args, **kwargs)

    monkeypatch.setattr(type(layer), when, failing_sometimes)
    m.threads, m.processes = 2, True
    try:
        with pytest.raises(ValueError, match=f"shard of {failing} failed"):
            m.train_step(rng.standard_normal((33, 3, 8, 8)).astype(np.float32), np.arange(33) % 4)
        loss, _ = m.train_step(
            rng.standard_normal((30, 3, 8, 8)).astype(np.float32), np.arange(30) % 4
        )
        assert np.isfinite(loss)
    finally:
        m.threads = 1


def test_a_failing_shard_surfaces_its_error_and_leaves_no_shard_waiting(rng):
    """A shard that raises before a BatchNorm does not leave the other waiting at it: the
    step raises the shard's own error, and the next step trains normally."""
    m = build_model(small_spec(), rng)
    m.threads = 2
    x = rng.standard_normal((32, 3, 8, 8)).astype(np.float32)
    y = rng.integers(0, 4, 32)
    m.train_step(x, y)
    conv = m._shards.replicas[1]["conv1"]

    def broken(*args, **kwargs):
        raise ValueError("shard 1 failed")

    conv.forward = broken  # type: ignore[method-assign]
    with pytest.raises(ValueError, match="shard 1 failed"):
        m.train_step(x, y)
    del conv.forward
    loss, _ = m.train_step(x, y)
    assert np.isfinite(loss)
    m.threads = 1


def test_split_inference_equals_one_worker(rng):
    m = build_model(small_spec(), rng)
    x = rng.standard_normal((32, 3, 8, 8)).astype(np.float32)
    expect = m.forward(x)
    m.threads = 2
    np.testing.assert_allclose(m.forward(x), expect, rtol=1e-5, atol=1e-6)
    m.threads = 1


# -- files and cloning ---------------------------------------------------------------------------


def test_model_file_v2_keeps_buffers_and_their_dtypes(rng, tmp_path):
    m = build_model(small_spec(), rng, classes=["boat", "dog", "cat", "bird"])
    x = rng.standard_normal((8, 3, 8, 8)).astype(np.float32)
    for _ in range(3):
        m.train_step(x, rng.integers(0, 4, 8))
    m.input_spec = InputSpec((3, 8, 8), mean=(0.49, 0.48, 0.45), std=(0.25, 0.24, 0.26))
    back = load_model(save_model(m, tmp_path / "g.npz"))
    with np.load(tmp_path / "g.npz") as z:
        assert (
            z["bn1.num_batches_tracked"].dtype == np.int64
            and int(z["bn1.num_batches_tracked"]) == 3
        )
        assert z["bn1.running_var"].dtype == np.float32
        assert set(z.files) == {*m.state_dict(), "meta"}
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(back.state_dict()[k], v, err_msg=k)
    assert back.input_spec == m.input_spec and back.classes == m.classes
    np.testing.assert_array_equal(back.forward(x), m.forward(x))
    clone = m.clone()
    np.testing.assert_array_equal(
        clone.buffers()["bn1.running_mean"], m.buffers()["bn1.running_mean"]
    )


def test_per_channel_input_spec():
    spec = InputSpec((3, 2, 2), scale=1 / 255, mean=(0.5, 0.25, 0.0), std=(0.5, 0.25, 1.0))
    x = spec.to_tensor(np.full((1, 3, 1, 2), 255, np.uint8))
    np.testing.assert_allclose(x[0, :, 0, 0], [1.0, 3.0, 1.0], rtol=1e-6)  # padded row below
    np.testing.assert_allclose(x[0, :, 1, 0], [-1.0, -1.0, 0.0], rtol=1e-6)
    assert InputSpec.from_json(json.loads(json.dumps(spec.to_json()))) == spec
    assert InputSpec.from_json({"shape": [1, 28, 28], "mean": 0.1307, "std": 0.3081}).mean == 0.1307
    for bad in (
        {"shape": [1, 2, 2], "scale": 1e308, "std": 1e-308},
        {"shape": [3, 2, 2], "mean": [0.5, 0.5]},
        {"shape": [1, 2, 2], "std": 0},
        {"shape": [1, 2, 2], "mean": "x"},
        [1, 2],
    ):
        with pytest.raises(ShapeError):
            InputSpec.from_json(bad)


def test_divergence_restore_brings_buffers_back(rng):
    from engine.training import _GoodWeights

    m = build_model(small_spec(), rng)
    good = _GoodWeights(m.parameters(), m.state_dict())
    assert good.take("at the start")
    before = {k: v.copy() for k, v in m.state_dict().items()}
    m.train_step(rng.standard_normal((8, 3, 8, 8)).astype(np.float32), rng.integers(0, 4, 8))
    assert int(m.buffers()["bn1.num_batches_tracked"]) == 1
    good.restore()
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)


def test_lenet_keeps_its_chain_form_and_speed_path(rng):
    m = lenet5(rng)
    assert m.architecture["name"] == "lenet5" and m.graph_spec()["nodes"][3]["inputs"] == ["pool1"]
    steps = [(s.node, s.output) for s in m._plan.steps[:3]]
    assert steps == [("conv1", "conv1"), ("pool1", "relu1"), ("relu1", "pool1")]  # relu after pool


# -- PyTorch parity of a whole graph -----------------------------------------------------------

torch = pytest.importorskip("torch", reason="PyTorch is not installed; parity test skipped")
nn = torch.nn


class TorchSmall(nn.Module):
    """The network of small_spec() in PyTorch, with the dropout mask handed in."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(6)
        block = nn.Module()
        block.conv1 = nn.Conv2d(6, 6, 3, padding=1, bias=False)
        block.bn1 = nn.BatchNorm2d(6)
        self.layer1 = nn.ModuleList([block])
        self.side = nn.Module()
        self.side.conv = nn.Conv2d(6, 3, 1)
        self.fc = nn.Linear(9, 4)
        self.keep = None

    def forward(self, x):
        r = torch.relu(self.bn1(self.conv1(x)))
        b = self.layer1[0]
        a = torch.relu(b.bn1(b.conv1(r)) + r)
        y = torch.cat([a, self.side.conv(r)], dim=1)
        y = nn.functional.avg_pool2d(nn.functional.max_pool2d(y, 3, 2, 1), 3, 2, 1)
        y = y.mean(dim=(2, 3))
        if self.training and self.keep is not None:
            y = y * self.keep
        return self.fc(y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_residual_concat_batchnorm_network_matches_pytorch(dtype, rng):
    m = build_model(small_spec(dropout=0.25), rng)
    for k, p in m.parameters().items():
        if k.endswith("bn1.weight"):
            p[...] = rng.uniform(0.5, 1.5, p.shape)
    m.astype(dtype)
    net = TorchSmall()
    net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in m.state_dict().items()})
    net = net.to(torch.float64 if dtype == np.float64 else torch.float32)
    x = rng.standard_normal((6, 3, 8, 8)).astype(dtype)
    y = rng.integers(0, 4, 6)

    z = m.forward(x, training=True)
    _, dz = softmax_cross_entropy(z, y)
    dx = m.backward(dz)
    net.keep = torch.from_numpy(np.array(m.nodes["drop"]._keep))  # the engine's mask, scaled
    xt = torch.from_numpy(x).requires_grad_()
    zt = net.train()(xt)
    nn.functional.cross_entropy(zt, torch.from_numpy(y)).backward()

    tol = 1e-4 if dtype == np.float32 else 1e-9
    np.testing.assert_allclose(z, zt.detach().numpy(), rtol=tol, atol=tol)
    grads = m.gradients()
    for name, p in net.named_parameters():
        scale = max(1.0, float(p.grad.abs().max()))
        np.testing.assert_allclose(
            grads[name], p.grad.numpy(), rtol=tol, atol=tol * scale, err_msg=name
        )
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=tol, atol=tol * 1e-2)
    state = net.state_dict()
    for key, b in m.buffers().items():
        np.testing.assert_allclose(b, state[key].numpy(), rtol=tol, atol=tol, err_msg=key)
    ze = m.forward(x)  # evaluation: running statistics, no dropout
    np.testing.assert_allclose(
        ze, net.eval()(torch.from_numpy(x)).detach().numpy(), rtol=tol, atol=tol
    )


def test_build_model_refuses_absurd_sizes_before_building_anything():
    from engine.modelsize import TooLargeError

    wide = small_spec()
    wide["nodes"][-1].update(out_features=10**9)
    deep = {"name": "graph", "input_shape": [1, 4, 4], "output": "fc"}
    deep["nodes"] = [node("relu", f"r{i}", [f"r{i - 1}" if i else "input"]) for i in range(100_000)]
    deep["nodes"] += [
        node("flatten", "flat", ["r99999"]),
        node("dense", "fc", ["flat"], in_features=16, out_features=2),
    ]
    for arch in (
        {"name": "custom", "conv_filters": [10**6]},
        {"name": "lenet5", "in_channels": 10**6},
        wide,
        deep,
        {"name": "resnet8", "num_classes": 4, "input_shape": [3, 100_000, 100_000]},
    ):
        with pytest.raises(TooLargeError):
            build_model(arch)
