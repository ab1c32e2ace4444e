"""The scorer (ie.core.scoring) and the report figures (ie.evaluation.metrics) on real seed text:
hand-checked figures, word-level seqeval, gold against itself."""

from __future__ import annotations

import dataclasses
import re

import pytest
from modelkit import GOLD

from ie.annotation.labelstudio import load_documents
from ie.core.document import Document, Relation, Span
from ie.core.schema import SCHEMA
from ie.core.scoring import exact_match_scores
from ie.evaluation.metrics import MISSED, exact_block, score, words
from ie.text.sentences import sentence_bounds


@pytest.fixture(scope="module")
def seed_docs() -> list[Document]:
    return load_documents(GOLD)


@pytest.fixture(scope="module")
def first_sentence(seed_docs: list[Document]) -> Document:
    """The first sentence of the first seed article with its gold spans and relations.

    13 spans: e1 FAC, e2 ACTOR, e3 ACTOR, e4 FAC, e5 FAC, e6 LOC, e7 LOC, t1 ATTACK, e8 ACTOR,
    e9 LOC, e10 NUM, t2 INJURED, e11 ACTOR. 10 relations: t1 -target-> e1, e2; t1 -location-> e4,
    e5, e6, e7; t1 -attacker-> e8; t2 -count-> e10; t2 -victim-> e11; t2 -cause-> t1.
    """
    doc = seed_docs[0]
    _, end = sentence_bounds(doc.text)[0]
    spans = [s for s in doc.spans if s.end <= end]
    ids = {s.id for s in spans}
    relations = [r for r in doc.relations if r.head in ids and r.tail in ids]
    return Document(doc.id, doc.text[:end], spans, relations, dict(doc.meta))


def _replace_span(doc: Document, span_id: str, **changes) -> Document:
    spans = []
    for s in doc.spans:
        if s.id == span_id:
            s = dataclasses.replace(s, **changes)
            s = dataclasses.replace(s, text=doc.text[s.start : s.end])
        spans.append(s)
    out = Document(doc.id, doc.text, spans, list(doc.relations), dict(doc.meta))
    out.check_offsets()
    return out


@pytest.fixture(scope="module")
def perturbed(first_sentence: Document) -> Document:
    """One missed span (e7), one wrong label (e3 ACTOR → LOC), one boundary error (e6 loses its
    first word) and one wrong relation label (t1 -target-> e2 becomes attacker)."""
    gold = first_sentence
    by_text = {s.text: s.id for s in gold.spans}
    assert by_text["جزيرة"] == "e7" and by_text["الولايات المتحدة الامريكية"] == "e3"
    assert by_text["بريف ديرالزور الشرقي"] == "e6" and by_text["لقوات التحالف الدولي"] == "e2"
    e6 = gold.span("e6")
    doc = _replace_span(gold, "e6", start=e6.start + len("بريف "))
    assert doc.span("e6").text == "ديرالزور الشرقي"
    doc = _replace_span(doc, "e3", label="LOC")
    doc.spans = [s for s in doc.spans if s.id != "e7"]
    relations = []
    for r in doc.relations:
        if r.tail == "e7":
            continue
        if (r.head, r.tail, r.label) == ("t1", "e2", "target"):
            r = Relation("t1", "e2", "attacker")
        relations.append(r)
    doc.relations = relations
    return doc


def _assert_prf(
    block: dict, expected: tuple[float, float, float], counts: tuple[int, int, int] | None = None
):
    assert (block["precision"], block["recall"], block["f1"]) == pytest.approx(expected, abs=1e-12)
    if counts is not None:
        assert (block["tp"], block["predicted"], block["support"]) == counts


def test_first_sentence_is_what_the_hand_counts_assume(first_sentence: Document):
    labels = [s.label for s in first_sentence.sorted_spans()]
    assert len(labels) == 13 and labels.count("ACTOR") == 4 and labels.count("LOC") == 3
    assert sorted(r.label for r in first_sentence.relations) == sorted(
        ["target"] * 2 + ["location"] * 4 + ["attacker", "count", "victim", "cause"]
    )


def test_hand_checked_entities(first_sentence: Document, perturbed: Document):
    s = score([first_sentence], [perturbed])
    ent = s["entities"]
    # 11 gold entities, 10 predicted (e7 gone); wrong: e3 (label), e6 (boundary) → 8 right
    for block in (ent, ent["exact"]):
        _assert_prf(block["micro"], (0.8, 8 / 11, 16 / 21), (8, 10, 11))
        pt = block["per_type"]
        _assert_prf(pt["ACTOR"], (1.0, 0.75, 6 / 7), (3, 3, 4))  # e3 left ACTOR
        _assert_prf(pt["LOC"], (1 / 3, 1 / 3, 1 / 3), (1, 3, 3))  # gold e6 e7 e9; pred e3' e6' e9
        _assert_prf(pt["FAC"], (1.0, 1.0, 1.0), (3, 3, 3))
        _assert_prf(pt["NUM"], (1.0, 1.0, 1.0), (1, 1, 1))
        for label in ("PERSON", "CIVILIAN", "WEAPON", "TIME"):
            assert pt[label]["f1"] is None and pt[label]["support"] == 0
        # macro over the 4 types present: ACTOR, LOC, FAC, NUM
        _assert_prf(
            block["macro"], ((1 + 1 / 3 + 1 + 1) / 4, (0.75 + 1 / 3 + 1 + 1) / 4, (6 / 7 + 1 / 3 + 2) / 4)
        )
        assert block["macro"]["types"] == 4
    _assert_prf(s["triggers"]["micro"], (1.0, 1.0, 1.0), (2, 2, 2))
    _assert_prf(s["spans"]["micro"], (10 / 12, 10 / 13, 0.8), (10, 12, 13))


def test_hand_checked_relations(first_sentence: Document, perturbed: Document):
    rel = score([first_sentence], [perturbed])["relations"]
    # 10 gold; 9 predicted (t1→e7 gone); wrong: t1→e6 (tail boundary), t1→e2 (label) → 7 right
    _assert_prf(rel["micro"], (7 / 9, 0.7, 14 / 19), (7, 9, 10))
    pt = rel["per_type"]
    _assert_prf(pt["target"], (1.0, 0.5, 2 / 3), (1, 1, 2))
    _assert_prf(pt["location"], (2 / 3, 0.5, 4 / 7), (2, 3, 4))
    _assert_prf(pt["attacker"], (0.5, 1.0, 2 / 3), (1, 2, 1))
    for label in ("count", "victim", "cause"):
        _assert_prf(pt[label], (1.0, 1.0, 1.0), (1, 1, 1))
    for label in ("instrument", "time"):
        assert pt[label]["f1"] is None
    assert rel["macro"]["f1"] == pytest.approx((2 / 3 + 4 / 7 + 2 / 3 + 3) / 6)


def test_training_figures_are_the_report_figures(first_sentence: Document, perturbed: Document):
    """The micro figures training logs per epoch come from the same scorer as the report: the hand
    counts above, once more, and duplicates count as in the report (multisets, not sets)."""
    logged = exact_match_scores([first_sentence], [perturbed])
    report = score([first_sentence], [perturbed])
    expected = {
        "entity": (0.8, 8 / 11, 16 / 21),
        "trigger": (1.0, 1.0, 1.0),
        "span": (10 / 12, 10 / 13, 0.8),
        "relation": (7 / 9, 0.7, 14 / 19),
    }
    blocks = {kind: report[name]["exact"]["micro"] for kind, name in
              (("entity", "entities"), ("trigger", "triggers"), ("span", "spans"))}  # fmt: skip
    blocks["relation"] = report["relations"]["micro"]
    for kind, prf in expected.items():
        got = tuple(logged[f"{kind}_{k}"] for k in ("precision", "recall", "f1"))
        assert got == pytest.approx(prf, abs=1e-12)
        assert got == tuple(blocks[kind][k] for k in ("precision", "recall", "f1"))
    assert logged["combined_f1"] == pytest.approx((0.8 + 14 / 19) / 2, abs=1e-12)

    # a span predicted twice (same offsets and label, another id) is one hit and two predictions
    e1 = first_sentence.span("e1")
    doubled = Document(first_sentence.id, first_sentence.text,
                       [*first_sentence.spans, dataclasses.replace(e1, id="e1bis")],
                       [*first_sentence.relations, Relation("t1", "e1bis", "target")])  # fmt: skip
    twice = exact_match_scores([first_sentence], [doubled])
    assert (twice["span_precision"], twice["span_recall"]) == (13 / 14, 1.0)
    assert (twice["relation_precision"], twice["relation_recall"]) == (10 / 11, 1.0)
    exact = exact_block([first_sentence], [doubled], SCHEMA.span_labels)["micro"]
    assert (exact["tp"], exact["predicted"], exact["support"], exact["precision"]) == (13, 14, 13, 13 / 14)


def test_hand_checked_confusion(first_sentence: Document, perturbed: Document):
    conf = score([first_sentence], [perturbed])["confusion"]
    m = conf["matrix"]
    assert m["ACTOR"]["LOC"] == 1  # e3
    assert m["ACTOR"]["ACTOR"] == 3 and m["FAC"]["FAC"] == 3 and m["LOC"]["LOC"] == 1
    assert m["LOC"][MISSED] == 2 and conf["boundary"]["LOC"] == 1  # e7 missed, e6 boundary
    assert conf["spurious"] == {label: int(label == "LOC") for label in SCHEMA.span_labels}  # e6'
    off_diagonal = sum(n for g, row in m.items() for p, n in row.items() if p not in (g, MISSED))
    assert off_diagonal == 1


def test_gold_against_itself_is_perfect(seed_docs: list[Document]):
    s = score(seed_docs, seed_docs)
    for kind in ("entities", "triggers", "spans"):
        for block in (s[kind], s[kind]["exact"]):
            assert block["micro"]["f1"] == 1.0 and block["macro"]["f1"] == 1.0
    assert s["relations"]["micro"]["f1"] == 1.0 and s["relations"]["macro"]["f1"] == 1.0
    assert s["spans"]["micro"]["support"] == sum(len(d.spans) for d in seed_docs)
    assert s["relations"]["micro"]["support"] == sum(len(d.relations) for d in seed_docs)
    assert all(n == 0 for n in s["confusion"]["spurious"].values())


def test_seqeval_sees_one_tag_per_word_never_a_subtoken(monkeypatch, first_sentence: Document, perturbed):
    """The sequences handed to seqeval have one tag per whitespace/punctuation word of the original
    text; a multi-word span gets B- then I- on its words."""
    import seqeval.metrics

    seen = []
    real = seqeval.metrics.classification_report

    def spy(y_true, y_pred, **kw):
        seen.append((y_true, y_pred, kw))
        return real(y_true, y_pred, **kw)

    monkeypatch.setattr(seqeval.metrics, "classification_report", spy)
    score([first_sentence], [first_sentence])
    assert seen and all(kw["mode"] == "strict" and kw["scheme"].__name__ == "IOB2" for *_, kw in seen)
    text = first_sentence.text
    independent = re.findall(r"[^\W_]+|[^\w\s]", text)  # this sentence has no diacritics or tatweel-only runs
    assert [text[a:b] for a, b in words(text)] == independent
    y_true, _, _ = seen[-1]  # all span labels
    assert len(y_true) == 1 and len(y_true[0]) == len(independent)
    i = independent.index("الولايات")
    assert independent[i : i + 3] == ["الولايات", "المتحدة", "الامريكية"]
    assert y_true[0][i : i + 4] == ["B-ACTOR", "I-ACTOR", "I-ACTOR", "O"]


def test_words_are_cut_at_span_boundaries_inside_a_word():
    # "بـ”الخفيفة”" from the first seed: a predicted span may start inside a pre-tokenizer word
    text = "وصفت بالخفيفة"
    assert [text[a:b] for a, b in words(text)] == ["وصفت", "بالخفيفة"]
    assert [text[a:b] for a, b in words(text, [6])] == ["وصفت", "ب", "الخفيفة"]


def test_mismatched_documents_and_overlaps_are_clear_errors(first_sentence: Document):
    other = Document("x", first_sentence.text, [])
    with pytest.raises(ValueError, match="differ in id"):
        score([first_sentence], [other])
    a, b = first_sentence.spans[:2]
    text = first_sentence.text
    overlapping = Document(
        first_sentence.id, text, [a, Span("z", a.start, b.end, "LOC", text[a.start : b.end])]
    )
    with pytest.raises(ValueError, match="overlap"):
        score([first_sentence], [overlapping])
