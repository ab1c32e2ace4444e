"""The gold annotations: valid, exact offsets, seed texts byte for byte, and agreeing with the guidelines."""

from __future__ import annotations

import re

import pytest
from modelkit import GOLD, ROOT, SEED_DIR

from ie.annotation.labelstudio import load_documents
from ie.cli.studio import main as studio_main
from ie.core.schema import SCHEMA
from ie.text.arabic import splits_word

GUIDELINES = ROOT / "docs" / "annotation_guidelines.md"


@pytest.fixture(scope="module")
def gold():
    return load_documents(GOLD)


def test_gold_validates(capsys):
    assert studio_main(["validate", str(GOLD)]) == 0
    assert "5 tasks" in capsys.readouterr().out


def test_gold_texts_are_the_seed_articles(gold):
    sources = sorted(d.meta["source"] for d in gold)
    assert sources == sorted(p.name for p in (SEED_DIR).glob("*.txt"))
    for doc in gold:
        assert doc.text == (SEED_DIR / doc.meta["source"]).read_text(encoding="utf-8")


def test_every_gold_span_slices_its_text_and_covers_whole_words(gold):
    for doc in gold:
        for s in doc.spans:
            assert doc.text[s.start : s.end] == s.text
            assert not splits_word(doc.text, s.start, s.end), (doc.id, s)


def test_gold_uses_every_type_of_the_schema(gold):
    span_labels = {s.label for d in gold for s in d.spans}
    rel_labels = {r.label for d in gold for r in d.relations}
    assert span_labels == set(SCHEMA.span_labels)
    assert rel_labels == set(SCHEMA.relation_labels)
    assert sum(len(d.spans) for d in gold) > 500
    assert sum(len(d.relations) for d in gold) > 300


def test_markup_sources_rebuild_the_committed_export(tmp_path):
    out = tmp_path / "seeds.json"
    markup = ROOT / "data" / "annotations" / "markup"
    assert studio_main(["build-gold", "--markup_dir", str(markup), "--seeds", str(SEED_DIR),
                        "--out", str(out)]) == 0  # fmt: skip
    assert out.read_text(encoding="utf-8") == GOLD.read_text(encoding="utf-8")


_EXAMPLE = re.compile(r"\[\[([^\[\]|]+)\|([A-Z]+)\]\]")


def test_guideline_examples_are_annotated_that_way_in_the_gold(gold):
    annotated = {(s.text, s.label) for d in gold for s in d.spans}
    found = _EXAMPLE.findall(GUIDELINES.read_text(encoding="utf-8"))
    examples = {(text, label) for text, label in found if not text.isascii()}  # skip notation placeholders
    assert len(examples) > 40
    missing = sorted(e for e in examples if e not in annotated)
    assert not missing, f"guideline examples not annotated so in the gold data: {missing}"


def test_guideline_counts_table_is_current(gold, capsys):
    assert studio_main(["stats", str(GOLD)]) == 0
    table = capsys.readouterr().out
    assert table in GUIDELINES.read_text(encoding="utf-8"), "regenerate §8 with `ie-studio stats`"
