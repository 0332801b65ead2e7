import gzip

import numpy as np
import pytest

from photonics.datasets import fourier_features, load_task, read_idx


@pytest.mark.parametrize("name,n_train,n_test", [("circle", 200, 50), ("moons", 400, 100), ("ring", 400, 100)])
def test_two_d_tasks_encode_to_power_nine(name, n_train, n_test):
    task = load_task(name)
    assert task.x_train.shape == (n_train, 4) and task.x_test.shape == (n_test, 4)
    np.testing.assert_allclose(np.sum(np.abs(task.x_train) ** 2, 1), 9.0)
    np.testing.assert_allclose(np.sum(np.abs(task.x_test) ** 2, 1), 9.0)
    assert np.linalg.norm(task.points_train, axis=1).max() == pytest.approx(2.95)
    assert set(np.unique(task.y_train)) == {0, 1}


def test_digits64_features():
    task = load_task("digits64")
    assert task.x_train.shape == (1437, 64) and task.x_test.shape == (360, 64)
    np.testing.assert_allclose(np.linalg.norm(task.x_train, axis=1), 1.0)
    assert task.n_classes == 10


def test_fourier_window_is_centred():
    # A constant image has all its energy at DC, the centre of the shifted spectrum.
    img = np.ones((1, 28, 28))
    f = fourier_features(img).reshape(8, 8)
    assert abs(f[4, 4]) == pytest.approx(28 * 28)
    assert np.sum(np.abs(f) > 1e-9) == 1


def _write_idx(path, array, gz=False):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    (gzip.open if gz else open)(path, "wb").write(data)


def test_mnist64_from_local_idx_files(tmp_path):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (30, 28, 28))
    labels = np.arange(30) % 10
    _write_idx(tmp_path / "train-images-idx3-ubyte", imgs)
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels, gz=True)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte", imgs[:10])
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels[:10])
    task = load_task("mnist64", mnist_path=str(tmp_path))
    assert task.x_train.shape == (30, 64) and task.x_test.shape == (10, 64)
    np.testing.assert_array_equal(task.y_test, labels[:10])


def test_mnist_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="mnist_path"):
        load_task("mnist64")
    with pytest.raises(FileNotFoundError, match="not a directory"):
        load_task("mnist64", mnist_path=str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        load_task("mnist64", mnist_path=str(tmp_path))
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x05\x01\x02")
    with pytest.raises(ValueError, match="promises 5 bytes"):
        read_idx(bad)
    (tmp_path / "magic").write_bytes(b"GIF89a....")
    with pytest.raises(ValueError, match="magic"):
        read_idx(tmp_path / "magic")


def test_unknown_task():
    with pytest.raises(ValueError, match="unknown task 'spiral'"):
        load_task("spiral")


def test_per_example_normalisation_keeps_each_examples_spectrum():
    from sklearn.datasets import load_digits

    task = load_task("digits64", feature_norm="per_example")
    np.testing.assert_allclose(np.linalg.norm(task.x_train, axis=1), 1.0)
    np.testing.assert_allclose(np.linalg.norm(task.x_test, axis=1), 1.0)
    # each row is its image's raw Fourier window, only rescaled: find one image by its DC term
    raw = fourier_features(load_digits().images.astype(float))
    raw_unit = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    distance = np.abs(raw_unit[:, None, :] - task.x_train[None, :5, :]).max(axis=-1).min(axis=0)
    assert np.all(distance < 1e-12)
    dc = np.mean(np.abs(task.x_train[:, 4 * 8 + 4]) ** 2)
    per_feature = load_task("digits64")
    assert dc > 0.2 and dc > 5 * np.mean(np.abs(per_feature.x_train[:, 4 * 8 + 4]) ** 2)


def test_bad_feature_norm_is_named():
    with pytest.raises(ValueError, match="feature_norm 'per_pixel'"):
        load_task("digits64", feature_norm="per_pixel")
