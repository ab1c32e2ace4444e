"""Memory: ``ie-extract``'s peak RSS must not grow with the number of articles, and must grow
only linearly with the length of one article.

    python bench/memory.py --model runs/cpu-tiny            # both cases below
    python bench/memory.py --quick                          # a random-init CPU-sized model, 150 vs 600
    python bench/memory.py --only long --model runs/cpu-tiny    # one article of 15k, 150k, 600k chars

**Streaming.** For each N it writes N generated articles to a JSONL file (each article 2 to 6
sentences drawn from the seed articles with a fixed RNG, so every N is a prefix of the same
stream), runs ``ie-extract`` on it in a fresh process and takes that process's peak resident memory
from ``wait4``'s ``ru_maxrss`` (the kernel's exact high-water mark, no sampling). Streaming holds if
the peak at the largest N is within ``--max-growth`` (default 10 %) of the smallest. The comparison
line reports ours = peak at the largest N, baseline = peak at the smallest.

**Long article.** For each length L (``--lengths``, default 15,000, 150,000 and 600,000 characters)
one article of seed sentences (fixed RNG, one per line, cut at the last line break before L: every
L is a prefix of the same text) goes through ``ie-extract`` in its own fresh process, so peaks do
not mix. Memory is linear when the peak rises as fast per character between the two largest
lengths as between the two smallest: their ratio (the slope ratio) is 1 for linear growth and 4.5
for quadratic growth at these lengths (``(L2 + L3) / (L1 + L2)``, printed). It must be at most
``--max-slope-ratio`` (1.5), and the largest article must stay under ``--max-long-peak`` MiB
(2,048). The exit status says whether every bar measured is met.
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
    p.add_argument(
        "--lengths",
        type=int,
        nargs="+",
        default=[15000, 150000, 600000],
        help="characters of the one-article runs (default 15000 150000 600000)",
    )
    p.add_argument("--max-slope-ratio", type=float, default=1.5)
    p.add_argument("--max-long-peak", type=float, default=2048.0, help="MiB, at the longest article")
    p.add_argument(
        "--only", choices=("streaming", "long"), help="run one case (default: both; --quick: streaming)"
    )
    p.add_argument(
        "--output", type=Path, help="default bench/results/memory.json (memory-long.json with --only long)"
    )
    args = p.parse_args(argv)
    if args.quick:
        args.n = [150, 600]
        args.only = args.only or "streaming"
    if len(args.lengths) < 3 and args.only != "streaming":
        p.error("--lengths needs at least three lengths (two slopes)")
    if args.output is None:
        args.output = common.RESULTS / ("memory-long.json" if args.only == "long" else "memory.json")
    return args


def sentence_pool() -> list[str]:
    from ie.core.document import sentence_bounds

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


def write_long_article(path: Path, length: int, seed: int = 0) -> tuple[int, int]:
    """One article of seed sentences, one a line, cut at the last line break before ``length``
    characters; (characters, sentences)."""
    pool, rng = sentence_pool(), random.Random(seed)
    lines, total = [], -1
    while True:
        line = rng.choice(pool)
        if total + 1 + len(line) > length:
            break
        lines.append(line)
        total += 1 + len(line)
    text = "\n".join(lines)
    record = {"id": f"long{length}", "text": text, "date": "2024-01-15"}
    path.write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")
    return len(text), len(lines)


def run(model: Path, n: int, batch_size: int, work: Path) -> dict:
    inp = work / f"in-{n}.jsonl"
    sentences = write_articles(inp, n)
    return {"n": n, "sentences": sentences, **extract(model, inp, n, batch_size)}


def run_long(model: Path, length: int, batch_size: int, work: Path) -> dict:
    inp = work / f"long-{length}.jsonl"
    chars, sentences = write_long_article(inp, length)
    r = extract(model, inp, 1, batch_size)
    if r["error_records"]:
        raise SystemExit(f"ie-extract could not extract the {chars:,}-character article")
    return {"length": length, "characters": chars, "sentences": sentences, **r}


def extract(model: Path, inp: Path, n: int, batch_size: int) -> dict:
    """``ie-extract`` over ``inp`` (``n`` articles) in a fresh process: its time and peak RSS."""
    out = inp.with_name(f"out-{inp.name}")
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
    with open(inp.with_name(f"err-{inp.stem}.txt"), "w+") as err:
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
        "seconds": round(elapsed, 1),
        "articles_per_s": round(n / elapsed, 1),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),  # Linux: KiB
        "error_records": errors,
        "load_average": load,
    }


def streaming(args: argparse.Namespace, model: Path, work: Path) -> tuple[list[dict], dict, bool]:
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
    return comparisons, {"runs": rows, "growth": growth, "flat": ok}, ok


def long_article(args: argparse.Namespace, model: Path, work: Path) -> tuple[list[dict], dict, bool]:
    rows = []
    for length in sorted(args.lengths):
        r = run_long(model, length, args.batch_size, work)
        print(
            f"one article of {r['characters']:>7,} characters ({r['sentences']} sentences): "
            f"{r['seconds']:6.1f} s, peak RSS {r['peak_rss_mib']:7.1f} MiB (load {r['load_average']})",
            flush=True,
        )
        rows.append(r)

    def slope(a: dict, b: dict) -> float:  # MiB per 100,000 characters
        return (b["peak_rss_mib"] - a["peak_rss_mib"]) / (b["characters"] - a["characters"]) * 1e5

    first, last = slope(rows[0], rows[1]), slope(rows[-2], rows[-1])
    ratio = last / first if first > 0 else float("inf")
    chars = [r["characters"] for r in rows]
    quadratic = (chars[-2] + chars[-1]) / (chars[0] + chars[1])  # the ratio if peak ~ length²
    peak = rows[-1]["peak_rss_mib"]
    ok = ratio <= args.max_slope_ratio and peak <= args.max_long_peak
    print(
        f"\npeak RSS per 100,000 characters: {first:.1f} MiB ({rows[0]['characters']:,} to "
        f"{rows[1]['characters']:,}), {last:.1f} MiB ({rows[-2]['characters']:,} to "
        f"{rows[-1]['characters']:,}): slope ratio {ratio:.2f} (limit {args.max_slope_ratio}; "
        f"1 linear, {quadratic:.1f} quadratic); longest {peak:.0f} MiB (limit {args.max_long_peak:.0f}): "
        f"{'ok' if ok else 'FAIL'}"
    )
    comparisons = [
        common.comparison(
            f"peak RSS per 100k chars: {rows[-2]['characters']:,}-{rows[-1]['characters']:,} vs "
            f"{rows[0]['characters']:,}-{rows[1]['characters']:,} (linear: ~1)",
            last,
            first,
            "MiB",
        ),
        common.comparison(
            f"peak RSS: one {rows[-1]['characters']:,}-char article vs {rows[0]['characters']:,}",
            peak,
            rows[0]["peak_rss_mib"],
            "MiB",
        ),
    ]
    details = {
        "long_runs": rows,
        "slope_mib_per_100k_chars": [round(first, 2), round(last, 2)],
        "slope_ratio": round(ratio, 3),
        "slope_ratio_if_quadratic": round(quadratic, 3),
        "linear": ok,
    }
    return comparisons, details, ok


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    comparisons: list[dict] = []
    details: dict = {}
    ok = True
    with tempfile.TemporaryDirectory(prefix="ie-bench-mem-") as tmp:
        work = Path(tmp)
        model = args.model
        if model is None:
            from inference import build_joint

            model = build_joint("cpu", work, None)
        for case, fn in (("streaming", streaming), ("long", long_article)):
            if args.only in (None, case):
                c, d, passed = fn(args, model, work)
                comparisons += c
                details.update(d)
                ok = ok and passed
    details["wall_seconds"] = round(time.perf_counter() - started, 1)
    common.finish("bench/memory.py", args, comparisons, details, args.output)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
