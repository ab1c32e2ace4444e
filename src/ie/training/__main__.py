"""``python -m ie.training --config FILE [--field value ...]``: one training run in its own process.

What cross-validation runs for each fold (:func:`ie.evaluation.run.cross_validate`): accelerate's
state is process-wide, so every run gets a fresh process. Exit 2 on a bad config or data (one line
on stderr), 0 when the model is saved. ``train.py`` is the documented command line.
"""

from __future__ import annotations

import argparse
import sys

from ie.annotation.labelstudio import ValidationError
from ie.training.config import load_config
from ie.training.entry import setup_logging
from ie.training.loop import train


def main(argv: list[str]) -> int:
    pre = argparse.ArgumentParser(prog="python -m ie.training", add_help=False)
    pre.add_argument("--config")
    args, overrides = pre.parse_known_args(argv)
    setup_logging("info")
    try:
        train(load_config(args.config, overrides))
    except (ValueError, ValidationError) as e:
        print(f"python -m ie.training: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
