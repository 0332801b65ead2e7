"""Zeroth-order in situ training by simultaneous perturbation (SPSA; Spall, IEEE Trans.
Automatic Control 37, 332 (1992)), as in the forward-only photonic training family of FLOPS
(Gu et al., DAC 2020), implemented from the method's description.

Only forward passes on the chip are used. Per estimate, every phase is perturbed at once by
``+-delta`` with independent random signs ``Delta_i in {-1, +1}``; the loss is measured on the
chip (with I/O error) at ``p + delta Delta`` and ``p - delta Delta``, and

    g_hat = (L(p + delta Delta) - L(p - delta Delta)) / (2 delta) * Delta

(``1 / Delta_i = Delta_i``). ``E[g_hat] = grad L + O(delta^2)`` because the signs are
independent with zero mean; its variance grows with the number of phases ``P`` (each
component carries the other ``P - 1`` components' contributions), which is why SPSA slows
down as meshes grow (4032 phases per 64-port layer). ``samples`` estimates are averaged per
step (``2 samples`` forward passes of the batch).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

from .errors import DeviceErrors
from .network import loss_and_seed
from .pat import chip_forward
from .settings import check_settings, setting


@dataclass(frozen=True)
class SpsaSettings:
    """The ``spsa`` mode's own settings."""

    spsa_delta: float = setting(0.05, "SPSA perturbation of every phase (rad)",
                                label="SPSA perturbation", unit="rad", low=1e-6, high=3.2,
                                shares_chips=True)
    spsa_samples: int = setting(1, "SPSA estimates averaged per step", label="SPSA estimates per step",
                                low=1, high=10_000, shares_chips=True)

    def __post_init__(self) -> None:
        check_settings(self)


def _with_sample_axis(dev: DeviceErrors) -> DeviceErrors:
    """An ensemble's errors ``(K, M)`` as ``(K, 1, M)``: broadcast over perturbations."""
    arrays = {f.name: getattr(dev, f.name)[:, None] for f in fields(DeviceErrors)
              if f.name not in ("model", "neighbour_pairs") and getattr(dev, f.name) is not None}
    return replace(dev, **arrays)


def perturbation_signs(rng, shape) -> np.ndarray:
    """Independent random signs (+1 / -1) of the given shape (``rng``: anything with
    ``standard_normal(shape)``, a Generator or a ``DeviceNoise``)."""
    return np.where(rng.standard_normal(shape) >= 0, 1.0, -1.0)


def spsa_gradient(net, params, x, labels, chip, delta: float, samples: int, sign_rng, noise_rng=None):
    """SPSA estimate of the gradient of a batch's mean loss on the chip.

    ``params`` is ``(P,)`` for one device or ``(K, P)`` for an ensemble (``chip`` arrays
    then ``(K, M)``, ``x`` ``(K, B, N)``). ``sign_rng`` draws the signs, ``noise_rng`` the
    I/O error of every forward pass. Returns ``(loss, grad)``: ``loss`` is the mean of the
    ``2 samples`` measured losses, ``grad`` the mean of the ``samples`` estimates.
    """
    if not delta > 0:
        raise ValueError(f"spsa_delta must be > 0, got {delta!r}")
    if int(samples) != samples or samples < 1:
        raise ValueError(f"spsa_samples must be an integer >= 1, got {samples!r}")
    samples = int(samples)
    params = np.asarray(params, dtype=float)
    single = params.ndim == 1
    p = params[None] if single else params
    x = np.asarray(x)[None] if single else np.asarray(x)
    labels = np.asarray(labels)[None] if single else np.asarray(labels)
    k = p.shape[0]
    signs = perturbation_signs(sign_rng, (k, samples, p.shape[-1]))
    probe = np.concatenate([p[:, None] + delta * signs, p[:, None] - delta * signs], axis=1)  # (K, 2S, P)
    devices = [d if single else _with_sample_axis(d) for d in chip]
    xs = np.broadcast_to(x[:, None], (k, 2 * samples) + x.shape[1:])
    ys = np.broadcast_to(labels[:, None], (k, 2 * samples) + labels.shape[1:])
    out = chip_forward(net, probe, xs, devices, noise_rng).outputs[-1]
    losses = loss_and_seed(net, out, ys)[0]  # (K, 2S)
    slope = (losses[:, :samples] - losses[:, samples:]) / (2.0 * delta)
    grad = np.mean(slope[..., None] * signs, axis=1)
    loss = losses.mean(axis=1)
    return (loss[0], grad[0]) if single else (loss, grad)
