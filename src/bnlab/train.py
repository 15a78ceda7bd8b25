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
    fixed probe batch (the paper's Figure 1b/c);
  * every ``probe_every`` steps and at step 0, when > 0: the internal-covariate-shift and
    loss-landscape probes of :mod:`bnlab.probes` on the next step's batch, which leave the run
    exactly as it would be without them.

Replica r is seed ``seed + r`` and is recorded as its own run (see :mod:`bnlab.recorder`).

Every ``checkpoint_every`` steps, on SIGINT/SIGTERM (at the next step boundary) and at the end,
the job writes a checkpoint (see :mod:`bnlab.checkpoint`); running the same job again resumes
from it and ends with the metrics an uninterrupted run would have had.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import platform
import random
import signal
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bnlab import __version__
from bnlab.allocator import keep_freed_memory
from bnlab.batchnorm import BatchNorm, population_statistics
from bnlab.checkpoint import (
    load_checkpoint,
    remove_checkpoints,
    restore_rng,
    rng_state,
    save_checkpoint,
)
from bnlab.config import Config, ModelName, OptimizerName, config_dict, flatten
from bnlab.data import Splits, load_splits
from bnlab.errors import ConfigError
from bnlab.models import CNN, MLP, NormSpec, replica_cross_entropy
from bnlab.probes import Probes
from bnlab.recorder import RunRecorder, git_state, truncate_metrics
from bnlab.runfolder import (
    FolderLock,
    clear_partial,
    finished_summary,
    refuse_other_config,
    seed_dirs,
)

log = logging.getLogger(__name__)

EVAL_MODE_NOTE = (
    "val/* and test/* are measured in eval mode (BN uses norm.stats inference "
    "statistics); train/loss is the mean mini-batch loss in train mode "
    "(batch statistics)"
)


# ----------------------------------------------------------------------------- building blocks


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={name} but no CUDA device is available; use device=auto or cpu")
    return torch.device(name)


def load_data(cfg: Config, device: torch.device) -> Splits:
    d = cfg.dataset
    return load_splits(
        d.name.value,
        cfg.data_dir,
        val_size=d.val_size,
        standardize=d.standardize,
        flatten=cfg.model.name is ModelName.mlp,
        train_subset=d.train_subset,
        split_seed=d.split_seed,
        synthetic_train=d.synthetic_train,
        synthetic_test=d.synthetic_test,
        input_scale=d.input_scale,
        device=device,
    )


def build_model(cfg: Config, splits: Splits, seeds: list[int]) -> nn.Module:
    n = cfg.norm
    spec = NormSpec(
        kind=n.kind.value,
        eps=n.eps,
        momentum=n.momentum,
        affine=n.affine,
        placement=n.placement.value,
        stats=n.stats.value,
        noise=n.noise,
    )
    m = cfg.model
    if m.name is ModelName.mlp:
        return MLP(
            splits.input_shape[0],
            splits.num_classes,
            hidden=m.hidden,
            activation=m.activation.value,
            norm=spec,
            dropout=m.dropout,
            init_std=m.init_std,
            seeds=seeds,
        )
    channels, size = splits.input_shape[0], splits.input_shape[-1]
    return CNN(
        channels,
        size,
        splits.num_classes,
        channels=m.channels,
        activation=m.activation.value,
        norm=spec,
        dropout=m.dropout,
        init_std=m.init_std,
        seeds=seeds,
    )


def build_optimizer(cfg: Config, params) -> torch.optim.Optimizer:
    o = cfg.optimizer
    if o.name is OptimizerName.adam:
        return torch.optim.Adam(
            params, lr=o.lr, betas=(o.beta1, o.beta2), weight_decay=o.weight_decay, foreach=True
        )
    momentum = o.momentum if o.name is OptimizerName.momentum else 0.0
    return torch.optim.SGD(
        params, lr=o.lr, momentum=momentum, weight_decay=o.weight_decay, foreach=True
    )  # one kernel per op over all tensors; same numbers


class BatchOrder:
    """Mini-batch indices as a pure function of (seed, step): a fresh permutation per epoch.

    Each epoch uses the first ``n // batch_size`` full batches of its permutation (the remainder
    is dropped so every batch has the same size). ``indices(step)`` is (K, batch_size).
    """

    def __init__(self, n: int, batch_size: int, seeds: list[int], device: torch.device):
        if batch_size > n:
            raise ConfigError(
                f"trainer.batch_size={batch_size} is larger than the training set ({n} examples)"
            )
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
        return self._perms[:, start : start + self.batch_size]


def replica_losses(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    """Mean cross-entropy of each replica's batch, (K,): x is (K, N, ...), y is (K, N)."""
    return replica_cross_entropy(model(x), y)


class TrainStep:
    """One optimizer step on a (K, N, ...) batch; returns the K batch losses (detached).

    The replicas share no parameter, so back-propagating the sum of their losses gives each
    exactly its own gradient. With ``compile=True`` the forward (model and loss) and its
    backward are compiled by ``torch.compile`` (static shapes; on the first call, a few seconds
    on CPU) and the optimizer step stays eager; the result equals eager up to float rounding.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, compile: bool = False):
        self.model, self.optimizer = model, optimizer
        self.losses = replica_losses
        self.compiling = compile
        if compile:
            # One job per process is not guaranteed (Hydra's basic launcher runs a sweep's jobs
            # one after another in one process): start each job from an empty compile cache,
            # so that its graph is compiled once and never counts against the recompile limit.
            torch._dynamo.reset()
            # inductor imports cpp_extension, which warns "No CUDA runtime is found" on every
            # CPU-only machine: noise in a run's output, not news
            logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
            self.losses = torch.compile(replica_losses, dynamic=False)
        self.plain_sgd = _is_plain_sgd(optimizer)

    def _first_compiled_losses(self, x: Tensor, y: Tensor) -> Tensor:
        """Compile on the first call; where that fails (no C++ compiler, say), warn and go on
        eager: the same run, a little slower."""
        self.compiling = False
        try:
            return self.losses(self.model, x, y)
        except Exception as exc:  # torch._dynamo raises many types; none of them is fatal here
            reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
            log.warning(
                "trainer.compile: torch.compile failed (%s: %s); training eagerly",
                type(exc).__name__,
                reason,
            )
            self.losses = replica_losses
            return self.losses(self.model, x, y)

    def __call__(self, x: Tensor, y: Tensor) -> Tensor:
        if self.compiling:
            losses = self._first_compiled_losses(x, y)
        else:
            losses = self.losses(self.model, x, y)
        self.optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()
        if self.plain_sgd:
            self._sgd_step()
        else:
            self.optimizer.step()
        return losses.detach()

    @torch.no_grad()
    def _sgd_step(self) -> None:
        """w <- w - lr * grad for every parameter: what SGD(foreach=True) does without momentum
        or weight decay (the same kernel, so the same numbers), without its per-call overhead."""
        for group in self.optimizer.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if params:
                torch._foreach_add_(params, [p.grad for p in params], alpha=-group["lr"])


def _is_plain_sgd(optimizer: torch.optim.Optimizer) -> bool:
    if type(optimizer) is not torch.optim.SGD:
        return False
    return all(
        g["momentum"] == 0
        and g["weight_decay"] == 0
        and not g["maximize"]
        and not isinstance(g["lr"], Tensor)
        for g in optimizer.param_groups
    )


def gather(data: Tensor, idx: Tensor) -> Tensor:
    """``data[idx]`` for a (K, B) index (index_select: faster than advanced indexing on CPU)."""
    return torch.index_select(data, 0, idx.reshape(-1)).view(*idx.shape, *data.shape[1:])


@torch.no_grad()
def evaluate(model: nn.Module, x: Tensor, y: Tensor, batch_size: int) -> tuple[Tensor, Tensor]:
    """Loss and accuracy per replica, (K,) each, over all of ``x`` in eval mode."""
    was_training = model.training
    model.eval()
    total_loss = torch.zeros(model.replicas, device=x.device)
    correct = torch.zeros(model.replicas, device=x.device)
    for start in range(0, len(x), batch_size):
        xb, yb = x[start : start + batch_size], y[start : start + batch_size]
        logits = model(xb)
        k, n, c = logits.shape
        losses = F.cross_entropy(logits.reshape(k * n, c), yb.repeat(k), reduction="none")
        total_loss += losses.view(k, n).sum(1)
        correct += (logits.argmax(-1) == yb).sum(1)
    model.train(was_training)
    return total_loss / len(x), correct / len(x)


@contextlib.contextmanager
def batch_statistics(model: nn.Module):
    """Inside: every BatchNorm of this project normalizes with the statistics of the batch it
    is given (as in training) but updates nothing; other layers stay as they are."""
    layers = [m for m in model.modules() if isinstance(m, BatchNorm)]
    saved = [layer.stats for layer in layers]
    for layer in layers:
        layer.stats = "batch"
    try:
        yield
    finally:
        for layer, stats in zip(layers, saved):
            layer.stats = stats


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
        yield x_train[perm[i * order.batch_size : (i + 1) * order.batch_size]]


# ----------------------------------------------------------------------------- the run


class RunInterrupted(Exception):
    """SIGINT/SIGTERM stopped the run; a checkpoint was written at ``step``."""

    def __init__(self, signum: int, step: int, folder: Path):
        self.signum, self.step, self.folder = signum, step, folder
        name = signal.Signals(signum).name
        super().__init__(
            f"{name} at step {step}: checkpoint written in {folder}; run the same "
            f"command again to resume"
        )


@contextlib.contextmanager
def stop_on_signals():
    """Turn SIGINT/SIGTERM into a request to stop at the next step (a second one is immediate).

    Yields a dict whose ``"signal"`` is set when a stop was requested.
    """
    request: dict[str, Optional[int]] = {"signal": None}
    if threading.current_thread() is not threading.main_thread():
        yield request
        return

    def handler(signum, frame):
        if request["signal"] is not None:
            raise KeyboardInterrupt
        request["signal"] = signum

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield request
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@dataclass
class ReplicaState:
    """Book-keeping for one replica (one seed)."""

    seed: int
    run_dir: Path
    recorder: Optional[RunRecorder] = None
    status: str = "running"
    diverged_step: Optional[int] = None
    last: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "status": self.status,
            "diverged_step": self.diverged_step,
            "last": dict(self.last),
        }


def hparams_of(cfg: Config) -> dict[str, Any]:
    """Every scalar config key (lists as strings): the same keys for every run of a sweep."""
    return {
        k: (str(v) if v is None or isinstance(v, (list, tuple)) else v)
        for k, v in flatten(config_dict(cfg)).items()
    }


def train(cfg: Config, job_dir: Path) -> list[dict[str, Any]]:
    """Train ``cfg`` (K = trainer.replicas seeds) and record each seed in its run folder.

    Returns each seed's summary. A job whose runs already finished with this config is not
    trained again (their summaries are returned); an unfinished one resumes from its
    checkpoint, or starts over when it has none. Raises BnlabError subclasses for bad input,
    RunInterrupted on SIGINT/SIGTERM (after writing a checkpoint); any other exception marks the
    runs ``failed`` in their summary.json and propagates.
    """
    job_dir = Path(job_dir)
    seeds = [cfg.seed + r for r in range(cfg.trainer.replicas)]
    dirs = seed_dirs(job_dir, seeds)
    configs = [config_dict(replace(cfg, seed=s)) for s in seeds]
    with FolderLock(job_dir):
        done = [finished_summary(d, c) for d, c in zip(dirs, configs)]
        if all(done):
            log.info(
                "%s: already finished with this config (%s); nothing to train",
                job_dir,
                ", ".join(f"seed {s['seed']}: {s['status']}" for s in done),
            )
            return done
        checkpoint = load_checkpoint(job_dir)
        if checkpoint is not None:
            refuse_other_config(job_dir, checkpoint["config"], config_dict(cfg), "an unfinished")
            log.info("%s: resuming from the checkpoint at step %d", job_dir, checkpoint["step"])
        else:
            if any((d / "metrics.csv").exists() for d in dirs):
                log.warning(
                    "%s: an unfinished run without a usable checkpoint; starting over", job_dir
                )
            for d in dirs:
                clear_partial(d)
            remove_checkpoints(job_dir)
        return Trainer(cfg, job_dir, seeds, dirs, checkpoint).run()


class Trainer:
    """One job: builds data, model and optimizer, then trains, records and checkpoints."""

    def __init__(
        self,
        cfg: Config,
        job_dir: Path,
        seeds: list[int],
        dirs: list[Path],
        checkpoint: Optional[dict[str, Any]] = None,
    ):
        self.cfg, self.job_dir = cfg, job_dir
        if cfg.trainer.threads:
            torch.set_num_threads(cfg.trainer.threads)
        keep_freed_memory()
        self.device = resolve_device(cfg.device)
        if self.device.type == "cuda":  # cuBLAS is deterministic with a fixed workspace; it
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # reads this once
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.manual_seed(cfg.seed)  # dropout masks; weights and batches have their own seeds
        np.random.seed(cfg.seed)
        random.seed(cfg.seed)
        self.splits = load_data(cfg, self.device)
        self.order = BatchOrder(
            len(self.splits.x_train), cfg.trainer.batch_size, seeds, self.device
        )
        self.model = build_model(cfg, self.splits, seeds).to(self.device)
        self.optimizer = build_optimizer(cfg, self.model.parameters())
        self.replicas = [ReplicaState(seed, d) for seed, d in zip(seeds, dirs)]
        t = cfg.trainer
        self.total_steps = (
            math.ceil(t.epochs * len(self.splits.x_train) / t.batch_size) if t.epochs else t.steps
        )
        self.step, self.elapsed, self.resumes = 0, 0.0, 0
        self.probes = Probes(self.model) if cfg.trainer.probe_every else None
        self.probe_seconds = 0.0
        self.eval_seconds = 0.0
        self.window = torch.zeros(len(seeds), device=self.device)
        self.window_steps = 0
        if checkpoint is not None:
            self._restore(checkpoint)
        bn_layers = [m for m in self.model.modules() if isinstance(m, BatchNorm)]
        self.uses_population = any(m.stats == "population" for m in bn_layers)
        self.eval_trainmode = cfg.trainer.eval_trainmode and bool(bn_layers)
        self.act_name = f"{cfg.model.activation.value}_input"

    # -- state
    def _restore(self, ckpt: dict[str, Any]) -> None:
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        restore_rng(ckpt)
        self.step, self.elapsed = int(ckpt["step"]), float(ckpt["elapsed"])
        self.resumes = int(ckpt["resumes"]) + 1
        self.window = ckpt["window"].to(self.device)
        self.window_steps = int(ckpt["window_steps"])
        self.probe_seconds = float(ckpt.get("probe_seconds", 0.0))
        self.eval_seconds = float(ckpt.get("eval_seconds", 0.0))
        for rep, saved in zip(self.replicas, ckpt["replicas"]):
            rep.status, rep.diverged_step = saved["status"], saved["diverged_step"]
            rep.last = dict(saved["last"])
            truncate_metrics(rep.run_dir / "metrics.csv", self.step)

    def checkpoint(self) -> None:
        """Flush every record up to this step, then write the checkpoint (in that order)."""
        for rep in self.replicas:
            rep.recorder.flush()
        save_checkpoint(
            self.job_dir,
            {
                "step": self.step,
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                **rng_state(),
                "window": self.window.cpu(),
                "window_steps": self.window_steps,
                "replicas": [rep.as_dict() for rep in self.replicas],
                "elapsed": self.elapsed + time.perf_counter() - self._started,
                "resumes": self.resumes,
                "probe_seconds": self.probe_seconds,
                "eval_seconds": self.eval_seconds,
                "config": config_dict(self.cfg),
            },
        )

    # -- the job
    def run(self) -> list[dict[str, Any]]:
        meta = {
            "torch_version": torch.__version__,
            "bnlab_version": __version__,
            "device": str(self.device),
            "python": platform.python_version(),
            "threads": torch.get_num_threads(),
            **git_state(Path(__file__).parent),
        }
        resumed = self.step > 0
        for rep in self.replicas:
            run_cfg = replace(self.cfg, seed=rep.seed)
            rep.recorder = RunRecorder(
                rep.run_dir,
                config_dict(run_cfg),
                hparams_of(run_cfg),
                purge_step=self.step + 1 if resumed else None,
            )
            rep.recorder.write_summary(
                status=rep.status,
                seed=rep.seed,
                steps_total=self.total_steps,
                step=self.step,
                resumes=self.resumes,
                metric_modes=EVAL_MODE_NOTE,
                **meta,
            )
        self._started = time.perf_counter()
        outcome, error = "failed", None
        try:
            with stop_on_signals() as stop:
                self._loop(stop)
            outcome = "completed"
        except RunInterrupted:
            outcome = "interrupted"
            raise
        except BaseException as exc:
            error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            self._finish(outcome, error)
        return [rep.recorder.summary for rep in self.replicas]

    def _finish(self, outcome: str, error: Optional[str]) -> None:
        """Write every seed's final summary.json and HParams entry; close its files."""
        wall = self.elapsed + time.perf_counter() - self._started
        if outcome == "completed":
            self.checkpoint()  # the trained model stays available
            (self.job_dir / "checkpoint.prev.pt").unlink(missing_ok=True)
        cost = {
            "eval_seconds": round(self.eval_seconds, 3),
            "eval_time_share": round(self.eval_seconds / wall, 4) if wall else None,
        }
        if self.probes is not None:
            cost.update(
                probe_seconds=round(self.probe_seconds, 3),
                probe_time_share=round(self.probe_seconds / wall, 4) if wall else None,
            )
        for rep in self.replicas:
            if rep.status == "running":
                rep.status = outcome
            extra = {"error": error} if error and rep.status == "failed" else {}
            rep.recorder.write_summary(
                status=rep.status,
                step=self.step,
                diverged_step=rep.diverged_step,
                final=rep.last,
                wall_time_s=round(wall, 3),
                steps_per_second=round(self.step / wall, 2) if wall > 0 else None,
                model_steps_per_second=(
                    round(self.step * len(self.replicas) / wall, 2) if wall > 0 else None
                ),
                **cost,
                **extra,
            )
            rep.recorder.close({k: v for k, v in rep.last.items() if math.isfinite(v)})

    def _evaluate_and_record(self, step: int) -> None:
        """Evaluate (see the module docstring) and record; its time goes to eval_seconds."""
        started = time.perf_counter()
        t, splits, model = self.cfg.trainer, self.splits, self.model
        if self.uses_population:
            population_statistics(model, population_batches(self.order, splits.x_train))
        val_loss, val_acc = evaluate(model, splits.x_val, splits.y_val, t.eval_batch_size)
        test_loss, test_acc = evaluate(model, splits.x_test, splits.y_test, t.eval_batch_size)
        pct = unit_percentiles(model, splits.x_val[: t.probe_size])
        columns = [val_loss, val_acc, test_loss, test_acc, *pct.T]
        names = [
            ("val", "loss"),
            ("val", "accuracy"),
            ("test", "loss"),
            ("test", "accuracy"),
            (self.act_name, "p15"),
            (self.act_name, "p50"),
            (self.act_name, "p85"),
        ]
        if t.eval_train:
            n = t.eval_train
            train_loss, train_acc = evaluate(
                model, splits.x_train[:n], splits.y_train[:n], t.eval_batch_size
            )
            columns += [train_loss, train_acc]
            names += [("train", "loss_evalmode"), ("train", "accuracy")]
        if self.eval_trainmode:
            with batch_statistics(model):
                loss, acc = evaluate(model, splits.x_val, splits.y_val, t.batch_size)
            columns += [loss, acc]
            names += [("val", "loss_trainmode"), ("val", "accuracy_trainmode")]
        values = torch.stack(columns).T.cpu().tolist()
        live = [rep for rep in self.replicas if rep.status == "running"]
        for rep, row in zip(self.replicas, values):
            if rep.status != "running":
                continue
            for (split, metric), value in zip(names, row):
                rep.recorder.log(step, split, metric, value)
                rep.last[f"{split}/{metric}"] = value
            rep.recorder.flush()
            rep.recorder.write_summary(step=step, final=rep.last)
        if live:
            log.info(
                "step %d/%d  val/accuracy %s  test/accuracy %s",
                step,
                self.total_steps,
                _fmt([r.last["val/accuracy"] for r in live]),
                _fmt([r.last["test/accuracy"] for r in live]),
            )
        self.eval_seconds += time.perf_counter() - started

    def _probe(self, step: int) -> None:
        """Record the probes of :mod:`bnlab.probes` for the weights after ``step`` updates, on
        the batch that the next update uses; the training run is left as it was. (Recorded
        before the step's checkpoint, so a resumed run neither repeats nor skips one.)"""
        if self.probes is None:
            return
        started = time.perf_counter()
        idx = self.order.indices(step + 1)
        x, y = gather(self.splits.x_train, idx), gather(self.splits.y_train, idx)
        values = self.probes(x, y, self.optimizer.param_groups[0]["lr"])
        names = list(values)
        rows = torch.stack([values[n] for n in names]).T.cpu().tolist()
        for rep, row in zip(self.replicas, rows):
            if rep.status == "running":
                for name, value in zip(names, row):
                    rep.recorder.log(step, "probe", name, value)
        self.probe_seconds += time.perf_counter() - started

    def _log_train(self, step: int) -> None:
        means = (self.window / self.window_steps).cpu().tolist()
        self.window.zero_()
        self.window_steps = 0
        for rep, value in zip(self.replicas, means):
            if rep.status != "running":
                continue
            rep.recorder.log(step, "train", "loss", value)
            if not math.isfinite(value) or value > self.cfg.trainer.divergence_loss:
                rep.status, rep.diverged_step = "diverged", step
                rep.recorder.flush()
                log.warning("seed %d diverged: training loss %s at step %d", rep.seed, value, step)
            else:
                rep.last["train/loss"] = value

    def _loop(self, stop: dict[str, Optional[int]]) -> None:
        t = self.cfg.trainer
        model = self.model
        train_step = TrainStep(model, self.optimizer, compile=t.compile)
        x_train, y_train = self.splits.x_train, self.splits.y_train
        last = self.total_steps
        bar = _progress(self.replicas, last, self.step, t.progress)
        model.train()
        if self.step == 0:
            self._evaluate_and_record(0)
            self._probe(0)
        for step in range(self.step + 1, last + 1):
            if stop["signal"] is not None:
                break
            idx = self.order.indices(step)
            self.window += train_step(gather(x_train, idx), gather(y_train, idx))
            self.window_steps += 1
            self.step = step
            if step % t.log_every == 0 or step == last:
                self._log_train(step)
                bar.update(step - bar.n)
                finite = [r.last.get("train/loss") for r in self.replicas if r.status == "running"]
                if finite:
                    bar.set_postfix_str(f"loss {np.mean(finite):.4f}", refresh=True)
                if all(rep.status != "running" for rep in self.replicas):
                    break
            if step % t.eval_every == 0 or step == last:
                self._evaluate_and_record(step)
            if t.probe_every and step % t.probe_every == 0:
                self._probe(step)
            if t.checkpoint_every and step % t.checkpoint_every == 0 and step < last:
                self.checkpoint()
        bar.close()
        if stop["signal"] is not None:
            self.checkpoint()
            raise RunInterrupted(stop["signal"], self.step, self.job_dir)


def _fmt(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{np.mean(values):.4f} +/- {np.std(values):.4f} (n={len(values)})"


def _progress(replicas: list[ReplicaState], total: int, initial: int, enabled: bool):
    from tqdm import tqdm

    desc = replicas[0].run_dir.name if len(replicas) == 1 else replicas[0].run_dir.parent.name
    return tqdm(
        total=total,
        initial=initial,
        desc=desc[:40],
        unit="step",
        dynamic_ncols=True,
        disable=None if enabled else True,
        leave=False,
    )
