"""Event-level scores: predicted strikes and casualties against gold events built by the same code.

Both sides go through :func:`ie.events.assembly.assemble` (same alias table, same article date), so the
scores measure the model, not differences in assembly. The checks of
:class:`ie.events.assembly.AssemblyOptions` apply to predicted spans only (gold spans carry no score),
and a casualty with figures from several sources is scored on its conservative ``count``. Matching rules:

* **Strikes** match when any trigger mention of one overlaps any trigger mention of the other (by
  characters). Matching is one-to-one: candidate pairs are taken greedily by overlapping characters
  (most first), ties by gold then predicted position, so the result is deterministic.
* **Arguments** (attackers, targets, locations, instruments, time; victims of casualties) are
  compared by **canonical name** (the alias-table name, spelling-folded), as sets per event and
  role: an event reports *who* and *where*, and the same actor is often mentioned at different
  places in the article, so a correct name anywhere counts. Arguments of unmatched predicted events
  are false positives, those of unmatched gold events false negatives.
* **Casualties** match like strikes, by overlapping trigger and the same kind (killed/injured).
  ``casualty_count_accuracy`` is, over matched casualties whose gold record has a count mention,
  the share whose (count, count_min, count_max) equal the gold ones exactly.
  ``casualty_link_accuracy`` is, over matched casualties whose gold casualty belongs to a strike,
  the share attached to the predicted strike matched to that gold strike.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from ie.core.document import Document
from ie.core.scoring import Tally, prf
from ie.events.assembly import ArticleEvents, AssemblyOptions, Casualty, Mention, Strike, assemble
from ie.events.canonical import AliasTable, fold

STRIKE_ROLES = ("attackers", "targets", "locations", "instruments", "time")
CASUALTY_ROLES = ("victims",)


def _overlap(a: Sequence[Mention], b: Sequence[Mention]) -> int:
    return sum(max(0, min(x.end, y.end) - max(x.start, y.start)) for x in a for y in b)


def match_events(gold: Sequence[Any], pred: Sequence[Any], compatible=lambda g, p: True) -> dict[int, int]:
    """Gold index → predicted index, one-to-one, greedy by overlapping trigger characters."""
    pairs = []
    for gi, g in enumerate(gold):
        for pi, p in enumerate(pred):
            chars = _overlap(_triggers(g), _triggers(p))
            if chars > 0 and compatible(g, p):
                pairs.append((-chars, gi, pi))
    out: dict[int, int] = {}
    used: set[int] = set()
    for _, gi, pi in sorted(pairs):
        if gi not in out and pi not in used:
            out[gi] = pi
            used.add(pi)
    return out


def _triggers(event: Strike | Casualty) -> list[Mention]:
    return event.mentions if isinstance(event, Strike) else [event.trigger]


def _names(event: Strike | Casualty, role: str) -> set[str]:
    value = getattr(event, role)
    mentions = value if isinstance(value, list) else ([value] if value is not None else [])
    return {fold(m.canonical) for m in mentions}


def event_scores(
    gold_docs: Sequence[Document],
    pred_docs: Sequence[Document],
    aliases: AliasTable | None = None,
    article_dates: Sequence[date | None] | None = None,
    options: AssemblyOptions | None = None,
) -> dict[str, float]:
    """Event-level P/R/F1 and accuracies over paired documents (same order, same texts).

    Keys: ``strike_{precision,recall,f1}``, ``argument_{precision,recall,f1}`` (micro over roles),
    ``argument_<role>_{precision,recall,f1}``, ``casualty_{precision,recall,f1}``,
    ``casualty_count_accuracy``, ``casualty_link_accuracy``, and the counts behind them
    (``n_gold_strikes``, ``n_pred_strikes``, ``n_matched_strikes``, ``n_gold_casualties``, ...).
    ``options``: the assembly options of both sides (default: :class:`AssemblyOptions`).
    """
    if len(gold_docs) != len(pred_docs):
        raise ValueError(f"{len(gold_docs)} gold documents but {len(pred_docs)} predicted ones")
    aliases = aliases or AliasTable.load()
    dates = list(article_dates) if article_dates is not None else [None] * len(gold_docs)
    counts = Tally()
    n = dict.fromkeys(("gold_strikes", "pred_strikes", "matched_strikes", "gold_casualties",
                       "pred_casualties", "matched_casualties", "count_total", "count_correct",
                       "link_total", "link_correct"), 0)  # fmt: skip
    for g_doc, p_doc, day in zip(gold_docs, pred_docs, dates, strict=True):
        if g_doc.text != p_doc.text:
            raise ValueError(f"document {g_doc.id}: gold and predicted texts differ; pair them by article")
        gold, pred = assemble(g_doc, day, aliases, options), assemble(p_doc, day, aliases, options)
        _score_article(gold, pred, counts, n)

    out: dict[str, float] = {}
    out["strike_precision"], out["strike_recall"], out["strike_f1"] = prf(
        n["matched_strikes"], n["pred_strikes"], n["gold_strikes"]
    )
    out["argument_precision"], out["argument_recall"], out["argument_f1"] = counts.prf("all")
    for role in (*STRIKE_ROLES, *CASUALTY_ROLES):
        p, r, f = counts.prf(role)
        out[f"argument_{role}_precision"], out[f"argument_{role}_recall"], out[f"argument_{role}_f1"] = (
            p,
            r,
            f,
        )
    out["casualty_precision"], out["casualty_recall"], out["casualty_f1"] = prf(
        n["matched_casualties"], n["pred_casualties"], n["gold_casualties"]
    )
    out["casualty_count_accuracy"] = n["count_correct"] / n["count_total"] if n["count_total"] else 0.0
    out["casualty_link_accuracy"] = n["link_correct"] / n["link_total"] if n["link_total"] else 0.0
    for key in ("gold_strikes", "pred_strikes", "matched_strikes", "gold_casualties", "pred_casualties",
                "matched_casualties"):  # fmt: skip
        out[f"n_{key}"] = n[key]
    out["n_casualty_counts"] = n["count_total"]
    return out


def _score_article(gold: ArticleEvents, pred: ArticleEvents, counts: Tally, n: dict[str, int]) -> None:
    strikes = match_events(gold.strikes, pred.strikes)
    n["gold_strikes"] += len(gold.strikes)
    n["pred_strikes"] += len(pred.strikes)
    n["matched_strikes"] += len(strikes)
    _score_roles(gold.strikes, pred.strikes, strikes, STRIKE_ROLES, counts)

    casualties = match_events(gold.casualties, pred.casualties, lambda g, p: g.kind == p.kind)
    n["gold_casualties"] += len(gold.casualties)
    n["pred_casualties"] += len(pred.casualties)
    n["matched_casualties"] += len(casualties)
    _score_roles(gold.casualties, pred.casualties, casualties, CASUALTY_ROLES, counts)

    gold_strike_index = {s.id: i for i, s in enumerate(gold.strikes)}
    pred_strike_id = {gi: pred.strikes[pi].id for gi, pi in strikes.items()}
    for gi, pi in casualties.items():
        g, p = gold.casualties[gi], pred.casualties[pi]
        if g.count_mention is not None:
            n["count_total"] += 1
            n["count_correct"] += (g.count, g.count_min, g.count_max) == (p.count, p.count_min, p.count_max)
        if g.strike_id is not None:
            n["link_total"] += 1
            expected = pred_strike_id.get(gold_strike_index[g.strike_id])
            n["link_correct"] += expected is not None and p.strike_id == expected


def _score_roles(gold: Sequence[Any], pred: Sequence[Any], match: dict[int, int], roles, counts) -> None:
    matched_pred = set(match.values())
    for role in roles:
        for gi, g in enumerate(gold):
            gn = _names(g, role)
            pn = _names(pred[match[gi]], role) if gi in match else set()
            for key in (role, "all"):
                counts.add(key, len(gn & pn), len(pn), len(gn))
        for pi, p in enumerate(pred):
            if pi not in matched_pred:
                pn = _names(p, role)
                for key in (role, "all"):
                    counts.add(key, 0, len(pn), 0)
