"""Datasets, file readers, the seeded loader and the download helper."""

from __future__ import annotations

import gzip
import json
import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minigan.data import (
    MIXTURES,
    DataFormatError,
    DownloadError,
    Loader,
    download,
    load_dataset,
    read_idx_images,
    sample_mixture,
)
from minigan.data.download import FILES, fetch, md5sum
from minigan.random import Generator

from .strategies import seeds

# ----------------------------------------------------------------------------- mixtures

MODE_MIXTURES = [name for name, m in MIXTURES.items() if m.modes is not None]


@pytest.mark.parametrize("name", MODE_MIXTURES)
def test_mixture_samples_match_their_constants(name):
    mixture = MIXTURES[name]
    n = 20_000
    points = sample_mixture(name, n, Generator(1)).astype(np.float64)
    assert points.shape == (n, 2) and sample_mixture(name, 3).dtype == np.float32
    gaps = points[:, None, :] - mixture.modes[None]
    nearest = np.sqrt((gaps**2).sum(-1)).argmin(1)
    residual = points - mixture.modes[nearest]
    # Modes sit >= 40 std apart, so every point's nearest mode is its own; the residuals are
    # then N(0, std^2) per coordinate: over 2n = 40,000 values the sample std has relative
    # error ~ 1/sqrt(2 * 40,000) = 0.4%, so 3% is > 7 sigma; the mean is within
    # std * 5 / sqrt(40,000) = std / 40.
    assert abs(residual.std() / mixture.std - 1) < 0.03
    assert np.all(np.abs(residual.mean(0)) < mixture.std / 40)
    # Equal weights: each mode holds n / n_modes points, binomial sd < sqrt(n / n_modes).
    counts = np.bincount(nearest, minlength=len(mixture.modes))
    expected = n / len(mixture.modes)
    assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected))


def test_published_constants():
    assert np.allclose(MIXTURES["ring8"].modes[2], [0, 1]) and MIXTURES["ring8"].std == 0.01
    assert MIXTURES["grid25"].modes.min() == -4 and MIXTURES["grid25"].std == 0.05
    assert np.allclose(np.linalg.norm(MIXTURES["8gaussians"].modes, axis=1), 2 / 1.414)
    assert np.isclose(MIXTURES["25gaussians"].modes.max(), 4 / 2.828)
    assert np.isclose(MIXTURES["8gaussians"].std, 0.02 / 1.414)


def test_swissroll_shape_and_spread():
    points = sample_mixture("swissroll", 20_000, Generator(0)).astype(np.float64)
    # Radius t/7.5 with t in [1.5 pi, 4.5 pi], blurred by noise 0.25/7.5 per coordinate.
    radius = np.linalg.norm(points, axis=1)
    assert radius.min() > 1.5 * np.pi / 7.5 - 0.2 and radius.max() < 4.5 * np.pi / 7.5 + 0.2
    assert radius.mean() == pytest.approx(3 * np.pi / 7.5, rel=0.02)


@given(seeds())
def test_mixture_seeded_same_and_different(seed):
    a = sample_mixture("grid25", 50, Generator(seed))
    assert np.array_equal(a, sample_mixture("grid25", 50, Generator(seed)))
    assert not np.array_equal(a, sample_mixture("grid25", 50, Generator(seed + 1)))


def test_unknown_mixture():
    with pytest.raises(ValueError, match="unknown mixture 'ring9'.*ring8"):
        sample_mixture("ring9", 10)


# ----------------------------------------------------------------------------- built-in sets


def test_bundled_mnist5k():
    ds = load_dataset("mnist-bundled")
    assert ds.name == "mnist5k" and ds.kind == "images" and len(ds) == 5000
    assert ds.x.shape == (5000, 1, 28, 28) and ds.x.dtype == np.float32
    assert ds.x.min() == -1.0 and ds.x.max() == 1.0
    assert np.array_equal(np.bincount(ds.y), [500] * 10)
    # MNIST digits are mostly background: about 19% of pixels are ink (value > 0).
    assert 0.1 < (ds.x > -1).mean() < 0.3


def test_bundled_digits_and_conversions():
    ds = load_dataset("digits8x8")
    assert ds.x.shape == (1797, 1, 8, 8) and ds.x.min() == -1.0 and ds.x.max() == 1.0
    assert len(np.unique(ds.y)) == 10
    rgb = load_dataset("digits8x8", image_size=16, channels=3)
    assert rgb.x.shape == (1797, 3, 16, 16)
    assert np.array_equal(rgb.x[:, 0], rgb.x[:, 1])


def test_points_dataset_is_fixed_with_modes():
    a, b = load_dataset("ring8"), load_dataset("ring8")
    assert a.kind == "points" and a.x.shape == (20_000, 2) and a.y is None
    assert np.array_equal(a.x, b.x)
    assert a.modes.shape == (8, 2) and a.mode_std == 0.01


def test_unknown_source():
    with pytest.raises(FileNotFoundError, match="neither a built-in dataset"):
        load_dataset("no-such-set")


# ----------------------------------------------------------------------------- IDX


def write_idx(path, array, magic=None):
    array = np.asarray(array, dtype=np.uint8)
    magic = (0x0800 | array.ndim) if magic is None else magic
    data = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape)
    data += array.tobytes()
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as handle:
        handle.write(data)
    return path


def idx_pair(directory, n=6, gz=False, n_labels=None):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 5, 4), dtype=np.uint8)
    labels = rng.integers(0, 10, n_labels or n, dtype=np.uint8)
    suffix = ".gz" if gz else ""
    write_idx(directory / f"train-images-idx3-ubyte{suffix}", images)
    write_idx(directory / f"train-labels-idx1-ubyte{suffix}", labels)
    return images, labels


@pytest.mark.parametrize("gz", [False, True])
def test_idx_good_files(tmp_path, gz):
    images, labels = idx_pair(tmp_path, gz=gz)
    for source in (tmp_path, tmp_path / f"train-images-idx3-ubyte{'.gz' if gz else ''}"):
        ds = load_dataset(source)
        assert ds.x.shape == (6, 1, 5, 4) and np.array_equal(ds.y, labels)
        assert np.allclose((ds.x[:, 0] + 1) * 127.5, images, atol=1e-4)


def test_idx_wrong_magic(tmp_path):
    path = write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((2, 3, 3)), magic=2049)
    with pytest.raises(DataFormatError, match=r"train-images-idx3-ubyte: bad magic number 2049.*"
                       r"expected 2051 .*IDX images"):
        read_idx_images(path)


def test_idx_truncated(tmp_path):
    path = write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((4, 3, 3)))
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(DataFormatError, match=r"truncated: the header declares shape \(4, 3, 3\)"
                       r".*36 data bytes.*31 data bytes"):
        read_idx_images(path)
    path.write_bytes(b"\x00\x00")
    with pytest.raises(DataFormatError, match="truncated: 2 bytes"):
        read_idx_images(path)


def test_idx_truncated_gzip(tmp_path):
    path = write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((40, 9, 9)))
    path.write_bytes(path.read_bytes()[:-12])
    with pytest.raises(DataFormatError, match="train-images-idx3-ubyte.gz: cannot be read"):
        read_idx_images(path)


def test_idx_trailing_bytes(tmp_path):
    path = write_idx(tmp_path / "x-images-idx3-ubyte", np.zeros((2, 3, 3)))
    path.write_bytes(path.read_bytes() + b"\x01")
    with pytest.raises(DataFormatError, match="has trailing bytes"):
        read_idx_images(path)


def test_idx_mismatched_counts(tmp_path):
    idx_pair(tmp_path, n=6, n_labels=5)
    with pytest.raises(DataFormatError, match="holds 6 images but .*holds 5 labels"):
        load_dataset(tmp_path)


# ----------------------------------------------------------------------------- folders, npz


def test_image_folder_with_classes(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            pixels = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / cls / f"{i}.png")
    ds = load_dataset(tmp_path, image_size=16)
    assert ds.x.shape == (6, 3, 16, 16) and ds.kind == "images"
    assert list(ds.y) == [0, 0, 0, 1, 1, 1] and ds.classes == ["cat", "dog"]
    assert -1 <= ds.x.min() and ds.x.max() <= 1
    gray = load_dataset(tmp_path, image_size=8, channels=1)
    assert gray.x.shape == (6, 1, 8, 8)


def test_image_folder_exact_values_and_errors(tmp_path):
    from PIL import Image

    pixels = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    Image.fromarray(pixels).save(tmp_path / "a.png")
    ds = load_dataset(tmp_path)
    assert ds.y is None and ds.x.shape == (1, 1, 8, 8)
    assert np.allclose((ds.x[0, 0] + 1) * 127.5, pixels, atol=1e-4)  # PNG is lossless
    Image.fromarray(np.zeros((4, 6), np.uint8)).save(tmp_path / "b.png")
    with pytest.raises(DataFormatError, match="images differ in size.*pass image_size"):
        load_dataset(tmp_path)
    (tmp_path / "b.png").write_bytes(b"not a png at all")
    with pytest.raises(DataFormatError, match="b.png: not a readable image"):
        load_dataset(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataFormatError, match="no images found"):
        load_dataset(empty)


def test_npz_images_points_and_errors(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (5, 7, 7), dtype=np.uint8)
    np.savez(tmp_path / "a.npz", images=images, labels=np.arange(5))
    ds = load_dataset(tmp_path / "a.npz")
    assert ds.x.shape == (5, 1, 7, 7) and list(ds.y) == [0, 1, 2, 3, 4]
    np.savez(tmp_path / "nchw.npz", x=np.ones((4, 3, 6, 6), np.float32) * 0.5)
    ds = load_dataset(tmp_path / "nchw.npz")
    assert ds.x.shape == (4, 3, 6, 6) and ds.y is None
    # 0.5 -> pixel 127.5, rounded half to even: 128. float32 x / 127.5 - 1 near 1.0 is off
    # by up to one ulp of 1.0 (1.2e-7), hence atol 1e-6.
    assert np.allclose(ds.x, 128 / 127.5 - 1, rtol=0, atol=1e-6)
    np.savez(tmp_path / "pts.npz", x=np.zeros((9, 2)))
    assert load_dataset(tmp_path / "pts.npz").kind == "points"
    np.savez(tmp_path / "bad.npz", pixels=np.zeros((2, 4, 4)))
    with pytest.raises(DataFormatError, match="no array named 'x' or 'images'.*pixels"):
        load_dataset(tmp_path / "bad.npz")
    np.savez(tmp_path / "count.npz", x=np.zeros((3, 4, 4), np.uint8), y=np.zeros(2))
    with pytest.raises(DataFormatError, match="'x' has 3 items but 'y' has 2"):
        load_dataset(tmp_path / "count.npz")
    np.savez(tmp_path / "range.npz", x=np.full((3, 4, 4), 7.5))
    with pytest.raises(DataFormatError, match=r"floats in \[0, 1\]"):
        load_dataset(tmp_path / "range.npz")


# ----------------------------------------------------------------------------- loader


def take(loader, count):
    return [loader.next_batch() for _ in range(count)]


@given(seeds(), st.integers(1, 7), st.booleans())
def test_loader_same_seed_same_batches(seed, batch_size, drop_last):
    x = np.arange(23)
    a = take(Loader(x, batch_size, drop_last=drop_last, seed=seed), 12)
    b = take(Loader(x, batch_size, drop_last=drop_last, seed=seed), 12)
    assert all(np.array_equal(p, q) for p, q in zip(a, b))


def test_loader_epochs_cover_the_data():
    loader = Loader(np.arange(10), 3, seed=5)
    assert len(loader) == 3
    first, second = take(loader, 3), take(loader, 3)
    assert all(len(b) == 3 for b in first + second)
    # drop_last: 9 distinct rows per epoch, a fresh permutation each epoch.
    assert len(np.unique(np.concatenate(first))) == 9
    assert not np.array_equal(np.concatenate(first), np.concatenate(second))
    assert loader.epoch == 1


def test_loader_keep_last_and_no_shuffle():
    loader = Loader((np.arange(7), np.arange(7) * 10), 3, shuffle=False, drop_last=False)
    batches = take(loader, 4)
    assert len(loader) == 3
    assert [list(b[0]) for b in batches] == [[0, 1, 2], [3, 4, 5], [6], [0, 1, 2]]
    assert list(batches[2][1]) == [60]


@given(seeds(), st.integers(0, 20))
def test_loader_resume_mid_epoch(seed, steps):
    x = np.arange(17)
    reference = Loader(x, 4, seed=seed)
    take(reference, steps)
    state = json.loads(json.dumps(reference.state_dict()))  # must survive JSON
    expected = take(reference, 10)
    resumed = Loader(x, 4, seed=12345)  # the seed is replaced by the saved state
    take(resumed, 3)
    resumed.load_state_dict(state)
    assert all(np.array_equal(p, q) for p, q in zip(expected, take(resumed, 10)))


def test_loader_errors():
    with pytest.raises(ValueError, match="batch_size 11 is larger than the dataset \\(10 items\\)"):
        Loader(np.arange(10), 11)
    assert len(Loader(np.arange(10), 11, drop_last=False)) == 1
    with pytest.raises(ValueError, match="positive integer"):
        Loader(np.arange(10), 0)
    with pytest.raises(ValueError, match="differ in length"):
        Loader((np.arange(10), np.arange(9)), 2)
    state = Loader(np.arange(10), 2).state_dict()
    with pytest.raises(ValueError, match="saved batch_size=2 .* batch_size=5"):
        Loader(np.arange(10), 5).load_state_dict(state)


# ----------------------------------------------------------------------------- download


def test_download_offline_fails_clearly(tmp_path):
    # Port 9 (discard) on the loopback: refused at once, no real network involved.
    with pytest.raises(DownloadError) as info:
        download("mnist", tmp_path / "mnist", mirrors=("http://127.0.0.1:9/",), timeout=2)
    message = str(info.value)
    assert "\n" not in message and "are you offline" in message
    assert "train-images-idx3-ubyte.gz" in message
    assert not any((tmp_path / "mnist").glob("*"))  # nothing half-written is left


def test_download_checksum(tmp_path):
    source = tmp_path / "mirror"
    source.mkdir()
    payload = b"not the real MNIST"
    (source / "train-images-idx3-ubyte.gz").write_bytes(payload)
    target = tmp_path / "out" / "train-images-idx3-ubyte.gz"
    url = (source / "train-images-idx3-ubyte.gz").as_uri()
    with pytest.raises(DownloadError, match="has MD5 .*expected f68b3c2d.*nothing was written"):
        fetch(url, target, FILES["mnist"]["train-images-idx3-ubyte.gz"])
    assert not target.exists() and not any(target.parent.glob("*"))
    fetch(url, target, md5sum(source / "train-images-idx3-ubyte.gz"))
    assert target.read_bytes() == payload
    with pytest.raises(DownloadError, match="download mnist: .*has MD5"):
        download("mnist", tmp_path / "out2", mirrors=(source.as_uri(),))


def test_download_unknown_name(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'cifar'"):
        download("cifar", tmp_path)
