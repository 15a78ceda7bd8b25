"""What conf/config.yaml needs from Python before Hydra composes it: the schema in Hydra's
ConfigStore (``bnlab_schema``, the first entry of its defaults) and two resolvers,
``bnlab.dirname`` (a job's folder name, :func:`bnlab.job.folder.folder_name`) and
``bnlab.non_result_keys`` (the overrides left out of that name)."""

from __future__ import annotations

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from bnlab.config.schema import Config, unnamed_keys
from bnlab.job.folder import folder_name


def register_configs() -> None:
    """Register the schema and the resolvers (again: replacing them is harmless)."""
    ConfigStore.instance().store(name="bnlab_schema", node=Config)
    OmegaConf.register_new_resolver("bnlab.dirname", folder_name, replace=True)
    OmegaConf.register_new_resolver("bnlab.non_result_keys", unnamed_keys, replace=True)
