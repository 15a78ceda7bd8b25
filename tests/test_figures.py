"""Every experiment module draws a real, non-empty image from real (smoke) results."""

import importlib.util

import numpy as np
from conftest import ROOT
from PIL import Image

from bnlab.results.analysis import load_runs


def _script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "experiments" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _check_png(path, min_width=800):
    assert path.exists() and path.with_suffix(".pdf").exists()
    with Image.open(path) as image:
        assert image.width >= min_width and image.height >= 300
        assert len(np.unique(np.asarray(image.convert("L")))) > 20  # not a blank canvas


def test_convergence_and_summary_figures(smoke_sweep, tmp_path):
    module = _script("bn_vs_nobn")
    df = load_runs(smoke_sweep)
    _check_png(module.convergence(df, tmp_path))
    _check_png(module.final_accuracies(df, tmp_path))


def test_figures_name_the_code_their_data_came_from(smoke_sweep):
    from bnlab.job.provenance import code_state, describe
    from bnlab.results.figures import data_note

    df = load_runs(smoke_sweep)
    assert set(df["code"]) == {describe(code_state())}  # every run of the sweep: this code
    assert data_note(df) == f"data: {describe(code_state())}"


def test_paper_fig1_figure(smoke_sweep, tmp_path):
    _check_png(_script("paper_fig1").draw(load_runs(smoke_sweep), tmp_path), min_width=1200)


def test_loss_surface_figure(tmp_path):
    _script("loss_surface").draw(tmp_path)
    _check_png(tmp_path / "loss_surface.png", min_width=1200)


def test_paper_fig1_overlays_the_paper_on_mnist(smoke_sweep, tmp_path, monkeypatch):
    """On MNIST results the paper's digitized curve is drawn too (reads the reference CSV)."""
    module = _script("paper_fig1")
    df = load_runs(smoke_sweep).assign(**{"dataset.name": "mnist"})
    read = []
    original = module.pd.read_csv
    monkeypatch.setattr(
        module.pd, "read_csv", lambda *a, **k: read.append(a[0]) or original(*a, **k)
    )
    _check_png(module.draw(df, tmp_path), min_width=1200)
    assert read == [module.REFERENCE]


def _mini_sweep(root, grid, *extra):
    """Train every combination of ``grid`` (key -> values) for a few steps on synthetic data."""
    import itertools

    from conftest import make_config

    from bnlab.training.train import run_job

    keys = list(grid)
    for values in itertools.product(*grid.values()):
        overrides = [f"{k}={v}" for k, v in zip(keys, values)]
        cfg = make_config(
            "+experiment=smoke",
            f"data_dir={root / 'data'}",
            "dataset.synthetic_train=1200",
            "dataset.val_size=200",
            "dataset.synthetic_test=200",
            "trainer.steps=40",
            "trainer.eval_every=20",
            "trainer.log_every=20",
            "trainer.probe_size=100",
            "trainer.replicas=2",
            *extra,
            *overrides,
        )
        run_job(cfg, root / "sweep" / ",".join(overrides))
    return load_runs(root / "sweep")


def test_eps_sweep_figure(tmp_path):
    df = _mini_sweep(
        tmp_path,
        {
            "norm.eps": [1e-5, 1e-1],
            "trainer.batch_size": [4, 60],
            "dataset.input_scale": [1, 0.001],
        },
    )
    _script("eps_sweep").draw(df, tmp_path)
    _check_png(tmp_path / "eps_sweep.png")


def test_lr_sweep_figure_marks_diverged_runs(tmp_path):
    df = _mini_sweep(
        tmp_path,
        {"norm.kind": ["none", "bn"], "optimizer.lr": [0.1, 3, 1e30]},
        "model.activation=relu",
    )
    assert "diverged" in set(df["status"])
    _script("lr_sweep").draw(df, tmp_path)
    _check_png(tmp_path / "lr_sweep.png")


def test_init_sweep_figure(tmp_path):
    df = _mini_sweep(
        tmp_path,
        {"norm.kind": ["none", "bn"], "model.init_std": [1.0, 0.01]},
        "trainer.eval_train=200",
        "trainer.batch_size=100",
    )
    _script("init_sweep").draw(df, tmp_path)
    _check_png(tmp_path / "init_sweep.png")


def test_batch_size_sweep_figure(tmp_path):
    df = _mini_sweep(
        tmp_path,
        {"norm": ["none", "bn"], "trainer.batch_size": [4, 60]},
        "trainer.eval_trainmode=true",
    )
    trainmode = df[df["metric"] == "accuracy_trainmode"]
    assert set(trainmode["norm.kind"]) == {"bn"}  # nothing to switch without BN
    _script("batch_size_sweep").draw(df, tmp_path)
    _check_png(tmp_path / "batch_size_sweep.png", min_width=700)


def test_placement_figure(tmp_path):
    df = _mini_sweep(
        tmp_path, {"norm.placement": ["before", "after"], "model.activation": ["sigmoid", "relu"]}
    )
    _script("placement").draw(df, tmp_path)
    _check_png(tmp_path / "placement.png")


def test_whitening_vs_bn_figure(tmp_path):
    df = _mini_sweep(tmp_path, {"norm": ["none", "bn_no_affine", "bn"]})
    assert set(zip(df["norm.kind"], df["norm.affine"])) == {
        ("none", True),
        ("bn", False),
        ("bn", True),
    }
    _script("whitening_vs_bn").draw(df, tmp_path)
    _check_png(tmp_path / "whitening_vs_bn.png")


def test_inference_stats_figure(tmp_path):
    df = _mini_sweep(
        tmp_path,
        {"norm.stats": ["ema", "population"], "trainer.batch_size": [8, 60]},
        "trainer.eval_trainmode=true",
    )
    _script("inference_stats").draw(df, tmp_path)
    _check_png(tmp_path / "inference_stats.png", min_width=700)


def test_regularization_figure(tmp_path):
    df = _mini_sweep(
        tmp_path,
        {
            "norm.kind": ["none", "bn"],
            "model.dropout": [0, 0.3],
            "optimizer.weight_decay": [0, 0.0005],
        },
        "trainer.eval_train=300",
    )
    _script("regularization").draw(df, tmp_path)
    _check_png(tmp_path / "regularization.png")


def test_cnn_figure(tmp_path):
    df = _mini_sweep(
        tmp_path,
        {"norm.kind": ["none", "bn"]},
        "model=cnn",
        "model.channels=[4,8]",
        "trainer.replicas=1",
    )
    _script("cnn_bn_vs_nobn").draw(df, tmp_path)
    _check_png(tmp_path / "cnn_bn_vs_nobn.png")


def test_landscape_figure(tmp_path):
    df = _mini_sweep(
        tmp_path,
        {"model": ["mlp", "cnn"], "norm": ["none", "bn", "bn_noisy"]},
        "model.channels=[4,8]",
        "trainer.probe_every=20",
    )
    assert set(df[df["split"] == "probe"]["model.name"]) == {"mlp", "cnn"}
    _script("landscape").draw(df, tmp_path)
    _check_png(tmp_path / "landscape.png", min_width=2000)


def test_small_batch_figure(tmp_path):
    df = _mini_sweep(
        tmp_path,
        {"norm": ["none", "bn", "batch_renorm", "layer", "group"], "trainer.batch_size": [4, 60]},
    )
    assert set(df["norm.kind"]) == {"none", "bn", "batch_renorm", "layer", "group"}
    _script("small_batch").draw(df, tmp_path)
    _check_png(tmp_path / "small_batch.png", min_width=700)


def test_non_iid_figure_from_batches_of_two_classes(tmp_path):
    df = _mini_sweep(tmp_path, {"norm": ["bn", "group"], "dataset.classes_per_batch": ["null", 2]})
    assert set(df["dataset.classes_per_batch"].dropna()) == {2}
    _script("non_iid").draw(df, tmp_path)
    _check_png(tmp_path / "non_iid.png", min_width=700)


def test_depth_figure_from_a_rate_grid(tmp_path):
    df = _mini_sweep(
        tmp_path,
        {
            "model": ["mlp", "mlp_relu"],
            "norm": ["none", "bn"],
            "model.residual": ["false", "true"],
            "model.depth": [3, 6],
        },
        "model.width=32",
        "optimizer.lr_grid=[0.1,1.0]",
        "trainer.grad_norm_every=10",
    )
    assert set(df["optimizer.lr"]) == {0.1, 1.0}
    _script("depth").draw(df, tmp_path)
    _check_png(tmp_path / "depth.png", min_width=2000)


def test_depth_init_figure(tmp_path):
    df = _mini_sweep(
        tmp_path,
        {"norm": ["none", "bn"], "trainer.batch_size": [8, 32, 128]},
        "model=mlp_relu",
        "model.depth=8",
        "model.width=32",
        "trainer.grad_norm_every=10",
    )
    _script("depth_init").draw(df, tmp_path)
    _check_png(tmp_path / "depth_init.png")


VERDICTS = ("confirmed", "contradicted", "not reproduced here", "mixed", "-")


def _judged(name, df):
    """Every claim of the experiment measured from ``df``: a text and a verdict of the rules'."""
    for claim in _script(name).CLAIMS:
        measured, verdict = claim.rule.measure(df)
        assert measured and verdict.startswith(VERDICTS), (claim.text, verdict)


RESNET = (
    "model=resnet",
    "model.depth=8",
    "model.channels=[4,8,8]",
    "trainer.steps=10",
    "trainer.eval_every=10",
    "trainer.log_every=10",
)


def test_resnet_lr_figure_and_claims_from_a_rate_grid(tmp_path):
    df = _mini_sweep(
        tmp_path,
        {"norm": ["none", "bn", "skipinit", "fixup"]},
        *RESNET,
        "optimizer.lr_grid=[0.1,1.0]",
        "target_accuracy=0.2",
    )
    assert set(_script("resnet_lr").with_variant(df)["variant"]) == {
        "none",
        "bn",
        "skipinit",
        "fixup",
    }
    _script("resnet_lr").draw(df, tmp_path)
    _check_png(tmp_path / "resnet_lr.png", min_width=1500)
    _judged("resnet_lr", df)


def test_resnet_norms_figure(tmp_path):
    df = _mini_sweep(
        tmp_path, {"norm": ["bn", "group", "layer"], "trainer.batch_size": [2, 32]}, *RESNET
    )
    _script("resnet_norms").draw(df, tmp_path)
    _check_png(tmp_path / "resnet_norms.png", min_width=1200)
    _judged("resnet_norms", df)


def test_resnet_depth_figure(tmp_path):
    df = _mini_sweep(
        tmp_path,
        {"model.depth": [8, 20], "norm": ["none", "bn", "skipinit"]},
        *RESNET[:1],
        "model.channels=[2,4,4]",
        "trainer.steps=10",
        "trainer.eval_every=10",
        "trainer.log_every=10",
    )
    _script("resnet_depth").draw(df, tmp_path)
    _check_png(tmp_path / "resnet_depth.png", min_width=1200)
    _judged("resnet_depth", df)


def test_vgg_bn_figure_with_the_probes_and_the_hessian(tmp_path):
    df = _mini_sweep(
        tmp_path,
        {"norm": ["none", "bn"], "optimizer.lr": [0.02, 0.1]},
        "model=vgg",
        "model.channels=[2,4,4,8,8]",
        "trainer.replicas=1",
        "trainer.steps=10",
        "trainer.eval_every=10",
        "trainer.log_every=10",
        "trainer.probe_every=10",
        "trainer.hessian_every=10",
    )
    assert "hessian_top" in set(df["metric"])
    _script("vgg_bn").draw(df, tmp_path)
    _check_png(tmp_path / "vgg_bn.png", min_width=2000)
    _judged("vgg_bn", df)


def test_shift_figure_table_and_claims(tmp_path):
    df = _mini_sweep(
        tmp_path,
        {"norm": ["none", "bn", "layer"]},
        "model=cnn",
        "model.channels=[4,8]",
        "trainer.shifts=[contrast,noise]",
        "trainer.shift_strengths=[0.5,1.0]",
        "trainer.adapt_examples=[16,200]",
    )
    module = _script("shift")
    module.draw(df, tmp_path)
    _check_png(tmp_path / "shift.png", min_width=1500)
    text = module.TABLE(df)
    assert "| bn | AdaBN, 16 images | 2 |" in text and "| none | as trained | 2 |" in text
    _judged("shift", df)


def test_sync_bn_figure_from_two_workers(tmp_path):
    df = _mini_sweep(tmp_path, {"trainer.data_parallel": [1, 2], "norm.sync": ["false", "true"]})
    assert set(df["trainer.data_parallel"]) == {1, 2}
    _script("sync_bn").draw(df, tmp_path)
    _check_png(tmp_path / "sync_bn.png", min_width=1200)
    _judged("sync_bn", df)
