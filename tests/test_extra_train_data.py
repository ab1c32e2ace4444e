"""extra_train_data: exports that train and are never evaluated (the synthetic corpus)."""

from __future__ import annotations

from pathlib import Path

from ie.training.config import load_config
from ie.training.data import load_split

ROOT = Path(__file__).resolve().parents[1]


def test_extra_train_data_trains_and_is_never_evaluated():
    args = ["--output_dir", "unused", "--extra_train_data", str(ROOT / "data/synthetic/synthetic.json"),
            "--train_data", str(ROOT / "data/annotations/seeds.json")]  # fmt: skip
    cfg = load_config(ROOT / "configs/cpu-tiny.yaml", args)
    train, evaluated, split = load_split(cfg)
    assert len(evaluated) == 5 and not any(d.meta.get("synthetic") for d in evaluated)
    assert len(train) == 35 and sum(bool(d.meta.get("synthetic")) for d in train) == 30
    assert "training-only" in split
    held = load_config(ROOT / "configs/cpu-tiny.yaml", [*args, "--eval_ratio", "0.2"])
    train, evaluated, _ = load_split(held)
    assert len(evaluated) == 1 and not evaluated[0].meta.get("synthetic") and len(train) == 34
