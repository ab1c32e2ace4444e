"""Features: gold spans survive tokenization, windows and decoding exactly, on the real gold seeds."""

from __future__ import annotations

import pytest
import torch
from modelkit import CPU_TINY, gold_documents, tokenizer

from ie.core.document import Document, Span
from ie.core.schema import SCHEMA
from ie.model.features import IGNORE_INDEX, Featurizer, best_windows, collate
from ie.training.config import load_config

# 6000: the cpu-tiny vocabulary size (every seed word is one token); 300: words split into many pieces.
VOCABS = (6000, 300)


def _cpu_tiny_featurizer(vocab: int) -> Featurizer:
    cfg = load_config(CPU_TINY, ["--output_dir", "unused"])
    return Featurizer(tokenizer(vocab), SCHEMA, cfg.window_length, cfg.window_stride)


def _round_trip(f: Featurizer, doc: Document) -> tuple[list[tuple[int, int, str]], object]:
    """Gold → window label rows → per-word tag from the window chosen for it → decoded spans."""
    (enc,) = f.encode([doc.text], [doc.id])
    rows, cov = f.training_rows(enc, doc)
    offset = len(f.prefix)
    tags = []
    for w, k in enumerate(f.word_windows(enc)):
        ws = enc.windows[k][0]
        label = rows[k]["labels"][offset + enc.words[w].first_token - ws]
        assert label != IGNORE_INDEX
        tags.append(label)
    decoded = f.to_spans(enc, f.decode(enc, tags))
    for s in decoded:
        assert doc.text[s.start : s.end] == s.text
    return sorted((s.start, s.end, s.label) for s in decoded), cov


@pytest.mark.parametrize("vocab", VOCABS)
def test_gold_round_trip_recovers_every_gold_span(vocab: int):
    f = _cpu_tiny_featurizer(vocab)
    lost_spans, lost_relations, total = [], [], 0
    for doc in gold_documents():
        decoded, cov = _round_trip(f, doc)
        lost_spans += cov.lost_spans
        lost_relations += cov.lost_relations
        total += len(doc.spans)
        assert decoded == sorted((s.start, s.end, s.label) for s in doc.spans), doc.id
    assert total > 500
    # What a model could never learn: spans cut inside a sub-token, relations across windows.
    assert lost_spans == [], f"gold spans lost to tokenization: {lost_spans}"
    assert lost_relations == [], f"gold relations whose spans never share a window: {lost_relations}"


def test_labels_sit_on_first_sub_tokens_only():
    f = _cpu_tiny_featurizer(300)
    doc = gold_documents()[0]
    (enc,) = f.encode([doc.text])
    rows, _ = f.training_rows(enc, doc)
    assert any(w.end_token - w.first_token > 2 for w in enc.words)  # the small vocab splits words
    offset = len(f.prefix)
    for (ws, we), row in zip(enc.windows, rows, strict=True):
        firsts = {offset + w.first_token - ws for w in enc.words if ws <= w.first_token < we}
        labelled = {i for i, label in enumerate(row["labels"]) if label != IGNORE_INDEX}
        assert labelled == firsts
        assert row["labels"][0] == IGNORE_INDEX and row["labels"][-1] == IGNORE_INDEX  # [CLS] / [SEP]
        assert row["input_ids"][0] == tokenizer(300).cls_token_id
        assert len(row["input_ids"]) <= f.max_length


def test_relation_candidates_follow_the_schema():
    f = _cpu_tiny_featurizer(6000)
    doc = gold_documents()[1]
    (enc,) = f.encode([doc.text])
    rows, _ = f.training_rows(enc, doc)
    positives = 0
    for row in rows:
        for (hs, he, ts, te, hl, tl), rel in zip(row["relation_pairs"], row["relation_labels"], strict=True):
            head, tail = f.span_labels[hl], f.span_labels[tl]
            assert SCHEMA.is_trigger(head) and SCHEMA.is_candidate_pair(head, tail)
            assert 0 < hs < he <= len(row["input_ids"]) - 1 and 0 < ts < te <= len(row["input_ids"]) - 1
            if rel:
                positives += 1
                assert SCHEMA.allows(f.relation_labels[rel], head, tail)
    assert positives >= len(doc.relations)  # every gold relation, at least once (overlaps repeat some)
    batch = collate(rows, tokenizer(6000).pad_token_id)
    assert batch["relation_pairs"].shape == (sum(len(r["relation_pairs"]) for r in rows), 7)


@pytest.mark.parametrize("vocab", VOCABS)
def test_windows_cover_a_long_article_without_losing_a_token(vocab: int):
    f = Featurizer(tokenizer(vocab), SCHEMA, max_length=128, stride=32)
    gold = gold_documents()[3]
    copies = 12
    text = "\n".join([gold.text] * copies)
    spans, step = [], len(gold.text) + 1
    for c in range(copies):
        spans += [
            Span(f"{s.id}-{c}", s.start + c * step, s.end + c * step, s.label, s.text) for s in gold.spans
        ]
    doc = Document("long", text, spans)
    (enc,) = f.encode([text])
    n = len(enc.input_ids)
    assert n > 20 * f.content_length
    assert enc.windows[0][0] == 0 and enc.windows[-1][1] == n
    covered = [0] * n
    word_starts = {w.first_token for w in enc.words}
    size = f.content_length
    for k, (ws, we) in enumerate(enc.windows):
        assert 0 < we - ws <= size
        assert ws in word_starts and (we in word_starts or we == n)  # never cut inside a word
        for t in range(ws, we):
            covered[t] += 1
        if k:
            assert enc.windows[k - 1][0] < ws < enc.windows[k - 1][1], "consecutive windows overlap"
            assert enc.windows[k - 1][1] - ws <= f.stride
        if we < n:
            # ends at the last sentence start in the window's second half, when there is one
            inside = [s for s in enc.sentence_starts if ws + size // 2 < s <= ws + size]
            assert we == (max(inside) if inside else we)
    assert min(covered) >= 1
    assert len(enc.sentence_starts) >= 10 * copies
    decoded, cov = _round_trip(f, doc)
    assert cov.lost_spans == []
    assert decoded == sorted((s.start, s.end, s.label) for s in spans)


def test_offsets_survive_diacritics_tatweel_and_indic_digits():
    text = "قُتِلَ ٣ مدنيين بـ”قصفٍ“ عنيـــف على مدينة الرَّقة ٢٠٢٤م."
    spans = []
    for phrase, label in (("قُتِلَ", "KILLED"), ("٣", "NUM"), ("مدنيين", "CIVILIAN"), ("قصفٍ", "ATTACK"),
                          ("مدينة الرَّقة", "LOC"), ("٢٠٢٤م", "TIME")):  # fmt: skip
        start = text.index(phrase)
        spans.append(Span(f"s{len(spans)}", start, start + len(phrase), label, phrase))
    doc = Document("marks", text, spans)
    f = _cpu_tiny_featurizer(300)
    decoded, cov = _round_trip(f, doc)
    assert cov.lost_spans == []
    assert decoded == sorted((s.start, s.end, s.label) for s in spans)


def test_decode_is_lenient_and_merge_is_deterministic():
    f = _cpu_tiny_featurizer(6000)
    text = "قصفت طائرات حربية مواقع في دير الزور"
    (enc,) = f.encode([text])
    t = f.tag2id
    tags = [t["I-ATTACK"], t["B-WEAPON"], t["I-WEAPON"], t["O"], t["O"], t["I-LOC"], t["B-LOC"]]
    spans = f.to_spans(enc, f.decode(enc, tags, [0.5, 1.0, 0.5, 1, 1, 0.9, 0.7]))
    assert [(s.text, s.label) for s in spans] == [("قصفت", "ATTACK"), ("طائرات حربية", "WEAPON"),
                                                   ("دير", "LOC"), ("الزور", "LOC")]  # fmt: skip
    assert spans[1].score == pytest.approx(0.75)
    enc.windows = [(0, 4), (2, 7), (3, 7)]
    # token 2: margin 1 in window 0, 0 in window 1; token 3: 0 in windows 0 and 2, 1 in window 1;
    # token 5: margin 1 in windows 1 and 2, a tie that goes to the first
    assert len(enc.input_ids) == 7
    assert f.word_windows(enc).tolist() == [0, 0, 0, 1, 1, 1, 1]
    # token range [4, 5): margin 2 in window 1, 1 in window 2; [0, 7): no window holds it
    starts, ends = enc.window_bounds()
    assert best_windows(starts, ends, torch.tensor([4, 0]), torch.tensor([5, 7])).tolist() == [1, -1]


def _valid_iob2(f: Featurizer, tags: list[int]) -> bool:
    names = [f.tags[t] for t in tags]
    return all(
        not n.startswith("I-") or (i > 0 and names[i - 1] in (f"B-{n[2:]}", f"I-{n[2:]}"))
        for i, n in enumerate(names)
    )


def test_best_tags_is_the_most_probable_valid_iob2_sequence():
    """Viterbi over word log-probabilities: never ``I-X`` after ``O`` or another type, and no valid
    sequence is more probable (checked against every sequence of three words)."""
    import itertools

    f = _cpu_tiny_featurizer(6000)
    t = f.tag2id
    # greedy reads O, I-LOC, I-LOC (an I- without its B-); the best valid reading is O, B-LOC, I-LOC
    probs = torch.full((3, len(f.tags)), 1e-4)
    probs[0, t["O"]] = 0.9
    probs[1, t["I-LOC"]], probs[1, t["B-LOC"]] = 0.6, 0.35
    probs[2, t["I-LOC"]] = 0.9
    tags, scores = f.best_tags(probs.log())
    assert [f.tags[i] for i in tags] == ["O", "B-LOC", "I-LOC"]
    assert scores == pytest.approx([0.9, 0.35, 0.9])
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        lp = torch.randn(3, len(f.tags), generator=gen).mul(3).log_softmax(-1)
        tags, _ = f.best_tags(lp)
        assert _valid_iob2(f, tags)
        best = max(
            (seq for seq in itertools.product(range(len(f.tags)), repeat=3) if _valid_iob2(f, list(seq))),
            key=lambda seq: sum(lp[i, k].item() for i, k in enumerate(seq)),
        )
        assert tags == list(best)
    assert f.best_tags(torch.zeros(0, len(f.tags))) == ([], [])


def test_touching_spans_of_one_type_are_one_mention_unless_coordinated():
    """``merge_adjacent``: the guidelines' longest complete mention; a conjunction, another type or a
    punctuation mark between them keeps two mentions."""
    f = _cpu_tiny_featurizer(6000)
    t = f.tag2id
    text = "قصفت قوات التحالف الدولي مواقع في دير الزور والميادين، الرقة"
    (enc,) = f.encode([text])
    by_word = {"قصفت": "B-ATTACK", "قوات": "B-ACTOR", "التحالف": "B-ACTOR", "الدولي": "I-ACTOR",
               "مواقع": "B-FAC", "في": "O", "دير": "B-LOC", "الزور": "I-LOC", "والميادين": "B-LOC",
               "،": "O", "الرقة": "B-LOC"}  # fmt: skip
    words = [text[w.start : w.end] for w in enc.words]
    assert set(words) <= set(by_word), words
    tags = [t[by_word[w]] for w in words]
    scores = [{"قوات": 0.4, "التحالف": 0.9, "الدولي": 0.8}.get(w, 1.0) for w in words]
    merged = f.to_spans(enc, f.decode(enc, tags, scores, merge_adjacent=True))
    assert [(s.text, s.label) for s in merged] == [
        ("قصفت", "ATTACK"), ("قوات التحالف الدولي", "ACTOR"), ("مواقع", "FAC"), ("دير الزور", "LOC"),
        ("والميادين", "LOC"), ("الرقة", "LOC"),
    ]  # fmt: skip
    assert merged[1].score == pytest.approx((0.4 + 0.9 + 0.8) / 3)
    assert all(text[s.start : s.end] == s.text for s in merged)
    split = f.to_spans(enc, f.decode(enc, tags, scores))
    assert ("قوات", "ACTOR") in [(s.text, s.label) for s in split]


def test_a_compass_point_or_a_place_behind_bi_starts_a_new_mention():
    """The guidelines' flat places: ``[[مدينة الشدادي]] [[جنوب الحسكة]]``, ``[[منطقة الجمعيات]]
    [[بمدينة البوكمال]]``; a second compass point (``جنوب`` + ``شرقي الميادين``) and an adjective
    (``ريف ديرالزور`` + ``الشرقي``) continue the mention."""
    f = _cpu_tiny_featurizer(6000)
    text = (
        "في مدينة الشدادي جنوب الحسكة ومنطقة الجمعيات بمدينة البوكمال وريف ديرالزور الشرقي جنوب شرقي الميادين"
    )
    (enc,) = f.encode([text])
    starts = {"مدينة", "جنوب", "ومنطقة", "بمدينة", "وريف", "الشرقي", "شرقي"}
    words = [text[w.start : w.end] for w in enc.words]
    tags = [f.tag2id["O" if w == "في" else ("B-LOC" if w in starts else "I-LOC")] for w in words]
    merged = f.to_spans(enc, f.decode(enc, tags, merge_adjacent=True))
    assert [s.text for s in merged] == [
        "مدينة الشدادي", "جنوب الحسكة", "ومنطقة الجمعيات", "بمدينة البوكمال", "وريف ديرالزور الشرقي",
        "جنوب شرقي الميادين",
    ]  # fmt: skip


def test_a_trigger_takes_the_kind_of_attack_after_it_and_no_verb():
    """§6.7: ``[[غارات جوية وصاروخية|ATTACK]]``: a kind-of-attack adjective the model left outside (O)
    or opened as a span of its own joins the trigger; a touching verb does not (``الغارات`` +
    ``استهدفت``: "a verb that continues an event noun is not a second trigger"), nor does an
    intensity word (``لقصف مكثف``)."""
    f = _cpu_tiny_featurizer(6000)
    text = "شنت الطائرات غارات جوية وصاروخية ثم هجمات صاروخية ثم الغارات استهدفت المواقع بعد قصف مكثف"
    (enc,) = f.encode([text])
    by_word = {"شنت": "O", "الطائرات": "B-WEAPON", "غارات": "B-ATTACK", "جوية": "O", "وصاروخية": "O",
               "ثم": "O", "هجمات": "B-ATTACK", "صاروخية": "B-ATTACK", "الغارات": "B-ATTACK",
               "استهدفت": "B-ATTACK", "المواقع": "B-FAC", "بعد": "O",
               "قصف": "B-ATTACK", "مكثف": "O"}  # fmt: skip
    tags = [f.tag2id[by_word[text[w.start : w.end]]] for w in enc.words]
    merged = f.to_spans(enc, f.decode(enc, tags, merge_adjacent=True))
    assert [s.text for s in merged if s.label == "ATTACK"] == [
        "غارات جوية وصاروخية", "هجمات صاروخية", "الغارات", "استهدفت", "قصف",
    ]  # fmt: skip
    plain = f.to_spans(enc, f.decode(enc, tags))
    assert ["غارات", "هجمات", "صاروخية"] == [s.text for s in plain if s.label == "ATTACK"][:3]


def test_featurizer_rejects_a_window_too_small_and_a_slow_tokenizer():
    with pytest.raises(ValueError, match="stride"):
        Featurizer(tokenizer(6000), SCHEMA, max_length=64, stride=40)

    class Slow:
        is_fast = False

    with pytest.raises(ValueError, match="fast tokenizer"):
        Featurizer(Slow(), SCHEMA)
