"""Document → model inputs, and model outputs → spans in original offsets.

The text is normalized the way AraBERT v02 was pre-trained (:mod:`ie.text.normalize`), tokenized with a
fast tokenizer, and every token is mapped back to ORIGINAL character offsets, so whatever the model
predicts can be sliced out of the article as the annotator saw it.

Labels sit on the first sub-token of each word (the tokenizer's pre-tokenizer word); the other
sub-tokens and the special tokens get ``-100``, so neither the loss nor seqeval ever counts a
sub-token. Articles longer than the encoder's window are cut into sentence-aligned windows that
overlap by ``stride`` tokens: nothing is ever truncated, and :meth:`Featurizer.word_windows` picks,
for every word, the window where it sits farthest from an edge, so merging is deterministic.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ie.core.document import Document, Span
from ie.core.schema import SCHEMA, Schema
from ie.text.arabic import is_attack_modifier, starts_new_mention
from ie.text.normalize import normalize
from ie.text.sentences import sentence_bounds

if TYPE_CHECKING:
    from torch import Tensor

IGNORE_INDEX = -100
NO_RELATION = "none"
# Version of the feature layout; part of the dataset cache key.
FEATURES_VERSION = "1"


@dataclass(frozen=True)
class Word:
    """A pre-tokenizer word: original character extent and its token range ``[first_token, end_token)``."""

    start: int
    end: int
    first_token: int
    end_token: int


@dataclass
class EncodedText:
    """One article, tokenized once; windows are token ranges ``[start, end)`` into ``input_ids``."""

    id: str
    text: str
    input_ids: list[int]
    words: list[Word]
    windows: list[tuple[int, int]]
    token_word: list[int] = field(repr=False)
    sentence_starts: list[int] = field(repr=False, default_factory=list)

    def window_input_ids(self, k: int, prefix: Sequence[int], suffix: Sequence[int]) -> list[int]:
        start, end = self.windows[k]
        return [*prefix, *self.input_ids[start:end], *suffix]

    def span_tokens(self, first_word: int, last_word: int) -> tuple[int, int]:
        return self.words[first_word].first_token, self.words[last_word].end_token

    def window_bounds(self) -> tuple[Tensor, Tensor]:
        """Window starts and ends as long tensors, both increasing (the input of :func:`best_windows`)."""
        import torch

        return (
            torch.tensor([ws for ws, _ in self.windows], dtype=torch.long),
            torch.tensor([we for _, we in self.windows], dtype=torch.long),
        )


# Below this many (range, window) comparisons, best_windows counts comparisons: torch.searchsorted
# goes multi-threaded even for a handful of windows. Above it, searchsorted: linear memory.
_COMPARE_LIMIT = 1 << 16


def best_windows(starts: Tensor, ends: Tensor, first: Tensor, end: Tensor) -> Tensor:
    """For each token range ``[first, end)``, the window holding it farthest from its edges (the
    largest ``min(first - start, end_of_window - end)``; ties: the first window), -1 where no window
    holds it. The one rule that decides which window's prediction counts, for words and for pairs.

    ``starts`` and ``ends`` are sorted (windows are ordered intervals), so the windows holding a
    range are contiguous, ``[lo, hi)``, found by binary search: memory is linear in the number of
    ranges plus windows (a ranges x windows comparison, over every span pair of a 587k-character
    article, asked for 60 GB)."""
    import torch

    if len(first) * len(starts) <= _COMPARE_LIMIT:
        lo = (ends < end[:, None]).sum(1)
        hi = (starts <= first[:, None]).sum(1)
    else:
        lo = torch.searchsorted(ends, end, side="left")
        hi = torch.searchsorted(starts, first, side="right")
    # How many windows hold one range: a handful (windows overlap by less than half their length).
    width = max(int((hi - lo).max()), 1) if len(first) else 1
    k = lo[:, None] + torch.arange(width)
    valid = k < hi[:, None]
    kc = k.clamp(max=len(starts) - 1)
    margin = torch.minimum(first[:, None] - starts[kc], ends[kc] - end[:, None]).masked_fill(~valid, -1)
    best = k.gather(1, margin.argmax(1, keepdim=True)).squeeze(1)
    return torch.where(valid.any(1), best, -1)


@dataclass(frozen=True)
class DecodedSpan:
    """A predicted span over words ``[first_word, last_word]``, with original offsets."""

    start: int
    end: int
    label: str
    score: float
    first_word: int
    last_word: int


@dataclass
class Coverage:
    """What the features could not represent: gold spans whose boundary falls inside a word, and gold
    relations whose two spans never share a window (or that duplicate another label on the same pair)."""

    spans: int = 0
    relations: int = 0
    lost_spans: list[tuple[str, Span]] = field(default_factory=list)
    lost_relations: list[tuple[str, str, str, str, str]] = field(default_factory=list)

    def add(self, other: Coverage) -> None:
        self.spans += other.spans
        self.relations += other.relations
        self.lost_spans += other.lost_spans
        self.lost_relations += other.lost_relations

    def summary(self) -> str:
        return (
            f"{self.spans - len(self.lost_spans)}/{self.spans} gold spans and "
            f"{self.relations - len(self.lost_relations)}/{self.relations} gold relations representable"
        )


def _special_tokens(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The special ids the tokenizer puts before and after a single sequence ([CLS] / [SEP], <s> / </s>)."""
    bare = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a", add_special_tokens=True)["input_ids"]
    for i in range(len(full) - len(bare) + 1):
        if full[i : i + len(bare)] == bare:
            return list(full[:i]), list(full[i + len(bare) :])
    raise ValueError("cannot locate the special tokens this tokenizer adds")


class Featurizer:
    """Turns documents into windows of token ids with BIO labels and relation candidates, and back."""

    def __init__(self, tokenizer: Any, schema: Schema = SCHEMA, max_length: int = 512, stride: int = 128):
        if not getattr(tokenizer, "is_fast", False):
            raise ValueError(
                f"{type(tokenizer).__name__} is not a fast tokenizer: offset mappings need one "
                "(load it with AutoTokenizer.from_pretrained(..., use_fast=True))"
            )
        self.tokenizer = tokenizer
        self.schema = schema
        self.prefix, self.suffix = _special_tokens(tokenizer)
        self.max_length = max_length
        self.content_length = max_length - len(self.prefix) - len(self.suffix)
        if self.content_length < 8:
            raise ValueError(f"max_length={max_length} leaves no room for text")
        if not 0 <= stride < self.content_length // 2:
            raise ValueError(f"stride={stride} must be in [0, {self.content_length // 2})")
        self.stride = stride
        self.tags = schema.bio_labels
        self.tag2id = {t: i for i, t in enumerate(self.tags)}
        self.span_labels = schema.span_labels
        self.span_label2id = {label: i for i, label in enumerate(self.span_labels)}
        self.relation_labels = (NO_RELATION, *schema.relation_labels)
        self.relation2id = {label: i for i, label in enumerate(self.relation_labels)}
        self.candidate = schema.candidate_table()  # [head label id][tail label id]

    # -- encoding ------------------------------------------------------------------------------
    def encode(self, texts: Sequence[str], ids: Sequence[str] | None = None) -> list[EncodedText]:
        """Normalize, tokenize (one batched call) and window every text."""
        ids = [str(i) for i in ids] if ids is not None else [str(i) for i in range(len(texts))]
        if len(ids) != len(texts):
            raise ValueError(f"got {len(texts)} texts but {len(ids)} ids")
        norms = [normalize(t) for t in texts]
        batch = self.tokenizer(
            [n.text for n in norms],
            add_special_tokens=False,
            return_offsets_mapping=True,
            return_attention_mask=False,
            return_token_type_ids=False,
            verbose=False,  # windows, not the tokenizer, deal with texts longer than the model
        )
        out = []
        for i, (doc_id, text, norm) in enumerate(zip(ids, texts, norms, strict=True)):
            out.append(
                self._encode_one(
                    doc_id, text, norm, batch["input_ids"][i], batch["offset_mapping"][i], batch.word_ids(i)
                )
            )
        return out

    def _encode_one(
        self, doc_id: str, text: str, norm: Any, token_ids: list[int], offsets: list, word_ids: list
    ) -> EncodedText:
        input_ids: list[int] = []
        starts: list[int] = []
        ends: list[int] = []
        groups: list[int] = []
        to_original = norm.to_original
        for tid, (ns, ne), wid in zip(token_ids, offsets, word_ids, strict=True):
            if ne <= ns:  # a token with no characters (some tokenizers emit them) carries no label
                continue
            os_, oe = to_original(ns, ne)
            input_ids.append(tid)
            starts.append(os_)
            ends.append(oe)
            groups.append(wid if wid is not None else -1)

        # Characters no token covers (diacritics, tatweel, control characters) belong to the word
        # they are glued to, so a word's extent is exactly what an annotator would select.
        covered = bytearray(len(text))
        for s, e in zip(starts, ends, strict=True):
            covered[s:e] = b"\x01" * (e - s)

        words: list[Word] = []
        t = 0
        while t < len(input_ids):
            u = t + 1
            while u < len(input_ids) and groups[u] == groups[t] and groups[t] != -1:
                u += 1
            start, end = min(starts[t:u]), max(ends[t:u])
            while start > 0 and not covered[start - 1] and not text[start - 1].isspace():
                if words and words[-1].end >= start:
                    break
                start -= 1
            while end < len(text) and not covered[end] and not text[end].isspace():
                end += 1
            if words and start < words[-1].end:
                # The normalizer split one original character across two words (a ligature):
                # keep words disjoint by gluing this one to the previous word.
                prev = words.pop()
                start, t_first = prev.start, prev.first_token
                end = max(end, prev.end)
            else:
                t_first = t
            words.append(Word(start, end, t_first, u))
            t = u
        token_word = [0] * len(input_ids)
        for w, word in enumerate(words):
            token_word[word.first_token : word.end_token] = [w] * (word.end_token - word.first_token)
        sentence_starts = self._sentence_starts(text, words)
        windows = self._windows(words, sentence_starts, len(input_ids))
        return EncodedText(doc_id, text, input_ids, words, windows, token_word, sentence_starts)

    @staticmethod
    def _sentence_starts(text: str, words: list[Word]) -> list[int]:
        """First token of every sentence (:func:`ie.text.sentences.sentence_bounds`): the first word
        that starts at or after the sentence's first character."""
        starts = [0] if words else []
        word_starts = [w.start for w in words]
        for start, _ in sentence_bounds(text)[1:]:
            w = bisect.bisect_left(word_starts, start)
            if w < len(words) and words[w].first_token > starts[-1]:
                starts.append(words[w].first_token)
        return starts

    def _windows(self, words: list[Word], sent_starts: list[int], n_tokens: int) -> list[tuple[int, int]]:
        """Windows of at most ``content_length`` tokens, overlapping by up to ``stride``: each ends at the
        last sentence start in its second half if there is one, else at a word start."""
        if n_tokens == 0:
            return []
        word_starts = [w.first_token for w in words]
        size, windows, start = self.content_length, [], 0
        while True:
            limit = start + size
            if limit >= n_tokens:
                windows.append((start, n_tokens))
                return windows
            end = _last_in(sent_starts, start + size // 2 + 1, limit)
            if end is None:
                end = _last_in(word_starts, start + 1, limit)
            if end is None:  # a single word longer than the window: cut inside it
                end = limit
            windows.append((start, end))
            low = max(end - self.stride, start + 1)
            nxt = _first_in(sent_starts, low, end - 1)
            if nxt is None:
                nxt = _first_in(word_starts, low, end)
            start = end if nxt is None else nxt

    # -- gold labels ---------------------------------------------------------------------------
    def word_tags(
        self, enc: EncodedText, doc: Document
    ) -> tuple[list[str], dict[str, tuple[int, int]], Coverage]:
        """BIO tag per word, the word range of every representable span, and what was lost."""
        tags = ["O"] * len(enc.words)
        starts = [w.start for w in enc.words]
        ranges: dict[str, tuple[int, int]] = {}
        cov = Coverage(spans=len(doc.spans))
        for s in doc.sorted_spans():
            first = bisect.bisect_left(starts, s.start)
            last = first
            while last + 1 < len(enc.words) and enc.words[last + 1].end <= s.end:
                last += 1
            exact = (
                first < len(enc.words) and enc.words[first].start == s.start and enc.words[last].end == s.end
            )
            if not exact or any(tags[w] != "O" for w in range(first, last + 1)):
                cov.lost_spans.append((doc.id, s))
                continue
            tags[first] = f"B-{s.label}"
            for w in range(first + 1, last + 1):
                tags[w] = f"I-{s.label}"
            ranges[s.id] = (first, last)
        return tags, ranges, cov

    def training_rows(self, enc: EncodedText, doc: Document) -> tuple[list[dict[str, Any]], Coverage]:
        """One row per window: input ids, token labels and every schema-allowed (trigger, argument) pair."""
        if enc.text != doc.text:
            raise ValueError(f"document {doc.id}: encoded text differs from the document text")
        tags, ranges, cov = self.word_tags(enc, doc)
        spans = {s.id: s for s in doc.spans if s.id in ranges}
        gold: dict[tuple[str, str], str] = {}
        cov.relations = len(doc.relations)
        order = {label: i for i, label in enumerate(self.schema.relation_labels)}
        for r in sorted(doc.relations, key=lambda r: order[r.label]):
            if r.head not in spans or r.tail not in spans or (r.head, r.tail) in gold:
                cov.lost_relations.append(
                    (doc.id, r.head, r.tail, r.label, "span lost or pair labelled twice")
                )
                continue
            gold[(r.head, r.tail)] = r.label
        placed: set[tuple[str, str]] = set()
        rows = []
        offset = len(self.prefix)
        for k, (ws, we) in enumerate(enc.windows):
            input_ids = enc.window_input_ids(k, self.prefix, self.suffix)
            labels = [IGNORE_INDEX] * len(input_ids)
            for w in range(enc.token_word[ws], len(enc.words)):
                t = enc.words[w].first_token
                if t >= we:
                    break
                if t >= ws:
                    labels[offset + t - ws] = self.tag2id[tags[w]]
            inside = []
            for sid, (fw, lw) in ranges.items():
                t0, t1 = enc.span_tokens(fw, lw)
                if ws <= t0 and t1 <= we:
                    inside.append((spans[sid], offset + t0 - ws, offset + t1 - ws))
            pairs, pair_labels = [], []
            for head, hs, he in inside:
                candidate = self.candidate[self.span_label2id[head.label]]
                for tail, ts, te in inside:
                    if tail.id == head.id or not candidate[self.span_label2id[tail.label]]:
                        continue
                    label = gold.get((head.id, tail.id), NO_RELATION)
                    if label != NO_RELATION:
                        placed.add((head.id, tail.id))
                    pairs.append(
                        [hs, he, ts, te, self.span_label2id[head.label], self.span_label2id[tail.label]]
                    )
                    pair_labels.append(self.relation2id[label])
            rows.append(
                {
                    "input_ids": input_ids,
                    "labels": labels,
                    "relation_pairs": pairs,
                    "relation_labels": pair_labels,
                    "length": len(input_ids),
                }
            )
        for (h, t), label in gold.items():
            if (h, t) not in placed:
                cov.lost_relations.append((doc.id, h, t, label, "the two spans never share a window"))
        return rows, cov

    # -- decoding ------------------------------------------------------------------------------
    def word_windows(self, enc: EncodedText) -> Tensor:
        """For each word, the window whose prediction counts: the one where its first token (the
        one that carries the tag) is farthest from an edge (:func:`best_windows`)."""
        import torch

        first = torch.tensor([w.first_token for w in enc.words], dtype=torch.long)
        return best_windows(*enc.window_bounds(), first, first + 1)

    def decode(
        self,
        enc: EncodedText,
        tag_ids: Sequence[int],
        scores: Sequence[float] | None = None,
        merge_adjacent: bool = False,
    ) -> list[DecodedSpan]:
        """Word-level BIO tags → spans with original offsets (an ``I-`` without its ``B-`` opens a span).

        ``merge_adjacent`` decodes as the guidelines annotate. Two entity spans of one type with only
        whitespace between them are one mention (§4, ``قوات التحالف الدولي``, never ``قوات`` +
        ``التحالف الدولي``: a small model often opens a second span inside one mention) unless the
        second starts one of its own (:func:`ie.text.arabic.starts_new_mention`: ``والميادين``،
        ``جنوب الحسكة``، ``بمدينة البوكمال``); in the gold data (seeds and synthetic corpus, 2,213 spans)
        that joins 11 pairs the annotators kept apart. A trigger takes the kind of attack after it,
        as a touching span or a word tagged O (§6.7, ``غارات جوية وصاروخية``;
        :func:`ie.text.arabic.is_attack_modifier`), and nothing else (§6.3: ``الغارات`` | ``استهدفت``)."""
        spans: list[DecodedSpan] = []
        cur: list[Any] | None = None  # [label, first_word, last_word, score_sum]

        def close() -> None:
            if cur is None:
                return
            label, fw, lw, total = cur
            start, end = enc.words[fw].start, enc.words[lw].end
            prev = spans[-1] if spans else None
            first = enc.text[start : enc.words[fw].end]
            if (
                merge_adjacent
                and prev is not None
                and prev.label == label
                and enc.text[prev.end : start].isspace()
                and (
                    is_attack_modifier(first)  # a trigger continues only with its kind (غارات + جوية)
                    if self.schema.is_trigger(label)
                    else not starts_new_mention(first, enc.text[enc.words[prev.last_word].start : prev.end])
                )
            ):
                n_prev = prev.last_word - prev.first_word + 1
                total += prev.score * n_prev
                spans[-1] = DecodedSpan(prev.start, end, label, total / (lw - prev.first_word + 1),
                                        prev.first_word, lw)  # fmt: skip
                return
            spans.append(DecodedSpan(start, end, label, total / (lw - fw + 1), fw, lw))

        for w, tag_id in enumerate(tag_ids):
            tag = self.tags[tag_id]
            score = float(scores[w]) if scores is not None else 1.0
            if tag == "O":
                close()
                cur = None
                continue
            bio, label = tag.split("-", 1)
            if bio == "B" or cur is None or cur[0] != label:
                close()
                cur = [label, w, w, score]
            else:
                cur[2], cur[3] = w, cur[3] + score
        close()
        if merge_adjacent:  # غارات [جوية]: the kind of attack the model left outside its trigger
            for i, d in enumerate(spans):
                if not self.schema.is_trigger(d.label):
                    continue
                w = d.last_word + 1
                while (
                    w < len(enc.words)
                    and self.tags[tag_ids[w]] == "O"
                    and enc.text[enc.words[w - 1].end : enc.words[w].start].isspace()
                    and is_attack_modifier(enc.text[enc.words[w].start : enc.words[w].end])
                ):
                    w += 1
                if w > d.last_word + 1:
                    spans[i] = DecodedSpan(
                        d.start, enc.words[w - 1].end, d.label, d.score, d.first_word, w - 1
                    )
        return spans

    @functools.cached_property
    def _iob2_transitions(self) -> tuple[Any, Any]:
        """(is an ``I-`` tag [tags], log-penalty [prev, next]): ``I-X`` only after ``B-X`` or ``I-X``,
        everything else after anything. A property of the tag set, computed once."""
        import numpy as np

        inside = np.array([tag.startswith("I-") for tag in self.tags])
        allowed = np.ones((len(self.tags), len(self.tags)), dtype=bool)
        for j, tag in enumerate(self.tags):
            if inside[j]:
                label = tag[2:]
                allowed[:, j] = [prev in (f"B-{label}", f"I-{label}") for prev in self.tags]
        return inside, np.where(allowed, 0.0, -np.inf)

    def best_tags(self, log_probs: Tensor) -> tuple[list[int], list[float]]:
        """The most probable IOB2-valid tag sequence of one text's words (Viterbi).

        Per-word argmax can emit ``I-X`` after ``O`` or after another type; the decoder reads those
        as new spans, which cuts one mention into pieces with wrong boundaries. Here ``I-X`` may
        only follow ``B-X`` or ``I-X``; ``log_probs`` is ``[words, tags]``. Returns the tag ids and
        each chosen tag's probability.
        """
        import numpy as np

        lp = log_probs.double().numpy()
        n, t = lp.shape
        if n == 0:
            return [], []
        inside, penalty = self._iob2_transitions
        score = np.where(inside, -np.inf, lp[0])
        back = np.empty((n, t), dtype=np.int64)
        for w in range(1, n):
            cand = score[:, None] + penalty  # [prev, next]
            back[w] = cand.argmax(0)
            score = cand[back[w], np.arange(t)] + lp[w]
        best = [int(score.argmax())]
        for w in range(n - 1, 0, -1):
            best.append(int(back[w, best[-1]]))
        best.reverse()
        probs = np.exp(lp[np.arange(n), best]).tolist()
        return best, probs

    def prior(self, enc: EncodedText, matches: Sequence[tuple[int, int, str]], weight: float) -> Tensor:
        """Log-space bonus ``[words, tags]``: ``weight`` on the tags that spell each ``(start, end,
        label)`` match (``B-label`` on its first word, ``I-label`` on the others).

        Added to the model's word log-probabilities and renormalized, it is a prior from outside
        knowledge (gazetteer matches, :class:`ie.text.gazetteer.Matcher`): the model's odds of the
        matched reading are multiplied by ``exp(weight)``, so a confident model still overrules it.
        A match whose ends are not word boundaries of ``enc``, or whose label the schema lacks, is
        ignored."""
        import torch

        first = {w.start: i for i, w in enumerate(enc.words)}
        last = {w.end: i for i, w in enumerate(enc.words)}
        bias = torch.zeros(len(enc.words), len(self.tags))
        for start, end, label in matches:
            fw, lw = first.get(start), last.get(end)
            if fw is None or lw is None or lw < fw or f"B-{label}" not in self.tag2id:
                continue
            bias[fw, self.tag2id[f"B-{label}"]] += weight
            bias[fw + 1 : lw + 1, self.tag2id[f"I-{label}"]] += weight
        return bias

    def to_spans(self, enc: EncodedText, decoded: Sequence[DecodedSpan], prefix: str = "p") -> list[Span]:
        return [
            Span(f"{prefix}{i + 1}", d.start, d.end, d.label, enc.text[d.start : d.end], d.score)
            for i, d in enumerate(decoded)
        ]


def _last_in(sorted_values: list[int], low: int, high: int) -> int | None:
    """Largest value in ``[low, high]``, or None."""
    i = bisect.bisect_right(sorted_values, high) - 1
    return sorted_values[i] if i >= 0 and sorted_values[i] >= low else None


def _first_in(sorted_values: list[int], low: int, high: int) -> int | None:
    """Smallest value in ``[low, high]``, or None."""
    i = bisect.bisect_left(sorted_values, low)
    return sorted_values[i] if i < len(sorted_values) and sorted_values[i] <= high else None


def pad(rows: Sequence[Sequence[int]], value: int, width: int | None = None) -> tuple[Any, Any]:
    """Rows of ids right-padded with ``value`` to ``width`` (default: the longest row): the
    ``[rows, width]`` long tensor and its attention mask (1 on real entries). The one padding rule of
    training batches and inference batches."""
    import torch

    width = max(map(len, rows)) if width is None else width
    out = torch.full((len(rows), width), value, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for b, row in enumerate(rows):
        out[b, : len(row)] = torch.as_tensor(row, dtype=torch.long)
        mask[b, : len(row)] = 1
    return out, mask


def collate(rows: Sequence[dict[str, Any]], pad_token_id: int) -> dict[str, Any]:
    """Dynamic padding to the longest window in the batch; relation pairs get their row index prepended."""
    import torch

    input_ids, attention_mask = pad([r["input_ids"] for r in rows], pad_token_id)
    labels, _ = pad([r.get("labels", []) for r in rows], IGNORE_INDEX, input_ids.shape[1])
    pairs = [[b, *p] for b, r in enumerate(rows) for p in r.get("relation_pairs", [])]
    pair_labels = [label for r in rows for label in r.get("relation_labels", [])]
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "labels": labels,
        "relation_pairs": torch.tensor(pairs, dtype=torch.long).reshape(-1, 7),
        "relation_labels": torch.tensor(pair_labels, dtype=torch.long),
    }
