"""The Label Studio data layer on real seed articles: config, export → Document → tasks, validation, CLI."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
from seed_tasks import ROOT, find_word, seed_documents, seed_text, with_scores

from ie.annotation.labelstudio import (
    Problem,
    ValidationError,
    documents_to_tasks,
    label_config,
    load_documents,
    validate_tasks,
)
from ie.annotation.markup import MarkupError, parse_markup, render_markup
from ie.core.document import Document, Relation, Span
from ie.core.schema import SCHEMA

# ---------------------------------------------------------------------------------------------
# the labeling config
# ---------------------------------------------------------------------------------------------


def test_committed_config_is_generated_from_the_schema():
    committed = (ROOT / "configs" / "label_studio.xml").read_text(encoding="utf-8")
    assert committed == label_config(), (
        "configs/label_studio.xml drifted: run `ie-studio config > configs/label_studio.xml`"
    )


def test_config_lists_every_schema_label_and_relation():
    root = ET.fromstring(label_config())
    assert root.tag == "View" and root.get("className")
    assert root.find("Style") is not None and "rtl" in root.find("Style").text
    text = root.find("Text")
    assert text.get("value") == "$text"
    controls = {
        el.get("name"): [lab.get("value") for lab in el.findall("Label")] for el in root.findall("Labels")
    }
    assert controls == {"entity": list(SCHEMA.entity_types), "trigger": list(SCHEMA.trigger_types)}
    assert all(el.get("toName") == text.get("name") for el in root.findall("Labels"))
    assert [r.get("value") for r in root.find("Relations").findall("Relation")] == list(
        SCHEMA.relation_labels
    )
    # each label's control is the one Document/validation use for it
    for name, labels in controls.items():
        assert all(SCHEMA.kind(label) == name for label in labels)


def test_config_shows_each_label_in_its_schema_colour():
    root = ET.fromstring(label_config())
    colours = {lab.get("value"): lab.get("background") for lab in root.iter("Label")}
    assert colours == {label: SCHEMA.color(label) for label in SCHEMA.span_labels}
    assert len(set(colours.values())) == len(colours)  # no two labels alike


def test_config_is_valid_for_label_studio():
    from label_studio_sdk.label_interface import LabelInterface

    interface = LabelInterface(label_config())
    interface.validate()  # raises on a config Label Studio would refuse
    labels = {c.name: list(c.labels) for c in interface.controls}
    assert labels == {SCHEMA.kind(lab): list(labs) for labs in (SCHEMA.entity_types, SCHEMA.trigger_types)
                      for lab in labs[:1]}  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Document <-> tasks on the seeds
# ---------------------------------------------------------------------------------------------


def _tasks(field: str = "annotations", **kwargs) -> list[dict]:
    docs = seed_documents() if field == "annotations" else [with_scores(d) for d in seed_documents()]
    tasks = documents_to_tasks(docs, field=field, **kwargs)
    for task_id, task in enumerate(tasks, start=1):
        task["id"] = task_id
    return tasks


def _key(doc: Document):
    spans = [(s.id, s.start, s.end, s.label, s.text) for s in doc.sorted_spans()]
    return doc.text, spans, sorted((r.head, r.tail, r.label) for r in doc.relations), doc.meta


def test_documents_to_tasks_and_back_is_lossless():
    docs = seed_documents()
    parsed, problems = validate_tasks(_tasks())
    assert problems == []
    assert [_key(d) for d in parsed] == [_key(d) for d in docs]
    for doc in parsed:
        doc.check_offsets()
        assert doc.text == seed_text(doc.meta["source"][:3])


def test_predictions_carry_model_version_and_scores():
    tasks = _tasks("predictions", model_version="arabert-ie-0.1")
    docs, problems = validate_tasks(tasks, field="predictions")
    assert problems == []
    expected = [with_scores(d) for d in seed_documents()]
    for task, doc, want in zip(tasks, docs, expected, strict=True):
        (pred,) = task["predictions"]
        assert pred["model_version"] == "arabert-ie-0.1"
        scores = [s.score for s in want.spans]
        assert pred["score"] == pytest.approx(sum(scores) / len(scores))
        assert [(s.id, s.score) for s in doc.sorted_spans()] == [(s.id, s.score) for s in want.sorted_spans()]
        assert [r.score for r in doc.relations] == [r.score for r in want.relations]
    # predictions are not annotations: the same file has no annotated spans
    assert all(not d.spans for d in validate_tasks(tasks)[0])


def test_load_documents_reads_a_written_export(tmp_path):
    path = tmp_path / "export.json"
    path.write_text(json.dumps(_tasks(), ensure_ascii=False), encoding="utf-8")
    assert [_key(d) for d in load_documents(path)] == [_key(d) for d in seed_documents()]


def test_load_documents_names_the_file_on_bad_json(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('[{"data": ', encoding="utf-8")
    with pytest.raises(ValidationError, match=r"broken\.json.*not valid JSON"):
        load_documents(path)
    with pytest.raises(ValidationError, match="file not found"):
        load_documents(tmp_path / "missing.json")


# ---------------------------------------------------------------------------------------------
# validation: one clear problem per corruption, naming task and result
# ---------------------------------------------------------------------------------------------


def _result(task: dict, result_id: str) -> dict:
    return next(r for r in task["annotations"][0]["result"] if r.get("id") == result_id)


def _only_problem(tasks: list[dict]) -> Problem:
    docs, problems = validate_tasks(tasks, source="export.json")
    assert len(problems) == 1, problems
    assert len(docs) == len(tasks) - 1  # the other tasks still load
    return problems[0]


def test_offset_out_of_range():
    tasks = _tasks()
    value = _result(tasks[0], "k1")["value"]
    value["end"] = len(tasks[0]["data"]["text"]) + 5
    p = _only_problem(tasks)
    assert (p.task, p.result) == (1, "k1") and "out of range" in p.message
    assert str(p).startswith("export.json: task 1 result k1:")


def test_shifted_offset_is_caught_by_the_text_check():
    tasks = _tasks()
    value = _result(tasks[1], "t1")["value"]
    value["start"] += 1
    value["end"] += 1
    p = _only_problem(tasks)
    assert (p.task, p.result) == (2, "t1") and "does not match" in p.message


def test_non_integer_offset():
    tasks = _tasks()
    _result(tasks[1], "t1")["value"]["start"] = "199"
    p = _only_problem(tasks)
    assert (p.task, p.result) == (2, "t1") and "integers" in p.message


def test_unknown_label():
    tasks = _tasks()
    _result(tasks[2], "l1")["value"]["labels"] = ["CITY"]
    p = _only_problem(tasks)
    assert (p.task, p.result) == (3, "l1") and "unknown label 'CITY'" in p.message


def test_label_under_the_wrong_control():
    tasks = _tasks()
    _result(tasks[2], "l1")["from_name"] = "trigger"
    p = _only_problem(tasks)
    assert (p.task, p.result) == (3, "l1") and "control" in p.message


def test_dangling_relation():
    tasks = _tasks()
    rel = next(r for r in tasks[3]["annotations"][0]["result"] if r["type"] == "relation")
    rel["to_id"] = "gone"
    p = _only_problem(tasks)
    assert p.task == 4 and "gone" in str(p.result) and "missing span id" in p.message


def test_relation_with_a_forbidden_argument_type():
    tasks = _tasks()
    result = tasks[0]["annotations"][0]["result"]
    # "count" links a casualty trigger to a NUM, never to an ACTOR
    assert not SCHEMA.allows("count", "KILLED", "ACTOR")
    result.append(
        {"from_id": "k1", "to_id": "a1", "type": "relation", "direction": "right", "labels": ["count"]}
    )
    p = _only_problem(tasks)
    assert p.task == 1 and "k1->a1" in str(p.result) and "not allowed from KILLED to ACTOR" in p.message


def test_unknown_relation_label():
    tasks = _tasks()
    rel = next(r for r in tasks[1]["annotations"][0]["result"] if r["type"] == "relation")
    rel["labels"] = ["caused_by"]
    p = _only_problem(tasks)
    assert p.task == 2 and "unknown relation label" in p.message


def test_duplicate_result_id():
    tasks = _tasks()
    text = tasks[0]["data"]["text"]
    dup = copy.deepcopy(_result(tasks[0], "l1"))
    start = find_word(text, "الفرات")
    dup["value"].update(start=start, end=start + len("الفرات"), text="الفرات")
    tasks[0]["annotations"][0]["result"].append(dup)
    p = _only_problem(tasks)
    assert (p.task, p.result) == (1, "l1") and "duplicate result id" in p.message


def test_duplicate_task_id():
    tasks = _tasks()
    tasks[4]["id"] = tasks[3]["id"]
    p = _only_problem(tasks)
    assert p.task == 4 and p.result is None and "duplicate task id" in p.message


@pytest.mark.parametrize("text", ["", "  \n ", None])
def test_empty_text(text):
    tasks = _tasks()
    tasks[2]["data"]["text"] = text
    p = _only_problem(tasks)
    assert p.task == 3 and "empty or missing data.text" in p.message


def test_value_text_mismatch():
    tasks = _tasks()
    _result(tasks[0], "a1")["value"]["text"] = "قوات النظام"
    p = _only_problem(tasks)
    assert (p.task, p.result) == (1, "a1") and "'قوات النظام'" in p.message


def test_value_text_may_differ_in_whitespace_only():
    tasks = _tasks()
    _result(tasks[0], "a1")["value"]["text"] = " قوات  التحالف\nالدولي "
    docs, problems = validate_tasks(tasks)
    assert problems == []
    span = docs[0].span("a1")
    assert span.text == "قوات التحالف الدولي" == docs[0].text[span.start : span.end]  # always the slice


def test_span_that_splits_a_word():
    text = seed_text("000")
    phrase = "قوات التحالف الدولي"
    first = text.find(phrase)
    assert text[first - 1] == "ل" and first < find_word(text, phrase)  # first occurrence is "لقوات ..."
    doc = seed_documents()[0]
    doc.spans[doc.spans.index(doc.span("a1"))] = Span("a1", first, first + len(phrase), "ACTOR", phrase)
    tasks = documents_to_tasks([doc] + seed_documents()[1:])
    for task_id, task in enumerate(tasks, start=1):
        task["id"] = task_id
    p = _only_problem(tasks)
    assert (p.task, p.result) == (1, "a1") and "inside a word" in p.message


def test_every_problem_is_reported_not_just_the_first():
    tasks = _tasks()
    _result(tasks[0], "a1")["value"]["labels"] = ["CITY"]
    _result(tasks[4], "l1")["value"]["end"] = 10**6
    _, problems = validate_tasks(tasks)
    assert [(p.task, p.result) for p in problems] == [(1, "a1"), (5, "l1")]


def test_not_a_list_of_tasks():
    _, problems = validate_tasks({"data": {"text": "x"}})
    assert len(problems) == 1 and "JSON list of tasks" in problems[0].message


# ---------------------------------------------------------------------------------------------
# ie-studio validate (the real console entry point, in a subprocess)
# ---------------------------------------------------------------------------------------------


def _validate_cli(path, *args):
    return subprocess.run(
        [sys.executable, "-m", "ie.cli.studio", "validate", str(path), *args],
        capture_output=True, text=True, cwd=path.parent, check=False,
    )  # fmt: skip


def _corrupt(kind: str) -> list[dict]:
    tasks = _tasks()
    if kind == "offset":
        _result(tasks[1], "tm1")["value"]["end"] = 10**5
        return tasks
    if kind == "label":
        _result(tasks[1], "tm1")["value"]["labels"] = ["DATE"]
        return tasks
    rel = next(r for r in tasks[1]["annotations"][0]["result"] if r["type"] == "relation")
    rel["to_id"] = "tmX"
    return tasks


def test_validate_cli_accepts_a_valid_export(tmp_path):
    path = tmp_path / "export.json"
    path.write_text(json.dumps(_tasks(), ensure_ascii=False), encoding="utf-8")
    done = _validate_cli(path)
    assert done.returncode == 0, done.stderr
    n_spans = sum(len(d.spans) for d in seed_documents())
    assert f"OK, 5 tasks, {n_spans} spans" in done.stdout
    pred = tmp_path / "predictions.json"
    pred.write_text(
        json.dumps(_tasks("predictions", model_version="m1"), ensure_ascii=False), encoding="utf-8"
    )
    assert _validate_cli(pred, "--field", "predictions").returncode == 0


@pytest.mark.parametrize(
    ("kind", "where", "what"),
    [("offset", "result tm1", "out of range"), ("label", "result tm1", "unknown label 'DATE'"),
     ("relation", "result relation", "missing span id(s) 'tmX'")],
)  # fmt: skip
def test_validate_cli_rejects_a_corrupted_copy_and_writes_nothing(tmp_path, kind, where, what):
    path = tmp_path / "export.json"
    raw = json.dumps(_corrupt(kind), ensure_ascii=False)
    path.write_text(raw, encoding="utf-8")
    done = _validate_cli(path)
    assert done.returncode == 2
    errors = done.stderr.strip().splitlines()
    assert len(errors) == 1, errors
    assert f"{path}: task 2 {where}" in errors[0] and what in errors[0]
    assert done.stdout == ""
    assert [p.name for p in tmp_path.iterdir()] == ["export.json"] and path.read_text(encoding="utf-8") == raw


def test_validate_cli_on_a_missing_file(tmp_path):
    done = _validate_cli(tmp_path / "nope.json")
    assert done.returncode == 2 and "nope.json" in done.stderr and "file not found" in done.stderr


# ---------------------------------------------------------------------------------------------
# markup (the gold authoring format) round trip
# ---------------------------------------------------------------------------------------------


def test_markup_round_trip_on_the_seeds():
    for doc in seed_documents():
        markup = render_markup(doc)
        back = parse_markup(markup, doc.id)
        assert back.text == doc.text
        assert [(s.id, s.start, s.end, s.label, s.text) for s in back.sorted_spans()] == [
            (s.id, s.start, s.end, s.label, s.text) for s in doc.sorted_spans()
        ]
        assert back.relations == [Relation(r.head, r.tail, r.label) for r in doc.relations]
        assert render_markup(back) == markup


def test_markup_without_ids_gets_offsets_from_the_text():
    text = seed_text("001")
    start = find_word(text, "مساء يوم الاثنين")
    phrase = "مساء يوم الاثنين"
    markup = text[:start] + f"[[{phrase}|TIME]]" + text[start + len(phrase) :] + "\n=== relations ===\n"
    doc = parse_markup(markup, "2")
    assert doc.text == text
    (span,) = doc.spans
    assert (span.start, span.end, span.text) == (start, start + len(phrase), phrase)


def test_markup_errors_name_the_line():
    with pytest.raises(MarkupError, match="relations"):
        parse_markup("no separator here", "1")
    with pytest.raises(MarkupError, match=r":3: unknown span id 'zz'"):
        parse_markup("[[قصف|ATTACK|t1]] على حلب\n=== relations ===\nt1 location zz\n", "1")
