"""``norm.kind=torch``: PyTorch's own ``nn.BatchNorm1d/2d``, the reference for this project's BN.

For the MLP's (K, N, C) replica layout, :class:`ReplicaBatchNorm1d` runs one
``nn.BatchNorm1d`` over K*C features, so each replica keeps its own statistics and parameters;
for the CNN's (N, K*C, H, W) layout ``nn.BatchNorm2d(K*C)`` is per-replica already.
"""

from __future__ import annotations

from torch import Tensor, nn

from bnlab.errors import ConfigError
from bnlab.layers.norms import KNC, register_norm


class ReplicaBatchNorm1d(nn.Module):
    """``nn.BatchNorm1d`` over a (K, N, C) input: K*C features, so each replica keeps its own."""

    def __init__(self, replicas: int, num_features: int, eps: float, momentum: float, affine: bool):
        super().__init__()
        self.bn = nn.BatchNorm1d(replicas * num_features, eps=eps, momentum=momentum, affine=affine)

    def forward(self, x: Tensor) -> Tensor:
        k, n, c = x.shape
        flat = x.transpose(0, 1).reshape(n, k * c)
        return self.bn(flat).view(n, k, c).transpose(0, 1)


@register_norm("torch")
class TorchBatchNorm:
    """Builds ``nn.BatchNorm1d`` (MLP) or ``nn.BatchNorm2d`` (CNN); EMA statistics only."""

    batch_statistics = True

    @classmethod
    def from_config(cls, norm, replicas: int, features: int, layout: str) -> nn.Module:
        if layout == KNC:
            return ReplicaBatchNorm1d(replicas, features, norm.eps, norm.momentum, norm.affine)
        return nn.BatchNorm2d(
            replicas * features, eps=norm.eps, momentum=norm.momentum, affine=norm.affine
        )

    @classmethod
    def check_config(cls, cfg) -> None:
        if cfg.trainer.eval_trainmode:
            raise ConfigError(
                "trainer.eval_trainmode=true needs norm.kind=bn (or none, where it records "
                "nothing): torch's nn.BatchNorm cannot evaluate with batch statistics without "
                "updating its running ones"
            )
        if cfg.norm.stats.value != "ema":
            raise ConfigError(
                f"norm.stats={cfg.norm.stats.value} needs norm.kind=bn: torch's nn.BatchNorm "
                f"only keeps EMA statistics (norm.stats=ema)"
            )
