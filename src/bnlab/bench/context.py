"""What every section of bench is given: the command line's choices, where its lines go, and
the paper's Figure 1 network and data it times (composed from conf/ on first use, so that a
section that needs none of them runs anywhere)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Callable

import torch
from torch import Tensor

from bnlab.bench.shapes import Network, fig1_overrides, network
from bnlab.config.schema import Config
from bnlab.launch import compose

EXAMPLES = 10_000  # rows of the random training data of the CPU sections


@dataclass
class Bench:
    """One ``python -m bnlab.bench``: its options, and ``out`` prints a line."""

    quick: bool  # every section on a small budget (checks the script)
    full: bool  # suite: the full-budget runs, not the fast ones
    compiled: bool  # torch.compile works here
    out: Callable[[str], None]

    @cached_property
    def fig1_config(self) -> Config:
        """The paper's Figure 1 experiment as run.py runs it here (conf/experiment/paper_fig1)."""
        return compose(fig1_overrides())

    @cached_property
    def fig1(self) -> Network:
        """The paper's Figure 1 network: 784-100-100-100-10, sigmoid, batch 60."""
        return network(self.fig1_config)

    @cached_property
    def data(self) -> tuple[Tensor, Tensor]:
        """Random training data for ``fig1``: EXAMPLES inputs of its width, labels of its
        classes (from a generator of its own, seeded 0)."""
        generator = torch.Generator().manual_seed(0)
        x = torch.rand(EXAMPLES, self.fig1.sizes[0], generator=generator)
        return x, torch.randint(0, self.fig1.sizes[-1], (EXAMPLES,), generator=generator)
