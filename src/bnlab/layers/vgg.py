"""A VGG-11-style network (Simonyan & Zisserman 2015; the network of Santurkar et al.'s BN
plots), replica-batched.

``model=vgg``: five stages of 3x3 convolutions of widths ``channels`` (64, 128, 256, 512, 512
by default; narrower: ``model.channels=[16,32,64,128,128]``), one convolution in each of the
first two stages and two in each of the others (VGG-11's 8), each followed by the
normalization (``norm.kind``, where ``norm.placement`` puts it) and a ReLU, a 2x2 max-pool
ending each stage, then a linear head on the 1x1 map. Five poolings need images of side 32:
smaller ones (Fashion-MNIST's 28) are padded with zeros to 32. It is the CNN of
:mod:`bnlab.layers.models` with VGG's stages, so the layer probes of the landscape experiment
(internal covariate shift, beta-smoothness) and the gradient norms apply to it as they do there.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from bnlab.config.schema import Config
from bnlab.errors import ConfigError
from bnlab.layers.model_registry import register_model
from bnlab.layers.models import CNN, common_settings

CONVS_PER_STAGE = (1, 1, 2, 2, 2)  # VGG-11
SIDE = 2 ** len(CONVS_PER_STAGE)  # the image side the five poolings need


@register_model("vgg")
class VGG(CNN):
    """VGG-11's stages on :class:`~bnlab.layers.models.CNN`'s machinery; inputs padded to 32."""

    @classmethod
    def from_config(cls, cfg: Config, input_shape, num_classes: int, seeds) -> "VGG":
        return cls(input_shape[0], input_shape[-1], num_classes, cfg.model.channels, cfg, seeds)

    @classmethod
    def check_config(cls, cfg: Config) -> None:
        if len(cfg.model.channels) != len(CONVS_PER_STAGE):
            raise ConfigError(
                f"model=vgg needs model.channels of its {len(CONVS_PER_STAGE)} stages' widths "
                f"(got {cfg.model.channels})"
            )
        super().check_config(cfg)  # the CNN's: no model.depth, model.residual, residual_init

    def __init__(self, in_channels, image_size, num_classes, stages, cfg: Config, seeds):
        widths = [w for w, n in zip(stages, CONVS_PER_STAGE) for _ in range(n)]
        pools = [i == n - 1 for n in CONVS_PER_STAGE for i in range(n)]
        self.pad = max(0, SIDE - image_size)
        super().__init__(
            in_channels,
            image_size + self.pad,
            num_classes,
            channels=widths,
            pools=pools,
            **common_settings(cfg, seeds),
        )

    def forward(self, x: Tensor) -> Tensor:
        if self.pad:
            before, after = self.pad // 2, self.pad - self.pad // 2
            x = F.pad(x, (before, after, before, after))
        return super().forward(x)
