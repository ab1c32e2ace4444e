"""``/predict`` latency: one seed article through the real ``ie-serve`` HTTP server, as Label Studio asks.

    python bench/serve.py --model runs/cpu-tiny            # 10 requests per side (the issue's figure)
    python bench/serve.py --model runs/cpu-tiny --quick    # 3

Ours: ``ie-serve`` started as its own process (uvicorn, loopback), timed from sending
``POST /predict`` (the body Label Studio 1.23 sends: one task, the project's labeling config) to
having the parsed answer, which holds every span and relation, validated against the labeling config.
Baseline: the same model's ``Predictor.predict`` on the same article in this process, with no
HTTP, no protocol and no validation: what the service adds is the difference. One warm-up request
per side, then the runs interleaved (ours, baseline, ...); median, min and max.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import common


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=common.ROOT / "runs" / "cpu-tiny", help="trained model dir")
    p.add_argument("--article", default="000_827349901dd84165", help="seed article (file stem)")
    p.add_argument("--runs", type=int, default=10, help="timed requests per side (default 10)")
    p.add_argument("--quick", action="store_true", help="3 runs")
    p.add_argument("--output", type=Path, default=common.RESULTS / "serve.json")
    return p.parse_args(argv)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, body: bytes) -> dict:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=300) as r:
        return json.loads(r.read())


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    runs = 3 if args.quick else args.runs
    from ie.annotation.labelstudio import label_config
    from ie.model.prediction import Predictor

    text = (common.SEEDS / f"{args.article}.txt").read_text(encoding="utf-8")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(common.ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "ie.cli.serve", "--model", str(args.model), "--port", str(port),
         "--device", "cpu", "--log_level", "warning"],
        env=env, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                    health = json.loads(r.read())
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"ie-serve did not start (exit {server.poll()})") from None
                time.sleep(0.3)
        body = json.dumps({"tasks": [{"id": 1, "data": {"text": text}}], "project": "1.0",
                           "label_config": label_config(), "params": {}}).encode()  # fmt: skip
        predictor = Predictor.from_pretrained(args.model, device="cpu")
        _post(f"{url}/predict", body)  # warm-up: the first request loads lazily what the others reuse
        predictor.predict([text])
        ours, baseline = [], []
        for _ in range(runs):
            seconds, answer = common.timed(lambda: _post(f"{url}/predict", body))
            ours.append(seconds * 1000)
            seconds, _ = common.timed(lambda: predictor.predict([text]))
            baseline.append(seconds * 1000)
        (prediction,) = answer["results"]
        results = prediction["result"]
        spans = sum(r["type"] == "labels" for r in results)
        relations = sum(r["type"] == "relation" for r in results)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
    common.print_table(
        ["side", "median ms", "min ms", "max ms"],
        [["POST /predict (ie-serve, HTTP)", common.median(ours), min(ours), max(ours)],
         ["Predictor.predict (in process)", common.median(baseline), min(baseline), max(baseline)]],
    )  # fmt: skip
    print(f"\n{args.article}: {len(text)} characters, {spans} spans, {relations} relations, "
          f"model_version {health['model_version']}, {runs} runs per side")  # fmt: skip
    common.finish(
        "bench/serve.py",
        args,
        [
            common.comparison(
                f"/predict latency, one seed article (median of {runs})",
                common.median(ours),
                common.median(baseline),
                "ms",
            )
        ],  # fmt: skip
        {
            "article": args.article,
            "characters": len(text),
            "spans": spans,
            "relations": relations,
            "model_version": health["model_version"],
            "ours_ms": {"median": common.median(ours), "min": min(ours), "max": max(ours), "runs": ours},
            "baseline_ms": {
                "median": common.median(baseline),
                "min": min(baseline),
                "max": max(baseline),
                "runs": baseline,
            },
        },  # fmt: skip
        args.output,
    )


if __name__ == "__main__":
    main()
