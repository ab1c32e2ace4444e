"""Evaluation during training: exact-match figures (:mod:`ie.core.scoring`, the one scorer) on the
eval split, predicted across processes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ie.core.document import Document
from ie.core.scoring import exact_match_scores
from ie.model.modeling import JointModel


def evaluate_model(
    accelerator: Any, model: JointModel, tokenizer: Any, docs: Sequence[Document], batch_size: int
) -> dict[str, float]:
    """Predict the eval documents (split across processes) and score them on every process alike.

    Each process predicts a contiguous share (``split_between_processes`` without padding, so no
    document is predicted twice); the shares are gathered with their indices and every document
    must come back exactly once, so the figures are those of one process predicting them all."""
    from accelerate.utils import gather_object

    from ie.model.prediction import Predictor

    predictor = Predictor(model, tokenizer, accelerator.device)
    indices = list(range(len(docs)))
    with accelerator.split_between_processes(indices) as mine:
        with accelerator.autocast():
            preds = predictor.predict([docs[i].text for i in mine], [docs[i].id for i in mine], batch_size)
        local = list(zip(mine, preds, strict=True))
    gathered = gather_object(local) if accelerator.num_processes > 1 else local
    if sorted(i for i, _ in gathered) != indices:
        raise RuntimeError(f"evaluation gathered {len(gathered)} predictions for {len(docs)} documents")
    by_index = dict(gathered)
    return exact_match_scores(docs, [by_index[i] for i in indices])
