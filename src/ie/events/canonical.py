"""Canonical names for mentions: clitics stripped, spelling variants folded, aliases resolved.

Gold and predicted spans keep attached clitics (``بريف ديرالزور الشرقي``, see the annotation
guidelines); events report a canonical name (``ريف دير الزور الشرقي``) from the versioned alias table
``ie/resources/aliases.yaml``, shipped inside the package (read with :mod:`importlib.resources`, so
an installed wheel finds it as well as a source checkout).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from ie.text.arabic import proclitic_readings, strip_marks

if TYPE_CHECKING:  # importlib.resources.abc is 3.11+; the annotation is never evaluated
    from importlib.resources.abc import Traversable

# package data, not a path into the source tree: ``pip install .`` must find it too
DEFAULT_ALIASES: Traversable = resources.files("ie") / "resources" / "aliases.yaml"

_FOLD = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا", "ى": "ي", "ة": "ه", "ؤ": "و", "ئ": "ي"})
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
    text = strip_marks(text).translate(_FOLD)
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
    version: int
    actors: dict[str, str] = field(default_factory=dict)
    places: dict[str, str] = field(default_factory=dict)
    # canonical() results: news repeats the same few hundred names, and every span of every record
    # and event is named (about 300 calls per article). Bounded; cleared when full.
    _memo: dict[tuple[str, bool], str] = field(default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def load(cls, path: str | os.PathLike[str] | Traversable = DEFAULT_ALIASES) -> AliasTable:
        """Read and check a table: a file path, or the package's own (:data:`DEFAULT_ALIASES`)."""
        if isinstance(path, (str, os.PathLike)):
            path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            version = int(data["version"])
            sections = {name: data.get(name) or {} for name in ("actors", "places")}
        except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{path}: not a valid alias table ({e})") from None
        table = cls(version)
        for name, entries in sections.items():
            index: dict[str, str] = getattr(table, name)
            for canonical, aliases in entries.items():
                for alias in [canonical, *(aliases or [])]:
                    key = _key(alias)
                    if index.get(key, canonical) != canonical:
                        raise ValueError(
                            f"{path}: {name}: {alias!r} is listed under both {index[key]!r} and {canonical!r}"
                        )
                    index[key] = canonical
        return table

    def canonical(self, text: str, label: str) -> str:
        """The canonical name of a mention; unknown names come back clitic-free and tidied.

        A known name is also found behind a proclitic that :func:`strip_clitics` cannot tell from a
        root letter on its own (بديرالزور، لقسد): the alias table decides.
        """
        actor = label in ("ACTOR", "PERSON")
        found = self._memo.get((text, actor))
        if found is None:
            if len(self._memo) >= _MEMO_SIZE:
                self._memo.clear()
            found = self._memo[(text, actor)] = self._canonical(text, self.actors if actor else self.places)
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
