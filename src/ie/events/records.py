"""One output line of ``ie-extract``: the record of an article, or the error that stopped it.

The JSON Schema of a line is committed as package data, ``ie/resources/extraction_record.schema.json``,
so consumers can validate output without this package; regenerate it after changing a model here or
in :mod:`ie.events.assembly` with::

    ie-extract --write_schema src/ie/resources/extraction_record.schema.json

(a test fails while the committed file differs from :func:`record_json_schema`).
"""

from __future__ import annotations

import datetime as dt
import json
from importlib import resources
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from ie.core.document import Document
from ie.events.assembly import ArticleEvents, Mention

if TYPE_CHECKING:  # importlib.resources.abc is 3.11+; the annotation is never evaluated
    from importlib.resources.abc import Traversable

# package data (importlib.resources): an installed wheel carries it, not only a source checkout
SCHEMA_PATH: Traversable = resources.files("ie") / "resources" / "extraction_record.schema.json"


class Entity(Mention):
    """A predicted span (entity or trigger) with the id relations refer to."""

    id: str


class RelationRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str = Field(description="relation label of the label schema (ie.core.schema.SCHEMA)")
    score: float | None = Field(None, description="model probability; null for gold annotations")
    head: Entity = Field(description="the trigger")
    tail: Entity = Field(description="the argument")


class ExtractionRecord(BaseModel):
    """Events, spans and relations of one article; every offset points into the original text."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="article id: the JSONL `id`, or the .txt file's path below its folder")
    source: str = Field(description="the input file the article came from")
    date: dt.date | None = Field(description="article date, when given; relative times resolve against it")
    events: ArticleEvents
    entities: list[Entity] = Field(description="every predicted span, in text order")
    relations: list[RelationRecord]
    model: str = Field(description="model directory name @ first 12 hex digits of its weights' sha256")
    aliases_version: int = Field(
        description="`version` of the gazetteer (ie/resources/gazetteer.yaml) used for canonical names"
    )


class ExtractionError(BaseModel):
    """An article that could not be processed; the run went on without it."""

    model_config = ConfigDict(extra="forbid")

    id: str
    source: str
    error: str = Field(description="what was wrong, e.g. 'empty text' or 'line 3: not valid JSON: ...'")
    model: str | None = None
    aliases_version: int | None = None


OutputRecord = Annotated[ExtractionRecord | ExtractionError, Field(title="ie-extract output record")]
_ADAPTER: TypeAdapter[ExtractionRecord | ExtractionError] = TypeAdapter(OutputRecord)


def record_json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of one output line."""
    schema = _ADAPTER.json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "ie-extract output record",
        "description": "One line of ie-extract JSONL output: an ExtractionRecord, or an ExtractionError.",
        **{k: v for k, v in schema.items() if k != "title"},
    }


def record_json_schema_text() -> str:
    return json.dumps(record_json_schema(), ensure_ascii=False, indent=2) + "\n"


def parse_record(line: str | bytes) -> ExtractionRecord | ExtractionError:
    return _ADAPTER.validate_json(line)


def entities_and_relations(doc: Document, canonical) -> tuple[list[Entity], list[RelationRecord]]:
    """Record views of a document's spans and relations; ``canonical(text, label)`` names them."""

    def entity(s) -> Entity:
        score = round(s.score, 6) if s.score is not None else None
        return Entity(id=s.id, text=s.text, start=s.start, end=s.end, label=s.label,
                      canonical=canonical(s.text, s.label), score=score)  # fmt: skip

    entities = {s.id: entity(s) for s in doc.sorted_spans()}
    relations = [
        RelationRecord(
            label=r.label,
            score=round(r.score, 6) if r.score is not None else None,
            head=entities[r.head],
            tail=entities[r.tail],
        )
        for r in doc.relations
    ]
    return list(entities.values()), relations
