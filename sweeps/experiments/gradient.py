"""The ``gradient`` experiment: the gradient error of each measurement protocol.

A trial measures ``1 - cos(measured, exact device gradient)`` of each protocol over random
inputs (random labels, cross-entropy with logits of order one) on one sampled device:
cheap enough for dense error grids. Its physics (inputs, streams, measurements) is
:func:`insitu.photonics.insitu.protocol_gradient_errors`; this module maps parameters to the
network and the results to rows.
"""

from __future__ import annotations

import numpy as np

from insitu.photonics import ErrorModel
from insitu.photonics.insitu import protocol_gradient_errors
from insitu.photonics.network import build_network
from insitu.photonics.protocols import MEASURED_PROTOCOLS as PROTOCOLS
from insitu.photonics.training import NetworkConfig, TrainConfig
from insitu.sweeps.engine.registry import Experiment, MetricInfo, ModeInfo, Param, register
from insitu.sweeps.experiments.declared import keyed_since_first, param_of, params_of, settings_of
from insitu.sweeps.experiments.modes import mode_list_problems, parse_modes

# 5: chips shared along the parameters declared to share them (common random numbers);
# 4: the measurement restructure (tap-noise draw order changed).
VERSION = "5"
KEYED = ("n_ports", "topology", "depth", "n_layers", "launch", "modes", "batch_size",
         "n_repeats", "input_power", "bs_error", "loss_db", "loss_imbalance_db", "phase_error",
         "crosstalk", "dac_bits", "tap_noise", "io_amp_error", "io_phase_error", "tap_fraction",
         "loss_std_db", "idle_loss_db", "io_placement")
PROTOCOL_LABELS = {"three_pass": "three-pass (digital subtraction)", "analog": "analog toggle"}

METRICS = (
    MetricInfo("grad_error_mean", "gradient error 1 − cos", scale="log"),
    MetricInfo("grad_error_median", "gradient error 1 − cos (median)", scale="log"),
    MetricInfo("grad_error_std", "std of gradient error 1 − cos"),
    MetricInfo("grad_norm_true", "true gradient norm"),
    MetricInfo("grad_errors", "gradient error 1 − cos", scale="log"),
)


def _params() -> tuple[Param, ...]:
    network = {f.name: f for f in NetworkConfig.__dataclass_fields__.values()}
    return keyed_since_first((
        Param("n_ports", "int", 4, low=2, high=1024, label="ports N", doc="ports of each mesh"),
        *params_of(NetworkConfig, exclude=("n_layers", "loss", "logit_scale")),
        param_of(network["n_layers"], doc="layers (0: one layer)"),
        param_of(TrainConfig.__dataclass_fields__["launch"]),
        Param("modes", "str", "three_pass,analog", label="protocols run",
              doc="comma list of protocols: " + ", ".join(PROTOCOLS), shares_chips=True),
        Param("batch_size", "int", 1, low=1, high=100_000, label="batch size M",
              doc="examples per measurement (summed digitally by three_pass, integrated by analog)"),
        Param("n_repeats", "int", 20, low=1, high=100_000, label="measurements per trial",
              doc="measurements (random inputs) per trial"),
        Param("input_power", "float", 9.0, low=1e-9, high=1e9, label="input power",
              doc="power of every input vector", shares_chips=True),
        *params_of(ErrorModel),
    ), KEYED)


def validate(values: dict, set_in_spec: frozenset) -> list[tuple[str, str]]:
    """Combinations a ``gradient`` spec may not hold: empty or unknown protocols."""
    return mode_list_problems(values, PROTOCOLS)


def run_trial(params: dict, trial_seed: int, cache: dict) -> list[dict]:
    """Rows of one trial: the network its parameters describe, measured by
    :func:`insitu.photonics.insitu.protocol_gradient_errors` from a generator of the
    trial seed."""
    # Logits of order one (logit scale = 1 / input power): a saturated softmax would make the
    # true gradient of confidently classified inputs vanish and its direction meaningless.
    net = build_network(params["n_ports"], params["n_layers"] or 1, 2, params["topology"],
                        params["depth"] or None, "grouped", 1.0 / params["input_power"])
    protocols = parse_modes(params["modes"], PROTOCOLS)
    repeats = params["n_repeats"]
    study = protocol_gradient_errors(net, ErrorModel(**settings_of(ErrorModel, params)),
                                     np.random.default_rng(trial_seed), protocols, repeats,
                                     params["batch_size"], params["input_power"], params["launch"])
    grad_norm_true = float(np.mean(study.true_norms))
    return [{
        "mode": protocol,
        "grad_error_mean": float(errs.mean()),
        "grad_error_median": float(np.median(errs)),
        "grad_error_std": float(errs.std(ddof=1)) if repeats > 1 else float("nan"),
        "grad_norm_true": grad_norm_true,
        "grad_errors": errs.tolist(),
    } for protocol, errs in zip(protocols, study.errors)]


def build() -> Experiment:
    return Experiment(
        "gradient", VERSION, _params(), run_trial, validate=validate,
        summary="gradient error of each measurement protocol on one sampled device per trial",
        modes=tuple(ModeInfo(p, "protocol", PROTOCOL_LABELS.get(p, p)) for p in PROTOCOLS),
        metrics=METRICS, headline_metric="grad_error_mean", module=__name__)


register(build())
