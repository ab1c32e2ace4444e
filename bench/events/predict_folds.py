"""Held-out predictions of leave-one-article-out fold models (evaluate.py --cv --cv_dir DIR), saved as
JSON (spans + relations) for bench/events/score_options.py:

    PYTHONPATH=src python bench/events/predict_folds.py DIR data/annotations/seeds.json OUT.json [FOLD ...]
"""

import dataclasses
import json
import sys

from ie.annotation.labelstudio import load_documents
from ie.model.prediction import Predictor

folds, seeds, out = sys.argv[1], sys.argv[2], sys.argv[3]
only = [int(x) for x in sys.argv[4:]]
gold = load_documents(seeds)
rows = []
for k, held in enumerate(gold, start=1):
    if only and k not in only:
        continue
    p = Predictor.from_pretrained(f"{folds}/fold-{k}", device="cpu")
    (doc,) = p.predict([held.text], [held.id], batch_size=8)
    doc.check_offsets()
    rows.append(
        {
            "id": doc.id,
            "text": doc.text,
            "spans": [dataclasses.asdict(s) for s in doc.spans],
            "relations": [dataclasses.asdict(r) for r in doc.relations],
        }
    )
json.dump(rows, open(out, "w"), ensure_ascii=False)
print("wrote", out, len(rows))
