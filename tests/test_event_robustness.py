"""Event assembly on imperfect input (issue 13, item 5): one strike per attack, one casualty per fact
with the most conservative figure (ACLED's rule), running totals dropped, and no strike from a model
that reads English or a football report."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ie.annotation.labelstudio import load_documents
from ie.core.document import Document, Relation, Span
from ie.events.assembly import NO_CHECKS, AssemblyOptions, assemble, is_attack_word
from ie.events.canonical import AliasTable

ROOT = Path(__file__).resolve().parents[1]
SYNTHETIC = ROOT / "data" / "synthetic" / "synthetic.json"

ENGLISH = (
    "The US-led coalition said its aircraft struck a weapons depot near Al-Bukamal on Tuesday, "
    "killing three militants."
)
# A football match report written for this test (no conflict in it, ~115 words; Al-Jaish is a club).
FOOTBALL = (
    "فاز فريق الفتوة على ضيفه الجيش بثلاثة أهداف مقابل هدف واحد، مساء الجمعة، على ملعب مدينة دير الزور، "
    "في المرحلة الخامسة من الدوري السوري الممتاز لكرة القدم. وافتتح المهاجم أحمد العلي التسجيل في الدقيقة "
    "العاشرة بتسديدة قوية من خارج منطقة الجزاء، قبل أن يعادل الضيوف من ركلة جزاء في نهاية الشوط الأول. "
    "وفي الشوط الثاني، ضغط أصحاب الأرض على مرمى الحارس وسجلوا هدفين متتاليين عبر رأسية من ركنية ثم هجمة "
    "مرتدة سريعة. وقال مدرب الفتوة بعد المباراة إن لاعبيه قدموا أداء جيداً رغم الإصابات التي يعاني منها "
    "الفريق، مشيراً إلى أن الجمهور كان اللاعب رقم واحد. ويحتل الفتوة المركز الثاني برصيد اثنتي عشرة نقطة، "
    "بفارق نقطتين عن المتصدر، فيما تراجع الجيش إلى المركز السابع."
)


@pytest.fixture(scope="module")
def synthetic() -> dict[str, Document]:
    return {d.meta["source"][:8]: d for d in load_documents(SYNTHETIC)}


def _lower(c) -> int | None:
    return c.count if c.count is not None else c.count_min


# (article, kind) -> (the fact's count's lower bound, the other sources' lower bounds), per fact
CONFLICTS = {
    "syn-a-07": {"killed": [(4, [6])], "injured": [(3, [11])]},
    "syn-b-03": {"killed": [(4, [6])], "injured": [(11, [])]},
    "syn-b-04": {"killed": [(12, [15])], "injured": [(10, [])]},
    "syn-c-01": {"killed": [(3, [5])], "injured": [(8, []), (None, [])]},
    "syn-c-06": {"killed": [(3, [])], "injured": [(4, [7])]},
    "syn-c-10": {"killed": [(None, [])], "injured": [(3, [5])]},
}


@pytest.mark.parametrize("article", sorted(CONFLICTS))
def test_conflicting_counts_are_one_casualty_with_the_conservative_count(synthetic, article):
    # guidelines §9.1: sources that disagree on one fact give one casualty; `count` is the lowest figure
    doc = synthetic[article]
    events = assemble(doc)
    for kind, facts in CONFLICTS[article].items():
        got = [(_lower(c), [_lower(o) for o in c.other_counts]) for c in events.casualties if c.kind == kind]
        assert got == facts, (article, kind)
    for c in events.casualties:
        for figure in [c, *c.other_counts]:
            m = figure.count_mention
            assert m is None or doc.text[m.start : m.end] == m.text
        for o in c.other_counts:
            assert o.source is not None and doc.text[o.source.start : o.source.end] == o.source.text


def test_other_counts_keep_their_source(synthetic):
    doc = synthetic["syn-c-01"]
    (killed,) = [c for c in assemble(doc).casualties if c.kind == "killed"]
    assert (killed.count, killed.count_mention.text, killed.count_source.text) == (
        3,
        "ثلاثة",
        "بحسب شبكة محلية",
    )
    (other,) = killed.other_counts
    assert (other.count, other.count_mention.text, other.source.text) == (5, "خمسة", "قالت مصادر طبية")


def test_a_seed_figure_from_a_second_source_is_folded_in(synthetic):
    # seed 000: "بلغت 5 قتلى ... فيما تحدثت صفحات إعلامية مقربة من الميليشيات الإيرانية عن مقتل اثنين"
    from modelkit import gold_documents

    (doc,) = [d for d in gold_documents() if d.meta["source"].startswith("000")]
    (fact,) = [c for c in assemble(doc).casualties if c.other_counts]
    assert (fact.kind, fact.count, [o.count for o in fact.other_counts]) == ("killed", 2, [5])


def _with(
    doc: Document, spans: list[tuple[str, str, str, int]], links: list[tuple[str, str, str]]
) -> Document:
    """``doc`` plus spans (id, phrase, label, occurrence) and relations (head, tail, label)."""
    added = []
    for sid, phrase, label, nth in spans:
        start = -1
        for _ in range(nth + 1):
            start = doc.text.index(phrase, start + 1)
        added.append(Span(sid, start, start + len(phrase), label, phrase))
    out = dataclasses.replace(
        doc, spans=[*doc.spans, *added], relations=[*doc.relations, *(Relation(*x) for x in links)]
    )
    out.check_offsets()
    return out


def test_a_running_total_is_not_a_casualty(synthetic):
    # guidelines §9.2: "وبذلك يرتفع إلى 19 عدد عناصر قسد الذين قُتلوا منذ مطلع الشهر" adds up deaths
    # already reported; a model that tags its verb and number must not make it a new fact
    doc = synthetic["syn-a-07"]
    before = assemble(doc).casualties
    noisy = _with(doc, [("x1", "قُتلوا", "KILLED", 0), ("x2", "19", "NUM", 0)], [("x1", "x2", "count")])
    after = assemble(noisy).casualties
    assert [(c.kind, _lower(c)) for c in after] == [(c.kind, _lower(c)) for c in before]
    assert len(assemble(noisy, options=NO_CHECKS).casualties) == len(before) + 1  # the check does it


def test_one_strike_per_attack_in_the_synthetic_gold(synthetic):
    # a headline restates the lead: syn-c-10's "القصف التركي" joins the body's shelling, syn-b-04's
    # "بغارات" the raid of "استهدفت طائرات حربية"
    assert [m.text for m in assemble(synthetic["syn-c-10"]).strikes[0].mentions][:2] == ["القصف", "قصفوا"]
    assert [m.text for m in assemble(synthetic["syn-b-04"]).strikes[0].mentions] == ["بغارات", "استهدفت"]
    # the car bomb of syn-a-07: with the definite nouns resolved (AssemblyOptions.resolve_anaphora),
    # headline, report, "الانفجار"، "التفجير"، "الهجوم" are one strike and hold every casualty
    events = assemble(synthetic["syn-a-07"], options=AssemblyOptions(resolve_anaphora=True))
    bomb = events.strikes[0]
    assert [m.text for m in bomb.mentions] == ["هجوم", "بتفجير", "الانفجار", "التفجير", "الهجوم"]
    assert {c.strike_id for c in events.casualties} == {bomb.id}
    # by default (off: it over-merges held-out predictions) "بتفجير" stays apart, and the figures of
    # the two sources are still one fact ("في المقابل، قال المرصد ... إن التفجير أسفر عن مقتل ٦")
    default = assemble(synthetic["syn-a-07"])
    assert [m.text for m in default.strikes[0].mentions] == ["هجوم", "الانفجار", "التفجير", "الهجوم"]
    assert [(c.kind, len(c.other_counts)) for c in default.casualties] == [("killed", 1), ("injured", 1)]
    # "الهجوم الثاني" is another attack, not the first one again
    text = "استهدف هجوم صاروخي قاعدة التحالف. وبعد ساعة استهدف الهجوم الثاني القاعدة."
    first, second = text.index("هجوم صاروخي"), text.index("الهجوم الثاني")
    spans = [Span("a", first, first + 11, "ATTACK", "هجوم صاروخي"),
             Span("b", second, second + 13, "ATTACK", "الهجوم الثاني")]  # fmt: skip
    doc = Document("h", text, spans, [])
    doc.check_offsets()
    assert len(assemble(doc).strikes) == 2


def _predicted(text: str, phrases: list[tuple[str, float]]) -> Document:
    spans = []
    for n, (phrase, score) in enumerate(phrases):
        start = text.index(phrase)
        spans.append(Span(f"t{n}", start, start + len(phrase), "ATTACK", phrase, score))
    return Document("p", text, spans, [])


def test_predicted_triggers_are_checked_and_gold_ones_trusted():
    english = _predicted(ENGLISH, [("struck", 0.96), ("aircraft", 0.9)])
    assert assemble(english).strikes == []
    football = _predicted(FOOTBALL, [("ملعب", 0.95), ("لاعبيه", 0.99), ("هجمة", 0.3)])
    assert assemble(football).strikes == []  # not attack words; هجمة: a bare guess under 0.5
    assert len(assemble(football, options=AssemblyOptions(min_bare_trigger_score=0.2)).strikes) == 1
    assert len(assemble(football, options=NO_CHECKS).strikes) >= 2
    gold = dataclasses.replace(football, spans=[dataclasses.replace(s, score=None) for s in football.spans])
    assert len(assemble(gold).strikes) >= 2  # annotations are not second-guessed


def test_every_gold_trigger_is_an_attack_word(synthetic):
    from modelkit import gold_documents

    for doc in [*gold_documents(), *synthetic.values()]:
        for s in doc.spans:
            if s.label == "ATTACK":
                assert is_attack_word(s.text), (doc.meta["source"], s.text)


def test_a_trained_model_emits_no_strike_on_english_or_a_football_report(tiny_model):
    from ie.model.prediction import Predictor

    predictor = Predictor.from_pretrained(tiny_model, device="cpu")
    docs = predictor.predict([ENGLISH, FOOTBALL], ["en", "football"])
    for doc in docs:
        assert assemble(doc).strikes == [], doc.id


def test_predicted_casualty_triggers_need_a_casualty_word(synthetic):
    # a fold model tagged "الامريكية" KILLED and "الكهربائي" INJURED in seeds it had not seen
    from modelkit import gold_documents

    text = "قالت القوات الأمريكية إن العطل الكهربائي أدى إلى مقتل ثلاثة عناصر."
    spans = [Span("k1", text.index("الأمريكية"), text.index("الأمريكية") + 9, "KILLED", "الأمريكية", 0.8),
             Span("i1", text.index("الكهربائي"), text.index("الكهربائي") + 9, "INJURED", "الكهربائي", 0.7),
             Span("k2", text.index("مقتل"), text.index("مقتل") + 4, "KILLED", "مقتل", 0.9)]  # fmt: skip
    doc = Document("p", text, spans, [])
    doc.check_offsets()
    assert [c.trigger.text for c in assemble(doc).casualties] == ["مقتل"]
    assert len(assemble(doc, options=NO_CHECKS).casualties) == 3
    # every casualty trigger of the gold holds a casualty word: scored as predictions, all stay
    aliases = AliasTable.load()  # one table for the ~100 articles (each load reads the gazetteer)
    for d in [*gold_documents(), *synthetic.values()]:
        scored = dataclasses.replace(d, spans=[dataclasses.replace(s, score=0.9) for s in d.spans])
        assert len(assemble(scored, aliases=aliases).casualties) == len(
            assemble(d, aliases=aliases).casualties
        ), d.meta["source"]
