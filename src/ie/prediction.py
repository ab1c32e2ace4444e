"""Batch inference: texts → :class:`~ie.document.Document` with predicted spans and relations.

Windows of all texts in a chunk are sorted by length and batched, so padding is minimal; each
window goes through the encoder once, its hidden states are kept for the relation head, which then
scores the schema-allowed (trigger, argument) pairs of the merged spans in the window where the
pair sits farthest from an edge. Offsets are in the ORIGINAL text: ``text[start:end] == span.text``.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import torch

from ie.document import Document, Relation
from ie.features import EncodedText, Featurizer
from ie.modeling import JointModel

# Windows whose hidden states are kept at once, in batches: bounds memory on very long inputs.
_CHUNK_BATCHES = 8
# Candidate pairs scored per relation-head call: bounds the pair-feature memory.
_PAIRS_PER_CALL = 4096


class Predictor:
    """A :class:`JointModel` with its tokenizer; ``predict`` never truncates an article."""

    def __init__(self, model: JointModel, tokenizer: Any, device: str | torch.device | None = None):
        self.model = model
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        if next(model.parameters()).device != self.device:
            self.model.to(self.device)
        cfg = model.config
        self.featurizer = Featurizer(tokenizer, cfg.schema_obj, cfg.window_length, cfg.window_stride)
        self.schema = self.featurizer.schema
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        labels = self.schema.span_labels
        self._pairs = {(h, t) for h in labels for t in labels if self.schema.is_candidate_pair(h, t)}

    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike[str],
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> Predictor:
        from transformers import AutoTokenizer

        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        kwargs = {"dtype": dtype} if dtype is not None else {}
        model = JointModel.from_pretrained(str(path), **kwargs).to(device).eval()
        return cls(model, AutoTokenizer.from_pretrained(str(path)), device)

    @torch.inference_mode()
    def predict(
        self, texts: Sequence[str], ids: Sequence[str] | None = None, batch_size: int = 16
    ) -> list[Document]:
        if isinstance(texts, str):
            raise TypeError("predict() takes a sequence of texts, not a single string")
        was_training = self.model.training
        self.model.eval()
        try:
            encoded = self.featurizer.encode(texts, ids)
            docs: list[Document] = []
            chunk: list[EncodedText] = []
            windows = 0
            for enc in encoded:
                chunk.append(enc)
                windows += len(enc.windows)
                if windows >= batch_size * _CHUNK_BATCHES:
                    docs += self._predict_chunk(chunk, batch_size)
                    chunk, windows = [], 0
            if chunk:
                docs += self._predict_chunk(chunk, batch_size)
            return docs
        finally:
            self.model.train(was_training)

    def _predict_chunk(self, chunk: list[EncodedText], batch_size: int) -> list[Document]:
        f, model = self.featurizer, self.model
        offset = len(f.prefix)
        items = [(i, k) for i, enc in enumerate(chunk) for k in range(len(enc.windows))]
        items.sort(key=lambda ik: -(chunk[ik[0]].windows[ik[1]][1] - chunk[ik[0]].windows[ik[1]][0]))
        hidden_states: list[torch.Tensor] = []
        best: dict[tuple[int, int], tuple[list[float], list[int]]] = {}  # per window: tag prob, tag id
        where: dict[tuple[int, int], tuple[int, int]] = {}
        for b in range(0, len(items), batch_size):
            batch = items[b : b + batch_size]
            rows = [chunk[i].window_input_ids(k, f.prefix, f.suffix) for i, k in batch]
            width = max(map(len, rows))
            input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for r, ids in enumerate(rows):
                input_ids[r, : len(ids)] = torch.as_tensor(ids)
                mask[r, : len(ids)] = 1
            hidden = model.encode(input_ids.to(self.device), mask.to(self.device))
            score, tag = model.token_logits(hidden).float().softmax(-1).max(-1)
            score, tag = score.cpu(), tag.cpu()
            hidden_states.append(hidden)
            for r, (i, k) in enumerate(batch):
                ws, we = chunk[i].windows[k]
                best[(i, k)] = (
                    score[r, offset : offset + we - ws].tolist(),
                    tag[r, offset : offset + we - ws].tolist(),
                )
                where[(i, k)] = (len(hidden_states) - 1, r)

        docs: list[Document] = []
        requests: dict[int, list[tuple[list[int], int, int, int]]] = defaultdict(list)
        for i, enc in enumerate(chunk):
            tag_ids, scores = [], []
            for w, k in enumerate(f.word_windows(enc)):
                window_scores, window_tags = best[(i, k)]
                t = enc.words[w].first_token - enc.windows[k][0]
                tag_ids.append(window_tags[t])
                scores.append(window_scores[t])
            decoded = f.decode(enc, tag_ids, scores)
            docs.append(Document(enc.id, enc.text, f.to_spans(enc, decoded)))
            for h, head in enumerate(decoded):
                if not self.schema.is_trigger(head.label):
                    continue
                h0, h1 = enc.span_tokens(head.first_word, head.last_word)
                for t, tail in enumerate(decoded):
                    if t == h or (head.label, tail.label) not in self._pairs:
                        continue
                    t0, t1 = enc.span_tokens(tail.first_word, tail.last_word)
                    k = enc.best_window(min(h0, t0), max(h1, t1))
                    if k is None:  # the two spans never share a window
                        continue
                    ws = enc.windows[k][0]
                    bi, r = where[(i, k)]
                    pair = [
                        r,
                        offset + h0 - ws,
                        offset + h1 - ws,
                        offset + t0 - ws,
                        offset + t1 - ws,
                        f.span_label2id[head.label],
                        f.span_label2id[tail.label],
                    ]
                    requests[bi].append((pair, i, h, t))

        for bi, all_reqs in requests.items():
            for p0 in range(0, len(all_reqs), _PAIRS_PER_CALL):
                reqs = all_reqs[p0 : p0 + _PAIRS_PER_CALL]
                pairs = torch.tensor([p for p, *_ in reqs], dtype=torch.long, device=self.device)
                probs = model.relation_logits(hidden_states[bi], pairs).float().softmax(-1)
                self._add_relations(docs, reqs, *probs.max(-1))
        for doc in docs:
            order = {s.id: n for n, s in enumerate(doc.spans)}
            doc.relations.sort(key=lambda r: (order[r.head], order[r.tail]))
        return docs

    def _add_relations(
        self, docs: list[Document], reqs: list, score: torch.Tensor, label: torch.Tensor
    ) -> None:
        for (_, i, h, t), s, lab in zip(reqs, score.tolist(), label.tolist(), strict=True):
            if lab != 0:
                doc = docs[i]
                name = self.featurizer.relation_labels[lab]
                doc.relations.append(Relation(doc.spans[h].id, doc.spans[t].id, name, s))
