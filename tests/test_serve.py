"""The ``ie-serve`` routes (FastAPI's TestClient) with the real model trained on the seeds (``tiny_model``).

Bodies are the ones Label Studio 1.23 sends (``label_studio/ml/api_connector.py``); answers are
checked the way Label Studio reads them (``ml/models.py``) and with the SDK's ``LabelInterface``.
"""

from __future__ import annotations

import base64
import json
import logging
import threading

import pytest
from label_studio_sdk.label_interface import LabelInterface
from modelkit import SEEDS, console_command

from ie.annotation.labelstudio import label_config, validate_tasks
from ie.events.extraction import model_version

pytest.importorskip("fastapi", reason="the `serve` extra is not installed (pip install -e '.[serve]')")

from fastapi.testclient import TestClient  # noqa: E402

from ie.serving.app import create_app  # noqa: E402
from ie.serving.backend import Backend  # noqa: E402

TEXTS = [p.read_text(encoding="utf-8") for p in SEEDS]
PROJECT = "7.1764000000"  # <project id>.<created_at>, as Label Studio names a project


@pytest.fixture(scope="module")
def backend(tiny_model) -> Backend:
    return Backend.from_model_dir(tiny_model, device="cpu")


@pytest.fixture
def client(backend) -> TestClient:
    return TestClient(create_app(backend))


def predict(client: TestClient, tasks: list, config: str | None = None) -> dict:
    body = {"tasks": tasks, "project": PROJECT, "label_config": config or label_config(),
            "params": {"login": None, "password": None, "context": None}}  # fmt: skip
    response = client.post("/predict", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def check_prediction(prediction: dict, text: str, version: str) -> None:
    """What Label Studio stores and shows must be right: every span slices the text, every relation
    points at spans of the same prediction, scores, version; the SDK accepts it for the config."""
    assert "error" not in prediction, prediction.get("error")
    assert prediction["model_version"] == version
    spans = [r for r in prediction["result"] if r["type"] == "labels"]
    relations = [r for r in prediction["result"] if r["type"] == "relation"]
    assert spans and relations
    ids = {s["id"] for s in spans}
    assert len(ids) == len(spans)
    for s in spans:
        v = s["value"]
        assert text[v["start"] : v["end"]] == v["text"]
        assert s["from_name"] in ("entity", "trigger") and s["to_name"] == "text"
        assert 0 < s["score"] <= 1
    for r in relations:
        assert r["from_id"] in ids and r["to_id"] in ids and r["from_id"] != r["to_id"]
        assert len(r["labels"]) == 1 and 0 < r["score"] <= 1
    mean = sum(s["score"] for s in spans) / len(spans)
    assert prediction["score"] == pytest.approx(mean, abs=1e-5)
    assert LabelInterface(label_config()).validate_prediction(prediction)
    docs, problems = validate_tasks([{"id": 1, "data": {"text": text}, "predictions": [prediction]}],
                                    "predictions")  # fmt: skip
    assert not problems and len(docs) == 1


def test_health_setup_versions_metrics(client, tiny_model):
    version = model_version(tiny_model)
    health = client.get("/health").json()
    assert health["status"] == "UP" and health["model_version"] == version
    assert client.get("/").json() == health
    setup = client.post("/setup", json={"project": PROJECT, "schema": label_config(), "hostname": "http://x",
                                        "access_token": "not-logged", "extra_params": None})  # fmt: skip
    assert setup.status_code == 200 and setup.json() == {"model_version": version}
    assert client.get("/versions").json() == {"versions": [version]}
    assert client.get("/metrics").json() == {}


def test_setup_refuses_a_config_that_is_not_ours(client):
    foreign = (
        '<View><Text name="t" value="$article"/>'
        '<Labels name="ner" toName="t"><Label value="PER"/></Labels></View>'
    )
    response = client.post("/setup", json={"project": PROJECT, "schema": foreign})
    assert response.status_code == 422
    error = response.json()["error"]
    assert "not ie's" in error and "no <Labels name='entity'> control" in error and "attacker" in error
    # a config missing one of our labels is not ours either, and /predict says so per task
    missing = label_config().replace('<Label value="WEAPON"', '<Label value="ARMS"')
    assert client.post("/setup", json={"project": PROJECT, "schema": missing}).status_code == 422
    (item,) = predict(client, [{"id": 4, "data": {"text": TEXTS[0]}}], missing)["results"]
    assert "result" not in item and "task 4" in item["error"] and "WEAPON" in item["error"]


def test_predict_seed_articles_spans_and_relations(client, tiny_model):
    version = model_version(tiny_model)
    tasks = [{"id": 10 + i, "data": {"text": t, "source": p.name}, "project": 7}
             for i, (t, p) in enumerate(zip(TEXTS, SEEDS, strict=True))]  # fmt: skip
    answer = predict(client, tasks)
    assert answer["model_version"] == version
    assert len(answer["results"]) == len(tasks)
    for prediction, text in zip(answer["results"], TEXTS, strict=True):
        check_prediction(prediction, text, version)


def test_a_broken_task_fails_alone(client, tiny_model):
    version = model_version(tiny_model)
    tasks = [
        {"id": 1, "data": {"text": TEXTS[1]}},
        {"id": 2, "data": {"source": "no text"}},
        {"id": 3, "data": {"text": 42}},
        {"id": 4, "data": {"text": "   \n"}},
        "not a task",
        {"id": 6, "data": {"text": TEXTS[2]}},
    ]
    results = predict(client, tasks)["results"]
    assert len(results) == len(tasks)  # Label Studio drops the whole batch on a short list
    check_prediction(results[0], TEXTS[1], version)
    check_prediction(results[5], TEXTS[2], version)
    expected_errors = ["task 2: no data.text", "task 3: data.text is not a string",
                       "task 4: data.text is empty", "task #4: not a JSON object"]  # fmt: skip
    for item, expected in zip(results[1:5], expected_errors, strict=True):
        assert "result" not in item  # Label Studio stores no prediction for an item without a result
        assert item["error"].startswith(expected) and item["model_version"] == version


def test_a_long_article_is_predicted_whole(client, tiny_model, backend):
    """Five seeds in one article: thousands of tokens, many windows; spans come from all of it."""
    text = "\n\n".join(TEXTS)
    tokenizer = backend.served.predictor.featurizer.tokenizer
    offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    assert len(offsets) > 4 * 512
    after_512 = offsets[512][0]
    (prediction,) = predict(client, [{"id": 1, "data": {"text": text}}])["results"]
    check_prediction(prediction, text, model_version(tiny_model))
    spans = [r for r in prediction["result"] if r["type"] == "labels"]
    late = [s for s in spans if s["value"]["start"] >= after_512]
    assert len(late) > len(spans) / 2
    last_seed_start = len(text) - len(TEXTS[-1])
    assert any(s["value"]["start"] >= last_seed_start for s in spans)
    assert any(r["type"] == "relation" for r in prediction["result"])


def test_text_key_and_object_name_come_from_the_project_config(client, tiny_model):
    config = label_config().replace('<Text name="text" value="$text"', '<Text name="article" value="$body"')
    config = config.replace('toName="text"', 'toName="article"')
    (prediction,) = predict(client, [{"id": 1, "data": {"body": TEXTS[3]}}], config)["results"]
    assert "error" not in prediction
    assert {r["to_name"] for r in prediction["result"] if r["type"] == "labels"} == {"article"}
    assert LabelInterface(config).validate_prediction(prediction)


def test_basic_auth(backend):
    client = TestClient(create_app(backend, basic_auth=("ls", "s3cret-ü")))
    assert client.get("/health").status_code == 401
    assert client.get("/health").headers["www-authenticate"].startswith("Basic")
    assert client.get("/health", auth=("ls", "wrong")).status_code == 401
    assert client.post("/predict", json={"tasks": []}, auth=("x", "s3cret-ü")).status_code == 401
    bad = {"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()}
    assert client.get("/health", headers=bad).status_code == 401
    assert client.get("/health", headers={"Authorization": "Basic %%%"}).status_code == 401
    assert client.get("/health", auth=("ls", "s3cret-ü")).status_code == 200


def test_webhook_without_and_with_a_retrainer(backend):
    body = {"action": "ANNOTATION_CREATED", "project": {"id": 7, "label_config": label_config()},
            "annotation": {"id": 1}}  # fmt: skip
    client = TestClient(create_app(backend))
    response = client.post("/webhook", json=body)
    assert response.status_code == 501 and "retraining is not configured" in response.json()["error"]
    assert client.post("/webhook", json={"action": "PROJECT_UPDATED", "project": {"id": 7}}).json() == {
        "status": "Unknown event"
    }
    assert client.post("/webhook", content=b"not json").status_code == 400

    class Recorder:
        def __init__(self):
            self.calls = []

        def notify(self, action: str, project_id: int) -> dict:
            self.calls.append((action, project_id))
            return {"queued": True}

        def status(self) -> dict:
            return {"running": False}

        def close(self, timeout=None) -> None:
            pass

    recorder = Recorder()
    client = TestClient(create_app(backend, retrainer=recorder))
    response = client.post("/webhook", json=body)
    assert response.status_code == 201 and response.json() == {"result": {"queued": True}, "status": "ok"}
    client.post("/webhook", json={"action": "START_TRAINING", "project": {"id": 7}})
    client.post("/webhook", json={"action": "ANNOTATIONS_DELETED", "project": {"id": 7}, "annotations": []})
    assert recorder.calls == [("ANNOTATION_CREATED", 7), ("START_TRAINING", 7), ("ANNOTATIONS_DELETED", 7)]
    assert client.get("/health").json()["retrain"] == {"running": False}


def test_reload_swaps_model_and_version_atomically(tiny_model, tmp_path):
    import shutil

    backend = Backend.from_model_dir(tiny_model, device="cpu")
    copy = tmp_path / "retrained"
    shutil.copytree(tiny_model, copy, ignore=shutil.ignore_patterns("checkpoints", "cache"))
    old = backend.served
    assert backend.reload(copy) == model_version(copy) == backend.model_version
    assert backend.model_dir == copy.resolve() and backend.served is not old
    (item,) = backend.predict([{"id": 1, "data": {"text": TEXTS[0]}}])
    assert item["model_version"] == model_version(copy)
    with pytest.raises(ValueError, match="model folder not found"):
        backend.reload(tmp_path / "missing")
    assert backend.model_version == model_version(copy)  # a failed reload changes nothing
    # a request that started on the old model finishes on it
    started, release = threading.Event(), threading.Event()
    out = []
    served = backend.served
    real = served.predictor.predict

    def slow(*args, **kwargs):
        started.set()
        release.wait(30)
        return real(*args, **kwargs)

    served.predictor.predict = slow  # this instance only: the old model, held up mid-request
    worker = threading.Thread(
        target=lambda: out.extend(backend.predict([{"id": 1, "data": {"text": TEXTS[0]}}]))
    )
    worker.start()
    assert started.wait(30)
    backend.reload(tiny_model)
    release.set()
    worker.join(60)
    assert out[0]["model_version"] == model_version(copy)
    assert backend.model_version == model_version(tiny_model)


def test_logs_are_json_lines_without_text_or_token(client, caplog):
    secret = "setup-token-must-not-appear"
    with caplog.at_level(logging.INFO, logger="ie.serving"):
        client.post("/setup", json={"project": PROJECT, "schema": label_config(), "access_token": secret})
        predict(client, [{"id": 5, "data": {"text": TEXTS[4]}}, {"id": 6, "data": {}}])
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("ie.serving")]
    events = [json.loads(line) for line in lines]
    assert {"setup", "predicted", "request"} <= {e["event"] for e in events}
    predicted = next(e for e in events if e["event"] == "predicted")
    assert predicted["tasks"] == 2 and predicted["failed_tasks"] == [6]
    joined = "\n".join(lines)
    assert secret not in joined and TEXTS[4][:40] not in joined


def test_cli_help_and_bad_model(tmp_path):
    import subprocess

    done = subprocess.run([*console_command("ie-serve", "ie.cli.serve"), "--help"], capture_output=True,
                          text=True, check=False)  # fmt: skip
    assert done.returncode == 0 and "--model" in done.stdout and "BASIC_AUTH_USER" in done.stdout
    done = subprocess.run([*console_command("ie-serve", "ie.cli.serve"), "--model", str(tmp_path)],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 2
    assert done.stderr == f"ie-serve: error: {tmp_path}: not a saved model (no config.json)\n"


def test_loopback_hosts():
    from ie.cli.serve import is_loopback

    assert all(map(is_loopback, ["127.0.0.1", "127.0.0.2", "::1", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "192.168.1.4", "example.org", "::"]))


def test_ctrl_c_stops_the_service_with_130(tiny_model, tmp_path):
    import signal
    import subprocess
    import time
    import urllib.request

    from modelkit import free_port

    port = free_port()
    proc = subprocess.Popen([*console_command("ie-serve", "ie.cli.serve"), "--model", str(tiny_model),
                             "--port", str(port), "--device", "cpu"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    assert json.loads(r.read())["status"] == "UP"
                    break
            except OSError:
                time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 130
        stderr = proc.stderr.read()
        lines = [line for line in stderr.splitlines() if line.startswith("{")]
        assert lines and all(json.loads(line)["level"] for line in lines)  # JSON log lines
        assert stderr.rstrip().endswith("ie-serve: interrupted")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
