"""What ``ie-studio push`` sends, checked without a server: validation happens before any connection."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from modelkit import free_port
from seed_tasks import seed_documents, seed_paths, with_scores

from ie.annotation.client import KEY_ENV, URL_ENV, StudioClient, StudioError, build_import, push
from ie.annotation.labelstudio import ValidationError, documents_to_tasks


def _write(path, tasks):
    path.write_text(json.dumps(tasks, ensure_ascii=False), encoding="utf-8")
    return path


def _annotated(tmp_path):
    tasks = documents_to_tasks(seed_documents())
    for task_id, task in enumerate(tasks, start=1):
        task["id"] = task_id
    return _write(tmp_path / "gold.json", tasks)


def _predictions(tmp_path, docs=None, name="predictions.json"):
    docs = docs if docs is not None else seed_documents()
    tasks = documents_to_tasks(
        [with_scores(d) for d in docs], field="predictions", model_version="ie-test-0.1"
    )
    for task_id, task in enumerate(tasks, start=101):
        task["id"] = task_id
    return _write(tmp_path / name, tasks)


def test_predictions_attach_to_the_task_with_the_same_text(tmp_path):
    tasks = build_import([_annotated(tmp_path)], _predictions(tmp_path))
    docs = seed_documents()
    assert [t["data"]["text"] for t in tasks] == [d.text for d in docs]
    for task, doc in zip(tasks, docs, strict=True):
        assert set(task) == {"data", "annotations", "predictions"}
        assert task["data"]["source"] == doc.meta["source"]
        (ann,) = task["annotations"]
        assert "id" not in ann and {r.get("id") for r in ann["result"]} >= {s.id for s in doc.spans}
        (pred,) = task["predictions"]
        assert pred["model_version"] == "ie-test-0.1"
        # the task score Label Studio sorts by: the mean score of this article's predicted spans
        scores = [s.score for s in with_scores(doc).spans]
        assert pred["score"] == round(sum(scores) / len(scores), 6)
        assert sorted(r["score"] for r in pred["result"] if r["type"] == "labels") == sorted(scores)


def test_articles_as_text_files_and_predictions_for_new_articles(tmp_path):
    paths = seed_paths()
    # predictions for the last two articles only, plus one article that is not among the inputs
    preds = _predictions(tmp_path, seed_documents()[2:])
    tasks = build_import(paths[:4], preds)
    assert [t["data"].get("source") for t in tasks] == [p.name for p in paths[:4]] + [paths[4].name]
    assert [t["data"]["text"] for t in tasks] == [p.read_text(encoding="utf-8") for p in paths]
    assert ["predictions" in t for t in tasks] == [False, False, True, True, True]
    assert not any("annotations" in t for t in tasks)


def _problems(*args) -> list[str]:
    with pytest.raises(ValidationError) as info:
        build_import(*args)
    return [str(p) for p in info.value.problems]


def test_label_studio_interface_checks_what_the_schema_check_cannot_see(tmp_path):
    tasks = json.loads(_predictions(tmp_path).read_text(encoding="utf-8"))
    tasks[0]["predictions"][0]["result"][0]["to_name"] = "body"  # not an object of the config
    tasks[1]["predictions"][0]["score"] = 7.5  # Label Studio wants 0..1
    del tasks[2]["predictions"][0]["model_version"]
    bad = _write(tmp_path / "bad.json", tasks)
    first_id = tasks[0]["predictions"][0]["result"][0]["id"]
    problems = _problems([], bad)
    assert len(problems) == 3, problems
    assert problems[0].startswith(f"{bad}: task 103: prediction without a model_version")
    assert f"{bad}: task 101 result {first_id}: Label Studio: 'to_name' 'body'" in problems[1]
    assert problems[2].startswith(f"{bad}: task 102: Label Studio: Score must be between 0.00 and 1.00")


def test_a_problem_found_by_our_check_is_not_reported_twice(tmp_path):
    tasks = json.loads(_predictions(tmp_path).read_text(encoding="utf-8"))
    span = tasks[0]["predictions"][0]["result"][0]
    span["value"]["labels"] = ["CITY"]  # both checks would flag it
    problems = _problems([], _write(tmp_path / "bad.json", tasks))
    assert len(problems) == 1 and f"task 101 result {span['id']}: unknown label 'CITY'" in problems[0]


def test_a_bad_region_is_one_problem_not_one_more_per_relation(tmp_path):
    tasks = json.loads(_predictions(tmp_path).read_text(encoding="utf-8"))
    result = tasks[0]["predictions"][0]["result"]
    killed = next(r for r in result if r.get("id") == "k1")
    assert any(r.get("type") == "relation" and "k1" in (r["from_id"], r["to_id"]) for r in result)
    killed["to_name"] = "body"
    problems = _problems([], _write(tmp_path / "bad.json", tasks))
    assert len(problems) == 1 and "task 101 result k1: Label Studio: 'to_name' 'body'" in problems[0]


def test_every_file_is_checked_before_anything_is_refused(tmp_path):
    gold = json.loads(_annotated(tmp_path).read_text(encoding="utf-8"))
    gold[0]["annotations"][0]["result"][0]["value"]["end"] = 10**6
    bad_gold = _write(tmp_path / "bad_gold.json", gold)
    empty = tmp_path / "empty.txt"
    empty.write_text(" \n", encoding="utf-8")
    problems = _problems([bad_gold, empty, tmp_path / "missing.json"], tmp_path / "missing_preds.json")
    assert len(problems) == 4, problems
    assert "bad_gold.json: task 1 result" in problems[0] and "out of range" in problems[0]
    assert "empty.txt" in problems[1] and "empty article" in problems[1]
    assert "missing.json" in problems[2] and "missing_preds.json" in problems[3]


def test_the_same_article_twice_is_refused(tmp_path):
    path = seed_paths()[0]
    problems = _problems([path, _annotated(tmp_path)])
    assert len(problems) == 1 and "the same article text" in problems[0] and path.name in problems[0]


def test_connect_needs_a_token_and_never_shows_it(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.setenv(URL_ENV, "http://127.0.0.1:9")
    with pytest.raises(StudioError, match=KEY_ENV):
        StudioClient.connect()
    monkeypatch.setenv(KEY_ENV, "s3cret-token-value")
    client = StudioClient.connect()
    assert client.url == "http://127.0.0.1:9" and "s3cret" not in repr(client)
    assert StudioClient.connect(url="http://localhost:1/", api_key="x").url == "http://localhost:1"


def test_push_cli_refuses_a_bad_file_before_connecting(tmp_path):
    tasks = json.loads(_predictions(tmp_path).read_text(encoding="utf-8"))
    tasks[3]["predictions"][0]["result"][0]["value"]["labels"] = ["CITY"]
    bad = _write(tmp_path / "bad.json", tasks)
    env = {**_env(), URL_ENV: f"http://127.0.0.1:{free_port()}", KEY_ENV: "s3cret-token-value"}
    done = subprocess.run([sys.executable, "-m", "ie.cli.studio", "push", "--predictions", str(bad)],
                          capture_output=True, text=True, env=env, check=False)  # fmt: skip
    assert done.returncode == 2
    assert "task 104 result" in done.stderr and "unknown label 'CITY'" in done.stderr
    assert "nothing was sent to Label Studio" in done.stderr and "cannot reach" not in done.stderr


def test_an_unreachable_server_is_one_clear_error_without_the_token(tmp_path):
    tasks = build_import([_annotated(tmp_path)])
    client = StudioClient.connect(f"http://127.0.0.1:{free_port()}", "s3cret-token-value", max_retries=0)
    with pytest.raises(StudioError) as info:
        push(client, tasks, "unreachable")
    assert "creating a project: cannot reach Label Studio at http://127.0.0.1:" in str(info.value)
    assert "s3cret" not in str(info.value)


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)
