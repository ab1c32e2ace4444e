"""What the training entry points (``train.py``, ``python -m ie.training``) share: the log levels,
the logging setup they switch on, and the command that resumes an interrupted run."""

from __future__ import annotations

import logging
import os
import shlex
import sys
from collections.abc import Mapping

LOG_LEVELS = ("debug", "info", "warning", "error")


def setup_logging(level_name: str = "info") -> None:
    """Log lines with time and logger for an entry point's process. accelerate reports every file of
    every checkpoint at INFO: that shows only with ``debug``."""
    level = getattr(logging, level_name.upper())
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=level)
    logging.getLogger("accelerate").setLevel(level if level == logging.DEBUG else max(level, logging.WARNING))


def is_first_process(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether this process speaks for the launch (rank 0, or not launched by ``accelerate launch``):
    what a launch prints, it prints once, not once per process."""
    return environ.get("RANK", "0") == "0"


def resume_command(
    argv: list[str], script: str | None = None, environ: Mapping[str, str] = os.environ
) -> str:
    """The command line that continues this run from its last checkpoint: ``argv`` without any
    ``--resume_from_checkpoint`` or ``--overwrite_output_dir`` (which would clear what the resume
    needs), plus ``--resume_from_checkpoint latest``, under the launcher that started it."""
    args, skip = [], 0
    for i, a in enumerate(argv):
        if skip:
            skip -= 1
            continue
        name = a.split("=", 1)[0]
        if name == "--resume_from_checkpoint":
            skip = 0 if "=" in a else 1
        elif name == "--overwrite_output_dir":
            nxt = argv[i + 1] if i + 1 < len(argv) else ""
            skip = 1 if "=" not in a and nxt.lower() in ("true", "false", "yes", "no", "1", "0") else 0
        else:
            args.append(a)
    launcher = "accelerate launch" if "ACCELERATE_MIXED_PRECISION" in environ else "python"
    script = sys.argv[0] if script is None else script
    return f"{launcher} {shlex.join([script, *args, '--resume_from_checkpoint', 'latest'])}"
