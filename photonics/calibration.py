"""Calibration of a chip's static errors: the digital twin that offline methods train on.

Calibration model (a statistical stand-in for a measurement procedure, which a later issue
may simulate instead). Every static error array of the device (:class:`DeviceErrors`) is
estimated with an independent zero-mean Gaussian error of std ``sigma_c``
(``calibration_error``), in the unit of that quantity:

* angles (rad): coupler splitting errors ``e1, e2`` and static phase offsets of the
  theta, phi and output-screen shifters: ``x_hat = x + sigma_c n``;
* losses (dB of power): every arm's amplitude transmission ``a``:
  ``a_hat = a 10**(-sigma_c n / 20)`` (the estimated arm loss is off by ``sigma_c n`` dB);

with ``n ~ N(0, 1)`` drawn per element. ``sigma_c = 0`` is perfect knowledge: the twin
equals the chip. The twin keeps the chip's error model (its DAC resolution is taken as
known) without detector or I/O noise; its heater curves and crosstalk coefficient are those
of the control layer's calibration (:func:`insitu.photonics.heaters.calibrate_control`:
curves and the crosstalk of every neighbour pair and direction off by a relative error
``calibration_error``), which training puts into the twin. ``CALIBRATED_FIELDS`` lists
every static field with its unit; a new static field of :class:`DeviceErrors` is one line
there (a test checks that none is left out).
"""

from __future__ import annotations

from dataclasses import fields, replace

import numpy as np

from .errors import DeviceErrors

# Static error arrays of a device and the unit their calibration error is drawn in.
# Draws follow this order, every array drawn even when sigma_c = 0.
CALIBRATED_FIELDS: dict[str, str] = {
    "bs1": "rad",
    "bs2": "rad",
    "arm_top": "dB",
    "arm_bottom": "dB",
    "arm_input": "dB",
    "theta_offset": "rad",
    "phi_offset": "rad",
    "gamma_offset": "rad",
    "bs3": "rad",  # third couplers of 3-splitter MZIs (absent from standard meshes)
}
UNITS = ("rad", "dB")
# Fields of DeviceErrors that are not estimated: the model's statistics and the layout's
# heater adjacency (no error arrays), and the idle-position transmission ``idle_amp``, which
# the twin takes as known (it is 1 unless ``idle_loss_db`` is set, and a calibration of it
# would need a per-position measurement model this one does not have).
NOT_CALIBRATED = ("model", "neighbour_pairs", "idle_amp", "theta_heater", "phi_heater", "crosstalk_estimate")
# The heater curves and the crosstalk coefficient are the control layer's: a lab calibrates
# them with its own procedure (insitu.photonics.heaters.calibrate_control, errors of
# calibration_error); training gives a twin those estimates.


def calibrated_twin(device: DeviceErrors, calibration_error: float, rng: np.random.Generator) -> DeviceErrors:
    """The digital twin of one device: every static error estimated with std ``calibration_error``.

    ``device`` is one mesh's errors (no ensemble axis); ``rng`` supplies the estimation
    errors, drawn field by field in the order of ``CALIBRATED_FIELDS`` (a field the device
    does not have, ``bs3`` of a standard mesh, draws nothing).
    """
    sigma = float(calibration_error)
    if not np.isfinite(sigma) or sigma < 0:
        raise ValueError(f"calibration_error must be a finite number >= 0, got {calibration_error!r}")
    estimates = {}
    for name, unit in CALIBRATED_FIELDS.items():
        if getattr(device, name) is None:
            continue
        true = np.asarray(getattr(device, name), dtype=float)
        error = sigma * rng.standard_normal(true.shape)
        if unit == "rad":
            estimates[name] = true + error
        elif unit == "dB":
            estimates[name] = true * 10.0 ** (-error / 20.0)
        else:
            raise ValueError(f"calibration of {name}: unknown unit {unit!r} (expected one of {UNITS})")
    return replace(device, **estimates, model=device.model.without_noise())


def static_fields() -> list[str]:
    """Every field of :class:`DeviceErrors` that holds a static error array."""
    return [f.name for f in fields(DeviceErrors) if f.name not in NOT_CALIBRATED]
