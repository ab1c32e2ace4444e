"""Label Studio's ML backend protocol: the request bodies, the project's labeling config, predictions.

Label Studio 1.23 (``label_studio/ml/api_connector.py``) calls a backend with these JSON bodies:

* ``POST /setup`` ``{"project": "<id>.<created_at>", "schema": <labeling config>, "hostname",
  "access_token", "extra_params"}`` when the backend is connected and before every prediction run; it
  keeps ``model_version`` from the answer. The access token is not read (the service takes its own
  ``LABEL_STUDIO_API_KEY``), so it is never stored or logged.
* ``POST /predict`` ``{"tasks": [...], "project", "label_config", "params": {"login", "password",
  "context"}}``; it expects ``{"results": [...]}`` with ONE item per task, in task order. An item
  is a prediction ``{"result", "score", "model_version"}`` (what label-studio-ml-backend 2.x's
  ``ModelResponse`` dumps) -- or, for a task that failed, ``{"error", "model_version"}`` without a
  ``result``: Label Studio logs such an item and stores no prediction for that task, while the others
  are stored (``MLBackend._get_predictions_from_ml_backend``). A short ``results`` list would make it
  drop every prediction of the batch, so a failed task never shortens the list.
* ``POST /webhook`` ``{"action": ..., "project": {"id", "label_config", ...}, ...}``: the webhook
  Label Studio creates for the backend (every action) and the "start training" button
  (``action: START_TRAINING``).

Every extra field is ignored, so newer Label Studio versions that send more keep working.
"""

from __future__ import annotations

import functools
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ie.annotation.client import interface_problems
from ie.annotation.labelstudio import TEXT_NAME, label_config, prediction_block, validate_tasks
from ie.core.document import Document
from ie.core.schema import SCHEMA, Schema

# the actions that start (or ask for) a retraining; Label Studio 1.23 sends ANNOTATIONS_DELETED (plural)
# for deletions, label-studio-ml-backend 2.x lists ANNOTATION_DELETED: both are accepted
TRAIN_EVENTS = frozenset(
    {
        "ANNOTATION_CREATED",
        "ANNOTATIONS_CREATED",
        "ANNOTATION_UPDATED",
        "ANNOTATION_DELETED",
        "ANNOTATIONS_DELETED",
        "START_TRAINING",
    }
)


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class SetupRequest(_Body):
    project: str | int | None = None
    label_config: str | None = Field(None, alias="schema")
    extra_params: dict[str, Any] | None = None


class PredictRequest(_Body):
    # tasks stay untyped here: a malformed task is an error for that task, not a failed request
    tasks: list[Any]
    project: str | int | None = None
    label_config: str | None = None


class WebhookProject(_Body):
    id: int
    label_config: str | None = None


class WebhookRequest(_Body):
    action: str
    project: WebhookProject | None = None


def project_id(project: str | int | None) -> int | None:
    """``"12.1700000000"`` (Label Studio's ``<id>.<created_at>``) → 12; None when absent or unreadable."""
    if project is None or isinstance(project, bool):
        return None
    head = str(project).split(".", 1)[0]
    return int(head) if head.isdigit() else None


# ---------------------------------------------------------------------------------------------
# the project's labeling config
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProjectConfig:
    """What a project's labeling config means for predictions: the ``<Text>`` tag the ``entity`` and
    ``trigger`` controls point at (its name is the results' ``to_name``, its ``$value`` the task's data
    key), and why predictions for it cannot be made (``problems``: it is not this schema's config)."""

    xml: str
    to_name: str
    text_key: str
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def describe_problems(self) -> str:
        return (
            "the project's labeling config is not ie's (generate it with `ie-studio config`): "
            + "; ".join(self.problems)
        )


@functools.lru_cache(maxsize=32)
def parse_config(config: str | None, schema: Schema = SCHEMA) -> ProjectConfig:
    """Check a labeling config against the schema with the SDK's ``LabelInterface``; None is ours."""
    from label_studio_sdk.label_interface import LabelInterface

    xml = config if config is not None else label_config(schema)
    try:
        interface = LabelInterface(xml)
    except Exception as e:  # the SDK raises bare Exceptions (and lxml errors) on a bad config
        return ProjectConfig(xml, TEXT_NAME, TEXT_NAME, (f"it cannot be parsed: {e}",))
    problems: list[str] = []
    targets: set[str] = set()
    kinds = (("entity", schema.entity_types), ("trigger", schema.trigger_types))
    for kind, labels in kinds:
        try:
            control = interface.get_control(kind)
        except Exception:
            problems.append(f"no <Labels name={kind!r}> control")
            continue
        if control.tag != "Labels":
            problems.append(f"control {kind!r} is a <{control.tag}>, not <Labels>")
            continue
        missing = [label for label in labels if label not in (control.labels or [])]
        if missing:
            problems.append(f"control {kind!r} lacks the label(s) {', '.join(missing)}")
        targets.update(control.to_name or [])
    to_name, text_key = TEXT_NAME, TEXT_NAME
    if len(targets) > 1:
        problems.append(f"the entity and trigger controls point at different objects {sorted(targets)}")
    elif targets:
        to_name = next(iter(targets))
        obj = interface.objects and {o.name: o for o in interface.objects}.get(to_name)
        if obj is None or obj.tag != "Text":
            problems.append(f"the controls point at {to_name!r}, which is not a <Text> tag")
        elif not (isinstance(obj.value, str) and obj.value.startswith("$") and len(obj.value) > 1):
            problems.append(f"<Text name={to_name!r}> has no $data value")
        else:
            text_key = obj.value[1:]
    relations = {
        el.get("value") for el in ET.fromstring(xml).iter() if el.tag == "Relation" and el.get("value")
    }
    missing_rel = [r.name for r in schema.relation_types if r.name not in relations]
    if missing_rel:
        problems.append(f"<Relations> lacks the relation label(s) {', '.join(missing_rel)}")
    return ProjectConfig(xml, to_name, text_key, tuple(problems))


# ---------------------------------------------------------------------------------------------
# tasks in, predictions out
# ---------------------------------------------------------------------------------------------


class TaskError(ValueError):
    """Why one task gets no prediction; the message names the task and never quotes its text."""


def task_ref(task: Any, index: int) -> Any:
    return task.get("id", f"#{index}") if isinstance(task, dict) else f"#{index}"


def task_text(task: Any, index: int, config: ProjectConfig) -> str:
    """The article of a task (``data[<the Text tag's $value>]``), or :class:`TaskError`."""
    ref = task_ref(task, index)
    if not isinstance(task, dict):
        raise TaskError(f"task {ref}: not a JSON object")
    data = task.get("data")
    if not isinstance(data, dict):
        raise TaskError(f"task {ref}: no data object")
    if config.text_key not in data:
        raise TaskError(f"task {ref}: no data.{config.text_key}")
    text = data[config.text_key]
    if not isinstance(text, str):
        raise TaskError(f"task {ref}: data.{config.text_key} is not a string (got {type(text).__name__})")
    if not text.strip():
        raise TaskError(f"task {ref}: data.{config.text_key} is empty")
    return text


def failed_prediction(message: str, model_version: str) -> dict[str, Any]:
    """The ``results`` item of a task that failed: no ``result`` key, so Label Studio stores nothing."""
    return {"model_version": model_version, "error": message}


def to_prediction(
    doc: Document, ref: Any, model_version: str, config: ProjectConfig, schema: Schema = SCHEMA
) -> dict[str, Any]:
    """A predicted document as a Label Studio prediction, checked against the schema (offsets, text,
    labels, relation types) and the project's config (``LabelInterface``); :class:`TaskError` if not valid."""
    doc.check_offsets()
    block = prediction_block(doc, model_version, schema, to_name=config.to_name)
    task = {"id": ref, "data": {TEXT_NAME: doc.text}, "predictions": [block]}
    _, problems = validate_tasks([task], "predictions", schema)
    if not problems:
        problems = interface_problems([(ref, task)], "predictions", schema=schema, config=config.xml)
    if problems:
        shown = "; ".join(str(p) for p in problems[:3])
        more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
        raise TaskError(f"invalid prediction: {shown}{more}")
    return block
