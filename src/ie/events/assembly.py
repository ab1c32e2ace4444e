"""Strike and casualty events assembled from (gold or predicted) spans and relations.

The event schema follows ACLED (sub-event types of "Explosions/Remote violence") and PLOVER
(an event with its actors, targets, location, time and casualties). Every argument is a
:class:`Mention` that points at the exact characters of the original article.

Assembly rules (deterministic; the README documents them for analysts):

* **Strikes.** Each ATTACK trigger starts a frame with its attacker/target/location/instrument/time
  arguments. Frames are merged into one strike, in text order, when they describe the same attack:
  their sub-event types do not conflict, their attackers do not conflict (same canonical name or
  one side has none), and either they share a canonical target or location, or the later frame
  has no target and no location of its own and sits in the same or the next sentence (an
  anaphoric "the attack"/"القصف").
* **Casualties.** Each KILLED/INJURED trigger is one casualty record. It belongs to the strike of
  the ATTACK it is linked to by ``cause``; failing that, to the strike of the nearest ATTACK
  trigger in the same sentence (preceding first); failing that, to none (``strike_id`` null).
  Its count is read from its ``count`` mention together with the words around it in the article
  ("تجاوز الـ 20" with only "20" marked is "more than 20"; :func:`ie.events.quantities.parse_quantity_at`).
* **One fact, one casualty.** A casualty that restates one already emitted is dropped (the first
  mention is kept, and takes the restatement's strike when it has none). Two casualties are the
  same fact when they have the same kind, the same count (not null), the same victims (canonical
  names) and no conflicting location, and either share the very count mention ("قتلى ... تجاوز
  الـ 20 قتيل ... قتلوا": three triggers, one figure) or do not belong to different strikes (the
  figure restated in a later paragraph). A count with different victims, another place or another
  strike is another fact.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ie.core.document import Document, Span
from ie.events.canonical import AliasTable, fold
from ie.events.quantities import parse_quantity_at
from ie.events.timexpr import resolve_date
from ie.text.arabic import proclitic_readings
from ie.text.sentences import sentence_bounds

AIR_STRIKE = "Air/drone strike"
SHELLING = "Shelling/artillery/missile attack"
REMOTE_EXPLOSIVE = "Remote explosive/landmine/IED"
UNSPECIFIED = "Explosions/Remote violence"  # ACLED's event type, when no sub-type can be told

# Cue words (folded) in a trigger or instrument that decide ACLED's sub-event type. Air cues win:
# "air strikes with missiles" is an air strike in ACLED's coding.
_SUBTYPE_CUES = (
    (AIR_STRIKE, ("جوي", "جويه", "جويتين", "غاره", "غارات", "غارتين", "طائره", "طائرات", "طيران",
                  "مسيره", "مسير", "مروحيه", "مروحيات", "درون", "مقاتلات", "حربيه")),
    (REMOTE_EXPLOSIVE, ("عبوه", "ناسفه", "لغم", "الغام", "مفخخه")),
    (SHELLING, ("قصف", "مدفعي", "مدفعيه", "قذيفه", "قذائف", "صاروخ", "صواريخ", "صاروخي", "صاروخيه",
                "هاون", "راجمه", "راجمات", "مدفع", "مدافع")),
)  # fmt: skip


class Mention(BaseModel):
    """A span of the original article: ``article_text[start:end] == text``."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(description="the characters of the article at [start:end], as they are")
    start: int = Field(ge=0, description="offset of the first character (Python code points)")
    end: int = Field(gt=0, description="offset after the last character")
    label: str = Field(description="span label of the label schema (ie.core.schema.SCHEMA)")
    canonical: str = Field(description="clitic-free name from the gazetteer (ie/resources/gazetteer.yaml)")
    score: float | None = Field(None, description="model probability; null for gold annotations")


class TimeMention(Mention):
    date: str | None = Field(None, description="ISO date when the article date is known and it resolves")


class Strike(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    sub_event_type: str
    trigger: Mention
    mentions: list[Mention] = Field(description="every trigger merged into this strike, in text order")
    attackers: list[Mention] = []
    targets: list[Mention] = []
    locations: list[Mention] = []
    instruments: list[Mention] = []
    time: TimeMention | None = None
    claimed_by: list[Mention] = Field(
        [], description="attackers the article states or reports as claiming the strike"
    )
    confidence: float = Field(description="mean model score of the triggers (1.0 for gold)")


class Casualty(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    kind: Literal["killed", "injured"]
    trigger: Mention
    count: int | None = Field(description="exact count (or the 'about' value); null when vague or absent")
    count_min: int | None = Field(description="lower bound of a vague count (ie.events.quantities rules)")
    count_max: int | None = Field(description="upper bound of a vague count")
    approximate: bool = Field(description="true for vague or qualified counts (العشرات، أكثر من 20)")
    count_mention: Mention | None = None
    victims: list[Mention] = []
    location: Mention | None = None
    time: TimeMention | None = None
    strike_id: str | None = Field(None, description="id of the strike it belongs to, per `link`")
    link: Literal["cause", "same-sentence", "none"] = Field(
        "none", description="how strike_id was found: the cause relation, the same-sentence fallback, or none"
    )
    confidence: float = Field(description="model score of the trigger (1.0 for gold)")


class ArticleEvents(BaseModel):
    model_config = ConfigDict(extra="forbid")

    strikes: list[Strike] = []
    casualties: list[Casualty] = []


def sub_event_type(texts: Iterable[str]) -> str:
    words = {w for t in texts for w in fold(t).split()}
    words = {r for w in words for r in proclitic_readings(w, article=True)}
    for subtype, cues in _SUBTYPE_CUES:
        if words & set(cues):
            return subtype
    return UNSPECIFIED


class _Frame:
    def __init__(self, trigger: Span, sentence: int):
        self.trigger = trigger
        self.sentence = sentence
        self.args: dict[str, list[Span]] = {}


def _mention(span: Span, aliases: AliasTable) -> Mention:
    score = round(span.score, 6) if span.score is not None else None
    return Mention(text=span.text, start=span.start, end=span.end, label=span.label,
                   canonical=aliases.canonical(span.text, span.label), score=score)  # fmt: skip


def _time(span: Span | None, aliases: AliasTable, article_date: date | None) -> TimeMention | None:
    if span is None:
        return None
    resolved = resolve_date(span.text, article_date)
    iso = resolved.isoformat() if resolved else None
    return TimeMention(**_mention(span, aliases).model_dump(), date=iso)


def _dedupe(mentions: list[Mention]) -> list[Mention]:
    seen: set[tuple[int, int]] = set()
    return [m for m in mentions if not ((m.start, m.end) in seen or seen.add((m.start, m.end)))]


def assemble(
    doc: Document, article_date: date | None = None, aliases: AliasTable | None = None
) -> ArticleEvents:
    """Strike and casualty events of one document; the same input always gives the same output."""
    aliases = aliases or AliasTable.load()
    spans = doc.spans_by_id
    bounds = sentence_bounds(doc.text)

    bound_starts = [s for s, _ in bounds]

    def sentence_of(span: Span) -> int:
        i = bisect.bisect_right(bound_starts, span.start) - 1  # bounds are sorted and disjoint
        return i if i >= 0 and span.start < bounds[i][1] else len(bounds)

    args: dict[str, dict[str, list[Span]]] = {}
    for rel in sorted(doc.relations, key=lambda r: (spans[r.tail].start, r.label)):
        args.setdefault(rel.head, {}).setdefault(rel.label, []).append(spans[rel.tail])

    def canon(span_list: list[Span]) -> set[str]:
        return {aliases.canonical(s.text, s.label) for s in span_list}

    frames = [_Frame(s, sentence_of(s)) for s in doc.sorted_spans() if s.label == "ATTACK"]
    for f in frames:
        f.args = args.get(f.trigger.id, {})

    strikes: list[list[_Frame]] = []
    open_: list[list[_Frame]] = []  # strikes a frame may still join: last frame a sentence ago at most
    for frame in frames:
        # frames come in text order, so a strike that has fallen behind never joins again
        open_ = [g for g in open_ if frame.sentence - g[-1].sentence <= 1]
        home = None
        for group in reversed(open_):
            if _same_strike(group, frame, canon):
                home = group
                break
        if home is None:
            strikes.append([frame])
            open_.append(strikes[-1])
        else:
            home.append(frame)

    strike_of: dict[str, str] = {}
    out = ArticleEvents()
    for n, group in enumerate(strikes, start=1):
        sid = f"S{n}"
        merged: dict[str, list[Span]] = {}
        for f in group:
            strike_of[f.trigger.id] = sid
            for label, values in f.args.items():
                merged.setdefault(label, []).extend(values)
        mentions = [_mention(f.trigger, aliases) for f in group]
        scores = [f.trigger.score if f.trigger.score is not None else 1.0 for f in group]

        def ms(label: str, merged: dict[str, list[Span]] = merged) -> list[Mention]:
            return _dedupe([_mention(s, aliases) for s in merged.get(label, [])])

        times = merged.get("time", [])
        out.strikes.append(
            Strike(
                id=sid,
                sub_event_type=_frames_subtype(group),
                trigger=mentions[0],
                mentions=mentions,
                attackers=ms("attacker"),
                targets=ms("target"),
                locations=ms("location"),
                instruments=ms("instrument"),
                time=_time(times[0] if times else None, aliases, article_date),
                claimed_by=ms("attacker") if _claimed(doc, group, bounds) else [],
                confidence=round(sum(scores) / len(scores), 6),
            )
        )

    attacks_by_sentence: dict[int, list[Span]] = {}
    for f in frames:
        attacks_by_sentence.setdefault(f.sentence, []).append(f.trigger)
    casualty_triggers = [s for s in doc.sorted_spans() if s.label in ("KILLED", "INJURED")]
    facts: dict[tuple, list[Casualty]] = {}  # _fact_key -> casualties emitted with it
    for trig in casualty_triggers:
        targs = args.get(trig.id, {})
        cause = [s for s in targs.get("cause", []) if s.id in strike_of]
        link: Literal["cause", "same-sentence", "none"] = "none"
        strike_id = None
        if cause:
            strike_id, link = strike_of[cause[0].id], "cause"
        else:
            near = attacks_by_sentence.get(sentence_of(trig), [])
            before = [a for a in near if a.start < trig.start]
            pick = before[-1] if before else (near[0] if near else None)
            if pick is not None:
                strike_id, link = strike_of[pick.id], "same-sentence"
        count_span = (targs.get("count") or [None])[0]
        quantity = parse_quantity_at(doc.text, count_span.start, count_span.end) if count_span else None
        locs, times = targs.get("location", []), targs.get("time", [])
        casualty = Casualty(
            id="",
            kind="killed" if trig.label == "KILLED" else "injured",
            trigger=_mention(trig, aliases),
            count=quantity.count if quantity else None,
            count_min=quantity.count_min if quantity else None,
            count_max=quantity.count_max if quantity else None,
            approximate=quantity.approximate if quantity else count_span is not None,
            count_mention=_mention(count_span, aliases) if count_span else None,
            victims=_dedupe([_mention(s, aliases) for s in targs.get("victim", [])]),
            location=_mention(locs[0], aliases) if locs else None,
            time=_time(times[0] if times else None, aliases, article_date),
            strike_id=strike_id,
            link=link,
            confidence=round(trig.score, 6) if trig.score is not None else 1.0,
        )
        alike = facts.setdefault(_fact_key(casualty), [])
        first = next((c for c in alike if _same_fact(c, casualty)), None)
        if first is None:
            casualty.id = f"C{len(out.casualties) + 1}"
            out.casualties.append(casualty)
            alike.append(casualty)
        elif first.strike_id is None and casualty.strike_id is not None:
            first.strike_id, first.link = casualty.strike_id, casualty.link
    return out


def _fact_key(c: Casualty) -> tuple:
    """What two casualties of one fact have in common: kind, count, victims."""
    victims = frozenset(v.canonical for v in c.victims)
    return c.kind, c.count, c.count_min, c.count_max, c.approximate, c.count_mention is not None, victims


def _same_fact(first: Casualty, later: Casualty) -> bool:
    """Whether ``later`` restates the casualty fact ``first`` (the rule of the module docstring)."""
    if _fact_key(first) != _fact_key(later) or first.count_mention is None or later.count_mention is None:
        return False
    if first.location and later.location and first.location.canonical != later.location.canonical:
        return False
    mention = (first.count_mention.start, first.count_mention.end)
    if mention == (later.count_mention.start, later.count_mention.end):
        return True
    return first.strike_id is None or later.strike_id is None or first.strike_id == later.strike_id


def _frames_subtype(group: list[_Frame]) -> str:
    texts = [f.trigger.text for f in group]
    texts += [s.text for f in group for s in f.args.get("instrument", [])]
    return sub_event_type(texts)


def _same_strike(group: list[_Frame], frame: _Frame, canon) -> bool:
    """The merge rule of the module docstring, for a frame and the strike built so far."""
    if frame.sentence - group[-1].sentence > 1:
        return False
    types = {_frames_subtype(group), _frames_subtype([frame])} - {UNSPECIFIED}
    if len(types) > 1:
        return False
    mine = canon(frame.args.get("attacker", []))
    theirs = set().union(*(canon(f.args.get("attacker", [])) for f in group))
    if mine and theirs and not (mine & theirs):
        return False

    def places(f: _Frame) -> set[str]:
        spans = f.args.get("target", []) + f.args.get("location", [])
        return canon([s for s in spans if s.label in ("LOC", "FAC")])

    if places(frame) & set().union(*(places(f) for f in group)):
        return True
    return not any(frame.args.get(k) for k in ("attacker", "target", "location", "instrument"))


_CLAIM_CUE = re.compile(
    r"(?<!\S)[وف]?(?:أعلن|أعلنت|اعلن|اعلنت|تبنى|تبنت|أكد|أكدت|اكد|اكدت|قال|قالت|أوضح|أوضحت|بيان)(?!\S)"
)


def _claimed(doc: Document, group: list[_Frame], bounds: list[tuple[int, int]]) -> bool:
    """True when an attacker is the speaker of a statement verb that introduces the trigger.

    Verb-subject: "أعلنت القيادة المركزية الأمريكية أنها نفذت هذه الضربات"; subject-verb: "قيادة عملية
    العزم الصلب ... قالت إنها ردت". A reporter's "أكد مراسل ..." or "أكدت مقتل ..." is not a claim.
    """
    for f in group:
        if f.sentence >= len(bounds):
            continue
        start = bounds[f.sentence][0]
        attackers = f.args.get("attacker", [])
        for cue in _CLAIM_CUE.finditer(doc.text, start, f.trigger.start):
            after = doc.text[cue.end() : f.trigger.start].split()
            if any(cue.end() <= a.start < f.trigger.start and
                   len(doc.text[cue.end() : a.start].split()) == 0 for a in attackers):  # fmt: skip
                return True
            if after and _SELF.match(after[0]) and any(a.end <= cue.start() for a in attackers):
                return True
    return False


_SELF = re.compile(r"^[أإا]ن(?:ها|ه|هم)$")
