"""The normalization registry: every layer that ``norm.kind`` can name.

A normalization is one class, registered under the name that selects it, plus one YAML,
``conf/norm/<name>.yaml`` (``kind: <name>`` and the keys it changes from the schema's
defaults)::

    @register_norm("bn")
    class BatchNorm(nn.Module):
        batch_statistics = True  # it trains on mini-batch statistics (so needs batch >= 2)

        @classmethod
        def from_config(cls, norm: NormConfig, replicas: int, features: int, layout: str):
            return cls(...)  # the layer for `features` units of K = replicas models

A normalization that does not cancel a per-unit shift of its input (one normalizing over
groups of units, say) sets ``absorbs_bias = False``, so the linear map before it keeps its
bias. ``layout`` is how the models lay out K replicas, named by the tensor's shape:
:data:`KNC`, a (K, N, C) input (one matrix per replica: an MLP's features); :data:`N_KC_HW`,
an (N, K*C, H, W) feature map (the layout of a grouped convolution, where per-channel
statistics are already per-replica statistics: a CNN's). ``from_config`` may return None: no
layer at all (then the linear map before it keeps its bias). An optional classmethod
``check_config(cfg)`` raises :class:`~bnlab.errors.ConfigError` for settings the layer cannot
honour.

The schema's allowed values for ``norm.kind``, its validation and the models' layers all come
from here. The built-in layers live in :mod:`bnlab.layers.batchnorm` and in the modules of this
package; they are imported on the registry's first use.
"""

from __future__ import annotations

import importlib
import pkgutil

from bnlab.layers.registry import Registry

KNC = "(K, N, C)"  # replicas first: (replicas, examples, features)
N_KC_HW = "(N, K*C, H, W)"  # examples first, each replica's C channels side by side
BUILT_IN = ("bnlab.layers.batchnorm",)


def _load_built_in() -> None:
    for module in BUILT_IN:
        importlib.import_module(module)
    for info in pkgutil.iter_modules(__path__, f"{__name__}."):
        importlib.import_module(info.name)


NORMS = Registry("norm.kind", _load_built_in)
register_norm, norm_names, get_norm = NORMS.register, NORMS.names, NORMS.find
