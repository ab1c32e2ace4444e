"""One command-line convention for every entry point (README "Command-line conventions").

Bad arguments and missing input files are exit status 2 with one ``PROG: error:`` line that names
them; a dashed flag is the same as its underscore spelling; Ctrl-C is 130.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from modelkit import ROOT

from ie.cli.conventions import INTERRUPTED, run_main, underscore_flags

ENTRY_POINTS = {
    "train.py": [sys.executable, str(ROOT / "train.py")],
    "evaluate.py": [sys.executable, str(ROOT / "evaluate.py")],
    "ie-extract": [sys.executable, "-m", "ie.cli.extract"],
    "ie-studio": [sys.executable, "-m", "ie.cli.studio"],
    "ie-serve": [sys.executable, "-m", "ie.cli.serve"],
}


def _cli(prog: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ENTRY_POINTS[prog], *args], capture_output=True, text=True, cwd=ROOT, check=False)


def _errors(done: subprocess.CompletedProcess[str], prog: str) -> list[str]:
    return [line for line in done.stderr.splitlines() if line.startswith(f"{prog}: error:")]


@pytest.mark.parametrize(
    ("prog", "args"),
    [
        ("train.py", ["--config", "configs/cpu-tiny.yaml", "--no_such_flag", "1"]),
        ("evaluate.py", ["--data", "seeds.json", "--output_dir", "{tmp}/r", "--no_such_flag", "1"]),
        ("ie-extract", ["--model", "{tmp}", "--no_such_flag", "1"]),
        ("ie-studio", ["validate", "data/annotations/seeds.json", "--no_such_flag", "1"]),
        ("ie-serve", ["--model", "{tmp}", "--no_such_flag", "1"]),
    ],
)  # fmt: skip
def test_an_unknown_flag_is_status_2_and_one_line_naming_it(prog, args, tmp_path):
    done = _cli(prog, *(a.format(tmp=tmp_path) for a in args))
    assert done.returncode == 2, done.stderr[-2000:]
    errors = _errors(done, prog)
    assert len(errors) == 1 and "--no_such_flag" in errors[0], done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written


@pytest.mark.parametrize(
    ("prog", "args"),
    [
        ("train.py", ["--config", "{missing}", "--output_dir", "{tmp}/run"]),
        ("evaluate.py", ["--cv", "--data", "{missing}", "--output_dir", "{tmp}/report"]),
        ("ie-extract", ["--model", "{model}", "--input", "{missing}", "--output", "{tmp}/o.jsonl"]),
        ("ie-studio", ["validate", "{missing}"]),
        ("ie-serve", ["--model", "{missing}"]),
    ],
)
def test_a_missing_input_file_is_status_2_and_one_line_naming_it(prog, args, tmp_path):
    missing = tmp_path / "no-such-file.json"
    model = tmp_path / "model"  # enough of a model folder for the argument checks, which come first
    model.mkdir()
    (model / "config.json").write_text("{}", encoding="utf-8")
    done = _cli(prog, *(a.format(tmp=tmp_path, missing=missing, model=model) for a in args))
    assert done.returncode == 2, done.stderr[-2000:]
    errors = _errors(done, prog)
    assert len(errors) == 1 and str(missing) in errors[0], done.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # nothing written


def test_a_dashed_flag_is_its_underscore_spelling(tmp_path):
    """The pre-convention spelling still works: ``--batch-size`` reaches ``--batch_size``'s check."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}", encoding="utf-8")
    args = ["--model", str(model), "--input", "seeds", "--output", str(tmp_path / "o.jsonl")]
    for spelling in (["--batch-size", "0"], ["--batch_size=0"], ["--batch-size=0"]):
        done = _cli("ie-extract", *args, *spelling)
        assert done.returncode == 2 and _errors(done, "ie-extract") == [
            "ie-extract: error: --batch_size must be >= 1"
        ], done.stderr[-2000:]


def test_underscore_flags_rewrites_option_names_only():
    argv = ["--no-progress", "--format", "label-studio", "--write-schema=a-b.json", "-h", "--", "--a-b"]
    assert underscore_flags(argv) == [
        "--no_progress", "--format", "label-studio", "--write_schema=a-b.json", "-h", "--", "--a-b"
    ]  # fmt: skip


def _evaluate_main():
    sys.path.insert(0, str(ROOT))
    try:
        import evaluate
    finally:
        sys.path.remove(str(ROOT))
    return evaluate


def test_evaluate_takes_config_overrides_like_train_py(monkeypatch, tmp_path):
    """``evaluate.py --cv --FIELD VALUE`` (train.py's form) and the older ``--set F=V`` reach the folds."""
    evaluate = _evaluate_main()
    seen = {}

    def fake_run(output_dir, data, **kw):
        seen.update(kw)
        raise ValueError("stop here")

    monkeypatch.setattr(evaluate, "run", fake_run)
    argv = ["--cv", "--data", "d.json", "--output_dir", str(tmp_path), "--num_train_epochs", "20",
            "--set", "seed=3", "--learning-rate", "1e-3"]  # fmt: skip
    assert evaluate.main(argv) == 2
    assert seen["overrides"] == ["--seed", "3", "--num_train_epochs", "20", "--learning_rate", "1e-3"]
    # without --cv nothing is trained: a config field is an unknown flag
    with pytest.raises(SystemExit) as e:
        evaluate.main(["--data", "d.json", "--output_dir", str(tmp_path), "--num_train_epochs", "20"])
    assert e.value.code == 2


def test_ctrl_c_is_status_130_and_one_line(monkeypatch, tmp_path, capsys):
    evaluate = _evaluate_main()

    def interrupted(*a, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(evaluate, "run", interrupted)
    assert evaluate.main(["--data", "d.json", "--output_dir", str(tmp_path)]) == INTERRUPTED == 130
    assert capsys.readouterr().err.strip() == "evaluate.py: interrupted"
    assert run_main("x", lambda: 0) == 0
