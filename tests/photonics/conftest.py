import numpy as np
import pytest


def random_fields(rng, batch, n):
    return rng.standard_normal((batch, n)) + 1j * rng.standard_normal((batch, n))


def haar_unitary(rng, n):
    """Haar-random unitary from the QR decomposition of a complex Ginibre matrix."""
    z = (rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))) / np.sqrt(2)
    q, r = np.linalg.qr(z)
    d = np.diag(r)
    return q * (d / np.abs(d))


@pytest.fixture
def rng():
    return np.random.default_rng(20231128)
