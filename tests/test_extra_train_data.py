"""extra_train_data: exports that train and are never evaluated (the synthetic corpus)."""

from __future__ import annotations

from pathlib import Path

from ie.training.config import load_config
from ie.training.data import load_split

ROOT = Path(__file__).resolve().parents[1]
SYNTHETIC = ROOT / "data/synthetic/synthetic.json"


def _synthetic_articles() -> int:
    from ie.annotation.labelstudio import load_documents

    return len(load_documents(SYNTHETIC))


def test_extra_train_data_trains_and_is_never_evaluated():
    args = ["--output_dir", "unused", "--extra_train_data", str(SYNTHETIC),
            "--train_data", str(ROOT / "data/annotations/seeds.json")]  # fmt: skip
    cfg = load_config(ROOT / "configs/cpu-tiny.yaml", args)
    train, evaluated, split = load_split(cfg)
    assert len(evaluated) == 5 and not any(d.meta.get("synthetic") for d in evaluated)
    n = _synthetic_articles()
    assert len(train) == 5 + n and sum(bool(d.meta.get("synthetic")) for d in train) == n
    assert "training-only" in split
    held = load_config(ROOT / "configs/cpu-tiny.yaml", [*args, "--eval_ratio", "0.2"])
    train, evaluated, _ = load_split(held)
    assert len(evaluated) == 1 and not evaluated[0].meta.get("synthetic") and len(train) == 4 + n


def test_each_cv_fold_trains_on_the_extra_data_once(tmp_path):
    """A real two-fold CV run: each fold trains on 1 seed + the synthetic articles (not twice them: the
    fold's own config must not add extra_train_data again) and only the seeds are evaluated."""
    import json
    import subprocess
    import sys

    from modelkit import CPU_TINY, GOLD, SMALL

    two = tmp_path / "two.json"
    two.write_text(json.dumps(json.loads(GOLD.read_text(encoding="utf-8"))[:2], ensure_ascii=False))
    done = subprocess.run(
        [sys.executable, str(ROOT / "evaluate.py"), "--cv", "--config", str(CPU_TINY), "--data", str(two),
         "--extra_train_data", str(SYNTHETIC), "--augment_factor", "0",
         "--max_steps", "1", *SMALL, "--cv_dir", str(tmp_path / "cv"), "--output_dir", str(tmp_path / "out")],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    for fold in (1, 2):
        card = (tmp_path / "cv" / f"fold-{fold}" / "README.md").read_text(encoding="utf-8")
        n = 1 + _synthetic_articles()
        assert f"| articles (train / eval) | {n} / {n} |" in card
    report = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    assert report["data"]["articles"] == 2 and [f["train_articles"] for f in report["cv"]["folds"]]


def test_cv_folds_choose_their_epoch_on_the_same_held_out_extra_articles(tmp_path):
    """validation_articles: every fold holds out the same synthetic articles to choose its epoch
    (evaluated there, not trained on); both seeds of a two-article CV keep training the other fold,
    and the dictionary baseline still sees every article the model saw."""
    import json
    import subprocess
    import sys

    from modelkit import CPU_TINY, GOLD, SMALL

    two = tmp_path / "two.json"
    two.write_text(json.dumps(json.loads(GOLD.read_text(encoding="utf-8"))[:2], ensure_ascii=False))
    done = subprocess.run(
        [sys.executable, str(ROOT / "evaluate.py"), "--cv", "--config", str(CPU_TINY), "--data", str(two),
         "--extra_train_data", str(SYNTHETIC), "--augment_factor", "0",
         "--validation_articles", "3", "--early_stopping_patience", "2", "--max_steps", "1", *SMALL,
         "--cv_dir", str(tmp_path / "cv"), "--output_dir", str(tmp_path / "out")],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    valid = [
        json.loads((tmp_path / "cv" / f"fold-{k}.valid.json").read_text(encoding="utf-8")) for k in (1, 2)
    ]
    assert valid[0] == valid[1] and len(valid[0]) == 3
    names = {t["data"]["text"] for t in valid[0]}
    for fold in (1, 2):
        card = (tmp_path / "cv" / f"fold-{fold}" / "README.md").read_text(encoding="utf-8")
        # 1 seed + the synthetic articles but 3; those 3 choose the epoch
        assert f"| articles (train / eval) | {1 + _synthetic_articles() - 3} / 3 |" in card
        trained = json.loads((tmp_path / "cv" / f"fold-{fold}.train.json").read_text(encoding="utf-8"))
        assert not names & {t["data"]["text"] for t in trained}
    report = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    selection = report["cv"]["model_selection"]
    assert (
        selection.startswith("best epoch on 3 held-out extra_train_data articles")
        and "patience 2" in selection
    )
    assert [f["extra_train_articles"] for f in report["cv"]["folds"]] == [_synthetic_articles() - 3] * 2
