"""Counts, canonical names, dates and event assembly on the seed articles and their gold annotations."""

from __future__ import annotations

import dataclasses
import random
from datetime import date

import pytest
from modelkit import SEEDS, gold_documents
from pyarabic.number import text2number

from ie.core.document import Document, Relation, Span
from ie.core.schema import SCHEMA
from ie.evaluation.event_metrics import STRIKE_ROLES, event_scores
from ie.events.assembly import AIR_STRIKE, SHELLING, UNSPECIFIED, AssemblyOptions, assemble, sub_event_type
from ie.events.canonical import AliasTable, fold
from ie.events.quantities import Quantity, count_near, parse_quantity, parse_quantity_at
from ie.events.timexpr import resolve_date

SEED_TEXTS = {p.name: p.read_text(encoding="utf-8") for p in SEEDS}
ALL_SEEDS = "\n".join(SEED_TEXTS.values())


@pytest.fixture(scope="module")
def gold() -> list[Document]:
    return gold_documents()


@pytest.fixture(scope="module")
def aliases() -> AliasTable:
    return AliasTable.load()


def gold_doc(gold: list[Document], prefix: str) -> Document:
    (doc,) = [d for d in gold if d.meta["source"].startswith(prefix)]
    return doc


# ---------------------------------------------------------------------------------------------
# counts
# ---------------------------------------------------------------------------------------------

EXACT = 3, 3, 3, False
SEED_PHRASES = [
    ("3 إصابات", Quantity(*EXACT)),
    ("5 قتلى", Quantity(5, 5, 5, False)),
    ("مقتل خمسة عناصر", Quantity(5, 5, 5, False)),
    ("أكثر من ٣٠ جريح", Quantity(None, 31, None, True)),
    ("وأكثر من ٣٠", Quantity(None, 31, None, True)),
    ("مقتل العشرات", Quantity(None, 10, 99, True)),
    ("بالعشرات", Quantity(None, 10, 99, True)),
    ("مقتل اثنين من عناصرها", Quantity(2, 2, 2, False)),
    ("عدد كبير", Quantity(None, 10, None, True)),
    ("وعدد", Quantity(None, 2, None, True)),
    ("ثلاثة", Quantity(*EXACT)),
]


@pytest.mark.parametrize(("phrase", "expected"), SEED_PHRASES)
def test_counts_of_seed_phrases(phrase, expected):
    assert phrase in ALL_SEEDS, f"{phrase!r} is not a phrase of the seeds"
    assert parse_quantity(phrase) == expected


def test_every_gold_count_mention_reads_as_a_count(gold):
    nums = {s.text for d in gold for s in d.spans if s.label == "NUM"}
    assert len(nums) > 10
    for text in nums:
        q = parse_quantity(text)
        assert q is not None, text
        assert q.count is not None or q.count_min is not None, text


@pytest.mark.parametrize(
    ("phrase", "expected"),
    [
        ("أكثر من 20", Quantity(None, 21, None, True)),
        ("تجاوز 20", Quantity(None, 21, None, True)),
        ("أقل من 20", Quantity(None, None, 19, True)),
        ("ما لا يقل عن 20", Quantity(None, 20, None, True)),  # "not less than": at least
        ("20 على الأقل", Quantity(None, 20, None, True)),
        ("ما يزيد عن 20", Quantity(None, 21, None, True)),
        ("تجاوز الـ 20", Quantity(None, 21, None, True)),
        ("نحو 20", Quantity(20, None, None, True)),
        ("قرابة عشرين", Quantity(20, None, None, True)),
        ("20 تقريبا", Quantity(20, None, None, True)),
        ("عشرات", Quantity(None, 10, 99, True)),
        ("العشرات", Quantity(None, 10, 99, True)),
        ("المئات", Quantity(None, 100, 999, True)),
        ("العديد من", Quantity(None, 10, None, True)),
        ("عدد 3", Quantity(3, 3, 3, False)),  # a number wins over a vague word
        ("١٢", Quantity(12, 12, 12, False)),
        ("1,200", Quantity(1200, 1200, 1200, False)),
        ("3 آلاف", Quantity(3000, 3000, 3000, False)),
        ("مقتل شخص", None),
        ("", None),
    ],
)
def test_documented_quantity_rules(phrase, expected):
    assert parse_quantity(phrase) == expected


@pytest.mark.parametrize(
    ("words", "value"),
    [
        ("خمسة وعشرين", 25),
        ("إحدى عشرة", 11),
        ("ثلاثمائة", 300),
        ("ثلاث مئة", 300),  # pyarabic alone reads 103
        ("الثلاثة", 3),  # article: pyarabic alone reads 0
        ("ثلاثه", 3),  # ta marbuta written as ha
        ("اربعة", 4),  # no hamza
        ("اثنتين", 2),  # feminine, missing from pyarabic
        ("واحدة", 1),  # pyarabic strips the و
        ("مائتين", 200),
        ("أحد", 1),
    ],
)
def test_number_words(words, value):
    q = parse_quantity(words)
    assert q == Quantity(value, value, value, False)


def test_pyarabic_is_what_reads_plain_number_words():
    # the project relies on pyarabic for the words it knows; these must keep working there
    for words, value in (("خمسة", 5), ("ثلاثة عشر", 13), ("خمسة وعشرين", 25), ("مئتين", 200)):
        assert text2number(words) == value
        assert parse_quantity(words).count == value


# A qualifier outside the NUM mention: annotators and the model often mark the number alone.
SEED_003_FIGURES = "تجاوز الـ 20 قتيل وأكثر من ٣٠ جريح"
QUALIFIED_OUTSIDE = [
    # (sentence, the mention: the number alone, expected)
    (SEED_003_FIGURES, "20", Quantity(None, 21, None, True)),
    (SEED_003_FIGURES, "٣٠", Quantity(None, 31, None, True)),
    ("وأسفر القصف عن مقتل ما لا يقل عن 12 مدنيا في ريف إدلب.", "12", Quantity(None, 12, None, True)),
    ("قتل 7 أشخاص على الأقل وأصيب آخرون بجروح.", "7", Quantity(None, 7, None, True)),
    ("قتل نحو 15 عنصرا من الميليشيات الإيرانية.", "15", Quantity(15, None, None, True)),
    ("وأصيب حوالي 40 شخصا بجروح متفاوتة.", "40", Quantity(40, None, None, True)),
    ("ارتفع عدد القتلى إلى ما يزيد عن 50 مدنيا.", "50", Quantity(None, 51, None, True)),
    ("قتل قرابة الـ 30 عنصرا من الحرس الثوري.", "30", Quantity(30, None, None, True)),
    ("وأصيب زهاء 25 شخصا.", "25", Quantity(25, None, None, True)),
    ("قتل ما يقارب 60 عنصرا.", "60", Quantity(60, None, None, True)),
    ("أصيب أقل من 10 أشخاص.", "10", Quantity(None, None, 9, True)),
    ("قتل 20 عنصرا تقريبا.", "20", Quantity(20, None, None, True)),
    # no qualifier next to the number: exact, whatever the sentence before says
    ("بلغ عدد الجرحى أكثر من 30. وقتل 5 مدنيين.", "5", Quantity(5, 5, 5, False)),
    ("ما تسبب بوقوع 3 إصابات بين جنود قوات البحرية الأمريكية", "3", Quantity(3, 3, 3, False)),
]


@pytest.mark.parametrize(("sentence", "mention", "expected"), QUALIFIED_OUTSIDE)
def test_qualifiers_next_to_the_mention_are_read(sentence, mention, expected):
    start = sentence.index(mention)
    assert parse_quantity(mention).approximate is False  # alone, the number reads as exact
    assert parse_quantity_at(sentence, start, start + len(mention)) == expected


# ---------------------------------------------------------------------------------------------
# canonical names
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "label", "canonical"),
    [
        ("قسد", "ACTOR", "قوات سوريا الديمقراطية"),
        ("ميليشيا الحرس الثوري", "ACTOR", "الحرس الثوري الإيراني"),
        ("لميليشيا الحرس الثوري الإيراني", "ACTOR", "الحرس الثوري الإيراني"),
        ("التحالف الدولي", "ACTOR", "قوات التحالف الدولي"),
        ("للتحالف الدولي", "ACTOR", "قوات التحالف الدولي"),
        ("ديرالزور", "LOC", "دير الزور"),
        ("دير الزور", "LOC", "دير الزور"),
        ("بريف ديرالزور الشرقي", "LOC", "ريف دير الزور الشرقي"),
        ("الميلشيات الإيرانية", "ACTOR", "الميليشيات الإيرانية"),
        ("منطقة مستودعات “عياش” العسكرية", "FAC", "منطقة مستودعات عياش العسكرية"),  # unknown: tidied
        ("منطقة “حويجة صكر”", "LOC", "حويجة صكر"),  # a gazetteer place behind a generated head noun
        ("وبلدات ريفها الشرقي", "LOC", "بلدات ريفها الشرقي"),
    ],
)
def test_canonical_names(aliases, text, label, canonical):
    assert text in ALL_SEEDS, f"{text!r} is not in the seeds"
    assert aliases.canonical(text, label) == canonical


@pytest.mark.parametrize(
    ("text", "label", "canonical"),
    [
        ("لقسد", "ACTOR", "قوات سوريا الديمقراطية"),  # a proclitic only the alias table can tell
        ("وقسد", "ACTOR", "قوات سوريا الديمقراطية"),
        ("بديرالزور", "LOC", "دير الزور"),
        ("وبالبوكمال", "LOC", "البوكمال"),
        ("لبنان", "LOC", "لبنان"),  # ل is a root letter here: unknown names are not cut
    ],
)
def test_canonical_names_behind_proclitics(aliases, text, label, canonical):
    assert aliases.canonical(text, label) == canonical


def test_alias_table_is_versioned_and_rejects_conflicts(tmp_path, aliases):
    assert aliases.version >= 1
    bad = tmp_path / "gazetteer.yaml"
    bad.write_text("version: 1\nactors:\n  - {name: A, side: sdf, aliases: [قسد]}\n"
                   "  - {name: B, side: sdf, aliases: [قسد]}\n", encoding="utf-8")  # fmt: skip
    with pytest.raises(ValueError, match="listed under both"):
        AliasTable.load(bad)
    (tmp_path / "broken.yaml").write_text("actors: {}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="not a valid gazetteer"):
        AliasTable.load(tmp_path / "broken.yaml")


# ---------------------------------------------------------------------------------------------
# dates
# ---------------------------------------------------------------------------------------------

TUESDAY = date(2023, 11, 14)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("مساء يوم الاثنين", date(2023, 11, 13)),
        ("فجر اليوم", TUESDAY),
        ("صباح اليوم", TUESDAY),
        ("ليلة أمس", date(2023, 11, 13)),
        ("الليلة الماضية", date(2023, 11, 13)),
        ("12 نوفمبر/تشرين الثاني", date(2023, 11, 12)),
        ("الأسابيع الماضية", None),
        ("لليوم الثاني على التوالي", None),
    ],
)
def test_seed_time_expressions(expression, expected):
    assert expression in ALL_SEEDS
    assert resolve_date(expression, TUESDAY) == expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("الثلاثاء", TUESDAY),  # the article's own weekday is that day
        ("يوم الأربعاء", date(2023, 11, 8)),  # weekdays look back
        ("١٢ تشرين الثاني", date(2023, 11, 12)),
        ("15 ديسمبر", date(2022, 12, 15)),  # would be after the article: the year before
        ("3 مارس 2021", date(2021, 3, 3)),
        ("30 فبراير", None),
        ("أول أمس", date(2023, 11, 12)),
        ("أمس الأول", date(2023, 11, 12)),
        ("منذ 3 أيام", date(2023, 11, 11)),
        ("قبل يومين", date(2023, 11, 12)),
    ],
)
def test_time_rules(expression, expected):
    assert resolve_date(expression, TUESDAY) == expected


def test_no_article_date_no_resolution():
    assert resolve_date("فجر اليوم", None) is None


# ---------------------------------------------------------------------------------------------
# assembly on the gold documents
# ---------------------------------------------------------------------------------------------


def _doc(text: str, marks: list[tuple[str, str, str, int]], links: list[tuple[str, str, str]]) -> Document:
    """A document over ``text``: marks are (id, phrase, label, occurrence of the phrase), links are
    (head id, tail id, relation label)."""
    spans = []
    for sid, phrase, label, nth in marks:
        start = -1
        for _ in range(nth + 1):
            start = text.index(phrase, start + 1)
        spans.append(Span(sid, start, start + len(phrase), label, phrase))
    doc = Document("handmade", text, spans, [Relation(h, t, label) for h, t, label in links])
    doc.check_offsets()
    return doc


def _casualty_figures(events):
    return [
        (c.id, c.kind, c.count, c.count_min, c.count_max, c.approximate, c.strike_id)
        for c in events.casualties
    ]


def test_seed_003_count_is_read_with_its_qualifier_and_emitted_once(gold):
    # "عدد قتلى الميليشيات ... تجاوز الـ 20 قتيل وأكثر من ٣٠ جريح ... قتلوا في القصف": three KILLED
    # triggers (قتلى، قتيل، قتلوا) share the gold count mention "20", which is "more than 20"
    doc = gold_doc(gold, "003")
    events = assemble(doc, TUESDAY)
    twenty = [c for c in events.casualties if c.count_mention is not None and c.count_mention.text == "20"]
    assert len(twenty) == 1
    (c,) = twenty
    assert doc.text[c.count_mention.start - 10 : c.count_mention.start] == "تجاوز الـ "
    assert (c.kind, c.count, c.count_min, c.count_max, c.approximate) == ("killed", None, 21, None, True)
    assert c.trigger.text == "قتلى"  # the first mention is kept
    assert [x.id for x in events.casualties] == [f"C{i}" for i in range(1, len(events.casualties) + 1)]
    # the injured figure of the same sentence is another fact
    assert [(x.kind, x.count_min) for x in events.casualties if x.count_mention and x.count_mention.start
            > c.count_mention.start] == [("injured", 31)]  # fmt: skip


def test_every_other_gold_casualty_is_kept(gold):
    # only seed 003's restated figure and seed 000's second source are not new facts: every other
    # casualty trigger stays
    for doc in gold:
        triggers = [s for s in doc.spans if s.label in ("KILLED", "INJURED")]
        # 000: "بلغت 5 قتلى ... فيما تحدثت صفحات إعلامية ... عن مقتل اثنين" is one fact, two sources
        lost = {"003": 2, "000": 1}.get(doc.meta["source"][:3], 0)
        assert len(assemble(doc, TUESDAY).casualties) == len(triggers) - lost, doc.meta["source"]


# The opening sentence of seed 000, then the figure restated in a later paragraph.
OPENING = SEED_TEXTS["000_827349901dd84165.txt"].split("\n")[0]
RESTATED = "وكان الهجوم قد تسبب بوقوع 3 إصابات بين جنود قوات البحرية الأمريكية."


def _restated(later: str, between: str = "") -> Document:
    text = "\n".join(x for x in (OPENING, between, later) if x)
    marks = [("a1", "لهجوم صاروخي", "ATTACK", 0), ("i1", "إصابات", "INJURED", 0), ("n1", "3", "NUM", 0),
             ("v1", "جنود قوات البحرية الأمريكية", "ACTOR", 0),
             ("i2", "إصابات", "INJURED", 1), ("n2", "3", "NUM", 1)]  # fmt: skip
    links = [("i1", "a1", "cause"), ("i1", "n1", "count"), ("i1", "v1", "victim"), ("i2", "n2", "count")]
    victim = "جنود قوات البحرية الأمريكية" if "البحرية" in later else "عناصر الميليشيات الإيرانية"
    marks.append(("v2", victim, "ACTOR", 1 if victim in OPENING else 0))
    links.append(("i2", "v2", "victim"))
    if "الهجوم الثاني" in later:
        marks.append(("a2", "الهجوم الثاني", "ATTACK", 0))
        links.append(("i2", "a2", "cause"))
    return _doc(text, marks, links)


def test_a_restated_casualty_figure_is_one_casualty():
    events = assemble(_restated(RESTATED), TUESDAY)
    assert _casualty_figures(events) == [("C1", "injured", 3, 3, 3, False, "S1")]
    assert events.casualties[0].trigger.start == OPENING.index("إصابات")  # the first mention


def test_different_casualty_facts_stay_apart():
    # the same figure with other victims
    other = "وتسبب القصف بوقوع 3 إصابات بين عناصر الميليشيات الإيرانية."
    assert len(assemble(_restated(other), TUESDAY).casualties) == 2
    # the same figure and victims, caused by another strike (two sentences later: no merge)
    second = "وتسبب الهجوم الثاني بوقوع 3 إصابات بين جنود قوات البحرية الأمريكية."
    between = SEED_TEXTS["000_827349901dd84165.txt"].split("\n")[1]
    events = assemble(_restated(second, between), TUESDAY)
    assert len(events.strikes) == 2
    assert [c.strike_id for c in events.casualties] == ["S1", "S2"]


def test_first_strike_of_article_000(gold):
    doc = gold_doc(gold, "000")
    events = assemble(doc, TUESDAY)
    first = events.strikes[0]
    assert first.trigger.text == "لهجوم صاروخي"
    assert first.sub_event_type == SHELLING
    assert [a.canonical for a in first.attackers] == ["الميليشيات الإيرانية"]
    assert "ريف دير الزور الشرقي" in [m.canonical for m in first.locations]
    injured = [c for c in events.casualties if c.strike_id == first.id]
    assert len(injured) == 1
    (c,) = injured
    assert (c.kind, c.count, c.approximate, c.link) == ("injured", 3, False, "cause")
    assert [v.text for v in c.victims] == ["جنود قوات البحرية الأمريكية"]
    assert c.count_mention.text == "3"


def test_every_mention_of_the_gold_events_slices_the_article(gold):
    for doc in gold:
        payload = assemble(doc, TUESDAY).model_dump()
        stack, seen = [payload], 0
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                if {"text", "start", "end"} <= node.keys():
                    assert doc.text[node["start"] : node["end"]] == node["text"]
                    seen += 1
                stack += list(node.values())
            elif isinstance(node, list):
                stack += node
        assert seen > 50


def test_gold_events_use_the_schema_labels_and_resolve_counts(gold):
    events = [assemble(d, TUESDAY) for d in gold]
    strikes = [s for e in events for s in e.strikes]
    casualties = [c for e in events for c in e.casualties]
    assert len(strikes) >= 20 and len(casualties) >= 10
    assert {s.trigger.label for s in strikes} == {t for t in SCHEMA.trigger_types if t == "ATTACK"}
    assert {c.trigger.label for c in casualties} <= set(SCHEMA.trigger_types)
    assert {s.sub_event_type for s in strikes} >= {AIR_STRIKE, SHELLING}
    # every casualty with a count relation got a number or a range out of it
    for c in casualties:
        if c.count_mention is not None:
            assert c.count is not None or c.count_min is not None, c.count_mention.text
    assert any(c.link == "cause" for c in casualties)


def test_assembly_is_deterministic_whatever_the_input_order(gold):
    rng = random.Random(0)
    for doc in gold:
        spans, relations = list(doc.spans), list(doc.relations)
        rng.shuffle(spans)
        rng.shuffle(relations)
        shuffled = dataclasses.replace(doc, spans=spans, relations=relations)
        assert assemble(shuffled, TUESDAY).model_dump_json() == assemble(doc, TUESDAY).model_dump_json()


def test_times_resolve_against_the_article_date(gold):
    doc = gold_doc(gold, "001")
    with_date = assemble(doc, TUESDAY)
    timed = [s for s in with_date.strikes if s.time is not None and s.time.text == "مساء يوم الاثنين"]
    assert timed and timed[0].time.date == "2023-11-13"
    without = assemble(doc, None)
    assert all(s.time is None or s.time.date is None for s in without.strikes)


def test_sub_event_types_from_trigger_and_instrument():
    assert sub_event_type(["غارات جوية"]) == AIR_STRIKE
    assert sub_event_type(["استهداف", "بطائرات مسيرة"]) == AIR_STRIKE
    assert sub_event_type(["لقصف مدفعي"]) == SHELLING
    assert sub_event_type(["هاجمت"]) == UNSPECIFIED


# ---------------------------------------------------------------------------------------------
# event-level scores
# ---------------------------------------------------------------------------------------------


def _without(doc: Document, keep) -> Document:
    spans = [s for s in doc.spans if keep(s)]
    ids = {s.id for s in spans}
    relations = [r for r in doc.relations if r.head in ids and r.tail in ids]
    return dataclasses.replace(doc, spans=spans, relations=relations)


def test_gold_against_itself_scores_one(gold):
    scores = event_scores(gold, gold)
    for key, value in scores.items():
        if not key.startswith("n_"):
            assert value == 1.0, key
    assert scores["n_gold_strikes"] == sum(len(assemble(d).strikes) for d in gold)
    assert scores["n_casualty_counts"] > 5


def test_a_missed_strike_costs_recall_and_its_casualty_link(gold):
    doc = gold_doc(gold, "000")
    first = assemble(doc).strikes[0]
    assert len(first.mentions) == 1
    pred = [_without(d, lambda s, t=first.trigger: (s.start, s.end) != (t.start, t.end)) if d is doc else d
            for d in gold]  # fmt: skip
    scores = event_scores(gold, pred)
    n = scores["n_gold_strikes"]
    assert scores["strike_precision"] == 1.0
    assert scores["strike_recall"] == pytest.approx((n - 1) / n)
    assert scores["casualty_f1"] == 1.0
    assert scores["casualty_link_accuracy"] < 1.0


def _names(event, role: str) -> set[str]:
    """The canonical names an event holds in ``role``, spelling-folded: what the scorer compares."""
    value = getattr(event, role)
    return {fold(m.canonical) for m in (value if isinstance(value, list) else [value] if value else [])}


def test_missing_relations_cost_argument_recall_and_counts(gold):
    # relations the strike merge rule does not look at: the events stay, their arguments go
    dropped = ("victim", "count", "time")
    pred = [
        dataclasses.replace(d, relations=[r for r in d.relations if r.label not in dropped]) for d in gold
    ]
    no_context = AssemblyOptions(count_from_context=False)
    scores = event_scores(gold, pred, options=no_context)
    assert scores["strike_f1"] == scores["casualty_recall"] == 1.0
    # without its count, seed 003's restated figure (one casualty in the gold) is no longer
    # recognisable as one fact: its two restatements come out as casualties of their own; so does
    # seed 000's second source's figure ("بلغت 5 قتلى ... فيما تحدثت صفحات ... عن مقتل اثنين")
    assert scores["n_pred_casualties"] == scores["n_gold_casualties"] + 3
    for role in ("victims", "time"):
        assert scores[f"argument_{role}_recall"] == 0.0
    for role in ("attackers", "targets", "locations", "instruments"):
        assert scores[f"argument_{role}_f1"] == 1.0
    assert scores["casualty_count_accuracy"] == 0.0
    # count_from_context (the default) reads the figures the text writes by the casualty words:
    # all but one come back (seed 003's restated total, written away from its trigger), and seed
    # 000's second source is recognised again ("عن مقتل اثنين")
    read = event_scores(gold, pred)
    assert read["casualty_count_accuracy"] == pytest.approx(
        (read["n_casualty_counts"] - 1) / read["n_casualty_counts"]
    )
    assert read["n_pred_casualties"] == read["n_gold_casualties"] + 2
    assert {k: read[k] for k in read if k.startswith("argument_")} == {
        k: scores[k] for k in scores if k.startswith("argument_")
    }
    # micro over roles: every gold argument but the 9 times and 28 victims is still found (names are
    # sets per event: seed 000's two-source casualty holds its victims once, so 302, not issue 9's
    # hand count of 303)
    events = [assemble(d) for d in gold]
    names = {role: sum(len(_names(e, role)) for a in events for e in a.strikes) for role in STRIKE_ROLES}
    names["victims"] = sum(len(_names(c, "victims")) for a in events for c in a.casualties)
    assert (names["time"], names["victims"], sum(names.values())) == (9, 28, 302)
    assert scores["argument_recall"] == pytest.approx((302 - 9 - 28) / 302)
    assert scores["argument_precision"] == 1.0
    assert all(f"argument_{role}_f1" in scores for role in STRIKE_ROLES)


def test_scores_need_paired_texts(gold):
    with pytest.raises(ValueError, match="texts differ"):
        event_scores(gold[:2], gold[1:3])
    with pytest.raises(ValueError, match="gold documents"):
        event_scores(gold, gold[:2])


@pytest.mark.parametrize(
    ("text", "word", "coordinated", "count"),
    [
        ("أسفرت عن مقتل خمسة عناصر", "مقتل", (), "خمسة"),
        ("ما تسبب بوقوع 3 إصابات بين جنود", "إصابات", (), "3"),
        ("ومقتل وإصابة العشرات من عناصر", "ومقتل", ("وإصابة",), "العشرات"),
        ("ومقتل وإصابة العشرات من عناصر", "وإصابة", ("ومقتل",), "العشرات"),
        ("بلغت 5 قتلى و3 جرحى", "قتلى", ("جرحى",), "5"),
        ("بلغت 5 قتلى و3 جرحى", "جرحى", ("قتلى",), "و3"),
        ("الميليشيات وعدد من الجرحى، فيما", "الجرحى", (), "وعدد"),
        ("فيما قتل عدد كبير من قادة", "قتل", (), "عدد كبير"),
        ("أسفرت عن عدة إصابات محدودة", "إصابات", (), "عدة"),
        ("من دون أن تذكر عدد قتلاها.", "قتلاها", (), None),  # "the number of", not "a number of"
        ("ما أدى إلى مقتل قائد ميداني", "مقتل", (), None),
        ("أعلن عن مقتل الأحد الماضي", "مقتل", (), None),  # a day, not "one"
        ("ما أدى إلى مقتل، بحسب المصدر، 3", "مقتل", (), None),  # punctuation ends the phrase
    ],
)
def test_a_count_written_by_a_casualty_word_is_found_with_exact_offsets(text, word, coordinated, count):
    start = text.index(word)
    skip = tuple((text.index(w), text.index(w) + len(w)) for w in coordinated)
    found = count_near(text, start, start + len(word), skip)
    assert (text[found[0] : found[1]] if found else None) == count
