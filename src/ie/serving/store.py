"""The served model's home: promoted models, an atomically switched pointer, staging for trainings.

Layout of ``state_dir``::

    current.json        the pointer: {"name": ..., "version": ..., "history": [older names]}
    models/<name>/      promoted models (a saved model folder each; the newest ``keep`` are kept)
    staging/<run>/      trainings in progress; whatever is here at start is a killed run's leftover

A promotion renames the finished candidate into ``models/`` (same file system: one ``rename``)
and then replaces ``current.json`` with :func:`ie.core.fileio.atomic_write_json`. A crash before
the pointer is replaced leaves the old model served (the renamed folder is unreferenced and removed
at the next start); a crash after it leaves the new one: never a half model. A pointer to a model
that is missing or broken falls back to the newest intact model of its history, else to the
initial model, with a log line saying so.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from ie.core.fileio import atomic_write_json
from ie.events.extraction import model_version
from ie.model.files import CONFIG, WEIGHTS

logger = logging.getLogger(__name__)

POINTER = "current.json"
MODELS = "models"
STAGING = "staging"


def intact(model_dir: Path) -> bool:
    """Whether a folder holds a whole saved model: config, weights and tokenizer files, weights non-empty."""
    weights = model_dir / WEIGHTS
    return (
        (model_dir / CONFIG).is_file()
        and weights.is_file()
        and weights.stat().st_size > 0
        and (model_dir / "tokenizer_config.json").is_file()
    )


class ModelStore:
    """Which model is served, and the one place that changes it (:meth:`promote`); thread-safe."""

    def __init__(
        self, state_dir: str | os.PathLike[str], initial_model: str | os.PathLike[str], keep: int = 3
    ):
        self.state_dir = Path(state_dir)
        self.initial_model = Path(initial_model).resolve()
        if not intact(self.initial_model):
            raise ValueError(f"{self.initial_model}: not a saved model (config, weights, tokenizer)")
        self.keep = max(1, keep)
        self._lock = threading.Lock()
        (self.state_dir / MODELS).mkdir(parents=True, exist_ok=True)
        (self.state_dir / STAGING).mkdir(parents=True, exist_ok=True)
        self._initial_version = model_version(self.initial_model)
        self._clean_staging()
        self._current = self._load_pointer()
        self._remove_unreferenced()

    # -- start-up ---------------------------------------------------------------------------

    def _clean_staging(self) -> None:
        leftovers = sorted((self.state_dir / STAGING).iterdir())
        for item in leftovers:
            shutil.rmtree(item, ignore_errors=True) if item.is_dir() else item.unlink(missing_ok=True)
        if leftovers:
            logger.warning(
                "model store %s: removed %d leftover(s) of an interrupted training: %s",
                self.state_dir, len(leftovers), ", ".join(p.name for p in leftovers),
            )  # fmt: skip

    def _read_pointer(self) -> dict[str, Any] | None:
        import json

        path = self.state_dir / POINTER
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            logger.error(
                "model store %s: %s is unreadable (%s): serving the initial model", self.state_dir, path, e
            )
            return None
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            logger.error(
                "model store %s: %s is not a model pointer: serving the initial model", self.state_dir, path
            )
            return None
        return data

    def _load_pointer(self) -> tuple[Path, str]:
        pointer = self._read_pointer()
        if pointer is None:
            return self.initial_model, self._initial_version
        names = [pointer["name"], *[n for n in pointer.get("history") or [] if isinstance(n, str)]]
        for k, name in enumerate(names):
            path = self.state_dir / MODELS / name
            if intact(path):
                version = pointer.get("version") if k == 0 else None
                if k > 0:
                    logger.error(
                        "model store %s: the promoted model %s is missing or broken: falling back to %s",
                        self.state_dir, names[0], name,
                    )  # fmt: skip
                    version = model_version(path)
                    atomic_write_json(self.state_dir / POINTER, {"name": name, "version": version,
                                                                 "history": names[k + 1 :]})  # fmt: skip
                return path, version or model_version(path)
        logger.error(
            "model store %s: no intact promoted model (%s): falling back to the initial model %s",
            self.state_dir, ", ".join(names), self.initial_model,
        )  # fmt: skip
        (self.state_dir / POINTER).unlink(missing_ok=True)
        return self.initial_model, self._initial_version

    def _referenced(self) -> set[str]:
        pointer = self._read_pointer() or {}
        return {pointer.get("name"), *(pointer.get("history") or [])} - {None}

    def _remove_unreferenced(self) -> None:
        """Promoted folders the pointer no longer names: older than ``keep``, or renamed in by a
        promotion that died before its pointer was written."""
        keep = self._referenced()
        for item in sorted((self.state_dir / MODELS).iterdir()):
            if item.name not in keep:
                shutil.rmtree(item, ignore_errors=True)
                logger.info("model store %s: removed %s (no longer referenced)", self.state_dir, item.name)

    # -- use --------------------------------------------------------------------------------

    def current(self) -> tuple[Path, str]:
        """(folder, model_version) of the model to serve: the last promoted one, else the initial one."""
        with self._lock:
            return self._current

    def new_staging(self, prefix: str = "run") -> Path:
        """A fresh, empty folder under ``staging/`` for a training (removed at the next start if left)."""
        import tempfile

        return Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir=self.state_dir / STAGING))

    def promote(self, candidate_dir: str | os.PathLike[str]) -> tuple[Path, str]:
        """Move a finished candidate into ``models/`` and point ``current.json`` at it (atomically).

        The folder is named after the UTC time of promotion; its version is
        :func:`ie.events.extraction.model_version` of the promoted folder (``<name>@<weights sha>``).
        """
        candidate = Path(candidate_dir)
        if not intact(candidate):
            raise ValueError(f"{candidate}: not a whole saved model; not promoting it")
        with self._lock:
            name = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
            n = 1
            while (self.state_dir / MODELS / name).exists():
                n += 1
                name = f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{n}"
            final = self.state_dir / MODELS / name
            os.replace(candidate, final)
            version = model_version(final)
            old = self._read_pointer()
            history = [old["name"], *(old.get("history") or [])] if old else []
            atomic_write_json(
                self.state_dir / POINTER,
                {"name": name, "version": version, "history": history[: self.keep - 1]},
            )
            self._current = (final, version)
            self._remove_unreferenced()
        logger.info("model store %s: promoted %s", self.state_dir, version)
        return final, version
