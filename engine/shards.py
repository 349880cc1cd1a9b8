"""Splitting a batch over threads or forked processes; everything keyed by node name.

With ``threads > 1`` each thread runs a contiguous shard of the batch through its own replica of
the layers (sharing the parameter arrays) and the gradients are summed by name: the result equals
the single-threaded one up to float rounding. NumPy releases the GIL inside its loops, so shards
really run in parallel. Set BLAS to one thread then (``threadpoolctl.threadpool_limits(1)``), or
the threads oversubscribe the cores.

``processes = True`` (Linux; default False) makes ``train_step`` run shards 1.. in forked worker
processes instead of threads: the same results bit for bit, but no GIL shared between the shards.
The workers start at the first such step and stop when ``threads`` changes or the model is
garbage-collected; fork before starting other threads you rely on in the children.

Dropout masks are drawn for the whole batch before it is split (see ``Network._masks``), so the
result does not depend on the number of workers. BatchNorm needs the whole batch's statistics:
the shards of each BatchNorm layer add their per-channel sums, so every shard normalises with
the whole batch's mean and variance, as one worker would. Threads meet at a barrier
(:class:`engine.blocks.BatchSync`); processes send their parts through their pipes to the caller,
which adds them in rank order, as the threads do, and sends the sum back (:class:`_PipeSync`).
"""

from __future__ import annotations

import itertools
import mmap
import multiprocessing
import os
import signal
import sys
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np

from engine import executor
from engine.blocks import BatchNorm2D, BatchSync
from engine.errors import WorkerDied
from engine.layers import Layer

if TYPE_CHECKING:
    from engine.graph import Network

FORK_OK = sys.platform.startswith("linux")
#: Seconds a shard process (and the caller waiting for it) polls its pipe before it sleeps in
#: a blocking read. A process that sleeps between batches hands its core back, and on a virtual
#: machine the core then takes a millisecond or more to wake (LeNet-5's half batch is ~5 ms of
#: work): polling across the short gap between two batches keeps both processes awake, as
#: OpenMP's threads spin between parallel regions. Only while every process has a core of its
#: own: with more shards than cores a polling process would take a working one's core.
SPIN_SECONDS = 0.005
Replica = dict[str, Layer]


class Shards:
    """The parallel machinery of one :class:`~engine.graph.Network` (held weakly)."""

    def __init__(self, net: Network) -> None:
        self._net = weakref.ref(net)
        self.threads = 1
        self.processes = False
        self.replicas: list[Replica] = []
        self.bounds: list[tuple[int, int]] = []
        self._pool: ThreadPoolExecutor | None = None
        self._syncs: list[BatchSync] = []
        self._workers: _ShardWorkers | None = None

    @property
    def net(self) -> Network:
        net = self._net()
        assert net is not None
        return net

    @property
    def active(self) -> bool:
        """True after a split forward pass whose backward has not run yet."""
        return bool(self.bounds)

    def set_threads(self, n: int) -> None:
        n = max(1, int(n))
        if n != self.threads:
            self.threads = n
            self.reset()
            if self._pool is not None:
                self._pool.shutdown(wait=False)
                self._pool = None

    def reset(self) -> None:
        self.replicas = []
        self.stop_workers()

    def clear(self) -> None:
        self.bounds = []

    def split(self, n: int) -> bool:
        """Should a batch of ``n`` be split?"""
        return self.threads > 1 and n >= 8 * self.threads

    def _prepare(self, n: int, masks: dict[str, np.ndarray]) -> None:
        net = self.net
        if len(self.replicas) != self.threads:
            self.replicas = [
                {name: layer.replica() for name, layer in net.nodes.items()}
                for _ in range(self.threads)
            ]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads - 1, thread_name_prefix="convscope")
        t = self.threads
        cuts = [n * i // t for i in range(t + 1)]
        self.bounds = list(itertools.pairwise(cuts))
        for rep, (a, b) in zip(self.replicas, self.bounds, strict=True):
            for name, m in masks.items():
                rep[name].mask = m[a:b]  # type: ignore[attr-defined]
        # BatchNorm: the whole batch's statistics, exchanged between the shards (a fresh
        # group per batch: a group broken by a failed shard is never reused)
        self._syncs = []
        for name, layer in net.nodes.items():
            if isinstance(layer, BatchNorm2D):
                group = BatchSync(t)
                self._syncs.append(group)
                for rank, rep in enumerate(self.replicas):
                    rep[name].sync = (group, rank)  # type: ignore[attr-defined]

    def _run(self, fn) -> list:
        assert self._pool is not None
        syncs = self._syncs
        # the caller's floating-point policy (np.errstate) holds in every shard: it is per
        # thread, and a pool thread would otherwise warn of what the caller checks itself
        errors_as = np.geterr()

        def guarded(rep: Replica, a: int, b: int) -> Any:
            try:
                with np.errstate(**errors_as):
                    return fn(rep, a, b)
            except BaseException:
                for group in syncs:  # no shard waits for this one at a BatchNorm
                    group.abort()
                raise

        futures = [
            self._pool.submit(guarded, rep, a, b)
            for rep, (a, b) in zip(self.replicas[1:], self.bounds[1:], strict=True)
        ]
        a, b = self.bounds[0]
        errors: list[BaseException] = []
        results = []
        try:
            results.append(guarded(self.replicas[0], a, b))  # shard 0 runs in this thread
        except BaseException as e:
            errors.append(e)
        for f in futures:
            try:
                results.append(f.result())
            except BaseException as e:
                errors.append(e)
        if errors:  # the shard that failed, not one it left waiting at a BatchNorm
            first = [e for e in errors if not isinstance(e, threading.BrokenBarrierError)]
            raise (first or errors)[0]
        return results

    def forward(self, x: np.ndarray, training: bool, masks: dict[str, np.ndarray]) -> np.ndarray:
        self._prepare(x.shape[0], masks)
        plan = self.net._plan
        outs = self._run(
            lambda r, a, b: executor.forward(r, plan, x[a:b], training, release=not training)
        )
        return np.concatenate(outs)

    def backward(self, d: np.ndarray, input_grad: bool) -> np.ndarray | None:
        plan = self.net._plan
        outs = self._run(lambda r, a, b: executor.backward(r, plan, d[a:b], input_grad))
        self._sum_grads([rep for rep in self.replicas])
        return np.concatenate(outs) if input_grad else None

    def _sum_grads(self, parts: list[dict[str, Any]]) -> None:
        """The model's grads = the sum of the parts' grads, node by node, key by key (``parts``
        are replicas ``{node: layer}`` or ``{node: grads dict}``)."""

        def grads(part: dict[str, Any], name: str) -> dict[str, np.ndarray]:
            v = part[name]
            return v.grads if isinstance(v, Layer) else v

        for name, layer in self.net.nodes.items():
            for key, g in layer.grads.items():
                np.add(grads(parts[0], name)[key], grads(parts[1], name)[key], out=g)
                for more in parts[2:]:
                    g += grads(more, name)[key]

    def train_step(
        self, x: np.ndarray, labels: np.ndarray, loss_fn, masks: dict[str, np.ndarray]
    ) -> tuple[float, np.ndarray]:
        n = x.shape[0]
        self._prepare(n, masks)
        plan = self.net._plan
        if self.processes and FORK_OK:
            return self._train_step_processes(x, labels, loss_fn, masks)

        def shard(r: Replica, a: int, b: int) -> tuple[float, np.ndarray]:
            z = executor.forward(r, plan, x[a:b], True)
            loss, dz = loss_fn(z, labels[a:b], batch=n)
            executor.backward(r, plan, dz, False)
            return float(loss), z

        outs = self._run(shard)
        self._sum_grads(self.replicas)
        self.bounds = []
        return sum(loss for loss, _ in outs), np.concatenate([z for _, z in outs])

    def _train_step_processes(
        self, x: np.ndarray, labels: np.ndarray, loss_fn, masks: dict[str, np.ndarray]
    ) -> tuple[float, np.ndarray]:
        net = self.net
        n = x.shape[0]
        params = net.parameters()
        key = (self.threads, tuple((k, p.shape, p.dtype) for k, p in params.items()), loss_fn)
        need = max(b - a for a, b in self.bounds[1:])
        if self._workers is None or self._workers.key != key or self._workers.cap < need:
            self.stop_workers()
            self._workers = _ShardWorkers(net, key, need, loss_fn)
        w = self._workers
        for layer in self.replicas[0].values():
            if isinstance(layer, BatchNorm2D):
                layer.sync = (w.exchange, 0)
        try:
            w.start(x, labels, self.bounds[1:], n, masks)
            a, b = self.bounds[0]
            z0 = executor.forward(self.replicas[0], net._plan, x[a:b], True)
            loss, dz = loss_fn(z0, labels[a:b], batch=n)
            executor.backward(self.replicas[0], net._plan, dz, False)
            losses, zs = w.finish()
        except WorkerDied:
            self.stop_workers()
            raise WorkerDied(_death(w.procs)) from None
        except BaseException:
            self.stop_workers()  # an answer may be pending: never reuse these workers
            raise
        finally:
            self.bounds = []
        self._sum_grads([self.replicas[0], *w.grads])
        return float(loss) + sum(losses), np.concatenate([z0, *zs])

    def stop_workers(self) -> None:
        if self._workers is not None:
            self._workers.stop()
            self._workers = None


def _shared(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """A zeroed array in anonymous shared memory (seen by processes forked afterwards)."""
    dtype = np.dtype(dtype)
    count = int(np.prod(shape))
    buf = mmap.mmap(-1, max(count * dtype.itemsize, 1))
    return np.frombuffer(buf, dtype=dtype, count=count).reshape(shape)


class _ShardWorkers:
    """Forked worker processes for ``train_step`` with ``processes = True``.

    Worker ``i`` runs shard ``i + 1`` of each batch (the caller runs shard 0) on its own layer
    replicas, with no GIL shared with the caller. Parameters, the shard's images, its logits and
    its gradients travel through shared memory, by node name (the caller copies the current
    parameters in before each batch, so optimisers keep updating the model's own arrays); a pipe
    carries the labels, the shard's dropout masks, BatchNorm's sums (:class:`_PipeSync`) and the
    "done" answer. The arithmetic is the threaded mode's, so the results are the same bit for bit.
    A worker that dies (the system's out-of-memory killer) ends the step with :class:`WorkerDied`
    saying how; the next step forks new workers.
    """

    def __init__(self, net: Network, key: tuple, cap: int, loss_fn) -> None:
        self.key, self.cap = key, cap  # cap: the largest shard (samples) the buffers take
        t = net.threads
        self.spin = _spin_seconds(t)
        self.live = net.parameters()
        self.params = {k: _shared(p.shape, p.dtype) for k, p in self.live.items()}
        dtype = next(iter(self.params.values())).dtype if self.params else np.dtype(np.float32)
        self.x = [_shared((cap, *net.input_spec.shape), dtype) for _ in range(t - 1)]
        self.z = [_shared((cap, net.num_classes), dtype) for _ in range(t - 1)]
        self.grads: list[dict[str, dict[str, np.ndarray]]] = []
        self.conns: list[Any] = []  # the caller's ends of the pipes (Connection)
        self.procs: list[Any] = []
        ctx = multiprocessing.get_context("fork")
        for i in range(t - 1):
            layers: Replica = {}
            for name, layer in net.nodes.items():
                r = layer.replica()
                r.params = {k: self.params[f"{name}.{k}"] for k in layer.params}
                r.grads = {k: _shared(g.shape, g.dtype) for k, g in layer.grads.items()}
                layers[name] = r
            self.grads.append({name: r.grads for name, r in layers.items()})
            parent, child = ctx.Pipe()
            for r in layers.values():
                if isinstance(r, BatchNorm2D):
                    r.sync = (_PipeSync([child], self.spin), i + 1)
            callers = [*self.conns, parent]  # the caller's ends, which the worker closes
            proc = ctx.Process(
                target=_shard_worker,
                args=(child, layers, net._plan, self.x[i], self.z[i], loss_fn, self.spin, callers),
                daemon=True,
                name=f"convscope-shard{i + 1}",
            )
            proc.start()
            child.close()
            self.conns.append(parent)
            self.procs.append(proc)
        self.exchange = _PipeSync(self.conns, self.spin)  # the caller's end (rank 0)
        self._finalizer = weakref.finalize(self, _stop, self.conns, self.procs)
        self._sizes: list[int] = []

    def start(self, x, labels, bounds, n: int, masks: dict[str, np.ndarray]) -> None:
        for k, p in self.live.items():
            np.copyto(self.params[k], p)
        self._sizes = []
        for i, (a, b) in enumerate(bounds):
            self.x[i][: b - a] = x[a:b]
            self._sizes.append(b - a)
            shard_masks = {name: m[a:b] for name, m in masks.items()}
            _send(self.conns[i], (b - a, labels[a:b], n, shard_masks))

    def finish(self) -> tuple[list[float], list[np.ndarray]]:
        losses = []
        for conn in self.conns:
            answer = _receive(conn, self.spin)
            if isinstance(answer, BaseException):
                raise answer
            losses.append(answer)
        return losses, [z[:m].copy() for z, m in zip(self.z, self._sizes, strict=True)]

    def stop(self) -> None:
        self._finalizer()


class _Stopped(BaseException):
    """A shard process told to stop while it waited for BatchNorm's sums."""


class _PipeSync:
    """:class:`~engine.blocks.BatchSync`'s exchange between forked processes, through the pipes
    that carry each batch. Rank 0 (the caller, holding a pipe to every worker) takes every
    worker's part in rank order, adds them as the threads do and sends the sum back; a worker
    (holding its one pipe) sends its part and waits for the sum. A worker that failed sends its
    error instead, which the caller raises; a caller that gave up stops its workers (``None``).
    """

    def __init__(self, conns: list, spin: float) -> None:
        self.conns, self.spin = conns, spin

    def allsum(self, rank: int, a: np.ndarray) -> np.ndarray:
        if rank:
            conn = self.conns[0]
            _send(conn, a)
            total = _receive(conn, self.spin)
            if not isinstance(total, np.ndarray):
                raise _Stopped
            return total
        parts = [a]
        for conn in self.conns:
            part = _receive(conn, self.spin)
            if isinstance(part, BaseException):
                raise part
            if not isinstance(part, np.ndarray):
                raise RuntimeError("a training worker process fell out of step")
            parts.append(part)
        total = np.sum(parts, axis=0)
        for conn in self.conns:
            _send(conn, total)
        return total


_GONE = "a training worker process ended in the middle of a batch"


def _send(conn, message: Any) -> None:
    """Send ``message`` on ``conn``; a peer that is gone is :class:`WorkerDied`."""
    try:
        conn.send(message)
    except OSError:
        raise WorkerDied(_GONE) from None


def _receive(conn, spin: float) -> Any:
    """The next message on ``conn`` (polled for ``spin`` seconds first); a peer that is gone is
    :class:`WorkerDied`."""
    try:
        _poll(conn, spin)
        return conn.recv()
    except (EOFError, OSError):
        raise WorkerDied(_GONE) from None


def _death(procs) -> str:
    """What ended the first worker process of ``procs`` that is gone, in one line."""
    codes = [p.exitcode for p in procs if p.exitcode]  # the ones told to stop end with 0
    how = "ended"
    if codes and codes[0] < 0:
        try:
            name = signal.Signals(-codes[0]).name
        except ValueError:
            name = f"signal {-codes[0]}"
        how = f"was killed ({name}{', as when memory runs out' if name == 'SIGKILL' else ''})"
    elif codes:
        how = f"ended with status {codes[0]}"
    return (
        f"a training worker process {how} in the middle of a batch; train with fewer workers "
        "or a smaller batch"
    )


def _stop(conns, procs) -> None:
    for conn in conns:
        try:
            conn.send(None)
        except OSError:
            pass
    for proc in procs:
        proc.join(timeout=2)
        if proc.is_alive():
            proc.terminate()


def _spin_seconds(processes: int) -> float:
    """:data:`SPIN_SECONDS` when each of ``processes`` has a core of its own, else 0."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return SPIN_SECONDS if processes <= cores else 0.0


def _poll(conn, seconds: float) -> None:
    """Poll ``conn`` for up to ``seconds`` (the caller's ``recv`` then returns at once, or
    sleeps until the message comes)."""
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline and not conn.poll():
        pass


def _shard_worker(
    conn,
    layers: Replica,
    plan,
    xbuf: np.ndarray,
    zbuf: np.ndarray,
    loss_fn,
    spin: float,
    callers: list,
):
    """The loop of one :class:`_ShardWorkers` process.

    Ctrl+C reaches every process of the terminal's group: the worker ignores it (the parent
    cancels the run and stops the workers), so no traceback comes from here. The caller's ends
    of the pipes (``callers``, copied by the fork) are closed first: a caller that is killed
    then leaves the worker an end-of-file, and it ends, instead of waiting forever.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for end in callers:
        end.close()
    while True:
        try:
            _poll(conn, spin)
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        m, labels, n, masks = msg
        try:
            for name, mask in masks.items():
                layers[name].mask = mask  # type: ignore[attr-defined]
            z = executor.forward(layers, plan, xbuf[:m], True)
            loss, dz = loss_fn(z, labels, batch=n)
            executor.backward(layers, plan, dz, False)
            zbuf[:m] = z
            conn.send(float(loss))
        except (_Stopped, WorkerDied):  # stopped, or the caller is gone: nothing to answer
            return
        except Exception as exc:  # handed to the caller, which raises it
            try:
                conn.send(exc)
            except Exception:  # not picklable: send its text
                conn.send(RuntimeError(f"training worker: {exc!r}"))
