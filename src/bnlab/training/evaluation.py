"""Evaluation: what a run records about its model at step 0, every ``eval_every`` steps and at
the end, all under ``torch.no_grad()``.

* ``val/loss``, ``val/accuracy``, ``test/loss``, ``test/accuracy``: full-batch cross-entropy
  and accuracy in eval mode (BN uses its ``norm.stats`` inference statistics; with
  ``norm.stats=population`` they are recomputed first over one epoch of training batches,
  the paper's Algorithm 2), for the splits of ``trainer.eval_splits``, and for both at the
  last evaluation;
* ``<activation>_input/p15, p50, p85``: the 15/50/85th percentiles of the input of unit 0 of
  the last hidden layer's nonlinearity over a fixed probe batch (the paper's Figure 1b/c);
* with ``trainer.eval_train`` > 0: ``train/loss_evalmode`` and ``train/accuracy`` on that many
  training examples;
* with ``trainer.eval_trainmode``: ``val/loss_trainmode`` and ``val/accuracy_trainmode``, BN
  normalizing each validation batch (of the training batch size) by its own statistics
  (whenever val is measured);
* with ``trainer.shifts``, at the last evaluation: ``shift/*``, test accuracy under
  distribution shift with BN's statistics served three ways (:mod:`bnlab.training.shifts`).
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bnlab.config.schema import Config
from bnlab.layers.batchnorm import BatchNorm, population_statistics
from bnlab.training.batches import BatchOrder
from bnlab.training.data import Splits
from bnlab.training.shifts import shift_metrics

EVAL_MODE_NOTE = (
    "val/* and test/* are measured in eval mode (BN uses norm.stats inference "
    "statistics); train/loss is the mean mini-batch loss in train mode "
    "(batch statistics)"
)


@torch.no_grad()
def evaluate(model: nn.Module, x: Tensor, y: Tensor, batch_size: int) -> tuple[Tensor, Tensor]:
    """Loss and accuracy per replica, (K,) each, over all of ``x`` in eval mode."""
    was_training = model.training
    model.eval()
    total_loss = torch.zeros(model.replicas, device=x.device)
    correct = torch.zeros(model.replicas, device=x.device)
    for start in range(0, len(x), batch_size):
        xb, yb = x[start : start + batch_size], y[start : start + batch_size]
        logits = model(xb)
        k, n, c = logits.shape
        losses = F.cross_entropy(logits.reshape(k * n, c), yb.repeat(k), reduction="none")
        total_loss += losses.view(k, n).sum(1)
        correct += (logits.argmax(-1) == yb).sum(1)
    model.train(was_training)
    return total_loss / len(x), correct / len(x)


@contextlib.contextmanager
def batch_statistics(model: nn.Module):
    """Inside: every BatchNorm of this project normalizes with the statistics of the batch it
    is given (as in training) but updates nothing; other layers stay as they are."""
    layers = [m for m in model.modules() if isinstance(m, BatchNorm)]
    saved = [layer.stats for layer in layers]
    for layer in layers:
        layer.stats = "batch"
    try:
        yield
    finally:
        for layer, stats in zip(layers, saved):
            layer.stats = stats


@torch.no_grad()
def unit_percentiles(model: nn.Module, probe: Tensor) -> Tensor:
    """15/50/85th percentiles of the last hidden nonlinearity's unit-0 input: (K, 3)."""
    was_training = model.training
    model.eval()
    model.capture = True
    try:
        model(probe)
        values = model.captured
    finally:
        model.capture, model.captured = False, None
        model.train(was_training)
    q = torch.tensor([0.15, 0.50, 0.85], device=values.device, dtype=values.dtype)
    return torch.quantile(values, q, dim=1).T


def population_batches(order: BatchOrder, x_train: Tensor):
    """One epoch of training batches (replica 0's first permutation), for Algorithm 2."""
    perm = order.permutation(order.seeds[0], 0).to(x_train.device)
    for i in range(order.steps_per_epoch):
        yield x_train[perm[i * order.batch_size : (i + 1) * order.batch_size]]


def evaluation_metrics(
    cfg: Config, model: nn.Module, data: Splits, order: BatchOrder, last: bool = False
) -> dict[str, Tensor]:
    """Every metric of the module docstring, ``{"split/metric": (K,) tensor}``, in a fixed
    order (the order of their rows in metrics.csv); ``last``: the run's last evaluation."""
    t = cfg.trainer
    bn_layers = [m for m in model.modules() if isinstance(m, BatchNorm)]
    if any(m.stats == "population" for m in bn_layers):
        population_statistics(model, population_batches(order, data.x_train))
    metrics = {}
    held_out = {"val": (data.x_val, data.y_val), "test": (data.x_test, data.y_test)}
    for split, (x, y) in held_out.items():
        if last or split in t.eval_splits:
            loss, accuracy = evaluate(model, x, y, t.eval_batch_size)
            metrics[f"{split}/loss"], metrics[f"{split}/accuracy"] = loss, accuracy
    unit = f"{cfg.model.activation.value}_input"
    percentiles = unit_percentiles(model, data.x_val[: t.probe_size])
    for name, column in zip(("p15", "p50", "p85"), percentiles.T):
        metrics[f"{unit}/{name}"] = column
    if t.eval_train:
        x, y = data.x_train[: t.eval_train], data.y_train[: t.eval_train]
        loss, accuracy = evaluate(model, x, y, t.eval_batch_size)
        metrics["train/loss_evalmode"], metrics["train/accuracy"] = loss, accuracy
    if t.eval_trainmode and bn_layers and (last or "val" in t.eval_splits):
        with batch_statistics(model):
            loss, accuracy = evaluate(model, data.x_val, data.y_val, t.batch_size)
        metrics["val/loss_trainmode"], metrics["val/accuracy_trainmode"] = loss, accuracy
    if last and t.shifts:
        metrics.update(
            shift_metrics(
                cfg,
                model,
                data,
                lambda: population_batches(order, data.x_train),
                lambda m, x, y: evaluate(m, x, y, t.eval_batch_size),
            )
        )
    return metrics
