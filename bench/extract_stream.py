"""ie-extract streams: throughput, and peak memory that does not grow with the number of articles.

    python bench/extract_stream.py --model runs/cpu-tiny --n 1000 10000 --chars 400

For each N it writes N articles (the seed articles, cut to ``--chars`` characters and numbered) to a
JSONL file, runs ``ie-extract`` on it in a fresh process, samples that process's resident memory
every 0.2 s, and prints articles/s and the peak RSS. Streaming holds if the peak RSS of the largest
N is within ``--max-growth`` (default 10 %) of the smallest; the exit status says whether it is.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def run(model: Path, n: int, chars: int, batch_size: int, work: Path) -> dict:
    texts = [p.read_text(encoding="utf-8")[:chars] for p in sorted((ROOT / "seeds").glob("*.txt"))]
    inp, out = work / f"in-{n}.jsonl", work / f"out-{n}.jsonl"
    with open(inp, "w", encoding="utf-8") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"a{i}", "text": texts[i % len(texts)]}, ensure_ascii=False) + "\n")
    exe = Path(sys.executable).with_name("ie-extract")
    cmd = [str(exe), "--model", str(model), "--input", str(inp), "--output", str(out), "--overwrite",
           "--no-progress", "--batch-size", str(batch_size)]  # fmt: skip
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _rss_kib(proc.pid))
        time.sleep(0.2)
    err = proc.stderr.read() if proc.stderr else ""
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"ie-extract failed ({proc.returncode}):\n{err[-2000:]}")
    lines = sum(1 for _ in open(out, encoding="utf-8"))
    assert lines == n, f"{lines} records for {n} articles"
    summary = err.strip().splitlines()[-1]
    return {"n": n, "seconds": round(elapsed, 1), "peak_rss_mib": round(peak / 1024, 1), "summary": summary}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--n", type=int, nargs="+", default=[500, 5000])
    p.add_argument("--chars", type=int, default=400, help="characters per article (default 400)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-growth", type=float, default=0.10)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [run(args.model, n, args.chars, args.batch_size, Path(tmp)) for n in sorted(args.n)]
    for r in rows:
        print(json.dumps(r, ensure_ascii=False))
    growth = rows[-1]["peak_rss_mib"] / rows[0]["peak_rss_mib"] - 1
    ok = growth <= args.max_growth
    print(f"peak RSS growth from {rows[0]['n']} to {rows[-1]['n']} articles: {growth:+.1%} "
          f"({'ok' if ok else 'FAIL'}, limit {args.max_growth:.0%})")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
