"""Where a training step of the CPU-sized model goes: the profile behind bench/README.md's training section.

    python bench/profile_train.py              # 8 interleaved epochs per variant, then torch.profiler
    python bench/profile_train.py --quick      # 3 epochs per variant

Times one epoch over the seed windows (the batches ``ie.training.loop.train`` builds) for three variants
on the same batches, interleaved: our joint model, our joint model with the relation pairs removed
(tagger only: what the relation head costs), and ``AutoModelForTokenClassification`` on the same
encoder (what the Trainer baseline computes). Each step is forward, backward, gradient clipping and
a fused AdamW step, without accelerate or the Trainer around it. Then one epoch of the joint model
under ``torch.profiler``, top operators by self CPU time. Prints; writes nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import common


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=8, help="timed epochs per variant (default 8)")
    p.add_argument("--bf16", action="store_true", help="under CPU bf16 autocast")
    p.add_argument("--rows", type=int, default=25, help="profiler rows")
    p.add_argument("--quick", action="store_true", help="3 epochs per variant")
    args = p.parse_args(argv)
    if args.quick:
        args.epochs = 3
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

    import contextlib

    import torch
    from torch.profiler import ProfilerActivity, profile
    from torch.utils.data import DataLoader
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from ie.core.schema import SCHEMA
    from ie.model.features import Featurizer, collate
    from ie.training.config import load_config
    from ie.training.data import LengthGroupedBatchSampler, build_dataset, load_split
    from ie.training.loop import build_model, build_optimizer, resolve_encoder

    with tempfile.TemporaryDirectory(prefix="ie-bench-prof-") as tmp:
        cfg = load_config(common.ROOT / "configs" / "cpu-tiny.yaml", ["--output_dir", tmp])
        docs, _, _ = load_split(cfg)
        encoder = resolve_encoder(cfg, docs, Path(tmp))
        tokenizer = AutoTokenizer.from_pretrained(encoder)
        featurizer = Featurizer(tokenizer, SCHEMA, cfg.window_length, cfg.window_stride)
        dataset, _ = build_dataset(featurizer, docs, Path(tmp))
        sampler = LengthGroupedBatchSampler(dataset["length"], cfg.per_device_train_batch_size, cfg.seed)
        batches = list(
            DataLoader(dataset, batch_sampler=sampler, collate_fn=partial(collate, pad_token_id=0))
        )
        torch.manual_seed(cfg.seed)
        joint = build_model(cfg, encoder).train()
        tagger = AutoModelForTokenClassification.from_pretrained(encoder, num_labels=len(SCHEMA.bio_labels))
        tagger.train()
    optimizers = {  # ours: the optimizer train() builds; the baseline: one fused AdamW, as the Trainer's
        id(joint): build_optimizer(joint, cfg, "cpu"),
        id(tagger): torch.optim.AdamW(tagger.parameters(), lr=cfg.learning_rate, fused=True),
    }
    autocast = partial(torch.autocast, "cpu", dtype=torch.bfloat16) if args.bf16 else contextlib.nullcontext

    def epoch(model: torch.nn.Module, relations: bool = True) -> float:
        opt = optimizers[id(model)]
        started = time.perf_counter()
        for b in batches:
            if model is joint:
                b = b if relations else {**b, "relation_pairs": b["relation_pairs"][:0]}
            else:
                b = {k: b[k] for k in ("input_ids", "attention_mask", "labels")}
            with autocast():
                loss = model(**b).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            opt.step()
            opt.zero_grad()
        return time.perf_counter() - started

    variants = {
        "joint model (tagger + relation head)": lambda: epoch(joint),
        "joint model, no relation pairs": lambda: epoch(joint, relations=False),
        "AutoModelForTokenClassification": lambda: epoch(tagger),
    }
    for run in variants.values():  # warm up
        run()
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(args.epochs):
        for name, run in variants.items():
            times[name].append(run())
    tokens = sum(int(b["attention_mask"].sum()) for b in batches)
    pairs = sum(len(b["relation_pairs"]) for b in batches)
    print(
        f"{len(batches)} steps, {tokens} tokens, {pairs} relation pairs per epoch; "
        f"load {common.load_average()}"
    )
    base = common.median(times["AutoModelForTokenClassification"])
    rows = [[k, 1e3 * common.median(v), tokens / common.median(v), f"{base / common.median(v):.2f}x"]
            for k, v in times.items()]  # fmt: skip
    common.print_table(["variant", "ms per epoch (median)", "tokens/s", "vs token classification"], rows)

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        epoch(joint)
    print("\none epoch of the joint model under torch.profiler:")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
