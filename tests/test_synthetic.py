"""The synthetic training corpus: valid, rebuilt from its markup, exact offsets, and training-only."""

from __future__ import annotations

import re

import pytest
from modelkit import GOLD, ROOT

from ie.annotation.labelstudio import load_documents
from ie.cli.studio import main as studio_main
from ie.text.arabic import splits_word

SYN = ROOT / "data" / "synthetic"
CORPUS = SYN / "synthetic.json"


@pytest.fixture(scope="module")
def synthetic():
    return load_documents(CORPUS)


def test_corpus_validates_and_is_rebuilt_from_its_markup(tmp_path, capsys):
    assert studio_main(["validate", str(CORPUS)]) == 0
    articles = sorted((SYN / "articles").glob("*.txt"))
    assert len(articles) >= 30  # issue 13: at least thirty team-written reports
    assert f"{len(articles)} tasks" in capsys.readouterr().out  # every article is in the corpus
    out = tmp_path / "synthetic.json"
    assert studio_main(["build-gold", "--markup_dir", str(SYN / "markup"), "--seeds", str(SYN / "articles"),
                        "--out", str(out), "--synthetic"]) == 0  # fmt: skip
    assert out.read_text(encoding="utf-8") == CORPUS.read_text(encoding="utf-8")


def test_articles_are_short_reports_with_exact_whole_word_spans(synthetic):
    for doc in synthetic:
        assert 150 <= len(re.findall(r"\w+", doc.text)) <= 300, doc.id
        for s in doc.spans:
            assert doc.text[s.start : s.end] == s.text
            assert not splits_word(doc.text, s.start, s.end), (doc.id, s)


def test_no_synthetic_text_is_a_seed_text(synthetic):
    seeds = load_documents(GOLD)
    seed_sentences = {s.strip() for d in seeds for s in re.split(r"[.\n،]", d.text) if len(s.strip()) > 30}
    for doc in synthetic:
        shared = [s for s in re.split(r"[.\n،]", doc.text) if s.strip() in seed_sentences]
        assert not shared, (doc.id, shared[:2])


def test_every_task_is_marked_synthetic_and_evaluation_refuses_it(synthetic, tmp_path, capsys):
    assert all(d.meta.get("synthetic") is True for d in synthetic)
    import importlib.util

    spec = importlib.util.spec_from_file_location("evaluate_script", ROOT / "evaluate.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    code = script.main(["--cv", "--data", str(GOLD), str(CORPUS), "--output_dir", str(tmp_path / "cv")])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"evaluate.py: error: {CORPUS}: task 1 is synthetic (data.synthetic): synthetic articles "
                   "train models and never enter an evaluation figure"]  # fmt: skip
    assert not (tmp_path / "cv").exists()
