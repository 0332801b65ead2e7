"""With every control-layer setting at its default (the phase heater model, no crosstalk
compensation, the digital update), training gives the numbers it gave before the control
layer existed, bit for bit.

``golden_defaults.npz`` holds :func:`golden_runs` as computed by the tree before the
control layer (commit f5785ef), made with ``python tests/photonics/test_control_defaults.py
OUT.npz`` run in a checkout of that commit. Every mode runs on chips with crosstalk, a
DAC, noise, and a calibration error, so the paths the control layer touches are all taken.
The twin's crosstalk now comes from a calibration (relative error ``calibration_error``):
its case has no crosstalk, where the estimate is exact, so the numbers hold there too.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

GOLDEN = Path(__file__).with_name("golden_defaults.npz")
MODES = ("digital", "insitu", "analog", "calibrated", "corrected", "pat", "spsa")
CASES = {
    "crosstalk": ("moons", dict(bs_error=0.05, crosstalk=0.05, phase_error=0.02, tap_noise=0.01, io_amp_error=0.01),
                  dict(epochs=1, batch_size=16)),
    "dac": ("moons", dict(dac_bits=6, crosstalk=0.1, loss_std_db=0.05), dict(epochs=1, batch_size=32, optimizer="sgd", lr=0.1)),
    "calibration": ("moons", dict(bs_error=0.05, phase_error=0.05, loss_imbalance_db=0.1, tap_noise=0.01),
                    dict(calibration_error=0.02, epochs=1, batch_size=16)),
}


def golden_runs(cases=CASES) -> dict[str, np.ndarray]:
    from insitu.photonics import ErrorModel
    from insitu.photonics.training import train

    out = {}
    for name, (task, errors, config) in cases.items():
        for mode in MODES:
            r = train(task, seed=7, errors=ErrorModel(**errors), mode=mode, **config)
            out[f"{name}-{mode}-params"] = r.params
            out[f"{name}-{mode}-test_accuracy"] = r.test_accuracy
            out[f"{name}-{mode}-test_loss"] = r.test_loss
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_defaults_train_bit_for_bit_as_before_the_control_layer(case):
    runs = golden_runs({case: CASES[case]})
    golden = np.load(GOLDEN)
    keys = [k for k in golden.files if k.startswith(case + "-")]
    assert len(keys) == 3 * len(MODES)
    for key in keys:
        np.testing.assert_array_equal(runs[key], golden[key], err_msg=key)


if __name__ == "__main__":
    np.savez_compressed(sys.argv[1], **golden_runs())
