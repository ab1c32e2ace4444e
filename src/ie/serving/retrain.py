"""Retraining from Label Studio annotations: a background worker the ``/webhook`` route notifies.

Events: the annotation webhooks and ``START_TRAINING`` (the model settings' "Start training", sent
to the backend's ``/webhook``), the one list :data:`ie.serving.protocol.TRAIN_EVENTS` the route also
uses, queue a run; any other action is ignored.
One training runs at a time; events that arrive meanwhile coalesce into exactly one follow-up run.

A run:

1. pulls the project's export with label-studio-sdk (:class:`ie.annotation.client.StudioClient`;
   ``LABEL_STUDIO_URL`` / ``LABEL_STUDIO_API_KEY``, the token is never logged);
2. validates every annotated task (:func:`ie.annotation.labelstudio.validate_tasks`, then the SDK's
   ``LabelInterface`` through :func:`ie.annotation.client.interface_problems`): each problem is a log
   line and its task is skipped, never trained on;
3. skips the run when fewer than ``min_new_annotations`` valid annotated tasks are new, changed or
   gone since the last completed training (``retrain_state.json``); ``START_TRAINING`` is an explicit
   request and trains whenever there is something to train on;
4. holds out a slice: an article is held out when ``sha256("ie-retrain-heldout:" + text) % 100 <
   heldout_percent``, so an article's side never changes as annotations grow. When the rule holds out
   no article, the article with the smallest hash is held out; with fewer than 2 valid annotated
   articles the run is skipped (nothing could judge the new model);
5. trains ``python -m ie.training`` in a subprocess (the training config, plus the config's
   ``extra_train_data``, minus the held-out articles) into a staging folder of the
   :class:`~ie.serving.store.ModelStore`: the service never dies with a training, a killed training
   leaves only a staging folder, and the next start removes it;
6. scores the candidate and the served model on the held-out articles with the one scorer
   (:func:`ie.core.scoring.exact_match_scores`, ``combined_f1``) and applies the rule:

   **promote when candidate combined F1 >= served combined F1 - tolerance** (default 0.01);
   otherwise the served model stays and the log says both figures. When the served model was
   trained on any held-out article (the initial model usually is) or that is unknown, its figure is
   a fit check, not comparable: the candidate is promoted and the log says why.

   On promotion: :meth:`ModelStore.promote` (an atomic pointer switch), then ``on_promoted(path,
   version)``. A completed run (promoted or rejected) records the annotations it saw.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ie.core.document import Document
from ie.core.fileio import atomic_write_json
from ie.core.hashing import bucket, sha256_json, sha256_text
from ie.serving.protocol import TRAIN_EVENTS
from ie.serving.store import ModelStore

logger = logging.getLogger(__name__)

START_TRAINING = "START_TRAINING"
STATE_FILE = "retrain_state.json"
RECORD = "retrain.json"  # written into each retrained model: what it trained on, what judged it
_HELDOUT_SALT = "ie-retrain-heldout:"

# Runs ``ie.training`` so that it dies with the thread that started it (Linux PR_SET_PDEATHSIG):
# a SIGKILLed service leaves no orphan training writing into a staging folder the next start removes.
_LAUNCH = (
    "import ctypes, os, runpy, signal, sys\n"
    "parent = int(sys.argv.pop(1))\n"
    "try:\n"
    "    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)\n"
    "except (OSError, AttributeError):\n"
    "    pass\n"
    "if os.getppid() != parent:\n"
    "    sys.exit(1)\n"
    "sys.argv[0] = 'python -m ie.training'\n"
    "runpy.run_module('ie.training', run_name='__main__', alter_sys=True)\n"
)


@dataclass(frozen=True)
class RetrainSettings:
    """How retraining runs. Relative paths in the training config resolve against the working
    directory, as for ``train.py`` (configs are not package data: pass the path)."""

    config: str = "configs/cpu-tiny.yaml"
    overrides: tuple[str, ...] = ()  # ``--field value`` pairs on top of the config
    min_new_annotations: int = 1
    heldout_percent: int = 20
    tolerance: float = 0.01
    project_id: int | None = None  # None: the project each event names

    def __post_init__(self) -> None:
        if self.min_new_annotations < 0:
            raise ValueError("min_new_annotations must be >= 0")
        if not 0 <= self.heldout_percent < 100:
            raise ValueError("heldout_percent must be in [0, 100)")
        if self.tolerance < 0:
            raise ValueError("tolerance must be >= 0")


@dataclass
class RunResult:
    """What one run did; ``outcome`` is promoted, rejected, skipped, failed or cancelled."""

    outcome: str
    reason: str
    project: int
    action: str
    started: float
    seconds: float = 0.0
    invalid_tasks: list[str] = field(default_factory=list)
    new_or_changed: int | None = None
    train_articles: int | None = None
    heldout_ids: list[str] = field(default_factory=list)
    train_seconds: float | None = None  # the training subprocess alone
    candidate_f1: float | None = None
    served_f1: float | None = None
    version: str | None = None


def heldout_score(text: str) -> int:
    """0-99, fixed by the article's text: the held-out rule compares it with ``heldout_percent``."""
    return bucket(text, 100, _HELDOUT_SALT)


def split_heldout(docs: Sequence[Document], percent: int) -> tuple[list[Document], list[Document]]:
    """(train, held out) by :func:`heldout_score`; at least one article held out when there are two."""
    held = [d for d in docs if heldout_score(d.text) < percent]
    if not held and len(docs) >= 2:
        held = [min(docs, key=lambda d: (heldout_score(d.text), d.text))]
    ids = {id(d) for d in held}
    return [d for d in docs if id(d) not in ids], held


def _annotated(task: Any) -> bool:
    return isinstance(task, dict) and any(
        isinstance(a, dict) and not a.get("was_cancelled", False) for a in task.get("annotations") or []
    )


def _fingerprint(task: dict[str, Any]) -> str:
    block = next(a for a in task["annotations"] if isinstance(a, dict) and not a.get("was_cancelled", False))
    payload = {"text": task["data"]["text"], "result": block.get("result") or []}
    return sha256_json(payload)


class RetrainWorker:
    """A thread that owns the retraining of one service; see the module docstring for the rules."""

    def __init__(
        self,
        store: ModelStore,
        settings: RetrainSettings | None = None,
        on_promoted: Callable[[Path, str], Any] | None = None,
        export: Callable[[int], list[dict[str, Any]]] | None = None,
    ):
        """``export(project_id)`` gives a project's tasks (Label Studio JSON); by default the live
        server's export through :class:`~ie.annotation.client.StudioClient` (a file for benchmarks)."""
        self.store = store
        self.settings = settings or RetrainSettings()
        self.on_promoted = on_promoted
        self._export = export
        self._cond = threading.Condition()
        self._pending: tuple[int, str] | None = None  # (project, action) of the queued run
        self._force = False
        self._running = False
        self._closed = False
        self._proc: subprocess.Popen[bytes] | None = None
        self._last: RunResult | None = None
        self.trainings = 0  # training subprocesses started (tests and status count them)
        self.runs = 0
        self._thread = threading.Thread(target=self._loop, name="ie-retrain", daemon=True)
        self._thread.start()

    # -- the API the /webhook route calls -----------------------------------------------------

    def notify(self, action: str, project_id: int | None) -> dict[str, Any]:
        """Queue a run for a relevant event and return at once; say why an event is ignored."""
        relevant = action in TRAIN_EVENTS
        wanted = self.settings.project_id
        with self._cond:
            if self._closed:
                return {"action": action, "queued": False, "reason": "shutting down"}
            if not relevant:
                return {
                    "action": action,
                    "queued": False,
                    "reason": "ignored: not an annotation or training event",
                }
            if project_id is None and wanted is None:
                return {"action": action, "queued": False, "reason": "ignored: no project id"}
            if wanted is not None and project_id is not None and project_id != wanted:
                why = f"ignored: project {project_id} is not this backend's project {wanted}"
                return {"action": action, "queued": False, "reason": why}
            coalesced = self._pending is not None
            self._pending = (project_id if project_id is not None else wanted, action)  # type: ignore[assignment]
            self._force = self._force or action == START_TRAINING
            self._cond.notify_all()
            return {"action": action, "queued": True, "coalesced": coalesced, "state": self._state()}

    def _state(self) -> str:
        return "training" if self._running else ("queued" if self._pending else "idle")

    def status(self) -> dict[str, Any]:
        """State (idle, queued, training: ``follow_up_queued`` says whether a run waits), the last
        run, the served version."""
        with self._cond:
            proc = self._proc
            out = {
                "state": self._state(),
                "follow_up_queued": self._running and self._pending is not None,
                "runs": self.runs,
                "trainings": self.trainings,
                "training_pid": proc.pid if proc is not None and proc.poll() is None else None,
                "last_run": asdict(self._last) if self._last else None,
                "closed": self._closed,
            }
        out["model_version"] = self.store.current()[1]
        return out

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until nothing runs or is queued (tests, benchmarks, a graceful stop); False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._running or self._pending is not None:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def close(self, timeout: float | None = None) -> None:
        """Accept no more events, drop a queued run, stop a running training (SIGTERM, then SIGKILL)."""
        with self._cond:
            self._closed = True
            self._pending = None
            proc = self._proc
            self._cond.notify_all()
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout if timeout is not None else 30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._thread.join(timeout)

    # -- the worker ---------------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                (project, action), force = self._pending, self._force
                self._pending, self._force, self._running = None, False, True
                self.runs += 1
            result = RunResult("failed", "", project, action, time.time())
            try:
                self._run(result, force)
            except Exception as e:  # a run never kills the worker; the service goes on serving
                result.outcome, result.reason = "failed", f"{type(e).__name__}: {e}"
            result.seconds = round(time.time() - result.started, 1)
            log = logger.info if result.outcome in ("promoted", "rejected", "skipped") else logger.error
            log("retrain project %s (%s): %s: %s", project, action, result.outcome, result.reason)
            with self._cond:
                self._last, self._running = result, False
                self._cond.notify_all()

    def _state_path(self) -> Path:
        return self.store.state_dir / STATE_FILE

    def _read_state(self) -> dict[str, Any]:
        try:
            data = json.loads(self._state_path().read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _pull(self, result: RunResult) -> tuple[list[Document], dict[str, str]]:
        """The project's valid annotated articles and their fingerprints; problems logged and skipped."""
        from ie.annotation.client import StudioClient, check_tasks

        if self._export is not None:
            tasks = self._export(result.project)
        else:
            tasks = StudioClient.connect().export_tasks(result.project)
        annotated = [t for t in tasks if _annotated(t)]
        docs, problems = check_tasks(annotated, "annotations", f"project {result.project}")
        for p in problems:
            logger.warning("retrain: invalid annotation skipped: %s", p)
        bad = {str(p.task) for p in problems}
        result.invalid_tasks = sorted(bad)
        by_id = {str(t.get("id", f"#{i}")): t for i, t in enumerate(annotated)}
        valid = [d for d in docs if d.id not in bad]
        return valid, {d.id: _fingerprint(by_id[d.id]) for d in valid}

    def _run(self, result: RunResult, force: bool) -> None:
        from ie.evaluation.run import fold_config
        from ie.training.config import load_config
        from ie.training.data import load_extra_train_docs

        s = self.settings
        docs, prints = self._pull(result)
        state = self._read_state()
        seen = (state.get("projects") or {}).get(str(result.project), {})
        changed = sum(seen.get(k) != v for k, v in prints.items()) + sum(k not in prints for k in seen)
        result.new_or_changed = changed
        if not docs:
            result.outcome, result.reason = "skipped", "no valid annotated task in the project"
            return
        if not force and changed < s.min_new_annotations:
            result.outcome = "skipped"
            result.reason = (f"{changed} new or changed annotated task(s) since the last training, "
                             f"fewer than min_new_annotations={s.min_new_annotations}")  # fmt: skip
            return
        train_docs, held = split_heldout(docs, s.heldout_percent)
        if not held or not train_docs:
            result.outcome = "skipped"
            result.reason = (f"{len(docs)} valid annotated article(s): at least 2 are needed "
                             "(one to train on, one held out to judge the new model)")  # fmt: skip
            return
        result.heldout_ids = [d.id for d in held]
        held_texts = {d.text for d in held}
        base_cfg = load_config(s.config, [*s.overrides, "--output_dir", "unused"])
        extra = [d for d in load_extra_train_docs(base_cfg) if d.text not in held_texts]
        result.train_articles = len(train_docs)

        staging = self.store.new_staging()
        try:
            candidate = staging / "model"
            config = fold_config(base_cfg, [*train_docs, *extra], candidate)
            t0 = time.monotonic()
            finished = self._train(config, staging / "train.log", result)
            result.train_seconds = round(time.monotonic() - t0, 1)
            if not finished:
                return
            candidate_f1 = self._score(candidate, held)
            served_dir, served_version = self.store.current()
            served_f1 = self._score(served_dir, held)
            result.candidate_f1, result.served_f1 = round(candidate_f1, 4), round(served_f1, 4)
            seen_held = self._trained_on(served_dir, held_texts)
            figures = (
                f"held-out combined F1 {candidate_f1:.4f} (candidate) vs {served_f1:.4f} ({served_version})"
            )
            if seen_held is None or seen_held > 0:
                why = "an unknown number" if seen_held is None else f"{seen_held} of {len(held)}"
                promote = True
                result.reason = (f"{figures}; the served model was trained on {why} held-out article(s), "
                                 "so its figure is a fit check, not comparable: promoting")  # fmt: skip
            else:
                promote = candidate_f1 >= served_f1 - s.tolerance
                verb = "promoting" if promote else "keeping the served model"
                result.reason = f"{figures}; rule: candidate >= served - {s.tolerance}: {verb}"
            if self._closed:  # shutting down: the service is not told of a new model any more
                result.outcome, result.reason = "cancelled", "the service is shutting down: not promoting"
                return
            if promote:
                trained = sorted(sha256_text(d.text) for d in [*train_docs, *extra])
                atomic_write_json(candidate / RECORD, {
                    "project": result.project, "train_text_sha256": trained,
                    "heldout_ids": result.heldout_ids, "heldout_combined_f1": candidate_f1,
                    "replaced": served_version, "replaced_heldout_combined_f1": served_f1,
                })  # fmt: skip
                for scratch in ("checkpoints", "cache"):
                    shutil.rmtree(candidate / scratch, ignore_errors=True)
                path, version = self.store.promote(candidate)
                result.outcome, result.version = "promoted", version
                if self.on_promoted is not None:
                    try:
                        self.on_promoted(path, version)
                    except Exception as e:
                        logger.error("retrain: on_promoted(%s) failed: %s: %s", version, type(e).__name__, e)
            else:
                result.outcome, result.version = "rejected", served_version
            projects = dict(state.get("projects") or {})
            projects[str(result.project)] = prints
            atomic_write_json(self._state_path(), {"projects": projects})
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _train(self, config: Path, log_path: Path, result: RunResult) -> bool:
        """Run the training subprocess; False (with the result filled in) when it did not finish."""
        with self._cond:
            if self._closed:
                result.outcome, result.reason = "cancelled", "the service is shutting down"
                return False
            with open(log_path, "wb") as log:
                self._proc = subprocess.Popen(
                    [sys.executable, "-c", _LAUNCH, str(os.getpid()), "--config", str(config)],
                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                )  # fmt: skip
            self.trainings += 1
            proc = self._proc
        logger.info("retrain project %s: training (pid %d, log %s)", result.project, proc.pid, log_path)
        code = proc.wait()
        with self._cond:
            self._proc = None
            closed = self._closed
        if code == 0:
            return True
        tail = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-1:] or [""]
        if closed:
            result.outcome, result.reason = "cancelled", "the service is shutting down: training stopped"
        elif code < 0:
            result.reason = (
                f"the training process was killed ({signal.Signals(-code).name}); the served model stays"
            )
        else:
            result.reason = f"training failed (exit {code}): {tail[0][-300:]}; the served model stays"
        return False

    @staticmethod
    def _score(model_dir: Path, held: Sequence[Document]) -> float:
        from ie.core.scoring import exact_match_scores
        from ie.model.prediction import Predictor

        predictor = Predictor.from_pretrained(model_dir)
        pred = predictor.predict([d.text for d in held], [d.id for d in held])
        return exact_match_scores(list(held), pred)["combined_f1"]

    @staticmethod
    def _trained_on(model_dir: Path, texts: set[str]) -> int | None:
        """How many of ``texts`` the model trained on (``None``: unknown)."""
        record = model_dir / RECORD
        if record.is_file():
            try:
                seen = set(json.loads(record.read_text(encoding="utf-8"))["train_text_sha256"])
            except (OSError, ValueError, KeyError, TypeError):
                return None
            return sum(sha256_text(t) in seen for t in texts)
        from ie.evaluation.run import model_training_docs

        docs, _ = model_training_docs(model_dir)
        if docs is None:
            return None
        seen = {d.text for d in docs}
        return sum(t in seen for t in texts)
