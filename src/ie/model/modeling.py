"""The joint model: one encoder pass feeds a BIO tagger for entities+triggers and a relation head.

:class:`JointModel` wraps any BERT-family encoder loaded with ``AutoModel`` and follows the
transformers contract: ``save_pretrained``/``from_pretrained`` with safetensors, a config.json
carrying the BIO label maps, the relation labels and the whole schema (so a saved model keeps
working if :data:`ie.core.schema.SCHEMA` later changes), and no remote code: the config and model are
registered with ``AutoConfig``, ``AutoModel`` and ``AutoModelForTokenClassification`` when this module
is imported (``import ie`` imports it), the way transformers registers its own models. ``forward``
takes the usual keyword arguments (``output_hidden_states``, ``output_attentions``, ``return_dict``,
...) on to the encoder and returns a :class:`JointModelOutput` whose ``logits`` are the BIO tag logits,
so the ``token-classification`` pipeline tags entities and triggers. The encoder config is a
sub-config: ``from_pretrained(..., attn_implementation=...)`` reaches the encoder.

The relation head scores candidate (trigger, argument) pairs. A pair is represented by the first,
last and mean hidden states of both spans, the mean of the tokens between them, both span labels
and their bucketed signed distance; relation labels the schema forbids for the pair's label types
are masked out, so the head can never emit an invalid relation.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForTokenClassification,
    PretrainedConfig,
    PreTrainedModel,
)
from transformers.utils import ModelOutput
from transformers.utils.generic import can_return_tuple

from ie.core.schema import SCHEMA, Schema
from ie.model.features import IGNORE_INDEX, NO_RELATION

MODEL_TYPE = "ie-joint"


class JointModelConfig(PretrainedConfig):
    """Encoder config + schema + head sizes. ``id2label``/``label2id`` are the BIO tags of the tagger."""

    model_type = MODEL_TYPE
    # The encoder config is a sub-config: from_pretrained(attn_implementation=..., dtype=...) and
    # set_attn_implementation() reach it. (A plain class attribute: every transformers 5 release reads
    # ``sub_configs``; later ones derive it from ``sub_configs_defaults``, which 5.0 does not have.)
    sub_configs = {"encoder_config": AutoConfig}

    def __init__(
        self,
        encoder_config: PretrainedConfig | dict[str, Any] | None = None,
        schema: dict[str, Any] | None = None,
        relation_labels: list[str] | None = None,
        label_embedding_dim: int = 32,
        distance_embedding_dim: int = 32,
        distance_buckets: int = 10,
        relation_hidden_size: int = 512,
        classifier_dropout: float = 0.1,
        relation_loss_weight: float = 1.0,
        window_length: int = 512,
        window_stride: int = 128,
        normalizer: str = "arabert-v02",
        **kwargs: Any,
    ):
        if encoder_config is None:
            encoder_config = {"model_type": "bert"}
        if isinstance(encoder_config, Mapping):
            fields = dict(encoder_config)
            encoder_config = AutoConfig.for_model(fields.pop("model_type", "bert"), **fields)
        self.encoder_config = encoder_config
        schema_obj = Schema.from_dict(schema) if schema is not None else SCHEMA
        self.schema = schema_obj.to_dict()
        tags = list(schema_obj.bio_labels)
        id2label = kwargs.pop("id2label", None) or dict(enumerate(tags))
        if [id2label[k] for k in sorted(id2label, key=int)] != tags:
            raise ValueError("id2label does not match the BIO tags of the schema stored in this config")
        kwargs["id2label"] = {int(k): v for k, v in id2label.items()}
        kwargs["label2id"] = {v: int(k) for k, v in id2label.items()}
        self.span_labels = list(schema_obj.span_labels)
        self.relation_labels = list(relation_labels or (NO_RELATION, *schema_obj.relation_labels))
        if self.relation_labels[0] != NO_RELATION or self.relation_labels[1:] != list(
            schema_obj.relation_labels
        ):
            raise ValueError(
                f"relation_labels must be {NO_RELATION!r} followed by the schema's relation labels"
            )
        self.label_embedding_dim = label_embedding_dim
        self.distance_embedding_dim = distance_embedding_dim
        self.distance_buckets = distance_buckets
        self.relation_hidden_size = relation_hidden_size
        self.classifier_dropout = classifier_dropout
        self.relation_loss_weight = relation_loss_weight
        self.window_length = window_length
        self.window_stride = window_stride
        self.normalizer = normalizer
        self.initializer_range = getattr(encoder_config, "initializer_range", 0.02)
        super().__init__(**kwargs)

    @property
    def schema_obj(self) -> Schema:
        return Schema.from_dict(self.schema)


@dataclass
class JointModelOutput(ModelOutput):
    """What :meth:`JointModel.forward` returns; ``logits`` are the BIO tag logits ``[B, L, tags]``
    (the name every token classifier uses), ``relation_logits`` one row per candidate pair ``[P, rel]``.
    ``hidden_states``/``attentions`` are the encoder's, when asked for."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    relation_logits: torch.Tensor | None = None
    token_loss: torch.Tensor | None = None
    relation_loss: torch.Tensor | None = None
    last_hidden_state: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


_LANES = 1 << 16


class FastDropout(nn.Dropout):
    """``nn.Dropout`` with a mask that costs a quarter of a random draw per element on CPU.

    torch's CPU ``bernoulli_`` draws one number per element at about 8 ns each: 15-25 % of a training
    step of the CPU-sized model (bench/profile_train.py). Here one 64-bit draw yields four 16-bit lanes; an
    element is dropped when its lane falls in the lowest ``round(p x 65536)`` values, and kept ones
    are scaled by the inverse of that realised keep rate, so the expectation stays exact (``p`` is
    realised to within 1/65536). Off CPU (CUDA dropout is already a fused kernel) and in eval it is
    plain ``nn.Dropout``. It holds no parameters: checkpoints do not change.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or not 0 < self.p < 1 or x.device.type != "cpu" or self.inplace:
            return super().forward(x)
        n, dropped = x.numel(), min(max(round(self.p * _LANES), 1), _LANES - 1)
        lanes = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-(2**63), None).view(torch.int16)
        keep = lanes[:n].view(x.shape) >= dropped - _LANES // 2
        return x * keep * (_LANES / (_LANES - dropped))


def use_fast_dropout(model: nn.Module) -> nn.Module:
    """Every plain ``nn.Dropout`` of ``model`` (the encoder's included) becomes a :class:`FastDropout`.

    A training-speed measure, applied by the trainer (:func:`ie.training.loop.build_model`): a model loaded
    with ``from_pretrained`` keeps plain torch dropout. Returns ``model``."""
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if type(child) is nn.Dropout:
                setattr(parent, name, FastDropout(child.p))
    return model


class _DemoteLoadReport(logging.Filter):
    """Turns transformers' "LOAD REPORT" warning, from one thread, into a DEBUG record."""

    def __init__(self, logger: logging.Logger):
        super().__init__()
        self.logger, self.thread = logger, threading.get_ident()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.thread != self.thread or "LOAD REPORT" not in str(record.msg):
            return True
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        return self.logger.isEnabledFor(logging.DEBUG)


@contextmanager
def _load_report_at_debug() -> Iterator[None]:
    """While loading the encoder, its key report is logged at DEBUG, not WARNING.

    Scoped: a filter on transformers' loading logger for the duration of the call, removed after it
    (verbosity and handlers are left alone); reports from other threads pass unchanged."""
    logger = logging.getLogger("transformers.modeling_utils")
    demote = _DemoteLoadReport(logger)
    logger.addFilter(demote)
    try:
        yield
    finally:
        logger.removeFilter(demote)


def _without_pooler(factory: Any, *args: Any, **kwargs: Any) -> PreTrainedModel:
    """Build/load the encoder without its pooler: unused parameters would break DDP."""
    try:
        model = factory(*args, add_pooling_layer=False, **kwargs)
    except TypeError:  # encoders without a pooler argument (DistilBERT, ELECTRA, ...)
        model = factory(*args, **kwargs)
    if getattr(model, "pooler", None) is not None:
        model.pooler = None
    return model


def _load_encoder(name_or_path: str, **kwargs: Any) -> PreTrainedModel:
    """The pre-trained encoder without its pooler. Leaving the checkpoint's pooler weights unused is
    the plan, so transformers' key report (a table, at WARNING, on every training run) goes to DEBUG;
    anything else amiss (missing or mis-sized weights) is still a one-line warning."""
    with _load_report_at_debug():
        encoder, info = _without_pooler(
            AutoModel.from_pretrained, name_or_path, output_loading_info=True, **kwargs
        )
    unexpected = [k for k in info.get("unexpected_keys", ()) if not k.startswith("pooler.")]
    problems = {
        "missing": sorted(info.get("missing_keys", ())),
        "unexpected": sorted(unexpected),
        "mismatched": sorted(str(k) for k in info.get("mismatched_keys", ())),
    }
    if any(problems.values()):
        found = "; ".join(f"{kind}: {', '.join(keys[:5])}" for kind, keys in problems.items() if keys)
        logging.getLogger(__name__).warning(
            "encoder %s: weights do not match its architecture (%s)", name_or_path, found
        )
    return encoder


class JointModel(PreTrainedModel):
    config_class = JointModelConfig
    base_model_prefix = "backbone"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_attention_backend = True

    def __init__(self, config: JointModelConfig):
        super().__init__(config)
        self.backbone = _without_pooler(AutoModel.from_config, config.encoder_config)
        hidden = config.encoder_config.hidden_size
        n_span, n_rel = len(config.span_labels), len(config.relation_labels)
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.token_classifier = nn.Linear(hidden, config.num_labels)
        self.span_label_embedding = nn.Embedding(n_span, config.label_embedding_dim)
        self.distance_embedding = nn.Embedding(2 * config.distance_buckets + 1, config.distance_embedding_dim)
        pair_dim = 7 * hidden + 2 * config.label_embedding_dim + config.distance_embedding_dim
        self.relation_classifier = nn.Sequential(
            nn.Linear(pair_dim, config.relation_hidden_size),
            nn.GELU(),
            nn.Dropout(config.classifier_dropout),
            nn.Linear(config.relation_hidden_size, n_rel),
        )
        # [head label, tail label, relation label]: "none" (index 0) always, the others as the schema says
        self._allowed_table = [[[True, *rels] for rels in row] for row in config.schema_obj.relation_table()]
        self._allowed: dict[torch.device, torch.Tensor] = {}
        self.post_init()

    @classmethod
    def from_encoder(
        cls, name_or_path: str | os.PathLike[str], schema: Schema = SCHEMA, **config_kwargs: Any
    ) -> JointModel:
        """Fresh heads over a pre-trained encoder: a hub id or a local dir, through the same
        ``AutoModel.from_pretrained`` call."""
        encoder = _load_encoder(str(name_or_path))
        config = JointModelConfig(encoder_config=encoder.config, schema=schema.to_dict(), **config_kwargs)
        model = cls(config)
        model.backbone = encoder
        return model

    # -- pieces, used separately at inference ------------------------------------------------
    def encode(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The encoder's last hidden states ``[B, L, H]``."""
        return self._encoder(input_ids, attention_mask, token_type_ids).last_hidden_state

    def _encoder(
        self,
        input_ids: torch.Tensor | None,
        attention_mask: torch.Tensor | None,
        token_type_ids: torch.Tensor | None,
        **kwargs: Any,
    ) -> Any:
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        if attention_mask is not None and attention_mask.device.type == "cpu" and bool(attention_mask.all()):
            # No padding: without a mask attention takes its fastest kernel (checked on CPU tensors
            # only; on an accelerator the check would cost a device sync per batch).
            attention_mask = None
        return self.backbone(input_ids=input_ids, attention_mask=attention_mask, return_dict=True, **kwargs)

    def tag_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """BIO tag logits ``[B, L, tags]`` from :meth:`encode`'s hidden states."""
        return self.token_classifier(self.dropout(hidden))

    def relation_logits(self, hidden: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
        """Logits ``[P, relation labels]`` for pairs ``[P, 7]`` = (row, head start, head end, tail start,
        tail end, head label id, tail label id); token ends are exclusive. Forbidden labels get -inf-ish."""
        return self._relation_logits(self.dropout(hidden), pairs)

    def _relation_logits(self, hidden: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
        """:meth:`relation_logits` on hidden states that dropout has already seen (``forward`` shares
        one mask between both heads).

        The first layer of the pair MLP is linear in the concatenated pair features, so it is computed
        block by block without ever building the ``[P, 7 x hidden + ...]`` pair rows: each distinct
        span is projected once (not once per pair), the between-span mean is a difference of prefix
        sums of the PROJECTED hidden states, and the label and distance embeddings are projected as
        whole tables. A window with S spans costs O(S) matmul rows instead of O(S^2). Every lookup is
        an ``index_select`` on a flattened table: its backward is one ``index_add_``, where indexing
        with several index tensors backpropagates through a serial ``index_put_`` and a zero-filled
        copy of the table. Float32 outside autocast.
        """
        row, hs, he, ts, te, hl, tl = pairs.unbind(-1)
        first: nn.Linear = self.relation_classifier[0]
        h, e, d = hidden.size(-1), self.config.label_embedding_dim, self.config.distance_embedding_dim
        # one split (one backward), each block a fresh aligned copy: results do not depend on where the
        # weights happen to sit in memory
        head_w, tail_w, between_w, head_label_w, tail_label_w, distance_w = (
            w.T.contiguous() for w in first.weight.float().split([3 * h, 3 * h, h, e, e, d], dim=1)
        )
        length = hidden.size(1)
        x = hidden.float().flatten(0, 1)  # [B x L, H]
        sums = _prefix_sums(hidden.float()).flatten(0, 1)  # [B x (L + 1), H]

        # every distinct (row, start, end) span, as head and as tail: first, last and mean vectors
        size = length + 1
        keys = torch.cat([(row * size + hs) * size + he, (row * size + ts) * size + te])
        uniq, inverse = torch.unique(keys, return_inverse=True)
        r, s, t = uniq // (size * size), uniq // size % size, uniq % size
        span_mean = (sums.index_select(0, r * size + t) - sums.index_select(0, r * size + s)) / (
            (t - s).clamp(min=1).unsqueeze(-1)
        )
        span_features = torch.cat(
            [x.index_select(0, r * length + s), x.index_select(0, r * length + t - 1), span_mean], dim=-1
        )
        as_head, as_tail = (span_features @ torch.cat([head_w, tail_w], dim=1)).split(first.out_features, -1)
        n = row.size(0)

        # tokens between the two spans: mean of the projected states, from projected prefix sums
        # (the projection of every token runs in the encoder's dtype: fast in bfloat16; the sums in float32)
        projected = _prefix_sums((hidden @ between_w.to(hidden.dtype)).float()).flatten(0, 1)
        low, high = torch.minimum(he, te), torch.maximum(hs, ts).clamp(min=0)
        # the first layer's output is summed in place, one [P, out] term at a time: at inference P
        # runs to 16k pairs per call, and a sum of six fresh terms held them all at once
        pre = projected.index_select(0, row * size + high)
        pre -= projected.index_select(0, row * size + low)
        pre /= (high - low).clamp(min=1).unsqueeze(-1)
        pre.masked_fill_((high <= low).unsqueeze(-1), 0.0)  # adjacent or overlapping spans
        pre += as_head.index_select(0, inverse[:n])
        pre += as_tail.index_select(0, inverse[n:])

        # both labels and the distance bucket: each embedding table projected whole, then looked up
        labels = self.span_label_embedding.weight.float()
        pre += (labels @ head_label_w).index_select(0, hl)
        pre += (labels @ tail_label_w).index_select(0, tl)
        distances = self.distance_embedding.weight.float() @ distance_w
        pre += distances.index_select(0, self._distance_index(hs, ts))
        if first.bias is not None:
            pre += first.bias.float()
        logits = self.relation_classifier[1:](pre.to(hidden.dtype))
        allowed = self._allowed.get(logits.device)
        if allowed is None:
            allowed = self._allowed[logits.device] = torch.tensor(self._allowed_table, device=logits.device)
        return logits.masked_fill(~allowed[hl, tl], torch.finfo(logits.dtype).min)

    def _distance_index(self, hs: torch.Tensor, ts: torch.Tensor) -> torch.Tensor:
        distance = ts - hs
        bucket = torch.log2(distance.abs().clamp(min=1).float()).floor().long() + 1
        bucket = torch.where(distance == 0, 0, bucket.clamp(max=self.config.distance_buckets))
        return torch.sign(distance) * bucket + self.config.distance_buckets

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        relation_pairs: torch.Tensor | None = None,
        relation_labels: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> JointModelOutput | tuple[torch.Tensor, ...]:
        """Both heads on one encoder pass. ``labels`` (BIO ids, -100 ignored) and ``relation_pairs``/
        ``relation_labels`` (see :meth:`relation_logits`) give the training loss. Other keyword
        arguments go to the encoder as in any transformers model (``output_hidden_states``,
        ``output_attentions``, ``position_ids``, ``inputs_embeds``, ...); ``return_dict=False`` gives
        a tuple."""
        for flag in ("output_hidden_states", "output_attentions"):  # set on this model's config
            if getattr(self.config, flag, False):
                kwargs.setdefault(flag, True)
        encoded = self._encoder(input_ids, attention_mask, token_type_ids, **kwargs)
        hidden = encoded.last_hidden_state
        features = self.dropout(hidden)  # one mask, read by both heads
        logits = self.token_classifier(features)
        has_pairs = relation_pairs is not None and relation_pairs.numel() > 0
        relation_logits = self._relation_logits(features, relation_pairs) if has_pairs else None
        loss = token_loss = relation_loss = None
        if labels is not None:
            if (labels != IGNORE_INDEX).any():
                token_loss = F.cross_entropy(
                    logits.float().flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX
                )
            else:
                token_loss = logits.sum() * 0.0
            if has_pairs and relation_labels is not None:
                relation_loss = F.cross_entropy(relation_logits.float(), relation_labels)
            else:
                # Touch the head so data-parallel training sees a gradient for every parameter.
                relation_loss = sum(p.sum() for p in self.relation_classifier.parameters()) * 0.0
                relation_loss = relation_loss + self.span_label_embedding.weight.sum() * 0.0
                relation_loss = relation_loss + self.distance_embedding.weight.sum() * 0.0
            loss = token_loss + self.config.relation_loss_weight * relation_loss
        return JointModelOutput(
            loss=loss,
            logits=logits,
            relation_logits=relation_logits,
            token_loss=token_loss,
            relation_loss=relation_loss,
            last_hidden_state=hidden,
            hidden_states=getattr(encoded, "hidden_states", None),
            attentions=getattr(encoded, "attentions", None),
        )


def _prefix_sums(x: torch.Tensor) -> torch.Tensor:
    """``[B, L, D]`` → ``[B, L + 1, D]`` running sums along L, starting at 0. Summing along the
    innermost dimension of a transposed view is several times faster on CPU than ``cumsum(dim=1)``."""
    return F.pad(x.transpose(1, 2).cumsum(-1), (1, 0)).transpose(1, 2)


def _table(rows: Mapping[str, Any]) -> str:
    lines = ["| key | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in rows.items()]
    return "\n".join(lines)


def model_card(
    config: JointModelConfig,
    training: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
) -> str:
    """The README.md written beside the weights: what it was trained on, how, and how well it did."""
    schema = config.schema_obj
    base = getattr(config.encoder_config, "_name_or_path", "") or config.encoder_config.model_type
    enc = config.encoder_config
    front = [
        "---",
        "language: ar",
        "library_name: transformers",
        "license: apache-2.0",
        "pipeline_tag: token-classification",
        "tags: [arabic, named-entity-recognition, relation-extraction, event-extraction, ie-joint]",
    ]
    if base and not os.path.isdir(str(base)) and "/" in str(base):
        front.append(f"base_model: {base}")
    front.append("---")
    sections = [
        "\n".join(front),
        "# Joint entity, trigger and relation model for Arabic conflict news",
        "Extracts entities and event triggers (IOB2 tagging over the first sub-token of each word) and the "
        "relations between a trigger and its arguments, from one encoder pass. Offsets refer to the original "
        "article text: the text is normalized AraBERT-v02 style for the encoder and mapped back.",
        "## Usage\n\n```python\nfrom ie.model.prediction import Predictor\n\n"
        'predictor = Predictor.from_pretrained("path/to/this/folder")\n'
        "docs = predictor.predict([article_text])\n"
        "for span in docs[0].spans:\n    print(span.label, span.text, span.score)\n```\n\n"
        "With transformers alone (no `trust_remote_code`): importing `ie.model.modeling` registers the model "
        "with `AutoConfig`, `AutoModel` and `AutoModelForTokenClassification`. The token-classification "
        "pipeline tags entities and triggers (not relations) in text normalized the way the encoder "
        "saw it:\n\n```python\nimport ie.model.modeling  # registration only\n"
        "from ie.text.normalize import normalize\nfrom transformers import pipeline\n\n"
        'tagger = pipeline("token-classification", model="path/to/this/folder", '
        'aggregation_strategy="first")\n'
        "text = normalize(article_text).text  # offsets below refer to this text\n"
        "for entity in tagger(text):\n"
        '    print(entity["entity_group"], entity["word"], entity["start"], entity["end"])\n```\n\n'
        "`model(**inputs)` returns `logits` (BIO tags), `relation_logits` (given `relation_pairs`) and, on "
        "request, `hidden_states`/`attentions`.",
        "## Labels\n\n"
        f"- entities: {', '.join(schema.entity_types)}\n"
        f"- triggers: {', '.join(schema.trigger_types)}\n"
        f"- relations (trigger → argument): {', '.join(schema.relation_labels)}",
        "## Encoder\n\n"
        + _table(
            {
                "base": base,
                "model_type": enc.model_type,
                "hidden_size": enc.hidden_size,
                "layers": getattr(enc, "num_hidden_layers", "?"),
                "vocab_size": getattr(enc, "vocab_size", "?"),
                "window (tokens)": config.window_length,
                "window stride (tokens)": config.window_stride,
            }
        ),
    ]
    if training:
        sections.append("## Training\n\n" + _table(training))
    if metrics:
        sections.append(
            "## Evaluation\n\nExact-match micro P/R/F1 on the evaluation split named under Training "
            "(a span counts when label, start and end all match; a relation when both spans and the label "
            "match).\n\n" + _table(metrics)
        )
    else:
        sections.append("## Evaluation\n\nNo evaluation figures were recorded for this model.")
    sections.append(
        "## Limitations\n\nTrained on a small set of annotated news articles about strikes in Syria; "
        "expect lower accuracy on other regions, genres and spelling conventions."
    )
    return "\n\n".join(sections) + "\n"


# Registration only (what transformers does for its own models at import): the Auto classes and the
# token-classification pipeline find the model without trust_remote_code.
AutoConfig.register(MODEL_TYPE, JointModelConfig, exist_ok=True)
AutoModel.register(JointModelConfig, JointModel, exist_ok=True)
AutoModelForTokenClassification.register(JointModelConfig, JointModel, exist_ok=True)
