"""The training loop: ``python train.py --config configs/cpu-tiny.yaml --output_dir DIR`` and the same
line under ``accelerate launch`` run :func:`train`, one code path for one CPU and for many GPUs.

Setup (accelerator, data, model, optimizer, schedule, resume) comes first, then the loop, which reads
like any ``accelerate`` training script; what it reports lives in :mod:`ie.training.meter`, what it
writes in :mod:`ie.training.checkpoints`. The best epoch (by ``metric_for_best_model`` on the eval
split) becomes the final model in ``output_dir``, with its tokenizer and a model card.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from ie.core.document import Document
from ie.core.hashing import sha256_json
from ie.core.schema import SCHEMA
from ie.model.encoder import build_encoder
from ie.model.features import Featurizer
from ie.model.modeling import JointModel, use_fast_dropout
from ie.training.checkpoints import (
    BEST_PREFIX,
    CHECKPOINTS,
    TrainerState,
    claim_output_dir,
    load_checkpoint,
    publish_final,
    published,
    resolve_checkpoint,
    save_best,
    save_checkpoint,
)
from ie.training.config import METRICS, TrainConfig, resolve_mixed_precision, scratch_encoder_spec
from ie.training.data import build_dataset, drop_tokens, load_split, tokenizer_fingerprint, train_loader
from ie.training.evaluation import evaluate_model
from ie.training.meter import StepMeter

logger = logging.getLogger(__name__)


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


def resolve_encoder(cfg: TrainConfig, docs: Sequence[Document], cache_dir: Path) -> str:
    if not cfg.encoder_from_scratch:
        return cfg.model_name_or_path
    spec = scratch_encoder_spec(cfg)
    texts = sorted({d.text for d in docs})
    key = sha256_json([asdict(spec), texts])[:16]
    return str(build_encoder(texts, cache_dir / f"encoder-{key}", spec))


def build_optimizer(model: JointModel, cfg: TrainConfig, device: Any = None) -> torch.optim.Optimizer:
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


def train(
    cfg: TrainConfig, train_docs: list[Document] | None = None, eval_docs: list[Document] | None = None
) -> Path:
    """Train, evaluate every epoch, keep the best epoch; returns ``output_dir`` holding the final model.

    The run holds the lock of ``output_dir`` until it returns; a used ``output_dir`` is refused
    (ValueError) unless the run resumes it or ``overwrite_output_dir`` clears it. One run per
    process: accelerate keeps its state in process-wide singletons, so a second run (a
    cross-validation fold) is a new process."""
    with ExitStack() as stack:
        return _train(cfg, train_docs, eval_docs, stack)


def _train(
    cfg: TrainConfig, train_docs: list[Document] | None, eval_docs: list[Document] | None, stack: ExitStack
) -> Path:
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from transformers import AutoTokenizer, get_scheduler

    cfg.validate()
    cfg = replace(cfg, mixed_precision=resolve_mixed_precision(cfg.mixed_precision, os.environ))
    started = time.time()
    out = Path(cfg.output_dir)
    if train_docs is None:
        train_docs, loaded_eval, split = load_split(cfg)
        eval_docs = eval_docs if eval_docs is not None else loaded_eval
    else:
        split = "documents passed to ie.training.loop.train()"
        if eval_docs is None:
            eval_docs = train_docs
            split += "; evaluated on the training documents"
    if cfg.augment_factor > 0:  # after the split: evaluation articles are never augmented
        from ie.training.augment import augment_documents, gazetteer_forms

        extra = augment_documents(train_docs, cfg.augment_factor, cfg.seed, gazetteer_forms())
        train_docs = [*train_docs, *extra]
        split += f"; + {cfg.augment_factor} augmented copies of each training article"
    cache_dir = Path(cfg.cache_dir) if cfg.cache_dir else out / "cache"

    accelerator = Accelerator(
        mixed_precision=cfg.mixed_precision,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        log_with=[t for t in cfg.report_to if t != "none"] or None,
        project_dir=str(out),
    )
    _check_one_group(accelerator, os.environ)
    claim_output_dir(accelerator, cfg, stack)
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
    set_seed(cfg.seed)

    with accelerator.main_process_first():
        encoder_path = resolve_encoder(cfg, train_docs, cache_dir)
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
    optimizer = build_optimizer(model, cfg, accelerator.device)
    model, optimizer = accelerator.prepare(model, optimizer)
    loader = train_loader(accelerator, dataset, cfg, tokenizer.pad_token_id or 0)
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
    state = _resume(accelerator, cfg, tokenizer_fingerprint(tokenizer), encoder_path)
    if cfg.report_to and cfg.report_to != ["none"]:
        flat = {k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in asdict(cfg).items()}
        accelerator.init_trackers(cfg.project_name, config=flat)
    meter = StepMeter(accelerator, state, total_steps, cfg.logging_steps)
    stack.callback(meter.progress.close)  # an interrupted run's bar closes before train.py's last line

    done = state.global_step >= total_steps
    keep_ids = sorted(set(tokenizer.all_special_ids))
    for epoch in range(state.epoch, epochs):
        if done or patience_exhausted(state, cfg.early_stopping_patience):
            break
        loader.set_epoch(epoch)
        skip = state.batches_in_epoch  # a resumed run continues mid-epoch where the checkpoint was
        epoch_loader = accelerator.skip_first_batches(loader, skip) if skip else loader
        epoch_loader.set_epoch(epoch)  # accelerate restarts a fresh loader's epoch count at 0
        model.train()
        meter.start()
        for batch in epoch_loader:
            if cfg.token_dropout > 0:  # training only; the mask is fixed by seed, epoch, batch and rank
                key = ((cfg.seed * 1_000_003 + epoch) * 1_000_003 + state.batches_in_epoch) * 1_009
                batch = {**batch, "input_ids": drop_tokens(batch["input_ids"], cfg.token_dropout,
                         tokenizer.unk_token_id, keep_ids, key + accelerator.process_index)}  # fmt: skip
            with accelerator.accumulate(model):
                loss = model(**batch).loss
                accelerator.backward(loss)
                if accelerator.sync_gradients and cfg.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            state.batches_in_epoch += 1
            meter.batch(batch, loss)
            if not accelerator.sync_gradients:
                continue
            state.global_step += 1
            meter.step(scheduler)
            done = state.global_step >= total_steps
            if cfg.save_steps > 0 and state.global_step % cfg.save_steps == 0 and not done:
                meter.stop()
                save_checkpoint(accelerator, cfg, state)
                meter.start()
            if done:
                break
        meter.stop()

        metrics = evaluate_model(
            accelerator, accelerator.unwrap_model(model), tokenizer, eval_docs, cfg.per_device_eval_batch_size
        )
        # what the epoch really trained on, summed over processes, and where the schedule is
        lr_factor = scheduler.get_last_lr()[0] / optimizer.param_groups[0]["initial_lr"]
        state.history.append({"epoch": epoch + 1, "step": state.global_step, "train_windows":
                              state.seen_in_epoch[0], "train_tokens": state.seen_in_epoch[1],
                              "lr_factor": lr_factor, **metrics})  # fmt: skip
        accelerator.log({f"eval/{k}": v for k, v in metrics.items()}, step=state.global_step)
        logger.info("epoch %d step %d: %s", epoch + 1, state.global_step,
                    ", ".join(f"{k}={metrics[k]:.4f}" for k in METRICS))  # fmt: skip
        if state.best_metric is None or metrics[cfg.metric_for_best_model] > state.best_metric:
            state.best_metric, state.best_step = metrics[cfg.metric_for_best_model], state.global_step
            save_best(accelerator, cfg, model, state, metrics)
        state.epoch, state.batches_in_epoch, state.seen_in_epoch = epoch + 1, 0, [0, 0]
        save_checkpoint(accelerator, cfg, state)
        if patience_exhausted(state, cfg.early_stopping_patience) and not done:
            logger.info("early stop after epoch %d: no better %s for %d epochs (best: epoch %d, %.4f)",
                        epoch + 1, cfg.metric_for_best_model, cfg.early_stopping_patience,
                        _best_epoch(state), state.best_metric)  # fmt: skip
    speed = meter.close()

    best = out / CHECKPOINTS / f"{BEST_PREFIX}{state.best_step:07d}"
    best_metrics = next(h for h in state.history if h["step"] == state.best_step)
    if accelerator.is_main_process and speed is None and published(out, state):
        logger.info("%s: already trained to step %d and published; nothing to do", out, state.global_step)
    elif accelerator.is_main_process:
        publish_final(cfg, best, tokenizer, best_metrics, state, split, len(train_docs), len(eval_docs),
                      time.time() - started, speed)  # fmt: skip
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return out


def _best_epoch(state: TrainerState) -> int:
    return next(h["epoch"] for h in state.history if h["step"] == state.best_step)


def patience_exhausted(state: TrainerState, patience: int) -> bool:
    """Whether the last ``patience`` evaluated epochs all failed to beat the best one (early stopping).

    Read from the history alone, so every process decides alike (the figures are gathered) and a
    resumed run stops where the uninterrupted one did."""
    if patience <= 0 or state.best_step is None:
        return False
    best = next(i for i, h in enumerate(state.history) if h["step"] == state.best_step)
    return len(state.history) - 1 - best >= patience


def _resume(accelerator: Any, cfg: TrainConfig, tokenizer_sha256: str, encoder_path: str) -> TrainerState:
    """The trainer state to start from: a fresh one, or the checkpoint's (its states restored)."""
    checkpoint = resolve_checkpoint(cfg)
    if checkpoint is None:
        return TrainerState(tokenizer_sha256=tokenizer_sha256)
    state = load_checkpoint(accelerator, checkpoint)
    if state.tokenizer_sha256 != tokenizer_sha256:
        raise ValueError(
            f"{checkpoint}: was trained with another tokenizer than {encoder_path} provides now (a "
            "from-scratch encoder rebuilt after its cache was deleted?); resuming would scramble tokens"
        )
    logger.info("resumed from %s at epoch %d, step %d", checkpoint, state.epoch, state.global_step)
    return state
