"""sha256 digests, the one home: files (weights, data), texts (articles), JSON values (configs, results).

Everything that names content by a digest (model versions, feature caches, training records, the
held-out rule of retraining) hashes through these, so the same content always gets the same name.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks (weights files are hundreds of MB)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_text(text: str) -> str:
    """Hex sha256 of a text's UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha256_json(value: Any) -> str:
    """Hex sha256 of a JSON value in canonical form (sorted keys, UTF-8): equal values, equal digests."""
    return sha256_text(json.dumps(value, sort_keys=True, ensure_ascii=False))


def bucket(text: str, buckets: int, salt: str = "") -> int:
    """``0 .. buckets-1``, fixed by the text (and the salt): a stable split that no run order changes."""
    return int(sha256_text(salt + text), 16) % buckets
