"""Training: K seeds of one configuration, trained together as one replica-batched model.

:func:`training_loop` is the whole of it, top to bottom: for step s = 1 .. total,

* batch: each replica r takes ``batch_size`` examples from its own permutation of the training
  set for the step's epoch, drawn from (seed_r, epoch) alone (:mod:`bnlab.training.batches`);
* forward and loss: the mean cross-entropy of each replica's batch, (K,) (eager, or compiled
  once the compiled step has equalled the eager one on the next batch: :func:`training_path`);
* backward: of the sum of the K losses; the replicas share no parameter, so each gets exactly
  its own gradient;
* optimizer step;
* every ``log_every`` steps: the mean training loss of the window, per replica (the only host
  transfer outside evaluation); a replica whose mean is NaN, infinite or above
  ``divergence_loss`` is marked diverged and recorded no more (:mod:`bnlab.job.runs`);
* at step 0, every ``eval_every`` steps and at the end: the metrics of
  :mod:`bnlab.training.evaluation`;
* every ``probe_every`` steps and at step 0, when > 0: the internal-covariate-shift and
  loss-landscape probes of :mod:`bnlab.training.probes` on the next step's batch, which leave
  the run exactly as it would be without them; likewise every ``grad_norm_every`` steps, each
  layer's gradient norm, and every ``hessian_every`` steps, the top Hessian eigenvalue;
* every ``checkpoint_every`` steps, on a stop signal and at the end: a checkpoint.

Replica r is seed ``seed + r`` and is recorded as its own run; with ``optimizer.lr_grid`` the
replicas are those seeds at each rate of the grid, each stepped with its own rate. The job
around the loop (folder lock, earlier results, resume, signals, statuses, summaries) is
:mod:`bnlab.job.lifecycle`; the fast paths the loop may take (the compiled forward, the fused
SGD step) are :mod:`bnlab.training.fastpaths`.
"""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn
from tqdm import tqdm

from bnlab.config.schema import Config, OptimizerConfig, OptimizerName
from bnlab.distributed import WorkerLost
from bnlab.errors import first_line
from bnlab.job.checkpoint import JobState
from bnlab.job.lifecycle import Job, open_job
from bnlab.job.process import resolve_device, setup_process
from bnlab.layers.models import build_model, replica_losses
from bnlab.training.batches import BatchOrder, total_steps
from bnlab.training.data import Splits, load_data
from bnlab.training.evaluation import evaluation_metrics
from bnlab.training.fastcheck import fast_path_error
from bnlab.training.fastpaths import CompiledLosses, optimizer_step
from bnlab.training.parallel import Parallel, run_data_parallel
from bnlab.training.probes import Probes

log = logging.getLogger(__name__)


def build_optimizer(cfg: OptimizerConfig, params) -> torch.optim.Optimizer:
    """SGD, SGD with momentum, or Adam (``foreach``: one kernel per op over all tensors)."""
    if cfg.name is OptimizerName.adam:
        return torch.optim.Adam(
            params,
            lr=cfg.lr,
            betas=(cfg.beta1, cfg.beta2),
            weight_decay=cfg.weight_decay,
            foreach=True,
        )
    momentum = cfg.momentum if cfg.name is OptimizerName.momentum else 0.0
    return torch.optim.SGD(
        params, lr=cfg.lr, momentum=momentum, weight_decay=cfg.weight_decay, foreach=True
    )


def training_loop(
    cfg: Config, job: Job, model: nn.Module, optimizer, data: Splits, order: BatchOrder
) -> None:
    """Train from ``job.step`` to the end (see the module docstring); ``job`` records."""
    t, parallel = cfg.trainer, Parallel.here()  # one process, or worker r of W
    last = job.total_steps
    step_optimizer = optimizer_step(optimizer, job.runs.lrs if cfg.optimizer.lr_grid else None)
    params = list(model.parameters())
    probes = Probes(model) if t.probe_every or t.grad_norm_every or t.hessian_every else None
    progress = progress_bar(job)

    def evaluate_and_probe(step: int) -> None:
        if step % t.eval_every == 0 or step in (0, last):
            with job.clock.timed("eval"):
                job.record(step, evaluation_metrics(cfg, model, data, order, step == last))
        probing = t.probe_every and step % t.probe_every == 0
        norms = t.grad_norm_every and step % t.grad_norm_every == 0
        hessian = t.hessian_every and step % t.hessian_every == 0
        if probing or norms or hessian:
            with job.clock.timed("probe"):  # on the batch that the next step trains on
                x, y = order.batch(data.x_train, data.y_train, step + 1)
                values = {}
                if norms:
                    values = {f"grad_norm/{k}": v for k, v in probes.grad_norms(x, y).items()}
                if probing:
                    lr = optimizer.param_groups[0]["lr"]
                    values.update({f"probe/{k}": v for k, v in probes(x, y, lr).items()})
                if hessian:
                    values["probe/hessian_top"] = probes.hessian_top(x, y)
                job.record(step, values, final=False)

    model.train()
    forward_and_loss = training_path(cfg, job, model, data, order)
    if job.step == 0 and not job.resumes and parallel.main:  # (a stopped job recorded it)
        evaluate_and_probe(0)
    stop_agreed = False
    for step in range(job.step + 1, last + 1):
        if stop_agreed or (parallel.workers == 1 and job.stop_requested):
            break
        x, y = order.batch(data.x_train, data.y_train, step)  # batch: (K, N, ...)
        x, y = parallel.slice(x, y)  # data-parallel: this worker's share of it
        try:  # (data-parallel: a worker gone fails a collective)
            losses = forward_and_loss(model, x, y)  # forward and loss: (K,)
            optimizer.zero_grad(set_to_none=True)
            losses.sum().backward()  # backward: each replica gets its own gradient
            # data-parallel: gradients and losses averaged over the workers
            losses, stop_agreed = parallel.reduce(params, losses, job.stop_requested)
        except WorkerLost as exc:
            log.error("[%s] a data-parallel worker is gone (%s); stopping", job.dir.name, exc)
            job.request_stop(signal.SIGTERM)
            break
        if stop_agreed:
            job.request_stop(signal.SIGTERM)  # the signal another worker got: stop together
        step_optimizer()  # optimizer step
        job.window.add(losses.detach())
        job.step = step
        if step % t.log_every == 0 or step == last:
            job.record_training_loss(step)
            show_progress(progress, job)
            if not job.runs.live():
                break  # every replica diverged
        if parallel.main:
            evaluate_and_probe(step)
        if t.checkpoint_every and step % t.checkpoint_every == 0 and step < last:
            job.checkpoint()
    progress.close()
    if job.stop_requested and job.step < last:
        job.stop()  # checkpoint, then RunInterrupted


def training_path(cfg: Config, job: Job, model: nn.Module, data: Splits, order: BatchOrder):
    """The forward-and-loss the loop trains with: ``replica_losses`` (eager), or with
    ``trainer.compile`` the compiled one once it has given the eager step's loss and gradients
    on the job's next batch, or the one after (:mod:`bnlab.training.fastcheck`); where it does
    not, one warning and eager training. summary.json says which (``training_path``) and why a fast
    path was left."""
    if not cfg.trainer.compile:
        job.note(training_path="eager", training_path_reason=None)
        return replica_losses
    compiled = CompiledLosses()
    steps = (job.step + 1, job.step + 2)  # the batches the job trains on next
    batches = [order.batch(data.x_train, data.y_train, step) for step in steps]
    try:
        error = fast_path_error(model, batches, compiled)
        differs = error and f"the compiled step differs from the eager one: {error}"
    except Exception as exc:  # a compiled backward that fails, no memory for the check, ...
        said = f"{type(exc).__name__}: {first_line(exc)[:200]}"
        differs = f"the check of the compiled step failed ({said})"
    if compiled.failed is None and not differs:
        job.note(training_path="compiled", training_path_reason=None)
        return compiled
    reason = compiled.failed or differs
    if compiled.failed is None:
        log.warning("trainer.compile: %s; training eagerly", reason)
    job.note(training_path="eager", training_path_reason=reason)
    return replica_losses


def progress_bar(job: Job):
    """A tqdm bar over the job's steps (off with trainer.progress=false or no terminal)."""
    desc = job.runs.name
    enabled = job.cfg.trainer.progress
    return tqdm(
        total=job.total_steps,
        initial=job.step,
        desc=desc[:40],
        unit="step",
        dynamic_ncols=True,
        leave=False,
        disable=None if enabled else True,
    )


def show_progress(progress, job: Job) -> None:
    """Move the bar to the job's step; show the live runs' mean training loss."""
    progress.update(job.step - progress.n)
    losses = [r.last["train/loss"] for r in job.runs.live() if "train/loss" in r.last]
    if losses:
        progress.set_postfix_str(f"loss {sum(losses) / len(losses):.4f}", refresh=True)


def train(cfg: Config, job_dir: Path, axes: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Train ``cfg`` (K = trainer.replicas seeds) and record each seed in its run folder.

    Returns each seed's summary. A job whose runs already finished with this config is not
    trained again (their summaries are returned); an unfinished one resumes from its
    checkpoint, or starts over when it has none. Raises BnlabError subclasses for bad input,
    RunInterrupted on a stop signal (after writing a checkpoint); any other exception marks
    the runs ``failed`` in their summary.json and propagates. Call :func:`run_job` instead for
    the process set-up too (threads, determinism, seeds), as ``run.py`` does. ``axes``: the
    keys the job's sweep varies (:func:`bnlab.job.folder.sweep_axes`; TensorBoard's HParams tab
    lists them first).
    """
    with open_job(cfg, job_dir, axes) as job:
        parallel = Parallel.here()  # data-parallel: worker 0 decides and hands its state on
        if parallel.agree(job.finished is not None):
            return job.finished or []
        shared = parallel.share(job.saved.state_dict() if job.saved is not None else None)
        if not parallel.main:
            job.saved = JobState.from_state_dict(shared) if shared is not None else None
        device = resolve_device(cfg.device)
        data = load_data(cfg, device)
        model = build_model(cfg, data.input_shape, data.num_classes, job.seeds).to(device)
        optimizer = build_optimizer(cfg.optimizer, model.parameters())
        order = BatchOrder(
            len(data.x_train),
            cfg.trainer.batch_size,
            job.seeds,
            device,
            data.y_train,
            cfg.dataset.classes_per_batch,
            cfg.dataset.augment,
        )
        job.start(model, optimizer, total_steps(cfg.trainer, len(data.x_train)))
        training_loop(cfg, job, model, optimizer, data, order)
    return job.runs.summaries()


def run_job(
    cfg: Config, job_dir: Path, threads: int | None = None, axes: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """One job as ``run.py`` runs it: :func:`~bnlab.job.process.setup_process`, then
    :func:`train`; with ``trainer.data_parallel`` > 1, in that many worker processes
    (:func:`bnlab.training.parallel.run_data_parallel`)."""
    if cfg.trainer.data_parallel > 1 and Parallel.here().workers == 1:
        return run_data_parallel(cfg, job_dir, threads, axes, train)
    setup_process(cfg, threads)
    return train(cfg, job_dir, axes)
