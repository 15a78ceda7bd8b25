"""bnlab's entry point: ``python run.py [overrides]``, ``python run.py +experiment=bn_vs_nobn``.

Thin on purpose: Hydra composes conf/ into the typed schema (bnlab.config.schema), and
bnlab.task.train_task checks it, trains (bnlab.training.train.run_job) and logs each run's result.
Errors meant for the user (a bad value, missing data; an unknown experiment, option or key,
bnlab.config.badinput) print one line and exit with status 2.
"""

from pathlib import Path

import hydra
from omegaconf import DictConfig

from bnlab.config.badinput import composed, one_line_errors
from bnlab.config.hydra_setup import register_configs
from bnlab.task import train_task

register_configs()


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    composed()
    train_task(cfg)


if __name__ == "__main__":
    with one_line_errors(Path(__file__).resolve().parent / "conf"):
        main()
