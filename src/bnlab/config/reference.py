"""docs/reference.md's table of config keys, from the schema: each key's dotted name, default,
meaning and the values it accepts (an Enum's, a registry's names, a declared check)."""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from enum import Enum
from typing import Any, get_args, get_type_hints

from bnlab.config.schema import Config
from bnlab.layers.model_registry import model_names
from bnlab.layers.norms import norm_names


def reference(schema: type = Config, prefix: str = "") -> list[tuple[str, Any, str, str]]:
    """(dotted key, default, meaning, values allowed) of every key of the schema, in order."""
    rows, types = [], get_type_hints(schema)
    instance = schema()
    for f in fields(schema):
        if is_dataclass(types[f.name]):
            rows += reference(types[f.name], f"{prefix}{f.name}.")
        else:
            default = getattr(instance, f.name)
            allowed = allowed_values(f, types[f.name], f"{prefix}{f.name}")
            rows.append(
                (
                    f"{prefix}{f.name}",
                    getattr(default, "value", default),
                    f.metadata["help"],
                    allowed,
                )
            )
    return rows


REGISTRIES = {"model.name": model_names, "norm.kind": norm_names}  # keys a registry names


def allowed_values(f, hint: Any, dotted: str) -> str:
    """What a key accepts, as docs/reference.md writes it: an Enum's values, the registry's
    names (norm.kind), a declared check; "or null" for an Optional key."""
    nullable = type(None) in get_args(hint)
    plain = next((t for t in get_args(hint) if t is not type(None)), hint)
    if dotted in REGISTRIES:
        text = ", ".join(REGISTRIES[dotted]())
    elif isinstance(plain, type) and issubclass(plain, Enum):
        text = ", ".join(e.value for e in plain)
    elif f.metadata.get("check") is not None:
        text = f.metadata["check"].allowed()
    elif plain is bool:
        text = "true, false"
    else:
        text = ""
    return text + (" or null" if nullable and text else "")
