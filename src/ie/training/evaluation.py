"""Evaluation during training: exact-match figures on the eval split, predicted across processes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ie.core.document import Document
from ie.core.schema import SCHEMA
from ie.model.modeling import JointModel


def _prf(tp: int, n_pred: int, n_gold: int) -> tuple[float, float, float]:
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def exact_match_scores(gold: Sequence[Document], pred: Sequence[Document]) -> dict[str, float]:
    """Micro P/R/F1 on exact spans (label, start, end) per kind, and on exact relations (both spans
    exact, label right). The full report with seqeval lives in the evaluation module."""
    counts: dict[str, list[int]] = {k: [0, 0, 0] for k in ("entity", "trigger", "span", "relation")}
    for g, p in zip(gold, pred, strict=True):
        gs = {(s.start, s.end, s.label) for s in g.spans}
        ps = {(s.start, s.end, s.label) for s in p.spans}
        for kind in ("entity", "trigger"):
            gk = {s for s in gs if SCHEMA.kind(s[2]) == kind}
            pk = {s for s in ps if SCHEMA.kind(s[2]) == kind}
            counts[kind] = [
                a + b for a, b in zip(counts[kind], (len(gk & pk), len(pk), len(gk)), strict=True)
            ]
        counts["span"] = [
            a + b for a, b in zip(counts["span"], (len(gs & ps), len(ps), len(gs)), strict=True)
        ]
        gsp, psp = g.spans_by_id, p.spans_by_id

        def key(spans: dict, r: Any) -> tuple:
            h, t = spans[r.head], spans[r.tail]
            return (h.start, h.end, h.label, t.start, t.end, t.label, r.label)

        gr = {key(gsp, r) for r in g.relations}
        pr = {key(psp, r) for r in p.relations}
        counts["relation"] = [
            a + b for a, b in zip(counts["relation"], (len(gr & pr), len(pr), len(gr)), strict=True)
        ]
    out: dict[str, float] = {}
    for kind, (tp, n_pred, n_gold) in counts.items():
        out[f"{kind}_precision"], out[f"{kind}_recall"], out[f"{kind}_f1"] = _prf(tp, n_pred, n_gold)
    out["combined_f1"] = (out["span_f1"] + out["relation_f1"]) / 2
    return out


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
