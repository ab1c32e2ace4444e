"""The in-memory form of an annotated (or predicted) article.

Offsets are Python code points into :attr:`Document.text`, exactly as Label Studio stores them,
so ``doc.text[span.start:span.end] == span.text`` holds for every span of a valid document.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Span:
    id: str
    start: int
    end: int
    label: str
    text: str
    score: float | None = None


@dataclass(frozen=True)
class Relation:
    """A directed link ``head`` (a trigger span id) → ``tail`` (an argument span id)."""

    head: str
    tail: str
    label: str
    score: float | None = None


@dataclass
class Document:
    id: str
    text: str
    spans: list[Span] = field(default_factory=list)
    relations: list[Relation] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def span(self, span_id: str) -> Span:
        for s in self.spans:
            if s.id == span_id:
                return s
        raise KeyError(f"document {self.id}: no span with id {span_id!r}")

    @property
    def spans_by_id(self) -> dict[str, Span]:
        return {s.id: s for s in self.spans}

    def sorted_spans(self) -> list[Span]:
        return sorted(self.spans, key=lambda s: (s.start, s.end, s.label))

    def check_offsets(self) -> None:
        """Raise if a span does not slice the text: the invariant every emitter must keep."""
        for s in self.spans:
            if not (0 <= s.start < s.end <= len(self.text)) or self.text[s.start : s.end] != s.text:
                raise ValueError(
                    f"document {self.id}: span {s.id} [{s.start}:{s.end}] {s.text!r} does not slice the text"
                )
