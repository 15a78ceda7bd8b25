"""The configuration schema: typed dataclasses (given to Hydra by :mod:`bnlab.config.hydra_setup`).

Types and Enum values are enforced by Hydra/OmegaConf when the YAML in ``conf/`` and the
command line are merged (:mod:`bnlab.config.badinput` turns their errors into one line). Each key
declares the values it accepts (``check``, :mod:`bnlab.config.checks`); :func:`validate` applies
them, and the checks that involve several keys, raising :class:`~bnlab.errors.ConfigError`
naming the key.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, is_dataclass
from enum import Enum
from typing import Any, List, Optional, get_args, get_type_hints

from omegaconf import DictConfig, OmegaConf

from bnlab.config.checks import Matches, Subset, above, at_least, within
from bnlab.errors import ConfigError
from bnlab.layers.model_registry import get_model
from bnlab.layers.norms import get_norm

SHIFT_KINDS = ("contrast", "brightness", "noise", "translate")  # bnlab.training.shifts


class DatasetName(str, Enum):
    fashion_mnist = "fashion_mnist"
    mnist = "mnist"
    cifar10 = "cifar10"
    synthetic = "synthetic"


class Activation(str, Enum):
    sigmoid = "sigmoid"
    relu = "relu"
    tanh = "tanh"


class ResidualInit(str, Enum):
    none = "none"
    skipinit = "skipinit"
    fixup = "fixup"


class Placement(str, Enum):
    before = "before"
    after = "after"


class Stats(str, Enum):
    ema = "ema"
    population = "population"
    batch = "batch"


class OptimizerName(str, Enum):
    sgd = "sgd"
    momentum = "momentum"
    adam = "adam"


def key(default: Any, help: str, result: bool = True, check: Any = None) -> Any:
    """A schema field: its default, what it means (docs/reference.md is made from these),
    whether it changes a run's numbers (``result=False``: where results go, how fast or how
    verbosely it runs; a finished run is reused when only such keys differ, and they are left
    out of run folders' names), and ``check``, what values it accepts (:mod:`bnlab.config.checks`;
    :func:`validate` applies it)."""
    metadata = {"help": help, "result": result, "check": check}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class DatasetConfig:
    name: DatasetName = key(DatasetName.fashion_mnist, "the dataset")
    val_size: float = key(
        5000,
        "held-out validation examples (a number < 1 is a fraction)",
        check=above(0, "a fraction < 1 or a count"),
    )
    standardize: bool = key(False, "subtract the training mean pixel, divide by its std")
    train_subset: Optional[int] = key(
        None, "train on the first n examples only (null: all)", check=at_least(1)
    )
    split_seed: int = key(0, "seed of the hold-out split and the synthetic data (not the run's)")
    input_scale: float = key(
        1.0, "multiply every input (small: inputs whose variance is near eps)", check=above(0)
    )
    synthetic_train: int = key(6000, "training examples of the synthetic dataset")
    synthetic_test: int = key(1000, "test examples of the synthetic dataset")
    classes_per_batch: Optional[int] = key(
        None, "non-i.i.d. training batches: each from this many classes only (null: i.i.d.)"
    )
    augment: bool = key(
        False, "images: random 4-pixel crop and left-right flip of each training example"
    )


@dataclass
class ModelConfig:
    name: str = key("mlp", "the network, from the registry (bnlab.layers.model_registry)")
    hidden: List[int] = key([100, 100, 100], "MLP hidden widths", check=at_least(1, each=True))
    depth: Optional[int] = key(
        None,
        "MLP: depth hidden layers of model.width units, in place of hidden; ResNet: 6n+2",
        check=at_least(1, "model.hidden"),
    )
    width: int = key(100, "MLP: the hidden width when model.depth is set", check=at_least(1))
    residual: bool = key(
        False, "MLP: pre-activation skip connections h + W act(norm(h)) between equal widths"
    )
    channels: List[int] = key(
        [32, 64], "CNN: channels per conv block; ResNet: per stage", check=at_least(1, each=True)
    )
    activation: Activation = key(Activation.sigmoid, "the nonlinearity")
    init_std: Optional[float] = key(
        None,
        "weight init std (null: init_gain / sqrt(fan_in))",
        check=above(0, "init_gain/sqrt(fan_in)"),
    )
    init_gain: float = key(
        1.0, "with init_std null: 1 is LeCun's init, sqrt(2) He's (ReLU)", check=above(0)
    )
    dropout: float = key(0.0, "dropout after each hidden block", check=within(0, 1, "[)"))
    residual_init: ResidualInit = key(
        ResidualInit.none,
        "ResNet without normalization: skipinit (a scalar 0 ends each residual branch) or fixup"
        " (rescaled init, scalar biases and multipliers)",
    )


@dataclass
class NormConfig:
    kind: str = key("bn", "the normalization layer, from the registry (bnlab.layers.norms)")
    eps: float = key(1e-5, "added to the batch variance", check=above(0))
    momentum: float = key(
        0.1, "EMA weight of the newest batch (PyTorch's convention)", check=within(0, 1, "(]")
    )
    affine: bool = key(True, "learn gamma and beta")
    placement: Placement = key(Placement.before, "before (the paper) or after the nonlinearity")
    stats: Stats = key(Stats.ema, "inference statistics: ema, population (Algorithm 2), batch")
    noise: float = key(
        0.0,
        "> 0: noisy BN, a <- s*a + m after each norm, m ~ U(-noise, noise), s ~ U(1, 1+noise)",
        check=at_least(0, "0: no noise"),
    )
    sync: bool = key(
        False,
        "with trainer.data_parallel > 1: BN over every worker's slice together (norm=bn only)",
    )
    ghost_batch: Optional[int] = key(
        None,
        "ghost batch norm: normalize over runs of this many examples of each SGD batch "
        "(null: the whole batch)",
        check=at_least(2),
    )
    groups: int = key(4, "group: groups of features (channels) per example; divides each width")
    rmax: float = key(3.0, "batch_renorm: the final bound of r = sigma_B / sigma (>= 1)")
    dmax: float = key(5.0, "batch_renorm: the final bound of d = (mu_B - mu) / sigma (>= 0)")
    renorm_warmup: int = key(5000, "batch_renorm: steps over which rmax, dmax grow from 1, 0")


@dataclass
class OptimizerConfig:
    name: OptimizerName = key(OptimizerName.sgd, "the update rule (momentum: heavy-ball SGD)")
    lr: float = key(0.1, "learning rate", check=above(0))
    lr_grid: Optional[List[float]] = key(
        None,
        "plain SGD: these rates trained side by side as replicas, each rate's runs in lr=<rate>/,"
        " each as if run alone with optimizer.lr=<rate>",
    )
    momentum: float = key(0.9, "heavy-ball momentum of name=momentum", check=within(0, 1, "[)"))
    beta1: float = key(0.9, "Adam's beta1", check=within(0, 1, "[)"))
    beta2: float = key(0.999, "Adam's beta2", check=within(0, 1, "[)"))
    weight_decay: float = key(
        0.0, "L2 penalty (every parameter, gamma and beta too)", check=at_least(0)
    )


@dataclass
class TrainerConfig:
    steps: int = key(1000, "optimizer steps", check=above(0))
    epochs: Optional[float] = key(
        None, "if set, overrides steps: ceil(epochs * n_train / batch_size)", check=above(0)
    )
    batch_size: int = key(
        60, "mini-batch size (>= 2 where the norm uses batch statistics)", check=at_least(1)
    )
    eval_every: int = key(500, "evaluate every n steps (and at step 0 and the end)", check=above(0))
    log_every: int = key(100, "record the mean training loss every n steps", check=above(0))
    replicas: int = key(
        1, "train seeds seed..seed+K-1 together as one batched model", check=at_least(1)
    )
    eval_batch_size: int = key(
        10000, "examples per forward pass during evaluation", check=at_least(1)
    )
    probe_size: int = key(
        1000, "validation examples for the activation-input percentiles", check=at_least(1)
    )
    eval_splits: List[str] = key(
        ["val", "test"],
        "held-out splits of every evaluation (val, test); the last has both",
        check=Subset(("val", "test")),
    )
    eval_train: int = key(
        0, "> 0: also train/accuracy, train/loss_evalmode on n examples", check=at_least(0)
    )
    eval_trainmode: bool = key(False, "with BN, also val/*_trainmode: BN with batch statistics")
    shifts: List[str] = key(
        [],
        "at the end, test accuracy under these shifts (shift/*): contrast, brightness, noise, "
        "translate",
        check=Subset(SHIFT_KINDS),
    )
    shift_strengths: List[float] = key([0.25, 0.5, 1.0], "each shift's strengths, in (0, 1]")
    adapt_examples: List[int] = key(
        [16, 128, 1024, 10000],
        "with shifts and BN: test examples BN's statistics are re-estimated from (AdaBN)",
    )
    threads: Optional[int] = key(
        None, "torch threads (null: the launcher's share)", result=False, check=at_least(1)
    )
    compile: bool = key(
        False,
        "torch.compile the training step, once it equals the eager step on the next batch",
        result=False,
    )
    data_parallel: int = key(
        1,
        "workers (processes) that train the job together, each on 1/n of every batch",
        check=at_least(1),
    )
    probe_every: int = key(
        0,
        "> 0: ICS and loss-landscape probes every n steps (probe/*)",
        check=at_least(0, "0: no probes"),
    )
    grad_norm_every: int = key(
        0,
        "> 0: each layer's gradient norm every n steps (grad_norm/*)",
        check=at_least(0, "0: no gradient norms"),
    )
    hessian_every: int = key(
        0,
        "> 0: the training loss's top Hessian eigenvalue every n steps (probe/hessian_top)",
        check=at_least(0, "0: none"),
    )
    checkpoint_every: int = key(
        5000, "steps between checkpoints (0: on a signal and at the end)", check=at_least(0)
    )
    divergence_loss: float = key(
        1000.0, "a window's mean loss above this, or NaN/inf: diverged", check=above(0)
    )
    progress: bool = key(True, "a progress bar (when stderr is a terminal)", result=False)


@dataclass
class Config:
    name: str = key(
        "run",
        "results go to outputs/<name>/",
        result=False,
        check=Matches(r"[^/]+", "a non-empty folder name"),
    )
    seed: int = key(
        0,
        "replica r's initial weights and batch order use seed+r; dropout and BN noise draw "
        "from one generator seeded with seed",
    )
    device: str = key(
        "auto",
        "auto (cuda if present), cpu, cuda, cuda:N",
        result=False,
        check=Matches(r"auto|cpu|cuda(:\d+)?", "auto, cpu, cuda or cuda:N"),
    )
    data_dir: str = key("data", "where datasets are read (and downloaded)", result=False)
    rerun: bool = key(
        False, "train finished runs again (e.g. after the code changed)", result=False
    )
    target_accuracy: float = key(
        0.8, "'steps to reach' in the comparison table", check=within(0, 1, "(]")
    )
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    norm: NormConfig = field(default_factory=NormConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)


def hidden_widths(model: ModelConfig) -> list[int]:
    """The MLP's hidden widths: model.depth x [model.width] when depth is set, else hidden."""
    return [model.width] * model.depth if model.depth is not None else list(model.hidden)


def flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    """``{"norm": {"eps": 1e-5}}`` -> ``{"norm.eps": 1e-5}`` (the keys used on the command line)."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def config_dict(cfg: Config) -> dict[str, Any]:
    """The nested config as plain YAML-able values (Enums as their names)."""

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value.value if isinstance(value, Enum) else value

    return plain(asdict(cfg))


def non_result_keys(schema: type = Config, prefix: str = "") -> list[str]:
    """The dotted keys marked ``result=False`` in the schema (the one list of them)."""
    keys, types = [], get_type_hints(schema)
    for f in fields(schema):
        if is_dataclass(types[f.name]):
            keys += non_result_keys(types[f.name], f"{prefix}{f.name}.")
        elif f.metadata.get("result", True) is False:
            keys.append(f"{prefix}{f.name}")
    return keys


def unnamed_keys() -> list[str]:
    """The overrides a job's folder is not named by: Hydra's ``experiment`` (its ``name`` names
    the folder above) and the keys marked ``result=False``."""
    return ["experiment", *non_result_keys()]


def to_config(cfg: DictConfig | Config) -> Config:
    """The typed :class:`Config` of a composed DictConfig (validated), or ``cfg`` itself."""
    if not isinstance(cfg, Config):
        cfg = OmegaConf.to_object(cfg)
    validate(cfg)
    return cfg


def lr_grid_checks(cfg: Config) -> list[tuple[bool, str, str, Any]]:
    """``optimizer.lr_grid`` trains its rates as replicas with one fused SGD step
    (:func:`bnlab.training.fastpaths.replica_sgd_step`): plain SGD only, and no probe that needs one
    rate (the loss-landscape probe steps along the gradient by ``lr``)."""
    grid, o = cfg.optimizer.lr_grid, cfg.optimizer
    if grid is None:
        return []
    return [
        (len(grid) > 0, "optimizer.lr_grid", "must list at least one rate, or be null", grid),
        (all(lr > 0 for lr in grid), "optimizer.lr_grid", "every rate must be > 0", grid),
        (len(set(grid)) == len(grid), "optimizer.lr_grid", "has a rate twice", grid),
        (
            o.name is OptimizerName.sgd and o.weight_decay == 0,
            "optimizer.lr_grid",
            "needs optimizer=sgd with weight_decay=0 (plain SGD)",
            f"{o.name.value}, weight_decay={o.weight_decay}",
        ),
        (
            cfg.trainer.probe_every == 0,
            "optimizer.lr_grid",
            "cannot run with trainer.probe_every > 0 (its landscape probe needs one rate)",
            grid,
        ),
    ]


def data_parallel_checks(cfg: Config) -> list[tuple[bool, str, str, Any]]:
    """W workers split every batch (:mod:`bnlab.training.parallel`): W divides the batch, and
    BN gets at least 2 examples a worker; the probes, the compiled step and ghost batches run
    in one process only. ``norm.sync`` is bnlab's BN's."""
    t, workers = cfg.trainer, cfg.trainer.data_parallel
    per_worker = t.batch_size // max(workers, 1)
    batch_norm = get_norm(cfg.norm.kind).batch_statistics
    one_process = {
        "trainer.compile": t.compile,
        "trainer.probe_every": t.probe_every,
        "trainer.grad_norm_every": t.grad_norm_every,
        "trainer.hessian_every": t.hessian_every,
        "norm.ghost_batch": cfg.norm.ghost_batch,
    }
    checks = [
        (
            not cfg.norm.sync or cfg.norm.kind == "bn",
            "norm.sync",
            "synchronizes bnlab's BN: it needs norm=bn",
            f"norm.kind={cfg.norm.kind}",
        ),
    ]
    if workers <= 1:  # (workers < 1: its own check says so)
        return checks
    checks.append(
        (
            t.batch_size % workers == 0 and (per_worker >= 2 or not batch_norm),
            "trainer.data_parallel",
            f"must divide trainer.batch_size ({t.batch_size}) into slices of at least 2 examples "
            "for a norm with batch statistics",
            workers,
        )
    )
    checks += [
        (
            not value,
            key,
            "runs in one process only: set it off with trainer.data_parallel > 1",
            value,
        )
        for key, value in one_process.items()
    ]
    return checks


def shift_checks(cfg: Config) -> list[tuple[bool, str, str, Any]]:
    """The shifts' strengths and AdaBN's example counts (:mod:`bnlab.training.shifts`)."""
    t = cfg.trainer
    return [
        (
            all(0 < s <= 1 for s in t.shift_strengths),
            "trainer.shift_strengths",
            "must each be in (0, 1]",
            t.shift_strengths,
        ),
        (
            all(n >= 2 for n in t.adapt_examples),
            "trainer.adapt_examples",
            "must each be >= 2 (BN's statistics need two examples)",
            t.adapt_examples,
        ),
    ]


def declared_checks(node: Any, prefix: str = "") -> list[tuple[bool, str, str, Any]]:
    """(holds, dotted key, rule, value) for every key of ``node`` that declares a ``check``
    (a null value of an Optional key holds)."""
    out, types = [], get_type_hints(type(node))
    for f in fields(node):
        value = getattr(node, f.name)
        if is_dataclass(types[f.name]):
            out += declared_checks(value, f"{prefix}{f.name}.")
            continue
        check = f.metadata.get("check")
        if check is None:
            continue
        nullable = type(None) in get_args(types[f.name])
        if value is None and nullable:
            continue
        shown = list(value) if isinstance(value, (list, tuple)) else value
        out.append((check.holds(value), f"{prefix}{f.name}", check.text(nullable), shown))
    return out


def validate(cfg: Config) -> None:
    """Each key's declared check (:func:`declared_checks`), then the checks that involve
    several keys; raise ConfigError naming the key."""
    checks = [*declared_checks(cfg), *lr_grid_checks(cfg), *shift_checks(cfg)]
    for ok, key, rule, value in checks + data_parallel_checks(cfg):
        if not ok:
            raise ConfigError(f"{key} {rule} (got {value!r})")
    k = cfg.dataset.classes_per_batch
    if k is not None and not (1 <= k <= 10 and cfg.trainer.batch_size % k == 0):
        raise ConfigError(
            f"dataset.classes_per_batch={k} must be in 1..10 and divide trainer.batch_size "
            f"({cfg.trainer.batch_size})"
        )
    model, norm = get_model(cfg.model.name), get_norm(cfg.norm.kind)
    if cfg.dataset.augment and model.flat_input:
        raise ConfigError(
            f"dataset.augment crops and flips images: model={cfg.model.name} reads them flat "
            "(use a convnet: model=cnn, resnet or vgg)"
        )
    if norm.batch_statistics and cfg.trainer.batch_size < 2:
        raise ConfigError(
            f"trainer.batch_size must be >= 2 when the normalization trains on batch statistics "
            f"(got {cfg.trainer.batch_size} with norm.kind={cfg.norm.kind})"
        )
    ghost = cfg.norm.ghost_batch
    if ghost is not None and not (norm.batch_statistics and cfg.trainer.batch_size % ghost == 0):
        raise ConfigError(
            f"norm.ghost_batch={ghost} must divide trainer.batch_size ({cfg.trainer.batch_size}) "
            f"and needs a norm with batch statistics (got norm.kind={cfg.norm.kind})"
        )
    for plugin in (model, norm):  # each one's own settings (model.depth, norm.groups, ...)
        check = getattr(plugin, "check_config", None)
        if check is not None:
            check(cfg)
