"""In situ gradient measurement of a whole network (the loop over layers).

Per step: the forward passes layer by layer (the nonlinearity and loss applied digitally to
the read outputs), then from the last layer back the adjoint pass of the batch (its read
``x_adj`` gives the next seed through the nonlinearity) and the gradient measurement of
that layer (:func:`photonics.protocols.layer_gradient`, the chosen protocol and launch
scheme). The ``cotangent`` scheme adds its own ``O(N)`` launches per layer; the batch's
forward and adjoint passes are still run, for the layer outputs and the seeds.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .network import PhotonicNetwork, exact_gradient, loss_and_seed, nonlinearity, nonlinearity_adjoint
from .propagation import transfer_matrix
from .protocols import AGGREGATE_MIN_RATIO, LAUNCHES, MEASURED_PROTOCOLS, adjoint_pass, forward_pass, layer_gradient

PROTOCOLS = MEASURED_PROTOCOLS + ("ideal",)


class MeasuredGradient(NamedTuple):
    """Result of one gradient measurement of a network on a device."""

    loss: np.ndarray  # batch-mean loss computed from the measured outputs
    grad: np.ndarray  # flat, like the parameters
    probs: np.ndarray  # class probabilities from the measured outputs


def measure_gradient(
    net: PhotonicNetwork,
    params: np.ndarray,
    x: np.ndarray,
    labels: np.ndarray,
    devices=None,
    protocol: str = "three_pass",
    rng=None,
    aggregate: bool | None = None,
    launch: str = "per_example",
) -> MeasuredGradient:
    """Measure the gradient of the batch-mean loss of a network on a device, in situ.

    ``protocol``: ``three_pass``, ``analog`` or ``ideal`` (the exact device gradient).
    ``launch``: ``per_example``, ``balanced`` or ``cotangent`` (:mod:`photonics.protocols`).
    ``rng`` (a Generator, or a ``DeviceNoise`` for an ensemble) drives tap noise and I/O
    error; ``None`` measures noise-free. ``aggregate``: evaluate tap readings from launch
    moments (default: for ``per_example`` and ``balanced`` when the batch has at least
    ``AGGREGATE_MIN_RATIO`` times as many examples as ports; ``cotangent`` launches only
    ``O(N)`` vectors and reads them explicitly).
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}: expected one of {PROTOCOLS}")
    if launch not in LAUNCHES:
        raise ValueError(f"unknown launch scheme {launch!r}: expected one of {LAUNCHES}")
    if protocol == "ideal":
        loss, grad, probs = exact_gradient(net, params, x, labels, devices)
        return MeasuredGradient(loss, grad, probs)
    devs = [None] * net.n_layers if devices is None else devices
    if aggregate is None:
        aggregate = launch != "cotangent" and np.shape(x)[-2] >= AGGREGATE_MIN_RATIO * net.n_ports
    phases = [net.layer_phases(params, layer) for layer in range(net.n_layers)]
    # every pass of a layer meets the same device: build its transfer matrix once when the
    # batch is large enough for a matrix product to beat column-by-column propagation
    n_rows = max(np.shape(x)[-2], net.n_ports if launch == "cotangent" else 0)
    matrices = [transfer_matrix(lay, *phases[layer], devs[layer]) if n_rows >= net.n_ports else None
                for layer, lay in enumerate(net.layouts)]

    inputs, passes = [], []
    current = np.asarray(x, dtype=complex)
    for layer, lay in enumerate(net.layouts):
        fwd = forward_pass(lay, *phases[layer], current, devs[layer], rng, matrix=matrices[layer])
        inputs.append(current)
        passes.append(fwd)
        current = nonlinearity(fwd.field).astype(complex)

    loss, _, g, probs = loss_and_seed(net, passes[-1].field, labels)
    grads = [None] * net.n_layers
    for layer in range(net.n_layers - 1, -1, -1):
        lay, dev = net.layouts[layer], devs[layer]
        theta, phi = phases[layer]
        adj = adjoint_pass(lay, theta, phi, g, dev, rng, matrix=matrices[layer])
        flat = layer_gradient(lay, theta, phi, inputs[layer], passes[layer], g, adj, dev, rng, protocol, launch,
                              aggregate, matrices[layer])
        m = lay.n_mzis
        grads[layer] = (flat[..., :m], flat[..., m:])
        if layer > 0:
            g = nonlinearity_adjoint(adj.field, passes[layer - 1].field)
    return MeasuredGradient(loss, net.join(grads), probs)


def gradient_error(measured: np.ndarray, true: np.ndarray) -> np.ndarray:
    """``1 - cos(measured, true)`` over the last axis (0 = perfect direction).

    NaN where either gradient is exactly zero (no direction to compare).
    """
    num = np.sum(measured * true, axis=-1)
    den = np.linalg.norm(measured, axis=-1) * np.linalg.norm(true, axis=-1)
    cos = np.divide(num, den, out=np.full_like(num, np.nan, dtype=float), where=den > 0)
    # clipped at 0: rounding can push a perfect match a hair below
    return np.maximum(0.0, 1.0 - cos)
