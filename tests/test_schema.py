"""The (trigger, argument) candidate matrix and the relation mask: derived from the schema once, and
what training rows, the predictor and the model's relation head all use."""

from __future__ import annotations

import torch
from modelkit import gold_documents, tokenizer

from ie.core.schema import SCHEMA, RelationType, Schema
from ie.model.features import Featurizer
from ie.model.modeling import JointModel, JointModelConfig
from ie.model.prediction import Predictor


def test_candidates_are_trigger_heads_with_an_allowed_relation():
    labels = SCHEMA.span_labels
    table = SCHEMA.candidate_table()
    got = {(labels[h], labels[t]) for h in range(len(labels)) for t in range(len(labels)) if table[h][t]}
    # by hand from the relation types in ie.core.schema
    attack = {"ACTOR", "PERSON", "CIVILIAN", "LOC", "FAC", "WEAPON", "TIME"}
    casualty = {"ACTOR", "PERSON", "CIVILIAN", "LOC", "FAC", "TIME", "NUM", "ATTACK"}
    want = {("ATTACK", t) for t in attack} | {(h, t) for h in ("KILLED", "INJURED") for t in casualty}
    assert got == want
    relations = SCHEMA.relation_table()
    for h in labels:
        for t in labels:
            row = relations[labels.index(h)][labels.index(t)]
            assert row == tuple(SCHEMA.allows(r, h, t) for r in SCHEMA.relation_labels)


def test_an_entity_head_is_never_a_candidate():
    """A schema whose relation starts at an entity: the relation is allowed, but only trigger heads
    are paired (the rule training and prediction always shared)."""
    relations = (
        RelationType("based_in", ("ACTOR",), ("LOC",)),
        RelationType("location", ("ATTACK",), ("LOC",)),
    )
    schema = Schema(("ACTOR", "LOC"), ("ATTACK",), relations)
    assert schema.relation_table()[0][1] == (True, False)  # ACTOR -> LOC: based_in
    assert schema.candidate_table() == ((False, False, False), (False, False, False), (False, True, False))


def test_training_rows_prediction_and_the_model_use_the_one_matrix():
    featurizer = Featurizer(tokenizer(6000), SCHEMA, max_length=128, stride=32)
    doc = gold_documents()[0]
    (enc,) = featurizer.encode([doc.text], [doc.id])
    rows, _ = featurizer.training_rows(enc, doc)
    pairs = [p for r in rows for p in r["relation_pairs"]]
    assert len(pairs) > 50
    assert all(SCHEMA.candidate_table()[p[4]][p[5]] for p in pairs)
    # the model's mask: "none" always allowed, the rest exactly the schema's relation table
    config = JointModelConfig(encoder_config={"model_type": "bert", "hidden_size": 32, "num_hidden_layers": 1,
                                              "num_attention_heads": 2, "intermediate_size": 64,
                                              "vocab_size": 6000})  # fmt: skip
    model = JointModel(config)
    allowed = torch.tensor(model._allowed_table)
    assert allowed[..., 0].all()
    assert torch.equal(allowed[..., 1:], torch.tensor(SCHEMA.relation_table()))
    predictor = Predictor(model, featurizer.tokenizer, "cpu")
    assert torch.equal(predictor._candidate, torch.tensor(SCHEMA.candidate_table()))
