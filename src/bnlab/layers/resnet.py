"""The CIFAR ResNet of He et al. (2016), replica-batched, and two ways to train it without
normalization.

``model=resnet``: a 3x3 convolution to ``channels[0]`` (-> norm -> ReLU), then three stages of
n basic blocks of widths ``channels`` (16, 32, 64 by default), the first block of stages 2 and
3 halving the resolution, then global average pooling and a linear head: 6n + 2 layers with
weights (``model.depth``: 8, 20, 56 for n = 1, 3, 9). A basic block is

    h -> relu( norm(conv(relu(norm(conv(h))))) + shortcut(h) ),

the normalization after each convolution and before the ReLU (any layer of the registry,
``norm.kind``); where a block changes width and resolution its shortcut is He et al.'s option A,
the input subsampled by 2 and padded with zero channels (no weights). K replicas run as grouped
convolutions on an (N, K*C, H, W) map, as the CNN does.

Without normalization (``norm=none``), ``model.residual_init`` makes each block start near the
identity:

* ``skipinit`` (De & Smith 2020): each residual branch ends in a learnable scalar alpha
  initialised to 0, so at initialisation every block is relu(shortcut(h)) and the network is
  its shortcuts;
* ``fixup`` (Zhang et al. 2019): the last layer of each branch and the head start at 0; the
  branch's other weights are scaled by L^(-1/(2m-2)) = L^(-1/2) (L blocks of m = 2 layers);
  a scalar bias (0) before each convolution, the ReLUs and the head, and a scalar multiplier
  (1) on each branch. Convolutions then have no bias of their own. The paper's code trains
  these scalars at a tenth of the learning rate (a scalar's gradient sums over every channel
  and pixel; at the full rate they jump and kill the ReLUs); here each is stored as q and used
  as p = q * FIXUP_SCALAR_RATE^(1/2), which under SGD is the same as training p at
  FIXUP_SCALAR_RATE times the rate, with one learning rate for every parameter (the
  optimizer and optimizer.lr_grid unchanged).

Weights are drawn as the other models draw theirs (N(0, (init_gain / sqrt(fan_in))^2), from
each replica's seed; conf/model/resnet.yaml sets He's gain, sqrt 2).
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bnlab.config.schema import Config, NormConfig
from bnlab.errors import ConfigError
from bnlab.layers.model_registry import register_model
from bnlab.layers.models import (
    BatchedLinear,
    _ReplicaModel,
    channel0,
    grouped_conv,
    grouped_input,
)
from bnlab.layers.norm_layers import norm_layers
from bnlab.layers.norms import N_KC_HW, get_norm

FIXUP_SCALAR_RATE = 0.1  # Fixup's scalar biases and multipliers: a tenth of the rate
FIXUP_SCALAR = FIXUP_SCALAR_RATE**0.5  # p = q * this: SGD on q moves p at that rate


def per_replica(x: Tensor, scalars: Tensor) -> Tensor:
    """``scalars`` (K,) as a tensor that broadcasts over an (N, K*C, H, W) map, replica r's
    channels taking scalars[r]."""
    k = scalars.shape[0]
    return scalars.repeat_interleave(x.shape[1] // k).view(1, -1, 1, 1)


def fixup_scalar(q: Tensor) -> Tensor:
    """A Fixup scalar's value from its stored parameter: q * FIXUP_SCALAR."""
    return q * FIXUP_SCALAR


def shortcut(h: Tensor, replicas: int, width: int, stride: int) -> Tensor:
    """He et al.'s option A: every ``stride``-th pixel, each replica's channels padded with
    zeros to ``width``."""
    if stride > 1:
        h = h[:, :, ::stride, ::stride]
    n, kc, height, w = h.shape
    extra = width - kc // replicas
    if extra:
        h = F.pad(h.view(n, replicas, kc // replicas, height, w), (0, 0, 0, 0, 0, extra))
        h = h.reshape(n, replicas * width, height, w)
    return h


class BasicBlock(nn.Module):
    """relu(norm(conv(relu(norm(conv(h))))) * alpha + shortcut(h)), with Fixup's scalar biases
    and multiplier or SkipInit's alpha (``residual_init``)."""

    def __init__(
        self, replicas: int, c_in: int, c_out: int, stride: int, norm: NormConfig, init: str
    ):
        super().__init__()
        self.k, self.c_out, self.stride, self.init = replicas, c_out, stride, init
        absorbs = getattr(get_norm(norm.kind), "absorbs_bias", True)
        norm1 = norm_layers(norm, replicas, c_out, N_KC_HW)
        bias = not (norm1 and absorbs) and init != "fixup"
        self.conv1 = grouped_conv(replicas, c_in, c_out, bias, stride)
        self.norm1 = nn.Sequential(*norm1)
        self.conv2 = grouped_conv(replicas, c_out, c_out, bias)
        self.norm2 = nn.Sequential(*norm_layers(norm, replicas, c_out, N_KC_HW))
        if init == "skipinit":
            self.alpha = nn.Parameter(torch.zeros(replicas))
        if init == "fixup":
            for name in ("bias1a", "bias1b", "bias2a", "bias2b"):
                setattr(self, name, nn.Parameter(torch.zeros(replicas)))
            self.scale = nn.Parameter(torch.full((replicas,), 1 / FIXUP_SCALAR))

    def forward(self, h: Tensor, capture=None) -> Tensor:
        fixup = self.init == "fixup"

        def scalar(t: Tensor, name: str) -> Tensor:
            return per_replica(t, fixup_scalar(getattr(self, name)))

        x = h + scalar(h, "bias1a") if fixup else h
        out = self.norm1(self.conv1(x))
        out = F.relu(out + scalar(out, "bias1b") if fixup else out)
        out = self.conv2(out + scalar(out, "bias2a") if fixup else out)
        out = self.norm2(out)
        if fixup:
            out = out * scalar(out, "scale") + scalar(out, "bias2b")
        if self.init == "skipinit":
            out = out * per_replica(out, self.alpha)
        changes = self.stride > 1 or out.shape[1] != h.shape[1]
        pre = out + (shortcut(x, self.k, self.c_out, self.stride) if changes else h)
        if capture is not None:
            capture(pre)
        return F.relu(pre)


@register_model("resnet")
class ResNet(_ReplicaModel):
    """conv -> norm -> ReLU -> 3 stages of ``blocks`` basic blocks -> average pool -> linear."""

    flat_input = False

    @classmethod
    def from_config(cls, cfg: Config, input_shape, num_classes: int, seeds) -> "ResNet":
        m = cfg.model
        return cls(
            input_shape[0],
            num_classes,
            blocks=(m.depth - 2) // 6,
            channels=m.channels,
            norm=cfg.norm,
            residual_init=m.residual_init.value,
            init_std=m.init_std,
            init_gain=m.init_gain,
            seeds=seeds,
        )

    @classmethod
    def check_config(cls, cfg: Config) -> None:
        m, kind = cfg.model, cfg.norm.kind
        if m.depth is None or m.depth < 8 or (m.depth - 2) % 6:
            raise ConfigError(f"model=resnet needs model.depth = 6n+2: 8, 20, 56 (got {m.depth})")
        if len(m.channels) != 3:
            raise ConfigError(f"model.channels must give the 3 stages' widths (got {m.channels})")
        plain = m.activation.value == "relu" and cfg.norm.placement.value == "before"
        if m.residual or m.dropout or not plain:
            raise ConfigError(
                "model=resnet is He et al.'s: ReLU, the norm before it, no model.residual or "
                "model.dropout"
            )
        if cfg.trainer.probe_every or cfg.trainer.grad_norm_every:
            raise ConfigError(
                "trainer.probe_every and trainer.grad_norm_every measure the MLP's and the CNN's "
                "layers; not yet a ResNet's"
            )
        if m.residual_init.value != "none" and kind != "none":
            raise ConfigError(
                f"model.residual_init={m.residual_init.value} trains without normalization: "
                f"use norm=none (got norm.kind={kind})"
            )

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        blocks: int = 3,
        channels: Sequence[int] = (16, 32, 64),
        norm: Optional[NormConfig] = None,
        residual_init: str = "none",
        init_std: Optional[float] = None,
        init_gain: float = math.sqrt(2),
        seeds: Sequence[int] = (0,),
    ):
        super().__init__(seeds)
        k, norm = self.replicas, norm or NormConfig()
        self.residual_init = residual_init
        stem_norm = norm_layers(norm, k, channels[0], N_KC_HW)
        absorbs = getattr(get_norm(norm.kind), "absorbs_bias", True)
        bias = not (stem_norm and absorbs) and residual_init != "fixup"
        self.stem = grouped_conv(k, in_channels, channels[0], bias)
        self.stem_norm = nn.Sequential(*stem_norm)
        stages, width = [], channels[0]
        for i, c in enumerate(channels):
            for b in range(blocks):
                stride = 2 if i > 0 and b == 0 else 1
                stages.append(BasicBlock(k, width, c, stride, norm, residual_init))
                width = c
        self.blocks = nn.ModuleList(stages)
        self.head = BatchedLinear(k, width, num_classes)
        if residual_init == "fixup":
            self.bias_stem = nn.Parameter(torch.zeros(k))
            self.bias_head = nn.Parameter(torch.zeros(k))
        convs = [self.stem] + [c for blk in stages for c in (blk.conv1, blk.conv2)]
        weights = [(c.weight.view(k, c.out_channels // k, -1), c.weight[0].numel()) for c in convs]
        self._init_weights(weights + [(self.head.weight, width)], init_std, init_gain)
        if residual_init == "fixup":
            self._fixup(stages)

    @torch.no_grad()
    def _fixup(self, blocks: Sequence[BasicBlock]) -> None:
        """Fixup's rescaling: branch weights x L^(-1/2) (m = 2 layers a branch), the last layer
        of each branch and the head at 0."""
        for block in blocks:
            block.conv1.weight.mul_(len(blocks) ** -0.5)
            block.conv2.weight.zero_()
        self.head.weight.zero_()
        self.head.bias.zero_()

    def forward(self, x: Tensor) -> Tensor:
        k, fixup = self.replicas, self.residual_init == "fixup"
        h = self.stem_norm(self.stem(grouped_input(x, k)))
        h = F.relu(h + per_replica(h, fixup_scalar(self.bias_stem)) if fixup else h)
        last = len(self.blocks) - 1
        for i, block in enumerate(self.blocks):
            keep = self._keep if self.capture and i == last else None
            h = block(h, keep)
        n = h.shape[0]
        pooled = h.mean((2, 3)).view(n, k, -1).transpose(0, 1)  # (K, N, C)
        if fixup:
            pooled = pooled + fixup_scalar(self.bias_head).view(k, 1, 1)
        return self.head(pooled)

    def _keep(self, pre: Tensor) -> None:
        self.captured = channel0(pre, self.replicas)
