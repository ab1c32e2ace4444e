"""Counts, canonical names, dates and event assembly on the seed articles and their gold annotations."""

from __future__ import annotations

import dataclasses
import random
from datetime import date
from pathlib import Path

import pytest
from pyarabic.number import text2number

from ie.canonical import AliasTable
from ie.document import Document
from ie.event_metrics import STRIKE_ROLES, event_scores
from ie.events import AIR_STRIKE, SHELLING, UNSPECIFIED, assemble, sub_event_type
from ie.labelstudio import load_documents
from ie.quantities import Quantity, parse_quantity
from ie.schema import SCHEMA
from ie.timexpr import resolve_date

ROOT = Path(__file__).resolve().parents[1]
SEED_TEXTS = {p.name: p.read_text(encoding="utf-8") for p in sorted((ROOT / "seeds").glob("*.txt"))}
ALL_SEEDS = "\n".join(SEED_TEXTS.values())


@pytest.fixture(scope="module")
def gold() -> list[Document]:
    return load_documents(ROOT / "data" / "annotations" / "seeds.json")


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
        ("منطقة “حويجة صكر”", "LOC", "منطقة حويجة صكر"),  # unknown name: tidied, kept
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
    bad = tmp_path / "aliases.yaml"
    bad.write_text("version: 1\nactors:\n  A: [قسد]\n  B: [قسد]\n", encoding="utf-8")
    with pytest.raises(ValueError, match="listed under both"):
        AliasTable.load(bad)
    (tmp_path / "broken.yaml").write_text("actors: {}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="not a valid alias table"):
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


def test_missing_relations_cost_argument_recall_and_counts(gold):
    # relations the strike merge rule does not look at: the events stay, their arguments go
    dropped = ("victim", "count", "time")
    pred = [
        dataclasses.replace(d, relations=[r for r in d.relations if r.label not in dropped]) for d in gold
    ]
    scores = event_scores(gold, pred)
    assert scores["strike_f1"] == scores["casualty_f1"] == 1.0
    for role in ("victims", "time"):
        assert scores[f"argument_{role}_recall"] == 0.0
    for role in ("attackers", "targets", "locations", "instruments"):
        assert scores[f"argument_{role}_f1"] == 1.0
    assert scores["casualty_count_accuracy"] == 0.0
    assert 0.0 < scores["argument_recall"] < 1.0
    assert scores["argument_precision"] == 1.0
    assert all(f"argument_{role}_f1" in scores for role in STRIKE_ROLES)


def test_scores_need_paired_texts(gold):
    with pytest.raises(ValueError, match="texts differ"):
        event_scores(gold[:2], gold[1:3])
    with pytest.raises(ValueError, match="gold documents"):
        event_scores(gold, gold[:2])
