"""One training step of an experiment's MLP, as the training loop takes it: the contender of
the step, replicas, GPU and suite sections."""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from bnlab.bench.shapes import Network
from bnlab.config.schema import NormConfig
from bnlab.layers.models import MLP, replica_losses
from bnlab.training.batches import BatchOrder, gather
from bnlab.training.fastpaths import CompiledLosses, optimizer_step

LR = 0.1  # plain SGD's rate does not change a step's time


def step_contender(
    net: Network, norm: str, replicas: int, compiled: bool, data: tuple[Tensor, Tensor]
) -> Callable[[], None]:
    """One training step of ``net`` with ``replicas`` seeds and normalization ``norm``, over
    fixed data (x, y), eager or compiled."""
    x_train, y_train = data
    seeds = list(range(replicas))
    model = MLP(
        net.sizes[0],
        net.sizes[-1],
        hidden=net.hidden,
        activation=net.activation,
        norm=NormConfig(kind=norm),
        seeds=seeds,
    ).to(x_train.device)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, foreach=True)
    forward_and_loss = CompiledLosses() if compiled else replica_losses
    step_optimizer = optimizer_step(optimizer)
    order = BatchOrder(len(x_train), net.batch, seeds, x_train.device)
    counter = iter(range(1, 1 << 62))

    def call():  # the training loop's step (bnlab.training.train.training_loop)
        idx = order.indices(next(counter))
        losses = forward_and_loss(model, gather(x_train, idx), gather(y_train, idx))
        optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()
        step_optimizer()

    return call
