"""``ie-serve`` connected to a real Label Studio server (the ``label_studio_server`` fixture).

The backend runs as its own process (the console entry point, basic auth from the environment);
Label Studio is told about it through its API (``POST /api/ml``: it calls ``/health`` and
``/setup``), then asked for predictions the way its Data Manager does (the
``retrieve_tasks_predictions`` action: ``/setup`` again, then ``/predict`` with the tasks); what
Label Studio stored is read back through its API.
"""

from __future__ import annotations

import signal

import pytest
from modelkit import SEEDS
from servekit import PASSWORD as _PASSWORD
from servekit import USER as _USER
from servekit import running_backend

from ie.annotation.client import StudioClient
from ie.annotation.labelstudio import label_config, validate_tasks
from ie.events.extraction import model_version

pytest.importorskip("fastapi", reason="the `serve` extra is not installed (pip install -e '.[serve]')")


@pytest.fixture
def serve(tiny_model, tmp_path):
    with running_backend(tiny_model, tmp_path / "serve.log") as backend:
        yield backend.url, backend.proc, backend.log


def test_label_studio_stores_the_backends_predictions_with_relations(label_studio_server, serve, tiny_model):
    url, proc, log = serve
    version = model_version(tiny_model)
    client = StudioClient.connect(label_studio_server.url, label_studio_server.api_key)
    sdk = client.sdk
    project = client.create_project("ie-serve live test", label_config())
    try:
        texts = {p.name: p.read_text(encoding="utf-8") for p in SEEDS[:3]}
        tasks = [{"data": {"text": t, "source": name}} for name, t in texts.items()]
        task_ids = client.import_tasks(project, tasks)
        assert len(task_ids) == len(tasks)

        backend = sdk.ml.create(project=project, url=url, title="ie-serve", auth_method="BASIC_AUTH",
                                basic_auth_user=_USER, basic_auth_pass=_PASSWORD)  # fmt: skip
        assert backend.model_version == version  # what /setup answered
        sdk.actions.create(id="retrieve_tasks_predictions", project=project,
                           selected_items={"all": True, "excluded": []})  # fmt: skip

        exported = {t["id"]: t for t in client.export_tasks(project)}
        assert sorted(exported) == sorted(task_ids)
        for task in exported.values():
            (prediction,) = task["predictions"]
            assert prediction["model_version"] == version
            text = task["data"]["text"]
            assert text == texts[task["data"]["source"]]
            results = prediction["result"]
            spans = [r for r in results if r["type"] == "labels"]
            relations = [r for r in results if r["type"] == "relation"]
            assert spans and relations, f"task {task['id']}: {len(spans)} spans, {len(relations)} relations"
            ids = {s["id"] for s in spans}
            for s in spans:
                assert text[s["value"]["start"] : s["value"]["end"]] == s["value"]["text"]
                assert 0 < s["score"] <= 1
            assert all(r["from_id"] in ids and r["to_id"] in ids for r in relations)
            mean = sum(s["score"] for s in spans) / len(spans)
            assert prediction["score"] == pytest.approx(mean, abs=1e-5)
        # the stored predictions are valid for the schema (offsets, labels, relation types)
        _, problems = validate_tasks(list(exported.values()), "predictions")
        assert not problems, problems[:5]
    finally:
        client.delete_project(project)

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0
    written = log.read_text(encoding="utf-8")
    assert '"path": "/predict", "status": 200' in written and '"path": "/setup", "status": 200' in written
    assert _PASSWORD not in written and label_studio_server.api_key not in written
    assert all(t[:30] not in written for t in texts.values())
