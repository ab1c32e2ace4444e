"""Inference speed: ``Extractor.extract_many`` (NER + relations + events) against the HF pipeline.

    python bench/inference.py                       # CPU-sized and bert-base-sized, 3 interleaved runs
    python bench/inference.py --model runs/cpu-tiny # a trained CPU-sized model instead of a random one
    python bench/inference.py --quick               # under a minute on 2 cores
    python bench/inference.py --device cuda --bf16  # on a GPU

Both sides read the same articles: the seed articles repeated until they hold ``--sentences``
sentences (counted with ``ie.document.sentence_bounds``). The baseline is what a user would
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
over the wall time of the whole run, against the peak FLOP/s of a large fp32 (bf16 with ``--bf16``)
``torch.matmul`` measured on the same machine just before.
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
    p.add_argument("--bf16", action="store_true", help="run both sides in bfloat16 (GPU)")
    p.add_argument(
        "--int8",
        action="store_true",
        help="also time our side with dynamic int8 quantization of the encoder's Linear layers",
    )
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    p.add_argument("--quick", action="store_true", help="fewer sentences, one run: under a minute on 2 cores")
    p.add_argument("--output", type=Path, default=common.RESULTS / "inference.json")
    args = p.parse_args(argv)
    if args.quick:
        args.sentences, args.base_sentences, args.runs = 300, 24, 1
    if args.base_sentences is None:
        args.base_sentences = args.sentences
    return args


# ---------------------------------------------------------------------------------------------
# models
# ---------------------------------------------------------------------------------------------


def _config(name: str) -> Any:
    from ie.training import load_config

    return load_config(common.ROOT / "configs" / name, ["--output_dir", "unused"])


def build_joint(size: str, work: Path, model: Path | None) -> Path:
    """Our model dir for a size: the trained one given, or a random-init one built here."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from ie.encoder import EncoderSpec, build_encoder
    from ie.modeling import JointModel

    if size == "cpu" and model is not None:
        return model
    tiny = _config("cpu-tiny.yaml")
    spec = EncoderSpec(
        vocab_size=tiny.scratch_vocab_size,
        hidden_size=tiny.scratch_hidden_size,
        num_hidden_layers=tiny.scratch_num_layers,
        num_attention_heads=tiny.scratch_num_heads,
        intermediate_size=tiny.scratch_intermediate_size,
        max_position_embeddings=max(512, tiny.window_length),
        seed=tiny.seed,
    )
    encoder = build_encoder(common.seed_texts(), work / "encoder-cpu", spec)
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
    out = work / f"joint-{size}"
    joint.save_pretrained(out)
    AutoTokenizer.from_pretrained(encoder).save_pretrained(out)
    return out


def build_baseline(joint_dir: Path, out: Path) -> Path:
    """An ``AutoModelForTokenClassification`` holding our encoder and our tagger weights."""
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from ie.modeling import JointModel

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
    def __init__(self, path: Path, device: str, bf16: bool, batch_size: int, int8: bool = False):
        import torch

        from ie.canonical import AliasTable
        from ie.extraction import Extractor, model_version
        from ie.prediction import Predictor

        dtype = torch.bfloat16 if bf16 else None
        predictor = Predictor.from_pretrained(path, device=device, dtype=dtype, int8=int8)
        self.extractor = Extractor(predictor, AliasTable.load(), model_version(path))
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


def bench_size(size: str, args: argparse.Namespace, work: Path, peak: float) -> tuple[list[dict], dict]:
    import torch

    sentences = args.sentences if size == "cpu" else args.base_sentences
    articles = common.replicated_articles(sentences)
    n_sent = sum(common.count_sentences(a["text"]) for a in articles)
    label = "CPU-sized" if size == "cpu" else "bert-base"
    print(f"\n== {label}: {len(articles)} articles, {n_sent} sentences ==", flush=True)
    joint_dir = build_joint(size, work, args.model)
    ours = Ours(joint_dir, args.device, args.bf16, args.batch_size)
    stride = ours.extractor.predictor.model.config.window_stride
    baseline = Baseline(
        build_baseline(joint_dir, work / f"baseline-{size}"), args.device, args.bf16, args.batch_size, stride
    )
    sides: dict[str, Any] = {"ours": ours, "baseline": baseline}
    if args.int8:
        sides["ours-int8"] = Ours(joint_dir, args.device, False, args.batch_size, int8=True)
    cfg = enc = ours.config
    print(
        f"encoder: {enc.num_hidden_layers} layers, hidden {enc.hidden_size}, window "
        f"{ours.extractor.predictor.model.config.window_length}/{stride}; batch size {args.batch_size}"
    )

    warm = articles[:5]
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
            "mfu": flops / med / peak,
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
                f"{100 * d['mfu']:.1f}%" + (" (fp32-equivalent)" if name.endswith("int8") else ""),
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
            f"inference {label}: achieved model FLOP/s (peak {peak / 1e9:.0f})",
            o["achieved_flops_per_s"] / 1e9,
            b["achieved_flops_per_s"] / 1e9,
            "GFLOP/s",
        ),
    ]
    if "ours-int8" in detail["sides"]:
        q = detail["sides"]["ours-int8"]
        q["agreement_with_float32"] = agreement(outputs["ours"], outputs["ours-int8"])
        print(f"int8 vs float32 outputs: {q['agreement_with_float32']}")
        comps.append(
            common.comparison(
                f"inference {label} int8: sentences/s",
                q["sentences_per_s"],
                b["sentences_per_s"],
                "sentences/s",
            )
        )
    del sides, ours, baseline, outputs
    gc.collect()
    if args.device != "cpu":
        torch.cuda.empty_cache()
    return comps, detail


def main(argv: list[str] | None = None) -> int:
    import torch

    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    dtype = torch.bfloat16 if args.bf16 else torch.float32
    load = common.load_average()
    peak = common.peak_matmul_flops(args.device, dtype)
    print(f"peak {dtype} matmul: {peak / 1e9:.1f} GFLOP/s on {args.device}; load average {load}", flush=True)
    comparisons, details = [], {"peak_matmul_flops": peak, "load_average_start": load, "sizes": {}}
    with tempfile.TemporaryDirectory(prefix="ie-bench-") as tmp:
        for size in args.sizes:
            comps, detail = bench_size(size, args, Path(tmp), peak)
            comparisons += comps
            details["sizes"][size] = detail
    details["wall_seconds"] = round(time.perf_counter() - started, 1)
    common.finish("bench/inference.py", args, comparisons, details, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
