"""Reference and predicted events of one article, paired as the event scores pair them, for the report.

The reference is what :func:`ie.events.assembly.assemble` builds from the gold document, the prediction
what it builds from the predicted one, with the same alias table and no article date, exactly as
:func:`ie.evaluation.event_metrics.event_scores` does; strikes and casualties are paired by the scorer's
own matching rule, so the rows a reader checks are the pairs the figures count.
"""

from __future__ import annotations

from dataclasses import dataclass

from ie.core.document import Document

# The scorer's pairing rule (one-to-one, greedy by overlapping trigger characters). It is private to
# event_metrics; importing it keeps one rule for the figures and the report rows.
from ie.evaluation.event_metrics import match_events
from ie.events.assembly import ArticleEvents, Casualty, Strike, assemble
from ie.events.canonical import AliasTable


@dataclass
class EventPair:
    """One row: a matched pair, or an event of one side only (the other is ``None``)."""

    reference: Strike | Casualty | None
    predicted: Strike | Casualty | None

    @property
    def matched(self) -> bool:
        return self.reference is not None and self.predicted is not None


@dataclass
class ArticleEventPairs:
    reference: ArticleEvents
    predicted: ArticleEvents
    strikes: list[EventPair]
    casualties: list[EventPair]

    def strike_of(self, side: str, strike_id: str | None) -> Strike | None:
        """The strike with ``strike_id`` on ``side`` ("reference" or "predicted")."""
        events: ArticleEvents = getattr(self, side)
        return next((s for s in events.strikes if s.id == strike_id), None)

    def matched_strike(self, reference_id: str | None) -> Strike | None:
        """The predicted strike paired with the reference strike ``reference_id``, if any."""
        pair = next(
            (p for p in self.strikes if p.reference is not None and p.reference.id == reference_id), None
        )
        return pair.predicted if pair is not None else None


def _rows(gold: list, pred: list, match: dict[int, int]) -> list[EventPair]:
    """Reference events in text order, each with its predicted match; an unmatched predicted event
    comes after the reference row before which its trigger starts (so rows stay in text order)."""
    rows = [EventPair(g, pred[match[i]] if i in match else None) for i, g in enumerate(gold)]
    used = set(match.values())
    for j, p in enumerate(pred):
        if j in used:
            continue
        at = next((k for k, r in enumerate(rows) if _start(r) > p.trigger.start), len(rows))
        rows.insert(at, EventPair(None, p))
    return rows


def _start(pair: EventPair) -> int:
    event = pair.reference if pair.reference is not None else pair.predicted
    assert event is not None
    return event.trigger.start


def pair_article_events(
    gold: Document, pred: Document, aliases: AliasTable | None = None
) -> ArticleEventPairs:
    """Assemble both sides of one article and pair their strikes and casualties."""
    if gold.text != pred.text:
        raise ValueError(f"document {gold.id}: gold and predicted texts differ; pair them by article")
    aliases = aliases or AliasTable.load()
    ref, hyp = assemble(gold, None, aliases), assemble(pred, None, aliases)
    strikes = match_events(ref.strikes, hyp.strikes)
    casualties = match_events(ref.casualties, hyp.casualties, lambda g, p: g.kind == p.kind)
    return ArticleEventPairs(
        ref, hyp, _rows(ref.strikes, hyp.strikes, strikes), _rows(ref.casualties, hyp.casualties, casualties)
    )
