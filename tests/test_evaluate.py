"""evaluate.py end to end: a real CPU-sized model trained on the seeds (the session's ``tiny_model``),
and a small leave-one-article-out run. Figures are not asserted against thresholds here (the lead
measures them); the tests check that the reports are complete, consistent and honest about the split.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from modelkit import GOLD, ROOT, gold_documents
from report_keys import check_documented_keys

from ie.annotation.labelstudio import read_json
from ie.core.schema import SCHEMA
from ie.evaluation.baseline import GazetteerBaseline
from ie.evaluation.metrics import score
from ie.evaluation.report import REPORT_FILES
from ie.events.assembly import assemble
from ie.model.prediction import Predictor


def _items(docs, labels) -> set[tuple]:
    """Spans with ``labels`` as (doc, start, end, label); for ``None``, relations with both spans."""
    if labels is not None:
        items = [(d.id, s.start, s.end, s.label) for d in docs for s in d.spans if s.label in labels]
    else:
        key = lambda d, i: (d.span(i).start, d.span(i).end, d.span(i).label)  # noqa: E731
        items = [(d.id, key(d, r.head), key(d, r.tail), r.label) for d in docs for r in d.relations]
    assert len(set(items)) == len(items)
    return set(items)


def _evaluate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "evaluate.py"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture(scope="module")
def model_report(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("evaluate") / "report"
    done = _evaluate("--model", str(tiny_model), "--data", str(GOLD), "--output_dir", str(out))
    assert done.returncode == 0, done.stderr[-4000:]
    return out, done.stdout


def test_evaluate_writes_complete_reports(model_report, tiny_model: Path):
    out, stdout = model_report
    assert sorted(p.name for p in out.iterdir()) == sorted(REPORT_FILES)
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    check_documented_keys(report)
    assert report["mode"] == "model" and report["cv"] is None
    assert report["model"]["path"] == str(tiny_model) and len(report["model"]["weights_sha256"]) == 64
    # trained and evaluated on the same five articles: the report must say so, for both systems
    assert report["model"]["trained_on_eval"] is True and report["model"]["eval_articles_in_train"] == 5
    assert report["baseline"]["trained_on_eval"] is True
    assert report["baseline"]["train_data"] == "the model's training articles"
    assert any("measure fit, not generalisation" in n for n in report["notes"])
    assert report["counts"]["documents"] == 5 and report["counts"]["gold_spans"] == report["data"]["spans"]
    assert report["counts"]["predicted_spans"] > 0  # the model learned to tag something
    assert len(report["per_article"]) == 5
    # each article's events add up to the pooled event figures, and report.md shows them per article
    for key in ("gold_strikes", "pred_strikes", "matched_strikes", "gold_casualties", "matched_casualties",
                "casualty_counts"):  # fmt: skip
        name = key.replace("pred_", "predicted_")
        assert sum(a[name] for a in report["per_article"]) == report["events"][f"n_{key}"], key
    exact = sum(a["casualty_counts_exact"] for a in report["per_article"])
    assert exact == round(report["events"]["casualty_count_accuracy"] * report["events"]["n_casualty_counts"])
    first = report["per_article"][0]
    md = (out / "report.md").read_text(encoding="utf-8")
    assert (
        f"| {first['matched_strikes']} of {first['gold_strikes']} ({first['predicted_strikes']} predicted) |"
        in md
    )
    # the figures are those of the model's predictions, counted here by hand from the predictions
    gold = gold_documents()
    pred = Predictor.from_pretrained(tiny_model, device="cpu").predict(
        [d.text for d in gold], [d.id for d in gold]
    )
    for kind, labels in (("entities", SCHEMA.entity_types), ("triggers", SCHEMA.trigger_types),
                         ("spans", SCHEMA.span_labels), ("relations", None)):  # fmt: skip
        g, p = (_items(docs, labels) for docs in (gold, pred))
        exact = report[kind]["exact"]["micro"] if labels else report[kind]["micro"]
        assert (exact["tp"], exact["predicted"], exact["support"]) == (len(g & p), len(p), len(g)), kind
        for block in (report[kind]["micro"], exact):  # seqeval's F1 agrees with its own counts too
            assert block["f1"] == pytest.approx(2 * block["tp"] / (block["predicted"] + block["support"]))
    assert "entities (seqeval strict IOB2)" in stdout and "relations (strict)" in stdout
    assert "dictionary F1" in stdout and "gazetteer F1" in stdout
    html = (out / "report.html").read_text(encoding="utf-8")
    assert html.count('<section class="article"') == 5


class _Node:
    def __init__(self, tag: str, attrs: dict[str, str | None], parent: _Node | None) -> None:
        self.tag, self.attrs, self.parent, self.children, self.text = tag, attrs, parent, [], []

    def find_all(self, tag: str | None = None, **attrs: str) -> list[_Node]:
        """Descendants with ``tag`` and these attributes (``class_``: a class, ``data_x``: data-x)."""
        found = []
        for child in self.children:
            if (tag is None or child.tag == tag) and all(self._has(child, k, v) for k, v in attrs.items()):
                found.append(child)
            found += child.find_all(tag, **attrs)
        return found

    @staticmethod
    def _has(node: _Node, key: str, value: str) -> bool:
        if key == "class_":
            return value in (node.attrs.get("class") or "").split()
        return node.attrs.get(key.replace("_", "-")) == value

    def all_text(self) -> str:
        return "".join(self.text) + "".join(c.all_text() for c in self.children)


class _Tree(HTMLParser):
    """A minimal DOM of report.html (html.parser): enough to read the events tables back."""

    VOID = {"meta", "br", "img", "hr", "input", "link"}

    def __init__(self, page: str) -> None:
        super().__init__()
        self.root = self.node = _Node("#root", {}, None)
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        node = _Node(tag, dict(attrs), self.node)
        self.node.children.append(node)
        if tag not in self.VOID:
            self.node = node

    def handle_endtag(self, tag):
        node = self.node
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.node = node.parent

    def handle_data(self, data):
        self.node.text.append(data)


def _trigger_offsets(card: _Node) -> list[tuple[int, int]]:
    """(start, end) of the trigger mentions in an event card (their titles carry the offsets)."""
    (field,) = card.find_all(data_field="mentions")
    return [
        tuple(map(int, re.search(r"\[(\d+):(\d+)\]", a.attrs["title"]).groups())) for a in field.find_all("a")
    ]


def test_html_report_shows_each_articles_events_reference_beside_prediction(model_report, tiny_model: Path):
    """report.html of a real model on the seeds: per article, every reference strike (assembled from
    gold) with its trigger text, every predicted strike, matched pairs on one row (their triggers
    overlap, as event_scores matches them), and the shown counts add up to report.json's events."""
    out, _ = model_report
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    tree = _Tree((out / "report.html").read_text(encoding="utf-8")).root
    gold = gold_documents()
    pred = Predictor.from_pretrained(tiny_model, device="cpu").predict(
        [d.text for d in gold], [d.id for d in gold]
    )
    sections = tree.find_all("section", class_="article")
    assert [s.attrs["data-article"] for s in sections] == [d.id for d in gold]
    totals = dict.fromkeys(("ref-strikes", "pred-strikes", "matched-strikes", "ref-casualties",
                            "pred-casualties", "matched-casualties"), 0)  # fmt: skip
    for section, g, p in zip(sections, gold, pred, strict=True):
        (block,) = section.find_all("div", class_="events")
        for key in totals:
            totals[key] += int(block.attrs[f"data-{key}"])
        reference, predicted = assemble(g), assemble(p)
        sides = {"strikes": (reference.strikes, predicted.strikes),
                 "casualties": (reference.casualties, predicted.casualties)}  # fmt: skip
        for kind, (ref_events, pred_events) in sides.items():
            tables = block.find_all("table", data_kind=kind)
            rows = [
                r
                for t in tables
                for r in t.find_all("tr")
                if "data-reference" in r.attrs or "data-predicted" in r.attrs
            ]
            assert sorted(r.attrs["data-reference"] for r in rows if "data-reference" in r.attrs) == sorted(
                e.id for e in ref_events
            )
            assert sorted(r.attrs["data-predicted"] for r in rows if "data-predicted" in r.attrs) == sorted(
                e.id for e in pred_events
            )
            assert int(block.attrs[f"data-ref-{kind}"]) == len(ref_events)
            assert int(block.attrs[f"data-pred-{kind}"]) == len(pred_events)
            assert int(block.attrs[f"data-matched-{kind}"]) == sum(
                "matched" in r.attrs["class"].split() for r in rows
            )
            by_id = {e.id: e for e in ref_events}
            for row in rows:
                cards = {
                    c.attrs["data-side"]: c for c in row.find_all("td") if c.attrs.get("class") == "card"
                }
                assert set(cards) == {k for k in ("reference", "predicted") if f"data-{k}" in row.attrs}
                if "reference" in cards:
                    event = by_id[row.attrs["data-reference"]]
                    (trigger,) = cards["reference"].find_all(
                        data_field="mentions" if kind == "strikes" else "trigger"
                    )
                    assert event.trigger.text in trigger.all_text()
                if len(cards) == 2:  # a matched pair: one row, triggers that overlap
                    assert "matched" in row.attrs["class"].split()
                    if kind == "strikes":
                        ref, hyp = (_trigger_offsets(cards[side]) for side in ("reference", "predicted"))
                        assert any(min(a[1], b[1]) > max(a[0], b[0]) for a in ref for b in hyp)
    events = report["events"]
    assert totals["ref-strikes"] == events["n_gold_strikes"] > 0
    assert totals["pred-strikes"] == events["n_pred_strikes"] > 0
    assert totals["matched-strikes"] == events["n_matched_strikes"] > 0
    assert totals["ref-casualties"] == events["n_gold_casualties"]
    assert totals["pred-casualties"] == events["n_pred_casualties"]
    assert totals["matched-casualties"] == events["n_matched_casualties"]


def test_bad_inputs_fail_clearly_and_keep_old_reports(model_report, tiny_model: Path, tmp_path: Path):
    out, _ = model_report
    before = {name: (out / name).read_bytes() for name in REPORT_FILES}
    missing = tmp_path / "no-such-model"
    done = _evaluate("--model", str(missing), "--data", str(GOLD), "--output_dir", str(out))
    assert done.returncode == 2 and f"{missing}: model folder not found" in done.stderr

    tasks = read_json(GOLD)
    tasks[1]["annotations"][0]["result"][0]["value"]["labels"] = ["NOT_A_LABEL"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(tasks, ensure_ascii=False), encoding="utf-8")
    done = _evaluate("--model", str(tiny_model), "--data", str(bad), "--output_dir", str(out))
    assert done.returncode == 2 and str(bad) in done.stderr and "NOT_A_LABEL" in done.stderr
    assert {name: (out / name).read_bytes() for name in REPORT_FILES} == before


def test_leave_one_article_out_on_two_articles(tmp_path: Path):
    """--cv on a two-article export with a very small config: the folds, means and pooled figures are
    all there, no fold trains on its held-out article, and the mean is the mean of the folds."""
    export = tmp_path / "two.json"
    export.write_text(json.dumps(read_json(GOLD)[:2], ensure_ascii=False), encoding="utf-8")
    out = tmp_path / "report-cv"
    small = ["max_steps=1", "scratch_num_layers=1", "scratch_hidden_size=64", "scratch_num_heads=2",
             "scratch_intermediate_size=128", "relation_hidden_size=64", "window_length=128",
             "window_stride=32"]  # fmt: skip
    args = ["--cv", "--data", str(export), "--output_dir", str(out), "--cv_dir", str(tmp_path / "folds")]
    done = _evaluate(*args, *(a for s in small for a in ("--set", s)))
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    check_documented_keys(report)
    cv = report["cv"]
    assert report["mode"] == "cv" and report["model"] is None
    assert [f["held_out"] for f in cv["folds"]] == report["data"]["article_ids"]
    for fold in cv["folds"]:
        assert fold["held_out"] not in fold["train_articles"] and len(fold["train_articles"]) == 1
        assert fold["baseline"]["trained_on_eval"] is False
        assert (tmp_path / "folds" / f"fold-{fold['fold']}" / "model.safetensors").is_file()
    for system in ("model", "baseline"):
        for kind in ("entities", "relations"):
            folds = [f[system][kind]["micro"]["f1"] for f in cv["folds"]]
            assert cv["mean"][system][kind]["micro"]["f1"] == pytest.approx(sum(folds) / len(folds))
    assert (
        report["entities"]["micro"]["support"] + report["triggers"]["micro"]["support"]
        == report["data"]["spans"]
    )
    assert cv["pooled"]["model"]["entities"]["micro"]["f1"] == report["entities"]["micro"]["f1"]
    assert (
        cv["pooled"]["baseline"]["relations"]["micro"]["f1"] == report["baseline"]["relations"]["micro"]["f1"]
    )
    assert "max_steps=1" not in cv["overrides"] and "--max_steps" in cv["overrides"]
    # the gazetteer baseline uses no training articles: scored on the held-out articles, pooled and per fold
    docs = gold_documents()[:2]
    gaz = score(docs, GazetteerBaseline.from_gazetteer().predict_documents(docs))
    assert report["gazetteer_baseline"]["entities"] == gaz["entities"]
    assert cv["pooled"]["gazetteer_baseline"]["entities"]["micro"]["f1"] == gaz["entities"]["micro"]["f1"]
    assert [f["gazetteer_baseline"]["entities"]["micro"]["support"] for f in cv["folds"]] == [
        sum(s.label in SCHEMA.entity_types for s in d.spans) for d in docs
    ]
    assert "gazetteer entities F1" in done.stdout and "gazetteer F1" in (out / "report.md").read_text(
        encoding="utf-8"
    )

    # seqeval counted words, not the fold model's sub-tokens: its tokenizer never saw the held-out
    # article and cuts it into more pieces than it has words, yet each gold entity counts once
    from transformers import AutoTokenizer

    from ie.annotation.labelstudio import load_documents
    from ie.evaluation.metrics import tag_sequences, words

    held = load_documents(export)[0]
    tokenizer = AutoTokenizer.from_pretrained(str(tmp_path / "folds" / "fold-1"))
    n_tokens = len(tokenizer(held.text, add_special_tokens=False)["input_ids"])
    assert n_tokens > len(words(held.text))
    (tags,), _ = tag_sequences([held], [held], report["entities"]["per_type"])
    assert len(tags) == len(words(held.text))
    n_entities = sum(s.label in report["entities"]["per_type"] for s in held.spans)
    assert cv["folds"][0]["model"]["entities"]["micro"]["support"] == n_entities
    assert "leave-one-article-out" in (out / "report.md").read_text(encoding="utf-8")

    # --holdout: the same fold for one named article (by source file), trained the same way (same data,
    # config and seed give the same model), so its figures equal that fold's in the full run
    second = cv["folds"][1]
    out_one = tmp_path / "report-one"
    args_one = ["--cv", "--data", str(export), "--output_dir", str(out_one), "--holdout", second["source"]]
    done = _evaluate(*args_one, *(a for s in small for a in ("--set", s)))
    assert done.returncode == 0, done.stderr[-4000:]
    one = json.loads((out_one / "report.json").read_text(encoding="utf-8"))
    assert [f["held_out"] for f in one["cv"]["folds"]] == [second["held_out"]]
    assert one["data"]["held_out_ids"] == [second["held_out"]] and "1 of 2 folds" in one["cv"]["scheme"]
    assert one["entities"] == second["model"]["entities"] and one["relations"] == second["model"]["relations"]
    gaz_one = score(docs[1:], GazetteerBaseline.from_gazetteer().predict_documents(docs[1:]))
    assert one["gazetteer_baseline"]["entities"] == gaz_one["entities"]
    bad = _evaluate("--cv", "--data", str(export), "--output_dir", str(tmp_path / "x"), "--holdout", "nope")
    assert bad.returncode == 2 and bad.stderr.strip().endswith("--holdout nope: no such article in the data "
                                                               "(ids or source files)")  # fmt: skip
