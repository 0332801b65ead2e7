"""The error model of a fabricated mesh and its detectors.

:class:`ErrorModel` holds the *statistics* (standard deviations, losses, bit depths).
:meth:`ErrorModel.sample` draws one device's *static* errors (:class:`DeviceErrors`): a
splitting error per coupler, an amplitude transmission per arm, a static offset per phase
shifter. Dynamic errors are drawn where a measurement happens, from a stream the caller
passes in: I/O generation and readout error here (:func:`perturb_io`), tap detector noise
where the tap readings are formed (:func:`insitu.photonics.protocols.tap_readings`).

Units: splitting error and phase errors in radians, losses in dB (power), amplitudes scale
as ``10**(-dB/20)``. Idle waveguide positions (a mode with no MZI in a column) are lossless
unless ``idle_loss_db`` says otherwise.

Two loss-variation models sit side by side:

* ``loss_imbalance_db`` (this project's first model): a half-normal *extra* loss on each
  internal arm (theta arm and bottom arm), so no arm has gain and the mean loss is
  ``0.8 loss_imbalance_db`` per arm;
* ``loss_std_db`` (the paper's simulation, Pai et al. 2023, Fig. 4): a zero-mean Gaussian
  in dB of power on the theta arm and on the phi (input) arm of every MZI, so a draw below
  zero is a gain and paths stay loss-balanced on average.

I/O error placement (``io_placement``): ``"generate_and_read"`` puts the amplitude and phase
error on every generated vector and on every read amplitude; ``"read"`` (the paper's
simulation code) only on read amplitudes, generation is exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace

import numpy as np

from .heaters import HEATER_MODELS, drive_voltages, heater_coefficients, heater_phases
from .layout import MeshLayout
from .settings import check_settings, setting

TWO_PI = 2.0 * np.pi
IO_PLACEMENTS = ("generate_and_read", "read")


@dataclass(frozen=True)
class ErrorModel:
    """Statistics of fabrication errors and measurement noise.

    Args:
        bs_error: std of the coupler splitting error ``e`` (rad), drawn per coupler;
            ``B(e)`` splits power ``sin^2(pi/4 + e) : cos^2(pi/4 + e)``.
        loss_db: insertion loss per MZI (dB), applied to both internal arms.
        loss_imbalance_db: scale (dB) of the extra loss of each internal arm, drawn per arm
            as ``loss_imbalance_db * |n|`` (half-normal, so no arm has gain).
        phase_error: std of the static offset of every phase shifter (rad).
        crosstalk: thermal crosstalk coefficient kappa: a heater set to ``p`` (wrapped into
            ``[0, 2 pi)``) also shifts the same kind of shifter (theta or phi) of each adjacent
            MZI in its column by ``kappa * p``.
        dac_bits: phase-DAC resolution; every written phase is rounded to a multiple of
            ``2 pi / 2**dac_bits``. ``None`` is a continuous DAC.
        tap_noise: relative tap-detector noise ``s``: a reading of power ``p`` is
            ``p + s sqrt(p) n``.
        io_amp_error: std ``s_a`` of the amplitude error ``(1 + s_a n)`` of every generated
            and every read complex amplitude.
        io_phase_error: std ``s_phi`` (rad) of the phase error ``exp(i s_phi n)`` of every
            generated and every read complex amplitude.
        tap_fraction: share of power a grating tap removes from its arm (0 = ideal taps).
        loss_std_db: std (dB of power) of the paper's zero-mean loss variation, drawn per MZI
            on the theta arm and on the phi (input) arm; amplitude ``10**(-x/20)``, so
            ``x < 0`` is a gain.
        idle_loss_db: loss (dB) of every idle waveguide position (a mode that no MZI of a
            column touches); 0 = lossless idle positions.
        io_placement: where I/O error acts: ``"generate_and_read"`` (every generated vector
            and every read amplitude) or ``"read"`` (read amplitudes only).
        heater: how a set point becomes a phase (:mod:`insitu.photonics.heaters`):
            ``"phase"`` (the set point is the phase; crosstalk and the DAC act on phases),
            ``"thermal"`` (``theta = alpha V**2 / R``) or ``"cubic"`` (the paper's fitted
            ``theta(V)``); with a heater model the DAC rounds voltages and crosstalk is
            linear in heater power.
        v_max: the heater drivers' voltage range ``[0, v_max]`` (V; heater models only).
        heater_spread: relative spread of every shifter's curve: each coefficient is its
            nominal value times ``1 + heater_spread n`` (heater models only).

    Every field is a declared setting (:func:`insitu.photonics.settings.setting`): the sweep
    parameters and the store's labels and units are derived from its metadata.
    """

    bs_error: float = setting(0.0, "coupler splitting error std (rad)", label="splitting error σ",
                              unit="rad", low=0.0, high=0.785, role="error")
    loss_db: float = setting(0.0, "insertion loss per MZI (dB)", label="insertion loss",
                             unit="dB per MZI", low=0.0, high=10.0, role="error")
    loss_imbalance_db: float = setting(0.0, "per-arm extra loss scale (dB)", label="loss imbalance",
                                       unit="dB", low=0.0, high=10.0, role="error")
    phase_error: float = setting(0.0, "static phase offset std (rad)", label="phase error σ",
                                 unit="rad", low=0.0, high=6.3, role="error")
    crosstalk: float = setting(
        0.0, "thermal crosstalk coefficient (<= 0.3: beyond, I + kappa A can turn updates uphill)",
        label="thermal crosstalk κ", unit="fraction", low=0.0, high=0.3, role="error")
    dac_bits: int | None = setting(None, "phase DAC bits (0 = continuous)", label="DAC resolution",
                                   unit="bits", low=0, high=32, none_as=0, role="error",
                                   error_free="high")
    tap_noise: float = setting(0.0, "relative tap detector noise s: a reading p + s sqrt(p) n",
                               label="tap noise s", unit="√(launch power)", low=0.0, high=10.0,
                               role="error")
    io_amp_error: float = setting(0.0, "I/O amplitude error std", label="I/O amplitude error s_a",
                                  unit="relative", low=0.0, high=1.0, role="error")
    io_phase_error: float = setting(0.0, "I/O phase error std (rad)", label="I/O phase error s_φ",
                                    unit="rad", low=0.0, high=6.3, role="error")
    tap_fraction: float = setting(0.0, "power share removed by each tap", label="tap power fraction",
                                  unit="fraction", low=0.0, high=0.5, role="error")
    loss_std_db: float = setting(
        0.0, "the paper's zero-mean loss variation std (dB) on theta and phi arms",
        label="loss variation σ", unit="dB per arm", low=0.0, high=10.0, role="error")
    idle_loss_db: float = setting(0.0, "loss of each idle waveguide position (dB)",
                                  label="idle-position loss", unit="dB", low=0.0, high=10.0,
                                  role="error")
    io_placement: str = setting(
        "generate_and_read", "I/O error on generated vectors and reads, or on reads only (the paper's code)",
        label="I/O error placement", choices=IO_PLACEMENTS, shares_chips=True)
    heater: str = setting(
        "phase", "how a set point becomes a phase: phase (the set point is the phase), thermal "
        "(alpha V^2 / R) or cubic (the paper's fitted theta(V))", label="heater model",
        choices=HEATER_MODELS, shares_chips=True)
    v_max: float = setting(7.5, "heater driver range [0, v_max] (V; heater models; 7.07 V is 2 pi at nominal)",
                           label="heater voltage range", unit="V", low=0.1, high=1000.0, role="error",
                           error_free="high")
    heater_spread: float = setting(
        0.0, "relative spread of each shifter's heater curve (heater models)", label="heater curve spread",
        unit="relative", low=0.0, high=1.0, role="error")

    def __post_init__(self) -> None:
        check_settings(self)
        if self.dac_bits is not None and self.dac_bits < 1:
            raise ValueError(f"dac_bits must be an integer in 1..32 or None (0), got {self.dac_bits!r}")
        if self.tap_fraction >= 1:
            raise ValueError(f"tap_fraction must be < 1, got {self.tap_fraction!r}")

    @property
    def io_on_generation(self) -> bool:
        """True when generated vectors carry I/O error (``io_placement = "generate_and_read"``)."""
        return self.io_placement == "generate_and_read"

    def without_noise(self) -> "ErrorModel":
        """The same static device errors with ideal detectors and I/O."""
        return replace(self, tap_noise=0.0, io_amp_error=0.0, io_phase_error=0.0)

    def sample(self, layout: MeshLayout, rng: np.random.Generator, n_outputs: int | None = None,
               control_rng: np.random.Generator | None = None) -> "DeviceErrors":
        """Draw the static errors of one device with this layout.

        The draw order is fixed (couplers, arm imbalance, phase offsets, output-phase offsets,
        then the paper's loss variation) and every array is drawn even when its std is 0, so
        changing one parameter never reshuffles the others' draws. Heater curves
        (:mod:`insitu.photonics.heaters`) come from ``control_rng``, which draws them
        whatever the heater model (training passes a stream of its own, so a chip's static
        errors do not depend on its heater model); without it they are drawn from ``rng``
        after the rest, and only for a heater model. A layout of 3-splitter
        MZIs draws its third couplers' splitting errors after all of these (``bs3``, std
        ``bs_error``), so its other arrays are those of the standard mesh with the same seed.
        """
        m = layout.n_mzis
        n = layout.n_ports if n_outputs is None else n_outputs
        bs = rng.standard_normal((2, m)) * self.bs_error
        extra = np.abs(rng.standard_normal((2, m))) * self.loss_imbalance_db
        arm_db = self.loss_db + extra
        offsets = rng.standard_normal((2, m)) * self.phase_error
        gamma_offset = rng.standard_normal(n) * self.phase_error
        variation_db = rng.standard_normal((2, m)) * self.loss_std_db  # theta arm, phi arm
        tap_amp = math.sqrt(1.0 - self.tap_fraction)
        heaters = None
        if control_rng is not None or self.heater != "phase":
            draws = (rng if control_rng is None else control_rng).standard_normal((2, m, 3))
            if self.heater != "phase":
                heaters = heater_coefficients(self.heater, self.heater_spread, draws)
        bs3 = rng.standard_normal(m) * self.bs_error if layout.three_splitter else None
        return DeviceErrors(
            bs1=bs[0],
            bs2=bs[1],
            arm_top=10.0 ** (-(arm_db[0] + variation_db[0]) / 20.0) * tap_amp,
            arm_bottom=10.0 ** (-arm_db[1] / 20.0),
            arm_input=10.0 ** (-variation_db[1] / 20.0) * tap_amp,
            theta_offset=offsets[0],
            phi_offset=offsets[1],
            gamma_offset=gamma_offset,
            model=self,
            neighbour_pairs=layout.neighbours(),
            idle_amp=idle_amplitudes(layout, self.idle_loss_db),
            theta_heater=None if heaters is None else heaters[0],
            phi_heater=None if heaters is None else heaters[1],
            bs3=bs3,
        )


def idle_amplitudes(layout: MeshLayout, idle_loss_db: float) -> np.ndarray:
    """Amplitude transmission ``(depth, ports)`` of every mode in every column.

    ``10**(-idle_loss_db / 20)`` where no MZI of the column touches the mode, 1 elsewhere
    (the MZIs' own losses live in the arm amplitudes).
    """
    amp = np.ones((layout.depth, layout.n_ports))
    if idle_loss_db == 0:
        return amp
    idle = np.full((layout.depth, layout.n_ports), True)
    for c, tops in enumerate(layout.columns):
        idle[c, tops] = False
        idle[c, np.asarray(tops) + 1] = False
    amp[idle] = 10.0 ** (-idle_loss_db / 20.0)
    return amp


@dataclass(frozen=True, eq=False)
class DeviceErrors:
    """Static errors of one sampled device (arrays over MZIs, or over ports for ``gamma``).

    ``arm_top`` / ``arm_bottom`` are amplitude transmissions of the internal arms (insertion
    loss, imbalance, the paper's loss variation on the theta arm, and the theta tap),
    ``arm_input`` of the top input arm (the paper's loss variation on the phi arm, and the
    phi tap). ``idle_amp`` ``(depth, ports)`` is the amplitude transmission of each mode in
    each column: ``10**(-idle_loss_db/20)`` at idle positions, 1 where an MZI sits (its
    losses are in the arm arrays). ``theta_heater`` / ``phi_heater`` ``(..., m, 3)`` are the
    shifters' heater curves (None for the ``"phase"`` heater model). A twin holds its
    calibrated crosstalk in ``crosstalk_estimate`` ``(..., 2, 2, P)`` (shifter kind, direction,
    neighbour pair; :func:`insitu.photonics.heaters.calibrate_control`); None: the model's
    ``crosstalk`` for every pair. Arrays may carry a leading device axis (an ensemble).
    ``bs3`` holds the splitting error of the third coupler of every 3-splitter MZI (``None``
    for a mesh of standard MZIs).
    """

    bs1: np.ndarray
    bs2: np.ndarray
    arm_top: np.ndarray
    arm_bottom: np.ndarray
    arm_input: np.ndarray
    theta_offset: np.ndarray
    phi_offset: np.ndarray
    gamma_offset: np.ndarray
    model: ErrorModel
    neighbour_pairs: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int64))
    idle_amp: np.ndarray | None = None
    theta_heater: np.ndarray | None = None
    phi_heater: np.ndarray | None = None
    crosstalk_estimate: np.ndarray | None = None  # (..., 2, 2, P): a twin's calibrated crosstalk
    bs3: np.ndarray | None = None

    @staticmethod
    def stack(devices: list["DeviceErrors"]) -> "DeviceErrors":
        """An ensemble: the devices' arrays stacked on a leading axis (same model)."""
        model = devices[0].model
        arrays = {
            f.name: np.stack([getattr(d, f.name) for d in devices])
            for f in fields(DeviceErrors)
            if f.name not in ("model", "neighbour_pairs") and getattr(devices[0], f.name) is not None
        }
        return DeviceErrors(**arrays, model=model, neighbour_pairs=devices[0].neighbour_pairs)


def quantize_phase(phase: np.ndarray, dac_bits: int | None) -> np.ndarray:
    """Round phases to the DAC grid ``2 pi / 2**dac_bits`` (identity when ``None``)."""
    if dac_bits is None:
        return phase
    step = TWO_PI / (1 << dac_bits)
    return np.round(np.asarray(phase) / step) * step


def apply_crosstalk(phase: np.ndarray, pairs: np.ndarray, kappa) -> np.ndarray:
    """``phase_j + sum_{i neighbour of j} kappa_ij phase_i`` over the last axis.

    ``kappa`` is one number for every pair and direction, or per pair ``(..., 2, P)`` (row 0:
    the pair's first heater onto its second, row 1 the reverse; leading axes over devices).
    ``pairs`` holds (i, i+1) index pairs of neighbouring heaters; within each side of the
    pairs no index repeats, so two fancy-indexed additions are exact.
    """
    if pairs.size == 0 or not np.any(kappa):
        return phase
    out = np.array(phase, dtype=float, copy=True)
    i, j = pairs[:, 0], pairs[:, 1]
    if np.ndim(kappa):
        out[..., j] += kappa[..., 0, :] * phase[..., i]
        out[..., i] += kappa[..., 1, :] * phase[..., j]
        return out
    out[..., i] += kappa * phase[..., j]
    out[..., j] += kappa * phase[..., i]
    return out


def program_phases(errors: DeviceErrors | None, theta, phi, gamma=None):
    """Programmed phases (set points) -> actual phases of a device.

    ``"phase"`` heater model: set points are wrapped into ``[0, 2 pi)`` (when crosstalk or a
    DAC acts on them), rounded by the DAC, spread by thermal crosstalk, then offset by the
    static phase error. A heater model: the controller turns set points into voltages
    (:func:`insitu.photonics.heaters.drive_voltages`), each shifter's phase is its curve at
    the heat it receives, crosstalk included (:func:`insitu.photonics.heaters.heater_phases`),
    then the static offset. Output phases ``gamma`` are set as phases in every model.
    """
    theta = np.asarray(theta, dtype=float)
    phi = np.asarray(phi, dtype=float)
    if errors is None:
        return theta, phi, None if gamma is None else np.asarray(gamma, dtype=float)
    model = errors.model
    est = errors.crosstalk_estimate
    kappa_theta, kappa_phi = (model.crosstalk, model.crosstalk) if est is None else (est[..., 0, :, :], est[..., 1, :, :])
    if model.heater != "phase":
        theta = heater_phases(errors.theta_heater, drive_voltages(model.heater, model.v_max, model.dac_bits, theta),
                              errors.neighbour_pairs, kappa_theta) + errors.theta_offset
        phi = heater_phases(errors.phi_heater, drive_voltages(model.heater, model.v_max, model.dac_bits, phi),
                            errors.neighbour_pairs, kappa_phi) + errors.phi_offset
        if gamma is not None:
            gamma = quantize_phase(np.asarray(gamma, dtype=float), model.dac_bits) + errors.gamma_offset
        return theta, phi, gamma
    # Heater set points live in [0, 2 pi): wrapping first makes crosstalk (which scales the
    # set point) independent of which multiple of 2 pi the optimiser happens to hold.
    if model.crosstalk or model.dac_bits is not None:
        theta, phi = np.mod(theta, TWO_PI), np.mod(phi, TWO_PI)
    theta = quantize_phase(theta, model.dac_bits)
    phi = quantize_phase(phi, model.dac_bits)
    theta = apply_crosstalk(theta, errors.neighbour_pairs, kappa_theta)
    phi = apply_crosstalk(phi, errors.neighbour_pairs, kappa_phi)
    theta = theta + errors.theta_offset
    phi = phi + errors.phi_offset
    if gamma is not None:
        gamma = quantize_phase(np.asarray(gamma, dtype=float), model.dac_bits) + errors.gamma_offset
    return theta, phi, gamma


class DeviceNoise:
    """Independent random streams of an ensemble of devices, drawn in blocks.

    Device ``k`` draws only from its own generator, so an ensemble sees exactly the numbers
    its devices would see one by one. Draws are served from a per-device buffer of
    ``block`` numbers refilled when exhausted: one generator call per device per block,
    instead of one per device per noise draw, which keeps large ensembles cheap. Requests
    larger than a block are drawn directly. The refill points depend only on the sequence
    of requested shapes, which every device of an ensemble shares.
    """

    def __init__(self, generators, block: int = 4096):
        self.generators = list(generators)
        self.block = int(block)
        self._buffer = np.empty((len(self.generators), 0))
        self._pos = 0

    def __len__(self) -> int:
        return len(self.generators)

    def new_step(self) -> None:
        """A training step begins; fresh draws simply continue the streams."""

    def standard_normal(self, shape: tuple[int, ...]) -> np.ndarray:
        k = len(self.generators)
        if shape[0] != k:
            raise ValueError(f"{k} device streams for a device axis of {shape[0]}")
        n = int(np.prod(shape[1:], dtype=np.int64))
        if n > self.block:
            return np.stack([g.standard_normal(shape[1:]) for g in self.generators])
        if self._pos + n > self._buffer.shape[1]:
            self._buffer = np.stack([g.standard_normal(self.block) for g in self.generators])
            self._pos = 0
        out = self._buffer[:, self._pos : self._pos + n]
        self._pos += n
        return out.reshape(shape)


NOISE_DRAWS = ("fresh", "frozen")


class FrozenNoise:
    """Measurement noise that repeats one pattern every training step (fixed-pattern noise).

    Wraps a stream (a :class:`DeviceNoise`, or a Generator for one device). The draws of a
    step are numbered in call order; the ``k``-th draw of every step gets the numbers the
    stream drew for the ``k``-th draw of the first step that asked for that shape there,
    and :meth:`new_step` starts the next step. A draw of a shape not seen before at its
    place (the short last batch of an epoch) draws its own pattern once. Patterns are
    read-only arrays.

    This is how a simulation behaves that draws its noise with numpy inside a function
    compiled once: numpy random calls in a ``jax.jit``-compiled function run while JAX
    traces it and become constants, as in the paper's simulation code (Pai et al. 2023,
    Fig. 4; simphox's ``in_situ_matrix_fn``). There the forward I/O error sits on the read
    transfer matrix, one pattern for every example and for inference; here it sits on each
    batch position's read outputs, so an example meets another pattern when the shuffled
    order moves it, and evaluation is read with fresh noise.
    """

    def __init__(self, stream):
        self.stream = stream
        self._patterns: dict[tuple[int, tuple[int, ...]], np.ndarray] = {}
        self._index = 0

    def new_step(self) -> None:
        """A training step begins: its draws replay those of the first step."""
        self._index = 0

    def standard_normal(self, shape: tuple[int, ...]) -> np.ndarray:
        site = (self._index, tuple(shape))
        self._index += 1
        pattern = self._patterns.get(site)
        if pattern is None:
            pattern = np.array(self.stream.standard_normal(shape))
            pattern.flags.writeable = False
            self._patterns[site] = pattern
        return pattern


def measurement_noise(stream, noise_draws: str):
    """The noise stream of training's measurements: ``stream`` itself for ``"fresh"``
    draws, a :class:`FrozenNoise` replay of it for ``"frozen"``."""
    if noise_draws == "fresh":
        return stream
    if noise_draws == "frozen":
        return FrozenNoise(stream)
    raise ValueError(f"noise_draws must be one of {', '.join(NOISE_DRAWS)}, got {noise_draws!r}")


def generate_io(field: np.ndarray, model: ErrorModel, rng) -> np.ndarray:
    """What a vector unit generates when asked for ``field``: with I/O error on generation
    (``io_placement = "generate_and_read"``) as :func:`perturb_io`, else exactly ``field``."""
    return perturb_io(field, model, rng) if model.io_on_generation else field


def read_io(field: np.ndarray, model: ErrorModel, rng) -> np.ndarray:
    """What a coherent receiver reads for true amplitudes ``field`` (:func:`perturb_io`)."""
    return perturb_io(field, model, rng)


def perturb_io(field: np.ndarray, model: ErrorModel, rng) -> np.ndarray:
    """Generation or readout of complex amplitudes: ``x (1 + s_a n1) exp(i s_phi n2)``.

    ``field`` is ``(B, N)`` or ``(K, B, N)`` for an ensemble; amplitude and phase noise are
    one draw of shape ``(..., 2, B, N)``.
    """
    if rng is None or (model.io_amp_error == 0 and model.io_phase_error == 0):
        return field
    lead = field.shape[:-2]
    draws = rng.standard_normal(lead + (2,) + field.shape[-2:])
    # The noise factor is evaluated in single precision (vectorised trigonometry, ~20x
    # faster); its relative error of 1e-7 is far below any modelled error. Its parts are
    # held in double precision, so the product with the field is one complex128 multiply.
    phase = (model.io_phase_error * draws[..., 1, :, :]).astype(np.float32)
    amp = (1.0 + model.io_amp_error * draws[..., 0, :, :]).astype(np.float32)
    factor = np.empty(field.shape, dtype=complex)
    part = np.cos(phase)
    part *= amp
    factor.real = part
    part = np.sin(phase, out=phase)
    part *= amp
    factor.imag = part
    return np.multiply(field, factor, out=factor)
