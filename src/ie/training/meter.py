"""Instrumentation of the training loop, kept out of its body: one :class:`StepMeter` call per
batch and per optimizer step (running loss, progress bar, tracker logs, windows and tokens seen,
throughput)."""

from __future__ import annotations

import logging
import time
from typing import Any

import torch

logger = logging.getLogger(__name__)


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


class StepMeter:
    """Everything the loop reports, fed by one call per batch (:meth:`batch`) and one per optimizer
    step (:meth:`step`): the running loss (summed on the device, read every ``logging_steps``), the
    progress bar, tracker logs, the windows and tokens trained on (moved into the trainer state at
    each checkpoint and epoch end, summed over processes) and the throughput clock, which stops
    while the loop evaluates or writes checkpoints (:meth:`paused`)."""

    def __init__(self, accelerator: Any, state: Any, total_steps: int, logging_steps: int):
        from tqdm.auto import tqdm

        self.accelerator, self.state, self.logging_steps = accelerator, state, logging_steps
        device = accelerator.device
        self.throughput, self.first_step = Throughput(device), state.global_step
        self.loss_sum, self.loss_n = torch.zeros((), device=device), 0  # no sync per step
        self.seen = torch.zeros(2, dtype=torch.long, device=device)  # windows, tokens: this process
        self.progress = tqdm(total=total_steps, initial=state.global_step, desc="training",
                             disable=not accelerator.is_local_main_process)  # fmt: skip

    def batch(self, batch: dict[str, Any], loss: torch.Tensor) -> None:
        """One batch trained on (optimizer stepped or gradients accumulated)."""
        self.throughput.count(batch)
        self.seen[0] += len(batch["input_ids"])
        self.seen[1] += batch["attention_mask"].sum()
        self.loss_sum, self.loss_n = self.loss_sum + loss.detach().float(), self.loss_n + 1

    def step(self, scheduler: Any) -> None:
        """One optimizer step done (``state.global_step`` already counts it)."""
        step = self.state.global_step
        self.progress.update(1)
        if step % self.logging_steps == 0:
            loss = self.loss_sum.item() / self.loss_n
            self.accelerator.log({"train/loss": loss, "train/lr": scheduler.get_last_lr()[0]}, step=step)
            self.progress.set_postfix(loss=f"{loss:.4f}")
            self.loss_sum, self.loss_n = torch.zeros((), device=self.accelerator.device), 0

    def start(self) -> None:
        self.throughput.start()

    def stop(self) -> None:
        """Stop the clock and move the windows and tokens seen into the trainer state (summed over
        processes; every process calls it at the same step), so a checkpoint holds them and a
        resumed run reports the same per-epoch counts."""
        self.throughput.stop()
        total = self.accelerator.reduce(self.seen, reduction="sum").tolist()
        self.state.seen_in_epoch = [a + int(b) for a, b in zip(self.state.seen_in_epoch, total, strict=True)]
        self.seen = torch.zeros_like(self.seen)

    def close(self) -> dict[str, Any] | None:
        """Close the bar; log and return the throughput, or ``None`` if this process trained nothing."""
        self.progress.close()
        speed = self.throughput.summary(self.accelerator, self.state.global_step - self.first_step)
        self.accelerator.log(
            {"train/tokens_per_second": speed["tokens_per_second"]}, step=self.state.global_step
        )
        logger.info("training loop: %d non-padding tokens in %.1f s = %.0f tokens/s",
                    speed["tokens"], speed["loop_seconds"], speed["tokens_per_second"])  # fmt: skip
        return speed if speed["steps"] else None
