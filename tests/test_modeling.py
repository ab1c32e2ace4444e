"""The joint model: transformers contract (config, safetensors, Auto classes), heads, model card."""

from __future__ import annotations

import json
import logging
import math
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import torch
from modelkit import CPU_TINY, encoder_dir, gold_documents, tokenizer
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModel, AutoModelForTokenClassification, pipeline

from ie.core.schema import SCHEMA
from ie.model.features import Featurizer, collate
from ie.model.modeling import FastDropout, JointModel, JointModelConfig, JointModelOutput, model_card
from ie.model.prediction import Predictor
from ie.text.normalize import normalize
from ie.training.config import load_config
from ie.training.loop import build_model


def _batch(model: JointModel) -> dict[str, torch.Tensor]:
    f = Featurizer(tokenizer(), SCHEMA, 128, 32)
    doc = gold_documents()[4]
    (enc,) = f.encode([doc.text])
    rows, _ = f.training_rows(enc, doc)
    batch = collate(rows[:3], tokenizer().pad_token_id)
    assert batch["relation_pairs"].shape[0] > 10
    return batch


def test_save_and_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = JointModel.from_encoder(encoder_dir(), schema=SCHEMA).eval()
    model.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "ie-joint" and config["architectures"] == ["JointModel"]
    assert [config["id2label"][str(i)] for i in range(len(SCHEMA.bio_labels))] == list(SCHEMA.bio_labels)
    assert config["label2id"] == {t: i for i, t in enumerate(SCHEMA.bio_labels)}
    assert config["relation_labels"] == ["none", *SCHEMA.relation_labels]
    assert config["schema"] == SCHEMA.to_dict()
    assert config["encoder_config"]["model_type"] == "bert"

    loaded = JointModel.from_pretrained(tmp_path).eval()
    assert loaded.backbone.config._attn_implementation == model.backbone.config._attn_implementation
    batch = _batch(model)
    with torch.inference_mode():
        a, b = model(**batch), loaded(**batch)
    assert torch.equal(a.logits, b.logits)
    assert torch.equal(a.relation_logits, b.relation_logits)
    assert torch.equal(a.loss, b.loss)
    # No remote code: the Auto classes know the model once ie.model.modeling is imported.
    assert isinstance(AutoConfig.from_pretrained(tmp_path), JointModelConfig)
    assert isinstance(AutoModel.from_pretrained(tmp_path, trust_remote_code=False), JointModel)


def test_from_encoder_loads_the_checkpoint_like_a_hub_id():
    """configs/arabert.yaml passes a hub id; a local dir in hub layout takes the very same path."""
    model = JointModel.from_encoder(str(encoder_dir()), schema=SCHEMA)
    saved = load_file(encoder_dir() / "model.safetensors")
    state = model.backbone.state_dict()
    # every encoder weight comes from the checkpoint; only the (unused) pooler is left behind
    assert set(state) == set(saved) - {"pooler.dense.weight", "pooler.dense.bias"}
    for name, tensor in state.items():
        assert torch.equal(tensor, saved[name]), name
    assert model.config.encoder_config._name_or_path == str(encoder_dir())


def test_training_loss_reaches_every_parameter():
    torch.manual_seed(0)
    model = JointModel.from_encoder(encoder_dir(), schema=SCHEMA).train()
    batch = _batch(model)
    out = model(**batch)
    assert torch.isfinite(out.loss) and out.token_loss > 0 and out.relation_loss > 0
    out.loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    # a batch without any candidate pair still touches the relation head (data-parallel safe)
    model.zero_grad()
    batch["relation_pairs"] = batch["relation_pairs"][:0]
    batch["relation_labels"] = batch["relation_labels"][:0]
    model(**batch).loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_relation_head_never_emits_a_label_the_schema_forbids():
    torch.manual_seed(0)
    model = JointModel.from_encoder(encoder_dir(), schema=SCHEMA).eval()
    n = len(SCHEMA.span_labels)
    heads, tails = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    pairs = torch.stack(
        [torch.zeros(n * n, dtype=torch.long), torch.full((n * n,), 1), torch.full((n * n,), 3),
         torch.full((n * n,), 5), torch.full((n * n,), 6), heads.flatten(), tails.flatten()], dim=-1
    )  # fmt: skip
    hidden = torch.randn(1, 10, model.config.encoder_config.hidden_size) * 50
    with torch.inference_mode():
        probs = model.relation_logits(hidden, pairs).softmax(-1)
    for (h, t), p in zip(zip(heads.flatten(), tails.flatten(), strict=True), probs, strict=True):
        head, tail = SCHEMA.span_labels[h], SCHEMA.span_labels[t]
        for r, label in enumerate(model.config.relation_labels[1:], start=1):
            if not SCHEMA.allows(label, head, tail):
                assert p[r] == 0.0, (head, label, tail)


def _per_pair_reference(model: JointModel, hidden: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """The relation head as its definition reads: one concatenated feature row per pair, then the MLP."""
    row, hs, he, ts, te, hl, tl = pairs.unbind(-1)
    x = hidden.float()

    def mean(start: torch.Tensor, end: torch.Tensor) -> torch.Tensor:
        rows = [
            x[r, a:b].mean(0) if b > a else x.new_zeros(x.size(-1))
            for r, a, b in zip(row, start, end, strict=True)
        ]
        return torch.stack(rows)

    low, high = torch.minimum(he, te), torch.maximum(hs, ts)
    distance = ts - hs
    bucket = [
        0 if d == 0 else min(int(math.log2(abs(d))) + 1, model.config.distance_buckets) for d in distance
    ]
    bucket = torch.sign(distance) * torch.tensor(bucket) + model.config.distance_buckets
    features = torch.cat(
        [x[row, hs], x[row, he - 1], mean(hs, he), x[row, ts], x[row, te - 1], mean(ts, te), mean(low, high),
         model.span_label_embedding(hl), model.span_label_embedding(tl), model.distance_embedding(bucket)],
        dim=-1,
    )  # fmt: skip
    return model.relation_classifier(features)


def test_relation_head_computes_the_per_pair_definition():
    """The head projects each distinct span once instead of building one feature row per pair; it must
    be the same function as concatenating the pair features and applying the MLP."""
    torch.manual_seed(0)
    model = JointModel.from_encoder(encoder_dir(), schema=SCHEMA).eval()
    batch = _batch(model)
    pairs = batch["relation_pairs"]
    # spans touching each other and the window edges, heads after tails, a span next to itself
    edge = pairs[:3].clone()
    edge[:, 1:5] = torch.tensor([[1, 2, 2, 3], [5, 9, 1, 5], [3, 4, 3, 4]])
    pairs = torch.cat([pairs, edge])
    with torch.inference_mode():
        hidden = model.encode(batch["input_ids"], batch["attention_mask"])
        fast = model.relation_logits(hidden, pairs)
        reference = _per_pair_reference(model, hidden, pairs)
    # masked: exactly the relation labels the schema forbids between the pair's span labels
    forbidden = fast == torch.finfo(fast.dtype).min
    names, relations = SCHEMA.span_labels, ("none", *SCHEMA.relation_labels)
    expected = torch.tensor(
        [[rel != "none" and not SCHEMA.allows(rel, names[h], names[t]) for rel in relations]
         for h, t in pairs[:, 5:7].tolist()]
    )  # fmt: skip
    assert torch.equal(forbidden, expected) and expected.any() and not expected.all()  # both kinds compared
    assert torch.allclose(fast[~forbidden], reference[~forbidden], atol=1e-5, rtol=1e-4)

    # ... and the same gradients, for the hidden states and for every weight of the head
    hidden = hidden.clone().requires_grad_()
    weights = [model.span_label_embedding.weight, model.distance_embedding.weight]
    weights += list(model.relation_classifier.parameters())
    cotangent = torch.randn(fast.shape).masked_fill(forbidden, 0.0)
    grads = []
    for head in (model.relation_logits, lambda h, p: _per_pair_reference(model, h, p)):
        out = head(hidden, pairs).masked_fill(forbidden, 0.0)
        grads.append(torch.autograd.grad(out, [hidden, *weights], cotangent))
    for name, a, b in zip(["hidden", "labels", "distances", "w1", "b1", "w2", "b2"], *grads, strict=True):
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-4), name


def _dropout_types(model: torch.nn.Module) -> set[type]:
    return {type(m) for m in model.modules() if isinstance(m, torch.nn.Dropout)}


def test_fast_dropout_is_the_trainers_choice_not_the_models(tmp_path):
    """The trainer's model drops out with FastDropout everywhere; a model loaded for use (or built by
    from_encoder/from_config) has plain torch dropout."""
    cfg = load_config(CPU_TINY, ["--output_dir", str(tmp_path / "out")])
    trained = build_model(cfg, encoder_dir())
    dropouts = [m for m in trained.modules() if isinstance(m, torch.nn.Dropout)]
    # the encoder's own dropout modules too (and one per head); none is left on the slow path
    assert len(dropouts) > 2 and _dropout_types(trained) == {FastDropout}
    trained.save_pretrained(tmp_path / "model")
    assert _dropout_types(JointModel.from_pretrained(tmp_path / "model")) == {torch.nn.Dropout}
    assert _dropout_types(AutoModel.from_pretrained(tmp_path / "model")) == {torch.nn.Dropout}
    assert _dropout_types(JointModel.from_encoder(encoder_dir(), schema=SCHEMA)) == {torch.nn.Dropout}


def test_fast_dropout_drops_at_rate_p_keeps_the_expectation_and_backpropagates_its_mask():
    torch.manual_seed(0)

    drop = FastDropout(0.1).train()
    x = torch.full((1000, 1000), 2.0, requires_grad=True)
    y = drop(x)
    kept = y != 0
    rate = 1 - kept.float().mean().item()
    assert abs(rate - 0.1) < 5 * math.sqrt(0.1 * 0.9 / x.numel())  # 5 sigma
    assert torch.allclose(y[kept], torch.tensor(2.0 / (1 - 6554 / 65536)))
    assert abs(y.mean().item() - 2.0) < 0.01
    y.sum().backward()
    assert torch.equal(x.grad != 0, kept) and torch.allclose(x.grad[kept], y[kept] / 2.0)
    assert not torch.equal(drop(x), drop(x))  # a fresh mask per call
    # the four 16-bit lanes of every random draw are all used: no position is never (or always) dropped
    lanes = (torch.stack([drop(torch.ones(4000, 4)) for _ in range(50)]) == 0).float().mean((0, 1))
    assert ((lanes > 0.07) & (lanes < 0.13)).all(), lanes

    drop.eval()
    assert torch.equal(drop(x), x)
    assert torch.equal(FastDropout(0.0).train()(x), x)


def test_transformers_contract_auto_classes_kwargs_and_outputs(tmp_path):
    """Loads with the Auto classes (no remote code), takes the usual keyword arguments on to the
    encoder, returns ``logits`` (+ relation logits), honours ``attn_implementation`` and dtype."""
    torch.manual_seed(0)
    JointModel.from_encoder(encoder_dir(), schema=SCHEMA).save_pretrained(tmp_path)
    default = AutoModel.from_pretrained(tmp_path, trust_remote_code=False).eval()
    model = AutoModel.from_pretrained(tmp_path, attn_implementation="eager").eval()
    assert isinstance(model, JointModel)
    assert model.config._attn_implementation == "eager"
    assert model.config.encoder_config._attn_implementation == "eager"
    assert model.backbone.config._attn_implementation == "eager"
    assert default.backbone.config._attn_implementation != "eager"
    tagger = AutoModelForTokenClassification.from_pretrained(tmp_path, dtype=torch.bfloat16)
    assert isinstance(tagger, JointModel) and tagger.backbone.embeddings.word_embeddings.weight.dtype == (
        torch.bfloat16
    )

    batch = _batch(model)
    layers = model.config.encoder_config.num_hidden_layers
    with torch.inference_mode():
        out = model(**batch, output_hidden_states=True, output_attentions=True)
        plain = default(**batch)
        as_tuple = model(**batch, return_dict=False)
    assert isinstance(out, JointModelOutput) and "token_logits" not in out
    assert out.logits.shape == (*batch["input_ids"].shape, len(SCHEMA.bio_labels))
    assert out.relation_logits.shape == (len(batch["relation_pairs"]), len(model.config.relation_labels))
    assert len(out.hidden_states) == layers + 1 and torch.equal(out.hidden_states[-1], out.last_hidden_state)
    assert len(out.attentions) == layers and out.attentions[0].shape[-1] == batch["input_ids"].shape[1]
    assert plain.hidden_states is None and plain.attentions is None
    assert torch.allclose(out.logits, plain.logits, atol=1e-5)  # eager and sdpa agree
    assert isinstance(as_tuple, tuple) and torch.equal(as_tuple[0], out.loss)
    assert torch.equal(as_tuple[1], out.logits) and torch.equal(as_tuple[2], out.relation_logits)
    # output flags set on the model's own config reach the encoder too
    model.config.output_hidden_states = True
    with torch.inference_mode():
        assert len(model(input_ids=batch["input_ids"][:1]).hidden_states) == layers + 1


def test_token_classification_pipeline_tags_entities_and_triggers(tiny_model):
    """``pipeline("token-classification")`` (what the model card's pipeline_tag promises) runs on a
    trained model and finds the spans the package's own predictor finds when it decodes as the
    pipeline does (each word's most probable tag, no merging; the default decoding differs on purpose:
    tests/test_features.py)."""
    card = model_card(AutoConfig.from_pretrained(tiny_model))
    assert "pipeline_tag: token-classification" in card and 'pipeline("token-classification"' in card
    tagger = pipeline(
        "token-classification", model=str(tiny_model), aggregation_strategy="first", device="cpu"
    )
    doc = min(gold_documents(), key=lambda d: len(d.text))
    text = normalize(doc.text[: doc.text.index(".", 300) + 1]).text  # one window: no stride involved
    found = {(e["entity_group"], e["start"], e["end"]) for e in tagger(text)}
    predictor = Predictor.from_pretrained(
        tiny_model, device="cpu", decoding="greedy", merge_adjacent=False, min_span_score=0.0,
        gazetteer_weight=0.0, drop_hypothetical=False,
    )  # fmt: skip
    predicted = predictor.predict([text])[0].spans
    expected = {(s.label, s.start, s.end) for s in predicted}
    labels = {label for label, _, _ in found}
    assert labels & set(SCHEMA.entity_types) and labels & set(SCHEMA.trigger_types), found
    assert found == expected and len(found) > 5, found ^ expected


def _encoder_copy(tmp_path, drop: str | None = None):
    target = tmp_path / "encoder"
    shutil.copytree(encoder_dir(), target)
    if drop:
        weights = load_file(target / "model.safetensors")
        del weights[drop]
        save_file(weights, target / "model.safetensors", metadata={"format": "pt"})
    return target


@contextmanager
def _records(logger: logging.Logger, level: int | None = None) -> Iterator[list[logging.LogRecord]]:
    """Every record ``logger``'s handlers would see (at ``level``, or at its level as it is)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    before = logger.level
    logger.addHandler(handler)
    if level is not None:
        logger.setLevel(level)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(before)


def test_encoder_load_report_is_debug_output_and_real_mismatches_still_warn(tmp_path, caplog):
    """The pooler weights an encoder checkpoint carries are left out on purpose: transformers' key
    table about them is a DEBUG record, not a warning on every run; a weight really missing is."""
    loading = logging.getLogger("transformers.modeling_utils")
    assert not loading.isEnabledFor(logging.INFO)  # transformers' default verbosity: warnings
    with _records(loading) as records:
        JointModel.from_encoder(encoder_dir(), schema=SCHEMA)
    assert not [r for r in records if "LOAD REPORT" in r.getMessage()]
    assert loading.filters == []  # the demotion lasted only as long as the load

    with _records(loading, logging.DEBUG) as records:
        JointModel.from_encoder(encoder_dir(), schema=SCHEMA)
    reports = [r for r in records if "LOAD REPORT" in r.getMessage()]
    assert len(reports) == 1 and reports[0].levelno == logging.DEBUG and "pooler" in reports[0].getMessage()

    broken = _encoder_copy(tmp_path, drop="encoder.layer.0.output.dense.weight")
    with caplog.at_level(logging.WARNING, logger="ie.model.modeling"):
        JointModel.from_encoder(broken, schema=SCHEMA)
    assert any("missing: encoder.layer.0.output.dense.weight" in r.getMessage() for r in caplog.records)


def test_config_rejects_label_maps_that_do_not_match_its_schema():
    with pytest.raises(ValueError, match="id2label"):
        JointModelConfig(id2label={0: "O", 1: "B-X", 2: "I-X"})


def test_model_card_carries_training_data_config_and_figures():
    model = JointModel.from_encoder(encoder_dir(), schema=SCHEMA)
    card = model_card(
        model.config,
        {"training data": "data/annotations/seeds.json", "epochs": 20},
        {"entity_f1": "0.9876", "relation_f1": "0.9100"},
    )
    assert card.startswith("---\nlanguage: ar\n")
    assert "data/annotations/seeds.json" in card and "| relation_f1 | 0.9100 |" in card
    for label in (*SCHEMA.span_labels, *SCHEMA.relation_labels):
        assert label in card
