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
live in :mod:`bnlab.models`, imported on the registry's first use.
"""

from __future__ import annotations

import importlib
from typing import Callable

from bnlab.errors import ConfigError

MODELS: dict[str, type] = {}
BUILT_IN = ("bnlab.models",)


def register_model(name: str) -> Callable[[type], type]:
    """Class decorator: make ``model.name=<name>`` build this class."""

    def register(cls: type) -> type:
        if not callable(getattr(cls, "from_config", None)):
            raise TypeError(f"{cls.__name__} needs a from_config classmethod to be a model")
        MODELS[name] = cls
        return cls

    return register


def _load_built_in() -> None:
    for module in BUILT_IN:
        importlib.import_module(module)


def model_names() -> list[str]:
    """Every registered name, built-in ones first."""
    _load_built_in()
    return list(MODELS)


def get_model(name: str) -> type:
    """The class registered as ``name``; ConfigError naming the choices if there is none."""
    if name not in MODELS:
        _load_built_in()
    if name not in MODELS:
        raise ConfigError(f"model.name must be one of {', '.join(MODELS)} (got {name!r})")
    return MODELS[name]
