"""Training-time augmentation: new surface forms of the training articles, annotations kept exact.

Why: five articles are too few for a from-scratch model to learn what a place, an actor or a
count looks like rather than memorise these ones. Two augmentations that keep the annotation
exact are used:

- **mention replacement** (Dai & Adel 2020, the best single augmentation for small-data NER): a
  LOC/FAC/ACTOR/WEAPON/CIVILIAN/TIME mention is replaced by another mention of the same type,
  taken from the training split's own mentions and, where given, the gazetteer. One stem is
  replaced the same way throughout an article, so repeated mentions stay coreferent.
- **number forms**: a count of people (NUM) is rewritten as digits, Arabic-Indic digits or words
  (pyarabic), with the qualifiers of the guidelines (§2 "Counts": ``أكثر من``، ``نحو``، ``حوالي``
  and ``ما لا يقل عن`` are inside the NUM span), as "dozens" (``عشرات``), or as a dual noun.

Clitic and article rules (``docs/training.md`` "Augmentation"):

- A mention's first word is split into proclitics (و/ف then ب/ل/ك) and a stem only when the stem
  is a known word (a designator, the first word of a gazetteer form or of a training mention that
  starts without a clitic letter): ``بريف`` = ب + ``ريف`` but ``بادية`` stays whole.
- The proclitics are kept and put in front of the replacement: ``بريف دير الزور`` → ``بمدينة
  الميادين``; ``لقوات التحالف`` → ``لقسد``.
- ل before the article fuses (``لل``): ``لقوات التحالف`` → ``للميليشيات الإيرانية``, and ``للميليشيات``
  is read as ل + ``الميليشيات``. ب/ك/و/ف never fuse (``بالمنطقة``). ``في`` is a separate word outside
  the span: nothing changes.
- Duals: a count of 2 before a casualty trigger becomes the dual trigger (``[[3|NUM]] [[قتلى|KILLED]]``
  → ``[[قتيلين|KILLED]]``; the NUM span and its relations go, the word holds the count); before an
  unannotated counted noun the dual noun is the NUM (``[[خمسة|NUM]] عناصر من`` → ``[[عنصرين|NUM]] من``).
  Genitive ``-ين`` after a word (``مقتل``، ``إصابة``), nominative ``-ان`` at the start of a clause.

Every generated document satisfies ``text[start:end] == span.text``; relations keep their span ids.
Generation is a pure function of (documents, factor, seed, gazetteer forms).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from pyarabic.number import ArNumbers, text2number

from ie.core.document import Document, Span
from ie.core.hashing import sha256_text
from ie.text.arabic import EASTERN_DIGITS, proclitic_readings, to_ascii_digits
from ie.text.gazetteer import Gazetteer

__all__ = [
    "REPLACEABLE",
    "augment_documents",
    "dual",
    "gazetteer_forms",
    "join_clitics",
    "number_form",
    "split_clitics",
]

# Types whose mentions are replaced, and how likely each distinct stem of a copy is replaced.
REPLACEABLE = ("LOC", "FAC", "ACTOR", "WEAPON", "CIVILIAN", "TIME")
REPLACE_PROB = 0.5
NUMBER_PROB = 0.8
# Words that are designators or heads of mentions: a clitic in front of one of them is a clitic.
DESIGNATORS = frozenset(
    "ريف مدينة بلدة بلدات قرية قرى حي أحياء منطقة مناطق بادية محافظة ناحية جنوب شمال شرق غرب "
    "حقل حقول قاعدة قواعد مطار معبر جسر مقر مقرات مواقع موقع نقاط مستودعات مخازن فرع قلعة معسكر "
    "قوات ميليشيا ميليشيات مليشيا مليشيات عناصر جنود قيادة تنظيم جيش فصائل الحرس حزب "
    "طائرات طائرة طيران صواريخ صاروخ قذائف قذيفة راجمات منصات مدفعية".split()
)
_FUSING = "ل"  # the one proclitic that fuses with the article: ل + ال → لل
_ARTICLE = "ال"
_PRONOUN_ENDINGS = ("ها", "هم", "هما", "هن")
# Qualifiers inside the NUM span (guidelines §2): "more than", "about", "at least".
QUALIFIERS = ("أكثر من", "نحو", "حوالي", "ما لا يقل عن")
_VAGUE = ("عشرات",)
# Counted nouns and their duals (nominative, genitive); trigger words keep their trigger label.
_DUALS = {
    **dict.fromkeys(("قتلى", "قتيل", "قتيلا", "قتيلاً"), ("قتيلان", "قتيلين")),
    **dict.fromkeys(("جرحى", "جريح", "جريحا", "جريحاً"), ("جريحان", "جريحين")),
    **dict.fromkeys(("إصابات", "إصابة", "اصابات"), ("إصابتان", "إصابتين")),
    **dict.fromkeys(("مصابين", "مصابا", "مصاباً"), ("مصابان", "مصابين")),
    **dict.fromkeys(("عناصر", "عنصر", "عنصرا", "عنصراً"), ("عنصران", "عنصرين")),
    **dict.fromkeys(("جنود", "جندي", "جنديا", "جندياً"), ("جنديان", "جنديين")),
    **dict.fromkeys(("مدنيين", "مدنيون", "مدنيا", "مدنياً"), ("مدنيان", "مدنيين")),
    **dict.fromkeys(("أشخاص", "شخص", "شخصا", "شخصاً"), ("شخصان", "شخصين")),
    **dict.fromkeys(("مقاتلين", "مقاتلون", "مقاتلا", "مقاتلاً"), ("مقاتلان", "مقاتلين")),
}
_CASUALTY = ("KILLED", "INJURED")
# 3-10 written without ة: the counted noun is feminine (ثلاث إصابات), so the new number is too.
_FEMININE_NOUN_FORMS = frozenset("ثلاث أربع اربع خمس ست سبع ثماني ثمان تسع عشر".split())
_NO_QUALIFIER_AFTER = ("الـ", "ال", "تجاوز", "تجاوزت", "يتجاوز", "تخطى", "من")


# -- clitics --------------------------------------------------------------------------------------


def split_clitics(mention: str, known: frozenset[str] | set[str]) -> tuple[str, str]:
    """(proclitics, stem) of a mention: ``بريف ديرالزور`` → (``ب``, ``ريف ديرالزور``),
    ``للميليشيات الإيرانية`` → (``ل``, ``الميليشيات الإيرانية``); the stem keeps its article.

    A reading counts only when its first word is in ``known`` (a closed list: designators and
    first words of clitic-free mentions), so ``بادية`` or ``لواء`` are never split."""
    first, sep, rest = mention.partition(" ")
    best = ""
    for reading in proclitic_readings(first, article=False)[1:]:
        if reading in known or reading in DESIGNATORS or (reading.startswith(_ARTICLE) and len(reading) > 3):
            best = reading  # readings come in order of more stripping: keep the last known one
    if not best:
        return "", mention
    if first.startswith(_FUSING * 2) and best.startswith(_ARTICLE):
        clitics = first[: len(first) - len(best) + 1]  # لل + X = ل + الX
    else:
        clitics = first[: len(first) - len(best)]
    return clitics, best + sep + rest


def join_clitics(clitics: str, stem: str) -> str:
    """The inverse of :func:`split_clitics`: ``ل`` + ``الميليشيات`` → ``للميليشيات``."""
    if clitics.endswith(_FUSING) and stem.startswith(_ARTICLE):
        return clitics + stem[1:]
    return clitics + stem


# -- numbers --------------------------------------------------------------------------------------


def _words(n: int, masculine_noun: bool, genitive: bool) -> str:
    """pyarabic's words for ``n`` (``ثلاثة`` for a masculine counted noun, as news writes them)."""
    numbers = ArNumbers()
    numbers.set_feminine(2 if masculine_noun else 1)  # pyarabic's "feminine" form ends in ة
    numbers.set_format(2 if genitive else 1)
    text = numbers.int2str(str(n)).replace("و ", "و")
    return text.replace("إثن", "اثن")  # pyarabic writes a hamza news does not


def number_form(n: int, form: str, *, masculine_noun: bool = True, genitive: bool = True) -> str:
    """``n`` written as ``digits`` (``3``), ``indic`` (``٣``) or ``words`` (``ثلاثة``)."""
    if form == "digits":
        return str(n)
    if form == "indic":
        return "".join(EASTERN_DIGITS[int(d)] for d in str(n))
    if form == "words":
        return _words(n, masculine_noun, genitive)
    raise ValueError(f"unknown number form {form!r}")


def dual(noun: str, genitive: bool) -> str | None:
    """The dual of a counted noun (``قتلى`` → ``قتيلين``/``قتيلان``), None if not in the table."""
    forms = _DUALS.get(noun)
    return None if forms is None else forms[1 if genitive else 0]


def _parse_number(stem: str) -> tuple[str, int] | None:
    """(qualifier, value) of a NUM stem such as ``أكثر من ٣٠`` or ``خمسة``; None if vague."""
    qualifier = next((q for q in QUALIFIERS if stem.startswith(q + " ")), "")
    rest = stem[len(qualifier) :].strip()
    digits = to_ascii_digits(rest)
    if digits.isdigit():
        return qualifier, int(digits)
    value = text2number(rest) if rest else 0
    return (qualifier, int(value)) if value else None


# -- edits ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Edit:
    start: int
    end: int
    text: str
    span: Span | None  # the span that covers the whole new text (None: the covered spans go)


def _apply(doc: Document, edits: list[_Edit], new_id: str) -> Document:
    """Replace ``[start, end)`` by new text; spans after an edit shift, spans inside it are replaced
    by the edit's span or dropped (and their relations with them)."""
    edits = sorted(edits, key=lambda e: e.start)
    for a, b in zip(edits, edits[1:], strict=False):
        if b.start < a.end:
            raise ValueError(f"{doc.id}: overlapping augmentation edits")
    pieces, cursor = [], 0
    for e in edits:
        pieces += [doc.text[cursor : e.start], e.text]
        cursor = e.end
    pieces.append(doc.text[cursor:])
    text = "".join(pieces)

    def moved(pos: int) -> int:
        delta = 0
        for e in edits:
            if e.end <= pos:
                delta += len(e.text) - (e.end - e.start)
        return pos + delta

    spans: list[Span] = []
    inside: set[str] = set()
    for s in doc.spans:
        edit = next((e for e in edits if s.start < e.end and e.start < s.end), None)
        if edit is None:
            spans.append(replace(s, start=moved(s.start), end=moved(s.end)))
            continue
        if not (edit.start <= s.start and s.end <= edit.end):
            raise ValueError(f"{doc.id}: an augmentation edit cuts span {s.id}")
        inside.add(s.id)
    for e in edits:
        if e.span is not None:
            start = moved(e.start)
            spans.append(replace(e.span, start=start, end=start + len(e.text), text=e.text))
            inside.discard(e.span.id)
    relations = [r for r in doc.relations if r.head not in inside and r.tail not in inside]
    out = Document(new_id, text, sorted(spans, key=lambda s: (s.start, s.end)), relations, dict(doc.meta))
    out.check_offsets()
    return out


def gazetteer_forms(gazetteer: Gazetteer | None = None) -> dict[str, list[str]]:
    """The gazetteer's spellings as written (names and aliases) by span label: places → LOC, or
    FAC for the facility kinds (bases, fields, airports, crossings); actors → ACTOR; weapons → WEAPON."""
    gazetteer = gazetteer if gazetteer is not None else Gazetteer.load()
    forms: dict[str, set[str]] = {}
    for entry in gazetteer:
        forms.setdefault(entry.label, set()).update(entry.spellings)
    return {label: sorted(f) for label, f in forms.items()}


# -- the augmenter --------------------------------------------------------------------------------


def _known_words(docs: Sequence[Document], forms: Mapping[str, Sequence[str]]) -> frozenset[str]:
    words = {f.split()[0] for fs in forms.values() for f in fs if f.split()}
    for d in docs:
        for s in d.spans:
            first = s.text.split()[0] if s.text.split() else ""
            if first and first[0] not in "وفبلك":
                words.add(first)
    return frozenset(words)


def _pools(
    docs: Sequence[Document], forms: Mapping[str, Sequence[str]], known: frozenset[str]
) -> dict[str, list[str]]:
    pools: dict[str, set[str]] = {label: set() for label in REPLACEABLE}
    for d in docs:
        for s in d.spans:
            if s.label in pools:
                _, stem = split_clitics(s.text, known)
                if stem[:1].isalpha() and not any(w.endswith(_PRONOUN_ENDINGS) for w in stem.split()):
                    pools[s.label].add(stem)
    for label, fs in forms.items():
        pools.setdefault(label, set()).update(f for f in fs if f[:1].isalpha())
    return {label: sorted(p) for label, p in pools.items() if p}


def _rng(seed: int, doc: Document, copy: int) -> random.Random:
    digest = sha256_text(f"{seed}:{copy}:{doc.id}:{doc.text}")
    return random.Random(digest)


def _prev_word(text: str, pos: int) -> str:
    words = text[:pos].split()
    return words[-1] if words else ""


def _next_word(text: str, pos: int) -> tuple[int, int] | None:
    """[start, end) of the word right after ``pos`` (one space between), else None."""
    if text[pos : pos + 1] != " ":
        return None
    start = end = pos + 1
    while end < len(text) and (
        text[end].isalpha() or text[end] in "\u064b\u064c\u064d\u064e\u064f\u0650\u0651\u0652"
    ):
        end += 1
    return (start, end) if end > start else None


def _number_edit(doc: Document, s: Span, rng: random.Random, by_start: dict[int, Span]) -> _Edit | None:
    clitics, stem = ("و", s.text[1:]) if s.text.startswith("و") and len(s.text) > 2 else ("", s.text)
    parsed = _parse_number(stem)
    if parsed is None:
        return None
    _, old_value = parsed
    genitive = bool(_prev_word(doc.text, s.start))
    masculine = stem.split()[-1] not in _FEMININE_NOUN_FORMS  # ثلاث إصابات: keep the form without ة
    value = rng.choice([2, 2, rng.randint(2, 10), rng.randint(2, 10), rng.randint(11, 60), old_value])
    nxt = _next_word(doc.text, s.end)
    if value == 2 and nxt is not None and not clitics:
        noun = doc.text[nxt[0] : nxt[1]]
        counted = by_start.get(nxt[0])
        word = dual(noun, genitive)
        if word is not None and rng.random() < 0.7:
            if counted is not None and counted.end == nxt[1] and counted.label in _CASUALTY:
                return _Edit(s.start, nxt[1], word, counted)  # the dual trigger holds the count
            if counted is None and not any(x.start < nxt[1] and nxt[0] < x.end for x in doc.spans):
                return _Edit(s.start, nxt[1], word, s)  # the dual counted noun is the NUM
    prev = _prev_word(doc.text, s.start)
    shape = rng.choice(["digits", "digits", "indic", "words", "words", "qualified", "dozens"])
    if shape in ("qualified", "dozens") and (prev in _NO_QUALIFIER_AFTER or clitics):
        shape = "digits"
    if shape == "dozens":
        new = rng.choice(_VAGUE)
    elif shape == "qualified":
        qualifier = rng.choice(QUALIFIERS)
        new = f"{qualifier} {number_form(value, rng.choice(['digits', 'indic', 'words']), genitive=True)}"
    else:
        new = number_form(value, shape, masculine_noun=masculine, genitive=genitive)
    return _Edit(s.start, s.end, join_clitics(clitics, new), s)


def augment_document(
    doc: Document,
    copy: int,
    seed: int,
    pools: Mapping[str, Sequence[str]],
    known: frozenset[str],
) -> Document:
    """One augmented copy of ``doc`` (copy number ``copy``); see the module docstring."""
    rng = _rng(seed, doc, copy)
    by_start = {s.start: s for s in doc.spans}
    chosen: dict[tuple[str, str], str | None] = {}
    edits: list[_Edit] = []
    taken: list[tuple[int, int]] = []
    for s in doc.sorted_spans():
        if any(a < s.end and s.start < b for a, b in taken):
            continue  # already rewritten by a dual
        if s.label == "NUM":
            if rng.random() < NUMBER_PROB and (edit := _number_edit(doc, s, rng, by_start)) is not None:
                edits.append(edit)
                taken.append((edit.start, edit.end))
            continue
        pool = pools.get(s.label)
        if not pool:
            continue
        clitics, stem = split_clitics(s.text, known)
        key = (s.label, stem)
        if key not in chosen:
            chosen[key] = rng.choice(pool) if rng.random() < REPLACE_PROB else None
        new = chosen[key]
        if new is None or new == stem:
            continue
        text = join_clitics(clitics, new)
        edits.append(_Edit(s.start, s.end, text, s))
        taken.append((s.start, s.end))
    out = _apply(doc, edits, f"{doc.id}~aug{copy}")
    out.meta["augmented_from"] = doc.id
    return out


def augment_documents(
    docs: Sequence[Document],
    factor: int,
    seed: int,
    forms: Mapping[str, Sequence[str]] | None = None,
) -> list[Document]:
    """``factor`` augmented copies of every training document (the originals are not included).

    ``forms``: extra replacement mentions by entity type (the gazetteer's spellings). Only ever
    call this on the training split: evaluation articles must stay as written."""
    if factor <= 0:
        return []
    forms = forms or {}
    known = _known_words(docs, forms)
    pools = _pools(docs, forms, known)
    return [augment_document(d, k + 1, seed, pools, known) for k in range(factor) for d in docs]
