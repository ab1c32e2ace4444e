"""Arabic string helpers shared by every stage: marks, digits, proclitics.

One home for each rule, so canonical names, quantities, sub-event cues and the AraBERT
normalizer agree on what a mark, a digit or a proclitic is.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = [
    "ASCII_DIGITS",
    "EASTERN_DIGITS",
    "HAMZA_FOLD",
    "after_hypothetical_cue",
    "fold_letters",
    "is_attack_modifier",
    "is_compass",
    "is_word_char",
    "proclitic_readings",
    "splits_word",
    "starts_new_mention",
    "starts_with_conjunction",
    "strip_marks",
    "to_ascii_digits",
]

# Harakat and tanwin (U+064B-U+065F), Quranic marks (U+0610-U+061A), superscript alef (U+0670) and
# tatweel (U+0640): what a spelling-insensitive comparison ignores. The normalizer removes a wider
# set (every combining mark, to match AraBERT's input), with offsets kept: see ie.text.normalize.
_MARKS = re.compile(r"[\u0610-\u061a\u064b-\u065f\u0670\u0640]")

# Arabic-Indic (U+0660-U+0669) then Persian (U+06F0-U+06F9) digits, in value order.
EASTERN_DIGITS = "٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹"
ASCII_DIGITS = str.maketrans(EASTERN_DIGITS, "0123456789" * 2)

# Letters that news spells interchangeably (hamza seats, alef maqsura/yeh, ta marbuta/heh), each mapped to
# the plain letter a spelling-insensitive comparison uses: canonical names and the gazetteer fold with it.
HAMZA_FOLD = {"أ": "ا", "إ": "ا", "آ": "ا", "ؤ": "و", "ئ": "ي"}
_FOLD = str.maketrans({**HAMZA_FOLD, "ى": "ي", "ة": "ه"})

_CONJUNCTIONS = ("و", "ف")  # "and", "then"
_PREPOSITIONS = ("ب", "ل", "ك")  # "with/in", "for", "like"
_ARTICLE = "ال"


def strip_marks(text: str) -> str:
    """``text`` without harakat, Quranic marks, superscript alef and tatweel (``قَصْفـ`` → ``قصف``)."""
    return _MARKS.sub("", text)


def fold_letters(text: str) -> str:
    """``text`` with hamza seats, ى and ة folded to ا/و/ي, ي and ه, one character for one."""
    return text.translate(_FOLD)


def to_ascii_digits(text: str) -> str:
    """Arabic-Indic and Persian digits as ASCII ones, one character for one (offsets stay valid)."""
    return text.translate(ASCII_DIGITS)


def proclitic_readings(
    word: str, *, min_stem: int = 3, conjunction: bool = True, article: bool = False
) -> list[str]:
    """``word`` first, then its readings without proclitics, in this order: without the conjunction
    و/ف, then without the preposition ب/ل/ك of each of those (``لل`` read as ``ال``), then, with
    ``article``, without the article.

    A conjunction is removed only when ``min_stem`` letters remain: 3 for names (``وقت`` is a word,
    not و + قت), 2 for number words (``وست`` is و + ست). A preposition always leaves 2 letters or more,
    the article more than 1. ``conjunction=False`` keeps a leading و/ف (a caller that knows the word
    begins with one, ``وادي``). Callers look the readings up in a closed list (head nouns, aliases,
    number words, cue words), which is what keeps the over-eager ones harmless.
    """
    out = [word]
    if conjunction and word[:1] in _CONJUNCTIONS and len(word) > min_stem:
        out.append(word[1:])
    for w in list(out):
        if w.startswith("لل") and len(w) > 3:
            out.append(_ARTICLE + w[2:])
        elif w[:1] in _PREPOSITIONS and len(w) > 2:
            out.append(w[1:])
    if article:
        out += [w[2:] for w in out if w.startswith(_ARTICLE) and len(w) > 3]
    return out


def starts_with_conjunction(word: str, min_stem: int = 3) -> bool:
    """Whether ``word`` can be read as the conjunction و/ف + a word of ``min_stem`` letters or more
    (``والميادين``, ``وميليشيا``; not ``فرع``, ``وقت``): a coordination starts a new mention."""
    return word[:1] in _CONJUNCTIONS and len(word) > min_stem


# Compass points (جنوب الحسكة، شرقي سوريا) and the head nouns of a place phrase (بريف، بمدينة).
_COMPASS = re.compile(r"^ب?(?:شرق|غرب|شمال|جنوب)(?:ي|ا)?$")
_PLACE_HEADS = ("ريف", "مدينة", "بلدة", "قرية", "حي", "منطقة", "محافظة", "بادية", "ناحية", "قضاء", "ال")
_QUOTES = "\"'“”«»"


def is_compass(word: str) -> bool:
    """``جنوب``، ``شرقي``، ``بشمال``: a compass point (as a place phrase starts it), quotes aside."""
    return bool(_COMPASS.match(strip_marks(word.strip(_QUOTES))))


def starts_new_mention(word: str, previous: str = "") -> bool:
    """Whether a mention that touches one of the same type and starts with ``word`` is a mention of
    its own rather than the rest of the previous one (``previous``: that one's last word).

    The guidelines annotate the longest complete mention, flat: a coordination (``والميادين``), a
    compass point (``[[مدينة الشدادي]] [[جنوب الحسكة]]``) and ب + a place (``[[منطقة الجمعيات]]
    [[بمدينة البوكمال]]``، ``[[حي طي]] [[بالقامشلي]]``) each start a new one; a second compass point
    continues the first (``جنوب شرقي الميادين``)."""
    bare = strip_marks(word.strip(_QUOTES))
    if starts_with_conjunction(bare):
        return True
    if is_compass(bare):
        return not is_compass(previous)
    return bare.startswith("ب") and bare[1:].startswith(_PLACE_HEADS) and len(bare) > 3


# Adjectives that say what kind of attack a noun is (air, missile, artillery, armed, suicide), in any
# gender, number or definiteness: the guidelines keep them inside the trigger (§6.7).
# No plural ين/ان: "هجوم مسلحين" names the gunmen (ACTOR), not the kind of attack.
_ATTACK_MODIFIER = re.compile(r"^و?(?:ال)?(?:جوي|صاروخي|مدفعي|مسلح|انتحاري)(?:ه|ة|ا|تان|تين)?$")


def is_attack_modifier(word: str) -> bool:
    """``جوية``، ``الصاروخية``، ``جويتين``، ``وصاروخية``: part of the attack trigger before it
    (``[[غارات جوية وصاروخية|ATTACK]]``); intensity and nationality words are not (``مكثف``، ``الأمريكي``)."""
    return bool(_ATTACK_MODIFIER.match(strip_marks(word.strip(_QUOTES))))


# Words that make the attack noun after them feared, planned or threatened, not reported: "خوفاً من
# استهداف"، "تحسباً لأي هجمات"، "لشن هجمات"، "متوعدة بمزيد من الضربات" (guidelines: no trigger). Folded.
# Not a bare "مزيد": "سقوط مزيد من القتلى" reports deaths.
_HYPOTHETICAL_CUES = frozenset(
    "خوفا خشيه تحسبا لشن لتنفيذ بمزيد بهدف لاي متوعده متوعدا توعد يتوعد تتوعد".split()
    + "يهدد تهدد تهديد بتهديد".split()
)
_CLAUSE_END = re.compile(r"[.،,:;؛!?؟\n]")


def after_hypothetical_cue(text: str, start: int, words: int = 3) -> bool:
    """Whether one of the ``words`` words before ``text[start:]``, in its clause, is a cue of a
    feared or planned attack (``خوفاً من تكرار [القصف]``)."""
    before = _CLAUSE_END.split(text[max(0, start - 60) : start])[-1].split()[-words:]
    folded = (fold_letters(strip_marks(w.strip(_QUOTES))) for w in before)
    return any(w.removeprefix("و") in _HYPOTHETICAL_CUES for w in folded)


def is_word_char(ch: str) -> bool:
    """Letters, digits, combining marks and tatweel: what a span boundary may not split."""
    return unicodedata.category(ch)[0] in "LNM"


def splits_word(text: str, start: int, end: int) -> bool:
    """True when a span boundary falls inside a word, where no BERT tokenizer can place it."""
    return (start > 0 and is_word_char(text[start - 1]) and is_word_char(text[start])) or (
        end < len(text) and is_word_char(text[end - 1]) and is_word_char(text[end])
    )
