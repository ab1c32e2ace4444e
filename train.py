"""Fine-tune the joint entity/trigger/relation model.

    python train.py --config configs/cpu-tiny.yaml --output_dir runs/tiny
    accelerate launch train.py --config configs/arabert.yaml --output_dir runs/arabert
    python train.py --config configs/cpu-tiny.yaml --output_dir runs/tiny --resume_from_checkpoint latest

Any config field can be overridden on the command line (``python train.py --help`` lists them). A
used output_dir is refused unless the run resumes it or ``--overwrite_output_dir`` clears it. Ctrl-C
stops the run and prints the command that resumes it from its last checkpoint.
"""

from __future__ import annotations

import argparse
import sys

from ie.annotation.labelstudio import ValidationError
from ie.cli.conventions import INTERRUPTED, error, underscore_flags
from ie.training.config import config_parser, load_config
from ie.training.entry import LOG_LEVELS, is_first_process, resume_command, setup_logging
from ie.training.loop import train


def _parser() -> argparse.ArgumentParser:
    """``--help``: the script's own options, then every config field (HfArgumentParser)."""
    parser = config_parser(
        prog="train.py",
        description=__doc__.split("\n\n")[0],
        epilog="Config fields come from --config's YAML file; a command-line value overrides it.",
    )
    parser.add_argument("--config", help="YAML training config (configs/*.yaml)")
    parser.add_argument(
        "--log_level",
        default="info",
        choices=LOG_LEVELS,
        help="debug also shows accelerate's per-file checkpoint messages",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = underscore_flags(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        _parser().print_help()
        return 0
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config")
    pre.add_argument("--log_level", default="info", choices=LOG_LEVELS)
    args, overrides = pre.parse_known_args(argv)
    setup_logging(args.log_level)
    try:
        out = train(load_config(args.config, overrides))
    except (ValueError, ValidationError) as e:
        return error("train.py", str(e))
    except KeyboardInterrupt:
        if is_first_process():
            print(f"\ntrain.py: interrupted; resume with: {resume_command(argv)}", file=sys.stderr)
        return INTERRUPTED
    if is_first_process():  # once per launch, not once per process
        print(f"model saved in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
