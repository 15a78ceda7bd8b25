"""Datasets as whole tensors: train / validation / test splits that live on the device.

Datasets by name: ``fashion_mnist`` (the default; from Debian's ``dataset-fashion-mnist`` on
these machines, see :func:`prepare`), ``mnist`` and ``cifar10`` (read from ``data_dir`` when the
files are there, else torchvision's download), and ``synthetic`` (generated from a seed, no
files: for tests and smoke runs).

Images are scaled to [0, 1]; ``standardize`` subtracts the training set's mean pixel value and
divides by its standard deviation (one scalar each, computed on the training split only).
The validation split is a seeded hold-out of the training set. Inputs are flattened for the MLP
and kept NCHW for the CNN. Small datasets are indexed directly: a mini-batch is
``x[perm[i:i + batch]]``, no DataLoader.

Run as a module to provide the files:
``python -m bnlab.training.data prepare fashion_mnist --data-dir data``.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import Tensor

from bnlab.config.schema import Config
from bnlab.errors import DataError
from bnlab.layers.model_registry import get_model

DATASETS = ("fashion_mnist", "mnist", "cifar10", "synthetic")
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


@dataclass
class Splits:
    """Train / validation / test tensors of one dataset, already on their device."""

    x_train: Tensor
    y_train: Tensor
    x_val: Tensor
    y_val: Tensor
    x_test: Tensor
    y_test: Tensor
    num_classes: int
    name: str
    image_shape: tuple[int, ...] = ()  # (C, H, W) of one image, flattened or not
    pixel_offset: float = 0.0  # inputs = (pixels in [0, 1] - pixel_offset) * pixel_scale
    pixel_scale: float = 1.0

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def to_pixels(self, x: Tensor) -> Tensor:
        """Inputs back as images in [0, 1]'s units, (N, C, H, W)."""
        return (x / self.pixel_scale + self.pixel_offset).reshape(len(x), *self.image_shape)

    def from_pixels(self, images: Tensor) -> Tensor:
        """Images in [0, 1]'s units as the model's inputs (standardized, shaped as x_train)."""
        x = (images - self.pixel_offset) * self.pixel_scale
        return x.reshape(len(x), *self.input_shape)

    def to(self, device) -> "Splits":
        moved = {
            k: getattr(self, k).to(device)
            for k in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")
        }
        pixels = dict(
            image_shape=self.image_shape,
            pixel_offset=self.pixel_offset,
            pixel_scale=self.pixel_scale,
        )
        return Splits(**moved, num_classes=self.num_classes, name=self.name, **pixels)


def load_splits(
    name: str,
    data_dir: str | os.PathLike = "data",
    val_size: float = 5000,
    standardize: bool = False,
    flatten: bool = True,
    train_subset: Optional[int] = None,
    split_seed: int = 0,
    synthetic_train: int = 6000,
    synthetic_test: int = 1000,
    input_scale: float = 1.0,
    device: str | torch.device = "cpu",
) -> Splits:
    """Load dataset ``name`` and split it. ``val_size`` < 1 is a fraction, else a count.

    ``train_subset`` keeps only the first n training examples after the hold-out (Saito's
    init-std experiment trains on 1,000 images). ``input_scale`` multiplies every input after
    standardizing (a small scale gives inputs whose variance is comparable to BN's eps).
    Raises :class:`DataError` with a remedy when the data cannot be had.
    """
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if name == "synthetic":
        x, y, x_test, y_test = synthetic_images(synthetic_train, synthetic_test, seed=split_seed)
        num_classes = 10
    else:
        x, y, x_test, y_test, num_classes = _load_files(name, Path(data_dir).resolve())
    n_val = int(round(val_size * len(x))) if val_size < 1 else int(val_size)
    if not 0 < n_val < len(x):
        raise DataError(
            f"dataset.val_size={val_size} leaves no training or validation data "
            f"({len(x)} training examples)"
        )
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(split_seed))
    val_idx, train_idx = perm[:n_val], perm[n_val:]
    if train_subset is not None:
        train_idx = train_idx[:train_subset]
    x_train, y_train, x_val, y_val = x[train_idx], y[train_idx], x[val_idx], y[val_idx]
    image_shape, offset, scale = tuple(x.shape[1:]), 0.0, float(input_scale)
    if standardize:
        mean, std = x_train.mean(), x_train.std()
        x_train, x_val, x_test = [(t - mean) / std for t in (x_train, x_val, x_test)]
        offset, scale = float(mean), float(input_scale / std)
    if input_scale != 1.0:
        x_train, x_val, x_test = [t * input_scale for t in (x_train, x_val, x_test)]
    if flatten:
        x_train, x_val, x_test = [t.reshape(len(t), -1) for t in (x_train, x_val, x_test)]
    splits = Splits(
        x_train.contiguous(),
        y_train,
        x_val.contiguous(),
        y_val,
        x_test.contiguous(),
        y_test,
        num_classes,
        name,
        image_shape,
        offset,
        scale,
    )
    return splits.to(device)


def load_data(cfg: Config, device: str | torch.device = "cpu") -> Splits:
    """The splits that ``cfg.dataset`` describes, shaped for ``cfg.model`` (flattened for a
    model whose ``flat_input`` is set: the MLP)."""
    d = cfg.dataset
    return load_splits(
        d.name.value,
        cfg.data_dir,
        val_size=d.val_size,
        standardize=d.standardize,
        flatten=get_model(cfg.model.name).flat_input,
        train_subset=d.train_subset,
        split_seed=d.split_seed,
        synthetic_train=d.synthetic_train,
        synthetic_test=d.synthetic_test,
        input_scale=d.input_scale,
        device=device,
    )


def synthetic_images(
    n_train: int,
    n_test: int,
    seed: int = 0,
    classes: int = 10,
    size: int = 28,
    noise: float = 0.5,
    shared: float = 0.5,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """A Gaussian mixture shaped like 28x28 grey images (N, 1, 28, 28), values in [0, 1].

    Class c's prototype is ``shared * common + (1 - shared) * own_c``, where ``common`` and
    ``own_c`` are smooth random images (a few Gaussian blobs). An example is its prototype with
    random contrast and brightness, plus pixel noise of std ``noise``, clipped to [0, 1]. The
    shared part and the brightness jitter make classes overlap: nearest-class-mean scores about
    60%, a trained MLP far more, no model 100%.
    """
    gen = torch.Generator().manual_seed(10_000 + seed)
    grid = torch.stack(
        torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij"), -1
    ).float()

    def blobs(count: int) -> Tensor:
        image = torch.zeros(size, size)
        for _ in range(count):
            centre = torch.rand(2, generator=gen) * (size - 8) + 4
            width = 2.0 + 4.0 * torch.rand(1, generator=gen)
            image += torch.exp(-((grid - centre) ** 2).sum(-1) / (2 * width**2))
        return image / image.max()

    common = blobs(6)
    protos = torch.stack([shared * common + (1 - shared) * blobs(3) for _ in range(classes)])

    def sample(n: int) -> tuple[Tensor, Tensor]:
        labels = torch.randint(classes, (n,), generator=gen)
        contrast = 0.5 + 0.5 * torch.rand(n, 1, 1, generator=gen)
        brightness = 0.15 * torch.randn(n, 1, 1, generator=gen)
        images = protos[labels] * contrast + brightness
        images = images + noise * torch.randn(n, size, size, generator=gen)
        return images.clamp(0, 1).unsqueeze(1), labels

    x_train, y_train = sample(n_train)
    x_test, y_test = sample(n_test)
    return x_train, y_train, x_test, y_test


IDX_UBYTE = 0x08


def read_idx(path: Path) -> Tensor:
    """An IDX file (the MNIST format) as a uint8 tensor.

    Layout: two zero bytes, the value type (0x08: unsigned byte), the number of dimensions d,
    then d sizes as big-endian 32-bit integers, then the values in C order. Raises ValueError
    when the file does not hold exactly that.
    """
    data = path.read_bytes()
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] != IDX_UBYTE:
        raise ValueError(f"{path.name} is not an IDX file of unsigned bytes")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape))
    if len(data) != expected:
        raise ValueError(f"{path.name} has {len(data)} bytes where its header says {expected}")
    return torch.from_numpy(np.frombuffer(data, np.uint8, offset=header).reshape(shape).copy())


# torchvision's folder for each dataset stored as IDX files (under root/<folder>/raw)
IDX_FOLDERS = {"fashion_mnist": "FashionMNIST", "mnist": "MNIST"}


@functools.lru_cache(maxsize=2)
def _load_files(name: str, root: Path) -> tuple[Tensor, Tensor, Tensor, Tensor, int]:
    """Read dataset ``name`` from ``root``; download (torchvision) only if its files are not
    there. MNIST and Fashion-MNIST files are read directly (importing torchvision alone takes
    1.5 s), CIFAR-10 through torchvision.

    Cached: the jobs of a sweep run in one process and read the same files.
    """
    if name == "fashion_mnist":
        prepare_fashion_mnist(root, quiet=True)
    try:
        if name not in IDX_FOLDERS:
            return _load_cifar10(root)
        raw = root / IDX_FOLDERS[name] / "raw"
        if not all((raw / f).exists() for f in MNIST_FILES):
            _torchvision_download(name, root)  # writes the IDX files into raw
        x, y, x_test, y_test = (read_idx(raw / f) for f in MNIST_FILES)
        return (
            x.unsqueeze(1).float() / 255,
            y.long(),
            x_test.unsqueeze(1).float() / 255,
            y_test.long(),
            10,
        )
    except DataError:
        raise
    except Exception as exc:  # torchvision raises assorted errors on broken files
        raise DataError(
            f"could not read {name} from {root}: {type(exc).__name__}: "
            f"{exc}. The files look truncated or corrupted: delete them and run "
            f"`make data` (or fetch them again)"
        ) from None


def _torchvision_download(name: str, root: Path) -> None:
    """Let torchvision fetch MNIST or Fashion-MNIST into ``root`` (DataError when it can't)."""
    import torchvision

    cls = {"fashion_mnist": torchvision.datasets.FashionMNIST, "mnist": torchvision.datasets.MNIST}[
        name
    ]
    for train in (True, False):
        _construct(cls, root, train=train)


def _load_cifar10(root: Path) -> tuple[Tensor, Tensor, Tensor, Tensor, int]:
    """CIFAR-10 through torchvision (read, or downloaded when its files are not there)."""
    import torchvision

    train = _construct(torchvision.datasets.CIFAR10, root, train=True)
    test = _construct(torchvision.datasets.CIFAR10, root, train=False)
    x = torch.from_numpy(np.asarray(train.data)).permute(0, 3, 1, 2).float() / 255
    x_test = torch.from_numpy(np.asarray(test.data)).permute(0, 3, 1, 2).float() / 255
    y, y_test = torch.as_tensor(train.targets), torch.as_tensor(test.targets)
    return x, y, x_test, y_test, 10


def _construct(cls, root: Path, train: bool):
    try:
        return cls(root=str(root), train=train, download=False)
    except RuntimeError as exc:
        if "not found" not in str(exc).lower():
            raise
    made = _first_missing(root / cls.__name__ / "raw")
    try:
        return cls(root=str(root), train=train, download=True)
    except Exception as exc:
        if made is not None and not any(p.is_file() for p in made.rglob("*")):
            shutil.rmtree(made, ignore_errors=True)  # the folders the failed download made
        if cls.__name__ == "CIFAR10":
            where = f"{root}/cifar-10-batches-py (or cifar-10-python.tar.gz in {root})"
        else:
            where = f"{root}/{cls.__name__}/raw"
        raise DataError(
            f"{cls.__name__} is not in {root} and could not be downloaded "
            f"({type(exc).__name__}). Remedy: put the dataset's files under {where} "
            f"(torchvision's layout) on a machine without internet, or run on one with "
            f"internet so torchvision can download it"
            + (
                "; for Fashion-MNIST on Debian: `apt-get install dataset-fashion-mnist` then "
                "`make data`"
                if cls.__name__ == "FashionMNIST"
                else ""
            )
        ) from None


def _first_missing(path: Path) -> Optional[Path]:
    """The outermost folder on the way to ``path`` that does not exist yet (None: all do)."""
    missing = None
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing = folder
    return missing


def prepare_fashion_mnist(root: Path, quiet: bool = False) -> bool:
    """Place Fashion-MNIST where ``torchvision.datasets.FashionMNIST(root)`` reads it.

    Debian ships the four IDX files gzip-recompressed, so their md5 differs from torchvision's
    list and torchvision would try to download; decompressed into ``root/FashionMNIST/raw`` they
    load with no download. (``make data`` installs Debian's package first where it can.)
    Returns True when the files are in place.
    """
    raw = root / "FashionMNIST" / "raw"
    if all((raw / f).is_file() for f in MNIST_FILES):
        return True
    if not DEBIAN_FASHION_MNIST.is_dir():
        return False
    raw.mkdir(parents=True, exist_ok=True)
    for f in MNIST_FILES:
        src = DEBIAN_FASHION_MNIST / f"{f}.gz"
        tmp = raw / f"{f}.tmp"
        with gzip.open(src, "rb") as fin, open(tmp, "wb") as fout:
            shutil.copyfileobj(fin, fout)
        tmp.replace(raw / f)
    if not quiet:
        print(f"Fashion-MNIST: decompressed {DEBIAN_FASHION_MNIST} into {raw}")
    return True


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bnlab.training.data", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("prepare", help="provide a dataset's files under --data-dir")
    prep.add_argument("dataset", choices=[d for d in DATASETS if d != "synthetic"])
    prep.add_argument("--data-dir", default="data")
    args = parser.parse_args(argv)
    root = Path(args.data_dir)
    try:
        if args.dataset == "fashion_mnist" and prepare_fashion_mnist(root):
            splits = load_splits("fashion_mnist", root, flatten=False)
        else:
            splits = load_splits(args.dataset, root, flatten=False)
    except DataError as exc:
        print(f"bnlab: error: {exc}", file=sys.stderr)
        return 2
    n = len(splits.x_train) + len(splits.x_val)
    print(f"{args.dataset}: {n} training + {len(splits.x_test)} test images ready in {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
