"""Counts of people from NUM mentions: digits, Arabic-Indic digits, number words, vague quantities.

Rules for vague quantities (documented in the README, tested on phrases from the seeds):

==============================  =======  =========  =========  ===========
phrase                          count    count_min  count_max  approximate
==============================  =======  =========  =========  ===========
3 / ٣ / ثلاثة / اثنين            3/3/3/2  =count     =count     no
أكثر من / تجاوز / يزيد عن 20    null     21         null       yes
ما لا يقل عن 20 / 20 على الأقل  null     20         null       yes
أقل من 20                       null     null       19         yes
نحو / حوالي / قرابة 20          20       null       null       yes
عشرات / العشرات / بالعشرات      null     10         99         yes
مئات / المئات                   null     100        999        yes
عدد / عدة / عدد من              null     2          null       yes
عدد كبير / العديد               null     10         null       yes
==============================  =======  =========  =========  ===========

``count_min`` of "tens" and "a large number" is 10 and of "hundreds" 100, the conservative values
ACLED's codebook uses for "tens" / "several" / "hundreds"; "dozens" (دزينة is not used in Arabic
news) would be 12 as in ACLED.

A mention may be a whole phrase ("مقتل خمسة عناصر", "3 إصابات"): the first number in it is read,
with the qualifier right before it ("أكثر من", also across an article: "تجاوز الـ 20") or "تقريبا" /
"على الأقل" right after it or after the counted noun ("20 شخصا على الأقل"). Annotators and the
model often mark the number alone, so :func:`parse_quantity_at` reads a mention with the words
around it in its sentence: "تجاوز الـ 20" with only "20" marked is still "more than 20".

Number words come from pyarabic's vocabulary and ``text2number``; spellings it misses are folded
onto its own first (hamza-less اربعة/الف, ta marbuta as ه, the article: الثلاثة, feminine
اثنتين/واحدة, مائتين), and a split hundred (ثلاث مئة) is joined (ثلاثمئة) because ``text2number``
would add it (103). A vague word counts only when the phrase has no number: "مقتل العشرات" is
vague, "عدد 3" is 3.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pyarabic.number import text2number
from pyarabic.number_const import NUMBER_WORDS

from ie.events.canonical import fold
from ie.text.arabic import ASCII_DIGITS, proclitic_readings, strip_marks
from ie.text.sentences import SENTENCE_END_CHARS

_INDIC = {**ASCII_DIGITS, ord("٬"): ","}  # and the Arabic thousands separator, for _DIGITS
_DIGITS = re.compile(r"^\d{1,3}(?:,\d{3})+$|^\d+$")
_MORE = ("أكثر من", "يزيد عن", "يزيد على", "أزيد من", "تجاوز", "تجاوزت", "يتجاوز", "تتجاوز",
         "تخطى", "يفوق", "فاق", "فوق")  # fmt: skip
_AT_LEAST = ("لا يقل عن", "لا تقل عن", "على الأقل")  # checked before _LESS: "لا يقل عن" ends in "يقل عن"
_LESS = ("أقل من", "يقل عن", "تقل عن", "ما دون", "دون")
_ABOUT = ("نحو", "حوالي", "حوالى", "قرابة", "زهاء", "يقارب", "ما يقرب من")
_ABOUT_AFTER = ("تقريبا",)
_AT_LEAST_AFTER = ("على الأقل",)
_ARTICLE = "ال"  # "الـ 20": the article written apart from the number, after cleaning
# How far around a mention parse_quantity_at looks (characters; within the mention's sentence).
_CONTEXT = 48
_CONTEXT_STOP = re.compile(f"[{re.escape(SENTENCE_END_CHARS)}\n]")
_VAGUE = (
    # (phrases after clitic and article removal, count_min, count_max); longer phrases first
    (("عدد كبير", "أعداد كبيرة", "العديد"), 10, None),
    (("عشرات",), 10, 99),
    (("مئات",), 100, 999),
    (("عدد", "عدة", "أعداد", "بعض"), 2, None),
)
# pyarabic's vocabulary by folded spelling, plus the feminine forms it lacks or misreads.
_WORDS = {fold(w): w for w in sorted(NUMBER_WORDS)}
_WORDS.update({fold(k): v for k, v in {"واحدة": "واحد", "اثنتان": "اثنان", "اثنتين": "اثنين",
                                        "اثنتا": "اثنا", "اثنتي": "اثني", "مائتان": "مئتان",
                                        "مائتين": "مئتين"}.items()})  # fmt: skip
_HUNDRED = {fold(w) for w in ("مئة", "مائة")}
_MULTIPLIERS = {fold(w): NUMBER_WORDS[w] for w in ("ألف", "آلاف", "مليون", "ملايين") if w in NUMBER_WORDS}


@dataclass(frozen=True)
class Quantity:
    count: int | None
    count_min: int | None
    count_max: int | None
    approximate: bool


def _clean(text: str) -> str:
    text = strip_marks(text.translate(_INDIC))
    return " ".join(text.split())


def _forms(word: str) -> list[str]:
    """The word and its readings without proclitics (و/ف, then ب/ل/ك) and without the article."""
    return proclitic_readings(word, min_stem=2, article=True)  # وست: و + ست


def _number_word(word: str) -> str | None:
    """pyarabic's spelling of a number word (وعشرين → عشرين, الثلاثه → ثلاثة), else None."""
    for form in _forms(word):
        found = _WORDS.get(fold(form))
        if found is not None:
            return found
    return None


def _first_number(words: list[str]) -> tuple[int, int, int] | None:
    """(value, first word index, end word index) of the first number in the phrase."""
    for i, word in enumerate(words):
        digits = word.strip("()+")
        if digits[:1] in ("و", "ف") and _DIGITS.match(digits[1:]):
            digits = digits[1:]  # ستة قتلى و11 جريحاً: the conjunction on a figure
        if _DIGITS.match(digits):
            value, end = int(digits.replace(",", "")), i + 1
            multiplier = _multiplier(words[end]) if end < len(words) else None
            if multiplier:
                value, end = value * multiplier, end + 1
            return value, i, end
        if _number_word(word) is None:
            continue
        run: list[str] = []
        end = i
        while end < len(words) and (found := _number_word(words[end])) is not None:
            if run and fold(found) in _HUNDRED and (run[-1] + found) in NUMBER_WORDS:
                run[-1] += found  # ثلاث مئة → ثلاثمئة
            else:
                run.append(found)
            end += 1
        value = text2number(" ".join(run))
        return (value, i, end) if value else None
    return None


def _ends_with(words: list[str], phrase: str) -> bool:
    n = len(phrase.split())
    if len(words) < n:
        return False
    tail = words[-n:]
    return any(fold(" ".join([f, *tail[1:]])) == fold(phrase) for f in _forms(tail[0]))


def _multiplier(word: str) -> int | None:
    return next((_MULTIPLIERS[f] for f in map(fold, _forms(word)) if f in _MULTIPLIERS), None)


def _vague(words: list[str]) -> tuple[int, int | None] | None:
    forms = [{fold(f) for f in _forms(w)} for w in words]
    for phrases, low, high in _VAGUE:
        for phrase in phrases:
            target = [fold(w) for w in phrase.split()]
            n = len(target)
            for i in range(len(words) - n + 1):
                if all(t in forms[i + j] for j, t in enumerate(target)):
                    return low, high
    return None


def parse_quantity(text: str, before: str = "", after: str = "") -> Quantity | None:
    """Read a NUM mention (or a phrase holding one); None when it holds no count at all.

    ``before`` and ``after`` are the text right before and after the mention: a qualifier there
    counts as if it were inside the mention (the mention alone decides whether there is a number).
    """
    words = _clean(text).split()
    if not words:
        return None
    found = _first_number(words)
    if found is None:
        vague = _vague(words)
        return Quantity(None, vague[0], vague[1], True) if vague else None
    value, first, end = found
    lead = _clean(before).split() + words[:first]
    while lead and lead[-1] == _ARTICLE:  # تجاوز الـ 20
        lead.pop()
    trail = words[end:] + _clean(after).split()
    if any(_ends_with(lead, p) for p in _MORE):
        return Quantity(None, value + 1, None, True)
    if any(_ends_with(lead, p) for p in _AT_LEAST) or _followed_by(trail, _AT_LEAST_AFTER):
        return Quantity(None, value, None, True)
    if any(_ends_with(lead, p) for p in _LESS):
        return Quantity(None, None, max(value - 1, 0), True)
    if any(_ends_with(lead, p) for p in _ABOUT) or _followed_by(trail, _ABOUT_AFTER):
        return Quantity(value, None, None, True)
    return Quantity(value, value, value, False)


def parse_quantity_at(text: str, start: int, end: int) -> Quantity | None:
    """:func:`parse_quantity` of the mention ``text[start:end]`` of an article, with the words
    around it up to the end of its sentence as context (nothing is changed, offsets stay exact)."""
    lo, hi = max(0, start - _CONTEXT), min(len(text), end + _CONTEXT)
    before, after = text[lo:start], text[end:hi]
    if lo > 0 and not text[lo - 1].isspace():
        before = re.sub(r"^\S+", "", before)  # a word cut by the window
    if hi < len(text) and not text[hi].isspace():
        after = re.sub(r"\S+$", "", after)
    before = _CONTEXT_STOP.split(before)[-1]
    after = _CONTEXT_STOP.split(after)[0]
    return parse_quantity(text[start:end], before, after)


def _followed_by(words: list[str], phrases: tuple[str, ...]) -> bool:
    """A phrase right after the number, or after the one word it counts ("20 شخصا على الأقل")."""
    for skip in (0, 1):
        if skip and not (words and words[0].isalpha() and _first_number(words[:1]) is None):
            break
        rest = words[skip:]
        for phrase in phrases:
            n = len(phrase.split())
            if len(rest) >= n and fold(" ".join(rest[:n])) == fold(phrase):
                return True
    return False


# Words that read as a number but, right by a casualty word, name a day: "مقتل ... الأحد".
_NOT_COUNTS = frozenset(fold(w) for w in ("الأحد", "الاثنين", "احد", "أحد"))
_WORD = re.compile(r"[^\s،,.:;؛!?؟()\"“”«»]+")


def _count_word(text: str, m: re.Match[str]) -> tuple[int, int] | None:
    """The extent of the count phrase that starts at word ``m`` (``عدد كبير`` takes two words)."""
    word = m.group()
    if fold(word) in _NOT_COUNTS or parse_quantity(word) is None:
        return None
    nxt = _WORD.match(text, m.end() + 1) if text[m.end() : m.end() + 1] == " " else None
    if nxt is not None and _vague([word, nxt.group()]) != _vague([word]):
        return m.start(), nxt.end()
    return m.start(), m.end()


def count_near(
    text: str, start: int, end: int, skip: tuple[tuple[int, int], ...] = ()
) -> tuple[int, int] | None:
    """The count phrase written right by a casualty word ``text[start:end]`` that no ``count``
    relation gave: the word just before it (``3 إصابات``، ``عدة إصابات``; also ``عدد من الجرحى``), or
    just after it (``مقتل خمسة``، ``إصابة 6``), past a coordinated casualty word in ``skip``
    (``مقتل وإصابة عدد من``). A figure followed by a casualty word in ``skip`` is that word's
    (``5 قتلى و3 جرحى``); ``عدد`` right before the word is "the number of" (``عدد قتلاها``), no
    count. Returns the phrase's exact ``(start, end)``, to be read with :func:`parse_quantity_at`;
    None when no count is written there."""
    before = text[max(0, start - 40) : start]
    words = list(_WORD.finditer(before))
    tail = before[words[-1].end() :] if words else ""
    if words and tail == " ":
        last = words[-1]
        joined = len(words) > 1 and before[words[-2].end() : last.start()] == " "
        partitive = fold(last.group()) == fold("من") and joined  # عدد من الجرحى
        if partitive:
            last = words[-2]
        the_number_of = not partitive and any(fold(f) == fold("عدد") for f in _forms(last.group()))
        found = None if the_number_of else _count_word(before, last)  # عدد قتلاها: "the number of"
        if found is not None and found[1] <= len(before):
            shift = start - len(before)
            return found[0] + shift, found[1] + shift
    pos = end
    for s, e in skip:
        if text[pos : pos + 1] == " " and s == pos + 1:
            pos = e
    m = _WORD.match(text, pos + 1) if text[pos : pos + 1] == " " else None
    if m is None:
        return None
    found = _count_word(text, m)
    if found is None:
        return None
    after = _WORD.match(text, found[1] + 1) if text[found[1] : found[1] + 1] == " " else None
    if after is not None and any(s == after.start() for s, _ in skip):
        return None
    return found
