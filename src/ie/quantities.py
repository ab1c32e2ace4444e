"""Counts of people from NUM mentions: digits, Arabic-Indic digits, number words, vague quantities.

Rules for vague quantities (documented in the README, tested on phrases from the seeds):

==========================  =====  =========  =========  ===========
phrase                      count  count_min  count_max  approximate
==========================  =====  =========  =========  ===========
3 / ٣ / ثلاثة / اثنين        3/3/3/2  =count   =count     no
أكثر من 20 / تجاوز 20       null   21         null       yes
أقل من 20                   null   null       19         yes
نحو / حوالي / قرابة 20      20     null       null       yes
عشرات / العشرات / بالعشرات  null   10         99         yes
مئات / المئات               null   100        999        yes
عدد / عدة / عدد من          null   2          null       yes
عدد كبير                    null   10         null       yes
==========================  =====  =========  =========  ===========

``count_min`` of "tens" and "a large number" is 10 and of "hundreds" 100, the conservative values
ACLED's codebook uses for "tens" / "several" / "hundreds"; "dozens" (دزينة is not used in Arabic
news) would be 12 as in ACLED.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pyarabic.number import text2number

_INDIC = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "01234567890123456789")
_DIACRITICS = re.compile(r"[\u0610-\u061a\u064b-\u065f\u0670\u0640]")
_CLITIC = re.compile(r"^(?:و|ف)?(?:ب|ل|ك)?(?=ال)|^(?:و|ف)(?=\S)")
_MORE = ("أكثر من", "اكثر من", "ما يزيد عن", "ما يزيد على", "أزيد من", "تجاوز", "يتجاوز", "فوق")
_LESS = ("أقل من", "اقل من", "ما دون", "دون")
_ABOUT = ("نحو", "حوالي", "حوالى", "قرابة", "زهاء", "ما يقارب", "ما يقرب من", "تقريبا")
_VAGUE = (
    # (stems after clitic and article removal, count_min, count_max)
    (("عشرات",), 10, 99),
    (("مئات",), 100, 999),
    (("عدد كبير", "أعداد كبيرة", "اعداد كبيرة", "العديد"), 10, None),
    (("عدد", "عدة", "أعداد", "اعداد", "بعض"), 2, None),
)


@dataclass(frozen=True)
class Quantity:
    count: int | None
    count_min: int | None
    count_max: int | None
    approximate: bool


def _clean(text: str) -> str:
    text = _DIACRITICS.sub("", text.translate(_INDIC))
    return " ".join(text.split())


def _strip_clitics(word: str) -> str:
    """Drop و/ف/ب/ل/ك before the article (وبالعشرات → العشرات) and a leading و/ف otherwise."""
    if word.startswith(("لل", "ولل", "فلل")) and len(word) > 3:
        return "ال" + word[word.index("لل") + 2 :]
    return _CLITIC.sub("", word, count=1)


def _exact(text: str) -> int | None:
    digits = re.search(r"\d+", text)
    if digits:
        return int(digits.group())
    words = [_strip_clitics(w) for w in text.split()]
    value = text2number(" ".join(words))
    return value or None


def parse_quantity(text: str) -> Quantity | None:
    """Read a NUM mention; None when it holds no count at all."""
    text = _clean(text)
    if not text:
        return None
    first, _, rest = text.partition(" ")
    text = " ".join(filter(None, (_strip_clitics(first), rest)))
    for prefixes, kind in ((_MORE, "more"), (_LESS, "less"), (_ABOUT, "about")):
        for prefix in prefixes:
            if text.startswith(prefix + " ") or text.endswith(" " + prefix):
                value = _exact(text.replace(prefix, " "))
                if value is None:
                    break
                if kind == "more":
                    return Quantity(None, value + 1, None, True)
                if kind == "less":
                    return Quantity(None, None, value - 1, True)
                return Quantity(value, None, None, True)
    bare = text.removeprefix("ال")
    for stems, low, high in _VAGUE:
        if any(bare == s.removeprefix("ال") or bare.startswith(s + " ") for s in stems):
            return Quantity(None, low, high, True)
    value = _exact(text)
    if value is None:
        return None
    return Quantity(value, value, value, False)
