"""Inline markup used to author and review the gold annotations, converted to exact offsets.

A markup file is the article text with spans written inline, then a relations block::

    تعرضت [[قواعد عسكرية|FAC|f1]] تابعة ل[[قوات التحالف الدولي|ACTOR|a1]] ...
    === relations ===
    t1 target f1
    t1 attacker a2      # comments are allowed

``[[text|LABEL]]`` gets an automatic id; ``[[text|LABEL|id]]`` names it so relations can refer
to it. Removing the markup must give back the seed article byte for byte, which
:func:`parse_markup` checks. :func:`render_markup` is the inverse, so a Label Studio export can
be turned back into markup for review.
"""

from __future__ import annotations

import re

from ie.core.document import Document, Relation, Span

SEPARATOR = "=== relations ==="
_SPAN = re.compile(r"\[\[(?P<text>[^\[\]|]+)\|(?P<label>[A-Z]+)(?:\|(?P<id>[A-Za-z0-9_]+))?\]\]")


class MarkupError(ValueError):
    pass


def _line_of(markup: str, pos: int) -> int:
    return markup.count("\n", 0, pos) + 1


def parse_markup(markup: str, doc_id: str, source: str = "<markup>") -> Document:
    """Parse markup into a :class:`Document` (labels are checked later by validation)."""
    body, sep, rel_block = markup.partition("\n" + SEPARATOR)
    if not sep:
        raise MarkupError(f"{source}: missing the '{SEPARATOR}' line")
    parts: list[str] = []
    spans: list[Span] = []
    ids: set[str] = set()
    cursor = 0
    plain_len = 0
    for m in _SPAN.finditer(body):
        parts.append(body[cursor : m.start()])
        plain_len += m.start() - cursor
        text = m.group("text")
        sid = m.group("id") or f"s{len(spans) + 1}"
        if sid in ids:
            raise MarkupError(f"{source}:{_line_of(markup, m.start())}: duplicate span id {sid!r}")
        ids.add(sid)
        spans.append(Span(sid, plain_len, plain_len + len(text), m.group("label"), text))
        parts.append(text)
        plain_len += len(text)
        cursor = m.end()
    parts.append(body[cursor:])
    text = "".join(parts)
    for stray in ("[[", "]]"):
        if stray in text:
            pos = body.find(stray) if stray in body else 0
            raise MarkupError(f"{source}:{_line_of(markup, pos)}: malformed span markup near {stray!r}")

    relations: list[Relation] = []
    base_line = _line_of(markup, len(body)) + 1
    for offset, line in enumerate(rel_block.splitlines()[1:], start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) != 3:
            where = f"{source}:{base_line + offset}"
            raise MarkupError(f"{where}: expected 'HEAD relation TAIL', got {line!r}")
        head, label, tail = fields
        for sid in (head, tail):
            if sid not in ids:
                raise MarkupError(f"{source}:{base_line + offset}: unknown span id {sid!r}")
        relations.append(Relation(head, tail, label))
    return Document(doc_id, text, spans, relations)


def render_markup(doc: Document) -> str:
    """The inverse of :func:`parse_markup` (every span gets its id written out)."""
    out: list[str] = []
    cursor = 0
    for s in doc.sorted_spans():
        out.append(doc.text[cursor : s.start])
        out.append(f"[[{s.text}|{s.label}|{s.id}]]")
        cursor = s.end
    out.append(doc.text[cursor:])
    rels = "\n".join(f"{r.head} {r.label} {r.tail}" for r in doc.relations)
    return "".join(out) + "\n" + SEPARATOR + "\n" + rels + ("\n" if rels else "")
