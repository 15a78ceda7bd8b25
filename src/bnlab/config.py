"""The configuration schema: typed dataclasses registered with Hydra's ConfigStore.

Types and allowed values are enforced by Hydra/OmegaConf when the YAML in ``conf/`` and the
command line are merged (a wrong type, an unknown key or a value outside an Enum fails with
Hydra's one-line message naming the key). :func:`validate` adds the range checks that types
cannot express and raises :class:`~bnlab.errors.ConfigError` naming the key.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, is_dataclass
from enum import Enum
from pathlib import Path
from typing import Any, List, Optional, get_type_hints

import yaml
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from bnlab.errors import ConfigError
from bnlab.norms import get_norm


class DatasetName(str, Enum):
    fashion_mnist = "fashion_mnist"
    mnist = "mnist"
    cifar10 = "cifar10"
    synthetic = "synthetic"


class ModelName(str, Enum):
    mlp = "mlp"
    cnn = "cnn"


class Activation(str, Enum):
    sigmoid = "sigmoid"
    relu = "relu"
    tanh = "tanh"


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


def key(default: Any, help: str, result: bool = True) -> Any:
    """A schema field: its default, what it means (docs/reference.md is made from these), and
    whether it changes a run's numbers (``result=False``: where results go, how fast or how
    verbosely it runs; a finished run is reused when only such keys differ, and they are left
    out of run folders' names)."""
    metadata = {"help": help, "result": result}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class DatasetConfig:
    name: DatasetName = key(DatasetName.fashion_mnist, "fashion_mnist, mnist, cifar10, synthetic")
    val_size: float = key(5000, "held-out validation examples (a number < 1 is a fraction)")
    standardize: bool = key(False, "subtract the training mean pixel, divide by its std")
    train_subset: Optional[int] = key(None, "train on the first n examples only (null: all)")
    split_seed: int = key(0, "seed of the hold-out split and the synthetic data (not the run's)")
    input_scale: float = key(1.0, "multiply every input (small: inputs whose variance is near eps)")
    synthetic_train: int = key(6000, "training examples of the synthetic dataset")
    synthetic_test: int = key(1000, "test examples of the synthetic dataset")
    classes_per_batch: Optional[int] = key(
        None, "non-i.i.d. training batches: each from this many classes only (null: i.i.d.)"
    )


@dataclass
class ModelConfig:
    name: ModelName = key(ModelName.mlp, "mlp or cnn")
    hidden: List[int] = key([100, 100, 100], "MLP hidden widths")
    depth: Optional[int] = key(
        None, "MLP: depth hidden layers of model.width units, in place of hidden"
    )
    width: int = key(100, "MLP: the hidden width when model.depth is set")
    residual: bool = key(
        False, "MLP: pre-activation skip connections h + W act(norm(h)) between equal widths"
    )
    channels: List[int] = key([32, 64], "CNN channels per conv block")
    activation: Activation = key(Activation.sigmoid, "sigmoid, relu, tanh")
    init_std: Optional[float] = key(None, "weight init std (null: init_gain / sqrt(fan_in))")
    init_gain: float = key(1.0, "with init_std null: 1 is LeCun's init, sqrt(2) He's (ReLU)")
    dropout: float = key(0.0, "dropout after each hidden block")


@dataclass
class NormConfig:
    kind: str = key("bn", "a normalization of the registry (bnlab.norms): none, bn, torch, ...")
    eps: float = key(1e-5, "added to the batch variance")
    momentum: float = key(0.1, "EMA weight of the newest batch (PyTorch's convention)")
    affine: bool = key(True, "learn gamma and beta")
    placement: Placement = key(Placement.before, "before (the paper) or after the nonlinearity")
    stats: Stats = key(Stats.ema, "inference statistics: ema, population (Algorithm 2), batch")
    noise: float = key(
        0.0, "> 0: noisy BN, a <- s*a + m after each norm, m ~ U(-noise, noise), s ~ U(1, 1+noise)"
    )
    groups: int = key(4, "group: groups of features (channels) per example; divides each width")
    rmax: float = key(3.0, "batch_renorm: the final bound of r = sigma_B / sigma (>= 1)")
    dmax: float = key(5.0, "batch_renorm: the final bound of d = (mu_B - mu) / sigma (>= 0)")
    renorm_warmup: int = key(5000, "batch_renorm: steps over which rmax, dmax grow from 1, 0")


@dataclass
class OptimizerConfig:
    name: OptimizerName = key(OptimizerName.sgd, "sgd, momentum, adam")
    lr: float = key(0.1, "learning rate")
    lr_grid: Optional[List[float]] = key(
        None,
        "plain SGD: these rates trained side by side as replicas, each rate's runs in lr=<rate>/,"
        " each as if run alone with optimizer.lr=<rate>",
    )
    momentum: float = key(0.9, "heavy-ball momentum of name=momentum")
    beta1: float = key(0.9, "Adam's beta1")
    beta2: float = key(0.999, "Adam's beta2")
    weight_decay: float = key(0.0, "L2 penalty (every parameter, gamma and beta too)")


@dataclass
class TrainerConfig:
    steps: int = key(1000, "optimizer steps")
    epochs: Optional[float] = key(
        None, "if set, overrides steps: ceil(epochs * n_train / batch_size)"
    )
    batch_size: int = key(60, "mini-batch size (>= 2 where the norm uses batch statistics)")
    eval_every: int = key(500, "evaluate every n steps (and at step 0 and the end)")
    log_every: int = key(100, "record the mean training loss every n steps")
    replicas: int = key(1, "train seeds seed..seed+K-1 together as one batched model")
    eval_batch_size: int = key(10000, "examples per forward pass during evaluation")
    probe_size: int = key(1000, "validation examples for the activation-input percentiles")
    eval_splits: List[str] = key(
        ["val", "test"], "held-out splits of every evaluation (val, test); the last has both"
    )
    eval_train: int = key(0, "> 0: also train/accuracy, train/loss_evalmode on n examples")
    eval_trainmode: bool = key(False, "with BN, also val/*_trainmode: BN with batch statistics")
    threads: Optional[int] = key(None, "torch threads (null: the launcher's share)", result=False)
    compile: bool = key(
        False,
        "torch.compile the training step, once it equals the eager step on the next batch",
        result=False,
    )
    probe_every: int = key(0, "> 0: ICS and loss-landscape probes every n steps (probe/*)")
    grad_norm_every: int = key(0, "> 0: each layer's gradient norm every n steps (grad_norm/*)")
    checkpoint_every: int = key(5000, "steps between checkpoints (0: on a signal and at the end)")
    divergence_loss: float = key(1000.0, "a window's mean loss above this, or NaN/inf: diverged")
    progress: bool = key(True, "a progress bar (when stderr is a terminal)", result=False)


@dataclass
class Config:
    name: str = key("run", "results go to outputs/<name>/", result=False)
    seed: int = key(
        0,
        "replica r's initial weights and batch order use seed+r; dropout and BN noise draw "
        "from one generator seeded with seed",
    )
    device: str = key("auto", "auto (cuda if present), cpu, cuda, cuda:N", result=False)
    data_dir: str = key("data", "where datasets are read (and downloaded)", result=False)
    rerun: bool = key(
        False, "train finished runs again (e.g. after the code changed)", result=False
    )
    target_accuracy: float = key(0.8, "'steps to reach' in the comparison table")
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    norm: NormConfig = field(default_factory=NormConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)


def hidden_widths(model: ModelConfig) -> list[int]:
    """The MLP's hidden widths: model.depth x [model.width] when depth is set, else hidden."""
    return [model.width] * model.depth if model.depth is not None else list(model.hidden)


def reference(schema: type = Config, prefix: str = "") -> list[tuple[str, Any, str]]:
    """(dotted key, default, meaning) of every key of the schema, in order."""
    rows, types = [], get_type_hints(schema)
    instance = schema()
    for f in fields(schema):
        if is_dataclass(types[f.name]):
            rows += reference(types[f.name], f"{prefix}{f.name}.")
        else:
            default = getattr(instance, f.name)
            rows.append(
                (f"{prefix}{f.name}", getattr(default, "value", default), f.metadata["help"])
            )
    return rows


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


def schema_type(key: str, schema: type = Config) -> Any:
    """The type of the dotted ``key`` in the schema (a dataclass for a section such as
    ``trainer``, ``schema`` itself for ``""``), or None where the schema has no such key."""
    for name in filter(None, key.split(".")):
        hints = get_type_hints(schema) if is_dataclass(schema) else {}
        if name not in hints:
            return None
        schema = hints[name]
    return schema


def group_options(conf: Path, group: str) -> list[str]:
    """The options of the config group ``group`` (``norm``, ``experiment``): the names of the
    YAML files in ``conf/<group>/``, sorted."""
    return sorted(p.stem for p in (Path(conf) / group).glob("*.yaml"))


def group_keys(conf: Path, group: str) -> list[str]:
    """The dotted keys that some option of the group ``group`` of the schema sets (``norm``:
    norm.kind, norm.affine, norm.noise), in schema order: what choosing another option of the
    group can change."""
    keys: set[str] = set()
    for option in group_options(conf, group):
        tree = yaml.safe_load((Path(conf) / group / f"{option}.yaml").read_text()) or {}
        tree.pop("defaults", None)
        keys.update(flatten(tree, f"{group}."))
    return [key for key, _, _ in reference() if key in keys]


def non_result_keys(schema: type = Config, prefix: str = "") -> list[str]:
    """The dotted keys marked ``result=False`` in the schema (the one list of them)."""
    keys, types = [], get_type_hints(schema)
    for f in fields(schema):
        if is_dataclass(types[f.name]):
            keys += non_result_keys(types[f.name], f"{prefix}{f.name}.")
        elif f.metadata.get("result", True) is False:
            keys.append(f"{prefix}{f.name}")
    return keys


def register_configs() -> None:
    """Register the schema as ``bnlab_schema`` (the first entry of conf/config.yaml's defaults)
    and the resolvers conf/config.yaml uses: ``bnlab.dirname`` (a job's folder name) and
    ``bnlab.non_result_keys`` (left out of that name, with Hydra's own ``experiment``)."""
    from bnlab.runfolder import folder_name

    ConfigStore.instance().store(name="bnlab_schema", node=Config)
    OmegaConf.register_new_resolver("bnlab.dirname", folder_name, replace=True)
    OmegaConf.register_new_resolver("bnlab.non_result_keys", unnamed_keys, replace=True)


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
    (:func:`bnlab.fastpaths.replica_sgd_step`): plain SGD only, and no probe that needs one
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


def validate(cfg: Config) -> None:
    """Range checks that types cannot express; raise ConfigError naming the key."""
    checks = [
        (cfg.norm.eps > 0, "norm.eps", "must be > 0", cfg.norm.eps),
        (0 < cfg.norm.momentum <= 1, "norm.momentum", "must be in (0, 1]", cfg.norm.momentum),
        (cfg.norm.noise >= 0, "norm.noise", "must be >= 0 (0: no noise)", cfg.norm.noise),
        (cfg.optimizer.lr > 0, "optimizer.lr", "must be > 0", cfg.optimizer.lr),
        (
            0 <= cfg.optimizer.momentum < 1,
            "optimizer.momentum",
            "must be in [0, 1)",
            cfg.optimizer.momentum,
        ),
        (0 <= cfg.optimizer.beta1 < 1, "optimizer.beta1", "must be in [0, 1)", cfg.optimizer.beta1),
        (0 <= cfg.optimizer.beta2 < 1, "optimizer.beta2", "must be in [0, 1)", cfg.optimizer.beta2),
        (
            cfg.optimizer.weight_decay >= 0,
            "optimizer.weight_decay",
            "must be >= 0",
            cfg.optimizer.weight_decay,
        ),
        (cfg.trainer.steps > 0, "trainer.steps", "must be > 0", cfg.trainer.steps),
        (
            cfg.trainer.epochs is None or cfg.trainer.epochs > 0,
            "trainer.epochs",
            "must be > 0 or null",
            cfg.trainer.epochs,
        ),
        (cfg.trainer.eval_train >= 0, "trainer.eval_train", "must be >= 0", cfg.trainer.eval_train),
        (
            set(cfg.trainer.eval_splits) <= {"val", "test"},
            "trainer.eval_splits",
            "may list val and test only",
            list(cfg.trainer.eval_splits),
        ),
        (
            cfg.dataset.input_scale > 0,
            "dataset.input_scale",
            "must be > 0",
            cfg.dataset.input_scale,
        ),
        (cfg.trainer.batch_size >= 1, "trainer.batch_size", "must be >= 1", cfg.trainer.batch_size),
        (cfg.trainer.eval_every > 0, "trainer.eval_every", "must be > 0", cfg.trainer.eval_every),
        (cfg.trainer.log_every > 0, "trainer.log_every", "must be > 0", cfg.trainer.log_every),
        (cfg.trainer.replicas >= 1, "trainer.replicas", "must be >= 1", cfg.trainer.replicas),
        (
            cfg.trainer.probe_every >= 0,
            "trainer.probe_every",
            "must be >= 0 (0: no probes)",
            cfg.trainer.probe_every,
        ),
        (
            cfg.trainer.grad_norm_every >= 0,
            "trainer.grad_norm_every",
            "must be >= 0 (0: no gradient norms)",
            cfg.trainer.grad_norm_every,
        ),
        (
            cfg.trainer.eval_batch_size >= 1,
            "trainer.eval_batch_size",
            "must be >= 1",
            cfg.trainer.eval_batch_size,
        ),
        (cfg.trainer.probe_size >= 1, "trainer.probe_size", "must be >= 1", cfg.trainer.probe_size),
        (
            cfg.trainer.checkpoint_every >= 0,
            "trainer.checkpoint_every",
            "must be >= 0",
            cfg.trainer.checkpoint_every,
        ),
        (
            cfg.trainer.divergence_loss > 0,
            "trainer.divergence_loss",
            "must be > 0",
            cfg.trainer.divergence_loss,
        ),
        (
            cfg.trainer.threads is None or cfg.trainer.threads >= 1,
            "trainer.threads",
            "must be >= 1 or null",
            cfg.trainer.threads,
        ),
        (0 <= cfg.model.dropout < 1, "model.dropout", "must be in [0, 1)", cfg.model.dropout),
        (
            cfg.model.init_std is None or cfg.model.init_std > 0,
            "model.init_std",
            "must be > 0 or null (init_gain/sqrt(fan_in))",
            cfg.model.init_std,
        ),
        (cfg.model.init_gain > 0, "model.init_gain", "must be > 0", cfg.model.init_gain),
        (
            cfg.model.depth is None or cfg.model.depth >= 1,
            "model.depth",
            "must be >= 1 or null (model.hidden)",
            cfg.model.depth,
        ),
        (cfg.model.width >= 1, "model.width", "must be >= 1", cfg.model.width),
        (
            len(cfg.model.hidden) > 0 and min(cfg.model.hidden) >= 1,
            "model.hidden",
            "must be a non-empty list of positive widths",
            list(cfg.model.hidden),
        ),
        (
            len(cfg.model.channels) > 0 and min(cfg.model.channels) >= 1,
            "model.channels",
            "must be a non-empty list of positive channel counts",
            list(cfg.model.channels),
        ),
        (
            cfg.dataset.val_size > 0,
            "dataset.val_size",
            "must be > 0 (a fraction < 1 or a count)",
            cfg.dataset.val_size,
        ),
        (
            cfg.dataset.train_subset is None or cfg.dataset.train_subset >= 1,
            "dataset.train_subset",
            "must be >= 1 or null",
            cfg.dataset.train_subset,
        ),
        *lr_grid_checks(cfg),
        (0 < cfg.target_accuracy <= 1, "target_accuracy", "must be in (0, 1]", cfg.target_accuracy),
        (
            cfg.device == "auto" or cfg.device == "cpu" or cfg.device.startswith("cuda"),
            "device",
            "must be auto, cpu, cuda or cuda:N",
            cfg.device,
        ),
        (
            bool(cfg.name) and "/" not in cfg.name,
            "name",
            "must be a non-empty folder name",
            cfg.name,
        ),
    ]
    for ok, key, rule, value in checks:
        if not ok:
            raise ConfigError(f"{key} {rule} (got {value!r})")
    k = cfg.dataset.classes_per_batch
    if k is not None and not (1 <= k <= 10 and cfg.trainer.batch_size % k == 0):
        raise ConfigError(
            f"dataset.classes_per_batch={k} must be in 1..10 and divide trainer.batch_size "
            f"({cfg.trainer.batch_size})"
        )
    if cfg.model.depth is not None and list(cfg.model.hidden) != ModelConfig().hidden:
        raise ConfigError(
            f"model.depth={cfg.model.depth} builds the hidden layers from model.width; leave "
            f"model.hidden at its default (got {list(cfg.model.hidden)})"
        )
    if (cfg.model.depth is not None or cfg.model.residual) and cfg.model.name.value != "mlp":
        raise ConfigError("model.depth and model.residual apply to model=mlp only")
    norm = get_norm(cfg.norm.kind)
    if norm.batch_statistics and cfg.trainer.batch_size < 2:
        raise ConfigError(
            f"trainer.batch_size must be >= 2 when the normalization trains on batch statistics "
            f"(got {cfg.trainer.batch_size} with norm.kind={cfg.norm.kind})"
        )
    check = getattr(norm, "check_config", None)
    if check is not None:
        check(cfg)
