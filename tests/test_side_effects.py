"""Library code has no process-wide side effects: building a Predictor or an Extractor and running it
leaves malloc and the garbage collector alone; ``ie-extract`` opts in to both (``evaluate.py`` to
the malloc tuning), so training, which predicts its eval split, never gets them."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
from modelkit import SEED_DIR

from ie.cli.extract import main as extract_main
from ie.events.extraction import Extractor
from ie.model import prediction
from ie.model.prediction import Predictor


class _RecordingLibc:
    """Stands for ``ctypes.CDLL(None)``: records which glibc functions are looked up and called."""

    def __init__(self, calls: list[str]):
        self.calls = calls

    def __getattr__(self, name: str):
        self.calls.append(name)
        return lambda *args: 0


@pytest.fixture
def libc_calls(monkeypatch) -> list[str]:
    calls: list[str] = []
    monkeypatch.setattr(prediction.ctypes, "CDLL", lambda *a, **k: _RecordingLibc(calls))
    monkeypatch.setattr(prediction, "_heap_guard", None)  # as in a fresh process
    return calls


def test_predicting_leaves_malloc_and_the_gc_alone(tiny_model: Path, libc_calls, monkeypatch):
    gc_enabled: list[bool] = []
    predict = Predictor.predict

    def watching(self, *args, **kwargs):
        gc_enabled.append(gc.isenabled())
        return predict(self, *args, **kwargs)

    monkeypatch.setattr(Predictor, "predict", watching)
    extractor = Extractor.from_pretrained(tiny_model, device="cpu")
    texts = [p.read_text(encoding="utf-8") for p in sorted(SEED_DIR.glob("*.txt"))]
    records = list(extractor.extract_many(texts, batch_size=2))
    assert len(records) == 5 and sum(len(r.events.strikes) for r in records) > 0
    assert gc_enabled and all(gc_enabled)  # the collector ran as the caller left it
    assert libc_calls == []  # neither mallopt nor malloc_trim

    # opted in: the threshold is set once, the pages are trimmed after batches, GC paused per chunk
    prediction.tune_cpu_memory()
    prediction.tune_cpu_memory()
    assert libc_calls.count("mallopt") == 1 and "malloc_trim" in libc_calls
    gc_enabled.clear()
    extractor.pause_gc = True
    assert len(list(extractor.extract_many(texts, batch_size=2))) == 5
    assert gc_enabled and not any(gc_enabled) and gc.isenabled()


def test_ie_extract_opts_in(tiny_model: Path, tmp_path: Path, monkeypatch):
    seen: dict[str, bool] = {}
    monkeypatch.setattr(prediction, "tune_cpu_memory", lambda: seen.setdefault("tuned", True))
    load = Extractor.from_pretrained.__func__

    def loading(cls, *args, **kwargs):
        extractor = load(cls, *args, **kwargs)
        seen["pause_gc"] = extractor.pause_gc
        return extractor

    monkeypatch.setattr(Extractor, "from_pretrained", classmethod(loading))
    out = tmp_path / "seeds.jsonl"
    args = ["--model", str(tiny_model), "--input", str(SEED_DIR), "--output", str(out), "--device", "cpu"]
    assert extract_main([*args, "--no-progress"]) == 0
    assert seen == {"tuned": True, "pause_gc": True}
    assert len(out.read_text(encoding="utf-8").splitlines()) == 5
