"""Photonic neural networks: meshes with a digital nonlinearity between them.

Layer ``l``: ``y_l = U_l x_l`` (light through mesh ``l``), ``x_{l+1} = f(y_l)`` with
``f(y) = |y|`` (the paper's: the next input is the square root of the measured power).
Readout: the power at the output ports; the logit of class ``c`` is
``scale * sum_{k in ports(c)} |y_k|^2``; the loss is softmax cross-entropy (or MSE between
normalised class powers and the one-hot target), averaged over the batch.

Adjoint rules (docs/design.md, section 3): the seed at the last output is ``g = 2 dL/dy``
(Wirtinger); through ``|y|`` it becomes ``Re(x_adj) * conj(y) / |y|`` where ``x_adj`` is
the adjoint field that came back at the next layer's input (the conjugate phasor).

Parameters of a network are one flat array: layer by layer, ``theta`` then ``phi`` of each
mesh. Every function broadcasts over a leading device axis (``params (K, P)``,
``x (K, B, N)``), so an ensemble of devices runs in the same array operations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Sequence

import numpy as np

from .errors import DeviceErrors, ErrorModel, generate_io, read_io
from .layout import MeshLayout, make_layout
from .propagation import ideal_gradient, propagate

LOSSES = ("cross_entropy", "mse")


@dataclass(frozen=True, eq=False)
class PhotonicNetwork:
    """Architecture of a photonic neural network (no parameters, no device).

    Attributes:
        layouts: one mesh layout per layer (all with the same number of ports).
        class_ports: for each class, the output ports whose powers sum to its logit.
        logit_scale: factor between summed output power and logit.
        loss: ``"cross_entropy"`` or ``"mse"``.
    The nonlinearity between layers is the paper's ``|y|`` (:func:`nonlinearity`), the only
    one simulated.
    """

    layouts: tuple[MeshLayout, ...]
    class_ports: tuple[tuple[int, ...], ...]
    logit_scale: float = 1.0
    loss: str = "cross_entropy"

    def __post_init__(self) -> None:
        if not self.layouts:
            raise ValueError("a network needs at least one layer")
        n = self.layouts[0].n_ports
        if any(lay.n_ports != n for lay in self.layouts):
            raise ValueError("every layer of a network must have the same number of ports")
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}: expected one of {LOSSES}")
        ports = [p for group in self.class_ports for p in group]
        if len(self.class_ports) < 2 or min(ports) < 0 or max(ports) >= n or len(set(ports)) != len(ports):
            raise ValueError(f"class_ports must be >= 2 disjoint groups of ports in [0, {n - 1}]")
        offsets = np.cumsum([0] + [2 * lay.n_mzis for lay in self.layouts])
        object.__setattr__(self, "_offsets", offsets)
        index = np.zeros((len(self.class_ports), n))
        for c, group in enumerate(self.class_ports):
            index[c, list(group)] = 1.0
        object.__setattr__(self, "_class_matrix", index)

    @property
    def n_ports(self) -> int:
        return self.layouts[0].n_ports

    @property
    def n_layers(self) -> int:
        return len(self.layouts)

    @property
    def n_classes(self) -> int:
        return len(self.class_ports)

    @property
    def n_params(self) -> int:
        return int(self._offsets[-1])

    def layer_phases(self, params: np.ndarray, layer: int) -> tuple[np.ndarray, np.ndarray]:
        """Views ``(theta, phi)`` of layer ``layer`` in a flat parameter array."""
        start = self._offsets[layer]
        m = self.layouts[layer].n_mzis
        return params[..., start : start + m], params[..., start + m : start + 2 * m]

    def join(self, grads: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        """Concatenate per-layer ``(d_theta, d_phi)`` into one flat array."""
        return np.concatenate([g for pair in grads for g in pair], axis=-1)

    def init_params(self, rng: np.random.Generator, method: str = "haar") -> np.ndarray:
        from .initialization import init_phases

        return self.join([init_phases(lay, rng, method) for lay in self.layouts])


def build_network(
    n_ports: int,
    n_layers: int,
    n_classes: int,
    topology: str = "rectangular",
    depth: int | None = None,
    readout: str = "grouped",
    logit_scale: float = 1.0,
    loss: str = "cross_entropy",
) -> PhotonicNetwork:
    """A network of ``n_layers`` identical mesh layouts.

    ``readout="grouped"`` sums ``n_ports // n_classes`` contiguous ports per class (the
    paper's 4-port networks: ports (1, 2) and (3, 4)); ``"first"`` reads class ``c`` from
    port ``c`` alone (the 64-port digits network).
    """
    if n_layers < 1:
        raise ValueError(f"n_layers must be >= 1, got {n_layers}")
    if n_classes < 2 or n_classes > n_ports:
        raise ValueError(f"{n_classes} classes cannot be read from {n_ports} ports")
    layout = make_layout(topology, n_ports, depth)
    if readout == "grouped":
        width = n_ports // n_classes
        groups = tuple(tuple(range(c * width, (c + 1) * width)) for c in range(n_classes))
    elif readout == "first":
        groups = tuple((c,) for c in range(n_classes))
    else:
        raise ValueError(f"unknown readout {readout!r}: expected 'grouped' or 'first'")
    return PhotonicNetwork((layout,) * n_layers, groups, float(logit_scale), loss)


def sample_devices(net: PhotonicNetwork, model: ErrorModel, rng: np.random.Generator,
                   control_rng: np.random.Generator | None = None) -> list[DeviceErrors]:
    """Static errors of every layer's mesh (independent draws, one device per layer);
    heater curves from ``control_rng`` (:meth:`ErrorModel.sample`)."""
    return [model.sample(lay, rng, control_rng=control_rng) for lay in net.layouts]


class NetworkPass(NamedTuple):
    """Fields of one pass: ``inputs[l]`` launched into mesh ``l``, ``outputs[l]`` read after it."""

    inputs: list[np.ndarray]
    outputs: list[np.ndarray]


def nonlinearity(y: np.ndarray) -> np.ndarray:
    """``f(y) = |y|``: the next layer is launched with the amplitude of this one's output."""
    return np.abs(y)


def nonlinearity_adjoint(x_adj: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Adjoint of ``|y|``: ``g_y = Re(x_adj) conj(y) / |y|`` (0 where ``y = 0``)."""
    mag = np.abs(y)
    phasor = np.divide(np.conj(y), mag, out=np.zeros_like(y), where=mag > 0)
    return np.real(x_adj) * phasor


def network_forward(net, params, x, devices=None, io_rng=None) -> NetworkPass:
    """Forward pass through every layer of a device (``devices=None``: the ideal model).

    With ``io_rng``, every read output carries the device's I/O readout error, and every
    launched vector its generation error unless the model's ``io_placement`` is ``"read"``
    (inference on a chip).
    """
    inputs, outputs = [], []
    current = np.asarray(x, dtype=complex)
    for layer, lay in enumerate(net.layouts):
        dev = None if devices is None else devices[layer]
        theta, phi = net.layer_phases(params, layer)
        if dev is not None and io_rng is not None:
            current = generate_io(current, dev.model, io_rng)
        inputs.append(current)
        y = propagate(lay, theta, phi, current, dev)
        if dev is not None and io_rng is not None:
            y = read_io(y, dev.model, io_rng)
        outputs.append(y)
        current = nonlinearity(y).astype(complex)
    return NetworkPass(inputs, outputs)


def class_powers(net: PhotonicNetwork, y: np.ndarray) -> np.ndarray:
    """Summed output power per class, shape ``(..., B, C)``."""
    return (np.abs(y) ** 2) @ net._class_matrix.T


def loss_and_seed(net: PhotonicNetwork, y: np.ndarray, labels: np.ndarray):
    """Batch-mean loss, per-example losses, and the adjoint seed ``g = 2 dL/dy``.

    Returns ``(loss (...,), per_example (..., B), g (..., B, N), probabilities (..., B, C))``.
    """
    powers = class_powers(net, y)
    batch = y.shape[-2]
    onehot = np.eye(net.n_classes)[labels]
    probs = class_probabilities(net, powers)
    if net.loss == "cross_entropy":
        per_example = -np.log(np.take_along_axis(probs, labels[..., None], axis=-1)[..., 0] + 1e-300)
        d_powers = net.logit_scale * (probs - onehot) / batch
    else:
        total = powers.sum(axis=-1, keepdims=True) + 1e-300
        diff = probs - onehot
        per_example = np.sum(diff**2, axis=-1)
        # d/dP_c of sum_k (P_k/T - t_k)^2 with T = sum P: (2/T)(diff_c - sum_k diff_k P_k/T)
        d_powers = (2.0 / total) * (diff - np.sum(diff * probs, axis=-1, keepdims=True)) / batch
    # dL/d|y_k|^2 = d_powers[class(k)]; 2 dL/dy = 2 dL/d|y|^2 * conj(y)
    d_port_power = d_powers @ net._class_matrix
    g = 2.0 * d_port_power * np.conj(y)
    return per_example.mean(axis=-1), per_example, g, probs


def exact_gradient(net, params, x, labels, devices=None):
    """Loss and exact gradient (flat, like ``params``) of the device's batch-mean loss.

    The reference against which measured gradients are judged: ideal fields, no noise.
    """
    fwd = network_forward(net, params, x, devices)
    loss, _, g, probs = loss_and_seed(net, fwd.outputs[-1], labels)
    return loss, adjoint_gradient(net, params, fwd, g, devices), probs


def adjoint_gradient(net, params, fields: NetworkPass, g, devices=None) -> np.ndarray:
    """Backpropagate the seed ``g = 2 dL/dy`` of the last output through a model's layers.

    ``fields`` are the inputs and outputs of every layer at which the Jacobian is evaluated
    (those of the same model for :func:`exact_gradient`; a chip's measured ones for
    physics-aware training). Layer ``l`` contributes ``-Im(x_eta x_adj_eta)`` at every
    shifter of ``devices[l]`` (``None``: the ideal model) for input ``fields.inputs[l]``;
    the seed of layer ``l - 1`` is the adjoint of ``|y|`` at ``fields.outputs[l - 1]``.
    """
    grads = [None] * net.n_layers
    for layer in range(net.n_layers - 1, -1, -1):
        dev = None if devices is None else devices[layer]
        theta, phi = net.layer_phases(params, layer)
        lay = net.layouts[layer]
        grads[layer] = ideal_gradient(lay, theta, phi, fields.inputs[layer], g, dev)
        if layer > 0:
            x_adj = propagate(lay, theta, phi, g, dev, backward=True)
            g = nonlinearity_adjoint(x_adj, fields.outputs[layer - 1])
    return net.join(grads)


def class_probabilities(net: PhotonicNetwork, powers: np.ndarray) -> np.ndarray:
    """Class probabilities from class powers: softmax of the logits ``scale * P`` for
    cross-entropy, normalised powers ``P / sum P`` for MSE."""
    if net.loss == "cross_entropy":
        logits = net.logit_scale * powers
        logits = logits - logits.max(axis=-1, keepdims=True)
        expo = np.exp(logits)
        return expo / expo.sum(axis=-1, keepdims=True)
    return powers / (powers.sum(axis=-1, keepdims=True) + 1e-300)


def predict_proba(net, params, x, devices=None, io_rng=None) -> np.ndarray:
    """Class probabilities of inputs ``x`` on a device (or the ideal model)."""
    y = network_forward(net, params, x, devices, io_rng).outputs[-1]
    return class_probabilities(net, class_powers(net, y))
