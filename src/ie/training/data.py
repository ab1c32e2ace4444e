"""Training data: the train/eval split a config asks for, the featurized windows (cached on disk by
content) and the length-grouped, resumable, rank-aware batches of the training loader."""

from __future__ import annotations

import glob
import json
import logging
import math
import os
import shutil
from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import BatchSampler, DataLoader, SequentialSampler

from ie.core.document import Document
from ie.core.fileio import atomic_write_json
from ie.core.hashing import sha256_json, sha256_text
from ie.model.features import FEATURES_VERSION, Coverage, Featurizer, collate
from ie.training.config import TrainConfig

logger = logging.getLogger(__name__)


def _expand(patterns: Sequence[str]) -> list[Path]:
    paths: list[Path] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern))
        if not matches:
            raise ValueError(f"{pattern}: no data file matches")
        paths += [Path(m) for m in matches]
    return paths


def load_split(cfg: TrainConfig) -> tuple[list[Document], list[Document], str]:
    """Train and eval documents as the config asks, and a one-line description of the split."""
    from ie.annotation.labelstudio import load_documents

    train_paths = _expand(cfg.train_data)
    docs = [d for p in train_paths for d in load_documents(p)]
    if cfg.eval_data:
        eval_paths = _expand(cfg.eval_data)
        eval_docs = [d for p in eval_paths for d in load_documents(p)]
        held = {d.text for d in eval_docs}
        train_docs = [d for d in docs if d.text not in held]
        split = f"train: {', '.join(map(str, train_paths))} minus held-out {', '.join(map(str, eval_paths))}"
    elif cfg.eval_ratio > 0:
        ranked = sorted(docs, key=lambda d: sha256_text(f"{cfg.seed}:{d.text}"))
        n_eval = max(1, round(len(docs) * cfg.eval_ratio))
        eval_docs, train_docs = ranked[:n_eval], ranked[n_eval:]
        split = (
            f"{len(train_docs)} train / {n_eval} held-out articles (ratio {cfg.eval_ratio}, seed {cfg.seed})"
        )
    else:
        train_docs = eval_docs = docs
        split = "all articles for training; evaluated on the same articles (a fit check, not generalisation)"
    if cfg.extra_train_data:
        held = {d.text for d in eval_docs} if eval_docs is not train_docs else set()
        extra, validation = split_validation(load_extra_train_docs(cfg), cfg)
        train_docs = [*train_docs, *(d for d in extra if d.text not in held)]
        split += f"; plus training-only {', '.join(cfg.extra_train_data)}"
        if validation:
            eval_docs = validation
            split += f"; best epoch chosen on {validation_note(validation)}"
    if not train_docs:
        raise ValueError("no training documents left after the split")
    return train_docs, eval_docs, split


def split_validation(extra: Sequence[Document], cfg: TrainConfig) -> tuple[list[Document], list[Document]]:
    """``extra_train_data`` articles → (those that train, the ``validation_articles`` held out).

    The held-out ones are the first by a hash of seed and text: the same whatever order the files
    list them in, and the same in every cross-validation fold, so choosing an epoch on them never
    takes an evaluated article out of training."""
    n = cfg.validation_articles
    if n <= 0:
        return list(extra), []
    if n >= len(extra):
        raise ValueError(
            f"validation_articles {n}: extra_train_data has only {len(extra)} articles; keep some to train"
        )
    ranked = sorted(extra, key=lambda d: sha256_text(f"{cfg.seed}:{d.text}"))
    held = {id(d) for d in ranked[:n]}
    return [d for d in extra if id(d) not in held], ranked[:n]


def validation_note(validation: Sequence[Document]) -> str:
    """How a split names its validation articles (the model card, the CV report)."""
    return f"{len(validation)} held-out extra_train_data articles ({', '.join(d.id for d in validation)})"


def load_extra_train_docs(cfg: TrainConfig) -> list[Document]:
    """The articles of ``extra_train_data``: they train, they are never evaluated."""
    from ie.annotation.labelstudio import load_documents

    return [d for p in _expand(cfg.extra_train_data) for d in load_documents(p)]


def _docs_fingerprint(docs: Sequence[Document]) -> str:
    return sha256_json(
        [
            [
                d.id,
                d.text,
                [(s.id, s.start, s.end, s.label) for s in d.sorted_spans()],
                sorted((r.head, r.tail, r.label) for r in d.relations),
            ]
            for d in docs
        ]
    )


def tokenizer_fingerprint(tokenizer: Any) -> str:
    return sha256_text(tokenizer.backend_tokenizer.to_str())


def build_dataset(featurizer: Featurizer, docs: Sequence[Document], cache_dir: str | os.PathLike[str]):
    """Training rows as a ``datasets.Dataset``, cached on disk under a key of tokenizer, windows,
    schema and document contents: a second run (or a resume) reads it back instead of re-tokenizing."""
    from datasets import Dataset, Features, List, Value, load_from_disk

    key = sha256_json(
        [
            FEATURES_VERSION,
            tokenizer_fingerprint(featurizer.tokenizer),
            featurizer.max_length,
            featurizer.stride,
            featurizer.schema.to_dict(),
            _docs_fingerprint(docs),
        ]
    )[:20]
    path = Path(cache_dir) / f"features-{key}"
    if (path / "coverage.json").is_file():
        cov = Coverage(**json.loads((path / "coverage.json").read_text()))
        return load_from_disk(str(path / "dataset")), cov

    cov = Coverage()
    rows: list[dict[str, Any]] = []
    for enc, doc in zip(featurizer.encode([d.text for d in docs], [d.id for d in docs]), docs, strict=True):
        doc_rows, doc_cov = featurizer.training_rows(enc, doc)
        rows += doc_rows
        cov.add(doc_cov)
    features = Features(
        {
            "input_ids": List(Value("int32")),
            "labels": List(Value("int32")),
            "relation_pairs": List(List(Value("int32"))),
            "relation_labels": List(Value("int32")),
            "length": Value("int32"),
        }
    )
    ds = Dataset.from_list(rows, features=features)
    tmp = path.parent / f".tmp-{path.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    ds.save_to_disk(str(tmp / "dataset"))
    lost_spans = [
        (d, {"id": s.id, "start": s.start, "end": s.end, "label": s.label, "text": s.text})
        for d, s in cov.lost_spans
    ]
    atomic_write_json(
        tmp / "coverage.json",
        {
            "spans": cov.spans,
            "relations": cov.relations,
            "lost_spans": lost_spans,
            "lost_relations": cov.lost_relations,
        },
    )
    try:
        os.replace(tmp, path)
    except OSError:  # another process built it first
        shutil.rmtree(tmp, ignore_errors=True)
    return load_from_disk(str(path / "dataset")), cov


class LengthGroupedBatchSampler(BatchSampler):
    """Batches of similar length (less padding), in an order fixed by ``(seed, epoch)`` alone, so a
    resumed run sees exactly the batches the interrupted one would have.

    Distributed-aware: with ``num_replicas`` > 1 it yields only rank ``rank``'s batches, and every
    window of an epoch lands in exactly one batch of exactly one rank. All ranks get the same number
    of batches (``ceil(n / (batch_size * num_replicas))``, DDP needs them in step): where the
    ``ceil(n / batch_size)`` length-grouped batches do not divide evenly, the largest ones are split
    in two. Only with fewer windows than batch slots (``n < num_replicas``, or a batch size of 1 and
    ``n`` not a multiple of ``num_replicas``) is this impossible; then the missing batches repeat
    windows from the start of the epoch (the one case of duplication; it is logged). Give the loader
    to accelerate with :func:`prepare_train_loader`, which does not shard it a second time:
    ``BatchSamplerShard`` assumes only the last batch is short and loses whole rounds of batches
    around a short one elsewhere.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        seed: int,
        shuffle: bool = True,
        group: int = 50,
        num_replicas: int = 1,
        rank: int = 0,
    ):
        super().__init__(SequentialSampler(range(len(lengths))), batch_size, drop_last=False)
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is not in [0, {num_replicas})")
        self.lengths = list(lengths)
        self.seed = seed
        self.shuffle = shuffle
        self.group = group
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        """Batches this rank yields per epoch (the same on every rank)."""
        return math.ceil(len(self.lengths) / (self.batch_size * self.num_replicas))

    def global_batches(self) -> list[list[int]]:
        """All ranks' batches of this epoch, in order: rank ``r`` takes positions ``r, r + N, ...``."""
        n, bs = len(self.lengths), self.batch_size
        if not self.shuffle:
            order = sorted(range(n), key=lambda i: -self.lengths[i])
            batches = [order[i : i + bs] for i in range(0, n, bs)]
        else:
            g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            perm = torch.randperm(n, generator=g).tolist()
            grouped = []
            for m in range(0, n, bs * self.group):
                mega = sorted(perm[m : m + bs * self.group], key=lambda i: -self.lengths[i])
                grouped += [mega[i : i + bs] for i in range(0, len(mega), bs)]
            batches = [grouped[j] for j in torch.randperm(len(grouped), generator=g).tolist()]
        slots = len(self) * self.num_replicas
        while len(batches) < slots:
            j = max(range(len(batches)), key=lambda k: len(batches[k]), default=None)
            if j is None or len(batches[j]) < 2:
                break
            half = (len(batches[j]) + 1) // 2
            batches[j : j + 1] = [batches[j][:half], batches[j][half:]]
        if len(batches) < slots:
            logger.warning(
                "%d windows cannot fill %d batches on %d processes: %d window(s) seen twice this epoch",
                n, slots, self.num_replicas, slots - len(batches),
            )  # fmt: skip
            order = [i for b in batches for i in b] or [0]
            batches += [[order[k % len(order)]] for k in range(slots - len(batches))]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.global_batches()[self.rank :: self.num_replicas]


def prepare_train_loader(accelerator: Any, loader: DataLoader) -> Any:
    """The training loader on the accelerator's device, NOT sharded again: its
    :class:`LengthGroupedBatchSampler` already yields this rank's share. The result is accelerate's
    own ``DataLoaderShard`` (device placement, ``set_epoch``, end-of-epoch signal for gradient
    accumulation, ``skip_first_batches``), exactly what ``accelerator.prepare`` gives one process."""
    from accelerate.data_loader import prepare_data_loader

    sampler = loader.batch_sampler
    if not isinstance(sampler, LengthGroupedBatchSampler) or (
        sampler.num_replicas,
        sampler.rank,
    ) != (accelerator.num_processes, accelerator.process_index):
        raise ValueError("the training sampler must be a LengthGroupedBatchSampler for this process")
    return prepare_data_loader(
        loader,
        accelerator.device,
        num_processes=1,
        process_index=0,
        put_on_device=True,
        rng_types=None,
        non_blocking=accelerator.non_blocking,
    )


def train_loader(accelerator: Any, dataset: Any, cfg: TrainConfig, pad_token_id: int) -> Any:
    """This process's training loader: length-grouped batches of its share, on its device."""
    sampler = LengthGroupedBatchSampler(
        dataset["length"],
        cfg.per_device_train_batch_size,
        cfg.seed,
        num_replicas=accelerator.num_processes,
        rank=accelerator.process_index,
    )
    loader = DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=partial(collate, pad_token_id=pad_token_id),
        num_workers=cfg.dataloader_num_workers,
        generator=torch.Generator().manual_seed(cfg.seed),  # never draws from the global RNG
    )
    return prepare_train_loader(accelerator, loader)  # already this rank's share: not sharded again


def drop_tokens(
    input_ids: torch.Tensor, rate: float, unk_id: int, keep_ids: Sequence[int], seed: int
) -> torch.Tensor:
    """``input_ids`` with a fraction ``rate`` of its word pieces replaced by ``unk_id`` (token dropout).

    A from-scratch encoder trained on a few articles meets many words at inference that its
    vocabulary has no piece for, or saw only in one context; replacing pieces by [UNK] in training
    makes it tag a word from its neighbours too. ``keep_ids`` (special tokens, padding) are never
    replaced. The mask depends on ``seed`` alone (the loop derives it from the run's seed, the epoch,
    the batch and the process), so a run and its resumed continuation drop the same pieces."""
    if rate <= 0:
        return input_ids
    g = torch.Generator().manual_seed(seed % 2**63)
    drop = torch.rand(input_ids.shape, generator=g) < rate
    drop &= ~torch.isin(input_ids.cpu(), torch.tensor(list(keep_ids), dtype=input_ids.dtype))
    return input_ids.masked_fill(drop.to(input_ids.device), unk_id)
