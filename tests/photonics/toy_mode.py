"""A toy training mode with one setting of its own, as a user would add one: this module
and its registry line, nothing else (tests/photonics/test_toy_mode.py uses it).

``toy``: digital training whose step is the exact gradient scaled by ``toy_scale``.
"""

from dataclasses import dataclass

from insitu.photonics.modes import Mode, register_mode
from insitu.photonics.network import exact_gradient
from insitu.photonics.settings import check_settings, setting


@dataclass(frozen=True)
class ToySettings:
    toy_scale: float = setting(1.0, "scale of the toy mode's step", label="toy step scale",
                               low=0.0, high=10.0)

    def __post_init__(self):
        check_settings(self)


def toy_gradient(run, params, x, labels):
    return run.settings.toy_scale * exact_gradient(run.net, params, x, labels, None)[1]


TOY = register_mode(Mode("toy", toy_gradient, settings=ToySettings, on_chip_gradient=False,
                         label="toy: scaled exact gradient"))
