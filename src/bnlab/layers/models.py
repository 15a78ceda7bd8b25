"""The networks: an MLP (the paper's Figure 1 network by default) and a small CNN.

Every model is *replica-batched*: it holds K independent copies of its weights (K = 1 for an
ordinary run) and maps an input shared by all replicas, (N, ...), or one input per replica,
(K, N, ...), to logits of shape (K, N, classes). Replica r is initialised from its own seed, so
it computes exactly what a separate model built with that seed computes; K seeds then train as
one model whose matrix products are batched (``torch.baddbmm``, grouped convolutions).

Normalization (``norm``): any layer of the registry :mod:`bnlab.layers.norms` (``none``;
``bn``, this project's :class:`~bnlab.layers.batchnorm.BatchNorm`; ``torch``,
``nn.BatchNorm1d/2d``, the reference). ``placement="before"`` puts it between the linear map
and the nonlinearity, as the paper does; the linear map then has no bias, since BN's beta
takes its role. ``placement="after"`` normalizes the nonlinearity's output instead.

Initialisation: weights ~ N(0, std^2) with ``init_std`` when given, else std = 1/sqrt(fan_in)
(LeCun normal: a unit-variance input gives unit-variance pre-activations, a fair start for the
network without BN); biases 0; gamma 1, beta 0.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bnlab.config.schema import Config, NormConfig, hidden_widths
from bnlab.errors import ConfigError
from bnlab.layers.model_registry import get_model, register_model
from bnlab.layers.norm_layers import norm_layers
from bnlab.layers.norms import KNC, N_KC_HW, get_norm

ACTIVATIONS = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU, "tanh": nn.Tanh}
_ACTIVATION_TYPES = tuple(ACTIVATIONS.values())


def replica_cross_entropy(logits: Tensor, y: Tensor) -> Tensor:
    """Mean cross-entropy of each replica, (K,): logits (K, N, classes), labels (K, N) or (N,)."""
    k, n, c = logits.shape
    labels = y.expand(k, n) if y.dim() == 1 else y
    return (
        F.cross_entropy(logits.reshape(k * n, c), labels.reshape(-1), reduction="none")
        .view(k, n)
        .mean(1)
    )


def replica_losses(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    """Forward and loss: the mean cross-entropy of each replica's batch, (K,), for a (K, N, ...)
    input and (K, N) labels."""
    return replica_cross_entropy(model(x), y)


class BatchedLinear(nn.Module):
    """K independent linear maps: y[k] = x[k] @ W[k] + b[k], with W of shape (K, in, out).

    ``x`` is (K, N, in), or (N, in) shared by every replica; the output is (K, N, out).
    """

    def __init__(self, replicas: int, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(replicas, in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(replicas, 1, out_features)) if bias else None

    @property
    def fan_in(self) -> int:
        return self.weight.shape[1]

    def forward(self, x: Tensor) -> Tensor:
        k = self.weight.shape[0]
        if k == 1:  # one replica: a plain matrix product is faster than a batch of one
            x2d = x.reshape(-1, x.shape[-1])
            out = (
                x2d @ self.weight[0]
                if self.bias is None
                else torch.addmm(self.bias[0], x2d, self.weight[0])
            )
            return out.unsqueeze(0)
        if x.dim() == 2:  # one input for every replica: one (N, in) x (in, K*out) product
            n, out = x.shape[0], self.weight.shape[2]
            y = (x @ self.weight.transpose(0, 1).reshape(x.shape[1], k * out)).view(n, k, out)
            y = y.transpose(0, 1)
            return y if self.bias is None else y + self.bias
        if self.bias is None:
            return torch.bmm(x, self.weight)
        return torch.baddbmm(self.bias, x, self.weight)


class _ReplicaModel(nn.Module):
    """Shared machinery: per-replica initialisation and the probed unit of the last hidden layer.

    When ``capture`` is True, a forward stores ``captured``: the inputs of the last hidden
    layer's nonlinearity at unit (or channel) 0, shape (K, values) - the paper's Figure 1(b, c).
    """

    def __init__(self, seeds: Sequence[int]):
        super().__init__()
        self.seeds = [int(s) for s in seeds]
        self.replicas = len(self.seeds)
        self.capture = False
        self.captured: Optional[Tensor] = None

    @torch.no_grad()
    def _init_weights(
        self,
        weights: Sequence[tuple[Tensor, int]],
        init_std: Optional[float],
        init_gain: float = 1.0,
    ):
        """Fill each (weight, fan_in) with N(0, std^2), std = init_std or init_gain/sqrt(fan_in);
        replica r draws from generator(seed_r).

        Weights are drawn in layer order, so a network with and without BN (same shapes) starts
        from identical weights for the same seed.
        """
        for r, seed in enumerate(self.seeds):
            gen = torch.Generator().manual_seed(seed)
            for weight, fan_in in weights:
                std = init_std if init_std is not None else init_gain / math.sqrt(fan_in)
                weight[r].copy_(torch.randn(weight[r].shape, generator=gen) * std)

    def _run_blocks(self, x: Tensor, unit0) -> Tensor:
        """Run the hidden blocks; when capturing, keep ``unit0(input of the last activation)``."""
        last = len(self.blocks) - 1
        for i, block in enumerate(self.blocks):
            if not (self.capture and i == last):
                x = block(x)
                continue
            residual = isinstance(block, PreActivationBlock)
            out = x
            for layer in block.branch if residual else block:
                if isinstance(layer, _ACTIVATION_TYPES):
                    self.captured = unit0(out)
                out = layer(out)
            x = x + out if residual else out
        return x


def hidden_block(
    linear: Callable[[bool], nn.Module],
    norm: NormConfig,
    replicas: int,
    features: int,
    layout: str,
    activation: str,
    tail: Callable[[], list[nn.Module]] = list,
) -> nn.Sequential:
    """linear -> (norm) -> activation -> (norm) -> tail, the norm where ``norm.placement`` puts
    it. ``linear(bias)`` builds the linear map: without a bias when a norm that cancels it
    follows directly (BN's beta takes its role); ``tail()`` builds the layers after the
    nonlinearity."""
    norms = norm_layers(norm, replicas, features, layout)
    before = norms if norm.placement == "before" else []
    after = norms if norm.placement == "after" else []
    absorbs = getattr(get_norm(norm.kind), "absorbs_bias", True)  # per-unit statistics do
    bias = not (before and absorbs)
    return nn.Sequential(linear(bias), *before, ACTIVATIONS[activation](), *after, *tail())


class PreActivationBlock(nn.Module):
    """A residual block with the normalization and nonlinearity before the linear map (He et
    al. 2016's pre-activation form): h -> h + W act(norm(h)), for equal widths in and out."""

    def __init__(self, branch: nn.Sequential):
        super().__init__()
        self.branch = branch

    def forward(self, h: Tensor) -> Tensor:
        return h + self.branch(h)


def pre_activation_block(
    linear: nn.Module, norm: NormConfig, replicas: int, features: int, activation: str, tail
) -> PreActivationBlock:
    norms = norm_layers(norm, replicas, features, KNC)
    return PreActivationBlock(nn.Sequential(*norms, ACTIVATIONS[activation](), linear, *tail()))


def first_linear(block: nn.Module) -> nn.Module:
    """A hidden block's linear map (or convolution): its first module with a weight of >= 3
    dimensions (replicas, in, out)."""
    return next(
        m for m in block.modules() if getattr(m, "weight", None) is not None and m.weight.dim() >= 3
    )


@register_model("mlp")
class MLP(_ReplicaModel):
    """in -> [Linear -> (norm) -> activation -> (norm) -> dropout] x len(hidden) -> Linear.

    The default is the paper's Figure 1 network: 784-100-100-100-10 with sigmoid units. With
    ``residual``, every hidden block after the first whose width equals the one before it is a
    :class:`PreActivationBlock`, h + W act(norm(h)) (the head reads the sum).
    """

    flat_input = True

    @classmethod
    def from_config(cls, cfg: Config, input_shape, num_classes: int, seeds) -> "MLP":
        hidden, residual = hidden_widths(cfg.model), cfg.model.residual
        common = common_settings(cfg, seeds)
        return cls(input_shape[0], num_classes, hidden=hidden, residual=residual, **common)

    @classmethod
    def check_config(cls, cfg: Config) -> None:
        m = cfg.model
        refuse_residual_init(cfg)
        if m.depth is not None and list(m.hidden) != type(m)().hidden:
            raise ConfigError(
                f"model.depth={m.depth} builds the hidden layers from model.width; leave "
                f"model.hidden at its default (got {list(m.hidden)})"
            )

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        hidden: Sequence[int] = (100, 100, 100),
        activation: str = "sigmoid",
        norm: Optional[NormConfig] = None,
        dropout: float = 0.0,
        init_std: Optional[float] = None,
        seeds: Sequence[int] = (0,),
        residual: bool = False,
        init_gain: float = 1.0,
    ):
        super().__init__(seeds)
        k, norm = self.replicas, norm or NormConfig()

        def tail():
            return [nn.Dropout(dropout)] if dropout > 0 else []

        blocks, width = [], in_features
        for h in hidden:
            linear = partial(BatchedLinear, k, width, h)
            if residual and blocks and h == width:
                blocks.append(pre_activation_block(linear(True), norm, k, h, activation, tail))
            else:
                blocks.append(hidden_block(linear, norm, k, h, KNC, activation, tail))
            width = h
        self.blocks = nn.ModuleList(blocks)
        self.head = BatchedLinear(k, width, num_classes)
        linears = [first_linear(b) for b in blocks] + [self.head]
        self._init_weights([(lin.weight, lin.fan_in) for lin in linears], init_std, init_gain)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self._run_blocks(x, lambda pre: pre[..., 0]))


def grouped_conv(
    replicas: int, width: int, channels: int, bias: bool, stride: int = 1
) -> nn.Conv2d:
    """K replicas' conv3x3 (width -> channels) as one grouped convolution; biases start at 0."""
    conv = nn.Conv2d(
        replicas * width,
        replicas * channels,
        3,
        stride=stride,
        padding=1,
        groups=replicas,
        bias=bias,
    )
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)
    return conv


@register_model("cnn")
class CNN(_ReplicaModel):
    """[Conv3x3 -> (norm) -> activation -> (norm) -> maxpool 2] per entry of ``channels`` -> Linear
    (``pools``: which convolutions a max-pool follows; all by default).

    BN here is per channel over N, H and W (m' = N*H*W values per channel). K replicas run as
    grouped convolutions on an (N, K*C, H, W) tensor, so each replica's channels stay its own.
    """

    flat_input = False

    @classmethod
    def from_config(cls, cfg: Config, input_shape, num_classes: int, seeds) -> "CNN":
        channels = cfg.model.channels
        common = common_settings(cfg, seeds)
        return cls(input_shape[0], input_shape[-1], num_classes, channels=channels, **common)

    @classmethod
    def check_config(cls, cfg: Config) -> None:
        if cfg.model.depth is not None or cfg.model.residual:
            said = [
                f"model.{key}={value}"
                for key, value in (("depth", cfg.model.depth), ("residual", cfg.model.residual))
                if value not in (None, False)
            ]
            raise ConfigError(
                f"{' and '.join(said)}: model.depth and model.residual apply to model=mlp (and "
                f"model.depth to model=resnet), not model={cfg.model.name}"
            )
        refuse_residual_init(cfg)

    def __init__(
        self,
        in_channels: int,
        image_size: int,
        num_classes: int,
        channels: Sequence[int] = (32, 64),
        activation: str = "relu",
        norm: Optional[NormConfig] = None,
        dropout: float = 0.0,
        init_std: Optional[float] = None,
        seeds: Sequence[int] = (0,),
        init_gain: float = 1.0,
        pools: Optional[Sequence[bool]] = None,
    ):
        super().__init__(seeds)
        k, norm = self.replicas, norm or NormConfig()
        self.in_channels = in_channels
        pools = [True] * len(channels) if pools is None else list(pools)

        def tail(pool: bool):
            return [nn.MaxPool2d(2)] * pool + ([nn.Dropout(dropout)] if dropout > 0 else [])

        blocks, weights = [], []
        width, size = in_channels, image_size
        for c, pool in zip(channels, pools):
            conv = partial(grouped_conv, k, width, c)
            ends = partial(tail, pool)
            blocks.append(hidden_block(conv, norm, k, c, N_KC_HW, activation, ends))
            weights.append((blocks[-1][0].weight.view(k, c, width, 3, 3), width * 9))
            width, size = c, size // 2 if pool else size
        self.blocks = nn.ModuleList(blocks)
        self.channels = list(channels)
        self.features = width * size * size
        self.head = BatchedLinear(k, self.features, num_classes)
        self._init_weights(weights + [(self.head.weight, self.features)], init_std, init_gain)

    def forward(self, x: Tensor) -> Tensor:
        k = self.replicas
        x = self._run_blocks(grouped_input(x, k), partial(channel0, replicas=k))
        n = x.shape[0]
        x = x.reshape(n, k, self.features).transpose(0, 1)
        return self.head(x)


def grouped_input(x: Tensor, replicas: int) -> Tensor:
    """Images (N, C, H, W) shared by the K replicas, or (K, N, C, H, W) one batch each, as the
    (N, K*C, H, W) map of a grouped convolution."""
    if x.dim() == 4:
        return x.repeat(1, replicas, 1, 1)
    return x.transpose(0, 1).reshape(x.shape[1], replicas * x.shape[2], *x.shape[3:])


def channel0(pre: Tensor, replicas: int) -> Tensor:
    """Channel 0 of every replica of an (N, K*C, H, W) map, as (K, N*H*W) values."""
    n, _, h, w = pre.shape
    return pre.view(n, replicas, -1, h, w)[:, :, 0].transpose(0, 1).reshape(replicas, -1)


def refuse_residual_init(cfg: Config) -> None:
    """model.residual_init is the ResNet's."""
    if cfg.model.residual_init.value != "none":
        raise ConfigError(
            f"model.residual_init={cfg.model.residual_init.value} applies to model=resnet only"
        )


def common_settings(cfg: Config, seeds: Sequence[int]) -> dict:
    """The keyword arguments every built-in model takes from ``cfg``."""
    m = cfg.model
    return dict(
        activation=m.activation.value,
        norm=cfg.norm,
        dropout=m.dropout,
        init_std=m.init_std,
        init_gain=m.init_gain,
        seeds=seeds,
    )


def build_model(cfg: Config, input_shape: Sequence[int], num_classes: int, seeds: Sequence[int]):
    """The model of the registry that ``cfg.model.name`` names (:mod:`bnlab.layers.model_registry`),
    for inputs of ``input_shape`` (features for a ``flat_input`` model; else channels, height,
    width), K = len(seeds) replicas."""
    return get_model(cfg.model.name).from_config(cfg, input_shape, num_classes, seeds)
