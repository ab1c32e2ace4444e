"""Two baselines: what exact string matching of the training mentions (dictionary) or of the gazetteer's
spellings (:class:`GazetteerBaseline`) already gets right.

Spans: every mention string of the training documents, labelled with its most frequent label, is
looked up in the text, longest strings first, whole words only, never overlapping a span already
placed. Relations (a trivial rule): each predicted span becomes the argument of the NEAREST trigger in
the same sentence that the schema allows as its head, with the relation label seen most often between
those two span types in training. The model's report puts its figures beside this one's, scored by
the same :mod:`ie.evaluation.metrics`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ie.core.document import Document, Relation, Span
from ie.core.schema import SCHEMA, Schema
from ie.text.arabic import splits_word
from ie.text.gazetteer import Gazetteer, Matcher
from ie.text.sentences import sentence_bounds

METHOD = (
    "exact string match of the training mentions (most frequent label per string), longest first, "
    "whole words, no overlaps"
)
RELATION_RULE = (
    "each predicted span is linked to the nearest schema-allowed trigger in its sentence, with the "
    "relation label most frequent in training for that (trigger type, argument type) pair"
)


def _majority(counts: Counter[str], order: Sequence[str]) -> str:
    """Most frequent label; ties go to the label first in schema order (deterministic)."""
    return max(counts, key=lambda label: (counts[label], -order.index(label)))


@dataclass
class DictionaryBaseline:
    lexicon: dict[str, str]
    pair_relations: dict[tuple[str, str], str]
    link_relations: bool = True
    schema: Schema = SCHEMA

    @classmethod
    def fit(
        cls, docs: Sequence[Document], link_relations: bool = True, schema: Schema = SCHEMA
    ) -> DictionaryBaseline:
        labels_of: dict[str, Counter[str]] = defaultdict(Counter)
        pairs: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
        for doc in docs:
            for s in doc.spans:
                if s.text.strip():
                    labels_of[s.text][s.label] += 1
            spans = doc.spans_by_id
            for r in doc.relations:
                pairs[(spans[r.head].label, spans[r.tail].label)][r.label] += 1
        lexicon = {text: _majority(c, schema.span_labels) for text, c in labels_of.items()}
        pair_relations = {pair: _majority(c, schema.relation_labels) for pair, c in pairs.items()}
        return cls(lexicon, pair_relations, link_relations, schema)

    def describe(self) -> dict[str, Any]:
        return {
            "method": METHOD,
            "relation_rule": RELATION_RULE if self.link_relations else "none",
            "mentions": len(self.lexicon),
        }

    def predict(self, texts: Sequence[str], ids: Sequence[str] | None = None) -> list[Document]:
        if isinstance(texts, str):
            raise TypeError("predict() takes a sequence of texts, not a single string")
        ids = list(ids) if ids is not None else [str(i) for i in range(len(texts))]
        return [self._predict_one(doc_id, text) for doc_id, text in zip(ids, texts, strict=True)]

    def predict_documents(self, docs: Sequence[Document]) -> list[Document]:
        """Predictions for the texts of ``docs`` (same ids and order), ready for
        :func:`ie.evaluation.metrics.score`."""
        return self.predict([d.text for d in docs], [d.id for d in docs])

    # -- internals -------------------------------------------------------------------------------
    def _predict_one(self, doc_id: str, text: str) -> Document:
        taken = bytearray(len(text))
        found: list[tuple[int, int, str]] = []
        for mention in sorted(self.lexicon, key=lambda m: (-len(m), m)):
            at = text.find(mention)
            while at != -1:
                end = at + len(mention)
                if not any(taken[at:end]) and not splits_word(text, at, end):
                    found.append((at, end, self.lexicon[mention]))
                    taken[at:end] = b"\x01" * len(mention)
                at = text.find(mention, at + 1)
        found.sort()
        spans = [Span(f"b{i + 1}", s, e, label, text[s:e]) for i, (s, e, label) in enumerate(found)]
        doc = Document(doc_id, text, spans)
        if self.link_relations:
            doc.relations = self._link(text, spans)
        return doc

    def _link(self, text: str, spans: list[Span]) -> list[Relation]:
        relations = []
        for lo, hi in sentence_bounds(text):
            inside = [s for s in spans if lo <= s.start and s.end <= hi]
            triggers = [s for s in inside if self.schema.is_trigger(s.label)]
            for arg in inside:
                heads = [t for t in triggers if t is not arg and (t.label, arg.label) in self.pair_relations]
                if not heads:
                    continue
                head = min(heads, key=lambda t: (max(t.start - arg.end, arg.start - t.end), t.start))
                relations.append(Relation(head.id, arg.id, self.pair_relations[(head.label, arg.label)]))
        return relations


GAZETTEER_METHOD = (
    "exact match of the gazetteer's spellings (places: LOC, or FAC for fields, bases, airports and "
    "crossings; actors: ACTOR; weapons: WEAPON) behind the proclitics و/ف + ب/ل/ك (لل for ال), longest "
    "first, whole words, no overlaps; the proclitics stay in the span, as the guidelines annotate"
)


@dataclass
class GazetteerBaseline:
    """What the knowledge the model is given (the gazetteer) finds on its own: entities only. It has
    no triggers, so no relations and no events; its figures show what the model adds to the table."""

    matcher: Matcher

    @classmethod
    def from_gazetteer(cls, gazetteer: Gazetteer | None = None) -> GazetteerBaseline:
        return cls(Matcher.from_gazetteer(gazetteer))

    def describe(self) -> dict[str, Any]:
        return {"method": GAZETTEER_METHOD, "relation_rule": "none", "surface_forms": len(self.matcher.forms)}

    def predict_documents(self, docs: Sequence[Document]) -> list[Document]:
        return [self._predict_one(d.id, d.text) for d in docs]

    def _predict_one(self, doc_id: str, text: str) -> Document:
        found = self.matcher.find(text)
        spans = [Span(f"g{i + 1}", s, e, label, text[s:e]) for i, (s, e, label) in enumerate(found)]
        return Document(doc_id, text, spans)
