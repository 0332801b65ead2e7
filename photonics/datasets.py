"""Tasks and their optical encodings.

2-D tasks (the paper's on-chip experiments), generated with scikit-learn exactly as the
paper's notebooks call them, split 80/20:

| task | generator |
|---|---|
| ``circle`` | ``make_circles(n_samples=250, noise=0.2, factor=0.5, random_state=1)`` |
| ``moons`` | ``make_moons(n_samples=500, noise=0.2, random_state=0)`` |
| ``ring`` | ``make_gaussian_quantiles(n_samples=500, n_classes=3, cov=0.4)``, class 2 -> 0 |

Encoding to 4 ports: standardise with training statistics, scale so the largest training
radius is 2.95 (test radii are clipped below 3), and launch ``(x1, x2, b, b)`` with
``b = sqrt((9 - x1^2 - x2^2) / 2)``, so every input carries power 9.

Image tasks: 64 Fourier features, the central 8x8 window of the fft-shifted 2-D FFT of each
image, normalised by ``feature_norm``:

* ``"per_feature"`` (the default): each feature divided by its mean magnitude over the
  training set, each example then L2-normalised (power 1). Every feature carries similar
  power, so no port of the first mesh dominates; it is the default because every stored
  result of this project so far used it;
* ``"per_example"`` (the paper's final simulation code): each example L2-normalised as it
  is; the DC feature then carries a large share of the power (about 40 % on MNIST).

``digits64`` uses scikit-learn's bundled 8x8 digits (1797 images, no download); ``mnist64``
reads MNIST IDX files from a directory the user gives.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TWO_D_TASKS = ("circle", "moons", "ring")
IMAGE_TASKS = ("digits64", "mnist64")
FEATURE_NORMS = ("per_feature", "per_example")
TASKS = TWO_D_TASKS + IMAGE_TASKS

RADIUS_MAX_TRAIN = 2.95
RADIUS_CLIP = 2.99
INPUT_POWER_2D = 9.0


@dataclass(frozen=True, eq=False)
class Task:
    """A classification task encoded as optical input fields.

    ``x_*`` are complex ``(samples, n_ports)`` launch fields, ``y_*`` integer labels.
    For 2-D tasks ``points_*`` hold the scaled 2-D coordinates (before encoding) and
    ``encode_points`` maps scaled coordinates to fields (decision-boundary grids).
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    points_train: np.ndarray | None = None
    points_test: np.ndarray | None = None

    @property
    def n_ports(self) -> int:
        return self.x_train.shape[1]

    @property
    def is_2d(self) -> bool:
        return self.points_train is not None

    def encode_points(self, points: np.ndarray) -> np.ndarray:
        """Encode scaled 2-D points as ``(x1, x2, b, b)`` with power 9 (radii clipped below 3)."""
        return encode_2d(points)

    def default_network(self) -> dict:
        """Readout and logit scale that suit this task (docs/design.md, section 6)."""
        if self.is_2d:
            return {"readout": "grouped", "logit_scale": 3.0}
        return {"readout": "first", "logit_scale": 30.0}


def encode_2d(points: np.ndarray) -> np.ndarray:
    """``(x1, x2) -> (x1, x2, b, b)``, ``b = sqrt((9 - r^2) / 2)``; radii clipped to 2.99."""
    points = np.asarray(points, dtype=float)
    radius = np.linalg.norm(points, axis=1, keepdims=True)
    shrink = np.minimum(1.0, RADIUS_CLIP / np.maximum(radius, 1e-300))
    p = points * shrink
    b = np.sqrt((INPUT_POWER_2D - np.sum(p**2, axis=1)) / 2.0)
    return np.stack([p[:, 0], p[:, 1], b, b], axis=1).astype(complex)


def _split(x, y, seed: int, test_size: float = 0.2):
    from sklearn.model_selection import train_test_split

    return train_test_split(x, y, test_size=test_size, random_state=seed, stratify=y)


def _two_d_raw(name: str):
    from sklearn import datasets as skd

    if name == "circle":
        return skd.make_circles(n_samples=250, noise=0.2, factor=0.5, random_state=1)
    if name == "moons":
        return skd.make_moons(n_samples=500, noise=0.2, random_state=0)
    x, y = skd.make_gaussian_quantiles(n_samples=500, n_classes=3, cov=0.4, random_state=0)
    return x, np.where(y == 2, 0, y)


def _two_d_task(name: str, split_seed: int) -> Task:
    x, y = _two_d_raw(name)
    x_tr, x_te, y_tr, y_te = _split(x, y, split_seed)
    mean, std = x_tr.mean(0), x_tr.std(0)
    z_tr, z_te = (x_tr - mean) / std, (x_te - mean) / std
    scale = RADIUS_MAX_TRAIN / np.linalg.norm(z_tr, axis=1).max()
    z_tr, z_te = z_tr * scale, z_te * scale
    return Task(name, encode_2d(z_tr), y_tr.astype(np.int64), encode_2d(z_te), y_te.astype(np.int64), 2, z_tr, z_te)


def fourier_features(images: np.ndarray, window: int = 8) -> np.ndarray:
    """Central ``window x window`` block of the fft-shifted 2-D FFT of each image, flattened."""
    spectrum = np.fft.fftshift(np.fft.fft2(images, axes=(-2, -1)), axes=(-2, -1))
    h, w = images.shape[-2:]
    top, left = h // 2 - window // 2, w // 2 - window // 2
    block = spectrum[..., top : top + window, left : left + window]
    return block.reshape(images.shape[0], window * window)


def _image_task(name: str, images: np.ndarray, labels: np.ndarray, split_seed: int, test=None,
                feature_norm: str = "per_feature") -> Task:
    if test is None:
        tr_idx, te_idx, _, _ = _split(np.arange(len(labels)), labels, split_seed)
        tr_img, te_img, y_tr, y_te = images[tr_idx], images[te_idx], labels[tr_idx], labels[te_idx]
    else:
        tr_img, y_tr = images, labels
        te_img, y_te = test
    f_tr, f_te = fourier_features(tr_img.astype(float)), fourier_features(te_img.astype(float))
    if feature_norm == "per_feature":
        mean_mag = np.abs(f_tr).mean(axis=0)
        mean_mag[mean_mag == 0] = 1.0
        f_tr, f_te = f_tr / mean_mag, f_te / mean_mag
    f_tr, f_te = _unit_rows(f_tr), _unit_rows(f_te)
    return Task(name, f_tr, y_tr.astype(np.int64), f_te, y_te.astype(np.int64), 10)


def _unit_rows(features: np.ndarray) -> np.ndarray:
    """Each example at unit power (an all-zero example, a blank image, stays zero)."""
    norm = np.linalg.norm(features, axis=1, keepdims=True)
    return np.divide(features, norm, out=np.zeros_like(features), where=norm > 0)


def _digits_task(split_seed: int, feature_norm: str) -> Task:
    from sklearn.datasets import load_digits

    digits = load_digits()
    return _image_task("digits64", digits.images, digits.target, split_seed, feature_norm=feature_norm)


# --------------------------------------------------------------------------- MNIST (IDX)

_IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (optionally gzipped): unsigned-byte data of any rank.

    Raises ``ValueError`` naming the file when the header or size does not match.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        data = fh.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file (bad magic number)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise ValueError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape))
    if len(data) - header != expected:
        raise ValueError(f"{path}: IDX header promises {expected} bytes of data, file has {len(data) - header}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def _find_idx(directory: Path, stem: str) -> Path:
    for candidate in (directory / stem, directory / f"{stem}.gz", directory / stem.replace("-idx", ".idx")):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"MNIST file {stem} (or {stem}.gz) not found in {directory}")


def _mnist_task(path: str | os.PathLike | None, feature_norm: str) -> Task:
    if path is None or str(path) == "":
        raise ValueError("task 'mnist64' needs mnist_path: a directory with the four MNIST IDX files")
    directory = Path(path)
    if not directory.is_dir():
        raise FileNotFoundError(f"mnist_path {directory} is not a directory")
    arrays = {key: read_idx(_find_idx(directory, stem)) for key, stem in _IDX_FILES.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(f"MNIST {split} images {images.shape} and labels {labels.shape} do not match")
        if images.shape[1] < 8 or images.shape[2] < 8:
            raise ValueError(f"MNIST {split} images are {images.shape[1:]}: need at least 8x8")
    return _image_task(
        "mnist64",
        arrays["train_images"],
        arrays["train_labels"],
        0,
        test=(arrays["test_images"], arrays["test_labels"]),
        feature_norm=feature_norm,
    )


_CACHE: dict[tuple, Task] = {}


def load_task(name: str, split_seed: int = 42, mnist_path: str | None = None,
              feature_norm: str = "per_feature") -> Task:
    """Load (and cache per process) a task by name: circle, moons, ring, digits64, mnist64.

    ``feature_norm`` (image tasks): ``"per_feature"`` or ``"per_example"`` (module docstring).
    """
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}: expected one of {', '.join(TASKS)}")
    if feature_norm not in FEATURE_NORMS:
        raise ValueError(f"unknown feature_norm {feature_norm!r}: expected one of {', '.join(FEATURE_NORMS)}")
    key = (name, split_seed, str(mnist_path) if name == "mnist64" else None,
           feature_norm if name in IMAGE_TASKS else None)
    if key not in _CACHE:
        if name in TWO_D_TASKS:
            _CACHE[key] = _two_d_task(name, split_seed)
        elif name == "digits64":
            _CACHE[key] = _digits_task(split_seed, feature_norm)
        else:
            _CACHE[key] = _mnist_task(mnist_path, feature_norm)
    return _CACHE[key]


def boundary_grid(size: int, extent: float = 3.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Axis values and row-major (over (x2, x1)) points of a ``size x size`` grid on the plane."""
    axis = np.linspace(-extent, extent, size)
    g1, g2 = np.meshgrid(axis, axis)  # rows: x2, columns: x1
    return axis, axis, np.stack([g1.ravel(), g2.ravel()], axis=1)
