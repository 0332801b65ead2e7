"""Physics of photonic neural networks on imperfect MZI meshes (pure numpy).

The public surface used by sweeps, analysis and users:

- layouts: :func:`rectangular`, :func:`triangular`, :func:`from_columns`, :class:`MeshLayout`
- errors: :class:`ErrorModel`, :class:`DeviceErrors`, :func:`program_phases`
- propagation: :func:`transfer_matrix`, :func:`propagate`, :func:`ideal_gradient`
- initialisation: :func:`init_phases`
- in situ measurement: ``photonics.protocols`` (one mesh: passes, tap readings, launch
  schemes), ``photonics.insitu.measure_gradient`` (a whole network),
  ``photonics.insitu.protocol_gradient_errors`` (the gradient-error study of one device)
"""

from .errors import DeviceErrors, DeviceNoise, ErrorModel, program_phases, quantize_phase
from .initialization import init_phases
from .layout import MeshLayout, from_columns, make_layout, rectangular, triangular
from .propagation import TapFields, ideal_gradient, mzi_blocks, propagate, transfer_matrix

__all__ = [
    "DeviceErrors",
    "DeviceNoise",
    "ErrorModel",
    "MeshLayout",
    "TapFields",
    "from_columns",
    "ideal_gradient",
    "init_phases",
    "make_layout",
    "mzi_blocks",
    "program_phases",
    "propagate",
    "quantize_phase",
    "rectangular",
    "transfer_matrix",
    "triangular",
]
