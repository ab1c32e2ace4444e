"""Push tasks to, and pull exports from, a live Label Studio server through label-studio-sdk.

Label Studio stores whatever JSON it is given, so nothing reaches the server before every task has
passed two checks: :func:`ie.annotation.labelstudio.validate_tasks` (offsets, labels, relation
types: the schema) and the SDK's ``LabelInterface`` (control and object names, value shape,
prediction scores: the labeling config). A file with any problem is rejected whole; no project is created.

The API token comes from ``LABEL_STUDIO_API_KEY`` (or an explicit argument) and never appears in a
message, a repr or a log line.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ie.annotation.labelstudio import (
    TEXT_NAME,
    Problem,
    ValidationError,
    label_config,
    read_json,
    validate_tasks,
)
from ie.core.document import Document
from ie.core.fileio import atomic_write_json
from ie.core.schema import SCHEMA, Schema

URL_ENV = "LABEL_STUDIO_URL"
KEY_ENV = "LABEL_STUDIO_API_KEY"
DEFAULT_URL = "http://localhost:8080"

# Keys of an annotation / prediction block that survive the trip to the server; ids, users and
# timestamps from another server's export would be meaningless (or wrong) in the new project.
_BLOCK_KEYS = {
    "annotations": ("result", "was_cancelled", "ground_truth", "lead_time"),
    "predictions": ("result", "model_version", "score"),
}
# what the annotation queue reads of a task (Data Manager fields; "include" leaves the results out)
_QUEUE_FIELDS = "id,data,predictions_score,predictions_model_versions,total_annotations,cancelled_annotations"
_REGION_REF = re.compile(r"^(Region|Relation) (\d+): ")
_DANGLING = re.compile(r"^'(?:from_id|to_id)' '(.*)' not found in regions$")


class StudioError(RuntimeError):
    """A server-side or network failure, worded so that it can be printed as is (no token)."""


@dataclass
class StudioClient:
    """An authenticated connection; ``repr`` shows the URL only."""

    url: str
    sdk: Any = field(repr=False)

    @classmethod
    def connect(
        cls, url: str | None = None, api_key: str | None = None, timeout: float = 60.0, max_retries: int = 2
    ) -> StudioClient:
        """Explicit arguments override ``LABEL_STUDIO_URL`` / ``LABEL_STUDIO_API_KEY``.

        The SDK retries refused connections and 5xx answers ``max_retries`` times with backoff.
        """
        from label_studio_sdk import LabelStudio

        url = (url or os.environ.get(URL_ENV) or DEFAULT_URL).rstrip("/")
        key = api_key or os.environ.get(KEY_ENV)
        if not key:
            raise StudioError(f"no Label Studio API token: set {KEY_ENV} (or pass --api_key)")
        return cls(url, LabelStudio(base_url=url, api_key=key, timeout=timeout, max_retries=max_retries))

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run an SDK call and turn its failures into one readable :class:`StudioError`."""
        import httpx
        from label_studio_sdk.core.api_error import ApiError

        try:
            return fn(*args, **kwargs)
        except ApiError as e:
            raise StudioError(f"{what} on {self.url} failed: {_describe_api_error(e)}") from None
        except httpx.HTTPError as e:
            raise StudioError(f"{what}: cannot reach Label Studio at {self.url}: {e}") from None

    def create_project(self, title: str, config: str, description: str = "") -> int:
        project = self._call(
            "creating a project", self.sdk.projects.create,
            title=title, label_config=config, description=description,
        )  # fmt: skip
        return int(project.id)

    def delete_project(self, project_id: int) -> None:
        self._call(f"deleting project {project_id}", self.sdk.projects.delete, project_id)

    def import_tasks(self, project_id: int, tasks: list[dict[str, Any]]) -> list[int]:
        response = self._call(
            f"importing {len(tasks)} tasks into project {project_id}",
            self.sdk.projects.import_tasks, project_id, request=tasks, return_task_ids=True,
        )  # fmt: skip
        return list(response.task_ids or [])

    def list_tasks(self, project_id: int) -> list[Any]:
        """A project's tasks as the Data Manager lists them: text, annotation counts, prediction score."""
        return self._call(
            f"listing the tasks of project {project_id}",
            lambda: list(self.sdk.tasks.list(project=project_id, include=_QUEUE_FIELDS, page_size=100)),
        )

    def export_tasks(self, project_id: int, timeout: float = 120.0) -> list[dict[str, Any]]:
        """Every task of a project in Label Studio JSON, predictions included in full (not as ids).

        The quick ``/export`` endpoint lists predictions by id only, so this takes an export
        snapshot, waits for it, downloads it and deletes it again.
        """
        exports = self.sdk.projects.exports
        what = f"exporting project {project_id}"
        snapshot = self._call(
            what, exports.create, project_id, title="ie-studio pull",
            serialization_options={
                "predictions": {"only_id": False},
                "drafts": {"only_id": True},
                "annotations__completed_by": {"only_id": True},
            },
        )  # fmt: skip
        try:
            deadline = time.monotonic() + timeout
            while snapshot.status != "completed":
                if snapshot.status == "failed":
                    raise StudioError(f"{what} on {self.url} failed on the server")
                if time.monotonic() > deadline:
                    raise StudioError(f"{what} on {self.url}: no result after {timeout:.0f} s")
                time.sleep(0.2)
                snapshot = self._call(what, exports.get, project_id, snapshot.id)
            raw = self._call(
                what, lambda: b"".join(exports.download(project_id, snapshot.id, export_type="JSON"))
            )
        finally:
            try:
                self._call(what, exports.delete, project_id, snapshot.id)
            except StudioError:
                pass  # a leftover snapshot file on the server is harmless
        try:
            tasks = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise StudioError(f"{what} on {self.url}: the server sent invalid JSON ({e})") from None
        if not isinstance(tasks, list):
            raise StudioError(f"{what} on {self.url}: expected a JSON list of tasks")
        return tasks


def _describe_api_error(e: Any) -> str:
    status, body = getattr(e, "status_code", None), getattr(e, "body", None)
    if status == 401:
        return (f"HTTP 401: authentication failed; check {KEY_ENV} (a legacy token also needs "
                "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN=true on the server)")  # fmt: skip
    if status == 404:
        return "HTTP 404: not found (wrong project id or URL?)"
    if isinstance(body, dict):
        detail = body.get("validation_errors") or body.get("detail") or body
        return f"HTTP {status}: {detail}"
    return f"HTTP {status}: {str(body)[:500]}"


# ---------------------------------------------------------------------------------------------
# reading and checking what is to be pushed
# ---------------------------------------------------------------------------------------------


def _first_block(task: dict[str, Any], field: str) -> dict[str, Any] | None:
    """The block validate_tasks reads: the first non-cancelled annotation or prediction."""
    for item in task.get(field) or []:
        if isinstance(item, dict) and not item.get("was_cancelled", False):
            return item
    return None


def _flatten(errors: Iterable[Any]) -> list[str]:
    # the SDK returns a relation's errors as a nested list
    out: list[str] = []
    for e in errors:
        out += _flatten(e) if isinstance(e, list) else [str(e)]
    return out


def interface_problems(
    tasks: Sequence[tuple[Any, dict[str, Any]]],
    field: str,
    source: str | None = None,
    schema: Schema = SCHEMA,
    config: str | None = None,
) -> list[Problem]:
    """Check each (task ref, task)'s block against the labeling config with the SDK's ``LabelInterface``
    (``config``: a project's own config; default the schema's)."""
    from label_studio_sdk.label_interface import LabelInterface

    interface = LabelInterface(config if config is not None else label_config(schema))
    problems: list[Problem] = []
    for ref, task in tasks:
        block = _first_block(task, field)
        if block is None:
            continue
        results = block.get("result") or []
        found: list[tuple[str, Any, str]] = []  # (kind, result ref, message)
        for message in _flatten(interface.validate_prediction(block, return_errors=True)):
            m = _REGION_REF.match(message)
            if not (m and int(m.group(2)) < len(results) and isinstance(results[int(m.group(2))], dict)):
                found.append(("", None, message))
                continue
            item = results[int(m.group(2))]
            if m.group(1) == "Region":
                result_ref = item.get("id") or f"#{m.group(2)}"
            else:
                result_ref = f"relation #{m.group(2)} ({item.get('from_id')}->{item.get('to_id')})"
            found.append((m.group(1), result_ref, message[m.end() :]))
        # a relation to a region that already has an error is the same problem: report the region only
        bad_regions = {r for kind, r, _ in found if kind == "Region"}
        for kind, result_ref, message in found:
            dangling = _DANGLING.match(message)
            if kind == "Relation" and dangling and dangling.group(1) in bad_regions:
                continue
            problems.append(Problem(ref, result_ref, f"Label Studio: {message}", source))
    return problems


def check_tasks(
    tasks: Any, field: str, source: str, schema: Schema = SCHEMA
) -> tuple[list[Document], list[Problem]]:
    """Every check of ``field`` blocks: the schema's first, then the labeling config's (the SDK's
    ``LabelInterface``) on the tasks that passed them, so each problem is reported once. Returns the
    documents of the tasks that passed the schema checks, and all problems."""
    docs, problems = validate_tasks(tasks, field=field, schema=schema, source=source)
    if not isinstance(tasks, list):
        return docs, problems
    bad = {repr(p.task) for p in problems}
    refs = [(t.get("id", f"#{i}"), t) for i, t in enumerate(tasks) if isinstance(t, dict)]
    clean = [(ref, t) for ref, t in refs if repr(ref) not in bad]
    if field == "predictions":
        for ref, t in clean:
            block = _first_block(t, field)
            if block is not None and not block.get("model_version"):
                problems.append(Problem(ref, None, "prediction without a model_version", source))
    problems += interface_problems(clean, field, source, schema)
    return docs, problems


def _checked(
    tasks: Any, field: str, source: str, schema: Schema
) -> tuple[list[dict[str, Any]], list[Problem]]:
    """The tasks (objects only) and every problem of :func:`check_tasks`."""
    _, problems = check_tasks(tasks, field, source, schema)
    if not isinstance(tasks, list):
        return [], problems
    return [t for t in tasks if isinstance(t, dict)], problems


def read_inputs(
    paths: Sequence[str | Path], schema: Schema = SCHEMA
) -> tuple[list[tuple[str, dict[str, Any]]], list[Problem]]:
    """(file, task) pairs from Label Studio JSON files (annotated or not) and plain ``.txt`` articles."""
    tasks: list[tuple[str, dict[str, Any]]] = []
    problems: list[Problem] = []
    for path in map(Path, paths):
        if path.suffix == ".txt":
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as e:
                problems.append(Problem("-", None, f"cannot read article: {e}", str(path)))
                continue
            if not text.strip():
                problems.append(Problem("-", None, "empty article", str(path)))
                continue
            tasks.append((str(path), {"data": {TEXT_NAME: text, "source": path.name}}))
            continue
        try:
            file_tasks = read_json(path)
        except ValidationError as e:
            problems += e.problems
            continue
        file_tasks, file_problems = _checked(file_tasks, "annotations", str(path), schema)
        problems += file_problems
        tasks += [(str(path), t) for t in file_tasks]
    return tasks, problems


def _import_block(block: dict[str, Any], field: str) -> dict[str, Any]:
    return {k: block[k] for k in _BLOCK_KEYS[field] if block.get(k) is not None}


def build_import(
    inputs: Sequence[str | Path], predictions: str | Path | None = None, schema: Schema = SCHEMA
) -> list[dict[str, Any]]:
    """The task list to import, or :class:`ValidationError` listing every problem of every file.

    Predictions are attached to the input task with the same ``data.text``; a prediction for an
    article that is not among the inputs becomes a new task (pre-annotated new articles).
    """
    tasks, problems = read_inputs(inputs, schema)
    pred_tasks: list[dict[str, Any]] = []
    if predictions is not None:
        try:
            raw = read_json(predictions)
        except ValidationError as e:
            problems += e.problems
        else:
            pred_tasks, pred_problems = _checked(raw, "predictions", str(predictions), schema)
            problems += pred_problems
    if problems:
        raise ValidationError(problems)

    out: list[dict[str, Any]] = []
    by_text: dict[str, tuple[str, dict[str, Any]]] = {}
    for source, task in tasks:
        data = task["data"]
        if data[TEXT_NAME] in by_text:
            first = by_text[data[TEXT_NAME]][0]
            msg = f"the same article text as a task of {first}"
            problems.append(Problem(task.get("id", "-"), None, msg, source))
            continue
        item: dict[str, Any] = {"data": data}
        block = _first_block(task, "annotations")
        if block is not None and block.get("result"):
            item["annotations"] = [_import_block(block, "annotations")]
        by_text[data[TEXT_NAME]] = (source, item)
        out.append(item)
    for task in pred_tasks:
        block = _first_block(task, "predictions")
        if block is None:
            continue
        source, item = by_text.get(task["data"][TEXT_NAME], (None, None))
        if item is None:
            item = {"data": task["data"]}
            by_text[task["data"][TEXT_NAME]] = (str(predictions), item)
            out.append(item)
        elif "predictions" in item:
            msg = "a second prediction for the same article text"
            problems.append(Problem(task.get("id", "-"), None, msg, str(predictions)))
            continue
        item["predictions"] = [_import_block(block, "predictions")]
    if problems:
        raise ValidationError(problems)
    if not out:
        raise ValidationError([Problem("-", None, "nothing to push: no tasks in the inputs", None)])
    return out


# ---------------------------------------------------------------------------------------------
# the two operations
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PushResult:
    project_id: int
    task_ids: list[int]
    url: str

    @property
    def project_url(self) -> str:
        return f"{self.url}/projects/{self.project_id}/data"


def push(
    client: StudioClient, tasks: list[dict[str, Any]], title: str, schema: Schema = SCHEMA
) -> PushResult:
    """Create a project with the schema's labeling config and import ``tasks`` (all or nothing)."""
    project_id = client.create_project(title, label_config(schema))
    try:
        task_ids = client.import_tasks(project_id, tasks)
        if len(task_ids) != len(tasks):
            raise StudioError(f"the server imported {len(task_ids)} of {len(tasks)} tasks")
    except BaseException:
        try:
            client.delete_project(project_id)
        except StudioError:
            pass
        raise
    return PushResult(project_id, task_ids, client.url)


@dataclass(frozen=True)
class QueuedTask:
    """An unannotated task and the model's confidence in its prediction (``None``: not predicted)."""

    id: int
    score: float | None
    model_version: str
    text: str

    def preview(self, words: int = 8) -> str:
        """The first words of the article on one line."""
        first = self.text.split(None, words)
        return " ".join(first[:words]) + (" …" if len(first) > words else "")


@dataclass
class BackendConnection:
    """An ML backend connected to a project, and the webhook Label Studio made for it."""

    backend_id: int
    model_version: str
    webhook_id: int | None


def connect_backend(
    client: StudioClient,
    project_id: int,
    backend_url: str,
    basic_auth: tuple[str, str] | None = None,
    title: str = "ie-serve",
) -> BackendConnection:
    """Connect an ML backend (``ie-serve``) to a project, webhooks included.

    Label Studio calls ``/health`` and ``/setup`` and, for a new connection, creates a webhook to
    ``<backend>/webhook`` for every action (annotation events reach the retraining worker). That
    webhook carries no credentials: with basic auth on, the backend would refuse every event, so
    the webhook gets the same ``Authorization`` header the ML connection uses.
    """
    import base64

    backend_url = backend_url.rstrip("/")
    auth: dict[str, Any] = {}
    if basic_auth is not None:
        user, password = basic_auth
        auth = {"auth_method": "BASIC_AUTH", "basic_auth_user": user, "basic_auth_pass": password}
    backend = client._call(
        f"connecting the ML backend {backend_url} to project {project_id}",
        client.sdk.ml.create, project=project_id, url=backend_url, title=title, **auth,
    )  # fmt: skip
    hooks = client._call(
        f"listing the webhooks of project {project_id}", client.sdk.webhooks.list, project=str(project_id)
    )
    hook = next((h for h in hooks if (h.url or "").rstrip("/") == f"{backend_url}/webhook"), None)
    if hook is not None and basic_auth is not None:
        token = base64.b64encode(f"{basic_auth[0]}:{basic_auth[1]}".encode()).decode()
        client._call(
            f"adding the backend's credentials to webhook {hook.id}",
            client.sdk.webhooks.update, hook.id, headers={"Authorization": f"Basic {token}"},
        )  # fmt: skip
    return BackendConnection(int(backend.id), backend.model_version or "", hook.id if hook else None)


def annotation_queue(client: StudioClient, project_id: int, limit: int | None = None) -> list[QueuedTask]:
    """A project's unannotated tasks, least certain first: the order to annotate them in.

    The score is Label Studio's task-level ``predictions_score`` (the mean of the task's prediction
    scores, the Data Manager's "Prediction score" column), so the model's least confident articles,
    the ones an annotation teaches it most, come first. Tasks without a prediction follow the scored
    ones (the model has said nothing about them yet); ties go by task id. A task with any annotation,
    submitted or skipped, is left out.
    """
    queue = [
        QueuedTask(
            int(t.id),
            None if t.predictions_score is None else float(t.predictions_score),
            t.predictions_model_versions or "",
            str((t.data or {}).get(TEXT_NAME, "")),
        )
        for t in client.list_tasks(project_id)
        if not (t.total_annotations or t.cancelled_annotations)
    ]
    queue.sort(key=lambda t: (t.score is None, t.score or 0.0, t.id))
    return queue if limit is None else queue[:limit]


def pull(
    client: StudioClient, project_id: int, out: str | Path, schema: Schema = SCHEMA
) -> tuple[list[dict[str, Any]], list[Problem]]:
    """Write a project's full JSON export to ``out`` atomically and return it with its problems.

    Annotators can draw relations Label Studio accepts but the schema forbids, so the export is
    always written (their work is never dropped) and the problems are returned for the caller to report.
    """
    tasks = client.export_tasks(project_id)
    atomic_write_json(out, tasks)
    _, problems = validate_tasks(tasks, "annotations", schema, source=str(out))
    predicted = [t for t in tasks if isinstance(t, dict) and t.get("predictions")]
    if predicted:
        problems += validate_tasks(predicted, "predictions", schema, source=str(out))[1]
    return tasks, list(dict.fromkeys(problems))
