"""Inference speed: ``Extractor.extract_many`` (NER + relations + events) against the HF pipeline.

    python bench/inference.py                       # CPU-sized and bert-base-sized, 3 interleaved runs
    python bench/inference.py --model runs/cpu-tiny # a trained CPU-sized model instead of a random one
    python bench/inference.py --quick               # under a minute on 2 cores
    python bench/inference.py --device cuda --bf16  # on a GPU, both sides in bfloat16

Both sides read the same articles: the seed articles repeated until they hold ``--sentences``
sentences (counted with ``ie.core.document.sentence_bounds``). The baseline is what a user would
otherwise write: ``transformers.pipeline("token-classification", aggregation_strategy="simple",
batch_size=...)`` over an ``AutoModelForTokenClassification`` with the SAME encoder weights and the
same tagger weights as our model (so it tags the same tokens), reading every article whole with
the same window length and overlap (``stride=``) as ours: neither side truncates.

Two sizes: the CPU-sized model of ``configs/cpu-tiny.yaml`` (``--model DIR`` to use a trained one,
else random init) and bert-base (``BertConfig`` defaults: 12 layers, 768 hidden; random init; the
corpus WordPiece tokenizer; windows of ``configs/arabert.yaml``). Speed does not depend on the
weights, but the amount of relation and event work does: the table says how many spans and
relations our side produced.

Achieved model FLOP/s counts the useful encoder FLOPs (no padding; see ``common.encoder_flops``)
over the wall time of the whole run, against the peak FLOP/s of a large ``torch.matmul`` in the
side's precision, measured on the same machine just before (int8 is counted against float32).

On CPU, our side also runs in bfloat16 (CPUs with AVX512-BF16 or AMX) and int8 (dynamic
quantization): ``ie-extract --precision``. Each is timed against the same float32 pipeline, and its
entities and relations are compared with our float32 run (exact-match F1: the tolerance).
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import common

SIZES = ("cpu", "base")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, help="trained CPU-sized model dir (default: random init)")
    p.add_argument("--sizes", nargs="+", choices=SIZES, default=list(SIZES))
    p.add_argument("--sentences", type=int, default=2000, help="minimum sentences per run (default 2000)")
    p.add_argument(
        "--base-sentences",
        type=int,
        default=None,
        help="minimum sentences for the bert-base size (default: --sentences)",
    )
    p.add_argument("--runs", type=int, default=3, help="interleaved repetitions per side (default 3)")
    p.add_argument("--batch-size", type=int, default=16, help="windows per forward pass, both sides")
    p.add_argument("--device", default="cpu")
    p.add_argument("--bf16", action="store_true", help="run BOTH sides in bfloat16 (a GPU)")
    p.add_argument(
        "--precisions",
        nargs="+",
        choices=("float32", "bfloat16", "int8"),
        default=None,
        help="our side's precisions, each timed against the float32 pipeline (default on CPU: float32, "
        "plus bfloat16 where the CPU has native bf16 matmul, plus int8)",
    )
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    p.add_argument("--quick", action="store_true", help="fewer sentences, one run: under a minute on 2 cores")
    p.add_argument("--output", type=Path, default=common.RESULTS / "inference.json")
    args = p.parse_args(argv)
    if args.quick:
        args.sentences, args.base_sentences, args.runs = 300, 24, 1
    if args.base_sentences is None:
        args.base_sentences = args.sentences
    if args.precisions is None:
        args.precisions = ["bfloat16"] if args.bf16 else ["float32"]
        if args.device == "cpu":
            args.precisions += (["bfloat16"] if common.cpu_has_bf16() else []) + ["int8"]
    return args


# ---------------------------------------------------------------------------------------------
# models
# ---------------------------------------------------------------------------------------------


def _config(name: str) -> Any:
    from ie.training.config import load_config

    return load_config(common.ROOT / "configs" / name, ["--output_dir", "unused"])


def build_joint(size: str, work: Path, model: Path | None, calibration_steps: int = 30) -> Path:
    """Our model dir for a size: the trained one given, or a random-init one built here."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from ie.model.encoder import build_encoder
    from ie.model.modeling import JointModel
    from ie.training.config import scratch_encoder_spec

    if size == "cpu" and model is not None:
        return model
    tiny = _config("cpu-tiny.yaml")
    encoder = build_encoder(common.seed_texts(), work / "encoder-cpu", scratch_encoder_spec(tiny))
    cfg = tiny
    if size == "base":
        cfg = _config("arabert.yaml")
        tokenizer = AutoTokenizer.from_pretrained(encoder)
        torch.manual_seed(0)
        bert = BertModel(
            BertConfig(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id),
            add_pooling_layer=False,
        )
        encoder = work / "encoder-base"
        bert.save_pretrained(encoder)
        tokenizer.save_pretrained(encoder)
        del bert
    torch.manual_seed(0)
    joint = JointModel.from_encoder(
        encoder,
        window_length=cfg.window_length,
        window_stride=cfg.window_stride,
        relation_hidden_size=cfg.relation_hidden_size,
        classifier_dropout=cfg.classifier_dropout,
    )
    calibrate(joint, AutoTokenizer.from_pretrained(encoder), calibration_steps)
    out = work / f"joint-{size}"
    joint.save_pretrained(out)
    AutoTokenizer.from_pretrained(encoder).save_pretrained(out)
    return out


def calibrate(joint: Any, tokenizer: Any, steps: int = 30) -> None:
    """Set the heads' "nothing here" biases so that the random-init model emits as many spans and
    relations on the seeds as the gold annotation holds.

    The encoder's speed does not depend on its weights, but ours does more after it: decoding,
    relation scoring, event assembly, all in proportion to what the model finds. Random heads tag
    every other word and relate most candidate pairs (~30x the gold relations): a workload no
    trained model produces. Calibrated, the random model does the work a trained one does. The
    encoder runs once; its outputs are reused while the two biases are bisected.
    """
    import json

    import torch

    from ie.model.prediction import Predictor

    gold = json.loads(common.GOLD.read_text(encoding="utf-8"))
    results = [r for task in gold for r in task["annotations"][0]["result"]]
    n_spans = sum(r["type"] == "labels" for r in results)
    n_relations = sum(r["type"] == "relation" for r in results)
    texts = [task["data"]["text"] for task in gold]

    joint.eval()
    predictor = Predictor(joint, tokenizer, "cpu")
    encode, cache = joint.encode, {}

    def cached_encode(input_ids: torch.Tensor, attention_mask: Any = None, *rest: Any) -> torch.Tensor:
        key = input_ids.numpy().tobytes() + (
            b"" if attention_mask is None else attention_mask.numpy().tobytes()
        )
        if key not in cache:
            cache[key] = encode(input_ids, attention_mask, *rest)
        return cache[key]

    def bisect(bias: torch.Tensor, index: int, count: Any, target: int) -> None:
        low, high = -20.0, 20.0  # the count falls as the "nothing" bias rises
        for _ in range(steps):
            with torch.no_grad():
                bias[index] = (low + high) / 2
            if count() > target:
                low = float(bias[index])
            else:
                high = float(bias[index])

    joint.encode = cached_encode
    try:
        with torch.no_grad():
            joint.relation_classifier[-1].bias[0] = 20.0  # no relations while the tags are calibrated
        o = joint.config.label2id["O"]
        bisect(
            joint.token_classifier.bias,
            o,
            lambda: sum(len(d.spans) for d in predictor.predict(texts)),
            n_spans,
        )
        bisect(
            joint.relation_classifier[-1].bias,
            0,  # NO_RELATION
            lambda: sum(len(d.relations) for d in predictor.predict(texts)),
            n_relations,
        )
    finally:
        del joint.encode  # back to the class method


def build_baseline(joint_dir: Path, out: Path) -> Path:
    """An ``AutoModelForTokenClassification`` holding our encoder and our tagger weights."""
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from ie.model.modeling import JointModel

    joint = JointModel.from_pretrained(joint_dir)
    enc_cfg = joint.config.encoder_config
    enc_cfg.num_labels = joint.config.num_labels
    enc_cfg.id2label = dict(joint.config.id2label)
    enc_cfg.label2id = dict(joint.config.label2id)
    model = AutoModelForTokenClassification.from_config(enc_cfg)
    base = getattr(model, model.base_model_prefix)
    missing, unexpected = base.load_state_dict(joint.backbone.state_dict(), strict=False)
    if unexpected or any("pooler" not in k for k in missing):
        raise RuntimeError(f"encoder weights do not fit: missing {missing}, unexpected {unexpected}")
    model.classifier.load_state_dict(joint.token_classifier.state_dict())
    model.save_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(joint_dir)
    tokenizer.model_max_length = joint.config.window_length
    tokenizer.save_pretrained(out)
    return out


# ---------------------------------------------------------------------------------------------
# the two sides
# ---------------------------------------------------------------------------------------------


class Ours:
    def __init__(self, path: Path, device: str, precision: str, batch_size: int):
        from ie.events.canonical import AliasTable
        from ie.events.extraction import Extractor, model_version
        from ie.model.prediction import Predictor

        predictor = Predictor.from_pretrained(path, device=device, precision=precision)
        self.extractor = Extractor(predictor, AliasTable.load(), model_version(path), pause_gc=True)
        self.batch_size = batch_size
        self.config = predictor.model.config.encoder_config

    def __call__(self, articles: list[dict[str, str]]) -> list[Any]:
        records = list(self.extractor.extract_many(articles, batch_size=self.batch_size))
        failed = [r for r in records if not hasattr(r, "events")]
        if failed:
            raise RuntimeError(f"{len(failed)} articles failed, e.g. {failed[0]}")
        return records

    def lengths(self, articles: list[dict[str, str]]) -> list[int]:
        f = self.extractor.predictor.featurizer
        extra = len(f.prefix) + len(f.suffix)
        return [e - s + extra for enc in f.encode([a["text"] for a in articles]) for s, e in enc.windows]


class Baseline:
    def __init__(self, path: Path, device: str, bf16: bool, batch_size: int, stride: int):
        import torch
        from transformers import pipeline

        kwargs = {"dtype": torch.bfloat16} if bf16 else {}
        self.pipe = pipeline(
            "token-classification",
            model=str(path),
            aggregation_strategy="simple",
            batch_size=batch_size,
            device=device,
            **kwargs,
        )
        self.stride = stride

    def __call__(self, articles: list[dict[str, str]]) -> list[Any]:
        return self.pipe([a["text"] for a in articles], stride=self.stride)

    def lengths(self, articles: list[dict[str, str]]) -> list[int]:
        tok = self.pipe.tokenizer
        enc = tok(
            [a["text"] for a in articles],
            truncation=True,
            stride=self.stride,
            return_overflowing_tokens=True,
            max_length=tok.model_max_length,
        )
        return [sum(m) for m in enc["attention_mask"]]


def agreement(a: list[Any], b: list[Any]) -> dict[str, float]:
    """Exact-match F1 of entities (start, end, label) and relations between two runs' records."""

    def f1(x: set, y: set) -> float:
        return 2 * len(x & y) / (len(x) + len(y)) if x or y else 1.0

    def entities(recs: list[Any]) -> set:
        return {(r.id, e.start, e.end, e.label) for r in recs for e in r.entities}

    def relations(recs: list[Any]) -> set:
        return {
            (r.id, x.head.start, x.head.end, x.tail.start, x.tail.end, x.label)
            for r in recs
            for x in r.relations
        }

    return {
        "entities_f1": round(f1(entities(a), entities(b)), 4),
        "relations_f1": round(f1(relations(a), relations(b)), 4),
    }


# ---------------------------------------------------------------------------------------------


def bench_size(
    size: str, args: argparse.Namespace, work: Path, peaks: dict[str, float]
) -> tuple[list[dict], dict]:
    import torch

    sentences = args.sentences if size == "cpu" else args.base_sentences
    articles = common.replicated_articles(sentences)
    n_sent = sum(common.count_sentences(a["text"]) for a in articles)
    label = "CPU-sized" if size == "cpu" else "bert-base"
    print(f"\n== {label}: {len(articles)} articles, {n_sent} sentences ==", flush=True)
    joint_dir = build_joint(size, work, args.model, 14 if args.quick else 30)
    names = {p: "ours" if p == args.precisions[0] else f"ours-{p}" for p in args.precisions}
    sides: dict[str, Any] = {
        names[p]: Ours(joint_dir, args.device, p, args.batch_size) for p in args.precisions
    }
    ours = sides["ours"]
    stride = ours.extractor.predictor.model.config.window_stride
    sides["baseline"] = Baseline(
        build_baseline(joint_dir, work / f"baseline-{size}"), args.device, args.bf16, args.batch_size, stride
    )
    precision_of = {v: k for k, v in names.items()}
    precision_of["baseline"] = "bfloat16" if args.bf16 else "float32"
    cfg = enc = ours.config
    print(
        f"encoder: {enc.num_hidden_layers} layers, hidden {enc.hidden_size}, window "
        f"{ours.extractor.predictor.model.config.window_length}/{stride}; batch size {args.batch_size}"
    )

    warm = articles[: 1 if args.quick else 5]
    for side in sides.values():  # load lazily-built kernels and caches outside the timing
        side(warm)
    times: dict[str, list[float]] = {k: [] for k in sides}
    outputs: dict[str, Any] = {}
    for r in range(args.runs):
        for name, side in sides.items():
            gc.collect()
            load = common.load_average()
            seconds, outputs[name] = common.timed(lambda side=side: side(articles), args.device)
            times[name].append(seconds)
            print(
                f"run {r + 1}/{args.runs} {name:>9}: {seconds:7.2f} s  "
                f"{n_sent / seconds:8.1f} sentences/s  (load {load})",
                flush=True,
            )

    rows: list[list[Any]] = []
    detail: dict[str, Any] = {
        "articles": len(articles),
        "sentences": n_sent,
        "batch_size": args.batch_size,
        "layers": enc.num_hidden_layers,
        "hidden": enc.hidden_size,
        "sides": {},
    }
    for name, side in sides.items():
        med = common.median(times[name])
        lengths = side.lengths(articles)
        flops = common.encoder_flops(cfg, lengths)
        d = {
            "seconds": [round(t, 3) for t in times[name]],
            "median_seconds": round(med, 3),
            "sentences_per_s": n_sent / med,
            "articles_per_s": len(articles) / med,
            "windows": len(lengths),
            "tokens": sum(lengths),
            "model_flops": flops,
            "achieved_flops_per_s": flops / med,
            "precision": precision_of[name],
            "mfu": flops / med / peaks[precision_of[name]],
        }
        if name.startswith("ours"):
            recs = outputs[name]
            d["entities"] = sum(len(x.entities) for x in recs)
            d["relations"] = sum(len(x.relations) for x in recs)
            d["events"] = sum(len(x.events.strikes) + len(x.events.casualties) for x in recs)
        else:
            d["entities"] = sum(len(x) for x in outputs[name])
        detail["sides"][name] = d
        rows.append(
            [
                f"{label} {name}",
                d["sentences_per_s"],
                d["articles_per_s"],
                d["tokens"],
                d["achieved_flops_per_s"] / 1e9,
                f"{100 * d['mfu']:.1f}%" + (" of fp32" if name.endswith("int8") else ""),
                d["entities"],
                d.get("relations", "-"),
            ]
        )
    common.print_table(
        ["side", "sentences/s", "articles/s", "tokens", "GFLOP/s", "MFU", "spans", "relations"], rows
    )
    o, b = detail["sides"]["ours"], detail["sides"]["baseline"]
    comps = [
        common.comparison(
            f"inference {label}: sentences/s", o["sentences_per_s"], b["sentences_per_s"], "sentences/s"
        ),
        common.comparison(
            f"inference {label}: articles/s", o["articles_per_s"], b["articles_per_s"], "articles/s"
        ),
        common.comparison(
            f"inference {label}: achieved model FLOP/s (peak {peaks[precision_of['ours']] / 1e9:.0f})",
            o["achieved_flops_per_s"] / 1e9,
            b["achieved_flops_per_s"] / 1e9,
            "GFLOP/s",
        ),
    ]
    for name in sides:
        if name in ("ours", "baseline"):
            continue
        q = detail["sides"][name]
        q["agreement_with_ours"] = agreement(outputs["ours"], outputs[name])
        print(f"{name} vs {precision_of['ours']} outputs: {q['agreement_with_ours']}")
        comps.append(
            common.comparison(
                f"inference {label} {precision_of[name]}: sentences/s",
                q["sentences_per_s"],
                b["sentences_per_s"],
                "sentences/s",
            )
        )
    del sides, ours, outputs
    gc.collect()
    if args.device != "cpu":
        torch.cuda.empty_cache()
    return comps, detail


def main(argv: list[str] | None = None) -> int:
    import torch

    from ie.model.prediction import tune_cpu_memory

    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    tune_cpu_memory()  # what ie-extract switches on, so the figures are those of the CLI
    started = time.perf_counter()
    load = common.load_average()
    dtypes = sorted({"float32", "bfloat16" if args.bf16 else "float32", *args.precisions} - {"int8"})
    peaks = common.peak_flops_by_dtype(args.device, dtypes, seconds=1.0 if args.quick else 4.0)
    for precision, peak in peaks.items():
        print(f"peak {precision} matmul: {peak / 1e9:.1f} GFLOP/s on {args.device}", flush=True)
    if "int8" in args.precisions:
        peaks["int8"] = peaks["float32"]  # dynamic int8 is counted against the float32 peak
    print(f"load average {load}", flush=True)
    comparisons, details = [], {"peak_matmul_flops": peaks, "load_average_start": load, "sizes": {}}
    with tempfile.TemporaryDirectory(prefix="ie-bench-") as tmp:
        for size in args.sizes:
            comps, detail = bench_size(size, args, Path(tmp), peaks)
            comparisons += comps
            details["sizes"][size] = detail
    details["wall_seconds"] = round(time.perf_counter() - started, 1)
    common.finish("bench/inference.py", args, comparisons, details, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
