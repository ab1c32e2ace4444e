"""The one scorer: precision/recall/F1 from counts, and exact-match counting of spans and relations.

Training (the per-epoch figures in ``train_results.json``), the evaluation report and the event-level
scores all count through this module, so a figure means the same thing wherever it is printed.
Exact matching compares multisets of keys: a span is ``(start, end, label)``, a relation the keys of
both its spans and its label (span ids do not matter); a key predicted twice but gold once counts
one true positive and two predictions.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Sequence

from ie.core.document import Document, Span
from ie.core.schema import SCHEMA, Schema


def prf(tp: int, predicted: int, support: int) -> tuple[float, float, float]:
    """Precision, recall and F1 from true positives, predicted items and gold items (0 when undefined)."""
    p = tp / predicted if predicted else 0.0
    r = tp / support if support else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


class Tally:
    """``(tp, predicted, support)`` per key (a label, a role, ``"all"``), summed over documents."""

    def __init__(self) -> None:
        self.counts: dict[str, tuple[int, int, int]] = {}

    def add(self, key: str, tp: int, predicted: int, support: int) -> None:
        a, b, c = self.counts.get(key, (0, 0, 0))
        self.counts[key] = (a + tp, b + predicted, c + support)

    def add_matches(self, gold: Counter, pred: Counter, key: Callable[[Hashable], str]) -> None:
        """Count the exact matches between two multisets of keys, each under ``key(item)``."""
        for item, n in (gold & pred).items():
            self.add(key(item), n, 0, 0)
        for item, n in pred.items():
            self.add(key(item), 0, n, 0)
        for item, n in gold.items():
            self.add(key(item), 0, 0, n)

    def get(self, key: str) -> tuple[int, int, int]:
        return self.counts.get(key, (0, 0, 0))

    def total(self, keys: Iterable[str]) -> tuple[int, int, int]:
        """The counts of several keys summed (micro counts)."""
        rows = [self.get(k) for k in keys]
        return sum(r[0] for r in rows), sum(r[1] for r in rows), sum(r[2] for r in rows)

    def prf(self, key: str) -> tuple[float, float, float]:
        return prf(*self.get(key))


def span_key(s: Span) -> tuple[int, int, str]:
    return (s.start, s.end, s.label)


def relation_keys(doc: Document) -> Counter[tuple]:
    """Relations keyed by both spans' offsets and types and the label (span ids do not matter)."""
    spans = doc.spans_by_id
    keys: Counter[tuple] = Counter()
    for r in doc.relations:
        missing = [i for i in (r.head, r.tail) if i not in spans]
        if missing:
            raise ValueError(
                f"document {doc.id}: relation {r.head}->{r.tail} refers to missing span(s) {missing}"
            )
        keys[(*span_key(spans[r.head]), *span_key(spans[r.tail]), r.label)] += 1
    return keys


def exact_span_tally(pairs: Iterable[tuple[Document, Document]], labels: Iterable[str]) -> Tally:
    """Exact-span counts per label, over (gold, predicted) document pairs; other labels are ignored."""
    keep = set(labels)
    tally = Tally()
    for g, p in pairs:
        gold = Counter(span_key(s) for s in g.spans if s.label in keep)
        pred = Counter(span_key(s) for s in p.spans if s.label in keep)
        tally.add_matches(gold, pred, key=lambda k: k[2])
    return tally


def exact_relation_tally(pairs: Iterable[tuple[Document, Document]]) -> Tally:
    """Strict relation counts per relation label: both spans exact (offsets and types), label right."""
    tally = Tally()
    for g, p in pairs:
        tally.add_matches(relation_keys(g), relation_keys(p), key=lambda k: k[-1])
    return tally


def exact_match_scores(
    gold: Sequence[Document], pred: Sequence[Document], schema: Schema = SCHEMA
) -> dict[str, float]:
    """Micro P/R/F1 on exact spans per kind (``entity``, ``trigger``, ``span``: both) and on exact
    relations, plus ``combined_f1`` (mean of span and relation F1): the figures training logs and
    selects its best model on. The evaluation report gives the same exact figures beside seqeval's."""
    pairs = list(zip(gold, pred, strict=True))
    spans = exact_span_tally(pairs, schema.span_labels)
    relations = exact_relation_tally(pairs)
    counts = {
        "entity": spans.total(schema.entity_types),
        "trigger": spans.total(schema.trigger_types),
        "span": spans.total(schema.span_labels),
        "relation": relations.total(relations.counts),
    }
    out: dict[str, float] = {}
    for kind, c in counts.items():
        out[f"{kind}_precision"], out[f"{kind}_recall"], out[f"{kind}_f1"] = prf(*c)
    out["combined_f1"] = (out["span_f1"] + out["relation_f1"]) / 2
    return out
