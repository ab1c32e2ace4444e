"""Memory: ``ie-extract`` streams, so its peak RSS must not grow with the number of articles.

    python bench/memory.py --model runs/cpu-tiny            # 1,000 vs 10,000 articles
    python bench/memory.py --quick                          # a random-init CPU-sized model, 150 vs 600

For each N it writes N generated articles to a JSONL file (each article 2 to 6 sentences drawn from
the seed articles with a fixed RNG, so every N is a prefix of the same stream), runs ``ie-extract``
on it in a fresh process and takes that process's peak resident memory from ``wait4``'s
``ru_maxrss`` (the kernel's exact high-water mark, no sampling). Streaming holds if the peak at the
largest N is within ``--max-growth`` (default 10 %) of the smallest; the exit status says whether
it does. The comparison line reports ours = peak at the largest N, baseline = peak at the smallest.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, help="trained model dir (default: a random-init CPU-sized model)")
    p.add_argument(
        "--n", type=int, nargs="+", default=[1000, 10000], help="article counts (default 1000 10000)"
    )
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-growth", type=float, default=0.10)
    p.add_argument("--quick", action="store_true", help="150 and 600 articles: under a minute on 2 cores")
    p.add_argument("--output", type=Path, default=common.RESULTS / "memory.json")
    args = p.parse_args(argv)
    if args.quick:
        args.n = [150, 600]
    return args


def sentence_pool() -> list[str]:
    from ie.document import sentence_bounds

    return [t[s:e] for t in common.seed_texts() for s, e in sentence_bounds(t)]


def write_articles(path: Path, n: int, seed: int = 0) -> int:
    """N articles recombined from seed sentences; the number of sentences written."""
    pool, rng, total = sentence_pool(), random.Random(seed), 0
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            k = rng.randint(2, 6)
            text = "\n".join(rng.choice(pool) for _ in range(k))
            total += k
            f.write(
                json.dumps({"id": f"g{i:06d}", "text": text, "date": "2024-01-15"}, ensure_ascii=False) + "\n"
            )
    return total


def run(model: Path, n: int, batch_size: int, work: Path) -> dict:
    inp, out = work / f"in-{n}.jsonl", work / f"out-{n}.jsonl"
    sentences = write_articles(inp, n)
    exe = Path(sys.executable).with_name("ie-extract")
    cmd = [
        str(exe),
        "--model",
        str(model),
        "--input",
        str(inp),
        "--output",
        str(out),
        "--overwrite",
        "--no-progress",
        "--batch-size",
        str(batch_size),
        "--device",
        "cpu",
    ]
    load = common.load_average()
    started = time.perf_counter()
    with open(work / f"err-{n}.txt", "w+") as err:
        proc = subprocess.Popen(cmd, stderr=err, stdout=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        elapsed = time.perf_counter() - started
        err.seek(0)
        stderr = err.read()
    if proc.returncode != 0:
        raise SystemExit(f"ie-extract failed ({proc.returncode}):\n{stderr[-2000:]}")
    with open(out, encoding="utf-8") as f:
        records = [json.loads(line) for line in f]
    assert len(records) == n, f"{len(records)} records for {n} articles"
    errors = sum(1 for r in records if "error" in r)
    return {
        "n": n,
        "sentences": sentences,
        "seconds": round(elapsed, 1),
        "articles_per_s": round(n / elapsed, 1),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),  # Linux: KiB
        "error_records": errors,
        "load_average": load,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ie-bench-mem-") as tmp:
        work = Path(tmp)
        model = args.model
        if model is None:
            from inference import build_joint

            model = build_joint("cpu", work, None)
        rows = []
        for n in sorted(args.n):
            r = run(model, n, args.batch_size, work)
            print(
                f"{n:>6} articles ({r['sentences']} sentences): {r['seconds']:7.1f} s, "
                f"{r['articles_per_s']:6.1f} articles/s, peak RSS {r['peak_rss_mib']:7.1f} MiB "
                f"(load {r['load_average']})",
                flush=True,
            )
            rows.append(r)
    small, large = rows[0], rows[-1]
    growth = large["peak_rss_mib"] / small["peak_rss_mib"] - 1
    ok = growth <= args.max_growth
    print(
        f"\npeak RSS growth from {small['n']} to {large['n']} articles: {growth:+.1%} "
        f"({'flat: ok' if ok else 'FAIL'}, limit {args.max_growth:.0%})"
    )
    comparisons = [
        common.comparison(
            f"ie-extract peak RSS: {large['n']} vs {small['n']} articles (must stay flat)",
            large["peak_rss_mib"],
            small["peak_rss_mib"],
            "MiB",
        ),
    ]
    details = {
        "runs": rows,
        "growth": growth,
        "flat": ok,
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    common.finish("bench/memory.py", args, comparisons, details, args.output)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
