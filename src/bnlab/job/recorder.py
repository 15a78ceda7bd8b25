"""Everything one run writes into its folder: metrics.csv, TensorBoard events, config, summary.

* ``metrics.csv``: long format ``step,split,metric,value``; appended, flushed at every
  evaluation, so a killed run keeps every row written before its last evaluation.
* TensorBoard events: scalars tagged ``<split>/<metric>``, the resolved config in the Text tab,
  the run's hyperparameters in the HParams tab (the same keys for every run, those its sweep
  varies first) with its final metrics read from those same scalar tags (no copies in the
  Scalars tab), and a Custom Scalars layout: training loss, validation loss and accuracy, one
  chart each with a line per run, so BN and no BN sit side by side.
* ``config.yaml``: the resolved config of this run (its own seed).
* ``summary.json``: status (running | completed | diverged | interrupted | failed), final
  metrics, steps/s, wall time, git commit and dirty flag, torch version, device. Written
  atomically (temp file + rename), so it is either the old or the new version, never half.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import torch
from omegaconf import OmegaConf

METRICS_HEADER = ("step", "split", "metric", "value")
# TensorBoard's Custom Scalars tab: one chart per curve, a line per run (BN vs no BN, ...)
SIDE_BY_SIDE = {
    "side by side (a line per run)": {
        "training loss (train mode)": ["Multiline", [r"^train/loss$"]],
        "validation loss (eval mode)": ["Multiline", [r"^val/loss$"]],
        "validation accuracy (eval mode)": ["Multiline", [r"^val/accuracy$"]],
    }
}


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temp file and rename: readers never see half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def truncate_metrics(path: Path, last_step: int) -> int:
    """Keep only the complete rows of ``path`` with step <= ``last_step`` (atomically).

    Used on resume: rows written after the checkpoint are recomputed, so keeping them would
    duplicate them; a last row cut short by a kill (no newline yet) is dropped. Returns the
    number of rows kept.
    """
    if not path.exists():
        return 0
    complete = path.read_text().split("\n")[:-1]  # the part after the last newline is partial
    kept = []
    for line in complete:
        fields = line.split(",")
        if len(fields) != len(METRICS_HEADER) or not fields[0].isdigit():
            continue
        if int(fields[0]) <= last_step:
            kept.append(line)
    atomic_write_text(path, "\n".join([",".join(METRICS_HEADER), *kept]) + "\n")
    return len(kept)


class RunRecorder:
    """Writes one run folder. ``purge_step``: on a resume, TensorBoard drops events from there.
    ``axes``: the keys of ``hparams`` its sweep varies (listed first in the HParams tab)."""

    def __init__(
        self,
        run_dir: Path,
        config: Mapping[str, Any],
        hparams: Mapping[str, Any],
        purge_step: Optional[int] = None,
        axes: Sequence[str] = (),
    ):
        from torch.utils.tensorboard import SummaryWriter

        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.hparams, self.axes = dict(hparams), list(axes)
        config_yaml = OmegaConf.to_yaml(OmegaConf.create(dict(config)))
        atomic_write_text(self.run_dir / "config.yaml", config_yaml)
        metrics = self.run_dir / "metrics.csv"
        new = not metrics.exists() or metrics.stat().st_size == 0
        self._metrics_file = open(metrics, "a", newline="")
        self._csv = csv.writer(self._metrics_file, lineterminator="\n")
        if new:
            self._csv.writerow(METRICS_HEADER)
        self.writer = SummaryWriter(str(self.run_dir), purge_step=purge_step)
        if purge_step is None:
            self.writer.add_text("config", f"```yaml\n{config_yaml}```", 0)
            self.writer.add_custom_scalars(SIDE_BY_SIDE)
        self.summary: dict[str, Any] = {}

    def log(self, step: int, split: str, metric: str, value: float) -> None:
        self._csv.writerow((step, split, metric, repr(float(value))))
        self.writer.add_scalar(f"{split}/{metric}", value, step)

    def flush(self) -> None:
        self._metrics_file.flush()
        os.fsync(self._metrics_file.fileno())
        self.writer.flush()

    def write_summary(self, **fields: Any) -> None:
        self.summary.update(fields)
        atomic_write_text(
            self.run_dir / "summary.json",
            json.dumps(self.summary, indent=2, default=_jsonable) + "\n",
        )

    def close(self, final_metrics: Mapping[str, float]) -> None:
        """Record the HParams entry (same keys for every run; its metrics are the scalar tags
        already written, e.g. ``val/accuracy``) and close the files."""
        metrics = {tag: float(v) for tag, v in final_metrics.items()}
        entry = hparams(self.hparams, metrics, self.axes)
        for summary in entry:  # experiment, session start, session end
            self.writer._get_file_writer().add_summary(summary)
        self.flush()
        self.writer.close()
        self._metrics_file.close()


def hparams(
    hparam_dict: Mapping[str, Any], metric_dict: Mapping[str, float], axes: Sequence[str] = ()
):
    """TensorBoard's three HParams summaries (torch's ``summary.hparams``, imported late), the
    keys ``axes`` first and marked as differing between runs: the HParams tab lists those
    first (it orders the keys by that mark, then by name; without it, all by name)."""
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData
    from torch.utils.tensorboard.summary import hparams as make

    first = [key for key in axes if key in hparam_dict]
    ordered = {key: hparam_dict[key] for key in [*first, *hparam_dict]}
    experiment, start, end = make(ordered, dict(metric_dict))
    plugin = experiment.value[0].metadata.plugin_data
    data = HParamsPluginData.FromString(plugin.content)
    for info in data.experiment.hparam_infos:
        info.differs = info.name in first
    plugin.content = data.SerializeToString()
    return experiment, start, end


def _jsonable(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return str(value)
