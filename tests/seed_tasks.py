"""Real annotated documents built from the seed articles, for tests that must not wait for the gold file.

Spans are located by searching the seed text for a phrase as a whole word, so every offset is
computed from the article itself; a phrase that is missing or only occurs inside a longer word
makes the test fail loudly instead of producing a bad span.
"""

from __future__ import annotations

from pathlib import Path

from modelkit import GOLD, ROOT, SEEDS

from ie.annotation.labelstudio import load_documents
from ie.core.document import Document, Relation, Span
from ie.text.arabic import is_word_char

# seed prefix -> (spans as (phrase, label, id), relations as (head id, relation, tail id))
SEED_ANNOTATIONS: dict[str, tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]] = {
    "000": (
        [("قوات التحالف الدولي", "ACTOR", "a1"), ("سوريا", "LOC", "l1"), ("مقتل", "KILLED", "k1"),
         ("ثلاثة", "NUM", "n1")],
        [("k1", "count", "n1")],
    ),
    "001": (
        [("الهجوم", "ATTACK", "t1"), ("مساء يوم الاثنين", "TIME", "tm1"), ("حقل كونيكو", "FAC", "f1")],
        [("t1", "time", "tm1"), ("t1", "target", "f1")],
    ),
    "002": (
        [("طائرات حربية", "WEAPON", "w1"), ("غارات", "ATTACK", "t1"), ("ديرالزور", "LOC", "l1")],
        [("t1", "instrument", "w1"), ("t1", "location", "l1")],
    ),
    "003": (
        [("التحالف", "ACTOR", "a1"), ("يقصف", "ATTACK", "t1"), ("ديرالزور", "LOC", "l1")],
        [("t1", "attacker", "a1"), ("t1", "location", "l1")],
    ),
    "004": (
        [("غارات", "ATTACK", "t1"), ("دير الزور", "LOC", "l1"), ("12 نوفمبر", "TIME", "tm1")],
        [("t1", "location", "l1")],
    ),
}  # fmt: skip


def seed_paths() -> list[Path]:
    return list(SEEDS)


def seed_text(prefix: str) -> str:
    (path,) = [p for p in seed_paths() if p.name.startswith(prefix)]
    return path.read_text(encoding="utf-8")


def find_word(text: str, phrase: str, start: int = 0) -> int:
    """Offset of the first occurrence of ``phrase`` that neither starts nor ends inside a word."""
    pos = text.find(phrase, start)
    while pos != -1:
        end = pos + len(phrase)
        if (pos == 0 or not is_word_char(text[pos - 1])) and (
            end == len(text) or not is_word_char(text[end])
        ):
            return pos
        pos = text.find(phrase, pos + 1)
    raise AssertionError(f"{phrase!r} does not occur as a whole word")


def word_span(text: str, phrase: str, label: str, span_id: str) -> Span:
    start = find_word(text, phrase)
    return Span(span_id, start, start + len(phrase), label, text[start : start + len(phrase)])


def seed_documents() -> list[Document]:
    """The five seeds with a few real spans and relations each (ids 1..5, meta ``source``)."""
    docs = []
    for task_id, path in enumerate(seed_paths(), start=1):
        text = path.read_text(encoding="utf-8")
        spans, relations = SEED_ANNOTATIONS[path.name[:3]]
        docs.append(
            Document(
                str(task_id),
                text,
                [word_span(text, phrase, label, sid) for phrase, label, sid in spans],
                [Relation(h, t, label) for h, label, t in relations],
                {"source": path.name},
            )
        )
    return docs


def gold_or_seed_documents() -> tuple[list[Document], str]:
    """The gold annotations when data/annotations/seeds.json exists, else :func:`seed_documents`."""
    if GOLD.exists():
        return load_documents(GOLD), str(GOLD.relative_to(ROOT))
    return seed_documents(), "spans computed from seeds/"


def with_scores(doc: Document) -> Document:
    """A copy with deterministic, distinct model scores, as a prediction file carries them."""
    n = max(len(doc.spans), 1)
    spans = [Span(s.id, s.start, s.end, s.label, s.text, round(0.5 + 0.49 * i / n, 4)) for i, s in
             enumerate(doc.sorted_spans())]  # fmt: skip
    relations = [Relation(r.head, r.tail, r.label, 0.75) for r in doc.relations]
    return Document(doc.id, doc.text, spans, relations, dict(doc.meta))
