"""Training a photonic neural network on a sampled device, in one of several modes.

A mode (``digital``, ``insitu``, ``analog``, ``calibrated``, ``corrected``, ``pat``,
``spsa``) is a small strategy: the gradient it steps with, and the phases it programs onto
the chip for evaluation; the modes and their registry ``MODES`` are in
:mod:`photonics.modes` (``MODES`` is public here too).

All modes of one seed share the device (its static errors), the initial phases and the
minibatch order: the seed is split into independent streams for the device, the
initialisation, the data order, the measurement noise, the evaluation noise, the
calibration and the SPSA signs. Evaluation on the device includes I/O readout noise
(inference on a chip).

The core runs an *ensemble*: ``K`` seeds train together, every array carrying a leading
device axis, each device with its own random streams, so ``train_ensemble(task, seeds)``
gives the numbers that ``train(task, seed)`` gives for each seed, at a fraction of the numpy
overhead. Settings live in one frozen :class:`TrainConfig`.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field, fields, replace

import numpy as np

from .calibration import calibrated_twin
from .datasets import Task, boundary_grid, load_task
from .errors import NOISE_DRAWS, DeviceErrors, DeviceNoise, ErrorModel, measurement_noise
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
from .insitu import gradient_error
from .analog_update import check_analog_update, update_gains
from .heaters import calibrate_control, control_draws
from .modes import MODES, Run, mode_settings, on_chip, programmed
from .protocols import LAUNCHES
from .settings import check_settings, setting

# device, init, order, measurement, evaluation, calibration, spsa signs, control layer (heater
# curves, their calibration and the analog update's gains). A stream added at the end leaves
# the others as they were (SeedSequence children are numbered).
N_STREAMS = 8


@dataclass(frozen=True)
class TrainConfig:
    """Settings of a training run (every mode of a seed may share one config).

    Every field but ``mode_settings`` is a declared setting
    (:func:`insitu.photonics.settings.setting`; its ``doc`` says what it means): the
    classify experiment's sweep parameters are these fields, by the same names, with the
    same defaults. ``mode`` names an entry of ``MODES``; a mode reads the settings its
    ``uses`` lists beyond the common ones (optimiser, rate, epochs, batch, evaluation).
    ``mode_settings`` holds values of the modes' own settings (``spsa_delta``, ...; see
    :mod:`insitu.photonics.modes`) as sorted ``(name, value)`` pairs; :meth:`of` and
    :func:`train` accept them by name like any other setting. ``calibration_error="none"``
    (or ``None``) is kept as a shorthand for ``twin="ideal"``.
    """

    mode: str = setting("insitu", "training mode (a name in MODES)", label="training mode")
    optimizer: str = setting("adam", "optimiser of the phases", label="optimizer",
                             choices=("adam", "sgd"), shares_chips=True)
    lr: float = setting(0.02, "learning rate (rad per unit gradient; the rate at N0 ports when lr_reference_ports "
                                  "= N0 > 0)", label="learning rate",
                        unit="rad", low=1e-9, high=100.0, shares_chips=True)
    sgd_lr: float = setting(
        0.0, "learning rate when optimizer = sgd (0: lr); lets one grid compare SGD and Adam each at its own rate",
        label="learning rate with SGD", unit="rad", low=0.0, high=100.0, shares_chips=True)
    lr_reference_ports: int = setting(
        0, "0: the rate as given; N0 > 0: the rate is scaled by sqrt(N0 / N) on N-port meshes, so one spec "
        "trains every size at a comparable step (a step of every phase moves an N-port mesh's output about "
        "sqrt(N) times as far)", label="learning-rate reference ports N0", low=0, high=1_000_000,
        shares_chips=True)
    epochs: int = setting(25, "passes over the training set", label="epochs", low=0, high=100_000, shares_chips=True)
    batch_size: int = setting(16, "examples per gradient step", label="batch size M", low=1,
                              high=1_000_000)
    eval_every: int = setting(1, "epochs between points of the learning curves",
                              label="epochs between evaluations", low=1, high=100_000, shares_chips=True)
    boundary_grid: int = setting(0, "decision-boundary grid points per axis (2-D tasks)",
                                 label="decision-boundary grid points per axis", low=0, high=400, shares_chips=True)
    record_gradient_error: bool = setting(
        True, "record 1 - cos of measured vs exact gradients (in situ modes)",
        label="gradient error recorded", shares_chips=True)
    launch: str = setting("per_example", "launch scheme of measured gradients: per_example, balanced, cotangent",
                          label="launch scheme", choices=LAUNCHES, shares_chips=True)
    noise_draws: str = setting(
        "fresh", "measurement noise of training steps: fresh draws, or one frozen pattern every step (the paper's jit-compiled simulation)",
        label="measurement noise draws", choices=NOISE_DRAWS, shares_chips=True)
    calibration_error: float = setting(
        0.0, "std of the calibration of every static error (rad, dB): calibrated, corrected, pat",
        label="calibration error σ", unit="rad, dB", low=0.0, high=1.0, role="error")
    twin: str = setting("calibrated", "twin of calibrated / corrected / pat: the calibrated chip, or the ideal model",
                        label="digital twin", choices=("calibrated", "ideal"), shares_chips=True)
    crosstalk_compensation: str = setting(
        "none", "programming of digital / calibrated / corrected / pat: as trained (none), or solved for the heater "
        "powers that give the trained phases through the calibrated heaters and crosstalk (calibrated, "
        "with calibration_error)", label="crosstalk compensation", choices=("none", "calibrated"),
        shares_chips=True)
    mode_settings: tuple = ()

    def __post_init__(self) -> None:
        cal = self.calibration_error
        if cal is None or (isinstance(cal, str) and cal.lower() == "none"):
            object.__setattr__(self, "calibration_error", 0.0)
            object.__setattr__(self, "twin", "ideal")
        if self.mode not in MODES:
            raise ValueError(f"unknown training mode {self.mode!r}: expected one of {', '.join(MODES)}")
        check_settings(self)
        make_optimizer(self.optimizer, self.effective_lr)  # names a bad optimizer or learning rate
        declared = mode_settings()
        values = dict(self.mode_settings)
        for name in values:
            if name not in declared:
                raise ValueError(f"unknown training setting {name!r}: expected one of "
                                 f"{', '.join(sorted(_setting_names()))}")
        for mode in {m for name in values for m in declared[name][1]}:
            settings = MODES[mode].settings(**{f.name: values[f.name] for f in fields(MODES[mode].settings)
                                               if f.name in values})
            values.update({f.name: getattr(settings, f.name) for f in fields(settings) if f.name in values})
        object.__setattr__(self, "mode_settings", tuple(sorted(values.items())))
        if self.mode == "analog":
            check_analog_update(self.settings_of(), self.optimizer, self.batch_size)

    def settings_of(self, mode: str | None = None):
        """The own settings of ``mode`` (default: this config's mode), an instance of its
        ``settings`` dataclass, or None for a mode without settings."""
        cls = MODES[mode or self.mode].settings
        if cls is None:
            return None
        values = dict(self.mode_settings)
        return cls(**{f.name: values[f.name] for f in fields(cls) if f.name in values})

    @property
    def effective_lr(self) -> float:
        """The rate of the chosen optimiser before any size scaling: ``sgd_lr`` for SGD when
        set (> 0), else ``lr``."""
        return self.sgd_lr if self.optimizer == "sgd" and self.sgd_lr > 0 else self.lr

    def rate(self, n_ports: int) -> float:
        """The rate the optimiser runs at on meshes of ``n_ports`` ports (rad per unit
        gradient): ``effective_lr * sqrt(N0 / N)`` with ``N0 = lr_reference_ports``, or
        ``effective_lr`` when ``N0 = 0``."""
        if self.lr_reference_ports <= 0:
            return self.effective_lr
        return self.effective_lr * float(np.sqrt(self.lr_reference_ports / n_ports))

    @property
    def twin_calibration(self) -> float | None:
        """The calibration error of the twin, or None when the twin is the ideal model."""
        return None if self.twin == "ideal" else self.calibration_error

    @staticmethod
    def of(config: "TrainConfig | None" = None, **settings) -> "TrainConfig":
        """``config`` (default: the defaults) with ``settings`` replaced, the modes' own
        settings among them; names a bad key."""
        base = TrainConfig() if config is None else config
        if not settings:
            return base
        own = {f.name for f in fields(TrainConfig)} - {"mode_settings"}
        unknown = sorted(set(settings) - own - set(mode_settings()))
        if unknown:
            raise ValueError(f"unknown training setting {unknown[0]!r}: expected one of "
                             f"{', '.join(sorted(_setting_names()))}")
        moded = {k: v for k, v in settings.items() if k not in own}
        common = {k: v for k, v in settings.items() if k in own}
        if moded:
            common["mode_settings"] = tuple(sorted({**dict(base.mode_settings), **moded}.items()))
        return replace(base, **common)


def _setting_names() -> set[str]:
    return ({f.name for f in fields(TrainConfig)} - {"mode_settings"}) | set(mode_settings())


@dataclass(frozen=True)
class NetworkConfig:
    """The network a task is trained on: its recipe (docs/design.md, section 6), unless a
    field overrides it. ``0`` means "the recipe" for ``depth`` (the topology's natural
    depth), ``n_layers`` (3 for 2-D tasks, 2 for images) and ``logit_scale`` (3 for 2-D
    tasks, 30 for images)."""

    topology: str = setting("rectangular", "mesh layout: rectangular (Clements) or triangular (Reck)",
                            label="mesh topology", choices=("rectangular", "triangular"))
    depth: int = setting(0, "mesh columns (0 = N for rectangular)", label="mesh depth",
                         unit="MZI columns", low=0, high=4096)
    n_layers: int = setting(0, "layers (0: the task recipe)", label="layers", low=0, high=16)
    loss: str = setting("cross_entropy", "training loss on the output powers", label="training loss",
                        choices=("cross_entropy", "mse"), shares_chips=True)
    logit_scale: float = setting(0.0, "0 = task recipe (3 for 2-D, 30 for images)", label="logit scale",
                                 low=0.0, high=1e6, shares_chips=True)

    def __post_init__(self) -> None:
        check_settings(self)

    def build(self, task: Task) -> PhotonicNetwork:
        """The network for ``task``."""
        recipe = task.default_network()
        return build_network(
            task.n_ports,
            self.n_layers or (3 if task.is_2d else 2),
            task.n_classes,
            self.topology,
            self.depth or None,
            recipe["readout"],
            self.logit_scale or recipe["logit_scale"],
            self.loss,
        )


@dataclass
class TrainResult:
    """Outcome of one training run: curves per evaluation epoch and final metrics.

    Accuracies and losses are measured on the device (with readout noise; decision-boundary
    grids are computed without it, as the device's noise-free response), with the phases
    the mode programs; gradient errors are ``1 - cos(step gradient, exact device gradient)``
    per step, summarised per epoch (NaN for modes that train the ideal model on purpose:
    ``digital``, ``corrected``).
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


class Curves:
    """Per-evaluation metrics of an ensemble, appended epoch by epoch."""

    NAMES = ("train_acc", "test_acc", "train_loss", "test_loss", "ge_mean", "ge_median")

    def __init__(self, k: int):
        self.k = k
        self.epochs: list[int] = []
        self.values: dict[str, list] = {name: [] for name in self.NAMES}

    def add(self, epoch: int, train: tuple, test: tuple, step_errors: list) -> None:
        """Record one evaluation: ``(accuracy, loss)`` per set and the epoch's step errors."""
        self.epochs.append(epoch)
        for name, value in zip(self.NAMES[:4], (train[0], test[0], train[1], test[1])):
            self.values[name].append(value)
        if step_errors:
            e = np.stack(step_errors, axis=-1)
            with warnings.catch_warnings():  # a step with a zero gradient has no direction (NaN)
                warnings.simplefilter("ignore", RuntimeWarning)
                mean, median = np.nanmean(e, axis=-1), np.nanmedian(e, axis=-1)
        else:
            mean = median = np.full(self.k, np.nan)
        self.values["ge_mean"].append(mean)
        self.values["ge_median"].append(median)

    def device(self, i: int) -> dict[str, np.ndarray]:
        """Curves of device ``i`` of the ensemble."""
        return {name: np.stack(v, axis=-1)[i] for name, v in self.values.items()}


def default_network(task: Task, **settings) -> PhotonicNetwork:
    """The recipe of docs/design.md section 6 for a task, with any :class:`NetworkConfig`
    field overridden (``topology="triangular"``, ``n_layers=3``, ...)."""
    return NetworkConfig(**settings).build(task)


def _streams(seed: int):
    """Independent generators, in the order of ``N_STREAMS``."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(int(seed)).spawn(N_STREAMS)]


def _evaluate(net, params, x, y, devices, rngs):
    """Accuracy and mean loss per device of a whole set, on the device with readout noise."""
    k = params.shape[0]
    xs = np.broadcast_to(x, (k,) + x.shape)
    labels = np.broadcast_to(y, (k,) + y.shape)
    out = network_forward(net, params, xs, devices, rngs).outputs[-1]
    loss, _, _, probs = loss_and_seed(net, out, labels)
    acc = np.mean(np.argmax(probs, axis=-1) == labels, axis=-1)
    return acc, loss


def _control(net, chip: list[DeviceErrors], draws: np.ndarray, calibration_error: float) -> list:
    """Per layer, the calibration of the chip's heater curves and crosstalk (stacked over
    devices) that crosstalk compensation programs with."""
    out, start = [], 0
    for layer, lay in enumerate(net.layouts):
        n_pairs = len(lay.neighbours())
        n = control_draws(lay.n_mzis, n_pairs)
        dev = chip[layer]
        out.append(calibrate_control(dev.theta_heater, dev.phi_heater, dev.model.crosstalk, calibration_error,
                                     draws[:, start:start + n], n_pairs))
        start += n
    return out


def _as_compensated(twin: DeviceErrors) -> DeviceErrors:
    """The twin of a chip that crosstalk compensation programs: it believes the phases it is
    given are the phases it gets (no crosstalk, no heater curve)."""
    model = replace(twin.model, crosstalk=0.0, heater="phase")
    return replace(twin, model=model, theta_heater=None, phi_heater=None, crosstalk_estimate=None)


def _with_control(twin: DeviceErrors, control) -> DeviceErrors:
    """A twin with the calibrated heater curves and crosstalk (unchanged when they are exact)."""
    if np.all(control.kappa == twin.model.crosstalk) and control.theta_heater is None:
        return twin
    return replace(twin, crosstalk_estimate=control.kappa,
                   theta_heater=control.theta_heater if control.theta_heater is not None else twin.theta_heater,
                   phi_heater=control.phi_heater if control.phi_heater is not None else twin.phi_heater)


def _stack(per_seed: list[list[DeviceErrors]], n_layers: int) -> list[DeviceErrors]:
    return [DeviceErrors.stack([d[layer] for d in per_seed]) for layer in range(n_layers)]


def train_ensemble(
    task: Task | str,
    seeds=(0,),
    config: TrainConfig | None = None,
    *,
    network: PhotonicNetwork | None = None,
    errors: ErrorModel | None = None,
    mnist_path: str | None = None,
    on_epoch=None,
    **settings,
) -> list[TrainResult]:
    """Train one network per seed, all at once (one device each); see :func:`train`.

    ``settings`` override fields of ``config`` (:class:`TrainConfig`); ``on_epoch``, if
    given, is called as ``on_epoch(epoch, epochs)`` after every epoch (progress reports).
    """
    cfg = TrainConfig.of(config, **settings)
    task = load_task(task, mnist_path=mnist_path) if isinstance(task, str) else task
    errors = ErrorModel() if errors is None else errors
    net = default_network(task) if network is None else network
    _check(task, net, cfg)
    mode = MODES[cfg.mode]
    opt = make_optimizer(cfg.optimizer, cfg.rate(net.n_ports))
    seeds = [int(s) for s in seeds]
    k = len(seeds)
    dev_rng, init_rng, order_rng, meas_gens, eval_gens, cal_rng, sign_gens, ctl_rng = zip(*(_streams(s) for s in seeds))
    eval_rng = DeviceNoise(eval_gens)

    per_seed = [sample_devices(net, errors, r, c) for r, c in zip(dev_rng, ctl_rng)]
    chip = _stack(per_seed, net.n_layers)
    # the control stream draws everything it holds whatever the settings: heater curves
    # (above), then the calibration of curves and crosstalk, then the analog update's gains
    cal_draws = np.stack([np.concatenate([c.standard_normal(control_draws(lay.n_mzis, len(lay.neighbours())))
                                          for lay in net.layouts]) for c in ctl_rng])
    gain_draws = np.stack([c.standard_normal(net.n_params) for c in ctl_rng])
    twin = None
    if cfg.twin_calibration is not None and "calibration_error" in mode.uses:
        twin = _stack([[calibrated_twin(d, cfg.twin_calibration, r) for d in devs]
                       for devs, r in zip(per_seed, cal_rng)], net.n_layers)
    compensating = cfg.crosstalk_compensation == "calibrated" and "crosstalk_compensation" in mode.uses
    control = _control(net, chip, cal_draws, cfg.calibration_error) if twin is not None or compensating else None
    if twin is not None:  # the twin knows heaters and crosstalk as the control layer's calibration does
        twin = [_as_compensated(t) if compensating else _with_control(t, c) for t, c in zip(twin, control)]
    own = cfg.settings_of()
    gains = update_gains(own.update_gain_spread, gain_draws) if getattr(own, "analog", False) else None
    run = Run(net, chip, twin, measurement_noise(DeviceNoise(meas_gens), cfg.noise_draws), DeviceNoise(sign_gens), cfg,
              own, control=control if compensating else None, gains=gains)
    params = np.stack([net.init_params(r) for r in init_rng])
    state = opt.init(params)
    record_errors = cfg.record_gradient_error and mode.on_chip_gradient

    n_train = len(task.y_train)
    n_batches = -(-n_train // cfg.batch_size)
    curves = Curves(k)
    step_errors: list = []
    epoch_errors: list = []
    start = time.perf_counter()

    def evaluate(epoch: int) -> None:
        written = programmed(mode, run, params)
        train = _evaluate(net, written, task.x_train, task.y_train, chip, eval_rng)
        test = _evaluate(net, written, task.x_test, task.y_test, chip, eval_rng)
        curves.add(epoch, train, test, epoch_errors)

    evaluate(0)
    for epoch in range(1, cfg.epochs + 1):
        orders = np.stack([r.permutation(n_train) for r in order_rng])
        for b in range(n_batches):
            idx = orders[:, b * cfg.batch_size : (b + 1) * cfg.batch_size]
            xb, yb = task.x_train[idx], task.y_train[idx]
            run.noise.new_step()
            grad = mode.gradient(run, params, xb, yb)
            if record_errors:  # against the chip as this step's phases are written to it
                err = gradient_error(grad, exact_gradient(net, on_chip(run, params), xb, yb, chip)[1])
                epoch_errors.append(err)
                step_errors.append(err)
            stepped = None if mode.step is None else mode.step(run, params, grad)
            params = opt.step(params, grad, state) if stepped is None else stepped
        if epoch % cfg.eval_every == 0 or epoch == cfg.epochs:
            evaluate(epoch)
            epoch_errors = []
        if on_epoch is not None:
            on_epoch(epoch, cfg.epochs)
    elapsed = time.perf_counter() - start

    written = programmed(mode, run, params)
    ideal_acc, _ = _evaluate(net, params, task.x_test, task.y_test, None, None)
    boundaries = [{} for _ in range(k)]
    if cfg.boundary_grid and task.is_2d:
        ax1, ax2, points = boundary_grid(cfg.boundary_grid)
        grid = task.encode_points(points)
        probs = predict_proba(net, written, np.broadcast_to(grid, (k,) + grid.shape), chip)
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
    results = []
    for i in range(k):
        c = curves.device(i)
        results.append(TrainResult(
            mode=cfg.mode,
            task=task.name,
            seed=seeds[i],
            epoch=np.asarray(curves.epochs),
            train_accuracy=c["train_acc"],
            test_accuracy=c["test_acc"],
            train_loss=c["train_loss"],
            test_loss=c["test_loss"],
            grad_error_mean=c["ge_mean"],
            grad_error_median=c["ge_median"],
            ideal_test_accuracy=float(ideal_acc[i]),
            step_grad_errors=errs[i],
            train_seconds=elapsed / k,
            params=params[i],
            boundary=boundaries[i],
        ))
    return results


def train(task: Task | str, seed: int = 0, config: TrainConfig | None = None, **options) -> TrainResult:
    """Train a photonic neural network on one sampled device and evaluate it there.

    Args:
        task: a :class:`Task` or its name (``circle``, ``moons``, ``ring``, ``digitsN``
            for N = 4 ... 64, ``mnistN`` for N = 4 ... 256 with ``mnist_path=``).
        seed: every random stream of the run derives from it.
        config: a :class:`TrainConfig` (default: its defaults).
        options: ``network`` (default: the task's recipe, :func:`default_network`),
            ``errors`` (the device's :class:`ErrorModel`, default ideal), ``mnist_path``,
            and any :class:`TrainConfig` field (``mode``, ``lr``, ``epochs``, ...) to
            override ``config``.
    """
    return train_ensemble(task, (seed,), config, **options)[0]


def _check(task: Task, net: PhotonicNetwork, cfg: TrainConfig) -> None:
    if cfg.batch_size > len(task.y_train):
        raise ValueError(f"batch_size {cfg.batch_size} is larger than the training set ({len(task.y_train)} examples)")
    if net.n_ports != task.n_ports:
        raise ValueError(f"task {task.name} has {task.n_ports} input ports, the network {net.n_ports}")
    if net.n_classes != task.n_classes:
        raise ValueError(f"task {task.name} has {task.n_classes} classes, the network reads {net.n_classes}")
