"""Output locks and atomic writes: what every writer of the project relies on."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ie.core.fileio import OutputLocked, atomic_write_text, output_lock

_OTHER = "import sys\nfrom ie.core.fileio import output_lock\nwith output_lock(sys.argv[1]): print('got it')"


def test_a_second_process_is_refused_while_the_lock_is_held_and_admitted_after(tmp_path):
    target = tmp_path / "out.jsonl"
    with output_lock(target):
        other = subprocess.run([sys.executable, "-c", _OTHER, str(target)], capture_output=True, text=True)
        assert other.returncode != 0 and "got it" not in other.stdout
        assert f"{target}: another run (pid " in other.stderr
        with pytest.raises(OutputLocked, match="another run"):  # a second holder in this process too
            with output_lock(target):
                pass
    again = subprocess.run([sys.executable, "-c", _OTHER, str(target)], capture_output=True, text=True)
    assert again.returncode == 0 and again.stdout.strip() == "got it"


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    target = tmp_path / "model"
    holder = subprocess.Popen(
        [sys.executable, "-c", _OTHER.replace("print('got it')", "print('got it', flush=True); input()"),
         str(target)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout.readline().strip() == "got it"
    with pytest.raises(OutputLocked, match=f"pid {holder.pid}"):
        with output_lock(target):
            pass
    holder.kill()
    holder.wait()
    with output_lock(target):
        atomic_write_text(target.with_suffix(".txt"), "written")
    assert target.with_suffix(".txt").read_text() == "written"
