"""The shared file helpers: a file's sha256 and the saved-model folder check (no torch import)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from modelkit import GOLD

from ie.core.fileio import sha256_file
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
