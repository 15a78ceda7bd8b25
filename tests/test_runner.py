"""The runner: files a run writes, TensorBoard tags, determinism, replicas, divergence, sweeps."""

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from conftest import ROOT, make_config, run_cli
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from bnlab.errors import ConfigError
from bnlab.job.recorder import RunRecorder
from bnlab.results.analysis import compare, load_runs
from bnlab.training.data import DEBIAN_FASHION_MNIST
from bnlab.training.train import run_job

EXPECTED_SCALARS = {
    "train/loss",
    "val/loss",
    "val/accuracy",
    "test/loss",
    "test/accuracy",
    "sigmoid_input/p15",
    "sigmoid_input/p50",
    "sigmoid_input/p85",
}


def _tiny_sweep(tmp_path: Path, *overrides: str, timeout: float = 300):
    """`python run.py -m +experiment=smoke <overrides>` on a small synthetic set, in tmp_path."""
    return run_cli(
        "-m",
        "+experiment=smoke",
        *overrides,
        "dataset.synthetic_train=1200",
        "dataset.val_size=200",
        f"data_dir={tmp_path / 'data'}",
        cwd=tmp_path,
        timeout=timeout,
    )


def _scalar_tags(run_dir: Path) -> set[str]:
    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    return set(acc.Tags()["scalars"])


@pytest.mark.parametrize("norm", ["none", "bn"])
def test_smoke_run_writes_every_file(tmp_path, smoke_overrides, norm):
    cfg = make_config(*smoke_overrides, f"norm={norm}")
    [summary] = run_job(cfg, tmp_path / "run")
    run = tmp_path / "run"
    metrics = pd.read_csv(run / "metrics.csv")
    assert list(metrics.columns) == ["step", "split", "metric", "value"]
    evals = sorted(metrics[(metrics.split == "val") & (metrics.metric == "accuracy")].step)
    assert evals == [0, 40, 80, 120]
    assert sorted(metrics[metrics.split == "train"].step) == [20, 40, 60, 80, 100, 120]
    on_disk = json.loads((run / "summary.json").read_text())
    assert on_disk["status"] == "completed" and on_disk["step"] == 120
    assert on_disk["final"]["val/accuracy"] == pytest.approx(
        metrics.value[
            (metrics.split == "val") & (metrics.metric == "accuracy") & (metrics.step == 120)
        ].item()
    )
    for key in (
        "steps_per_second",
        "wall_time_s",
        "git_commit",
        "git_dirty",
        "torch_version",
        "device",
    ):
        assert key in on_disk
    assert 0 < on_disk["eval_seconds"] < on_disk["wall_time_s"]  # 4 evaluations, timed
    assert on_disk["eval_time_share"] == pytest.approx(
        on_disk["eval_seconds"] / on_disk["wall_time_s"], rel=0.05
    )  # both rounded to 1 ms
    assert "seed: 0" in (run / "config.yaml").read_text()
    assert EXPECTED_SCALARS <= _scalar_tags(run)
    assert summary == on_disk


def test_hparams_and_config_text_are_in_tensorboard(tmp_path, smoke_overrides):
    run_job(make_config(*smoke_overrides), tmp_path / "run")
    acc = EventAccumulator(str(tmp_path / "run"))
    acc.Reload()
    tags = acc.Tags()
    assert any("config" in t for t in tags["tensors"])
    plugin = acc.PluginTagToContent("hparams")
    session = plugin_data_pb2.HParamsPluginData.FromString(plugin["_hparams_/session_start_info"])
    keys = set(session.session_start_info.hparams)
    assert {"norm.kind", "norm.eps", "optimizer.lr", "seed"} <= keys
    experiment = plugin_data_pb2.HParamsPluginData.FromString(plugin["_hparams_/experiment"])
    metrics = {m.name.tag for m in experiment.experiment.metric_infos}
    scalars = set(tags["scalars"])
    assert {"val/accuracy", "test/accuracy", "train/loss"} <= metrics <= scalars  # no copies
    assert not [t for t in scalars if t.startswith("hparam/")]
    from tensorboard.plugins.custom_scalar import layout_pb2

    layout = layout_pb2.Layout.FromString(
        acc.Tensors("custom_scalars__config__")[0].tensor_proto.string_val[0]
    )
    charts = {c.title: list(c.multiline.tag) for cat in layout.category for c in cat.chart}
    assert charts["training loss (train mode)"] == ["^train/loss$"]
    assert charts["validation loss (eval mode)"] == ["^val/loss$"]


def test_bn_trains_on_synthetic_data(tmp_path, smoke_overrides):
    [summary] = run_job(make_config(*smoke_overrides), tmp_path / "run")
    assert summary["final"]["val/accuracy"] > 0.6  # chance is 0.1


def test_same_config_twice_gives_identical_metrics(tmp_path, smoke_overrides):
    for norm in ("none", "bn"):
        cfg = make_config(*smoke_overrides, f"norm={norm}")
        run_job(cfg, tmp_path / f"{norm}-a")
        run_job(cfg, tmp_path / f"{norm}-b")
        a = (tmp_path / f"{norm}-a" / "metrics.csv").read_text()
        assert a == (tmp_path / f"{norm}-b" / "metrics.csv").read_text()


def test_bn_and_no_bn_runs_are_paired_by_seed(tmp_path, smoke_overrides):
    """Same seed: same initial weights where shapes agree, so step-0 logits differ only by BN."""
    from bnlab.training.batches import BatchOrder

    a = BatchOrder(1000, 60, [3], "cpu").indices(20)
    b = BatchOrder(1000, 60, [3], "cpu").indices(20)
    c = BatchOrder(1000, 60, [4], "cpu").indices(20)
    assert a.equal(b) and not a.equal(c)
    epoch0 = BatchOrder(1000, 60, [3], "cpu")
    seen = [epoch0.indices(s) for s in range(1, epoch0.steps_per_epoch + 1)]
    flat = pd.Series(sum((t.flatten().tolist() for t in seen), []))
    assert flat.is_unique  # an epoch visits each example at most once


def test_replicas_equal_separate_runs(tmp_path, smoke_overrides):
    batched = run_job(
        make_config(*smoke_overrides, "trainer.replicas=2", "seed=5"), tmp_path / "batched"
    )
    assert [s["seed"] for s in batched] == [5, 6]
    for seed in (5, 6):
        [single] = run_job(make_config(*smoke_overrides, f"seed={seed}"), tmp_path / f"s{seed}")
        together = pd.read_csv(tmp_path / "batched" / f"seed={seed}" / "metrics.csv")
        alone = pd.read_csv(tmp_path / f"s{seed}" / "metrics.csv")
        assert together[["step", "split", "metric"]].equals(alone[["step", "split", "metric"]])
        pd.testing.assert_series_equal(together.value, alone.value, rtol=1e-4, atol=1e-5)
        assert (
            "seed: %d" % seed in (tmp_path / "batched" / f"seed={seed}" / "config.yaml").read_text()
        )


@pytest.mark.parametrize(
    "extra",
    [
        ["model.activation=sigmoid"],  # huge but finite loss
        ["model.activation=relu"],
    ],
)  # NaN/inf loss
def test_divergence_is_recorded_and_stops_the_run(tmp_path, smoke_overrides, extra):
    cfg = make_config(*smoke_overrides, "norm=none", "optimizer.lr=1e30", *extra)
    [summary] = run_job(cfg, tmp_path / "run")
    assert summary["status"] == "diverged"
    assert summary["diverged_step"] == 20 and summary["step"] == 20
    on_disk = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert on_disk["status"] == "diverged"


def test_one_diverging_replica_leaves_the_others_training(tmp_path, smoke_overrides):
    """Replicas share no parameters: a NaN in one must not reach another."""
    cfg = make_config(*smoke_overrides, "norm=none", "optimizer.lr=30", "trainer.replicas=3")
    summaries = run_job(cfg, tmp_path / "run")
    statuses = [s["status"] for s in summaries]
    alone = [
        run_job(
            make_config(*smoke_overrides, "norm=none", "optimizer.lr=30", f"seed={s}"),
            tmp_path / f"alone{s}",
        )[0]["status"]
        for s in range(3)
    ]
    assert statuses == alone


def test_multirun_names_folders_by_overrides_and_prints_the_comparison(tmp_path):
    proc = _tiny_sweep(
        tmp_path,
        "norm=none,bn",
        "seed=0,1",
        "trainer.steps=60",
        "trainer.eval_every=30",
        "trainer.log_every=30",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    sweep = tmp_path / "outputs" / "smoke"
    names = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    assert len(names) == 4
    for name, pair in zip(
        names,
        [
            "norm=bn,seed=0",
            "norm=bn,seed=1",
            "norm=none,seed=0",
            "norm=none,seed=1",
        ],
    ):
        assert pair in name and "trainer.steps=60" in name and "data_dir" not in name
    table = pd.read_csv(sweep / "comparison.csv")
    assert sorted(table["norm.kind"]) == ["bn", "none"]
    assert list(table["seeds"]) == [2, 2]
    assert "Comparison over seeds" in proc.stdout
    assert "val acc" in proc.stdout
    # TensorBoard's HParams tab: the sweep's axes first (norm=: the keys its options set), in
    # every run; not the keys set to one value for all (trainer.steps=60)
    orders = [_hparams_order(sweep / name) for name in names]
    axes = [("norm.kind", True), ("norm.affine", True), ("norm.noise", True), ("seed", True)]
    assert orders[0][:4] == axes and all(order == orders[0] for order in orders)
    assert ("trainer.steps", False) in orders[0] and len(orders[0]) == len(set(orders[0]))


def _hparams_order(run_dir: Path) -> list[tuple[str, bool]]:
    """The HParams keys of a run's events, in order, each with whether it is marked as one
    the runs differ in (TensorBoard's HParams tab lists those first)."""
    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    content = acc.PluginTagToContent("hparams")["_hparams_/experiment"]
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content).experiment
    return [(info.name, info.differs) for info in experiment.hparam_infos]


def test_hparams_list_the_axes_first_and_mark_them(tmp_path):
    keys = {"name": "a", "norm.kind": "bn", "seed": 0, "trainer.steps": 9}
    RunRecorder(tmp_path, {}, keys, axes=["seed", "no.such.key"]).close({"val/accuracy": 0.5})
    assert _hparams_order(tmp_path) == [
        ("seed", True),
        ("name", False),
        ("norm.kind", False),
        ("trainer.steps", False),
    ]


def test_the_axes_of_a_sweep_are_the_keys_it_sweeps_over():
    from bnlab.job.folder import override_keys
    from bnlab.job.runs import run_axes

    args = ["+experiment=smoke", "norm=none,bn", "trainer.steps=60", "data_dir=x", "seed=0,1"]
    assert override_keys(args, ROOT / "conf", swept=True) == [
        "norm.kind",
        "norm.affine",
        "norm.noise",
        "seed",
    ]
    assert override_keys(args, ROOT / "conf")[-2:] == ["trainer.steps", "seed"]  # a single job's
    grid = make_config("optimizer.lr_grid=[0.1,0.2]", "trainer.replicas=2")
    assert run_axes(grid, ["optimizer.lr_grid"]) == ["optimizer.lr", "seed"]


@pytest.mark.slow
@pytest.mark.skipif(
    not DEBIAN_FASHION_MNIST.is_dir() and not (ROOT / "data").is_dir(),
    reason="Fashion-MNIST not provided: run `make data`",
)
def test_bn_trains_faster_than_no_bn_on_fashion_mnist(tmp_path):
    """The paper's MLP, same seed, same lr (bn_vs_nobn's), 1,000 steps: BN's loss ends lower."""
    final = {}
    for norm in ("none", "bn"):
        cfg = make_config(
            "+experiment=bn_vs_nobn",
            f"norm={norm}",
            "trainer.replicas=1",
            "trainer.steps=1000",
            "trainer.eval_every=1000",
            f"data_dir={ROOT / 'data'}",
        )
        [summary] = run_job(cfg, tmp_path / norm)
        final[norm] = summary["final"]["train/loss"]
    assert final["bn"] < final["none"]


def test_rerunning_a_finished_run_keeps_its_results(tmp_path, smoke_overrides):
    cfg = make_config(*smoke_overrides)
    [first] = run_job(cfg, tmp_path / "run")
    before = (tmp_path / "run" / "metrics.csv").read_text()
    [again] = run_job(cfg, tmp_path / "run")
    assert again == first
    assert (tmp_path / "run" / "metrics.csv").read_text() == before  # no duplicated rows


def test_a_finished_folder_of_another_config_is_an_error(tmp_path, smoke_overrides):
    from bnlab.job.folder import RunFolderError

    run_job(make_config(*smoke_overrides), tmp_path / "run")
    with pytest.raises(RunFolderError, match=r"optimizer.lr: 0.5 -> 0.25"):
        run_job(make_config(*smoke_overrides, "optimizer.lr=0.25"), tmp_path / "run")


def test_a_finished_run_that_evaluated_more_splits_serves_a_config_asking_for_fewer(
    tmp_path, smoke_overrides
):
    """An experiment that now evaluates fewer held-out splits along the way finds its
    finished runs (same training, their records hold what it asks for); not the reverse."""
    from bnlab.job.folder import RunFolderError

    fast = [*smoke_overrides, "trainer.steps=40", "trainer.eval_every=20"]
    summaries = run_job(make_config(*fast), tmp_path / "run")  # val and test every time
    metrics = (tmp_path / "run" / "metrics.csv").read_bytes()
    for fewer in ("[val]", "[]"):
        again = run_job(make_config(*fast, f"trainer.eval_splits={fewer}"), tmp_path / "run")
        assert again == summaries  # found, not trained again
    assert (tmp_path / "run" / "metrics.csv").read_bytes() == metrics
    run_job(make_config(*fast, "trainer.eval_splits=[]"), tmp_path / "less")
    with pytest.raises(RunFolderError, match=r"trainer.eval_splits: \[\] -> \['val'\]"):
        run_job(make_config(*fast, "trainer.eval_splits=[val]"), tmp_path / "less")
    with pytest.raises(RunFolderError, match=r"optimizer.lr: 0.5 -> 0.25"):
        run_job(
            make_config(*fast, "trainer.eval_splits=[val]", "optimizer.lr=0.25"), tmp_path / "run"
        )


def test_an_unfinished_run_is_trained_again_from_a_clean_folder(tmp_path, smoke_overrides):
    cfg = make_config(*smoke_overrides)
    run_job(cfg, tmp_path / "run")
    summary = tmp_path / "run" / "summary.json"
    summary.write_text(summary.read_text().replace('"completed"', '"interrupted"'))
    [again] = run_job(cfg, tmp_path / "run")
    metrics = pd.read_csv(tmp_path / "run" / "metrics.csv")
    assert again["status"] == "completed"
    assert not metrics.duplicated(["step", "split", "metric"]).any()


def test_a_folder_in_use_is_refused(tmp_path, smoke_overrides):
    from bnlab.job.folder import FolderLock, RunFolderError

    with FolderLock(tmp_path / "run"):
        with pytest.raises(RunFolderError, match="is in use by pid"):
            run_job(make_config(*smoke_overrides), tmp_path / "run")


def test_epochs_set_the_number_of_steps(tmp_path, smoke_overrides):
    """1,000 training examples, batch 100: 2.5 epochs = 25 steps."""
    cfg = make_config(
        *smoke_overrides,
        "trainer.epochs=2.5",
        "trainer.batch_size=100",
        "dataset.synthetic_train=1500",
        "dataset.val_size=500",
    )
    [summary] = run_job(cfg, tmp_path / "run")
    assert summary["steps_total"] == 25 and summary["step"] == 25


def test_train_accuracy_and_trainmode_metrics(tmp_path, smoke_overrides):
    cfg = make_config(
        *smoke_overrides,
        "trainer.eval_train=300",
        "trainer.eval_trainmode=true",
        "norm.stats=batch",
        "trainer.eval_batch_size=60",
    )
    run_job(cfg, tmp_path / "run")
    m = pd.read_csv(tmp_path / "run" / "metrics.csv")
    acc = m[m.metric.str.startswith("accuracy")].pivot_table(
        index="step", columns=["split", "metric"], values="value"
    )
    assert list(acc.index) == [0, 40, 80, 120]
    assert acc[("train", "accuracy")].between(0, 1).all()
    # batch statistics at eval in batches of batch_size (60) = the train-mode evaluation
    pd.testing.assert_series_equal(
        acc[("val", "accuracy")], acc[("val", "accuracy_trainmode")], check_names=False
    )


def test_trainmode_evaluation_leaves_the_model_unchanged(tmp_path, smoke_overrides):
    from bnlab.config.schema import NormConfig
    from bnlab.layers.batchnorm import BatchNorm
    from bnlab.layers.models import MLP
    from bnlab.training.evaluation import batch_statistics, evaluate

    model = MLP(784, 10, hidden=(16,), norm=NormConfig(kind="bn"))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = torch.rand(50, 784), torch.randint(10, (50,))
    with batch_statistics(model):
        evaluate(model, x, y, 10)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert [m.stats for m in model.modules() if isinstance(m, BatchNorm)] == ["ema"]


@pytest.mark.parametrize("splits", ["[]", "[test]"])
def test_eval_splits_choose_the_held_out_splits_but_the_last_evaluation_has_both(
    tmp_path, smoke_overrides, splits
):
    """trainer.eval_splits trims what every evaluation but the last measures, and changes
    nothing else: the training curve and the final metrics are those of a full evaluation."""
    run_job(make_config(*smoke_overrides, "norm=bn"), tmp_path / "all")
    run_job(
        make_config(*smoke_overrides, "norm=bn", f"trainer.eval_splits={splits}"), tmp_path / "some"
    )
    full = pd.read_csv(tmp_path / "all" / "metrics.csv")
    trimmed = pd.read_csv(tmp_path / "some" / "metrics.csv")
    held_out = trimmed[trimmed.split.isin(["val", "test"])]
    wanted = {"test"} if splits == "[test]" else set()
    assert set(held_out[held_out.step < 120].split) == wanted
    assert set(held_out[held_out.step == 120].split) == {"val", "test"}
    pd.testing.assert_frame_equal(
        trimmed.reset_index(drop=True),
        full[
            ~full.split.isin(["val", "test"] if not wanted else ["val"]) | (full.step == 120)
        ].reset_index(drop=True),
    )
    # steps to a target accuracy cannot be read where validation waits for the end
    reached = compare(load_runs(tmp_path / "some"), 0.5, by=[])["reached_target"].iloc[0]
    assert reached == "not measured"
    assert compare(load_runs(tmp_path / "all"), 0.5, by=[])["reached_target"].iloc[0] == "1/1"
    with pytest.raises(ConfigError, match="trainer.eval_splits may list val and test only"):
        make_config("trainer.eval_splits=[train]")


def test_input_scale_scales_every_split():
    from bnlab.training.data import load_splits

    a = load_splits("synthetic", val_size=100, synthetic_train=500, synthetic_test=50)
    b = load_splits(
        "synthetic", val_size=100, synthetic_train=500, synthetic_test=50, input_scale=1e-3
    )
    for name in ("x_train", "x_val", "x_test"):
        torch.testing.assert_close(getattr(b, name), getattr(a, name) * 1e-3)


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["joblib", "submitit_local"])
def test_sweeps_run_through_the_scale_out_launchers(tmp_path, launcher):
    proc = _tiny_sweep(
        tmp_path,
        f"hydra/launcher={launcher}",
        "norm=none,bn",
        "trainer.steps=40",
        "trainer.eval_every=20",
        "trainer.log_every=20",
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = sorted(
        p
        for p in (tmp_path / "outputs" / "smoke").iterdir()
        if p.is_dir() and not p.name.startswith(".")
    )
    assert len(jobs) == 2 and "norm=bn," in jobs[0].name and "norm=none," in jobs[1].name
    assert not any("launcher" in p.name for p in jobs)
    summaries = [json.loads((p / "summary.json").read_text()) for p in jobs]
    assert [s["status"] for s in summaries] == ["completed", "completed"]
    if launcher == "joblib":  # n_jobs=-1, one job per core: one torch thread each
        assert {s["threads"] for s in summaries} == {1}
    assert (tmp_path / "outputs" / "smoke" / "comparison.csv").exists()


def test_folder_names_from_long_overrides_are_cut_with_a_hash():
    from bnlab.job.folder import MAX_FOLDER_NAME, folder_name

    assert folder_name("") == "default"
    assert folder_name("norm=bn,seed=1") == "norm=bn,seed=1"
    fits = "a=" + "1" * (MAX_FOLDER_NAME - 2)  # a name that fits stays (earlier runs' folders)
    assert folder_name(fits) == fits
    long = "model.hidden=[" + ",".join(["8"] * 140) + "]"
    other = long.replace("[8,", "[9,")
    name = folder_name(long)
    assert len(name.encode()) <= MAX_FOLDER_NAME and name.startswith("model.hidden=[8,8")
    assert folder_name(long) == name  # the same command finds the same folder
    assert folder_name(other) != name and len(folder_name(other)) == len(name)
    wide = "é" * 300  # cut on a character boundary, not inside a UTF-8 sequence
    assert len(folder_name(wide).encode()) <= MAX_FOLDER_NAME


def test_a_run_with_very_long_overrides_gets_a_folder(tmp_path, smoke_overrides):
    """Overrides longer than a file name may be (255 bytes) still make one folder per job."""
    hidden = "[" + ",".join(["8"] * 140) + "]"
    args = [
        *smoke_overrides,
        f"model.hidden={hidden}",
        "trainer.steps=20",
        "trainer.eval_every=20",
        "trainer.log_every=10",
    ]
    proc = run_cli(*args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (folder,) = [p for p in (tmp_path / "outputs" / "smoke").iterdir() if p.is_dir()]
    assert "~" in folder.name
    status = json.loads((folder / "summary.json").read_text())["status"]
    assert status in ("completed", "diverged")  # a 140-layer net: either is a finished run
    again = run_cli(*args, cwd=tmp_path)  # the same command finds its finished run
    assert again.returncode == 0 and "nothing to train" in again.stderr + again.stdout


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["basic", "joblib", "submitit_local"])
def test_a_bad_cell_of_a_sweep_is_reported_in_one_line_and_the_others_run(tmp_path, launcher):
    proc = _tiny_sweep(
        tmp_path,
        f"hydra/launcher={launcher}",
        "optimizer.lr=0.1,-1,0.2",
        "trainer.steps=20",
        "trainer.eval_every=20",
        "trainer.log_every=20",
        timeout=600,
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    refused = [line for line in proc.stderr.splitlines() if "optimizer.lr" in line]
    assert refused and all(
        line.startswith("bnlab: error: [")
        and ",optimizer.lr=-1," in line
        and line.endswith("] optimizer.lr must be > 0 (got -1.0)")
        for line in refused
    )
    assert "1 job(s) of the sweep refused" in proc.stderr and "Traceback" not in proc.stderr
    sweep = tmp_path / "outputs" / "smoke"
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert len(jobs) == 2
    assert ",optimizer.lr=0.1," in jobs[0].name and ",optimizer.lr=0.2," in jobs[1].name
    for job in jobs:
        assert json.loads((job / "summary.json").read_text())["status"] == "completed"


def test_non_iid_batches_hold_k_classes_and_depend_only_on_seed_and_step():
    from bnlab.errors import ConfigError
    from bnlab.training.batches import BatchOrder

    labels = torch.arange(1000) % 10
    order = BatchOrder(1000, 12, [3, 4], "cpu", labels, classes_per_batch=3)
    for step in (1, 50, 83, 84, 200):  # 83 batches an epoch: across the epoch boundary too
        idx = order.indices(step)
        for row in idx:
            counts = torch.bincount(labels[row], minlength=10)
            assert sorted(counts[counts > 0].tolist()) == [4, 4, 4]
        again = BatchOrder(1000, 12, [3, 4], "cpu", labels, classes_per_batch=3)
        assert torch.equal(again.indices(step), idx)
    with pytest.raises(ConfigError, match="classes_per_batch=7 must be in 1..10 and divide"):
        make_config("dataset.classes_per_batch=7")
