"""The shared file helpers: a file's sha256 and the saved-model folder check (no torch import)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from modelkit import GOLD

from ie.core.hashing import sha256_file
from ie.model.files import check_model_dir


def test_sha256_file_is_the_digest_of_the_bytes():
    assert sha256_file(GOLD) == hashlib.sha256(GOLD.read_bytes()).hexdigest()


def test_check_model_dir_names_the_folder(tmp_path: Path):
    with pytest.raises(ValueError, match=f"{tmp_path / 'nope'}: model folder not found"):
        check_model_dir(tmp_path / "nope")
    with pytest.raises(ValueError, match=r"not a saved model \(no config.json\)"):
        check_model_dir(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    assert check_model_dir(str(tmp_path)) == tmp_path


def test_model_files_does_not_import_torch():
    code = (
        "import sys, ie.model.files; assert 'torch' not in sys.modules and 'transformers' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_json_digests_ignore_key_order_and_keep_arabic_text():
    from ie.core.hashing import bucket, sha256_json, sha256_text

    assert sha256_json({"a": 1, "نص": "غارة"}) == sha256_json({"نص": "غارة", "a": 1})
    assert sha256_json({"نص": "غارة"}) == sha256_text('{"نص": "غارة"}')
    assert sha256_text("غارة") == hashlib.sha256("غارة".encode()).hexdigest()
    assert {bucket(t, 7, "s:") for t in map(str, range(200))} == set(range(7))
    assert bucket("x", 100, "s:") == int(hashlib.sha256(b"s:x").hexdigest(), 16) % 100
