"""Retraining from annotations against a real Label Studio server (``label_studio_server``).

A project holds the five gold seed articles (annotated) and one task whose annotation is invalid
(a relation to a missing span id). The served model at start is a one-step model trained on the
synthetic corpus only, so it has seen no seed article and the keep-or-reject rule compares fairly.
Trainings use ``configs/cpu-tiny.yaml`` shrunk by ``modelkit.SMALL`` (seconds each).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml
from modelkit import CPU_TINY, ROOT, SMALL, gold_documents

from ie.annotation.client import StudioClient
from ie.annotation.labelstudio import documents_to_tasks, label_config
from ie.core.document import Document
from ie.serving.retrain import RetrainSettings, RetrainWorker, split_heldout
from ie.serving.store import STAGING, ModelStore

EPOCHS = 6  # held-out combined F1 ~0.2 against ~0.001 after one step: the rule's two sides apart
INVALID_TEXT = "قصفت طائرة مسيرة مدينة غزة."


def _small_config(path: Path) -> Path:
    values = yaml.safe_load(CPU_TINY.read_text(encoding="utf-8"))
    values.update(extra_train_data=[], augment_factor=0, num_train_epochs=EPOCHS)
    path.write_text(yaml.safe_dump(values, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def small_config(tmp_path_factory) -> Path:
    return _small_config(tmp_path_factory.mktemp("retrain-config") / "small.yaml")


@pytest.fixture(scope="module")
def initial_model(tmp_path_factory, small_config) -> Path:
    """One optimizer step on the synthetic corpus: a real model that never saw a seed article."""
    out = tmp_path_factory.mktemp("retrain-initial") / "initial"
    done = subprocess.run(
        [sys.executable, "-m", "ie.training", "--config", str(small_config), *SMALL, "--max_steps", "1",
         "--train_data", "data/synthetic/synthetic.json", "--output_dir", str(out)],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def project(label_studio_server) -> tuple[int, int]:
    """(project id, task id of the invalid task) in the live server."""
    client = StudioClient.connect(label_studio_server.url, label_studio_server.api_key)
    tasks = documents_to_tasks(gold_documents())
    invalid = {
        "data": {"text": INVALID_TEXT},
        "annotations": [{"result": [
            {"id": "l1", "from_name": "entity", "to_name": "text", "type": "labels",
             "value": {"start": 23, "end": 26, "text": "غزة", "labels": ["LOC"]}},
            {"from_id": "t-missing", "to_id": "l1", "type": "relation", "direction": "right",
             "labels": ["location"]},
        ]}],
    }  # fmt: skip
    assert INVALID_TEXT[23:26] == "غزة"
    pid = client.create_project("ie retrain test", label_config())
    ids = client.import_tasks(pid, [*tasks, invalid])
    assert len(ids) == len(tasks) + 1
    return pid, ids[-1]


def _settings(config: Path, project: int, **kw) -> RetrainSettings:
    return RetrainSettings(
        config=str(config), overrides=tuple(SMALL), project_id=project, tolerance=0.0, **kw
    )


def _wait(predicate, timeout: float = 120.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_heldout_rule_is_stable_and_never_empty():
    docs = gold_documents()
    train, held = split_heldout(docs, 20)
    assert held and train and len(train) + len(held) == len(docs)
    # more annotated articles never move an article to the other side
    extra = [Document(f"x{k}", f"مقال إضافي رقم {k}") for k in range(40)]
    train2, held2 = split_heldout([*docs, *extra], 20)
    assert {d.id for d in held2} & {d.id for d in docs} <= {d.id for d in held}
    assert 0 < len(held2) < 40
    assert split_heldout(docs[:1], 20) == (docs[:1], [])  # one article: nothing to judge with


def test_retrain_promotes_coalesces_rejects_and_skips(
    studio, project, initial_model, small_config, tmp_path, caplog
):
    pid, invalid_id = project
    store = ModelStore(tmp_path / "state", initial_model)
    initial_version = store.current()[1]
    promoted: list[tuple[Path, str]] = []
    worker = RetrainWorker(
        store, _settings(small_config, pid), on_promoted=lambda p, v: promoted.append((p, v))
    )
    caplog.set_level(logging.INFO, logger="ie.serving")
    try:
        assert worker.notify("PROJECT_UPDATED", pid)["queued"] is False
        assert worker.notify("ANNOTATION_CREATED", pid + 1000)["queued"] is False  # not this project
        assert worker.notify("ANNOTATION_CREATED", pid)["queued"] is True
        _wait(lambda: worker.status()["training_pid"] is not None, what="the first training")
        # while it trains: four events, and the next run will be a worse model (one step)
        worker.settings = dataclasses.replace(worker.settings, overrides=(*SMALL, "--max_steps", "1"))
        events = ("ANNOTATION_UPDATED", "ANNOTATIONS_DELETED", "START_TRAINING", "ANNOTATION_CREATED")
        answers = [worker.notify(a, pid) for a in events]
        assert [a["coalesced"] for a in answers] == [False, True, True, True]
        assert worker.status()["follow_up_queued"] is True
        _wait(lambda: worker.status()["runs"] == 2, timeout=600, what="the follow-up run")
        first = promoted[:]
        assert worker.wait_idle(600)
        status = worker.status()
    finally:
        worker.close(30)

    # the first run: trained on the valid articles, promoted with a new version, service told
    assert first and len(first) == 1
    path, version = first[0]
    assert version != initial_version and version == store.current()[1] and path == store.current()[0]
    assert version.startswith(path.name + "@")
    assert (path / "model.safetensors").is_file() and not (path / "checkpoints").exists()
    record = json.loads((path / "retrain.json").read_text(encoding="utf-8"))
    assert record["heldout_combined_f1"] >= record["replaced_heldout_combined_f1"]
    # the invalid task was reported (one line naming it) and never trained on
    lines = [r.getMessage() for r in caplog.records if "invalid annotation skipped" in r.getMessage()]
    assert lines and all(f"task {invalid_id}" in line for line in lines)
    assert any("relation to missing span id(s) 't-missing'" in line for line in lines)

    # exactly one follow-up for four events: two trainings in all; the one-step model lost
    assert status["runs"] == 2 and status["trainings"] == 2
    last = status["last_run"]
    assert last["outcome"] == "rejected", last
    assert last["invalid_tasks"] == [str(invalid_id)]
    assert last["train_articles"] + len(last["heldout_ids"]) == 5
    assert last["candidate_f1"] < last["served_f1"]
    assert "keeping the served model" in last["reason"]
    assert promoted == first and store.current()[1] == version  # the served model stayed
    assert status["model_version"] == version
    assert not any((tmp_path / "state" / STAGING).iterdir())

    # nothing new since the last completed training: an annotation event is skipped
    again = RetrainWorker(ModelStore(tmp_path / "state", initial_model), _settings(small_config, pid))
    skipped = _status_after_one_event(again, "ANNOTATION_UPDATED", pid)
    assert skipped["last_run"]["outcome"] == "skipped" and skipped["trainings"] == 0
    assert skipped["last_run"]["new_or_changed"] == 0
    assert "fewer than min_new_annotations=1" in skipped["last_run"]["reason"]


def _status_after_one_event(worker: RetrainWorker, action: str, project: int) -> dict:
    """The worker's status once it has handled one webhook event and gone idle; the worker is closed."""
    try:
        worker.notify(action, project)
        assert worker.wait_idle(120)
        return worker.status()
    finally:
        worker.close(30)


def test_min_new_annotations(studio, project, initial_model, small_config, tmp_path):
    pid, _ = project
    store = ModelStore(tmp_path / "state", initial_model)
    worker = RetrainWorker(store, _settings(small_config, pid, min_new_annotations=6))
    status = _status_after_one_event(worker, "ANNOTATION_CREATED", pid)
    last = status["last_run"]
    assert last["outcome"] == "skipped" and status["trainings"] == 0
    assert last["new_or_changed"] == 5  # the five valid seeds; the invalid task does not count
    assert (
        "5 new or changed annotated task(s)" in last["reason"] and "min_new_annotations=6" in last["reason"]
    )


def test_killed_training_leaves_the_served_model(studio, project, initial_model, small_config, tmp_path):
    pid, _ = project
    store = ModelStore(tmp_path / "state", initial_model)
    before = store.current()
    promoted: list = []
    worker = RetrainWorker(store, _settings(small_config, pid), on_promoted=lambda p, v: promoted.append(v))
    try:
        worker.notify("START_TRAINING", pid)
        _wait(lambda: worker.status()["training_pid"] is not None, what="the training")
        staging = tmp_path / "state" / STAGING
        assert any(staging.iterdir())
        time.sleep(2)  # let it get going
        os.kill(worker.status()["training_pid"], signal.SIGKILL)
        assert worker.wait_idle(120)
        last = worker.status()["last_run"]
    finally:
        worker.close(30)
    assert last["outcome"] == "failed" and "killed (SIGKILL)" in last["reason"]
    assert store.current() == before and not promoted
    assert ModelStore(tmp_path / "state", initial_model).current() == before
    assert not any(staging.iterdir())


_SERVICE = textwrap.dedent(
    """
    import sys, time
    from ie.serving.retrain import RetrainSettings, RetrainWorker
    from ie.serving.store import ModelStore
    state, model, config, pid = sys.argv[1:5]
    settings = RetrainSettings(config=config, overrides=tuple(sys.argv[5:]), project_id=int(pid))
    worker = RetrainWorker(ModelStore(state, model), settings)
    worker.notify("START_TRAINING", int(pid))
    while worker.status()["training_pid"] is None:
        time.sleep(0.05)
    print(worker.status()["training_pid"], flush=True)
    time.sleep(600)
    """
)


def test_killed_service_restarts_clean(studio, project, initial_model, small_config, tmp_path, caplog):
    pid, _ = project
    state = tmp_path / "state"
    before = ModelStore(state, initial_model).current()
    service = subprocess.Popen(
        [sys.executable, "-c", _SERVICE, str(state), str(initial_model), str(small_config), str(pid), *SMALL],
        stdout=subprocess.PIPE, text=True, env=dict(os.environ),
    )  # fmt: skip
    try:
        assert service.stdout is not None
        trainer = int(service.stdout.readline())
        time.sleep(2)
        assert any((state / STAGING).iterdir())
        service.send_signal(signal.SIGKILL)
        service.wait(30)
    finally:
        if service.poll() is None:
            service.kill()
            service.wait(30)
    # the training died with the service (no orphan writing into staging)
    # (at once: a surviving orphan would still be training ~30 s later)
    _wait(lambda: _proc_state(trainer) == "Z", 10, "the training process to die with the service")
    caplog.set_level(logging.WARNING, logger="ie.serving")
    store = ModelStore(state, initial_model)
    assert store.current() == before
    assert not any((state / STAGING).iterdir())
    assert any("leftover(s) of an interrupted training" in r.getMessage() for r in caplog.records)


def _proc_state(pid: int) -> str:
    """The state letter of a Linux process; "Z" (dead) also when it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def test_store_falls_back_from_a_broken_pointer(initial_model, tmp_path, caplog):
    import shutil

    state = tmp_path / "state"
    store = ModelStore(state, initial_model)
    first = store.promote(_copy(initial_model, store.new_staging()))
    second = store.promote(_copy(initial_model, store.new_staging()))
    assert store.current() == second and first[0] != second[0]
    (second[0] / "model.safetensors").write_bytes(b"")  # a half-written model
    caplog.set_level(logging.ERROR, logger="ie.serving")
    assert ModelStore(state, initial_model).current() == first
    assert any("missing or broken: falling back" in r.getMessage() for r in caplog.records)
    shutil.rmtree(first[0])
    assert ModelStore(state, initial_model).current()[0] == initial_model.resolve()


def _copy(model: Path, staging: Path) -> Path:
    import shutil

    return Path(
        shutil.copytree(model, staging / "model", ignore=shutil.ignore_patterns("checkpoints", "cache"))
    )


def test_every_event_the_webhook_accepts_queues_a_run(tiny_model, tmp_path):
    """The worker and the ``/webhook`` route share one list of training events: an event the route
    hands over (``ANNOTATION_DELETED`` of label-studio-ml-backend 2.x among them) is never ignored."""
    from ie.serving.protocol import TRAIN_EVENTS

    worker = RetrainWorker(ModelStore(tmp_path / "state", tiny_model), RetrainSettings(project_id=1),
                           export=lambda project: [])  # fmt: skip
    try:
        for action in sorted(TRAIN_EVENTS):
            answer = worker.notify(action, 1)
            assert answer["queued"], (action, answer)
        assert not worker.notify("PROJECT_UPDATED", 1)["queued"]
    finally:
        worker.close(30)
