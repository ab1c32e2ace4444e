"""AraBERT-v02-compatible Arabic normalization that remembers where every character came from.

``arabert``'s ``ArabertPreprocessor("bert-base-arabertv02").preprocess`` (its ``_preprocess_v2`` path) is
what AraBERT v02 was pre-trained on, but it returns a bare string: a span predicted on its output cannot be
put back on the article. :func:`normalize` applies the same transformations as a chain of *aligned*
rewrites; every output character carries the ``[start, end)`` range of original characters that produced
it, so spans map both ways.

Reproduced from ``_preprocess_v2`` with the v02 defaults (no Farasa segmentation, emojis dropped):

1. ``html.unescape`` (an entity maps to its whole ``&...;`` source);
2. ``strip_tashkeel`` and ``strip_tatweel`` (pyarabic's ``TASHKEEL``/``TATWEEL``);
3. URLs, e-mails and @mentions replaced by `` [رابط] ``, `` [بريد] ``, `` [مستخدم] `` with arabert's
   regexes, in its order (the token maps to the whole matched text);
4. ``<br />`` and HTML tags replaced by a space;
5. Arabic-Indic digits mapped to ASCII;
6. a non-digit character repeated 3+ times cut to 2 (``remove_non_digit_repetition``);
7. ``/`` replaced by ``-``; characters outside arabert's accepted set replaced by a space;
8. a space around every character that is not an Arabic/Latin letter, a digit or ``[``/``]``;
9. a space between digits and Arabic letters, both ways (arabert's two regexes, applied literally:
   ``a3ب`` becomes ``a 3 ب``, while ``SY24`` and ``F16`` stay one word);
10. whitespace collapsed to single spaces, none leading or trailing.

Steps 7 and 8 run in the other order in arabert; swapping them gives the same string (rejected characters
become spaces either way), and not spacing characters that are about to vanish keeps this fast.

Deliberate differences from arabert (each keeps information arabert throws away, or keeps the map sound):

- Persian digits ``۰-۹`` are mapped to ASCII like Arabic-Indic ones; arabert rejects them: numbers vanish.
- Every combining mark (Unicode category M: Quranic marks, superscript alef U+0670, madda/hamza marks
  U+0653-U+0655, Latin accents, variation selectors) is removed like tashkeel. arabert turns the marks it
  does not know into a space, splitting the word (``هٰذا`` -> ``ه ذا``), or keeps U+0653-U+065F as
  stray one-mark words. Alef/waw/yeh directly followed by madda/hamza above/below is first composed (NFC)
  into the precomposed letter (``ا`` + U+0654 -> ``أ``), the only form the vocabulary knows.
- The HTML tag regex also removes an empty ``<>``: arabert's ``</?[^>]+>`` leaves ``< >`` in its output,
  which a second pass would then delete.
- arabert's URL regex ``@(https?|ftp)://(-\\.)?([^\\s/?\\.#-]+\\.?)+(/[^\\s]*)?$@iS`` is not run: ``$@``
  can never match, and its nested quantifier backtracks exponentially on long ``@http://...`` strings.

One arabert quirk is kept on purpose: repetition is cut *after* URL replacement, so ``htttp`` becomes
``http``, which a second pass turns into ``[رابط]`` (the only known input where normalizing the output
again changes it).

The map: a normalized character maps to the original characters it was made from, extended over
characters deleted right after it (tashkeel, tatweel, other marks, the surplus letters of a repetition
inside a word), so a span over ``سمع`` covers ``سُمِع`` with its marks. A replacement token (``[رابط]``,
an entity's character) maps to its whole source: the text arabert's regex matched *in context* (those
regexes look past their match, so that text normalized on its own may yield another of the three tokens).
Spaces of the normalized text map to nothing: :meth:`Normalized.to_original` strips them from both ends
of a span. Characters deleted with nothing kept before them (a leading tatweel, a rejected emoji, the
surplus copies in a punctuation repetition) map to nothing either.
"""

from __future__ import annotations

import html
import re
import sys
import unicodedata
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from html.entities import html5 as _HTML5

import pyarabic.araby as araby

from ie.text.arabic import ASCII_DIGITS, EASTERN_DIGITS

__all__ = ["EMAIL_TOKEN", "MENTION_TOKEN", "URL_TOKEN", "Normalized", "normalize"]

_NONE = -1  # a character inserted by normalization (a space) that maps to no original character

URL_TOKEN = "[رابط]"
EMAIL_TOKEN = "[بريد]"
MENTION_TOKEN = "[مستخدم]"


def _class_body(pred: Callable[[str], bool], *spans: tuple[int, int]) -> str:
    """A regex class body (``a-b`` ranges) of the code points in ``spans`` that satisfy ``pred``."""
    ranges: list[list[int]] = []
    for lo, hi in spans:
        for cp in range(lo, hi):
            if pred(chr(cp)):
                if ranges and ranges[-1][1] == cp - 1:
                    ranges[-1][1] = cp
                else:
                    ranges.append([cp, cp])
    return "".join(f"\\U{a:08x}-\\U{b:08x}" for a, b in ranges)


def _is_mark(ch: str) -> bool:
    return unicodedata.category(ch)[0] == "M" or ch in araby.TASHKEEL or ch == araby.TATWEEL


# Whitespace as ``\s`` and ``str.split`` see it, spelled out: a class of plain characters is a fast bitmap.
_WS = _class_body(str.isspace, (0, 0x10000))

# Step 1: the regex html.unescape itself uses (html._charref), so matches are identical.
_CHARREF = re.compile(r"&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)")
# Step 2.
_COMPOSABLE = re.compile("\u0627[\u0653\u0654\u0655]|[\u0648\u064a]\u0654")
# Every combining mark and tatweel, deleted and attached to the left; BMP and astral ones apart (a class
# mixing them is a slow list of ranges), the astral pass only when there is an astral character at all.
_MARKS = re.compile(f"[{_class_body(_is_mark, (0, 0x10000))}]+")
_ASTRAL_MARKS = re.compile(f"[{_class_body(_is_mark, (0x10000, 0x20000), (0xE0000, 0xE1000))}]+")
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
# Step 3: arabert's URL_REGEXES (minus the one that cannot match), EMAIL_REGEXES, USER_MENTION_REGEX,
# in order, each with a substring it cannot match without.
_URL_REGEXES = [
    (
        r"(http(s)?:\/\/.)?(www\.)?[-a-zA-Z0-9@:%._\+~#=]{2,256}\.[a-z]{2,6}\b([-a-zA-Z0-9@:%_\+.~#?&//=]*)",
        ".",
    ),
    (r"http[s]?://[a-zA-Z0-9_\-./~\?=%&]+", "://"),
    (r"www[a-zA-Z0-9_\-?=%&/.~]+", "www"),
    (r"[a-zA-Z]+\.com", ".com"),
    (r"(?=http)[^\s]+", "http"),
    (r"(?=www)[^\s]+", "www"),
    (r"://", "://"),
]
# The e-mail regexes are arabert's with a guard that lets them start only where a match could start (the
# start of a run of such characters), so they find the same matches in linear instead of quadratic time.
_EMAIL_REGEXES = [
    re.compile(r"(?<![\w-])[\w-]+@([\w-]+\.)+[\w-]+"),  # [\w-]+@([\w-]+\.)+[\w-]+
    re.compile(r"(?<!\S)(?=\S*?\S@\S)\S+"),  # \S+@\S+: the whole non-space run around a "@" inside it
]
_MENTION_REGEX = re.compile(r"@[\w\d]+")
# Step 4.
_BR = re.compile("<br />")
_HTML_TAG = re.compile("</?[^>]*>")
# Step 5: one character for one.
_EASTERN_DIGITS = re.compile(f"[{EASTERN_DIGITS}]+")
# Step 6.
_REPETITION = re.compile(r"(\D)\1{2,}")
# Step 7: arabert's REJECTED_CHARS_REGEX for second-generation models, plus "/" (it becomes "-" there first).
_REJECTED = re.compile(
    r"[^0-9\u0621-\u063A\u0640-\u066C\u0671-\u0674a-zA-Z\[\]!\"#\$%\'\(\)\*\+,\.:;\-<=·>?@\[\\\]\^_ـ`{\|}~—٪’،؟`୍“؛”ۚ»؛\s+«–…‘/]".replace(
        r"\s", _WS
    )
)
# Step 8: arabert's spacing class, minus whitespace (spacing a space changes nothing: spaces are collapsed).
_WORD_CLASS = "0-9\u0621-\u063a\u0641-\u064a\u0660-\u0669a-zA-Z\\[\\]"
_ISOLATED = re.compile(f"[^{_WORD_CLASS}{_WS}]+")
_WORD_CHARS = frozenset(c for c in map(chr, range(0x700)) if re.fullmatch(f"[{_WORD_CLASS}]", c))
# Step 9: arabert's digit/letter regexes (\d is Unicode, as in arabert), guarded to start only at the start
# of a run (same matches: the runs are disjoint once Arabic-Indic digits are ASCII; linear time).
_ARABIC_LETTERS = "\u0621-\u063a\u0641-\u064a\u0660-\u066c"
_DIGIT_LETTER = re.compile(f"(?<!\\d)(\\d+)([{_ARABIC_LETTERS}]+)")
_LETTER_DIGIT = re.compile(f"(?<![{_ARABIC_LETTERS}])([{_ARABIC_LETTERS}]+)(\\d+)")
# Step 10.
_NON_SPACE = re.compile(r"\S+")

# An emitter writes the replacement of one match: (match, starts, ends, out_text, out_starts, out_ends).
_Emit = Callable[[re.Match[str], array, array, list[str], array, array], None]


def _rewrite(
    text: str, starts: array, ends: array, pattern: re.Pattern[str], emit: _Emit
) -> tuple[str, array, array]:
    """``re.sub`` that carries the per-character origin arrays along; text between matches is copied as is."""
    out: list[str] = []
    out_s = array("q")
    out_e = array("q")
    pos = 0
    matched = False
    for m in pattern.finditer(text):
        matched = True
        a, b = m.span()
        if a > pos:
            out.append(text[pos:a])
            out_s += starts[pos:a]
            out_e += ends[pos:a]
        emit(m, starts, ends, out, out_s, out_e)
        pos = b
    if not matched:
        return text, starts, ends
    out.append(text[pos:])
    out_s += starts[pos:]
    out_e += ends[pos:]
    return "".join(out), out_s, out_e


def _union(starts: array, ends: array, a: int, b: int) -> tuple[int, int]:
    """The original range covered by characters ``a..b`` (inserted spaces ignored; origins are monotone)."""
    lo = hi = _NONE
    for k in range(a, b):
        if starts[k] != _NONE:
            lo = starts[k]
            break
    for k in range(b - 1, a - 1, -1):
        if starts[k] != _NONE:
            hi = ends[k]
            break
    return lo, hi


def _append(out: list[str], out_s: array, out_e: array, piece: str, lo: int, hi: int) -> None:
    out.append(piece)
    out_s.extend([lo] * len(piece))
    out_e.extend([hi] * len(piece))


def _attach(out_s: array, out_e: array, end: int) -> None:
    """Extend the last kept character over deleted ones that followed it."""
    if out_s and out_s[-1] != _NONE and end > out_e[-1]:
        out_e[-1] = end


def _emit_entity(m, starts, ends, out, out_s, out_e) -> None:
    a, b = m.span()
    name = m.group(1)
    if name[0] != "#" and name not in _HTML5:
        # A named reference without ";" may be a known prefix followed by plain text (html._replace_charref).
        for x in range(len(name) - 1, 1, -1):
            if name[:x] in _HTML5:
                lo, hi = _union(starts, ends, a, a + 1 + x)
                _append(out, out_s, out_e, _HTML5[name[:x]], lo, hi)
                out.append(name[x:])
                out_s += starts[a + 1 + x : b]
                out_e += ends[a + 1 + x : b]
                return
        out.append(m.group())  # not an entity: unchanged
        out_s += starts[a:b]
        out_e += ends[a:b]
        return
    lo, hi = _union(starts, ends, a, b)
    _append(out, out_s, out_e, html.unescape(m.group()), lo, hi)


def _emit_composed(m, starts, ends, out, out_s, out_e) -> None:
    lo, hi = _union(starts, ends, *m.span())
    _append(out, out_s, out_e, unicodedata.normalize("NFC", m.group()), lo, hi)


def _emit_deleted(m, starts, ends, out, out_s, out_e) -> None:
    _attach(out_s, out_e, max(ends[m.start() : m.end()]))


def _token_emitter(token: str) -> _Emit:
    def emit(m, starts, ends, out, out_s, out_e) -> None:
        lo, hi = _union(starts, ends, *m.span())
        _append(out, out_s, out_e, " ", _NONE, _NONE)
        _append(out, out_s, out_e, token, lo, hi)
        _append(out, out_s, out_e, " ", _NONE, _NONE)

    return emit


def _emit_space(m, starts, ends, out, out_s, out_e) -> None:
    _append(out, out_s, out_e, " ", _NONE, _NONE)


def _emit_repetition(m, starts, ends, out, out_s, out_e) -> None:
    a, b = m.span()
    char = m.group(1)
    out.append(char + char)
    out_s += starts[a : a + 2]
    out_e += ends[a : a + 2]
    if char in _WORD_CHARS:
        # Inside a word the surplus letters belong to it; surplus punctuation is not attached, since each
        # punctuation mark becomes a word of its own and must map to exactly one source character.
        _attach(out_s, out_e, max(ends[a + 2 : b]))


def _emit_isolated(m, starts, ends, out, out_s, out_e) -> None:
    a, b = m.span()
    out.append(" " + " ".join(m.group()) + " ")
    for k in range(a, b):
        out_s.append(_NONE)
        out_e.append(_NONE)
        out_s.append(starts[k])
        out_e.append(ends[k])
    out_s.append(_NONE)
    out_e.append(_NONE)


def _emit_split_pair(m, starts, ends, out, out_s, out_e) -> None:
    """`` \\1 \\2 ``: both groups copied, spaces around them."""
    for g in (1, 2):
        a, b = m.span(g)
        _append(out, out_s, out_e, " ", _NONE, _NONE)
        out.append(m.group(g))
        out_s += starts[a:b]
        out_e += ends[a:b]
    _append(out, out_s, out_e, " ", _NONE, _NONE)


_STEPS: list[tuple[re.Pattern[str], _Emit, str | re.Pattern[str] | None]] = [
    # (pattern, emitter, a substring or pattern without which the pattern cannot match: a cheap pre-check)
    (_CHARREF, _emit_entity, "&"),
    (_COMPOSABLE, _emit_composed, None),
    (_MARKS, _emit_deleted, None),
    (_ASTRAL_MARKS, _emit_deleted, _ASTRAL),
    *((re.compile(p), _token_emitter(URL_TOKEN), needle) for p, needle in _URL_REGEXES),
    *((p, _token_emitter(EMAIL_TOKEN), "@") for p in _EMAIL_REGEXES),
    (_MENTION_REGEX, _token_emitter(MENTION_TOKEN), "@"),
    (_BR, _emit_space, "<"),
    (_HTML_TAG, _emit_space, "<"),
]
_SPACING_STEPS: list[tuple[re.Pattern[str], _Emit]] = [
    (_ISOLATED, _emit_isolated),
    (_DIGIT_LETTER, _emit_split_pair),
    (_LETTER_DIGIT, _emit_split_pair),
]


@dataclass(frozen=True)
class Normalized:
    """A normalized text and, per normalized character, the original ``[start, end)`` it came from."""

    text: str
    original: str
    _starts: array = field(repr=False, compare=False)
    _ends: array = field(repr=False, compare=False)

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        """Original ``(start, end)`` of the normalized span ``[start, end)`` (spaces at its ends ignored).

        A span with no normalized character in it maps to an empty original span at the matching place.
        """
        n = len(self.text)
        if not 0 <= start <= end <= n:
            raise ValueError(f"normalized span ({start}, {end}) is outside 0..{n}")
        if start < end and self.text[start] == " ":
            start += 1
        if end > start and self.text[end - 1] == " ":
            end -= 1
        if start < end:
            return self._starts[start], self._ends[end - 1]
        pos = self._starts[start] if start < n else (self._ends[n - 1] if n else 0)
        return pos, pos

    def to_normalized(self, start: int, end: int) -> tuple[int, int]:
        """Normalized ``(start, end)`` of every character made from original characters in ``[start, end)``.

        The result never starts or ends on a space; a span that produced nothing maps to an empty span.
        """
        n = len(self.original)
        if not 0 <= start <= end <= n:
            raise ValueError(f"original span ({start}, {end}) is outside 0..{n}")
        # A space's origin is (start of the next character, end of the previous one): both arrays are
        # sorted, and the span found never starts or ends on a space.
        first = bisect_right(self._ends, start)
        stop = bisect_left(self._starts, end) if end > start else first
        if stop <= first:
            return first, first
        return first, stop


def normalize(text: str) -> Normalized:
    """Normalize ``text`` as AraBERT v02's preprocessor does, keeping the map back to ``text``."""
    if not isinstance(text, str):
        raise TypeError(f"normalize() expects str, got {type(text).__name__}")
    original = text
    starts = array("q", range(len(text)))
    ends = array("q", range(1, len(text) + 1))
    for pattern, emit, needle in _STEPS:
        if needle is None or (needle in text if isinstance(needle, str) else needle.search(text)):
            text, starts, ends = _rewrite(text, starts, ends, pattern, emit)
    text = _EASTERN_DIGITS.sub(lambda m: m.group().translate(ASCII_DIGITS), text)
    text, starts, ends = _rewrite(text, starts, ends, _REPETITION, _emit_repetition)
    text = _REJECTED.sub(" ", text.replace("/", "-"))  # one character for one: origins unchanged
    for pattern, emit in _SPACING_STEPS:
        text, starts, ends = _rewrite(text, starts, ends, pattern, emit)

    out: list[str] = []
    out_s = array("q")
    out_e = array("q")
    for m in _NON_SPACE.finditer(text):
        a, b = m.span()
        if out:
            out.append(" ")
            out_s.append(starts[a])
            out_e.append(out_e[-1])
        out.append(m.group())
        out_s += starts[a:b]
        out_e += ends[a:b]
    return Normalized("".join(out), original, out_s, out_e)


if __name__ == "__main__":  # pragma: no cover - a quick look: python -m ie.text.normalize < article.txt
    print(normalize(sys.stdin.read()).text)
