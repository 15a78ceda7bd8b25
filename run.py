"""bnlab's entry point: ``python run.py [overrides]``, ``python run.py +experiment=bn_vs_nobn``.

Thin on purpose: Hydra composes conf/ into the typed schema (bnlab.config), and
bnlab.train.train does the work. Errors meant for the user (a bad value, missing data) print
one line and exit with status 2.
"""

import logging
import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from bnlab.config import register_configs
from bnlab.errors import BnlabError
from bnlab.runfolder import discard_if_unused, folder_name

log = logging.getLogger("bnlab")
register_configs()
OmegaConf.register_new_resolver("bnlab.dirname", folder_name, replace=True)


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    from bnlab.config import to_config
    from bnlab.runfolder import RunFolderBusy
    from bnlab.train import RunInterrupted, train

    hydra_cfg = HydraConfig.get()
    job_dir = Path(hydra_cfg.runtime.output_dir)
    try:
        config = to_config(cfg)
        if config.trainer.threads is None:
            config.trainer.threads = threads_per_job(hydra_cfg)
        summaries = train(config, job_dir)
    except RunFolderBusy as exc:
        if hydra_cfg.mode.name == "MULTIRUN":  # another sweep is on it: leave it, go on
            log.warning("skipped: %s", exc)
            return
        _fail(str(exc))
    except BnlabError as exc:
        logging.shutdown()  # close run.log, so that an unused folder can go
        discard_if_unused(job_dir)
        _fail(str(exc))
    except RunInterrupted as exc:
        log.warning("interrupted: %s", exc)
        print(f"bnlab: interrupted: {exc}", file=sys.stderr)
        sys.exit(128 + exc.signum)
    for summary in summaries:
        final = summary.get("final", {})
        log.info(
            "seed %s: %s at step %s, val/accuracy %.4f, test/accuracy %.4f -> %s",
            summary["seed"],
            summary["status"],
            summary["step"],
            final.get("val/accuracy", float("nan")),
            final.get("test/accuracy", float("nan")),
            job_dir,
        )


def threads_per_job(hydra_cfg) -> int | None:
    """Parallel jobs on one machine (joblib launcher) share its cores: cores // n_jobs each."""
    launcher = hydra_cfg.launcher
    if "joblib" not in str(launcher.get("_target_", "")):
        return None
    cores = os.cpu_count() or 1
    n_jobs = launcher.get("n_jobs") or -1
    parallel = cores if n_jobs < 0 else n_jobs  # joblib's -1: one job per core
    return max(1, cores // max(1, parallel))


def _fail(message: str) -> None:
    print(f"bnlab: error: {message}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
    main()
