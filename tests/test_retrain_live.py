"""The whole annotation loop against a real Label Studio: annotate, the backend retrains, predictions
change version; a service killed during a training comes back serving the model it served.

``ie-serve --state_dir`` runs as its own process; ``ie-studio connect`` connects it to a project
(Label Studio then sends its annotation webhooks to ``/webhook``, with the backend's basic auth);
annotations are created through Label Studio's API, never by calling the backend directly.
Trainings use ``configs/cpu-tiny.yaml`` shrunk by ``modelkit.SMALL`` (seconds each).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from modelkit import CPU_TINY, ROOT, SEEDS, SMALL, console_command, gold_documents
from servekit import PASSWORD, USER, running_backend

from ie.annotation.client import KEY_ENV, URL_ENV, StudioClient
from ie.annotation.labelstudio import document_results, label_config
from ie.serving.store import STAGING

pytest.importorskip("fastapi", reason="the `serve` extra is not installed (pip install -e '.[serve]')")

EPOCHS = 3


@pytest.fixture
def retrain_config(tmp_path: Path) -> Path:
    values = yaml.safe_load(CPU_TINY.read_text(encoding="utf-8"))
    values.update(extra_train_data=[], augment_factor=0, num_train_epochs=EPOCHS)
    path = tmp_path / "retrain.yaml"
    path.write_text(yaml.safe_dump(values, allow_unicode=True), encoding="utf-8")
    return path


def _serve_args(state: Path, config: Path, project: int) -> list[str]:
    pairs = [f"{SMALL[i].lstrip('-')}={SMALL[i + 1]}" for i in range(0, len(SMALL), 2)]
    args = ["--state_dir", str(state), "--retrain_config", str(config), "--project", str(project),
            "--min_annotations", "3"]  # fmt: skip
    for pair in pairs:
        args += ["--retrain_set", pair]
    return args


def _wait(backend, predicate, timeout: float, what: str) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        health = backend.call("/health", timeout=5)
        if predicate(health):
            return health
        if backend.proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{what}: last /health {health}\n{backend.log.read_text()[-4000:]}")
        time.sleep(0.3)


def _predictions(client: StudioClient, project: int) -> dict[int, list[dict[str, Any]]]:
    client.sdk.actions.create(id="retrieve_tasks_predictions", project=project,
                              selected_items={"all": True, "excluded": []})  # fmt: skip
    return {t["id"]: t.get("predictions") or [] for t in client.export_tasks(project)}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purpose
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def test_annotations_retrain_the_served_model_and_a_kill_leaves_it_serving(
    label_studio_server, tiny_model, retrain_config, tmp_path
):
    env = {URL_ENV: label_studio_server.url, KEY_ENV: label_studio_server.api_key}
    client = StudioClient.connect(label_studio_server.url, label_studio_server.api_key)
    gold = {d.text: d for d in gold_documents()}
    texts = [p.read_text(encoding="utf-8") for p in SEEDS]
    project = client.create_project("ie retrain live", label_config())
    task_ids = client.import_tasks(project, [{"data": {"text": t}} for t in texts])
    state = tmp_path / "state"
    log = tmp_path / "serve.log"
    try:
        with running_backend(tiny_model, log, _serve_args(state, retrain_config, project), env) as backend:
            first = backend.call("/health")["model_version"]

            # connect through ie-studio: the ML backend, and the webhook with the backend's credentials
            connected = subprocess.run(
                [*console_command("ie-studio", "ie.cli.studio"), "connect", "--project", str(project),
                 "--backend", backend.url],
                env={**os.environ, **env, "BASIC_AUTH_USER": USER, "BASIC_AUTH_PASS": PASSWORD},
                capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip
            assert connected.returncode == 0, connected.stderr
            assert f"model_version {first}" in connected.stdout and "webhook" in connected.stdout
            assert PASSWORD not in connected.stdout + connected.stderr
            before = _predictions(client, project)
            assert all(p and p[0]["model_version"] == first for p in before.values()), before

            # three annotations (min_annotations 3), made in Label Studio: its webhooks retrain the model
            for task_id, text in list(zip(task_ids, texts, strict=True))[:3]:
                client.sdk.annotations.create(id=task_id, result=document_results(gold[text]))
            # (the three webhooks may make one run or a run and a coalesced follow-up, which then
            # finds nothing new: wait for the new version and an idle worker, not for one outcome)
            health = _wait(backend, lambda h: h["model_version"] != first and h["retrain"]["state"] == "idle",
                           600, "no promoted retraining after three annotations")  # fmt: skip
            second = health["model_version"]
            assert health["retrain"]["trainings"] == 1 and 1 <= health["retrain"]["runs"] <= 3
            assert f'"model_version": "{second}"' in log.read_text(encoding="utf-8")  # the reload's line
            after = _predictions(client, project)
            for task_id in task_ids:
                assert second in {p["model_version"] for p in after[task_id]}, after[task_id]
            written = log.read_text(encoding="utf-8")
            assert '"path": "/webhook", "status": 201' in written  # Label Studio's own webhook calls
            assert PASSWORD not in written and label_studio_server.api_key not in written

            # "Start Training" in Label Studio, and the service killed while that training runs
            (ml,) = client.sdk.ml.list(project=project)
            client.sdk.ml.train(ml.id)
            training = _wait(backend, lambda h: h["retrain"]["training_pid"] is not None, 300,
                             "Start Training started no training")  # fmt: skip
            pid = training["retrain"]["training_pid"]
            assert list((state / STAGING).iterdir()), "a training in progress has a staging folder"
            backend.proc.send_signal(signal.SIGKILL)
            backend.proc.wait(30)
            deadline = time.monotonic() + 30
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert not _alive(pid), "the training outlived the killed service"

        # restart on the same state: the last promoted model, nothing half-trained left behind
        with running_backend(tiny_model, log, _serve_args(state, retrain_config, project), env) as backend:
            health = backend.call("/health")
            assert health["model_version"] == second
            assert health["retrain"]["state"] == "idle"
            assert not list((state / STAGING).iterdir())
            answer = backend.call("/predict", {"tasks": [{"id": 1, "data": {"text": texts[0]}}],
                                               "label_config": label_config()})  # fmt: skip
            (result,) = answer["results"]  # a 3-epoch tiny model may find nothing: the version is the point
            assert result["model_version"] == second and "error" not in result and "result" in result
            backend.proc.send_signal(signal.SIGTERM)
            assert backend.proc.wait(60) == 0
    finally:
        client.delete_project(project)


def test_state_dir_without_label_studio_credentials_is_refused(tiny_model, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in (URL_ENV, KEY_ENV)}
    done = subprocess.run(
        [sys.executable, "-m", "ie.cli.serve", "--model", str(tiny_model), "--state_dir", str(tmp_path / "s"),
         "--retrain_config", str(ROOT / "configs/cpu-tiny.yaml")],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and URL_ENV in done.stderr and KEY_ENV in done.stderr
    assert not (tmp_path / "s").exists()
