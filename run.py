"""bnlab's entry point: ``python run.py [overrides]``, ``python run.py +experiment=bn_vs_nobn``.

Thin on purpose: Hydra composes conf/ into the typed schema (bnlab.config), and
bnlab.train.train does the work. Errors meant for the user (a bad value, missing data) print
one line and exit with status 2.
"""

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from bnlab.config import register_configs
from bnlab.errors import BnlabError

log = logging.getLogger("bnlab")
register_configs()
OmegaConf.register_new_resolver("bnlab.dirname", lambda overrides: overrides or "default",
                                replace=True)


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    from bnlab.config import to_config
    from bnlab.runfolder import RunFolderBusy
    from bnlab.train import RunInterrupted, train

    hydra_cfg = HydraConfig.get()
    job_dir = Path(hydra_cfg.runtime.output_dir)
    try:
        summaries = train(to_config(cfg), job_dir)
    except RunFolderBusy as exc:
        if hydra_cfg.mode.name == "MULTIRUN":  # another sweep is on it: leave it, go on
            log.warning("skipped: %s", exc)
            return
        _fail(str(exc))
    except BnlabError as exc:
        _fail(str(exc))
    except RunInterrupted as exc:
        log.warning("interrupted: %s", exc)
        print(f"bnlab: interrupted: {exc}", file=sys.stderr)
        sys.exit(128 + exc.signum)
    for summary in summaries:
        final = summary.get("final", {})
        log.info("seed %s: %s at step %s, val/accuracy %.4f, test/accuracy %.4f -> %s",
                 summary["seed"], summary["status"], summary["step"],
                 final.get("val/accuracy", float("nan")), final.get("test/accuracy", float("nan")),
                 job_dir)


def _fail(message: str) -> None:
    print(f"bnlab: error: {message}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
    main()
