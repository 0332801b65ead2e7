"""Optimisers on phases (numpy, functional state).

Both act on flat phase arrays of any leading shape (a device ensemble included). The
update direction is the measured gradient of the actual phases; the optimiser keeps the
programmed phases as floats and the device rounds them on every write (DAC), so small
updates accumulate until they cross a DAC step, as a controller that stores set points does.

* SGD with optional momentum ``mu``: ``v <- mu v + g``, ``p <- p - lr v``.
* Adam (Kingma & Ba): ``m <- b1 m + (1-b1) g``, ``v <- b2 v + (1-b2) g^2``,
  ``p <- p - lr m_hat / (sqrt(v_hat) + eps)`` with bias-corrected moments.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

OPTIMIZERS = ("sgd", "adam")


@dataclass(frozen=True)
class SGD:
    lr: float = 0.01
    momentum: float = 0.0

    def init(self, params: np.ndarray) -> dict:
        return {"velocity": np.zeros_like(params)}

    def step(self, params: np.ndarray, grad: np.ndarray, state: dict) -> np.ndarray:
        """Return updated parameters (``state`` is updated in place)."""
        if self.momentum:
            state["velocity"] = self.momentum * state["velocity"] + grad
            return params - self.lr * state["velocity"]
        return params - self.lr * grad


@dataclass(frozen=True)
class Adam:
    lr: float = 0.01
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8

    def init(self, params: np.ndarray) -> dict:
        return {"m": np.zeros_like(params), "v": np.zeros_like(params), "t": 0}

    def step(self, params: np.ndarray, grad: np.ndarray, state: dict) -> np.ndarray:
        """Return updated parameters (``state`` is updated in place)."""
        state["t"] += 1
        t = state["t"]
        state["m"] = self.beta1 * state["m"] + (1 - self.beta1) * grad
        state["v"] = self.beta2 * state["v"] + (1 - self.beta2) * grad**2
        m_hat = state["m"] / (1 - self.beta1**t)
        v_hat = state["v"] / (1 - self.beta2**t)
        return params - self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


def make_optimizer(name: str, lr: float):
    """Optimiser by name (``"sgd"`` or ``"adam"``) with learning rate ``lr``."""
    if not (lr > 0 and np.isfinite(lr)):
        raise ValueError(f"learning rate must be a positive number, got {lr!r}")
    if name == "sgd":
        return SGD(lr)
    if name == "adam":
        return Adam(lr)
    raise ValueError(f"unknown optimizer {name!r}: expected one of {OPTIMIZERS}")
