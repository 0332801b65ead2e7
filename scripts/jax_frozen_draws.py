"""Do numpy draws inside a jax.jit-compiled custom-VJP function repeat on every call?

The check behind ``noise_draws = "frozen"`` (README, Fig. 4): the paper's simulation code
(simphox's ``in_situ_matrix_fn``) draws its I/O error and tap noise with ``np.random`` in the
forward and backward rules of a ``jax.custom_vjp`` function that its layer compiles with
``jax.jit``. This script builds a function of that shape and calls it, its gradient, and a
jitted gradient three times each; identical numbers mean the draws are frozen.

JAX is not a dependency of insitu: ``pip install "jax[cpu]"`` in a separate environment
and run ``python scripts/jax_frozen_draws.py`` there.
"""

from __future__ import annotations

import sys

import numpy as np

try:
    import jax
    import jax.numpy as jnp
except ImportError:
    print("jax_frozen_draws: this check needs JAX (pip install \"jax[cpu]\"), which insitu does not use",
          file=sys.stderr)
    sys.exit(2)


def noisy_layer():
    """A jitted function whose forward and backward rules draw numpy noise, as the paper's."""

    @jax.custom_vjp
    def read(p):
        return p * (1 + 0.1 * np.random.randn(*p.shape))  # forward: I/O error on a read

    def forward(p):
        return read(p), p

    def backward(p, g):
        return (g * (1 + 0.1 * np.random.randn(*p.shape)),)  # backward: tap noise

    read.defvjp(forward, backward)
    return jax.jit(read)


def main() -> int:
    layer = noisy_layer()
    p = jnp.ones(3)
    loss = lambda q: jnp.sum(layer(q))  # noqa: E731
    jitted_grad = jax.jit(jax.grad(loss))
    calls = {
        "forward": [float(layer(p)[0]) for _ in range(3)],
        "gradient": [float(jax.grad(loss)(p)[0]) for _ in range(3)],
        "jitted gradient": [float(jitted_grad(p)[0]) for _ in range(3)],
    }
    print(f"jax {jax.__version__}")
    for name, values in calls.items():
        same = len(set(values)) == 1
        print(f"{name:16s} {' '.join(f'{v:.7f}' for v in values)}  {'frozen' if same else 'fresh'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
