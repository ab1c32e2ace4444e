"""Training under several processes: the batch sharding (unit level, no launch), the documented CPU
launch of two processes as one gloo group, and the launcher's ``--mixed_precision`` against the config."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
from types import SimpleNamespace

import pytest
import torch
from datasets import load_from_disk
from modelkit import CPU_TINY, NO_EXTRA, ROOT, SMALL, console_command, free_port
from torch.utils.data import DataLoader

from ie.model.prediction import Predictor
from ie.training.config import load_config, resolve_mixed_precision
from ie.training.data import LengthGroupedBatchSampler, load_split, prepare_train_loader
from ie.training.evaluation import exact_match_scores

ACCELERATE = console_command("accelerate", "accelerate.commands.accelerate_cli")


def _rank_loader(lengths: list[int], batch_size: int, n: int, rank: int):
    """Rank ``rank``'s training loader of an ``n``-process run, built as
    ``ie.training.loop.train`` builds it (accelerate's loader preparation included); the rows
    are the window indices themselves."""
    sampler = LengthGroupedBatchSampler(lengths, batch_size, seed=42, num_replicas=n, rank=rank)
    loader = DataLoader(list(range(len(lengths))), batch_sampler=sampler, collate_fn=list)
    fake = SimpleNamespace(
        num_processes=n, process_index=rank, device=torch.device("cpu"), non_blocking=False
    )
    return prepare_train_loader(fake, loader)


@pytest.mark.parametrize(
    ("n_windows", "batch_size", "n"),
    [(35, 2, 2), (15, 2, 2), (13, 2, 4), (9, 4, 4), (40, 8, 3), (7, 3, 2)],
)
def test_every_window_is_trained_once_per_epoch_across_ranks(n_windows, batch_size, n):
    lengths = [(i * 37) % 120 + 8 for i in range(n_windows)]
    loaders = [_rank_loader(lengths, batch_size, n, r) for r in range(n)]
    for epoch in range(6):
        per_rank = []
        for loader in loaders:
            loader.set_epoch(epoch)
            per_rank.append(list(loader))
        steps = {len(batches) for batches in per_rank}
        # every rank runs the same number of steps, the number len() announced (DDP stays in step)
        assert steps == {math.ceil(n_windows / (batch_size * n))} == {len(loader) for loader in loaders}
        seen = sorted(i for batches in per_rank for batch in batches for i in batch)
        assert seen == list(range(n_windows)), f"epoch {epoch}"  # each window exactly once
        assert all(0 < len(batch) <= batch_size for batches in per_rank for batch in batches)


def test_one_process_keeps_its_batches():
    """One process gets the whole epoch in one stream; two get those batches dealt out in turn (when
    they divide evenly: 7 windows in batches of 2 make 4 batches, one of them short)."""
    lengths = [5, 100, 7, 98, 50, 52, 4]
    one = LengthGroupedBatchSampler(lengths, 2, seed=3)
    two = [LengthGroupedBatchSampler(lengths, 2, seed=3, num_replicas=2, rank=r) for r in range(2)]
    for epoch in range(3):
        for s in (one, *two):
            s.set_epoch(epoch)
        assert list(one) == one.global_batches()
        assert list(two[0]) + list(two[1]) == one.global_batches()[0::2] + one.global_batches()[1::2]


def test_too_few_windows_for_the_ranks_repeat_some_and_say_so(caplog):
    """Three windows, four processes: a batch slot is left; it is filled, never left empty (DDP)."""
    ranks = [LengthGroupedBatchSampler([5, 6, 7], 2, seed=0, num_replicas=4, rank=r) for r in range(4)]
    windows = []
    for sampler in ranks:
        (batch,) = list(sampler)
        windows += batch
    assert sorted(windows[:3]) == [0, 1, 2] and windows[3] == windows[0]  # the first window again
    assert "3 windows cannot fill 4 batches on 4 processes: 1 window(s) seen twice" in caplog.text


def test_mixed_precision_precedence():
    env = "ACCELERATE_MIXED_PRECISION"
    assert resolve_mixed_precision(None, {}) == "no"
    assert resolve_mixed_precision("bf16", {}) == "bf16"
    assert resolve_mixed_precision(None, {env: "bf16"}) == "bf16"  # the launcher fills in
    # `accelerate launch` without --mixed_precision exports "no": it never overrides the config
    assert resolve_mixed_precision("bf16", {env: "no"}) == "bf16"
    assert resolve_mixed_precision("fp16", {env: "fp16"}) == "fp16"
    with pytest.raises(ValueError, match=r"--mixed_precision bf16 conflicts with mixed_precision: no"):
        resolve_mixed_precision("no", {env: "bf16"})
    with pytest.raises(ValueError, match="conflicts"):
        resolve_mixed_precision("fp16", {env: "BF16"})
    with pytest.raises(ValueError, match="ACCELERATE_MIXED_PRECISION=fp8"):
        resolve_mixed_precision(None, {env: "fp8"})


CONFLICT = (
    "train.py: error: accelerate launch --mixed_precision bf16 conflicts with mixed_precision: no in the "
    "training config; give one value (drop the launcher flag, or pass --mixed_precision bf16 to train.py)"
)


def test_launcher_precision_conflict_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    spec = importlib.util.spec_from_file_location("train_script", ROOT / "train.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")  # what the launcher exports
    assert script.main(["--config", str(CPU_TINY), "--output_dir", str(tmp_path / "a")]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == CONFLICT
    assert not (tmp_path / "a").exists()

    # the real launcher: the same line from train.py (accelerate then reports the exit status 2)
    out = tmp_path / "b"
    done = subprocess.run(
        [*ACCELERATE, "launch", "--num_processes", "1", "--num_machines", "1", "--mixed_precision",
         "bf16", "--dynamo_backend", "no", str(ROOT / "train.py"), "--config", str(CPU_TINY), "--output_dir",
         str(out)],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode != 0 and "returned non-zero exit status 2" in done.stderr
    assert [line for line in done.stderr.splitlines() if "error" in line.lower()][0] == CONFLICT
    assert not out.exists()


def _launch_two(out, overrides, env=None, timeout=None) -> subprocess.CompletedProcess[str]:
    """train.py under ``accelerate launch --multi_gpu`` with two processes (one CPU thread each)."""
    env = {**os.environ, "ACCELERATE_USE_CPU": "1"} if env is None else env
    return subprocess.run(
        [*ACCELERATE, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
         "--mixed_precision", "no", "--dynamo_backend", "no", "--num_cpu_threads_per_process", "1",
         "--main_process_port", str(free_port()), str(ROOT / "train.py"), "--config", str(CPU_TINY),
         "--output_dir", str(out), *overrides],
        cwd=ROOT, capture_output=True, text=True, check=False, env=env, timeout=timeout,
    )  # fmt: skip


def test_two_cpu_processes_train_as_one_group(tmp_path):
    """The documented command: two processes, one gloo group, every window once per epoch."""
    out, epochs, batch_size = tmp_path / "run", 4, 2
    overrides = [*SMALL, *NO_EXTRA, "--num_train_epochs", str(epochs), "--save_total_limit", "1",
                 "--learning_rate", "3e-3", "--head_learning_rate", "3e-3"]  # fmt: skip
    done = _launch_two(out, overrides)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((out / "train_results.json").read_text())
    history = results["history"]
    (features,) = (out / "cache").glob("features-*")
    windows = load_from_disk(str(features / "dataset"))
    n_windows, n_tokens = len(windows), sum(windows["length"])
    assert n_windows > 4 * batch_size

    # one optimizer step per pair of batches (one on each process), a pair per 2 x batch_size windows
    steps_per_epoch = math.ceil(n_windows / (2 * batch_size))
    assert [h["step"] for h in history] == [steps_per_epoch * (e + 1) for e in range(epochs)]
    # every window once per epoch, over both processes (counted from the batches trained on)
    assert [(h["train_windows"], h["train_tokens"]) for h in history] == [(n_windows, n_tokens)] * epochs
    # the linear schedule (10 % warmup) is sized for those steps: it ends exactly at the last one
    total = steps_per_epoch * epochs
    warmup = math.ceil(0.1 * total)
    assert history[0]["lr_factor"] == pytest.approx((total - steps_per_epoch) / (total - warmup))
    assert history[-1]["lr_factor"] == 0.0

    # the figures are those of one process evaluating the saved (best) model on the same articles
    _, eval_docs, _ = load_split(load_config(CPU_TINY, ["--output_dir", str(out), *overrides]))
    predictor = Predictor.from_pretrained(out, device="cpu")
    preds = predictor.predict([d.text for d in eval_docs], [d.id for d in eval_docs], batch_size=16)
    single = exact_match_scores(eval_docs, preds)
    assert {k: results["best_metrics"][k] for k in single} == pytest.approx(single)
    assert results["best_metrics"]["span_f1"] > 0.1  # it learned something to compare
    print("history:", [(h["step"], round(h["span_f1"], 3), round(h["relation_f1"], 3)) for h in history])

    # one set of outputs, written by the main process only; each process's RNG state in the checkpoint
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["README.md", "cache", "checkpoints", "config.json", "model.safetensors", "tokenizer.json",
         "tokenizer_config.json", "train_results.json"]
    )  # fmt: skip
    last, best = f"step-{total:07d}", f"best-step-{results['best_step']:07d}"
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == sorted([last, best])
    step_files = {p.name for p in (out / "checkpoints" / last).iterdir()}
    assert {"random_states_0.pkl", "random_states_1.pkl", "trainer_state.json"} <= step_files


@pytest.mark.skipif(torch.cuda.is_available(), reason="with GPUs, --multi_gpu does form one group")
def test_processes_that_do_not_form_one_group_are_refused(tmp_path):
    """--multi_gpu on a CPU machine without ACCELERATE_USE_CPU=1: two independent trainers, each told
    WORLD_SIZE=2 by the launcher. Both stop with one line before writing anything."""
    out = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k != "ACCELERATE_USE_CPU"}
    done = subprocess.run(
        [*ACCELERATE, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
         "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(free_port()),
         str(ROOT / "train.py"), "--config", str(CPU_TINY), "--output_dir", str(out), *SMALL,
         "--num_train_epochs", "1"],
        cwd=ROOT, capture_output=True, text=True, check=False, env=env,
    )  # fmt: skip
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("train.py: error:")]
    assert (
        errors
        == [
            "train.py: error: launched as 2 processes (WORLD_SIZE) but they formed a group of 1; on CPUs run "
            "ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu ... (see docs/training.md)"
        ]
        * 2
    ), done.stderr[-3000:]
    assert not out.exists()


def test_two_processes_stop_early_together_and_keep_the_best_epoch(tmp_path):
    """Early stopping under two processes: the evaluation is gathered, so both decide alike from the
    same history and leave the loop at the same epoch (one leaving alone would hang the other in its
    next collective); the saved model is the best epoch's, as one process measures it."""
    synthetic = json.loads((ROOT / "data/synthetic/synthetic.json").read_text(encoding="utf-8"))[:4]
    extra = tmp_path / "extra.json"
    extra.write_text(json.dumps(synthetic, ensure_ascii=False), encoding="utf-8")
    out = tmp_path / "run"
    overrides = [*SMALL, "--train_data", str(ROOT / "data/annotations/seeds.json"), "--extra_train_data",
                 str(extra), "--validation_articles", "2", "--augment_factor", "0",
                 "--num_train_epochs", "10",
                 "--early_stopping_patience", "1", "--metric_for_best_model", "span_f1",
                 "--lr_scheduler_type", "constant", "--warmup_ratio", "0",
                 "--learning_rate", "3e-3", "--head_learning_rate", "3e-3"]  # fmt: skip
    done = _launch_two(out, overrides, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((out / "train_results.json").read_text())
    scores = [h["span_f1"] for h in results["history"]]
    assert results["stopped_early"] is True and len(scores) < 10, scores
    rising = all(b > a for a, b in zip(scores[:-2], scores[1:-1], strict=True))
    assert rising and scores[-1] <= max(scores[:-1]), scores  # patience 1: the first non-improvement
    best = max(range(len(scores)), key=scores.__getitem__)
    assert results["best_step"] == results["history"][best]["step"] and best == len(scores) - 2
    _, validation, _ = load_split(load_config(CPU_TINY, ["--output_dir", str(out), *overrides]))
    assert len(validation) == 2 and all(d.meta.get("synthetic") for d in validation)
    preds = Predictor.from_pretrained(out, device="cpu").predict([d.text for d in validation])
    assert exact_match_scores(validation, preds)["span_f1"] == pytest.approx(scores[best])
