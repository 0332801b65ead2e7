"""Training a photonic neural network on a sampled device, in three modes.

* ``digital``: train the ideal, error-free model with exact gradients, then program its
  phases onto the erroneous device and evaluate there ("offline" training);
* ``insitu``: train on the device with gradients measured by the three-pass protocol;
* ``analog``: as ``insitu`` with the analog toggle protocol.

All modes of one seed share the device (its static errors), the initial phases and the
minibatch order: the seed is split into independent streams for the device, the
initialisation, the data order, the measurement noise and the evaluation noise. Evaluation
on the device includes I/O readout noise (inference on a chip).

The core runs an *ensemble*: ``K`` seeds train together, every array carrying a leading
device axis, each device with its own random streams, so ``train_ensemble(seeds)`` gives
the numbers that ``train(seed)`` gives for each seed, at a fraction of the numpy overhead.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from .datasets import Task, boundary_grid, load_task
from .errors import DeviceErrors, DeviceNoise, ErrorModel
from .network import (
    PhotonicNetwork,
    build_network,
    exact_gradient,
    loss_and_seed,
    network_forward,
    predict_proba,
    sample_devices,
)
from .optim import make_optimizer
from .insitu import gradient_error, measure_gradient

MODES = ("digital", "insitu", "analog")
_PROTOCOL = {"insitu": "three_pass", "analog": "analog"}


@dataclass
class TrainResult:
    """Outcome of one training run: curves per evaluation epoch and final metrics.

    Accuracies and losses are measured on the device (with readout noise; decision-boundary
    grids are computed without it, as the device's noise-free response); gradient errors
    are ``1 - cos(measured, exact device gradient)`` per step, summarised per epoch (NaN
    for ``digital``, which uses exact gradients of the ideal model).
    """

    mode: str
    task: str
    seed: int
    epoch: np.ndarray
    train_accuracy: np.ndarray
    test_accuracy: np.ndarray
    train_loss: np.ndarray
    test_loss: np.ndarray
    grad_error_mean: np.ndarray
    grad_error_median: np.ndarray
    ideal_test_accuracy: float
    step_grad_errors: np.ndarray
    train_seconds: float
    params: np.ndarray
    boundary: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """Final scalars (last evaluation) and whole-run gradient-error statistics."""
        errs = self.step_grad_errors
        finite = errs[np.isfinite(errs)]
        return {
            "test_accuracy": float(self.test_accuracy[-1]),
            "train_accuracy": float(self.train_accuracy[-1]),
            "test_loss": float(self.test_loss[-1]),
            "train_loss": float(self.train_loss[-1]),
            "ideal_test_accuracy": float(self.ideal_test_accuracy),
            "grad_error_mean": float(finite.mean()) if finite.size else float("nan"),
            "grad_error_median": float(np.median(finite)) if finite.size else float("nan"),
            "train_seconds": float(self.train_seconds),
        }


def default_network(
    task: Task,
    n_layers: int | None = None,
    topology: str = "rectangular",
    depth: int | None = None,
    loss: str = "cross_entropy",
    logit_scale: float | None = None,
) -> PhotonicNetwork:
    """The recipe of DESIGN.md section 6 for a task: 3 layers for 2-D tasks, 2 for images."""
    defaults = task.default_network()
    return build_network(
        task.n_ports,
        n_layers if n_layers is not None else (3 if task.is_2d else 2),
        task.n_classes,
        topology,
        depth,
        defaults["readout"],
        defaults["logit_scale"] if logit_scale is None else logit_scale,
        loss,
    )


def _streams(seed: int):
    """Independent generators: device, init, order, measurement, evaluation."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(int(seed)).spawn(5)]


def _evaluate(net, params, x, y, devices, rngs):
    """Accuracy and mean loss per device of a whole set, on the device with readout noise."""
    k = params.shape[0]
    xs = np.broadcast_to(x, (k,) + x.shape)
    labels = np.broadcast_to(y, (k,) + y.shape)
    out = network_forward(net, params, xs, devices, rngs).outputs[-1]
    loss, _, _, probs = loss_and_seed(net, out, labels)
    acc = np.mean(np.argmax(probs, axis=-1) == labels, axis=-1)
    return acc, loss, probs


def train_ensemble(
    task: Task | str,
    network: PhotonicNetwork | None = None,
    errors: ErrorModel | None = None,
    mode: str = "insitu",
    optimizer: str = "adam",
    lr: float = 0.02,
    epochs: int = 10,
    batch_size: int = 8,
    seeds=(0,),
    eval_every: int = 1,
    boundary_size: int = 0,
    record_gradient_error: bool = True,
    mnist_path: str | None = None,
    launch: str = "per_example",
) -> list[TrainResult]:
    """Train one network per seed, all at once (one device each); see :func:`train`."""
    task = load_task(task, mnist_path=mnist_path) if isinstance(task, str) else task
    errors = ErrorModel() if errors is None else errors
    net = default_network(task) if network is None else network
    _check(task, net, mode, epochs, batch_size, eval_every)
    opt = make_optimizer(optimizer, lr)
    seeds = [int(s) for s in seeds]
    k = len(seeds)
    streams = [_streams(s) for s in seeds]
    dev_rng, init_rng, order_rng, meas_gens, eval_gens = ([st[i] for st in streams] for i in range(5))
    meas_rng, eval_rng = DeviceNoise(meas_gens), DeviceNoise(eval_gens)

    per_seed_devices = [sample_devices(net, errors, r) for r in dev_rng]
    devices = [DeviceErrors.stack([d[layer] for d in per_seed_devices]) for layer in range(net.n_layers)]
    params = np.stack([net.init_params(r) for r in init_rng])
    state = opt.init(params)
    train_devices = None if mode == "digital" else devices
    protocol = _PROTOCOL.get(mode)

    n_train = len(task.y_train)
    n_batches = -(-n_train // batch_size)
    curves = {name: [] for name in ("epoch", "train_acc", "test_acc", "train_loss", "test_loss", "ge_mean", "ge_median")}
    step_errors = []
    start = time.perf_counter()

    def record(epoch: int, epoch_errors: list) -> None:
        tr_acc, tr_loss, _ = _evaluate(net, params, task.x_train, task.y_train, devices, eval_rng)
        te_acc, te_loss, _ = _evaluate(net, params, task.x_test, task.y_test, devices, eval_rng)
        curves["epoch"].append(epoch)
        curves["train_acc"].append(tr_acc)
        curves["test_acc"].append(te_acc)
        curves["train_loss"].append(tr_loss)
        curves["test_loss"].append(te_loss)
        if epoch_errors:
            e = np.stack(epoch_errors, axis=-1)
            with warnings.catch_warnings():  # a step with a zero gradient has no direction (NaN)
                warnings.simplefilter("ignore", RuntimeWarning)
                curves["ge_mean"].append(np.nanmean(e, axis=-1))
                curves["ge_median"].append(np.nanmedian(e, axis=-1))
        else:
            curves["ge_mean"].append(np.full(k, np.nan))
            curves["ge_median"].append(np.full(k, np.nan))

    record(0, [])
    epoch_errors: list = []
    for epoch in range(1, epochs + 1):
        orders = np.stack([r.permutation(n_train) for r in order_rng])
        for b in range(n_batches):
            idx = orders[:, b * batch_size : (b + 1) * batch_size]
            xb = task.x_train[idx]
            yb = task.y_train[idx]
            if mode == "digital":
                _, grad, _ = exact_gradient(net, params, xb, yb, None)
            else:
                grad = measure_gradient(net, params, xb, yb, train_devices, protocol, meas_rng, launch=launch).grad
                if record_gradient_error:
                    _, true_grad, _ = exact_gradient(net, params, xb, yb, train_devices)
                    err = gradient_error(grad, true_grad)
                    epoch_errors.append(err)
                    step_errors.append(err)
            params = opt.step(params, grad, state)
        if epoch % eval_every == 0 or epoch == epochs:
            record(epoch, epoch_errors)
            epoch_errors = []
    elapsed = time.perf_counter() - start

    ideal_acc, _, _ = _evaluate(net, params, task.x_test, task.y_test, None, None)
    boundaries = [{} for _ in range(k)]
    if boundary_size and task.is_2d:
        ax1, ax2, points = boundary_grid(boundary_size)
        grid = task.encode_points(points)
        probs = predict_proba(net, params, np.broadcast_to(grid, (k,) + grid.shape), devices)
        for i in range(k):
            boundaries[i] = {
                "grid_x1": ax1,
                "grid_x2": ax2,
                "grid_prob": probs[i, :, 1],
                "points_x1": task.points_test[:, 0],
                "points_x2": task.points_test[:, 1],
                "points_label": task.y_test,
            }
    errs = np.stack(step_errors, axis=-1) if step_errors else np.full((k, 0), np.nan)
    stack = {name: np.stack(values, axis=-1) if name != "epoch" else np.asarray(values) for name, values in curves.items()}
    return [
        TrainResult(
            mode=mode,
            task=task.name,
            seed=seeds[i],
            epoch=stack["epoch"],
            train_accuracy=stack["train_acc"][i],
            test_accuracy=stack["test_acc"][i],
            train_loss=stack["train_loss"][i],
            test_loss=stack["test_loss"][i],
            grad_error_mean=stack["ge_mean"][i],
            grad_error_median=stack["ge_median"][i],
            ideal_test_accuracy=float(ideal_acc[i]),
            step_grad_errors=errs[i],
            train_seconds=elapsed / k,
            params=params[i],
            boundary=boundaries[i],
        )
        for i in range(k)
    ]


def train(
    task: Task | str,
    network: PhotonicNetwork | None = None,
    errors: ErrorModel | None = None,
    mode: str = "insitu",
    optimizer: str = "adam",
    lr: float = 0.02,
    epochs: int = 10,
    batch_size: int = 8,
    seed: int = 0,
    **options,
) -> TrainResult:
    """Train a photonic neural network on one sampled device and evaluate it there.

    Args:
        task: a :class:`Task` or its name (``circle``, ``moons``, ``ring``, ``digits64``,
            ``mnist64`` with ``mnist_path=``).
        network: architecture; default: the task's recipe (:func:`default_network`).
        errors: the device's error model (default: ideal).
        mode: ``digital``, ``insitu`` or ``analog``.
        optimizer, lr: ``adam`` or ``sgd`` and its learning rate.
        epochs, batch_size: passes over the training set and examples per step.
        seed: every random stream of the run derives from it.
        options: ``eval_every``, ``boundary_size`` (grid points per axis of a 2-D
            decision-boundary grid, 0 = none), ``record_gradient_error``, ``mnist_path``,
            ``launch`` (launch scheme of the measured gradients: ``per_example``,
            ``balanced`` or ``cotangent``; see :mod:`photonics.protocols`).
    """
    return train_ensemble(task, network, errors, mode, optimizer, lr, epochs, batch_size, (seed,), **options)[0]


def _check(task: Task, net: PhotonicNetwork, mode: str, epochs, batch_size, eval_every) -> None:
    if mode not in MODES:
        raise ValueError(f"unknown training mode {mode!r}: expected one of {', '.join(MODES)}")
    if not isinstance(epochs, (int, np.integer)) or epochs < 0:
        raise ValueError(f"epochs must be an integer >= 0, got {epochs!r}")
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if batch_size > len(task.y_train):
        raise ValueError(f"batch_size {batch_size} is larger than the training set ({len(task.y_train)} examples)")
    if eval_every < 1:
        raise ValueError(f"eval_every must be >= 1, got {eval_every!r}")
    if net.n_ports != task.n_ports:
        raise ValueError(f"task {task.name} has {task.n_ports} input ports, the network {net.n_ports}")
    if net.n_classes != task.n_classes:
        raise ValueError(f"task {task.name} has {task.n_classes} classes, the network reads {net.n_classes}")
