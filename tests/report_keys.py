"""The report.json keys documented in docs/evaluation.md, expanded over the schema's labels."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ie.core.schema import SCHEMA

DOC = Path(__file__).resolve().parents[1] / "docs" / "evaluation.md"
_ROW = re.compile(r"^\| `([^`]+)` \|", re.MULTILINE)


def documented_keys() -> list[str]:
    keys = _ROW.findall(DOC.read_text(encoding="utf-8"))
    assert len(keys) > 20, f"no key table found in {DOC}"
    return keys


def _expand(key: str) -> list[str]:
    """``<kind>``/``<label>``/``<relation>`` placeholders → every concrete key path."""
    if "<kind>" in key:
        return [
            k for kind in ("entities", "triggers", "spans") for k in _expand(key.replace("<kind>", kind, 1))
        ]
    if "<relation>" in key:
        return [key.replace("<relation>", r) for r in SCHEMA.relation_labels]
    if "<label>" in key:
        head = key.split(".", 1)[0]
        labels = {"entities": SCHEMA.entity_types, "triggers": SCHEMA.trigger_types}.get(
            head, SCHEMA.span_labels
        )
        return [k for label in labels for k in _expand(key.replace("<label>", label, 1))]
    return [key]


def lookup(report: dict[str, Any], key: str) -> Any:
    """Follow a dotted key; ``name[]`` steps into every element of a list (which must not be empty)."""
    values = [report]
    for part in key.split("."):
        many = part.endswith("[]")
        name = part[:-2] if many else part
        nxt = []
        for v in values:
            assert isinstance(v, dict) and name in v, f"report.json has no {key!r} (missing {name!r})"
            if many:
                assert isinstance(v[name], list) and v[name], f"{key!r}: {name!r} is not a non-empty list"
                nxt += v[name]
            else:
                nxt.append(v[name])
        values = nxt
    return values


def check_documented_keys(report: dict[str, Any]) -> int:
    """Assert every documented key exists (``cv.*`` ones only when the report has a cv block)."""
    checked = 0
    for key in documented_keys():
        if key.startswith("cv.") and report.get("cv") is None:
            continue
        if key.startswith("model.") and report.get("model") is None:
            continue
        for concrete in _expand(key):
            lookup(report, concrete)
            checked += 1
    return checked
