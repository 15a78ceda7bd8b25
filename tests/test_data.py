"""Datasets: splits, synthetic data, Fashion-MNIST from Debian's files, and clear data errors."""

import subprocess
import sys

import pytest
import torch
from conftest import OFFLINE

from bnlab.errors import DataError
from bnlab.training.data import DEBIAN_FASHION_MNIST, load_splits, prepare_fashion_mnist, read_idx

needs_fashion = pytest.mark.skipif(
    not DEBIAN_FASHION_MNIST.is_dir()
    and not (__import__("pathlib").Path("data/FashionMNIST/raw/train-images-idx3-ubyte").is_file()),
    reason="Fashion-MNIST not installed: `make data` installs Debian's dataset-fashion-mnist",
)


def test_synthetic_is_deterministic_and_shaped():
    a = load_splits("synthetic", val_size=0.1, synthetic_train=1000, synthetic_test=200)
    b = load_splits("synthetic", val_size=0.1, synthetic_train=1000, synthetic_test=200)
    assert a.x_train.shape == (900, 784) and a.x_val.shape == (100, 784)
    assert a.x_test.shape == (200, 784)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert 0.0 <= a.x_train.min() and a.x_train.max() <= 1.0
    assert set(a.y_train.tolist()) == set(range(10))
    c = load_splits(
        "synthetic", split_seed=1, synthetic_train=1000, synthetic_test=200, val_size=0.1
    )
    assert not torch.equal(a.x_train, c.x_train)


def test_synthetic_is_learnable_but_not_trivial():
    """Nearest-class-mean reaches well above chance (10%) but far below 100%."""
    s = load_splits("synthetic", val_size=0.1, synthetic_train=4000, synthetic_test=1000)
    means = torch.stack([s.x_train[s.y_train == c].mean(0) for c in range(10)])
    pred = torch.cdist(s.x_test, means).argmin(1)
    acc = (pred == s.y_test).float().mean().item()
    assert 0.4 < acc < 0.8


def test_nchw_layout_standardize_and_subset():
    s = load_splits(
        "synthetic",
        val_size=100,
        flatten=False,
        standardize=True,
        train_subset=300,
        synthetic_train=1000,
        synthetic_test=50,
    )
    assert s.x_train.shape == (300, 1, 28, 28) and s.x_val.shape == (100, 1, 28, 28)
    full = load_splits(
        "synthetic",
        val_size=100,
        flatten=False,
        standardize=True,
        synthetic_train=1000,
        synthetic_test=50,
    )
    assert abs(full.x_train.mean().item()) < 1e-5
    assert full.x_train.std().item() == pytest.approx(1.0, rel=1e-4)


@pytest.mark.parametrize("bad", [0, 1000, 2000])
def test_val_size_that_leaves_nothing_is_an_error(bad):
    with pytest.raises(DataError, match="val_size"):
        load_splits("synthetic", val_size=bad, synthetic_train=1000, synthetic_test=10)


def test_unknown_dataset_names_the_choices():
    with pytest.raises(DataError, match="fashion_mnist, mnist, cifar10, synthetic"):
        load_splits("imagenet")


@needs_fashion
def test_fashion_mnist_from_debian_files(tmp_path):
    assert prepare_fashion_mnist(tmp_path)
    s = load_splits("fashion_mnist", tmp_path, val_size=5000)
    assert s.x_train.shape == (55000, 784) and s.x_val.shape == (5000, 784)
    assert s.x_test.shape == (10000, 784)
    assert torch.bincount(s.y_test).tolist() == [1000] * 10
    pixels = torch.cat([s.x_train, s.x_val])
    assert pixels.mean().item() == pytest.approx(0.2860, abs=5e-4)


def test_read_idx_reads_the_format_and_refuses_broken_files(tmp_path):
    values = torch.arange(12, dtype=torch.uint8).reshape(3, 2, 2)
    header = bytes([0, 0, 0x08, 3]) + b"".join(n.to_bytes(4, "big") for n in (3, 2, 2))
    path = tmp_path / "images-idx3-ubyte"
    path.write_bytes(header + values.numpy().tobytes())
    assert torch.equal(read_idx(path), values)
    path.write_bytes(header + values.numpy().tobytes()[:-1])
    with pytest.raises(ValueError, match="has 27 bytes where its header says 28"):
        read_idx(path)
    path.write_bytes(bytes([0, 0, 0x0D, 1]) + (4).to_bytes(4, "big") + bytes(16))  # floats
    with pytest.raises(ValueError, match="not an IDX file of unsigned bytes"):
        read_idx(path)


@needs_fashion
def test_fashion_mnist_is_read_as_torchvision_reads_it_without_importing_it(tmp_path):
    import torchvision

    assert prepare_fashion_mnist(tmp_path)
    for train in (True, False):
        ref = torchvision.datasets.FashionMNIST(str(tmp_path), train=train, download=False)
        kind = "train" if train else "t10k"
        raw = tmp_path / "FashionMNIST" / "raw"
        assert torch.equal(read_idx(raw / f"{kind}-images-idx3-ubyte"), ref.data)
        assert torch.equal(read_idx(raw / f"{kind}-labels-idx1-ubyte"), ref.targets)
    code = (
        "import sys; from bnlab.training.data import load_splits; "
        f"load_splits('fashion_mnist', {str(tmp_path)!r}); print('torchvision' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr[-2000:]


@needs_fashion
def test_truncated_file_gives_a_clear_error(tmp_path):
    assert prepare_fashion_mnist(tmp_path)
    images = tmp_path / "FashionMNIST" / "raw" / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:50_000])
    with pytest.raises(DataError, match="truncated or corrupted"):
        load_splits("fashion_mnist", tmp_path)


@pytest.mark.parametrize(
    "name, folder", [("mnist", "MNIST/raw"), ("cifar10", "cifar-10-batches-py")]
)
def test_offline_without_files_names_dataset_folder_and_remedy(tmp_path, monkeypatch, name, folder):
    for var in OFFLINE:  # torchvision's real download, against a proxy that refuses at once
        monkeypatch.setenv(var, OFFLINE[var])
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    with pytest.raises(DataError) as err:
        load_splits(name, tmp_path / "nowhere")
    message = str(err.value)
    assert f"Remedy: put the dataset's files under {tmp_path / 'nowhere' / folder} " in message
    assert not (tmp_path / "nowhere").exists()  # the failed download leaves no empty folders
