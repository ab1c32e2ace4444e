"""The AraBERT-v02 normalizer: its output, and the map back to the original article.

The expected strings of ``ARABERT_CASES`` were produced by ``arabert==1.0.1``'s
``ArabertPreprocessor(model_name="bert-base-arabertv02").preprocess`` (arabert is not a dependency, so
they are written out here); the other cases are the documented deviations of :mod:`ie.text.normalize`.
"""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from modelkit import SEEDS

from ie.text.normalize import EMAIL_TOKEN, MENTION_TOKEN, URL_TOKEN, normalize

SEED_TEXTS = {p.name: p.read_text(encoding="utf-8") for p in SEEDS}


def seed_containing(phrase: str) -> str:
    texts = [t for t in SEED_TEXTS.values() if phrase in t]
    assert texts, f"no seed article contains {phrase!r}"
    return texts[0]


# ----------------------------------------------------------------------------------------------------
# Known answers

ARABERT_CASES = [
    ("حيث سُمِع دوي انفجارات", "حيث سمع دوي انفجارات"),
    ("وأكثر من ٣٠ جريح", "وأكثر من 30 جريح"),
    ("تجاوز الـ 20 قتيل", "تجاوز ال 20 قتيل"),
    ("لمنصة SY24 إخلاء", "لمنصة SY24 إخلاء"),
    ("قتل 3أشخاص", "قتل 3 أشخاص"),
    ("الطائرةF16 و a3ب", "الطائرةF16 و a 3 ب"),
    ("وصفت بـ”الخفيفة”.", "وصفت ب ” الخفيفة ” ."),
    ("ردًا على هجمات", "ردا على هجمات"),
    ("مسيّرة", "مسيرة"),
    ("جداااا!!!!", "جداا ! !"),
    ("زوروا www.sana.sy أو http://x.com/a?b=1", "زوروا [رابط] أو [رابط]"),
    ("راسلونا a@b.com أو @user_1", "راسلونا [رابط] أو [مستخدم]"),
    ("&amp; &#1576;&lt;b&gt;نص", "ب نص"),
    ("نص <br />سطر <p class='x'>فقرة</p>", "نص سطر فقرة"),
    ("12/5/2023", "12 - 5 - 2023"),
    ("٪٥٠ و50٪", "٪ 50 و 50 ٪"),
    ("كلمة\u200cأخرى 😀 café", "كلمة أخرى caf"),
    ("ههههه", "هه"),
    ("١٢٣٤", "1234"),
]


@pytest.mark.parametrize(("text", "expected"), ARABERT_CASES)
def test_matches_arabert_v02(text: str, expected: str) -> None:
    assert normalize(text).text == expected


@pytest.mark.parametrize(
    ("text", "expected", "arabert"),
    [
        ("۱۲۳ قتيلا", "123 قتيلا", "قتيلا"),  # Persian digits kept as numbers
        ("هٰذا", "هذا", "ه ذا"),  # superscript alef removed like tashkeel, not a word break
        ("ا\u0654", "أ", "ا ٔ"),  # alef + hamza above composed
        ("ي\u0654ن", "ئن", "ي ٔ ن"),
        ("a<>b", "a b", "a < > b"),  # empty tag removed
    ],
)
def test_documented_deviations(text: str, expected: str, arabert: str) -> None:
    assert normalize(text).text == expected != arabert


def test_repetition_quirk_kept_from_arabert() -> None:
    # Repetition is cut after URL replacement, exactly as in arabert, so the output is not a fixed point here.
    assert normalize("htttp").text == "http"
    assert normalize("http").text == "[رابط]"


def test_replacement_tokens_map_to_their_whole_source() -> None:
    text = "زوروا www.sana.sy أو a@b.c و @user_1 &amp; &#1576;"
    n = normalize(text)
    found = []
    for m in re.finditer(r"\S+", n.text):
        s, e = n.to_original(*m.span())
        found.append((m.group(), text[s:e]))
    assert found == [
        ("زوروا", "زوروا"),
        (URL_TOKEN, "www.sana.sy"),
        ("أو", "أو"),
        (EMAIL_TOKEN, "a@b.c"),
        ("و", "و"),
        (MENTION_TOKEN, "@user_1"),
        ("ب", "&#1576;"),
    ]


def test_rejects_non_text() -> None:
    with pytest.raises(TypeError):
        normalize(b"\xd8\xa8")  # type: ignore[arg-type]


def test_out_of_range_spans_raise() -> None:
    n = normalize("سمع")
    with pytest.raises(ValueError, match="outside"):
        n.to_original(0, 4)
    with pytest.raises(ValueError, match="outside"):
        n.to_normalized(2, 1)


def test_empty_and_blank_text() -> None:
    for text in ("", "  \n", "ـ\u064e", "😀"):
        n = normalize(text)
        assert n.text == ""
        assert n.to_original(0, 0) == (0, 0)
        assert n.to_normalized(0, len(text)) == (0, 0)


# ----------------------------------------------------------------------------------------------------
# The seed articles


def normalized_span(text: str, phrase: str) -> tuple[str, tuple[int, int], tuple[int, int]]:
    """Normalize the seed holding ``phrase``; return its normalized form and both maps of its span."""
    start = text.index(phrase)
    n = normalize(text)
    ns, ne = n.to_normalized(start, start + len(phrase))
    return n.text[ns:ne], (ns, ne), n.to_original(ns, ne)


def test_seed_vocalized_word_maps_back_with_its_marks() -> None:
    text = seed_containing("سُمِع")
    start = text.index("سُمِع")
    got, _, back = normalized_span(text, "سُمِع")
    assert got == "سمع"
    assert back == (start, start + len("سُمِع"))


def test_seed_arabic_indic_digits() -> None:
    text = seed_containing("أكثر من ٣٠ جريح")
    got, _, _ = normalized_span(text, "أكثر من ٣٠ جريح")
    assert got == "أكثر من 30 جريح"
    n = normalize(text)
    i = n.text.index(" 30 ") + 1
    s, e = n.to_original(i, i + 2)
    assert text[s:e] == "٣٠"


def test_seed_tatweel_removed_and_attached() -> None:
    text = seed_containing("الـ 20")
    got, (ns, _), back = normalized_span(text, "الـ 20")
    assert got == "ال 20"
    n = normalize(text)
    s, e = n.to_original(ns, ns + 2)
    assert text[s:e] == "الـ"
    # The same with a quote mark right after the tatweel: "بـ”الخفيفة”" -> "ب ” الخفيفة ”".
    text = seed_containing("بـ”الخفيفة”")
    got, (ns, _), _ = normalized_span(text, "بـ”الخفيفة”")
    assert got == "ب ” الخفيفة ”"
    s, e = normalize(text).to_original(ns, ns + 1)
    assert text[s:e] == "بـ"


def test_seed_latin_and_digits_stay_one_word() -> None:
    text = seed_containing("SY24")
    got, _, _ = normalized_span(text, "SY24")
    assert got == "SY24"


def test_seed_final_tanween_is_attached() -> None:
    text = seed_containing("ردًا")
    start = text.index("ردًا")
    got, _, back = normalized_span(text, "ردًا")
    assert got == "ردا"
    assert back == (start, start + len("ردًا"))


@pytest.mark.parametrize("name", sorted(SEED_TEXTS))
def test_every_seed_word_maps_back_exactly(name: str) -> None:
    text = SEED_TEXTS[name]
    n = normalize(text)
    words = list(re.finditer(r"\S+", text))
    assert len(words) > 100
    for m in words:
        ns, ne = n.to_normalized(*m.span())
        assert n.text[ns:ne] == normalize(m.group()).text, m.group()
        assert n.to_original(ns, ne) == m.span(), m.group()
    check_map(text)


# ----------------------------------------------------------------------------------------------------
# Properties on random text

ARABIC = "ابتثجحخدذرزسشصضطظعغفقكلمنهويءآأؤإئىة"
TASHKEEL = "".join(map(chr, range(0x064B, 0x0653)))
OTHER_MARKS = "\u0670\u0653\u0654\u0655\u0301\ufe0f"
DIGITS = "0123456789٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹"
PUNCTUATION = ".,،؛:!?؟-—–/()[]\"'«»“”…%٪@#<>&;*_+=~|"
LATIN = "abcehlmoptwxyzSYWT"
OTHER = "\u200c\u00e9\u20ac\U0001f600"
SPACES = " \n\t\u00a0"
FRAGMENTS = [
    "http://x.com",
    "www.",
    "@user",
    "a@b.c",
    "&amp;",
    "&#1576;",
    "&lt",
    "<b>",
    ".com",
    "ههههه",
    "!!!!",
    "\ud83d\ude00",
]

chars = st.sampled_from(list(ARABIC * 3 + TASHKEEL + OTHER_MARKS + "\u0640" + DIGITS + PUNCTUATION + LATIN))
texts = st.lists(
    st.one_of(chars, chars, chars, st.sampled_from(list(SPACES + OTHER)), st.sampled_from(FRAGMENTS)),
    max_size=40,
).map("".join)


REPLACEMENT_TOKENS = {URL_TOKEN, EMAIL_TOKEN, MENTION_TOKEN}


def is_mark(ch: str) -> bool:
    return unicodedata.category(ch)[0] == "M"


def check_map(text: str) -> None:
    n = normalize(text)
    out = n.text
    assert out == " ".join(out.split())
    assert n.original == text

    # Every normalized character comes from original characters, in order, never cutting a combining sequence.
    spans = []
    for i, ch in enumerate(out):
        if ch == " ":
            continue
        s, e = n.to_original(i, i + 1)
        assert 0 <= s < e <= len(text)
        assert not is_mark(text[s]) and (e == len(text) or not is_mark(text[e]))
        assert not "\udc00" <= text[s] <= "\udfff" and not "\ud800" <= text[e - 1] <= "\udbff"
        spans.append((s, e))
    assert spans == sorted(spans)
    assert all(e1 <= s2 or (s1, e1) == (s2, e2) for (s1, e1), (s2, e2) in zip(spans, spans[1:], strict=False))

    # Each word of the output comes back from a slice that normalizes to that very word, and back again.
    for m in re.finditer(r"\S+", out):
        s, e = n.to_original(*m.span())
        again = normalize(text[s:e]).text
        if m.group() in REPLACEMENT_TOKENS:
            # arabert's URL/e-mail regexes run one after the other and look past their match (``\b``,
            # greedy ``\S+``), so a source cut out of a run of URL-like text may come back as another token,
            # or with a neighbour split off; it still holds a URL, address or mention.
            assert REPLACEMENT_TOKENS & set(again.split())
        else:
            assert again == m.group()
        assert n.to_normalized(s, e) == m.span()
        if m.start():  # a span with its surrounding spaces maps the same
            assert n.to_original(m.start() - 1, m.end()) == (s, e)

    # The whole output covers the text minus what was removed at either end.
    s, e = n.to_original(0, len(out))
    if spans:
        assert (s, e) == (spans[0][0], spans[-1][1])
        assert normalize(text[:s]).text == ""
        # After the end, only surplus copies of the last character may be left ("!!!!" -> "! !").
        assert set(normalize(text[e:]).text.split()) <= {out[-1]}

    # Both maps are monotone.
    firsts = [n.to_normalized(o, len(text))[0] for o in range(len(text) + 1)]
    lasts = [n.to_normalized(0, o)[1] for o in range(len(text) + 1)]
    assert firsts == sorted(firsts) and lasts == sorted(lasts)
    ends = [n.to_original(0, j)[1] for j in range(len(out) + 1)]
    starts = [n.to_original(j, len(out))[0] for j in range(len(out) + 1)]
    assert ends == sorted(ends) and starts == sorted(starts)


@settings(max_examples=300, deadline=None)
@given(texts)
def test_map_properties(text: str) -> None:
    check_map(text)


@settings(max_examples=300, deadline=None)
@given(texts)
def test_idempotent(text: str) -> None:
    # The one input arabert itself leaves unstable: "ht", 3 or more "t", "p" (see the repetition quirk).
    assume(not re.search("ht{3,}p", re.sub("[\u0640\u064b-\u0655\u0670\u0301\ufe0f]", "", text)))
    once = normalize(text).text
    assert normalize(once).text == once


@settings(max_examples=200, deadline=None)
@given(texts, st.data())
def test_original_spans_map_to_whole_normalized_words(text: str, data: st.DataObject) -> None:
    n = normalize(text)
    a = data.draw(st.integers(0, len(text)))
    b = data.draw(st.integers(a, len(text)))
    ns, ne = n.to_normalized(a, b)
    assert 0 <= ns <= ne <= len(n.text)
    if ns < ne:
        assert n.text[ns] != " " and n.text[ne - 1] != " "
        s, e = n.to_original(ns, ne)
        # The normalized span is made of exactly the characters that overlap [a, b).
        assert s < b and e > a
        assert ns == 0 or n.text[ns - 1] == " " or n.to_original(ns - 1, ns)[1] <= a
        assert ne == len(n.text) or n.text[ne] == " " or n.to_original(ne, ne + 1)[0] >= b
