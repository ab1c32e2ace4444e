"""report.json, report.md and report.html of an evaluation, each written atomically.

All three are rendered in memory first, so a rendering error leaves the previous reports untouched.
The HTML report is self-contained (inline CSS, no script, nothing fetched): each article right to
left with the gold and the predicted spans and relations side by side, coloured by label in
:data:`ie.core.schema.SCHEMA` order; every piece of article text is HTML-escaped.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ie.core.document import Document, Span
from ie.core.fileio import atomic_write_text
from ie.core.schema import SCHEMA, Schema
from ie.core.scoring import relation_keys
from ie.evaluation.event_pairs import ArticleEventPairs, EventPair, pair_article_events
from ie.evaluation.metrics import MISSED
from ie.events.assembly import Casualty, Mention, Strike
from ie.events.canonical import AliasTable
from ie.events.canonical import fold as fold_spelling


@dataclass
class Evaluation:
    """A report (JSON-ready) and the documents the HTML report shows side by side.

    Defined here, beside the renderers that read it, so that ``ie.evaluation.run`` (which builds it)
    imports this module and not the other way round.
    """

    report: dict[str, Any]
    gold: list[Document]
    predicted: list[Document]
    baseline: list[Document] = field(default_factory=list)


REPORT_FILES = ("report.json", "report.md", "report.html")
_ROWS = (
    ("entities", None, "entities (seqeval strict IOB2)"),
    ("entities", "exact", "entities (exact span)"),
    ("triggers", None, "triggers (seqeval strict IOB2)"),
    ("triggers", "exact", "triggers (exact span)"),
    ("spans", None, "all spans (seqeval strict IOB2)"),
    ("spans", "exact", "all spans (exact span)"),
    ("relations", None, "relations (strict)"),
)


def _f(x: float | None) -> str:
    return "—" if x is None else f"{x:.4f}"


def _block(scores: dict[str, Any], kind: str, sub: str | None) -> dict[str, Any]:
    return scores[kind][sub] if sub else scores[kind]


def summary_rows(report: dict[str, Any]) -> list[list[str]]:
    """Header + one row per figure: model micro P/R/F1 and macro F1, then micro and macro F1 of the
    dictionary baseline and of the gazetteer baseline (entities only: it finds no trigger)."""
    rows = [["", "P", "R", "F1", "macro F1", "dictionary F1", "dictionary macro F1", "gazetteer F1",
             "gazetteer macro F1"]]  # fmt: skip
    bases = [report.get("baseline"), report.get("gazetteer_baseline")]
    for kind, sub, name in _ROWS:
        m = _block(report, kind, sub)
        row = [name, _f(m["micro"]["precision"]), _f(m["micro"]["recall"]), _f(m["micro"]["f1"]),
               _f(m["macro"]["f1"])]  # fmt: skip
        for base in bases:
            b = _block(base, kind, sub) if base else None
            row += [_f(b["micro"]["f1"]), _f(b["macro"]["f1"])] if b else ["—", "—"]
        rows.append(row)
    return rows


def cv_rows(cv: dict[str, Any]) -> list[list[str]]:
    rows = [["fold", "held-out", "source", "train s", "entities F1", "triggers F1", "relations F1",
             "dictionary entities F1", "dictionary triggers F1", "dictionary relations F1",
             "gazetteer entities F1"]]  # fmt: skip

    def figures(scores: dict[str, Any] | None, kinds=("entities", "triggers", "relations")) -> list[str]:
        return [_f(scores[k]["micro"]["f1"]) if scores else "—" for k in kinds]

    def gazetteer(scores: dict[str, Any]) -> list[str]:  # entities only: it finds no trigger
        return figures(scores.get("gazetteer_baseline"), ("entities",))

    for fold in cv["folds"]:
        head = [str(fold["fold"]), str(fold["held_out"]), str(fold.get("source") or "")]
        rows.append(
            [*head, f"{fold['train_seconds']:.0f}", *figures(fold["model"]), *figures(fold["baseline"]),
             *gazetteer(fold)]
        )  # fmt: skip
    for name in ("mean", "pooled"):
        rows.append(
            [
                "",
                name,
                "",
                "",
                *figures(cv[name]["model"]),
                *figures(cv[name]["baseline"]),
                *gazetteer(cv[name]),
            ]  # fmt: skip
        )
    return rows


def event_rows(report: dict[str, Any]) -> list[list[str]]:
    """Event-level figures of the model and the baseline, one row per key of ``events``."""
    events = report.get("events") or {}
    base = (report.get("baseline") or {}).get("events") or {}

    def fmt(x: Any) -> str:
        return _f(x) if isinstance(x, float) else ("—" if x is None else str(x))

    return [["", "model", "dictionary baseline"], *([k, fmt(v), fmt(base.get(k))] for k, v in events.items())]


def text_table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def summary_table(report: dict[str, Any]) -> str:
    """The plain-text summary evaluate.py prints."""
    out = [f"mode: {report['mode']}", text_table(summary_rows(report))]
    if report.get("cv"):
        out += ["", "leave-one-article-out cross-validation (micro F1):", text_table(cv_rows(report["cv"]))]
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# markdown
# ---------------------------------------------------------------------------------------------


def _md_cell(x: Any) -> str:
    return str(x).replace("|", "\\|").replace("\n", " ")


def md_table(rows: Sequence[Sequence[Any]]) -> str:
    head, *body = rows
    lines = ["| " + " | ".join(map(_md_cell, head)) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(map(_md_cell, r)) + " |" for r in body]
    return "\n".join(lines)


def _baseline_f1(report: dict[str, Any], key: str, kind: str, label: str) -> str:
    base = report.get(key)
    return _f(base[kind]["per_type"][label]["f1"]) if base else "—"


def _per_type_rows(report: dict[str, Any], schema: Schema) -> list[list[str]]:
    rows = [["type", "kind", "support", "predicted", "P", "R", "F1", "exact F1", "dictionary F1",
             "gazetteer F1"]]  # fmt: skip
    for label in schema.span_labels:
        kind = "entities" if label in schema.entity_types else "triggers"
        t = report[kind]["per_type"][label]
        rows.append(
            [label, schema.kind(label), str(t["support"]), str(t["predicted"]), _f(t["precision"]),
             _f(t["recall"]), _f(t["f1"]), _f(report[kind]["exact"]["per_type"][label]["f1"]),
             _baseline_f1(report, "baseline", kind, label),
             _baseline_f1(report, "gazetteer_baseline", kind, label)]
        )  # fmt: skip
    return rows


def _relation_rows(report: dict[str, Any], schema: Schema) -> list[list[str]]:
    rows = [["relation", "support", "predicted", "P", "R", "F1", "dictionary F1", "gazetteer F1"]]
    for label in schema.relation_labels:
        t = report["relations"]["per_type"][label]
        rows.append(
            [label, str(t["support"]), str(t["predicted"]), _f(t["precision"]), _f(t["recall"]), _f(t["f1"]),
             _baseline_f1(report, "baseline", "relations", label),
             _baseline_f1(report, "gazetteer_baseline", "relations", label)]
        )  # fmt: skip
    return rows


def _confusion_rows(confusion: dict[str, Any]) -> list[list[str]]:
    labels = confusion["labels"]
    rows = [["gold \\ predicted", *labels, MISSED, "of which boundary"]]
    for g in labels:
        row = confusion["matrix"][g]
        rows.append([g, *(str(row[p]) for p in labels), str(row[MISSED]), str(confusion["boundary"][g])])
    rows.append(["(spurious)", *(str(confusion["spurious"][p]) for p in labels), "", ""])
    return rows


def _article_rows(report: dict[str, Any]) -> list[list[str]]:
    rows = [["article", "source", "gold spans", "predicted spans", "gold relations", "predicted relations",
             "entities F1", "triggers F1", "relations F1", "strikes found", "casualties found",
             "counts exact"]]  # fmt: skip

    def found(a: dict[str, Any], kind: str) -> str:  # "3 of 5 (4 predicted)": matched of reference
        return f"{a[f'matched_{kind}']} of {a[f'gold_{kind}']} ({a[f'predicted_{kind}']} predicted)"

    for a in report["per_article"]:
        counts = f"{a['casualty_counts_exact']} of {a['casualty_counts']}"
        rows.append(
            [a["id"], a.get("source") or "", a["gold_spans"], a["predicted_spans"], a["gold_relations"],
             a["predicted_relations"], _f(a["entities_f1"]), _f(a["triggers_f1"]), _f(a["relations_f1"]),
             found(a, "strikes"), found(a, "casualties"), counts]
        )  # fmt: skip
    return rows


def _provenance_lines(report: dict[str, Any]) -> list[str]:
    lines = []
    for f in report["data"]["files"]:
        lines.append(f"- data: `{f['path']}` ({f['articles']} articles, sha256 `{f['sha256'][:12]}`)")
    d = report["data"]
    lines.append(f"- gold: {d['articles']} articles, {d['spans']} spans, {d['relations']} relations")
    m = report.get("model")
    if m:
        enc = m["encoder"]
        lines.append(f"- model: `{m['path']}` (weights sha256 `{(m['weights_sha256'] or '?')[:12]}`)")
        lines.append(
            f"- encoder: {enc['name_or_path']} ({'from scratch, ' if enc.get('from_scratch') else ''}"
            f"{enc['layers']} layers, hidden {enc['hidden_size']}, vocab {enc['vocab_size']})"
        )
        lines.append(f"- model split: {m.get('split')}")
        lines.append(f"- model's training articles: {m['training_articles_source']}")
    b = report.get("baseline")
    if b:
        lines.append(f"- baseline: {b['method']}; relations: {b['relation_rule']}")
        lines.append(f"- baseline dictionary built from: {b['train_data']}")
    g = report.get("gazetteer_baseline")
    if g:
        lines.append(f"- gazetteer baseline: {g['method']} (entities only: no triggers, relations or events)")
    env = report["environment"]
    lines.append("- environment: " + ", ".join(f"{k} {v}" for k, v in env.items() if v))
    return lines


def render_markdown(report: dict[str, Any], schema: Schema = SCHEMA) -> str:
    parts = [
        "# Evaluation report",
        f"Mode **{report['mode']}**, created {report['created']}.",
        "\n".join(_provenance_lines(report)),
    ]
    if report["notes"]:
        parts.append("**Notes**\n\n" + "\n".join(f"- {n}" for n in report["notes"]))
    parts += [
        "## Summary\n\nMicro P/R/F1 (macro F1 averages the types present in gold or prediction). "
        "Spans are scored by seqeval in strict IOB2 mode on word-level tags (whitespace/punctuation "
        "words of the original text) and by exact (start, end, label) matching; a relation counts when "
        "both spans are exact and the label is right.\n\n" + md_table(summary_rows(report)),
        "## Spans per type\n\n" + md_table(_per_type_rows(report, schema)),
        "## Relations per type\n\n" + md_table(_relation_rows(report, schema)),
        "## Span type confusion\n\nGold spans (rows) against the predicted span at the same offsets "
        "(columns); `(missed)`: no predicted span there, of which `boundary`: a predicted span overlaps "
        "it; `(spurious)`: predicted spans with no gold span at their offsets.\n\n"
        + md_table(_confusion_rows(report["confusion"])),
        "## Per article\n\n" + md_table(_article_rows(report)),
    ]
    cv = report.get("cv")
    if cv:
        parts.append(
            f"## Cross-validation ({cv['scheme']})\n\n"
            f"Config `{cv['config']}`{' with ' + ' '.join(cv['overrides']) if cv['overrides'] else ''}; "
            f"encoder: {cv['encoder']}; model selection: {cv['model_selection']}. Micro F1 on each "
            "held-out article; `mean` averages the folds, `pooled` scores all held-out predictions "
            f"together. Total {cv['total_seconds']:.0f} s.\n\n" + md_table(cv_rows(cv))
        )
    events = report.get("events")
    if events is None:
        parts.append("## Events\n\nEvent-level scores are not available in this report.")
    else:
        parts.append(
            "## Events\n\nStrike and casualty events assembled from gold and from predicted spans by the "
            "same code (ie.evaluation.event_metrics).\n\n" + md_table(event_rows(report))
        )
    timing = report.get("timing") or {}
    parts.append("## Timing\n\n" + "\n".join(f"- {k}: {v}" for k, v in timing.items()))
    return "\n\n".join(parts) + "\n"


# ---------------------------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------------------------


def label_colours(schema: Schema = SCHEMA) -> dict[str, tuple[str, str]]:
    """(background, border) per span label: the border in the label's colour (:meth:`Schema.color`,
    the one the labeling interface shows), the background a light tint of it, so Arabic text on it
    stays readable."""
    return {label: (_tint(schema.color(label)), schema.color(label)) for label in schema.span_labels}


def _tint(hex_colour: str, white: float = 0.8) -> str:
    """``#rrggbb`` mixed with ``white`` parts of white."""
    rgb = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return "#" + "".join(f"{round(c + (255 - c) * white):02x}" for c in rgb)


_CSS = """
:root { font-family: system-ui, sans-serif; color: #1b1b1b; }
body { margin: 1.5rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: .9rem; }
th, td { border: 1px solid #ccc; padding: .2rem .5rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.notes li { color: #7a3e00; }
.legend .span { margin: 0 .3rem; }
.article { border-top: 3px solid #444; margin-top: 2rem; padding-top: .5rem; }
.article > header { direction: ltr; text-align: left; }
.columns { display: grid; grid-template-columns: 1fr 1fr; gap: 1.5rem; }
.col > h3 { margin: .3rem 0; }
.text { white-space: pre-wrap; line-height: 2.1; font-size: 1.1rem; font-family: "Noto Naskh Arabic", "Amiri",
  "Arial", sans-serif; }
.span { border: 1px solid; border-radius: 3px; padding: 0 .15rem; }
.span .lab { font: bold .65rem system-ui, sans-serif; margin-inline-start: .2rem; vertical-align: super;
  direction: ltr; unicode-bidi: isolate; }
.span.miss, .span.wrong, .rels li.miss, .rels li.wrong { outline: 2px dashed #c00; outline-offset: 1px; }
.rels { font-size: .95rem; line-height: 1.9; padding-inline-start: 1.5rem; }
.rels a { color: inherit; text-decoration: none; }
.rels .rl { font: bold .8rem system-ui, sans-serif; direction: ltr; unicode-bidi: isolate; }
.rels .arrow { color: #555; margin: 0 .2rem; }
.rels li.miss::marker, .rels li.wrong::marker { color: #c00; }
.status { font: .75rem system-ui, sans-serif; color: #c00; }
.events { margin-top: 1rem; }
.events > h3, .events > h4 { direction: ltr; text-align: left; margin: .4rem 0; }
table.ev { width: 100%; table-layout: fixed; font-size: .95rem; }
table.ev th, table.ev td { text-align: start; vertical-align: top; }
table.ev th:first-child, table.ev td.state { width: 7rem; }
table.ev .f { display: grid; grid-template-columns: 6.5rem 1fr; gap: .4rem; padding: .1rem 0;
  border-bottom: 1px dotted #ddd; }
table.ev .f:last-child { border-bottom: none; }
table.ev .fn { font: .75rem system-ui, sans-serif; color: #555; direction: ltr; unicode-bidi: isolate;
  text-align: end; padding-top: .25rem; }
table.ev .fv { line-height: 1.9; }
table.ev .en { direction: ltr; unicode-bidi: isolate; font: .8rem system-ui, sans-serif; }
table.ev a.span { text-decoration: none; color: inherit; margin-inline-end: .25rem; }
table.ev tr.unmatched td.card { outline: 2px dashed #c00; outline-offset: -3px; }
table.ev .f.diff { background: #fff1cc; box-shadow: inset 3px 0 0 #e0a000; }
table.ev td.state { font: bold .75rem system-ui, sans-serif; direction: ltr; unicode-bidi: isolate; }
table.ev tr.unmatched td.state { color: #c00; }
table.ev tr.matched td.state { color: #176b00; }
"""


def _css(schema: Schema) -> str:
    rules = [
        f".l{i} {{ background: {bg}; border-color: {border}; }}"
        for i, (bg, border) in enumerate(label_colours(schema).values())
    ]
    return _CSS + "\n".join(rules) + "\n"


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _html_table(rows: Sequence[Sequence[Any]]) -> str:
    head, *body = rows
    out = ["<table>", "<tr>" + "".join(f"<th>{_e(c)}</th>" for c in head) + "</tr>"]
    out += ["<tr>" + "".join(f"<td>{_e(c)}</td>" for c in r) + "</tr>" for r in body]
    out.append("</table>")
    return "\n".join(out)


def _span_class(span: Span, schema: Schema) -> str:
    return f"l{schema.span_labels.index(span.label)}" if span.label in schema.span_labels else ""


def _marked_text(doc: Document, other: Document, role: str, anchor: str, schema: Schema) -> str:
    """The article text with this side's spans as <mark>s; status against the other side."""
    other_keys = {(s.start, s.end, s.label) for s in other.spans}
    bad = "miss" if role == "gold" else "wrong"
    out, pos, hidden = [], 0, []
    for s in sorted(doc.spans, key=lambda s: (s.start, -s.end)):
        if s.start < pos:  # overlapping spans cannot nest in flat markup: named below the text
            hidden.append(s)
            continue
        ok = (s.start, s.end, s.label) in other_keys
        out.append(_e(doc.text[pos : s.start]))
        out.append(
            f'<mark id="{anchor}-{_e(s.id)}" class="span {_span_class(s, schema)} {"ok" if ok else bad}" '
            f'data-label="{_e(s.label)}" title="{_e(s.label)} [{s.start}:{s.end}]'
            f"{'' if ok else (' missed' if role == 'gold' else ' not in gold')}"
            f'{"" if s.score is None else f" score {s.score:.3f}"}">'
            f'<bdi>{_e(s.text)}</bdi><span class="lab">{_e(s.label)}</span></mark>'
        )
        pos = s.end
    out.append(_e(doc.text[pos:]))
    if hidden:
        names = ", ".join(f"{s.label} [{s.start}:{s.end}] {s.text}" for s in hidden)
        out.append(f'\n<span class="status">overlapping spans not marked: <bdi>{_e(names)}</bdi></span>')
    return "".join(out)


def _span_link(s: Span, anchor: str, schema: Schema) -> str:
    return f'<a class="span {_span_class(s, schema)}" href="#{anchor}-{_e(s.id)}"><bdi>{_e(s.text)}</bdi></a>'


def _relations_list(doc: Document, other: Document, role: str, anchor: str, schema: Schema) -> str:
    spans = doc.spans_by_id
    other_keys = relation_keys(other)
    order = {s.id: n for n, s in enumerate(doc.sorted_spans())}
    bad = "miss" if role == "gold" else "wrong"
    items = []
    for r in sorted(doc.relations, key=lambda r: (order.get(r.head, 0), order.get(r.tail, 0), r.label)):
        h, t = spans[r.head], spans[r.tail]
        head, tail = (_span_link(x, anchor, schema) for x in (h, t))
        ok = (h.start, h.end, h.label, t.start, t.end, t.label, r.label) in other_keys
        items.append(
            f'<li class="{"ok" if ok else bad}" data-relation="{_e(r.label)}">'
            f'{head}<span class="arrow">←</span><span class="rl">{_e(r.label)}</span>'
            f'<span class="arrow">←</span>{tail}'
            + (
                ""
                if ok
                else f' <span class="status" lang="en">{"missed" if role == "gold" else "not in gold"}</span>'
            )
            + "</li>"
        )
    return f'<ol class="rels">{"".join(items)}</ol>' if items else '<p lang="en">no relations</p>'


def _column(doc: Document, other: Document, role: str, index: int, schema: Schema) -> str:
    anchor = f"a{index}-{'g' if role == 'gold' else 'p'}"
    title = "Gold" if role == "gold" else "Predicted"
    n_ok = len(
        {(s.start, s.end, s.label) for s in doc.spans} & {(s.start, s.end, s.label) for s in other.spans}
    )
    return (
        f'<div class="col {role}" data-role="{role}">'
        f'<h3 lang="en">{title} <small>({len(doc.spans)} spans, {n_ok} matched; '
        f"{len(doc.relations)} relations)</small></h3>"
        f'<div class="text">{_marked_text(doc, other, role, anchor, schema)}</div>'
        f'<h4 lang="en">Relations</h4>{_relations_list(doc, other, role, anchor, schema)}'
        "</div>"
    )


# events of one article: reference (assembled from gold) beside prediction, paired as scored

_STRIKE_FIELDS = (("id", "id"), ("sub_event_type", "type"), ("mentions", "trigger"),
                  ("attackers", "attackers"), ("targets", "targets"), ("locations", "locations"),
                  ("instruments", "instruments"), ("time", "time"))  # fmt: skip
_CASUALTY_FIELDS = (("id", "id"), ("kind", "kind"), ("count", "count"), ("trigger", "trigger"),
                    ("victims", "victims"), ("strike_id", "strike"))  # fmt: skip
_SIDES = (("reference", "Reference (assembled from gold)"), ("predicted", "Predicted"))


def _mentions(value: Mention | list[Mention] | None) -> list[Mention]:
    return value if isinstance(value, list) else ([] if value is None else [value])


def _mention_links(mentions: list[Mention], doc: Document, anchor: str, schema: Schema) -> str:
    """Each mention as a link to its span in the marked text above (same colours), text isolated."""
    ids = {(s.start, s.end, s.label): s for s in doc.spans}
    out = []
    for m in mentions:
        span = ids.get((m.start, m.end, m.label))
        cls = _span_class(span, schema) if span is not None else ""
        title = f"{m.label} [{m.start}:{m.end}] canonical: {m.canonical}"
        if isinstance(getattr(m, "date", None), str):
            title += f" date: {m.date}"  # type: ignore[attr-defined]
        href = f' href="#{anchor}-{_e(span.id)}"' if span is not None else ""
        out.append(f'<a class="span {cls}"{href} title="{_e(title)}"><bdi>{_e(m.text)}</bdi></a>')
    return " ".join(out)


def _count_text(c: Casualty) -> str:
    text = "—" if c.count is None else str(c.count)
    if c.count_min is not None or c.count_max is not None:
        lo = "…" if c.count_min is None else str(c.count_min)
        hi = "…" if c.count_max is None else str(c.count_max)
        text += f" [{lo}–{hi}]"
    return text + (" approx." if c.approximate else "")


def _names(value: Any) -> set[str]:
    return {fold_spelling(m.canonical) for m in _mentions(value)}


def _differs(field: str, ref: Any, pred: Any, events: ArticleEventPairs) -> bool:
    """Whether a matched pair disagrees on ``field`` as the event scores compare it."""
    if field in ("id", "mentions", "trigger"):
        return False
    if field in ("sub_event_type", "kind"):
        return getattr(ref, field) != getattr(pred, field)
    if field == "count":
        return (ref.count, ref.count_min, ref.count_max) != (pred.count, pred.count_min, pred.count_max)
    if field == "strike_id":
        if ref.strike_id is None:
            return pred.strike_id is not None
        expected = events.matched_strike(ref.strike_id)
        return expected is None or pred.strike_id != expected.id
    return _names(getattr(ref, field)) != _names(getattr(pred, field))


def _event_field(
    event: Strike | Casualty,
    field: str,
    name: str,
    side: str,
    events: ArticleEventPairs,
    doc: Document,
    anchor: str,
    schema: Schema,
    diff: bool,
) -> str:
    """One field of an event as a name/value line of its card; Arabic values isolated (``bdi``)."""
    extra = ""
    if field in ("id", "sub_event_type", "kind"):
        value = f'<span class="en">{_e(getattr(event, field))}</span>'
    elif field == "count":
        assert isinstance(event, Casualty)
        extra = "".join(
            f' data-{k.replace("_", "-")}="{"" if getattr(event, k) is None else getattr(event, k)}"'
            for k in ("count", "count_min", "count_max")
        )
        mention = _mention_links(_mentions(event.count_mention), doc, anchor, schema)
        value = f'<span class="en">{_e(_count_text(event))}</span> {mention}'
    elif field == "strike_id":
        assert isinstance(event, Casualty)
        strike = events.strike_of(side, event.strike_id)
        if strike is None:
            value = '<span class="en">none</span>'
        else:
            extra = f' data-strike="{_e(strike.id)}"'
            value = (
                f'<span class="en">{_e(strike.id)} ({_e(event.link)})</span> '
                f"{_mention_links([strike.trigger], doc, anchor, schema)}"
            )
    else:
        links = _mention_links(_mentions(getattr(event, field)), doc, anchor, schema)
        value = links or '<span class="en">—</span>'
    title = ' title="differs from the reference"' if diff else ""
    return (
        f'<div class="f{" diff" if diff else ""}" data-field="{field}"{extra}{title}>'
        f'<span class="fn" lang="en">{name}</span><span class="fv">{value}</span></div>'
    )


def _event_table(
    kind: str,
    rows: list[EventPair],
    fields: tuple[tuple[str, str], ...],
    events: ArticleEventPairs,
    docs: dict[str, Document],
    index: int,
    schema: Schema,
) -> str:
    """One row per pair: its state, then the reference's card beside the prediction's (right to left,
    like the columns above). A field of a predicted event that disagrees with its reference is marked."""
    if not rows:
        return f'<p lang="en" dir="ltr">no {kind} on either side</p>'
    head = '<tr><th lang="en">match</th>' + "".join(f'<th lang="en">{t}</th>' for _, t in _SIDES) + "</tr>"
    out = [f'<table class="ev {kind}" data-kind="{kind}">', head]
    for pair in rows:
        state = "matched" if pair.matched else "missed" if pair.reference is not None else "not in reference"
        ids = "".join(
            f' data-{side}="{_e(e.id)}"'
            for side, e in (("reference", pair.reference), ("predicted", pair.predicted))
            if e is not None
        )
        cells = [f'<td class="state">{state}</td>']
        for side, _ in _SIDES:
            event = getattr(pair, side)
            if event is None:
                cells.append(f'<td data-side="{side}"></td>')
                continue
            anchor = f"a{index}-{'g' if side == 'reference' else 'p'}"
            check = pair.matched and side == "predicted"
            lines = "".join(
                _event_field(event, field, name, side, events, docs[side], anchor, schema,
                             check and _differs(field, pair.reference, event, events))
                for field, name in fields
            )  # fmt: skip
            cells.append(f'<td class="card" data-side="{side}">{lines}</td>')
        out.append(f'<tr class="{"matched" if pair.matched else "unmatched"}"{ids}>{"".join(cells)}</tr>')
    out.append("</table>")
    return "".join(out)


def _events_block(
    events: ArticleEventPairs, gold: Document, pred: Document, index: int, schema: Schema
) -> str:
    """Strikes and casualties of the article: the reference beside the prediction, one row per pair
    (the pairs the event scores count), unmatched events on a row of their own, marked."""
    docs = {"reference": gold, "predicted": pred}
    n = {
        "ref-strikes": len(events.reference.strikes),
        "pred-strikes": len(events.predicted.strikes),
        "matched-strikes": sum(p.matched for p in events.strikes),
        "ref-casualties": len(events.reference.casualties),
        "pred-casualties": len(events.predicted.casualties),
        "matched-casualties": sum(p.matched for p in events.casualties),
    }
    data = "".join(f' data-{k}="{v}"' for k, v in n.items())
    counts = (
        f"strikes: {n['ref-strikes']} reference, {n['pred-strikes']} predicted, {n['matched-strikes']} "
        f"matched; casualties: {n['ref-casualties']} reference, {n['pred-casualties']} predicted, "
        f"{n['matched-casualties']} matched"
    )
    strikes = _event_table("strikes", events.strikes, _STRIKE_FIELDS, events, docs, index, schema)
    casualties = _event_table("casualties", events.casualties, _CASUALTY_FIELDS, events, docs, index, schema)
    return (
        f'<div class="events"{data}><h3 lang="en">Events <small>({counts})</small></h3>'
        f'<h4 lang="en">Strikes</h4>{strikes}<h4 lang="en">Casualties</h4>{casualties}</div>'
    )


def _article(
    index: int,
    gold: Document,
    pred: Document,
    row: dict[str, Any] | None,
    schema: Schema,
    events: ArticleEventPairs | None = None,
) -> str:
    figures = (
        f" — entities F1 {_f(row['entities_f1'])}, triggers F1 {_f(row['triggers_f1'])}, "
        f"relations F1 {_f(row['relations_f1'])}"
        if row
        else ""
    )
    source = gold.meta.get("source")
    return (
        f'<section class="article" id="article-{index}" data-article="{_e(gold.id)}" dir="rtl" lang="ar">'
        f'<header lang="en" dir="ltr"><h2>Article {_e(gold.id)}'
        f"{' (' + _e(source) + ')' if source else ''}</h2><p>{_e(figures.lstrip(' —'))}</p></header>"
        f'<div class="columns">{_column(gold, pred, "gold", index, schema)}'
        f"{_column(pred, gold, 'predicted', index, schema)}</div>"
        + ("" if events is None else _events_block(events, gold, pred, index, schema))
        + "</section>"
    )


def render_html(evaluation: Evaluation, schema: Schema = SCHEMA) -> str:
    report = evaluation.report
    legend = " ".join(
        f'<span class="span l{i}"><span class="lab">{_e(label)}</span></span>'
        for i, label in enumerate(schema.span_labels)
    )
    rows = {a["id"]: a for a in report["per_article"]}
    what = (
        "held-out predictions of the cross-validation folds"
        if report["mode"] == "cv"
        else "model predictions"
    )
    body = [
        '<header class="summary">',
        "<h1>Evaluation report</h1>",
        f"<p>Mode <b>{_e(report['mode'])}</b>, created {_e(report['created'])}. Articles below: gold "
        f"annotations and {_e(what)}, side by side; dashed red outlines mark gold items the prediction "
        "missed and predicted items not in gold.</p>",
        "<ul>"
        + "".join(f"<li>{_e(line[2:]).replace('`', '')}</li>" for line in _provenance_lines(report))
        + "</ul>",
    ]
    if report["notes"]:
        body.append('<ul class="notes">' + "".join(f"<li>{_e(n)}</li>" for n in report["notes"]) + "</ul>")
    body += ["<h2>Summary</h2>", _html_table(summary_rows(report))]
    if report.get("cv"):
        body += [
            "<h2>Leave-one-article-out cross-validation (micro F1)</h2>",
            _html_table(cv_rows(report["cv"])),
        ]
    if report.get("events") is not None:
        body += ["<h2>Events</h2>", _html_table(event_rows(report))]
    body += [f'<p class="legend">Labels: {legend}</p>', "</header>"]
    aliases = AliasTable.load() if report.get("events") is not None else None
    for i, (g, p) in enumerate(zip(evaluation.gold, evaluation.predicted, strict=True), start=1):
        events = pair_article_events(g, p, aliases) if aliases is not None else None
        body.append(_article(i, g, p, rows.get(g.id), schema, events))
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>Evaluation report ({_e(report['mode'])})</title>\n<style>{_css(schema)}</style>\n</head>\n"
        "<body>\n" + "\n".join(body) + "\n</body>\n</html>\n"
    )


# ---------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------


def render_json(report: dict[str, Any]) -> str:
    return json.dumps(report, ensure_ascii=False, indent=2, allow_nan=False) + "\n"


def write_reports(output_dir: str | os.PathLike[str], evaluation: Evaluation) -> dict[str, Path]:
    """Render all three reports, then replace each file atomically (nothing half-written, ever)."""
    out = Path(output_dir)
    rendered = {
        "report.json": render_json(evaluation.report),
        "report.md": render_markdown(evaluation.report),
        "report.html": render_html(evaluation),
    }
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name in REPORT_FILES:
        atomic_write_text(out / name, rendered[name])
        paths[name] = out / name
    return paths
