"""``norm.kind=none``: no normalization layer; the linear maps keep their biases."""

from __future__ import annotations

from bnlab.errors import ConfigError
from bnlab.layers.norms import register_norm


@register_norm("none")
class NoNorm:
    """Builds no layer at all (``from_config`` returns None)."""

    batch_statistics = False

    @classmethod
    def from_config(cls, norm, replicas: int, features: int, layout: str) -> None:
        return None

    @classmethod
    def check_config(cls, cfg) -> None:
        if cfg.norm.noise > 0:
            raise ConfigError(
                f"norm.noise={cfg.norm.noise} adds noise after a normalization layer: it needs "
                f"one (e.g. norm=bn), not norm.kind=none"
            )
