"""A CPU-sized BERT built from scratch, saved exactly as a hub checkpoint is laid out.

No model hub is reachable from CI, so tests and ``configs/cpu-tiny.yaml`` use an encoder built
here: a WordPiece vocabulary trained on the NORMALIZED corpus (the text the model will see), a
:class:`~transformers.BertConfig` and randomly initialised :class:`~transformers.BertModel`
weights in safetensors. The folder loads with ``AutoTokenizer.from_pretrained(dir)`` and
``AutoModel.from_pretrained(dir)``, the same calls that load ``aubmindlab/bert-base-arabertv02``.

The vocabulary is learned here, not by the ``tokenizers`` WordPiece trainer: that trainer breaks
ties between equally frequent merges in hash-map order, which changes from process to process
(huggingface/tokenizers#1794), so the same texts gave a different vocabulary, and so different
weights, on every run. :func:`train_wordpiece` runs the same merge procedure with ties broken by the
pieces themselves: same texts and spec, same ``tokenizer.json`` and ``model.safetensors``, byte for
byte. A build is also cached by content: :func:`build_encoder` returns the existing folder when
texts and spec match.

    python -m ie.model.encoder --texts seeds/*.txt --output_dir build/tiny-bert
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from ie.core.fileio import atomic_write_json
from ie.core.hashing import sha256_json, sha256_text
from ie.text.normalize import normalize

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
BUILD_INFO = "ie_encoder_build.json"


@dataclass(frozen=True)
class EncoderSpec:
    """Size of a from-scratch BERT (the defaults fit the five seed articles in about a minute on 2 cores)."""

    vocab_size: int = 6000
    hidden_size: int = 256
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    intermediate_size: int = 1024
    max_position_embeddings: int = 512
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    min_frequency: int = 1
    seed: int = 0


def wordpiece_vocabulary(
    word_counts: dict[str, int], vocab_size: int, min_frequency: int = 1, prefix: str = "##"
) -> list[str]:
    """WordPiece pieces learned by frequent-pair merging (what ``tokenizers``' WordPieceTrainer does),
    in a fixed order: ties between equally frequent pairs go to the smaller pair of strings, never to
    hash-map order, so the same counts always give the same vocabulary.

    Returns the special tokens, then the alphabet (by frequency, then text), then the merged pieces in
    merge order, at most ``vocab_size`` in all.
    """
    import heapq

    vocab: list[str] = list(SPECIAL_TOKENS)
    index: dict[str, int] = {t: i for i, t in enumerate(vocab)}
    words = [[w[0], *(prefix + c for c in w[1:])] for w in sorted(word_counts) if w]
    counts = [word_counts[w] for w in sorted(word_counts) if w]
    freq: dict[str, int] = {}
    for symbols, n in zip(words, counts, strict=True):
        for sym in symbols:
            freq[sym] = freq.get(sym, 0) + n
    for sym in sorted(freq, key=lambda t: (-freq[t], t)):
        if sym not in index:
            index[sym] = len(vocab)
            vocab.append(sym)

    pairs: dict[tuple[str, str], int] = {}
    where: dict[tuple[str, str], set[int]] = {}

    def count(i: int, sign: int, changed: set[tuple[str, str]]) -> None:
        symbols = words[i]
        for pair in zip(symbols, symbols[1:], strict=False):
            pairs[pair] = pairs.get(pair, 0) + sign * counts[i]
            where.setdefault(pair, set()).add(i)
            changed.add(pair)

    changed: set[tuple[str, str]] = set()
    for i in range(len(words)):
        count(i, 1, changed)
    heap = [(-pairs[p], p) for p in changed]
    heapq.heapify(heap)
    while heap and len(vocab) < vocab_size:
        neg, pair = heapq.heappop(heap)
        if pairs.get(pair, 0) != -neg or -neg <= 0:
            continue  # stale entry: the pair's current count was pushed when it changed
        if -neg < min_frequency:
            break
        a, b = pair
        merged = a + b[len(prefix) :]
        if merged not in index:
            index[merged] = len(vocab)
            vocab.append(merged)
        changed = set()
        for i in sorted(where.pop(pair)):
            symbols = words[i]
            if not any(x == a and y == b for x, y in zip(symbols, symbols[1:], strict=False)):
                continue
            count(i, -1, changed)
            out, j = [], 0
            while j < len(symbols):
                if j + 1 < len(symbols) and symbols[j] == a and symbols[j + 1] == b:
                    out.append(merged)
                    j += 2
                else:
                    out.append(symbols[j])
                    j += 1
            words[i] = out
            count(i, 1, changed)
        for p in sorted(changed):
            if pairs.get(p, 0) > 0:
                heapq.heappush(heap, (-pairs[p], p))
    return vocab


def train_wordpiece(texts: Iterable[str], vocab_size: int, min_frequency: int = 1):
    """A BERT WordPiece tokenizer trained on the normalized texts, as a fast ``BertTokenizerFast``;
    deterministic (see :func:`wordpiece_vocabulary`)."""
    from tokenizers import normalizers, pre_tokenizers
    from transformers import BertTokenizerFast

    # The same normalizer/pre-tokenizer BertTokenizerFast(do_lower_case=False) uses, so the
    # learned vocabulary matches what the saved tokenizer produces.
    normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=False
    )
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    word_counts: dict[str, int] = {}
    for text in texts:
        for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(normalize(text).text)):
            word_counts[word] = word_counts.get(word, 0) + 1
    vocab = wordpiece_vocabulary(word_counts, vocab_size, min_frequency)
    return BertTokenizerFast(
        vocab={t: i for i, t in enumerate(vocab)}, do_lower_case=False, strip_accents=False
    )


def _fingerprint(texts: Sequence[str], spec: EncoderSpec) -> str:
    return sha256_json([asdict(spec), [sha256_text(t) for t in texts]])[:16]


def build_encoder(
    texts: Sequence[str], output_dir: str | os.PathLike[str], spec: EncoderSpec | None = None
) -> Path:
    """Write tokenizer + config + random-init weights to ``output_dir`` (skipped if already built from the
    same texts and spec). Written to a temp folder and renamed, so a crash never leaves half a model."""
    import torch
    from transformers import BertConfig, BertModel

    spec = spec or EncoderSpec()
    texts = list(texts)
    if not any(t.strip() for t in texts):
        raise ValueError("cannot build an encoder vocabulary from empty texts")
    out = Path(output_dir)
    fingerprint = _fingerprint(texts, spec)
    info_path = out / BUILD_INFO
    if info_path.is_file() and json.loads(info_path.read_text()).get("fingerprint") == fingerprint:
        return out

    tokenizer = train_wordpiece(texts, spec.vocab_size, spec.min_frequency)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        num_hidden_layers=spec.num_hidden_layers,
        num_attention_heads=spec.num_attention_heads,
        intermediate_size=spec.intermediate_size,
        max_position_embeddings=spec.max_position_embeddings,
        hidden_dropout_prob=spec.hidden_dropout_prob,
        attention_probs_dropout_prob=spec.attention_probs_dropout_prob,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        model = BertModel(config)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        tokenizer.model_max_length = spec.max_position_embeddings
        tokenizer.save_pretrained(tmp)
        model.save_pretrained(tmp, safe_serialization=True)
        atomic_write_json(
            tmp / BUILD_INFO, {"fingerprint": fingerprint, "spec": asdict(spec), "documents": len(texts)}
        )
        if out.exists():
            shutil.rmtree(out)
        tmp.chmod(0o755)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--texts", nargs="+", required=True, help="UTF-8 text files the vocabulary is trained on"
    )
    parser.add_argument("--output_dir", required=True)
    for name, f in EncoderSpec.__dataclass_fields__.items():
        parser.add_argument(f"--{name}", type=type(f.default), default=f.default)
    args = parser.parse_args(argv)
    texts = [Path(p).read_text(encoding="utf-8") for p in args.texts]
    spec = EncoderSpec(**{k: getattr(args, k) for k in EncoderSpec.__dataclass_fields__})
    print(build_encoder(texts, args.output_dir, spec))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
