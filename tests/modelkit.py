"""Real CPU-sized encoders for the feature/model/training tests, built once per test process.

Each is a WordPiece tokenizer trained on the normalized seed articles plus a random-init BERT,
saved by :func:`ie.model.encoder.build_encoder` in the layout a hub checkpoint has.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from ie.annotation.labelstudio import load_documents
from ie.core.document import Document
from ie.model.encoder import EncoderSpec, build_encoder

ROOT = Path(__file__).resolve().parents[1]
GOLD = ROOT / "data" / "annotations" / "seeds.json"
SEED_DIR = ROOT / "seeds"  # the five seed articles
SEEDS = sorted(SEED_DIR.glob("*.txt"))
CPU_TINY = ROOT / "configs" / "cpu-tiny.yaml"
ARABERT = ROOT / "configs" / "arabert.yaml"

_TMP = Path(tempfile.mkdtemp(prefix="ie-modelkit-"))
atexit.register(shutil.rmtree, _TMP, ignore_errors=True)


def free_port() -> int:
    """A TCP port nobody listens on now (a launcher's rendezvous, a test server, a refused connection)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ie_studio(*args: str) -> subprocess.CompletedProcess[str]:
    """The real ``ie-studio`` entry point in a fresh process; the token travels in the environment only."""
    from ie.annotation.client import KEY_ENV

    done = subprocess.run([sys.executable, "-m", "ie.cli.studio", *args],
                          capture_output=True, text=True, env=dict(os.environ), check=False)  # fmt: skip
    assert os.environ[KEY_ENV] not in done.stdout + done.stderr
    return done


def console_command(name: str, module: str) -> list[str]:
    """The venv's console script ``name``, or ``python -m module`` where it is not installed."""
    exe = Path(sys.executable).with_name(name)
    return [str(exe)] if exe.exists() else [sys.executable, "-m", module]


# Small enough that a few optimizer steps take well under a second on 2 cores.
TEST_SPEC = EncoderSpec(
    vocab_size=6000, hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128
)

# configs/cpu-tiny.yaml shrunk so a run takes seconds: same code path, smaller encoder and windows.
SMALL = [
    "--scratch_hidden_size", "64", "--scratch_intermediate_size", "128", "--scratch_num_layers", "2",
    "--scratch_num_heads", "2", "--relation_hidden_size", "64", "--window_length", "128",
    "--window_stride", "32", "--per_device_train_batch_size", "2",
]  # fmt: skip
# configs/cpu-tiny.yaml trains on the synthetic corpus too: a test about training mechanics on a couple of
# articles leaves it out (a bare --extra_train_data empties the list), or each run trains ~200 articles
NO_EXTRA = ["--extra_train_data"]


def gold_documents() -> list[Document]:
    assert GOLD.is_file(), f"the gold annotations {GOLD} are missing"
    return load_documents(GOLD)


@functools.cache
def encoder_dir(vocab_size: int = TEST_SPEC.vocab_size) -> Path:
    """A tiny BERT in hub layout; ``vocab_size`` small forces words into several sub-tokens."""
    spec = EncoderSpec(**{**TEST_SPEC.__dict__, "vocab_size": vocab_size})
    texts = [p.read_text(encoding="utf-8") for p in SEEDS]
    return build_encoder(texts, _TMP / f"encoder-{vocab_size}", spec)


@functools.cache
def tokenizer(vocab_size: int = TEST_SPEC.vocab_size):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(encoder_dir(vocab_size))
