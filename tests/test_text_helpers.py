"""The shared Arabic string helpers and the one sentence splitter, on real seed text."""

from __future__ import annotations

from modelkit import GOLD, tokenizer

from ie.annotation.labelstudio import load_documents
from ie.events.assembly import SHELLING, sub_event_type
from ie.model.features import Featurizer
from ie.text.arabic import (
    after_hypothetical_cue,
    is_attack_modifier,
    proclitic_readings,
    starts_new_mention,
    strip_marks,
    to_ascii_digits,
)
from ie.text.sentences import sentence_bounds


def _seed(i: int = 0) -> str:
    return load_documents(GOLD)[i].text


def test_strip_marks_and_digits_on_seed_words():
    assert strip_marks("قَصْفٌ مـدفعي") == "قصف مدفعي"
    assert to_ascii_digits("مقتل ٣ و۱۲ عنصرا") == "مقتل 3 و12 عنصرا"
    text = _seed()
    assert len(strip_marks(text)) < len(text) and "ـ" not in strip_marks(text)
    assert len(to_ascii_digits("٢٠٢٤")) == 4


def test_proclitic_readings_order_and_thresholds():
    assert proclitic_readings("بريف") == ["بريف", "ريف"]
    assert proclitic_readings("وبالصواريخ", article=True) == [
        "وبالصواريخ", "بالصواريخ", "الصواريخ", "صواريخ",
    ]  # fmt: skip
    assert proclitic_readings("للقوات") == ["للقوات", "القوات"]
    assert proclitic_readings("وقت") == ["وقت"]  # a name keeps 3 letters after و
    assert proclitic_readings("وست", min_stem=2) == ["وست", "ست"]  # a number word may keep 2
    assert proclitic_readings("وادي", conjunction=False) == ["وادي"]


def test_sub_event_type_reads_preposition_and_article():
    # "with missiles" (a seed instrument): ب + ال + صواريخ. The old one-letter strip missed it.
    assert "بالصواريخ" in "".join(d.text for d in load_documents(GOLD))
    assert sub_event_type(["بالصواريخ"]) == SHELLING


def test_ellipsis_ends_a_sentence_like_three_dots():
    # The seeds put one sentence per line; join the first two lines so only the mark can split them.
    text = _seed().replace("\n", " ", 1)
    first_end = text.index(". ") + 1
    n = len(sentence_bounds(text))
    for mark in ("…", "..."):
        changed = text[: first_end - 1] + mark + text[first_end:]
        assert len(sentence_bounds(changed)) == n  # still a sentence end, nothing else moves
    joined = text[: first_end - 1] + "،" + text[first_end:]
    assert len(sentence_bounds(joined)) == n - 1
    assert len(sentence_bounds("بلغ 3.5 كم. ثم")) == 2  # a point inside a number is no end


def test_feature_windows_start_sentences_where_the_splitter_does():
    text = _seed().replace("\n", " ", 1)
    first_end = text.index(". ") + 1
    ellipsis = text[: first_end - 1] + "…" + text[first_end:]
    featurizer = Featurizer(tokenizer(6000), max_length=128, stride=32)
    for t in (text, ellipsis):
        enc = featurizer.encode([t])[0]
        starts = {w.start: w.first_token for w in enc.words}
        assert enc.sentence_starts == [0] + [starts[s] for s, _ in sentence_bounds(t)[1:]]


def test_where_a_touching_mention_starts_and_what_a_trigger_keeps():
    # a coordination, a compass point (unless it continues one) and ب + a place start a new mention
    assert starts_new_mention("والميادين") and starts_new_mention("جنوب") and starts_new_mention("بمدينة")
    assert starts_new_mention("“جنوبي") and starts_new_mention("بالقامشلي")
    assert not starts_new_mention("شرقي", previous="جنوب")  # جنوب شرقي الميادين
    assert not starts_new_mention("الشرقي") and not starts_new_mention("التحالف")
    assert not starts_new_mention("بلدة") and not starts_new_mention("بقرص")  # ب of the word itself
    # the kind of attack is part of the trigger; intensity, nationality and gunmen are not
    assert all(map(is_attack_modifier, ["جوية", "الجوية", "جويتين", "وصاروخية", "مدفعي", "مسلح"]))
    assert not any(map(is_attack_modifier, ["مكثف", "الأمريكي", "مسلحين", "جديدة"]))


def test_feared_planned_or_threatened_attacks_and_reported_ones():
    def cued(text: str, word: str) -> bool:
        return after_hypothetical_cue(text, text.index(word))

    assert cued("نزح الأهالي خوفاً من تكرار القصف", "القصف")
    assert cued("إجراء احترازي تحسبًا لأي هجمات إضافية", "هجمات")
    assert cued("منصات كانت معدة لشن هجمات", "هجمات")
    assert cued("وتوعدت الفصائل بمزيد من الضربات", "الضربات")
    assert not cued("أسفرت الغارات عن سقوط مزيد من القتلى", "القتلى")  # reported deaths
    assert not cued("خوفاً من الرد، شنت الطائرات غارات", "غارات")  # the cue's clause has ended
    assert not cued("شنت الطائرات الحربية غارات جوية", "غارات")
