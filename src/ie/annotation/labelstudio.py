"""Label Studio's JSON format: the labeling config, export → :class:`Document`, and back.

Label Studio does not validate labels or relation ids on import, so everything that reads an
export goes through :func:`validate_tasks` first and reports every problem with the task id and
result id it concerns.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from ie.core.document import Document, Relation, Span
from ie.core.schema import SCHEMA, Schema
from ie.text.arabic import splits_word

TEXT_NAME = "text"
_WS = re.compile(r"\s+")


def label_config(schema: Schema = SCHEMA) -> str:
    """The labeling interface generated from the schema; committed as configs/label_studio.xml."""
    lines = [
        '<View className="ie-rtl">',
        "  <Style>",
        '    .ie-rtl .lsf-richtext, .ie-rtl .htx-richtext, .ie-rtl [class*="richtext"] {',
        "      direction: rtl; text-align: right; unicode-bidi: plaintext; white-space: pre-wrap;",
        "      font-size: 18px; line-height: 2;",
        "    }",
        "  </Style>",
    ]
    for kind, labels in (("entity", schema.entity_types), ("trigger", schema.trigger_types)):
        lines.append(f'  <Labels name="{kind}" toName="{TEXT_NAME}" showInline="true">')
        for label in labels:
            hint = schema.descriptions.get(label, "")
            lines.append(
                f"    <Label value={quoteattr(label)} background={quoteattr(schema.color(label))}"
                f" hint={quoteattr(hint)}/>"
            )
        lines.append("  </Labels>")
    lines.append(f'  <Text name="{TEXT_NAME}" value="$text" granularity="symbol"/>')
    lines.append("  <Relations>")
    for rel in schema.relation_types:
        lines.append(f"    <Relation value={quoteattr(rel.name)}/>")
    lines.append("  </Relations>")
    lines.append("</View>")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    task: Any
    result: Any
    message: str
    source: str | None = None

    def __str__(self) -> str:
        where = f"{self.source}: " if self.source else ""
        res = f" result {self.result}" if self.result is not None else ""
        return f"{where}task {self.task}{res}: {self.message}"


class ValidationError(ValueError):
    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def _same_but_whitespace(a: str, b: str) -> bool:
    return _WS.sub("", a) == _WS.sub("", b)


def _pick_results(task: dict[str, Any], field: str) -> list[dict[str, Any]]:
    """The result list of the first non-cancelled annotation (or prediction) of a task."""
    for item in task.get(field) or []:
        if isinstance(item, dict) and not item.get("was_cancelled", False):
            return item.get("result") or []
    return []


def _check_task(
    task: Any, index: int, field: str, schema: Schema, source: str | None
) -> tuple[Document | None, list[Problem]]:
    problems: list[Problem] = []
    if not isinstance(task, dict):
        return None, [Problem(f"#{index}", None, "task is not a JSON object", source)]
    tid = task.get("id", f"#{index}")

    def bad(result: Any, msg: str) -> None:
        problems.append(Problem(tid, result, msg, source))

    data = task.get("data")
    text = data.get(TEXT_NAME) if isinstance(data, dict) else None
    if not isinstance(text, str) or not text.strip():
        bad(None, "empty or missing data.text")
        return None, problems

    spans: dict[str, Span] = {}
    raw_relations: list[tuple[Any, dict[str, Any]]] = []
    results = _pick_results(task, field)
    if not isinstance(results, list):
        bad(None, f"{field}[].result is not a list")
        return None, problems
    for pos, item in enumerate(results):
        if not isinstance(item, dict):
            bad(f"#{pos}", "result item is not a JSON object")
            continue
        rtype = item.get("type")
        if rtype == "relation":
            raw_relations.append((pos, item))
            continue
        rid = item.get("id")
        if rtype != "labels":
            bad(rid or f"#{pos}", f"unsupported result type {rtype!r} (expected 'labels' or 'relation')")
            continue
        if not isinstance(rid, str) or not rid:
            bad(f"#{pos}", "span without an id")
            continue
        value = item.get("value") or {}
        start, end, labels = value.get("start"), value.get("end"), value.get("labels")
        if not (isinstance(start, int) and isinstance(end, int)) or isinstance(start, bool):
            bad(rid, f"start/end must be integers, got {start!r}/{end!r}")
            continue
        if not (0 <= start < end <= len(text)):
            bad(rid, f"offsets [{start}:{end}] out of range for a text of {len(text)} characters")
            continue
        if not isinstance(labels, list) or len(labels) != 1:
            bad(rid, f"a span needs exactly one label, got {labels!r}")
            continue
        label = labels[0]
        if label not in schema.span_labels:
            bad(rid, f"unknown label {label!r}")
            continue
        if item.get("from_name") not in (None, schema.kind(label)):
            bad(rid, f"label {label!r} belongs to control {schema.kind(label)!r}, "
                f"not {item.get('from_name')!r}")  # fmt: skip
            continue
        sliced = text[start:end]
        vtext = value.get("text")
        if vtext is not None and not _same_but_whitespace(vtext, sliced):
            bad(rid, f"value.text {vtext!r} does not match the text at [{start}:{end}]: {sliced!r}")
            continue
        if splits_word(text, start, end):
            bad(rid, f"span [{start}:{end}] {sliced!r} starts or ends inside a word; "
                "spans cover whole words, clitics included (see the annotation guidelines)")  # fmt: skip
            continue
        if rid in spans:
            bad(rid, "duplicate result id")
            continue
        score = item.get("score")
        spans[rid] = Span(rid, start, end, label, sliced, float(score) if score is not None else None)

    ordered = sorted(spans.values(), key=lambda s: (s.start, s.end))
    for a, b in pairwise(ordered):
        if b.start < a.end:
            bad(b.id, f"span [{b.start}:{b.end}] {b.label} overlaps span {a.id} "
                f"[{a.start}:{a.end}] {a.label}; spans must be flat")  # fmt: skip

    relations: list[Relation] = []
    seen: set[tuple[str, str, str]] = set()
    rejected = {p.result for p in problems}  # a bad span is one problem, not one more per relation
    for pos, item in raw_relations:
        ref = f"relation #{pos} ({item.get('from_id')}->{item.get('to_id')})"
        head, tail = item.get("from_id"), item.get("to_id")
        direction = item.get("direction", "right")
        if direction == "left":
            head, tail = tail, head
        elif direction != "right":
            bad(ref, f"relation direction {direction!r} is not supported; draw it trigger -> argument")
            continue
        missing = [i for i in (head, tail) if i not in spans]
        if missing:
            if not all(i in rejected for i in missing):
                bad(ref, f"relation to missing span id(s) {', '.join(map(repr, missing))}")
            continue
        labels = item.get("labels")
        if not isinstance(labels, list) or len(labels) != 1:
            bad(ref, f"a relation needs exactly one label, got {labels!r}")
            continue
        label = labels[0]
        if label not in schema.relation_labels:
            bad(ref, f"unknown relation label {label!r}")
            continue
        hl, tl = spans[head].label, spans[tail].label
        if not schema.allows(label, hl, tl):
            bad(ref, f"relation {label!r} is not allowed from {hl} to {tl}")
            continue
        key = (head, tail, label)
        if key in seen:
            bad(ref, "duplicate relation")
            continue
        seen.add(key)
        score = item.get("score")
        relations.append(Relation(head, tail, label, float(score) if score is not None else None))

    meta = {k: v for k, v in data.items() if k != TEXT_NAME}
    doc = Document(str(tid), text, ordered, relations, meta)
    return (None if problems else doc), problems


def validate_tasks(
    tasks: Any, field: str = "annotations", schema: Schema = SCHEMA, source: str | None = None
) -> tuple[list[Document], list[Problem]]:
    """Parse tasks into documents and collect every problem (never raises on bad data)."""
    if not isinstance(tasks, list):
        return [], [Problem("-", None, "a Label Studio export must be a JSON list of tasks", source)]
    docs: list[Document] = []
    problems: list[Problem] = []
    seen_ids: set[Any] = set()
    for index, task in enumerate(tasks):
        if isinstance(task, dict) and "id" in task:
            if task["id"] in seen_ids:
                problems.append(Problem(task["id"], None, "duplicate task id", source))
                continue
            seen_ids.add(task["id"])
        doc, task_problems = _check_task(task, index, field, schema, source)
        problems += task_problems
        if doc is not None:
            docs.append(doc)
    return docs, problems


def read_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValidationError([Problem("-", None, "file not found", str(path))]) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValidationError([Problem("-", None, f"not valid JSON: {e}", str(path))]) from None


def load_documents(path: str | Path, field: str = "annotations", schema: Schema = SCHEMA) -> list[Document]:
    """Load a Label Studio JSON export; raise :class:`ValidationError` listing every problem."""
    docs, problems = validate_tasks(read_json(path), field, schema, source=str(path))
    if problems:
        raise ValidationError(problems)
    return docs


# ---------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------


def document_results(
    doc: Document, schema: Schema = SCHEMA, scores: bool = False, to_name: str = TEXT_NAME
) -> list[dict[str, Any]]:
    """Label Studio ``result`` items for a document's spans and relations (``to_name``: the config's
    ``<Text>`` tag the controls point at)."""
    out: list[dict[str, Any]] = []
    for s in doc.sorted_spans():
        item: dict[str, Any] = {
            "id": s.id,
            "from_name": schema.kind(s.label),
            "to_name": to_name,
            "type": "labels",
            "value": {"start": s.start, "end": s.end, "text": s.text, "labels": [s.label]},
            "origin": "prediction" if scores else "manual",
        }
        if scores and s.score is not None:
            item["score"] = round(s.score, 6)
        out.append(item)
    for r in doc.relations:
        item = {"from_id": r.head, "to_id": r.tail, "type": "relation", "direction": "right",
                "labels": [r.label]}  # fmt: skip
        if scores and r.score is not None:
            item["score"] = round(r.score, 6)
        out.append(item)
    return out


def documents_to_tasks(
    docs: Iterable[Document],
    field: str = "annotations",
    model_version: str | None = None,
    schema: Schema = SCHEMA,
) -> list[dict[str, Any]]:
    """Tasks for import into Label Studio, carrying ``annotations`` or ``predictions``.

    Predictions get ``model_version`` and a task-level ``score`` (mean span score) so Label
    Studio can sort tasks by model confidence for active learning.
    """
    if field not in ("annotations", "predictions"):
        raise ValueError("field must be 'annotations' or 'predictions'")
    tasks = []
    for doc in docs:
        doc.check_offsets()
        data = {TEXT_NAME: doc.text, **doc.meta}
        if field == "annotations":
            block: dict[str, Any] = {"result": document_results(doc, schema), "was_cancelled": False}
        else:
            block = prediction_block(doc, model_version or "unknown", schema)
        tasks.append({"data": data, field: [block]})
    return tasks


def prediction_block(
    doc: Document, model_version: str, schema: Schema = SCHEMA, to_name: str = TEXT_NAME
) -> dict[str, Any]:
    """One Label Studio prediction of a predicted document: ``result`` (spans and relations, each with
    its ``score``), ``model_version``, and a task-level ``score``, the mean span score (None without
    spans), which Label Studio sorts tasks by: the uncertainty signal for active learning."""
    span_scores = [s.score for s in doc.spans if s.score is not None]
    return {
        "model_version": model_version,
        "score": round(sum(span_scores) / len(span_scores), 6) if span_scores else None,
        "result": document_results(doc, schema, scores=True, to_name=to_name),
    }
