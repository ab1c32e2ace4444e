"""Relation candidates of the predictor: only pairs that can share a window, placed as before.

The window choice and the pair enumeration are checked against the definitions they replaced (kept
below as references), on random windows and spans and on the seed articles with a trained model;
the number of pair rows and the memory of the window search must grow linearly with the article.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch
from modelkit import ROOT, SEEDS
from torch.profiler import ProfilerActivity, profile

from ie.core.schema import SCHEMA
from ie.model import features, prediction
from ie.model.features import Featurizer, best_windows
from ie.model.prediction import Predictor, _window_pairs

SEED_TEXTS = [p.read_text(encoding="utf-8") for p in SEEDS]

# -- the definitions the predictor used before candidates were restricted (references) -----------


def reference_best_windows(starts, ends, first, end):
    """The old ``_best_windows``: a ranges x windows comparison, then the best margin."""
    lo = (ends < end[:, None]).sum(1)
    hi = (starts <= first[:, None]).sum(1)
    width = max(int((hi - lo).max()), 1)
    k = lo[:, None] + torch.arange(width)
    valid = k < hi[:, None]
    kc = k.clamp(max=len(starts) - 1)
    margin = torch.minimum(first[:, None] - starts[kc], ends[kc] - end[:, None]).masked_fill(~valid, -1)
    best = k.gather(1, margin.argmax(1, keepdim=True)).squeeze(1)
    return torch.where(valid.any(1), best, -1)


def reference_pairs(starts, ends, t0, t1, candidate):
    """The old enumeration: every allowed (head, tail) of the spans x spans matrix, then those whose
    two spans share a window."""
    candidate = candidate.clone()
    candidate.fill_diagonal_(False)
    head, tail = candidate.nonzero(as_tuple=True)
    if not len(head):  # the old code returned here
        return head, tail, head
    k = reference_best_windows(
        starts, ends, torch.minimum(t0[head], t0[tail]), torch.maximum(t1[head], t1[tail])
    )
    keep = k >= 0
    return head[keep], tail[keep], k[keep]


def random_windows(rng: random.Random, n_tokens: int, size: int, stride: int) -> list[tuple[int, int]]:
    """Windows the way the featurizer cuts them: at most ``size`` tokens, each ending in its second
    half, the next starting up to ``stride`` tokens before that end."""
    windows, start = [], 0
    while start + size < n_tokens:
        end = rng.randint(start + size // 2 + 1, start + size)
        windows.append((start, end))
        start = rng.randint(max(end - stride, start + 1), end)
    windows.append((start, n_tokens))
    return windows


def random_spans(rng: random.Random, n_tokens: int, density: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Disjoint token ranges in text order, 1 to 6 tokens long (sometimes longer than a window)."""
    t0, t1, t = [], [], 0
    while t < n_tokens:
        t += rng.randint(0, int(2 / density))
        length = rng.choice([1, 1, 1, 2, 3, 6]) if rng.random() > 0.02 else 40
        if t + length > n_tokens:
            break
        t0.append(t)
        t1.append(t + length)
        t += length
    return torch.tensor(t0, dtype=torch.long), torch.tensor(t1, dtype=torch.long)


def bounds(windows):
    return torch.tensor([w[0] for w in windows]), torch.tensor([w[1] for w in windows])


@pytest.mark.parametrize("compare_limit", [features._COMPARE_LIMIT, 0])  # both code paths
def test_window_choice_equals_the_old_definition_on_random_inputs(monkeypatch, compare_limit):
    monkeypatch.setattr(features, "_COMPARE_LIMIT", compare_limit)
    rng = random.Random(0)
    for _ in range(200):
        size = rng.choice([8, 16, 30])
        n_tokens = rng.randint(1, 400)
        windows = random_windows(rng, n_tokens, size, rng.randint(0, size // 2 - 1))
        starts, ends = bounds(windows)
        first = torch.tensor([rng.randrange(n_tokens) for _ in range(300)])
        end = first + torch.tensor([rng.randint(1, size + 4) for _ in range(300)])
        got = best_windows(starts, ends, first, end)
        assert torch.equal(got, reference_best_windows(starts, ends, first, end))
        # and the scalar definition the featurizer used for words
        for f, e, k in zip(first.tolist(), end.tolist(), got.tolist(), strict=True):
            ok = [(min(f - ws, we - e), -i) for i, (ws, we) in enumerate(windows) if ws <= f and e <= we]
            assert k == (-max(ok)[1] if ok else -1)


def test_pairs_equal_the_old_enumeration_on_random_inputs():
    rng = random.Random(1)
    seen = 0
    for _ in range(150):
        size = rng.choice([8, 16, 30, 64])
        n_tokens = rng.randint(1, 500)
        windows = random_windows(rng, n_tokens, size, rng.randint(0, size // 2 - 1))
        starts, ends = bounds(windows)
        t0, t1 = random_spans(rng, n_tokens, rng.choice([0.2, 0.5, 1.0]))
        n = len(t0)
        labels = torch.tensor([rng.randrange(4) for _ in range(n)], dtype=torch.long)
        # labels 0 and 1 are "triggers" (heads), 3 is never a tail
        allowed = torch.tensor(
            [[h in (0, 1) and t != h and t != 3 for t in range(4)] for h in range(4)], dtype=torch.bool
        )
        head, tail = _window_pairs(starts, ends, t0, t1, allowed[labels].any(1))
        keep = allowed[labels[head], labels[tail]]
        head, tail = head[keep], tail[keep]
        k = best_windows(starts, ends, torch.minimum(t0[head], t0[tail]), torch.maximum(t1[head], t1[tail]))
        want_head, want_tail, want_k = reference_pairs(starts, ends, t0, t1, allowed[labels][:, labels])
        assert torch.equal(head, want_head) and torch.equal(tail, want_tail)  # same pairs, same order
        assert torch.equal(k, want_k)
        seen += len(head)
    assert seen > 5_000


@pytest.fixture(scope="module")
def predictor(tiny_model: Path) -> Predictor:
    torch.manual_seed(0)
    return Predictor.from_pretrained(tiny_model, device="cpu")


def _old_pair_requests(self, i, enc, decoded, starts, ends, where, requests):
    """``Predictor._pair_requests`` as it was: all spans x spans pairs, then the window filter."""
    f, offset = self.featurizer, len(self.featurizer.prefix)
    label = torch.tensor([f.span_label2id[d.label] for d in decoded])
    t0 = torch.tensor([enc.words[d.first_word].first_token for d in decoded])
    t1 = torch.tensor([enc.words[d.last_word].end_token for d in decoded])
    head, tail, k = reference_pairs(starts, ends, t0, t1, self._candidate[label][:, label])
    if not len(head):
        return
    places = torch.tensor([where[(i, kk)] for kk in range(len(enc.windows))])
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


def _dump(docs):
    return [
        ([(s.id, s.start, s.end, s.label, s.text, s.score) for s in d.spans],
         [(r.head, r.tail, r.label, r.score) for r in d.relations])
        for d in docs
    ]  # fmt: skip


def test_seed_predictions_are_unchanged(predictor, monkeypatch):
    texts = [*SEED_TEXTS, "\n".join(SEED_TEXTS * 3)]  # the seeds, and an article of 18 windows
    new = _dump(predictor.predict(texts))
    monkeypatch.setattr(Predictor, "_pair_requests", _old_pair_requests)
    old = _dump(predictor.predict(texts))
    assert sum(len(rels) for _, rels in new) > 300
    assert new == old  # same spans, relations and scores, bit for bit


def test_predictor_takes_each_words_window_from_the_featurizer(predictor, monkeypatch):
    """One window rule: the tags a prediction keeps are those of ``Featurizer.word_windows``."""
    seen: list[int] = []
    word_windows = Featurizer.word_windows

    def recording(self, enc):
        k = word_windows(self, enc)
        seen.append(len(k))
        return k

    monkeypatch.setattr(Featurizer, "word_windows", recording)
    texts = [SEED_TEXTS[0], "\n".join(SEED_TEXTS * 2)]
    predictor.predict(texts)
    assert seen == [len(enc.words) for enc in predictor.featurizer.encode(texts)]
    assert min(len(enc.windows) for enc in predictor.featurizer.encode(texts)) > 1


def test_spans_the_model_doubts_are_dropped_before_relations(predictor):
    """``min_span_score`` (0.5 by default) keeps exactly the spans whose mean tag probability reaches
    it, and only those take part in relations. The line is set at the median score of a loose
    prediction so that spans fall on both sides whatever the model has seen."""
    text = sorted((ROOT / "data/synthetic/articles").glob("*.txt"))[0].read_text(encoding="utf-8")
    model, tokenizer = predictor.model, predictor.featurizer.tokenizer
    assert Predictor(model, tokenizer, "cpu").min_span_score == 0.5
    (everything,) = Predictor(model, tokenizer, "cpu", min_span_score=0.0).predict([text])
    scores = sorted(s.score for s in everything.spans)
    line = scores[len(scores) // 2]
    assert scores[0] < line, scores  # spans on both sides of the line
    (kept,) = Predictor(model, tokenizer, "cpu", min_span_score=line).predict([text])
    assert [(s.start, s.end, s.label, s.score) for s in kept.spans] == [
        (s.start, s.end, s.label, s.score) for s in everything.spans if s.score >= line
    ]
    ids = {s.id for s in kept.spans}
    assert kept.relations and all(r.head in ids and r.tail in ids for r in kept.relations)
    with pytest.raises(ValueError, match="min_span_score"):
        Predictor(model, tokenizer, "cpu", min_span_score=1.5)


def test_scores_are_the_model_probabilities_of_the_predicted_labels(predictor):
    """A span's score is the mean over its tagged words of the chosen tag's probability under the
    gazetteer prior (the model's softmax times exp(weight) on the gazetteer's reading, renormalized;
    Viterbi's choice: the best tag unless IOB2 forbids it); a relation's score is the softmax
    probability of its label for that pair. Recomputed here from the model's own logits on the
    opening paragraph of a seed (one window, so every word has one tag distribution)."""
    f, model = predictor.featurizer, predictor.model
    text = SEED_TEXTS[0].split("\n")[0]
    (enc,) = f.encode([text])
    assert len(enc.windows) == 1 and enc.windows[0] == (0, len(enc.input_ids))
    offset = len(f.prefix)
    with torch.inference_mode():
        hidden = model.encode(torch.tensor([enc.window_input_ids(0, f.prefix, f.suffix)]), None)
        logp = model.tag_logits(hidden).float().log_softmax(-1)[0]
    first = torch.tensor([offset + w.first_token for w in enc.words])
    matches = predictor.matcher.find(text)
    assert predictor.gazetteer_weight > 0 and matches  # the default, and it applies here
    posterior = (logp[first] + f.prior(enc, matches, predictor.gazetteer_weight)).log_softmax(-1)
    tags, _ = f.best_tags(posterior)
    best = torch.zeros(len(logp))
    best[first] = posterior[torch.arange(len(tags)), torch.tensor(tags)].exp()
    tagged = {offset + w.first_token for w, t in zip(enc.words, tags, strict=True) if f.tags[t] != "O"}
    (doc,) = predictor.predict([text])
    assert doc.spans and doc.relations

    def words_of(span):
        covered = [w for w in enc.words if span.start <= w.start and w.end <= span.end]
        assert (covered[0].start, covered[-1].end) == (span.start, span.end)
        return covered

    for s in doc.spans:
        # the words the model tagged (a kind-of-attack word taken in after a trigger was tagged O)
        scored = [
            best[offset + w.first_token].item() for w in words_of(s) if offset + w.first_token in tagged
        ]
        assert s.score == pytest.approx(sum(scored) / len(scored), abs=1e-6), s
    for r in doc.relations:
        head, tail = (words_of(doc.span(x)) for x in (r.head, r.tail))
        pair = torch.tensor([[0, head[0].first_token + offset, head[-1].end_token + offset,
                              tail[0].first_token + offset, tail[-1].end_token + offset,
                              f.span_label2id[doc.span(r.head).label],
                              f.span_label2id[doc.span(r.tail).label]]])  # fmt: skip
        with torch.inference_mode():
            probs = model.relation_logits(hidden, pair).float().softmax(-1)[0]
        assert f.relation_labels[int(probs.argmax())] == r.label
        assert r.score == pytest.approx(probs.max().item(), abs=1e-6), r


def test_pair_rows_grow_linearly_with_the_article(predictor, monkeypatch):
    rows: list[int] = []

    def counting(starts, ends, first, end):
        rows.append(len(first))  # the pairs' call: the words' goes through Featurizer.word_windows
        return best_windows(starts, ends, first, end)

    monkeypatch.setattr(prediction, "best_windows", counting)
    counts = []
    for copies in (2, 4):
        rows.clear()
        (doc,) = predictor.predict(["\n".join(SEED_TEXTS * copies)])
        counts.append((sum(rows), len(doc.spans)))
    (pairs_small, spans_small), (pairs_large, spans_large) = counts
    assert spans_large == pytest.approx(2 * spans_small, rel=0.05)
    # all pairs of spans would grow 4x; pairs that can share a window grow as the article does
    assert pairs_large / pairs_small == pytest.approx(2, rel=0.1), counts


def _allocated_bytes(fn) -> int:
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    return sum(e.self_cpu_memory_usage for e in prof.events() if e.self_cpu_memory_usage > 0)


def test_window_search_memory_is_linear():
    # a word-level call on a long article: every word against windows of 256 tokens, stride 64
    rng = random.Random(2)
    sizes = []
    for n_tokens in (100_000, 200_000):
        starts, ends = bounds(random_windows(rng, n_tokens, 256, 63))
        first = torch.arange(0, n_tokens, 2)
        sizes.append(_allocated_bytes(lambda s=starts, e=ends, f=first: best_windows(s, e, f, f + 1)))
    # the old ranges x windows comparison allocated 4x as much when the article doubled
    assert sizes[1] / sizes[0] < 2.5, sizes


def test_gazetteer_prior_puts_its_names_in_and_a_confident_model_keeps_its_reading(predictor):
    """``gazetteer_weight``: each exact gazetteer match multiplies the odds of its reading by
    exp(weight) (:meth:`Featurizer.prior`; 5 by default, 0 turns it off); a huge weight puts every
    match inside a span of its label (its own, or a longer one merged from
    the model's touching span: ``قرية`` + ``الهري``); scores stay probabilities."""
    from ie.text.gazetteer import Matcher

    text = sorted((ROOT / "data/synthetic/articles").glob("*.txt"))[1].read_text(encoding="utf-8")
    model, tokenizer = predictor.model, predictor.featurizer.tokenizer
    f = predictor.featurizer
    (enc,) = f.encode([text])
    matches = Matcher.from_gazetteer().find(text)
    assert len(matches) > 5
    bias = f.prior(enc, [*matches, (1, 3, "LOC"), (matches[0][0], matches[0][1], "NOPE")], 2.0)
    first = {w.start: i for i, w in enumerate(enc.words)}
    s, e, label = matches[0]
    assert bias[first[s], f.tag2id[f"B-{label}"]] == 2.0
    assert int((bias != 0).sum()) == sum(
        sum(1 for w in enc.words if s <= w.start and w.end <= e) for s, e, _ in matches
    )  # one cell per matched word; the mid-word match and the unknown label add none

    assert Predictor(model, tokenizer, "cpu").gazetteer_weight == 5.0
    (off,) = Predictor(model, tokenizer, "cpu", gazetteer_weight=0.0, min_span_score=0.0).predict([text])
    (on,) = Predictor(model, tokenizer, "cpu", min_span_score=0.0).predict([text])
    # off, a match the model reads otherwise stays so; the prior puts more matches into spans
    covered = [
        sum(
            any(x.start <= s and e <= x.end and x.label == label for x in doc.spans)
            for s, e, label in matches
        )
        for doc in (off, on)
    ]
    assert covered[0] < covered[1], covered
    (forced,) = Predictor(model, tokenizer, "cpu", gazetteer_weight=50.0).predict([text])
    assert all(
        any(x.start <= s and e <= x.end and x.label == label for x in forced.spans) for s, e, label in matches
    )
    assert all(0.0 < x.score <= 1.0 and text[x.start : x.end] == x.text for x in forced.spans)
    ids = {x.id for x in forced.spans}
    assert all(r.head in ids and r.tail in ids for r in forced.relations)
    with pytest.raises(ValueError, match="gazetteer_weight"):
        Predictor(model, tokenizer, "cpu", gazetteer_weight=-1.0)


def test_feared_or_planned_attacks_are_not_triggers(predictor):
    """``drop_hypothetical`` (on by default): a trigger after a cue of a feared, planned or threatened
    attack is dropped before relations; in the gold data (seeds and synthetic corpus) no trigger
    follows such a cue, and 25 attack words that are not triggers do."""
    from ie.annotation.labelstudio import load_documents
    from ie.text.arabic import after_hypothetical_cue

    text = "نزح الأهالي خوفاً من تكرار القصف، وتوعدت الميليشيات بمزيد من الهجمات."
    text += " وشنت الطائرات غارات جوية على المواقع."
    assert after_hypothetical_cue(text, text.index("القصف")) and after_hypothetical_cue(
        text, text.index("الهجمات")
    )
    assert not after_hypothetical_cue(text, text.index("غارات"))
    docs = load_documents(ROOT / "data/annotations/seeds.json") + load_documents(
        ROOT / "data/synthetic/synthetic.json"
    )
    assert not [
        s.text
        for d in docs
        for s in d.spans
        if SCHEMA.is_trigger(s.label) and after_hypothetical_cue(d.text, s.start)
    ]

    model, tokenizer = predictor.model, predictor.featurizer.tokenizer
    (kept,) = Predictor(model, tokenizer, "cpu", drop_hypothetical=False, min_span_score=0.0).predict([text])
    (dropped,) = Predictor(model, tokenizer, "cpu", min_span_score=0.0).predict([text])
    cued = [s for s in kept.spans if SCHEMA.is_trigger(s.label) and after_hypothetical_cue(text, s.start)]
    assert cued  # the model reads the feared and the threatened attack as triggers
    assert [(s.start, s.end, s.label) for s in dropped.spans] == [
        (s.start, s.end, s.label) for s in kept.spans if s not in cued
    ]
