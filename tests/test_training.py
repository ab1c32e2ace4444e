"""Training and prediction with a real tiny BERT on the gold seeds: config, a run, the AraBERT path
(a local hub-layout checkpoint through the same ``from_pretrained`` call), kill and resume."""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from modelkit import ARABERT, CPU_TINY, NO_EXTRA, ROOT, SEEDS, SMALL, encoder_dir, gold_documents, tokenizer
from safetensors.torch import load_file

from ie.annotation.labelstudio import documents_to_tasks
from ie.core.fileio import atomic_write_json
from ie.core.schema import SCHEMA
from ie.model.encoder import EncoderSpec
from ie.model.features import Featurizer
from ie.model.prediction import Predictor
from ie.training.config import SCRATCH_FIELDS, TrainConfig, load_config, scratch_encoder_spec
from ie.training.data import LengthGroupedBatchSampler, build_dataset, drop_tokens, load_split
from ie.training.evaluation import exact_match_scores
from ie.training.loop import train


@pytest.fixture(scope="module")
def two_articles(tmp_path_factory) -> Path:
    """A Label Studio export holding the two shortest gold articles."""
    docs = sorted(gold_documents(), key=lambda d: len(d.text))[:2]
    path = tmp_path_factory.mktemp("data") / "two.json"
    tasks = documents_to_tasks(docs)
    for i, task in enumerate(tasks, start=1):
        task["id"] = i
    atomic_write_json(path, tasks)
    return path


def test_config_from_yaml_with_cli_overrides(tmp_path):
    cfg = load_config(
        CPU_TINY, ["--output_dir", "out", "--num_train_epochs", "3", "--train_data", "a.json", "b.json"]
    )
    assert cfg.encoder_from_scratch and cfg.num_train_epochs == 3 and cfg.output_dir == "out"
    assert cfg.train_data == ["a.json", "b.json"] and isinstance(cfg.learning_rate, float)
    # the config's synthetic corpus, then none: a bare --extra_train_data empties the list
    assert cfg.extra_train_data == ["data/synthetic/synthetic.json"]
    assert load_config(CPU_TINY, ["--output_dir", "out", "--extra_train_data"]).extra_train_data == []
    assert load_config(
        CPU_TINY, ["--output_dir", "o", *NO_EXTRA, "--extra_train_data", "x.json"]
    ).extra_train_data == ["x.json"]
    arabert = load_config(ARABERT, ["--output_dir", "out"])
    assert (
        arabert.model_name_or_path == "aubmindlab/bert-base-arabertv02" and not arabert.encoder_from_scratch
    )
    assert arabert.mixed_precision == "bf16" and arabert.window_length == 512 and arabert.eval_ratio > 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("learning_rat: 0.1\n")
    with pytest.raises(ValueError, match=r"bad\.yaml: unknown config key\(s\) learning_rat"):
        load_config(bad, ["--output_dir", "x"])
    with pytest.raises(ValueError, match="mixed_precision"):
        load_config(CPU_TINY, ["--output_dir", "x", "--mixed_precision", "fp8"])
    with pytest.raises(ValueError, match="output_dir is required"):
        load_config(CPU_TINY)


def test_scratch_fields_are_the_encoder_spec_by_name():
    """EncoderSpec is the one home of the from-scratch sizes: the config's defaults are its defaults,
    and each scratch_* key (YAML or --override) sets exactly its EncoderSpec field."""
    cfg = TrainConfig(output_dir="x")
    assert scratch_encoder_spec(cfg) == EncoderSpec(max_position_embeddings=512, seed=cfg.seed)
    for i, (key, name) in enumerate(SCRATCH_FIELDS.items()):
        cfg = load_config(CPU_TINY, ["--output_dir", "x", f"--{key}", str(100 + i), "--window_length", "640"])
        spec = scratch_encoder_spec(cfg)
        assert getattr(spec, name) == 100 + i and spec.max_position_embeddings == 640
        assert replace(spec, **{name: getattr(EncoderSpec, name)}) != spec


def test_train_py_reports_a_bad_data_file_and_writes_nothing(tmp_path, capsys):
    bad = tmp_path / "broken.json"
    result = {"id": "x", "type": "labels", "value": {"start": 0, "end": 9, "labels": ["LOC"]}}
    bad.write_text(json.dumps([{"id": 1, "data": {"text": "نص"}, "annotations": [{"result": [result]}]}]))
    spec = importlib.util.spec_from_file_location("train_script", ROOT / "train.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    code = script.main(
        ["--config", str(CPU_TINY), "--output_dir", str(tmp_path / "out"), "--train_data", str(bad)]
    )
    assert code == 2
    assert "broken.json: task 1 result x: offsets [0:9] out of range" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_length_grouped_batches_are_fixed_by_seed_and_epoch():
    lengths = [5, 100, 7, 98, 50, 52, 4, 99, 51, 6, 53, 97]
    a = LengthGroupedBatchSampler(lengths, 2, seed=1, group=50)
    b = LengthGroupedBatchSampler(lengths, 2, seed=1, group=50)
    first = list(a)
    assert first == list(b) and sorted(i for batch in first for i in batch) == list(range(12))
    assert all(abs(lengths[x] - lengths[y]) <= 3 for x, y in first)  # similar lengths together
    a.set_epoch(1)
    assert list(a) != first
    b.set_epoch(1)
    assert list(a) == list(b)


def test_feature_dataset_is_cached_by_tokenizer_and_data(tmp_path):
    docs = gold_documents()[:2]
    f = Featurizer(tokenizer(), SCHEMA, 128, 32)
    ds, cov = build_dataset(f, docs, tmp_path)
    again, cov2 = build_dataset(f, docs, tmp_path)
    assert len(list(tmp_path.glob("features-*"))) == 1 and cov2.summary() == cov.summary()
    assert again[:] == ds[:] and len(ds) > 4
    build_dataset(Featurizer(tokenizer(300), SCHEMA, 128, 32), docs, tmp_path)
    build_dataset(f, docs[:1], tmp_path)
    assert len(list(tmp_path.glob("features-*"))) == 3


def test_tiny_training_run_then_batch_prediction(tmp_path):
    docs = gold_documents()
    cfg = load_config(CPU_TINY, ["--output_dir", str(tmp_path / "model"), *SMALL, *NO_EXTRA,
                                 "--num_train_epochs", "6", "--learning_rate", "3e-3",
                                 "--head_learning_rate", "3e-3"])  # fmt: skip
    out = train(cfg, docs[:2], docs[:2])
    files = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "README.md", "train_results.json"} <= files
    results = json.loads((out / "train_results.json").read_text())
    history = results["history"]
    assert [h["epoch"] for h in history] == list(range(1, 7))
    best = max(history, key=lambda h: h["combined_f1"])
    assert results["best_step"] == best["step"] and results["best_metrics"]["span_f1"] == best["span_f1"]
    # it learns: the spans of epoch 1 are mostly the gazetteer prior's (about 0.5 span F1 from an
    # untrained model); triggers, which the gazetteer does not know, come from training alone
    assert history[-1]["span_f1"] > history[0]["span_f1"] + 0.2
    assert history[-1]["trigger_f1"] > 0.1 > history[0]["trigger_f1"]
    card = (out / "README.md").read_text()
    assert (
        f"| span_f1 | {best['span_f1']:.4f} |" in card
        and "documents passed to ie.training.loop.train()" in card
    )

    predictor = Predictor.from_pretrained(out, device="cpu")
    long_text = "\n".join([docs[0].text] * 8)  # ~10 windows of 128 tokens: nothing may be dropped
    texts = [d.text for d in docs[:2]] + [long_text]
    preds = predictor.predict(texts, ids=["a", "b", "long"], batch_size=4)
    assert [p.id for p in preds] == ["a", "b", "long"]
    for pred, text in zip(preds, texts, strict=True):
        assert pred.text == text
        pred.check_offsets()
        ids = {s.id for s in pred.spans}
        for r in pred.relations:
            assert r.head in ids and r.tail in ids
            assert SCHEMA.allows(r.label, pred.span(r.head).label, pred.span(r.tail).label)
    assert preds[0].spans  # the scores: test_prediction.py recomputes them from the model's logits
    # the eighth copy of the article is tagged like the first: windows reach the end
    last_copy = len(long_text) - len(docs[0].text)
    assert any(s.start >= last_copy for s in preds[2].spans)
    # batch composition and padding do not change what is predicted
    one_by_one = predictor.predict(texts[:2], batch_size=1)
    for a, b in zip(one_by_one, preds[:2], strict=True):
        assert [(s.start, s.end, s.label) for s in a.spans] == [(s.start, s.end, s.label) for s in b.spans]
        assert [(r.head, r.tail, r.label) for r in a.relations] == [
            (r.head, r.tail, r.label) for r in b.relations
        ]
    scores = exact_match_scores(docs[:2], preds[:2])
    # the saved model is the best epoch's, and predicts what training-time evaluation measured
    assert scores["span_f1"] == pytest.approx(best["span_f1"])
    assert scores["relation_f1"] == pytest.approx(best["relation_f1"])
    print(
        "tiny run history:",
        [(h["epoch"], round(h["span_f1"], 3), round(h["relation_f1"], 3)) for h in history],
    )


def test_arabert_config_with_a_local_checkpoint(tmp_path, two_articles):
    """configs/arabert.yaml as is, but the hub id replaced by a local BERT saved in hub layout. Its
    own process: its bf16 differs from the other runs here, and accelerate's state is per process."""
    out = tmp_path / "arabert"
    args = ["--output_dir", str(out), "--model_name_or_path", str(encoder_dir()), "--train_data",
            str(two_articles), "--max_steps", "2", "--window_length", "128", "--window_stride", "32",
            "--per_device_train_batch_size", "2"]  # fmt: skip
    cfg = load_config(ARABERT, args)
    assert cfg.mixed_precision == "bf16" and not cfg.encoder_from_scratch
    done = subprocess.run([sys.executable, str(ROOT / "train.py"), "--config", str(ARABERT), *args], cwd=ROOT,
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((out / "train_results.json").read_text())
    assert (
        results["split"].startswith("1 train / 1 held-out") and results["config"]["mixed_precision"] == "bf16"
    )
    config = json.loads((out / "config.json").read_text())
    assert config["encoder_config"]["_name_or_path"] == str(encoder_dir())
    (pred,) = Predictor.from_pretrained(out, device="cpu").predict([SEEDS[0].read_text(encoding="utf-8")])
    pred.check_offsets()


def _group_alive(pgid: int) -> bool:
    """Whether any process of the group is left (the launcher's child outlives it by a moment)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(path / "model.safetensors")


def test_killed_mid_epoch_then_resumed_matches_an_uninterrupted_run(tmp_path, two_articles):
    # One cache: both runs read the encoder and features built once, as a resumed run always does.
    common = [*SMALL, *NO_EXTRA, "--train_data", str(two_articles), "--num_train_epochs", "3",
              "--save_steps", "2", "--save_total_limit", "1", "--learning_rate", "3e-3",
              "--head_learning_rate", "3e-3", "--cache_dir", str(tmp_path / "cache")]  # fmt: skip
    whole = train(load_config(CPU_TINY, ["--output_dir", str(tmp_path / "whole"), *common]))
    history = json.loads((whole / "train_results.json").read_text())["history"]
    steps_per_epoch = history[0]["step"]
    assert steps_per_epoch >= 4

    broken = tmp_path / "broken"
    # the launcher picks its own thread count; the same as ours keeps float sums in the same order
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
              "--num_cpu_threads_per_process", str(torch.get_num_threads())]  # fmt: skip
    args = ["--config", str(CPU_TINY), "--output_dir", str(broken), *common]
    # the first checkpoint of the second epoch, then SIGKILL (launcher and trainer, no cleanup at
    # all, like a preempted job) before the epoch ends
    mid = broken / "checkpoints" / f"step-{steps_per_epoch + 2 - steps_per_epoch % 2:07d}"
    with open(tmp_path / "broken.log", "w") as log:  # a file: a full pipe would stall the run
        run = subprocess.Popen([*launch, str(ROOT / "train.py"), *args], cwd=ROOT, stderr=log,
                               start_new_session=True)  # fmt: skip
    try:
        _wait_for(mid.is_dir, f"checkpoint {mid.name}", run, poll=0.01)
    finally:
        os.killpg(run.pid, signal.SIGKILL)
        run.communicate()
    _wait_for(lambda: not _group_alive(run.pid), "the killed trainer to be gone", timeout=60, poll=0.05)
    assert run.returncode == -signal.SIGKILL
    assert not (broken / "model.safetensors").exists()  # died before publishing anything
    checkpoint = sorted((broken / "checkpoints").glob("step-*"))[-1]  # what 'latest' resumes
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    assert state["epoch"] == 1 and 0 < state["batches_in_epoch"] < steps_per_epoch, state  # mid-epoch 2
    assert state["global_step"] < history[-1]["step"]

    resumed = train(load_config(CPU_TINY, ["--output_dir", str(broken), *common, "--resume_from_checkpoint",
                                           "latest"]))  # fmt: skip
    assert json.loads((resumed / "train_results.json").read_text())["history"] == history
    a, b = _weights(whole), _weights(resumed)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


# -- output_dir ownership, safe resume, reproducibility, CLI friction (issue 11) ----------------


def _train_py(*args: str) -> list[str]:
    return [sys.executable, str(ROOT / "train.py"), "--config", str(CPU_TINY), *SMALL, *NO_EXTRA, *args]


def _wait_for(
    predicate, what: str, proc: subprocess.Popen | None = None, timeout: float = 300, poll: float = 0.2
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc is not None and proc.poll() is not None:
            err = proc.stderr.read()[-3000:] if proc.stderr else ""
            pytest.fail(f"the run ended (exit {proc.returncode}) before {what}: {err}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(poll)


def test_same_data_config_and_seed_give_bit_identical_models(tmp_path, two_articles):
    """Two separate processes, each building its own from-scratch encoder (no shared cache)."""
    outs = [tmp_path / "a", tmp_path / "b"]
    for out in outs:
        done = subprocess.run(
            _train_py("--output_dir", str(out), "--train_data", str(two_articles), "--num_train_epochs", "1"),
            cwd=ROOT, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
    a, b = outs
    assert (a / "tokenizer.json").read_bytes() == (b / "tokenizer.json").read_bytes()
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()


class _Payload:
    """A pickle that, when unpickled, writes a marker file: what a crafted checkpoint could do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "pickled code ran"))


def _plant(path: Path, marker: Path) -> None:
    torch.save({"step": 0, "payload": _Payload(marker)}, path)


def test_resume_never_executes_pickled_code(tmp_path, two_articles):
    out = tmp_path / "run"
    common = [*SMALL, *NO_EXTRA, "--train_data", str(two_articles), "--output_dir", str(out),
              "--cache_dir", str(tmp_path / "cache")]  # fmt: skip
    train(load_config(CPU_TINY, [*common, "--num_train_epochs", "1"]))
    (checkpoint,) = (out / "checkpoints").glob("step-*")
    marker = tmp_path / "pwned"
    # where accelerate unpickles a registered object with weights_only=False
    _plant(checkpoint / "custom_checkpoint_0.pkl", marker)
    resumed = train(load_config(CPU_TINY, [*common, "--num_train_epochs", "2", "--resume_from_checkpoint",
                                           "latest"]))  # fmt: skip
    assert not marker.exists()
    history = json.loads((resumed / "train_results.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2]  # the state came from trainer_state.json

    # every other pickle accelerate reads: refused with one line, never run
    for name in ("random_states_0.pkl", "optimizer.bin", "scheduler.bin"):
        (checkpoint,) = (out / "checkpoints").glob("step-*")
        original = (checkpoint / name).read_bytes()
        _plant(checkpoint / name, marker)
        with pytest.raises(ValueError, match=rf"{checkpoint.name}: refused to load a file holding more than"):
            train(load_config(CPU_TINY, [*common, "--num_train_epochs", "3", "--resume_from_checkpoint",
                                         "latest"]))  # fmt: skip
        assert not marker.exists(), name
        (checkpoint / name).write_bytes(original)


def test_used_output_dir_is_refused_and_overwrite_clears_it(tmp_path, two_articles):
    out = tmp_path / "run"
    common = [*SMALL, *NO_EXTRA, "--train_data", str(two_articles), "--output_dir", str(out),
              "--cache_dir", str(tmp_path / "cache"), "--num_train_epochs", "1"]  # fmt: skip
    train(load_config(CPU_TINY, common))
    # model.safetensors is written like every other file (save_pretrained made it 0600)
    modes = {p.name: p.stat().st_mode & 0o777 for p in out.iterdir() if p.is_file()}
    assert set(modes.values()) == {modes["config.json"]}, modes
    for checkpoint in (out / "checkpoints").iterdir():
        assert (checkpoint / "model.safetensors").stat().st_mode & 0o777 == modes["config.json"]

    # a finished run resumed again: nothing trained, nothing rewritten
    published = {n: (out / n).read_bytes() for n in ("README.md", "train_results.json", "model.safetensors")}
    train(load_config(CPU_TINY, [*common, "--resume_from_checkpoint", "latest"]))
    assert {n: (out / n).read_bytes() for n in published} == published

    # a rerun into the used folder is refused, and nothing in it changes
    with pytest.raises(
        ValueError, match=r"run: output_dir already holds a training run .*--overwrite_output_dir"
    ):
        train(load_config(CPU_TINY, common))
    assert (out / "README.md").read_bytes() == published["README.md"]

    # a stale checkpoint of an earlier run, the one 'latest' would pick
    stale = out / "checkpoints" / "step-9999999"
    stale.mkdir()
    (stale / "trainer_state.json").write_text("{}")
    train(load_config(CPU_TINY, [*common, "--overwrite_output_dir"]))
    assert not stale.exists() and (out / "model.safetensors").is_file()
    resumed = train(load_config(CPU_TINY, [*common, "--num_train_epochs", "2", "--resume_from_checkpoint",
                                           "latest"]))  # fmt: skip
    history = json.loads((resumed / "train_results.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2]

    # overwrite only ever deletes what a training run writes
    (out / "notes.docx").write_text("mine")
    with pytest.raises(ValueError, match=r"not clearing it for --overwrite_output_dir: notes\.docx"):
        train(load_config(CPU_TINY, [*common, "--overwrite_output_dir"]))
    assert (out / "notes.docx").read_text() == "mine" and (out / "model.safetensors").is_file()
    with pytest.raises(ValueError, match="exclude each other"):
        load_config(CPU_TINY, [*common, "--overwrite_output_dir", "--resume_from_checkpoint", "latest"])


def test_a_second_trainer_on_the_same_output_dir_is_refused(tmp_path, two_articles):
    """Two real processes: the second exits 2 with one line; the first, paused meanwhile, finishes."""
    out = tmp_path / "run"
    args = ["--output_dir", str(out), "--train_data", str(two_articles), "--num_train_epochs", "1"]
    first = subprocess.Popen(_train_py(*args), cwd=ROOT, stderr=subprocess.PIPE, text=True)
    lock = tmp_path / ".run.lock"
    try:
        _wait_for(lambda: lock.is_file() and lock.read_text().strip() == str(first.pid), "the lock", first)
        os.kill(first.pid, signal.SIGSTOP)  # hold it mid-run, whatever the machine's speed
        try:
            second = subprocess.run(_train_py(*args), cwd=ROOT, capture_output=True, text=True, check=False)
        finally:
            os.kill(first.pid, signal.SIGCONT)
        assert second.returncode == 2, second.stderr[-3000:]
        assert second.stderr.strip().splitlines() == [
            f"train.py: error: {out}: another run (pid {first.pid}) is writing it; wait for it or choose "
            "another output"
        ]
        _, err = first.communicate(timeout=600)
    finally:
        first.kill()
    assert first.returncode == 0, err[-3000:]
    assert (out / "model.safetensors").is_file()
    # default logs: no per-file checkpoint messages from accelerate
    assert "accelerate.checkpointing" not in err and "accelerate.accelerator" not in err


def test_ctrl_c_prints_how_to_resume(tmp_path, two_articles):
    out = tmp_path / "run"
    args = ["--output_dir", str(out), "--train_data", str(two_articles), "--num_train_epochs", "50",
            "--save_steps", "1"]  # fmt: skip
    # Ctrl-C in a terminal: SIGINT with its default action, even where pytest itself runs as a
    # background job (which starts with SIGINT ignored, and Python then keeps it ignored)
    run = subprocess.Popen(_train_py(*args), cwd=ROOT, stderr=subprocess.PIPE, text=True,
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    try:
        _wait_for(lambda: any((out / "checkpoints").glob("step-*")), "a checkpoint", run)
        run.send_signal(signal.SIGINT)
        _, err = run.communicate(timeout=120)
    finally:
        run.kill()
    assert run.returncode == 130, err[-3000:]
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("train.py: interrupted; resume with: python ")
    command = shlex.split(last.split("resume with: ", 1)[1])
    assert command[-2:] == ["--resume_from_checkpoint", "latest"] and command[1] == str(ROOT / "train.py")
    assert command[2:-2] == ["--config", str(CPU_TINY), *SMALL, *NO_EXTRA, *args]
    # the printed command does resume (fewer epochs: it finishes at once)
    command[command.index("50")] = "1"
    done = subprocess.run(
        [sys.executable, *command[1:]], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resumed from" in done.stderr


def test_train_py_help_lists_config_and_fields():
    done = subprocess.run([sys.executable, str(ROOT / "train.py"), "--help"], cwd=ROOT, capture_output=True,
                          text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    for option in ("--config CONFIG", "--output_dir", "--overwrite_output_dir", "--resume_from_checkpoint"):
        assert option in done.stdout


# -- early stopping on held-out extra_train_data (issue 13 item 4) ------------------------------


def test_early_stopping_keeps_the_best_epoch_chosen_on_held_out_extra_articles(tmp_path, two_articles):
    """Two seeds train with two synthetic articles; two more synthetic ones are held out
    (validation_articles) to choose the epoch. A run of 8 epochs records what patience 1 must do;
    the same run with patience 1 stops at the first epoch that fails to beat the best, and its
    saved model is the best epoch's weights, bit for bit (the checkpoint of that step)."""
    synthetic = json.loads((ROOT / "data/synthetic/synthetic.json").read_text(encoding="utf-8"))[:4]
    extra = tmp_path / "extra.json"
    atomic_write_json(extra, synthetic)
    common = [*SMALL, "--train_data", str(two_articles), "--extra_train_data", str(extra),
              "--validation_articles", "2", "--augment_factor", "0", "--num_train_epochs", "8",
              "--lr_scheduler_type", "constant", "--warmup_ratio", "0", "--learning_rate", "3e-3",
              "--head_learning_rate", "3e-3", "--metric_for_best_model", "span_f1",
              "--cache_dir", str(tmp_path / "cache")]  # fmt: skip
    cfg = load_config(CPU_TINY, ["--output_dir", str(tmp_path / "all"), *common, "--save_total_limit", "0"])
    train_docs, validation, split = load_split(cfg)
    assert len(train_docs) == 4 and len(validation) == 2 and "best epoch chosen on 2 held-out" in split
    assert not {d.text for d in validation} & {d.text for d in train_docs}
    assert all(d.meta.get("synthetic") for d in validation)
    whole = train(cfg)
    history = json.loads((whole / "train_results.json").read_text())["history"]
    assert len(history) == 8
    # patience 1: stop after the first epoch that is not better than every earlier one
    best, stop = 0, None
    for i, h in enumerate(history[1:], start=1):
        if h["span_f1"] > history[best]["span_f1"]:
            best = i
        else:
            stop = i
            break
    assert stop is not None and stop < 7, [h["span_f1"] for h in history]  # it does stop early

    stopped = train(load_config(CPU_TINY, ["--output_dir", str(tmp_path / "stopped"), *common,
                                           "--early_stopping_patience", "1"]))  # fmt: skip
    results = json.loads((stopped / "train_results.json").read_text())
    assert results["history"] == history[: stop + 1] and results["stopped_early"] is True
    assert results["best_step"] == history[best]["step"]
    assert results["best_metrics"]["span_f1"] == history[best]["span_f1"]
    assert "| early stopping | patience 1: stopped after epoch" in (stopped / "README.md").read_text()
    saved = _weights(stopped)
    at_best = load_file(whole / "checkpoints" / f"step-{history[best]['step']:07d}" / "model.safetensors")
    assert saved.keys() == at_best.keys() and all(torch.equal(saved[k], at_best[k]) for k in saved)
    # the stopped run trained on past its best epoch: what it saved is not its last epoch's weights
    last = load_file(whole / "checkpoints" / f"step-{history[stop]['step']:07d}" / "model.safetensors")
    assert not all(torch.equal(saved[k], last[k]) for k in saved)
    # the saved model predicts what the best epoch measured on the validation articles
    preds = Predictor.from_pretrained(stopped, device="cpu").predict([d.text for d in validation])
    assert exact_match_scores(validation, preds)["span_f1"] == pytest.approx(history[best]["span_f1"])


def test_validation_articles_and_token_dropout_are_checked():
    base = ["--output_dir", "x"]
    for bad, message in ((["--validation_articles", "2", "--eval_ratio", "0.2"], "excludes eval_data"),
                         (["--early_stopping_patience", "-1"], "early_stopping_patience"),
                         (["--token_dropout", "1.0"], "token_dropout")):  # fmt: skip
        with pytest.raises(ValueError, match=message):
            load_config(CPU_TINY, [*base, *bad])
    with pytest.raises(ValueError, match="extra_train_data, which is empty"):
        TrainConfig(output_dir="x", validation_articles=2).validate()


def test_token_dropout_replaces_word_pieces_by_unk_only_and_is_fixed_by_its_seed():
    tok = tokenizer()
    texts = [d.text for d in gold_documents()[:2]]
    ids = tok(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")["input_ids"]
    unk, special = tok.unk_token_id, torch.isin(ids, torch.tensor(tok.all_special_ids))
    dropped = drop_tokens(ids, 0.2, unk, tok.all_special_ids, seed=7)
    assert torch.equal(dropped, drop_tokens(ids, 0.2, unk, tok.all_special_ids, seed=7))
    assert not torch.equal(dropped, drop_tokens(ids, 0.2, unk, tok.all_special_ids, seed=8))
    changed = dropped != ids
    assert (dropped[changed] == unk).all() and not changed[special].any()  # [CLS], [SEP], [PAD] stay
    assert 0.1 < changed.sum().item() / (~special).sum().item() < 0.3
    assert drop_tokens(ids, 0.0, unk, tok.all_special_ids, seed=7) is ids
