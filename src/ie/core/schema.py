"""The label schema: the single source of truth for every label in the project.

The Label Studio config, the model heads, the metrics, event assembly and the HTML report all
derive their label lists (and the labeling interface and the report their label colours) from
:data:`SCHEMA`. A trained model stores the schema it was trained with in its config.json
(:meth:`Schema.to_dict`), so a model keeps working if the schema later changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Label colours, by position in :attr:`Schema.span_labels`: 14 distinct colours (Sasha Trubetskoy's
# list), so the annotator and the report reader see the same colour for a label.
PALETTE = (
    "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324",
    "#800000", "#469990", "#000075", "#bfef45", "#fabed4", "#808000",
)  # fmt: skip


@dataclass(frozen=True)
class RelationType:
    """A directed relation from a trigger (head) to an argument (tail)."""

    name: str
    heads: tuple[str, ...]
    tails: tuple[str, ...]
    description: str = ""


@dataclass(frozen=True)
class Schema:
    entity_types: tuple[str, ...]
    trigger_types: tuple[str, ...]
    relation_types: tuple[RelationType, ...]
    descriptions: dict[str, str] = field(default_factory=dict, compare=False)

    # -- span labels -------------------------------------------------------------------------
    @property
    def span_labels(self) -> tuple[str, ...]:
        """Entity and trigger labels together, in a fixed order (entities first)."""
        return self.entity_types + self.trigger_types

    @property
    def bio_labels(self) -> tuple[str, ...]:
        """IOB2 tag set of the token-classification head; index 0 is ``O``."""
        tags = ["O"]
        for label in self.span_labels:
            tags += [f"B-{label}", f"I-{label}"]
        return tuple(tags)

    def is_trigger(self, label: str) -> bool:
        return label in self.trigger_types

    def kind(self, label: str) -> str:
        """``"entity"`` or ``"trigger"``: also the Label Studio control name of the label."""
        if label in self.entity_types:
            return "entity"
        if label in self.trigger_types:
            return "trigger"
        raise KeyError(f"unknown span label {label!r}")

    def color(self, label: str) -> str:
        """The label's ``#rrggbb`` colour, one per span label: the labeling interface shows spans in
        it and the HTML report borders them with it, so both read alike."""
        if label not in self.span_labels:
            raise KeyError(f"unknown span label {label!r}")
        return PALETTE[self.span_labels.index(label) % len(PALETTE)]

    # -- relations ---------------------------------------------------------------------------
    @property
    def relation_labels(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.relation_types)

    def relation(self, name: str) -> RelationType:
        for rel in self.relation_types:
            if rel.name == name:
                return rel
        raise KeyError(f"unknown relation {name!r}")

    def allows(self, relation: str, head_label: str, tail_label: str) -> bool:
        rel = self.relation(relation)
        return head_label in rel.heads and tail_label in rel.tails

    def candidate_relations(self, head_label: str, tail_label: str) -> tuple[str, ...]:
        """Relation types that may link a span of ``head_label`` to one of ``tail_label``."""
        return tuple(r.name for r in self.relation_types if head_label in r.heads and tail_label in r.tails)

    def is_candidate_pair(self, head_label: str, tail_label: str) -> bool:
        """Does the relation head score this pair: a trigger head and a relation type allowing it."""
        return self.is_trigger(head_label) and bool(self.candidate_relations(head_label, tail_label))

    def relation_table(self) -> tuple[tuple[tuple[bool, ...], ...], ...]:
        """``[head][tail][relation]``: may that relation link the two labels (indices into
        :attr:`span_labels` and :attr:`relation_labels`). The model masks forbidden labels with it."""
        return tuple(
            tuple(tuple(h in r.heads and t in r.tails for r in self.relation_types) for t in self.span_labels)
            for h in self.span_labels
        )

    def candidate_table(self) -> tuple[tuple[bool, ...], ...]:
        """``[head][tail]``: :meth:`is_candidate_pair` by index into :attr:`span_labels`: the
        (trigger, argument) pairs that training labels and prediction scores."""
        return tuple(tuple(self.is_candidate_pair(h, t) for t in self.span_labels) for h in self.span_labels)

    # -- serialisation -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "entity_types": list(self.entity_types),
            "trigger_types": list(self.trigger_types),
            "relation_types": [
                {"name": r.name, "heads": list(r.heads), "tails": list(r.tails)} for r in self.relation_types
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Schema:
        return cls(
            entity_types=tuple(data["entity_types"]),
            trigger_types=tuple(data["trigger_types"]),
            relation_types=tuple(
                RelationType(r["name"], tuple(r["heads"]), tuple(r["tails"])) for r in data["relation_types"]
            ),
        )


_AGENTS = ("ACTOR", "PERSON")
_VICTIMS = ("ACTOR", "PERSON", "CIVILIAN")
_CASUALTY = ("KILLED", "INJURED")

SCHEMA = Schema(
    entity_types=("ACTOR", "PERSON", "CIVILIAN", "LOC", "FAC", "WEAPON", "TIME", "NUM"),
    trigger_types=("ATTACK", "KILLED", "INJURED"),
    relation_types=(
        RelationType("attacker", ("ATTACK",), _AGENTS, "who carried out the attack"),
        RelationType(
            "target",
            ("ATTACK",),
            ("ACTOR", "PERSON", "CIVILIAN", "LOC", "FAC", "WEAPON"),
            "what or whom the attack hit or aimed at",
        ),
        RelationType("location", ("ATTACK", *_CASUALTY), ("LOC", "FAC"), "where it happened"),
        RelationType("instrument", ("ATTACK",), ("WEAPON",), "weapon or platform used"),
        RelationType("time", ("ATTACK", *_CASUALTY), ("TIME",), "when it happened"),
        RelationType("victim", _CASUALTY, _VICTIMS, "who was killed or injured"),
        RelationType("count", _CASUALTY, ("NUM",), "how many were killed or injured"),
        RelationType("cause", _CASUALTY, ("ATTACK",), "the attack that caused the casualties"),
    ),
    descriptions={
        "ACTOR": "armed forces, militias, coalitions, commands, governments, groups of fighters",
        "PERSON": "named individuals",
        "CIVILIAN": "civilians, residents, children as victims",
        "LOC": "countries, provinces, cities, towns, districts, regions",
        "FAC": "bases, fields, HQs, depots, hospitals, crossings, bridges, schools used as HQs",
        "WEAPON": "rockets, drones, aircraft, artillery shells, launchers",
        "TIME": "dates and time expressions",
        "NUM": "counts of people",
        "ATTACK": "strike, shelling, raid, rocket or drone attack",
        "KILLED": "a mention of people killed",
        "INJURED": "a mention of people injured",
    },
)
