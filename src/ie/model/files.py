"""What a saved model folder holds, checked without importing torch (CLIs check arguments first)."""

from __future__ import annotations

import os
from pathlib import Path

WEIGHTS = "model.safetensors"
CONFIG = "config.json"


def check_model_dir(path: str | os.PathLike[str]) -> Path:
    """``path`` as a Path; ValueError naming it when it is not a folder with a saved model's config."""
    path = Path(path)
    if not path.is_dir():
        raise ValueError(f"{path}: model folder not found")
    if not (path / CONFIG).is_file():
        raise ValueError(f"{path}: not a saved model (no {CONFIG})")
    return path
