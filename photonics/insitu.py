"""In situ gradient measurement of a whole network (the loop over layers).

Per step: the forward passes layer by layer (the nonlinearity and loss applied digitally to
the read outputs), then from the last layer back the adjoint pass of the batch (its read
``x_adj`` gives the next seed through the nonlinearity) and the gradient measurement of
that layer (:func:`photonics.protocols.layer_gradient`, the chosen protocol and launch
scheme). The ``cotangent`` scheme adds its own ``O(N)`` launches per layer; the batch's
forward and adjoint passes are still run, for the layer outputs and the seeds.

:func:`protocol_gradient_errors` is the gradient-error study of one sampled device (the
``gradient`` experiment, the paper's Fig. 2): random inputs (:func:`random_inputs`), the
exact device gradient, and each protocol's measurement, every random stream split off one
generator.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .errors import ErrorModel
from .network import (PhotonicNetwork, exact_gradient, loss_and_seed, nonlinearity, nonlinearity_adjoint,
                      sample_devices)
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


def random_inputs(rng: np.random.Generator, n_repeats: int, batch_size: int, n_ports: int, power: float,
                  n_classes: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """``n_repeats`` batches of random complex input vectors of one power, with random labels.

    Each example is ``x = a + i b`` with ``a``, ``b`` standard normal per port, rescaled so
    that ``|x|^2 = power`` (optical power, in the units of the launched fields); labels are
    uniform over ``0 .. n_classes - 1``. Draws per batch, in order: real parts, imaginary
    parts, labels. Returns ``x`` of shape ``(n_repeats, batch_size, n_ports)`` and labels of
    shape ``(n_repeats, batch_size)``.
    """
    x = np.empty((n_repeats, batch_size, n_ports), dtype=complex)
    labels = np.empty((n_repeats, batch_size), dtype=np.int64)
    for r in range(n_repeats):
        v = rng.standard_normal((batch_size, n_ports)) + 1j * rng.standard_normal((batch_size, n_ports))
        v *= np.sqrt(power) / np.linalg.norm(v, axis=1, keepdims=True)
        x[r] = v
        labels[r] = rng.integers(0, n_classes, batch_size)
    return x, labels


class GradientErrors(NamedTuple):
    """Result of :func:`protocol_gradient_errors`."""

    errors: np.ndarray  # (n_protocols, n_repeats): 1 - cos(measured, exact) per measurement
    true_norms: np.ndarray  # (n_repeats,): Euclidean norm of the exact gradient (per rad)


def protocol_gradient_errors(
    net: PhotonicNetwork,
    model: ErrorModel,
    rng: np.random.Generator,
    protocols,
    n_repeats: int,
    batch_size: int,
    input_power: float,
    launch: str = "per_example",
) -> GradientErrors:
    """Gradient error ``1 - cos(measured, exact)`` of each protocol on one sampled device.

    The exact gradient is that of the erroneous device (:func:`exact_gradient`), so the error
    measures what the measurement itself costs. Streams: ``rng.spawn(2 + len(protocols))``;
    child 0 draws the device's static errors (:func:`sample_devices`) and then its initial
    phases (Haar-consistent), child 1 the inputs and labels (:func:`random_inputs`), child
    ``2 + i`` the detector noise and I/O error of ``protocols[i]``. So the device, phases and
    inputs do not depend on which protocols are measured, nor on the noise levels; each
    protocol measures the same ``n_repeats`` batches. A further child, spawned after these,
    draws the heater curves (:meth:`ErrorModel.sample`), so no other stream depends on the
    heater model.
    """
    streams = rng.spawn(2 + len(protocols))
    control_rng = rng.spawn(1)[0]
    device_rng, input_rng = streams[:2]
    devices = sample_devices(net, model, device_rng, control_rng)
    params = net.init_params(device_rng)
    xs, labels = random_inputs(input_rng, n_repeats, batch_size, net.n_ports, input_power, net.n_classes)
    truths = [exact_gradient(net, params, x, y, devices)[1] for x, y in zip(xs, labels)]
    errors = np.array([
        [gradient_error(measure_gradient(net, params, x, y, devices, protocol, noise_rng, launch=launch).grad, true)
         for x, y, true in zip(xs, labels, truths)]
        for protocol, noise_rng in zip(protocols, streams[2:])
    ], dtype=float).reshape(len(protocols), n_repeats)
    return GradientErrors(errors, np.array([np.linalg.norm(t) for t in truths]))
