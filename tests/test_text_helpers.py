"""The shared Arabic string helpers and the one sentence splitter, on real seed text."""

from __future__ import annotations

from modelkit import GOLD, tokenizer

from ie.annotation.labelstudio import load_documents
from ie.events.assembly import SHELLING, sub_event_type
from ie.model.features import Featurizer
from ie.text.arabic import proclitic_readings, strip_marks, to_ascii_digits
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
