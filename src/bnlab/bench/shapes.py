"""The shapes bench times, read from the experiments' configs (``conf/experiment/*.yaml``,
composed as ``run.py`` composes them): an experiment's MLP layer widths, its batch size and the
models one of its jobs trains as one. The input width and the classes are the dataset's."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from bnlab.config.schema import Config, hidden_widths
from bnlab.training.data import load_splits

MNIST_LABELS = Path("data/MNIST/raw/t10k-labels-idx1-ubyte")  # under bnlab's folder


def mnist_present() -> bool:
    """Whether MNIST is in bnlab's data/ (the working folder's), as paper_fig1 reads it."""
    return MNIST_LABELS.exists()


def fig1_overrides() -> list[str]:
    """``run.py``'s overrides for the paper's Figure 1 here: on MNIST, or on Fashion-MNIST
    (the same sizes) where MNIST is absent."""
    return ["+experiment=paper_fig1"] + ([] if mnist_present() else ["dataset=fashion_mnist"])


@dataclass(frozen=True)
class Network:
    """An experiment's MLP as bench times it."""

    sizes: tuple[int, ...]  # layer widths, input first, classes last
    activation: str
    batch: int
    models: int  # trained as one by a job: seeds x rates

    @property
    def hidden(self) -> tuple[int, ...]:
        return self.sizes[1:-1]

    def describe(self) -> str:
        """``784-100x3-10, sigmoid, batch 60``."""
        hidden = self.hidden
        if len(hidden) > 1 and len(set(hidden)) == 1:
            widths = f"{hidden[0]}x{len(hidden)}"
        else:
            widths = "-".join(map(str, hidden))
        return f"{self.sizes[0]}-{widths}-{self.sizes[-1]}, {self.activation}, batch {self.batch}"


@functools.lru_cache(maxsize=None)
def dataset_shape(name: str, data_dir: str) -> tuple[int, int]:
    """(input features as the MLP reads them, classes) of dataset ``name`` (loads it once)."""
    splits = load_splits(name, data_dir)
    return splits.input_shape[0], splits.num_classes


def network(cfg: Config) -> Network:
    """The MLP that ``cfg`` trains."""
    features, classes = dataset_shape(cfg.dataset.name.value, cfg.data_dir)
    rates = len(cfg.optimizer.lr_grid) if cfg.optimizer.lr_grid else 1
    return Network(
        sizes=(features, *hidden_widths(cfg.model), classes),
        activation=cfg.model.activation.value,
        batch=cfg.trainer.batch_size,
        models=cfg.trainer.replicas * rates,
    )
