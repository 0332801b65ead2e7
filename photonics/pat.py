"""Physics-aware training (Wright et al., "Deep physical neural networks trained with
backpropagation", Nature 601, 549 (2022)), implemented from the method's description.

One step on a chip with a digital twin:

1. **Forward on the chip.** Layer by layer the controller launches ``x_l`` (with I/O
   generation error), the chip propagates it, the controller reads ``y_l`` (with readout
   error) and launches ``x_{l+1} = |y_l|``: every activation is a *measured* one.
2. **Loss from the measured outputs.** ``L`` and the seed ``g = 2 dL/dy`` come from the read
   ``y`` of the last layer (softmax cross-entropy of class powers, as in training).
3. **Backward through the twin.** The gradient is that of the twin's model, evaluated at the
   chip's measured activations: layer ``l`` contributes ``dL/d eta = -Im(x_eta x_adj_eta)``
   for the twin's mesh fields of input ``x_l`` and adjoint ``g_l``; ``g_{l-1}`` is the twin's
   backward field ``g_l U_twin`` through the adjoint of ``|y|`` at the *measured* ``y_{l-1}``.

With a perfect twin and no I/O error this is the exact gradient of the chip; with an ideal
twin on an erroneous chip it is not (the forward pass is right, the Jacobian wrong).
"""

from __future__ import annotations

import numpy as np

from .errors import perturb_io
from .network import NetworkPass, adjoint_gradient, loss_and_seed, nonlinearity
from .propagation import propagate


def chip_forward(net, params, x, chip, rng) -> NetworkPass:
    """Forward pass on the chip as the controller sees it.

    ``inputs[l]`` are the vectors the controller meant to launch (the data, then ``|y|`` of
    the read outputs), ``outputs[l]`` the read outputs; generation and readout error come
    from ``rng`` (a Generator, a ``DeviceNoise`` for an ensemble, or ``None``: noise-free).
    """
    inputs, outputs = [], []
    current = np.asarray(x, dtype=complex)
    for layer, lay in enumerate(net.layouts):
        dev = chip[layer]
        theta, phi = net.layer_phases(params, layer)
        y = propagate(lay, theta, phi, perturb_io(current, dev.model, rng), dev)
        y = perturb_io(y, dev.model, rng)
        inputs.append(current)
        outputs.append(y)
        current = nonlinearity(y).astype(complex)
    return NetworkPass(inputs, outputs)


def pat_gradient(net, params, x, labels, chip, twin, rng=None, chip_params=None):
    """Loss, physics-aware gradient and probabilities of a batch (steps 1-3 above).

    ``chip``: the device's per-layer errors; ``twin``: the twin's per-layer errors, or
    ``None`` for the ideal model as twin; ``chip_params``: the set points written to the chip
    for ``params`` (crosstalk compensation; default ``params``). Returns ``(loss, grad,
    probs)`` like :func:`photonics.network.exact_gradient`.
    """
    fields = chip_forward(net, params if chip_params is None else chip_params, x, chip, rng)
    loss, _, g, probs = loss_and_seed(net, fields.outputs[-1], labels)
    return loss, adjoint_gradient(net, params, fields, g, twin), probs
