"""The test set under distribution shift, and three ways of serving BN on it
(``trainer.shifts``; the ``shift`` experiment).

Each shift acts on the test images in pixel units ([0, 1] before standardizing; the inputs are
mapped back and forth through the dataset's standardization), at a strength s in (0, 1], as a
function of the job's seed (``seed``, its first replica's) alone: every variant of an
experiment sees the same shifted images.

* ``contrast``: p <- mean_image + (1 - 0.8 s) * (p - mean_image), per image;
* ``brightness``: p <- p + 0.4 s;
* ``noise``: p <- p + 0.4 s * z, z ~ N(0, 1) per pixel, drawn from the seed;
* ``translate``: every image moved by round(4 s) pixels right and down, zeros let in.

Recorded at the run's last evaluation, as ``shift/<kind>_<s>_<mode>`` (test accuracy, per
replica). ``mode`` is how BN takes its statistics at test time (other normalizations have none
to take, so they record ``train`` only):

* ``train``: as the run was set up to (``norm.stats``: the EMA of training, by default);
* ``population``: the paper's Algorithm 2 over one epoch of (clean) training batches;
* ``adapt<n>``: re-estimated on the shifted test data itself (AdaBN, Li et al. 2016; Schneider
  et al. 2020): Algorithm 2 over the first n shifted test images, in batches of the training
  batch size (``trainer.adapt_examples``), then the whole shifted test set evaluated with
  them. The model itself is left as it was (a copy is adapted).
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from bnlab.config.schema import Config
from bnlab.layers.batchnorm import BatchNorm, population_statistics
from bnlab.training.data import Splits


def contrast(images: Tensor, s: float, gen: torch.Generator) -> Tensor:
    mean = images.mean((1, 2, 3), keepdim=True)
    return mean + (1 - 0.8 * s) * (images - mean)


def brightness(images: Tensor, s: float, gen: torch.Generator) -> Tensor:
    return images + 0.4 * s


def noise(images: Tensor, s: float, gen: torch.Generator) -> Tensor:
    z = torch.randn(images.shape, generator=gen).to(images.device)
    return images + 0.4 * s * z


def translate(images: Tensor, s: float, gen: torch.Generator) -> Tensor:
    d = round(4 * s)
    if d == 0:
        return images
    moved = torch.zeros_like(images)
    moved[:, :, d:, d:] = images[:, :, :-d, :-d]
    return moved


SHIFTS = {f.__name__: f for f in (contrast, brightness, noise, translate)}


def shifted(data: Splits, kind: str, s: float, seed: int) -> Tensor:
    """The test inputs under shift ``kind`` at strength ``s``, drawn from ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    return data.from_pixels(SHIFTS[kind](data.to_pixels(data.x_test), s, gen))


def batches_of(x: Tensor, n: int, batch_size: int):
    """The first n rows of ``x`` in batches of ``batch_size`` (the last may be smaller; one of
    fewer than 2 rows is left out: BN cannot normalize it)."""
    for start in range(0, min(n, len(x)), batch_size):
        batch = x[start : min(start + batch_size, n)]
        if len(batch) >= 2:
            yield batch


def served(model: nn.Module, batches) -> nn.Module:
    """A copy of ``model`` whose BatchNorm layers use population statistics from ``batches``."""
    copied = copy.deepcopy(model)
    population_statistics(copied, batches)
    for layer in copied.modules():
        if isinstance(layer, BatchNorm):
            layer.stats = "population"
    return copied


def shift_metrics(
    cfg: Config, model: nn.Module, data: Splits, clean_batches, evaluate
) -> dict[str, Tensor]:
    """``shift/<kind>_<s>_<mode>`` for every shift, strength and mode of the module doc;
    ``clean_batches()``: one epoch of training batches (Algorithm 2's); ``evaluate(model, x,
    y)`` -> (loss, accuracy), (K,) each."""
    t = cfg.trainer
    has_bn = any(isinstance(m, BatchNorm) for m in model.modules())
    clean = served(model, clean_batches()) if has_bn else None
    metrics = {}
    for kind in t.shifts:
        for s in t.shift_strengths:
            x = shifted(data, kind, s, cfg.seed)
            name = f"shift/{kind}_{s:g}"
            metrics[f"{name}_train"] = evaluate(model, x, data.y_test)[1]
            if not has_bn:
                continue
            metrics[f"{name}_population"] = evaluate(clean, x, data.y_test)[1]
            for n in t.adapt_examples:
                adapted = served(model, batches_of(x, n, t.batch_size))
                metrics[f"{name}_adapt{n}"] = evaluate(adapted, x, data.y_test)[1]
    return metrics
