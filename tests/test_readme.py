"""The README's quick start as written (after the install), run twice in a row in a fresh folder:
a newcomer's second run must succeed like the first."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

from modelkit import ROOT, SMALL

_SCRIPTS = {"train.py", "evaluate.py"}


def quick_start_steps() -> list[list[str]]:
    """The main-job commands of the README's first bash block, after venv creation and pip install."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## Quick start\n.*?```bash\n(.*?)\n```", readme, re.S)
    assert block, "README.md: no bash block under '## Quick start'"
    steps = [shlex.split(part) for part in block.group(1).split(" && ")]
    install = next(i for i, s in enumerate(steps) if s[0] == "pip")
    return steps[install + 1 :]


def _runnable(step: list[str]) -> list[str]:
    """The same command with this interpreter; training shrunk to seconds (same code path)."""
    if step[0] == "python" and step[1] in _SCRIPTS:
        cmd = [sys.executable, str(ROOT / step[1]), *step[2:]]
        return [*cmd, *SMALL, "--max_steps", "40"] if step[1] == "train.py" else cmd
    if step[0] == "ie-extract":
        return [sys.executable, "-m", "ie.cli.extract", *step[1:], "--no_progress"]
    raise AssertionError(f"README quick start: unexpected command {shlex.join(step)}")


def test_quick_start_main_job_runs_twice(tmp_path: Path):
    steps = quick_start_steps()
    assert [s[:2] for s in steps] == [
        ["python", "train.py"],
        ["python", "evaluate.py"],
        ["ie-extract", "--model"],
    ]
    for name in ("configs", "data", "seeds"):
        (tmp_path / name).symlink_to(ROOT / name)
    records = []
    for attempt in (1, 2):
        for step in steps:
            done = subprocess.run(_runnable(step), cwd=tmp_path, capture_output=True, text=True, check=False)
            assert done.returncode == 0, f"run {attempt}: {shlex.join(step)}\n{done.stderr[-2000:]}"
        lines = (tmp_path / "runs" / "events.jsonl").read_text(encoding="utf-8").splitlines()
        records.append([json.loads(x) for x in lines])
        assert (tmp_path / "runs" / "report" / "report.json").is_file()
        assert (tmp_path / "runs" / "cpu-tiny" / "model.safetensors").is_file()
    assert [r["id"] for r in records[1]] == [p.stem for p in sorted((ROOT / "seeds").glob("*.txt"))]
    # the same data, config and seed give the same model, so the second run extracts the same events
    assert [r["events"] for r in records[1]] == [r["events"] for r in records[0]]
