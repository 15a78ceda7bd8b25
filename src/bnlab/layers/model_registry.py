"""The model registry: every network that ``model.name`` can name.

A model is one class, registered under the name that selects it, plus one YAML,
``conf/model/<name>.yaml`` (``name: <name>`` and the keys it changes from the schema)::

    @register_model("mlp")
    class MLP(nn.Module):
        flat_input = True  # it reads each example as a vector (the data is flattened for it)

        @classmethod
        def from_config(cls, cfg: Config, input_shape, num_classes: int, seeds):
            return cls(...)  # K = len(seeds) replicas, logits of shape (K, N, classes)

The instance maps an input shared by its K replicas, (N, ...), or one per replica, (K, N, ...),
to logits (K, N, classes); it has ``replicas`` (K), and while its ``capture`` is True a forward
stores ``captured``, the inputs of one unit of its last hidden nonlinearity, (K, values) (the
paper's Figure 1(b, c)). An optional classmethod ``check_config(cfg)`` raises
:class:`~bnlab.errors.ConfigError` for settings the model cannot honour. The built-in models
live in :mod:`bnlab.layers.models`, imported on the registry's first use.
"""

from __future__ import annotations

import importlib

from bnlab.layers.registry import Registry


def _load_built_in() -> None:
    for module in ("bnlab.layers.models", "bnlab.layers.resnet", "bnlab.layers.vgg"):
        importlib.import_module(module)


MODELS = Registry("model.name", _load_built_in)
register_model, model_names, get_model = MODELS.register, MODELS.names, MODELS.find
