"""The gazetteer of the region: places, armed actors and weapons, with their spellings. One versioned table.

``ie/resources/gazetteer.yaml`` is package data (read with :mod:`importlib.resources`, so an installed
wheel finds it as well as a source checkout). Canonical names (:class:`ie.events.canonical.AliasTable`),
the gazetteer baseline and training-time augmentation all read it through :meth:`Gazetteer.load`, so
they agree on what a name is and how news spells it.

It lives in ``ie.text`` (not ``ie.core``) because its spelling variants are made with the shared
helpers of :mod:`ie.text.arabic`, and a core module may not import from ``text``.

Format (bump ``version`` whenever an entry changes: it is written into every extraction record)::

    version: 2
    places:
      - {name: دير الزور, kind: city, governorate: دير الزور, country: سوريا, aliases: [ديرالزور]}
    actors:
      - {name: قوات سوريا الديمقراطية, side: sdf, aliases: [قسد]}
    weapons:
      - {name: طائرة مسيرة, class: drone, aliases: [مسيرة, درون]}
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import yaml

from ie.text.arabic import HAMZA_FOLD, fold_letters, splits_word, strip_marks

if TYPE_CHECKING:  # importlib.resources.abc is 3.11+; the annotation is never evaluated
    from importlib.resources.abc import Traversable

__all__ = [
    "CATEGORIES",
    "DEFAULT_GAZETTEER",
    "SECTIONS",
    "Entry",
    "Gazetteer",
    "Matcher",
    "key",
    "spelling_variants",
]

# package data, not a path into the source tree: ``pip install .`` must find it too
DEFAULT_GAZETTEER: Traversable = resources.files("ie") / "resources" / "gazetteer.yaml"
# libyaml's safe loader when PyYAML has it: the same (safe) result, ten times faster on this table
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# section -> the field that holds its category
SECTIONS: dict[str, str] = {"places": "kind", "actors": "side", "weapons": "class"}
CATEGORIES: dict[str, frozenset[str]] = {
    "places": frozenset(
        "city town village district governorate oil_field gas_field base airport crossing desert river "
        "region country".split()
    ),
    "actors": frozenset(
        "coalition us sdf government russia iran_backed iraqi_state pmf isis turkey_backed israel tribal "
        "other".split()
    ),
    "weapons": frozenset(
        "drone aircraft helicopter rocket_missile artillery_mortar ied_car_bomb small_arms".split()
    ),
}
# Place kinds that the schema tags FAC (facilities) rather than LOC.
FACILITY_KINDS = frozenset({"oil_field", "gas_field", "base", "airport", "crossing"})
_ATTRIBUTES = ("governorate", "country")
# Head nouns news puts before a place name of a kind (مدينة الميادين، بلدة حطلة، حي الجورة): generated forms.
_KIND_HEADS: dict[str, tuple[str, ...]] = {
    "city": ("مدينة",),
    "town": ("بلدة", "مدينة", "ناحية"),
    "village": ("قرية", "بلدة"),
    "district": ("حي", "منطقة"),
    "desert": ("منطقة",),
    "region": ("منطقة",),
}
_ALL_HEADS = frozenset(h for heads in _KIND_HEADS.values() for h in heads)
# First words that news writes both apart and joined to the next word (دير الزور / ديرالزور).
_JOINABLE = ("دير", "أبو", "ابو")


def key(text: str) -> str:
    """The lookup key of a spelling: marks removed, letters folded (:func:`ie.text.arabic.fold_letters`),
    no spaces; two spellings with one key are the same name."""
    return "".join(fold_letters(strip_marks(text)).split())


def spelling_variants(text: str, *, article: bool = False) -> list[str]:
    """``text`` and the spellings news also writes for it: hamza seats as bare alef, ى/ي swapped at the
    end of a word, ة written ه, ``دير``/``أبو`` joined to the next word; with ``article``, also the
    first word without its ``ال`` (off by default: a bare stem is often a common word, ميادين، صور).

    All variants share one :func:`key` except the ``ال``-less ones.
    """
    text = " ".join(strip_marks(text).split())
    forms = [text]

    def add(form: str) -> None:
        if form and form not in forms:
            forms.append(form)

    for form in list(forms):
        add(form.translate(str.maketrans({k: v for k, v in HAMZA_FOLD.items() if v == "ا"})))
    for form in list(forms):
        words = form.split(" ")
        add(" ".join(w[:-1] + "ي" if w.endswith("ى") else w for w in words))
        add(" ".join(w[:-1] + "ى" if w.endswith("ي") and len(w) > 2 else w for w in words))
    for form in list(forms):
        add(" ".join(w[:-1] + "ه" if w.endswith("ة") else w for w in form.split(" ")))
    for form in list(forms):
        first, sep, rest = form.partition(" ")
        if sep and first in _JOINABLE:
            add(first + rest)
    if article:
        for form in list(forms):
            if form.startswith("ال") and len(form.partition(" ")[0]) > 4:
                add(form[2:])
    return forms


@dataclass(frozen=True)
class Entry:
    """One name of the table: its canonical ``name``, ``category`` (a place's kind, an actor's side, a
    weapon's class), ``attributes`` (``governorate``, ``country`` where given) and written ``aliases``."""

    section: str
    name: str
    category: str
    aliases: tuple[str, ...] = ()
    attributes: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), hash=False)

    @property
    def spellings(self) -> tuple[str, ...]:
        """The name and its aliases as written in the table, then each with the head nouns news puts
        before a place of its kind (``بلدة حطلة`` for the village ``حطلة``)."""
        written = (self.name, *self.aliases)
        heads = _KIND_HEADS.get(self.category, ()) if self.section == "places" else ()
        headed = [f"{h} {s}" for s in written if s.partition(" ")[0] not in _ALL_HEADS for h in heads]
        return tuple(dict.fromkeys([*written, *headed]))

    @property
    def label(self) -> str:
        """The schema span label of a mention of this entry: LOC or FAC for places, ACTOR, WEAPON."""
        if self.section == "places":
            return "FAC" if self.category in FACILITY_KINDS else "LOC"
        return "ACTOR" if self.section == "actors" else "WEAPON"


@dataclass(frozen=True)
class Gazetteer:
    version: int
    places: tuple[Entry, ...] = ()
    actors: tuple[Entry, ...] = ()
    weapons: tuple[Entry, ...] = ()
    source: str = ""

    @classmethod
    def load(cls, path: str | os.PathLike[str] | Traversable | None = None) -> Gazetteer:
        """Read and check a table (a file path, or the package's own :data:`DEFAULT_GAZETTEER`).

        Raises ``ValueError`` naming the file, section and entry for anything malformed: a missing or
        unknown category, a spelling listed under two names of one section.
        """
        path = DEFAULT_GAZETTEER if path is None else path
        if isinstance(path, (str, os.PathLike)):
            path = Path(path)
        try:
            data = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)
            version = int(data["version"])
            raw = {name: data.get(name) or [] for name in SECTIONS}
        except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError, AttributeError) as e:
            raise ValueError(f"{path}: not a valid gazetteer ({e})") from None
        sections = {name: tuple(_entry(path, name, i, item) for i, item in enumerate(items))
                    for name, items in raw.items()}  # fmt: skip
        table = cls(version, source=str(path), **sections)
        for name in SECTIONS:
            table._index(name)  # a spelling under two names raises here, at load time
        return table

    def entries(self, section: str) -> tuple[Entry, ...]:
        if section not in SECTIONS:
            raise KeyError(f"unknown gazetteer section {section!r} (one of {', '.join(SECTIONS)})")
        return getattr(self, section)

    def __iter__(self) -> Iterator[Entry]:
        for section in SECTIONS:
            yield from self.entries(section)

    def surface_forms(self, section: str, *, article: bool = False) -> dict[str, Entry]:
        """Every spelling of every entry of ``section`` (written ones and :func:`spelling_variants`),
        each mapped to its entry; longest first, so a matcher that takes the first hit takes the
        longest name."""
        forms: dict[str, Entry] = {}
        for entry in self.entries(section):
            for spelling in entry.spellings:
                for form in spelling_variants(spelling, article=article):
                    forms.setdefault(form, entry)
        return dict(sorted(forms.items(), key=lambda kv: (-len(kv[0]), kv[0])))

    def lookup(self, section: str) -> dict[str, Entry]:
        """:func:`key` of every spelling of ``section`` → its entry."""
        return self._index(section)

    def _index(self, section: str) -> dict[str, Entry]:
        index: dict[str, Entry] = {}
        names: set[str] = set()
        for entry in self.entries(section):
            if entry.name in names:
                raise ValueError(f"{self.source}: {section}: {entry.name!r} has two entries")
            names.add(entry.name)
            for spelling in entry.spellings:
                k = key(spelling)
                other = index.setdefault(k, entry)
                if other.name != entry.name:
                    raise ValueError(
                        f"{self.source}: {section}: {spelling!r} is listed under both {other.name!r} "
                        f"and {entry.name!r}"
                    )
        return index


# Proclitic strings a name may carry inside its word: conjunction, then preposition (ie.text.arabic).
_PREFIXES = frozenset(c + p for c in ("", "و", "ف") for p in ("", "ب", "ل", "ك"))


@dataclass(frozen=True)
class Matcher:
    """Exact matches of a gazetteer's spellings in a text, as the guidelines annotate a mention.

    Every spelling (:meth:`Gazetteer.surface_forms`) is looked up behind the proclitics و/ف + ب/ل/ك
    (and لل for ال: للميادين), whole words only, longest first, never overlapping a match already
    placed; the proclitics stay inside the match (guidelines §4). Labels are the schema's
    (:attr:`Entry.label`). The gazetteer baseline and the model's gazetteer prior both match with it.
    """

    forms: Mapping[str, str]  # surface form -> span label, longest first

    @classmethod
    def from_gazetteer(cls, gazetteer: Gazetteer | None = None) -> Matcher:
        gazetteer = gazetteer or Gazetteer.load()
        forms: dict[str, str] = {}
        for section in SECTIONS:
            for form, entry in gazetteer.surface_forms(section).items():
                forms.setdefault(form, entry.label)
        return cls(MappingProxyType(dict(sorted(forms.items(), key=lambda kv: (-len(kv[0]), kv[0])))))

    def find(self, text: str) -> list[tuple[int, int, str]]:
        """``(start, end, label)`` of every match, in text order."""
        taken = bytearray(len(text))
        found: list[tuple[int, int, str]] = []
        for form, label in self.forms.items():
            needles = [(form, _PREFIXES)]
            if form.startswith("ال") and len(form) > 3:  # للميادين: ل + الميادين
                needles.append(("لل" + form[2:], frozenset({"", "و", "ف"})))
            for needle, prefixes in needles:
                at = text.find(needle)
                while at != -1:
                    start = at
                    while start > 0 and text[start - 1].isalpha() and at - start < 3:
                        start -= 1
                    end = at + len(needle)
                    if (
                        text[start:at] in prefixes
                        and not (start > 0 and text[start - 1].isalpha())
                        and not any(taken[start:end])
                        and not splits_word(text, start, end)
                    ):
                        found.append((start, end, label))
                        taken[start:end] = b"\x01" * (end - start)
                    at = text.find(needle, at + 1)
        return sorted(found)


def _entry(path: Any, section: str, i: int, item: Any) -> Entry:
    where = f"{path}: {section}[{i}]"
    if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"].strip():
        raise ValueError(f"{where}: an entry needs a name ({item!r})")
    field_name = SECTIONS[section]
    category = item.get(field_name)
    where = f"{where} ({item['name']})"
    if category not in CATEGORIES[section]:
        raise ValueError(
            f"{where}: {field_name} {category!r} is not one of {', '.join(sorted(CATEGORIES[section]))}"
        )
    aliases = item.get("aliases") or []
    if not isinstance(aliases, list) or not all(isinstance(a, str) and a.strip() for a in aliases):
        raise ValueError(f"{where}: aliases must be a list of names")
    unknown = set(item) - {"name", field_name, "aliases", *_ATTRIBUTES}
    if unknown:
        raise ValueError(f"{where}: unknown fields {', '.join(sorted(unknown))}")
    attributes = MappingProxyType({a: str(item[a]) for a in _ATTRIBUTES if item.get(a)})
    return Entry(section, item["name"].strip(), category, tuple(a.strip() for a in aliases), attributes)
