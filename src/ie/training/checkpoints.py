"""What a run writes and reads back: checkpoints (resumable without unpickling), the best epoch's
weights, the final model published into ``output_dir``, and the run's ownership of ``output_dir``.

Checkpoints (model, optimizer, scheduler, RNG states with ``accelerator.save_state``; the trainer
state with the dataloader position as JSON) are written into a temp dir renamed into place, so
``--resume_from_checkpoint latest`` after a kill continues to the same result as an uninterrupted
run. Resuming unpickles nothing that could run code: the trainer state is read from JSON and
everything accelerate loads goes through ``torch.load(weights_only=True)``. One run owns
``output_dir`` (:func:`ie.core.fileio.output_lock`); a used one is refused unless the run resumes it
or ``overwrite_output_dir`` clears it.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import shutil
import tempfile
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ie.core.fileio import _UMASK, OutputLocked, atomic_write_json, atomic_write_text, output_lock
from ie.model.modeling import JointModelConfig, model_card
from ie.training.config import TrainConfig

logger = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"
STEP_PREFIX = "step-"
BEST_PREFIX = "best-step-"


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
                f"{checkpoint}: not a checkpoint written by ie.training (no trainer_state.json)"
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
        found = _step_dirs(Path(cfg.output_dir) / CHECKPOINTS, STEP_PREFIX)
        if not found:
            logger.warning("no checkpoint in %s: starting from scratch", Path(cfg.output_dir) / CHECKPOINTS)
            return None
        return found[-1]
    path = Path(cfg.resume_from_checkpoint)
    if not (path / "trainer_state.json").is_file():
        raise ValueError(f"{path}: not a checkpoint written by ie.training (no trainer_state.json)")
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
            f"(tampered, or not written by ie.training): {reason}"
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
    final = root / f"{STEP_PREFIX}{state.global_step:07d}"
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
        for old in _step_dirs(root, STEP_PREFIX)[: -cfg.save_total_limit]:
            shutil.rmtree(old, ignore_errors=True)
    return final


def save_best(accelerator: Any, cfg: TrainConfig, model: Any, state: TrainerState, metrics: dict) -> None:
    root = Path(cfg.output_dir) / CHECKPOINTS
    final = root / f"{BEST_PREFIX}{state.global_step:07d}"
    tmp = root / f".tmp-{final.name}"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        accelerator.unwrap_model(model).save_pretrained(tmp, safe_serialization=True)
        atomic_write_json(tmp / "eval_metrics.json", metrics)
    _replace_dir(accelerator, tmp, final)
    if accelerator.is_main_process:
        for old in _step_dirs(root, BEST_PREFIX):
            if old != final:
                shutil.rmtree(old, ignore_errors=True)


def claim_output_dir(accelerator: Any, cfg: TrainConfig, stack: ExitStack) -> None:
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


def published(out: Path, state: TrainerState) -> bool:
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


def stopped_early(cfg: TrainConfig, state: TrainerState) -> bool:
    """Whether early stopping ended the run before its planned steps."""
    planned = cfg.max_steps if cfg.max_steps > 0 else None
    ran_all = state.global_step >= planned if planned else state.epoch >= cfg.num_train_epochs
    return cfg.early_stopping_patience > 0 and not ran_all


def _early_stopping_note(cfg: TrainConfig, state: TrainerState) -> str:
    if not cfg.early_stopping_patience:
        return "off"
    if stopped_early(cfg, state):
        return f"patience {cfg.early_stopping_patience}: stopped after epoch {state.history[-1]['epoch']}"
    return f"patience {cfg.early_stopping_patience}: not triggered"


def publish_final(
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
        "early stopping": _early_stopping_note(cfg, state),
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
            "stopped_early": stopped_early(cfg, state),
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
