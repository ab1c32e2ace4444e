"""Score a saved model (and the dictionary baseline) on a Label Studio export; write reports.

    python evaluate.py --model runs/cpu-tiny --data data/annotations/seeds.json --output_dir runs/report
    python evaluate.py --cv --data data/annotations/seeds.json --output_dir runs/report-cv
    python evaluate.py --cv --config configs/cpu-tiny.yaml --set num_train_epochs=20 ...

Writes report.json, report.md and report.html into --output_dir (the keys of report.json are
documented in the README) and prints a summary table.
"""

from __future__ import annotations

import argparse
import logging
import sys

from ie.annotation.labelstudio import ValidationError
from ie.evaluation.report import summary_table
from ie.evaluation.run import DEFAULT_CV_CONFIG, run


def _overrides(pairs: list[str]) -> list[str]:
    """``--set key=value`` → ``--key value``, the form ie.training.config.load_config takes."""
    out = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--set {pair!r}: expected KEY=VALUE (a field of configs/*.yaml)")
        out += [f"--{key.strip()}", value]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="folder of a model saved by train.py")
    p.add_argument(
        "--data", nargs="+", required=True, help="Label Studio JSON export(s) with gold annotations"
    )
    p.add_argument("--output_dir", required=True, help="where report.json/.md/.html go")
    p.add_argument("--cv", action="store_true", help="leave-one-article-out cross-validation over --data")
    p.add_argument("--config", default=DEFAULT_CV_CONFIG, help="training config of the CV folds")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a training config field for the CV folds (repeatable)")  # fmt: skip
    p.add_argument(
        "--cv_dir",
        help="keep the fold models in DIR/fold-N (replaced on a rerun; default: a temp folder, removed)",
    )
    p.add_argument("--baseline_data", nargs="+", help="exports to build the dictionary baseline from "
                   "(default: the model's training articles)")  # fmt: skip
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    args = p.parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    logging.getLogger("accelerate").setLevel(logging.WARNING)
    try:
        result = run(
            args.output_dir,
            args.data,
            model=args.model,
            cv=args.cv,
            config=args.config,
            overrides=_overrides(args.overrides),
            cv_dir=args.cv_dir,
            baseline_data=args.baseline_data,
            batch_size=args.batch_size,
            device=args.device,
        )
    except (ValueError, ValidationError) as e:
        print(f"evaluate.py: error: {e}", file=sys.stderr)
        return 2
    print(summary_table(result.report))
    for note in result.report["notes"]:
        print(f"note: {note}")
    print(f"reports written to {args.output_dir}: report.json, report.md, report.html")
    return 0


if __name__ == "__main__":
    sys.exit(main())
