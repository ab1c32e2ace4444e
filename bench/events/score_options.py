"""Event scores of saved held-out predictions (bench/events/predict_folds.py) against the seed gold,
under several assembly options (issue 13, item 5).

    PYTHONPATH=src python bench/events/score_options.py /tmp/ev/pred-seeds-all.json
"""

from __future__ import annotations

import json
import sys

import ie.evaluation.event_metrics as metrics
from ie.annotation.labelstudio import load_documents
from ie.core.document import Document, Relation, Span
from ie.events.assembly import NO_CHECKS, AssemblyOptions, assemble

OPTIONS = {
    "default": AssemblyOptions(),
    "no-lexicon": AssemblyOptions(attack_lexicon=False),
    "bare-0": AssemblyOptions(min_bare_trigger_score=0.0),
    "anaphora": AssemblyOptions(resolve_anaphora=True),
    "no-checks": NO_CHECKS,
}


def main(path: str) -> None:
    gold_all = load_documents("data/annotations/seeds.json")
    rows = json.loads(open(path, encoding="utf-8").read())
    gold = [next(x for x in gold_all if x.id == r["id"]) for r in rows]
    pred = [
        Document(r["id"], r["text"], [Span(**s) for s in r["spans"]], [Relation(**x) for x in r["relations"]])
        for r in rows
    ]
    for name, options in OPTIONS.items():
        metrics.assemble = lambda d, day=None, al=None, o=options: assemble(d, day, al, o)
        s = metrics.event_scores(gold, pred)
        print(
            f"{name:11s} strikes P {s['strike_precision']:.3f} R {s['strike_recall']:.3f} "
            f"({s['n_matched_strikes']} matched/{s['n_pred_strikes']} pred/{s['n_gold_strikes']} gold) "
            f"counts exact {s['casualty_count_accuracy']:.3f} of {s['n_casualty_counts']} "
            f"casualties P {s['casualty_precision']:.3f} R {s['casualty_recall']:.3f}"
        )


if __name__ == "__main__":
    main(sys.argv[1])
