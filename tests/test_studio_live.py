"""Round trips through a real Label Studio server (started by the ``label_studio_server`` fixture).

Seed tasks go in with ``ie-studio push`` and come back with ``ie-studio pull``; what comes back
must be what went in: texts, spans (start, end, label, text, id), relations, task data, and for
predictions the model version and scores.
"""

from __future__ import annotations

import json
import re

import pytest
from modelkit import ie_studio
from seed_tasks import GOLD, gold_or_seed_documents, seed_paths, with_scores

from ie.annotation.client import StudioClient
from ie.annotation.labelstudio import documents_to_tasks, label_config, load_documents, read_json
from ie.core.document import Document
from ie.core.schema import SCHEMA

MODEL_VERSION = "ie-live-test-0.1"


def _push(*args: str) -> int:
    done = ie_studio("push", *args)
    assert done.returncode == 0, done.stderr
    match = re.search(r"^project (\d+): ", done.stdout, re.M)
    assert match, done.stdout
    return int(match.group(1))


def _pull(project: int, out) -> list[dict]:
    done = ie_studio("pull", "--project", str(project), "--out", str(out))
    assert done.returncode == 0, done.stderr
    return read_json(out)


def _key(doc: Document, scores: bool = False):
    spans = [
        (s.id, s.start, s.end, s.label, s.text) + ((s.score,) if scores else ()) for s in doc.sorted_spans()
    ]
    relations = sorted((r.head, r.tail, r.label) + ((r.score,) if scores else ()) for r in doc.relations)
    return doc.text, spans, relations, doc.meta


def _gold_file(tmp_path) -> tuple[list[Document], str]:
    """The gold export itself when it exists (pushed as is), else tasks built from the seeds."""
    docs, _ = gold_or_seed_documents()
    if GOLD.exists():
        return docs, str(GOLD)
    path = tmp_path / "seed_tasks.json"
    path.write_text(json.dumps(documents_to_tasks(docs), ensure_ascii=False), encoding="utf-8")
    return docs, str(path)


def _predictions_file(tmp_path, docs: list[Document]) -> tuple[list[Document], str]:
    predicted = [with_scores(d) for d in docs]
    tasks = documents_to_tasks(predicted, field="predictions", model_version=MODEL_VERSION)
    path = tmp_path / "predictions.json"
    path.write_text(json.dumps(tasks, ensure_ascii=False), encoding="utf-8")
    return predicted, str(path)


def test_annotations_round_trip_is_lossless(studio, tmp_path):
    docs, gold = _gold_file(tmp_path)
    assert len(docs) == 5
    project = _push(gold, "--title", "ie live: annotations")
    tasks = _pull(project, tmp_path / "pulled.json")
    assert len(tasks) == len(docs)
    pulled = load_documents(tmp_path / "pulled.json")
    assert [_key(d) for d in pulled] == [_key(d) for d in docs]
    for doc in pulled:
        doc.check_offsets()
    assert all(t["annotations"] and not t["predictions"] for t in tasks)


def test_annotations_and_predictions_round_trip_is_lossless(studio, tmp_path):
    docs, gold = _gold_file(tmp_path)
    predicted, predictions = _predictions_file(tmp_path, docs)
    project = _push(gold, "--predictions", predictions, "--title", "ie live: predictions")
    out = tmp_path / "pulled.json"
    tasks = _pull(project, out)
    assert [_key(d) for d in load_documents(out)] == [_key(d) for d in docs]
    assert [_key(d, scores=True) for d in load_documents(out, field="predictions")] == [
        _key(d, scores=True) for d in predicted
    ]
    for task, doc in zip(tasks, predicted, strict=True):
        (pred,) = task["predictions"]
        assert pred["model_version"] == MODEL_VERSION
        scores = [s.score for s in doc.spans]
        assert pred["score"] == pytest.approx(sum(scores) / len(scores), abs=1e-6)


def test_new_articles_pushed_as_text_files_come_back_unannotated(studio, tmp_path):
    paths = seed_paths()
    project = _push(*map(str, paths), "--title", "ie live: new articles")
    tasks = _pull(project, tmp_path / "pulled.json")
    assert [t["data"] for t in tasks] == [
        {"text": p.read_text(encoding="utf-8"), "source": p.name} for p in paths
    ]
    assert all(not t["annotations"] and not t["predictions"] for t in tasks)
    assert all(not d.spans for d in load_documents(tmp_path / "pulled.json"))


def test_a_bad_predictions_file_imports_nothing(studio, tmp_path):
    docs, gold = _gold_file(tmp_path)
    _, predictions = _predictions_file(tmp_path, docs)
    tasks = json.loads(open(predictions, encoding="utf-8").read())
    tasks[1]["predictions"][0]["result"][0]["value"]["start"] = -3
    tasks[2]["predictions"][0]["result"][0]["to_name"] = "body"
    with open(predictions, "w", encoding="utf-8") as f:
        json.dump(tasks, f, ensure_ascii=False)

    client = StudioClient.connect()
    before = [p.id for p in client.sdk.projects.list()]
    done = ie_studio("push", gold, "--predictions", predictions, "--title", "ie live: must not exist")
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if predictions in line]
    assert len(errors) == 2, done.stderr
    assert "task #1 result" in errors[0] and "out of range" in errors[0]  # tasks without ids: by position
    assert "task #2 result" in errors[1] and "'to_name' 'body'" in errors[1]
    assert [p.id for p in client.sdk.projects.list()] == before


def test_pull_keeps_what_label_studio_accepted_but_the_schema_forbids(studio, tmp_path):
    docs, _ = gold_or_seed_documents()
    task = documents_to_tasks(docs[:1])[0]
    result = task["annotations"][0]["result"]
    spans = {r["id"]: r["value"]["labels"][0] for r in result if r["type"] == "labels"}
    trigger = next(i for i, label in spans.items() if SCHEMA.is_trigger(label))
    # a relation the schema forbids between these two spans, which an annotator can still draw in the UI
    head = spans[trigger]
    arg = next(i for i, lab in spans.items() if i != trigger and not SCHEMA.allows("time", head, lab))
    result.append(
        {"from_id": trigger, "to_id": arg, "type": "relation", "direction": "right", "labels": ["time"]}
    )
    client = StudioClient.connect()
    project = client.create_project("ie live: unchecked import", label_config())
    (task_id,) = client.import_tasks(project, [task])  # Label Studio takes it as is

    out = tmp_path / "pulled.json"
    done = ie_studio("pull", "--project", str(project), "--out", str(out))
    assert done.returncode == 2
    assert f"task {task_id} result relation" in done.stderr and "'time' is not allowed from" in done.stderr
    assert f"{trigger}->{arg}" in done.stderr
    (pulled,) = read_json(out)  # the annotator's work is written all the same
    assert pulled["data"]["text"] == docs[0].text and len(pulled["annotations"][0]["result"]) == len(result)


def test_pull_errors_are_clear_and_write_nothing(studio, tmp_path):
    out = tmp_path / "pulled.json"
    done = ie_studio("pull", "--project", "999999", "--out", str(out))
    assert done.returncode == 1 and "project 999999" in done.stderr and "404" in done.stderr
    assert not out.exists()
    done = ie_studio("pull", "--project", "1", "--out", str(out), "--api-key", "not-the-token")
    assert done.returncode == 1 and "401" in done.stderr and "not-the-token" not in done.stderr
    assert not out.exists()
