"""A CPU-sized BERT built from scratch, saved exactly as a hub checkpoint is laid out.

No model hub is reachable from CI, so tests and ``configs/cpu-tiny.yaml`` use an encoder built
here: a WordPiece vocabulary trained on the NORMALIZED corpus (the text the model will see), a
:class:`~transformers.BertConfig` and randomly initialised :class:`~transformers.BertModel`
weights in safetensors. The folder loads with ``AutoTokenizer.from_pretrained(dir)`` and
``AutoModel.from_pretrained(dir)``, the same calls that load ``aubmindlab/bert-base-arabertv02``.

The ``tokenizers`` WordPiece trainer is not deterministic across processes (ties between equally
frequent merges are broken in hash-map order: huggingface/tokenizers#1794), so two builds from the
same texts can differ by a few word pieces. A build is therefore cached by content and reused:
:func:`build_encoder` returns the existing folder when texts and spec match.

    python -m ie.encoder --texts seeds/*.txt --output_dir build/tiny-bert
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from ie.fileio import atomic_write_json
from ie.normalize import normalize

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


def train_wordpiece(texts: Iterable[str], vocab_size: int, min_frequency: int = 1):
    """A BERT WordPiece tokenizer trained on the normalized texts, as a fast ``BertTokenizerFast``."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import BertTokenizerFast

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    # The same normalizer/pre-tokenizer BertTokenizerFast(do_lower_case=False) uses, so the
    # trained vocabulary matches what the saved tokenizer produces.
    tok.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=False
    )
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        continuing_subword_prefix="##",
        show_progress=False,
    )
    tok.train_from_iterator((normalize(t).text for t in texts), trainer=trainer)
    return BertTokenizerFast(vocab=tok.get_vocab(), do_lower_case=False, strip_accents=False)


def _fingerprint(texts: Sequence[str], spec: EncoderSpec) -> str:
    h = hashlib.sha256(json.dumps(asdict(spec), sort_keys=True).encode())
    for t in texts:
        h.update(hashlib.sha256(t.encode()).digest())
    return h.hexdigest()[:16]


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
