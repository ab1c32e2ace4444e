"""What every entry point shares (``train.py``, ``evaluate.py``, ``ie-extract``, ``ie-studio``, ``ie-serve``).

* Flags are spelled like transformers' ``TrainingArguments``: ``--output_dir``, ``--batch_size``.
  The dashed spelling (``--batch-size``) is a hidden alias, so commands written before keep working
  (:func:`underscore_flags`; transformers' own ``HfArgumentParser`` accepts both the same way).
* A training-config value is overridden with ``--FIELD VALUE`` (``train.py``, and ``evaluate.py
  --cv`` for its folds); ``--set FIELD=VALUE`` is the same, kept for older commands.
* Exit status: 0 done, 2 bad arguments or input (one line naming the file or flag), 1 a failure
  while running (a full disk, a server that fails), 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Sequence

OK = 0
FAILED = 1  # a failure while running
BAD_INPUT = 2  # bad arguments or input; also argparse's own status for a usage error
INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for Ctrl-C

_DASHED = re.compile(r"--[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)+(?==|$)")


def underscore_flags(argv: Sequence[str]) -> list[str]:
    """``--batch-size 4`` → ``--batch_size 4`` (``=value`` forms too); nothing after a bare ``--``."""
    out: list[str] = []
    for i, arg in enumerate(argv):
        if arg == "--":
            return out + list(argv[i:])
        m = _DASHED.match(arg)
        out.append(m.group(0).replace("-", "_").replace("__", "--", 1) + arg[m.end() :] if m else arg)
    return out


def error(prog: str, message: str, status: int = BAD_INPUT) -> int:
    """Print ``prog: error: message`` (one line, on stderr) and return ``status``."""
    # one write: the processes of a launch share stderr, and a line written in two parts interleaves
    sys.stderr.write(f"{prog}: error: {message}\n")
    sys.stderr.flush()
    return status


def run_main(prog: str, main: Callable[[], int]) -> int:
    """Call ``main``; Ctrl-C becomes one line and status 130 instead of a traceback."""
    try:
        return main()
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted", file=sys.stderr)
        return INTERRUPTED


# HTTP basic auth between Label Studio and ie-serve: the names label-studio-ml-backend uses; ie-serve
# checks them, ie-studio connect gives them to Label Studio
USER_ENV, PASS_ENV = "BASIC_AUTH_USER", "BASIC_AUTH_PASS"


def basic_auth_from_env() -> tuple[str, str] | None:
    """(user, password) from the environment; ValueError when only one of them is set."""
    user, password = os.environ.get(USER_ENV), os.environ.get(PASS_ENV)
    if bool(user) != bool(password):
        raise ValueError(f"set both {USER_ENV} and {PASS_ENV}, or neither")
    return (user, password) if user and password else None
