"""Batch inference: texts → :class:`~ie.core.document.Document` with predicted spans and relations.

Windows of all texts in a chunk are sorted by length and batched, so padding is minimal; each
window goes through the encoder once, its hidden states are kept for the relation head, which then
scores the schema-allowed (trigger, argument) pairs of the merged spans in the window where the
pair sits farthest from an edge. Offsets are in the ORIGINAL text: ``text[start:end] == span.text``.
"""

from __future__ import annotations

import ctypes
import os
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import torch

from ie.core.document import Document, Relation
from ie.model.features import EncodedText, Featurizer, best_windows, pad
from ie.model.modeling import JointModel
from ie.text.arabic import after_hypothetical_cue
from ie.text.gazetteer import Matcher

# Windows whose hidden states are kept at once, in batches: bounds memory on very long inputs.
_CHUNK_BATCHES = 8
# Candidate pairs scored per relation-head call: bounds memory (a few floats x relation_hidden_size
# per pair) while keeping the per-call work (projecting the whole batch once) rare.
_PAIRS_PER_CALL = 16384
# Inference precisions: float32 is exact; the others are faster and measured against it.
PRECISIONS = ("float32", "bfloat16", "int8")


DECODINGS = ("viterbi", "greedy")


class Predictor:
    """A :class:`JointModel` with its tokenizer; ``predict`` never truncates an article."""

    def __init__(
        self,
        model: JointModel,
        tokenizer: Any,
        device: str | torch.device | None = None,
        decoding: str = "viterbi",
        merge_adjacent: bool = True,
        min_span_score: float = 0.5,
        gazetteer_weight: float = 5.0,
        drop_hypothetical: bool = True,
    ):
        """``decoding``: ``viterbi`` (the best IOB2-valid tag sequence, :meth:`Featurizer.best_tags`)
        or ``greedy`` (each word's most probable tag). ``merge_adjacent``: touching spans of one type
        are one mention (:meth:`Featurizer.decode`). ``greedy`` without merging is what transformers'
        token-classification pipeline does; the defaults are what the annotation guidelines ask for
        (leave-one-article-out figures: README "Held-out figures"). ``min_span_score``: a span is
        kept when the mean probability of its words' tags is at least this (0.5: better than even odds;
        a Viterbi path can pass through tags the model doubts), before relations are scored.
        ``gazetteer_weight``: the region's gazetteer as a prior on the tags (:meth:`Featurizer.prior`):
        each exact gazetteer match multiplies the model's odds of reading it as the gazetteer does by
        ``exp(weight)`` before decoding; spans and scores come from that posterior (0: off).
        ``drop_hypothetical``: a trigger right after a cue of a feared, planned or threatened attack
        (``خوفاً من``، ``تحسباً لأي``، ``لشن``; :func:`ie.text.arabic.after_hypothetical_cue`) is not an
        event (guidelines), and is dropped before relations are scored."""
        if decoding not in DECODINGS:
            raise ValueError(f"decoding must be one of {', '.join(DECODINGS)}, not {decoding!r}")
        self.decoding = decoding
        self.merge_adjacent = merge_adjacent
        if not 0.0 <= min_span_score <= 1.0:
            raise ValueError(f"min_span_score must be in [0, 1], not {min_span_score}")
        self.min_span_score = min_span_score
        if gazetteer_weight < 0:
            raise ValueError(f"gazetteer_weight must be >= 0, not {gazetteer_weight}")
        self.gazetteer_weight = gazetteer_weight
        self.drop_hypothetical = drop_hypothetical
        self.matcher = Matcher.from_gazetteer() if gazetteer_weight else None
        self.model = model
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        if next(model.parameters()).device != self.device:
            self.model.to(self.device)
        cfg = model.config
        self.featurizer = Featurizer(tokenizer, cfg.schema_obj, cfg.window_length, cfg.window_stride)
        self.schema = self.featurizer.schema
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        # [head label id, tail label id] -> is the pair a relation candidate (a trigger and an argument)
        self._candidate = torch.tensor(self.featurizer.candidate, dtype=torch.bool)

    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike[str],
        device: str | torch.device | None = None,
        precision: str = "float32",
        decoding: str = "viterbi",
        merge_adjacent: bool = True,
        min_span_score: float = 0.5,
        gazetteer_weight: float = 5.0,
        drop_hypothetical: bool = True,
    ) -> Predictor:
        """``precision`` (see :data:`PRECISIONS`) trades exactness for speed: ``bfloat16`` runs the
        model in bfloat16 (GPUs, and CPUs with AVX512-BF16/AMX, where matmuls run ~4x faster than
        float32); ``int8`` (CPU only) quantizes the encoder's Linear layers dynamically
        (:func:`quantize_int8`). Both give outputs close to, not identical with, float32:
        ``bench/inference.py`` measures the agreement."""
        from transformers import AutoTokenizer

        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
        device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if precision == "int8" and device.type != "cpu":
            raise ValueError("int8 quantization runs on CPU only")
        model = JointModel.from_pretrained(str(path)).to(device).eval()
        if precision == "bfloat16":
            model.to(torch.bfloat16)
        elif precision == "int8":
            quantize_int8(model)
        tokenizer = AutoTokenizer.from_pretrained(str(path))
        return cls(model, tokenizer, device, decoding=decoding, merge_adjacent=merge_adjacent,
                   min_span_score=min_span_score, gazetteer_weight=gazetteer_weight,
                   drop_hypothetical=drop_hypothetical)  # fmt: skip

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
            if self.device.type == "cpu":
                _release_free_memory()

    def _predict_chunk(self, chunk: list[EncodedText], batch_size: int) -> list[Document]:
        f, model = self.featurizer, self.model
        offset = len(f.prefix)
        items = [(i, k) for i, enc in enumerate(chunk) for k in range(len(enc.windows))]
        items.sort(key=lambda ik: -(chunk[ik[0]].windows[ik[1]][1] - chunk[ik[0]].windows[ik[1]][0]))
        hidden_states: list[torch.Tensor] = []
        tag_logp: list[torch.Tensor] = []  # per batch [rows, width, tags]
        where: dict[tuple[int, int], tuple[int, int]] = {}  # (text, window) -> (batch, row)
        for b in range(0, len(items), batch_size):
            batch = items[b : b + batch_size]
            input_ids, mask = pad(
                [chunk[i].window_input_ids(k, f.prefix, f.suffix) for i, k in batch], self.pad_id
            )
            # No padding in the batch (windows sorted by length): no mask, so attention takes its
            # fastest kernel (decided here, on the CPU copy, so an accelerator is not synced).
            full = bool(mask.all())
            hidden = model.encode(input_ids.to(self.device), None if full else mask.to(self.device))
            tag_logp.append(model.tag_logits(hidden).float().log_softmax(-1).cpu())
            hidden_states.append(hidden)
            for r, (i, k) in enumerate(batch):
                where[(i, k)] = (len(hidden_states) - 1, r)
            if self.device.type == "cpu":
                _release_free_memory()

        docs: list[Document] = []
        requests: dict[int, list[torch.Tensor]] = defaultdict(list)  # batch -> [pairs, text, head, tail]
        for i, enc in enumerate(chunk):
            if not enc.words:
                docs.append(Document(enc.id, enc.text, []))
                continue
            starts, ends = enc.window_bounds()
            # every word's tag comes from the window where the word sits farthest from an edge
            k = f.word_windows(enc)
            first = torch.tensor([w.first_token for w in enc.words])
            flat_logp, base = [], [0]
            for kk, (ws, we) in enumerate(enc.windows):
                bi, r = where[(i, kk)]
                flat_logp.append(tag_logp[bi][r, offset : offset + we - ws])
                base.append(base[-1] + we - ws)
            index = torch.tensor(base[:-1])[k] + first - starts[k]
            word_logp = torch.cat(flat_logp)[index]  # [words, tags]
            if self.matcher is not None:
                prior = f.prior(enc, self.matcher.find(enc.text), self.gazetteer_weight)
                word_logp = (word_logp + prior).log_softmax(-1)
            if self.decoding == "viterbi":
                word_tags, word_scores = f.best_tags(word_logp)
            else:  # each word's most probable tag
                best_logp, best = word_logp.max(-1)
                word_tags, word_scores = best.tolist(), best_logp.exp().tolist()
            decoded = f.decode(enc, word_tags, word_scores, self.merge_adjacent)
            decoded = [d for d in decoded if d.score >= self.min_span_score]
            if self.drop_hypothetical:
                decoded = [
                    d
                    for d in decoded
                    if not (self.schema.is_trigger(d.label) and after_hypothetical_cue(enc.text, d.start))
                ]
            docs.append(Document(enc.id, enc.text, f.to_spans(enc, decoded)))
            if decoded:
                self._pair_requests(i, enc, decoded, starts, ends, where, requests)

        for bi, parts in requests.items():
            pairs, text, head, tail = (torch.cat(x) for x in zip(*parts, strict=True))
            for p0 in range(0, len(pairs), _PAIRS_PER_CALL):
                sl = slice(p0, p0 + _PAIRS_PER_CALL)
                probs = (
                    model.relation_logits(hidden_states[bi], pairs[sl].to(self.device)).float().softmax(-1)
                )
                score, label = (x.cpu() for x in probs.max(-1))
                found = label.nonzero().flatten()  # label 0 is "no relation"
                for t, h, tl, lab, sc in zip(
                    text[sl][found].tolist(),
                    head[sl][found].tolist(),
                    tail[sl][found].tolist(),
                    label[found].tolist(),
                    score[found].tolist(),
                    strict=True,
                ):
                    spans = docs[t].spans
                    docs[t].relations.append(Relation(spans[h].id, spans[tl].id, f.relation_labels[lab], sc))
        for doc in docs:
            order = {s.id: n for n, s in enumerate(doc.spans)}
            doc.relations.sort(key=lambda r: (order[r.head], order[r.tail]))
        return docs

    def _pair_requests(
        self,
        i: int,
        enc: EncodedText,
        decoded: list,
        starts: torch.Tensor,
        ends: torch.Tensor,
        where: dict[tuple[int, int], tuple[int, int]],
        requests: dict[int, list[torch.Tensor]],
    ) -> None:
        """All schema-allowed (trigger, argument) pairs of one text whose spans share a window, each
        placed in the window where it sits farthest from an edge, as relation-head rows grouped by
        encoder batch. Only pairs that can share a window are enumerated (:func:`_window_pairs`):
        their number, and the memory they take, grow linearly with the article."""
        f, offset = self.featurizer, len(self.featurizer.prefix)
        label = torch.tensor([f.span_label2id[d.label] for d in decoded])
        t0 = torch.tensor([enc.words[d.first_word].first_token for d in decoded])
        t1 = torch.tensor([enc.words[d.last_word].end_token for d in decoded])
        head, tail = _window_pairs(starts, ends, t0, t1, self._candidate[label].any(1))
        keep = self._candidate[label[head], label[tail]]
        head, tail = head[keep], tail[keep]
        if not len(head):
            return
        k = best_windows(starts, ends, torch.minimum(t0[head], t0[tail]), torch.maximum(t1[head], t1[tail]))
        keep = k >= 0  # no-op: _window_pairs gives only pairs that share a window
        head, tail, k = head[keep], tail[keep], k[keep]
        places = torch.tensor([where[(i, kk)] for kk in range(len(enc.windows))])  # window -> (batch, row)
        batch, row = places[k].unbind(-1)
        shift = offset - starts[k]
        pairs = torch.stack(
            [
                row,
                t0[head] + shift,
                t1[head] + shift,
                t0[tail] + shift,
                t1[tail] + shift,
                label[head],
                label[tail],
            ],
            dim=-1,
        )
        text = torch.full_like(head, i)
        for bi in batch.unique().tolist():
            sel = batch == bi
            requests[bi].append((pairs[sel], text[sel], head[sel], tail[sel]))


_M_MMAP_THRESHOLD = -3  # glibc mallopt parameter
_heap_guard: _HeapGuard | None = None


def tune_cpu_memory(threshold: int = 4 << 20) -> None:
    """Opt-in, process-wide malloc tuning for long CPU inference runs; entry points call it
    (``ie-extract``, ``evaluate.py``), library code never does.

    Allocations of ``threshold`` bytes and more (activations, hidden states) get their own
    mappings, returned to the OS when freed: glibc otherwise raises this threshold as big blocks
    are freed, after which they come from the heap and fragment it. And after each CPU batch the
    predictor gives the free pages glibc keeps back to the OS when they pile up (:class:`_HeapGuard`).
    Idempotent; no-op off glibc."""
    global _heap_guard
    if _heap_guard is not None:
        return
    _heap_guard = _HeapGuard()
    try:
        ctypes.CDLL(None).mallopt(_M_MMAP_THRESHOLD, threshold)
    except (OSError, AttributeError):
        pass


class _HeapGuard:
    """Gives the pages glibc keeps after CPU tensors are freed back to the OS, when they pile up.

    What the mmap threshold leaves on the heap (small blocks of batches of varying shape) still
    fragments it; glibc then holds on to freed memory and a long stream of articles sees its
    resident memory climb although nothing stays alive (+400 MiB over 3,000 articles before both).
    After each batch the resident size is read (``/proc/self/statm``, microseconds); once it exceeds
    ``slack`` x the size right after the last trim, ``malloc_trim`` releases the free pages.
    Trimming only then keeps the cost of re-faulting memory low while the peak stays flat
    (``bench/memory.py``). No-op off Linux/glibc.
    """

    def __init__(self, slack: float = 1.1):
        self.slack = slack
        self.floor = 0
        try:
            self._trim = ctypes.CDLL(None).malloc_trim
            self._page = os.sysconf("SC_PAGE_SIZE")
            self._resident()
        except (OSError, AttributeError, ValueError):
            self._trim = None

    def _resident(self) -> int:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * self._page

    def check(self) -> None:
        if self._trim is None:
            return
        rss = self._resident()
        if not self.floor:
            self.floor = rss
        elif rss > self.floor * self.slack:
            self._trim(0)
            self.floor = self._resident()


def _release_free_memory() -> None:
    if _heap_guard is not None:  # only once an entry point opted in (tune_cpu_memory)
        _heap_guard.check()


def quantize_int8(model: JointModel) -> JointModel:
    """Dynamic int8 quantization of the encoder's Linear layers, in place (CPU inference only).

    Weights are stored in int8, activations quantized per batch on the fly; the heads stay float32.
    Uses ``torch.ao.quantization.quantize_dynamic`` (deprecated in favour of torchao, still in
    torch 2.13). ``bench/inference.py --int8`` reports how far the outputs move.
    """
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the torchao migration notice, once per call
        model.backbone = torch.ao.quantization.quantize_dynamic(
            model.backbone, {torch.nn.Linear}, dtype=torch.qint8
        )
    return model


def _window_pairs(
    starts: torch.Tensor, ends: torch.Tensor, t0: torch.Tensor, t1: torch.Tensor, heads: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ordered pairs ``(head, tail)``, ``head != tail``, of spans that share at least one window,
    with ``heads[head]`` true, in row-major order (head, then tail, ascending).

    Spans are disjoint token ranges ``[t0, t1)`` in text order (``t0`` and ``t1`` increase), as the
    decoder gives them; windows are sorted. For a head, the later spans that share a window with it
    are those ending by the end of the last window starting at or before the head, and the earlier
    ones those starting at or after the start of the first window ending at or after the head: two
    contiguous ranges of spans, found by binary search. Pairs more than a window apart, which can
    never be scored, are never enumerated, so the pairs grow linearly with the article, not with
    the square of its spans."""
    n = len(t0)
    if n == 0 or len(starts) == 0:
        empty = torch.zeros(0, dtype=torch.long)
        return empty, empty
    idx = torch.arange(n)
    last = (torch.searchsorted(starts, t0, side="right") - 1).clamp(min=0)  # starts[0] == 0
    right_end = torch.searchsorted(t1, ends[last], side="right").clamp(min=idx + 1)
    first = torch.searchsorted(ends, t1, side="left")
    left_start = torch.full_like(idx, n)
    inside = first < len(starts)
    left_start[inside] = torch.searchsorted(t0, starts[first[inside]], side="left")
    left_start = torch.minimum(left_start, idx)
    count = torch.where(heads, (idx - left_start) + (right_end - idx - 1), 0)
    head = torch.repeat_interleave(idx, count)
    block = torch.cumsum(count, 0) - count
    tail = left_start[head] + torch.arange(len(head)) - block[head]
    tail += tail >= head  # skip the head itself
    return head, tail
