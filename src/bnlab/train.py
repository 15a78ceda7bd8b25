"""Training: K seeds of one configuration, trained together as one replica-batched model.

The loop, for step s = 1 .. trainer.steps:
  * batch: each replica r takes ``batch_size`` indices from its own permutation of the training
    set for epoch e = (s-1) // steps_per_epoch, drawn from (seed_r, e) alone: the batch order is
    a function of the seed and the step, so runs with and without BN see the same batches and a
    resumed run sees what an uninterrupted one saw;
  * loss: the mean cross-entropy of each replica's batch; their sum is back-propagated (the
    replicas share no parameter, so each gets exactly its own gradient); one optimizer step;
  * every ``log_every`` steps: the mean training loss of the last window, per replica (the
    only host sync outside evaluation); a mean that is NaN, infinite or above
    ``divergence_loss`` marks the replica ``diverged`` (it stops being recorded; the run stops
    when no replica is left);
  * every ``eval_every`` steps, at step 0 and at the end: full-batch validation and test loss and
    accuracy under ``torch.no_grad()`` in eval mode (BN uses its inference statistics), and the
    15/50/85th percentiles of the input of unit 0 of the last hidden layer's nonlinearity over a
    fixed probe batch (the paper's Figure 1b/c).

Replica r is seed ``seed + r`` and is recorded as its own run (see :mod:`bnlab.recorder`).
"""

from __future__ import annotations

import logging
import math
import platform
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bnlab import __version__
from bnlab.batchnorm import BatchNorm, population_statistics
from bnlab.config import Config, ModelName, OptimizerName, config_dict, flatten
from bnlab.data import Splits, load_splits
from bnlab.errors import ConfigError
from bnlab.models import CNN, MLP, NormSpec
from bnlab.recorder import RunRecorder, git_state
from bnlab.runfolder import FolderLock, clear_partial, finished_summary, seed_dirs

log = logging.getLogger(__name__)

EVAL_MODE_NOTE = ("val/* and test/* are measured in eval mode (BN uses norm.stats inference "
                  "statistics); train/loss is the mean mini-batch loss in train mode "
                  "(batch statistics)")


# ----------------------------------------------------------------------------- building blocks

def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={name} but no CUDA device is available; use device=auto or cpu")
    return torch.device(name)


def load_data(cfg: Config, device: torch.device) -> Splits:
    d = cfg.dataset
    return load_splits(d.name.value, cfg.data_dir, val_size=d.val_size, standardize=d.standardize,
                       flatten=cfg.model.name is ModelName.mlp, train_subset=d.train_subset,
                       split_seed=d.split_seed, synthetic_train=d.synthetic_train,
                       synthetic_test=d.synthetic_test, device=device)


def build_model(cfg: Config, splits: Splits, seeds: list[int]) -> nn.Module:
    n = cfg.norm
    spec = NormSpec(kind=n.kind.value, eps=n.eps, momentum=n.momentum, affine=n.affine,
                    placement=n.placement.value, stats=n.stats.value)
    m = cfg.model
    if m.name is ModelName.mlp:
        return MLP(splits.input_shape[0], splits.num_classes, hidden=m.hidden,
                   activation=m.activation.value, norm=spec, dropout=m.dropout,
                   init_std=m.init_std, seeds=seeds)
    channels, size = splits.input_shape[0], splits.input_shape[-1]
    return CNN(channels, size, splits.num_classes, channels=m.channels,
               activation=m.activation.value, norm=spec, dropout=m.dropout,
               init_std=m.init_std, seeds=seeds)


def build_optimizer(cfg: Config, params) -> torch.optim.Optimizer:
    o = cfg.optimizer
    if o.name is OptimizerName.adam:
        return torch.optim.Adam(params, lr=o.lr, betas=(o.beta1, o.beta2),
                                weight_decay=o.weight_decay)
    momentum = o.momentum if o.name is OptimizerName.momentum else 0.0
    return torch.optim.SGD(params, lr=o.lr, momentum=momentum, weight_decay=o.weight_decay)


class BatchOrder:
    """Mini-batch indices as a pure function of (seed, step): a fresh permutation per epoch.

    Each epoch uses the first ``n // batch_size`` full batches of its permutation (the remainder
    is dropped so every batch has the same size). ``indices(step)`` is (K, batch_size).
    """

    def __init__(self, n: int, batch_size: int, seeds: list[int], device: torch.device):
        if batch_size > n:
            raise ConfigError(f"trainer.batch_size={batch_size} is larger than the training set "
                              f"({n} examples)")
        self.n, self.batch_size, self.seeds, self.device = n, batch_size, seeds, device
        self.steps_per_epoch = n // batch_size
        self._epoch: Optional[int] = None
        self._perms: Optional[Tensor] = None

    def permutation(self, seed: int, epoch: int) -> Tensor:
        state = np.random.SeedSequence([seed, epoch, 0xBA7C4]).generate_state(2, dtype=np.uint32)
        gen = torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))
        return torch.randperm(self.n, generator=gen)

    def indices(self, step: int) -> Tensor:
        """Indices of the batch trained at ``step`` (1-based)."""
        epoch, position = divmod(step - 1, self.steps_per_epoch)
        if epoch != self._epoch:
            perms = torch.stack([self.permutation(s, epoch) for s in self.seeds])
            self._perms, self._epoch = perms.to(self.device), epoch
        start = position * self.batch_size
        return self._perms[:, start:start + self.batch_size]


@torch.no_grad()
def evaluate(model: nn.Module, x: Tensor, y: Tensor, batch_size: int) -> tuple[Tensor, Tensor]:
    """Loss and accuracy per replica, (K,) each, over all of ``x`` in eval mode."""
    was_training = model.training
    model.eval()
    total_loss = torch.zeros(model.replicas, device=x.device)
    correct = torch.zeros(model.replicas, device=x.device)
    for start in range(0, len(x), batch_size):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        logits = model(xb)
        k, n, c = logits.shape
        losses = F.cross_entropy(logits.reshape(k * n, c), yb.repeat(k), reduction="none")
        total_loss += losses.view(k, n).sum(1)
        correct += (logits.argmax(-1) == yb).sum(1)
    model.train(was_training)
    return total_loss / len(x), correct / len(x)


@torch.no_grad()
def unit_percentiles(model: nn.Module, probe: Tensor) -> Tensor:
    """15/50/85th percentiles of the last hidden nonlinearity's unit-0 input: (K, 3)."""
    was_training = model.training
    model.eval()
    model.capture = True
    try:
        model(probe)
        values = model.captured
    finally:
        model.capture, model.captured = False, None
        model.train(was_training)
    q = torch.tensor([0.15, 0.50, 0.85], device=values.device, dtype=values.dtype)
    return torch.quantile(values, q, dim=1).T


def population_batches(order: BatchOrder, x_train: Tensor):
    """One epoch of training batches (replica 0's first permutation), for Algorithm 2."""
    perm = order.permutation(order.seeds[0], 0).to(x_train.device)
    for i in range(order.steps_per_epoch):
        yield x_train[perm[i * order.batch_size:(i + 1) * order.batch_size]]


# ----------------------------------------------------------------------------- the run

@dataclass
class ReplicaState:
    """Book-keeping for one replica (one seed)."""

    seed: int
    run_dir: Path
    recorder: RunRecorder
    status: str = "running"
    diverged_step: Optional[int] = None
    last: dict[str, float] = field(default_factory=dict)


def hparams_of(cfg: Config) -> dict[str, Any]:
    """Every scalar config key (lists as strings): the same keys for every run of a sweep."""
    return {k: (str(v) if v is None or isinstance(v, (list, tuple)) else v)
            for k, v in flatten(config_dict(cfg)).items()}


def train(cfg: Config, job_dir: Path) -> list[dict[str, Any]]:
    """Train ``cfg`` (K = trainer.replicas seeds) and record each seed in its run folder.

    Returns each seed's summary. A job whose runs already finished with this config is not
    trained again (their summaries are returned). Raises BnlabError subclasses for bad input;
    any other exception marks the runs ``failed`` in their summary.json and propagates.
    """
    job_dir = Path(job_dir)
    seeds = [cfg.seed + r for r in range(cfg.trainer.replicas)]
    dirs = seed_dirs(job_dir, seeds)
    configs = [config_dict(replace(cfg, seed=s)) for s in seeds]
    with FolderLock(job_dir):
        done = [finished_summary(d, c) for d, c in zip(dirs, configs)]
        if all(done):
            log.info("%s: already finished with this config (%s); nothing to train", job_dir,
                     ", ".join(f"seed {s['seed']}: {s['status']}" for s in done))
            return done
        for d in dirs:
            clear_partial(d)
        return _train(cfg, seeds, dirs)


def _train(cfg: Config, seeds: list[int], dirs: list[Path]) -> list[dict[str, Any]]:
    if cfg.trainer.threads:
        torch.set_num_threads(cfg.trainer.threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)  # dropout masks; weights and batches have their own generators
    splits = load_data(cfg, device)
    order = BatchOrder(len(splits.x_train), cfg.trainer.batch_size, seeds, device)
    model = build_model(cfg, splits, seeds).to(device)
    optimizer = build_optimizer(cfg, model.parameters())

    replicas = []
    meta = {"torch_version": torch.__version__, "bnlab_version": __version__,
            "device": str(device), "python": platform.python_version(),
            "threads": torch.get_num_threads(), **git_state(Path(__file__).parent)}
    for seed, run_dir in zip(seeds, dirs):
        run_cfg = replace(cfg, seed=seed)
        recorder = RunRecorder(run_dir, config_dict(run_cfg), hparams_of(run_cfg))
        recorder.write_summary(status="running", seed=seed, steps_total=cfg.trainer.steps,
                               step=0, metric_modes=EVAL_MODE_NOTE, **meta)
        replicas.append(ReplicaState(seed, run_dir, recorder))

    started = time.perf_counter()
    progress = {"step": 0}
    outcome, error = "failed", None
    try:
        _loop(cfg, model, optimizer, splits, order, replicas, progress)
        outcome = "completed"
    except KeyboardInterrupt:
        outcome = "interrupted"
        raise
    except BaseException as exc:
        error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        _finish(replicas, outcome, error, progress["step"], time.perf_counter() - started)
    return [rep.recorder.summary for rep in replicas]


def _finish(replicas: list[ReplicaState], outcome: str, error: Optional[str], step: int,
            wall: float) -> None:
    """Write every replica's final summary.json and HParams entry; close its files."""
    for rep in replicas:
        if rep.status == "running":
            rep.status = outcome
        extra = {"error": error} if error and rep.status == "failed" else {}
        rep.recorder.write_summary(
            status=rep.status, step=step, diverged_step=rep.diverged_step, final=rep.last,
            wall_time_s=round(wall, 3),
            steps_per_second=round(step / wall, 2) if wall > 0 else None,
            model_steps_per_second=round(step * len(replicas) / wall, 2) if wall > 0 else None,
            **extra)
        rep.recorder.close({k: v for k, v in rep.last.items() if math.isfinite(v)})


def _loop(cfg: Config, model: nn.Module, optimizer: torch.optim.Optimizer, splits: Splits,
          order: BatchOrder, replicas: list[ReplicaState], progress: dict[str, int]) -> None:
    """The training loop; ``progress["step"]`` is the last step completed, for the summary."""
    t = cfg.trainer
    k = len(replicas)
    x_train, y_train = splits.x_train, splits.y_train
    probe = splits.x_val[:t.probe_size]
    act_name = f"{cfg.model.activation.value}_input"
    uses_population = any(isinstance(m, BatchNorm) and m.stats == "population"
                          for m in model.modules())
    window = torch.zeros(k, device=x_train.device)
    window_steps = 0
    bar = _progress(cfg, replicas)

    def record_eval(step: int) -> None:
        if uses_population:
            population_statistics(model, population_batches(order, x_train))
        val_loss, val_acc = evaluate(model, splits.x_val, splits.y_val, t.eval_batch_size)
        test_loss, test_acc = evaluate(model, splits.x_test, splits.y_test, t.eval_batch_size)
        pct = unit_percentiles(model, probe)
        values = torch.stack([val_loss, val_acc, test_loss, test_acc, *pct.T]).T.cpu().tolist()
        names = [("val", "loss"), ("val", "accuracy"), ("test", "loss"), ("test", "accuracy"),
                 (act_name, "p15"), (act_name, "p50"), (act_name, "p85")]
        for rep, row in zip(replicas, values):
            if rep.status != "running":
                continue
            for (split, metric), value in zip(names, row):
                rep.recorder.log(step, split, metric, value)
                rep.last[f"{split}/{metric}"] = value
            rep.recorder.flush()
            rep.recorder.write_summary(step=step, final=rep.last)
        live = [r.last["val/accuracy"] for r in replicas if r.status == "running"]
        if live:
            log.info("step %d/%d  val/accuracy %s  test/accuracy %s", step, t.steps,
                     _fmt([r.last["val/accuracy"] for r in replicas if r.status == "running"]),
                     _fmt([r.last["test/accuracy"] for r in replicas if r.status == "running"]))
            bar.set_postfix_str(f"val/acc {np.mean(live):.4f}", refresh=False)

    model.train()
    record_eval(0)
    for step in range(1, t.steps + 1):
        idx = order.indices(step)
        logits = model(x_train[idx])
        _, n, c = logits.shape
        losses = F.cross_entropy(logits.reshape(k * n, c), y_train[idx].reshape(-1),
                                 reduction="none").view(k, n).mean(1)
        optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()
        optimizer.step()
        window += losses.detach()
        window_steps += 1
        progress["step"] = step
        if step % t.log_every == 0 or step == t.steps:
            means = (window / window_steps).cpu().tolist()
            window.zero_()
            window_steps = 0
            for rep, value in zip(replicas, means):
                if rep.status != "running":
                    continue
                if not math.isfinite(value) or value > t.divergence_loss:
                    rep.status, rep.diverged_step = "diverged", step
                    rep.recorder.log(step, "train", "loss", value)
                    rep.recorder.flush()
                    log.warning("seed %d diverged: training loss %s at step %d", rep.seed, value,
                                step)
                    continue
                rep.recorder.log(step, "train", "loss", value)
                rep.last["train/loss"] = value
            bar.update(step - bar.n)
            finite = [v for v in means if math.isfinite(v)]
            if finite:
                bar.set_postfix_str(f"loss {np.mean(finite):.4f}", refresh=True)
            if all(rep.status != "running" for rep in replicas):
                break
        if step % t.eval_every == 0 or step == t.steps:
            record_eval(step)
    bar.close()


def _fmt(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{np.mean(values):.4f} +/- {np.std(values):.4f} (n={len(values)})"


def _progress(cfg: Config, replicas: list[ReplicaState]):
    from tqdm import tqdm

    desc = replicas[0].run_dir.name if len(replicas) == 1 else replicas[0].run_dir.parent.name
    return tqdm(total=cfg.trainer.steps, desc=desc[:40], unit="step", dynamic_ncols=True,
                disable=None if cfg.trainer.progress else True, leave=False)
