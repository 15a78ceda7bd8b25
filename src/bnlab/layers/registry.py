"""A registry: the classes a config key can name (``norm.kind``, ``model.name``), by name.

Each class registers itself with a decorator and is built by its ``from_config`` classmethod
(timm's ``create_norm``: a small class per choice, found by name). The built-in classes are
imported on the registry's first use (``load``), so that naming one needs no import.
"""

from __future__ import annotations

from typing import Callable

from bnlab.errors import ConfigError


class Registry(dict):
    """name -> class, for the config key ``key``; ``load()`` imports the built-in classes."""

    def __init__(self, key: str, load: Callable[[], None]):
        super().__init__()
        self.key, self.load = key, load

    def register(self, name: str) -> Callable[[type], type]:
        """Class decorator: make ``<key>=<name>`` build this class."""

        def register(cls: type) -> type:
            if not callable(getattr(cls, "from_config", None)):
                raise TypeError(f"{cls.__name__} needs a from_config classmethod ({self.key})")
            self[name] = cls
            return cls

        return register

    def names(self) -> list[str]:
        """Every registered name, built-in ones first in the order they were registered."""
        self.load()
        return list(self)

    def find(self, name: str) -> type:
        """The class registered as ``name``; ConfigError naming the choices if there is none."""
        if name not in self:
            self.load()
        if name not in self:
            raise ConfigError(f"{self.key} must be one of {', '.join(self)} (got {name!r})")
        return self[name]
