"""Canonical names for mentions: clitics stripped, spelling variants folded, aliases resolved.

Gold and predicted spans keep attached clitics (``بريف ديرالزور الشرقي``, see the annotation
guidelines); events report a canonical name (``ريف دير الزور الشرقي``): the ``name`` of the entry in
the versioned gazetteer (``ie/resources/gazetteer.yaml``, :mod:`ie.text.gazetteer`) that lists the
mention among its spellings.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ie.text.arabic import fold_letters, proclitic_readings, strip_marks
from ie.text.gazetteer import DEFAULT_GAZETTEER, Gazetteer, spelling_variants

if TYPE_CHECKING:  # importlib.resources.abc is 3.11+; the annotation is never evaluated
    from importlib.resources.abc import Traversable

# the alias table is the gazetteer: one home for names and their spellings
DEFAULT_ALIASES: Traversable = DEFAULT_GAZETTEER

_QUOTES = "\"'“”«»„‟"

# Head nouns that commonly follow a proclitic in mentions (بريف، لقوات، ومقرات): a word that is one
# of these (or starts with the article) after removing و/ف and ب/ل/ك is taken as clitic + word.
_HEADS = frozenset(
    "ريف مدينة بلدة قرية حي منطقة بادية محافظة محيط قوات ميليشيا ميليشيات مليشيا مليشيات عناصر جنود "
    "قادة قاعدة قواعد مقر مقرات موقع مواقع نقاط مستودعات مخازن منصات منصة صواريخ صاروخ طائرات طائرة "
    "طيران قذائف قذيفة غارة غارات هجوم هجمات قصف ضربات ضربة مصادر حقل معبر جسر فرع قلعة مشفى "
    "جماعات جماعة مجموعات مجموعة منشآت منشأة مخزن".split()
)


def fold(text: str) -> str:
    """Spelling-insensitive form: no marks/tatweel, hamza and ta marbuta folded, single spaces."""
    text = fold_letters(strip_marks(text))
    return " ".join(text.strip(_QUOTES + " ").replace("“", "").replace("”", "").split())


def strip_clitics(text: str) -> str:
    """Remove proclitics from the first word of a mention: بريف ديرالزور → ريف ديرالزور."""
    first, sep, rest = text.partition(" ")
    conjunction = first[:1] in ("و", "ف") and len(first) > 3 and fold(first) not in _W_NOUNS
    candidates = proclitic_readings(first, conjunction=conjunction)
    for word in reversed(candidates[1:]):
        bare = fold(word)
        if word.startswith("ال") or bare in _FOLDED_HEADS or bare.removesuffix("ها") in _FOLDED_HEADS:
            return word + sep + rest
    # A bare و before an unknown word is the conjunction (ومنشآت); a bare ف is too often a root letter.
    return (candidates[1] + sep + rest) if conjunction and first[0] == "و" else text


_FOLDED_HEADS = frozenset(fold(h) for h in _HEADS)
# Nouns that begin with و themselves, so a leading و is not read as the conjunction.
_W_NOUNS = frozenset(fold(w) for w in "وادي وزارة وحدة وحدات ولاية وكالة واشنطن وسط وفد".split())


def _key(text: str) -> str:
    return fold(strip_clitics(text)).replace(" ", "")


@dataclass
class AliasTable:
    """Spelling key → canonical name, per kind of mention: actors (ACTOR, PERSON), weapons (WEAPON)
    and places (every other label), built from the gazetteer's entries and their spellings."""

    version: int
    actors: dict[str, str] = field(default_factory=dict)
    places: dict[str, str] = field(default_factory=dict)
    weapons: dict[str, str] = field(default_factory=dict)
    # canonical() results: news repeats the same few hundred names, and every span of every record
    # and event is named (about 300 calls per article). Bounded; cleared when full.
    _memo: dict[tuple[str, str], str] = field(default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def load(cls, path: str | os.PathLike[str] | Traversable = DEFAULT_ALIASES) -> AliasTable:
        """Read a gazetteer (a file path, or the package's own) and index its spellings."""
        return cls.from_gazetteer(Gazetteer.load(path))

    @classmethod
    def from_gazetteer(cls, gazetteer: Gazetteer) -> AliasTable:
        """Index every spelling of every entry (and its generated variants) by its clitic-free key.

        Keys are clitic-free (``strip_clitics``), so two spellings that differ only by what looks like a
        proclitic can collide across entries even where the gazetteer's own keys do not: that is an
        error, named like the gazetteer's.
        """
        table = cls(gazetteer.version)
        for name in ("actors", "places", "weapons"):
            index: dict[str, str] = getattr(table, name)
            for entry in gazetteer.entries(name):
                for spelling in entry.spellings:
                    for alias in spelling_variants(spelling):
                        key = _key(alias)
                        if index.get(key, entry.name) != entry.name:
                            raise ValueError(
                                f"{gazetteer.source}: {name}: {alias!r} is listed under both "
                                f"{index[key]!r} and {entry.name!r}"
                            )
                        index[key] = entry.name
        return table

    def canonical(self, text: str, label: str) -> str:
        """The canonical name of a mention; unknown names come back clitic-free and tidied.

        A known name is also found behind a proclitic that :func:`strip_clitics` cannot tell from a
        root letter on its own (بديرالزور، لقسد): the alias table decides.
        """
        section = "actors" if label in ("ACTOR", "PERSON") else "weapons" if label == "WEAPON" else "places"
        found = self._memo.get((text, section))
        if found is None:
            if len(self._memo) >= _MEMO_SIZE:
                self._memo.clear()
            found = self._memo[(text, section)] = self._canonical(text, getattr(self, section))
        return found

    def _canonical(self, text: str, index: dict[str, str]) -> str:
        stripped = strip_clitics(" ".join(text.strip(_QUOTES + " ").split()))
        for reading in (text, *_proclitic_readings(stripped)):
            found = index.get(_key(reading))
            if found is not None:
                return found
        return stripped.replace("“", "").replace("”", "")


_MEMO_SIZE = 100_000


def _proclitic_readings(text: str) -> list[str]:
    """The text with و/ف and then ب/ل/ك removed from its first word, in that order."""
    first, sep, rest = text.partition(" ")
    return [w + sep + rest for w in proclitic_readings(first)[1:]]
