"""Fine-tuning the joint model with ``accelerate``: one code path for one CPU and for many GPUs.

``python train.py --config configs/cpu-tiny.yaml --output_dir DIR`` and the same line under
``accelerate launch`` run :func:`train`. The config is a dataclass read from YAML, any field
overridable on the command line. Checkpoints (model, optimizer, scheduler, RNG states with
``accelerator.save_state``; the trainer state with the dataloader position as JSON) are written into
a temp dir renamed into place, so ``--resume_from_checkpoint latest`` after a kill continues to the
same result as an uninterrupted run. Resuming unpickles nothing that could run code: the trainer
state is read from JSON and everything accelerate loads goes through ``torch.load(weights_only=True)``.
One run owns ``output_dir`` (:func:`ie.core.fileio.output_lock`); a used one is refused unless the run
resumes it or ``overwrite_output_dir`` clears it.

The best epoch (by ``metric_for_best_model`` on the eval split) becomes the
final model in ``output_dir``, with its tokenizer and a model card.
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import math
import os
import pickle
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field, fields, replace
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import BatchSampler, DataLoader, SequentialSampler

from ie.core.document import Document
from ie.core.fileio import _UMASK, OutputLocked, atomic_write_json, atomic_write_text, output_lock
from ie.core.schema import SCHEMA
from ie.core.scoring import exact_match_scores
from ie.model.encoder import EncoderSpec, build_encoder
from ie.model.features import FEATURES_VERSION, Coverage, Featurizer, collate
from ie.model.modeling import JointModel, JointModelConfig, model_card, use_fast_dropout

logger = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"
_STEP_PREFIX = "step-"
_BEST_PREFIX = "best-step-"
METRICS = ("entity_f1", "trigger_f1", "span_f1", "relation_f1", "combined_f1")
PRECISIONS = ("no", "fp16", "bf16")
LAUNCHER_PRECISION_ENV = "ACCELERATE_MIXED_PRECISION"  # what `accelerate launch` exports


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
    scratch_vocab_size: int = 6000
    scratch_hidden_size: int = 256
    scratch_num_layers: int = 4
    scratch_num_heads: int = 4
    scratch_intermediate_size: int = 1024
    # -- data ------------------------------------------------------------------------------
    train_data: list[str] = field(
        default_factory=lambda: ["data/annotations/*.json"],
        metadata={"help": "Label Studio JSON exports (globs allowed)."},
    )
    extra_train_data: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Exports (globs allowed) added to the training set only, never evaluated: e.g. the "
            "synthetic corpus; with evaluate.py --cv, added to every fold's training articles."
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
    stop_after_steps: int = field(
        default=-1, metadata={"help": "Testing aid: SIGKILL this process after N optimizer steps."}
    )

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


def load_config(path: str | os.PathLike[str] | None, overrides: Sequence[str] | None = None) -> TrainConfig:
    """YAML file → :class:`TrainConfig`, then ``--field value`` overrides (HfArgumentParser)."""
    import yaml
    from transformers import HfArgumentParser

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
    parser = HfArgumentParser(TrainConfig)
    # YAML values become argparse defaults: strings get converted by each field's type, like CLI values.
    parser.set_defaults(**{k: (str(v) if isinstance(v, float) else v) for k, v in values.items()})
    (cfg,) = parser.parse_args_into_dataclasses(args=list(overrides or []))
    cfg.validate()
    return cfg


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------


def _expand(patterns: Sequence[str]) -> list[Path]:
    paths: list[Path] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern))
        if not matches:
            raise ValueError(f"{pattern}: no data file matches")
        paths += [Path(m) for m in matches]
    return paths


def load_split(cfg: TrainConfig) -> tuple[list[Document], list[Document], str]:
    """Train and eval documents as the config asks, and a one-line description of the split."""
    from ie.annotation.labelstudio import load_documents

    train_paths = _expand(cfg.train_data)
    docs = [d for p in train_paths for d in load_documents(p)]
    if cfg.eval_data:
        eval_paths = _expand(cfg.eval_data)
        eval_docs = [d for p in eval_paths for d in load_documents(p)]
        held = {d.text for d in eval_docs}
        train_docs = [d for d in docs if d.text not in held]
        split = f"train: {', '.join(map(str, train_paths))} minus held-out {', '.join(map(str, eval_paths))}"
    elif cfg.eval_ratio > 0:
        ranked = sorted(docs, key=lambda d: hashlib.sha256(f"{cfg.seed}:{d.text}".encode()).hexdigest())
        n_eval = max(1, round(len(docs) * cfg.eval_ratio))
        eval_docs, train_docs = ranked[:n_eval], ranked[n_eval:]
        split = (
            f"{len(train_docs)} train / {n_eval} held-out articles (ratio {cfg.eval_ratio}, seed {cfg.seed})"
        )
    else:
        train_docs = eval_docs = docs
        split = "all articles for training; evaluated on the same articles (a fit check, not generalisation)"
    if cfg.extra_train_data:
        held = {d.text for d in eval_docs} if eval_docs is not train_docs else set()
        train_docs = [*train_docs, *(d for d in load_extra_train_docs(cfg) if d.text not in held)]
        split += f"; plus training-only {', '.join(cfg.extra_train_data)}"
    if not train_docs:
        raise ValueError("no training documents left after the split")
    return train_docs, eval_docs, split


def load_extra_train_docs(cfg: TrainConfig) -> list[Document]:
    """The articles of ``extra_train_data``: they train, they are never evaluated."""
    from ie.annotation.labelstudio import load_documents

    return [d for p in _expand(cfg.extra_train_data) for d in load_documents(p)]


def _docs_fingerprint(docs: Sequence[Document]) -> str:
    h = hashlib.sha256()
    for d in docs:
        payload = [
            d.id,
            d.text,
            [(s.id, s.start, s.end, s.label) for s in d.sorted_spans()],
            sorted((r.head, r.tail, r.label) for r in d.relations),
        ]
        h.update(json.dumps(payload, ensure_ascii=False).encode())
    return h.hexdigest()


def _tokenizer_fingerprint(tokenizer: Any) -> str:
    return hashlib.sha256(tokenizer.backend_tokenizer.to_str().encode()).hexdigest()


def build_dataset(featurizer: Featurizer, docs: Sequence[Document], cache_dir: str | os.PathLike[str]):
    """Training rows as a ``datasets.Dataset``, cached on disk under a key of tokenizer, windows,
    schema and document contents: a second run (or a resume) reads it back instead of re-tokenizing."""
    from datasets import Dataset, Features, List, Value, load_from_disk

    key = hashlib.sha256(
        json.dumps(
            [
                FEATURES_VERSION,
                _tokenizer_fingerprint(featurizer.tokenizer),
                featurizer.max_length,
                featurizer.stride,
                featurizer.schema.to_dict(),
                _docs_fingerprint(docs),
            ]
        ).encode()
    ).hexdigest()[:20]
    path = Path(cache_dir) / f"features-{key}"
    if (path / "coverage.json").is_file():
        cov = Coverage(**json.loads((path / "coverage.json").read_text()))
        return load_from_disk(str(path / "dataset")), cov

    cov = Coverage()
    rows: list[dict[str, Any]] = []
    for enc, doc in zip(featurizer.encode([d.text for d in docs], [d.id for d in docs]), docs, strict=True):
        doc_rows, doc_cov = featurizer.training_rows(enc, doc)
        rows += doc_rows
        cov.add(doc_cov)
    features = Features(
        {
            "input_ids": List(Value("int32")),
            "labels": List(Value("int32")),
            "relation_pairs": List(List(Value("int32"))),
            "relation_labels": List(Value("int32")),
            "length": Value("int32"),
        }
    )
    ds = Dataset.from_list(rows, features=features)
    tmp = path.parent / f".tmp-{path.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    ds.save_to_disk(str(tmp / "dataset"))
    lost_spans = [
        (d, {"id": s.id, "start": s.start, "end": s.end, "label": s.label, "text": s.text})
        for d, s in cov.lost_spans
    ]
    atomic_write_json(
        tmp / "coverage.json",
        {
            "spans": cov.spans,
            "relations": cov.relations,
            "lost_spans": lost_spans,
            "lost_relations": cov.lost_relations,
        },
    )
    try:
        os.replace(tmp, path)
    except OSError:  # another process built it first
        shutil.rmtree(tmp, ignore_errors=True)
    return load_from_disk(str(path / "dataset")), cov


class LengthGroupedBatchSampler(BatchSampler):
    """Batches of similar length (less padding), in an order fixed by ``(seed, epoch)`` alone, so a
    resumed run sees exactly the batches the interrupted one would have.

    Distributed-aware: with ``num_replicas`` > 1 it yields only rank ``rank``'s batches, and every
    window of an epoch lands in exactly one batch of exactly one rank. All ranks get the same number
    of batches (``ceil(n / (batch_size * num_replicas))``, DDP needs them in step): where the
    ``ceil(n / batch_size)`` length-grouped batches do not divide evenly, the largest ones are split
    in two. Only with fewer windows than batch slots (``n < num_replicas``, or a batch size of 1 and
    ``n`` not a multiple of ``num_replicas``) is this impossible; then the missing batches repeat
    windows from the start of the epoch (the one case of duplication; it is logged). Give the loader
    to accelerate with :func:`prepare_train_loader`, which does not shard it a second time:
    ``BatchSamplerShard`` assumes only the last batch is short and loses whole rounds of batches
    around a short one elsewhere.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        seed: int,
        shuffle: bool = True,
        group: int = 50,
        num_replicas: int = 1,
        rank: int = 0,
    ):
        super().__init__(SequentialSampler(range(len(lengths))), batch_size, drop_last=False)
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is not in [0, {num_replicas})")
        self.lengths = list(lengths)
        self.seed = seed
        self.shuffle = shuffle
        self.group = group
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        """Batches this rank yields per epoch (the same on every rank)."""
        return math.ceil(len(self.lengths) / (self.batch_size * self.num_replicas))

    def global_batches(self) -> list[list[int]]:
        """All ranks' batches of this epoch, in order: rank ``r`` takes positions ``r, r + N, ...``."""
        n, bs = len(self.lengths), self.batch_size
        if not self.shuffle:
            order = sorted(range(n), key=lambda i: -self.lengths[i])
            batches = [order[i : i + bs] for i in range(0, n, bs)]
        else:
            g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            perm = torch.randperm(n, generator=g).tolist()
            grouped = []
            for m in range(0, n, bs * self.group):
                mega = sorted(perm[m : m + bs * self.group], key=lambda i: -self.lengths[i])
                grouped += [mega[i : i + bs] for i in range(0, len(mega), bs)]
            batches = [grouped[j] for j in torch.randperm(len(grouped), generator=g).tolist()]
        slots = len(self) * self.num_replicas
        while len(batches) < slots:
            j = max(range(len(batches)), key=lambda k: len(batches[k]), default=None)
            if j is None or len(batches[j]) < 2:
                break
            half = (len(batches[j]) + 1) // 2
            batches[j : j + 1] = [batches[j][:half], batches[j][half:]]
        if len(batches) < slots:
            logger.warning(
                "%d windows cannot fill %d batches on %d processes: %d window(s) seen twice this epoch",
                n, slots, self.num_replicas, slots - len(batches),
            )  # fmt: skip
            order = [i for b in batches for i in b] or [0]
            batches += [[order[k % len(order)]] for k in range(slots - len(batches))]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.global_batches()[self.rank :: self.num_replicas]


def prepare_train_loader(accelerator: Any, loader: DataLoader) -> Any:
    """The training loader on the accelerator's device, NOT sharded again: its
    :class:`LengthGroupedBatchSampler` already yields this rank's share. The result is accelerate's
    own ``DataLoaderShard`` (device placement, ``set_epoch``, end-of-epoch signal for gradient
    accumulation, ``skip_first_batches``), exactly what ``accelerator.prepare`` gives one process."""
    from accelerate.data_loader import prepare_data_loader

    sampler = loader.batch_sampler
    if not isinstance(sampler, LengthGroupedBatchSampler) or (
        sampler.num_replicas,
        sampler.rank,
    ) != (accelerator.num_processes, accelerator.process_index):
        raise ValueError("the training sampler must be a LengthGroupedBatchSampler for this process")
    return prepare_data_loader(
        loader,
        accelerator.device,
        num_processes=1,
        process_index=0,
        put_on_device=True,
        rng_types=None,
        non_blocking=accelerator.non_blocking,
    )


# ---------------------------------------------------------------------------------------------
# evaluation
# ---------------------------------------------------------------------------------------------


def evaluate_model(
    accelerator: Any, model: JointModel, tokenizer: Any, docs: Sequence[Document], batch_size: int
) -> dict[str, float]:
    """Predict the eval documents (split across processes) and score them on every process alike.

    Each process predicts a contiguous share (``split_between_processes`` without padding, so no
    document is predicted twice); the shares are gathered with their indices and every document
    must come back exactly once, so the figures are those of one process predicting them all."""
    from accelerate.utils import gather_object

    from ie.model.prediction import Predictor

    predictor = Predictor(model, tokenizer, accelerator.device)
    indices = list(range(len(docs)))
    with accelerator.split_between_processes(indices) as mine:
        with accelerator.autocast():
            preds = predictor.predict([docs[i].text for i in mine], [docs[i].id for i in mine], batch_size)
        local = list(zip(mine, preds, strict=True))
    gathered = gather_object(local) if accelerator.num_processes > 1 else local
    if sorted(i for i, _ in gathered) != indices:
        raise RuntimeError(f"evaluation gathered {len(gathered)} predictions for {len(docs)} documents")
    by_index = dict(gathered)
    return exact_match_scores(docs, [by_index[i] for i in indices])


# ---------------------------------------------------------------------------------------------
# checkpoints
# ---------------------------------------------------------------------------------------------


@dataclass
class TrainerState:
    """Where training is, saved with every checkpoint as ``trainer_state.json``. Not registered with
    the accelerator: accelerate would pickle it and unpickle it with ``weights_only=False``."""

    epoch: int = 0
    batches_in_epoch: int = 0
    global_step: int = 0
    best_metric: float | None = None
    best_step: int | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    tokenizer_sha256: str = ""
    seen_in_epoch: list[int] = field(default_factory=lambda: [0, 0])  # windows, tokens (all processes)

    def state_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_checkpoint(cls, checkpoint: Path) -> TrainerState:
        """The state a checkpoint's ``trainer_state.json`` holds (a bad file is a ValueError)."""
        path = checkpoint / "trainer_state.json"
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
            return cls(**{k: values[k] for k in (f.name for f in fields(cls))})
        except FileNotFoundError:
            raise ValueError(
                f"{checkpoint}: not a checkpoint written by ie.training.trainer (no trainer_state.json)"
            ) from None
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{path}: not a valid trainer state ({type(e).__name__}: {e})") from None


def _step_dirs(root: Path, prefix: str) -> list[Path]:
    dirs = [p for p in root.glob(f"{prefix}*") if p.is_dir() and p.name[len(prefix) :].isdigit()]
    return sorted(dirs, key=lambda p: int(p.name[len(prefix) :]))


def resolve_checkpoint(cfg: TrainConfig) -> Path | None:
    if not cfg.resume_from_checkpoint:
        return None
    if cfg.resume_from_checkpoint == "latest":
        found = _step_dirs(Path(cfg.output_dir) / CHECKPOINTS, _STEP_PREFIX)
        if not found:
            logger.warning("no checkpoint in %s: starting from scratch", Path(cfg.output_dir) / CHECKPOINTS)
            return None
        return found[-1]
    path = Path(cfg.resume_from_checkpoint)
    if not (path / "trainer_state.json").is_file():
        raise ValueError(f"{path}: not a checkpoint written by ie.training.trainer (no trainer_state.json)")
    return path


def load_checkpoint(accelerator: Any, checkpoint: Path) -> TrainerState:
    """Restore model, optimizer, scheduler and RNG states, and return the trainer state, without
    unpickling anything that could run code.

    accelerate unpickles ``custom_checkpoint_*.pkl`` with ``weights_only=False``: those files (written
    by earlier versions, which registered the trainer state) are hidden from it, and the state comes
    from ``trainer_state.json``. Every other file it reads goes through ``torch.load`` with
    ``weights_only=True``, which refuses pickled code; a refused file is a ValueError naming the
    checkpoint. accelerate skips RNG states it cannot load with only a log line, so that file is
    checked first: a tampered one must stop the resume, not silently change its random draws.
    """
    from accelerate.utils import load

    state = TrainerState.from_checkpoint(checkpoint)
    rng = checkpoint / f"random_states_{accelerator.process_index}.pkl"
    view = Path(tempfile.mkdtemp(prefix="ie-checkpoint-"))
    try:
        if rng.is_file():
            load(rng)  # weights_only=True
        for item in checkpoint.iterdir():
            if not (item.name.startswith("custom_checkpoint_") and item.suffix == ".pkl"):
                (view / item.name).symlink_to(item.resolve())
        accelerator.load_state(str(view), load_kwargs={"weights_only": True})
    except pickle.UnpicklingError as e:
        reason = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        raise ValueError(
            f"{checkpoint}: refused to load a file holding more than tensors and plain values "
            f"(tampered, or not written by ie.training.trainer): {reason}"
        ) from None
    finally:
        shutil.rmtree(view, ignore_errors=True)
    return state


def _usual_modes(folder: Path) -> None:
    """Give every file in ``folder`` the mode a new file gets (umask applied): ``save_pretrained``
    writes the weights 0600 (a temp file renamed), unlike every other file of a run."""
    for item in folder.iterdir():
        if item.is_file() and not item.is_symlink():
            item.chmod(0o666 & ~_UMASK)


def _replace_dir(accelerator: Any, tmp: Path, final: Path) -> None:
    """Atomic publish of a fully written folder (the main process renames, everyone waits)."""
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        _usual_modes(tmp)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    accelerator.wait_for_everyone()


def save_checkpoint(accelerator: Any, cfg: TrainConfig, state: TrainerState) -> Path:
    root = Path(cfg.output_dir) / CHECKPOINTS
    final = root / f"{_STEP_PREFIX}{state.global_step:07d}"
    tmp = root / f".tmp-{final.name}"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp), safe_serialization=True)
    if accelerator.is_main_process:
        atomic_write_json(tmp / "trainer_state.json", state.state_dict())
        atomic_write_json(tmp / "train_config.json", asdict(cfg))
    _replace_dir(accelerator, tmp, final)
    if accelerator.is_main_process and cfg.save_total_limit > 0:
        for old in _step_dirs(root, _STEP_PREFIX)[: -cfg.save_total_limit]:
            shutil.rmtree(old, ignore_errors=True)
    return final


def _save_best(accelerator: Any, cfg: TrainConfig, model: Any, state: TrainerState, metrics: dict) -> None:
    root = Path(cfg.output_dir) / CHECKPOINTS
    final = root / f"{_BEST_PREFIX}{state.global_step:07d}"
    tmp = root / f".tmp-{final.name}"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        accelerator.unwrap_model(model).save_pretrained(tmp, safe_serialization=True)
        atomic_write_json(tmp / "eval_metrics.json", metrics)
    _replace_dir(accelerator, tmp, final)
    if accelerator.is_main_process:
        for old in _step_dirs(root, _BEST_PREFIX):
            if old != final:
                shutil.rmtree(old, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# the loop
# ---------------------------------------------------------------------------------------------


def scratch_encoder_spec(cfg: TrainConfig) -> EncoderSpec:
    """The from-scratch encoder a config's ``scratch_*`` fields describe."""
    return EncoderSpec(
        vocab_size=cfg.scratch_vocab_size,
        hidden_size=cfg.scratch_hidden_size,
        num_hidden_layers=cfg.scratch_num_layers,
        num_attention_heads=cfg.scratch_num_heads,
        intermediate_size=cfg.scratch_intermediate_size,
        max_position_embeddings=max(512, cfg.window_length),
        seed=cfg.seed,
    )


def build_model(cfg: TrainConfig, encoder_path: str | os.PathLike[str]) -> JointModel:
    """Fresh heads over the encoder, sized and weighted as the config says; CPU-fast dropout for training."""
    model = JointModel.from_encoder(
        encoder_path,
        schema=SCHEMA,
        window_length=cfg.window_length,
        window_stride=cfg.window_stride,
        classifier_dropout=cfg.classifier_dropout,
        relation_hidden_size=cfg.relation_hidden_size,
        relation_loss_weight=cfg.relation_loss_weight,
    )
    return use_fast_dropout(model)


def _resolve_encoder(cfg: TrainConfig, docs: Sequence[Document], cache_dir: Path) -> str:
    if not cfg.encoder_from_scratch:
        return cfg.model_name_or_path
    spec = scratch_encoder_spec(cfg)
    texts = sorted({d.text for d in docs})
    key = hashlib.sha256(json.dumps([asdict(spec), texts], ensure_ascii=False).encode()).hexdigest()[:16]
    return str(build_encoder(texts, cache_dir / f"encoder-{key}", spec))


def _optimizer(model: JointModel, cfg: TrainConfig, device: Any = None) -> torch.optim.Optimizer:
    head_lr = cfg.head_learning_rate or cfg.learning_rate
    groups: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        no_decay = p.ndim < 2 or "LayerNorm" in name or "layer_norm" in name
        groups.setdefault((name.startswith("backbone."), no_decay), []).append(p)
    params = [
        {
            "params": ps,
            "lr": cfg.learning_rate if backbone else head_lr,
            "weight_decay": 0.0 if no_decay else cfg.weight_decay,
        }
        for (backbone, no_decay), ps in sorted(groups.items())
    ]
    # The fused kernel (one pass over all parameters) is several times faster than the default
    # per-tensor loop on CPU and on CUDA; same update, same state dict (checkpoints interchange).
    fused = device is not None and torch.device(device).type in ("cpu", "cuda")
    return torch.optim.AdamW(params, lr=cfg.learning_rate, fused=fused or None)


class Throughput:
    """Non-padding tokens and wall time of the optimizer steps (data loading, forward, backward,
    update), without evaluation and checkpoint writing. Tokens are summed on the device, so counting
    adds no synchronisation per step; the clock syncs once per epoch."""

    def __init__(self, device: torch.device):
        self.device = device
        self.tokens = torch.zeros((), dtype=torch.long, device=device)
        self.seconds = 0.0
        self._since: float | None = None

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def start(self) -> None:
        self._sync()
        self._since = time.perf_counter()

    def stop(self) -> None:
        if self._since is not None:
            self._sync()
            self.seconds += time.perf_counter() - self._since
            self._since = None

    def count(self, batch: dict[str, Any]) -> None:
        self.tokens += batch["attention_mask"].sum()

    def summary(self, accelerator: Any, steps: int) -> dict[str, Any]:
        """All processes' tokens over this process's time (they step in lockstep)."""
        tokens = int(accelerator.reduce(self.tokens, reduction="sum"))
        rate = tokens / self.seconds if self.seconds > 0 else 0.0
        return {"tokens": tokens, "steps": steps, "loop_seconds": round(self.seconds, 3),
                "tokens_per_second": round(rate, 1)}  # fmt: skip


def _add_seen(accelerator: Any, state: TrainerState, seen: torch.Tensor) -> torch.Tensor:
    """Move the windows and tokens this process trained on since the last call into the trainer state,
    summed over all processes (every process calls it at the same step); returns a zeroed counter.
    Done before each checkpoint, so a resumed run reports the same per-epoch counts."""
    total = accelerator.reduce(seen, reduction="sum").tolist()
    state.seen_in_epoch = [a + int(b) for a, b in zip(state.seen_in_epoch, total, strict=True)]
    return torch.zeros_like(seen)


def _check_one_group(accelerator: Any, environ: Mapping[str, str]) -> None:
    """Refuse processes that were launched together but did not join one group: on a machine without
    GPUs, ``accelerate launch --multi_gpu`` without ``ACCELERATE_USE_CPU=1`` starts N independent
    single-process trainers that would each train on everything and race for one ``output_dir``."""
    launched = int(environ.get("WORLD_SIZE", "1") or 1)
    if launched != accelerator.num_processes:
        raise ValueError(
            f"launched as {launched} processes (WORLD_SIZE) but they formed a group of "
            f"{accelerator.num_processes}; on CPUs run ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu "
            "... (see docs/training.md)"
        )


def _forget_previous_run() -> None:
    """Let :func:`train` run again in the same process with other settings (cross-validation folds,
    tests, notebooks): accelerate keeps its state in process-wide singletons; the process group stays."""
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=False)
    GradientState._reset_state()


def _kill_self() -> None:
    """What ``stop_after_steps`` does: die like a preempted job, with no cleanup at all."""
    os.kill(os.getpid(), signal.SIGKILL)


def _claim_output_dir(accelerator: Any, cfg: TrainConfig, stack: ExitStack) -> None:
    """Make ``output_dir`` this run's before anything is built or written: the main process takes its
    lock (held until :func:`train` returns: a second trainer, even one that also believes it is the
    main process, is refused) and checks it is writable and unused, or clears it when
    ``overwrite_output_dir`` asks. Every process raises the same ValueError when it is refused."""
    problem = None
    if accelerator.is_main_process:
        out = Path(cfg.output_dir)
        try:
            stack.enter_context(output_lock(out))
            _check_output_dir(cfg, out)
        except (OutputLocked, ValueError) as e:
            problem = str(e)
        except OSError as e:
            problem = f"{e.filename or out}: cannot write the output there ({e.strerror or e})"
    if accelerator.num_processes > 1:
        from accelerate.utils import broadcast_object_list

        problem = broadcast_object_list([problem])[0]
    if problem:
        raise ValueError(problem)


# What a training run writes in output_dir: --overwrite_output_dir clears these and nothing else.
_RUN_DIRS = (CHECKPOINTS, "cache", ".tmp-final")
_RUN_FILE_SUFFIXES = (".json", ".safetensors", ".txt", ".md", ".model", ".tmp")


def _check_output_dir(cfg: TrainConfig, out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: output_dir exists and is not a directory")
    if not out.exists():
        return
    if not os.access(out, os.W_OK | os.X_OK):
        raise ValueError(f"{out}: output_dir is not writable")
    keep = "cache" if cfg.cache_dir is None else None  # the default feature cache: content-addressed
    used = sorted(p.name for p in out.iterdir() if p.name != keep)
    if not used or cfg.resume_from_checkpoint:
        return
    if not cfg.overwrite_output_dir:
        raise ValueError(
            f"{out}: output_dir already holds a training run ({', '.join(used[:4])}"
            f"{', ...' if len(used) > 4 else ''}); pass --overwrite_output_dir to replace it, "
            "--resume_from_checkpoint latest to continue it, or choose another output_dir"
        )
    runs = {*_RUN_DIRS, cfg.project_name}
    foreign = [
        p.name
        for p in sorted(out.iterdir())
        if p.is_symlink()
        or not ((p.is_dir() and p.name in runs) or (p.is_file() and p.name.endswith(_RUN_FILE_SUFFIXES)))
    ]
    if foreign:
        raise ValueError(
            f"{out}: not clearing it for --overwrite_output_dir: {', '.join(foreign[:4])} "
            "not written by a training run; choose another output_dir"
        )
    for p in sorted(out.iterdir()):
        if p.name == keep:
            continue
        if p.is_dir():
            shutil.rmtree(p)
        else:
            p.unlink()
    logger.info("cleared %s (--overwrite_output_dir)", out)


def train(
    cfg: TrainConfig, train_docs: list[Document] | None = None, eval_docs: list[Document] | None = None
) -> Path:
    """Train, evaluate every epoch, keep the best epoch; returns ``output_dir`` holding the final model.

    The run holds the lock of ``output_dir`` until it returns; a used ``output_dir`` is refused
    (ValueError) unless the run resumes it or ``overwrite_output_dir`` clears it."""
    with ExitStack() as stack:
        return _train(cfg, train_docs, eval_docs, stack)


def _train(
    cfg: TrainConfig, train_docs: list[Document] | None, eval_docs: list[Document] | None, stack: ExitStack
) -> Path:
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from tqdm.auto import tqdm
    from transformers import AutoTokenizer, get_scheduler

    cfg.validate()
    cfg = replace(cfg, mixed_precision=resolve_mixed_precision(cfg.mixed_precision, os.environ))
    started = time.time()
    out = Path(cfg.output_dir)
    if train_docs is None:
        train_docs, loaded_eval, split = load_split(cfg)
        eval_docs = eval_docs if eval_docs is not None else loaded_eval
    else:
        split = "documents passed to ie.training.trainer.train()"
        if eval_docs is None:
            eval_docs = train_docs
            split += "; evaluated on the training documents"
    cache_dir = Path(cfg.cache_dir) if cfg.cache_dir else out / "cache"

    _forget_previous_run()
    accelerator = Accelerator(
        mixed_precision=cfg.mixed_precision,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        log_with=[t for t in cfg.report_to if t != "none"] or None,
        project_dir=str(out),
    )
    _check_one_group(accelerator, os.environ)
    main = accelerator.is_main_process
    _claim_output_dir(accelerator, cfg, stack)
    if main:
        out.mkdir(parents=True, exist_ok=True)
    set_seed(cfg.seed)

    with accelerator.main_process_first():
        encoder_path = _resolve_encoder(cfg, train_docs, cache_dir)
    tokenizer = AutoTokenizer.from_pretrained(encoder_path)
    featurizer = Featurizer(tokenizer, SCHEMA, cfg.window_length, cfg.window_stride)
    with accelerator.main_process_first():
        dataset, coverage = build_dataset(featurizer, train_docs, cache_dir)
    logger.info(
        "features: %d windows from %d articles; %s", len(dataset), len(train_docs), coverage.summary()
    )
    for doc_id, span in coverage.lost_spans[:20]:
        logger.warning("span not representable (boundary inside a word): %s %s", doc_id, span)

    set_seed(cfg.seed)  # heads initialised the same whatever ran before
    model = build_model(cfg, encoder_path)
    sampler = LengthGroupedBatchSampler(
        dataset["length"],
        cfg.per_device_train_batch_size,
        cfg.seed,
        num_replicas=accelerator.num_processes,
        rank=accelerator.process_index,
    )
    loader = DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=partial(collate, pad_token_id=tokenizer.pad_token_id or 0),
        num_workers=cfg.dataloader_num_workers,
        generator=torch.Generator().manual_seed(cfg.seed),  # never draws from the global RNG
    )
    optimizer = _optimizer(model, cfg, accelerator.device)
    model, optimizer = accelerator.prepare(model, optimizer)
    loader = prepare_train_loader(accelerator, loader)  # already this rank's share: not sharded again
    # len(loader) is the number of batches this process really runs per epoch (the same on all).
    steps_per_epoch = math.ceil(len(loader) / cfg.gradient_accumulation_steps)
    total_steps = cfg.max_steps if cfg.max_steps > 0 else steps_per_epoch * cfg.num_train_epochs
    epochs = math.ceil(total_steps / steps_per_epoch)
    # accelerate's prepared scheduler (without split_batches) advances the wrapped one num_processes
    # times per optimizer step, so both counts are scaled by it: the schedule reaches its end at
    # optimizer step total_steps, the last one every process runs.
    scheduler = get_scheduler(
        cfg.lr_scheduler_type,
        optimizer,
        num_warmup_steps=math.ceil(cfg.warmup_ratio * total_steps) * accelerator.num_processes,
        num_training_steps=total_steps * accelerator.num_processes,
    )
    scheduler = accelerator.prepare(scheduler)
    state = TrainerState(tokenizer_sha256=_tokenizer_fingerprint(tokenizer))
    checkpoint = resolve_checkpoint(cfg)
    if checkpoint is not None:
        state = load_checkpoint(accelerator, checkpoint)
        if state.tokenizer_sha256 != _tokenizer_fingerprint(tokenizer):
            raise ValueError(
                f"{checkpoint}: was trained with another tokenizer than {encoder_path} provides now (a "
                "from-scratch encoder rebuilt after its cache was deleted?); resuming would scramble tokens"
            )
        logger.info("resumed from %s at epoch %d, step %d", checkpoint, state.epoch, state.global_step)

    if cfg.report_to and cfg.report_to != ["none"]:
        flat = {k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in asdict(cfg).items()}
        accelerator.init_trackers(cfg.project_name, config=flat)
    progress = tqdm(
        total=total_steps,
        initial=state.global_step,
        desc="training",
        disable=not accelerator.is_local_main_process,
    )
    stack.callback(progress.close)  # an interrupted run's bar is closed before train.py says how to resume
    running, running_n = torch.zeros((), device=accelerator.device), 0  # summed on device: no sync per step
    throughput, first_step = Throughput(accelerator.device), state.global_step
    seen = torch.zeros(2, dtype=torch.long, device=accelerator.device)  # windows, tokens: this process
    done = state.global_step >= total_steps
    for epoch in range(state.epoch, epochs):
        if done:
            break
        sampler.set_epoch(epoch)
        skip = state.batches_in_epoch
        epoch_loader = accelerator.skip_first_batches(loader, skip) if skip else loader
        # accelerate re-sets the sampler's epoch from the loader's own counter when iteration starts;
        # a fresh (resumed) loader counts from 0, so give it the real epoch.
        epoch_loader.set_epoch(epoch)
        model.train()
        throughput.start()
        for batch in epoch_loader:
            throughput.count(batch)
            seen[0] += len(batch["input_ids"])
            seen[1] += batch["attention_mask"].sum()
            with accelerator.accumulate(model):
                output = model(**batch)
                accelerator.backward(output.loss)
                if accelerator.sync_gradients and cfg.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            state.batches_in_epoch += 1
            running, running_n = running + output.loss.detach().float(), running_n + 1
            if not accelerator.sync_gradients:
                continue
            state.global_step += 1
            progress.update(1)
            if state.global_step % cfg.logging_steps == 0:
                loss = running.item() / running_n
                accelerator.log(
                    {"train/loss": loss, "train/lr": scheduler.get_last_lr()[0]}, step=state.global_step
                )
                progress.set_postfix(loss=f"{loss:.4f}")
                running, running_n = torch.zeros((), device=accelerator.device), 0
            done = state.global_step >= total_steps
            if cfg.save_steps > 0 and state.global_step % cfg.save_steps == 0 and not done:
                throughput.stop()
                seen = _add_seen(accelerator, state, seen)
                save_checkpoint(accelerator, cfg, state)
                throughput.start()
            if state.global_step == cfg.stop_after_steps:
                _kill_self()
            if done:
                break
        throughput.stop()

        metrics = evaluate_model(
            accelerator, accelerator.unwrap_model(model), tokenizer, eval_docs, cfg.per_device_eval_batch_size
        )
        score = metrics[cfg.metric_for_best_model]
        seen = _add_seen(accelerator, state, seen)
        state.history.append(
            {
                "epoch": epoch + 1,
                "step": state.global_step,
                # what the epoch really trained on, summed over processes, and where the schedule is
                "train_windows": state.seen_in_epoch[0],
                "train_tokens": state.seen_in_epoch[1],
                "lr_factor": scheduler.get_last_lr()[0] / optimizer.param_groups[0]["initial_lr"],
                **metrics,
            }
        )
        accelerator.log({f"eval/{k}": v for k, v in metrics.items()}, step=state.global_step)
        logger.info(
            "epoch %d step %d: %s",
            epoch + 1,
            state.global_step,
            ", ".join(f"{k}={metrics[k]:.4f}" for k in METRICS),
        )
        if state.best_metric is None or score > state.best_metric:
            state.best_metric, state.best_step = score, state.global_step
            _save_best(accelerator, cfg, model, state, metrics)
        state.epoch, state.batches_in_epoch, state.seen_in_epoch = epoch + 1, 0, [0, 0]
        save_checkpoint(accelerator, cfg, state)
    progress.close()
    speed = throughput.summary(accelerator, state.global_step - first_step)
    accelerator.log({"train/tokens_per_second": speed["tokens_per_second"]}, step=state.global_step)
    logger.info(
        "training loop: %d non-padding tokens in %.1f s = %.0f tokens/s",
        speed["tokens"],
        speed["loop_seconds"],
        speed["tokens_per_second"],
    )

    best = Path(cfg.output_dir) / CHECKPOINTS / f"{_BEST_PREFIX}{state.best_step:07d}"
    best_metrics = next(h for h in state.history if h["step"] == state.best_step)
    if speed["steps"] == 0:
        speed = None  # nothing trained in this process (a resume of a finished run): no throughput
    if main and speed is None and _published(out, state):
        logger.info("%s: already trained to step %d and published; nothing to do", out, state.global_step)
    elif main:
        _publish_final(
            cfg,
            best,
            tokenizer,
            best_metrics,
            state,
            split,
            len(train_docs),
            len(eval_docs),
            time.time() - started,
            speed,
        )
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return out


def _published(out: Path, state: TrainerState) -> bool:
    """Whether ``out`` already holds the final model of the run ``state`` describes."""
    try:
        results = json.loads((out / "train_results.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        (out / "model.safetensors").is_file()
        and results.get("best_step") == state.best_step
        and results.get("history") == state.history
    )


def _publish_final(
    cfg: TrainConfig,
    best: Path,
    tokenizer: Any,
    metrics: dict,
    state: TrainerState,
    split: str,
    n_train: int,
    n_eval: int,
    seconds: float,
    speed: dict[str, Any] | None = None,
) -> None:
    """Best weights + tokenizer + model card + results into output_dir, each file replaced atomically."""
    out = Path(cfg.output_dir)
    tmp = out / ".tmp-final"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(best, tmp)
    (tmp / "eval_metrics.json").unlink(missing_ok=True)
    tokenizer.save_pretrained(tmp)
    config = JointModelConfig.from_pretrained(tmp)
    head_lr = cfg.head_learning_rate or cfg.learning_rate
    training = {
        "encoder": "from scratch (ie.model.encoder)" if cfg.encoder_from_scratch else cfg.model_name_or_path,
        "training data": ", ".join(cfg.train_data),
        "split": split,
        "articles (train / eval)": f"{n_train} / {n_eval}",
        "epochs": cfg.num_train_epochs if cfg.max_steps <= 0 else f"max_steps={cfg.max_steps}",
        "best epoch (step)": f"{next(h['epoch'] for h in state.history if h['step'] == state.best_step)} "
        f"({state.best_step})",
        "learning rate (encoder / heads)": f"{cfg.learning_rate} / {head_lr}",
        "batch size x accumulation": f"{cfg.per_device_train_batch_size} x {cfg.gradient_accumulation_steps}",
        "warmup ratio / schedule": f"{cfg.warmup_ratio} / {cfg.lr_scheduler_type}",
        "mixed precision": cfg.mixed_precision,
        "seed": cfg.seed,
        "wall time (s)": f"{seconds:.0f}",
    }
    if speed and speed["loop_seconds"] > 0:
        training["training throughput"] = (
            f"{speed['tokens_per_second']:,.0f} non-padding tokens/s ({speed['steps']} steps in "
            f"{speed['loop_seconds']:.0f} s, evaluation and checkpoints excluded)"
        )
    figures = {k: f"{v:.4f}" for k, v in metrics.items() if k not in ("epoch", "step")}
    atomic_write_text(tmp / "README.md", model_card(config, training, figures))
    atomic_write_json(
        tmp / "train_results.json",
        {
            "best_step": state.best_step,
            "best_metrics": metrics,
            "history": state.history,
            "split": split,
            "train_seconds": round(seconds, 1),
            "throughput": speed or {},
            "config": asdict(cfg),
        },
    )
    _usual_modes(tmp)
    for item in sorted(tmp.iterdir()):
        os.replace(item, out / item.name)
    tmp.rmdir()
