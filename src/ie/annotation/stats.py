"""Counts of spans and relations per label and per article, for the guidelines and reviews."""

from __future__ import annotations

from collections import Counter

from ie.core.document import Document
from ie.core.schema import SCHEMA, Schema


def count_table(docs: list[Document], schema: Schema = SCHEMA) -> str:
    """A Markdown table: one row per label, one column per article, plus totals."""
    names = [str(d.meta.get("source", d.id)).removesuffix(".txt") for d in docs]
    span_counts = [Counter(s.label for s in d.spans) for d in docs]
    rel_counts = [Counter(r.label for r in d.relations) for d in docs]
    header = "| kind | label | " + " | ".join(names) + " | total |"
    lines = [header, "|" + "---|" * (len(names) + 3)]

    def row(kind: str, label: str, counts: list[Counter[str]]) -> None:
        values = [c[label] for c in counts]
        lines.append(f"| {kind} | {label} | " + " | ".join(map(str, values)) + f" | {sum(values)} |")

    for label in schema.entity_types:
        row("entity", label, span_counts)
    for label in schema.trigger_types:
        row("trigger", label, span_counts)
    for label in schema.relation_labels:
        row("relation", label, rel_counts)
    span_tot = [sum(c.values()) for c in span_counts]
    rel_tot = [sum(c.values()) for c in rel_counts]
    lines.append("| **all** | spans | " + " | ".join(map(str, span_tot)) + f" | {sum(span_tot)} |")
    lines.append("| **all** | relations | " + " | ".join(map(str, rel_tot)) + f" | {sum(rel_tot)} |")
    return "\n".join(lines) + "\n"
