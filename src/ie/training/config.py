"""The training config: one dataclass read from YAML, every field overridable on the command line
(``--field value``, HfArgumentParser), and the precedence of the launcher's mixed precision."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ie.model.encoder import EncoderSpec

if TYPE_CHECKING:
    from transformers import HfArgumentParser

METRICS = ("entity_f1", "trigger_f1", "span_f1", "relation_f1", "combined_f1")
PRECISIONS = ("no", "fp16", "bf16")
LAUNCHER_PRECISION_ENV = "ACCELERATE_MIXED_PRECISION"  # what `accelerate launch` exports

# The from-scratch encoder's sizes: config key -> EncoderSpec field. EncoderSpec is their one home
# (defaults included); TrainConfig only names them, so YAML keys and --scratch_* overrides stay.
SCRATCH_FIELDS = {
    "scratch_vocab_size": "vocab_size",
    "scratch_hidden_size": "hidden_size",
    "scratch_num_layers": "num_hidden_layers",
    "scratch_num_heads": "num_attention_heads",
    "scratch_intermediate_size": "intermediate_size",
    "scratch_hidden_dropout": "hidden_dropout_prob",
    "scratch_attention_dropout": "attention_probs_dropout_prob",
}


def _scratch(key: str) -> Any:
    """A ``scratch_*`` field whose default is :class:`EncoderSpec`'s."""
    name = SCRATCH_FIELDS[key]
    return field(default=getattr(EncoderSpec, name), metadata={"help": f"From-scratch encoder: {name}."})


@dataclass
class TrainConfig:
    """Everything a training run needs; YAML keys are these field names."""

    output_dir: str = field(default="", metadata={"help": "Where the final model, checkpoints and card go."})
    overwrite_output_dir: bool = field(
        default=False,
        metadata={
            "help": "Clear a used output_dir (its checkpoints, model and results; the feature cache stays) "
            "and train from scratch. Without it a used output_dir is refused unless resuming."
        },
    )
    # -- encoder ---------------------------------------------------------------------------
    model_name_or_path: str = field(
        default="aubmindlab/bert-base-arabertv02",
        metadata={
            "help": "Hub id or local dir of a BERT-family encoder (ignored with encoder_from_scratch)."
        },
    )
    encoder_from_scratch: bool = field(
        default=False,
        metadata={"help": "Build a random-init BERT + WordPiece tokenizer from the training texts (CPU/CI)."},
    )
    scratch_vocab_size: int = _scratch("scratch_vocab_size")
    scratch_hidden_size: int = _scratch("scratch_hidden_size")
    scratch_num_layers: int = _scratch("scratch_num_layers")
    scratch_num_heads: int = _scratch("scratch_num_heads")
    scratch_intermediate_size: int = _scratch("scratch_intermediate_size")
    scratch_hidden_dropout: float = _scratch("scratch_hidden_dropout")
    scratch_attention_dropout: float = _scratch("scratch_attention_dropout")
    # -- data ------------------------------------------------------------------------------
    train_data: list[str] = field(
        default_factory=lambda: ["data/annotations/*.json"],
        metadata={"help": "Label Studio JSON exports (globs allowed)."},
    )
    extra_train_data: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Exports (globs allowed) added to the training set only, never evaluated: e.g. the "
            "synthetic corpus; with evaluate.py --cv, added to every fold's training articles. Given with no "
            "value on the command line: none (train_data alone)."
        },
    )
    eval_data: list[str] | None = field(
        default=None,
        metadata={"help": "Held-out exports; their articles are removed from the training set."},
    )
    eval_ratio: float = field(
        default=0.0,
        metadata={"help": "Without eval_data: hold out this fraction of articles (0 = evaluate on train)."},
    )
    validation_articles: int = field(
        default=0,
        metadata={
            "help": "Hold out this many articles of extra_train_data (chosen by seed) to choose the best "
            "epoch and stop early on; they do not train. Excludes eval_data and eval_ratio. With "
            "evaluate.py --cv every fold holds out the same ones, so all its training articles train."
        },
    )
    token_dropout: float = field(
        default=0.0,
        metadata={
            "help": "Training only: replace this fraction of input word pieces by [UNK] (labels kept), "
            "so the model learns to tag words it has no piece for from their context; 0 = off."
        },
    )
    augment_factor: int = field(
        default=0,
        metadata={
            "help": "Augmented copies of each training article (mention replacement, number forms: "
            "ie.training.augment); 0 = off. Never applied to evaluation articles."
        },
    )
    window_length: int = field(default=512, metadata={"help": "Tokens per window, special tokens included."})
    window_stride: int = field(
        default=128, metadata={"help": "Overlap between consecutive windows (tokens)."}
    )
    # -- optimisation ----------------------------------------------------------------------
    num_train_epochs: int = 3
    max_steps: int = field(
        default=-1, metadata={"help": "Optimizer steps; overrides num_train_epochs if > 0."}
    )
    per_device_train_batch_size: int = 8
    per_device_eval_batch_size: int = 16
    gradient_accumulation_steps: int = 1
    learning_rate: float = 5e-5
    head_learning_rate: float | None = field(
        default=None, metadata={"help": "Learning rate of the new heads (default: learning_rate)."}
    )
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    lr_scheduler_type: str = "linear"
    max_grad_norm: float = 1.0
    classifier_dropout: float = 0.1
    relation_hidden_size: int = 512
    relation_loss_weight: float = 1.0
    mixed_precision: str | None = field(
        default=None,
        metadata={
            "help": "no, fp16 or bf16. Unset: the launcher's (accelerate launch --mixed_precision), else "
            "no; set here and at the launcher, the two must agree (see resolve_mixed_precision)."
        },
    )
    seed: int = 42
    # -- evaluation, checkpoints, logging --------------------------------------------------
    metric_for_best_model: str = field(
        default="combined_f1", metadata={"help": f"One of {', '.join(METRICS)}."}
    )
    early_stopping_patience: int = field(
        default=0,
        metadata={
            "help": "Stop after this many epochs in a row without a better metric_for_best_model on the "
            "eval split; the best epoch is the model either way. 0 = train all epochs."
        },
    )
    save_steps: int = field(
        default=0, metadata={"help": "Also checkpoint every N optimizer steps (0: epochs only)."}
    )
    save_total_limit: int = field(default=2, metadata={"help": "Step checkpoints kept (the newest)."})
    resume_from_checkpoint: str | None = field(
        default=None, metadata={"help": "A checkpoint dir, or 'latest' in output_dir/checkpoints."}
    )
    report_to: list[str] = field(
        default_factory=list, metadata={"help": "accelerate trackers: tensorboard, wandb, mlflow, ..."}
    )
    project_name: str = "ie-joint"
    logging_steps: int = 10
    cache_dir: str | None = field(
        default=None, metadata={"help": "Feature and scratch-encoder cache (default: output_dir/cache)."}
    )
    dataloader_num_workers: int = 0

    def validate(self) -> None:
        problems = []
        if not self.output_dir:
            problems.append("output_dir is required")
        if self.overwrite_output_dir and self.resume_from_checkpoint:
            problems.append(
                "overwrite_output_dir (start over) and resume_from_checkpoint (continue) exclude each other"
            )
        if self.mixed_precision not in (None, *PRECISIONS):
            problems.append(f"mixed_precision must be no, fp16 or bf16, not {self.mixed_precision!r}")
        if self.metric_for_best_model not in METRICS:
            problems.append(f"metric_for_best_model must be one of {', '.join(METRICS)}")
        if not 0.0 <= self.eval_ratio < 1.0:
            problems.append("eval_ratio must be in [0, 1)")
        if self.augment_factor < 0:
            problems.append("augment_factor must be >= 0")
        if self.validation_articles < 0:
            problems.append("validation_articles must be >= 0")
        if self.validation_articles > 0 and (self.eval_data or self.eval_ratio > 0):
            problems.append(
                "validation_articles (epochs chosen on held-out extra_train_data) excludes eval_data and "
                "eval_ratio (epochs chosen on held-out train_data): give one"
            )
        if self.validation_articles > 0 and not self.extra_train_data:
            problems.append("validation_articles holds out articles of extra_train_data, which is empty")
        if self.early_stopping_patience < 0:
            problems.append("early_stopping_patience must be >= 0")
        if not 0.0 <= self.token_dropout < 1.0:
            problems.append("token_dropout must be in [0, 1)")
        if self.num_train_epochs < 1 and self.max_steps <= 0:
            problems.append("num_train_epochs must be >= 1 (or set max_steps)")
        for name in (
            "per_device_train_batch_size",
            "per_device_eval_batch_size",
            "gradient_accumulation_steps",
        ):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1")
        if problems:
            raise ValueError("invalid training config: " + "; ".join(problems))


def resolve_mixed_precision(configured: str | None, environ: Mapping[str, str]) -> str:
    """The run's precision. The training config (YAML or a ``train.py`` override) decides; the
    launcher's ``--mixed_precision`` (``ACCELERATE_MIXED_PRECISION``) fills in when the config
    leaves it unset, and a launcher fp16/bf16 that differs from the config is an error, never a
    silent choice. A launcher ``no`` never conflicts: ``accelerate launch`` exports ``no`` when it
    is given no ``--mixed_precision`` (and no accelerate config file sets one), so it cannot be told
    apart from an explicit ``--mixed_precision no``; to turn a bf16 config off, override it on the
    ``train.py`` side (``--mixed_precision no``)."""
    launcher = environ.get(LAUNCHER_PRECISION_ENV, "").strip().lower() or None
    if launcher is not None and launcher not in PRECISIONS:
        raise ValueError(
            f"{LAUNCHER_PRECISION_ENV}={launcher} (accelerate launch --mixed_precision) is not one of "
            f"{', '.join(PRECISIONS)}"
        )
    if configured is None:
        return launcher or "no"
    if launcher not in (None, "no", configured):
        raise ValueError(
            f"accelerate launch --mixed_precision {launcher} conflicts with mixed_precision: {configured} "
            f"in the training config; give one value (drop the launcher flag, or pass --mixed_precision "
            f"{launcher} to train.py)"
        )
    return configured


# List fields a command line may empty: ``--extra_train_data`` with no value trains on train_data alone
# (a seeds-only run of a config that names the synthetic corpus).
_MAY_BE_EMPTY = ("extra_train_data",)


def config_parser(**kwargs: Any) -> HfArgumentParser:
    """The parser of every config field (``--field value``), as ``train.py --help`` prints it."""
    from transformers import HfArgumentParser

    parser = HfArgumentParser(TrainConfig, **kwargs)
    for name in _MAY_BE_EMPTY:  # HfArgumentParser gives every list nargs="+"; argparse has no public setter
        parser._option_string_actions[f"--{name}"].nargs = "*"
    return parser


def load_config(path: str | os.PathLike[str] | None, overrides: Sequence[str] | None = None) -> TrainConfig:
    """YAML file → :class:`TrainConfig`, then ``--field value`` overrides (HfArgumentParser)."""
    import yaml

    values: dict[str, Any] = {}
    if path is not None:
        try:
            values = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            raise ValueError(f"{path}: config file not found") from None
        except yaml.YAMLError as e:
            raise ValueError(f"{path}: not valid YAML: {e}") from None
        if not isinstance(values, dict):
            raise ValueError(f"{path}: a config must be a YAML mapping of field: value")
        known = {f.name for f in fields(TrainConfig)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{path}: unknown config key(s) {', '.join(unknown)}")
    parser = config_parser()
    # YAML values become argparse defaults: strings get converted by each field's type, like CLI values.
    parser.set_defaults(**{k: (str(v) if isinstance(v, float) else v) for k, v in values.items()})
    (cfg,) = parser.parse_args_into_dataclasses(args=list(overrides or []))
    cfg.validate()
    return cfg


def scratch_encoder_spec(cfg: TrainConfig) -> EncoderSpec:
    """The from-scratch encoder a config's ``scratch_*`` fields describe."""
    sizes = {spec: getattr(cfg, key) for key, spec in SCRATCH_FIELDS.items()}
    return EncoderSpec(**sizes, max_position_embeddings=max(512, cfg.window_length), seed=cfg.seed)
