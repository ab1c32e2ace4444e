"""The served model: predictions for Label Studio tasks, and an atomic swap to a retrained model.

``Backend.predict`` answers one ``/predict`` request: one item per task, in task order. A task
that cannot be predicted (no text, a text that is not a string, a prediction the project's labeling
config rejects) gets ``{"error", "model_version"}`` (:func:`ie.serving.protocol.failed_prediction`)
and the other tasks their predictions; Label Studio stores nothing for the failed one.

Whole articles are predicted, however long: the :class:`~ie.model.prediction.Predictor` runs the
model's overlapping windows over each article and never truncates.

``reload`` loads the new model first, then swaps model and version together under a lock; requests
already running finish on the model they started with, and each model runs one request at a time
(two CPU-bound forward passes at once only compete for the same cores).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ie.model.files import check_model_dir
from ie.serving.logs import log_event
from ie.serving.protocol import (
    TaskError,
    failed_prediction,
    parse_config,
    task_ref,
    task_text,
    to_prediction,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServedModel:
    path: Path
    version: str
    predictor: Any  # ie.model.prediction.Predictor (imported lazily: it imports torch)
    busy: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)


def load_model(model_dir: str | os.PathLike[str], device: str | None = None) -> ServedModel:
    """A model folder as a :class:`ServedModel`; ValueError naming the folder when it is not one."""
    from ie.events.extraction import model_version
    from ie.model.prediction import Predictor

    path = check_model_dir(model_dir).resolve()
    try:
        predictor = Predictor.from_pretrained(path, device=device)
    except (OSError, ValueError, KeyError) as e:
        raise ValueError(f"{path}: cannot load the model: {e}") from None
    return ServedModel(path, model_version(path), predictor)


class Backend:
    """Holds the served model and its ``model_version``; thread-safe."""

    def __init__(self, served: ServedModel, batch_size: int = 16, device: str | None = None):
        self._served = served
        self._lock = threading.Lock()
        self.batch_size = batch_size
        self.device = device

    @classmethod
    def from_model_dir(
        cls, model_dir: str | os.PathLike[str], batch_size: int = 16, device: str | None = None
    ) -> Backend:
        return cls(load_model(model_dir, device), batch_size, device)

    @property
    def served(self) -> ServedModel:
        with self._lock:
            return self._served

    @property
    def model_version(self) -> str:
        return self.served.version

    @property
    def model_dir(self) -> Path:
        return self.served.path

    @property
    def schema(self) -> Any:
        return self.served.predictor.schema

    def reload(self, model_dir: str | os.PathLike[str]) -> str:
        """Serve the model in ``model_dir`` from now on; returns its version. The new model is loaded
        before the lock is taken, so predictions go on meanwhile; one that fails to load changes nothing."""
        started = time.monotonic()
        new = load_model(model_dir, self.device)
        with self._lock:
            old, self._served = self._served, new
        log_event(logger, "model_reloaded", model_version=new.version, previous=old.version,
                  model_dir=str(new.path), seconds=round(time.monotonic() - started, 3))  # fmt: skip
        return new.version

    def check_config(self, label_config: str | None) -> Any:
        """The project's config as :class:`~ie.serving.protocol.ProjectConfig` (``problems`` if not ours)."""
        return parse_config(label_config, self.schema)

    def predict(self, tasks: list[Any], label_config: str | None = None) -> list[dict[str, Any]]:
        """One Label Studio prediction (or failed-task item) per task, in task order."""
        served = self.served  # this request runs on this model, whatever reload does meanwhile
        schema = served.predictor.schema
        config = parse_config(label_config, schema)
        out: list[dict[str, Any] | None] = [None] * len(tasks)
        if not config.ok:
            message = config.describe_problems()
            return [failed_prediction(f"task {task_ref(t, i)}: {message}", served.version)
                    for i, t in enumerate(tasks)]  # fmt: skip
        texts: list[tuple[int, str]] = []
        for i, task in enumerate(tasks):
            try:
                texts.append((i, task_text(task, i, config)))
            except TaskError as e:
                out[i] = failed_prediction(str(e), served.version)
        docs = self._run(served, texts)
        for (i, _), doc in zip(texts, docs, strict=True):
            ref = task_ref(tasks[i], i)
            if isinstance(doc, str):
                out[i] = failed_prediction(f"task {ref}: {doc}", served.version)
                continue
            try:
                out[i] = to_prediction(doc, ref, served.version, config, schema)
            except (TaskError, ValueError) as e:
                out[i] = failed_prediction(f"task {ref}: {e}", served.version)
        failed = [task_ref(tasks[i], i) for i, item in enumerate(out) if item is None or "error" in item]
        log_event(logger, "predicted", tasks=len(tasks), failed=len(failed), failed_tasks=failed[:20],
                  chars=sum(len(t) for _, t in texts), model_version=served.version)  # fmt: skip
        assert all(item is not None for item in out)  # one item per task: never a short list
        return out  # type: ignore[return-value]

    def _run(self, served: ServedModel, texts: list[tuple[int, str]]) -> list[Any]:
        """Documents for the texts, batched; if the batch fails, each text alone, so one text that
        breaks the model fails alone (its item is then the error message)."""
        if not texts:
            return []
        ids = [str(i) for i, _ in texts]
        with served.busy:
            try:
                return served.predictor.predict([t for _, t in texts], ids, batch_size=self.batch_size)
            except Exception as e:  # one bad text must not fail the others: retry them one by one
                log_event(logger, "batch_failed", level=logging.WARNING, error=type(e).__name__)
            docs: list[Any] = []
            for i, text in texts:
                try:
                    docs += served.predictor.predict([text], [str(i)], batch_size=self.batch_size)
                except Exception as e:
                    docs.append(f"prediction failed: {type(e).__name__}: {e}")
            return docs
