"""``ie-studio next``: a project's unannotated tasks, least certain prediction first, on a real server.

Five seed articles go into a project with predictions whose task-level scores are set so that the
order is unambiguous (a tie broken by task id, one task without a prediction); one task gets an
annotation and one is skipped, and neither may be listed.
"""

from __future__ import annotations

import json

import pytest
from modelkit import ie_studio
from seed_tasks import gold_or_seed_documents, with_scores

from ie.annotation.client import StudioClient, annotation_queue
from ie.annotation.labelstudio import documents_to_tasks, label_config

MODEL_VERSION = "ie-queue-test-0.1"
# task-level prediction score per seed article (None: imported without a prediction)
SCORES = [0.9, 0.3, 0.1, 0.3, None, 0.2]


@pytest.fixture
def queued_project(studio) -> tuple[int, list[int]]:
    """Project id and task ids; task 2 (the least certain) is annotated, task 5 skipped."""
    docs, _ = gold_or_seed_documents()
    docs = [*docs, docs[0]]  # a sixth task: the first article again, to be skipped
    tasks = []
    for doc, score in zip(docs, SCORES, strict=True):
        if score is None:
            tasks.append({"data": {"text": doc.text}})
            continue
        (task,) = documents_to_tasks([with_scores(doc)], field="predictions", model_version=MODEL_VERSION)
        task["predictions"][0]["score"] = score
        tasks.append(task)
    client = StudioClient.connect()
    project = client.create_project("ie live: annotation queue", label_config())
    ids = client.import_tasks(project, tasks)
    assert len(ids) == len(tasks)
    (gold,) = documents_to_tasks(docs[2:3])
    client.sdk.annotations.create(ids[2], result=gold["annotations"][0]["result"], was_cancelled=False)
    client.sdk.annotations.create(ids[5], result=[], was_cancelled=True)
    return project, ids


def test_next_lists_unannotated_tasks_least_certain_first(queued_project):
    project, ids = queued_project
    expected = [ids[1], ids[3], ids[0], ids[4]]  # 0.3, 0.3 (tie: by id), 0.9, then the unscored one
    assert ids[1] < ids[3]

    queue = annotation_queue(StudioClient.connect(), project)
    assert [t.id for t in queue] == expected
    assert [t.score for t in queue] == [pytest.approx(0.3), pytest.approx(0.3), pytest.approx(0.9), None]
    assert [t.model_version for t in queue] == [MODEL_VERSION] * 3 + [""]

    done = ie_studio("next", "--project", str(project))
    assert done.returncode == 0, done.stderr
    rows = [line.split("\t") for line in done.stdout.splitlines()]
    assert [int(r[0]) for r in rows] == expected
    assert [r[1] for r in rows] == ["0.3000", "0.3000", "0.9000", "-"]
    assert [r[2] for r in rows] == [MODEL_VERSION] * 3 + ["-"]
    docs, _ = gold_or_seed_documents()
    assert rows[0][3].split()[:3] == docs[1].text.split()[:3]  # the first words of the article

    done = ie_studio("next", "--project", str(project), "--limit", "2", "--json")
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)
    assert [(t["id"], t["score"], t["model_version"]) for t in listed] == [
        (ids[1], pytest.approx(0.3), MODEL_VERSION),
        (ids[3], pytest.approx(0.3), MODEL_VERSION),
    ]
    assert listed[0]["url"].endswith(f"/projects/{project}/data?task={ids[1]}")


def test_next_errors_are_one_line_with_the_cli_status(studio):
    done = ie_studio("next", "--project", "999999")
    assert done.returncode == 1 and "project 999999" in done.stderr and "404" in done.stderr
    assert len(done.stderr.splitlines()) == 1 and not done.stdout
    done = ie_studio("next", "--project", "1", "--limit", "0")
    assert done.returncode == 2 and "--limit" in done.stderr


def test_connect_errors_are_one_line_with_the_cli_status(studio, monkeypatch):
    """``ie-studio connect`` (its working path runs in tests/test_retrain_live.py): half-set basic
    auth is bad input (2), a backend Label Studio cannot reach is a failure (1), one line each."""
    monkeypatch.setenv("BASIC_AUTH_USER", "someone")
    monkeypatch.delenv("BASIC_AUTH_PASS", raising=False)
    done = ie_studio("connect", "--project", "1", "--backend", "http://127.0.0.1:9")
    assert done.returncode == 2 and "BASIC_AUTH_PASS" in done.stderr and len(done.stderr.splitlines()) == 1
    monkeypatch.delenv("BASIC_AUTH_USER")
    client = StudioClient.connect()
    project = client.create_project("ie live: connect errors", label_config())
    try:
        done = ie_studio("connect", "--project", str(project), "--backend", "http://127.0.0.1:9")
        assert done.returncode == 1 and len(done.stderr.splitlines()) == 1, done.stderr
        assert "http://127.0.0.1:9" in done.stderr and not done.stdout
    finally:
        client.delete_project(project)
