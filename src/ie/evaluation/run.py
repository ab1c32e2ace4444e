"""Evaluation runs: a saved model (and the dictionary baseline) against a Label Studio export, and
leave-one-article-out cross-validation; ``evaluate.py`` only parses arguments and calls :func:`run`.

Every figure comes from :mod:`ie.evaluation.metrics`, so model, baseline, folds and events are scored alike.
The report records where its numbers come from (model folder and weights hash, its training split,
data files and hashes, library versions) and says plainly when the evaluated articles were also the
training articles, for the model or for the dictionary: such figures show fit, not generalisation.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ie.core.document import Document
from ie.core.fileio import atomic_write_json, atomic_write_text
from ie.core.hashing import sha256_file, sha256_text
from ie.core.schema import SCHEMA
from ie.evaluation.baseline import METHOD, RELATION_RULE, DictionaryBaseline, GazetteerBaseline
from ie.evaluation.event_metrics import event_scores
from ie.evaluation.metrics import headline, mean_headline, score
from ie.evaluation.report import Evaluation
from ie.events.canonical import AliasTable
from ie.model.files import WEIGHTS, check_model_dir

logger = logging.getLogger(__name__)

REPORT_FORMAT = 1
DEFAULT_CV_CONFIG = "configs/cpu-tiny.yaml"


# ---------------------------------------------------------------------------------------------
# provenance
# ---------------------------------------------------------------------------------------------


def load_gold(paths: Sequence[str | os.PathLike[str]]) -> tuple[list[Document], dict[str, Any]]:
    """Gold documents of one or more Label Studio exports, and the ``data`` provenance block."""
    from ie.annotation.labelstudio import load_documents

    if not paths:
        raise ValueError("no evaluation data given")
    docs: list[Document] = []
    files = []
    for p in paths:
        path = Path(p)
        found = load_documents(path)
        if not found:
            raise ValueError(f"{path}: the export holds no annotated task")
        synthetic = next((d for d in found if d.meta.get("synthetic")), None)
        if synthetic is not None:
            raise ValueError(
                f"{path}: task {synthetic.id} is synthetic (data.synthetic): synthetic articles train "
                "models and never enter an evaluation figure"
            )
        docs += found
        files.append({"path": str(path), "sha256": sha256_file(path), "articles": len(found)})
    data = {
        "files": files,
        "articles": len(docs),
        "spans": sum(len(d.spans) for d in docs),
        "relations": sum(len(d.relations) for d in docs),
        "article_ids": [d.id for d in docs],
    }
    return docs, data


def _header(mode: str, model: dict[str, Any] | None, data: dict[str, Any]) -> dict[str, Any]:
    """The keys every report starts with (docs/evaluation.md#reportjson)."""
    return {
        "format_version": REPORT_FORMAT,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "mode": mode,
        "model": model,
        "data": data,
    }


def environment() -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    env: dict[str, Any] = {"python": platform.python_version()}
    for package in ("ie", "torch", "transformers", "seqeval", "accelerate"):
        try:
            env[package] = version(package)
        except PackageNotFoundError:
            env[package] = None
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=False
        )
        env["git_commit"] = done.stdout.strip() if done.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        env["git_commit"] = None
    return env


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def model_training_docs(model_dir: Path) -> tuple[list[Document] | None, str]:
    """The training articles of a model saved by :func:`ie.training.loop.train`, rebuilt from the config it
    recorded in train_results.json, or ``None`` (with the reason) when that is not possible."""
    results = _read_json(model_dir / "train_results.json")
    if results is None or not isinstance(results.get("config"), dict):
        return None, f"{model_dir}/train_results.json is missing or records no training config"
    split = str(results.get("split", ""))
    if split.startswith("documents passed"):
        return (
            None,
            "the model was trained on documents passed in code; its training articles are not recorded",
        )
    from ie.annotation.labelstudio import ValidationError
    from ie.training.config import TrainConfig
    from ie.training.data import load_split

    known = {f.name for f in fields(TrainConfig)}
    cfg = TrainConfig(**{k: v for k, v in results["config"].items() if k in known})
    try:
        train_docs, _, _ = load_split(cfg)
    except (ValueError, ValidationError) as e:
        return None, f"the model's training data could not be read again: {e}"
    return train_docs, f"rebuilt from the recorded config ({split})"


def model_provenance(model_dir: Path) -> dict[str, Any]:
    config = _read_json(model_dir / "config.json") or {}
    results = _read_json(model_dir / "train_results.json") or {}
    weights = model_dir / WEIGHTS
    enc = config.get("encoder_config") or {}
    train_cfg = results.get("config") or {}
    return {
        "path": str(model_dir),
        "weights_sha256": sha256_file(weights) if weights.is_file() else None,
        "model_type": config.get("model_type"),
        "encoder": {
            "name_or_path": enc.get("_name_or_path") or train_cfg.get("model_name_or_path"),
            "from_scratch": train_cfg.get("encoder_from_scratch"),
            "model_type": enc.get("model_type"),
            "hidden_size": enc.get("hidden_size"),
            "layers": enc.get("num_hidden_layers"),
            "vocab_size": enc.get("vocab_size"),
        },
        "schema_matches": config.get("schema") in (None, SCHEMA.to_dict()),
        "train_data": train_cfg.get("train_data"),
        "split": results.get("split"),
        "best_step": results.get("best_step"),
        "train_seconds": results.get("train_seconds"),
    }


def overlap(eval_docs: Sequence[Document], train_docs: Sequence[Document]) -> int:
    """How many evaluated articles (by text) were training articles."""
    seen = {sha256_text(d.text) for d in train_docs}
    return sum(sha256_text(d.text) in seen for d in eval_docs)


# ---------------------------------------------------------------------------------------------
# scoring one set of predictions
# ---------------------------------------------------------------------------------------------


def per_article(gold: Sequence[Document], pred: Sequence[Document]) -> list[dict[str, Any]]:
    """Figures of each article: span and relation F1, and its events (strikes and casualties found,
    exact counts), so a reader sees which article a pooled figure comes from."""
    rows = []
    aliases = AliasTable.load()
    for g, p in zip(gold, pred, strict=True):
        h = headline(score([g], [p]))
        ev = event_scores([g], [p], aliases)
        rows.append(
            {
                "id": g.id,
                "source": g.meta.get("source"),
                "gold_spans": len(g.spans),
                "predicted_spans": len(p.spans),
                "gold_relations": len(g.relations),
                "predicted_relations": len(p.relations),
                "entities_f1": h["entities"]["micro"]["f1"],
                "triggers_f1": h["triggers"]["micro"]["f1"],
                "relations_f1": h["relations"]["micro"]["f1"],
                "gold_strikes": ev["n_gold_strikes"],
                "predicted_strikes": ev["n_pred_strikes"],
                "matched_strikes": ev["n_matched_strikes"],
                "gold_casualties": ev["n_gold_casualties"],
                "predicted_casualties": ev["n_pred_casualties"],
                "matched_casualties": ev["n_matched_casualties"],
                "casualty_counts": ev["n_casualty_counts"],
                "casualty_counts_exact": round(ev["casualty_count_accuracy"] * ev["n_casualty_counts"]),
            }
        )
    return rows


def baseline_scores(
    train_docs: Sequence[Document], eval_docs: Sequence[Document], source: str
) -> tuple[dict[str, Any], list[Document]]:
    baseline = DictionaryBaseline.fit(train_docs)
    pred = baseline.predict_documents(eval_docs)
    n_overlap = overlap(eval_docs, train_docs)
    block = {
        **baseline.describe(),
        "train_data": source,
        "train_articles": len(train_docs),
        "eval_articles_in_train": n_overlap,
        "trained_on_eval": n_overlap > 0,
        **score(eval_docs, pred),
        "events": event_scores(eval_docs, pred),
    }
    return block, pred


def gazetteer_baseline_scores(eval_docs: Sequence[Document]) -> dict[str, Any]:
    """The gazetteer baseline (entities only; it needs no training articles) scored like the model."""
    baseline = GazetteerBaseline.from_gazetteer()
    return {**baseline.describe(), **score(eval_docs, baseline.predict_documents(eval_docs))}


# ---------------------------------------------------------------------------------------------
# a saved model
# ---------------------------------------------------------------------------------------------


def evaluate_model(
    model_dir: str | os.PathLike[str],
    data: Sequence[str | os.PathLike[str]],
    baseline_data: Sequence[str | os.PathLike[str]] | None = None,
    batch_size: int = 16,
    device: str | None = None,
) -> Evaluation:
    """Predict the articles of ``data`` with the model in ``model_dir`` and score it and the baseline.

    The dictionary baseline is built from ``baseline_data`` if given, else from the model's own
    training articles (so the two see the same data), else from the evaluated articles themselves;
    the report says which, and whether any evaluated article was a training article.
    """
    started = time.monotonic()
    model_dir = Path(model_dir)
    check_model_dir(model_dir)
    gold, data_info = load_gold(data)

    from ie.model.prediction import Predictor

    t0 = time.monotonic()
    predictor = Predictor.from_pretrained(model_dir, device=device)
    load_s = time.monotonic() - t0
    t0 = time.monotonic()
    pred = predictor.predict([d.text for d in gold], [d.id for d in gold], batch_size=batch_size)
    predict_s = time.monotonic() - t0
    del predictor

    model_info = model_provenance(model_dir)
    model_train, how = model_training_docs(model_dir)
    if model_train is not None:
        n = overlap(gold, model_train)
        model_info.update(training_articles=len(model_train), eval_articles_in_train=n, trained_on_eval=n > 0)
    else:
        model_info.update(training_articles=None, eval_articles_in_train=None, trained_on_eval=None)
    model_info["training_articles_source"] = how

    if baseline_data:
        base_train, _ = load_gold(baseline_data)
        base_source = ", ".join(map(str, baseline_data))
    elif model_train is not None:
        base_train, base_source = model_train, "the model's training articles"
    else:
        base_train = gold
        base_source = "the evaluated articles themselves (the model's training data is unknown)"
    result = evaluate_predictions(gold, pred, data_info, model_info, base_train, base_source)
    timing = result.report["timing"]
    timing.update(load_seconds=round(load_s, 2), predict_seconds=round(predict_s, 2))
    timing["total_seconds"] = round(time.monotonic() - started, 2)
    return result


def evaluate_predictions(
    gold: list[Document],
    pred: list[Document],
    data_info: dict[str, Any],
    model_info: dict[str, Any] | None,
    baseline_train: Sequence[Document],
    baseline_source: str,
) -> Evaluation:
    """Score predictions (from a model or from anywhere) and the dictionary baseline built from
    ``baseline_train``; ``model_info`` is the ``model`` block (with ``trained_on_eval``) or ``None``."""
    started = time.monotonic()
    for doc in pred:
        doc.check_offsets()
    notes: list[str] = []
    if model_info is not None:
        if not model_info.get("schema_matches", True):
            notes.append("the model was trained with a different label schema than ie.core.schema.SCHEMA")
        if model_info.get("trained_on_eval"):
            notes.append(
                f"{model_info['eval_articles_in_train']} of {len(gold)} evaluated articles were "
                "training articles of the model: the model figures measure fit, not generalisation "
                "(see cv for held-out figures)"
            )
        elif model_info.get("trained_on_eval") is None:
            notes.append(
                "whether the evaluated articles were training articles of the model is unknown: "
                f"{model_info.get('training_articles_source')}"
            )
    t0 = time.monotonic()
    base_block, base_pred = baseline_scores(baseline_train, gold, baseline_source)
    baseline_s = time.monotonic() - t0
    if base_block["trained_on_eval"]:
        notes.append(
            f"the dictionary baseline was built from {baseline_source}, which include "
            f"{base_block['eval_articles_in_train']} of the {len(gold)} evaluated articles"
        )
    t0 = time.monotonic()
    scores = score(gold, pred)
    events = event_scores(gold, pred)
    score_s = time.monotonic() - t0
    report = {
        **_header("model", model_info, data_info),
        **scores,
        "per_article": per_article(gold, pred),
        "baseline": base_block,
        "gazetteer_baseline": gazetteer_baseline_scores(gold),
        "events": events,
        "cv": None,
        "notes": [n for n in notes if n],
        "timing": {
            "score_seconds": round(score_s, 2),
            "baseline_seconds": round(baseline_s, 2),
            "total_seconds": round(time.monotonic() - started, 2),
        },
        "environment": environment(),
    }
    return Evaluation(report, gold, pred, base_pred)


# ---------------------------------------------------------------------------------------------
# leave-one-article-out cross-validation
# ---------------------------------------------------------------------------------------------


def _write_export(docs: Sequence[Document], path: Path) -> Path:
    from ie.annotation.labelstudio import documents_to_tasks

    tasks = documents_to_tasks(docs)
    for n, task in enumerate(tasks, start=1):  # seed and synthetic exports both number from 1
        task["id"] = n
    atomic_write_json(path, tasks)
    return path


def fold_config(
    base_cfg: Any, train_docs: Sequence[Document], fold_dir: Path, validation_docs: Sequence[Document] = ()
) -> Path:
    """Write the inputs of one training run into ``fold_dir`` and return its config file.

    The run gets ``base_cfg`` as it is (written out as a config file beside ``fold_dir``, so every
    run trains with the same settings) and its training articles as a Label Studio export. Its best
    epoch (and early stop) is chosen on ``validation_docs`` (held-out ``extra_train_data``, never a
    seed), or without them on its own training articles. Cross-validation folds and retraining
    (:mod:`ie.serving.retrain`) both train from these files."""
    import yaml

    data = _write_export(train_docs, fold_dir.with_name(f"{fold_dir.name}.train.json"))
    validation = None
    if validation_docs:
        validation = [str(_write_export(validation_docs, fold_dir.with_name(f"{fold_dir.name}.valid.json")))]
    # extra_train_data is already split into train_docs and validation_docs by the caller: the fold
    # must not add or hold it out twice
    values = {**dataclasses.asdict(base_cfg), "output_dir": str(fold_dir), "train_data": [str(data)],
              "extra_train_data": [], "validation_articles": 0, "eval_data": validation,
              "eval_ratio": 0.0}  # fmt: skip
    config = fold_dir.with_name(f"{fold_dir.name}.yaml")
    atomic_write_text(config, yaml.safe_dump(values, allow_unicode=True, sort_keys=False))
    return config


def train_fold(
    base_cfg: Any,
    train_docs: Sequence[Document],
    fold_dir: Path,
    name: str,
    validation_docs: Sequence[Document] = (),
) -> None:
    """Train one fold's model into ``fold_dir`` in a process of its own (``python -m ie.training``):
    accelerate keeps its state per process, so each fold starts as a fresh ``train.py`` run would
    (inputs: :func:`fold_config`; the held-out seed is never seen)."""
    config = fold_config(base_cfg, train_docs, fold_dir, validation_docs)
    proc = subprocess.Popen([sys.executable, "-m", "ie.training", "--config", str(config)],
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    last = ""
    assert proc.stderr is not None
    for line in proc.stderr:  # the fold's log goes on to ours
        sys.stderr.write(line)
        last = line.strip() or last
    if proc.wait() == 2:
        raise ValueError(f"{name}: {last.split('error: ', 1)[-1]}")
    if proc.returncode != 0:
        raise RuntimeError(f"{name}: training failed (exit {proc.returncode}): {last}")


def _model_selection(cfg: Any, validation: str | None) -> str:
    """How the folds chose their epoch, for the report."""
    if validation is None:
        how = "best epoch on the fold's training articles"
    else:
        how = f"best epoch on {validation}"
        if cfg.early_stopping_patience:
            how += f", early stopping patience {cfg.early_stopping_patience}"
    return how + " (the held-out article is never seen)"


def _holdout_indices(gold: Sequence[Document], holdout: Sequence[str] | None) -> set[int]:
    """The positions of the articles to hold out: all, or those named by id or source file."""
    if not holdout:
        return set(range(len(gold)))
    names = {}
    for k, doc in enumerate(gold):
        source = str(doc.meta.get("source") or "")
        for name in (doc.id, source, Path(source).stem):
            if name:
                names.setdefault(name, k)
    unknown = [h for h in holdout if h not in names]
    if unknown:
        raise ValueError(f"--holdout {', '.join(unknown)}: no such article in the data (ids or source files)")
    return {names[h] for h in holdout}


def cross_validate(
    data: Sequence[str | os.PathLike[str]],
    config: str | os.PathLike[str] = DEFAULT_CV_CONFIG,
    overrides: Sequence[str] = (),
    work_dir: str | os.PathLike[str] | None = None,
    batch_size: int = 16,
    device: str | None = None,
    holdout: Sequence[str] | None = None,
) -> Evaluation:
    """Train one model per article on all the other articles and predict the held-out one.

    ``holdout`` (article ids or source file names) limits the folds to those articles: the same
    leave-one-article-out folds, fewer of them (CI reports one fixed held-out article this way).

    Each fold's best epoch is chosen on its own training articles, so the held-out article is never
    seen before it is predicted; the dictionary baseline of a fold is built from the same articles.
    The top-level figures of the returned report are pooled over all held-out predictions (every
    article predicted by the model that never saw it); ``cv`` holds per-fold, mean and pooled
    figures for both. Fold models go to ``work_dir``/fold-N (kept; replaced by a rerun) or to a
    temporary folder (removed).
    """
    from ie.annotation.labelstudio import ValidationError
    from ie.model.prediction import Predictor
    from ie.training.config import load_config
    from ie.training.data import load_extra_train_docs, split_validation, validation_note

    started = time.monotonic()
    gold, data_info = load_gold(data)
    if len(gold) < 2:
        raise ValueError(f"cross-validation needs at least 2 articles, the data holds {len(gold)}")
    held_out = _holdout_indices(gold, holdout)
    # read once: every fold trains with the same settings, even if the file changes meanwhile
    base_cfg = load_config(config, [*overrides, "--output_dir", "unused"])
    try:
        extra = load_extra_train_docs(base_cfg)
    except ValidationError as e:
        raise ValueError(f"extra_train_data: {e}") from None
    # the same validation articles in every fold: they choose the epoch, they do not train
    gold_texts = {d.text for d in gold}
    _, validation = split_validation([d for d in extra if d.text not in gold_texts], base_cfg)
    extra = [d for d in extra if all(d is not v for v in validation)]
    temp = None if work_dir is not None else tempfile.mkdtemp(prefix="ie-cv-")
    root = Path(work_dir if work_dir is not None else temp)
    root.mkdir(parents=True, exist_ok=True)
    folds: list[dict[str, Any]] = []
    held_pred: list[Document] = []
    held_base: list[Document] = []
    # the gazetteer baseline uses no training articles: one prediction per article serves every fold
    gazetteer = GazetteerBaseline.from_gazetteer()
    held_gaz = gazetteer.predict_documents(gold)
    try:
        for k, held in enumerate(gold):
            if k not in held_out:
                continue
            # extra_train_data (e.g. the synthetic corpus) trains every fold and is never evaluated
            train_docs = [d for j, d in enumerate(gold) if j != k]
            train_docs += [d for d in extra if d.text != held.text]
            fold_dir = root / f"fold-{k + 1}"
            shutil.rmtree(fold_dir, ignore_errors=True)  # a stale fold of an earlier run
            logger.info("fold %d/%d: training on %d articles, holding out %s", k + 1, len(gold),
                        len(train_docs), held.id)  # fmt: skip
            t0 = time.monotonic()
            train_fold(base_cfg, train_docs, fold_dir, f"fold {k + 1}", validation)
            train_s = time.monotonic() - t0
            t0 = time.monotonic()
            predictor = Predictor.from_pretrained(fold_dir, device=device)
            (pred,) = predictor.predict([held.text], [held.id], batch_size=batch_size)
            predict_s = time.monotonic() - t0
            pred.check_offsets()
            del predictor
            gc.collect()
            # the dictionary sees every article the model saw, the validation articles included
            base_block, (bpred,) = baseline_scores(
                [*train_docs, *validation], [held], "the fold's training articles"
            )
            model_scores = score([held], [pred])
            results = _read_json(fold_dir / "train_results.json") or {}
            folds.append(
                {
                    "fold": k + 1,
                    "held_out": held.id,
                    "source": held.meta.get("source"),
                    "train_articles": [d.id for j, d in enumerate(gold) if j != k],
                    "extra_train_articles": len(train_docs) - (len(gold) - 1),  # extra_train_data
                    "train_seconds": round(train_s, 1),
                    "predict_seconds": round(predict_s, 2),
                    "best_step": results.get("best_step"),
                    "model": {**model_scores, "events": event_scores([held], [pred])},
                    "baseline": {
                        key: v for key, v in base_block.items() if key not in ("method", "relation_rule")
                    },
                    "gazetteer_baseline": score([held], [held_gaz[k]]),
                }
            )
            held_pred.append(pred)
            held_base.append(bpred)
    finally:
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)

    gold = [gold[k] for k in sorted(held_out)]  # the articles that were predicted
    held_gaz = [held_gaz[k] for k in sorted(held_out)]
    data_info = {**data_info, "held_out_ids": [d.id for d in gold]}
    pooled_model = score(gold, held_pred)
    pooled_base = score(gold, held_base)
    pooled_gaz = score(gold, held_gaz)
    cv = {
        "scheme": "leave-one-article-out"
        if len(gold) == data_info["articles"]
        else f"leave-one-article-out, {len(gold)} of {data_info['articles']} folds (--holdout)",
        "config": str(config),
        "overrides": list(overrides),
        "train_config": {k: v for k, v in dataclasses.asdict(base_cfg).items() if k != "output_dir"},
        "encoder": "from scratch (ie.model.encoder)"
        if base_cfg.encoder_from_scratch
        else base_cfg.model_name_or_path,
        "model_selection": _model_selection(base_cfg, validation_note(validation) if validation else None),
        "folds": folds,
        "mean": {
            "model": mean_headline([headline(f["model"]) for f in folds]),
            "baseline": mean_headline([headline(f["baseline"]) for f in folds]),
            "gazetteer_baseline": mean_headline([headline(f["gazetteer_baseline"]) for f in folds]),
        },
        "pooled": {
            "model": headline(pooled_model),
            "baseline": headline(pooled_base),
            "gazetteer_baseline": headline(pooled_gaz),
        },
        "models_dir": str(root) if temp is None else None,
        "total_seconds": round(time.monotonic() - started, 1),
    }
    report = {
        **_header("cv", None, data_info),
        **pooled_model,
        "per_article": per_article(gold, held_pred),
        "baseline": {
            "method": METHOD,
            "relation_rule": RELATION_RULE,
            "train_data": "per fold: the fold's training articles (pooled over the held-out articles)",
            "trained_on_eval": False,
            **pooled_base,
            "events": event_scores(gold, held_base),
        },
        "gazetteer_baseline": {**gazetteer.describe(), **pooled_gaz},
        "events": event_scores(gold, held_pred),
        "cv": cv,
        "notes": [
            "mode cv: the top-level figures pool the held-out predictions of the "
            "leave-one-article-out folds; no article was seen by the model (or the dictionary) "
            "that predicted it",
        ],
        "timing": {"total_seconds": cv["total_seconds"]},
        "environment": environment(),
    }
    return Evaluation(report, gold, held_pred, held_base)


# ---------------------------------------------------------------------------------------------
# the command
# ---------------------------------------------------------------------------------------------


def run(
    output_dir: str | os.PathLike[str],
    data: Sequence[str | os.PathLike[str]],
    model: str | os.PathLike[str] | None = None,
    cv: bool = False,
    config: str | os.PathLike[str] = DEFAULT_CV_CONFIG,
    overrides: Sequence[str] = (),
    cv_dir: str | os.PathLike[str] | None = None,
    baseline_data: Sequence[str | os.PathLike[str]] | None = None,
    batch_size: int = 16,
    device: str | None = None,
    holdout: Sequence[str] | None = None,
) -> Evaluation:
    """Evaluate a model, cross-validate, or both, and write report.json/.md/.html into ``output_dir``.

    With a model and ``cv`` the top level describes the model and ``cv`` the folds; with ``cv``
    alone the top level pools the folds' held-out predictions.
    """
    from ie.evaluation.report import write_reports

    if model is None and not cv:
        raise ValueError("nothing to evaluate: give a model folder, --cv, or both")
    result = None
    if model is not None:
        result = evaluate_model(model, data, baseline_data, batch_size, device)
    if cv:
        folds = cross_validate(data, config, overrides, cv_dir, batch_size, device, holdout)
        if result is None:
            result = folds
        else:
            result.report["cv"] = folds.report["cv"]
            result.report["timing"]["total_seconds"] += folds.report["timing"]["total_seconds"]
    assert result is not None
    write_reports(output_dir, result)
    return result
