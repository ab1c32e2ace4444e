"""Training speed: our training loop (``train.py`` → ``ie.training.loop.train``) against HF ``Trainer``.

    python bench/train.py                    # CPU-sized model, 3 interleaved runs per side
    python bench/train.py --quick            # under a minute on 2 cores
    python bench/train.py --device cuda --bf16 --size base   # bert-base in bf16 with MFU, on a GPU

Each precision is timed on both sides (same precision against same precision); on a CPU with native
bf16 matmul the default runs float32 and bfloat16 (autocast mixed precision: accelerate's
``mixed_precision: bf16`` for ours, ``bf16=True`` for the Trainer), and also reports ours in bf16 against the
Trainer's default float32.

Both sides train on the same windows (the gold seed articles through ``ie.model.features.Featurizer``),
with an encoder of the same size and config, the same batch size, learning-rate schedule, clipping
and number of optimizer steps. Ours trains the tagger AND the relation head (every schema-allowed
trigger/argument pair of every window); the baseline is the stock recipe a user would otherwise run:
``AutoModelForTokenClassification`` + ``DataCollatorForTokenClassification`` + ``Trainer`` with its
defaults (random batches, dynamic padding), tagging only.

Throughput is non-padding tokens per second of the training loop itself (forward, backward,
optimizer, data loading), on both sides excluding model building, per-epoch evaluation and
checkpoint writing: ours from the ``throughput`` that ``ie.training.loop.train`` records in
``train_results.json``; the baseline from a ``TrainerCallback`` timing ``on_train_begin`` →
``on_train_end`` (no evaluation or saving is configured there). With ``--bf16`` on a GPU, model FLOPs
utilization = 3 x forward FLOPs of the non-padding tokens / time / measured peak bf16 matmul FLOP/s.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import common

PRECISIONS = ("float32", "bfloat16")
BASE = {  # BertConfig defaults (bert-base), windows as configs/arabert.yaml
    "scratch_hidden_size": 768,
    "scratch_num_layers": 12,
    "scratch_num_heads": 12,
    "scratch_intermediate_size": 3072,
    "window_length": 512,
    "window_stride": 128,
    "relation_hidden_size": 512,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", choices=("cpu", "base"), default="cpu")
    p.add_argument("--epochs", type=int, default=4, help="passes over the seed windows per run (default 4)")
    p.add_argument("--batch-size", type=int, default=None, help="default: the config's (2 for cpu-tiny)")
    p.add_argument("--runs", type=int, default=3, help="interleaved repetitions per side (default 3)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--bf16", action="store_true", help="bf16 mixed precision only, on both sides (a GPU)")
    p.add_argument(
        "--precisions",
        nargs="+",
        choices=PRECISIONS,
        default=None,
        help="precisions to time, each on both sides (default: float32, plus bfloat16 on a CPU with native "
        "bf16 matmul)",
    )
    p.add_argument(
        "--group-by-length",
        action="store_true",
        help="give the baseline Trainer group_by_length=True too (default: its default, off)",
    )
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    p.add_argument("--quick", action="store_true", help="one epoch, one run: under a minute on 2 cores")
    p.add_argument("--output", type=Path, default=common.RESULTS / "train.json")
    args = p.parse_args(argv)
    if args.quick:
        args.epochs, args.runs = 1, 1
    if args.precisions is None:
        args.precisions = ["bfloat16"] if args.bf16 else ["float32"]
        if not args.bf16 and args.device == "cpu" and common.cpu_has_bf16():
            args.precisions.append("bfloat16")
    return args


def our_config(args: argparse.Namespace, out: Path, cache: Path, precision: str = "float32") -> Any:
    from ie.training.config import load_config

    overrides = {
        "output_dir": out,
        "cache_dir": cache,
        "num_train_epochs": args.epochs,
        "logging_steps": 10_000,
        "mixed_precision": "bf16" if precision == "bfloat16" else "no",
        "save_total_limit": 1,
    }
    if args.batch_size:
        overrides["per_device_train_batch_size"] = args.batch_size
    if args.size == "base":
        overrides.update(BASE)
    flat = [x for k, v in overrides.items() for x in (f"--{k}", str(v))]
    return load_config(common.ROOT / "configs" / "cpu-tiny.yaml", flat)


def rows_and_encoder(cfg: Any, cache: Path) -> tuple[Path, list[dict[str, Any]], Any]:
    """The encoder dir ours builds (same spec, same cache) and the windows it trains on."""
    from transformers import AutoTokenizer

    from ie.core.schema import SCHEMA
    from ie.model.features import Featurizer
    from ie.training.data import load_split
    from ie.training.loop import resolve_encoder

    docs, _, _ = load_split(cfg)
    encoder = Path(resolve_encoder(cfg, docs, cache))
    tokenizer = AutoTokenizer.from_pretrained(encoder)
    featurizer = Featurizer(tokenizer, SCHEMA, cfg.window_length, cfg.window_stride)
    rows = []
    for enc, doc in zip(featurizer.encode([d.text for d in docs], [d.id for d in docs]), docs, strict=True):
        rows += featurizer.training_rows(enc, doc)[0]
    return encoder, rows, tokenizer


def run_ours(cfg: Any) -> dict[str, float]:
    from ie.training.loop import train

    out = train(cfg)
    results = json.loads((out / "train_results.json").read_text())
    tp = results["throughput"]
    return {"seconds": tp["loop_seconds"], "tokens": tp["tokens"], "steps": tp["steps"]}


def run_baseline(
    args: argparse.Namespace, cfg: Any, encoder: Path, rows: list, tokenizer: Any, out: Path, precision: str
) -> dict[str, float]:
    import torch
    from datasets import Dataset
    from transformers import (
        AutoModelForTokenClassification,
        DataCollatorForTokenClassification,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    from ie.core.schema import SCHEMA

    tags = list(SCHEMA.bio_labels)
    torch.manual_seed(cfg.seed)
    model = AutoModelForTokenClassification.from_pretrained(
        encoder,
        num_labels=len(tags),
        id2label=dict(enumerate(tags)),
        label2id={t: i for i, t in enumerate(tags)},
    )
    data = Dataset.from_list([{"input_ids": r["input_ids"], "labels": r["labels"]} for r in rows])
    targs = TrainingArguments(
        output_dir=str(out),
        per_device_train_batch_size=cfg.per_device_train_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        num_train_epochs=cfg.num_train_epochs,
        learning_rate=cfg.learning_rate,
        weight_decay=cfg.weight_decay,
        warmup_steps=cfg.warmup_ratio,  # a float in [0, 1) is a ratio of the total steps
        lr_scheduler_type=cfg.lr_scheduler_type,
        max_grad_norm=cfg.max_grad_norm,
        eval_strategy="no",
        save_strategy="no",
        logging_strategy="no",
        report_to=[],
        disable_tqdm=True,
        seed=cfg.seed,
        bf16=precision == "bfloat16",
        use_cpu=args.device == "cpu",
        train_sampling_strategy="group_by_length" if args.group_by_length else "random",
    )
    clock: dict[str, float] = {}

    class Clock(TrainerCallback):
        def on_train_begin(self, targs: Any, state: Any, control: Any, **k: Any) -> None:
            _sync(args.device)
            clock["begin"] = time.perf_counter()

        def on_train_end(self, targs: Any, state: Any, control: Any, **k: Any) -> None:
            _sync(args.device)
            clock["end"] = time.perf_counter()
            clock["steps"] = state.global_step

    trainer = Trainer(
        model=model,
        args=targs,
        train_dataset=data,
        callbacks=[Clock()],
        data_collator=DataCollatorForTokenClassification(tokenizer),
    )
    trainer.train()
    tokens = sum(len(r["input_ids"]) for r in rows) * cfg.num_train_epochs
    return {"seconds": clock["end"] - clock["begin"], "tokens": tokens, "steps": clock["steps"]}


def _sync(device: str) -> None:
    import torch

    if device != "cpu" and torch.cuda.is_available():
        torch.cuda.synchronize()


def main(argv: list[str] | None = None) -> int:
    import torch

    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cpu":
        import os

        os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # accelerate would pick a GPU otherwise
    started = time.perf_counter()
    load = common.load_average()
    peaks = common.peak_flops_by_dtype(args.device, args.precisions, seconds=1.0 if args.quick else 4.0)
    print(", ".join(f"peak {p} matmul: {v / 1e9:.1f} GFLOP/s" for p, v in peaks.items()), f"; load {load}")
    sides = [(who, p) for p in args.precisions for who in ("ours", "baseline")]
    times: dict[tuple[str, str], list[dict[str, float]]] = {side: [] for side in sides}
    with tempfile.TemporaryDirectory(prefix="ie-bench-train-") as tmp:
        work = Path(tmp)
        cache = work / "cache"
        cfg = our_config(args, work / "ours-0", cache)
        encoder, rows, tokenizer = rows_and_encoder(cfg, cache)
        lengths = [len(r["input_ids"]) for r in rows]
        n_pairs = sum(len(r["relation_pairs"]) for r in rows)
        from transformers import AutoConfig

        enc_cfg = AutoConfig.from_pretrained(encoder)
        print(
            f"{len(rows)} windows ({sum(lengths)} tokens, {n_pairs} relation candidate pairs) per epoch; "
            f"encoder {enc_cfg.num_hidden_layers} layers, hidden {enc_cfg.hidden_size}; batch size "
            f"{cfg.per_device_train_batch_size}; {args.epochs} epochs per run",
            flush=True,
        )
        for r in range(args.runs):
            for who, precision in sides:
                gc.collect()
                load = common.load_average()
                if who == "ours":
                    res = run_ours(our_config(args, work / f"ours-{precision}-{r}", cache, precision))
                else:
                    out = work / f"hf-{precision}-{r}"
                    res = run_baseline(args, cfg, encoder, rows, tokenizer, out, precision)
                res["load_average"] = load
                times[who, precision].append(res)
                print(
                    f"run {r + 1}/{args.runs} {who:>8} {precision:>8}: {res['steps']} steps, {res['tokens']} "
                    f"tokens in {res['seconds']:.2f} s = {res['tokens'] / res['seconds']:.0f} tokens/s "
                    f"(load {load})",
                    flush=True,
                )

    flops_per_token = common.encoder_flops(enc_cfg, lengths, backward=True) / sum(lengths)
    table, summary = [], {}
    for (who, precision), runs in times.items():
        rates = [x["tokens"] / x["seconds"] for x in runs]
        med = common.median(rates)
        mfu = med * flops_per_token / peaks[precision]
        summary[f"{who}-{precision}"] = {
            "runs": runs,
            "tokens_per_s": rates,
            "median_tokens_per_s": med,
            "model_flops_per_s": med * flops_per_token,
            "mfu": mfu,
        }
        table.append([who, precision, med, med * flops_per_token / 1e9, f"{100 * mfu:.1f}%"])
    print()
    common.print_table(["side", "precision", "tokens/s (median)", "GFLOP/s (encoder)", "MFU"], table)
    size = "CPU-sized" if args.size == "cpu" else "bert-base"
    comparisons = []
    for precision in args.precisions:
        o, b = summary[f"ours-{precision}"], summary[f"baseline-{precision}"]
        comparisons += [
            common.comparison(
                f"training {size} {precision}: tokens/s (ours: + relation head)",
                o["median_tokens_per_s"],
                b["median_tokens_per_s"],
                "tokens/s",
            ),
            common.comparison(
                f"training {size} {precision}: model FLOP/s, encoder (peak {peaks[precision] / 1e9:.0f})",
                o["model_flops_per_s"] / 1e9,
                b["model_flops_per_s"] / 1e9,
                "GFLOP/s",
            ),
        ]
    if {"float32", "bfloat16"} <= set(args.precisions):
        comparisons.append(
            common.comparison(
                f"training {size}: tokens/s, ours bfloat16 (+ relation head) vs Trainer default float32",
                summary["ours-bfloat16"]["median_tokens_per_s"],
                summary["baseline-float32"]["median_tokens_per_s"],
                "tokens/s",
            )
        )
    details = {
        "peak_matmul_flops": peaks,
        "windows_per_epoch": len(rows),
        "tokens_per_epoch": sum(lengths),
        "relation_pairs_per_epoch": n_pairs,
        "encoder": {"layers": enc_cfg.num_hidden_layers, "hidden": enc_cfg.hidden_size},
        "batch_size": cfg.per_device_train_batch_size,
        "sides": summary,
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    common.finish("bench/train.py", args, comparisons, details, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
