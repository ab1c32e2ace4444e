"""The gazetteer of the region: one versioned table, consistent, large, and covering the seeds' names."""

from __future__ import annotations

from pathlib import Path

import pytest

from ie.annotation.labelstudio import load_documents
from ie.events.canonical import AliasTable
from ie.text.gazetteer import CATEGORIES, SECTIONS, Gazetteer, key

SEEDS = Path(__file__).resolve().parents[1] / "data" / "annotations" / "seeds.json"
SECTION_OF = {"LOC": "places", "FAC": "places", "ACTOR": "actors", "WEAPON": "weapons"}


@pytest.fixture(scope="module")
def gazetteer() -> Gazetteer:
    return Gazetteer.load()


def test_table_is_versioned_large_and_every_category_valid(gazetteer):
    assert gazetteer.version >= 2
    counts = {s: len(gazetteer.entries(s)) for s in SECTIONS}
    assert counts["places"] >= 200 and counts["actors"] >= 80 and counts["weapons"] >= 50, counts
    for entry in gazetteer:
        assert entry.category in CATEGORIES[entry.section], entry
    kinds = {e.category for e in gazetteer.places}
    assert {"city", "town", "village", "oil_field", "base", "crossing", "country"} <= kinds
    assert {e.attributes.get("country") for e in gazetteer.places} >= {"سوريا", "العراق"}


def test_no_spelling_names_two_entries_of_one_section(gazetteer):
    for section in SECTIONS:
        owner: dict[str, str] = {}
        for form, entry in gazetteer.surface_forms(section).items():
            assert owner.setdefault(key(form), entry.name) == entry.name, (section, form)
    AliasTable.from_gazetteer(gazetteer)  # the clitic-free keys of canonical names do not collide either


def test_surface_forms_include_generated_spellings(gazetteer):
    places = gazetteer.surface_forms("places")
    assert places["ديرالزور"].name == "دير الزور" and places["ابو كمال"].name == "البوكمال"
    assert places["بلدة حطلة"].name == "حطلة" and places["الرقه"].name == "الرقة"
    assert "ميادين" not in places
    assert gazetteer.surface_forms("places", article=True)["ميادين"].name == "الميادين"
    assert gazetteer.surface_forms("actors")["قسد"].label == "ACTOR"
    assert gazetteer.surface_forms("places")["حقل العمر"].label == "FAC"
    assert gazetteer.surface_forms("weapons")["طائرات مسيرة"].category == "drone"


def test_bad_tables_fail_with_one_clear_line(tmp_path):
    cases = {
        "version: 2\nplaces:\n  - {name: X, kind: castle}\n": "kind 'castle' is not one of",
        "version: 2\nactors:\n  - {name: A, side: sdf}\n  - {name: A, side: isis}\n": "has two entries",
        "version: 2\nactors:\n  - {name: A, side: sdf, aliases: [قسد]}\n"
        "  - {name: B, side: sdf, aliases: [قسد]}\n": "listed under both",
        "version: 2\nweapons:\n  - {name: W, class: drone, colour: red}\n": "unknown fields colour",
        "places: []\n": "not a valid gazetteer",
    }
    for i, (text, message) in enumerate(cases.items()):
        path = tmp_path / f"g{i}.yaml"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(ValueError, match=message) as e:
            Gazetteer.load(path)
        assert str(path) in str(e.value) and "\n" not in str(e.value)


def seed_coverage(gazetteer: Gazetteer) -> dict[str, tuple[int, int]]:
    """Per label: (gold mentions whose canonical name is a gazetteer entry, gold mentions)."""
    table = AliasTable.from_gazetteer(gazetteer)
    names = {s: {e.name for e in gazetteer.entries(s)} for s in SECTIONS}
    out: dict[str, tuple[int, int]] = {}
    for doc in load_documents(SEEDS):
        for span in doc.spans:
            if span.label in SECTION_OF:
                hit, total = out.get(span.label, (0, 0))
                found = table.canonical(span.text, span.label) in names[SECTION_OF[span.label]]
                out[span.label] = (hit + found, total + 1)
    return out


# Seed mentions that are names of places, actors or weapons (not generic nouns such as المنطقة or عناصرها)
NAMED = {
    "LOC": ["مدينة ديرالزور", "سوريا", "بريف ديرالزور الشرقي", "ديرالزور", "بمدينة الميادين", "العراق",
            "مدينة العشارة", "بلدة حطلة", "مدينة الشدادي", "بمحافظة الحسكة", "مدينة البوكمال الحدودية",
            "بمدينة بقرص", "منطقة الهري", "الحدود العراقية السورية", "شمال شرقي سوريا", "بادية الميادين"],
    "FAC": ["حقل العمر النفطي", "وحقل كونيكو للغاز", "بحقل العمر", "لقاعدة كونيكو", "معبر السكك البري"],
    "ACTOR": ["الميليشيات الإيرانية", "التحالف الدولي", "قسد", "ميليشيا فاطميون الأفغانية", "للفرقة 17",
              "الفرقة 11", "الميلشيات العراقية", "القيادة الوسطى للقوات الأمريكية", "تنظيم داعش", "إيران",
              "قيادة عملية “العزم الصلب”", "الولايات المتحدة الامريكية", "لميليشيا حزب الله العراقية"],
    "WEAPON": ["طيران", "بطائرات مسيرة", "قذائف الهاون", "راجمات صواريخ", "وطائرات مسيّرة",
               "والطيران المسير الانتحاري", "منصات صاروخية", "والمضادات الأرضية", "الأسلحة الرشاشة"],
}  # fmt: skip


def test_seed_names_resolve_and_coverage(gazetteer):
    table = AliasTable.from_gazetteer(gazetteer)
    gold = {(s.label, s.text) for d in load_documents(SEEDS) for s in d.spans}
    names = {s: {e.name for e in gazetteer.entries(s)} for s in SECTIONS}
    for label, texts in NAMED.items():
        for text in texts:
            assert (label, text) in gold, f"{text!r} is not a gold {label} mention of the seeds"
            assert table.canonical(text, label) in names[SECTION_OF[label]], (label, text)
    coverage = seed_coverage(gazetteer)
    hit = sum(coverage[label][0] for label in ("LOC", "ACTOR", "WEAPON"))
    total = sum(coverage[label][1] for label in ("LOC", "ACTOR", "WEAPON"))
    # measured 0.61 (234 of 385); the rest are generic nouns (المنطقة، عناصرها، الأسلحة) and phrases
    assert hit / total >= 0.55, coverage


def test_matcher_finds_whole_names_behind_proclitics_longest_first(gazetteer):
    """One matcher for the gazetteer baseline and the model's prior: the proclitics و/ف + ب/ل/ك (and
    لل for ال) stay in the match, a name inside a longer word is not a match, the longer name wins."""
    from ie.text.gazetteer import Matcher

    matcher = Matcher.from_gazetteer(gazetteer)
    text = (
        "قصفت قوات التحالف الدولي مواقع للميليشيات الإيرانية في الميادين وبريف ديرالزور الشرقي والبوكماليين"
    )
    found = [(text[s:e], label) for s, e, label in matcher.find(text)]
    assert ("قوات التحالف الدولي", "ACTOR") in found and ("التحالف الدولي", "ACTOR") not in found
    assert ("للميليشيات الإيرانية", "ACTOR") in found and ("الميادين", "LOC") in found
    assert not any("البوكمال" in t for t, _ in found)  # inside a longer word
    assert all(label in {"LOC", "FAC", "ACTOR", "WEAPON"} for _, label in found)
    assert matcher.find("") == [] and matcher.find("مباراة كرة القدم انتهت بالتعادل") == []
