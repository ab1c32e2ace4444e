"""What the bench scripts share: inputs built from the seeds, machine facts, and the result format.

Every script measures both sides in one process (or one parent process) on the same machine and
input, interleaving the repetitions (ours, baseline, ours, baseline, ...) so that other load on the
machine hits both sides alike, prints a table, writes a JSON file, and ends with one JSON line: a
list of ``{"name", "ours", "baseline", "unit", "ratio"}`` objects, one per comparison.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
GOLD = ROOT / "data" / "annotations" / "seeds.json"
RESULTS = ROOT / "bench" / "results"

if str(ROOT / "src") not in sys.path:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, str(ROOT / "src"))


def seed_texts() -> list[str]:
    return [p.read_text(encoding="utf-8") for p in sorted(SEEDS.glob("*.txt"))]


def count_sentences(text: str) -> int:
    from ie.core.document import sentence_bounds

    return len(sentence_bounds(text))


def replicated_articles(min_sentences: int) -> list[dict[str, str]]:
    """The seed articles repeated (whole, in order) until they hold at least ``min_sentences``."""
    texts = seed_texts()
    counts = [count_sentences(t) for t in texts]
    articles, total = [], 0
    while total < min_sentences:
        i = len(articles) % len(texts)
        articles.append({"id": f"a{len(articles):05d}", "text": texts[i]})
        total += counts[i]
    return articles


def machine() -> dict[str, Any]:
    """What the figures depend on: CPU, threads, library versions, and the load while measuring."""
    import torch
    import transformers

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX512-BF16 or AMX); elsewhere bf16 is emulated
    and slower than float32, so the CPU benchmarks skip it."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(f in flags.split() for f in ("avx512_bf16", "amx_bf16"))


def peak_matmul_flops(
    device: str = "cpu", dtype: Any = None, n: int | None = None, seconds: float = 2.0
) -> float:
    """Best FLOP/s of a large square ``torch.matmul`` on this device: the ceiling MFU is measured against."""
    import torch

    dtype = dtype or torch.float32
    n = n or (2048 if device == "cpu" else 8192)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)

    def sync() -> None:
        if device != "cpu":
            torch.cuda.synchronize()

    for _ in range(2):
        a @ b
    sync()
    best = 0.0
    deadline = time.perf_counter() + seconds
    while True:
        t0 = time.perf_counter()
        a @ b
        sync()
        dt = time.perf_counter() - t0
        best = max(best, 2 * n**3 / dt)
        if time.perf_counter() > deadline:
            return best


def peak_flops_by_dtype(device: str, dtypes: Sequence[str], seconds: float = 2.0, rounds: int = 2) -> dict:
    """:func:`peak_matmul_flops` per torch dtype name, the best of ``rounds`` interleaved measurements:
    one window of background load on a shared machine would otherwise set a low peak, and MFU above 100 %."""
    import torch

    peaks = dict.fromkeys(dtypes, 0.0)
    for _ in range(rounds):
        for name in dtypes:
            peaks[name] = max(
                peaks[name], peak_matmul_flops(device, getattr(torch, name), seconds=seconds / rounds)
            )
    return peaks


def encoder_flops(config: Any, lengths: Sequence[int], backward: bool = False) -> float:
    """Model FLOPs of a BERT encoder over sequences of these (non-padding) lengths.

    Per sequence of length L: ``2 * P * L`` for the weight matmuls (P = non-embedding parameters:
    per layer 4 h^2 for attention and 2 h i for the feed-forward block) plus ``4 * layers * L^2 * h``
    for attention scores and the weighted sum. Backward costs twice the forward, so training is 3x.
    Padding is not counted: it is work, not useful work.
    """
    h, i, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    params = layers * (4 * h * h + 2 * h * i)
    forward = sum(2 * params * n + 4 * layers * n * n * h for n in lengths)
    return forward * (3 if backward else 1)


def timed(fn: Callable[[], Any], device: str = "cpu") -> tuple[float, Any]:
    import torch

    if device != "cpu":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn()
    if device != "cpu":
        torch.cuda.synchronize()
    return time.perf_counter() - t0, out


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def comparison(name: str, ours: float, baseline: float, unit: str) -> dict[str, Any]:
    return {
        "name": name,
        "ours": round(ours, 3),
        "baseline": round(baseline, 3),
        "unit": unit,
        "ratio": round(ours / baseline, 3) if baseline else None,
    }


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], file: Any = None) -> None:
    file = file or sys.stdout
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[k]) for r in cells) for k in range(len(headers))]
    for n, row in enumerate(cells):
        print(
            "  ".join(
                c.rjust(w) if k else c.ljust(w) for k, (c, w) in enumerate(zip(row, widths, strict=True))
            ),
            file=file,
        )
        if n == 0:
            print("  ".join("-" * w for w in widths), file=file)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def finish(
    script: str, args: Any, comparisons: list[dict[str, Any]], details: dict[str, Any], output: Path | None
) -> None:
    """Write the JSON file (atomically), print the comparison table, end with the one JSON line."""
    from ie.core.fileio import atomic_write_json

    print()
    print_table(
        ["comparison", "ours", "baseline", "unit", "ratio"],
        [
            [c["name"], c["ours"], c["baseline"], c["unit"], f"{c['ratio']:.2f}x" if c["ratio"] else "-"]
            for c in comparisons
        ],
    )
    payload = {
        "script": script,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": machine(),
        "load_average_end": load_average(),
        "comparisons": comparisons,
        **details,
    }
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(output, payload)
        print(f"\nwrote {output}")
    print(json.dumps(comparisons, ensure_ascii=False))
