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
  With ``AssemblyOptions.resolve_anaphora`` (off by default: it over-merges held-out predictions),
  a definite attack noun ("الضربات"، "بالهجوم"، "التفجير") refers back up to ANAPHOR_SENTENCES
  sentences to the strike with the same noun, place or attacker (else, failing the rule above,
  the latest one), unless it names a place or attacker of its own that the strike contradicts: one
  report calls one operation ضربات, then القصف, then الغارات. A headline (a first line with no final
  stop) is grouped apart and joins the body strike it restates.
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
* **Conflicting counts (ACLED's rule).** When sources give different figures for one fact, the
  casualty keeps the most conservative figure (the lowest lower bound) as ``count`` and lists the
  others in ``other_counts``, each with the attribution phrase of its clause (``source``). One fact
  has several figures when one trigger has several ``count`` relations (guidelines §9.1), or when a
  later casualty of the same kind gives another figure within two sentences, in a sentence that
  opens another source with a contrast (``بينما``، ``في حين``، ``في المقابل`` ...), and names no
  other place and no other strike (a strike begun by a definite noun, "إن التفجير أسفر عن", may be
  the same one).
* **Cumulative tolls are not facts.** A casualty trigger in a clause that states a running total
  (``ليرتفع عدد القتلى إلى``، ``الحصيلة الإجمالية``، ``منذ مطلع الشهر``; guidelines §9.2) is dropped.
* **Model output is checked before it makes a strike** (:class:`AssemblyOptions`; gold spans, which
  carry no score, are trusted): a predicted ATTACK trigger must be written in Arabic script and
  contain an attack predicate of :data:`ATTACK_STEMS`, and a predicted trigger with no argument
  and no casualty caused by it must score at least ``min_bare_trigger_score``. The schema is an
  Arabic news schema, and a small model tags content words of any text with high confidence (issue
  13: "ملعب" in a football report, "aircraft" in English), so its calibration cannot be the only gate.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ie.core.document import Document, Span
from ie.events.canonical import AliasTable, fold
from ie.events.quantities import count_near, parse_quantity_at
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


# Attack predicates of Arabic news (folded, see ie.events.canonical.fold): a predicted ATTACK trigger
# must contain one. Written from the language (the roots هجم، قصف، غور، ضرب، هدف، فجر، عدو، طلق، ...),
# not from the seeds: attacks, raids, strikes, shelling, targeting, explosions, aggressions, launches,
# ambushes, assassinations, clashes, operations and the responses that report them.
ATTACK_STEMS = (
    "هجوم", "هجم", "هاجم", "قصف", "غاره", "غارات", "غارت", "ضرب", "استهدف", "استهداف", "مستهدف",
    "تستهدف", "يستهدف", "استهدا", "تفجير", "انفجار", "انفجر", "فجره", "فجرها", "تفجر", "مفخخ", "ناسف",
    "عبوه", "اعتدا", "اعتدي", "عدوان", "تعتدي", "يعتدي", "اطلاق", "اطلق", "قذائف", "قذيفه", "صاروخ",
    "صواريخ", "كمين", "اغتيال", "اشتباك", "مواجه", "عمليه", "عمليات", "عمليت", "تعرض", "قنص", "رمايه",
    "نيران", "انزال", "كمن", "دكت", "تدك", "يدك", "اعتدت", "اغار", "يغير", "تغير",
)  # fmt: skip
# Casualty predicates (folded): a predicted KILLED/INJURED trigger must contain one.
CASUALTY_STEMS = (
    "قتل", "قتيل", "قتلي", "استشهد", "استشهاد", "شهيد", "شهدا", "مصرع", "حتف", "توفي", "وفاه", "وفيات",
    "ضحايا", "ضحيه", "جرح", "جريح", "اصاب", "اصيب", "مصاب", "نفق", "هلك", "اودي", "قضي", "قضو", "قضت",
    "القضا", "ارتقي", "ارتقا", "جثث", "جثه", "جثامين", "جثمان", "يصيب", "تصيب",
)  # fmt: skip
# "ردت القوات"، "يرد"، "وجاء الرد": a response, an attack ("ورد" spelled out: و is not split off a
# two-letter word)
_REPLY_WORDS = frozenset({"رد", "ورد", "ردت", "ردوا", "ردا", "ردها", "يرد", "ترد", "نرد"})


@dataclass(frozen=True)
class AssemblyOptions:
    """Checks on model output before it becomes an event (gold spans, with no score, are trusted).

    ``arabic_triggers_only``: a predicted ATTACK trigger must hold Arabic letters (the schema and the
    model are Arabic; a Latin-script "trigger" is out of domain). ``attack_lexicon``: it must contain
    an attack predicate of :data:`ATTACK_STEMS`; ``casualty_lexicon``: a predicted KILLED/INJURED
    trigger must contain a casualty predicate of :data:`CASUALTY_STEMS`. ``min_bare_trigger_score``:
    a predicted ATTACK trigger with no argument and no casualty caused by it is kept only at this
    score or more (0 keeps all; 0.5 is where the model says "more likely a trigger than not").
    ``drop_cumulative_tolls``: a casualty trigger in a running-total clause is not a fact (gold and
    predictions alike). ``count_from_context``: a casualty trigger with no ``count`` relation takes
    the count written right by it (:func:`ie.events.quantities.count_near`: ``مقتل خمسة``، ``3
    إصابات``، ``مقتل وإصابة عدد من``), gold and predictions alike: a model that finds the trigger but
    misses the small NUM span or its link still reports the figure the text gives.
    ``resolve_anaphora``: a definite attack noun joins an earlier strike beyond the next sentence
    (:func:`_antecedent`); off by default: on held-out predictions, where the model misses the
    arguments that keep roundup strikes apart, it over-merges (issue 13 report).
    """

    arabic_triggers_only: bool = True
    attack_lexicon: bool = True
    casualty_lexicon: bool = True
    min_bare_trigger_score: float = 0.5
    drop_cumulative_tolls: bool = True
    resolve_anaphora: bool = False
    count_from_context: bool = True


NO_CHECKS = AssemblyOptions(
    arabic_triggers_only=False,
    attack_lexicon=False,
    casualty_lexicon=False,
    min_bare_trigger_score=0.0,
    drop_cumulative_tolls=False,
    count_from_context=False,
)
_ARABIC_LETTER = re.compile(r"[\u0621-\u064A]")


def is_attack_word(text: str) -> bool:
    """Whether a trigger text contains an attack predicate (:data:`ATTACK_STEMS`, or a reply verb)."""
    for word in fold(text).split():
        readings = proclitic_readings(word, article=True)
        if any(r in _REPLY_WORDS for r in readings):
            return True
        if any(stem in r for r in readings for stem in ATTACK_STEMS):
            return True
    return False


class Quote(BaseModel):
    """A phrase of the article: ``article_text[start:end] == text``."""

    model_config = ConfigDict(extra="forbid")

    text: str
    start: int = Field(ge=0)
    end: int = Field(gt=0)


class Mention(BaseModel):
    """A span of the original article: ``article_text[start:end] == text``."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(description="the characters of the article at [start:end], as they are")
    start: int = Field(ge=0, description="offset of the first character (Python code points)")
    end: int = Field(gt=0, description="offset after the last character")
    label: str = Field(description="span label of the label schema (ie.core.schema.SCHEMA)")
    canonical: str = Field(description="clitic-free name from the gazetteer (ie/resources/gazetteer.yaml)")
    score: float | None = Field(
        None,
        description="model probability; null for gold annotations and for a count read from the text "
        "by event assembly (count_from_context)",
    )


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


class OtherCount(BaseModel):
    """A figure for the same casualty fact from another source, less conservative than ``count``."""

    model_config = ConfigDict(extra="forbid")

    count: int | None
    count_min: int | None
    count_max: int | None
    approximate: bool
    count_mention: Mention
    source: Quote | None = Field(
        None, description="the attribution phrase of the figure's clause (بحسب ...، قالت ...), if any"
    )


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
    count_source: Quote | None = Field(
        None, description="the attribution phrase of the count's clause (بحسب ...، قال ...), if any"
    )
    other_counts: list[OtherCount] = Field(
        [],
        description="other figures given for this same fact by other sources; `count` is the most "
        "conservative (lowest lower bound) of all, ACLED's rule",
    )
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
    doc: Document,
    article_date: date | None = None,
    aliases: AliasTable | None = None,
    options: AssemblyOptions | None = None,
) -> ArticleEvents:
    """Strike and casualty events of one document; the same input always gives the same output."""
    aliases = aliases or AliasTable.load()
    options = options or AssemblyOptions()
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

    causes = {r.tail for r in doc.relations if r.label == "cause"}
    attacks = [
        s for s in doc.sorted_spans() if s.label == "ATTACK" and _keep_attack(s, args, causes, options)
    ]
    frames = [_Frame(s, sentence_of(s)) for s in attacks]
    for f in frames:
        f.args = args.get(f.trigger.id, {})

    title_end = _title_end(doc.text)
    # the headline and the body are grouped apart, then the headline joins the lead it restates
    strikes = _merge_title(
        _group([f for f in frames if f.trigger.end <= title_end], canon, options.resolve_anaphora),
        _group([f for f in frames if f.trigger.end > title_end], canon, options.resolve_anaphora),
        canon,
    )

    strike_of: dict[str, str] = {}
    out = ArticleEvents()
    unresolved: set[str] = set()  # strikes that begin with a definite noun ("إن التفجير أسفر عن")
    for n, group in enumerate(strikes, start=1):
        sid = f"S{n}"
        if _definite(next((f for f in group if f.trigger.end > title_end), group[0])):
            unresolved.add(sid)
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
    coordinated = tuple((s.start, s.end) for s in casualty_triggers)  # مقتل وإصابة عدد من
    facts: dict[tuple, list[Casualty]] = {}  # _fact_key -> casualties emitted with it
    for trig in casualty_triggers:
        if not _keep_casualty(trig, options):
            continue
        if options.drop_cumulative_tolls and _in_running_total(doc.text, trig, bounds):
            continue
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
        counts = targs.get("count", [])
        if not counts and options.count_from_context:
            near = count_near(doc.text, trig.start, trig.end, coordinated)
            if near is not None:
                counts = [Span(f"{trig.id}.count", *near, "NUM", doc.text[near[0] : near[1]])]
        figures = [(s, parse_quantity_at(doc.text, s.start, s.end)) for s in counts]
        # several figures for one trigger (guidelines §9.1): the most conservative is the count
        figures.sort(key=lambda f: _lower_bound(f[1]))
        count_span, quantity = figures[0] if figures else (None, None)
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
            count_source=_source(doc.text, count_span, bounds) if count_span else None,
            other_counts=[_other(doc.text, sp, q, aliases, bounds) for sp, q in figures[1:]],
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
            first = next(
                (c for c in out.casualties if _other_source(doc.text, c, casualty, sentence_of, unresolved)),
                None,
            )
            if first is not None:
                _add_figures(first, casualty)
                if first.strike_id is None and casualty.strike_id is not None:
                    first.strike_id, first.link = casualty.strike_id, casualty.link
                continue
            casualty.id = f"C{len(out.casualties) + 1}"
            out.casualties.append(casualty)
            alike.append(casualty)
        elif first.strike_id is None and casualty.strike_id is not None:
            first.strike_id, first.link = casualty.strike_id, casualty.link
    # a headline's "قتلى وجرحى" restates the body's facts of that kind
    body_kinds = {c.kind for c in out.casualties if c.trigger.start >= title_end}
    out.casualties = [
        c
        for c in out.casualties
        if not (c.trigger.end <= title_end and c.count_mention is None and c.kind in body_kinds)
    ]
    for n, c in enumerate(out.casualties, start=1):
        c.id = f"C{n}"
    return out


def _title_end(text: str) -> int:
    """End of the headline: a first line with no final stop, followed by the body (else 0)."""
    first, sep, rest = text.partition("\n")
    line = first.rstrip()
    if not sep or not rest.strip() or not line or line[-1] in ".!?؟:" or len(line) > 200:
        return 0
    return len(first)


def _group(frames: list[_Frame], canon, anaphora: bool = False) -> list[list[_Frame]]:
    """Frames (in text order) grouped into strikes by the rules of the module docstring."""
    strikes: list[list[_Frame]] = []
    open_: list[list[_Frame]] = []  # strikes a frame may still join: last frame a sentence ago at most
    for frame in frames:
        # frames come in text order, so a strike that has fallen behind never joins again
        open_ = [g for g in open_ if frame.sentence - g[-1].sentence <= 1]
        # a definite noun that names its antecedent's noun, place or attacker goes there first
        home = None
        for group in reversed(open_):
            if _same_strike(group, frame, canon):
                home = group
                break
        if home is None:
            home = _antecedent(strikes, frame, canon, related_only=True) if anaphora else None
        if home is None:
            home = _antecedent(strikes, frame, canon) if anaphora else None
            if home is not None and home not in open_:
                open_.append(home)
        if home is None:
            strikes.append([frame])
            open_.append(strikes[-1])
        else:
            home.append(frame)
    return strikes


# how far back (in sentences) a definite attack noun ("الضربات"، "التفجير") may refer
ANAPHOR_SENTENCES = 3


def _stem(text: str) -> str:
    """The trigger's first word without clitics and article: بالهجوم → هجوم, الضربات → ضربات."""
    words = fold(text).split()
    return proclitic_readings(words[0], article=True)[-1] if words else ""


# "الهجوم الثاني"، "غارات جديدة"، "هجوم آخر": a definite noun with one of these introduces another attack
_ANOTHER = frozenset({"الثاني", "الثانيه", "الثالث", "الثالثه", "الاخر", "الاخري", "اخر", "اخري", "جديد",
                      "جديده", "الجديد", "الجديده", "ثان", "ثاني", "ثانيه"})  # fmt: skip


def _definite(frame: _Frame) -> bool:
    """A definite attack noun that may point back: الضربات، بالهجوم (not الهجوم الثاني)."""
    words = fold(frame.trigger.text).split()
    if not words or _ANOTHER & set(words):
        return False
    return any(r.startswith("ال") for r in proclitic_readings(words[0], article=False))


def _agree(mine: set[str], theirs: set[str]) -> bool | None:
    """Whether two sets of canonical names may name the same party (one name inside another:
    التركي / جيش الاحتلال التركي); None when a side names none."""
    if not mine or not theirs:
        return None
    a, b = {fold(x) for x in mine}, {fold(x) for x in theirs}
    return any(x in y or y in x for x in a for y in b)


def _generic_place(span: Span) -> bool:
    """A one-word definite place noun (المنطقة، المدينة، البلدة) points back; it names no new place."""
    words = fold(span.text).split()
    return len(words) == 1 and any(r.startswith("ال") for r in proclitic_readings(words[0], article=False))


def _antecedent(
    strikes: list[list[_Frame]], frame: _Frame, canon, related_only: bool = False
) -> list[_Frame] | None:
    """The strike a definite attack noun refers back to ("أسفرت الضربات عن ..."), if any.

    Only a definite noun (the article, after clitics) with no place of its own that the strike does
    not name, and no attacker the strike contradicts, within ANAPHOR_SENTENCES. Sub-event types are
    not compared: reports call one operation ضربات, then القصف, then الغارات. Among candidates, the
    one with the same noun or a shared place or attacker wins, else the latest."""
    if not _definite(frame):
        return None
    own_places = canon([s for s in frame.args.get("location", []) + frame.args.get("target", [])
                        if s.label == "LOC" and not _generic_place(s)])  # fmt: skip
    attackers = canon(frame.args.get("attacker", []))
    stem = _stem(frame.trigger.text)
    best, best_rank = None, (-1, -1)
    for group in strikes:
        if frame.sentence - group[-1].sentence > ANAPHOR_SENTENCES:
            continue
        theirs = set().union(*(canon(f.args.get("attacker", [])) for f in group))
        if _agree(attackers, theirs) is False:
            continue
        places = set().union(*(canon(f.args.get("location", []) + f.args.get("target", [])) for f in group))
        if own_places and not _agree(own_places, places):
            continue
        related = any(_stem(f.trigger.text) == stem for f in group) or bool(_agree(attackers, theirs))
        related = related or bool(own_places and _agree(own_places, places))
        if related_only and not related:
            continue
        rank = (int(related), group[-1].trigger.start)  # related first, then the latest mentioned
        if rank > best_rank:
            best, best_rank = group, rank
    return best


def _merge_title(title: list[list[_Frame]], body: list[list[_Frame]], canon) -> list[list[_Frame]]:
    """A headline restates the lead: a strike of the headline joins the first body strike of a
    compatible sub-event type whose attackers do not contradict it, one that names the same
    attacker (one name inside the other: التركي / جيش الاحتلال التركي) first."""

    def attackers(g: list[_Frame]) -> set[str]:
        return canon([s for f in g for s in f.args.get("attacker", [])])

    for group in title:
        mine = {_frames_subtype(group)} - {UNSPECIFIED}
        fits = [b for b in body if not (mine and ({_frames_subtype(b)} - {UNSPECIFIED}) - mine)]
        fits = [b for b in fits if _agree(attackers(group), attackers(b)) is not False]
        agreeing = [b for b in fits if _agree(attackers(group), attackers(b))]
        home = (agreeing or fits or [None])[0]
        if home is None:
            body.append(group)
        else:
            home[:0] = group
    return sorted(body, key=lambda g: g[0].trigger.start)


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
    if _ANOTHER & set(fold(frame.trigger.text).split()):
        return False  # "الهجوم الثاني": another attack, even with no argument of its own
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


# ---------------------------------------------------------------------------------------------
# model output checks, running totals, conflicting figures
# ---------------------------------------------------------------------------------------------


def _keep_attack(
    span: Span, args: dict[str, dict[str, list[Span]]], causes: set[str], o: AssemblyOptions
) -> bool:
    """Whether an ATTACK trigger may start or join a strike (:class:`AssemblyOptions`)."""
    if span.score is None:  # gold
        return True
    if o.arabic_triggers_only and not _ARABIC_LETTER.search(span.text):
        return False
    if o.attack_lexicon and not is_attack_word(span.text):
        return False
    bare = not any(args.get(span.id, {}).values()) and span.id not in causes
    return not (bare and span.score < o.min_bare_trigger_score)


def _keep_casualty(span: Span, o: AssemblyOptions) -> bool:
    """Whether a KILLED/INJURED trigger may make a casualty (:class:`AssemblyOptions`)."""
    if span.score is None or not o.casualty_lexicon:
        return True
    words = fold(span.text).split()
    return any(stem in w for w in words for stem in CASUALTY_STEMS)


# a running total: "ليرتفع عدد القتلى إلى"، "وبذلك يرتفع إلى 19 عدد"، "الحصيلة الإجمالية"، "منذ مطلع الشهر"
_RUNNING_TOTAL = re.compile(r"رتفع|ارتفاع|حصيله\s+اجماليه|الحصيله\s+الاجماليه|منذ\s+(?:مطلع|بدايه|بدء|مستهل)")
_CLAUSE_END = re.compile(r"[.،؛!?؟\n]")


def _clause(text: str, start: int, end: int, bounds: list[tuple[int, int]]) -> tuple[int, int]:
    """The clause around ``text[start:end]``: between punctuation marks, inside its sentence."""
    lo = next((b for b, e in bounds if b <= start < e), 0)
    hi = next((e for b, e in bounds if b <= start < e), len(text))
    left = max((m.end() for m in _CLAUSE_END.finditer(text, lo, start)), default=lo)
    right = _CLAUSE_END.search(text, end, hi)
    return left, right.start() if right else hi


def _in_running_total(text: str, trig: Span, bounds: list[tuple[int, int]]) -> bool:
    lo, hi = _clause(text, trig.start, trig.end, bounds)
    return bool(_RUNNING_TOTAL.search(fold(text[lo:hi])))


def _lower_bound(q: object) -> float:
    """What a figure says at least: the count, else the lower bound; unknown sorts last."""
    count = getattr(q, "count", None)
    low = count if count is not None else getattr(q, "count_min", None)
    return float("inf") if low is None else float(low)


_ATTRIBUTION = re.compile(
    r"(?<!\S)(?:[وف]?(?:بحسب|حسب|وفق|وفقا|وفقاً|نقلا|نقلاً|قال|قالت|تحدث|تحدثت|أفاد|أفادت|افادت|ذكر|ذكرت"
    r"|أكد|أكدت|أعلن|أعلنت|أشار|أشارت|نعى|نعت))(?!\S)"
)
_SOURCE_STOP = re.compile(r"^(?:إن|ان|أن|إنه|إنها|أنه|أنها|عن|بأن|بان|ب?أن)$")


def _source(text: str, span: Span, bounds: list[tuple[int, int]]) -> Quote | None:
    """The attribution phrase nearest the figure in its sentence (``بحسب شبكة محلية``، ``قالت مصادر
    طبية``): the cue and up to five words, stopped by إن/أن/عن or punctuation."""
    lo = next((b for b, e in bounds if b <= span.start < e), 0)
    hi = next((e for b, e in bounds if b <= span.start < e), len(text))
    cues = list(_ATTRIBUTION.finditer(text, lo, hi))
    if not cues:
        return None
    cue = min(cues, key=lambda m: min(abs(m.start() - span.start), abs(m.end() - span.end)))
    end = cue.end()
    for n, word in enumerate(re.finditer(r"\S+", text[cue.end() : hi])):
        if n == 5 or _SOURCE_STOP.match(word.group()):
            break
        stop = _CLAUSE_END.search(word.group())
        if stop:
            end = cue.end() + word.start() + stop.start()
            break
        end = cue.end() + word.end()
    return Quote(text=text[cue.start() : end], start=cue.start(), end=end)


def _other(
    text: str, span: Span, q: object, aliases: AliasTable, bounds: list[tuple[int, int]]
) -> OtherCount:
    return OtherCount(
        count=getattr(q, "count", None),
        count_min=getattr(q, "count_min", None),
        count_max=getattr(q, "count_max", None),
        approximate=getattr(q, "approximate", True),
        count_mention=_mention(span, aliases),
        source=_source(text, span, bounds),
    )


# a contrast of sources before the second figure: "بينما قالت"، "في حين تحدثت"، "في المقابل، قال"
# how far (in sentences) the second source's figure may follow the first: a wire report gives its
# own figure, a sentence of detail, then "في المقابل، قال المرصد ... إن التفجير أسفر عن مقتل ٦"
_OTHER_SOURCE_SENTENCES = 2
_CONTRAST = re.compile(
    r"(?<!\S)(?:بينما|في حين|فيما|في المقابل|بالمقابل|وفي المقابل|غير أن|لكن|إلا أن)(?!\w)"
)


def _other_source(text: str, first: Casualty, later: Casualty, sentence_of, unresolved: set[str]) -> bool:
    """Whether ``later`` gives another source's figure for the fact of ``first`` (module docstring)."""
    if first.kind != later.kind or first.count_mention is None or later.count_mention is None:
        return False
    if _lower_bound(first) == _lower_bound(later) or float("inf") in (
        _lower_bound(first),
        _lower_bound(later),
    ):
        return False
    a, b = first.count_mention, later.count_mention
    if b.start < a.end:
        return False
    strikes = {first.strike_id, later.strike_id} - {None}
    if len(strikes) > 1 and not strikes & unresolved:
        return False  # another attack's toll (a strike begun by "التفجير" may be the same attack)

    class _At:
        def __init__(self, m: Mention):
            self.start = m.start

    if sentence_of(_At(b)) - sentence_of(_At(a)) > _OTHER_SOURCE_SENTENCES:
        return False
    if first.location and later.location and fold(first.location.canonical) != fold(later.location.canonical):
        return False
    # the contrast opens the clause of the second figure: in its own sentence, after the first figure
    sentence = _clause_bounds_start(text, b.start)
    return bool(_CONTRAST.search(text, max(a.end, sentence), b.start))


def _clause_bounds_start(text: str, offset: int) -> int:
    """Start of the sentence holding ``offset`` (ie.text.sentences rules)."""
    return max((start for start, end in sentence_bounds(text) if start <= offset), default=0)


def _add_figures(first: Casualty, later: Casualty) -> None:
    """Fold ``later``'s figures into ``first``: the most conservative becomes the count."""
    figures = [
        OtherCount(
            count=c.count,
            count_min=c.count_min,
            count_max=c.count_max,
            approximate=c.approximate,
            count_mention=c.count_mention,
            source=c.count_source,
        )  # fmt: skip
        for c in (first, later)
        if c.count_mention is not None
    ]
    figures += [*first.other_counts, *later.other_counts]
    figures.sort(key=_lower_bound)  # stable: the earlier figure wins a tie
    best = figures[0]
    first.count, first.count_min, first.count_max = best.count, best.count_min, best.count_max
    first.approximate, first.count_mention, first.count_source = (
        best.approximate,
        best.count_mention,
        best.source,
    )
    first.other_counts = figures[1:]
    first.victims = _dedupe([*first.victims, *later.victims])
