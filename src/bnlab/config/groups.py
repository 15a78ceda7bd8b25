"""The config groups of conf/ (``norm``, ``experiment``, ...) and the schema's sections: what
an override may name, for one-line errors (:mod:`bnlab.config.badinput`) and a sweep's axes
(:func:`bnlab.job.folder.sweep_axes`)."""

from __future__ import annotations

from dataclasses import is_dataclass
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from bnlab.config.reference import reference
from bnlab.config.schema import Config, flatten


def schema_type(key: str, schema: type = Config) -> Any:
    """The type of the dotted ``key`` in the schema (a dataclass for a section such as
    ``trainer``, ``schema`` itself for ``""``), or None where the schema has no such key."""
    for name in filter(None, key.split(".")):
        hints = get_type_hints(schema) if is_dataclass(schema) else {}
        if name not in hints:
            return None
        schema = hints[name]
    return schema


def group_options(conf: Path, group: str) -> list[str]:
    """The options of the config group ``group`` (``norm``, ``experiment``): the names of the
    YAML files in ``conf/<group>/``, sorted."""
    return sorted(p.stem for p in (Path(conf) / group).glob("*.yaml"))


def group_keys(conf: Path, group: str) -> list[str]:
    """The dotted keys that some option of the group ``group`` of the schema sets (``norm``:
    norm.kind, norm.affine, norm.noise), in schema order: what choosing another option of the
    group can change."""
    keys: set[str] = set()
    for option in group_options(conf, group):
        tree = yaml.safe_load((Path(conf) / group / f"{option}.yaml").read_text()) or {}
        tree.pop("defaults", None)
        keys.update(flatten(tree, f"{group}."))
    return [key for key, *_ in reference() if key in keys]
