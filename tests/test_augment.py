"""Training-time augmentation on the real seed gold: exact offsets, relations kept, determinism,
the training split only, number forms and clitic agreement (ie.training.augment)."""

from __future__ import annotations

import json

import pytest
from modelkit import CPU_TINY, GOLD, SMALL, gold_documents

import ie.training.loop as trainer
from ie.annotation.labelstudio import documents_to_tasks, validate_tasks
from ie.training.augment import (
    QUALIFIERS,
    augment_documents,
    dual,
    gazetteer_forms,
    join_clitics,
    number_form,
    split_clitics,
)
from ie.training.config import load_config
from ie.training.data import load_extra_train_docs


@pytest.fixture(scope="module")
def gold():
    return gold_documents()


@pytest.fixture(scope="module")
def augmented(gold):
    return augment_documents(gold, 3, 42, gazetteer_forms())


def test_every_augmented_document_validates_and_keeps_its_relations(gold, augmented):
    assert len(augmented) == 3 * len(gold)
    tasks = documents_to_tasks(augmented)
    for i, task in enumerate(tasks, start=1):
        task["id"] = i
    docs, problems = validate_tasks(tasks)
    assert problems == [] and len(docs) == len(augmented)
    originals = {d.id: d for d in gold}
    changed = 0
    for doc in augmented:
        doc.check_offsets()
        assert all(doc.text[s.start : s.end] == s.text for s in doc.spans)
        orig = originals[doc.meta["augmented_from"]]
        labels = {s.id: s.label for s in orig.spans}
        kept = {s.id for s in doc.spans}
        assert all(labels[s.id] == s.label for s in doc.spans)  # every span keeps its id and type
        assert set(doc.relations) <= set(orig.relations)  # same head, tail and role
        for r in set(orig.relations) - set(doc.relations):
            assert r.head not in kept or r.tail not in kept  # only a span folded into a dual goes
        dropped = set(labels) - kept
        assert all(labels[i] == "NUM" for i in dropped)
        changed += doc.text != orig.text
    assert changed == len(augmented)


def test_mentions_come_from_the_gazetteer_and_the_training_split(gold, augmented):
    gaz = {f for forms in gazetteer_forms().values() for f in forms}
    seen = {s.text for d in gold for s in d.spans}
    spans = [s for d in augmented for s in d.spans]
    assert any(any(s.text.endswith(f) for f in gaz) and s.text not in seen for s in spans)
    assert sum(s.text not in seen for s in spans if s.label == "NUM") >= 10


def test_same_seed_same_documents_other_seed_different(gold, augmented):
    again = augment_documents(gold, 3, 42, gazetteer_forms())
    assert [(d.id, d.text, d.spans, d.relations) for d in again] == [
        (d.id, d.text, d.spans, d.relations) for d in augmented
    ]
    other = augment_documents(gold, 3, 43, gazetteer_forms())
    assert [d.text for d in other] != [d.text for d in augmented]
    assert augment_documents(gold, 0, 42) == []


def test_number_forms():
    assert number_form(3, "words") == "ثلاثة"
    assert number_form(3, "words", masculine_noun=False) == "ثلاث"
    assert number_form(5, "indic") == "٥"
    assert number_form(23, "words") == "ثلاثة وعشرين"
    assert number_form(2, "words", genitive=False) == "اثنتان" or number_form(2, "words") == "اثنين"
    assert dual("قتلى", genitive=True) == "قتيلين" and dual("جرحى", genitive=False) == "جريحان"
    assert dual("عناصر", genitive=False) == "عنصران" and dual("مواقع", genitive=True) is None


def test_qualified_counts_and_duals_in_augmented_seeds(gold):
    docs = [d for seed in range(6) for d in augment_documents(gold, 2, seed, gazetteer_forms())]
    nums = [s.text for d in docs for s in d.spans if s.label == "NUM"]
    assert "أكثر من" in QUALIFIERS and any(n.startswith("أكثر من ") for n in nums)
    for n in nums:
        q = next((q for q in QUALIFIERS if n.startswith(q + " ")), None)
        if q is not None:
            assert len(n) > len(q) + 1  # the NUM span covers the qualifier and the number
    # "[[3|NUM]] [[إصابات|INJURED]]" (article 000) with 2: the dual trigger holds the count
    duals = [(d, s) for d in docs for s in d.spans if s.text in ("إصابتين", "إصابتان")]
    assert duals
    for doc, span in duals:
        assert span.label == "INJURED"
        roles = {r.label for r in doc.relations if r.head == span.id}
        assert "count" not in roles and {"victim", "cause"} <= roles


@pytest.mark.parametrize(
    ("mention", "clitics", "stem"),
    [
        ("بريف ديرالزور الشرقي", "ب", "ريف ديرالزور الشرقي"),
        ("للميليشيات الإيرانية", "ل", "الميليشيات الإيرانية"),
        ("لقوات التحالف الدولي", "ل", "قوات التحالف الدولي"),
        ("وبلدات ريفها الشرقي", "و", "بلدات ريفها الشرقي"),
        ("بالمنطقة", "ب", "المنطقة"),
        ("بادية البلدة", "", "بادية البلدة"),  # ب is part of the word
        ("لواء فاطميون", "", "لواء فاطميون"),
    ],
)
def test_clitics_split(mention, clitics, stem):
    assert split_clitics(mention, frozenset()) == (clitics, stem)
    assert join_clitics(clitics, stem) == mention


def test_clitics_agree_with_the_replacement():
    assert join_clitics("ب", "مدينة الميادين") == "بمدينة الميادين"  # بريف دير الزور → a place
    assert join_clitics("ل", "قسد") == "لقسد"  # لقوات التحالف → قسد keeps its ل
    assert join_clitics("ل", "الميليشيات الإيرانية") == "للميليشيات الإيرانية"  # ل + ال fuse
    assert join_clitics("و", "الحسكة") == "والحسكة" and join_clitics("ب", "البوكمال") == "بالبوكمال"


def test_replaced_seed_mentions_keep_their_clitics(gold, augmented):
    originals = {(d.id, s.id): s.text for d in gold for s in d.spans}
    checked = 0
    for doc in augmented:
        for s in doc.spans:
            old = originals[(doc.meta["augmented_from"], s.id)]
            if old.startswith("بريف") and s.text != old:
                assert s.text.startswith("ب")  # ببلدة القورية: ب + بلدة
                checked += 1
            if old.startswith("للميليشيات") and s.text != old:
                assert s.text.startswith("ل")
                checked += 1
    assert checked


def test_the_evaluation_articles_are_never_augmented(tmp_path, monkeypatch, gold):
    """A real (one-step) training run with eval_data: the evaluated documents are the held-out
    article as written; the training set is the other articles plus their copies."""
    held = tmp_path / "held.json"
    tasks = documents_to_tasks(gold[:1])
    tasks[0]["id"] = 1
    held.write_text(json.dumps(tasks, ensure_ascii=False), encoding="utf-8")
    seen: dict[str, list] = {}
    build, evaluate = trainer.build_dataset, trainer.evaluate_model

    def record_build(featurizer, docs, cache_dir):
        seen["train"] = list(docs)
        return build(featurizer, docs, cache_dir)

    def record_eval(accelerator, model, tokenizer, docs, *args, **kwargs):
        seen.setdefault("eval", []).extend(docs)
        return evaluate(accelerator, model, tokenizer, docs, *args, **kwargs)

    monkeypatch.setattr(trainer, "build_dataset", record_build)
    monkeypatch.setattr(trainer, "evaluate_model", record_eval)
    cfg = load_config(CPU_TINY, ["--output_dir", str(tmp_path / "m"), *SMALL, "--max_steps", "1",
                                         "--train_data", str(GOLD), "--eval_data", str(held),
                                         "--augment_factor", "2"])  # fmt: skip
    trainer.train(cfg)
    assert [(d.text, d.spans) for d in seen["eval"]] == [(gold[0].text, gold[0].spans)]
    train_texts = [d.text for d in seen["train"]]
    # the config's extra_train_data (the synthetic corpus) trains and is augmented too; never evaluated
    n_train = len(gold) - 1 + len(load_extra_train_docs(cfg))
    assert len(train_texts) == 3 * n_train and gold[0].text not in train_texts
    assert sum(d.meta.get("augmented_from") is not None for d in seen["train"]) == 2 * n_train
    results = json.loads((tmp_path / "m" / "train_results.json").read_text(encoding="utf-8"))
    assert "augmented" in json.dumps(results, ensure_ascii=False)


def test_a_number_word_keeps_the_gender_of_its_counted_noun(gold):
    """``ثلاث إصابات`` (feminine noun) stays without ة; ``اثنين`` and ``خمسة`` take the ة form."""
    from ie.core.document import Document, Span
    from ie.training.augment import augment_document

    text = "أسفر القصف عن ثلاث إصابات وعن مقتل اثنين من العناصر"
    spans = [Span("n1", 14, 18, "NUM", "ثلاث"), Span("n2", 35, 40, "NUM", "اثنين")]
    doc = Document("x", text, spans)
    doc.check_offsets()
    words = set()
    for copy in range(40):
        out = augment_document(doc, copy, 7, {}, frozenset())
        words |= {(s.id, s.text) for s in out.spans}
    feminine = {t for i, t in words if i == "n1" and t in ("ثلاث", "ثلاثة", "خمس", "خمسة", "سبع", "سبعة")}
    masculine = {t for i, t in words if i == "n2" and t in ("ثلاث", "ثلاثة", "خمس", "خمسة", "سبع", "سبعة")}
    assert feminine and all(not t.endswith("ة") for t in feminine)
    assert masculine and all(t.endswith("ة") for t in masculine)
