"""Time of one retraining (issue 14, item 6): what a ``START_TRAINING`` webhook costs end to end.

    python bench/retrain.py --model runs/cpu-tiny              # the seeds of data/annotations/seeds.json
    python bench/retrain.py --model runs/cpu-tiny --project 3  # a live server's project
                                # (LABEL_STUDIO_URL / LABEL_STUDIO_API_KEY from the environment)

One :class:`ie.serving.retrain.RetrainWorker` run with ``configs/cpu-tiny.yaml`` (its synthetic corpus
and augmentation included), exactly as the service runs it: export, validation, held-out split,
the training subprocess, scoring the candidate and the served model (``--model``) on the held-out
slice, the keep-or-reject rule, promotion. The state folder is a fresh temporary one, so the run is
never skipped as "nothing new". Unlike the other scripts there is no baseline: retraining is ours only.
Prints the figures, writes ``bench/results/retrain.json`` and ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import common


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="the served model the candidate is judged against")
    ap.add_argument("--config", default=str(common.ROOT / "configs" / "cpu-tiny.yaml"))
    ap.add_argument(
        "--project", type=int, help="pull this project from a live Label Studio instead of the file"
    )
    ap.add_argument("--data", default=str(common.GOLD), help="Label Studio JSON used without --project")
    ap.add_argument("--out", default=str(common.RESULTS / "retrain.json"))
    args = ap.parse_args(argv)

    from ie.annotation.labelstudio import read_json
    from ie.core.fileio import atomic_write_json
    from ie.serving.retrain import RetrainSettings, RetrainWorker
    from ie.serving.store import ModelStore

    source = f"live Label Studio project {args.project}" if args.project else f"file {args.data}"
    export = None if args.project else (lambda _project: read_json(args.data))
    with tempfile.TemporaryDirectory(prefix="ie-bench-retrain-") as state:
        store = ModelStore(state, args.model)
        settings = RetrainSettings(config=args.config, project_id=args.project or 1)
        worker = RetrainWorker(store, settings, export=export)
        started = time.monotonic()
        try:
            worker.notify("START_TRAINING", args.project or 1)
            worker.wait_idle()
            seconds = time.monotonic() - started
            status = worker.status()
        finally:
            worker.close(30)
    run = status["last_run"]
    if run["outcome"] not in ("promoted", "rejected"):
        print(
            f"bench/retrain.py: the run did not complete: {run['outcome']}: {run['reason']}", file=sys.stderr
        )
        return 1
    result = {
        "source": source,
        "config": args.config,
        "served_model": str(Path(args.model)),
        "retrain_seconds": round(seconds, 1),
        "train_subprocess_seconds": run["train_seconds"],
        "run": run,
        "machine": common.machine(),
        "load_average_1_5_15_min": [round(x, 2) for x in os.getloadavg()],  # at the end of the run
    }
    print(f"source: {source}; config: {args.config}")
    print(
        f"articles: {run['train_articles']} trained, held out {run['heldout_ids']}; outcome {run['outcome']}"
    )
    print(
        f"retraining (export -> promoted or rejected): {seconds:.1f} s; "
        f"the training subprocess {run['train_seconds']} s"
    )
    print(f"held-out combined F1: candidate {run['candidate_f1']}, served {run['served_f1']}")
    atomic_write_json(args.out, result)
    line = [
        {"name": "retrain_seconds", "ours": round(seconds, 1), "baseline": None, "unit": "s", "ratio": None}
    ]
    print(json.dumps(line))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
