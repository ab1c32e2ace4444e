"""Scores of predicted documents against gold ones: Documents in, numbers out (no model imports).

Entities and triggers are scored with seqeval in strict IOB2 mode on WORD-level tag sequences built
from the character spans: the words are the whitespace/punctuation tokens of the original text, so the
figures do not depend on any tokenizer and seqeval never sees a sub-token. Exact-span matching
``(start, end, label)`` is reported beside it (the two differ only when spans are not word-aligned).
Relations count as correct only when both argument spans are exact (offsets and types) and the
relation label is right. Every label list comes from :data:`ie.core.schema.SCHEMA`.

Every block of figures has the same shape::

    {"micro": {"precision", "recall", "f1", "tp", "predicted", "support"},
     "macro": {"precision", "recall", "f1", "types"},
     "per_type": {label: {"precision", "recall", "f1", "tp", "predicted", "support"}}}

``support`` is the number of gold items, ``predicted`` the number of predicted ones. A type with
neither gold nor predicted items has ``null`` precision/recall/F1 and is left out of the macro
average (seqeval's convention: the macro average runs over the types seen in gold or prediction).
"""

from __future__ import annotations

import bisect
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

from ie.core.document import Document, Span
from ie.core.schema import SCHEMA, Schema
from ie.core.scoring import exact_relation_tally, exact_span_tally, prf
from ie.text.arabic import is_word_char

MISSED = "(missed)"
SPURIOUS = "(spurious)"
SPAN_KINDS = ("entities", "triggers", "spans")


# ---------------------------------------------------------------------------------------------
# words and IOB2 tags
# ---------------------------------------------------------------------------------------------


def words(text: str, cuts: Iterable[int] = ()) -> list[tuple[int, int]]:
    """Word extents of ``text``: maximal runs of letters/digits/marks, and each other non-space
    character on its own (punctuation). A word is cut again at every offset in ``cuts`` that falls
    inside it, so that any span boundary is a word boundary (gold spans never need this: Label Studio
    import rejects spans that split a word)."""
    out: list[tuple[int, int]] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        j = i + 1
        if is_word_char(ch):
            while j < n and is_word_char(text[j]):
                j += 1
        out.append((i, j))
        i = j
    inner = sorted({c for c in cuts if 0 < c < n})
    if not inner:
        return out
    refined: list[tuple[int, int]] = []
    for start, end in out:
        for c in inner:
            if start < c < end:
                refined.append((start, c))
                start = c
        refined.append((start, end))
    return refined


def _flat(doc: Document, spans: Sequence[Span], role: str) -> list[Span]:
    ordered = sorted(spans, key=lambda s: (s.start, s.end))
    for a, b in zip(ordered, ordered[1:], strict=False):
        if b.start < a.end:
            raise ValueError(
                f"document {doc.id}: {role} spans {a.id} [{a.start}:{a.end}] {a.label} and "
                f"{b.id} [{b.start}:{b.end}] {b.label} overlap; IOB2 needs flat spans"
            )
    return ordered


def iob2_tags(
    doc: Document, spans: Sequence[Span], extents: Sequence[tuple[int, int]], role: str
) -> list[str]:
    """One IOB2 tag per word of ``extents`` for the given (flat) spans."""
    tags = ["O"] * len(extents)
    starts = [s for s, _ in extents]
    for span in _flat(doc, spans, role):
        k = bisect.bisect_left(starts, span.start)
        covered = []
        while k < len(extents) and extents[k][1] <= span.end:
            covered.append(k)
            k += 1
        if not covered:
            raise ValueError(
                f"document {doc.id}: {role} span {span.id} [{span.start}:{span.end}] {span.text!r} "
                "covers no word"
            )
        tags[covered[0]] = f"B-{span.label}"
        for k in covered[1:]:
            tags[k] = f"I-{span.label}"
    return tags


def tag_sequences(
    gold: Sequence[Document], pred: Sequence[Document], labels: Iterable[str]
) -> tuple[list[list[str]], list[list[str]]]:
    """Word-level IOB2 sequences (one per document) of the gold and predicted spans with ``labels``."""
    keep = set(labels)
    y_true, y_pred = [], []
    for g, p in _pairs(gold, pred):
        gs = [s for s in g.spans if s.label in keep]
        ps = [s for s in p.spans if s.label in keep]
        extents = words(g.text, (x for s in (*g.spans, *p.spans) for x in (s.start, s.end)))
        y_true.append(iob2_tags(g, gs, extents, "gold"))
        y_pred.append(iob2_tags(p, ps, extents, "predicted"))
    return y_true, y_pred


# ---------------------------------------------------------------------------------------------
# P/R/F1 blocks
# ---------------------------------------------------------------------------------------------


def _prf(tp: int, predicted: int, support: int) -> dict[str, Any]:
    p, r, f = prf(tp, predicted, support)
    return {"precision": p, "recall": r, "f1": f, "tp": tp, "predicted": predicted, "support": support}


def block_from_counts(counts: dict[str, tuple[int, int, int]], labels: Sequence[str]) -> dict[str, Any]:
    """A figures block from per-type ``(tp, predicted, support)`` counts."""
    per_type: dict[str, Any] = {}
    for label in labels:
        tp, predicted, support = counts.get(label, (0, 0, 0))
        if predicted == 0 and support == 0:
            per_type[label] = {"precision": None, "recall": None, "f1": None, "tp": 0, "predicted": 0,
                               "support": 0}  # fmt: skip
        else:
            per_type[label] = _prf(tp, predicted, support)
    seen = [v for v in per_type.values() if v["f1"] is not None]
    totals = [sum(v[k] for v in per_type.values()) for k in ("tp", "predicted", "support")]
    macro = {k: (sum(v[k] for v in seen) / len(seen) if seen else 0.0) for k in ("precision", "recall", "f1")}
    return {"micro": _prf(*totals), "macro": {**macro, "types": len(seen)}, "per_type": per_type}


def seqeval_block(
    gold: Sequence[Document], pred: Sequence[Document], labels: Sequence[str]
) -> dict[str, Any]:
    """seqeval strict IOB2 on word-level tags; P/R/F1 are seqeval's, the counts its entity sets."""
    from seqeval.metrics import classification_report
    from seqeval.scheme import IOB2, Entities

    y_true, y_pred = tag_sequences(gold, pred, labels)
    true_ents = Entities(y_true, IOB2, False)
    pred_ents = Entities(y_pred, IOB2, False)
    counts = {}
    for label in labels:
        t, p = set(true_ents.filter(label)), set(pred_ents.filter(label))
        counts[label] = (len(t & p), len(p), len(t))
    block = block_from_counts(counts, labels)
    if not any(c[1] or c[2] for c in counts.values()):
        return block  # nothing to score: seqeval has no types to report on
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # undefined P/R are reported as 0 by zero_division
        report = classification_report(
            y_true, y_pred, mode="strict", scheme=IOB2, output_dict=True, zero_division=0
        )
    for label, row in report.items():
        if label in block["per_type"]:
            _take(block["per_type"][label], row)
    _take(block["micro"], report["micro avg"])
    _take(block["macro"], report["macro avg"])
    return block


def _take(target: dict[str, Any], row: dict[str, Any]) -> None:
    target["precision"] = float(row["precision"])
    target["recall"] = float(row["recall"])
    target["f1"] = float(row["f1-score"])


def exact_block(gold: Sequence[Document], pred: Sequence[Document], labels: Sequence[str]) -> dict[str, Any]:
    """Exact-span matching: a predicted span is right when start, end and label all match."""
    tally = exact_span_tally(_pairs(gold, pred), labels)
    return block_from_counts({lab: tally.get(lab) for lab in labels}, labels)


def relation_block(
    gold: Sequence[Document], pred: Sequence[Document], schema: Schema = SCHEMA
) -> dict[str, Any]:
    """Strict relation P/R/F1: both argument spans exact (offsets and types) and the label right."""
    tally = exact_relation_tally(_pairs(gold, pred))
    labels = schema.relation_labels
    unknown = sorted(k for k, (_, predicted, _) in tally.counts.items() if predicted and k not in labels)
    if unknown:
        raise ValueError(f"predicted relation label(s) {unknown} are not in the schema")
    return block_from_counts({lab: tally.get(lab) for lab in labels}, labels)


# ---------------------------------------------------------------------------------------------
# confusion
# ---------------------------------------------------------------------------------------------


def span_confusion(
    gold: Sequence[Document], pred: Sequence[Document], schema: Schema = SCHEMA
) -> dict[str, Any]:
    """Gold label → predicted label for spans with the same offsets; the rest are missed/spurious.

    ``matrix[gold][pred]`` counts gold spans predicted at the same offsets (the diagonal is
    correct, the rest label confusions), with ``(missed)`` for gold spans with no predicted span at
    the same offsets. ``spurious[label]`` counts predicted spans with no gold span at their offsets.
    ``boundary[label]`` counts the missed gold spans that overlap a predicted span (a boundary error
    rather than a plain miss).
    """
    labels = list(schema.span_labels)
    matrix = {g: {p: 0 for p in [*labels, MISSED]} for g in labels}
    spurious = dict.fromkeys(labels, 0)
    boundary = dict.fromkeys(labels, 0)
    for g, p in _pairs(gold, pred):
        pred_at = {(s.start, s.end): s.label for s in p.spans}
        gold_at = {(s.start, s.end) for s in g.spans}
        for s in g.spans:
            got = pred_at.get((s.start, s.end))
            if got is None:
                matrix[s.label][MISSED] += 1
                if any(q.start < s.end and s.start < q.end for q in p.spans):
                    boundary[s.label] += 1
            else:
                matrix[s.label][got] += 1
        for s in p.spans:
            if (s.start, s.end) not in gold_at:
                spurious[s.label] += 1
    return {"labels": labels, "matrix": matrix, "spurious": spurious, "boundary": boundary}


# ---------------------------------------------------------------------------------------------
# everything
# ---------------------------------------------------------------------------------------------


def _pairs(gold: Sequence[Document], pred: Sequence[Document]) -> list[tuple[Document, Document]]:
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold documents but {len(pred)} predicted ones")
    for g, p in zip(gold, pred, strict=True):
        if g.id != p.id or g.text != p.text:
            raise ValueError(
                f"gold document {g.id} and predicted document {p.id} differ in "
                f"{'id' if g.id != p.id else 'text'}: predictions must follow the gold order"
            )
    return list(zip(gold, pred, strict=True))


def span_labels_of(kind: str, schema: Schema = SCHEMA) -> tuple[str, ...]:
    return {"entities": schema.entity_types, "triggers": schema.trigger_types, "spans": schema.span_labels}[
        kind
    ]


def score(gold: Sequence[Document], pred: Sequence[Document], schema: Schema = SCHEMA) -> dict[str, Any]:
    """All figures for one set of predictions.

    ``entities``/``triggers``/``spans`` (both together) hold the seqeval strict IOB2 block plus
    ``exact`` (exact-span block); ``relations`` the strict relation block; ``confusion`` the span-type
    confusion; ``counts`` the numbers of documents, gold and predicted spans and relations.
    """
    pairs = _pairs(gold, pred)
    out: dict[str, Any] = {}
    for kind in SPAN_KINDS:
        labels = span_labels_of(kind, schema)
        out[kind] = {**seqeval_block(gold, pred, labels), "exact": exact_block(gold, pred, labels)}
    out["relations"] = relation_block(gold, pred, schema)
    out["confusion"] = span_confusion(gold, pred, schema)
    out["counts"] = {
        "documents": len(pairs),
        "gold_spans": sum(len(g.spans) for g, _ in pairs),
        "predicted_spans": sum(len(p.spans) for _, p in pairs),
        "gold_relations": sum(len(g.relations) for g, _ in pairs),
        "predicted_relations": sum(len(p.relations) for _, p in pairs),
    }
    return out


def headline(scores: dict[str, Any]) -> dict[str, Any]:
    """The figures a summary table or a CV mean needs: micro and macro P/R/F1 of every block."""
    out: dict[str, Any] = {}
    for kind in (*SPAN_KINDS, "relations"):
        block = scores[kind]
        out[kind] = {
            avg: {k: block[avg][k] for k in ("precision", "recall", "f1")} for avg in ("micro", "macro")
        }
        if "exact" in block:
            out[kind]["exact"] = {k: block["exact"]["micro"][k] for k in ("precision", "recall", "f1")}
    return out


def mean_headline(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Element-wise mean of :func:`headline` dicts (the CV mean over folds)."""

    def avg(values: list[Any]) -> Any:
        if isinstance(values[0], dict):
            return {k: avg([v[k] for v in values]) for k in values[0]}
        return sum(values) / len(values)

    if not items:
        raise ValueError("nothing to average")
    return avg(list(items))
